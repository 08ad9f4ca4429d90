//! The ClientSuccess client contract over HTTP: create, get, PATCH, delete
//! and search; every seed constraint at its boundary; problem-details
//! errors; bare and Bearer tokens; tenancy; ETags; no lost updates; and a
//! write that survives SIGKILL.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::concurrency::{FieldPatch, assert_concurrent_patches_all_persist};
use crate::durability::{KillScenario, assert_patches_survive_sigkill};
use crate::support::{Reply, TestApp};

const CLIENTS: &str = "/v2/client";
const SEARCH: &str = "/v2/client/search";

fn client_path(uuid: &str) -> String {
    format!("{CLIENTS}/{uuid}")
}

fn minimal(name: &str) -> Value {
    json!({"name": name, "status": "ACTIVE", "active": true})
}

/// Every writable field with a valid value, in the seed's order.
fn full_client() -> Value {
    json!({
        "custom": {"tier": "gold", "seats": 40, "beta": true, "modules": ["nps", "health"]},
        "name": "Acme Corporation",
        "siteUrl": "https://acme.example",
        "logoUrl": "https://acme.example/logo.png",
        "status": "ACTIVE",
        "active": true,
        "inceptionDate": "2024-02-29",
        "terminatedDate": "2030-12-31",
        "street": "1 Main Street",
        "city": "Denver",
        "state": "CO",
        "zip": "80202",
        "country": "USA",
        "region": {"id": 3, "name": "West"},
        "timezone": "America/Denver",
        "externalId": "ext-001",
        "salesforceAccountId": "0015g00000ABCDEFGH",
        "zendeskId": "zd-1",
        "freshdeskId": "fd-1",
        "usageId": "usage-1",
        "stripeId": "cus_123",
        "externalStatusId": "status-1",
        "npsScore": 42,
        "note": "Renewal in Q3",
        "createdByEmployeeId": 1,
        "modifiedByEmployeeId": 2,
        "managedByEmployeeId": 3,
        "assignedSalesRepId": 4,
        "assignedSalesRep": "Jane Seller",
        "clientTypeId": 5,
        "clientTypeTitle": null,
        "successCycleId": 6,
        "primaryContactId": 7,
        "parentClientId": null,
        "accTeamingRoles": [{"roleId": 1, "employeeId": 3, "role": "CSM"}]
    })
}

async fn member_app() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    (app, token)
}

/// Creates `body` and returns the created client.
async fn create(app: &TestApp, token: &str, body: &Value) -> Value {
    let reply = app.post(CLIENTS, token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body
}

fn uuid_of(client: &Value) -> String {
    client["uuid"].as_str().expect("a uuid").to_owned()
}

fn is_millisecond_utc(text: &str) -> bool {
    text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes().get(19) == Some(&b'.')
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

/// Checks the RFC 9457 envelope and returns the reply's `errors` as
/// (pointer, detail) pairs.
fn problem(reply: &Reply, status: StatusCode) -> Vec<(String, String)> {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/problem+json"),
        "{}",
        reply.text
    );
    assert_eq!(reply.body["type"], "about:blank");
    assert_eq!(reply.body["status"], status.as_u16());
    assert_eq!(
        reply.body["title"].as_str(),
        status.canonical_reason(),
        "{}",
        reply.text
    );
    assert!(reply.body["detail"].is_string(), "{}", reply.text);
    assert_eq!(
        reply.body["requestId"].as_str(),
        reply.header("x-request-id").as_deref(),
        "the problem quotes the request id"
    );
    reply.body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    (
                        error["pointer"]
                            .as_str()
                            .or(error["parameter"].as_str())
                            .unwrap_or_default()
                            .to_owned(),
                        error["detail"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn one(pointer: &str, detail: &str) -> Vec<(String, String)> {
    vec![(pointer.to_owned(), detail.to_owned())]
}

/// Sends with the raw `Authorization` value given (or none).
async fn with_authorization(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let headers: Vec<(&str, &str)> = authorization
        .map(|value| vec![("authorization", value)])
        .unwrap_or_default();
    app.send_with(method, path, None, body, &headers).await
}

// ---- create, get, patch, delete -------------------------------------------

#[tokio::test]
async fn create_returns_every_field_and_get_returns_the_same() {
    let (app, token) = member_app().await;
    let created = app.post(CLIENTS, &token, &full_client()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    let uuid = uuid_of(&created.body);
    assert!(uuid::Uuid::parse_str(&uuid).is_ok(), "{uuid}");
    assert_eq!(created.header("location"), Some(client_path(&uuid)));
    assert!(created.body["id"].as_i64().is_some_and(|id| id >= 1));
    let created_time = created.body["createdTime"].as_str().unwrap_or_default();
    assert!(is_millisecond_utc(created_time), "{created_time}");
    assert_eq!(created.body["modifiedTime"], created.body["createdTime"]);

    let mut expected = full_client();
    for key in ["id", "uuid", "createdTime", "modifiedTime"] {
        expected[key] = created.body[key].clone();
    }
    assert_eq!(created.body, expected);

    let fetched = app.get(&client_path(&uuid), &token).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(fetched.body, expected);
}

#[tokio::test]
async fn a_minimal_client_shows_every_field() {
    let (app, token) = member_app().await;
    let first = create(&app, &token, &minimal("First")).await;
    let second = create(&app, &token, &minimal("Second")).await;
    assert_eq!(
        second["id"].as_i64(),
        first["id"].as_i64().map(|id| id + 1),
        "ids count up"
    );
    let object = first.as_object().expect("an object");
    assert_eq!(
        object.len(),
        35 + 4,
        "every field and the four read-only ones"
    );
    assert_eq!(first["custom"], json!({}));
    assert_eq!(first["accTeamingRoles"], json!([]));
    for key in ["siteUrl", "region", "npsScore", "parentClientId", "note"] {
        assert_eq!(first[key], Value::Null, "{key}");
    }
}

#[tokio::test]
async fn create_requires_name_status_and_active() {
    let (app, token) = member_app().await;
    let reply = app.post(CLIENTS, &token, &json!({"note": "x"})).await;
    assert_eq!(
        problem(&reply, StatusCode::BAD_REQUEST),
        vec![
            ("/name".into(), "must not be null".into()),
            ("/status".into(), "must not be null".into()),
            ("/active".into(), "must not be null".into()),
        ]
    );
    let reply = app
        .post(
            CLIENTS,
            &token,
            &json!({"name": null, "status": "ACTIVE", "active": true}),
        )
        .await;
    assert_eq!(
        problem(&reply, StatusCode::BAD_REQUEST),
        one("/name", "must not be null")
    );
}

#[tokio::test]
async fn patch_changes_only_the_fields_sent_and_returns_the_whole_client() {
    let (app, token) = member_app().await;
    let created = create(&app, &token, &full_client()).await;
    let path = client_path(&uuid_of(&created));
    let reply = app
        .patch(&path, &token, &json!({"npsScore": -7, "city": "Boulder"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("etag").as_deref(), Some("\"2\""));
    let mut expected = created.clone();
    expected["npsScore"] = json!(-7);
    expected["city"] = json!("Boulder");
    expected["modifiedTime"] = reply.body["modifiedTime"].clone();
    assert_eq!(reply.body, expected);
    assert!(
        reply.body["modifiedTime"].as_str() >= created["modifiedTime"].as_str(),
        "modifiedTime moves forward"
    );
    assert_eq!(app.get(&path, &token).await.body, expected);
}

#[tokio::test]
async fn an_empty_patch_changes_nothing_and_query_parameters_are_ignored() {
    let (app, token) = member_app().await;
    let created = create(&app, &token, &full_client()).await;
    let path = client_path(&uuid_of(&created));
    // RFC 7396: `{}` is a valid patch that changes no field. A write that
    // changes nothing leaves the record as it was: its version (ETag),
    // modifiedTime and history; so does one that sends the same values.
    let history_before = app.get(&format!("{path}/history"), &token).await;
    for unchanged in [
        json!({}),
        json!({"name": created["name"], "npsScore": created["npsScore"]}),
    ] {
        let reply = app.patch(&path, &token, &unchanged).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.header("etag").as_deref(), Some("\"1\""));
        assert_eq!(reply.body, created);
    }
    assert_eq!(app.get(&path, &token).await.body, created);
    let history_after = app.get(&format!("{path}/history"), &token).await;
    assert_eq!(
        history_before.status,
        StatusCode::OK,
        "{}",
        history_before.text
    );
    assert_eq!(history_after.body, history_before.body);
    // The seed's one boolean query parameter has no recoverable name; query
    // parameters of a PATCH are ignored rather than guessed at.
    let reply = app
        .patch(
            &format!("{path}?returnFullClient=true"),
            &token,
            &json!({"note": "q"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["note"], "q");
}

#[tokio::test]
async fn patch_accepts_merge_patch_json_and_refuses_other_media_types() {
    let (app, token) = member_app().await;
    let path = client_path(&uuid_of(&create(&app, &token, &minimal("A")).await));
    let body = json!({"note": "merged"});
    let reply = app
        .send_with(
            Method::PATCH,
            &path,
            Some(&token),
            Some(&body),
            &[("content-type", "application/merge-patch+json")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["note"], "merged");
    let reply = app
        .send_with(
            Method::PATCH,
            &path,
            Some(&token),
            Some(&body),
            &[("content-type", "text/plain")],
        )
        .await;
    problem(&reply, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_problems() {
    let (app, token) = member_app().await;
    let reply = app
        .client
        .post(format!("{}{CLIENTS}", app.base_url))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("sent");
    let reply = TestApp::reply(reply).await;
    problem(&reply, StatusCode::BAD_REQUEST);
    let reply = app
        .post(CLIENTS, &token, &json!(["not", "an", "object"]))
        .await;
    assert_eq!(
        problem(&reply, StatusCode::BAD_REQUEST),
        one("", "the body must be a JSON object")
    );
    let huge =
        json!({"name": "x", "status": "ACTIVE", "active": true, "note": "x".repeat(1024 * 1024)});
    let reply = app.post(CLIENTS, &token, &huge).await;
    problem(&reply, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn delete_answers_204_and_the_client_is_gone() {
    let (app, token) = member_app().await;
    let path = client_path(&uuid_of(&create(&app, &token, &minimal("A")).await));
    let reply = app.delete(&path, &token).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.text, "");
    let reply = app.get(&path, &token).await;
    problem(&reply, StatusCode::NOT_FOUND);
    let reply = app.delete(&path, &token).await;
    problem(&reply, StatusCode::NOT_FOUND);
    let listed = app.get(SEARCH, &token).await;
    assert_eq!(listed.body["totalElements"], 0);
}

// ---- constraints at their boundaries --------------------------------------

/// PATCHes `body` and expects 200, or 400 with exactly one error at
/// `pointer` saying `detail`.
async fn expect_patch(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Value,
    rejected: Option<(&str, &str)>,
) {
    let reply = app.patch(path, token, &body).await;
    match rejected {
        None => {
            assert_eq!(reply.status, StatusCode::OK, "{body}: {}", reply.text);
            let (key, value) = body
                .as_object()
                .and_then(|object| object.iter().next())
                .expect("one field");
            assert_eq!(&reply.body[key], value, "{key} is stored as sent");
        }
        Some((pointer, detail)) => assert_eq!(
            problem(&reply, StatusCode::BAD_REQUEST),
            one(pointer, detail),
            "{body}"
        ),
    }
}

#[tokio::test]
async fn every_length_range_and_format_is_enforced_at_its_boundary() {
    let (app, token) = member_app().await;
    let path = client_path(&uuid_of(&create(&app, &token, &minimal("A")).await));
    let strings: [(&str, usize); 17] = [
        ("name", 255),
        ("siteUrl", 1024),
        ("logoUrl", 1024),
        ("street", 1024),
        ("city", 100),
        ("state", 100),
        ("zip", 20),
        ("country", 100),
        ("externalId", 100),
        ("salesforceAccountId", 18),
        ("zendeskId", 200),
        ("freshdeskId", 200),
        ("usageId", 200),
        ("stripeId", 200),
        ("externalStatusId", 200),
        ("assignedSalesRep", 45),
        ("clientTypeTitle", 255),
    ];
    for (field, max) in strings {
        // Characters, not bytes: "é" is two bytes in UTF-8.
        expect_patch(&app, &token, &path, json!({field: "é".repeat(max)}), None).await;
        expect_patch(&app, &token, &path, json!({field: ""}), None).await;
        let detail = format!("size must be between 0 and {max}");
        expect_patch(
            &app,
            &token,
            &path,
            json!({field: "x".repeat(max + 1)}),
            Some((&format!("/{field}"), &detail)),
        )
        .await;
    }
    expect_patch(
        &app,
        &token,
        &path,
        json!({"note": "n".repeat(65_535)}),
        None,
    )
    .await;

    let nps = "must be between -100 and 100";
    expect_patch(
        &app,
        &token,
        &path,
        json!({"npsScore": -101}),
        Some(("/npsScore", nps)),
    )
    .await;
    expect_patch(&app, &token, &path, json!({"npsScore": -100}), None).await;
    expect_patch(&app, &token, &path, json!({"npsScore": 100}), None).await;
    expect_patch(
        &app,
        &token,
        &path,
        json!({"npsScore": 101}),
        Some(("/npsScore", nps)),
    )
    .await;
    expect_patch(
        &app,
        &token,
        &path,
        json!({"npsScore": 50.5}),
        Some(("/npsScore", "must be an integer")),
    )
    .await;
    expect_patch(
        &app,
        &token,
        &path,
        json!({"npsScore": "50"}),
        Some(("/npsScore", "must be an integer")),
    )
    .await;

    let non_negative = "must be an int64 greater than or equal to 0";
    for field in [
        "createdByEmployeeId",
        "modifiedByEmployeeId",
        "managedByEmployeeId",
        "assignedSalesRepId",
        "clientTypeId",
        "successCycleId",
        "primaryContactId",
    ] {
        expect_patch(&app, &token, &path, json!({field: 0}), None).await;
        expect_patch(&app, &token, &path, json!({field: i64::MAX}), None).await;
        let pointer = format!("/{field}");
        expect_patch(
            &app,
            &token,
            &path,
            json!({field: -1}),
            Some((&pointer, non_negative)),
        )
        .await;
        expect_patch(
            &app,
            &token,
            &path,
            json!({field: 9_223_372_036_854_775_808_u64}),
            Some((&pointer, non_negative)),
        )
        .await;
    }
    expect_patch(
        &app,
        &token,
        &path,
        json!({"parentClientId": -1}),
        Some(("/parentClientId", non_negative)),
    )
    .await;

    for field in ["inceptionDate", "terminatedDate"] {
        let pointer = format!("/{field}");
        expect_patch(&app, &token, &path, json!({field: "2024-02-29"}), None).await;
        expect_patch(
            &app,
            &token,
            &path,
            json!({field: "2025-02-29"}),
            Some((&pointer, "2025-02-29 is not a date on the calendar")),
        )
        .await;
        for malformed in ["2025-2-3", "2025-02-03T00:00:00Z", "03/02/2025"] {
            expect_patch(
                &app,
                &token,
                &path,
                json!({field: malformed}),
                Some((&pointer, "must be a date in the format YYYY-MM-DD")),
            )
            .await;
        }
    }

    expect_patch(
        &app,
        &token,
        &path,
        json!({"timezone": "America/Denver"}),
        None,
    )
    .await;
    expect_patch(
        &app,
        &token,
        &path,
        json!({"timezone": "Europe/Ljubljana"}),
        None,
    )
    .await;
    expect_patch(
        &app,
        &token,
        &path,
        json!({"timezone": "Mars/Olympus"}),
        Some((
            "/timezone",
            "Mars/Olympus is not a tz database time zone name, e.g. America/Denver",
        )),
    )
    .await;
    expect_patch(
        &app,
        &token,
        &path,
        json!({"timezone": "A".repeat(61)}),
        Some(("/timezone", "size must be between 0 and 60")),
    )
    .await;

    for status in ["ACTIVE", "INACTIVE", "TRIAL", "TERMINATED"] {
        expect_patch(&app, &token, &path, json!({"status": status}), None).await;
    }
    for status in [json!("active"), json!("DELETED"), json!(1)] {
        expect_patch(
            &app,
            &token,
            &path,
            json!({"status": status}),
            Some((
                "/status",
                "must be one of ACTIVE, INACTIVE, TRIAL, TERMINATED",
            )),
        )
        .await;
    }
    expect_patch(&app, &token, &path, json!({"active": false}), None).await;
    expect_patch(
        &app,
        &token,
        &path,
        json!({"active": "false"}),
        Some(("/active", "must be a boolean")),
    )
    .await;
    expect_patch(
        &app,
        &token,
        &path,
        json!({"region": "West"}),
        Some(("/region", "must be an object")),
    )
    .await;
    expect_patch(
        &app,
        &token,
        &path,
        json!({"accTeamingRoles": [{"role": "CSM"}, 5]}),
        Some(("/accTeamingRoles/1", "must be an object")),
    )
    .await;
    let too_many_roles: Vec<Value> = (0..101).map(|i| json!({"n": i})).collect();
    expect_patch(
        &app,
        &token,
        &path,
        json!({"accTeamingRoles": too_many_roles}),
        Some(("/accTeamingRoles", "size must be between 0 and 100")),
    )
    .await;
}

#[tokio::test]
async fn a_boundary_error_has_the_contract_shape_exactly() {
    let (app, token) = member_app().await;
    let path = client_path(&uuid_of(&create(&app, &token, &minimal("A")).await));
    let reply = app.patch(&path, &token, &json!({"npsScore": 101})).await;
    let request_id = reply.header("x-request-id").expect("a request id");
    assert_eq!(
        reply.body,
        json!({
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "detail": "1 field of the request is invalid; see errors",
            "errors": [{"pointer": "/npsScore", "detail": "must be between -100 and 100"}],
            "requestId": request_id
        })
    );
    // The server's request id is quoted, even when the client sent one.
    let reply = app
        .send_with(
            Method::PATCH,
            &path,
            Some(&token),
            Some(&json!({"npsScore": 101})),
            &[("x-request-id", "my-trace-1")],
        )
        .await;
    assert_eq!(reply.body["requestId"], json!(reply.header("x-request-id")));
    assert_ne!(reply.body["requestId"], "my-trace-1");
}

#[tokio::test]
async fn name_status_and_active_cannot_be_cleared_but_other_fields_can() {
    let (app, token) = member_app().await;
    let created = create(&app, &token, &full_client()).await;
    let path = client_path(&uuid_of(&created));
    for field in ["name", "status", "active"] {
        let reply = app.patch(&path, &token, &json!({field: null})).await;
        assert_eq!(
            problem(&reply, StatusCode::BAD_REQUEST),
            one(&format!("/{field}"), "must not be null")
        );
    }
    let reply = app.patch(&path, &token, &json!({"note": null})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["note"], Value::Null);
    assert_eq!(reply.body["name"], "Acme Corporation");

    // Every other field clears with null.
    let clear_all: Map<String, Value> = full_client()
        .as_object()
        .expect("object")
        .keys()
        .filter(|key| !["name", "status", "active"].contains(&key.as_str()))
        .map(|key| (key.clone(), Value::Null))
        .collect();
    let reply = app.patch(&path, &token, &Value::Object(clear_all)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    for (key, value) in reply.body.as_object().expect("object") {
        match key.as_str() {
            "name" | "status" | "active" | "id" | "uuid" | "createdTime" | "modifiedTime" => {}
            "custom" => assert_eq!(value, &json!({})),
            "accTeamingRoles" => assert_eq!(value, &json!([])),
            _ => assert_eq!(value, &Value::Null, "{key} is cleared"),
        }
    }
}

#[tokio::test]
async fn one_bad_request_lists_every_invalid_field_by_pointer() {
    let (app, token) = member_app().await;
    let path = client_path(&uuid_of(&create(&app, &token, &minimal("A")).await));
    let body = json!({
        "id": 9,
        "uuid": "x",
        "createdTime": "2024-01-01T00:00:00.000Z",
        "modifiedTime": "2024-01-01T00:00:00.000Z",
        "nickname": "typo",
        "custom": {"ok": 1, "bad": {"nested": true}},
        "name": "n".repeat(256),
        "status": "DELETED",
        "active": null,
        "inceptionDate": "2025-02-29",
        "zip": 80202,
        "timezone": "Mars/Olympus",
        "salesforceAccountId": "0015g00000ABCDEFGHI",
        "npsScore": -101,
        "primaryContactId": -5,
        "accTeamingRoles": "CSM",
    });
    let reply = app.patch(&path, &token, &body).await;
    let mut expected = vec![
        ("/createdTime", "createdTime is read-only and cannot be set"),
        ("/id", "id is read-only and cannot be set"),
        (
            "/modifiedTime",
            "modifiedTime is read-only and cannot be set",
        ),
        ("/nickname", "unknown field nickname"),
        ("/uuid", "uuid is read-only and cannot be set"),
    ];
    expected.extend([
        (
            "/custom/bad",
            "must be a string, number, boolean or an array of those",
        ),
        ("/name", "size must be between 0 and 255"),
        (
            "/status",
            "must be one of ACTIVE, INACTIVE, TRIAL, TERMINATED",
        ),
        ("/active", "must not be null"),
        ("/inceptionDate", "2025-02-29 is not a date on the calendar"),
        ("/zip", "must be a string"),
        (
            "/timezone",
            "Mars/Olympus is not a tz database time zone name, e.g. America/Denver",
        ),
        ("/salesforceAccountId", "size must be between 0 and 18"),
        ("/npsScore", "must be between -100 and 100"),
        (
            "/primaryContactId",
            "must be an int64 greater than or equal to 0",
        ),
        ("/accTeamingRoles", "must be an array of objects"),
    ]);
    let mut actual = problem(&reply, StatusCode::BAD_REQUEST);
    // Unknown and read-only keys come first, in the body's key order.
    actual[..5].sort();
    assert_eq!(
        actual,
        expected
            .into_iter()
            .map(|(pointer, detail)| (pointer.to_owned(), detail.to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        reply.body["detail"],
        "16 fields of the request are invalid; see errors"
    );
    // Nothing was written.
    let fetched = app.get(&path, &token).await;
    assert_eq!(fetched.header("etag").as_deref(), Some("\"1\""));
}

// ---- custom, client type, parent -----------------------------------------

#[tokio::test]
async fn custom_merges_key_by_key_and_null_removes_a_key() {
    let (app, token) = member_app().await;
    let created = create(
        &app,
        &token,
        &json!({"name": "A", "status": "TRIAL", "active": true,
                "custom": {"tier": "gold", "seats": 10, "dropped": null}}),
    )
    .await;
    assert_eq!(created["custom"], json!({"tier": "gold", "seats": 10}));
    let path = client_path(&uuid_of(&created));
    let reply = app
        .patch(
            &path,
            &token,
            &json!({"custom": {"tier": null, "modules": ["nps", "health"], "seats": 12}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body["custom"],
        json!({"seats": 12, "modules": ["nps", "health"]})
    );
    let reply = app.patch(&path, &token, &json!({"custom": {}})).await;
    assert_eq!(
        reply.body["custom"],
        json!({"seats": 12, "modules": ["nps", "health"]})
    );

    let many: Map<String, Value> = (0..99).map(|i| (format!("k{i}"), json!(i))).collect();
    let reply = app.patch(&path, &token, &json!({"custom": many})).await;
    assert_eq!(
        problem(&reply, StatusCode::BAD_REQUEST),
        one(
            "/custom",
            "must hold at most 100 keys; this update would make 101"
        )
    );
    let many: Map<String, Value> = (0..98).map(|i| (format!("k{i}"), json!(i))).collect();
    let reply = app.patch(&path, &token, &json!({"custom": many})).await;
    assert_eq!(reply.status, StatusCode::OK, "100 keys fit: {}", reply.text);

    let reply = app
        .patch(&path, &token, &json!({"custom": {"deep": {"a": 1}}}))
        .await;
    assert_eq!(
        problem(&reply, StatusCode::BAD_REQUEST),
        one(
            "/custom/deep",
            "must be a string, number, boolean or an array of those"
        )
    );
    let reply = app.patch(&path, &token, &json!({"custom": null})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["custom"], json!({}));
}

#[tokio::test]
async fn client_type_id_overrides_client_type_title() {
    let (app, token) = member_app().await;
    let created = create(
        &app,
        &token,
        &json!({"name": "A", "status": "ACTIVE", "active": true,
                "clientTypeId": 4, "clientTypeTitle": "Enterprise"}),
    )
    .await;
    assert_eq!(created["clientTypeId"], 4);
    assert_eq!(created["clientTypeTitle"], Value::Null);
    let path = client_path(&uuid_of(&created));

    let reply = app
        .patch(&path, &token, &json!({"clientTypeTitle": "SMB"}))
        .await;
    assert_eq!(reply.body["clientTypeTitle"], "SMB");
    assert_eq!(reply.body["clientTypeId"], Value::Null);

    let reply = app
        .patch(
            &path,
            &token,
            &json!({"clientTypeTitle": "Enterprise", "clientTypeId": 9}),
        )
        .await;
    assert_eq!(reply.body["clientTypeId"], 9);
    assert_eq!(reply.body["clientTypeTitle"], Value::Null);

    let reply = app
        .patch(&path, &token, &json!({"clientTypeId": null}))
        .await;
    assert_eq!(reply.body["clientTypeId"], Value::Null);
    assert_eq!(reply.body["clientTypeTitle"], Value::Null);
}

#[tokio::test]
async fn parent_must_be_a_client_of_the_workspace_and_never_a_cycle() {
    let (app, token) = member_app().await;
    let other = app.member("globex", "user_zzz").await;
    // Ids are numbered per workspace: globex's fourth client has an id that
    // none of acme's three has.
    for _ in 0..3 {
        create(&app, &other, &minimal("Globex")).await;
    }
    let foreign = create(&app, &other, &minimal("Globex")).await;
    let top = create(&app, &token, &minimal("Top")).await;
    let top_id = top["id"].as_i64().expect("id");
    let middle = create(
        &app,
        &token,
        &json!({"name": "Middle", "status": "ACTIVE", "active": true, "parentClientId": top_id}),
    )
    .await;
    assert_eq!(middle["parentClientId"], top_id);
    let middle_id = middle["id"].as_i64().expect("id");
    let bottom = create(
        &app,
        &token,
        &json!({"name": "Bottom", "status": "ACTIVE", "active": true, "parentClientId": middle_id}),
    )
    .await;
    let bottom_id = bottom["id"].as_i64().expect("id");
    let top_path = client_path(&uuid_of(&top));

    let unknown = bottom_id + 1_000;
    let reply = app
        .post(
            CLIENTS,
            &token,
            &json!({"name": "Orphan", "status": "ACTIVE", "active": true, "parentClientId": unknown}),
        )
        .await;
    assert_eq!(
        problem(&reply, StatusCode::BAD_REQUEST),
        one(
            "/parentClientId",
            &format!("no client with id {unknown} in this workspace")
        )
    );
    let foreign_id = foreign["id"].as_i64().expect("id");
    let reply = app
        .patch(&top_path, &token, &json!({"parentClientId": foreign_id}))
        .await;
    assert_eq!(
        problem(&reply, StatusCode::BAD_REQUEST),
        one(
            "/parentClientId",
            &format!("no client with id {foreign_id} in this workspace")
        )
    );
    let reply = app
        .patch(&top_path, &token, &json!({"parentClientId": top_id}))
        .await;
    assert_eq!(
        problem(&reply, StatusCode::BAD_REQUEST),
        one("/parentClientId", "a client cannot be its own parent")
    );
    let reply = app
        .patch(&top_path, &token, &json!({"parentClientId": bottom_id}))
        .await;
    assert_eq!(
        problem(&reply, StatusCode::BAD_REQUEST),
        one(
            "/parentClientId",
            &format!("client {bottom_id} is a descendant of this client; that would make a cycle")
        )
    );

    // Re-parenting without a cycle works, and so does clearing.
    let bottom_path = client_path(&uuid_of(&bottom));
    let reply = app
        .patch(&bottom_path, &token, &json!({"parentClientId": top_id}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["parentClientId"], top_id);

    // Deleting a parent leaves the child's reference as it was; unrelated
    // updates of the child still work.
    let middle_path = client_path(&uuid_of(&middle));
    assert_eq!(
        app.delete(&top_path, &token).await.status,
        StatusCode::NO_CONTENT
    );
    let reply = app.patch(&middle_path, &token, &json!({"note": "n"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["parentClientId"], top_id);
    let reply = app
        .patch(&middle_path, &token, &json!({"parentClientId": null}))
        .await;
    assert_eq!(reply.body["parentClientId"], Value::Null);
}

// ---- authentication, tenancy, preconditions ------------------------------

#[tokio::test]
async fn bare_and_bearer_tokens_both_work_and_bad_ones_get_401() {
    let (app, token) = member_app().await;
    let path = client_path(&uuid_of(&create(&app, &token, &minimal("A")).await));
    for authorization in [
        token.clone(),
        format!("Bearer {token}"),
        format!("bearer {token}"),
    ] {
        let reply = with_authorization(&app, Method::GET, &path, Some(&authorization), None).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{authorization}: {}",
            reply.text
        );
        let reply = with_authorization(
            &app,
            Method::PATCH,
            &path,
            Some(&authorization),
            Some(&json!({"note": "bare"})),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    for authorization in [
        None,
        Some("garbage"),
        Some("Bearer garbage"),
        Some("Basic dXNlcjpwYXNz"),
        Some(""),
    ] {
        for (method, path) in [(Method::GET, path.as_str()), (Method::GET, SEARCH)] {
            let reply = with_authorization(&app, method, path, authorization, None).await;
            problem(&reply, StatusCode::UNAUTHORIZED);
            assert_eq!(reply.header("www-authenticate").as_deref(), Some("Bearer"));
        }
    }
    let reply = with_authorization(&app, Method::POST, CLIENTS, None, Some(&minimal("B"))).await;
    problem(&reply, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_workspaces_client_is_not_found() {
    let (app, token) = member_app().await;
    let other = app.member("globex", "user_zzz").await;
    let path = client_path(&uuid_of(&create(&app, &token, &minimal("A")).await));
    for reply in [
        app.get(&path, &other).await,
        app.patch(&path, &other, &json!({"note": "x"})).await,
        app.delete(&path, &other).await,
    ] {
        problem(&reply, StatusCode::NOT_FOUND);
        assert!(
            reply.body["detail"]
                .as_str()
                .is_some_and(|detail| detail.starts_with("Client not found")),
            "{}",
            reply.text
        );
    }
    let searched = app.get(SEARCH, &other).await;
    assert_eq!(searched.body["totalElements"], 0);
    // Another member of the same workspace reads and writes it.
    let colleague = app.member("acme", "user_other").await;
    let reply = app
        .patch(&path, &colleague, &json!({"note": "mine too"}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    for id in ["not-a-uuid", "12", &uuid::Uuid::new_v4().to_string()] {
        let reply = app.get(&client_path(id), &token).await;
        assert_eq!(problem(&reply, StatusCode::NOT_FOUND), vec![]);
        let reply = app
            .patch(&client_path(id), &token, &json!({"note": "x"}))
            .await;
        problem(&reply, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn if_match_is_honoured_on_patch_and_delete() {
    let (app, token) = member_app().await;
    let path = client_path(&uuid_of(&create(&app, &token, &minimal("A")).await));
    let body = json!({"note": "v2"});
    let reply = app
        .send_with(
            Method::PATCH,
            &path,
            Some(&token),
            Some(&body),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("etag").as_deref(), Some("\"2\""));
    let stale = app
        .send_with(
            Method::PATCH,
            &path,
            Some(&token),
            Some(&json!({"note": "lost"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    problem(&stale, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(app.get(&path, &token).await.body["note"], "v2");

    let stale = app
        .send_with(
            Method::DELETE,
            &path,
            Some(&token),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    problem(&stale, StatusCode::PRECONDITION_FAILED);
    let deleted = app
        .send_with(
            Method::DELETE,
            &path,
            Some(&token),
            None,
            &[("if-match", "\"2\"")],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

// ---- search ---------------------------------------------------------------

#[tokio::test]
async fn search_pages_from_zero_and_filters() {
    let (app, token) = member_app().await;
    let other = app.member("globex", "user_zzz").await;
    create(&app, &other, &minimal("Globex Widget")).await;
    let statuses = ["ACTIVE", "INACTIVE", "TRIAL", "TERMINATED"];
    let mut ids = Vec::new();
    for i in 0..25 {
        let created = create(
            &app,
            &token,
            &json!({
                "name": if i % 5 == 0 { format!("Widget Co {i}") } else { format!("Client {i}") },
                "status": statuses[i % 4],
                "active": i % 2 == 0,
                "externalId": format!("ext-{i}"),
            }),
        )
        .await;
        ids.push(created["id"].as_i64().expect("id"));
    }

    let first = app.get(SEARCH, &token).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let page_ids = |reply: &Reply| -> Vec<i64> {
        reply.body["data"]
            .as_array()
            .map(|data| {
                data.iter()
                    .filter_map(|client| client["id"].as_i64())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(page_ids(&first), ids[..20].to_vec());
    let envelope = |reply: &Reply| {
        let mut body = reply.body.clone();
        body.as_object_mut().map(|object| object.remove("data"));
        body
    };
    assert_eq!(
        envelope(&first),
        json!({"first": true, "last": false, "page": 0, "size": 20, "totalPages": 2, "totalElements": 25})
    );

    let second = app.get(&format!("{SEARCH}?page=1&size=20"), &token).await;
    assert_eq!(page_ids(&second), ids[20..].to_vec());
    assert_eq!(
        envelope(&second),
        json!({"first": false, "last": true, "page": 1, "size": 20, "totalPages": 2, "totalElements": 25})
    );
    let beyond = app.get(&format!("{SEARCH}?page=9&size=10"), &token).await;
    assert_eq!(
        beyond.body,
        json!({"data": [], "first": false, "last": true, "page": 9, "size": 10, "totalPages": 3, "totalElements": 25})
    );
    let small = app.get(&format!("{SEARCH}?size=1&page=3"), &token).await;
    assert_eq!(page_ids(&small), vec![ids[3]]);
    let full = app.get(&format!("{SEARCH}?size=100"), &token).await;
    assert_eq!(page_ids(&full), ids);
    assert_eq!(
        full.body["data"][0]["uuid"].as_str().map(str::len),
        Some(36)
    );

    let by_name = app.get(&format!("{SEARCH}?name=widget"), &token).await;
    assert_eq!(
        page_ids(&by_name),
        vec![ids[0], ids[5], ids[10], ids[15], ids[20]]
    );
    let by_status = app.get(&format!("{SEARCH}?status=TRIAL"), &token).await;
    assert_eq!(
        page_ids(&by_status),
        vec![ids[2], ids[6], ids[10], ids[14], ids[18], ids[22]]
    );
    let combined = app
        .get(
            &format!("{SEARCH}?status=TRIAL&active=true&name=Widget%20Co"),
            &token,
        )
        .await;
    assert_eq!(page_ids(&combined), vec![ids[10]]);
    let inactive = app.get(&format!("{SEARCH}?active=false"), &token).await;
    assert_eq!(inactive.body["totalElements"], 12);
    let by_external = app.get(&format!("{SEARCH}?externalId=ext-7"), &token).await;
    assert_eq!(page_ids(&by_external), vec![ids[7]]);
    let empty = app.get(&format!("{SEARCH}?externalId=ext"), &token).await;
    assert_eq!(
        envelope(&empty),
        json!({"first": true, "last": true, "page": 0, "size": 20, "totalPages": 0, "totalElements": 0})
    );
}

#[tokio::test]
async fn search_refuses_bad_parameters_and_names_each() {
    let (app, token) = member_app().await;
    for (query, parameter, detail) in [
        ("size=0", "size", "must be an integer between 1 and 100"),
        ("size=101", "size", "must be an integer between 1 and 100"),
        (
            "page=-1",
            "page",
            "must be an integer between 0 and 2147483647",
        ),
        (
            "page=x",
            "page",
            "must be an integer between 0 and 2147483647",
        ),
        (
            "status=active",
            "status",
            "must be one of ACTIVE, INACTIVE, TRIAL, TERMINATED",
        ),
        ("active=1", "active", "must be true or false"),
        ("size=5&size=6", "size", "must be given at most once"),
        (
            "sort=name",
            "sort",
            "unknown query parameter sort; known: page, size, name, status, active, externalId",
        ),
    ] {
        let reply = app.get(&format!("{SEARCH}?{query}"), &token).await;
        assert_eq!(
            problem(&reply, StatusCode::BAD_REQUEST),
            one(parameter, detail),
            "{query}"
        );
        assert_eq!(reply.body["errors"][0]["parameter"], parameter);
    }
    let reply = app.get(&format!("{SEARCH}?size=0&page=-1"), &token).await;
    assert_eq!(problem(&reply, StatusCode::BAD_REQUEST).len(), 2);
    let reply = app
        .get(&format!("{SEARCH}?size=100&page=2147483647"), &token)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

// ---- concurrency and durability -------------------------------------------

/// Forty patches at once, each naming a different field or custom key.
fn client_patches() -> Vec<FieldPatch> {
    (0..40)
        .map(|i| {
            let (body, pointer, expected) = match i % 10 {
                0 => (
                    json!({"name": format!("name {i}")}),
                    "/name".to_owned(),
                    json!(format!("name {i}")),
                ),
                1 => (
                    json!({"note": format!("note {i}")}),
                    "/note".to_owned(),
                    json!(format!("note {i}")),
                ),
                2 => (json!({"npsScore": i}), "/npsScore".to_owned(), json!(i)),
                3 => (
                    json!({"city": format!("city {i}")}),
                    "/city".to_owned(),
                    json!(format!("city {i}")),
                ),
                // Every patch sets a value no other sets (one that changed
                // nothing would be a no-op and keep its version).
                4 => (
                    json!({"externalId": format!("ext-{i}")}),
                    "/externalId".to_owned(),
                    json!(format!("ext-{i}")),
                ),
                5 => (
                    json!({"successCycleId": i}),
                    "/successCycleId".to_owned(),
                    json!(i),
                ),
                6 => (
                    json!({"inceptionDate": format!("2024-01-{:02}", i % 28 + 1)}),
                    "/inceptionDate".to_owned(),
                    json!(format!("2024-01-{:02}", i % 28 + 1)),
                ),
                7 => (
                    json!({"accTeamingRoles": [{"n": i}]}),
                    "/accTeamingRoles".to_owned(),
                    json!([{"n": i}]),
                ),
                // Each of these names its own custom key: all of them stay.
                _ => (
                    json!({"custom": {format!("k{i}"): i}}),
                    format!("/custom/k{i}"),
                    json!(i),
                ),
            };
            FieldPatch {
                body,
                pointer,
                expected,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_simultaneous_client_patches_all_persist() {
    let (app, token) = member_app().await;
    let path = client_path(&uuid_of(&create(&app, &token, &full_client()).await));
    assert_concurrent_patches_all_persist(&app, &token, &path, client_patches()).await;
    let custom = app.get(&path, &token).await.body["custom"].clone();
    assert_eq!(
        custom.as_object().map(Map::len),
        Some(4 + 8),
        "the seed's four keys and every patched key: {custom}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_creates_get_distinct_ids() {
    let (app, token) = member_app().await;
    let bodies: Vec<Value> = (0..20).map(|i| minimal(&format!("c{i}"))).collect();
    let replies = join_all(bodies.iter().map(|body| app.post(CLIENTS, &token, body))).await;
    let mut ids: Vec<i64> = replies
        .iter()
        .map(|reply| {
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
            reply.body["id"].as_i64().expect("id")
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20);
}

#[tokio::test]
async fn an_acknowledged_client_patch_survives_sigkill() {
    assert_patches_survive_sigkill(KillScenario {
        create_path: CLIENTS.to_owned(),
        create_body: full_client(),
        id_pointer: "/uuid",
        item_path: client_path,
        patch: |round| json!({"npsScore": round, "custom": {format!("round{round}"): round}}),
        verify: |body, round| {
            assert_eq!(body["npsScore"], json!(round));
            for earlier in 1..=round {
                assert_eq!(body["custom"][format!("round{earlier}")], json!(earlier));
            }
        },
    })
    .await;
}

// ---- OpenAPI --------------------------------------------------------------

#[tokio::test]
async fn the_openapi_document_describes_every_client_route() {
    let app = TestApp::spawn().await;
    let document = app
        .send(Method::GET, "/openapi.json", None, None)
        .await
        .body;
    let item = "/v2/client/{uuid}";
    for (path, method, statuses) in [
        (
            CLIENTS,
            "post",
            &["201", "400", "401", "413", "415", "429", "500", "503"][..],
        ),
        (
            SEARCH,
            "get",
            &["200", "400", "401", "429", "500", "503"][..],
        ),
        (item, "get", &["200", "401", "404", "429", "500", "503"][..]),
        (
            item,
            "patch",
            &[
                "200", "400", "401", "404", "412", "413", "415", "429", "500", "503",
            ][..],
        ),
        (
            item,
            "delete",
            &["204", "401", "404", "412", "429", "500", "503"][..],
        ),
    ] {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        assert_eq!(operation["security"], json!([{"bearer": []}]));
        for status in statuses {
            let response = &operation["responses"][status];
            assert!(response.is_object(), "{method} {path} documents {status}");
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/problem+json"]["schema"].is_object(),
                    "{method} {path} {status} has a problem body"
                );
            }
        }
    }
    let parameters = document["paths"][SEARCH]["get"]["parameters"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|parameter| parameter["name"].as_str())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert_eq!(
        parameters,
        vec!["page", "size", "name", "status", "active", "externalId"]
    );
    let schemas = &document["components"]["schemas"];
    for schema in [
        "ClientSuccessClient",
        "ClientSuccessCreateRequest",
        "ClientSuccessPatchRequest",
        "ClientSuccessPage",
        "ClientSuccessProblem",
        "ClientSuccessProblemError",
        "ClientSuccessStatus",
    ] {
        assert!(schemas[schema].is_object(), "schema {schema}");
    }
    assert_eq!(
        schemas["ClientSuccessCreateRequest"]["required"],
        json!(["name", "status", "active"])
    );
    assert_eq!(
        schemas["ClientSuccessClient"]["properties"]["npsScore"]["maximum"],
        100
    );
}

#[tokio::test]
async fn a_query_parameter_with_nul_is_400_at_its_name() {
    let (app, token) = member_app().await;
    let reply = app.get("/v2/client/search?name=a%00b", &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(
        reply.body["errors"],
        json!([{"parameter": "name", "detail": "Must not contain the NUL character (U+0000)"}]),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn an_unknown_parent_is_listed_beside_the_field_errors() {
    let (app, token) = member_app().await;
    let mut body = minimal("c");
    body["npsScore"] = json!("x");
    body["parentClientId"] = json!(424242);
    let reply = app.post(CLIENTS, &token, &body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(
        reply.body["errors"],
        json!([
            {"pointer": "/npsScore", "detail": "must be an integer"},
            {"pointer": "/parentClientId", "detail": "no client with id 424242 in this workspace"}
        ])
    );
}
