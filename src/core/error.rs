//! The one domain error type. The core reports every failure as a
//! [`DomainError`] (a storage failure converts into one with `?`); the HTTP
//! layer decides its status code and each surface renders it in its
//! vendor's own envelope. Nothing here knows about HTTP status codes or
//! wire formats.

use std::fmt;

use serde::Serialize;

use crate::store::StoreError;

/// One segment of the path to a field inside a request body: an object key
/// or an array index. Serialises untagged, so a path reads
/// `["customFilterCriteria", 0, "value"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// The location of a field inside a request body, from the root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FieldPath(Vec<PathSegment>);

impl FieldPath {
    /// The body itself.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// The path of `key` inside the object at this path.
    pub fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Key(key.to_owned()));
        Self(segments)
    }

    /// The path of element `index` inside the array at this path.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Index(index));
        Self(segments)
    }

    /// `inner` (a path inside the value at this path) from the root.
    pub fn join(&self, inner: &FieldPath) -> Self {
        let mut segments = self.0.clone();
        segments.extend(inner.0.iter().cloned());
        Self(segments)
    }

    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    /// RFC 6901 JSON pointer (`/customFilterCriteria/0/value`), as used by
    /// problem-details envelopes.
    pub fn to_json_pointer(&self) -> String {
        let mut pointer = String::new();
        for segment in &self.0 {
            pointer.push('/');
            match segment {
                PathSegment::Key(key) => {
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                PathSegment::Index(index) => pointer.push_str(&index.to_string()),
            }
        }
        pointer
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(body)");
        }
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Key(key) if position == 0 => write!(f, "{key}")?,
                PathSegment::Key(key) => write!(f, ".{key}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One invalid field: where it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub path: FieldPath,
    pub message: String,
}

/// The kinds of record the core manages; surfaces use it to word messages
/// ("ICP not found: …").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Icp,
    /// A ClientSuccess client.
    Client,
    /// An Ocamba Hood profile.
    HoodProfile,
    /// An Ocamba Hood profile list.
    HoodProfileList,
    /// An unsubscribed Hood email or phone number, refused on new profiles.
    HoodSuppression,
    /// An Ocamba Hood profile import (an uploaded file and its report).
    HoodProfileImport,
    /// A Lance person (a lead).
    Person,
    /// A Lance company.
    Company,
    /// A Lance lead list.
    LeadList,
    /// A webhook subscription (Clientele's own API).
    Webhook,
    /// The change feed (Clientele's own API).
    Event,
}

impl RecordKind {
    /// The stable name stored with each record.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Icp => "icp",
            RecordKind::Client => "client",
            RecordKind::HoodProfile => "hood_profile",
            RecordKind::HoodProfileList => "hood_profile_list",
            RecordKind::HoodSuppression => "hood_suppression",
            RecordKind::HoodProfileImport => "hood_profile_import",
            RecordKind::Person => "person",
            RecordKind::Company => "company",
            RecordKind::LeadList => "lead_list",
            RecordKind::Webhook => "webhook",
            RecordKind::Event => "event",
        }
    }
}

/// Everything that can go wrong in the core, independent of any vendor's
/// wire format.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainError {
    /// The body is well-formed JSON but one or more fields are invalid.
    /// Always carries every invalid field, never only the first.
    Invalid(Vec<FieldError>),
    /// One or more query parameters are invalid; each error's path is the
    /// parameter's name (the root for the query string as a whole).
    InvalidQuery(Vec<FieldError>),
    /// The body could not be read as JSON at all.
    MalformedBody(String),
    /// The body's media type is not one the route accepts.
    UnsupportedMediaType(String),
    /// The body exceeds the configured size limit (bytes).
    PayloadTooLarge { limit: usize },
    /// No route has this path.
    NoSuchRoute,
    /// The path exists but not with this method.
    MethodNotAllowed,
    /// The client did not finish sending its body in time.
    BodyTimeout { seconds: u64 },
    /// No credentials, or credentials that are not valid.
    Unauthenticated(String),
    /// The caller is authenticated but may not touch this record.
    Forbidden { kind: RecordKind },
    /// No such record in the caller's workspace (records of other workspaces
    /// are reported the same way, never as forbidden).
    NotFound { kind: RecordKind, id: String },
    /// A request header is not what the server accepts.
    InvalidHeader { name: &'static str, message: String },
    /// An idempotency key was sent again with a different request.
    IdempotencyKeyReused,
    /// An idempotency key was sent again while its first request runs.
    IdempotencyKeyInUse,
    /// `If-Match` named a version that is no longer current.
    PreconditionFailed { current_etag: String },
    /// The workspace sent more requests than the surface's rate limit
    /// allows; retrying after `retry_after_secs` may work.
    RateLimited { retry_after_secs: u64 },
    /// The request is well-formed, but what it names cannot be done as it
    /// stands (e.g. an ICP criterion that needs an evaluator none is
    /// configured for); each error points at the field to change.
    Unprocessable(Vec<FieldError>),
    /// The record's state forbids the request (e.g. an expired ICP); the
    /// text says why and what to change.
    Conflict(String),
    /// The storage backend is unreachable or overloaded; retrying may work.
    Unavailable(String),
    /// A bug or an unexpected backend failure. The text is for the log only.
    Internal(String),
}

impl DomainError {
    /// A single invalid query parameter.
    pub fn invalid_parameter(name: &str, message: impl Into<String>) -> Self {
        DomainError::InvalidQuery(vec![FieldError {
            path: FieldPath::root().key(name),
            message: message.into(),
        }])
    }

    /// The same errors, about query parameters rather than a body (for a
    /// reader that read a query string).
    pub fn in_query(self) -> Self {
        match self {
            DomainError::Invalid(errors) => DomainError::InvalidQuery(errors),
            other => other,
        }
    }

    /// A single-field validation error.
    pub fn invalid(path: FieldPath, message: impl Into<String>) -> Self {
        DomainError::Invalid(vec![FieldError {
            path,
            message: message.into(),
        }])
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainError::Invalid(errors) => {
                write!(f, "invalid request body:")?;
                for error in errors {
                    write!(f, " {}: {};", error.path, error.message)?;
                }
                Ok(())
            }
            DomainError::Unprocessable(errors) => {
                write!(f, "cannot be processed:")?;
                for error in errors {
                    write!(f, " {}: {};", error.path, error.message)?;
                }
                Ok(())
            }
            DomainError::Conflict(reason) => write!(f, "conflict: {reason}"),
            DomainError::InvalidQuery(errors) => {
                write!(f, "invalid query parameters:")?;
                for error in errors {
                    write!(f, " {}: {};", error.path, error.message)?;
                }
                Ok(())
            }
            DomainError::MalformedBody(detail) => write!(f, "malformed JSON body: {detail}"),
            DomainError::UnsupportedMediaType(detail) => write!(f, "{detail}"),
            DomainError::PayloadTooLarge { limit } => {
                write!(f, "request body exceeds {limit} bytes")
            }
            DomainError::NoSuchRoute => write!(f, "no route matches this path"),
            DomainError::MethodNotAllowed => write!(f, "method not allowed on this path"),
            DomainError::BodyTimeout { seconds } => {
                write!(f, "request body not received within {seconds} s")
            }
            DomainError::Unauthenticated(detail) => write!(f, "unauthenticated: {detail}"),
            DomainError::RateLimited { retry_after_secs } => {
                write!(f, "rate limited; retry after {retry_after_secs} s")
            }
            DomainError::Forbidden { kind } => write!(f, "forbidden {}", kind.as_str()),
            DomainError::NotFound { kind, id } => write!(f, "{} not found: {id}", kind.as_str()),
            DomainError::InvalidHeader { name, message } => write!(f, "{name}: {message}"),
            DomainError::IdempotencyKeyReused => {
                write!(f, "idempotency key reused with another request")
            }
            DomainError::IdempotencyKeyInUse => {
                write!(f, "idempotency key in use by a running request")
            }
            DomainError::PreconditionFailed { current_etag } => {
                write!(f, "precondition failed; current ETag is {current_etag}")
            }
            DomainError::Unavailable(detail) => write!(f, "service unavailable: {detail}"),
            DomainError::Internal(detail) => write!(f, "internal error: {detail}"),
        }
    }
}

impl std::error::Error for DomainError {}

/// A storage failure as a caller sees it: an outage may pass (503, retry),
/// anything else is the server's fault (500; the detail goes to the log).
impl From<StoreError> for DomainError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => DomainError::Unavailable(detail),
            other => DomainError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_serialise_as_arrays_of_keys_and_indexes() {
        let path = FieldPath::root()
            .key("customFilterCriteria")
            .index(0)
            .key("value");
        assert_eq!(
            serde_json::to_value(&path).ok(),
            Some(serde_json::json!(["customFilterCriteria", 0, "value"]))
        );
        assert_eq!(path.to_json_pointer(), "/customFilterCriteria/0/value");
        assert_eq!(path.to_string(), "customFilterCriteria[0].value");
    }

    #[test]
    fn json_pointer_escapes_tilde_and_slash() {
        let path = FieldPath::root().key("a/b~c");
        assert_eq!(path.to_json_pointer(), "/a~1b~0c");
    }
}
