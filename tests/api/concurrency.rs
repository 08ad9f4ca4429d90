//! No lost updates: many simultaneous PATCHes of one record, each naming a
//! different field, all land. [`assert_concurrent_patches_all_persist`] is
//! surface-neutral so every surface runs the same check.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, create_icp, icp_path, seed_icp_create};

/// One PATCH and what it should leave behind: the JSON pointer in the
/// record's GET body and the value there.
pub struct FieldPatch {
    pub body: Value,
    pub pointer: String,
    pub expected: Value,
}

/// Sends every patch at once to `path`, requires all to succeed with an
/// ETag, then checks that for each pointer the GET shows the value of the
/// patch that got the highest version (the last one committed).
pub async fn assert_concurrent_patches_all_persist(
    app: &TestApp,
    token: &str,
    path: &str,
    patches: Vec<FieldPatch>,
) {
    let bases = [app.base_url.clone()];
    assert_patches_persist_across(&app.client, &bases, token, path, patches).await;
}

/// The same check with the patches spread round-robin over several
/// servers (instances sharing one database).
pub async fn assert_patches_persist_across(
    client: &reqwest::Client,
    bases: &[String],
    token: &str,
    path: &str,
    patches: Vec<FieldPatch>,
) {
    let replies = join_all(patches.iter().enumerate().map(|(index, patch)| {
        let url = format!("{}{path}", bases[index % bases.len()]);
        let request = client.patch(url).bearer_auth(token).json(&patch.body);
        async move { TestApp::reply(request.send().await.expect("request sent")).await }
    }))
    .await;
    let mut versions = Vec::new();
    for reply in &replies {
        assert!(reply.status.is_success(), "{} {}", reply.status, reply.text);
        let etag = reply
            .header("etag")
            .expect("an ETag on every successful PATCH");
        let version: u64 = etag.trim_matches('"').parse().expect("numeric ETag");
        versions.push(version);
    }
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        patches.len(),
        "every PATCH got its own version: {versions:?}"
    );

    let current = TestApp::reply(
        client
            .get(format!("{}{path}", bases[0]))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent"),
    )
    .await;
    assert_eq!(current.status, StatusCode::OK);
    let mut last_by_pointer: std::collections::BTreeMap<&str, (u64, &Value)> = Default::default();
    for (patch, version) in patches.iter().zip(&versions) {
        let entry = last_by_pointer
            .entry(patch.pointer.as_str())
            .or_insert((*version, &patch.expected));
        if *version > entry.0 {
            *entry = (*version, &patch.expected);
        }
    }
    for (pointer, (version, expected)) in last_by_pointer {
        assert_eq!(
            current.body.pointer(pointer),
            Some(expected),
            "{pointer} should hold the value of the PATCH at version {version}; body: {}",
            current.body
        );
    }
    let final_version = current.header("etag").expect("ETag");
    assert_eq!(
        final_version,
        format!("\"{}\"", sorted.last().copied().unwrap_or_default())
    );
}

/// Fifty patches, round-robin over all eight writable ICP fields.
fn icp_patches() -> Vec<FieldPatch> {
    (0..50)
        .map(|i| {
            let (body, pointer, expected) = match i % 8 {
                0 => (json!({"name": format!("name {i}")}), "/name", json!(format!("name {i}"))),
                1 => (
                    json!({"description": format!("description {i}")}),
                    "/description",
                    json!(format!("description {i}")),
                ),
                2 => (
                    json!({"userIds": ["user_abc123", format!("user_{i}")]}),
                    "/userIds",
                    json!(["user_abc123", format!("user_{i}")]),
                ),
                3 => (json!({"leadsPerList": i + 1}), "/leadsPerList", json!(i + 1)),
                4 => {
                    let at = format!("2030-01-01T00:00:{i:02}.000Z");
                    (json!({"activeUntil": at}), "/activeUntil", json!(at))
                }
                5 => (
                    json!({"leadProviderCriteria": [{"provider": "baseProvider", "filters": {"n": i}}]}),
                    "/leadProviderCriteria/0/filters",
                    json!({"n": i}),
                ),
                6 => (
                    json!({"customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": i}]}),
                    "/customFilterCriteria/0/value",
                    json!(i),
                ),
                _ => (
                    json!({"crmFilters": {"provider": "bullhorn", "textSearch": format!("text {i}")}}),
                    "/crmFilters/textSearch",
                    json!(format!("text {i}")),
                ),
            };
            FieldPatch {
                body,
                pointer: pointer.to_owned(),
                expected,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_icp_patches_all_persist() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    let id = create_icp(&app, &token, &seed_icp_create()).await;
    assert_concurrent_patches_all_persist(&app, &token, &icp_path(&id), icp_patches()).await;
}

/// Writes that fail inside the storage transaction (here: a profile list
/// that does not exist, found only by the relation check) fail alone, even
/// when committed in one batch with writes that succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_writes_in_a_busy_moment_fail_alone() {
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
    let path = format!(
        "/v1/hood/profiles/{}",
        created.body["id"].as_str().unwrap_or_default()
    );
    let replies = join_all((0..60).map(|i| {
        let body = if i % 2 == 0 {
            json!({"custom_properties": {format!("k{i}"): i}})
        } else {
            json!({"custom_properties": {format!("k{i}"): i}, "lists": ["999999"]})
        };
        let path = path.clone();
        let token = token.clone();
        let app = &app;
        async move { app.patch(&path, &token, &body).await }
    }))
    .await;
    for (i, reply) in replies.iter().enumerate() {
        let expected = if i % 2 == 0 {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(reply.status, expected, "patch {i}: {}", reply.text);
    }
    let profile = app.get(&path, &token).await;
    let properties = profile.body["custom_properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for i in 0..60 {
        assert_eq!(
            properties.contains_key(&format!("k{i}")),
            i % 2 == 0,
            "k{i} in {properties:?}"
        );
    }
    assert_eq!(profile.header("etag").as_deref(), Some("\"31\""));
}
