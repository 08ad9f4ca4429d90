//! The Lance ICP contract at `/api/v1/entities/icps`: list, create, get,
//! PATCH and delete, with Lance's error envelope
//! `{"error":{"code","message","details"}}`.

pub mod leads;
pub mod wire;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::ETAG;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::error::{DomainError, FieldPath, RecordKind};
use crate::core::fields::{Declared, View};
use crate::core::icp::{Icp, has_regex_criteria};
use crate::core::records::Record;
use crate::http::cpu::run_heavy;
use crate::http::extract::{Caller, IfMatch, JsonBody, PathId, QueryPairs};
use crate::http::idempotency::{Idempotent, Reply, Started};
use crate::http::{AppState, Failure, Surface};
use wire::{CreateIcpRequest, IcpHistoryEntryView, IcpHistoryPage, IcpView, UpdateIcpRequest};

/// Marker for the Lance surface.
pub struct Lance;

pub(crate) type LanceResult = Result<Response, Failure<Lance>>;

/// Lance's error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct LanceError {
    pub error: LanceErrorBody,
}

/// The body of Lance's error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct LanceErrorBody {
    /// `BAD_REQUEST`, `UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND`, `INTERNAL_ERROR`, …
    pub code: &'static str,
    pub message: String,
    /// Every invalid field, for `BAD_REQUEST`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<LanceErrorDetail>>,
    /// The server's id of this request (the response's `X-Request-Id`), on
    /// internal errors.
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One invalid field.
#[derive(Debug, Serialize, ToSchema)]
pub struct LanceErrorDetail {
    /// Keys and indexes from the body's root, e.g. `["customFilterCriteria", 0, "value"]`.
    #[schema(value_type = Vec<serde_json::Value>)]
    pub path: FieldPath,
    pub message: String,
}

fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Icp => "ICP",
        RecordKind::Client => "client",
        RecordKind::HoodProfile => "profile",
        RecordKind::HoodProfileList => "profile list",
        RecordKind::HoodSuppression => "suppression",
        RecordKind::HoodProfileImport => "profile import",
        RecordKind::Person => "person",
        RecordKind::Company => "company",
        RecordKind::LeadList => "lead list",
        RecordKind::Webhook => "webhook",
        RecordKind::Event => "event feed",
    }
}

impl Surface for Lance {
    const NAME: &'static str = "lance";
    const PREFIX: &'static str = "/api/";

    type ErrorBody = LanceError;

    fn error_body(error: &DomainError, status: StatusCode, request_id: &str) -> LanceError {
        let (message, details) = match error {
            DomainError::Invalid(errors) | DomainError::InvalidQuery(errors) => (
                if matches!(error, DomainError::InvalidQuery(_)) {
                    "Invalid query parameters".to_owned()
                } else {
                    "Invalid request body".to_owned()
                },
                Some(
                    errors
                        .iter()
                        .map(|error| LanceErrorDetail {
                            path: error.path.clone(),
                            message: error.message.clone(),
                        })
                        .collect(),
                ),
            ),
            DomainError::Unprocessable(errors) => (
                "The request cannot be processed as it stands".to_owned(),
                Some(
                    errors
                        .iter()
                        .map(|error| LanceErrorDetail {
                            path: error.path.clone(),
                            message: error.message.clone(),
                        })
                        .collect(),
                ),
            ),
            DomainError::Conflict(reason) => (reason.clone(), None),
            DomainError::MalformedBody(detail) => (
                "Invalid request body".to_owned(),
                Some(vec![LanceErrorDetail {
                    path: FieldPath::root(),
                    message: format!("Malformed JSON: {detail}"),
                }]),
            ),
            DomainError::UnsupportedMediaType(detail) => (detail.clone(), None),
            DomainError::PayloadTooLarge { limit } => {
                (format!("Request body must not exceed {limit} bytes"), None)
            }
            DomainError::NoSuchRoute => ("No route matches this path".to_owned(), None),
            DomainError::MethodNotAllowed => {
                ("This path does not support this method".to_owned(), None)
            }
            DomainError::BodyTimeout { seconds } => (
                format!("The request body was not received within {seconds} s"),
                None,
            ),
            DomainError::Unauthenticated(detail) => (detail.clone(), None),
            DomainError::Forbidden { kind } => (
                format!("You do not have access to this {}", kind_name(*kind)),
                None,
            ),
            DomainError::NotFound { kind, id } => {
                (format!("{} not found: {id}", kind_name(*kind)), None)
            }
            DomainError::PreconditionFailed { current_etag } => (
                format!(
                    "The record has changed since you read it (If-Match does not match the current ETag {current_etag}); GET it again and retry"
                ),
                None,
            ),
            DomainError::InvalidHeader { name, message } => (
                format!("Invalid {name} header: {message}"),
                None,
            ),
            DomainError::IdempotencyKeyReused => (
                "This Idempotency-Key was already used with a different request; use a new key for a new request".to_owned(),
                None,
            ),
            DomainError::IdempotencyKeyInUse => (
                "A request with this Idempotency-Key is still being processed; retry once it has finished".to_owned(),
                None,
            ),
            DomainError::RateLimited { retry_after_secs } => (
                format!("Rate limit exceeded; retry in {retry_after_secs} s"),
                None,
            ),
            DomainError::Unavailable(_) => (
                "The service is temporarily unavailable; retry shortly".to_owned(),
                None,
            ),
            DomainError::Internal(_) => (
                format!("An unexpected server error occurred (request id {request_id})"),
                None,
            ),
        };
        // Lance's code is a function of the status.
        let code = match status {
            StatusCode::BAD_REQUEST => "BAD_REQUEST",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::FORBIDDEN => "FORBIDDEN",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
            StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT",
            StatusCode::PRECONDITION_FAILED => "PRECONDITION_FAILED",
            StatusCode::CONFLICT => "CONFLICT",
            StatusCode::UNPROCESSABLE_ENTITY => "UNPROCESSABLE_ENTITY",
            StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
            StatusCode::TOO_MANY_REQUESTS => "TOO_MANY_REQUESTS",
            StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
            _ => "INTERNAL_ERROR",
        };
        let internal = status == StatusCode::INTERNAL_SERVER_ERROR;
        LanceError {
            error: LanceErrorBody {
                code,
                message,
                details,
                request_id: internal.then(|| request_id.to_owned()),
            },
        }
    }
}

/// The routes of this surface, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_icps, create_icp))
        .routes(routes!(get_icp, update_icp, delete_icp))
        .routes(routes!(icp_history))
        .merge(leads::router())
}

/// A record as Lance answers it, with its version as `ETag`.
pub(crate) fn record_reply<T: crate::core::fields::Declared>(
    status: StatusCode,
    record: &Record<T>,
) -> Reply {
    Reply::json(status, &View::<T, Lance>::of(record)).with_header(ETAG, &record.etag())
}

/// Reads an ICP body; one that carries regular expressions is read on the
/// bounded heavy-work pool, since compiling them is what costs.
async fn read_body<T: Send + 'static>(
    body: serde_json::Value,
    read: fn(&serde_json::Value) -> Result<T, DomainError>,
) -> Result<T, DomainError> {
    if has_regex_criteria(&body) {
        run_heavy(move || read(&body)).await?
    } else {
        read(&body)
    }
}

/// Lance's records have UUID ids, stored in lower-case hyphenated form;
/// anything else names no record of kind `T`.
pub(crate) fn uuid_id<T: crate::core::records::Document>(id: &str) -> Result<String, DomainError> {
    uuid::Uuid::parse_str(id)
        .map(|uuid| uuid.hyphenated().to_string())
        .map_err(|_| DomainError::NotFound {
            kind: T::KIND,
            id: id.to_owned(),
        })
}

/// List the ICPs the caller can access (all of the workspace for admins).
#[utoipa::path(
    get,
    path = "/api/v1/entities/icps",
    tag = "Lance ICPs",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ICPs the caller can access", body = Vec<IcpView>),
    )
)]
async fn list_icps(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
) -> LanceResult {
    let records = app.records.list::<Icp>(&principal).await?;
    let views: Vec<View<Icp, Lance>> = records.iter().map(View::of).collect();
    Ok(Json(views).into_response())
}

/// Create an ICP; the caller is always added to `userIds`.
#[utoipa::path(
    post,
    path = "/api/v1/entities/icps",
    tag = "Lance ICPs",
    security(("bearer" = [])),
    // The seed's ICP, shown by /docs as the body to try.
    request_body(content = CreateIcpRequest, content_type = "application/json",
        example = json!({
            "name": "Enterprise Tech Leaders",
            "description": "C-level and VP-level technology leaders at enterprise companies",
            "userIds": ["user_abc123", "user_def456"],
            "activeUntil": "2024-12-31T23:59:59.000Z",
            "leadProviderCriteria": [{
                "provider": "baseProvider",
                "type": "person",
                "filters": {"job_titles": ["CTO", "VP Engineering"], "company_size": ["501-1000", "1001-5000"]}
            }]
        })),
    responses(
        (status = 201, description = "The new ICP", body = IcpView,
            headers(("ETag" = String, description = "Version of the ICP"))),
        (status = 400, description = "Invalid body; every invalid field is listed", body = LanceError),
        (status = 413, description = "Body over 1 MiB", body = LanceError),
        (status = 415, description = "Body is not JSON", body = LanceError),
    )
)]
async fn create_icp(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    idempotent: Idempotent<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let icp = read_body(body, Icp::read_new::<Lance>)
        .await?
        .created_by(&principal);
    let keeper = writing.keeper(|record| record_reply(StatusCode::CREATED, record));
    let record = app
        .records
        .create_keeping(&principal, |_| icp, keeper)
        .await?;
    Ok(writing.respond(record_reply(StatusCode::CREATED, &record)))
}

/// Get one ICP.
#[utoipa::path(
    get,
    path = "/api/v1/entities/icps/{id}",
    tag = "Lance ICPs",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of the ICP; any other id names no ICP (404)")),
    responses(
        (status = 200, description = "The ICP", body = IcpView,
            headers(("ETag" = String, description = "Version of the ICP"))),
        (status = 403, description = "Caller is not among the ICP's users and not an admin", body = LanceError),
        (status = 404, description = "No such ICP in the caller's workspace", body = LanceError),
    )
)]
async fn get_icp(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
) -> LanceResult {
    let id = uuid_id::<Icp>(&id)?;
    let record = app.records.get::<Icp>(&principal, &id).await?;
    Ok(record_reply(StatusCode::OK, &record).into_response())
}

/// Update an ICP partially: only the fields in the body change.
#[utoipa::path(
    patch,
    path = "/api/v1/entities/icps/{id}",
    tag = "Lance ICPs",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "UUID of the ICP; any other id names no ICP (404)"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the ICP's ETag is still this one"),
    ),
    // The seed's own request, 200 and 400 examples (tests/api/icps.rs
    // checks the server answers them), shown by /docs.
    request_body(content = UpdateIcpRequest, content_type = "application/json",
        example = json!({
            "name": "Updated ICP Name",
            "leadsPerList": 50,
            "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": 5}]
        })),
    responses(
        (status = 200, description = "The whole updated ICP", body = IcpView,
            headers(("ETag" = String, description = "New version of the ICP")),
            example = json!({
                "id": "550e8400-e29b-41d4-a716-446655440000",
                "name": "Updated ICP Name",
                "description": "C-level and VP-level technology leaders at enterprise companies",
                "createdAt": "2024-01-15T10:30:00.000Z",
                "updatedAt": "2024-01-25T09:15:00.000Z",
                "userIds": ["user_abc123", "user_def456"],
                "leadsPerList": 50,
                "activeUntil": "2024-12-31T23:59:59.000Z",
                "leadProviderCriteria": [{
                    "provider": "baseProvider",
                    "type": "person",
                    "filters": {"job_titles": ["CTO", "VP Engineering"], "company_size": ["501-1000", "1001-5000"]}
                }],
                "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": 5}],
                "crmFilters": null
            })),
        (status = 400, description = "Invalid body; every invalid field is listed", body = LanceError,
            example = json!({"error": {
                "code": "BAD_REQUEST",
                "message": "Invalid request body",
                "details": [
                    {"path": ["leadsPerList"], "message": "Expected number, received string"},
                    {"path": ["customFilterCriteria", 0, "value"], "message": "Expected number, received string"}
                ]
            }})),
        (status = 403, description = "Caller is not among the ICP's users and not an admin", body = LanceError),
        (status = 404, description = "No such ICP in the caller's workspace", body = LanceError),
        (status = 412, description = "If-Match does not match the current ETag", body = LanceError),
        (status = 413, description = "Body over 1 MiB", body = LanceError),
        (status = 415, description = "Body is not JSON", body = LanceError),
    )
)]
async fn update_icp(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Lance>,
    JsonBody(body, ..): JsonBody<Lance>,
) -> LanceResult {
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let patch = read_body(body, Icp::read_patch::<Lance>).await?;
    let id = uuid_id::<Icp>(&id)?;
    let keeper = writing.keeper(|record| record_reply(StatusCode::OK, record));
    let record = app
        .records
        .update_keeping::<Icp>(
            &principal,
            &id,
            &precondition,
            |icp| patch.apply(icp),
            keeper,
        )
        .await?;
    Ok(writing.respond(record_reply(StatusCode::OK, &record)))
}

/// Delete an ICP.
#[utoipa::path(
    delete,
    path = "/api/v1/entities/icps/{id}",
    tag = "Lance ICPs",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "UUID of the ICP; any other id names no ICP (404)"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the ICP's ETag is still this one"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Caller is not among the ICP's users and not an admin", body = LanceError),
        (status = 404, description = "No such ICP in the caller's workspace", body = LanceError),
        (status = 412, description = "If-Match does not match the current ETag", body = LanceError),
    )
)]
async fn delete_icp(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Lance>,
) -> LanceResult {
    let writing = match idempotent.begin(&app, &principal, None).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let id = uuid_id::<Icp>(&id)?;
    let keeper = writing.keeper(|()| Reply::empty(StatusCode::NO_CONTENT));
    app.records
        .delete_keeping::<Icp>(&principal, &id, &precondition, keeper)
        .await?;
    Ok(writing.respond(Reply::empty(StatusCode::NO_CONTENT)))
}

/// `limit` and `offset` of a history request, each at most once; other
/// parameters are ignored, as they always were.
fn read_history_paging(pairs: &[(String, String)]) -> Result<(u64, u64), DomainError> {
    let mut errors = Vec::new();
    let mut read = |name: &str, range: std::ops::RangeInclusive<u64>, default: u64| {
        let mut values = pairs.iter().filter(|(key, _)| key == name);
        let value = match (values.next(), values.next()) {
            (None, _) => return default,
            (Some(_), Some(_)) => {
                errors.push((name.to_owned(), "Must be given at most once".to_owned()));
                return default;
            }
            (Some((_, value)), None) => value,
        };
        match value.parse::<u64>() {
            Ok(number) if range.contains(&number) => number,
            _ => {
                errors.push((
                    name.to_owned(),
                    format!(
                        "Expected a whole number between {} and {}",
                        range.start(),
                        range.end()
                    ),
                ));
                default
            }
        }
    };
    let limit = read("limit", 1..=1000, 50);
    // Offsets are int64 in the document (and in storage).
    let offset = read("offset", 0..=i64::MAX as u64, 0);
    if errors.is_empty() {
        Ok((limit, offset))
    } else {
        Err(DomainError::InvalidQuery(
            errors
                .into_iter()
                .map(|(name, message)| crate::core::error::FieldError {
                    path: FieldPath::root().key(&name),
                    message,
                })
                .collect(),
        ))
    }
}

/// Paging of a history request.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Entries per page, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub limit: Option<u64>,
    /// Entries to skip (default 0).
    #[param(minimum = 0, maximum = 9223372036854775807_u64, nullable = false)]
    pub offset: Option<u64>,
}

/// The audit trail of an ICP: every create, update and delete, who made it,
/// when, and each changed field's old and new value. Readable by whoever
/// can read the ICP; after a delete, by admins.
#[utoipa::path(
    get,
    path = "/api/v1/entities/icps/{id}/history",
    tag = "Lance ICPs",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "UUID of the ICP; any other id names no ICP (404)"), HistoryQuery),
    responses(
        (status = 200, description = "A page of the ICP's history, oldest first", body = IcpHistoryPage),
        (status = 400, description = "Invalid paging", body = LanceError),
        (status = 403, description = "Caller is not among the ICP's users and not an admin", body = LanceError),
        (status = 404, description = "No such ICP (or history) in the caller's workspace", body = LanceError),
    )
)]
async fn icp_history(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Lance>,
    PathId(id, ..): PathId<Lance>,
    QueryPairs(pairs, ..): QueryPairs<Lance>,
) -> LanceResult {
    let id = uuid_id::<Icp>(&id)?;
    history_page::<Icp>(&app, &principal, &id, &pairs).await
}

/// A page of the audit trail of the record `id` of kind `T`, in the
/// ICP history's format (every Lance kind's history reads the same).
pub(crate) async fn history_page<T: crate::core::records::Document>(
    app: &AppState,
    principal: &crate::core::auth::Principal,
    id: &str,
    pairs: &[(String, String)],
) -> LanceResult {
    let (limit, offset) = read_history_paging(pairs)?;
    let page = app
        .records
        .history::<T>(principal, id, offset, limit)
        .await?;
    Ok(Json(IcpHistoryPage {
        entries: page.entries.iter().map(IcpHistoryEntryView::from).collect(),
        total: page.total,
        limit,
        offset,
    })
    .into_response())
}
