//! Rate-limit headers on every response. The [`crate::http::extract::Caller`]
//! extractor asks the limiter once the workspace is known and leaves the
//! decision in a per-request [`RateLimitSlot`]; [`rate_limit_headers`]
//! copies it onto the response as `X-RateLimit-Limit`, `-Remaining` and
//! `-Reset` (seconds), whatever the status.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::core::ratelimit::Decision;

/// Where the extractor leaves this request's decision.
#[derive(Clone, Default)]
pub struct RateLimitSlot(Arc<Mutex<Option<Decision>>>);

impl RateLimitSlot {
    pub fn record(&self, decision: Decision) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(decision);
        }
    }

    fn take(&self) -> Option<Decision> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Middleware: gives each request a slot, then writes its decision into
/// the response headers.
pub async fn rate_limit_headers(mut request: Request, next: Next) -> Response {
    let slot = RateLimitSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(decision) = slot.take() {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
        headers.insert(
            "x-ratelimit-remaining",
            HeaderValue::from(decision.remaining),
        );
        headers.insert("x-ratelimit-reset", HeaderValue::from(decision.reset_secs));
    }
    response
}
