//! The vendor contracts, one module each: routes, wire types and the error
//! envelope. Each turns requests into calls on the core and the core's
//! answers back into its vendor's format.

pub mod clientsuccess;
pub mod hood;
pub mod lance;
pub mod schema;

use axum::response::Response;

use crate::core::error::DomainError;
use crate::http::Surface;

/// Renders an error raised outside any route (unknown path, panic) in the
/// envelope of the surface whose path prefix the request used.
pub fn error_response_for_path(path: &str, error: &DomainError, request_id: &str) -> Response {
    if path.starts_with("/v2/") {
        clientsuccess::ClientSuccess::error_response(error, request_id)
    } else if path.starts_with("/v1/hood/") {
        hood::Hood::error_response(error, request_id)
    } else {
        lance::Lance::error_response(error, request_id)
    }
}
