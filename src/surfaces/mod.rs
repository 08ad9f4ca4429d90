//! The vendor contracts, one module each: routes, wire types and the error
//! envelope. Each turns requests into calls on the core and the core's
//! answers back into its vendor's format.

pub mod lance;

use axum::response::Response;

use crate::core::error::DomainError;
use crate::http::Surface;

/// Renders an error raised outside any route (unknown path, panic) in the
/// envelope of the surface whose path prefix the request used.
pub fn error_response_for_path(path: &str, error: &DomainError, request_id: &str) -> Response {
    // Only one surface so far; others will claim their prefixes here.
    let _ = path;
    lance::Lance::error_response(error, request_id)
}
