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

/// Rules the server enforces on every string a client sends and on
/// `If-Match` are in the schemas, so a tester drawing from them does not
/// send what is refused.
#[test]
fn request_strings_refuse_nul_and_if_match_states_its_syntax() {
    let document = serde_json::to_value(clientele::app::openapi()).expect("JSON");
    let mut plain = Vec::new();
    let mut if_match = Vec::new();
    let mut pending: Vec<(String, Value)> = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("an item") {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["name"] == "If-Match" {
                    if_match.push(
                        parameter["schema"]["pattern"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
                if parameter["in"] == "query" || parameter["in"] == "path" {
                    pending.push((
                        format!("{method} {path} {}", parameter["name"]),
                        parameter["schema"].clone(),
                    ));
                }
            }
            for content in operation["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flat_map(|c| c.values())
            {
                pending.push((format!("{method} {path} body"), content["schema"].clone()));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some((at, schema)) = pending.pop() {
        walk(&schema, &at, &mut |at, schema| {
            if let Some(name) = schema["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                && seen.insert(name.to_owned())
            {
                pending.push((
                    name.to_owned(),
                    document["components"]["schemas"][name].clone(),
                ));
            }
            let is_string = match &schema["type"] {
                Value::String(single) => single == "string",
                Value::Array(types) => types.iter().any(|kind| kind == "string"),
                // A schema of no type allows strings; one that bounds them
                // (a free-form level) must state the rule too.
                Value::Null => schema.get("maxLength").is_some(),
                _ => false,
            };
            let states_something = ["pattern", "enum", "const"]
                .iter()
                .any(|keyword| schema.get(keyword).is_some())
                || ["date-time", "date", "uuid", "email", "binary"]
                    .iter()
                    .any(|format| schema["format"] == *format);
            if is_string && !states_something {
                plain.push(at.to_owned());
            }
        });
    }
    assert!(
        plain.is_empty(),
        "request strings that allow U+0000: {plain:?}"
    );
    assert!(!if_match.is_empty(), "If-Match is documented");
    for pattern in if_match {
        let pattern = regex::Regex::new(&pattern).expect("the pattern compiles");
        for tag in ["*", "\"1\"", "W/\"1\"", "\"1\", \"2\"", "\"1\",W/\"2\""] {
            assert!(pattern.is_match(tag), "{tag}");
        }
        for text in ["1", "abc", "\"1", "\"a\"b\"", "", "*, \"1\""] {
            assert!(!pattern.is_match(text), "{text}");
        }
    }
    let nul = regex::Regex::new(clientele::surfaces::NO_NUL_PATTERN).expect("compiles");
    assert!(nul.is_match("any text, even ünïcode"));
    assert!(!nul.is_match("a\u{0}b"));
}

/// Calls `visit` on every object of `value` but values (examples), with
/// its JSON pointer.
fn walk(value: &Value, at: &str, visit: &mut dyn FnMut(&str, &Value)) {
    match value {
        Value::Object(map) => {
            visit(at, value);
            for (key, child) in map {
                if !matches!(
                    key.as_str(),
                    "examples" | "example" | "default" | "enum" | "const"
                ) {
                    walk(child, &format!("{at}/{key}"), visit);
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                walk(child, &format!("{at}/{index}"), visit);
            }
        }
        _ => {}
    }
}
