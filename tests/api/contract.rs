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

fn document() -> serde_json::Value {
    serde_json::to_value(clientele::app::openapi()).expect("the document is JSON")
}

/// Lance: the history's paging is in the query (it was documented as
/// required path parameters), the custom filters' fields are named as
/// they are sent (`entityType`, not `entity_type`), and request bodies
/// are closed and carry the bounds the server checks.
#[test]
fn lance_document_matches_what_the_server_reads_and_sends() {
    use clientele::core::icp;
    let document = document();
    let history = &document["paths"]["/api/v1/entities/icps/{id}/history"]["get"];
    for parameter in history["parameters"].as_array().expect("parameters") {
        if parameter["name"] == "id" {
            assert_eq!(parameter["schema"]["format"], "uuid", "{parameter}");
        } else {
            assert_eq!(parameter["in"], "query", "{parameter}");
            assert_eq!(parameter["required"], false, "{parameter}");
        }
    }
    let schemas = &document["components"]["schemas"];
    let view = schemas["CustomFilterView"].to_string();
    assert!(view.contains("entityType") && !view.contains("entity_type"));
    assert!(view.contains("extractionPrompt") && !view.contains("extraction_prompt"));

    let create = &schemas["CreateIcpRequest"];
    assert_eq!(create["additionalProperties"], false);
    assert_eq!(create["required"], json!(["name", "leadProviderCriteria"]));
    assert_eq!(
        create["properties"]["name"]["maxLength"],
        json!(icp::NAME_CHARS.end())
    );
    assert_eq!(
        create["properties"]["leadsPerList"]["maximum"],
        json!(icp::LEADS_PER_LIST.end())
    );
    // Optional but not nullable: `null` is refused for these.
    assert_eq!(create["properties"]["userIds"]["type"], "array");
    assert_eq!(schemas["UpdateIcpRequest"]["additionalProperties"], false);
    assert!(schemas["UpdateIcpRequest"]["required"].is_null());
}

/// Hood: a list PATCH has its own body (the create body required `name`),
/// PATCH bodies need at least one field, a create needs a contact, and the
/// list query's `page` and `sort` say what the server parses, including an
/// empty `sort`, which the server takes as no sort.
#[tokio::test]
async fn hood_document_matches_what_the_server_reads() {
    use clientele::core::hood;
    let document = document();
    let schemas = &document["components"]["schemas"];
    let list_patch = &document["paths"]["/v1/hood/profile-lists/{id}"]["patch"];
    assert_eq!(
        list_patch["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/HoodProfileListPatchRequest"
    );
    assert_eq!(schemas["HoodProfileListPatchRequest"]["minProperties"], 1);
    assert!(schemas["HoodProfileListPatchRequest"]["required"].is_null());
    assert_eq!(schemas["UpdateHoodProfileRequest"]["minProperties"], 1);
    let create = schemas["CreateHoodProfileRequest"].to_string();
    // The email-or-number rule is stated in words: as allOf + anyOf,
    // generators merged the branches into "both required".
    assert!(
        !create.contains("anyOf") && !create.contains("allOf"),
        "{create}"
    );
    assert!(
        create.contains("`email` or `mobile_phone_number` is required"),
        "a contact is required: {create}"
    );
    assert!(create.contains(&format!("\"maxLength\":{}", hood::EMAIL_CHARS.end())));

    let app = TestApp::spawn().await;
    let token = app.admin("acme", "user_admin").await;
    let parameters = &document["paths"]["/v1/hood/profiles"]["get"]["parameters"];
    let pattern = |name: &str| {
        parameters
            .as_array()
            .and_then(|all| all.iter().find(|parameter| parameter["name"] == name))
            .and_then(|parameter| parameter["schema"]["pattern"].as_str())
            .map(str::to_owned)
            .expect("a pattern")
    };
    assert!(pattern("sort").starts_with("^([-+]?"), "empty sort allowed");
    assert!(pattern("page").contains("1000"));
    for query in ["sort=", "sort=-email,,id", "page=2", "page=1,1000"] {
        let reply = app.get(&format!("/v1/hood/profiles?{query}"), &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
    }
}

/// ClientSuccess: bodies are closed, dates are real calendar days (the
/// pattern knows leap years, as the reader does), time zones are the tz
/// database's names, and history paging has the search's bounds.
#[tokio::test]
async fn clientsuccess_document_matches_what_the_server_reads() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    for name in ["ClientSuccessCreateRequest", "ClientSuccessPatchRequest"] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
    let create = &schemas["ClientSuccessCreateRequest"]["properties"];
    // A string with the characters of a tz name, not a 599-value enum
    // (generators made clashing identifiers of `GMT+0`, `GMT-0`, `GMT0`);
    // the server checks the name itself.
    assert_eq!(create["timezone"]["type"], json!(["string", "null"]));
    assert!(create["timezone"]["enum"].is_null());
    let zone = regex::Regex::new(create["timezone"]["pattern"].as_str().expect("tz pattern"))
        .expect("the pattern compiles");
    assert!(zone.is_match("America/Denver") && zone.is_match("Etc/GMT+0"));
    assert!(!zone.is_match("America Denver") && !zone.is_match(""));
    let pattern = create["inceptionDate"]["pattern"]
        .as_str()
        .expect("date pattern");
    let date = regex::Regex::new(pattern).expect("the pattern compiles");

    let app = TestApp::spawn().await;
    let token = app.admin("acme", "user_admin").await;
    for day in [
        "2024-02-29",
        "2000-02-29",
        "2023-02-29",
        "1900-02-29",
        "2023-04-31",
    ] {
        let reply = app
            .post(
                "/v2/client",
                &token,
                &json!({"name": "Acme", "status": "ACTIVE", "active": true,
                        "inceptionDate": day}),
            )
            .await;
        assert_eq!(
            reply.status == StatusCode::CREATED,
            date.is_match(day),
            "{day}: the server and the document agree ({})",
            reply.text
        );
    }
    let get = &document["paths"]["/v2/client/{uuid}"]["get"]["parameters"][0];
    assert_eq!(get["schema"]["format"], "uuid", "{get}");
    let history = &document["paths"]["/v2/client/{uuid}/history"]["get"]["parameters"];
    let size = history
        .as_array()
        .and_then(|all| all.iter().find(|parameter| parameter["name"] == "size"))
        .expect("size");
    assert_eq!(size["schema"]["maximum"], 100);
}

/// Every operation of the three surfaces documents the answers all routes
/// share (401, 429, 500, 503; and 400, 408, 413, 415 where a body is read)
/// in its surface's envelope, and the server's real answers match: status
/// documented, media type as documented, documented headers present.
#[tokio::test]
async fn shared_responses_are_documented_where_they_happen() {
    let document = document();
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        let Some(media_type) = [
            ("/v2/", "application/problem+json"),
            ("/v1/hood/", "application/json"),
            ("/api/", "application/json"),
        ]
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map(|(_, media_type)| *media_type) else {
            continue;
        };
        for (method, operation) in item.as_object().expect("operations") {
            operations += 1;
            let mut statuses = vec!["401", "429", "500", "503"];
            if operation["requestBody"].is_object() {
                statuses.extend(["400", "408", "413", "415"]);
            }
            for status in statuses {
                let response = &operation["responses"][status];
                assert!(
                    response["content"][media_type].is_object(),
                    "{method} {path} documents {status} as {media_type}: {response}"
                );
            }
            assert!(
                operation["responses"]["401"]["headers"]["WWW-Authenticate"].is_object(),
                "{method} {path}"
            );
        }
    }
    assert!(operations >= 20, "{operations} operations checked");

    let app = TestApp::spawn().await;
    let token = app.admin("acme", "user_admin").await;
    // (method, path, content type sent, expected status); the 415 probes
    // authenticate, the 401 ones do not.
    let probes = [
        ("POST", "/v2/client", "application/json", "401"),
        ("POST", "/v2/client", "text/plain", "415"),
        ("GET", "/v1/hood/profiles", "application/json", "401"),
        ("POST", "/v1/hood/profile-lists", "text/xml", "415"),
        ("GET", "/api/v1/entities/icps", "application/json", "401"),
        ("POST", "/api/v1/entities/icps", "text/csv", "415"),
    ];
    for (method, path, content_type, status) in probes {
        let body = json!({});
        let reply = app
            .send_with(
                method.parse().expect("method"),
                path,
                (status == "415").then_some(token.as_str()),
                Some(&body),
                &[("content-type", content_type)],
            )
            .await;
        assert_eq!(
            reply.status.as_str(),
            status,
            "{method} {path}: {}",
            reply.text
        );
        let documented = &document["paths"][path][method.to_lowercase()]["responses"][status];
        let media_type = reply.header("content-type").expect("a media type");
        assert!(
            documented["content"][&media_type].is_object(),
            "{method} {path} {status}: {media_type} is documented: {documented}"
        );
        for name in documented["headers"].as_object().expect("headers").keys() {
            let required = ["X-Request-Id", "WWW-Authenticate"];
            if required.contains(&name.as_str()) {
                assert!(
                    reply.header(name).is_some(),
                    "{method} {path} {status} sends {name}"
                );
            }
        }
    }
}

/// PostgreSQL's JSONB prints a stored double as a plain decimal
/// (`17976931348623157000…0`); serde_json's fast float parsing read that
/// back as infinity and refused it, so one record holding a number near
/// f64::MAX made every list of its kind a 500. Numbers are parsed exactly
/// (serde_json's `float_roundtrip`) and come back as they were stored.
#[tokio::test]
async fn extreme_numbers_in_stored_bodies_read_back() {
    let app = TestApp::spawn().await;
    let token = app.admin("acme", "user_admin").await;
    let numbers = json!([
        1.7976931348623157e308,
        -1.7976931348623157e308,
        5e-324,
        2.2250738585072014e-308
    ]);
    let reply = app
        .post(
            "/v2/client",
            &token,
            &json!({"name": "Acme", "status": "ACTIVE", "active": true,
                    "region": {"n": numbers}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let search = app.get("/v2/client/search", &token).await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.text);
    assert_eq!(search.body["data"][0]["region"]["n"], numbers);

    let icp = json!({"name": "big", "leadProviderCriteria": [
        {"provider": "baseProvider", "filters": {"n": numbers}}]});
    let reply = app.post("/api/v1/entities/icps", &token, &icp).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let list = app.get("/api/v1/entities/icps", &token).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(
        list.body[0]["leadProviderCriteria"][0]["filters"]["n"],
        numbers
    );
}

/// ICP history offsets are int64, as documented: a larger one was accepted
/// and echoed back as a number outside the document's range.
#[tokio::test]
async fn icp_history_offsets_beyond_int64_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.admin("acme", "user_admin").await;
    let icp = json!({"name": "x", "leadProviderCriteria": [
        {"provider": "baseProvider", "filters": {}}]});
    let created = app.post("/api/v1/entities/icps", &token, &icp).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let history = format!("/api/v1/entities/icps/{id}/history");
    let reply = app
        .get(&format!("{history}?offset=9223372036854775807"), &token)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let reply = app
        .get(&format!("{history}?offset=9223372036854775808"), &token)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.body["error"]["details"][0]["path"], json!(["offset"]));
}
