//! `Idempotency-Key` on every write of every surface: a retry gets the
//! first answer again, byte for byte, and nothing is written twice; a key
//! reused with another request is 422, a key whose request still runs 409;
//! keys expire; a crash between the commit and the answer is replayed.

use std::time::Duration;

use clientele::app::AppSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    ICPS, Reply, ServerProcess, TestApp, TestDatabase, icp_path, minimal_icp, run_cli,
    seed_icp_patch,
};

const KEY: &str = "idempotency-key";

async fn keyed(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
    key: &str,
) -> Reply {
    app.send_with(method, path, Some(token), body, &[(KEY, key)])
        .await
}

/// The parts of an answer a replay must repeat exactly.
fn answer(reply: &Reply) -> (StatusCode, String, Option<String>, Option<String>) {
    (
        reply.status,
        reply.text.clone(),
        reply.header("etag"),
        reply.header("location"),
    )
}

async fn count(app: &TestApp, token: &str, path: &str, items: &str) -> usize {
    let reply = app.get(path, token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let list = if items.is_empty() {
        &reply.body
    } else {
        &reply.body[items]
    };
    list.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_retried_create_answers_again_byte_for_byte_and_creates_once() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    let icp = minimal_icp("Once");
    let first = keyed(&app, Method::POST, ICPS, &token, Some(&icp), "create-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = keyed(&app, Method::POST, ICPS, &token, Some(&icp), "create-1").await;
    assert_eq!(answer(&again), answer(&first));
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(count(&app, &token, ICPS, "").await, 1);

    let client = json!({"name": "Acme", "status": "ACTIVE", "active": true});
    let first = keyed(&app, Method::POST, "/v2/client", &token, Some(&client), "c").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = keyed(&app, Method::POST, "/v2/client", &token, Some(&client), "c").await;
    assert_eq!(answer(&again), answer(&first));
    assert!(again.header("location").is_some());
    assert_eq!(count(&app, &token, "/v2/client/search", "data").await, 1);

    let profile = json!({"email": "a@example.com"});
    let first = keyed(
        &app,
        Method::POST,
        "/v1/hood/profiles",
        &token,
        Some(&profile),
        "p",
    )
    .await;
    let again = keyed(
        &app,
        Method::POST,
        "/v1/hood/profiles",
        &token,
        Some(&profile),
        "p",
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(answer(&again), answer(&first));
    assert_eq!(count(&app, &token, "/v1/hood/profiles", "items").await, 1);
}

#[tokio::test]
async fn a_retried_patch_or_delete_changes_nothing_more() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    let created = app.post(ICPS, &token, &minimal_icp("Patched")).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let path = icp_path(&id);
    let first = keyed(
        &app,
        Method::PATCH,
        &path,
        &token,
        Some(&seed_icp_patch()),
        "patch",
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.header("etag").as_deref(), Some("\"2\""));
    let again = keyed(
        &app,
        Method::PATCH,
        &path,
        &token,
        Some(&seed_icp_patch()),
        "patch",
    )
    .await;
    assert_eq!(answer(&again), answer(&first));
    let history = app.get(&format!("{path}/history"), &token).await;
    assert_eq!(history.body["total"], 2, "create and one update");

    let gone = keyed(&app, Method::DELETE, &path, &token, None, "delete").await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let again = keyed(&app, Method::DELETE, &path, &token, None, "delete").await;
    assert_eq!(
        again.status,
        StatusCode::NO_CONTENT,
        "not 404: the first answer"
    );
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));

    let profile = app
        .post(
            "/v1/hood/profiles",
            &token,
            &json!({"email": "a@example.com"}),
        )
        .await;
    let profile = format!(
        "/v1/hood/profiles/{}",
        profile.body["id"].as_str().expect("id")
    );
    let body = json!({"comment": "once"});
    let first = keyed(&app, Method::PATCH, &profile, &token, Some(&body), "hood").await;
    let again = keyed(&app, Method::PATCH, &profile, &token, Some(&body), "hood").await;
    assert_eq!(first.status, StatusCode::NO_CONTENT);
    assert_eq!(answer(&again), answer(&first));
    assert_eq!(
        app.get(&profile, &token).await.header("etag").as_deref(),
        Some("\"2\"")
    );
}

#[tokio::test]
async fn a_key_reused_with_another_request_is_422_in_each_envelope() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    let created = keyed(
        &app,
        Method::POST,
        ICPS,
        &token,
        Some(&minimal_icp("A")),
        "k",
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let other = keyed(
        &app,
        Method::POST,
        ICPS,
        &token,
        Some(&minimal_icp("B")),
        "k",
    )
    .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        other.body,
        json!({"error": {"code": "UNPROCESSABLE_ENTITY", "message":
            "This Idempotency-Key was already used with a different request; use a new key for a new request"}})
    );
    let client = json!({"name": "A", "status": "ACTIVE", "active": true});
    keyed(&app, Method::POST, "/v2/client", &token, Some(&client), "c").await;
    let other = json!({"name": "B", "status": "ACTIVE", "active": true});
    let reused = keyed(&app, Method::POST, "/v2/client", &token, Some(&other), "c").await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reused.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(reused.body["status"], 422);
    let hood = json!({"email": "a@example.com"});
    keyed(
        &app,
        Method::POST,
        "/v1/hood/profiles",
        &token,
        Some(&hood),
        "h",
    )
    .await;
    let reused = keyed(
        &app,
        Method::POST,
        "/v1/hood/profile-lists",
        &token,
        Some(&json!({"name": "L"})),
        "h",
    )
    .await;
    assert_eq!(
        reused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "another path"
    );
    assert_eq!(reused.body["code"], 422);
    assert_eq!(reused.body["title"], "Unprocessable entity.");
}

#[tokio::test]
async fn keys_over_255_characters_are_400_and_keys_are_per_caller() {
    let app = TestApp::spawn().await;
    let one = app.member("acme", "user_one").await;
    let two = app.member("acme", "user_two").await;
    let long = "k".repeat(256);
    let refused = keyed(
        &app,
        Method::POST,
        ICPS,
        &one,
        Some(&minimal_icp("A")),
        &long,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(
        refused.body["error"]["message"],
        "Invalid Idempotency-Key header: Idempotency-Key must have 1 to 255 characters; this one has 256"
    );
    let fits = "k".repeat(255);
    let first = keyed(
        &app,
        Method::POST,
        ICPS,
        &one,
        Some(&minimal_icp("A")),
        &fits,
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    // Another caller's key of the same text is its own.
    let second = keyed(
        &app,
        Method::POST,
        ICPS,
        &two,
        Some(&minimal_icp("A")),
        &fits,
    )
    .await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_ne!(second.body["id"], first.body["id"]);
}

#[tokio::test]
async fn a_failed_write_keeps_nothing_and_may_be_retried() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    let missing = icp_path("00000000-0000-4000-8000-000000000000");
    let body = json!({"name": "x"});
    let first = keyed(&app, Method::PATCH, &missing, &token, Some(&body), "k").await;
    assert_eq!(first.status, StatusCode::NOT_FOUND);
    // Nothing was kept: the same key may now name another request.
    let created = keyed(
        &app,
        Method::POST,
        ICPS,
        &token,
        Some(&minimal_icp("A")),
        "k",
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
}

#[tokio::test]
async fn concurrent_duplicates_write_once() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    let icp = minimal_icp("Raced");
    let requests = (0..20).map(|_| keyed(&app, Method::POST, ICPS, &token, Some(&icp), "race"));
    let replies = futures::future::join_all(requests).await;
    let created: Vec<&Reply> = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::CREATED)
        .collect();
    for reply in &replies {
        assert!(
            reply.status == StatusCode::CREATED || reply.status == StatusCode::CONFLICT,
            "{}: {}",
            reply.status,
            reply.text
        );
    }
    assert!(!created.is_empty());
    for reply in &created {
        assert_eq!(
            reply.body["id"], created[0].body["id"],
            "one record, replayed"
        );
    }
    assert_eq!(count(&app, &token, ICPS, "").await, 1);
}

#[tokio::test]
async fn keys_expire_and_are_purged() {
    let app = TestApp::spawn_with(AppSettings {
        idempotency_ttl: Duration::from_secs(1),
        rate_limits: Default::default(),
        ..AppSettings::default()
    })
    .await;
    let token = app.member("acme", "user_abc123").await;
    let icp = minimal_icp("Expiring");
    let first = keyed(&app, Method::POST, ICPS, &token, Some(&icp), "k").await;
    assert_eq!(first.status, StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let later = keyed(&app, Method::POST, ICPS, &token, Some(&icp), "k").await;
    assert_eq!(later.status, StatusCode::CREATED);
    assert_eq!(
        later.header("idempotent-replayed"),
        None,
        "expired: written again"
    );
    assert_eq!(count(&app, &token, ICPS, "").await, 2);
    let purged = app
        .store
        .idempotency_purge(chrono::Utc::now() + chrono::Duration::seconds(1), 1_000)
        .await
        .expect("purge");
    assert_eq!(purged, 1, "the kept response is gone");
}

/// The process dies after the write and its key committed, before the
/// answer leaves: the client's retry must get that answer, not a second
/// record. (`CLIENTELE_FAULT=exit-after-kept-write` stops the server at
/// exactly that point.)
#[tokio::test]
async fn a_crash_between_commit_and_answer_is_replayed_on_retry() {
    let database = TestDatabase::create().await;
    let token = run_cli(&[
        "keys",
        "create",
        "--workspace",
        "acme",
        "--user",
        "u1",
        "--database-url",
        database.url(),
    ])
    .trim()
    .to_owned();
    let client = crate::support::http_client();
    let send = |base: &str| {
        client
            .post(format!("{base}{ICPS}"))
            .bearer_auth(&token)
            .header(KEY, "crash")
            .json(&minimal_icp("Survives"))
            .send()
    };
    let dying = ServerProcess::start_with_env(
        database.url(),
        &[],
        &[("CLIENTELE_FAULT", "exit-after-kept-write")],
    );
    let lost = send(&dying.base_url).await;
    assert!(lost.is_err(), "the server died before answering: {lost:?}");
    drop(dying);

    let server = ServerProcess::start(database.url());
    let retry = send(&server.base_url).await.expect("answered");
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(
        retry
            .headers()
            .get("idempotent-replayed")
            .and_then(|value| value.to_str().ok()),
        Some("true")
    );
    let list = client
        .get(format!("{}{ICPS}", server.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("listed");
    let icps: Value = list.json().await.expect("json");
    assert_eq!(
        icps.as_array().map(Vec::len),
        Some(1),
        "written once: {icps}"
    );
}
