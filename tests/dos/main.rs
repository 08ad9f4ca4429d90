//! Denial-of-service checks that measure latency: each runs a server
//! process under attack and times another client's requests. They live in a
//! binary of their own because cargo runs test binaries one after another,
//! so nothing else of the suite competes for the CPU while they measure;
//! and within it they take turns (`one_at_a_time`).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

#[allow(dead_code)]
#[path = "../api/support.rs"]
mod support;

use support::{ICPS, ServerProcess, TestDatabase, icp_path, minimal_icp, run_cli};

mod connections;

/// The suite's backend (the checks here do not depend on it).
const BACKEND: support::Backend = support::Backend::Sqlite;

/// Tests of this binary measure one at a time.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// The most expensive regular expressions a member may send — as many
/// `matchFieldWithRegex` criteria as an ICP may hold, each compiling to its
/// limit — from 32 clients at once, against a server process: the heavy
/// work is bounded per request and runs a few at a time off the async
/// workers, so another workspace's reads stay fast. (Before the budget, a
/// body of 50 such criteria cost ~65 ms of CPU and the other workspace's
/// GET median rose from 1.4 ms to 913 ms.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_costly_regexes_leaves_other_workspaces_fast() {
    use clientele::core::icp::MAX_REGEX_CRITERIA;
    let _turn = one_at_a_time().await;
    let database = TestDatabase::create().await;
    let key = |workspace: &str| {
        run_cli(&[
            "keys",
            "create",
            "--workspace",
            workspace,
            "--user",
            "u1",
            "--database-url",
            database.url(),
        ])
        .trim()
        .to_owned()
    };
    let (attacker, victim) = (key("attacker"), key("victim"));
    let server = ServerProcess::start(database.url());
    let client = crate::support::http_client();
    let url = |path: &str| format!("{}{path}", server.base_url);
    let mut ids = Vec::new();
    for token in [&attacker, &victim] {
        let created = client
            .post(url(ICPS))
            .bearer_auth(token)
            .json(&minimal_icp("Target"))
            .send()
            .await
            .expect("sent");
        assert_eq!(created.status(), StatusCode::CREATED);
        let body: serde_json::Value = created.json().await.expect("json");
        ids.push(body["id"].as_str().unwrap_or_default().to_owned());
    }
    let costly = |count: usize| {
        let criteria: Vec<serde_json::Value> = (0..count)
            .map(|_| json!({"type": "matchFieldWithRegex", "field": "name", "regex": r"(?i)\p{L}{200}"}))
            .collect();
        json!({ "customFilterCriteria": criteria })
    };

    // Over the cap, nothing is compiled at all.
    let started = Instant::now();
    let refused = client
        .patch(url(&icp_path(&ids[0])))
        .bearer_auth(&attacker)
        .json(&costly(50))
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(started.elapsed() < Duration::from_millis(200));

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attack = costly(MAX_REGEX_CRITERIA);
    let mut attackers = Vec::new();
    for _ in 0..32 {
        let (client, url, token, body, stop) = (
            client.clone(),
            url(&icp_path(&ids[0])),
            attacker.clone(),
            attack.clone(),
            stop.clone(),
        );
        attackers.push(tokio::spawn(async move {
            let mut sent = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let reply = client
                    .patch(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                assert!(reply.is_ok_and(|reply| reply.status() == StatusCode::BAD_REQUEST));
                sent += 1;
            }
            sent
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::new();
    let measuring = Instant::now();
    while measuring.elapsed() < Duration::from_secs(3) {
        let started = Instant::now();
        let reply = client
            .get(url(&icp_path(&ids[1])))
            .bearer_auth(&victim)
            .send()
            .await
            .expect("sent");
        assert_eq!(reply.status(), StatusCode::OK);
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut attacks = 0;
    for attacker in attackers {
        attacks += attacker.await.expect("attacker finished");
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let p50 = latencies[latencies.len() / 2];
    println!(
        "regex burst: {attacks} refused attacks; victim GET p50 {p50:?}, p99 {p99:?} over {} requests",
        latencies.len()
    );
    assert!(attacks > 32, "the attack ran: {attacks} requests");
    assert!(p99 < Duration::from_millis(20), "victim GET p99 {p99:?}");
}
