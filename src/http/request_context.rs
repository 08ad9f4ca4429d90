//! The per-request context: the server's own request id (a new UUID for
//! every request) and, beside it, the `X-Request-Id` the client sent when it
//! is sane. Both are carried by the request's tracing span into every log
//! line and readable anywhere in the request's task, so the audit trail can
//! store them and error envelopes can quote the server's.
//!
//! The client's id is kept for tracing but never becomes the request's id:
//! a client can send any id, including one the server gave another user's
//! request, and the logs and the audit trail must not let one user's
//! change pass for part of another user's request. The response carries
//! the server's id in `X-Request-Id` and echoes the client's in
//! `X-Client-Request-Id`.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Where a kept client request id is echoed on the response.
pub const CLIENT_REQUEST_ID_HEADER: &str = "x-client-request-id";
const MAX_REQUEST_ID_CHARS: usize = 128;

/// What the rest of the request may want to know about it.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The server's id of this request, never chosen by the client.
    pub request_id: String,
    /// The client's `X-Request-Id`, when it sent a sane one.
    pub client_request_id: Option<String>,
    pub path: String,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// The current request's id (the server's), or a placeholder outside a
/// request.
pub fn current_request_id() -> String {
    CONTEXT
        .try_with(|context| context.request_id.clone())
        .unwrap_or_else(|_| "-".to_owned())
}

/// The `X-Request-Id` the client sent with the current request, if it sent
/// a sane one.
pub fn current_client_request_id() -> Option<String> {
    CONTEXT
        .try_with(|context| context.client_request_id.clone())
        .ok()
        .flatten()
}

/// The current request's path, if inside a request.
pub fn current_path() -> Option<String> {
    CONTEXT.try_with(|context| context.path.clone()).ok()
}

/// A client-sent request id is kept only if it is short and made of
/// characters that cannot forge log lines or headers.
fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '+' | '='))
}

/// Middleware: sets up the context, logs the outcome of each request.
pub async fn request_context(request: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane(id))
        .map(str::to_owned);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // A field whose value is `None` is left out of the log line.
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        client_request_id = client_request_id.as_deref(),
        %method,
        %path
    );
    let context = RequestContext {
        request_id: request_id.clone(),
        client_request_id: client_request_id.clone(),
        path,
    };
    let started = Instant::now();
    let mut response = CONTEXT
        .scope(context, next.run(request).instrument(span.clone()))
        .await;
    for (name, id) in [
        (REQUEST_ID_HEADER, Some(request_id)),
        (CLIENT_REQUEST_ID_HEADER, client_request_id),
    ] {
        if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            response.headers_mut().insert(name, value);
        }
    }
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, elapsed_ms, "request finished"));
    response
}

#[cfg(test)]
mod tests {
    use super::is_sane;

    #[test]
    fn request_ids_must_be_short_and_plain() {
        assert!(is_sane("abc-123_x.y:z"));
        assert!(!is_sane(""));
        assert!(!is_sane("has space"));
        assert!(!is_sane("line\nbreak"));
        assert!(!is_sane(&"a".repeat(129)));
    }
}
