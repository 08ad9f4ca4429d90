//! Assembles the application: the shared state, the router of every surface
//! plus health and OpenAPI routes and the pages for people (`/`, `/docs`),
//! the middleware stack, and [`serve`], which runs it on a listener (with
//! connection timeouts and a cap) until a shutdown signal. `main` and the
//! tests build the server the same way.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::core::auth::{Authenticator, JwtSettings};
use crate::core::error::DomainError;
use crate::core::events::Events;
use crate::core::idempotency::Idempotency;
use crate::core::ratelimit::{Limiter, RateLimits};
use crate::core::records::Records;
use crate::core::webhooks::{WebhookSettings, Webhooks};
use crate::delivery::{DeliverySettings, HttpSender};
use crate::http::AppState;
use crate::http::extract::MAX_BODY_BYTES;
use crate::http::metrics::Metrics;
use crate::http::rate_limit::rate_limit_headers;
use crate::http::request_context::{current_path, current_request_id, request_context};
pub use crate::http::server::ConnectionSettings;
use crate::store::SharedStore;
use crate::store::ratelimit::{MemoryRateLimiter, RateLimiter};
use crate::surfaces;

/// How often expired idempotency keys are purged.
const IDEMPOTENCY_PURGE_EVERY: Duration = Duration::from_secs(60);

/// How long one request may take before the server answers 503 for it.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the HTTP application itself (not of the listener or store).
#[derive(Clone)]
pub struct AppSettings {
    pub jwt: Option<JwtSettings>,
    pub request_timeout: Duration,
    /// Shorter than `request_timeout`, so a slow sender gets 408, not 503.
    pub body_timeout: Duration,
    /// How long an API key lookup is reused (revocations take this long).
    pub key_cache_ttl: Duration,
    /// Each surface's rate-limit policy (by default each surface's own
    /// default: Hood's documented limits, no limit on the others).
    pub rate_limits: RateLimits,
    /// Where request counts live; `None` keeps them in this process.
    pub limiter: Option<Arc<dyn RateLimiter>>,
    /// How long an idempotency key's response answers retries.
    pub idempotency_ttl: Duration,
    /// Webhook subscriptions: the key that seals their secrets, targets
    /// allowed, the retry schedule.
    pub webhooks: WebhookSettings,
    /// How many deliveries are sent at once; `None` sends none from this
    /// process (the API still manages subscriptions, and events are still
    /// fanned out for other instances to send).
    pub delivery: Option<DeliverySettings>,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            jwt: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            key_cache_ttl: crate::core::auth::DEFAULT_KEY_CACHE_TTL,
            rate_limits: surfaces::default_rate_limits(),
            limiter: None,
            idempotency_ttl: crate::core::idempotency::DEFAULT_TTL,
            webhooks: WebhookSettings::default(),
            delivery: Some(DeliverySettings::default()),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Clientele",
        description = "Customer records behind three vendors' APIs: Lance ICPs, ClientSuccess clients and Ocamba Hood profiles.\n\nRequest bodies are JSON of at most 1 MiB, without repeated keys, and no string or key in them may contain U+0000 (400). Every response carries `X-Request-Id`, the server's id of the request; a client's own `X-Request-Id` is echoed in `X-Client-Request-Id` and recorded beside the server's, never in its place.",
    ),
    // Relative: a client resolves it against where it read the document,
    // so one document serves every host Clientele runs on.
    servers((url = "/", description = "The server that serves this document")),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key from `clientele keys create`, or a JWT when configured",
                    ))
                    .build(),
            ),
        );
    }
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(readyz))
        .routes(utoipa_axum::routes!(openapi_json))
        .merge(surfaces::lance::router())
        .merge(surfaces::clientsuccess::router())
        .merge(surfaces::hood::router())
        .merge(surfaces::clientele::router())
}

/// The router and its document, with the responses every route shares
/// (authentication, rate limits, timeouts, body limits) added to each
/// operation rather than repeated in every handler's annotation.
fn routes_and_document() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut api) = routes().split_for_parts();
    surfaces::document_shared_responses(&mut api);
    surfaces::state_no_nul_in_requests(&mut api);
    (router, api)
}

/// The OpenAPI document of every route, generated from the handlers' types.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_and_document().1
}

/// Builds the application router over `store`.
pub fn build(store: SharedStore, settings: AppSettings) -> Router {
    assemble(store, settings, false).0
}

/// Like [`build`], with every request counted and timed, and the router
/// that serves those counts and the store's at `GET /metrics` (for a
/// listener of its own: see `--metrics-listen`).
pub fn build_with_metrics(store: SharedStore, settings: AppSettings) -> (Router, Router) {
    let (router, metrics) = assemble(store, settings, true);
    let metrics = metrics.map(Metrics::router).unwrap_or_default();
    (router, metrics)
}

/// The surface of a path, as a metrics label: its surface's name, or
/// `other` (health, readiness, the document, unknown paths).
fn surface_label(path: &str) -> &'static str {
    surfaces::surface_for_path(path).map_or("other", |surface| surface.name)
}

/// The router, and its metrics when `measure` (left out otherwise: a
/// server nobody scrapes need not count).
fn assemble(
    store: SharedStore,
    settings: AppSettings,
    measure: bool,
) -> (Router, Option<Arc<Metrics>>) {
    let (router, api) = routes_and_document();
    let document = api
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"));
    // A claim outlives any request that may still hold it.
    let idempotency = Idempotency::new(
        store.clone(),
        settings.idempotency_ttl,
        settings.request_timeout + Duration::from_secs(5),
    );
    let sender = HttpSender::new(
        settings.webhooks.allow_private,
        settings.webhooks.attempt_timeout,
        settings.delivery.unwrap_or_default().per_endpoint,
    )
    .map(|sender| Arc::new(sender) as Arc<dyn crate::core::webhooks::Sender>)
    .unwrap_or_else(|error| {
        tracing::error!(%error, "webhooks cannot be sent");
        Arc::new(crate::delivery::NoSender(error))
    });
    let webhooks = Webhooks::new(store.clone(), settings.webhooks.clone(), sender);
    let state = AppState {
        records: Records::new(store.clone()),
        events: Events::new(store.clone()),
        webhooks: webhooks.clone(),
        auth: Authenticator::with_key_cache(store.clone(), settings.jwt, settings.key_cache_ttl),
        limiter: Limiter::new(
            settings.rate_limits,
            settings
                .limiter
                .unwrap_or_else(|| Arc::new(MemoryRateLimiter::default())),
        ),
        idempotency: idempotency.clone(),
        body_timeout: settings.body_timeout,
        openapi_json: Arc::new(document),
    };
    // Expired keys are purged in the background; lookups already ignore
    // them, so the purge only reclaims space.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(Arc::new(idempotency).purge_forever(IDEMPOTENCY_PURGE_EVERY));
        runtime.spawn(crate::store::refresh_statistics_forever(
            store.clone(),
            crate::store::STATISTICS_CHECK_EVERY,
        ));
        let _entered = runtime.enter();
        crate::delivery::start(webhooks, settings.delivery);
    }
    let metrics = measure.then(|| {
        Arc::new(Metrics::new(
            state.records.clone(),
            state.auth.clone(),
            state.limiter.clone(),
            surface_label,
        ))
    });
    let router = router
        // The index and the interactive reference: pages for people, not
        // API operations, so outside the document.
        .merge(crate::http::docs::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(release_claims_before_answering))
        .layer(axum::middleware::from_fn_with_state(
            settings.request_timeout,
            request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(rate_limit_headers))
        .layer(axum::middleware::from_fn(request_context));
    // Outermost, so that the time and status include every layer's work
    // (a timeout's 503, a panic's 500).
    let router = match &metrics {
        Some(metrics) => router.layer(axum::middleware::from_fn_with_state(
            metrics.requests.clone(),
            crate::http::metrics::track,
        )),
        None => router,
    };
    (router.with_state(state), metrics)
}

/// Serves `app` on `listener` until `shutdown` completes; requests in
/// flight are allowed to finish. Connections are timed and capped by
/// `connections` (see [`crate::http::server`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    connections: ConnectionSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::http::server::serve(listener, app, connections, shutdown).await
}

/// Middleware: the answer waits for the idempotency claims its request gave
/// up (see [`crate::core::idempotency::releasing_claims`]).
async fn release_claims_before_answering(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Only a request with a key can hold a claim: the others (most) skip
    // the scope.
    if request.headers().contains_key("idempotency-key") {
        crate::core::idempotency::releasing_claims(next.run(request)).await
    } else {
        next.run(request).await
    }
}

/// Middleware: a request that takes longer than `limit` answers 503 in its
/// surface's envelope (and its work is dropped, rolling back any write).
async fn request_timeout(
    State(limit): State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error_for_current_path(DomainError::Unavailable(format!(
            "request took longer than {} s",
            limit.as_secs()
        ))),
    }
}

fn error_for_current_path(error: DomainError) -> Response {
    let path = current_path().unwrap_or_default();
    surfaces::error_response_for_path(&path, &error, &current_request_id())
}

fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| {
            payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
        })
        .unwrap_or_else(|| "unknown panic".to_owned());
    error_for_current_path(DomainError::Internal(format!("handler panicked: {detail}")))
}

async fn unknown_route() -> Response {
    error_for_current_path(DomainError::NoSuchRoute)
}

async fn method_not_allowed() -> Response {
    error_for_current_path(DomainError::MethodNotAllowed)
}

/// Liveness: the process is up and answering.
#[utoipa::path(get, path = "/healthz", tag = "Operations", security(()),
    responses((status = 200, description = "The process is alive", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "Operations", security(()),
    responses(
        (status = 200, description = "The database is reachable", body = String),
        (status = 503, description = "The database is not reachable", body = String),
    ))]
async fn readyz(State(app): State<AppState>) -> Response {
    match app.records.ping().await {
        Ok(()) => "ready".into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "Operations", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of every route",
        content_type = "application/json", body = Object)))]
async fn openapi_json(State(app): State<AppState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        app.openapi_json.as_str().to_owned(),
    )
        .into_response()
}
