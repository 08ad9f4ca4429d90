//! [`AppState`]: what every request handler and extractor shares. Built
//! once by [`crate::app`] from its settings; everything in it is a handle
//! on the core, cheap to clone per request.

use std::sync::Arc;
use std::time::Duration;

use crate::core::auth::Authenticator;
use crate::core::events::Events;
use crate::core::idempotency::Idempotency;
use crate::core::ratelimit::Limiter;
use crate::core::records::Records;
use crate::core::webhooks::Webhooks;

/// Everything a request handler may need.
#[derive(Clone)]
pub struct AppState {
    pub records: Records,
    /// The change feed.
    pub events: Events,
    /// Webhook subscriptions and their deliveries.
    pub webhooks: Webhooks,
    pub auth: Authenticator,
    /// Each surface's rate limit, counted per workspace.
    pub limiter: Limiter,
    /// Idempotency keys of writes, and their kept responses.
    pub idempotency: Idempotency,
    /// How long a client may take to send its body (408 after that).
    pub body_timeout: Duration,
    /// The OpenAPI document, rendered once when the application is built.
    pub openapi_json: Arc<String>,
}
