//! The per-request context: an `X-Request-Id` (the client's when it is
//! sane, else a new UUID) that is echoed on the response, carried by the
//! request's tracing span into every log line, and readable anywhere in the
//! request's task so error envelopes can quote it.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
const MAX_REQUEST_ID_CHARS: usize = 128;

/// What the rest of the request may want to know about it.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub request_id: String,
    pub path: String,
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// The current request's id, or a placeholder outside a request.
pub fn current_request_id() -> String {
    CONTEXT
        .try_with(|context| context.request_id.clone())
        .unwrap_or_else(|_| "-".to_owned())
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
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %request_id, %method, %path);
    let context = RequestContext {
        request_id: request_id.clone(),
        path,
    };
    let started = Instant::now();
    let mut response = CONTEXT
        .scope(context, next.run(request).instrument(span.clone()))
        .await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
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
