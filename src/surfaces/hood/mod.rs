//! The Ocamba Hood contract at `/v1/hood`: profiles (create, list with
//! filters/sort/paging, get, PATCH answering 204, idempotent delete,
//! unsubscribe) and the profile lists that a profile's `lists` name, with
//! Hood's error body `{"code","title","message","trace_id"}`.

pub mod wire;

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::ETAG;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::error::{DomainError, RecordKind};
use crate::core::fields::{Declared, View};
use crate::core::hood::{self, Profile, ProfileList};
use crate::core::ratelimit::{RatePolicy, Window};
use crate::core::records::Precondition;
use crate::http::extract::{Caller, IfMatch, JsonBody, PathId};
use crate::http::{AppState, Failure, Surface};
use wire::{
    CreateHoodProfileRequest, HoodHistoryEntry, HoodHistoryPage, HoodProfileListPage,
    HoodProfileListPatchRequest, HoodProfileListRequest, HoodProfileListView, HoodProfilePage,
    HoodProfileView, UpdateHoodProfileRequest,
};

/// Marker for the Hood surface.
pub struct Hood;

type HoodResult = Result<Response, Failure<Hood>>;

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
            DomainError::Invalid(fields) => {
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
}

fn with_etag<T: Serialize>(status: StatusCode, etag: &str, body: Option<T>) -> Response {
    let mut response = match body {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(ETAG, value);
    }
    response
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

fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, DomainError> {
    query.map(|Query(pairs)| pairs).map_err(|rejection| {
        DomainError::invalid(
            crate::core::error::FieldPath::root(),
            format!("The query string is not valid: {rejection}"),
        )
    })
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
        ("id" = Option<String>, Query, pattern = r"^(((eq|neq|gt|gte|lt|lte):)?[0-9]{1,18}|(in|nin):[0-9]{1,18}(,[0-9]{1,18})*)?$", description = "Filter `[op:]value` with op in eq, neq, gt, gte, lt, lte, in, nin (in/nin take comma-separated values); every filter below has this form"),
        ("email" = Option<String>, Query, description = "Filter on the email"),
        ("mobile_phone_number" = Option<String>, Query, description = "Filter on the number"),
        ("country_code" = Option<String>, Query, description = "Filter on the number's region"),
        ("full_name" = Option<String>, Query, description = "Filter on the name"),
        ("organization_id" = Option<String>, Query, pattern = r"^(((eq|neq|gt|gte|lt|lte):)?[0-9]{1,18}|(in|nin):[0-9]{1,18}(,[0-9]{1,18})*)?$", description = "Filter on the organization"),
        ("lists" = Option<String>, Query, pattern = r"^(((eq|neq):)?[0-9]{1,19}|(in|nin):[0-9]{1,19}(,[0-9]{1,19})*)?$", description = "Filter on list membership"),
        ("unsubscribed" = Option<String>, Query, pattern = r"^(((eq|neq):)?(true|false)|(in|nin):(true|false)(,(true|false))*)?$", description = "Filter on `true` or `false`"),
        ("create_time" = Option<String>, Query, pattern = r"^(((eq|gt|gte|lt|lte):)?[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])( ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])?)?$", description = "Filter on the creation time (`YYYY-MM-DD HH:MM:SS`)"),
        ("update_time" = Option<String>, Query, pattern = r"^(((eq|gt|gte|lt|lte):)?[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])( ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])?)?$", description = "Filter on the last update time (`YYYY-MM-DD HH:MM:SS`)"),
    ),
    responses(
        (status = 200, description = "A page of profiles", body = HoodProfilePage),
        (status = 400, description = "Invalid query", body = HoodError),
    )
)]
async fn list_profiles(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> HoodResult {
    let query = hood::record_query(&wire::read_profile_query(&query_pairs(query)?)?)?;
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
    JsonBody(body, ..): JsonBody<Hood>,
) -> HoodResult {
    let profile = Profile::read_new::<Hood>(&body)?;
    let record = app.records.create(&principal, |_| profile).await?;
    Ok(with_etag(
        StatusCode::CREATED,
        &record.etag(),
        Some(View::<Profile, Hood>::of(&record)),
    ))
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
    Ok(with_etag(
        StatusCode::OK,
        &record.etag(),
        Some(View::<Profile, Hood>::of(&record)),
    ))
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
    request_body(content = UpdateHoodProfileRequest, content_type = "application/json"),
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
    JsonBody(body, ..): JsonBody<Hood>,
) -> HoodResult {
    let patch = Profile::read_patch::<Hood>(&body)?;
    let id = numeric_id(RecordKind::HoodProfile, &id)?;
    let record = app
        .records
        .update::<Profile>(&principal, &id, &precondition, |profile| {
            patch.apply(profile)
        })
        .await?;
    Ok(with_etag::<()>(
        StatusCode::NO_CONTENT,
        &record.etag(),
        None,
    ))
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
) -> HoodResult {
    delete_idempotently::<Profile>(
        &app,
        &principal,
        RecordKind::HoodProfile,
        &id,
        &precondition,
    )
    .await
}

async fn delete_idempotently<T: crate::core::records::Document>(
    app: &AppState,
    principal: &crate::core::auth::Principal,
    kind: RecordKind,
    id: &str,
    precondition: &Precondition,
) -> HoodResult {
    let Ok(id) = numeric_id(kind, id) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    match app.records.delete::<T>(principal, &id, precondition).await {
        Ok(()) | Err(DomainError::NotFound { .. }) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(error) => Err(error.into()),
    }
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
) -> HoodResult {
    let id = numeric_id(RecordKind::HoodProfile, &id)?;
    let record = app
        .records
        .transact(&principal, move |session| {
            Box::pin(async move {
                let record = session
                    .get_accessible::<Profile>(&id, &Precondition::None)
                    .await?;
                hood::unsubscribe(session, record).await
            })
        })
        .await?;
    Ok(with_etag::<()>(
        StatusCode::NO_CONTENT,
        &record.etag(),
        None,
    ))
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
    JsonBody(body, ..): JsonBody<Hood>,
) -> HoodResult {
    let list = ProfileList::read_new::<Hood>(&body)?;
    let record = app.records.create(&principal, |_| list).await?;
    Ok(with_etag(
        StatusCode::CREATED,
        &record.etag(),
        Some(View::<ProfileList, Hood>::of(&record)),
    ))
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
    Ok(with_etag(
        StatusCode::OK,
        &record.etag(),
        Some(View::<ProfileList, Hood>::of(&record)),
    ))
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
    JsonBody(body, ..): JsonBody<Hood>,
) -> HoodResult {
    let patch = ProfileList::read_patch::<Hood>(&body)?;
    let id = numeric_id(RecordKind::HoodProfileList, &id)?;
    let record = app
        .records
        .update::<ProfileList>(&principal, &id, &precondition, |list| patch.apply(list))
        .await?;
    Ok(with_etag::<()>(
        StatusCode::NO_CONTENT,
        &record.etag(),
        None,
    ))
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
) -> HoodResult {
    delete_idempotently::<ProfileList>(
        &app,
        &principal,
        RecordKind::HoodProfileList,
        &id,
        &precondition,
    )
    .await
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
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> HoodResult {
    let (page, size) = wire::read_history_page(&query_pairs(query)?)?;
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
