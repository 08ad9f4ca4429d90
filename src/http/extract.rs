//! Extractors whose rejections speak the surface's envelope: the caller's
//! identity, a JSON body within the size limit, a record id from the path,
//! and the `If-Match` precondition.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, IF_MATCH};
use axum::http::request::Parts;
use serde_json::Value;

use super::rate_limit::RateLimitSlot;
use super::{AppState, Failure, Surface};
use crate::core::auth::Principal;
use crate::core::error::{DomainError, FieldPath};
use crate::core::input::parse_json_strictly;
use crate::core::records::Precondition;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The authenticated caller of a request on surface `S`, within the
/// surface's rate limit for the caller's workspace.
pub struct Caller<S: Surface>(pub Principal, pub PhantomData<S>);

impl<S: Surface> FromRequestParts<AppState> for Caller<S> {
    type Rejection = Failure<S>;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = match parts.headers.get(AUTHORIZATION) {
            None => return Err(unauthenticated("Missing Authorization header")),
            Some(value) => value
                .to_str()
                .map_err(|_| unauthenticated("Authorization header is not valid text"))?,
        };
        let token = bearer_token(header, S::ACCEPTS_BARE_TOKEN)
            .ok_or_else(|| unauthenticated("Authorization header must be 'Bearer <token>'"))?;
        let mut principal = state.auth.authenticate(token).await?;
        principal.request_id = super::current_request_id();
        principal.client_request_id = super::request_context::current_client_request_id();
        if let Some(decision) = state.limiter.check(S::NAME, &principal.workspace).await? {
            if let Some(slot) = parts.extensions.get::<RateLimitSlot>() {
                slot.record(decision);
            }
            if !decision.allowed {
                return Err(DomainError::RateLimited {
                    retry_after_secs: decision.retry_after_secs,
                }
                .into());
            }
        }
        Ok(Caller(principal, PhantomData))
    }
}

fn unauthenticated<S: Surface>(message: &str) -> Failure<S> {
    DomainError::Unauthenticated(message.to_owned()).into()
}

/// The token of an `Authorization` header: after a case-insensitive
/// `Bearer `, or the whole value when bare tokens are allowed.
fn bearer_token(header: &str, accept_bare: bool) -> Option<&str> {
    let header = header.trim();
    match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Some(token.trim()).filter(|token| !token.is_empty())
        }
        Some(_) => None,
        None if accept_bare && !header.is_empty() => Some(header),
        None => None,
    }
}

/// A request body parsed as JSON, within [`MAX_BODY_BYTES`].
pub struct JsonBody<S: Surface>(pub Value, pub PhantomData<S>);

impl<S: Surface> FromRequest<AppState> for JsonBody<S> {
    type Rejection = Failure<S>;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = request.headers().get(CONTENT_TYPE) {
            let accepted = content_type
                .to_str()
                .ok()
                .and_then(|text| text.split(';').next())
                .map(|media| media.trim().to_ascii_lowercase())
                .is_some_and(|media| {
                    media == "application/json" || media == "application/merge-patch+json"
                });
            if !accepted {
                return Err(DomainError::UnsupportedMediaType(
                    "Content-Type must be application/json or application/merge-patch+json"
                        .to_owned(),
                )
                .into());
            }
        }
        let seconds = state.body_timeout.as_secs().max(1);
        let bytes = tokio::time::timeout(state.body_timeout, Bytes::from_request(request, state))
            .await
            .map_err(|_| DomainError::BodyTimeout { seconds })?
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    DomainError::PayloadTooLarge {
                        limit: MAX_BODY_BYTES,
                    }
                } else {
                    DomainError::MalformedBody(rejection.body_text())
                }
            })?;
        let value = parse_json_strictly(&bytes).map_err(DomainError::MalformedBody)?;
        // PostgreSQL's JSONB cannot hold U+0000, so a body with one would be
        // stored on SQLite and fail with a 500 on PostgreSQL; refuse it on
        // both, pointing at the field.
        if let Some(path) = nul_character_at(&value, FieldPath::root()) {
            return Err(DomainError::invalid(path, NUL_MESSAGE).into());
        }
        Ok(JsonBody(value, PhantomData))
    }
}

/// A JSON body that may be left out: a request with no body and no
/// `Content-Type` reads as `{}` (for actions whose body only has
/// optional fields); any other body is read as [`JsonBody`] reads it.
pub struct OptionalJsonBody<S: Surface>(pub Value, pub PhantomData<S>);

impl<S: Surface> FromRequest<AppState> for OptionalJsonBody<S> {
    type Rejection = Failure<S>;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = request.headers();
        let no_body = !headers.contains_key(CONTENT_TYPE)
            && !headers.contains_key(axum::http::header::TRANSFER_ENCODING)
            && headers
                .get(axum::http::header::CONTENT_LENGTH)
                .is_none_or(|length| length.as_bytes() == b"0");
        if no_body {
            return Ok(OptionalJsonBody(
                Value::Object(serde_json::Map::new()),
                PhantomData,
            ));
        }
        let JsonBody(value, _) = JsonBody::<S>::from_request(request, state).await?;
        Ok(OptionalJsonBody(value, PhantomData))
    }
}

const NUL_MESSAGE: &str = "Text must not contain the NUL character (U+0000)";

/// The path of the first string or object key that contains U+0000.
fn nul_character_at(value: &Value, path: FieldPath) -> Option<FieldPath> {
    match value {
        Value::String(text) => text.contains('\0').then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_character_at(item, path.index(index))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(path.key(key))
            } else {
                nul_character_at(item, path.key(key))
            }
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

/// The query string's `name=value` pairs, percent-decoded, in order.
pub struct QueryPairs<S: Surface>(pub Vec<(String, String)>, pub PhantomData<S>);

/// The one way a query string can fail to read as pairs.
pub const QUERY_NOT_READABLE: &str =
    "The query string is not valid: it must be URL-encoded UTF-8 (name=value pairs joined by &)";

impl<S: Surface> FromRequestParts<AppState> for QueryPairs<S> {
    type Rejection = Failure<S>;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        match query_pairs(parts.uri.query().unwrap_or_default()) {
            Some(pairs) => {
                // As in bodies: no text the server reads may hold U+0000
                // (the document states it on every parameter).
                let with_nul: Vec<crate::core::error::FieldError> = pairs
                    .iter()
                    .filter(|(name, value)| name.contains('\0') || value.contains('\0'))
                    .map(|(name, _)| crate::core::error::FieldError {
                        path: FieldPath::root().key(name),
                        message: "Must not contain the NUL character (U+0000)".to_owned(),
                    })
                    .collect();
                if with_nul.is_empty() {
                    Ok(QueryPairs(pairs, PhantomData))
                } else {
                    Err(DomainError::InvalidQuery(with_nul).into())
                }
            }
            None => Err(
                DomainError::InvalidQuery(vec![crate::core::error::FieldError {
                    path: FieldPath::root(),
                    message: QUERY_NOT_READABLE.to_owned(),
                }])
                .into(),
            ),
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs, refusing bytes that
/// are not UTF-8 once decoded. (The usual decoders replace them with U+FFFD,
/// which would filter on a value the client never sent.)
fn query_pairs(query: &str) -> Option<Vec<(String, String)>> {
    let decode = |text: &str| -> Option<String> {
        let spaced = text.replace('+', " ");
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(&spaced).collect();
        String::from_utf8(bytes).ok()
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(name)?, decode(value)?))
        })
        .collect()
}

/// The record id segment of the path, as sent.
pub struct PathId<S: Surface>(pub String, pub PhantomData<S>);

impl<S: Surface> FromRequestParts<AppState> for PathId<S> {
    type Rejection = Failure<S>;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // An id that does not percent-decode to UTF-8 names no record; keep
        // it as sent so the surface answers "not found" for it.
        let id = match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => id,
            Err(_) => parts
                .uri
                .path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        Ok(PathId(id, PhantomData))
    }
}

/// The `If-Match` precondition of a write.
pub struct IfMatch(pub Precondition);

impl FromRequestParts<AppState> for IfMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(IfMatch(
            parts
                .headers
                .get(IF_MATCH)
                .map(|value| {
                    Precondition::from_if_match(&String::from_utf8_lossy(value.as_bytes()))
                })
                .unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, nul_character_at};
    use crate::core::error::FieldPath;
    use serde_json::json;

    #[test]
    fn nul_characters_are_found_in_values_and_keys() {
        let root = FieldPath::root;
        assert_eq!(
            nul_character_at(&json!({"a": ["x", 1, null]}), root()),
            None
        );
        assert_eq!(
            nul_character_at(&json!({"a": [{"b": "x\0"}]}), root()),
            Some(root().key("a").index(0).key("b"))
        );
        assert_eq!(
            nul_character_at(&json!({"a\0": 1}), root()),
            Some(root().key("a\0"))
        );
    }

    #[test]
    fn query_pairs_decode_and_refuse_what_is_not_utf8() {
        assert_eq!(
            super::query_pairs("a=1&b=x+y%2Cz&&c&d="),
            Some(vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y,z".into()),
                ("c".into(), String::new()),
                ("d".into(), String::new()),
            ])
        );
        assert_eq!(super::query_pairs(""), Some(vec![]));
        assert_eq!(super::query_pairs("email=%FF"), None);
        assert_eq!(super::query_pairs("%C3=1"), None);
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(bearer_token("Bearer abc", false), Some("abc"));
        assert_eq!(bearer_token("bearer  abc ", false), Some("abc"));
        assert_eq!(bearer_token("Basic abc", false), None);
        assert_eq!(bearer_token("abc", false), None);
        assert_eq!(bearer_token("abc", true), Some("abc"));
        assert_eq!(bearer_token("Bearer ", false), None);
    }
}
