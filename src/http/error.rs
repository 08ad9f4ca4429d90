//! How a [`DomainError`] becomes a response, decided once for every
//! surface: its status code, the headers that go with it
//! (`WWW-Authenticate: Bearer` on 401, the current `ETag` on 412,
//! `Retry-After` on 429 and 503), and the log line for what the caller must
//! not see (the cause of a 500 or 503). The body alone is the surface's:
//! [`Surface::error_body`] words it in the surface's envelope, given the
//! status decided here.

use axum::http::header::{CONTENT_TYPE, ETAG, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Surface;
use crate::core::error::DomainError;

/// The status code of `error`, whatever the surface.
pub fn status_of(error: &DomainError) -> StatusCode {
    match error {
        DomainError::Invalid(_) | DomainError::InvalidQuery(_) | DomainError::MalformedBody(_) => {
            StatusCode::BAD_REQUEST
        }
        DomainError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        DomainError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        DomainError::NoSuchRoute | DomainError::NotFound { .. } => StatusCode::NOT_FOUND,
        DomainError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        DomainError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        DomainError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        DomainError::Forbidden { .. } => StatusCode::FORBIDDEN,
        DomainError::InvalidHeader { .. } => StatusCode::BAD_REQUEST,
        DomainError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::IdempotencyKeyInUse => StatusCode::CONFLICT,
        DomainError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
        DomainError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        DomainError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::Conflict(_) => StatusCode::CONFLICT,
        DomainError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        DomainError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Adds the headers that `error`'s status calls for.
fn insert_headers(error: &DomainError, headers: &mut HeaderMap) {
    match error {
        DomainError::Unauthenticated(_) => {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        DomainError::PreconditionFailed { current_etag } => {
            if let Ok(value) = HeaderValue::from_str(current_etag) {
                headers.insert(ETAG, value);
            }
        }
        DomainError::RateLimited { retry_after_secs } => {
            headers.insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        DomainError::Unavailable(_) => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
}

/// Server-side detail of a failure goes to the log, never to the client.
fn log_failure(error: &DomainError) {
    match error {
        DomainError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
        DomainError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "storage unavailable")
        }
        _ => {}
    }
}

/// The response for `error` on surface `S`: every error response, from a
/// handler, an extractor or the application's own fallbacks, is made (and
/// its cause logged) here.
pub fn error_response<S: Surface>(error: &DomainError, request_id: &str) -> Response {
    log_failure(error);
    let status = status_of(error);
    let mut response = envelope_response::<S>(status, &S::error_body(error, status, request_id));
    insert_headers(error, response.headers_mut());
    response
}

/// `body`, an envelope of surface `S`, as JSON in the surface's error media
/// type with `status`. For errors a handler words itself; the rest go
/// through [`error_response`].
pub fn envelope_response<S: Surface>(status: StatusCode, body: &S::ErrorBody) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(CONTENT_TYPE, HeaderValue::from_static(S::ERROR_MEDIA_TYPE))],
            bytes,
        )
            .into_response(),
        // What axum's Json answers when a body does not serialise; an
        // envelope is plain data, so this would be a bug.
        Err(error) => {
            tracing::error!(%error, "an error envelope does not serialise");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                error.to_string(),
            )
                .into_response()
        }
    }
}
