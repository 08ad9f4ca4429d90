//! The `Idempotency-Key` header on every write (POST, PATCH, DELETE) of
//! every surface. A handler asks [`Idempotent::begin`] before it writes: a
//! retry of a request that already succeeded gets its response again, byte
//! for byte, with `Idempotent-Replayed: true`; otherwise the handler writes
//! with the [`Writing::keeper`] it got, which keeps the response in the
//! write's own transaction (see [`crate::core::idempotency`]), and answers
//! through [`Writing::respond`].
//!
//! Responses are [`Reply`] values — status, headers, body bytes — so the one
//! kept and the one sent are the same bytes.

use std::marker::PhantomData;
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::header::{CONTENT_TYPE, ETAG, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::{AppState, Failure, Surface};
use crate::core::auth::Principal;
use crate::core::error::DomainError;
use crate::core::idempotency::{Begin, Idempotency, KeptResponse, Run};
use crate::core::records::Keeper;

/// The request header a client names its write with.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header that marks a replayed answer.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The headers of a response that a replay repeats; the others (request
/// id, rate-limit counters) describe the request that gets the replay.
const KEPT_HEADERS: [HeaderName; 3] = [CONTENT_TYPE, ETAG, LOCATION];

/// A response as its bytes, so the one kept and the one sent are the same.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Reply {
    /// `value` as a JSON body.
    pub fn json(status: StatusCode, value: &impl Serialize) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply {
                status,
                headers: vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                body: Bytes::from(body),
            },
            // Our views always serialise; if one ever does not, say so
            // without a half-written body.
            Err(error) => {
                tracing::error!(%error, "a response did not serialise");
                Reply::empty(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// No body.
    pub fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// With one more header (a value that is not a valid header is left out).
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Reply {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }

    fn kept(&self) -> KeptResponse {
        KeptResponse {
            status: self.status.as_u16(),
            headers: self
                .headers
                .iter()
                .filter(|(name, _)| KEPT_HEADERS.contains(name))
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                })
                .collect(),
            body: self.body.to_vec(),
        }
    }

    fn replayed(kept: KeptResponse) -> Response {
        let mut reply = Reply {
            status: StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK),
            headers: Vec::new(),
            body: Bytes::from(kept.body),
        };
        for (name, value) in &kept.headers {
            if let Ok(name) = HeaderName::try_from(name.as_str()) {
                reply = reply.with_header(name, value);
            }
        }
        let mut response = reply.into_response();
        response.headers_mut().insert(
            HeaderName::from_static(IDEMPOTENT_REPLAYED),
            HeaderValue::from_static("true"),
        );
        response
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.remove(CONTENT_TYPE);
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// The `Idempotency-Key` of a write on surface `S`, if the client sent
/// one, with what its fingerprint covers besides the body.
pub struct Idempotent<S: Surface> {
    key: Option<String>,
    method: String,
    path: String,
    surface: PhantomData<S>,
}

impl<S: Surface> FromRequestParts<AppState> for Idempotent<S> {
    type Rejection = Failure<S>;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let key =
            match parts.headers.get(IDEMPOTENCY_KEY) {
                None => None,
                Some(value) => Some(value.to_str().map(str::to_owned).map_err(|_| {
                    DomainError::InvalidHeader {
                        name: "Idempotency-Key",
                        message: "it must be visible ASCII text".to_owned(),
                    }
                })?),
            };
        Ok(Idempotent {
            key,
            method: parts.method.as_str().to_owned(),
            // The query is part of the request: `?dryRun=true` is not the
            // request without it.
            path: parts.uri.path_and_query().map_or_else(
                || parts.uri.path().to_owned(),
                |path| path.as_str().to_owned(),
            ),
            surface: PhantomData,
        })
    }
}

/// What a write does after [`Idempotent::begin`].
pub enum Started {
    /// A retry of a request that succeeded: its response, again.
    Replay(Response),
    /// Write, keeping the response if there is a key.
    Run(Writing),
}

/// A write in progress, holding its key's claim (if it has a key).
pub struct Writing {
    run: Option<Run>,
}

impl<S: Surface> Idempotent<S> {
    /// Claims the key for this request (`body` is what it sent, if any), or
    /// answers a retry; without a key, just writes.
    pub async fn begin(
        &self,
        app: &AppState,
        principal: &Principal,
        body: Option<&Value>,
    ) -> Result<Started, DomainError> {
        let Some(key) = &self.key else {
            return Ok(Started::Run(Writing { run: None }));
        };
        let key =
            Idempotency::key_of(principal, key).map_err(|message| DomainError::InvalidHeader {
                name: "Idempotency-Key",
                message,
            })?;
        // The body as parsed (keys in order), so only its content counts.
        let body = body.map(|body| body.to_string()).unwrap_or_default();
        let fingerprint = Idempotency::fingerprint(&self.method, &self.path, body.as_bytes());
        Ok(match app.idempotency.begin(key, fingerprint).await? {
            Begin::Replay(kept) => Started::Replay(Reply::replayed(kept)),
            Begin::Run(run) => Started::Run(Writing { run: Some(run) }),
        })
    }
}

/// A test's fault injection: `CLIENTELE_FAULT=exit-after-kept-write` makes
/// the process kill itself (SIGKILL) right after a write that kept its
/// response committed, before the response is sent — the moment a retry
/// must replay, not write again. Read once; never set in production.
static EXIT_AFTER_KEPT_WRITE: LazyLock<bool> = LazyLock::new(|| {
    std::env::var("CLIENTELE_FAULT").is_ok_and(|fault| fault == "exit-after-kept-write")
});

impl Writing {
    /// What the write keeps with itself: the response `render` makes of
    /// the written result. `None` without a key.
    pub fn keeper<R: 'static>(
        &self,
        render: impl FnOnce(&R) -> Reply + Send + 'static,
    ) -> Option<Keeper<R>> {
        let run = self.run.as_ref()?;
        Some(Keeper {
            key: run.key().clone(),
            fingerprint: run.fingerprint().to_owned(),
            render: Box::new(move |result| render(result).kept()),
        })
    }

    /// Answers with `reply` once the write committed, ending the claim.
    pub fn respond(self, reply: Reply) -> Response {
        if self.run.is_some() && *EXIT_AFTER_KEPT_WRITE {
            tracing::error!("CLIENTELE_FAULT=exit-after-kept-write: killing the process");
            // SIGKILL, as an operator's kill -9 would: nothing runs after it.
            let _ = std::process::Command::new("kill")
                .args(["-9", &std::process::id().to_string()])
                .status();
            std::process::abort();
        }
        if let Some(run) = self.run {
            run.kept();
        }
        reply.into_response()
    }
}
