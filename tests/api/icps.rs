//! The Lance ICP contract: the seed's examples, every nested shape's
//! validation, PATCH semantics, ETags and preconditions.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    ICPS, TestApp, create_icp, icp_path, minimal_icp, seed_icp_create, seed_icp_patch,
};

fn is_millisecond_utc(text: &str) -> bool {
    // 2024-01-25T09:15:00.000Z
    text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

fn bad_request(details: Value) -> Value {
    json!({"error": {"code": "BAD_REQUEST", "message": "Invalid request body", "details": details}})
}

async fn member_app() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    (app, token)
}

#[tokio::test]
async fn seed_patch_example_answers_the_seed_200_example() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &seed_icp_create()).await;

    let reply = app.patch(&icp_path(&id), &token, &seed_icp_patch()).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let mut body = reply.body.clone();
    let created_at = body["createdAt"].as_str().unwrap_or_default().to_owned();
    let updated_at = body["updatedAt"].as_str().unwrap_or_default().to_owned();
    assert!(is_millisecond_utc(&created_at), "{created_at}");
    assert!(is_millisecond_utc(&updated_at), "{updated_at}");
    assert!(updated_at >= created_at);
    // The seed's example, with the server-assigned id and times substituted.
    let mut expected = json!({
        "id": "550e8400-e29b-41d4-a716-446655440000",
        "name": "Updated ICP Name",
        "description": "C-level and VP-level technology leaders at enterprise companies",
        "createdAt": "2024-01-15T10:30:00.000Z",
        "updatedAt": "2024-01-25T09:15:00.000Z",
        "userIds": ["user_abc123", "user_def456"],
        "leadsPerList": 50,
        "activeUntil": "2024-12-31T23:59:59.000Z",
        "leadProviderCriteria": [{
            "provider": "baseProvider",
            "type": "person",
            "filters": {"job_titles": ["CTO", "VP Engineering"], "company_size": ["501-1000", "1001-5000"]}
        }],
        "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": 5}],
        "crmFilters": null
    });
    expected["id"] = json!(id);
    expected["createdAt"] = json!(created_at);
    expected["updatedAt"] = json!(updated_at);
    body["updatedAt"] = json!(updated_at);
    assert_eq!(body, expected);
    assert_eq!(reply.header("etag").as_deref(), Some("\"2\""));

    let fetched = app.get(&icp_path(&id), &token).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, expected);
}

/// The examples /docs shows for the ICP operations are the seed's, and the
/// server answers them as the document says: the create and PATCH bodies
/// work, the PATCH answers the 200 example (id and times aside), and the
/// seed's invalid PATCH answers the 400 example.
#[tokio::test]
async fn the_documents_icp_examples_are_the_seeds_and_hold() {
    let (app, token) = member_app().await;
    let document = serde_json::to_value(clientele::app::openapi()).expect("JSON");
    let example = |path: &str, method: &str, response: Option<&str>| -> Value {
        let operation = &document["paths"][path][method];
        let content = match response {
            None => &operation["requestBody"]["content"]["application/json"],
            Some(status) => &operation["responses"][status]["content"]["application/json"],
        };
        assert!(
            content["example"].is_object(),
            "{method} {path} {response:?} has an example"
        );
        content["example"].clone()
    };
    let item = "/api/v1/entities/icps/{id}";
    let create = example(ICPS, "post", None);
    let patch = example(item, "patch", None);
    let mut answer = example(item, "patch", Some("200"));
    // The seed's ICP, less leadsPerList: 10 is the server's default.
    let mut seed_create = seed_icp_create();
    if let Some(fields) = seed_create.as_object_mut() {
        fields.remove("leadsPerList");
    }
    assert_eq!(create, seed_create);
    assert_eq!(patch, seed_icp_patch());

    let id = create_icp(&app, &token, &create).await;
    let reply = app.patch(&icp_path(&id), &token, &patch).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    for server_assigned in ["id", "createdAt", "updatedAt"] {
        answer[server_assigned] = reply.body[server_assigned].clone();
    }
    assert_eq!(reply.body, answer);

    let invalid = json!({"leadsPerList": "50", "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": "5"}]});
    let reply = app.patch(&icp_path(&id), &token, &invalid).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, example(item, "patch", Some("400")));
}

#[tokio::test]
async fn seed_400_example_string_for_a_number() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &seed_icp_create()).await;
    let reply = app
        .patch(&icp_path(&id), &token, &json!({"leadsPerList": "50"}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        json!({
            "error": {
                "code": "BAD_REQUEST",
                "message": "Invalid request body",
                "details": [{"path": ["leadsPerList"], "message": "Expected number, received string"}]
            }
        })
    );
}

#[tokio::test]
async fn seed_403_example_for_a_user_not_listed() {
    let (app, owner) = member_app().await;
    let stranger = app.member("acme", "user_zzz999").await;
    let id = create_icp(&app, &owner, &seed_icp_create()).await;
    for reply in [
        app.patch(&icp_path(&id), &stranger, &seed_icp_patch())
            .await,
        app.get(&icp_path(&id), &stranger).await,
        app.delete(&icp_path(&id), &stranger).await,
    ] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(
            reply.body,
            json!({"error": {"code": "FORBIDDEN", "message": "You do not have access to this ICP"}})
        );
    }
}

#[tokio::test]
async fn seed_404_example_for_an_unknown_id() {
    let (app, token) = member_app().await;
    let reply = app
        .patch(
            &icp_path("550e8400-e29b-41d4-a716-446655440000"),
            &token,
            &seed_icp_patch(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.body,
        json!({
            "error": {
                "code": "NOT_FOUND",
                "message": "ICP not found: 550e8400-e29b-41d4-a716-446655440000"
            }
        })
    );
    let not_a_uuid = app.get(&icp_path("not-a-uuid"), &token).await;
    assert_eq!(not_a_uuid.status, StatusCode::NOT_FOUND);
    assert_eq!(
        not_a_uuid.body["error"]["message"],
        "ICP not found: not-a-uuid"
    );
}

#[tokio::test]
async fn create_applies_defaults_and_adds_the_creator() {
    let (app, token) = member_app().await;
    let reply = app
        .post(
            ICPS,
            &token,
            &json!({
                "name": "Minimal",
                "userIds": ["user_other"],
                "leadProviderCriteria": [{"provider": "baseProvider", "filters": {"k": [1, 2]}}]
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.header("etag").as_deref(), Some("\"1\""));
    let body = &reply.body;
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap_or_default()).is_ok());
    assert_eq!(body["userIds"], json!(["user_other", "user_abc123"]));
    assert_eq!(body["leadsPerList"], 10);
    assert_eq!(body["description"], Value::Null);
    assert_eq!(body["activeUntil"], Value::Null);
    assert_eq!(body["crmFilters"], Value::Null);
    assert_eq!(body["customFilterCriteria"], json!([]));
    assert_eq!(
        body["leadProviderCriteria"],
        json!([{"provider": "baseProvider", "type": "person", "filters": {"k": [1, 2]}}])
    );
}

#[tokio::test]
async fn create_requires_name_and_at_least_one_lead_provider_criterion() {
    let (app, token) = member_app().await;
    let reply = app.post(ICPS, &token, &json!({})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        bad_request(json!([
            {"path": ["name"], "message": "Required"},
            {"path": ["leadProviderCriteria"], "message": "Required"}
        ]))
    );
    let empty = app
        .post(
            ICPS,
            &token,
            &json!({"name": "x", "leadProviderCriteria": []}),
        )
        .await;
    assert_eq!(
        empty.body,
        bad_request(json!([
            {"path": ["leadProviderCriteria"], "message": "Array must contain at least 1 element(s)"}
        ]))
    );
}

#[tokio::test]
async fn list_shows_the_callers_icps_and_admins_see_all() {
    let app = TestApp::spawn().await;
    let alice = app.member("acme", "user_alice").await;
    let bob = app.member("acme", "user_bob").await;
    let admin = app.admin("acme", "user_admin").await;
    let outsider = app.admin("globex", "user_alice").await;
    let a = create_icp(&app, &alice, &minimal_icp("A")).await;
    let b = create_icp(&app, &bob, &minimal_icp("B")).await;

    let ids = |reply: &crate::support::Reply| -> Vec<String> {
        reply
            .body
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(ids(&app.get(ICPS, &alice).await), vec![a.clone()]);
    assert_eq!(ids(&app.get(ICPS, &bob).await), vec![b.clone()]);
    assert_eq!(ids(&app.get(ICPS, &admin).await), vec![a, b]);
    let other_workspace = app.get(ICPS, &outsider).await;
    assert_eq!(other_workspace.status, StatusCode::OK);
    assert_eq!(other_workspace.body, json!([]));
}

#[tokio::test]
async fn absent_fields_stay_null_clears_and_values_replace() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &seed_icp_create()).await;
    let before = app.get(&icp_path(&id), &token).await.body;

    let reply = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"description": null, "activeUntil": null}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let mut expected = before.clone();
    expected["description"] = Value::Null;
    expected["activeUntil"] = Value::Null;
    expected["updatedAt"] = reply.body["updatedAt"].clone();
    assert_eq!(reply.body, expected);

    let with_crm = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"crmFilters": {"provider": "bullhorn", "textSearch": "Head OR Leit*"}}),
        )
        .await;
    assert_eq!(
        with_crm.body["crmFilters"],
        json!({"provider": "bullhorn", "textSearch": "Head OR Leit*", "query": null, "filters": []})
    );
    let cleared = app
        .patch(&icp_path(&id), &token, &json!({"crmFilters": null}))
        .await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert_eq!(cleared.body["crmFilters"], Value::Null);
}

#[tokio::test]
async fn active_until_accepts_any_offset_and_returns_utc() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("T")).await;
    let reply = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"activeUntil": "2025-06-01T12:00:00+02:00"}),
        )
        .await;
    assert_eq!(reply.body["activeUntil"], "2025-06-01T10:00:00.000Z");
    let bad = app
        .patch(&icp_path(&id), &token, &json!({"activeUntil": "tomorrow"}))
        .await;
    assert_eq!(
        bad.body,
        bad_request(
            json!([{"path": ["activeUntil"], "message": "Invalid datetime: expected RFC 3339, e.g. 2024-12-31T23:59:59.000Z"}])
        )
    );
}

#[tokio::test]
async fn null_on_a_non_nullable_field_is_a_400_at_that_field() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("N")).await;
    let reply = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"name": null, "userIds": null, "leadsPerList": null}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        bad_request(json!([
            {"path": ["name"], "message": "Expected string, received null"},
            {"path": ["userIds"], "message": "Expected array, received null"},
            {"path": ["leadsPerList"], "message": "Expected number, received null"}
        ]))
    );
    assert_eq!(app.get(&icp_path(&id), &token).await.body["name"], "N");
}

#[tokio::test]
async fn unknown_and_read_only_fields_are_named() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("U")).await;
    let reply = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"nmae": "typo", "id": "x", "createdAt": "2024-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        bad_request(json!([
            {"path": ["createdAt"], "message": "Unrecognized key: \"createdAt\""},
            {"path": ["id"], "message": "Unrecognized key: \"id\""},
            {"path": ["nmae"], "message": "Unrecognized key: \"nmae\""}
        ]))
    );
}

#[tokio::test]
async fn leads_per_list_is_an_integer_from_1_to_10000() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("L")).await;
    for (value, message) in [
        (json!(50.5), "Expected integer, received float"),
        (json!("50"), "Expected number, received string"),
        (json!(0), "Number must be between 1 and 10000"),
        (json!(10_001), "Number must be between 1 and 10000"),
    ] {
        let reply = app
            .patch(&icp_path(&id), &token, &json!({"leadsPerList": value}))
            .await;
        assert_eq!(
            reply.body,
            bad_request(json!([{"path": ["leadsPerList"], "message": message}])),
            "{value}"
        );
    }
    for value in [1, 10_000] {
        let reply = app
            .patch(&icp_path(&id), &token, &json!({"leadsPerList": value}))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body["leadsPerList"], value);
    }
}

#[tokio::test]
async fn every_custom_filter_variant_round_trips_with_its_defaults() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("F")).await;
    let sent = json!([
        {"type": "website", "prompt": "Is this a B2B SaaS?"},
        {"type": "website", "provider": "otherBrowser", "prompt": "p"},
        {"type": "webscraping", "extractionPrompt": "Extract pricing", "pageFindingPrompt": null,
         "includeSearchStrings": ["pricing"], "excludeSearchStrings": null},
        {"type": "ai", "entityType": "company", "prompt": "Fits?"},
        {"type": "maxPeoplePerCompany", "value": 3},
        {"type": "maxPercentFromCRM", "value": 12.5},
        {"type": "minDaysUntilReuse", "value": 0},
        {"type": "matchFieldWithRegex", "field": "company.headcount", "regex": "^(5\\d\\d|1\\d{3})$"}
    ]);
    let reply = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"customFilterCriteria": sent}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body["customFilterCriteria"],
        json!([
            {"type": "website", "provider": "browserUse", "prompt": "Is this a B2B SaaS?"},
            {"type": "website", "provider": "otherBrowser", "prompt": "p"},
            {"type": "webscraping", "provider": "firecrawl", "extractionPrompt": "Extract pricing",
             "pageFindingPrompt": null, "includeSearchStrings": ["pricing"], "excludeSearchStrings": null},
            {"type": "ai", "entityType": "company", "prompt": "Fits?"},
            {"type": "maxPeoplePerCompany", "value": 3},
            {"type": "maxPercentFromCRM", "value": 12.5},
            {"type": "minDaysUntilReuse", "value": 0},
            {"type": "matchFieldWithRegex", "field": "company.headcount", "regex": "^(5\\d\\d|1\\d{3})$"}
        ])
    );
}

#[tokio::test]
async fn invalid_custom_filters_are_each_reported_at_their_path() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("F")).await;
    let sent = json!([
        {"type": "website"},
        {"type": "webscraping", "includeSearchStrings": "pricing"},
        {"type": "ai", "entityType": "robot", "prompt": "x"},
        {"type": "maxPeoplePerCompany", "value": 0},
        {"type": "maxPercentFromCRM", "value": 100.5},
        {"type": "minDaysUntilReuse", "value": -1},
        {"type": "matchFieldWithRegex", "field": "title", "regex": "(unclosed"},
        {"type": "maxPeoplePerCompany", "value": "5"},
        {"type": "sometimes"},
        {"value": 1},
        {"type": "maxPeoplePerCompany", "value": 2, "prompt": "stray"},
        "not an object"
    ]);
    let reply = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"customFilterCriteria": sent}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let details = reply.body["error"]["details"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let paths: Vec<Value> = details
        .iter()
        .map(|detail| detail["path"].clone())
        .collect();
    assert_eq!(
        paths,
        vec![
            json!(["customFilterCriteria", 0, "prompt"]),
            json!(["customFilterCriteria", 1, "includeSearchStrings"]),
            json!(["customFilterCriteria", 2, "entityType"]),
            json!(["customFilterCriteria", 3, "value"]),
            json!(["customFilterCriteria", 4, "value"]),
            json!(["customFilterCriteria", 5, "value"]),
            json!(["customFilterCriteria", 6, "regex"]),
            json!(["customFilterCriteria", 7, "value"]),
            json!(["customFilterCriteria", 8, "type"]),
            json!(["customFilterCriteria", 9, "type"]),
            json!(["customFilterCriteria", 10, "prompt"]),
            json!(["customFilterCriteria", 11]),
        ]
    );
    let messages: Vec<&str> = details
        .iter()
        .filter_map(|detail| detail["message"].as_str())
        .collect();
    assert_eq!(messages[0], "Required");
    assert_eq!(messages[1], "Expected array, received string");
    assert_eq!(
        messages[2],
        "Invalid enum value. Expected 'person' | 'company', received 'robot'"
    );
    assert_eq!(messages[3], "Number must be greater than or equal to 1");
    assert_eq!(messages[4], "Number must be between 0 and 100");
    assert_eq!(messages[5], "Number must be greater than or equal to 0");
    assert!(
        messages[6].starts_with("Invalid regular expression:"),
        "{}",
        messages[6]
    );
    assert_eq!(messages[7], "Expected number, received string");
    assert_eq!(
        messages[8],
        "Invalid enum value. Expected 'website' | 'webscraping' | 'ai' | 'maxPeoplePerCompany' | 'maxPercentFromCRM' | 'minDaysUntilReuse' | 'matchFieldWithRegex', received 'sometimes'"
    );
    assert_eq!(messages[9], "Required");
    assert_eq!(messages[10], "Unrecognized key: \"prompt\"");
    assert_eq!(messages[11], "Expected object, received string");
    // Nothing was written.
    let current = app.get(&icp_path(&id), &token).await;
    assert_eq!(current.body["customFilterCriteria"], json!([]));
    assert_eq!(current.header("etag").as_deref(), Some("\"1\""));
}

#[tokio::test]
async fn a_regex_that_compiles_too_large_is_refused() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("R")).await;
    let reply = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"customFilterCriteria": [
                {"type": "matchFieldWithRegex", "field": "title", "regex": "\\w{1000}{1000}"}
            ]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["error"]["details"][0]["path"],
        json!(["customFilterCriteria", 0, "regex"])
    );
    assert_eq!(
        reply.body["error"]["details"][0]["message"],
        "Invalid regular expression: compiles to more than 262144 bytes"
    );
}

#[tokio::test]
async fn crm_filter_values_follow_their_mode() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("C")).await;
    let valid = json!({"provider": "bullhorn", "query": "legacy", "filters": [
        {"path": "address.zip", "mode": "startsWith", "value": "80"},
        {"path": "status", "mode": "in", "value": ["Active", "Passive"], "exclude": true},
        {"path": "owner", "mode": "equals", "value": "x"}
    ]});
    let reply = app
        .patch(&icp_path(&id), &token, &json!({"crmFilters": valid}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body["crmFilters"],
        json!({"provider": "bullhorn", "textSearch": null, "query": "legacy", "filters": [
            {"path": "address.zip", "mode": "startsWith", "value": "80", "exclude": false},
            {"path": "status", "mode": "in", "value": ["Active", "Passive"], "exclude": true},
            {"path": "owner", "mode": "equals", "value": "x", "exclude": false}
        ]})
    );

    let invalid = json!({"provider": "salesforce", "filters": [
        {"path": "status", "mode": "in", "value": "Active"},
        {"path": "status", "mode": "in", "value": []},
        {"path": "status", "mode": "equals", "value": ["a"]},
        {"path": "status", "mode": "like", "value": "a"},
        {"mode": "equals", "value": "a", "exclude": "yes"}
    ]});
    let reply = app
        .patch(&icp_path(&id), &token, &json!({"crmFilters": invalid}))
        .await;
    assert_eq!(
        reply.body,
        bad_request(json!([
            {"path": ["crmFilters", "provider"], "message": "Invalid enum value. Expected 'bullhorn', received 'salesforce'"},
            {"path": ["crmFilters", "filters", 0, "value"], "message": "Expected array, received string"},
            {"path": ["crmFilters", "filters", 1, "value"], "message": "Array must contain at least 1 element(s)"},
            {"path": ["crmFilters", "filters", 2, "value"], "message": "Expected string, received array"},
            {"path": ["crmFilters", "filters", 3, "mode"], "message": "Invalid enum value. Expected 'equals' | 'in' | 'startsWith', received 'like'"},
            {"path": ["crmFilters", "filters", 4, "path"], "message": "Required"},
            {"path": ["crmFilters", "filters", 4, "exclude"], "message": "Expected boolean, received string"}
        ]))
    );
}

#[tokio::test]
async fn lead_provider_criteria_are_checked() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("P")).await;
    let reply = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"leadProviderCriteria": [
                {"provider": "apollo", "type": "robot", "filters": []},
                {"type": "company"}
            ]}),
        )
        .await;
    assert_eq!(
        reply.body,
        bad_request(json!([
            {"path": ["leadProviderCriteria", 0, "provider"], "message": "Invalid enum value. Expected 'baseProvider', received 'apollo'"},
            {"path": ["leadProviderCriteria", 0, "type"], "message": "Invalid enum value. Expected 'person' | 'company', received 'robot'"},
            {"path": ["leadProviderCriteria", 0, "filters"], "message": "Expected object, received array"},
            {"path": ["leadProviderCriteria", 1, "provider"], "message": "Required"},
            {"path": ["leadProviderCriteria", 1, "filters"], "message": "Required"}
        ]))
    );
    let company = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"leadProviderCriteria": [
                {"provider": "baseProvider", "type": "company", "filters": {"industry": "saas"}}
            ]}),
        )
        .await;
    assert_eq!(company.body["leadProviderCriteria"][0]["type"], "company");
}

#[tokio::test]
async fn one_400_lists_every_wrong_type_at_nested_paths() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("W")).await;
    let reply = app
        .patch(&icp_path(&id), &token, &json!({
            "name": 5,
            "userIds": ["user_a", 7],
            "leadsPerList": "50",
            "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": "5"}],
            "crmFilters": {"provider": "bullhorn", "filters": [{"path": "status", "mode": "in", "value": "x"}]},
            "leadProviderCriteria": [{"provider": "baseProvider", "filters": {"deep": 1}, "type": 3}]
        }))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        bad_request(json!([
            {"path": ["name"], "message": "Expected string, received number"},
            {"path": ["userIds", 1], "message": "Expected string, received number"},
            {"path": ["leadsPerList"], "message": "Expected number, received string"},
            {"path": ["leadProviderCriteria", 0, "type"], "message": "Expected string, received number"},
            {"path": ["customFilterCriteria", 0, "value"], "message": "Expected number, received string"},
            {"path": ["crmFilters", "filters", 0, "value"], "message": "Expected array, received string"}
        ]))
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_object_or_not_json_is_a_400() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("B")).await;
    let array = app.patch(&icp_path(&id), &token, &json!([1])).await;
    assert_eq!(
        array.body,
        bad_request(json!([{"path": [], "message": "Expected object, received array"}]))
    );
    let garbage = app
        .client
        .patch(format!("{}{}", app.base_url, icp_path(&id)))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("sent");
    let garbage = TestApp::reply(garbage).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(garbage.body["error"]["code"], "BAD_REQUEST");
    assert_eq!(garbage.body["error"]["details"][0]["path"], json!([]));
    assert!(
        garbage.body["error"]["details"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Malformed JSON: EOF while parsing"),
        "{}",
        garbage.text
    );
}

#[tokio::test]
async fn merge_patch_media_type_is_accepted_and_others_are_415() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("M")).await;
    let merge = app
        .send_with(
            Method::PATCH,
            &icp_path(&id),
            Some(&token),
            Some(&json!({"name": "merged"})),
            &[("content-type", "application/merge-patch+json")],
        )
        .await;
    assert_eq!(merge.status, StatusCode::OK);
    assert_eq!(merge.body["name"], "merged");
    let form = app
        .send_with(
            Method::PATCH,
            &icp_path(&id),
            Some(&token),
            Some(&json!({"name": "form"})),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        form.body,
        json!({"error": {"code": "UNSUPPORTED_MEDIA_TYPE", "message": "Content-Type must be application/json or application/merge-patch+json"}})
    );
}

#[tokio::test]
async fn etags_grow_and_a_stale_if_match_gets_412() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("E")).await;
    let first = app.get(&icp_path(&id), &token).await;
    assert_eq!(first.header("etag").as_deref(), Some("\"1\""));

    let fresh = app
        .send_with(
            Method::PATCH,
            &icp_path(&id),
            Some(&token),
            Some(&json!({"name": "v2"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(fresh.header("etag").as_deref(), Some("\"2\""));

    let stale = app
        .send_with(
            Method::PATCH,
            &icp_path(&id),
            Some(&token),
            Some(&json!({"name": "lost"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(
        stale.body,
        json!({"error": {"code": "PRECONDITION_FAILED", "message": "The record has changed since you read it (If-Match does not match the current ETag \"2\"); GET it again and retry"}})
    );
    let stale_delete = app
        .send_with(
            Method::DELETE,
            &icp_path(&id),
            Some(&token),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(stale_delete.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.get(&icp_path(&id), &token).await.body["name"], "v2");

    let any = app
        .send_with(
            Method::PATCH,
            &icp_path(&id),
            Some(&token),
            Some(&json!({"name": "v3"})),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(any.status, StatusCode::OK);
    assert_eq!(any.header("etag").as_deref(), Some("\"3\""));
}

#[tokio::test]
async fn delete_answers_204_then_404() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("D")).await;
    let deleted = app
        .send_with(
            Method::DELETE,
            &icp_path(&id),
            Some(&token),
            None,
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.text, "");
    let again = app.delete(&icp_path(&id), &token).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&icp_path(&id), &token).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_member_who_removes_themselves_loses_access() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("S")).await;
    let reply = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"userIds": ["user_x", "user_x"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["userIds"], json!(["user_x"]));
    assert_eq!(
        app.get(&icp_path(&id), &token).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn oversized_strings_and_arrays_are_400s_at_their_field() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &minimal_icp("O")).await;
    let users: Vec<String> = (0..1_001).map(|n| format!("user_{n}")).collect();
    let reply = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"name": "x".repeat(256), "userIds": users, "name2": 1}),
        )
        .await;
    assert_eq!(
        reply.body,
        bad_request(json!([
            {"path": ["name2"], "message": "Unrecognized key: \"name2\""},
            {"path": ["name"], "message": "String must contain at most 255 character(s)"},
            {"path": ["userIds"], "message": "Array must contain at most 1000 element(s)"}
        ]))
    );
    let deep = (0..20).fold(json!(1), |inner, _| json!({"a": inner}));
    let reply = app
        .patch(
            &icp_path(&id),
            &token,
            &json!({"leadProviderCriteria": [{"provider": "baseProvider", "filters": deep}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["error"]["details"][0]["message"],
        "Nesting deeper than 16 levels"
    );
}

#[tokio::test]
async fn the_same_patch_again_changes_nothing() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &seed_icp_create()).await;
    let path = icp_path(&id);
    let first = app.patch(&path, &token, &seed_icp_patch()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let history = app.get(&format!("{path}/history"), &token).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    // A no-op write answers as a successful PATCH, with the record, its
    // updatedAt and its ETag as they were, and adds no history entry.
    for unchanged in [seed_icp_patch(), json!({})] {
        let again = app.patch(&path, &token, &unchanged).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text);
        assert_eq!(again.body, first.body);
        assert_eq!(again.header("etag").as_deref(), Some("\"2\""));
    }
    assert_eq!(app.get(&path, &token).await.body, first.body);
    assert_eq!(
        app.get(&format!("{path}/history"), &token).await.body,
        history.body
    );
}

#[tokio::test]
async fn an_if_match_that_is_not_entity_tags_is_400_and_a_stale_one_412() {
    let (app, token) = member_app().await;
    let id = create_icp(&app, &token, &seed_icp_create()).await;
    let path = icp_path(&id);
    for malformed in ["1", "abc", "\"1", "*, \"1\""] {
        let reply = app
            .send_with(
                Method::PATCH,
                &path,
                Some(&token),
                Some(&json!({"name": "x"})),
                &[("if-match", malformed)],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{malformed}: {}",
            reply.text
        );
        assert!(reply.text.contains("If-Match"), "{}", reply.text);
    }
    for (tags, status) in [
        ("\"2\", W/\"1\"", StatusCode::PRECONDITION_FAILED),
        ("W/\"1\"", StatusCode::PRECONDITION_FAILED),
        ("\"7\" ,  \"1\"", StatusCode::OK),
    ] {
        let reply = app
            .send_with(
                Method::PATCH,
                &path,
                Some(&token),
                Some(&json!({"name": "y"})),
                &[("if-match", tags)],
            )
            .await;
        assert_eq!(reply.status, status, "{tags}: {}", reply.text);
    }
    assert_eq!(app.get(&path, &token).await.body["name"], "y");
    // The header's syntax is checked before the record is looked up: an
    // absent ICP answers the same 400, body and all, as a present one.
    let malformed = |path: String| {
        let (app, token) = (&app, &token);
        async move {
            app.send_with(
                Method::PATCH,
                &path,
                Some(token),
                Some(&json!({"name": "z"})),
                &[("if-match", "abc")],
            )
            .await
        }
    };
    let present = malformed(path.clone()).await;
    let absent = malformed(icp_path("6f0c1f0e-0000-4000-8000-000000000000")).await;
    assert_eq!(absent.status, StatusCode::BAD_REQUEST, "{}", absent.text);
    assert_eq!(absent.body, present.body);
    assert_eq!(
        absent.body,
        json!({"error": {
            "code": "BAD_REQUEST",
            "message": "Invalid If-Match header: must be * or entity tags such as \"3\" (the ETag a GET answered), separated by commas",
        }}),
        "{}",
        absent.text
    );
}
