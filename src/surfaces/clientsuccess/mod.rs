//! The ClientSuccess client contract at `/v2/client` (being built).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::core::error::DomainError;
use crate::http::Surface;

/// Marker for the ClientSuccess surface.
pub struct ClientSuccess;

impl Surface for ClientSuccess {
    const NAME: &'static str = "clientsuccess";
    const ACCEPTS_BARE_TOKEN: bool = true;

    fn error_response(error: &DomainError, _request_id: &str) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
    }
}

/// The routes of this surface, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
