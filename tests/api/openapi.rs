//! The OpenAPI document: generated from the code, served at
//! `/openapi.json`, printed by `clientele openapi`, and complete.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{TestApp, run_cli};

fn operation<'a>(document: &'a Value, path: &str, method: &str) -> &'a Value {
    let operation = &document["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is documented");
    operation
}

#[tokio::test]
async fn every_route_is_documented_with_its_schemas_and_security() {
    let app = TestApp::spawn().await;
    let reply = app.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/json")
    );
    let document = reply.body;
    assert!(
        document["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1")
    );
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let collection = "/api/v1/entities/icps";
    let item = "/api/v1/entities/icps/{id}";
    for (path, method, statuses) in [
        (collection, "get", &["200", "401"][..]),
        (collection, "post", &["201", "400", "401", "413", "415"][..]),
        (item, "get", &["200", "401", "403", "404"][..]),
        (
            item,
            "patch",
            &["200", "400", "401", "403", "404", "412", "413", "415"][..],
        ),
        (item, "delete", &["204", "401", "403", "404"][..]),
    ] {
        let operation = operation(&document, path, method);
        for status in statuses {
            assert!(
                operation["responses"][status].is_object(),
                "{method} {path} documents {status}"
            );
        }
        assert!(
            operation["security"].is_array(),
            "{method} {path} names its security"
        );
    }
    let profiles = "/v1/hood/profiles";
    let profile = "/v1/hood/profiles/{id}";
    let lists = "/v1/hood/profile-lists";
    let list = "/v1/hood/profile-lists/{id}";
    for (path, method, statuses) in [
        (profiles, "get", &["200", "400", "401", "429"][..]),
        (
            profiles,
            "post",
            &["201", "400", "401", "413", "415", "429"][..],
        ),
        (profile, "get", &["200", "401", "404", "429"][..]),
        (
            profile,
            "patch",
            &["204", "400", "401", "404", "412", "413", "415", "429"][..],
        ),
        (profile, "delete", &["204", "401", "412", "429"][..]),
        (
            "/v1/hood/profiles/{id}/unsubscribe",
            "post",
            &["204", "401", "404", "429"][..],
        ),
        (lists, "get", &["200", "401", "429"][..]),
        (lists, "post", &["201", "400", "401", "429"][..]),
        (list, "get", &["200", "401", "404", "429"][..]),
        (
            list,
            "patch",
            &["204", "400", "401", "404", "412", "429"][..],
        ),
        (list, "delete", &["204", "401", "412", "429"][..]),
    ] {
        let operation = operation(&document, path, method);
        for status in statuses {
            assert!(
                operation["responses"][status].is_object(),
                "{method} {path} documents {status}"
            );
        }
    }
    for schema in [
        "HoodProfileView",
        "HoodProfilePage",
        "UpdateHoodProfileRequest",
        "HoodError",
    ] {
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }

    let patch = operation(&document, item, "patch");
    assert!(patch["requestBody"]["content"]["application/json"]["schema"].is_object());
    for schema in [
        "IcpView",
        "UpdateIcpRequest",
        "CreateIcpRequest",
        "LanceError",
    ] {
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "schema {schema} is in components; have {:?}",
            document["components"]["schemas"]
                .as_object()
                .map(|map| map.keys().collect::<Vec<_>>())
        );
    }
    operation(&document, "/healthz", "get");
    operation(&document, "/readyz", "get");

    // The CLI prints the same document.
    let printed: Value = serde_json::from_str(&run_cli(&["openapi"])).expect("JSON");
    assert_eq!(printed, document);
}

/// The document is the wire contract: it may change only on purpose. The
/// fixture is `clientele openapi` as committed; a change that is intended
/// is blessed with `CLIENTELE_BLESS_OPENAPI=1 cargo test --test api openapi`
/// and named in the commit message.
#[test]
fn the_document_matches_the_committed_snapshot() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openapi.json");
    let openapi = clientele::app::openapi();
    if std::env::var_os("CLIENTELE_BLESS_OPENAPI").is_some() {
        // As `clientele openapi` prints it, so a blessed change diffs small.
        let pretty = openapi.to_pretty_json().expect("JSON");
        std::fs::write(fixture, pretty + "\n").expect("the fixture is writable");
        return;
    }
    let document = serde_json::to_value(openapi).expect("the document is JSON");
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).expect("the fixture is readable"))
            .expect("the fixture is JSON");
    let mut differences = Vec::new();
    differences_between(&committed, &document, String::new(), &mut differences);
    assert!(
        differences.is_empty(),
        "the OpenAPI document differs from tests/fixtures/openapi.json at {} place(s) \
         (bless an intended change with CLIENTELE_BLESS_OPENAPI=1):\n{}",
        differences.len(),
        differences
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Every JSON pointer at which `expected` and `actual` differ, with both values.
fn differences_between(expected: &Value, actual: &Value, at: String, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(left), Value::Object(right)) => {
            let mut keys: Vec<&String> = left.keys().chain(right.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let pointer = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (left.get(key), right.get(key)) {
                    (Some(left), Some(right)) => differences_between(left, right, pointer, out),
                    (Some(_), None) => out.push(format!("{pointer}: removed")),
                    (None, Some(value)) => out.push(format!("{pointer}: added {value}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => {
            for (index, (left, right)) in left.iter().zip(right).enumerate() {
                differences_between(left, right, format!("{at}/{index}"), out);
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("{at}: {expected} -> {actual}")),
    }
}

/// The Hood time filters' patterns accept exactly the days the server
/// reads (every day on the calendar, 29 February in leap years), with or
/// without an operator and a time.
#[test]
fn hood_time_filter_patterns_accept_every_calendar_day() {
    let document = serde_json::to_value(clientele::app::openapi()).expect("JSON");
    let parameters = operation(&document, "/v1/hood/profiles", "get")["parameters"]
        .as_array()
        .expect("parameters")
        .clone();
    for name in ["create_time", "update_time"] {
        let parameter = parameters
            .iter()
            .find(|parameter| parameter["name"] == name)
            .expect("the filter is documented");
        let pattern =
            regex::Regex::new(parameter["schema"]["pattern"].as_str().expect("a pattern"))
                .expect("the pattern compiles");
        let mut day = chrono::NaiveDate::from_ymd_opt(1999, 12, 1).expect("a date");
        let last = chrono::NaiveDate::from_ymd_opt(2101, 3, 1).expect("a date");
        while day <= last {
            let text = day.format("%Y-%m-%d").to_string();
            assert!(pattern.is_match(&text), "{name}: {text}");
            assert!(
                pattern.is_match(&format!("gte:{text} 23:59:59")),
                "{name}: {text}"
            );
            day = day.succ_opt().expect("a next day");
        }
        for impossible in [
            "2023-02-29",
            "2100-02-29",
            "2024-04-31",
            "2024-02-30",
            "2024-13-01",
            "2024-00-10",
        ] {
            assert!(!pattern.is_match(impossible), "{name}: {impossible}");
        }
    }
}
