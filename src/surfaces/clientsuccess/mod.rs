//! The ClientSuccess client contract at `/v2/client`: create, get, PATCH,
//! delete and search, with errors as RFC 9457 problem details
//! (`application/problem+json`). Tokens are accepted with or without the
//! `Bearer ` prefix, as the vendor's own clients send them.

pub mod wire;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{ETAG, LOCATION};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::client::Client;
use crate::core::error::{DomainError, RecordKind};
use crate::core::fields::View;
use crate::core::records::{Document, NewIds, Record};
use crate::http::extract::{Caller, IfMatch, JsonBody, PathId, QueryPairs};
use crate::http::idempotency::{Idempotent, Reply, Started};
use crate::http::{AppState, Failure, Surface};
use wire::{
    ClientSuccessClient, ClientSuccessCreateRequest, ClientSuccessPage, ClientSuccessPatchRequest,
    ClientSuccessSearchParams, ParameterError,
};

/// Marker for the ClientSuccess surface.
pub struct ClientSuccess;

type ClientSuccessResult = Result<Response, Failure<ClientSuccess>>;

/// The media type of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem: the vendor documents no error body, so errors use
/// the standard one.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSuccessProblem {
    /// Always `about:blank`: the status code says what kind of problem it is.
    #[serde(rename = "type")]
    pub problem_type: &'static str,
    /// The HTTP reason phrase of `status`.
    pub title: &'static str,
    pub status: u16,
    /// What went wrong, for a person to read.
    pub detail: String,
    /// Every invalid body field (by JSON pointer) or query parameter, on 400s.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub errors: Option<Vec<ClientSuccessProblemError>>,
    /// The server's id of this request (the response's `X-Request-Id`),
    /// to quote when reporting a problem; never the id the client sent.
    pub request_id: String,
}

/// One invalid body field or query parameter.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientSuccessProblemError {
    /// RFC 6901 JSON pointer to the invalid body field, e.g. `/npsScore`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub pointer: Option<String>,
    /// The invalid query parameter, e.g. `size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub parameter: Option<String>,
    pub detail: String,
}

fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Icp => "ICP",
        RecordKind::Client => "Client",
        RecordKind::HoodProfile => "Profile",
        RecordKind::HoodProfileList => "Profile list",
        RecordKind::HoodSuppression => "Suppression",
        RecordKind::HoodProfileImport => "Profile import",
        RecordKind::Person => "Person",
        RecordKind::Company => "Company",
        RecordKind::LeadList => "Lead list",
        RecordKind::Webhook => "Webhook",
        RecordKind::Event => "Event feed",
    }
}

fn invalid_detail(count: usize) -> String {
    if count == 1 {
        "1 field of the request is invalid; see errors".to_owned()
    } else {
        format!("{count} fields of the request are invalid; see errors")
    }
}

impl ClientSuccess {
    /// A problem with `status`'s reason phrase as title.
    fn problem_body(
        status: StatusCode,
        detail: String,
        errors: Option<Vec<ClientSuccessProblemError>>,
        request_id: &str,
    ) -> ClientSuccessProblem {
        ClientSuccessProblem {
            problem_type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            errors,
            request_id: request_id.to_owned(),
        }
    }
}

impl Surface for ClientSuccess {
    const NAME: &'static str = "clientsuccess";
    const PREFIX: &'static str = "/v2/";
    const ACCEPTS_BARE_TOKEN: bool = true;
    const ERROR_MEDIA_TYPE: &'static str = PROBLEM_JSON;

    type ErrorBody = ClientSuccessProblem;

    fn error_body(
        error: &DomainError,
        status: StatusCode,
        request_id: &str,
    ) -> ClientSuccessProblem {
        let (detail, errors) = match error {
            DomainError::Invalid(errors) => (
                invalid_detail(errors.len()),
                Some(
                    errors
                        .iter()
                        .map(|error| ClientSuccessProblemError {
                            pointer: Some(error.path.to_json_pointer()),
                            parameter: None,
                            detail: error.message.clone(),
                        })
                        .collect(),
                ),
            ),
            DomainError::InvalidQuery(errors) => (
                invalid_detail(errors.len()),
                Some(
                    errors
                        .iter()
                        .map(|error| ClientSuccessProblemError {
                            pointer: None,
                            // The root stands for the query string as a whole.
                            parameter: (!error.path.segments().is_empty())
                                .then(|| error.path.to_string()),
                            detail: error.message.clone(),
                        })
                        .collect(),
                ),
            ),
            DomainError::Unprocessable(errors) => (
                "The request cannot be processed as it stands; see errors".to_owned(),
                Some(
                    errors
                        .iter()
                        .map(|error| ClientSuccessProblemError {
                            pointer: Some(error.path.to_json_pointer()),
                            parameter: None,
                            detail: error.message.clone(),
                        })
                        .collect(),
                ),
            ),
            DomainError::Conflict(reason) => (reason.clone(), None),
            DomainError::MalformedBody(detail) => {
                (format!("The body is not valid JSON: {detail}"), None)
            }
            DomainError::UnsupportedMediaType(detail) => (detail.clone(), None),
            DomainError::PayloadTooLarge { limit } => (
                format!("The request body must not exceed {limit} bytes"),
                None,
            ),
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
                format!(
                    "You do not have access to this {}",
                    kind_name(*kind).to_lowercase()
                ),
                None,
            ),
            DomainError::NotFound { kind, id } => {
                (format!("{} not found: {id}", kind_name(*kind)), None)
            }
            DomainError::PreconditionFailed { current_etag } => (
                format!(
                    "The client has changed since you read it (If-Match does not match the current ETag {current_etag}); GET it again and retry"
                ),
                None,
            ),
            DomainError::InvalidHeader { name, message } => {
                (format!("The {name} header is not valid: {message}"), None)
            }
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
        Self::problem_body(status, detail, errors, request_id)
    }
}

/// The routes of this surface, with their OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_client))
        .routes(routes!(search_clients))
        .routes(routes!(get_client, update_client, delete_client))
        .routes(routes!(client_history))
}

const CLIENTS: &str = "/v2/client";

/// A client as ClientSuccess answers it, with its version as `ETag`.
fn client_reply(status: StatusCode, record: &Record<Client>) -> Reply {
    Reply::json(status, &View::<Client, ClientSuccess>::of(record))
        .with_header(ETAG, &record.etag())
}

/// A new client: 201, and where it lives.
fn created_reply(record: &Record<Client>) -> Reply {
    client_reply(StatusCode::CREATED, record)
        .with_header(LOCATION, &format!("{CLIENTS}/{}", record.id))
}

/// Client paths carry the UUID; anything else names no client.
fn client_key(id: &str) -> Result<String, DomainError> {
    uuid::Uuid::parse_str(id)
        .map(|uuid| uuid.hyphenated().to_string())
        .map_err(|_| DomainError::NotFound {
            kind: RecordKind::Client,
            id: id.to_owned(),
        })
}

/// Create a client. `name`, `status` and `active` are required.
#[utoipa::path(
    post,
    path = "/v2/client",
    tag = "ClientSuccess clients",
    security(("bearer" = [])),
    request_body(content = ClientSuccessCreateRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new client", body = ClientSuccessClient,
            headers(
                ("ETag" = String, description = "Version of the client"),
                ("Location" = String, description = "Path of the new client"),
            )),
        (status = 400, description = "Invalid body; every invalid field is listed by JSON pointer",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn create_client(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<ClientSuccess>,
    idempotent: Idempotent<ClientSuccess>,
    JsonBody(body, ..): JsonBody<ClientSuccess>,
) -> ClientSuccessResult {
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let client = app
        .records
        .read_new::<Client, ClientSuccess>(&principal, &body)
        .await?;
    let build = move |ids: &NewIds| client.with_ids(ids);
    let keeper = writing.keeper(created_reply);
    let record = app
        .records
        .create_keeping(&principal, build, keeper)
        .await?;
    Ok(writing.respond(created_reply(&record)))
}

/// Search the workspace's clients, a page at a time (pages count from 0).
#[utoipa::path(
    get,
    path = "/v2/client/search",
    tag = "ClientSuccess clients",
    security(("bearer" = [])),
    params(ClientSuccessSearchParams),
    responses(
        (status = 200, description = "One page of the matching clients, ordered by id",
            body = ClientSuccessPage),
        (status = 400, description = "Invalid query parameters; every one is listed",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn search_clients(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<ClientSuccess>,
    QueryPairs(pairs, ..): QueryPairs<ClientSuccess>,
) -> ClientSuccessResult {
    let query = wire::read_search_query(&pairs).map_err(invalid_parameters)?;
    let records = app.records.list::<Client>(&principal).await?;
    Ok(Json(wire::page_of(&records, &query)).into_response())
}

/// Every bad query parameter, as the problem's `errors`.
fn invalid_parameters(errors: Vec<ParameterError>) -> DomainError {
    DomainError::InvalidQuery(
        errors
            .into_iter()
            .map(|error| crate::core::error::FieldError {
                path: crate::core::error::FieldPath::root().key(&error.parameter),
                message: error.detail,
            })
            .collect(),
    )
}

/// Get one client.
#[utoipa::path(
    get,
    path = "/v2/client/{uuid}",
    tag = "ClientSuccess clients",
    security(("bearer" = [])),
    params(("uuid" = String, Path, format = Uuid, description = "Client UUID; any other id names no client (404)")),
    responses(
        (status = 200, description = "The client", body = ClientSuccessClient,
            headers(("ETag" = String, description = "Version of the client"))),
        (status = 403, description = "Not allowed to see this client",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 404, description = "No such client in the caller's workspace",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn get_client(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<ClientSuccess>,
    PathId(id, ..): PathId<ClientSuccess>,
) -> ClientSuccessResult {
    let key = client_key(&id)?;
    let record = app.records.get::<Client>(&principal, &key).await?;
    Ok(client_reply(StatusCode::OK, &record).into_response())
}

/// Update a client partially: only the fields in the body change.
#[utoipa::path(
    patch,
    path = "/v2/client/{uuid}",
    tag = "ClientSuccess clients",
    security(("bearer" = [])),
    params(
        ("uuid" = String, Path, format = Uuid, description = "Client UUID; any other id names no client (404)"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the client's ETag is still this one"),
    ),
    request_body(content = ClientSuccessPatchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The whole updated client", body = ClientSuccessClient,
            headers(("ETag" = String, description = "New version of the client"))),
        (status = 400, description = "Invalid body; every invalid field is listed by JSON pointer",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed to change this client",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 404, description = "No such client in the caller's workspace",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the current ETag",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 1 MiB",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn update_client(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<ClientSuccess>,
    PathId(id, ..): PathId<ClientSuccess>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<ClientSuccess>,
    JsonBody(body, ..): JsonBody<ClientSuccess>,
) -> ClientSuccessResult {
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let key = client_key(&id)?;
    let patch = app
        .records
        .read_patch::<Client, ClientSuccess>(&principal, &key, &body)
        .await?;
    let keeper = writing.keeper(|record| client_reply(StatusCode::OK, record));
    let record = app
        .records
        .update_keeping::<Client>(
            &principal,
            &key,
            &precondition,
            |client| patch.apply(client),
            keeper,
        )
        .await?;
    Ok(writing.respond(client_reply(StatusCode::OK, &record)))
}

/// Delete a client.
#[utoipa::path(
    delete,
    path = "/v2/client/{uuid}",
    tag = "ClientSuccess clients",
    security(("bearer" = [])),
    params(
        ("uuid" = String, Path, format = Uuid, description = "Client UUID; any other id names no client (404)"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the client's ETag is still this one"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not allowed to delete this client",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 404, description = "No such client in the caller's workspace",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the current ETag",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn delete_client(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<ClientSuccess>,
    PathId(id, ..): PathId<ClientSuccess>,
    IfMatch(precondition): IfMatch,
    idempotent: Idempotent<ClientSuccess>,
) -> ClientSuccessResult {
    let writing = match idempotent.begin(&app, &principal, None).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let key = client_key(&id)?;
    let keeper = writing.keeper(|()| Reply::empty(StatusCode::NO_CONTENT));
    app.records
        .delete_keeping::<Client>(&principal, &key, &precondition, keeper)
        .await?;
    Ok(writing.respond(Reply::empty(StatusCode::NO_CONTENT)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::FieldPath;
    use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn every_error_is_a_problem_with_the_request_id() {
        let cases = [
            (
                DomainError::invalid(
                    FieldPath::root().key("npsScore"),
                    "must be between -100 and 100",
                ),
                400,
            ),
            (DomainError::MalformedBody("eof".into()), 400),
            (DomainError::UnsupportedMediaType("json only".into()), 415),
            (DomainError::PayloadTooLarge { limit: 10 }, 413),
            (DomainError::Unauthenticated("no".into()), 401),
            (
                DomainError::Forbidden {
                    kind: RecordKind::Client,
                },
                403,
            ),
            (
                DomainError::NotFound {
                    kind: RecordKind::Client,
                    id: "x".into(),
                },
                404,
            ),
            (
                DomainError::PreconditionFailed {
                    current_etag: "\"3\"".into(),
                },
                412,
            ),
            (
                DomainError::RateLimited {
                    retry_after_secs: 7,
                },
                429,
            ),
            (DomainError::Unavailable("db down".into()), 503),
            (DomainError::Internal("secret detail".into()), 500),
        ];
        for (error, status) in cases {
            let response = ClientSuccess::error_response(&error, "req-1");
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(
                response
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                Some(PROBLEM_JSON)
            );
            let headers = response.headers().clone();
            let body = body_of(response).await;
            assert_eq!(body["type"], "about:blank");
            assert_eq!(body["status"], status);
            assert_eq!(body["requestId"], "req-1");
            assert!(body["title"].is_string() && body["detail"].is_string());
            assert!(!body.to_string().contains("secret detail"));
            match status {
                400 if body["errors"].is_array() => assert_eq!(
                    body["errors"],
                    serde_json::json!([{"pointer": "/npsScore", "detail": "must be between -100 and 100"}])
                ),
                401 => assert_eq!(
                    headers.get(WWW_AUTHENTICATE).map(|v| v.as_bytes()),
                    Some(&b"Bearer"[..])
                ),
                412 => assert_eq!(headers.get(ETAG).map(|v| v.as_bytes()), Some(&b"\"3\""[..])),
                429 => assert_eq!(
                    headers.get(RETRY_AFTER).map(|v| v.as_bytes()),
                    Some(&b"7"[..])
                ),
                503 => assert!(headers.get(RETRY_AFTER).is_some()),
                _ => {}
            }
        }
    }
}

/// The audit trail of a client: every create, update and delete, who made
/// it, when, and each changed field's old and new value (pages count from
/// 0). Readable by whoever can read the client; after a delete, by admins.
#[utoipa::path(
    get,
    path = "/v2/client/{uuid}/history",
    tag = "ClientSuccess clients",
    security(("bearer" = [])),
    params(
        ("uuid" = String, Path, format = Uuid, description = "Client UUID; any other id names no client (404)"),
        ("page" = Option<i64>, Query, minimum = 0, maximum = 2147483647,
            description = "Zero-based page number; default 0"),
        ("size" = Option<i64>, Query, minimum = 1, maximum = 100,
            description = "Entries per page, 1 to 100; default 20"),
    ),
    responses(
        (status = 200, description = "A page of the client's history, oldest first",
            body = wire::ClientSuccessHistoryPage),
        (status = 400, description = "Invalid query parameters",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
        (status = 404, description = "No such client (or history) in the caller's workspace",
            body = ClientSuccessProblem, content_type = "application/problem+json"),
    )
)]
async fn client_history(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<ClientSuccess>,
    PathId(id, ..): PathId<ClientSuccess>,
    QueryPairs(pairs, ..): QueryPairs<ClientSuccess>,
) -> ClientSuccessResult {
    let (page, size) = wire::read_history_query(&pairs).map_err(invalid_parameters)?;
    let key = client_key(&id)?;
    let offset = u64::try_from(page.saturating_mul(size)).unwrap_or(u64::MAX);
    let limit = u64::try_from(size).unwrap_or(20);
    let history = app
        .records
        .history::<Client>(&principal, &key, offset, limit)
        .await?;
    let total_elements = i64::try_from(history.total).unwrap_or(i64::MAX);
    let total_pages = (total_elements + size - 1) / size;
    Ok(Json(wire::ClientSuccessHistoryPage {
        data: history
            .entries
            .iter()
            .map(wire::ClientSuccessHistoryEntry::from)
            .collect(),
        first: page == 0,
        last: page + 1 >= total_pages,
        page,
        size,
        total_pages,
        total_elements,
    })
    .into_response())
}
