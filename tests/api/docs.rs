//! The pages for people: `/` links to `/docs` and the document; `/docs`
//! loads only this server's own assets, each with its content type and a
//! long cache, and needs no token. What a browser makes of them is
//! `ci/browser-test.sh`'s job.

use reqwest::StatusCode;

use crate::support::TestApp;

/// Every `src="…"` and `href="…"` value of `html`.
fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            let end = rest.find('"').unwrap_or(rest.len());
            found.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    found
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.base_url))
        .send()
        .await
        .expect("request")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_index_links_to_the_reference_and_the_document() {
    let app = TestApp::spawn().await;
    let response = get(&app, "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    let links = links(&response.text().await.expect("body"));
    for expected in ["/docs", "/openapi.json"] {
        assert!(
            links.iter().any(|link| link == expected),
            "/ links to {expected}: {links:?}"
        );
    }
}

#[tokio::test]
async fn the_reference_loads_only_same_origin_assets_each_with_its_type() {
    let app = TestApp::spawn().await;
    // No token: the page is for anyone who can reach the server; the key
    // is typed into the page and sent only with the API requests.
    let response = get(&app, "/docs").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    let policy = header(&response, "content-security-policy");
    assert!(
        policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"),
        "the page may reach this origin only: {policy}"
    );
    let links = links(&response.text().await.expect("body"));

    // Same origin: a path on this server (not `//host`), or inline data.
    for link in &links {
        assert!(
            (link.starts_with('/') && !link.starts_with("//")) || link.starts_with("data:"),
            "/docs references {link}, not on this server"
        );
    }

    let assets: Vec<&String> = links
        .iter()
        .filter(|link| link.starts_with(clientele::http::docs::ASSET_PREFIX))
        .collect();
    for asset in &clientele::http::docs::ASSETS {
        assert!(
            assets.iter().any(|link| link
                .strip_prefix(clientele::http::docs::ASSET_PREFIX)
                .is_some_and(|rest| rest.starts_with(&format!("{}?v=", asset.name)))),
            "{} is loaded by the page: {assets:?}",
            asset.name
        );
    }
    for link in assets {
        let response = get(&app, link).await;
        assert_eq!(response.status(), StatusCode::OK, "{link}");
        let expected_type = if link.contains(".js?") {
            "text/javascript; charset=utf-8"
        } else if link.contains(".css?") {
            "text/css; charset=utf-8"
        } else {
            panic!("{link} has no known type")
        };
        assert_eq!(header(&response, "content-type"), expected_type, "{link}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert!(
            header(&response, "cache-control").contains("immutable"),
            "{link} is named by its hash, so cached for good"
        );
        assert!(!response.bytes().await.expect("body").is_empty(), "{link}");
    }
}

#[tokio::test]
async fn other_paths_keep_their_404() {
    let app = TestApp::spawn().await;
    for path in ["/docs/assets/missing.js", "/docs/", "/index.html"] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(
            body["error"]["code"], "NOT_FOUND",
            "{path}: Lance's envelope"
        );
    }
}
