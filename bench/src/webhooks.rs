//! `clientele-bench webhooks`: what one webhook subscription costs the
//! writes that feed it, and how soon its deliveries arrive. This module
//! owns the receiver (an axum server in this process, on loopback, that
//! answers 204 and notes per delivery when it arrived and the event's
//! `timestamp`), the open-loop writer of the lag run, the calls to the
//! subscription and feed routes, and WEBHOOKS.md. One server and one
//! database serve every run:
//!
//! 1. Throughput: wrk's PATCH ICP (the Lance seed's body, random ICPs) at
//!    `--connections`, once without a subscription (A) and once with one
//!    (`icp.*`) to the receiver (B), `--rounds` times. After each B run it
//!    waits (up to `--drain-timeout`) until every event the change feed
//!    lists for the run has arrived, and reports the deliveries received
//!    during and after the run, the drain time and the subscription's
//!    deliveries still pending; then it unsubscribes.
//! 2. Lag: PATCHes sent at a steady `--rate` for `--seconds`, each at its
//!    time whatever the earlier ones are doing (open loop), once without a
//!    subscription (for the write latency and CPU beside) and once with a
//!    fresh one; then the receive time minus the event's timestamp for
//!    each event's first delivery.
//!
//! Events are counted from the feed (`GET /clientele/v1/events`), not from
//! the load generators: a request wrk abandons when its time is up may
//! still commit.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::cli::{Backend, WebhooksArgs};
use crate::cpu::cpu_seconds;
use crate::fixture::{fresh_database, install_tls_provider, load, seed_patch_body};
use crate::load::{Measured, Workload, write_ids, wrk};
use crate::report::{heading, publish};
use crate::server::{Server, serve_command, server_binary};

/// The event types subscribed to, and counted in the feed.
const EVENT_TYPES: &str = "icp.*";
/// The feed's largest page.
const FEED_PAGE: usize = 1000;

pub async fn webhooks(args: WebhooksArgs) -> Result<(), String> {
    if args.seconds == 0 || args.rate == 0 || args.rounds == 0 || args.records == 0 {
        return Err("--seconds, --rate, --rounds and --records must be above 0".into());
    }
    let binary = server_binary(args.target.server_binary.as_ref())?;
    let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
    let database = fresh_database(args.target.backend, &args.target.postgres_url)?;
    // The store is closed before the server opens the database.
    let (store, token, ids) = load(&args.target, &database.url, args.records).await?;
    drop(store);
    let files = write_ids(scratch.path(), &ids)?;

    let receiver = Receiver::start().await?;
    let log = scratch.path().join("server.log");
    let server = start_server(&binary, &database.url, scratch.path(), &log)?;
    let mut bench = Bench {
        args: &args,
        api: Api::new(&server.url, &token)?,
        receiver,
        server_pid: server.pid(),
        feed: Feed::default(),
    };
    // The server is stopped whatever happened, before any error returns.
    let measured = bench.measure(&files.icps, &ids.icps).await;
    let peak_mib = server.peak_memory_mib();
    server.stop();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let (runs, steady) = measured.map_err(|error| {
        // The scratch directory goes with the error: the server's own
        // account of a failure is shown now or never.
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        format!(
            "{error}\nthe server's log (last {} lines):\n{}",
            tail.len(),
            tail.join("\n")
        )
    })?;
    let malformed = bench.receiver.malformed();

    let autovacuum = match args.target.backend {
        Backend::Postgres => postgres_setting(&database.url, "autovacuum"),
        Backend::Sqlite => None,
    };
    let report = report(
        &args,
        autovacuum.as_deref(),
        &runs,
        &steady,
        peak_mib,
        malformed,
        &log,
    );
    publish(
        &args.target.results("WEBHOOKS"),
        "Webhook benchmark",
        "clientele-bench webhooks",
        &report,
    )?;
    println!("{}", summary(args.target.backend, &runs, &steady));
    Ok(())
}

/// A PostgreSQL setting (`SHOW name`), if psql can read it.
fn postgres_setting(database_url: &str, name: &str) -> Option<String> {
    let output = Command::new("psql")
        .args([database_url, "-Atc", &format!("SHOW {name}")])
        .output()
        .ok()?;
    let value = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !value.is_empty()).then_some(value)
}

/// `clientele serve` with loopback targets allowed, its key file in
/// `scratch` and its log (warnings and errors) in `log`.
fn start_server(
    binary: &Path,
    database_url: &str,
    scratch: &Path,
    log: &Path,
) -> Result<Server, String> {
    let mut command = serve_command(binary, database_url);
    command
        .arg("--webhook-allow-private")
        .arg("--webhook-key-file")
        .arg(scratch.join("webhook-key"));
    let log = std::fs::File::create(log).map_err(|error| format!("server log: {error}"))?;
    Server::start_with_stderr(command, Stdio::from(log))
}

/// What every run uses: the settings, the server's routes and process, the
/// receiver, and the feed's cursor.
struct Bench<'a> {
    args: &'a WebhooksArgs,
    api: Api,
    receiver: Receiver,
    server_pid: u32,
    feed: Feed,
}

/// CPU time (user and system) of the server and of this process (the
/// receiver, and the writer of the lag run), s.
#[derive(Clone, Copy, Default)]
struct Cpu {
    server_s: f64,
    harness_s: f64,
}

impl Cpu {
    fn now(server_pid: u32) -> Self {
        Self {
            server_s: cpu_seconds(&server_pid.to_string()),
            harness_s: cpu_seconds("self"),
        }
    }

    fn since(&self, earlier: &Self) -> Self {
        Self {
            server_s: self.server_s - earlier.server_s,
            harness_s: self.harness_s - earlier.harness_s,
        }
    }
}

/// One delivery as the receiver saw it.
#[derive(Clone, Copy)]
struct Received {
    /// The event's sequence number: its id without `evt_`.
    seq: i64,
    /// When it arrived, µs since the epoch.
    at_us: i64,
    /// The event's `timestamp`, ms since the epoch.
    event_ms: i64,
}

#[derive(Default)]
struct Inbox {
    received: Vec<Received>,
    /// Deliveries whose body had no readable `id` or `timestamp`.
    malformed: u64,
}

/// The webhook target: answers every POST to `/hook` with 204 at once.
struct Receiver {
    url: String,
    inbox: Arc<Mutex<Inbox>>,
}

impl Receiver {
    async fn start() -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| format!("receiver: {error}"))?;
        let address = listener
            .local_addr()
            .map_err(|error| format!("receiver: {error}"))?;
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inbox.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("receiver stopped: {error}");
            }
        });
        Ok(Self {
            url: format!("http://{address}/hook"),
            inbox,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The deliveries of the events in `span`, in arrival order.
    fn deliveries(&self, span: &Span) -> Vec<Received> {
        self.lock()
            .received
            .iter()
            .filter(|received| span.holds(received.seq))
            .copied()
            .collect()
    }

    /// How many distinct events of `span` have arrived.
    fn distinct(&self, span: &Span) -> u64 {
        let inbox = self.lock();
        let mut seen: Vec<i64> = inbox
            .received
            .iter()
            .filter(|received| span.holds(received.seq))
            .map(|received| received.seq)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() as u64
    }

    fn malformed(&self) -> u64 {
        self.lock().malformed
    }
}

async fn receive(State(inbox): State<Arc<Mutex<Inbox>>>, body: Bytes) -> StatusCode {
    let at_us = Utc::now().timestamp_micros();
    let read = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|event| {
            let seq = event["id"].as_str()?.strip_prefix("evt_")?.parse().ok()?;
            let timestamp = DateTime::parse_from_rfc3339(event["timestamp"].as_str()?).ok()?;
            Some(Received {
                seq,
                at_us,
                event_ms: timestamp.timestamp_millis(),
            })
        });
    let mut inbox = inbox.lock().unwrap_or_else(PoisonError::into_inner);
    match read {
        Some(received) => inbox.received.push(received),
        None => inbox.malformed += 1,
    }
    StatusCode::NO_CONTENT
}

/// The server's subscription and feed routes, with the admin key.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(base: &str, token: &str) -> Result<Self, String> {
        install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|error| format!("HTTP client: {error}"))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    /// Sends a request and reads its JSON answer (null for an empty body),
    /// failing on any status but `expected`.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        expected: u16,
        what: &str,
    ) -> Result<Value, String> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|error| format!("{what}: {error}"))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|error| format!("{what}: {error}"))?;
        if status != expected {
            return Err(format!(
                "{what}: {status} {}",
                String::from_utf8_lossy(&body)
            ));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|error| format!("{what}: {error}"))
    }

    /// Subscribes `url` to [`EVENT_TYPES`]; returns the subscription's id.
    async fn subscribe(&self, url: &str) -> Result<String, String> {
        let made = self
            .call(
                self.client
                    .post(format!("{}/clientele/v1/webhooks", self.base))
                    .json(&json!({"url": url, "eventTypes": [EVENT_TYPES]})),
                201,
                "subscribe",
            )
            .await?;
        made["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("subscribe: no id in {made}"))
    }

    async fn unsubscribe(&self, id: &str) -> Result<(), String> {
        self.call(
            self.client
                .delete(format!("{}/clientele/v1/webhooks/{id}", self.base)),
            204,
            "unsubscribe",
        )
        .await
        .map(drop)
    }

    /// The subscription's deliveries still pending.
    async fn pending(&self, id: &str) -> Result<u64, String> {
        let webhook = self
            .call(
                self.client
                    .get(format!("{}/clientele/v1/webhooks/{id}", self.base)),
                200,
                "read the subscription",
            )
            .await?;
        webhook["deliveries"]["pending"]
            .as_u64()
            .ok_or_else(|| format!("no pending count in {webhook}"))
    }

    /// One page of [`EVENT_TYPES`] events after sequence number `after`:
    /// how many, and the last one's sequence number.
    async fn events_after(&self, after: i64) -> Result<(usize, Option<i64>), String> {
        let mut url = format!(
            "{}/clientele/v1/events?types={EVENT_TYPES}&limit={FEED_PAGE}",
            self.base
        );
        if after > 0 {
            let _ = write!(url, "&after=evt_{after:016}");
        }
        let page = self
            .call(self.client.get(url), 200, "read the feed")
            .await?;
        let items = page["items"]
            .as_array()
            .ok_or_else(|| format!("feed: no items in {page}"))?;
        let last = items
            .last()
            .and_then(|event| event["id"].as_str())
            .and_then(|id| id.strip_prefix("evt_"))
            .and_then(|digits| digits.parse().ok());
        Ok((items.len(), last))
    }
}

/// The events committed by one run: sequence numbers in `(after, last]`.
#[derive(Clone, Copy, Default)]
struct Span {
    after: i64,
    last: i64,
    events: u64,
}

impl Span {
    fn holds(&self, seq: i64) -> bool {
        seq > self.after && seq <= self.last
    }
}

/// A cursor on the feed: the last event counted so far.
#[derive(Default)]
struct Feed {
    cursor: i64,
}

impl Feed {
    /// Reads the feed to its end, again until two reads half a second apart
    /// find nothing new (a write still in flight when its load generator
    /// stopped may commit later, and on PostgreSQL the feed shows an event
    /// a little after its commit); returns the events read since the last
    /// call.
    async fn settle(&mut self, api: &Api) -> Result<Span, String> {
        let mut span = Span {
            after: self.cursor,
            last: self.cursor,
            events: 0,
        };
        let mut quiet_reads = 0;
        while quiet_reads < 2 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = span.events;
            loop {
                let (count, last) = api.events_after(span.last).await?;
                span.events += count as u64;
                if let Some(last) = last {
                    span.last = last;
                }
                if count < FEED_PAGE {
                    break;
                }
            }
            quiet_reads = if span.events == before {
                quiet_reads + 1
            } else {
                0
            };
        }
        self.cursor = span.last;
        Ok(span)
    }
}

/// Lag percentiles over all the events of a run, ms; `None` where the
/// event at that rank was not delivered within the wait.
#[derive(Clone, Copy, Default)]
struct Lag {
    p50: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
}

/// What the receiver got for one run's events.
#[derive(Clone, Copy, Default)]
struct Delivered {
    /// Distinct events received.
    events: u64,
    /// Distinct events whose first delivery arrived before the load ended.
    during: u64,
    /// Distinct events whose first delivery arrived after.
    after: u64,
    /// Deliveries of an event already received.
    duplicates: u64,
    /// From the end of the load to the last event's first delivery, s (0
    /// if all arrived during the load).
    drain_s: f64,
    /// Whether every event arrived before `--drain-timeout`.
    drained: bool,
    /// The subscription's deliveries still pending when the wait ended.
    pending: u64,
    /// Receive time minus event timestamp, first delivery of each event.
    lag: Lag,
}

fn count_deliveries(
    events: u64,
    deliveries: &[Received],
    load_ended_us: i64,
    drained: bool,
    pending: u64,
) -> Delivered {
    let mut first: HashMap<i64, Received> = HashMap::with_capacity(deliveries.len());
    let mut duplicates = 0;
    for received in deliveries {
        if first.insert(received.seq, *received).is_some() {
            duplicates += 1;
        }
    }
    let during = first
        .values()
        .filter(|received| received.at_us <= load_ended_us)
        .count() as u64;
    let last_us = first.values().map(|received| received.at_us).max();
    let mut lags: Vec<f64> = first
        .values()
        .map(|received| (received.at_us as f64 / 1000.0) - received.event_ms as f64)
        .collect();
    lags.sort_by(f64::total_cmp);
    Delivered {
        events: first.len() as u64,
        during,
        after: first.len() as u64 - during,
        duplicates,
        drain_s: last_us.map_or(0.0, |last| (last - load_ended_us).max(0) as f64 / 1e6),
        drained,
        pending,
        lag: Lag {
            p50: lag_percentile(&lags, events, 50.0),
            p90: lag_percentile(&lags, events, 90.0),
            p99: lag_percentile(&lags, events, 99.0),
            max: lag_percentile(&lags, events, 100.0),
        },
    }
}

/// The nearest-rank percentile of the lags of `events` events, of which
/// those delivered are `sorted` and the rest count as later than any:
/// `None` when the rank falls among those.
fn lag_percentile(sorted: &[f64], events: u64, p: f64) -> Option<f64> {
    let events = usize::try_from(events)
        .unwrap_or(usize::MAX)
        .max(sorted.len());
    if events == 0 {
        return None;
    }
    let rank = ((p / 100.0) * events as f64).ceil() as usize;
    sorted.get(rank.clamp(1, events) - 1).copied()
}

/// A lag percentile for the report.
fn lag_text(lag: Option<f64>) -> String {
    lag.map_or_else(|| "undelivered".to_owned(), |ms| format!("{ms:.1}"))
}

/// A lag percentile with its unit.
fn lag_ms(lag: Option<f64>) -> String {
    lag.map_or_else(|| "undelivered".to_owned(), |ms| format!("{ms:.1} ms"))
}

/// A lag percentile for the steady-rate table.
fn lag_cell(lag: Option<f64>) -> String {
    lag.map_or_else(|| "undelivered".to_owned(), |ms| format!("**{ms:.1} ms**"))
}

/// The nearest-rank percentile of sorted `values` (0 when empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct ThroughputRun {
    round: usize,
    subscribed: bool,
    measured: Measured,
    span: Span,
    /// CPU time over the run and, with a subscription, its drain.
    cpu: Cpu,
    /// With a subscription: what the receiver got.
    delivered: Option<Delivered>,
}

/// What the open-loop writer did.
#[derive(Default)]
struct Written {
    sent: u64,
    acknowledged: u64,
    failed: u64,
    /// From the first request's time to the last's, s.
    sending_s: f64,
    /// Request latency of the acknowledged writes, ms.
    p50_ms: f64,
    p99_ms: f64,
    /// Most requests in flight at once.
    max_in_flight: usize,
    /// One failure's description, if any failed.
    failure: Option<String>,
}

struct SteadyRun {
    written: Written,
    span: Span,
    /// CPU time over the run and, with a subscription, its drain.
    cpu: Cpu,
    /// With a subscription: what the receiver got.
    delivered: Option<Delivered>,
}

impl Bench<'_> {
    /// Every run in order: the rounds of throughput runs, then the
    /// steady-rate runs without and with a subscription. The throughput
    /// runs alternate their order (A B, B A, A B, …): each run writes
    /// ~100,000 history rows and the rate drifts down as the database
    /// grows, so a fixed A-then-B order would charge the drift to B (a
    /// control run with delivery switched off in the server measured B/A
    /// 0.94 that way).
    async fn measure(
        &mut self,
        icp_file: &Path,
        icp_ids: &[String],
    ) -> Result<(Vec<ThroughputRun>, [SteadyRun; 2]), String> {
        self.feed.settle(&self.api).await?;
        let mut runs = Vec::new();
        for round in 1..=self.args.rounds {
            let order = if round % 2 == 1 {
                [false, true]
            } else {
                [true, false]
            };
            for subscribed in order {
                let run = self.throughput_run(icp_file, subscribed).await?;
                runs.push(ThroughputRun { round, ..run });
            }
        }
        let steady = [
            self.steady_run(icp_ids, false).await?,
            self.steady_run(icp_ids, true).await?,
        ];
        Ok((runs, steady))
    }

    /// Before a run's load: subscribes (if `subscribed`), says what runs,
    /// and reads the server's CPU time.
    async fn start_run(
        &self,
        subscribed: bool,
        load: &str,
    ) -> Result<(Option<String>, Cpu), String> {
        let webhook = if subscribed {
            Some(self.api.subscribe(&self.receiver.url).await?)
        } else {
            None
        };
        let subscription = if subscribed {
            "one subscription"
        } else {
            "no subscription"
        };
        eprintln!("== {load}, {subscription}");
        Ok((webhook, Cpu::now(self.server_pid)))
    }

    /// After a run's load (which ended at `load_ended_us`): counts its
    /// events, waits for their deliveries (with a subscription), reads the
    /// CPU time spent since `cpu_before`, and unsubscribes.
    async fn finish_run(
        &mut self,
        webhook: Option<String>,
        cpu_before: Cpu,
        load_ended_us: i64,
    ) -> Result<(Span, Cpu, Option<Delivered>), String> {
        let span = self.feed.settle(&self.api).await?;
        let delivered = match &webhook {
            Some(webhook) => Some(
                self.wait_for_deliveries(webhook, &span, load_ended_us)
                    .await?,
            ),
            None => None,
        };
        let cpu = Cpu::now(self.server_pid).since(&cpu_before);
        if let Some(webhook) = &webhook {
            self.api.unsubscribe(webhook).await?;
        }
        Ok((span, cpu, delivered))
    }

    /// One wrk run, with a subscription or without; with one, waits for
    /// its deliveries and unsubscribes.
    async fn throughput_run(
        &mut self,
        icp_ids: &Path,
        subscribed: bool,
    ) -> Result<ThroughputRun, String> {
        let args = self.args;
        let load = format!(
            "PATCH ICP at {} connections, {} s",
            args.connections, args.seconds
        );
        let (webhook, cpu_before) = self.start_run(subscribed, &load).await?;
        let measured = wrk_patch(&self.api, icp_ids, args.connections, args.seconds).await?;
        let load_ended_us = Utc::now().timestamp_micros();
        let (span, cpu, delivered) = self.finish_run(webhook, cpu_before, load_ended_us).await?;
        eprintln!(
            "   {:.0} req/s, {} errors, {} events",
            measured.requests_per_second, measured.errors, span.events
        );
        // Every acknowledged PATCH commits one event (a request wrk
        // abandoned at the end may add one): fewer means the workload
        // stopped writing, and its rate would be a read's.
        let acknowledged = measured.requests.saturating_sub(measured.errors);
        if span.events < acknowledged.saturating_sub(acknowledged / 100) {
            return Err(format!(
                "{acknowledged} PATCHes were acknowledged but only {} events committed: \
                 the workload's PATCHes changed nothing",
                span.events
            ));
        }
        if let Some(delivered) = &delivered {
            eprintln!(
                "   {} of {} events delivered ({} during the run), drained {:.1} s after it, {} pending",
                delivered.events,
                span.events,
                delivered.during,
                delivered.drain_s,
                delivered.pending
            );
        }
        Ok(ThroughputRun {
            round: 0,
            subscribed,
            measured,
            span,
            cpu,
            delivered,
        })
    }

    /// The lag run: writes at a steady rate, then (with a fresh
    /// subscription) their deliveries.
    async fn steady_run(
        &mut self,
        icp_ids: &[String],
        subscribed: bool,
    ) -> Result<SteadyRun, String> {
        let args = self.args;
        let load = format!(
            "PATCH ICP at a steady {}/s for {} s",
            args.rate, args.seconds
        );
        let (webhook, cpu_before) = self.start_run(subscribed, &load).await?;
        let written = steady_writes(&self.api, icp_ids, args.rate, args.seconds).await;
        let load_ended_us = Utc::now().timestamp_micros();
        let (span, cpu, delivered) = self.finish_run(webhook, cpu_before, load_ended_us).await?;
        eprintln!(
            "   {} acknowledged of {} sent, {} events",
            written.acknowledged, written.sent, span.events
        );
        if let Some(delivered) = &delivered {
            eprintln!(
                "   {} delivered; lag p50 {}, p99 {}",
                delivered.events,
                lag_ms(delivered.lag.p50),
                lag_ms(delivered.lag.p99)
            );
        }
        Ok(SteadyRun {
            written,
            span,
            cpu,
            delivered,
        })
    }

    /// Waits until every event of `span` has arrived at the receiver (or
    /// the drain timeout passed) and the subscription has nothing pending,
    /// then counts.
    async fn wait_for_deliveries(
        &self,
        webhook: &str,
        span: &Span,
        load_ended_us: i64,
    ) -> Result<Delivered, String> {
        let deadline = Instant::now() + Duration::from_secs(self.args.drain_timeout);
        let drained = loop {
            if self.receiver.distinct(span) >= span.events {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Attempts are recorded in batches after they are answered: give
        // the server a moment to mark the last ones delivered.
        let mut pending = self.api.pending(webhook).await?;
        let settle_until = Instant::now() + Duration::from_secs(5);
        while pending > 0 && Instant::now() < settle_until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            pending = self.api.pending(webhook).await?;
        }
        Ok(count_deliveries(
            span.events,
            &self.receiver.deliveries(span),
            load_ended_us,
            drained,
            pending,
        ))
    }
}

/// wrk's PATCH ICP, on a blocking thread: the receiver runs on this
/// runtime meanwhile.
async fn wrk_patch(
    api: &Api,
    icp_ids: &Path,
    connections: usize,
    seconds: u64,
) -> Result<Measured, String> {
    let (url, token, ids): (String, String, PathBuf) =
        (api.base.clone(), api.token.clone(), icp_ids.to_owned());
    tokio::task::spawn_blocking(move || {
        let workload = Workload::new("PATCH ICP (seed body)", "patch_icp", Some(&ids));
        wrk(&url, &workload, &token, connections, seconds)
    })
    .await
    .map_err(|error| format!("wrk: {error}"))?
}

/// Sends `rate × seconds` PATCHes, the i-th at i/rate s after the start,
/// each on its own task (the schedule never waits for an answer), and
/// waits for every answer.
async fn steady_writes(api: &Api, icp_ids: &[String], rate: u64, seconds: u64) -> Written {
    let total = rate * seconds;
    let mut tasks = tokio::task::JoinSet::new();
    let mut written = Written::default();
    let mut latencies = Vec::with_capacity(usize::try_from(total).unwrap_or_default());
    let mut record =
        |written: &mut Written, outcome: Result<Result<f64, String>, tokio::task::JoinError>| {
            match outcome {
                Ok(Ok(latency_ms)) => {
                    written.acknowledged += 1;
                    latencies.push(latency_ms);
                }
                Ok(Err(failure)) => {
                    written.failed += 1;
                    written.failure.get_or_insert(failure);
                }
                Err(error) => {
                    written.failed += 1;
                    written.failure.get_or_insert(error.to_string());
                }
            }
        };
    let start = tokio::time::Instant::now();
    for index in 0..total {
        let due = start + Duration::from_nanos(index * 1_000_000_000 / rate);
        tokio::time::sleep_until(due).await;
        let id = &icp_ids[rand::random_range(0..icp_ids.len())];
        let request = api
            .client
            .patch(format!("{}/api/v1/entities/icps/{id}", api.base))
            .bearer_auth(&api.token)
            .header("content-type", "application/json")
            .body(seed_patch_body().to_string());
        tasks.spawn(async move {
            let sent = Instant::now();
            let response = request.send().await.map_err(|error| error.to_string())?;
            let status = response.status();
            // Read to the end, so that the connection goes back to the pool.
            let body = response.bytes().await.map_err(|error| error.to_string())?;
            if status.is_success() {
                Ok(sent.elapsed().as_secs_f64() * 1000.0)
            } else {
                Err(format!("{status} {}", String::from_utf8_lossy(&body)))
            }
        });
        written.sent += 1;
        written.max_in_flight = written.max_in_flight.max(tasks.len());
        while let Some(outcome) = tasks.try_join_next() {
            record(&mut written, outcome);
        }
    }
    written.sending_s = start.elapsed().as_secs_f64();
    while let Some(outcome) = tasks.join_next().await {
        record(&mut written, outcome);
    }
    latencies.sort_by(f64::total_cmp);
    written.p50_ms = percentile(&latencies, 50.0);
    written.p99_ms = percentile(&latencies, 99.0);
    written
}

/// Sum of the B runs' rates over the A runs'.
fn overall_ratio(runs: &[ThroughputRun]) -> f64 {
    let rate = |subscribed: bool| -> f64 {
        runs.iter()
            .filter(|run| run.subscribed == subscribed)
            .map(|run| run.measured.requests_per_second)
            .sum()
    };
    rate(true) / rate(false).max(1e-9)
}

/// Each round's B rate over its A rate.
fn round_ratios(runs: &[ThroughputRun]) -> Vec<(usize, f64)> {
    runs.chunks(2)
        .filter_map(|pair| {
            let with = pair.iter().find(|run| run.subscribed)?;
            let without = pair.iter().find(|run| !run.subscribed)?;
            Some((
                with.round,
                with.measured.requests_per_second / without.measured.requests_per_second.max(1e-9),
            ))
        })
        .collect()
}

fn report(
    args: &WebhooksArgs,
    autovacuum: Option<&str>,
    runs: &[ThroughputRun],
    steady: &[SteadyRun; 2],
    peak_mib: f64,
    malformed: u64,
    log: &str,
) -> String {
    let mut report = heading(&args.target);
    if let Some(autovacuum) = autovacuum {
        let _ = writeln!(report, "PostgreSQL `autovacuum = {autovacuum}`.");
    }
    let _ = writeln!(
        report,
        "\nAll the cores are shared by the server, the load generator (wrk, or this harness's writer) and the webhook receiver (an axum server in this harness, on 127.0.0.1, answering 204 at once).\n\n\
         Preloaded {} ICPs and as many Hood profiles; one `clientele serve` (`--webhook-allow-private`, delivery settings at their defaults: 64 attempts in flight, 8 per endpoint) served every run; subscriptions are to `{EVENT_TYPES}`. Events are counted from the change feed.\n",
        args.records
    );
    throughput_section(&mut report, args, runs);
    steady_section(&mut report, args, steady);
    let _ = writeln!(
        report,
        "\nLag is the receive time (the receiver's clock, read first thing in its handler) minus the event's `timestamp`. That timestamp is the write's `at`, taken in the write's transaction just before it commits, in milliseconds: so lag includes the rest of the commit (on SQLite the fsync of its group), fanning the event out to the subscription, leasing and sending it, and up to 1 ms of truncation. It is measured on each event's first delivery."
    );
    let _ = writeln!(report, "\nPeak server memory (VmHWM): {peak_mib:.1} MiB.");
    if malformed > 0 {
        let _ = writeln!(
            report,
            "\n{malformed} deliveries had a body without a readable `id` or `timestamp`."
        );
    }
    server_log_section(&mut report, log);
    report
}

fn throughput_section(report: &mut String, args: &WebhooksArgs, runs: &[ThroughputRun]) {
    let _ = writeln!(
        report,
        "## PATCH throughput with one subscription against none\n\n\
         wrk, PATCH ICP (the seed's body, random ICPs), {} connections, {} s per run; runs without (A) and with (B) a subscription alternated, in the order A B in odd rounds and B A in even ones (the rate drifts down as the history grows, and a fixed order would charge that to one side). After each B run the harness waited (at most {} s) for every event of the run to arrive, then unsubscribed. CPU is counted from the start of the run to the end of its drain: the server's is the `clientele serve` process's (not PostgreSQL's, nor wrk's), the harness's is mostly the receiver's.\n",
        args.connections, args.seconds, args.drain_timeout
    );
    let _ = writeln!(
        report,
        "| run | subscription | req/s | p50 ms | p99 ms | max ms | errors | events | server CPU s | server CPU µs per event | harness CPU s |"
    );
    let _ = writeln!(
        report,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for run in runs {
        let measured = &run.measured;
        let _ = writeln!(
            report,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {:.1} | {:.0} | {:.1} |",
            run_name(run),
            if run.subscribed { EVENT_TYPES } else { "none" },
            measured.requests_per_second,
            measured.p50_ms,
            measured.p99_ms,
            measured.max_ms,
            measured.errors,
            run.span.events,
            run.cpu.server_s,
            run.cpu.server_s * 1e6 / (run.span.events.max(1) as f64),
            run.cpu.harness_s,
        );
    }
    let rounds: Vec<String> = round_ratios(runs)
        .iter()
        .map(|(round, ratio)| format!("round {round}: {ratio:.2}"))
        .collect();
    let _ = writeln!(
        report,
        "\nB/A: {}; all rounds (sum of B ÷ sum of A): **{:.2}** (target ≥ 0.90).\n",
        rounds.join(", "),
        overall_ratio(runs)
    );
    let _ = writeln!(
        report,
        "Deliveries of the B runs (\"during\" and \"after\" count events by their first delivery, before or after wrk exited; \"drained after\" is from wrk's exit to the last event's first delivery, \"deliveries/s after\" is \"after\" over that time, and a lag percentile is \"undelivered\" when the event at its rank had not arrived when the wait ended):\n"
    );
    let _ = writeln!(
        report,
        "| run | events | delivered | during run | after | deliveries/s after | duplicates | drained after | pending at end | lag p50 ms | lag p99 ms | lag max ms |"
    );
    let _ = writeln!(
        report,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for run in runs {
        if let Some(delivered) = &run.delivered {
            let _ = writeln!(
                report,
                "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
                run_name(run),
                run.span.events,
                delivered.events,
                delivered.during,
                delivered.after,
                delivered.after as f64 / delivered.drain_s.max(1e-3),
                delivered.duplicates,
                drain(delivered),
                delivered.pending,
                lag_text(delivered.lag.p50),
                lag_text(delivered.lag.p99),
                lag_text(delivered.lag.max),
            );
        }
    }
    let _ = writeln!(
        report,
        "\nUnder wrk the writes outrun the deliveries, so a B run's lag is mostly the backlog's queueing; the steady-rate run below is the lag to read.\n"
    );
}

/// A1, B1, A2, …
fn run_name(run: &ThroughputRun) -> String {
    format!("{}{}", if run.subscribed { "B" } else { "A" }, run.round)
}

/// The drain time, or that the backlog had not drained.
fn drain(delivered: &Delivered) -> String {
    if delivered.drained {
        format!("{:.1} s", delivered.drain_s)
    } else {
        format!("not drained ({:.1} s)", delivered.drain_s)
    }
}

fn steady_section(report: &mut String, args: &WebhooksArgs, steady: &[SteadyRun; 2]) {
    let _ = writeln!(
        report,
        "## Delivery lag at a steady {} writes/s\n\n\
         PATCH ICP (the seed's body, random ICPs) from this harness, open loop: the i-th request is sent i/{} s after the start whatever the earlier ones are doing, each on its own task over a pool of kept-alive connections, for {} s; once without a subscription, then once with one.\n",
        args.rate, args.rate, args.seconds
    );
    let _ = writeln!(
        report,
        "| | no subscription | one subscription |\n|---|---:|---:|"
    );
    steady_row(report, steady, "writes sent", |run| {
        run.written.sent.to_string()
    });
    steady_row(report, steady, "writes acknowledged (2xx)", |run| {
        run.written.acknowledged.to_string()
    });
    steady_row(report, steady, "writes failed", |run| {
        run.written.failed.to_string()
    });
    steady_row(report, steady, "achieved write rate", |run| {
        format!(
            "**{:.0}/s**",
            run.written.acknowledged as f64 / run.written.sending_s.max(1e-9)
        )
    });
    steady_row(report, steady, "write latency p50 / p99", |run| {
        format!("{:.2} / {:.2} ms", run.written.p50_ms, run.written.p99_ms)
    });
    steady_row(report, steady, "most writes in flight", |run| {
        run.written.max_in_flight.to_string()
    });
    steady_row(report, steady, "events committed (feed)", |run| {
        run.span.events.to_string()
    });
    delivery_row(report, steady, "events delivered (distinct)", |delivered| {
        format!(
            "{} ({} during the run, {} after)",
            delivered.events, delivered.during, delivered.after
        )
    });
    delivery_row(report, steady, "duplicate deliveries", |delivered| {
        delivered.duplicates.to_string()
    });
    delivery_row(report, steady, "drained after the run", drain);
    delivery_row(report, steady, "lag p50", |delivered| {
        lag_cell(delivered.lag.p50)
    });
    delivery_row(report, steady, "lag p90", |delivered| {
        lag_cell(delivered.lag.p90)
    });
    delivery_row(report, steady, "lag p99", |delivered| {
        lag_cell(delivered.lag.p99)
    });
    delivery_row(report, steady, "lag max", |delivered| {
        lag_cell(delivered.lag.max)
    });
    steady_row(report, steady, "server CPU (µs per event)", |run| {
        format!(
            "{:.1} s ({:.0})",
            run.cpu.server_s,
            run.cpu.server_s * 1e6 / (run.span.events.max(1) as f64)
        )
    });
    steady_row(report, steady, "harness CPU", |run| {
        format!("{:.1} s", run.cpu.harness_s)
    });
    for run in steady {
        if let Some(failure) = &run.written.failure {
            let _ = writeln!(report, "\nA failed write: `{}`", failure.trim());
        }
    }
    let _ = writeln!(
        report,
        "\nCPU is counted from the start of the writes to the end of the drain (with a subscription) or of the feed's count (without); the server's is the `clientele serve` process's."
    );
}

/// One row of the steady-rate table: `value` of each run.
fn steady_row(
    report: &mut String,
    steady: &[SteadyRun; 2],
    name: &str,
    value: impl Fn(&SteadyRun) -> String,
) {
    let _ = writeln!(
        report,
        "| {name} | {} | {} |",
        value(&steady[0]),
        value(&steady[1])
    );
}

/// A row of the steady-rate table about deliveries (none without a
/// subscription).
fn delivery_row(
    report: &mut String,
    steady: &[SteadyRun; 2],
    name: &str,
    value: impl Fn(&Delivered) -> String,
) {
    steady_row(report, steady, name, |run| {
        run.delivered
            .as_ref()
            .map_or_else(|| "–".to_owned(), &value)
    });
}

/// The server's warnings and errors: how many, and the first few.
fn server_log_section(report: &mut String, log: &str) {
    let kinds = log_kinds(log);
    if kinds.is_empty() {
        let _ = writeln!(
            report,
            "\nThe server logged no warnings or errors (`--log warn`)."
        );
        return;
    }
    let lines: usize = kinds.iter().map(|kind| kind.count).sum();
    let _ = writeln!(
        report,
        "\nThe server logged {lines} lines at `--log warn`, by message:\n\n| lines | first at | longest `elapsed` | message |\n|---:|---|---:|---|"
    );
    for kind in &kinds {
        let _ = writeln!(
            report,
            "| {} | {} | {} | `{}` |",
            kind.count,
            kind.first_at,
            kind.longest_s
                .map_or_else(|| "–".to_owned(), |seconds| format!("{seconds:.2} s")),
            kind.message.replace('|', "\\|").replace('`', "'"),
        );
    }
}

/// Lines of the server's log with the same message.
struct LogKind {
    message: String,
    count: usize,
    /// The time of the first one.
    first_at: String,
    /// For slow statements: the longest `elapsed_secs`.
    longest_s: Option<f64>,
}

/// The server's log lines grouped by message (the text after the level,
/// up to the statement's full text), most frequent first.
fn log_kinds(log: &str) -> Vec<LogKind> {
    let mut kinds: Vec<LogKind> = Vec::new();
    for line in log.lines().filter(|line| !line.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let at = words.next().unwrap_or_default();
        let _level = words.next();
        let rest: Vec<&str> = words.collect();
        let rest = rest.join(" ");
        let message = rest.split(" db.statement=").next().unwrap_or_default();
        let message: String = message.chars().take(200).collect();
        let elapsed = rest
            .split_once("elapsed_secs=")
            .and_then(|(_, value)| value.split_whitespace().next())
            .and_then(|value| value.parse::<f64>().ok());
        match kinds.iter_mut().find(|kind| kind.message == message) {
            Some(kind) => {
                kind.count += 1;
                kind.longest_s = match (kind.longest_s, elapsed) {
                    (Some(longest), Some(elapsed)) => Some(longest.max(elapsed)),
                    (longest, elapsed) => longest.or(elapsed),
                };
            }
            None => kinds.push(LogKind {
                message,
                count: 1,
                first_at: at.to_owned(),
                longest_s: elapsed,
            }),
        }
    }
    kinds.sort_by_key(|kind| std::cmp::Reverse(kind.count));
    kinds
}

/// The figures in a few lines, for the terminal.
fn summary(backend: Backend, runs: &[ThroughputRun], steady: &[SteadyRun; 2]) -> String {
    let drains: Vec<String> = runs
        .iter()
        .filter_map(|run| run.delivered.as_ref())
        .map(drain)
        .collect();
    let with = &steady[1];
    let delivered = with.delivered.unwrap_or_default();
    let lag = delivered.lag;
    format!(
        "webhooks, {}: PATCH with one subscription ÷ without = {:.2} (target ≥ 0.90); backlog drained after {}.\n\
         At {:.0} writes/s: lag p50 {}, p90 {}, p99 {}, max {}; {} of {} events delivered, {} writes acknowledged.",
        backend.describe(),
        overall_ratio(runs),
        drains.join(", "),
        with.written.acknowledged as f64 / with.written.sending_s.max(1e-9),
        lag_ms(lag.p50),
        lag_ms(lag.p90),
        lag_ms(lag.p99),
        lag_ms(lag.max),
        delivered.events,
        with.span.events,
        with.written.acknowledged,
    )
}
