//! The two baselines every workload is compared with: the storage floor
//! (the PATCH's transaction in process, no HTTP), what the server could do
//! if HTTP cost nothing, and the HTTP ceiling (a bare axum handler with a
//! fixed JSON body, served by `clientele-bench ceiling`), what it could do
//! if storage cost nothing.

use std::process::Command;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;

use crate::fixture::{SeedPatch, SharedStore};
use crate::load::{Measured, Workload};
use crate::server::Server;

/// `clientele-bench ceiling`: a server that does as little as an HTTP
/// server can and still answer with JSON, to measure wrk and the network
/// stack alone.
pub async fn ceiling(listen: String) -> Result<(), String> {
    let body = json!({"id": "550e8400-e29b-41d4-a716-446655440000", "name": "Fixed", "ok": true});
    let app = axum::Router::new().fallback(axum::routing::any(move || {
        let body = body.clone();
        async move { axum::Json(body) }
    }));
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|error| format!("bind {listen}: {error}"))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    println!("ceiling listening on http://{address}");
    axum::serve(listener, app)
        .await
        .map_err(|error| error.to_string())
}

/// The ceiling's load: wrk's plain GET of `/`.
pub const CEILING: Workload = Workload::new("HTTP ceiling", "ceiling", None);

/// Starts this harness's own `ceiling` command as a child.
pub fn start_ceiling() -> Result<Server, String> {
    let mut ceiling = Command::new(std::env::current_exe().map_err(|error| error.to_string())?);
    ceiling.arg("ceiling");
    Server::start(ceiling)
}

/// The storage floor: the PATCH's transaction, back to back, in process.
pub async fn storage_floor(
    store: &SharedStore,
    ids: &[String],
    seconds: u64,
) -> Result<Measured, String> {
    let seed = SeedPatch::new(store);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut latencies = Vec::new();
    let started = Instant::now();
    while Instant::now() < deadline {
        let id = &ids[rand::rng().random_range(0..ids.len())];
        let patch = seed.read()?;
        let began = Instant::now();
        seed.apply(patch, id).await?;
        latencies.push(began.elapsed());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |fraction: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * fraction) as usize)
            .map_or(0.0, |duration| duration.as_secs_f64() * 1000.0)
    };
    Ok(Measured {
        requests: latencies.len() as u64,
        requests_per_second: latencies.len() as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        errors: 0,
    })
}
