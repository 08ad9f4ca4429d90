//! A 2xx means the write is on disk: the server runs as a child process,
//! is SIGKILLed right after acknowledging a PATCH, and the restarted server
//! must still have the write.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{ICPS, ServerProcess, TestApp, icp_path, run_cli, seed_icp_create};

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<&serde_json::Value>,
) -> crate::support::Reply {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    TestApp::reply(request.send().await.expect("request sent")).await
}

#[tokio::test]
async fn an_acknowledged_icp_patch_survives_sigkill() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let database_url = format!("sqlite://{}", directory.path().join("durable.db").display());
    let token = run_cli(&[
        "keys",
        "create",
        "--workspace",
        "acme",
        "--user",
        "user_abc123",
        "--database-url",
        &database_url,
    ])
    .trim()
    .to_owned();
    let client = reqwest::Client::new();

    let server = ServerProcess::start(&database_url);
    let created = send(
        &client,
        reqwest::Method::POST,
        format!("{}{ICPS}", server.base_url),
        &token,
        Some(&seed_icp_create()),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let mut server = Some(server);

    for round in 1..=5 {
        let running = server.take().expect("a running server");
        let body = json!({"name": format!("round {round}"), "leadsPerList": round});
        let patched = send(
            &client,
            reqwest::Method::PATCH,
            format!("{}{}", running.base_url, icp_path(&id)),
            &token,
            Some(&body),
        )
        .await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
        running.kill_hard();

        let restarted = ServerProcess::start(&database_url);
        let fetched = send(
            &client,
            reqwest::Method::GET,
            format!("{}{}", restarted.base_url, icp_path(&id)),
            &token,
            None,
        )
        .await;
        assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.text);
        assert_eq!(fetched.body["name"], json!(format!("round {round}")));
        assert_eq!(fetched.body["leadsPerList"], json!(round));
        assert_eq!(fetched.header("etag"), Some(format!("\"{}\"", round + 1)));
        server = Some(restarted);
    }
}
