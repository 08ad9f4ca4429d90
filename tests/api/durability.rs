//! A 2xx means the write is on disk: the server runs as a child process,
//! is SIGKILLed right after acknowledging a PATCH, and the restarted server
//! must still have the write. [`assert_patches_survive_sigkill`] is
//! surface-neutral; each surface runs it with its own requests.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    ICPS, Reply, ServerProcess, TestApp, TestDatabase, icp_path, member_token, seed_icp_create,
};

/// One surface's requests for the kill -9 check.
pub struct KillScenario {
    /// Collection path the record is created at.
    pub create_path: String,
    pub create_body: Value,
    /// Where the new record's id is in the creation response.
    pub id_pointer: &'static str,
    /// The record's path, given its id.
    pub item_path: fn(&str) -> String,
    /// The PATCH body of round `n`.
    pub patch: fn(u32) -> Value,
    /// Checks the GET body after round `n`.
    pub verify: fn(&Value, u32),
}

/// Sends `body` (if any) to `url` with `token`, whatever server it is.
pub async fn send(
    client: &reqwest::Client,
    method: Method,
    url: String,
    token: &str,
    body: Option<&Value>,
) -> Reply {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    TestApp::reply(request.send().await.expect("request sent")).await
}

/// Creates a record, then five times: PATCH, SIGKILL right after the 2xx,
/// restart on the same file, and check the write is there.
pub async fn assert_patches_survive_sigkill(scenario: KillScenario) {
    let database = TestDatabase::create().await;
    let database_url = database.url().to_owned();
    let token = member_token(&database_url, "acme");
    let client = crate::support::http_client();

    let server = ServerProcess::start(&database_url);
    let created = send(
        &client,
        Method::POST,
        format!("{}{}", server.base_url, scenario.create_path),
        &token,
        Some(&scenario.create_body),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = match created.body.pointer(scenario.id_pointer) {
        Some(Value::String(id)) => id.clone(),
        Some(other) => other.to_string(),
        None => panic!("no id at {} in {}", scenario.id_pointer, created.text),
    };
    let path = (scenario.item_path)(&id);
    let mut server = Some(server);

    for round in 1..=5 {
        let running = server.take().expect("a running server");
        let patched = send(
            &client,
            Method::PATCH,
            format!("{}{path}", running.base_url),
            &token,
            Some(&(scenario.patch)(round)),
        )
        .await;
        assert!(
            patched.status.is_success(),
            "{} {}",
            patched.status,
            patched.text
        );
        running.kill_hard();

        let restarted = ServerProcess::start(&database_url);
        let fetched = send(
            &client,
            Method::GET,
            format!("{}{path}", restarted.base_url),
            &token,
            None,
        )
        .await;
        assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.text);
        (scenario.verify)(&fetched.body, round);
        assert_eq!(fetched.header("etag"), Some(format!("\"{}\"", round + 1)));
        server = Some(restarted);
    }
}

#[tokio::test]
async fn an_acknowledged_icp_patch_survives_sigkill() {
    assert_patches_survive_sigkill(KillScenario {
        create_path: ICPS.to_owned(),
        create_body: seed_icp_create(),
        id_pointer: "/id",
        item_path: icp_path,
        patch: |round| json!({"name": format!("round {round}"), "leadsPerList": round}),
        verify: |body, round| {
            assert_eq!(body["name"], json!(format!("round {round}")));
            assert_eq!(body["leadsPerList"], json!(round));
        },
    })
    .await;
}
