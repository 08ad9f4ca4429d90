//! Events and webhooks, against a real HTTP receiver started by each test:
//! every kind's writes produce exactly their events (and rejected writes
//! none), deliveries arrive signed (checked with the Standard Webhooks
//! reference library, `ci/verify_webhooks.py`) and in order per record
//! across a receiver outage, the feed pages without skipping or repeating
//! under concurrent writes, the subscription API validates and manages,
//! internal targets are refused, and a `kill -9` during a burst loses no
//! committed write's event.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use clientele::app::AppSettings;
use clientele::core::ratelimit::RateLimits;
use clientele::core::webhooks::{SealingKey, WebhookSettings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::support::{ICPS, ServerProcess, TestApp, TestDatabase, icp_path, minimal_icp};

const WEBHOOKS: &str = "/clientele/v1/webhooks";
const EVENTS: &str = "/clientele/v1/events";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub json: Value,
}

impl Delivery {
    pub fn id(&self) -> &str {
        self.headers.get("webhook-id").map_or("", String::as_str)
    }
}

#[derive(Default)]
struct ReceiverState {
    deliveries: Mutex<Vec<Delivery>>,
    /// The status to answer (0: 204).
    status: AtomicU16,
}

/// An HTTP endpoint that keeps every request and answers a status the
/// test sets; it can be stopped (connections refused) and started again
/// on the same port.
pub struct Receiver {
    pub address: SocketAddr,
    state: Arc<ReceiverState>,
    stop: Option<oneshot::Sender<()>>,
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    let body = String::from_utf8_lossy(&body).into_owned();
    let delivery = Delivery {
        headers: headers
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("webhook-"))
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        json: serde_json::from_str(&body).unwrap_or(Value::Null),
        body,
    };
    state
        .deliveries
        .lock()
        .expect("receiver lock")
        .push(delivery);
    match state.status.load(Ordering::SeqCst) {
        0 => AxumStatus::NO_CONTENT,
        status => AxumStatus::from_u16(status).unwrap_or(AxumStatus::NO_CONTENT),
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener, Arc::default())
    }

    fn serve(listener: TcpListener, state: Arc<ReceiverState>) -> Receiver {
        let address = listener.local_addr().expect("address");
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Receiver {
            address,
            state,
            stop: Some(stop),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Stops listening: senders get connection refused.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Until the listener is closed, connections would still be taken.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(self.address).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Listens again on the same port, keeping what was received.
    pub async fn restart(&mut self) {
        let listener = TcpListener::bind(self.address).await.expect("rebind");
        let again = Self::serve(listener, self.state.clone());
        let mut again = again;
        self.stop = again.stop.take();
    }

    pub fn answer(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.deliveries.lock().expect("receiver lock").clone()
    }

    /// Waits until `done` holds for what was received.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let started = Instant::now();
        loop {
            let deliveries = self.deliveries();
            if done(&deliveries) {
                return deliveries;
            }
            assert!(
                started.elapsed() < timeout,
                "the receiver did not get what was expected within {timeout:?}; it has {} \
                 deliveries: {:?}",
                deliveries.len(),
                deliveries
                    .iter()
                    .map(|delivery| delivery.json["type"].clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every event id in `ids` was received at least once.
    pub async fn wait_for_ids(&self, ids: &HashSet<String>, timeout: Duration) -> Vec<Delivery> {
        self.wait_until(timeout, |deliveries| {
            let got: HashSet<&str> = deliveries.iter().map(Delivery::id).collect();
            ids.iter().all(|id| got.contains(id.as_str()))
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Retries fast, so that outages and schedules fit in a test.
pub fn fast_schedule() -> Vec<Duration> {
    [0, 50, 100, 200, 400, 400, 400, 400, 400, 400]
        .into_iter()
        .map(Duration::from_millis)
        .collect()
}

pub fn webhook_settings() -> AppSettings {
    AppSettings {
        rate_limits: RateLimits {
            by_surface: Default::default(),
        },
        webhooks: WebhookSettings {
            key: Some(Arc::new(SealingKey::from_bytes(&rand_key()))),
            allow_private: true,
            schedule: fast_schedule(),
            ..WebhookSettings::default()
        },
        ..AppSettings::default()
    }
}

fn rand_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    for (index, byte) in uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .enumerate()
    {
        key[index] = *byte;
    }
    key
}

/// Subscribes `url` to `types`; returns the id and the secret.
pub async fn subscribe(app: &TestApp, token: &str, url: &str, types: &[&str]) -> (String, String) {
    let reply = app
        .post(WEBHOOKS, token, &json!({"url": url, "eventTypes": types}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    (
        reply.body["id"].as_str().expect("an id").to_owned(),
        reply.body["secret"].as_str().expect("a secret").to_owned(),
    )
}

/// Every event of the caller's workspace, paging through the feed.
pub async fn all_events(app: &TestApp, token: &str) -> Vec<Value> {
    feed_at(&app.base_url, token).await
}

/// Every event of the token's workspace from the server at `base_url`.
pub async fn feed_at(base_url: &str, token: &str) -> Vec<Value> {
    let client = crate::support::http_client();
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{base_url}{EVENTS}?limit=1000");
        if let Some(after) = &after {
            url.push_str(&format!("&after={after}"));
        }
        let page = TestApp::reply(
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let items = page.body["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return events;
        }
        after = page.body["next"].as_str().map(str::to_owned);
        events.extend(items);
    }
}

/// `(record id, version)` of each event: the writes the feed says committed.
pub fn committed_writes(feed: &[Value]) -> HashSet<(String, i64)> {
    feed.iter()
        .map(|event| {
            (
                event["data"]["id"].as_str().unwrap_or_default().to_owned(),
                event["data"]["version"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

/// The feed from `base_url` once every acknowledged write's event is in
/// it (on PostgreSQL an event shows a few milliseconds after its commit);
/// fails after 30 s.
pub async fn feed_holding(
    base_url: &str,
    token: &str,
    acknowledged: &[(String, i64)],
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let feed = feed_at(base_url, token).await;
        let committed = committed_writes(&feed);
        let missing: Vec<_> = acknowledged
            .iter()
            .filter(|write| !committed.contains(*write))
            .collect();
        if missing.is_empty() {
            return feed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "acknowledged writes have no event: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every event of `feed` was delivered at least once, and
/// checks that nothing else was (no event of an uncommitted write: every
/// delivery is in the feed of the server at `base_url` as it is after the
/// wait, since a write that committed unacknowledged before a kill may
/// reach the feed, and be delivered, after `feed` was read) and that each
/// record's events came in order; returns the deliveries and how many were
/// duplicates.
pub async fn delivered_exactly(
    receiver: &Receiver,
    feed: &[Value],
    (base_url, token): (&str, &str),
    timeout: Duration,
) -> (Vec<Delivery>, usize) {
    let event_ids = |feed: &[Value]| -> HashSet<String> {
        feed.iter()
            .filter_map(|event| event["id"].as_str().map(str::to_owned))
            .collect()
    };
    let wanted = event_ids(feed);
    let deliveries = receiver.wait_for_ids(&wanted, timeout).await;
    let committed = event_ids(&feed_at(base_url, token).await);
    for delivery in &deliveries {
        assert!(
            committed.contains(delivery.id()),
            "{} is not in the feed",
            delivery.id()
        );
    }
    assert_in_order_per_record(&deliveries);
    let distinct: HashSet<&str> = deliveries.iter().map(Delivery::id).collect();
    let duplicates = deliveries.len() - distinct.len();
    (deliveries, duplicates)
}

/// The version a write's answer reports in its `ETag`.
pub fn etag_version(response: &reqwest::Response) -> i64 {
    response
        .headers()
        .get("etag")
        .and_then(|etag| etag.to_str().ok())
        .and_then(|etag| etag.trim_matches('"').parse::<i64>().ok())
        .unwrap_or_default()
}

/// Checks that each record's deliveries arrive in version order (a retry
/// may repeat a version, never go back past a later one) and returns the
/// last version of each.
pub fn assert_in_order_per_record(deliveries: &[Delivery]) -> HashMap<String, i64> {
    let mut last_version: HashMap<String, i64> = HashMap::new();
    for delivery in deliveries {
        let record = delivery.json["data"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let version = delivery.json["data"]["version"]
            .as_i64()
            .unwrap_or_default();
        let last = last_version.entry(record.clone()).or_insert(0);
        assert!(
            version >= *last,
            "record {record}: version {version} arrived after {last}"
        );
        *last = version;
    }
    last_version
}

/// The whole feed once it lists `count` events. On PostgreSQL an event
/// shows once the history below it is known complete, a few milliseconds
/// after its commit.
pub async fn events_when(app: &TestApp, token: &str, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let events = all_events(app, token).await;
        if events.len() >= count || started.elapsed() > Duration::from_secs(10) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Checks every delivery's signatures with the Standard Webhooks reference
/// library (PyPI `standardwebhooks`), each with every secret in
/// `secrets_of` its id. The interpreter that has it is named by
/// `CLIENTELE_WEBHOOK_VERIFIER` (CI sets it up, see `.ci/run`); without it
/// the check is skipped loudly, unless `CLIENTELE_TEST_REQUIRE_VERIFIER=1`.
pub fn verify_with_reference(deliveries: &[Delivery], secrets: &[String]) {
    let Ok(python) = std::env::var("CLIENTELE_WEBHOOK_VERIFIER") else {
        assert!(
            std::env::var("CLIENTELE_TEST_REQUIRE_VERIFIER").as_deref() != Ok("1"),
            "CLIENTELE_WEBHOOK_VERIFIER is not set (a Python with `standardwebhooks`)"
        );
        eprintln!(
            "SKIPPED: reference verification of {} deliveries (set CLIENTELE_WEBHOOK_VERIFIER)",
            deliveries.len()
        );
        return;
    };
    let lines: String = deliveries
        .iter()
        .map(|delivery| {
            let line = json!({
                "secrets": secrets,
                "headers": delivery.headers,
                "body": delivery.body,
            });
            format!("{line}\n")
        })
        .collect();
    let verdict = crate::support::run_ci_python(
        &python,
        "verify_webhooks.py",
        lines.as_bytes(),
        "the reference verifier refused a delivery",
    );
    eprintln!("{}", String::from_utf8_lossy(&verdict).trim());
}

/// `(type, record id, version)` of each event, in order.
fn summary(events: &[Value]) -> Vec<(String, String, i64)> {
    events
        .iter()
        .map(|event| {
            (
                event["type"].as_str().unwrap_or_default().to_owned(),
                event["data"]["id"].as_str().unwrap_or_default().to_owned(),
                event["data"]["version"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

fn changed(event: &Value) -> Vec<(String, Value, Value)> {
    event["data"]["changes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|change| {
            (
                change["field"].as_str().unwrap_or_default().to_owned(),
                change["old"].clone(),
                change["new"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_kind_emits_its_events_and_rejected_writes_emit_none() {
    let app = TestApp::spawn_with(webhook_settings()).await;
    let token = app.admin("acme", "user_admin").await;
    let receiver = Receiver::start().await;
    let (_, secret) = subscribe(&app, &token, &receiver.url(), &["*"]).await;

    // ICP: create, a rejected PATCH (400), a stale If-Match (412), PATCH, delete.
    let created = app.post(ICPS, &token, &minimal_icp("First")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let icp = created.body["id"].as_str().expect("id").to_owned();
    let invalid = app
        .patch(&icp_path(&icp), &token, &json!({"name": 7}))
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    let renamed = app
        .patch(&icp_path(&icp), &token, &json!({"name": "Second"}))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    let stale = app
        .send_with(
            Method::PATCH,
            &icp_path(&icp),
            Some(&token),
            Some(&json!({"name": "Third"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    // A retried write with the same Idempotency-Key is one write, one event.
    for _ in 0..2 {
        let keyed = app
            .send_with(
                Method::PATCH,
                &icp_path(&icp),
                Some(&token),
                Some(&json!({"leadsPerList": 25})),
                &[("idempotency-key", "once")],
            )
            .await;
        assert_eq!(keyed.status, StatusCode::OK, "{}", keyed.text);
    }
    assert_eq!(
        app.delete(&icp_path(&icp), &token).await.status,
        StatusCode::NO_CONTENT
    );

    // ClientSuccess client.
    let client = app
        .post(
            "/v2/client",
            &token,
            &json!({"name": "Acme", "status": "ACTIVE", "active": true}),
        )
        .await;
    assert_eq!(client.status, StatusCode::CREATED, "{}", client.text);
    let client_uuid = client.body["uuid"].as_str().expect("uuid").to_owned();
    let client_path = format!("/v2/client/{client_uuid}");
    assert_eq!(
        app.patch(&client_path, &token, &json!({"npsScore": "high"}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.patch(&client_path, &token, &json!({"npsScore": 9}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.delete(&client_path, &token).await.status,
        StatusCode::NO_CONTENT
    );

    // Hood profile list and profile.
    let list = app
        .post("/v1/hood/profile-lists", &token, &json!({"name": "VIP"}))
        .await;
    assert_eq!(list.status, StatusCode::CREATED, "{}", list.text);
    let list_id = list.body["id"].as_str().expect("id").to_owned();
    let list_path = format!("/v1/hood/profile-lists/{list_id}");
    assert_eq!(
        app.patch(&list_path, &token, &json!({"name": "V.I.P."}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let profile = app
        .post(
            "/v1/hood/profiles",
            &token,
            &json!({"email": "ada@example.com"}),
        )
        .await;
    assert_eq!(profile.status, StatusCode::CREATED, "{}", profile.text);
    let profile_id = profile.body["id"].as_str().expect("id").to_owned();
    let profile_path = format!("/v1/hood/profiles/{profile_id}");
    assert_eq!(
        app.patch(&profile_path, &token, &json!({"email": "not an address"}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.patch(&profile_path, &token, &json!({"full_name": "Ada L."}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&profile_path, &token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&list_path, &token).await.status,
        StatusCode::NO_CONTENT
    );

    let expected = vec![
        ("icp.created".to_owned(), icp.clone(), 1),
        ("icp.updated".to_owned(), icp.clone(), 2),
        ("icp.updated".to_owned(), icp.clone(), 3),
        ("icp.deleted".to_owned(), icp.clone(), 3),
        ("client.created".to_owned(), client_uuid.clone(), 1),
        ("client.updated".to_owned(), client_uuid.clone(), 2),
        ("client.deleted".to_owned(), client_uuid.clone(), 2),
        ("profile_list.created".to_owned(), list_id.clone(), 1),
        ("profile_list.updated".to_owned(), list_id.clone(), 2),
        ("profile.created".to_owned(), profile_id.clone(), 1),
        ("profile.updated".to_owned(), profile_id.clone(), 2),
        ("profile.deleted".to_owned(), profile_id.clone(), 2),
        ("profile_list.deleted".to_owned(), list_id.clone(), 2),
    ];
    let events = events_when(&app, &token, expected.len()).await;
    assert_eq!(summary(&events), expected);
    // The field diff, as history has it.
    assert_eq!(
        changed(&events[1]),
        vec![("name".to_owned(), json!("First"), json!("Second"))]
    );
    assert_eq!(
        changed(&events[2]),
        vec![("leadsPerList".to_owned(), json!(10), json!(25))]
    );
    assert_eq!(
        changed(&events[5]),
        vec![("npsScore".to_owned(), Value::Null, json!(9))]
    );
    assert_eq!(events[1]["data"]["actor"]["userId"], "user_admin");
    assert_eq!(
        events[1]["data"]["actor"]["requestId"].as_str(),
        renamed.header("x-request-id").as_deref()
    );
    // Ids sort as text in commit order.
    let ids: Vec<&str> = events
        .iter()
        .filter_map(|event| event["id"].as_str())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);

    // The webhook gets the same events, each body the feed's item.
    let wanted: HashSet<String> = ids.iter().map(|id| (*id).to_owned()).collect();
    let deliveries = receiver
        .wait_for_ids(&wanted, Duration::from_secs(20))
        .await;
    let by_id: HashMap<&str, &Delivery> = deliveries
        .iter()
        .map(|delivery| (delivery.id(), delivery))
        .collect();
    assert_eq!(by_id.len(), events.len(), "no event beyond the feed's");
    for event in &events {
        let delivery = by_id[event["id"].as_str().unwrap_or_default()];
        assert_eq!(&delivery.json, event);
        let signature = &delivery.headers["webhook-signature"];
        assert!(signature.starts_with("v1,"), "{signature}");
    }
    verify_with_reference(&deliveries, &[secret]);

    // Filters by type pattern.
    let deletes = app.get(&format!("{EVENTS}?types=*.deleted"), &token).await;
    assert_eq!(deletes.body["items"].as_array().map(Vec::len), Some(4));
    let profiles = app
        .get(
            &format!("{EVENTS}?types=profile.*,profile_list.created"),
            &token,
        )
        .await;
    assert_eq!(profiles.body["items"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn the_feed_is_for_admins_of_the_workspace_and_says_what_is_wrong() {
    let app = TestApp::spawn_with(webhook_settings()).await;
    let admin = app.admin("acme", "user_admin").await;
    let member = app.member("acme", "user_member").await;
    let other = app.admin("globex", "user_other").await;
    let created = app.post(ICPS, &admin, &minimal_icp("Mine")).await;
    assert_eq!(created.status, StatusCode::CREATED);

    let forbidden = app.get(EVENTS, &member).await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.text
    );
    assert_eq!(
        forbidden.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(
        app.get(EVENTS, &other).await.body,
        json!({"items": [], "next": null})
    );
    assert_eq!(
        app.send(Method::GET, EVENTS, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let bad = app
        .get(
            &format!("{EVENTS}?after=yesterday&limit=0&types=icp.changed&sort=asc"),
            &admin,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    let parameters: Vec<&str> = bad.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|error| error["parameter"].as_str())
        .collect();
    assert_eq!(parameters, ["sort"], "{}", bad.text);
    let bad = app
        .get(
            &format!("{EVENTS}?after=yesterday&limit=0&types=icp.changed"),
            &admin,
        )
        .await;
    let parameters: Vec<&str> = bad.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|error| error["parameter"].as_str())
        .collect();
    assert_eq!(parameters, ["after", "limit", "types"], "{}", bad.text);
}

#[tokio::test]
async fn deliveries_survive_a_receiver_outage_in_order_per_record() {
    let app = TestApp::spawn_with(webhook_settings()).await;
    let token = app.admin("acme", "user_admin").await;
    let mut receiver = Receiver::start().await;
    let (_, secret) = subscribe(&app, &token, &receiver.url(), &["icp.*"]).await;
    receiver.stop().await;

    let mut ids = Vec::new();
    for index in 0..4 {
        let created = app
            .post(ICPS, &token, &minimal_icp(&format!("ICP {index}")))
            .await;
        ids.push(created.body["id"].as_str().expect("id").to_owned());
    }
    let writers = ids.iter().map(|id| {
        let app = &app;
        let token = &token;
        async move {
            for step in 0..10 {
                let reply = app
                    .patch(&icp_path(id), token, &json!({"leadsPerList": step + 1}))
                    .await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            }
        }
    });
    futures::future::join_all(writers).await;
    // Down for longer than the first retries.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(receiver.deliveries().is_empty());
    receiver.restart().await;

    let events = events_when(&app, &token, 44).await;
    assert_eq!(events.len(), 44);
    let wanted: HashSet<String> = events
        .iter()
        .filter_map(|event| event["id"].as_str().map(str::to_owned))
        .collect();
    let deliveries = receiver
        .wait_for_ids(&wanted, Duration::from_secs(30))
        .await;
    let last_version = assert_in_order_per_record(&deliveries);
    assert!(last_version.values().all(|version| *version == 11));
    verify_with_reference(&deliveries, &[secret]);
}

#[tokio::test]
async fn the_feed_pages_through_concurrent_writes_without_skipping_or_repeating() {
    let app = TestApp::spawn_with(AppSettings {
        delivery: None,
        ..webhook_settings()
    })
    .await;
    let token = app.admin("acme", "user_admin").await;
    // CI runs a short burst; CLIENTELE_FEED_EVENTS=100000 runs the long one.
    let total: usize = std::env::var("CLIENTELE_FEED_EVENTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(2_000);
    let writers = 8;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for writer in 0..writers {
        let base_url = app.base_url.clone();
        let client = app.client.clone();
        let token = token.clone();
        handles.push(tokio::spawn(async move {
            let mut count = 0;
            let mut index = writer;
            while index < total {
                let response = client
                    .post(format!("{base_url}{ICPS}"))
                    .bearer_auth(&token)
                    .json(&minimal_icp(&format!("ICP {index}")))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(response.status(), StatusCode::CREATED);
                count += 1;
                index += writers;
            }
            count
        }));
    }
    // The consumer pages while the writers write.
    let consumer = {
        let app_url = app.base_url.clone();
        let client = app.client.clone();
        let token = token.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen: Vec<i64> = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let mut url = format!("{app_url}{EVENTS}?limit=137");
                if let Some(after) = &after {
                    url.push_str(&format!("&after={after}"));
                }
                let page: Value = client
                    .get(url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("send")
                    .json()
                    .await
                    .expect("json");
                let items = page["items"].as_array().cloned().unwrap_or_default();
                for item in &items {
                    let id = item["id"].as_str().unwrap_or_default();
                    seen.push(id.trim_start_matches("evt_").parse().unwrap_or(-1));
                }
                if let Some(next) = page["next"].as_str() {
                    after = Some(next.to_owned());
                }
                if items.is_empty() {
                    if finished {
                        return seen;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    let mut written = 0;
    for handle in handles {
        written += handle.await.expect("writer");
    }
    // Let the PostgreSQL horizon pass the last commits before the final
    // empty page ends the consumer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::SeqCst);
    let seen = consumer.await.expect("consumer");
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an event was listed twice");
    assert_eq!(seen.len(), written, "an event was skipped");
    assert!(
        seen.windows(2).all(|pair| pair[0] < pair[1]),
        "out of order"
    );
    let everything = all_events(&app, &token).await;
    let feed: Vec<i64> = everything
        .iter()
        .map(|event| {
            event["id"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("evt_")
                .parse()
                .unwrap_or(-1)
        })
        .collect();
    assert_eq!(seen, feed);
    eprintln!("the consumer paged {written} events while 8 writers wrote them");
}

#[tokio::test]
async fn subscriptions_are_managed_validated_and_scoped_to_the_workspace() {
    let app = TestApp::spawn_with(webhook_settings()).await;
    let admin = app.admin("acme", "user_admin").await;
    let member = app.member("acme", "user_member").await;
    let other = app.admin("globex", "user_other").await;
    let receiver = Receiver::start().await;

    // Every invalid field at its pointer.
    let invalid = app
        .post(
            WEBHOOKS,
            &admin,
            &json!({"url": "ftp://example.com", "eventTypes": ["icp", "lead.*", 3],
                    "enabled": "yes", "secret": "mine"}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST, "{}", invalid.text);
    let pointers: Vec<&str> = invalid.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|error| error["pointer"].as_str())
        .collect();
    assert_eq!(
        pointers,
        [
            "/secret",
            "/url",
            "/eventTypes/0",
            "/eventTypes/1",
            "/eventTypes/2",
            "/enabled"
        ],
        "{}",
        invalid.text
    );
    let missing = app.post(WEBHOOKS, &admin, &json!({})).await;
    let pointers: Vec<&str> = missing.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|error| error["pointer"].as_str())
        .collect();
    assert_eq!(pointers, ["/url", "/eventTypes"], "{}", missing.text);

    let refused = app
        .post(
            WEBHOOKS,
            &member,
            &json!({"url": receiver.url(), "eventTypes": ["*"]}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // No Idempotency-Key here: the answer holds a secret that is not kept.
    let keyed = app
        .send_with(
            Method::POST,
            WEBHOOKS,
            Some(&admin),
            Some(&json!({"url": receiver.url(), "eventTypes": ["*"]})),
            &[("idempotency-key", "k1")],
        )
        .await;
    assert_eq!(keyed.status, StatusCode::BAD_REQUEST, "{}", keyed.text);
    let detail = keyed.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("does not take Idempotency-Key"), "{detail}");

    let (id, secret) = subscribe(&app, &admin, &receiver.url(), &["icp.*"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let path = format!("{WEBHOOKS}/{id}");
    let shown = app.get(&path, &admin).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(
        shown.body.get("secret").is_none(),
        "the secret is shown once"
    );
    assert_eq!(
        shown.body["deliveries"],
        json!({"pending": 0, "delivered": 0, "failed": 0})
    );
    assert_eq!(app.get(&path, &other).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete(&path, &other).await.status,
        StatusCode::NOT_FOUND
    );
    let listed = app.get(WEBHOOKS, &admin).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.body["next"], Value::Null);
    assert_eq!(app.get(WEBHOOKS, &other).await.body["items"], json!([]));

    // A test send, signed like a delivery.
    let tested = app
        .send(Method::POST, &format!("{path}/test"), Some(&admin), None)
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.text);
    assert_eq!(tested.body["delivered"], true);
    assert_eq!(tested.body["status"], 204);
    let test_delivery = receiver
        .wait_until(Duration::from_secs(5), |deliveries| !deliveries.is_empty())
        .await;
    assert_eq!(test_delivery[0].json["type"], "webhook.test");
    verify_with_reference(&test_delivery, std::slice::from_ref(&secret));

    // Rotation: both secrets sign until the old one's grace ends.
    let rotated = app
        .post(&format!("{path}/rotate-secret"), &admin, &json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_secret = rotated.body["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, secret);
    assert!(rotated.body["previousSecretValidUntil"].is_string());
    let created = app.post(ICPS, &admin, &minimal_icp("Rotated")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let deliveries = receiver
        .wait_until(Duration::from_secs(10), |deliveries| deliveries.len() >= 2)
        .await;
    let delivery = &deliveries[1];
    assert_eq!(delivery.json["type"], "icp.created");
    assert_eq!(
        delivery.headers["webhook-signature"].split(' ').count(),
        2,
        "two signatures during a rotation"
    );
    verify_with_reference(
        std::slice::from_ref(delivery),
        &[new_secret.clone(), secret.clone()],
    );
    let bad_grace = app
        .post(
            &format!("{path}/rotate-secret"),
            &admin,
            &json!({"previousSecretValidSeconds": -1}),
        )
        .await;
    assert_eq!(bad_grace.status, StatusCode::BAD_REQUEST);

    // Update: only what is named changes.
    let patched = app
        .patch(
            &path,
            &admin,
            &json!({"eventTypes": ["client.*"], "description": "CRM sync"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["eventTypes"], json!(["client.*"]));
    assert_eq!(patched.body["url"], receiver.url());
    assert_eq!(
        app.patch(&path, &admin, &json!({})).await.status,
        StatusCode::BAD_REQUEST
    );

    // Attempts are listed, with their outcome.
    let attempts = app.get(&format!("{path}/attempts"), &admin).await;
    assert_eq!(attempts.status, StatusCode::OK, "{}", attempts.text);
    let outcomes: Vec<&str> = attempts.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|attempt| attempt["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["test", "delivered"]);
    let items = attempts.body["items"].as_array().expect("items");
    assert_eq!(
        items
            .iter()
            .map(|attempt| (attempt["status"].clone(), attempt["attempt"].clone()))
            .collect::<Vec<_>>(),
        [(json!(204), json!(1)), (json!(204), json!(1))]
    );
    assert!(
        items[0]["eventId"]
            .as_str()
            .is_some_and(|id| id.starts_with("evt_test_"))
    );
    assert_eq!(items[1]["eventId"], delivery.json["id"]);
    assert_eq!(attempts.body["next"], Value::Null);

    assert_eq!(
        app.delete(&path, &admin).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&path, &admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_endpoint_that_answers_410_is_disabled_and_failures_can_be_replayed() {
    let mut settings = webhook_settings();
    settings.webhooks.schedule = vec![Duration::ZERO, Duration::from_millis(50)];
    let app = TestApp::spawn_with(settings).await;
    let token = app.admin("acme", "user_admin").await;
    let receiver = Receiver::start().await;
    let (id, _) = subscribe(&app, &token, &receiver.url(), &["icp.*"]).await;
    let path = format!("{WEBHOOKS}/{id}");

    // 500 on both attempts: the delivery fails.
    receiver.answer(500);
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    assert_eq!(
        app.post(ICPS, &token, &minimal_icp("Failing")).await.status,
        StatusCode::CREATED
    );
    receiver
        .wait_until(Duration::from_secs(10), |deliveries| deliveries.len() >= 2)
        .await;
    let mut counts = Value::Null;
    for _ in 0..100 {
        counts = app.get(&path, &token).await.body["deliveries"].clone();
        if counts["failed"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counts, json!({"pending": 0, "delivered": 0, "failed": 1}));

    // Replay sends it again, now successfully.
    receiver.answer(204);
    let replayed = app
        .post(
            &format!("{path}/replay"),
            &token,
            &json!({"since": since.to_rfc3339()}),
        )
        .await;
    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.text);
    assert_eq!(replayed.body["replayed"], 1);
    receiver
        .wait_until(Duration::from_secs(10), |deliveries| deliveries.len() >= 3)
        .await;
    let bad = app
        .post(
            &format!("{path}/replay"),
            &token,
            &json!({"since": "last week"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // 410 Gone disables the subscription.
    receiver.answer(410);
    assert_eq!(
        app.post(ICPS, &token, &minimal_icp("Gone")).await.status,
        StatusCode::CREATED
    );
    let mut shown = Value::Null;
    for _ in 0..200 {
        shown = app.get(&path, &token).await.body;
        if shown["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(shown["enabled"], false, "{shown}");
    assert_eq!(shown["disabledReason"], "the endpoint answered 410 Gone");
    // Enabling again clears the reason.
    let enabled = app.patch(&path, &token, &json!({"enabled": true})).await;
    assert_eq!(enabled.body["enabled"], true);
    assert_eq!(enabled.body["disabledReason"], Value::Null);

    // Every attempt is kept with its status, number and outcome.
    let attempts = app.get(&format!("{path}/attempts"), &token).await;
    assert_eq!(attempts.status, StatusCode::OK, "{}", attempts.text);
    let kept: Vec<(Value, Value, Value)> = attempts.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|attempt| {
            (
                attempt["status"].clone(),
                attempt["attempt"].clone(),
                attempt["outcome"].clone(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            (json!(500), json!(1), json!("retry")),
            (json!(500), json!(2), json!("failed")),
            (json!(204), json!(1), json!("delivered")),
            (json!(410), json!(1), json!("disabled")),
        ]
    );
}

#[tokio::test]
async fn internal_targets_and_plain_http_are_refused_without_the_flag() {
    let mut settings = webhook_settings();
    settings.webhooks.allow_private = false;
    let app = TestApp::spawn_with(settings).await;
    let token = app.admin("acme", "user_admin").await;
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.7/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost:8443/hook",
        "http://example.com/hook",
        "https://user:password@example.com/hook",
    ] {
        let reply = app
            .post(WEBHOOKS, &token, &json!({"url": url, "eventTypes": ["*"]}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{url}: {}",
            reply.text
        );
        assert_eq!(reply.body["errors"][0]["pointer"], "/url", "{}", reply.text);
    }
    let reply = app
        .post(
            WEBHOOKS,
            &token,
            &json!({"url": "https://127.0.0.1/hook", "eventTypes": ["*"]}),
        )
        .await;
    let detail = reply.body["errors"][0]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.contains("--webhook-allow-private"), "{detail}");
}

/// `(record id, version)` of each write answered 2xx.
type Acknowledged = Arc<Mutex<Vec<(String, i64)>>>;

async fn burst_until_killed(
    base_url: String,
    token: String,
    ids: Vec<String>,
    acknowledged: Acknowledged,
) {
    let client = crate::support::http_client();
    let writers = ids.into_iter().map(|id| {
        let client = client.clone();
        let base_url = base_url.clone();
        let token = token.clone();
        let acknowledged = acknowledged.clone();
        async move {
            for step in 0.. {
                let sent = client
                    .patch(format!("{base_url}{}", icp_path(&id)))
                    .bearer_auth(&token)
                    .json(&json!({"leadsPerList": step % 500 + 1}))
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                if response.status() != StatusCode::OK {
                    return;
                }
                let version = etag_version(&response);
                acknowledged
                    .lock()
                    .expect("lock")
                    .push((id.clone(), version));
            }
        }
    });
    futures::future::join_all(writers).await;
}

pub fn admin_token(database_url: &str) -> String {
    let output = crate::support::run_cli(&[
        "keys",
        "create",
        "--workspace",
        "acme",
        "--user",
        "user_admin",
        "--admin",
        "--database-url",
        database_url,
    ]);
    output
        .split_whitespace()
        .find(|word| word.starts_with("clt_"))
        .expect("a token")
        .to_owned()
}

/// `serve` flags for a webhook test: fast retries, loopback targets.
pub fn serve_flags(key_file: &str) -> Vec<String> {
    vec![
        "--webhook-allow-private".into(),
        "--webhook-retry-schedule".into(),
        "0s,50ms,100ms,200ms,400ms,400ms,400ms,400ms,400ms".into(),
        "--webhook-key-file".into(),
        key_file.into(),
        // A killed instance's leases last 2 × this + 5 s (PostgreSQL; on
        // SQLite a restart releases them).
        "--webhook-timeout".into(),
        "2s".into(),
    ]
}

#[tokio::test]
async fn kill_9_during_a_burst_loses_no_committed_writes_event() {
    let database = TestDatabase::create().await;
    let key_directory = tempfile::tempdir().expect("directory");
    let key_file = key_directory.path().join("webhook.key");
    let flags = serve_flags(&key_file.display().to_string());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let token = admin_token(database.url());
    let receiver = Receiver::start().await;
    let server = ServerProcess::start_with(database.url(), &flags);
    let client = crate::support::http_client();
    let base = server.base_url.clone();
    let made: Value = client
        .post(format!("{base}{WEBHOOKS}"))
        .bearer_auth(&token)
        .json(&json!({"url": receiver.url(), "eventTypes": ["icp.*"]}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let secret = made["secret"].as_str().expect("secret").to_owned();
    let mut ids = Vec::new();
    for index in 0..8 {
        let created: Value = client
            .post(format!("{base}{ICPS}"))
            .bearer_auth(&token)
            .json(&minimal_icp(&format!("ICP {index}")))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    let acknowledged: Acknowledged = Arc::default();
    let burst = tokio::spawn(burst_until_killed(
        base.clone(),
        token.clone(),
        ids.clone(),
        acknowledged.clone(),
    ));
    // Kill while writes and deliveries are in flight.
    receiver
        .wait_until(Duration::from_secs(30), |deliveries| {
            deliveries.len() >= 200
        })
        .await;
    server.kill_hard();
    burst.await.expect("burst");
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() >= 100, "{} writes", acknowledged.len());

    let server = ServerProcess::start_with(database.url(), &flags);
    // Every acknowledged write's event, and nothing else, is delivered.
    let feed = feed_holding(&server.base_url, &token, &acknowledged).await;
    let (deliveries, duplicates) = delivered_exactly(
        &receiver,
        &feed,
        (&server.base_url, &token),
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "kill -9 during a burst: {} writes acknowledged, {} events committed, {} deliveries \
         received, {duplicates} duplicates",
        acknowledged.len(),
        feed.len(),
        deliveries.len(),
    );
    verify_with_reference(&deliveries, &[secret]);
    drop(server);
}

#[tokio::test]
async fn the_cli_adds_lists_replays_and_removes_subscriptions() {
    let database = TestDatabase::create().await;
    let key_directory = tempfile::tempdir().expect("directory");
    let key_file = key_directory.path().join("webhook.key");
    let key_file = key_file.to_str().expect("path");
    let common = [
        "--workspace",
        "acme",
        "--database-url",
        database.url(),
        "--webhook-key-file",
        key_file,
    ];
    let with = |command: &[&str], extra: &[&str]| -> Vec<String> {
        command
            .iter()
            .chain(common.iter())
            .chain(extra.iter())
            .map(|word| (*word).to_owned())
            .collect()
    };
    let run = |words: Vec<String>| {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        crate::support::run_cli(&words)
    };

    let added = run(with(
        &[
            "webhooks",
            "add",
            "--url",
            "http://127.0.0.1:9/hook",
            "--events",
            "icp.*,client.updated",
        ],
        &["--webhook-allow-private"],
    ));
    let id = added
        .split_whitespace()
        .find(|word| word.starts_with("wh_"))
        .expect("an id")
        .to_owned();
    assert!(added.contains("secret: whsec_"), "{added}");
    let listed = run(with(&["webhooks", "list"], &[]));
    assert!(
        listed.contains(&format!(
            "{id}  http://127.0.0.1:9/hook  icp.*,client.updated  enabled"
        )),
        "{listed}"
    );

    // The same target without the flag is refused, saying why.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_clientele"))
        .args(with(
            &["webhooks", "add", "--url", "http://127.0.0.1:9/hook"],
            &[],
        ))
        .env_remove("CLIENTELE_DATABASE_URL")
        .output()
        .expect("run clientele");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--webhook-allow-private"), "{stderr}");

    let replayed = run(with(
        &[
            "webhooks",
            "replay",
            "--since",
            "2026-01-01T00:00:00Z",
            "--webhook",
            &id,
        ],
        &[],
    ));
    assert_eq!(replayed.trim(), "0 deliveries are pending again");
    let removed = run(with(&["webhooks", "remove", &id], &[]));
    assert_eq!(removed.trim(), format!("removed webhook {id}"));
    let listed = run(with(&["webhooks", "list"], &[]));
    assert_eq!(listed.trim(), "no webhooks in workspace acme");
}

#[tokio::test]
async fn a_subscription_gets_the_events_committed_while_it_is_enabled() {
    let app = TestApp::spawn_with(webhook_settings()).await;
    let token = app.admin("acme", "user_admin").await;
    let receiver = Receiver::start().await;
    let create = |name: &'static str| {
        let app = &app;
        let token = &token;
        async move {
            let reply = app.post(ICPS, token, &minimal_icp(name)).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
            reply.body["id"].as_str().expect("id").to_owned()
        }
    };
    create("Before").await;
    let (id, _) = subscribe(&app, &token, &receiver.url(), &["icp.*"]).await;
    let path = format!("{WEBHOOKS}/{id}");
    let after = create("After").await;
    receiver
        .wait_until(Duration::from_secs(10), |deliveries| !deliveries.is_empty())
        .await;
    let off = app.patch(&path, &token, &json!({"enabled": false})).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    create("While off").await;
    let on = app.patch(&path, &token, &json!({"enabled": true})).await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text);
    let back = create("Back").await;
    receiver
        .wait_until(Duration::from_secs(10), |deliveries| deliveries.len() >= 2)
        .await;
    // Time for any stray delivery to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let records: Vec<String> = receiver
        .deliveries()
        .iter()
        .map(|delivery| {
            delivery.json["data"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(records, [after, back]);
}
