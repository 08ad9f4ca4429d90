//! Regressions from property-based testing against the OpenAPI document
//! (`ci/schemathesis.sh`): behaviour that broke the contract on some
//! backend, and document details that made it contradict the server.
//! Runs on both backends.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

/// PostgreSQL's JSONB cannot store U+0000: a body with one used to be a 500
/// there (and stored on SQLite). Every surface refuses it, at the field.
#[tokio::test]
async fn a_nul_character_in_any_body_string_is_a_400_at_its_field() {
    let app = TestApp::spawn().await;
    let token = app.admin("acme", "user_admin").await;

    let reply = app
        .post(
            "/v1/hood/profile-lists",
            &token,
            &json!({"name": "ok", "description": "a\u{0}b"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.body["errors"][0]["field"], "description");

    let reply = app
        .post(
            "/v2/client",
            &token,
            &json!({"name": "Acme", "status": "ACTIVE", "active": true,
                    "region": {"eu": [{"k\u{0}": 1}]}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.body["errors"][0]["pointer"], "/region/eu/0/k\u{0}");

    let reply = app
        .post(
            "/api/v1/entities/icps",
            &token,
            &json!({"name": "\u{0}", "leadProviderCriteria": [
                {"provider": "baseProvider", "filters": {}}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.body["error"]["details"][0]["path"], json!(["name"]));

    // Nothing was stored, on either backend.
    let lists = app.get("/v1/hood/profile-lists", &token).await;
    assert_eq!(lists.body["total"], 0);
}
