//! `/metrics`: the server's measurements in the Prometheus text format
//! (version 0.0.4), served on a listener of its own (`--metrics-listen`),
//! never on the API's.
//!
//! Requests are counted by [`track`], a middleware on every route: by
//! surface, route template (axum's [`MatchedPath`], so `{id}` and never a
//! real id; requests that match no route are one value, `unmatched`),
//! method and status, with a latency histogram per surface, route and
//! method. Counting is a read lock on a label map that only a new label set
//! writes to, and atomic adds: no request waits for another. Everything
//! else is read when scraped, from what the core and the store already
//! keep: rate-limit refusals, the API key cache, the store's write batches
//! and pools ([`crate::core::records::StoreStats`]), and the process's
//! resident memory from `/proc/self/status` (Linux; left out elsewhere).
//!
//! The encoding is `prometheus-client`'s: it keeps a registry per
//! application rather than a global recorder (the tests run several servers
//! in one process), and its text encoder is the one the format's authors
//! maintain. Its own histogram takes a lock per observation, so histograms
//! here are the store's lock-free [`Histogram`], encoded through it.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::core::auth::Authenticator;
use crate::core::ratelimit::Limiter;
use crate::core::records::{Histogram, HistogramSnapshot, Records, SECONDS_BUCKETS};

/// The label value of a request that matched no route (its raw path would
/// give every scanner's probe a series of its own).
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    surface: &'static str,
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    surface: &'static str,
    route: String,
    method: &'static str,
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), fmt::Error> {
        encode_histogram(encoder, &self.snapshot())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn encode_histogram(mut encoder: MetricEncoder, snapshot: &HistogramSnapshot) -> fmt::Result {
    // The encoder writes the `+Inf` bucket itself, from the count.
    let finite: Vec<(f64, u64)> = snapshot
        .buckets
        .iter()
        .copied()
        .filter(|(bound, _)| bound.is_finite())
        .collect();
    encoder.encode_histogram::<NoLabelSet>(snapshot.sum, snapshot.count, &finite, None)
}

fn request_histogram() -> Histogram {
    Histogram::new(SECONDS_BUCKETS)
}

/// The per-request measurements, and the surface of a path.
pub struct RequestMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// The surface whose prefix a path has, or `other` (the surfaces sit
    /// above this layer, so the application passes this in).
    surface_of: fn(&str) -> &'static str,
}

impl RequestMetrics {
    fn record(
        &self,
        surface: &'static str,
        route: Option<String>,
        method: &'static str,
        status: u16,
        seconds: f64,
    ) {
        let route = route.unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
        self.durations
            .get_or_create(&RouteLabels {
                surface,
                route: route.clone(),
                method,
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                surface,
                route,
                method,
                status,
            })
            .inc();
    }
}

/// A method as a label value: the standard ones by name, any other as
/// `other`, so a client cannot add series by inventing methods.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts and times each request, by its route template. Must
/// be added with `Router::layer` after the routes and fallbacks, so that
/// the route has been matched when it runs. The time is until the response
/// head is ready (a streamed body's transfer is not in it).
pub async fn track(
    State(metrics): State<Arc<RequestMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let surface = (metrics.surface_of)(request.uri().path());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());
    let method = method_label(request.method());
    let response = next.run(request).await;
    metrics.record(
        surface,
        route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// What is read when scraped: the core's counters and the store's stats.
struct ScrapeTime {
    records: Records,
    auth: Authenticator,
    limiter: Limiter,
}

impl fmt::Debug for ScrapeTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScrapeTime")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(&[(&str, &str)], u64)],
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in values {
        ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(&[(&str, &str)], u64)],
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn histograms(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(&[(&str, &str)], &HistogramSnapshot)],
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, snapshot) in values {
        encode_histogram(metric.encode_family(labels)?, snapshot)?;
    }
    Ok(())
}

impl Collector for ScrapeTime {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let counts = self.limiter.rejections();
        let surfaces: Vec<[(&str, &str); 1]> = counts
            .iter()
            .map(|(surface, _)| [("surface", *surface)])
            .collect();
        let values: Vec<(&[(&str, &str)], u64)> = surfaces
            .iter()
            .zip(&counts)
            .map(|(labels, (_, count))| (labels.as_slice(), *count))
            .collect();
        counter(
            &mut encoder,
            "clientele_rate_limit_rejections",
            "Requests refused with 429 by a surface's rate limit.",
            &values,
        )?;

        let (hits, misses) = self.auth.key_cache_counts();
        counter(
            &mut encoder,
            "clientele_api_key_cache_lookups",
            "API key lookups, answered by the key cache (hit) or by the database (miss).",
            &[
                (&[("result", "hit")], hits),
                (&[("result", "miss")], misses),
            ],
        )?;

        let stats = self.records.store_stats();
        let backend = [("backend", stats.backend)];
        gauge(
            &mut encoder,
            "clientele_store_info",
            "The storage backend (always 1).",
            &[(&backend, 1)],
        )?;
        let writers: Vec<[(&str, &str); 1]> = stats
            .writers
            .iter()
            .map(|writer| [("writer", writer.writer)])
            .collect();
        let each = |pick: fn(&crate::core::records::WriterReport) -> &HistogramSnapshot| {
            writers
                .iter()
                .zip(&stats.writers)
                .map(|(labels, writer)| (labels.as_slice(), pick(writer)))
                .collect::<Vec<_>>()
        };
        histograms(
            &mut encoder,
            "clientele_store_write_batch_size",
            "Write sessions committed together by one COMMIT (group commit; 1 per transaction on PostgreSQL).",
            &each(|writer| &writer.batch_size),
        )?;
        histograms(
            &mut encoder,
            "clientele_store_commit_duration_seconds",
            "Time of each COMMIT, including the WAL flush (fsync) it waits for.",
            &each(|writer| &writer.commit_seconds),
        )?;
        histograms(
            &mut encoder,
            "clientele_store_write_wait_seconds",
            "Time a write waited for the write connection (SQLite's writer, a PostgreSQL pool connection).",
            &each(|writer| &writer.wait_seconds),
        )?;
        let waiting: Vec<(&[(&str, &str)], u64)> = writers
            .iter()
            .zip(&stats.writers)
            .map(|(labels, writer)| (labels.as_slice(), writer.waiting))
            .collect();
        gauge(
            &mut encoder,
            "clientele_store_write_waiting",
            "Writes waiting for the write connection now.",
            &waiting,
        )?;

        let states: Vec<[(&str, &str); 2]> = stats
            .pools
            .iter()
            .flat_map(|pool| {
                [
                    [("pool", pool.pool), ("state", "idle")],
                    [("pool", pool.pool), ("state", "in_use")],
                ]
            })
            .collect();
        let values: Vec<u64> = stats
            .pools
            .iter()
            .flat_map(|pool| [pool.idle, pool.in_use])
            .collect();
        let connections: Vec<(&[(&str, &str)], u64)> = states
            .iter()
            .zip(values)
            .map(|(labels, value)| (labels.as_slice(), value))
            .collect();
        gauge(
            &mut encoder,
            "clientele_store_pool_connections",
            "Open connections of each pool, idle or in use.",
            &connections,
        )?;
        let limited: Vec<([(&str, &str); 1], u64)> = stats
            .pools
            .iter()
            .filter_map(|pool| pool.max.map(|max| ([("pool", pool.pool)], max)))
            .collect();
        let maxima: Vec<(&[(&str, &str)], u64)> = limited
            .iter()
            .map(|(labels, max)| (labels.as_slice(), *max))
            .collect();
        gauge(
            &mut encoder,
            "clientele_store_pool_max_connections",
            "The most connections a pool opens (pools with a fixed maximum).",
            &maxima,
        )?;

        if let Some(memory) = process_memory() {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident set size (VmRSS of /proc/self/status).",
                &[(&[], memory.resident)],
            )?;
            gauge(
                &mut encoder,
                "clientele_process_resident_memory_peak_bytes",
                "Peak resident set size (VmHWM of /proc/self/status).",
                &[(&[], memory.peak)],
            )?;
        }
        Ok(())
    }
}

struct ProcessMemory {
    resident: u64,
    peak: u64,
}

/// The process's resident set now and at its peak, from `/proc/self/status`
/// (`VmRSS`, `VmHWM`, in KiB there); `None` where that file does not exist.
/// Resident pages include the file pages SQLite maps (`mmap_size`) that the
/// process touched; see the README's Performance section.
fn process_memory() -> Option<ProcessMemory> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some(ProcessMemory {
        resident: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

/// The metrics of one application: the request middleware's state and the
/// registry a scrape encodes.
pub struct Metrics {
    pub requests: Arc<RequestMetrics>,
    registry: Registry,
}

impl Metrics {
    pub fn new(
        records: Records,
        auth: Authenticator,
        limiter: Limiter,
        surface_of: fn(&str) -> &'static str,
    ) -> Self {
        let requests = Arc::new(RequestMetrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(request_histogram),
            surface_of,
        });
        let mut registry = Registry::default();
        registry.register(
            "clientele_http_requests",
            "HTTP requests answered, by surface, route template, method and status",
            requests.requests.clone(),
        );
        registry.register(
            "clientele_http_request_duration_seconds",
            "Time from a request's arrival to its response head, by surface, route template and method",
            requests.durations.clone(),
        );
        registry.register_collector(Box::new(ScrapeTime {
            records,
            auth,
            limiter,
        }));
        Self { requests, registry }
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// The router of the metrics listener: `GET /metrics`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/metrics", axum::routing::get(scrape))
            .with_state(self)
    }
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "metrics could not be encoded");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
