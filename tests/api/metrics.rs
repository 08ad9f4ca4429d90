//! `/metrics` on its own listener: scraped before and after known traffic,
//! each exposition parsed by the Prometheus Python client's own parser
//! (`ci/parse_metrics.py` under the interpreter `CLIENTELE_PROMETHEUS_PARSER`
//! names; see `ci/prometheus-parser.sh`), and the counters checked to have
//! moved by exactly the traffic sent. Without the parser the test says so
//! and stops after the checks it can make alone, unless
//! `CLIENTELE_TEST_REQUIRE_PROMETHEUS_PARSER=1` (CI), which fails instead.

use std::collections::HashMap;

use clientele::app::AppSettings;
use clientele::core::ratelimit::{PolicySetting, RateLimits};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::support::{ICPS, TestApp, create_icp, icp_path, minimal_icp};

const PROFILES: &str = "/v1/hood/profiles";
const REQUESTS: &str = "clientele_http_requests_total";
const DURATIONS: &str = "clientele_http_request_duration_seconds";

#[derive(Debug, Deserialize)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: serde_json::Value,
}

/// One exposition as the Prometheus parser read it.
#[derive(Debug, Deserialize)]
struct Exposition {
    /// Family name → type (`counter`, `histogram`, …).
    families: HashMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    /// The samples named `name` whose labels include every one of `labels`.
    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |sample| {
            sample.name == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
        })
    }

    /// The one sample named `name` with exactly `labels`; 0 when absent
    /// (a series appears with its first observation).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self
            .matching(name, labels)
            .filter(|sample| sample.labels.len() == labels.len())
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} is listed twice");
        found.first().map_or(0.0, |sample| number(&sample.value))
    }
}

fn number(value: &serde_json::Value) -> f64 {
    match value {
        serde_json::Value::String(text) if text == "+Inf" => f64::INFINITY,
        other => other.as_f64().unwrap_or(f64::NAN),
    }
}

/// The Python that has the Prometheus client, or `None` (said loudly)
/// when none is configured and none is required.
fn prometheus_parser() -> Option<String> {
    let Ok(python) = std::env::var("CLIENTELE_PROMETHEUS_PARSER") else {
        assert!(
            std::env::var("CLIENTELE_TEST_REQUIRE_PROMETHEUS_PARSER").as_deref() != Ok("1"),
            "CLIENTELE_PROMETHEUS_PARSER is not set (a Python with `prometheus_client`; see ci/prometheus-parser.sh)"
        );
        eprintln!(
            "SKIPPED: parsing /metrics with the Prometheus client, and the checks of its counts \
             (set CLIENTELE_PROMETHEUS_PARSER=$(ci/prometheus-parser.sh))"
        );
        return None;
    };
    Some(python)
}

/// `text` as the Prometheus client's parser reads it.
fn parse_with_prometheus(python: &str, text: &str) -> Exposition {
    let samples = crate::support::run_ci_python(
        python,
        "parse_metrics.py",
        text.as_bytes(),
        &format!("the Prometheus parser refused /metrics\n{text}"),
    );
    serde_json::from_slice(&samples).expect("the parser's JSON")
}

async fn scrape(app: &TestApp) -> String {
    let url = app.metrics_url.as_deref().expect("a metrics listener");
    let response = app.client.get(url).send().await.expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    let media_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(media_type, "text/plain; version=0.0.4; charset=utf-8");
    response.text().await.expect("the exposition")
}

#[tokio::test]
async fn metrics_count_each_request_by_route_template_and_status_and_the_store_s_commits() {
    // Hood limited to 2 a minute, so the third request below is refused.
    let mut rate_limits = RateLimits {
        by_surface: Default::default(),
    };
    rate_limits.set("hood", "2/1m".parse::<PolicySetting>().expect("policy"));
    let app = TestApp::spawn_with_metrics(AppSettings {
        rate_limits,
        ..AppSettings::default()
    })
    .await;
    let token = app.member("acme", "user_abc123").await;
    // Not on the API's listener, and not in its document.
    let on_api = app.get("/metrics", &token).await;
    assert_eq!(on_api.status, StatusCode::NOT_FOUND);

    let before = scrape(&app).await;

    let id = create_icp(&app, &token, &minimal_icp("Metrics")).await;
    let patched = app
        .patch(&icp_path(&id), &token, &json!({"leadsPerList": 7}))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let missing = app
        .get(&icp_path(&uuid::Uuid::new_v4().to_string()), &token)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let unknown = app.get("/no/such/route/42", &token).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.get(PROFILES, &token).await.status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );

    let after_text = scrape(&app).await;
    assert!(
        !after_text.contains("/no/such"),
        "an unmatched path must not become a label value"
    );
    let Some(python) = prometheus_parser() else {
        return;
    };
    let before = parse_with_prometheus(&python, &before);
    let after = parse_with_prometheus(&python, &after_text);
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };

    for (family, kind) in [
        ("clientele_http_requests", "counter"),
        (DURATIONS, "histogram"),
        ("clientele_rate_limit_rejections", "counter"),
        ("clientele_api_key_cache_lookups", "counter"),
        ("clientele_store_write_batch_size", "histogram"),
        ("clientele_store_commit_duration_seconds", "histogram"),
        ("clientele_store_write_wait_seconds", "histogram"),
        ("clientele_store_write_waiting", "gauge"),
        ("clientele_store_pool_connections", "gauge"),
        ("clientele_store_info", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
    ] {
        assert_eq!(
            after.families.get(family).map(String::as_str),
            Some(kind),
            "family {family}"
        );
    }

    let request = |surface, route, method, status| {
        moved(
            REQUESTS,
            &[
                ("surface", surface),
                ("route", route),
                ("method", method),
                ("status", status),
            ],
        )
    };
    assert_eq!(request("lance", ICPS, "POST", "201"), 1.0);
    assert_eq!(
        request("lance", "/api/v1/entities/icps/{id}", "PATCH", "200"),
        1.0
    );
    assert_eq!(
        request("lance", "/api/v1/entities/icps/{id}", "GET", "404"),
        1.0
    );
    assert_eq!(request("other", "unmatched", "GET", "404"), 1.0);
    assert_eq!(request("hood", PROFILES, "GET", "200"), 2.0);
    assert_eq!(request("hood", PROFILES, "GET", "429"), 1.0);
    // Scrapes are served by the other listener and counted nowhere.
    assert_eq!(
        after.matching(REQUESTS, &[("route", "/metrics")]).count(),
        0
    );

    // The latency histogram of the create: one observation, in buckets
    // that only grow, the last (+Inf) holding it.
    let create = [("surface", "lance"), ("route", ICPS), ("method", "POST")];
    assert_eq!(moved(&format!("{DURATIONS}_count"), &create), 1.0);
    let buckets: Vec<(f64, f64)> = after
        .matching("clientele_http_request_duration_seconds_bucket", &create)
        .map(|sample| {
            let bound = sample.labels.get("le").map_or(f64::NAN, |le| {
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                }
            });
            (bound, number(&sample.value))
        })
        .collect();
    assert!(buckets.len() > 5, "{buckets:?}");
    assert!(
        buckets
            .windows(2)
            .all(|pair| pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1)
    );
    assert_eq!(buckets.last().map(|bucket| bucket.0), Some(f64::INFINITY));
    assert_eq!(
        buckets.last().map(|bucket| bucket.1),
        Some(after.value(&format!("{DURATIONS}_count"), &create))
    );

    assert_eq!(
        moved(
            "clientele_rate_limit_rejections_total",
            &[("surface", "hood")]
        ),
        1.0
    );
    // Six requests were authenticated (the unmatched one never reached a
    // route); each looked its key up once, in the cache or not.
    let lookups = moved(
        "clientele_api_key_cache_lookups_total",
        &[("result", "hit")],
    ) + moved(
        "clientele_api_key_cache_lookups_total",
        &[("result", "miss")],
    );
    assert_eq!(lookups, 6.0, "the key lookups of six requests");

    // The create and the PATCH committed, each in a batch of its own
    // (they were sent one after the other).
    let records = [("writer", "records")];
    assert!(moved("clientele_store_write_batch_size_count", &records) >= 2.0);
    assert!(moved("clientele_store_write_batch_size_sum", &records) >= 2.0);
    assert!(moved("clientele_store_commit_duration_seconds_count", &records) >= 2.0);
    assert!(after.value("clientele_store_commit_duration_seconds_sum", &records) > 0.0);
    let backend = match crate::BACKEND {
        crate::support::Backend::Sqlite => "sqlite",
        crate::support::Backend::Postgres => "postgres",
    };
    assert_eq!(
        after.value("clientele_store_info", &[("backend", backend)]),
        1.0
    );
    assert!(
        after
            .matching("clientele_store_pool_connections", &[("state", "idle")])
            .count()
            >= 1
    );
    assert!(after.value("process_resident_memory_bytes", &[]) > 0.0);
}
