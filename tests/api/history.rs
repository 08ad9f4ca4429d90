//! The audit trail: every create, update and delete records who (user id,
//! key id), when, the request id and each changed field's old and new
//! value, in the same transaction; each surface serves it in its own style.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ICPS, TestApp, create_icp, icp_path, minimal_icp};

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
