//! Hood's profile imports over HTTP: upload a CSV (multipart), the mapping
//! proposed from its column names, commit with a mapping (every error
//! listed), the per-row report, and the JSON bulk update of custom
//! properties (all or nothing).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Reply, TestApp};

async fn upload(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>) -> Reply {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str("text/csv")
        .expect("mime");
    let form = reqwest::multipart::Form::new().part("file", part);
    let response = app
        .client
        .post(format!("{}/v1/hood/profiles/imports", app.base_url))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    TestApp::reply(response).await
}

const PEOPLE: &str = "Email,Name,Phone Number,Plan\n\
ann@example.com,Ann,+49658245684,pro\n\
not-an-email,Bob,,basic\n\
carl@example.com,Carl,,\n";

#[tokio::test]
async fn an_uploaded_file_is_mapped_committed_and_reported_row_by_row() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_ann").await;
    let uploaded = upload(&app, &token, "people.csv", PEOPLE.as_bytes().to_vec()).await;
    assert_eq!(uploaded.status, StatusCode::ACCEPTED, "{}", uploaded.text);
    let id = uploaded.body["id"].as_str().expect("id").to_owned();
    assert_eq!(uploaded.body["name"], "profile-import");
    assert_eq!(uploaded.body["company_id"], "acme");
    assert_eq!(uploaded.body["member_id"], "user_ann");

    let import = app
        .get(&format!("/v1/hood/profiles/imports/{id}"), &token)
        .await;
    assert_eq!(import.status, StatusCode::OK, "{}", import.text);
    assert_eq!(import.body["status"], "uploaded");
    assert_eq!(import.body["total_records"], 3);
    assert_eq!(import.body["file"]["name"], "people.csv");
    assert_eq!(import.body["file"]["size"], PEOPLE.len());
    assert_eq!(
        import.body["mapping"]["items"],
        json!([
            {"label": "Email", "property": {"label": "email", "data_type": "text", "system": 1}},
            {"label": "Name", "property": {"label": "full_name", "data_type": "text", "system": 1}},
            {"label": "Phone Number", "property": {"label": "mobile_phone_number", "data_type": "text", "system": 1}},
            {"label": "Plan", "property": {"label": "plan", "data_type": "text", "system": 0}},
        ])
    );

    // A mapping with several mistakes names each of them.
    let wrong = app
        .post(&format!("/v1/hood/profiles/imports/{id}/commit"), &token, &json!({"mapping": [
            {"label": "Nope", "property": {"label": "email", "data_type": "text", "system": 1}},
            {"label": "Name", "property": {"label": "nickname", "data_type": "text", "system": 1}},
            {"label": "Plan", "property": {"label": "plan", "data_type": "number", "system": 0}},
        ]}))
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text);
    let fields: Vec<&str> = wrong.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        [
            "mapping[0].label",
            "mapping[1].property.label",
            "mapping[2].property.data_type"
        ]
    );
    let no_contact = app
        .post(&format!("/v1/hood/profiles/imports/{id}/commit"), &token, &json!({"mapping": [
            {"label": "Name", "property": {"label": "full_name", "data_type": "text", "system": 1}}]}))
        .await;
    assert_eq!(no_contact.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        no_contact.body["errors"][0]["message"],
        "At least one of email or mobile_phone_number must be mapped"
    );

    // Committed without the phone column.
    let commit = app
        .post(&format!("/v1/hood/profiles/imports/{id}/commit"), &token, &json!({"mapping": [
            {"label": "Email", "property": {"label": "email", "data_type": "text", "system": 1}},
            {"label": "Name", "property": {"label": "full_name", "data_type": "text", "system": 1}},
            {"label": "Plan", "property": {"label": "plan", "data_type": "text", "system": 0}},
        ]}))
        .await;
    assert_eq!(commit.status, StatusCode::ACCEPTED, "{}", commit.text);
    assert_eq!(commit.body["status"], "finished");
    assert_eq!(commit.body["total_records"], 3);
    assert_eq!(commit.body["imported_records"], 2);
    assert_eq!(commit.body["failed_records"], 1);
    assert_eq!(commit.body["mapping"]["mapped"], 3);
    assert_eq!(commit.body["mapping"]["unmapped"], 1);

    let report = app
        .get(
            &format!("/v1/hood/reports/profiles/import/{id}/full"),
            &token,
        )
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text);
    let rows = report.body.as_array().expect("an array");
    assert_eq!(rows.len(), 3);
    let codes: Vec<&str> = rows
        .iter()
        .map(|r| r["code"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(codes, ["SUCCESS", "INVALID", "SUCCESS"]);
    assert_eq!(rows[1]["profile_id"], Value::Null);
    assert_eq!(rows[1]["line"], 3);
    assert_eq!(
        rows[1]["errors"],
        json!([{"field": "email", "message": "Must be a valid email address"}])
    );
    let ann_id = rows[0]["profile_id"].as_str().expect("a profile id");
    let ann = app
        .get(&format!("/v1/hood/profiles/{ann_id}"), &token)
        .await;
    assert_eq!(ann.body["email"], "ann@example.com");
    assert_eq!(ann.body["full_name"], "Ann");
    assert_eq!(
        ann.body["mobile_phone_number"],
        Value::Null,
        "the phone column was not mapped"
    );
    assert_eq!(ann.body["custom_properties"], json!({"plan": "pro"}));

    // Committing twice is refused; uploading the file again and committing
    // updates the same profiles (matched by email) instead of duplicating.
    let again = app
        .post(
            &format!("/v1/hood/profiles/imports/{id}/commit"),
            &token,
            &json!({"mapping": [
            {"label": "Email", "property": {"label": "email", "data_type": "text", "system": 1}}]}),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    let second = upload(
        &app,
        &token,
        "people.csv",
        PEOPLE.replace("pro", "team").into_bytes(),
    )
    .await;
    let second_id = second.body["id"].as_str().expect("id");
    let commit = app
        .post(&format!("/v1/hood/profiles/imports/{second_id}/commit"), &token, &json!({"mapping": [
            {"label": "Email", "property": {"label": "email", "data_type": "text", "system": 1}},
            {"label": "Plan", "property": {"label": "plan", "data_type": "text", "system": 0}},
        ]}))
        .await;
    assert_eq!(commit.status, StatusCode::ACCEPTED, "{}", commit.text);
    let list = app.get("/v1/hood/profiles?page=1,100", &token).await;
    assert_eq!(list.body["total"], 2, "{}", list.text);
    let ann = app
        .get(&format!("/v1/hood/profiles/{ann_id}"), &token)
        .await;
    assert_eq!(ann.body["custom_properties"], json!({"plan": "team"}));

    // Another workspace sees no import.
    let other = app.member("other", "user_eve").await;
    let hidden = app
        .get(&format!("/v1/hood/profiles/imports/{id}"), &other)
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let hidden = app
        .get(
            &format!("/v1/hood/reports/profiles/import/{id}/full"),
            &other,
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn uploads_that_are_not_csv_files_are_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_ann").await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "sheet.xlsx",
            b"PK\x03\x04".to_vec(),
            "xlsx files are not supported here; save the sheet as CSV and upload that",
        ),
        (
            "image.csv",
            b"\x89PNG\r\n\x1a\n\xff".to_vec(),
            "the file is not UTF-8 text (byte 1 is not); upload a CSV file",
        ),
        (
            "empty.csv",
            Vec::new(),
            "the file is empty: a CSV file needs a header row naming its columns",
        ),
        (
            "twice.csv",
            b"email,email\n".to_vec(),
            "column 2 (\"email\") appears twice in the header",
        ),
    ];
    for (name, bytes, message) in cases {
        let reply = upload(&app, &token, name, bytes).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            reply.text
        );
        assert_eq!(
            reply.body["errors"],
            json!([{"field": "file", "message": message}]),
            "{name}"
        );
    }
    let not_multipart = app
        .post("/v1/hood/profiles/imports", &token, &json!({"file": "x"}))
        .await;
    assert_eq!(
        not_multipart.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        not_multipart.text
    );
    let missing = app
        .get(
            "/v1/hood/profiles/imports/7b1f0c1e-0000-4000-8000-000000000000",
            &token,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bulk_update_sets_custom_properties_of_existing_profiles_or_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_ann").await;
    let mut ids = Vec::new();
    for email in ["a@example.com", "b@example.com"] {
        let created = app
            .post(
                "/v1/hood/profiles",
                &token,
                &json!({"email": email, "custom_properties": {"keep": 1}}),
            )
            .await;
        ids.push(created.body["id"].as_str().expect("id").to_owned());
    }
    let refused = app
        .post("/v1/hood/profiles/import", &token, &json!({"profiles": [
            {"id": ids[0], "custom_properties": {"plan": {"type": "string", "value": "pro"}}},
            {"id": "999999999", "custom_properties": {"plan": {"type": "string", "value": "x"}}},
            {"id": ids[1], "custom_properties": {"seats": {"type": "number", "value": "five"}}},
            {"id": ids[0], "custom_properties": {}},
        ]}))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    let fields: Vec<&str> = refused.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        ["profiles[2].custom_properties.seats.", "profiles[3].id"].map(|f| f.trim_end_matches('.'))
    );
    let unknown = app
        .post("/v1/hood/profiles/import", &token, &json!({"profiles": [
            {"id": ids[0], "custom_properties": {"plan": {"type": "string", "value": "pro"}}},
            {"id": "999999999", "custom_properties": {"plan": {"type": "string", "value": "x"}}},
        ]}))
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.text);
    assert_eq!(
        unknown.body["errors"],
        json!([{"field": "profiles[1].id", "message": "Profile 999999999 does not exist"}])
    );
    let first = app
        .get(&format!("/v1/hood/profiles/{}", ids[0]), &token)
        .await;
    assert_eq!(
        first.body["custom_properties"],
        json!({"keep": 1}),
        "nothing was written"
    );

    let applied = app
        .post("/v1/hood/profiles/import", &token, &json!({"profiles": [
            {"id": ids[0], "custom_properties": {"plan": {"type": "string", "value": "pro"}, "keep": {"type": "number", "value": null}}},
            {"id": ids[1], "custom_properties": {"vip": {"type": "boolean", "value": true}}},
        ]}))
        .await;
    assert_eq!(applied.status, StatusCode::ACCEPTED, "{}", applied.text);
    assert_eq!(
        applied.body,
        json!({"status": "finished", "updated_records": 2})
    );
    let first = app
        .get(&format!("/v1/hood/profiles/{}", ids[0]), &token)
        .await;
    assert_eq!(first.body["custom_properties"], json!({"plan": "pro"}));
    let second = app
        .get(&format!("/v1/hood/profiles/{}", ids[1]), &token)
        .await;
    assert_eq!(
        second.body["custom_properties"],
        json!({"keep": 1, "vip": true})
    );
    let history = app
        .get(&format!("/v1/hood/profiles/{}/history", ids[1]), &token)
        .await;
    assert_eq!(history.body["total"], 2, "the update is in the audit trail");
}

#[tokio::test]
async fn import_writes_honour_idempotency_keys() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_ann").await;
    let send_upload = |key: &'static str| {
        let part = reqwest::multipart::Part::bytes(PEOPLE.as_bytes().to_vec())
            .file_name("people.csv")
            .mime_str("text/csv")
            .expect("mime");
        app.client
            .post(format!("{}/v1/hood/profiles/imports", app.base_url))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
    };
    let first = TestApp::reply(send_upload("upload-1").await.expect("upload")).await;
    let again = TestApp::reply(send_upload("upload-1").await.expect("upload")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(again.text, first.text, "the same answer, byte for byte");
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    let id = first.body["id"].as_str().expect("id");
    let mapping = json!({"mapping": [
        {"label": "Email", "property": {"label": "email", "data_type": "text", "system": 1}}]});
    let path = format!("/v1/hood/profiles/imports/{id}/commit");
    let headers = [("Idempotency-Key", "commit-1")];
    let commit = app
        .send_with(
            reqwest::Method::POST,
            &path,
            Some(&token),
            Some(&mapping),
            &headers,
        )
        .await;
    let replay = app
        .send_with(
            reqwest::Method::POST,
            &path,
            Some(&token),
            Some(&mapping),
            &headers,
        )
        .await;
    assert_eq!(commit.status, StatusCode::ACCEPTED, "{}", commit.text);
    assert_eq!(replay.text, commit.text);
    assert_eq!(
        replay.header("idempotent-replayed").as_deref(),
        Some("true")
    );
    let profile = app
        .post(
            "/v1/hood/profiles",
            &token,
            &json!({"email": "z@example.com"}),
        )
        .await;
    let bulk = json!({"profiles": [{"id": profile.body["id"], "custom_properties": {"n": {"type": "number", "value": 1}}}]});
    let headers = [("Idempotency-Key", "bulk-1")];
    let first = app
        .send_with(
            reqwest::Method::POST,
            "/v1/hood/profiles/import",
            Some(&token),
            Some(&bulk),
            &headers,
        )
        .await;
    let again = app
        .send_with(
            reqwest::Method::POST,
            "/v1/hood/profiles/import",
            Some(&token),
            Some(&bulk),
            &headers,
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.text);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    let history = app
        .get(
            &format!(
                "/v1/hood/profiles/{}/history",
                profile.body["id"].as_str().expect("id")
            ),
            &token,
        )
        .await;
    assert_eq!(history.body["total"], 2, "written once: {}", history.text);
}
