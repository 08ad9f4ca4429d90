//! The vendor contracts, one module each: routes, wire types and the error
//! envelope. Each turns requests into calls on the core and the core's
//! answers back into its vendor's format.

pub mod clientsuccess;
pub mod hood;
pub mod lance;
pub mod schema;

use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::core::records::ChangedField;

/// One changed field of an audit entry; every surface shows it this way.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

impl From<&ChangedField> for FieldChange {
    fn from(change: &ChangedField) -> Self {
        Self {
            field: change.field.clone(),
            old: change.old.clone(),
            new: change.new.clone(),
        }
    }
}
use utoipa::openapi::RefOr;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use crate::core::error::DomainError;
use crate::http::Surface;

/// Renders an error raised outside any route (unknown path, panic) in the
/// envelope of the surface whose path prefix the request used.
pub fn error_response_for_path(path: &str, error: &DomainError, request_id: &str) -> Response {
    if path.starts_with("/v2/") {
        clientsuccess::ClientSuccess::error_response(error, request_id)
    } else if path.starts_with("/v1/hood/") {
        hood::Hood::error_response(error, request_id)
    } else {
        lance::Lance::error_response(error, request_id)
    }
}

/// The responses that a route can give besides its own, because they come
/// from what every route shares: authentication (401), the rate limiter
/// (429), the request timeout and storage outages (503), internal errors
/// (500), and for routes with a body the body extractor (400, 408, 413,
/// 415). Added to every operation that lacks them, in the envelope and
/// media type of the surface whose prefix the path uses, with the headers
/// those responses carry; every response gets `X-Request-Id`.
pub fn document_shared_responses(openapi: &mut utoipa::openapi::OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        let envelope = envelope_for_path(path);
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            if let Some(envelope) = envelope {
                add_shared_responses(operation, envelope);
            }
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response
                        .headers
                        .entry("X-Request-Id".to_owned())
                        .or_insert_with(|| {
                            header(
                                Type::String,
                                "The request's id: the client's X-Request-Id when it is sane, else a new UUID",
                            )
                        });
                }
            }
        }
    }
}

/// An error envelope: its schema component and media type.
#[derive(Clone, Copy)]
struct Envelope {
    schema: &'static str,
    media_type: &'static str,
}

/// The envelope of the surface at `path`; `None` for the operational routes
/// (health, readiness, this document), which need no token.
fn envelope_for_path(path: &str) -> Option<Envelope> {
    if path.starts_with("/v2/") {
        Some(Envelope {
            schema: "ClientSuccessProblem",
            media_type: clientsuccess::PROBLEM_JSON,
        })
    } else if path.starts_with("/v1/hood/") {
        Some(Envelope {
            schema: "HoodError",
            media_type: "application/json",
        })
    } else if path.starts_with("/api/") {
        Some(Envelope {
            schema: "LanceError",
            media_type: "application/json",
        })
    } else {
        None
    }
}

fn add_shared_responses(operation: &mut Operation, envelope: Envelope) {
    let mut shared = vec![
        (
            "401",
            "Not authenticated: no token, or one that is not valid",
        ),
        (
            "429",
            "Rate limit of the caller's workspace exceeded; see Retry-After",
        ),
        ("500", "Internal error"),
        (
            "503",
            "Storage unavailable, or the request took too long; retry after Retry-After",
        ),
    ];
    if operation.request_body.is_some() {
        shared.extend([
            ("400", "Invalid body; every invalid field is listed"),
            ("408", "The body was not received in time"),
            ("413", "Body over 1 MiB"),
            ("415", "Body is not JSON"),
        ]);
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in shared {
        responses.entry(status.to_owned()).or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        envelope.media_type,
                        ContentBuilder::new()
                            .schema(Some(schema::reference(envelope.schema)))
                            .build(),
                    )
                    .build(),
            )
        });
    }
    let rate_limit_headers = [
        (
            "X-RateLimit-Limit",
            "Requests allowed in the current window",
        ),
        (
            "X-RateLimit-Remaining",
            "Requests left in the current window",
        ),
        ("X-RateLimit-Reset", "Seconds until the current window ends"),
    ];
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let headers = &mut response.headers;
        // The limiter counts every authenticated request, so its headers
        // can be on any answer but a 401 (when the surface has a limit).
        if status != "401" {
            for (name, description) in rate_limit_headers {
                headers
                    .entry(name.to_owned())
                    .or_insert_with(|| header(Type::Integer, description));
            }
        }
        match status.as_str() {
            "401" => {
                headers
                    .entry("WWW-Authenticate".to_owned())
                    .or_insert_with(|| header(Type::String, "Always `Bearer`"));
            }
            "429" | "503" => {
                headers
                    .entry("Retry-After".to_owned())
                    .or_insert_with(|| header(Type::Integer, "Seconds to wait before retrying"));
            }
            _ => {}
        }
    }
}

fn header(kind: Type, description: &str) -> RefOr<Header> {
    RefOr::T(
        HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(kind)))
            .description(Some(description))
            .build(),
    )
}
