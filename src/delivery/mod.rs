//! Webhook delivery: the tasks that fan committed events out to
//! subscriptions and send them, and the HTTP client that sends.
//!
//! Nothing here runs in a write's path: writes only commit their history
//! row (the outbox) and raise a signal. The dispatcher wakes on that signal
//! (or every [`POLL`], for other instances' writes), turns new events into
//! deliveries, and the sender tasks lease due deliveries, send them with at
//! most [`DeliverySettings::concurrency`] attempts at once and
//! [`DeliverySettings::per_endpoint`] per endpoint, and record each
//! attempt in batches. What to send and what an answer means is decided in
//! [`crate::core::webhooks`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore, mpsc};

use crate::core::webhooks::{
    BACKGROUND_NICENESS, FinishedDelivery, SendResult, Sender, SignedMessage, Webhooks,
    check_url_form, internal_message, is_internal_address, lower_thread_priority,
};

/// How often the dispatcher looks for events committed by other instances
/// (and for a history gap to close); local commits wake it at once.
const POLL: Duration = Duration::from_millis(200);
/// The least time between two dispatch rounds that found events: under a
/// stream of writes, rounds (a transaction each) coalesce many commits
/// instead of following every one.
const ROUND_GAP: Duration = Duration::from_millis(5);
/// Events fanned out per dispatch round.
const DISPATCH_BATCH: u32 = 1000;
/// Attempt results recorded per write.
const FINISH_BATCH: usize = 256;
/// How often the delivery table is vacuumed (PostgreSQL), while deliveries
/// are being recorded.
const MAINTAIN_EVERY: Duration = Duration::from_secs(10);
/// How often expired attempts and deliveries are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// How delivery runs; see `clientele serve --help`.
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// Attempts in flight at once, over all endpoints.
    pub concurrency: usize,
    /// Attempts in flight at once to one endpoint (scheme, host and port).
    pub per_endpoint: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            concurrency: 64,
            per_endpoint: 8,
        }
    }
}

/// Chooses rustls's crypto provider for this process (an HTTP client
/// cannot be built before): ring's, deprecated for lacking post-quantum
/// key exchange, because aws-lc, the other, needs cmake to build (see
/// Cargo.toml). Safe to call more than once.
pub fn install_tls_provider() {
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Resolves names for the HTTP client, refusing a name with any internal
/// address (unless allowed): checked at connect time, so a name that
/// pointed outside when the subscription was made cannot be turned inside
/// later (DNS rebinding).
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !allow_private
                && let Some(internal) = addresses
                    .iter()
                    .find(|address| is_internal_address(address.ip()))
            {
                return Err(internal_message(&internal.ip().to_string()).into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Sends signed messages over HTTP(S): no redirects followed (a redirect
/// could point inside the network), a timeout per attempt, and a bounded
/// number of attempts per endpoint at once.
pub struct HttpSender {
    client: reqwest::Client,
    allow_private: bool,
    per_endpoint: usize,
    endpoints: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HttpSender {
    pub fn new(
        allow_private: bool,
        timeout: Duration,
        per_endpoint: usize,
    ) -> Result<Self, String> {
        install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(per_endpoint)
            .user_agent(concat!("Clientele-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .build()
            .map_err(|error| format!("cannot build the webhook HTTP client: {error}"))?;
        Ok(Self {
            client,
            allow_private,
            per_endpoint: per_endpoint.max(1),
            endpoints: Mutex::new(HashMap::new()),
        })
    }

    fn endpoint_slots(&self, url: &url::Url) -> Arc<Semaphore> {
        let endpoint = format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let mut endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        endpoints
            .entry(endpoint)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_endpoint)))
            .clone()
    }
}

#[async_trait]
impl Sender for HttpSender {
    async fn send(&self, url: &str, message: &SignedMessage) -> SendResult {
        let started = Instant::now();
        let refused = |error: String| SendResult {
            status: None,
            latency: started.elapsed(),
            error: Some(error),
        };
        // Checked again at send time: the server may run with other
        // settings than when the subscription was made.
        let parsed = match check_url_form(url, self.allow_private) {
            Ok(parsed) => parsed,
            Err(message) => return refused(format!("target URL {message}")),
        };
        let slots = self.endpoint_slots(&parsed);
        let Ok(_slot) = slots.acquire().await else {
            return refused("the sender is shutting down".into());
        };
        let started = Instant::now();
        let response = self
            .client
            .post(parsed)
            .header("content-type", "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", message.timestamp.to_string())
            .header("webhook-signature", &message.signature)
            .body(message.body.clone())
            .send()
            .await;
        match response {
            Ok(response) => SendResult {
                status: Some(response.status().as_u16()),
                latency: started.elapsed(),
                error: None,
            },
            Err(error) => SendResult {
                status: None,
                latency: started.elapsed(),
                error: Some(describe(&error)),
            },
        }
    }
}

/// A send error in words, with its cause (reqwest's own text names only
/// the request).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", causes.join(": "))
    }
}

/// Starts the dispatcher, the senders (unless `settings` is `None`) and
/// the purge on a thread of their own, at a lower priority, running until
/// the runtime that called this stops. The dispatcher runs even without
/// senders: on PostgreSQL it is what moves the horizon the change feed
/// reads up to.
pub fn start(webhooks: Webhooks, settings: Option<DeliverySettings>) {
    // The thread lives as long as this task: when the caller's runtime
    // stops (the server shuts down, a test ends), the task is dropped, the
    // thread's runtime stops, and its database connections close.
    let (alive, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _alive = alive;
        std::future::pending::<()>().await;
    });
    let spawned = std::thread::Builder::new()
        .name("clientele-webhooks".into())
        .spawn(move || {
            lower_thread_priority(BACKGROUND_NICENESS);
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(%error, "webhooks cannot run: no runtime for them");
                    return;
                }
            };
            runtime.block_on(async move {
                let deliveries_due = Arc::new(Notify::new());
                tokio::spawn(dispatch_forever(webhooks.clone(), deliveries_due.clone()));
                if let Some(settings) = settings {
                    let owner = format!("instance-{}", uuid::Uuid::new_v4().simple());
                    tokio::spawn(send_forever(
                        webhooks.clone(),
                        owner,
                        settings,
                        deliveries_due,
                    ));
                }
                tokio::spawn(purge_forever(webhooks));
                let _ = stopped.await;
            });
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "webhooks cannot run: no thread for them");
    }
}

async fn dispatch_forever(webhooks: Webhooks, deliveries_due: Arc<Notify>) {
    let committed = webhooks.committed_signal();
    loop {
        match webhooks.dispatch(DISPATCH_BATCH).await {
            Ok(passed) if passed > 0 => {
                deliveries_due.notify_one();
                if passed == u64::from(DISPATCH_BATCH) {
                    continue;
                }
                tokio::time::sleep(ROUND_GAP).await;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "dispatching events to webhooks failed"),
        }
        tokio::select! {
            () = committed.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn send_forever(
    webhooks: Webhooks,
    owner: String,
    settings: DeliverySettings,
    deliveries_due: Arc<Notify>,
) {
    match webhooks.release_orphaned_leases().await {
        Ok(0) => {}
        Ok(released) => tracing::info!(released, "released deliveries a stopped server had leased"),
        Err(error) => tracing::warn!(%error, "releasing orphaned webhook leases failed"),
    }
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let (finished_tx, finished_rx) = mpsc::unbounded_channel();
    tokio::spawn(record_forever(
        webhooks.clone(),
        owner.clone(),
        finished_rx,
        deliveries_due.clone(),
    ));
    loop {
        let free = slots.available_permits();
        let leased = if free == 0 {
            Vec::new()
        } else {
            match webhooks
                .lease(&owner, u32::try_from(free).unwrap_or(u32::MAX))
                .await
            {
                Ok(leased) => leased,
                Err(error) => {
                    tracing::warn!(%error, "leasing webhook deliveries failed");
                    Vec::new()
                }
            }
        };
        let leased_any = !leased.is_empty();
        for delivery in leased {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let webhooks = webhooks.clone();
            let finished_tx = finished_tx.clone();
            tokio::spawn(async move {
                let finished = webhooks.attempt(&delivery).await;
                let _ = finished_tx.send(finished);
                drop(slot);
            });
        }
        if !leased_any {
            tokio::select! {
                () = deliveries_due.notified() => {}
                () = tokio::time::sleep(POLL * 5) => {}
            }
        }
    }
}

/// Records finished attempts in batches, then wakes the senders: a
/// finished delivery may free the next event of its record.
async fn record_forever(
    webhooks: Webhooks,
    owner: String,
    mut finished_rx: mpsc::UnboundedReceiver<FinishedDelivery>,
    deliveries_due: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(FINISH_BATCH);
    let mut maintained = Instant::now();
    while finished_rx.recv_many(&mut batch, FINISH_BATCH).await > 0 {
        if maintained.elapsed() >= MAINTAIN_EVERY {
            maintained = Instant::now();
            let webhooks = webhooks.clone();
            tokio::spawn(async move {
                if let Err(error) = webhooks.maintain().await {
                    tracing::warn!(%error, "vacuuming the webhook delivery table failed");
                }
            });
        }
        for finished in &batch {
            tracing::debug!(
                delivery = finished.delivery_id,
                webhook = %finished.attempt.webhook_id,
                event = %finished.attempt.event_id,
                status = ?finished.attempt.status,
                outcome = finished.outcome.as_str(),
                "webhook attempt"
            );
        }
        loop {
            match webhooks.finish(&owner, &batch).await {
                Ok(()) => break,
                Err(error) => {
                    // The leases outlive this wait; a retry that never
                    // succeeds leaves them to expire and be sent again.
                    tracing::warn!(%error, "recording webhook attempts failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        batch.clear();
        deliveries_due.notify_one();
    }
}

async fn purge_forever(webhooks: Webhooks) {
    loop {
        if let Err(error) = webhooks.purge().await {
            tracing::warn!(%error, "purging old webhook attempts failed");
        }
        tokio::time::sleep(PURGE_EVERY).await;
    }
}

/// A sender for a process whose HTTP client could not be built: every
/// attempt fails with the reason (and retries later).
pub struct NoSender(pub String);

#[async_trait]
impl Sender for NoSender {
    async fn send(&self, _url: &str, _message: &SignedMessage) -> SendResult {
        SendResult {
            status: None,
            latency: Duration::ZERO,
            error: Some(self.0.clone()),
        }
    }
}
