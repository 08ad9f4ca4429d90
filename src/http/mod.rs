//! What every surface shares on the HTTP side: the handlers' shared
//! [`AppState`], the request context (request id, logging span), the
//! [`Surface`] trait through which each vendor contract renders a
//! [`DomainError`] in its own envelope, and the extractors that
//! authenticate callers and read JSON bodies, rejecting in the surface's
//! envelope. Route handlers live in the surfaces above this layer.

pub mod extract;
pub mod rate_limit;
pub mod request_context;
pub mod state;

use std::marker::PhantomData;

use axum::response::{IntoResponse, Response};

use crate::core::error::DomainError;
pub use request_context::current_request_id;
pub use state::AppState;

/// One vendor contract's way of answering errors.
pub trait Surface: Send + Sync + 'static {
    /// The surface's name in configuration (rate limits) and logs.
    const NAME: &'static str;

    /// Whether a token sent without the `Bearer ` prefix is accepted.
    const ACCEPTS_BARE_TOKEN: bool = false;

    /// Renders `error` in this surface's envelope.
    fn error_response(error: &DomainError, request_id: &str) -> Response;
}

/// A failed request on surface `S`: renders through `S`, logging what the
/// caller must not see.
pub struct Failure<S: Surface> {
    pub error: DomainError,
    surface: PhantomData<S>,
}

impl<S: Surface> From<DomainError> for Failure<S> {
    fn from(error: DomainError) -> Self {
        Self {
            error,
            surface: PhantomData,
        }
    }
}

impl<S: Surface> IntoResponse for Failure<S> {
    fn into_response(self) -> Response {
        log_failure(&self.error);
        S::error_response(&self.error, &current_request_id())
    }
}

/// Server-side detail of a failure goes to the log, never to the client.
pub fn log_failure(error: &DomainError) {
    match error {
        DomainError::Internal(detail) => tracing::error!(error = %detail, "internal error"),
        DomainError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "storage unavailable")
        }
        _ => {}
    }
}
