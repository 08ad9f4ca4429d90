//! Clientele's own API, `/clientele/v1/…`: what spans every surface. The
//! change feed (`/events`) and webhook subscriptions (`/webhooks`). Errors
//! are RFC 9457 problems with `errors[]` by JSON pointer (the ClientSuccess
//! shape, as contracts.md fixes), lists page by cursor (`?after=&limit=` →
//! `{"items": […], "next": …}`), and every route needs an admin key of the
//! workspace.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::error::{DomainError, FieldPath};
use crate::core::events::{Event, FeedQuery};
use crate::core::webhooks::{Attempt, DeliveryCounts, TestResult, Webhook, WithSecret};
use crate::http::extract::{Caller, JsonBody, PathId, QueryPairs};
use crate::http::{AppState, Failure, Surface};
use crate::surfaces::clientsuccess::{ClientSuccess, ClientSuccessProblem, PROBLEM_JSON};
use crate::surfaces::iso_millis;

/// Marker for Clientele's own API.
pub struct Clientele;

type ClienteleResult = Result<Response, Failure<Clientele>>;

impl Surface for Clientele {
    const NAME: &'static str = "clientele";
    const PREFIX: &'static str = "/clientele/";
    const ERROR_MEDIA_TYPE: &'static str = PROBLEM_JSON;
    /// A subscription's create and rotate answers carry its secret, which
    /// must not be kept in the database in the clear (as a kept answer
    /// would be), and a replay without it would not be the same answer. So
    /// these writes refuse the header rather than ignore it.
    const TAKES_IDEMPOTENCY_KEY: bool = false;

    type ErrorBody = ClientSuccessProblem;

    fn error_body(
        error: &DomainError,
        status: StatusCode,
        request_id: &str,
    ) -> ClientSuccessProblem {
        ClientSuccess::error_body(error, status, request_id)
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(event_feed))
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(send_test))
        .routes(routes!(list_attempts))
        .routes(routes!(replay))
        .layer(axum::middleware::from_fn(refuse_idempotency_keys))
}

/// Refuses a write that sends `Idempotency-Key` (see
/// [`Clientele::TAKES_IDEMPOTENCY_KEY`]), saying so, rather than ignore a
/// header the client relies on.
async fn refuse_idempotency_keys(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.method() != axum::http::Method::GET
        && request.headers().contains_key("idempotency-key")
    {
        return Failure::<Clientele>::from(DomainError::InvalidHeader {
            name: "Idempotency-Key",
            message: "Clientele's own API does not take Idempotency-Key: a subscription's \
                      answer holds its secret, which is not kept; list the subscriptions \
                      to see whether a create went through"
                .into(),
        })
        .into_response();
    }
    next.run(request).await
}

/// One page of a cursor-paged list.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventView>,
    /// The id of the last event listed (or the `after` asked for when the
    /// page is empty): ask `after=next` for later events. A change feed has
    /// no end, so `next` is null only when there has been no event yet.
    pub next: Option<String>,
}

/// A change event; a webhook delivery's body is the same JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `evt_` and 16 digits: unique, and sorts as text in commit order.
    #[schema(example = "evt_0000000000000042")]
    pub id: String,
    /// `<kind>.<created|updated|deleted>`; kinds: icp, client, profile, profile_list.
    #[serde(rename = "type")]
    #[schema(example = "icp.updated")]
    pub event_type: String,
    /// When the change committed (ISO 8601 UTC, milliseconds).
    pub timestamp: String,
    pub workspace: String,
    pub data: EventDataView,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDataView {
    pub kind: String,
    /// The record's id, as its surface names it.
    pub id: String,
    /// The record's version after the change (for a delete, its last).
    pub version: i64,
    /// Each changed field with its old and new value, as in the record's history.
    pub changes: Vec<crate::surfaces::FieldChange>,
    pub actor: ActorView,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActorView {
    pub user_id: String,
    pub key_id: Option<String>,
    /// The server's id of the request that made the change.
    pub request_id: String,
    /// The `X-Request-Id` the client sent with it, if any.
    pub client_request_id: Option<String>,
}

/// The events of the caller's workspace in commit order, after a cursor.
///
/// Paging is stable under concurrent writes: an event appears once its
/// write has committed, in order, and a page never skips one that commits
/// later with a lower id (see the README: "Events and webhooks").
#[utoipa::path(
    get,
    path = "/clientele/v1/events",
    tag = "Clientele events and webhooks",
    security(("bearer" = [])),
    params(
        ("after" = Option<String>, Query, pattern = "^((evt_)?[0-9]{1,18})?$", description = "The `next` of the previous page (an event id); from the first event when absent or empty"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Events per page (default 100)"),
        ("types" = Option<String>, Query, pattern = "^(\\*|(icp|client|profile|profile_list|suppression|\\*)\\.(created|updated|deleted|\\*))(,(\\*|(icp|client|profile|profile_list|suppression|\\*)\\.(created|updated|deleted|\\*)))*$", description = "Comma-separated event types or patterns: `icp.updated`, `client.*`, `*.deleted`, `*`"),
    ),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "Invalid query parameters; every one is listed",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 403, description = "The key is not an admin key",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn event_feed(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Clientele>,
    QueryPairs(pairs, ..): QueryPairs<Clientele>,
) -> ClienteleResult {
    let [after, limit, types] = parameters(pairs, ["after", "limit", "types"])?;
    let query = FeedQuery {
        after,
        limit,
        types,
    };
    let page = app.events.feed(&principal, &query).await?;
    Ok(Json(EventPage {
        items: page.items.iter().map(event_view).collect(),
        next: page.next,
    })
    .into_response())
}

/// The values of the query parameters a route takes, in the order of
/// `known`; any other parameter is an error naming those it takes.
fn parameters<const N: usize>(
    pairs: Vec<(String, String)>,
    known: [&str; N],
) -> Result<[Option<String>; N], DomainError> {
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    let mut errors = Vec::new();
    for (name, value) in pairs {
        match known.iter().position(|wanted| *wanted == name) {
            Some(index) => values[index] = Some(value),
            None => errors.push(crate::core::error::FieldError {
                path: FieldPath::root().key(&name),
                message: format!("unknown parameter; this route takes {}", known.join(", ")),
            }),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(DomainError::InvalidQuery(errors))
    }
}

/// The feed's view of an event: the same JSON as a webhook delivery's body
/// (which the core writes; a test below holds the two together).
pub fn event_view(event: &Event) -> EventView {
    let changes = &event.data.changes;
    EventView {
        id: event.id.clone(),
        event_type: event.event_type.clone(),
        timestamp: event.timestamp.clone(),
        workspace: event.workspace.clone(),
        data: EventDataView {
            kind: event.data.kind.clone(),
            id: event.data.id.clone(),
            version: event.data.version,
            changes: changes.iter().map(Into::into).collect(),
            actor: ActorView {
                user_id: event.data.actor.user_id.clone(),
                key_id: event.data.actor.key_id.clone(),
                request_id: event.data.actor.request_id.clone(),
                client_request_id: event.data.actor.client_request_id.clone(),
            },
        },
    }
}

/// A webhook subscription (its secret is shown only when made).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    #[schema(example = "wh_0b4f0c1a6a1e4d5c9b7f3e2d1c0b9a88")]
    pub id: String,
    pub url: String,
    /// Event types or patterns (`icp.updated`, `client.*`, `*`).
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Why the server disabled it (the endpoint answered 410).
    pub disabled_reason: Option<String>,
    /// Until when deliveries are also signed with the secret before the
    /// last rotation.
    pub previous_secret_valid_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Deliveries by state (only when one subscription is read).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub deliveries: Option<DeliveryCountsView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryCountsView {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// A subscription with its secret: shown once, when made or rotated.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks). Not shown again.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookPage {
    pub items: Vec<WebhookView>,
    /// Always null: a workspace has at most 100 subscriptions, all on one page.
    pub next: Option<String>,
}

/// An event type or pattern: `<kind>.<action>`, with `*` for any kind or
/// action, or `*` alone.
#[derive(Debug, Serialize, ToSchema)]
#[schema(
    pattern = "^(\\*|(icp|client|profile|profile_list|suppression|\\*)\\.(created|updated|deleted|\\*))$",
    example = "icp.*"
)]
pub struct EventTypePattern(String);

/// A webhook subscription to create.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct WebhookCreateRequest {
    /// `https://…` (plain http and internal addresses only with
    /// `--webhook-allow-private`; the host must resolve, to public
    /// addresses); an ASCII host (IDNs in punycode), no credentials, no
    /// fragment.
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = "^https?://([A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*|\\[[0-9A-Fa-f:.]+\\])(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?][^\\s#\\u0000]*)?$",
        example = "https://hooks.example.com/clientele"
    )]
    url: String,
    /// 1 to 50 event types or patterns.
    #[schema(min_items = 1, max_items = 50)]
    event_types: Vec<EventTypePattern>,
    #[schema(max_length = 500)]
    description: Option<String>,
    /// Default true.
    #[schema(nullable = false)]
    enabled: Option<bool>,
}

/// The fields to change; at least one.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(min_properties = 1)]
#[allow(dead_code)]
pub struct WebhookPatchRequest {
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 2048,
        pattern = "^https?://([A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*|\\[[0-9A-Fa-f:.]+\\])(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?][^\\s#\\u0000]*)?$"
    )]
    url: Option<String>,
    #[schema(nullable = false, min_items = 1, max_items = 50)]
    event_types: Option<Vec<EventTypePattern>>,
    #[schema(max_length = 500)]
    description: Option<String>,
    /// Enabling clears `disabledReason`; events committed while it was
    /// disabled are not sent.
    #[schema(nullable = false)]
    enabled: Option<bool>,
}

/// How long the old secret keeps signing beside the new one.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct RotateRequest {
    /// Default 86400 (a day); 0 stops the old secret at once.
    #[schema(nullable = false, minimum = 0, maximum = 604800)]
    previous_secret_valid_seconds: Option<i64>,
}

/// Which deliveries to send again.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub struct ReplayRequest {
    /// Deliveries of events since then (RFC 3339).
    #[schema(format = DateTime, example = "2026-12-01T00:00:00Z")]
    since: String,
    /// Also send again those that were delivered (default false: failed only).
    #[schema(nullable = false)]
    include_delivered: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResult {
    /// How many deliveries are pending again.
    pub replayed: u64,
}

/// What a test send got.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestSendView {
    /// The id of the `webhook.test` event sent.
    pub event_id: String,
    /// True when the endpoint answered 2xx.
    pub delivered: bool,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why there was no answer.
    pub error: Option<String>,
}

/// One attempt to deliver an event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub id: String,
    pub event_id: String,
    /// 1 for a delivery's first attempt.
    pub attempt: i32,
    pub at: String,
    pub status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// `delivered`, `retry`, `failed`, `disabled` or `test`.
    pub outcome: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptPage {
    pub items: Vec<AttemptView>,
    /// Pass as `after` for the next page; null when this page was the last.
    pub next: Option<String>,
}

fn webhook_view(webhook: &Webhook, counts: Option<DeliveryCounts>) -> WebhookView {
    WebhookView {
        id: webhook.id.clone(),
        url: webhook.url.clone(),
        event_types: webhook.event_types.clone(),
        description: webhook.description.clone(),
        enabled: webhook.enabled,
        disabled_reason: webhook.disabled_reason.clone(),
        previous_secret_valid_until: webhook.previous_secret_valid_until.as_ref().map(iso_millis),
        created_at: iso_millis(&webhook.created_at),
        updated_at: iso_millis(&webhook.updated_at),
        deliveries: counts.map(|counts| DeliveryCountsView {
            pending: counts.pending,
            delivered: counts.delivered,
            failed: counts.failed,
        }),
    }
}

fn with_secret(status: StatusCode, made: &WithSecret) -> Response {
    (
        status,
        Json(WebhookWithSecret {
            webhook: webhook_view(&made.webhook, None),
            secret: made.secret.clone(),
        }),
    )
        .into_response()
}

/// Subscribe a URL to events. The answer holds the signing secret, once.
#[utoipa::path(
    post,
    path = "/clientele/v1/webhooks",
    tag = "Clientele events and webhooks",
    security(("bearer" = [])),
    request_body(content = WebhookCreateRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The subscription, with its secret (shown only now)", body = WebhookWithSecret),
        (status = 400, description = "Invalid body; every invalid field is listed by JSON pointer",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 403, description = "The key is not an admin key",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn create_webhook(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Clientele>,
    JsonBody(body, ..): JsonBody<Clientele>,
) -> ClienteleResult {
    let made = app.webhooks.create(&principal, &body).await?;
    Ok(with_secret(StatusCode::CREATED, &made))
}

/// The workspace's subscriptions, oldest first.
#[utoipa::path(
    get,
    path = "/clientele/v1/webhooks",
    tag = "Clientele events and webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every subscription of the workspace", body = WebhookPage),
        (status = 403, description = "The key is not an admin key",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn list_webhooks(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Clientele>,
) -> ClienteleResult {
    let webhooks = app.webhooks.list(&principal).await?;
    Ok(Json(WebhookPage {
        items: webhooks
            .iter()
            .map(|webhook| webhook_view(webhook, None))
            .collect(),
        next: None,
    })
    .into_response())
}

/// One subscription, with its deliveries counted by state.
#[utoipa::path(
    get,
    path = "/clientele/v1/webhooks/{id}",
    tag = "Clientele events and webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id (wh_…)")),
    responses(
        (status = 200, description = "The subscription", body = WebhookView),
        (status = 403, description = "The key is not an admin key",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription in the caller's workspace",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn get_webhook(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Clientele>,
    PathId(id, ..): PathId<Clientele>,
) -> ClienteleResult {
    let (webhook, counts) = app.webhooks.get(&principal, &id).await?;
    Ok(Json(webhook_view(&webhook, Some(counts))).into_response())
}

/// Change a subscription's URL, event types, description or state.
#[utoipa::path(
    patch,
    path = "/clientele/v1/webhooks/{id}",
    tag = "Clientele events and webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id (wh_…)")),
    request_body(content = WebhookPatchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated subscription", body = WebhookView),
        (status = 400, description = "Invalid body; every invalid field is listed by JSON pointer",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 403, description = "The key is not an admin key",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription in the caller's workspace",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn update_webhook(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Clientele>,
    PathId(id, ..): PathId<Clientele>,
    JsonBody(body, ..): JsonBody<Clientele>,
) -> ClienteleResult {
    let webhook = app.webhooks.update(&principal, &id, &body).await?;
    Ok(Json(webhook_view(&webhook, None)).into_response())
}

/// Delete a subscription, with its pending deliveries and its attempts.
#[utoipa::path(
    delete,
    path = "/clientele/v1/webhooks/{id}",
    tag = "Clientele events and webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id (wh_…)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The key is not an admin key",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription in the caller's workspace",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn delete_webhook(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Clientele>,
    PathId(id, ..): PathId<Clientele>,
) -> ClienteleResult {
    app.webhooks.delete(&principal, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Give a subscription a new secret (shown once). The old one keeps
/// signing beside it (two `v1,` signatures) for the grace asked, a day by
/// default. Send `{}` for the default.
#[utoipa::path(
    post,
    path = "/clientele/v1/webhooks/{id}/rotate-secret",
    tag = "Clientele events and webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id (wh_…)")),
    request_body(content = RotateRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The subscription with its new secret (shown only now)", body = WebhookWithSecret),
        (status = 400, description = "Invalid body",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription in the caller's workspace",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn rotate_secret(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Clientele>,
    PathId(id, ..): PathId<Clientele>,
    JsonBody(body, ..): JsonBody<Clientele>,
) -> ClienteleResult {
    let made = app.webhooks.rotate(&principal, &id, &body).await?;
    Ok(with_secret(StatusCode::OK, &made))
}

/// Send a `webhook.test` event to the subscription now, signed like any
/// delivery, and report what the endpoint answered.
#[utoipa::path(
    post,
    path = "/clientele/v1/webhooks/{id}/test",
    tag = "Clientele events and webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id (wh_…)")),
    responses(
        (status = 200, description = "What the endpoint answered", body = TestSendView),
        (status = 404, description = "No such subscription in the caller's workspace",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn send_test(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Clientele>,
    PathId(id, ..): PathId<Clientele>,
) -> ClienteleResult {
    let TestResult { event_id, result } = app.webhooks.test(&principal, &id).await?;
    Ok(Json(TestSendView {
        event_id,
        delivered: result
            .status
            .is_some_and(|status| (200..300).contains(&status)),
        status: result.status,
        latency_ms: u64::try_from(result.latency.as_millis()).unwrap_or(u64::MAX),
        error: result.error,
    })
    .into_response())
}

/// The subscription's delivery attempts, oldest first (kept for the
/// configured retention, 30 days by default).
#[utoipa::path(
    get,
    path = "/clientele/v1/webhooks/{id}/attempts",
    tag = "Clientele events and webhooks",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The subscription's id (wh_…)"),
        ("after" = Option<String>, Query, pattern = "^([0-9]{1,18})?$", description = "The `next` of the previous page; from the first attempt when absent or empty"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Attempts per page (default 100)"),
    ),
    responses(
        (status = 200, description = "A page of attempts", body = AttemptPage),
        (status = 400, description = "Invalid query parameters",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription in the caller's workspace",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn list_attempts(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Clientele>,
    PathId(id, ..): PathId<Clientele>,
    QueryPairs(pairs, ..): QueryPairs<Clientele>,
) -> ClienteleResult {
    let [after, limit] = parameters(pairs, ["after", "limit"])?;
    let (attempts, next) = app
        .webhooks
        .attempts(&principal, &id, after.as_deref(), limit.as_deref())
        .await?;
    Ok(Json(AttemptPage {
        items: attempts.iter().map(attempt_view).collect(),
        next,
    })
    .into_response())
}

fn attempt_view(attempt: &Attempt) -> AttemptView {
    AttemptView {
        id: attempt.id.to_string(),
        event_id: attempt.attempt.event_id.clone(),
        attempt: attempt.attempt.attempt,
        at: iso_millis(&attempt.attempt.at),
        status: attempt.attempt.status,
        latency_ms: attempt.attempt.latency_ms,
        error: attempt.attempt.error.clone(),
        outcome: attempt.attempt.outcome.clone(),
    }
}

/// Send again the deliveries of events since a time that failed (and,
/// with `includeDelivered`, those that succeeded), in order per record.
#[utoipa::path(
    post,
    path = "/clientele/v1/webhooks/{id}/replay",
    tag = "Clientele events and webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription's id (wh_…)")),
    request_body(content = ReplayRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "How many deliveries are pending again", body = ReplayResult),
        (status = 400, description = "Invalid body; every invalid field is listed by JSON pointer",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription in the caller's workspace",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn replay(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Clientele>,
    PathId(id, ..): PathId<Clientele>,
    JsonBody(body, ..): JsonBody<Clientele>,
) -> ClienteleResult {
    let (since, include_delivered) = crate::core::webhooks::read_replay(&body)?;
    let replayed = app
        .webhooks
        .replay(&principal, Some(&id), since, include_delivered)
        .await?;
    Ok(Json(ReplayResult { replayed }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::events::{Actor, EventData};
    use crate::core::records::ChangedField;
    use serde_json::Value;

    #[test]
    fn the_feed_shows_an_event_as_a_webhook_delivers_it() {
        let event = Event {
            id: "evt_0000000000000007".into(),
            event_type: "profile.updated".into(),
            timestamp: "2026-12-06T21:00:00.000Z".into(),
            workspace: "acme".into(),
            data: EventData {
                kind: "profile".into(),
                id: "42".into(),
                version: 3,
                changes: vec![ChangedField {
                    field: "email".into(),
                    old: "a@x.io".into(),
                    new: "b@x.io".into(),
                }],
                actor: Actor {
                    user_id: "user_1".into(),
                    key_id: Some("key_1".into()),
                    request_id: "req".into(),
                    client_request_id: Some("mine".into()),
                },
            },
        };
        let delivered: Value = serde_json::from_str(&event.to_json()).expect("JSON");
        let listed = serde_json::to_value(event_view(&event)).expect("JSON");
        assert_eq!(listed, delivered);
        assert_eq!(delivered["type"], "profile.updated");
        assert_eq!(delivered["id"], "evt_0000000000000007");
        assert_eq!(
            delivered["data"]["changes"],
            serde_json::json!([{"field": "email", "old": "a@x.io", "new": "b@x.io"}])
        );
    }
}
