//! Several stateless instances on one PostgreSQL (and one Redis): no lost
//! update across instances, exactly one winner among equal `If-Match`
//! writes, rate limits that hold for the instances together, and a
//! database outage that yields fast 503s and recovers by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clientele::app::AppSettings;
use clientele::store::postgres::PgSettings;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::concurrency::{FieldPatch, assert_patches_persist_across};
use crate::support::{
    ICPS, ServerProcess, TestApp, TestDatabase, icp_path, member_token, minimal_icp,
};

const REDIS_URL: &str = "redis://127.0.0.1:6379";

fn redis_url() -> String {
    std::env::var("CLIENTELE_TEST_REDIS_URL").unwrap_or_else(|_| REDIS_URL.to_owned())
}

/// A workspace name no earlier run has used (Redis counters outlive tests).
fn fresh_workspace() -> String {
    format!("ws_{}", uuid::Uuid::new_v4().simple())
}

struct Cluster {
    instances: Vec<ServerProcess>,
    token: String,
    client: reqwest::Client,
    _database: TestDatabase,
}

impl Cluster {
    async fn start(extra_args: &[&str]) -> Cluster {
        let database = TestDatabase::create().await;
        let workspace = fresh_workspace();
        let token = member_token(database.url(), &workspace);
        let instances = (0..2)
            .map(|_| ServerProcess::start_with(database.url(), extra_args))
            .collect();
        Cluster {
            instances,
            token,
            client: crate::support::http_client(),
            _database: database,
        }
    }

    fn bases(&self) -> Vec<String> {
        self.instances
            .iter()
            .map(|instance| instance.base_url.clone())
            .collect()
    }
}

/// One Idempotency-Key, retried at once through both instances (as a
/// client retrying after a timeout through a load balancer might): one
/// record is written; every answer is that record (first or replayed) or a
/// 409 while the first attempt runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_over_two_instances_writes_once() {
    let cluster = Cluster::start(&["--hood-rate-limit", "off"]).await;
    let bases = cluster.bases();
    let body = json!({"email": "once@example.com"});
    let requests = (0..40).map(|i| {
        cluster
            .client
            .post(format!("{}/v1/hood/profiles", bases[i % 2]))
            .bearer_auth(&cluster.token)
            .header("idempotency-key", "one-key")
            .json(&body)
            .send()
    });
    let mut ids = Vec::new();
    let mut conflicts = 0;
    for reply in join_all(requests).await {
        let reply = TestApp::reply(reply.expect("sent")).await;
        match reply.status {
            StatusCode::CREATED => ids.push(reply.body["id"].clone()),
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("{other}: {}", reply.text),
        }
    }
    assert!(!ids.is_empty(), "{conflicts} conflicts and no answer");
    assert!(ids.iter().all(|id| *id == ids[0]), "one record: {ids:?}");
    let list = TestApp::reply(
        cluster
            .client
            .get(format!("{}/v1/hood/profiles", bases[1]))
            .bearer_auth(&cluster.token)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(list.body["total"], 1, "{}", list.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_patches_over_two_instances_all_persist() {
    let cluster = Cluster::start(&["--hood-rate-limit", "off"]).await;
    let bases = cluster.bases();
    let created = TestApp::reply(
        cluster
            .client
            .post(format!("{}/v1/hood/profiles", bases[0]))
            .bearer_auth(&cluster.token)
            .json(&json!({"email": "a@example.com"}))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let path = format!(
        "/v1/hood/profiles/{}",
        created.body["id"].as_str().unwrap_or_default()
    );
    // Half of the patches each add their own custom property (100 in all,
    // the most a profile holds): every one must survive.
    let patches = (0..200)
        .map(|i| match i % 4 {
            1 => FieldPatch {
                body: json!({"full_name": format!("name {i}")}),
                pointer: "/full_name".into(),
                expected: json!(format!("name {i}")),
            },
            3 => FieldPatch {
                body: json!({"comment": format!("comment {i}")}),
                pointer: "/comment".into(),
                expected: json!(format!("comment {i}")),
            },
            _ => FieldPatch {
                body: json!({"custom_properties": {format!("k{i}"): i}}),
                pointer: format!("/custom_properties/k{i}"),
                expected: json!(i),
            },
        })
        .collect();
    assert_patches_persist_across(&cluster.client, &bases, &cluster.token, &path, patches).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn equal_if_match_writes_over_two_instances_have_exactly_one_winner() {
    let cluster = Cluster::start(&[]).await;
    let bases = cluster.bases();
    let created = TestApp::reply(
        cluster
            .client
            .post(format!("{}{ICPS}", bases[0]))
            .bearer_auth(&cluster.token)
            .json(&minimal_icp("Contested"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let path = icp_path(created.body["id"].as_str().unwrap_or_default());
    let replies = join_all((0..20).map(|i| {
        let request = cluster
            .client
            .patch(format!("{}{path}", bases[i % bases.len()]))
            .bearer_auth(&cluster.token)
            .header("if-match", "\"1\"")
            .json(&json!({"name": format!("writer {i}")}));
        async move { TestApp::reply(request.send().await.expect("sent")).await }
    }))
    .await;
    let winners: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    let losers = replies
        .iter()
        .filter(|r| r.status == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((winners.len(), losers), (1, 19));
    let current = TestApp::reply(
        cluster
            .client
            .get(format!("{}{path}", bases[1]))
            .bearer_auth(&cluster.token)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(current.body["name"], winners[0].body["name"]);
    assert_eq!(current.header("etag").as_deref(), Some("\"2\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_two_instances_together_admit_exactly_the_hood_limit() {
    let redis = redis_url();
    let cluster = Cluster::start(&["--redis-url", &redis]).await;
    let bases = cluster.bases();
    let started = Instant::now();
    let replies = join_all((0..15).map(|i| {
        let request = cluster
            .client
            .get(format!("{}/v1/hood/profiles", bases[i % bases.len()]))
            .bearer_auth(&cluster.token);
        async move { TestApp::reply(request.send().await.expect("sent")).await }
    }))
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the burst fits in one second"
    );
    let passed = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let refused: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!((passed, refused.len()), (10, 5));
    for reply in refused {
        assert_eq!(reply.header("retry-after").as_deref(), Some("1"));
        assert_eq!(reply.body["code"], 429);
    }
}

/// A TCP proxy between Clientele and PostgreSQL that the test can cut
/// (closing every connection and refusing new ones) and restore.
struct CuttableProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    kill: watch::Sender<u64>,
}

impl CuttableProxy {
    async fn start(upstream: String) -> CuttableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let (kill, _) = watch::channel(0u64);
        let accept_cut = cut.clone();
        let accept_kill = kill.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if accept_cut.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let mut killed = accept_kill.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = killed.changed() => {}
                    }
                });
            }
        });
        CuttableProxy { port, cut, kill }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.kill.send_modify(|generation| *generation += 1);
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_gives_fast_503s_and_recovers_by_itself() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let (rest, name) = url.rsplit_once('/').expect("a database name");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = host.trim_start_matches("postgres://");
    let proxy = CuttableProxy::start(host.to_owned()).await;
    let through_proxy = format!("postgres://postgres@127.0.0.1:{}/{name}", proxy.port);
    let store = clientele::store::connect_with(
        &through_proxy,
        PgSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(1),
        },
    )
    .await
    .expect("connect through the proxy");
    let app = TestApp::spawn_with_store(store, database, AppSettings::default()).await;
    let token = app.member("acme", "user_abc123").await;
    let created = app.post(ICPS, &token, &minimal_icp("Before")).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let path = icp_path(created.body["id"].as_str().unwrap_or_default());

    proxy.cut();
    for _ in 0..3 {
        let started = Instant::now();
        let reply = app.get(&path, &token).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.text
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "fails fast: {:?}",
            started.elapsed()
        );
        assert_eq!(reply.body["error"]["code"], "SERVICE_UNAVAILABLE");
        assert_eq!(reply.header("retry-after").as_deref(), Some("1"));
    }
    let write = app.patch(&path, &token, &json!({"name": "During"})).await;
    assert_eq!(write.status, StatusCode::SERVICE_UNAVAILABLE);
    let ready = app.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let alive = app.send(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(alive.status, StatusCode::OK);

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    let recovered = loop {
        let reply = app.get(&path, &token).await;
        if reply.status == StatusCode::OK || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(recovered.status, StatusCode::OK, "{}", recovered.text);
    assert_eq!(
        recovered.body["name"], "Before",
        "the refused write changed nothing"
    );
    let write = app.patch(&path, &token, &json!({"name": "After"})).await;
    assert_eq!(write.status, StatusCode::OK, "{}", write.text);
}

/// Two instances deliver one subscription's events while writes reach both
/// (round robin); one is killed with SIGKILL mid-burst. Every committed
/// write's event arrives, each record's in version order; duplicates come
/// only from the killed instance's unfinished attempts, and are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_deliver_every_event_when_one_is_killed() {
    use crate::webhooks::{
        Receiver, admin_token, delivered_exactly, etag_version, feed_holding, serve_flags,
        verify_with_reference,
    };

    let database = TestDatabase::create().await;
    let key_directory = tempfile::tempdir().expect("directory");
    let key_file = key_directory.path().join("webhook.key");
    let flags = serve_flags(&key_file.display().to_string());
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let token = admin_token(database.url());
    let mut instances: Vec<Option<ServerProcess>> = (0..2)
        .map(|_| Some(ServerProcess::start_with(database.url(), &flags)))
        .collect();
    let bases: Vec<String> = instances
        .iter()
        .flatten()
        .map(|instance| instance.base_url.clone())
        .collect();
    let client = crate::support::http_client();
    let receiver = Receiver::start().await;
    let made: serde_json::Value = client
        .post(format!("{}/clientele/v1/webhooks", bases[0]))
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
        let created: serde_json::Value = client
            .post(format!("{}{ICPS}", bases[index % 2]))
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

    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<(String, i64)>::new()));
    let writers = ids.iter().enumerate().map(|(writer, id)| {
        let client = client.clone();
        let bases = bases.clone();
        let token = token.clone();
        let acknowledged = acknowledged.clone();
        let id = id.clone();
        tokio::spawn(async move {
            for step in 0..80usize {
                let base = &bases[(writer + step) % 2];
                let Ok(response) = client
                    .patch(format!("{base}{}", icp_path(&id)))
                    .bearer_auth(&token)
                    .json(&json!({"leadsPerList": step + 1}))
                    .send()
                    .await
                else {
                    continue;
                };
                if response.status() != StatusCode::OK {
                    continue;
                }
                let version = etag_version(&response);
                acknowledged
                    .lock()
                    .expect("lock")
                    .push((id.clone(), version));
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    receiver
        .wait_until(Duration::from_secs(60), |deliveries| {
            deliveries.len() >= 150
        })
        .await;
    if let Some(victim) = instances[0].take() {
        victim.kill_hard();
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();

    // Every acknowledged write's event, and nothing else, is delivered,
    // each record's in order; the feed is read from the instance that lives.
    let feed = feed_holding(&bases[1], &token, &acknowledged).await;
    let (deliveries, duplicates) = delivered_exactly(
        &receiver,
        &feed,
        (&bases[1], &token),
        Duration::from_secs(90),
    )
    .await;
    eprintln!(
        "two instances, one killed: {} writes acknowledged, {} events committed, {} deliveries \
         received, {duplicates} duplicates",
        acknowledged.len(),
        feed.len(),
        deliveries.len(),
    );
    verify_with_reference(&deliveries, &[secret]);
}
