//! The vendor contracts, one module each: routes, wire types and the error
//! envelope. Each turns requests into calls on the core and the core's
//! answers back into its vendor's format, and states its own facts once, on
//! its [`Surface`] impl: name, path prefix, error envelope, default rate
//! limit. [`SURFACES`] lists them; from that one list come the envelope of
//! errors raised outside any route, the shared responses of the OpenAPI
//! document and the default rate limits.

pub mod clientele;
pub mod clientsuccess;
pub mod hood;
pub mod kinds;
pub mod lance;
pub mod schema;

use std::borrow::Cow;

use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::Required;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use crate::core::error::DomainError;
use crate::core::ratelimit::{PolicySetting, RateLimits, RatePolicy};
use crate::core::records::ChangedField;
use crate::http::Surface;

/// ISO 8601 in UTC with milliseconds, as Lance and ClientSuccess write
/// times (the core's one formatter).
pub use crate::core::events::iso_millis;

/// The shape of an [`iso_millis`] time.
pub fn iso_millis_shape() -> crate::core::shape::Shape {
    crate::core::shape::string()
        .format("date-time")
        .describe("ISO 8601 UTC with milliseconds.")
}

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

/// A surface's facts, read from its [`Surface`] impl, for code that picks
/// a surface at run time (by path or by name).
#[derive(Clone, Copy)]
pub struct SurfaceInfo {
    /// [`Surface::NAME`].
    pub name: &'static str,
    /// [`Surface::PREFIX`].
    pub prefix: &'static str,
    /// [`Surface::ERROR_MEDIA_TYPE`].
    pub error_media_type: &'static str,
    /// [`Surface::TAKES_IDEMPOTENCY_KEY`].
    pub takes_idempotency_key: bool,
    error_schema: fn() -> Cow<'static, str>,
    error_response: fn(&DomainError, &str) -> Response,
    default_rate_policy: fn() -> Option<RatePolicy>,
}

impl SurfaceInfo {
    const fn of<S: Surface>() -> Self {
        Self {
            name: S::NAME,
            prefix: S::PREFIX,
            error_media_type: S::ERROR_MEDIA_TYPE,
            takes_idempotency_key: S::TAKES_IDEMPOTENCY_KEY,
            error_schema: <S::ErrorBody as ToSchema>::name,
            error_response: S::error_response,
            default_rate_policy: S::default_rate_policy,
        }
    }

    /// The schema component of the surface's error envelope.
    pub fn error_schema(&self) -> Cow<'static, str> {
        (self.error_schema)()
    }

    /// `error` in the surface's envelope, with its status and headers.
    pub fn error_response(&self, error: &DomainError, request_id: &str) -> Response {
        (self.error_response)(error, request_id)
    }

    /// The surface's rate limit when none is configured.
    pub fn default_rate_policy(&self) -> Option<RatePolicy> {
        (self.default_rate_policy)()
    }
}

/// Every surface, once. The first also answers for paths under no
/// surface's prefix (unknown routes), in its envelope.
pub const SURFACES: [SurfaceInfo; 4] = [
    SurfaceInfo::of::<lance::Lance>(),
    SurfaceInfo::of::<clientsuccess::ClientSuccess>(),
    SurfaceInfo::of::<hood::Hood>(),
    SurfaceInfo::of::<clientele::Clientele>(),
];

/// The surface whose path prefix `path` uses, if any.
pub fn surface_for_path(path: &str) -> Option<&'static SurfaceInfo> {
    SURFACES
        .iter()
        .find(|surface| path.starts_with(surface.prefix))
}

/// Renders an error raised outside any route (unknown path, panic,
/// timeout) in the envelope of the surface whose path prefix the request
/// used, or of the first surface if none.
pub fn error_response_for_path(path: &str, error: &DomainError, request_id: &str) -> Response {
    surface_for_path(path)
        .unwrap_or(&SURFACES[0])
        .error_response(error, request_id)
}

/// Each surface's default rate limit (only Hood documents one).
pub fn default_rate_limits() -> RateLimits {
    let mut limits = RateLimits::default();
    for surface in &SURFACES {
        limits.set(surface.name, PolicySetting(surface.default_rate_policy()));
    }
    limits
}

/// The responses that a route can give besides its own, because they come
/// from what every route shares: authentication (401), the rate limiter
/// (429), the request timeout and storage outages (503), internal errors
/// (500), and for routes with a body the body extractor (400, 408, 413,
/// 415). Added to every operation that lacks them, in the envelope and
/// media type of the surface whose prefix the path uses, with the headers
/// those responses carry; every response gets `X-Request-Id` and may get
/// `X-Client-Request-Id`.
pub fn document_shared_responses(openapi: &mut utoipa::openapi::OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        // The operational routes (health, readiness, this document) are
        // under no surface's prefix and need no token.
        let surface = surface_for_path(path);
        // (operation, whether it writes)
        let operations = [
            (&mut item.get, false),
            (&mut item.put, true),
            (&mut item.post, true),
            (&mut item.delete, true),
            (&mut item.patch, true),
        ];
        // POSTs that only read (searches) take no key.
        let reads_only = lance::leads::SEARCH_PATHS.contains(&path.as_str());
        for (operation, writes) in operations {
            let Some(operation) = operation else { continue };
            state_if_match_syntax(operation);
            if let Some(surface) = surface {
                if writes && surface.takes_idempotency_key && !reads_only {
                    add_idempotency(operation, surface);
                }
                add_shared_responses(operation, surface);
            }
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response
                        .headers
                        .entry("X-Request-Id".to_owned())
                        .or_insert_with(|| {
                            header(
                                Type::String,
                                "The server's id of this request, a new UUID: the one error bodies quote, the logs and the audit trail are keyed by. Never the id the client sent.",
                            )
                        });
                    response
                        .headers
                        .entry("X-Client-Request-Id".to_owned())
                        .or_insert_with(|| {
                            header(
                                Type::String,
                                "The X-Request-Id the client sent, echoed when it is at most 128 characters of letters, digits and -_.:+= (else absent). Logged and kept in the audit trail beside the server's id, never in its place.",
                            )
                        });
                }
            }
        }
    }
}

/// Every string a client sends — a query or path parameter, or a string
/// anywhere in a request body — refuses U+0000 (PostgreSQL cannot store
/// it), and the schemas say so with a pattern wherever a string states no
/// pattern, format or values of its own: a property-based tester with its
/// default settings draws NUL characters and would otherwise take a
/// refused string for a valid one. Done on the finished document, because
/// the strings come from three sources (the core's shapes, derived types
/// and parameter attributes) and the rule is the same for all of them.
pub fn state_no_nul_in_requests(api: &mut utoipa::openapi::OpenApi) {
    let mut components = std::collections::BTreeSet::new();
    for item in api.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            for parameter in operation.parameters.iter_mut().flatten() {
                if let RefOr::T(parameter) = parameter
                    && matches!(
                        parameter.parameter_in,
                        ParameterIn::Query | ParameterIn::Path
                    )
                    && let Some(schema) = parameter.schema.as_mut()
                {
                    refuse_nul(schema, &mut components);
                }
            }
            if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
                for content in body.content.values_mut() {
                    if let RefOr::T(content) = content
                        && let Some(schema) = content.schema.as_mut()
                    {
                        refuse_nul(schema, &mut components);
                    }
                }
            }
        }
    }
    // The components request schemas name, and those they name in turn.
    let Some(schemas) = api.components.as_mut().map(|parts| &mut parts.schemas) else {
        return;
    };
    let mut done = std::collections::BTreeSet::new();
    while let Some(name) = components.pop_first() {
        if done.insert(name.clone())
            && let Some(schema) = schemas.get_mut(&name)
        {
            refuse_nul(schema, &mut components);
        }
    }
}

/// Adds [`NO_NUL_PATTERN`] to every plain string in `schema`, collecting
/// the names of the components it refers to.
fn refuse_nul(
    schema: &mut RefOr<utoipa::openapi::schema::Schema>,
    components: &mut std::collections::BTreeSet<String>,
) {
    match schema {
        RefOr::Ref(reference) => {
            if let Some(name) = reference.ref_location.strip_prefix("#/components/schemas/") {
                components.insert(name.to_owned());
            }
        }
        RefOr::T(schema) => refuse_nul_in(schema, components),
    }
}

fn refuse_nul_in(
    schema: &mut utoipa::openapi::schema::Schema,
    components: &mut std::collections::BTreeSet<String>,
) {
    use utoipa::openapi::schema::{
        AdditionalProperties, ArrayItems, KnownFormat, Schema, SchemaFormat, SchemaType,
    };
    match schema {
        Schema::Object(object) => {
            let is_string = match &object.schema_type {
                SchemaType::Type(single) => *single == Type::String,
                SchemaType::Array(types) => types.contains(&Type::String),
                // A schema of any type that bounds strings (a free-form
                // level) states the rule for them too.
                SchemaType::AnyValue => object.max_length.is_some(),
            };
            // A format whose syntax has no room for U+0000 (dates, times,
            // UUIDs, addresses; a file is bytes, not text) states the rule
            // already, and takes no pattern: openapi-generator's Python
            // client does not import what a pattern on a `date-time` needs,
            // and fails to load. Other formats (`regex`) take it.
            let strict_format = matches!(
                &object.format,
                Some(SchemaFormat::KnownFormat(
                    KnownFormat::DateTime
                        | KnownFormat::Date
                        | KnownFormat::Uuid
                        | KnownFormat::Email
                        | KnownFormat::Binary
                ))
            );
            let states_its_own = object.pattern.is_some()
                || strict_format
                || object
                    .enum_values
                    .as_ref()
                    .is_some_and(|values| !values.is_empty());
            if is_string && !states_its_own {
                object.pattern = Some(NO_NUL_PATTERN.to_owned());
            }
            for property in object.properties.values_mut() {
                refuse_nul(property, components);
            }
            if let Some(additional) = object.additional_properties.as_deref_mut()
                && let AdditionalProperties::RefOr(values) = additional
            {
                refuse_nul(values, components);
            }
            match object.property_names.as_deref_mut() {
                Some(names) => refuse_nul_in(names, components),
                // An object open to other keys: its keys are strings a
                // client sends too.
                None if !matches!(
                    object.additional_properties.as_deref(),
                    Some(AdditionalProperties::FreeForm(false))
                ) && matches!(&object.schema_type, SchemaType::Type(Type::Object))
                    || matches!(&object.schema_type, SchemaType::Array(types) if types.contains(&Type::Object))
                    || matches!(&object.schema_type, SchemaType::AnyValue)
                        && object.additional_properties.is_some() =>
                {
                    object.property_names = Some(Box::new(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some(NO_NUL_PATTERN))
                            .into(),
                    ));
                }
                None => {}
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                refuse_nul(items, components);
            }
        }
        Schema::OneOf(one_of) => one_of
            .items
            .iter_mut()
            .for_each(|item| refuse_nul(item, components)),
        Schema::AllOf(all_of) => all_of
            .items
            .iter_mut()
            .for_each(|item| refuse_nul(item, components)),
        Schema::AnyOf(any_of) => any_of
            .items
            .iter_mut()
            .for_each(|item| refuse_nul(item, components)),
        _ => {}
    }
}

/// Any text without U+0000 (`\u0000` as JSON Schema's ECMA-262 regexes
/// and Python's read it).
pub const NO_NUL_PATTERN: &str = r"^[^\u0000]*$";

/// `If-Match` is `*` or a list of entity tags (RFC 9110): the schema says
/// so, so that a tester that draws header text from the schema sends tags
/// (that may not match: 412) rather than text no server would read as one.
fn state_if_match_syntax(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        if parameter.name == "If-Match" && parameter.parameter_in == ParameterIn::Header {
            parameter.schema = Some(RefOr::T(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(crate::core::records::IF_MATCH_PATTERN))
                    .examples(["\"3\""])
                    .into(),
            ));
        }
    }
}

/// Every write of a surface takes an `Idempotency-Key`; a retry gets the
/// first answer again, marked `Idempotent-Replayed`.
fn add_idempotency(operation: &mut Operation, surface: &SurfaceInfo) {
    let key = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(crate::core::idempotency::MAX_KEY_CHARS))
                // Visible ASCII, spaces only inside: HTTP trims a value's ends.
                .pattern(Some("^[\\x21-\\x7E]([\\x20-\\x7E]*[\\x21-\\x7E])?$")),
        ))
        .description(Some(
            "Makes the write safe to retry: a retry with the same key and the same request gets the first successful answer again (for 24 hours by default); nothing is written twice",
        ))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(RefOr::T(key));
    let responses = &mut operation.responses.responses;
    for (status, description) in [
        (
            "409",
            "A request with this Idempotency-Key is still being processed",
        ),
        (
            "422",
            "This Idempotency-Key was already used with a different request",
        ),
        (
            "400",
            "Invalid body or Idempotency-Key; every invalid field is listed",
        ),
    ] {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| envelope_response(surface, description));
    }
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && status.starts_with('2')
        {
            response
                .headers
                .entry("Idempotent-Replayed".to_owned())
                .or_insert_with(|| {
                    header(
                        Type::String,
                        "`true` when this is the kept answer to an earlier request with the same Idempotency-Key",
                    )
                });
        }
    }
}

/// A response of `surface`'s error envelope.
fn envelope_response(surface: &SurfaceInfo, description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                surface.error_media_type,
                ContentBuilder::new()
                    .schema(Some(schema::reference(&surface.error_schema())))
                    .build(),
            )
            .build(),
    )
}

fn add_shared_responses(operation: &mut Operation, surface: &SurfaceInfo) {
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
        responses
            .entry(status.to_owned())
            .or_insert_with(|| envelope_response(surface, description));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::error::status_of;

    #[test]
    fn every_route_of_a_surface_lies_under_its_prefix_and_no_other() {
        let routes = [
            (lance::router(), lance::Lance::NAME),
            (clientsuccess::router(), clientsuccess::ClientSuccess::NAME),
            (hood::router(), hood::Hood::NAME),
        ];
        for (router, name) in routes {
            let (_, document) = router.split_for_parts();
            assert!(!document.paths.paths.is_empty());
            for path in document.paths.paths.keys() {
                let found = surface_for_path(path).map(|surface| surface.name);
                assert_eq!(found, Some(name), "{path}");
                let under: Vec<&str> = SURFACES
                    .iter()
                    .filter(|surface| path.starts_with(surface.prefix))
                    .map(|surface| surface.name)
                    .collect();
                assert_eq!(under, [name], "{path} is under one prefix only");
            }
        }
    }

    #[test]
    fn paths_under_no_prefix_answer_in_the_first_surfaces_envelope() {
        assert_eq!(SURFACES[0].name, lance::Lance::NAME);
        for path in ["/nope", "/", "", "/v1/hood", "/v2"] {
            assert!(surface_for_path(path).is_none(), "{path}");
            let response = error_response_for_path(path, &DomainError::NoSuchRoute, "r");
            assert_eq!(response.status(), status_of(&DomainError::NoSuchRoute));
        }
        assert_eq!(
            surface_for_path("/v2/client").map(|surface| surface.error_media_type),
            Some(clientsuccess::PROBLEM_JSON)
        );
        assert_eq!(
            surface_for_path("/v1/hood/x").map(|surface| surface.error_schema()),
            Some(Cow::Borrowed("HoodError"))
        );
    }

    #[test]
    fn by_default_only_hood_is_limited_with_its_documented_windows() {
        let limits = default_rate_limits();
        assert_eq!(
            limits.by_surface.keys().copied().collect::<Vec<_>>(),
            [hood::Hood::NAME]
        );
        assert_eq!(
            PolicySetting(limits.policy(hood::Hood::NAME).cloned()).to_string(),
            "10/1s,150/1m"
        );
    }
}
