//! What every surface shares on the HTTP side: the handlers' shared
//! [`AppState`], the request context (request id, logging span), the
//! [`Surface`] trait through which each vendor contract words a
//! [`DomainError`] in its own envelope (status code, headers and logging
//! are decided once, in [`error`]), and the extractors that
//! authenticate callers and read JSON bodies, rejecting in the surface's
//! envelope. Route handlers live in the surfaces above this layer. Under
//! the router, [`server`] accepts and times connections and caps their
//! number. [`metrics`] counts requests and renders `/metrics`.
//! number. [`docs`] serves the pages for people: the index at `/` and the
//! interactive reference at `/docs`.

pub mod cpu;
pub mod docs;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod metrics;
pub mod rate_limit;
pub mod request_context;
pub mod server;
pub mod state;

use std::marker::PhantomData;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::core::error::DomainError;
use crate::core::ratelimit::RatePolicy;
pub use request_context::current_request_id;
pub use state::AppState;

/// One vendor contract's way of answering errors.
pub trait Surface: Sized + Send + Sync + 'static {
    /// The surface's name in configuration (rate limits) and logs.
    const NAME: &'static str;

    /// The path prefix of every route of the surface (e.g. `/v1/hood/`);
    /// errors raised outside a route under it use the surface's envelope.
    const PREFIX: &'static str;

    /// Whether a token sent without the `Bearer ` prefix is accepted.
    const ACCEPTS_BARE_TOKEN: bool = false;

    /// Whether the surface's writes take an `Idempotency-Key` (see
    /// [`idempotency`]).
    const TAKES_IDEMPOTENCY_KEY: bool = true;

    /// The media type of the surface's error bodies.
    const ERROR_MEDIA_TYPE: &'static str = "application/json";

    /// The surface's error envelope; its schema name is the one the OpenAPI
    /// document gives the shared error responses.
    type ErrorBody: Serialize + ToSchema;

    /// The rate limit of the surface's callers, per workspace, when none is
    /// configured; `None`: not limited.
    fn default_rate_policy() -> Option<RatePolicy> {
        None
    }

    /// `error` in this surface's envelope. The status is decided already
    /// (by [`error::status_of`]), as are the headers and the logging.
    fn error_body(error: &DomainError, status: StatusCode, request_id: &str) -> Self::ErrorBody;

    /// The whole response for `error` on this surface (see
    /// [`error::error_response`]).
    fn error_response(error: &DomainError, request_id: &str) -> Response {
        error::error_response::<Self>(error, request_id)
    }
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
        S::error_response(&self.error, &current_request_id())
    }
}
