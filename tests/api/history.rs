//! The audit trail: every create, update and delete records who (user id,
//! key id), when, the request id and each changed field's old and new
//! value, in the same transaction; each surface serves it in its own style.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    ICPS, Reply, ServerProcess, TestApp, TestDatabase, create_icp, icp_path, minimal_icp, run_cli,
};

async fn key_id_of(app: &TestApp, user: &str) -> String {
    app.store
        .list_api_keys()
        .await
        .expect("keys")
        .into_iter()
        .find(|key| key.user_id == user)
        .expect("the key")
        .id
}

#[tokio::test]
async fn icp_history_says_who_changed_what_in_which_request() {
    let app = TestApp::spawn().await;
    let member = app.member("acme", "user_abc123").await;
    let admin = app.admin("acme", "boss").await;
    let stranger = app.member("acme", "user_zzz").await;
    let id = create_icp(&app, &member, &minimal_icp("First")).await;
    let path = icp_path(&id);
    let patched = app
        .send_with(
            Method::PATCH,
            &path,
            Some(&member),
            Some(&json!({"name": "Second", "leadsPerList": 20})),
            &[("x-request-id", "req-patch-1")],
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    // A refused change leaves no trace.
    let refused = app.patch(&path, &member, &json!({"leadsPerList": 0})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.patch(&path, &admin, &json!({"description": "by admin"}))
            .await
            .status,
        StatusCode::OK
    );

    let history = app.get(&format!("{path}/history"), &member).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    assert_eq!(history.body["total"], 3);
    let entries = history.body["entries"].as_array().expect("entries").clone();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["create", "update", "update"]);
    assert_eq!(entries[0]["version"], 1);
    assert_eq!(entries[0]["userId"], "user_abc123");
    assert_eq!(
        entries[0]["keyId"],
        json!(key_id_of(&app, "user_abc123").await)
    );
    let created_fields: Vec<&str> = entries[0]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["field"].as_str().unwrap_or_default())
        .collect();
    assert!(
        created_fields.contains(&"name") && created_fields.contains(&"userIds"),
        "{created_fields:?}"
    );
    assert_eq!(
        entries[1]["changes"],
        json!([
            {"field": "leadsPerList", "old": 10, "new": 20},
            {"field": "name", "old": "First", "new": "Second"}
        ])
    );
    // The request id is the server's; the one the client sent is beside it.
    assert_eq!(
        entries[1]["requestId"],
        json!(patched.header("x-request-id"))
    );
    assert_eq!(entries[1]["clientRequestId"], "req-patch-1");
    assert_eq!(entries[1]["version"], 2);
    assert_eq!(entries[2]["userId"], "boss");
    assert_eq!(
        entries[2]["changes"],
        json!([{"field": "description", "old": null, "new": "by admin"}])
    );
    assert!(
        entries[2]["at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );

    let second_page = app
        .get(&format!("{path}/history?limit=1&offset=1"), &member)
        .await;
    assert_eq!(
        second_page.body["entries"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(second_page.body["entries"][0]["version"], 2);
    assert_eq!(
        app.get(&format!("{path}/history?limit=0"), &member)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    assert_eq!(
        app.get(&format!("{path}/history"), &stranger).await.status,
        StatusCode::FORBIDDEN
    );
    let outsider = app.admin("globex", "boss").await;
    assert_eq!(
        app.get(&format!("{path}/history"), &outsider).await.status,
        StatusCode::NOT_FOUND
    );

    // Deleted: the history stays, for admins.
    assert_eq!(
        app.delete(&path, &member).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("{path}/history"), &member).await.status,
        StatusCode::NOT_FOUND
    );
    let kept = app.get(&format!("{path}/history"), &admin).await;
    assert_eq!(kept.status, StatusCode::OK);
    assert_eq!(kept.body["total"], 4);
    assert_eq!(kept.body["entries"][3]["action"], "delete");
    assert_eq!(kept.body["entries"][3]["changes"][0]["new"], Value::Null);
    let never = app
        .get(
            &format!("{ICPS}/550e8400-e29b-41d4-a716-446655440000/history"),
            &admin,
        )
        .await;
    assert_eq!(never.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hood_history_pages_in_hood_style() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    let created = app
        .post(
            "/v1/hood/profiles",
            &token,
            &json!({"email": "a@example.com"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/hood/profiles/{id}");
    let mut request_ids = Vec::new();
    for value in ["1", "2"] {
        let reply = app
            .send_with(
                Method::PATCH,
                &path,
                Some(&token),
                Some(&json!({"custom_properties": {"clicker": value}})),
                &[("x-request-id", &format!("trace-{value}"))],
            )
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        request_ids.push(reply.header("x-request-id"));
    }
    let history = app.get(&format!("{path}/history?page=2,2"), &token).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    assert_eq!(history.body["total"], 3);
    let item = &history.body["items"][0];
    assert_eq!(item["action"], "update");
    // The trace id is the server's; the one the client sent is beside it.
    assert_eq!(item["trace_id"], json!(request_ids[1]));
    assert_eq!(item["client_trace_id"], "trace-2");
    assert_eq!(item["user_id"], "user_abc123");
    assert_eq!(
        item["changes"],
        json!([{"field": "custom_properties", "old": {"clicker": "1"}, "new": {"clicker": "2"}}])
    );
    assert!(
        chrono::NaiveDateTime::parse_from_str(
            item["time"].as_str().unwrap_or_default(),
            "%Y-%m-%d %H:%M:%S"
        )
        .is_ok()
    );
    let bad = app.get(&format!("{path}/history?page=0"), &token).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn client_history_pages_in_the_search_shape_and_survives_delete_for_admins() {
    let app = TestApp::spawn().await;
    let member = app.member("acme", "user_abc123").await;
    let admin = app.admin("acme", "boss").await;
    let created = app
        .post(
            "/v2/client",
            &member,
            &json!({"name": "Acme", "status": "ACTIVE", "active": true}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let uuid = created.body["uuid"].as_str().expect("uuid").to_owned();
    let path = format!("/v2/client/{uuid}");
    let patched = app.patch(&path, &member, &json!({"npsScore": 42})).await;
    assert_eq!(patched.status, StatusCode::OK);

    let history = app
        .get(&format!("{path}/history?page=0&size=1"), &member)
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    assert_eq!(
        (
            history.body["totalElements"].clone(),
            history.body["totalPages"].clone()
        ),
        (json!(2), json!(2))
    );
    assert_eq!(history.body["data"][0]["action"], "create");
    let second = app
        .get(&format!("{path}/history?page=1&size=1"), &member)
        .await;
    assert_eq!(
        second.body["data"][0]["changes"],
        json!([{"field": "npsScore", "old": null, "new": 42}])
    );
    assert_eq!(second.body["last"], true);
    let bad = app
        .get(&format!("{path}/history?size=0&colour=red"), &member)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.body["errors"].as_array().map(Vec::len),
        Some(2),
        "{}",
        bad.text
    );

    assert_eq!(
        app.delete(&path, &member).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("{path}/history"), &member).await.status,
        StatusCode::NOT_FOUND
    );
    let kept = app.get(&format!("{path}/history"), &admin).await;
    assert_eq!(kept.body["totalElements"], 3);
    assert_eq!(kept.body["data"][2]["action"], "delete");
}

/// The server's id of the request that got `reply`.
fn server_id(reply: &Reply) -> String {
    reply.header("x-request-id").expect("a request id")
}

/// Mallory sends, as his own X-Request-Id, the id the server gave one of
/// Alice's requests: the history entry of his change still carries the
/// server's id of his request, and the id he sent only as the client's.
#[tokio::test]
async fn a_client_request_id_is_kept_beside_the_servers_and_never_replaces_it() {
    let app = TestApp::spawn().await;
    let alice = app.member("acme", "user_alice").await;
    let mallory = app.member("acme", "user_mallory").await;
    let patch_as = |token: &str, path: &str, body: Value, sent: Option<&str>| {
        let (app, token, path) = (&app, token.to_owned(), path.to_owned());
        let sent = sent.map(str::to_owned);
        async move {
            let headers: Vec<(&str, &str)> = sent
                .as_deref()
                .map(|sent| vec![("x-request-id", sent)])
                .unwrap_or_default();
            let reply = app
                .send_with(Method::PATCH, &path, Some(&token), Some(&body), &headers)
                .await;
            assert!(reply.status.is_success(), "{}", reply.text);
            if let Some(sent) = &sent {
                assert_ne!(
                    &server_id(&reply),
                    sent,
                    "the response's id is the server's"
                );
                assert_eq!(reply.header("x-client-request-id").as_ref(), Some(sent));
            }
            server_id(&reply)
        }
    };

    // Lance.
    let mut shared = minimal_icp("Shared");
    shared["userIds"] = json!(["user_mallory"]);
    let path = icp_path(&create_icp(&app, &alice, &shared).await);
    let alices = patch_as(&alice, &path, json!({"name": "A"}), None).await;
    let mallorys = patch_as(&mallory, &path, json!({"name": "M"}), Some(&alices)).await;
    let history = app.get(&format!("{path}/history"), &alice).await;
    let entries = history.body["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 3, "{}", history.text);
    assert_eq!(
        (&entries[1]["requestId"], &entries[1]["clientRequestId"]),
        (&json!(alices), &Value::Null)
    );
    assert_eq!(
        (&entries[2]["requestId"], &entries[2]["clientRequestId"]),
        (&json!(mallorys), &json!(alices))
    );
    assert_eq!(entries[2]["userId"], "user_mallory");

    // ClientSuccess.
    let created = app
        .post(
            "/v2/client",
            &alice,
            &json!({"name": "Acme", "status": "ACTIVE", "active": true}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let alices = server_id(&created);
    let path = format!(
        "/v2/client/{}",
        created.body["uuid"].as_str().expect("uuid")
    );
    let mallorys = patch_as(&mallory, &path, json!({"npsScore": 1}), Some(&alices)).await;
    let history = app.get(&format!("{path}/history"), &alice).await;
    let data = history.body["data"].as_array().expect("data");
    assert_eq!(
        (&data[0]["requestId"], &data[0]["clientRequestId"]),
        (&json!(alices), &Value::Null),
        "{}",
        history.text
    );
    assert_eq!(
        (&data[1]["requestId"], &data[1]["clientRequestId"]),
        (&json!(mallorys), &json!(alices))
    );

    // Hood, where Alice sent an id of her own too.
    let created = app
        .send_with(
            Method::POST,
            "/v1/hood/profiles",
            Some(&alice),
            Some(&json!({"email": "a@example.com"})),
            &[("x-request-id", "alice-trace-1")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let alices = server_id(&created);
    let path = format!(
        "/v1/hood/profiles/{}",
        created.body["id"].as_str().expect("id")
    );
    let body = json!({"comment": "mine now"});
    let mallorys = patch_as(&mallory, &path, body, Some(&alices)).await;
    let history = app.get(&format!("{path}/history"), &alice).await;
    let items = history.body["items"].as_array().expect("items");
    assert_eq!(
        (&items[0]["trace_id"], &items[0]["client_trace_id"]),
        (&json!(alices), &json!("alice-trace-1")),
        "{}",
        history.text
    );
    assert_eq!(
        (&items[1]["trace_id"], &items[1]["client_trace_id"]),
        (&json!(mallorys), &json!(alices))
    );
}

/// Waits for the JSON log line of the request the server numbered `id`
/// finishing, and returns it parsed.
fn finished_line(logs: &std::sync::mpsc::Receiver<String>, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = logs
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line for request {id}"));
        let Ok(line) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if line["message"] == "request finished" && line["span"]["request_id"] == id {
            return line;
        }
    }
}

/// The log of a request names the server's id and, beside it, the one the
/// client sent: a child server logging JSON, read line by line.
#[tokio::test]
async fn logs_carry_the_servers_request_id_and_the_clients_beside_it() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let token = run_cli(&[
        "keys",
        "create",
        "--workspace",
        "acme",
        "--user",
        "user_abc123",
        "--database-url",
        &url,
    ])
    .trim()
    .to_owned();
    let (server, logs) = ServerProcess::start_with_json_logs(&url);
    let client = crate::support::http_client();
    let sent = client
        .post(format!("{}{ICPS}", server.base_url))
        .bearer_auth(&token)
        .header("x-request-id", "client-trace-7")
        .json(&minimal_icp("Logged"))
        .send()
        .await
        .expect("request sent");
    let sent = TestApp::reply(sent).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text);
    let plain = client
        .get(format!("{}{ICPS}", server.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request sent");
    let plain = TestApp::reply(plain).await;

    let line = finished_line(&logs, &server_id(&sent));
    assert_eq!(
        line["span"]["client_request_id"], "client-trace-7",
        "{line}"
    );
    assert_eq!(line["span"]["path"], ICPS, "{line}");
    assert_eq!(line["status"], 201, "{line}");
    let line = finished_line(&logs, &server_id(&plain));
    assert_eq!(line["span"]["client_request_id"], Value::Null, "{line}");
    drop(server);
}

#[tokio::test]
async fn unknown_routes_answer_in_the_envelope_of_their_surface() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    let lance = app.get("/api/v1/entities/nothing", &token).await;
    assert_eq!(lance.status, StatusCode::NOT_FOUND);
    assert_eq!(lance.body["error"]["code"], "NOT_FOUND");
    let hood = app.get("/v1/hood/nothing", &token).await;
    assert_eq!(
        (hood.status, hood.body["code"].clone()),
        (StatusCode::NOT_FOUND, json!(404))
    );
    let client = app
        .send(Method::PUT, "/v2/client/search", Some(&token), None)
        .await;
    assert_eq!(client.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        client.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(client.body["status"], 405);
}
