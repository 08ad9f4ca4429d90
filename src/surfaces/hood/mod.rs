//! The Ocamba Hood contract at `/v1/hood`: profiles (create, list with
//! filters/sort/paging, get, PATCH answering 204, idempotent delete,
//! unsubscribe) and the profile lists that a profile's `lists` name, with
//! Hood's error body `{"code","title","message","trace_id"}`.

pub mod imports;
pub mod wire;

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::ETAG;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::auth::Principal;
use crate::core::error::{DomainError, RecordKind};
use crate::core::fields::{Declared, View};
use crate::core::hood::{self, Profile, ProfileList};
use crate::core::ratelimit::{RatePolicy, Window};
use crate::core::records::{Document, Precondition, Record};
use crate::http::extract::{Caller, IfMatch, JsonBody, PathId, QueryPairs};
use crate::http::idempotency::{Idempotent, Reply, Started};
use crate::http::{AppState, Failure, Surface};
use wire::{
    CreateHoodProfileRequest, HoodHistoryEntry, HoodHistoryPage, HoodProfileListPage,
    HoodProfileListPatchRequest, HoodProfileListRequest, HoodProfileListView, HoodProfilePage,
    HoodProfileView, UpdateHoodProfileRequest,
};

/// Marker for the Hood surface.
pub struct Hood;

pub(crate) type HoodResult = Result<Response, Failure<Hood>>;

/// Hood's error body. A 500 has no `message` *(vendor)*. `errors` lists
/// every invalid field of a 400 (our addition; Hood's `message` alone
/// cannot point at fields).
#[derive(Debug, Serialize, ToSchema)]
pub struct HoodError {
    #[schema(example = 400)]
    pub code: u16,
    #[schema(example = "Bad request.")]
    pub title: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "The request is not valid.")]
    pub message: Option<String>,
    /// The server's id of this request (the response's `X-Request-Id`),
    /// by which the logs find it; never the id the client sent.
    #[schema(example = "99a84211-f73d-4ff8-acdf-eb3e06bb9d62")]
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<HoodFieldError>>,
}

/// One invalid field of a 400.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoodFieldError {
    /// Where, e.g. `lists[0]` or `custom_properties.clicker`.
    pub field: String,
    pub message: String,
}

fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::HoodProfileList => "Profile list",
        RecordKind::HoodProfile => "Profile",
        RecordKind::HoodProfileImport => "Import",
        RecordKind::Webhook => "Webhook",
        RecordKind::Event => "Event feed",
        _ => "Record",
    }
}

impl Surface for Hood {
    const NAME: &'static str = "hood";
    const PREFIX: &'static str = "/v1/hood/";

    type ErrorBody = HoodError;

    /// Hood's documented limits: burst 10/s, steady 150/min.
    fn default_rate_policy() -> Option<RatePolicy> {
        Some(RatePolicy {
            windows: vec![
                Window {
                    limit: 10,
                    length: Duration::from_secs(1),
                },
                Window {
                    limit: 150,
                    length: Duration::from_secs(60),
                },
            ],
        })
    }

    fn error_body(error: &DomainError, status: StatusCode, request_id: &str) -> HoodError {
        let (message, errors) = match error {
            DomainError::Invalid(fields) | DomainError::InvalidQuery(fields) => {
                let details: Vec<String> = fields
                    .iter()
                    .map(|field| format!("{}: {}", field.path, field.message))
                    .collect();
                (
                    Some(format!("The request is not valid. {}", details.join("; "))),
                    Some(
                        fields
                            .iter()
                            .map(|field| HoodFieldError {
                                field: field.path.to_string(),
                                message: field.message.clone(),
                            })
                            .collect(),
                    ),
                )
            }
            DomainError::Unprocessable(fields) => {
                let details: Vec<String> = fields
                    .iter()
                    .map(|field| format!("{}: {}", field.path, field.message))
                    .collect();
                (
                    Some(format!("The request cannot be processed. {}", details.join("; "))),
                    Some(
                        fields
                            .iter()
                            .map(|field| HoodFieldError {
                                field: field.path.to_string(),
                                message: field.message.clone(),
                            })
                            .collect(),
                    ),
                )
            }
            DomainError::Conflict(reason) => (Some(reason.clone()), None),
            DomainError::MalformedBody(detail) => (
                Some(format!(
                    "The request is not valid. Malformed JSON: {detail}"
                )),
                None,
            ),
            DomainError::UnsupportedMediaType(detail) => (Some(detail.clone()), None),
            DomainError::PayloadTooLarge { limit } => (
                Some(format!("The request body must not exceed {limit} bytes.")),
                None,
            ),
            DomainError::NoSuchRoute => (Some("No route matches this path.".to_owned()), None),
            DomainError::MethodNotAllowed => (
                Some("This path does not support this method.".to_owned()),
                None,
            ),
            DomainError::BodyTimeout { seconds } => (
                Some(format!(
                    "The request body was not received within {seconds} second(s)."
                )),
                None,
            ),
            DomainError::Unauthenticated(detail) => (Some(detail.clone()), None),
            DomainError::Forbidden { kind } => (
                Some(format!(
                    "You do not have access to this {}.",
                    kind_name(*kind)
                )),
                None,
            ),
            DomainError::NotFound { kind, id } => (
                Some(format!("{} {id} does not exist.", kind_name(*kind))),
                None,
            ),
            DomainError::PreconditionFailed { current_etag } => (
                Some(format!(
                    "The record has changed since you read it; its current ETag is {current_etag}."
                )),
                None,
            ),
            DomainError::InvalidHeader { name, message } => (
                Some(format!("The request is not valid. {name}: {message}")),
                None,
            ),
            DomainError::IdempotencyKeyReused => (
                Some("This Idempotency-Key was already used with a different request.".to_owned()),
                None,
            ),
            DomainError::IdempotencyKeyInUse => (
                Some(
                    "A request with this Idempotency-Key is still being processed; retry once it has finished."
                        .to_owned(),
                ),
                None,
            ),
            DomainError::RateLimited { retry_after_secs } => (
                Some(format!(
                    "Rate limit exceeded; retry in {retry_after_secs} second(s)."
                )),
                None,
            ),
            DomainError::Unavailable(_) => (
                Some("The service is temporarily unavailable; retry shortly.".to_owned()),
                None,
            ),
            // A 500 has no message (vendor).
            DomainError::Internal(_) => (None, None),
        };
        // Hood's title is a function of the status.
        let title = match status {
            StatusCode::BAD_REQUEST => "Bad request.",
            StatusCode::UNAUTHORIZED => "Unauthorized.",
            StatusCode::FORBIDDEN => "Forbidden.",
            StatusCode::NOT_FOUND => "Not found.",
            StatusCode::METHOD_NOT_ALLOWED => "Method not allowed.",
            StatusCode::REQUEST_TIMEOUT => "Request timeout.",
            StatusCode::PRECONDITION_FAILED => "Precondition failed.",
            StatusCode::CONFLICT => "Conflict.",
            StatusCode::UNPROCESSABLE_ENTITY => "Unprocessable entity.",
            StatusCode::PAYLOAD_TOO_LARGE => "Payload too large.",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported media type.",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests.",
            StatusCode::SERVICE_UNAVAILABLE => "Service unavailable.",
            _ => "Internal server error.",
        };
        HoodError {
            code: status.as_u16(),
            title,
            message,
            trace_id: request_id.to_owned(),
            errors,
        }
    }
}

/// The routes of this surface, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_profiles, create_profile))
        .routes(routes!(get_profile, update_profile, delete_profile))
        .routes(routes!(unsubscribe_profile))
        .routes(routes!(profile_history))
        .routes(routes!(list_profile_lists, create_profile_list))
        .routes(routes!(
            get_profile_list,
            update_profile_list,
            delete_profile_list
        ))
        .merge(imports::router())
}

/// Hood ids are numeric strings; anything else names no record.
fn numeric_id(kind: RecordKind, id: &str) -> Result<String, DomainError> {
    let valid = !id.is_empty() && id.len() <= 19 && id.bytes().all(|byte| byte.is_ascii_digit());
    if valid {
        Ok(id.to_owned())
    } else {
        Err(DomainError::NotFound {
            kind,
            id: id.to_owned(),
        })
    }
}

/// List profiles.
#[utoipa::path(
    get,
    path = "/v1/hood/profiles",
    tag = "Ocamba Hood profiles",
    security(("bearer" = [])),
    params(
        ("page" = Option<String>, Query, pattern = r"^[ \t]*\+?0*[1-9][0-9]{0,17}[ \t]*(,[ \t]*\+?0*([1-9][0-9]{0,2}|1000)[ \t]*)?$",
            description = "`N` or `N,M`: page N (from 1) of M profiles (default 20, at most 1000)"),
        ("sort" = Option<String>, Query,
            pattern = r"^([-+]?(id|email|mobile_phone_number|country_code|full_name|organization_id|lists|unsubscribed|create_time|update_time))?(,([-+]?(id|email|mobile_phone_number|country_code|full_name|organization_id|lists|unsubscribed|create_time|update_time))?)*$",
            description = "Comma-separated fields, `-` for descending, e.g. `-create_time,email`"),
        ("id" = Option<String>, Query, pattern = r"^(((eq|neq|gt|gte|lt|lte):)?[0-9]{1,18}|(in|nin):[0-9]{1,18}(,[0-9]{1,18})*)?$", description = "Filter `[op:]value` with op in eq, neq, gt, gte, lt, lte, in, nin (in/nin take comma-separated values); every filter below has this form, and a query's filters take at most 1000 values in all"),
        ("email" = Option<String>, Query, description = "Filter on the email"),
        ("mobile_phone_number" = Option<String>, Query, description = "Filter on the number"),
        ("country_code" = Option<String>, Query, description = "Filter on the number's region"),
        ("full_name" = Option<String>, Query, description = "Filter on the name"),
        ("organization_id" = Option<String>, Query, pattern = r"^(((eq|neq|gt|gte|lt|lte):)?[0-9]{1,18}|(in|nin):[0-9]{1,18}(,[0-9]{1,18})*)?$", description = "Filter on the organization"),
        ("lists" = Option<String>, Query, pattern = r"^(((eq|neq):)?[0-9]{1,19}|(in|nin):[0-9]{1,19}(,[0-9]{1,19})*)?$", description = "Filter on list membership"),
        ("unsubscribed" = Option<String>, Query, pattern = r"^(((eq|neq):)?(true|false)|(in|nin):(true|false)(,(true|false))*)?$", description = "Filter on `true` or `false`"),
        ("create_time" = Option<String>, Query, pattern = r"^(((eq|gt|gte|lt|lte):)?(?:[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)( ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])?)?$", description = "Filter on the creation time (`YYYY-MM-DD HH:MM:SS`)"),
        ("update_time" = Option<String>, Query, pattern = r"^(((eq|gt|gte|lt|lte):)?(?:[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)( ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])?)?$", description = "Filter on the last update time (`YYYY-MM-DD HH:MM:SS`)"),
    ),
    responses(
        (status = 200, description = "A page of profiles", body = HoodProfilePage),
        (status = 400, description = "Invalid query", body = HoodError),
    )
)]
async fn list_profiles(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    QueryPairs(pairs, ..): QueryPairs<Hood>,
) -> HoodResult {
    let query =
        hood::record_query(&wire::read_profile_query(&pairs)?).map_err(DomainError::in_query)?;
    let (page, total) = app.records.query::<Profile>(&principal, &query).await?;
    Ok(Json(HoodProfilePage {
        total,
        items: page.iter().map(View::of).collect(),
    })
    .into_response())
}

/// Create a profile.
#[utoipa::path(
    post,
    path = "/v1/hood/profiles",
    tag = "Ocamba Hood profiles",
    security(("bearer" = [])),
    request_body(content = CreateHoodProfileRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new profile", body = HoodProfileView,
            headers(("ETag" = String, description = "Version of the profile"))),
        (status = 400, description = "Invalid body, unknown list, or an unsubscribed contact", body = HoodError),
        (status = 413, description = "Body over 1 MiB", body = HoodError),
        (status = 415, description = "Body is not JSON", body = HoodError),
    )
)]
async fn create_profile(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    idempotent: Idempotent<Hood>,
    JsonBody(body, ..): JsonBody<Hood>,
) -> HoodResult {
    create::<Profile>(&app, &principal, idempotent, body).await
}

/// Get one profile.
#[utoipa::path(
    get,
    path = "/v1/hood/profiles/{id}",
    tag = "Ocamba Hood profiles",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Numeric id of the profile")),
    responses(
        (status = 200, description = "The profile", body = HoodProfileView,
            headers(("ETag" = String, description = "Version of the profile"))),
        (status = 404, description = "No such profile in the caller's workspace", body = HoodError),
    )
)]
async fn get_profile(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    PathId(id, ..): PathId<Hood>,
) -> HoodResult {
    let id = numeric_id(RecordKind::HoodProfile, &id)?;
    let record = app.records.get::<Profile>(&principal, &id).await?;
    Ok(view_reply(StatusCode::OK, &record).into_response())
}

/// Update a profile: only the fields sent change (the seed). Answers 204.
#[utoipa::path(
    patch,
    path = "/v1/hood/profiles/{id}",
    tag = "Ocamba Hood profiles",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Numeric id of the profile"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the profile's ETag is still this one"),
    ),
    // The seed's request (its "[email protected]" is the vendor page's
    // scraper guard; a real address stands in), shown by /docs.
    request_body(content = UpdateHoodProfileRequest, content_type = "application/json",
        example = json!({
            "full_name": "John Doe",
            "mobile_phone_number": "+49658245684",
            "email": "john.doe@example.com",
            "organization_id": "1000",
            "lists": ["1000102"],
            "custom_properties": {"clicker": "1"},
            "comment": "New comment for profile"
        })),
    responses(
        (status = 204, description = "Updated",
            headers(("ETag" = String, description = "New version of the profile"))),
        (status = 400, description = "No updatable field, a read-only or unknown field, an invalid value or an unknown list", body = HoodError),
        (status = 404, description = "No such profile in the caller's workspace", body = HoodError),
        (status = 412, description = "If-Match does not match the current ETag", body = HoodError),
        (status = 413, description = "Body over 1 MiB", body = HoodError),
        (status = 415, description = "Body is not JSON", body = HoodError),
    )
)]
async fn update_profile(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    PathId(id, ..): PathId<Hood>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Hood>,
    JsonBody(body, ..): JsonBody<Hood>,
) -> HoodResult {
    let target = (RecordKind::HoodProfile, id.as_str(), &precondition);
    update::<Profile>(&app, &principal, target, idempotent, body).await
}

/// Delete a profile. Deleting one that does not exist also answers 204.
#[utoipa::path(
    delete,
    path = "/v1/hood/profiles/{id}",
    tag = "Ocamba Hood profiles",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Numeric id of the profile"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the profile's ETag is still this one"),
    ),
    responses(
        (status = 204, description = "Deleted, or already absent"),
        (status = 412, description = "If-Match does not match the current ETag", body = HoodError),
    )
)]
async fn delete_profile(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    PathId(id, ..): PathId<Hood>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Hood>,
) -> HoodResult {
    let target = (RecordKind::HoodProfile, id.as_str(), &precondition);
    delete_idempotently::<Profile>(&app, &principal, target, idempotent).await
}

async fn delete_idempotently<T: Document>(
    app: &AppState,
    principal: &Principal,
    (kind, id, precondition): (RecordKind, &str, &Precondition),
    idempotent: Idempotent<Hood>,
) -> HoodResult {
    precondition.well_formed()?;
    let writing = match idempotent.begin(app, principal, None).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let Ok(id) = numeric_id(kind, id) else {
        return Ok(writing.respond(Reply::empty(StatusCode::NO_CONTENT)));
    };
    let keeper = writing.keeper(|()| Reply::empty(StatusCode::NO_CONTENT));
    match app
        .records
        .delete_keeping::<T>(principal, &id, precondition, keeper)
        .await
    {
        Ok(()) | Err(DomainError::NotFound { .. }) => {
            Ok(writing.respond(Reply::empty(StatusCode::NO_CONTENT)))
        }
        Err(error) => Err(error.into()),
    }
}

/// A record as Hood answers it, with its version as `ETag`.
fn view_reply<T: Declared>(status: StatusCode, record: &Record<T>) -> Reply {
    Reply::json(status, &View::<T, Hood>::of(record)).with_header(ETAG, &record.etag())
}

/// No body, only the record's new version as `ETag` (Hood's PATCH answer).
fn etag_reply<T>(status: StatusCode, record: &Record<T>) -> Reply {
    Reply::empty(status).with_header(ETAG, &record.etag())
}

/// Creates a profile or a list from `body`: 201 and the record.
async fn create<T: Declared + Document + Clone>(
    app: &AppState,
    principal: &Principal,
    idempotent: Idempotent<Hood>,
    body: serde_json::Value,
) -> HoodResult {
    let writing = match idempotent.begin(app, principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let new = app.records.read_new::<T, Hood>(principal, &body).await?;
    let keeper = writing.keeper(|record| view_reply(StatusCode::CREATED, record));
    let record = app
        .records
        .create_keeping(principal, |_| new, keeper)
        .await?;
    Ok(writing.respond(view_reply(StatusCode::CREATED, &record)))
}

/// Patches a profile or a list with `body`: 204 and the new `ETag`.
async fn update<T: Declared + Document + Clone>(
    app: &AppState,
    principal: &Principal,
    (kind, id, precondition): (RecordKind, &str, &Precondition),
    idempotent: Idempotent<Hood>,
    body: serde_json::Value,
) -> HoodResult {
    let writing = match idempotent.begin(app, principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let id = numeric_id(kind, id)?;
    let patch = app
        .records
        .read_patch::<T, Hood>(principal, &id, &body)
        .await?;
    let keeper = writing.keeper(|record| etag_reply(StatusCode::NO_CONTENT, record));
    let record = app
        .records
        .update_keeping::<T>(
            principal,
            &id,
            precondition,
            |target| T::apply_patch(patch, target),
            keeper,
        )
        .await?;
    Ok(writing.respond(etag_reply(StatusCode::NO_CONTENT, &record)))
}

/// Unsubscribe a profile: its email and number can no longer start a new
/// profile.
#[utoipa::path(
    post,
    path = "/v1/hood/profiles/{id}/unsubscribe",
    tag = "Ocamba Hood profiles",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Numeric id of the profile")),
    responses(
        (status = 204, description = "Unsubscribed (also when it already was)"),
        (status = 404, description = "No such profile in the caller's workspace", body = HoodError),
    )
)]
async fn unsubscribe_profile(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    PathId(id, ..): PathId<Hood>,
    idempotent: Idempotent<Hood>,
) -> HoodResult {
    let writing = match idempotent.begin(&app, &principal, None).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let id = numeric_id(RecordKind::HoodProfile, &id)?;
    let keeper = writing.keeper(|record| etag_reply(StatusCode::NO_CONTENT, record));
    let record = app
        .records
        .transact(&principal, move |session| {
            Box::pin(async move {
                let record = session
                    .get_accessible::<Profile>(&id, &Precondition::None)
                    .await?;
                let record = hood::unsubscribe(session, record).await?;
                if let Some(keeper) = keeper {
                    session.keep(keeper, &record).await?;
                }
                Ok(record)
            })
        })
        .await?;
    Ok(writing.respond(etag_reply(StatusCode::NO_CONTENT, &record)))
}

/// List profile lists.
#[utoipa::path(
    get,
    path = "/v1/hood/profile-lists",
    tag = "Ocamba Hood profile lists",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every profile list of the workspace", body = HoodProfileListPage),
    )
)]
async fn list_profile_lists(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
) -> HoodResult {
    let records = app.records.list::<ProfileList>(&principal).await?;
    Ok(Json(HoodProfileListPage {
        total: records.len(),
        items: records.iter().map(View::of).collect(),
    })
    .into_response())
}

/// Create a profile list.
#[utoipa::path(
    post,
    path = "/v1/hood/profile-lists",
    tag = "Ocamba Hood profile lists",
    security(("bearer" = [])),
    request_body(content = HoodProfileListRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new list", body = HoodProfileListView,
            headers(("ETag" = String, description = "Version of the list"))),
        (status = 400, description = "Invalid body", body = HoodError),
        (status = 413, description = "Body over 1 MiB", body = HoodError),
        (status = 415, description = "Body is not JSON", body = HoodError),
    )
)]
async fn create_profile_list(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    idempotent: Idempotent<Hood>,
    JsonBody(body, ..): JsonBody<Hood>,
) -> HoodResult {
    create::<ProfileList>(&app, &principal, idempotent, body).await
}

/// Get one profile list.
#[utoipa::path(
    get,
    path = "/v1/hood/profile-lists/{id}",
    tag = "Ocamba Hood profile lists",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Numeric id of the list")),
    responses(
        (status = 200, description = "The list", body = HoodProfileListView,
            headers(("ETag" = String, description = "Version of the list"))),
        (status = 404, description = "No such list in the caller's workspace", body = HoodError),
    )
)]
async fn get_profile_list(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    PathId(id, ..): PathId<Hood>,
) -> HoodResult {
    let id = numeric_id(RecordKind::HoodProfileList, &id)?;
    let record = app.records.get::<ProfileList>(&principal, &id).await?;
    Ok(view_reply(StatusCode::OK, &record).into_response())
}

/// Update a profile list partially. Answers 204, like a profile PATCH.
#[utoipa::path(
    patch,
    path = "/v1/hood/profile-lists/{id}",
    tag = "Ocamba Hood profile lists",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Numeric id of the list"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the list's ETag is still this one"),
    ),
    request_body(content = HoodProfileListPatchRequest, content_type = "application/json"),
    responses(
        (status = 204, description = "Updated",
            headers(("ETag" = String, description = "New version of the list"))),
        (status = 400, description = "Invalid body", body = HoodError),
        (status = 404, description = "No such list in the caller's workspace", body = HoodError),
        (status = 412, description = "If-Match does not match the current ETag", body = HoodError),
        (status = 413, description = "Body over 1 MiB", body = HoodError),
        (status = 415, description = "Body is not JSON", body = HoodError),
    )
)]
async fn update_profile_list(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    PathId(id, ..): PathId<Hood>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Hood>,
    JsonBody(body, ..): JsonBody<Hood>,
) -> HoodResult {
    let target = (RecordKind::HoodProfileList, id.as_str(), &precondition);
    update::<ProfileList>(&app, &principal, target, idempotent, body).await
}

/// Delete a profile list. Deleting one that does not exist also answers 204.
#[utoipa::path(
    delete,
    path = "/v1/hood/profile-lists/{id}",
    tag = "Ocamba Hood profile lists",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Numeric id of the list"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the list's ETag is still this one"),
    ),
    responses(
        (status = 204, description = "Deleted, or already absent"),
        (status = 412, description = "If-Match does not match the current ETag", body = HoodError),
    )
)]
async fn delete_profile_list(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    PathId(id, ..): PathId<Hood>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<Hood>,
) -> HoodResult {
    let target = (RecordKind::HoodProfileList, id.as_str(), &precondition);
    delete_idempotently::<ProfileList>(&app, &principal, target, idempotent).await
}

/// The audit trail of a profile: every create, update and delete, who made
/// it, when, and each changed field's old and new value. Readable by
/// whoever can read the profile; after a delete, by admins.
#[utoipa::path(
    get,
    path = "/v1/hood/profiles/{id}/history",
    tag = "Ocamba Hood profiles",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Numeric id of the profile"),
        ("page" = Option<String>, Query, pattern = r"^[ \t]*\+?0*[1-9][0-9]{0,17}[ \t]*(,[ \t]*\+?0*([1-9][0-9]{0,2}|1000)[ \t]*)?$",
            description = "`N` or `N,M`: page N (from 1) of M entries (default 20, at most 1000)"),
    ),
    responses(
        (status = 200, description = "A page of the profile's history, oldest first", body = HoodHistoryPage),
        (status = 400, description = "Invalid paging", body = HoodError),
        (status = 404, description = "No such profile (or history) in the caller's workspace", body = HoodError),
    )
)]
async fn profile_history(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    PathId(id, ..): PathId<Hood>,
    QueryPairs(pairs, ..): QueryPairs<Hood>,
) -> HoodResult {
    let (page, size) = wire::read_history_page(&pairs)?;
    let id = numeric_id(RecordKind::HoodProfile, &id)?;
    let offset = (page as u64 - 1).saturating_mul(size as u64);
    let history = app
        .records
        .history::<Profile>(&principal, &id, offset, size as u64)
        .await?;
    Ok(Json(HoodHistoryPage {
        total: history.total,
        items: history.entries.iter().map(HoodHistoryEntry::from).collect(),
    })
    .into_response())
}
