//! The Ocamba Hood contract over HTTP: the seed's PATCH sent as printed,
//! the updatable-field rules, lists, custom properties, idempotent delete,
//! unsubscribe, listing, rate limits, isolation, concurrency and kill -9.

use std::time::Duration;

use clientele::app::AppSettings;
use clientele::core::ratelimit::{PolicySetting, RateLimits};
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::concurrency::{FieldPatch, assert_concurrent_patches_all_persist};
use crate::durability::{KillScenario, assert_patches_survive_sigkill};
use crate::support::{Reply, TestApp};

const PROFILES: &str = "/v1/hood/profiles";
const LISTS: &str = "/v1/hood/profile-lists";

fn profile_path(id: &str) -> String {
    format!("{PROFILES}/{id}")
}

/// The seed's request body; the page's `[email protected]` is the vendor's
/// scraper guard, so a real address stands in for it (contracts.md §3).
fn seed_body() -> Value {
    json!({
        "full_name": "John Doe",
        "mobile_phone_number": "+49658245684",
        "email": "john.doe@example.com",
        "organization_id": "1000",
        "lists": ["1000102"],
        "custom_properties": {"clicker": "1"},
        "comment": "New comment for profile"
    })
}

/// /docs shows the seed's request as the body to try.
#[test]
fn the_documents_patch_example_is_the_seeds() {
    let document = serde_json::to_value(clientele::app::openapi()).expect("JSON");
    assert_eq!(
        document["paths"]["/v1/hood/profiles/{id}"]["patch"]["requestBody"]["content"]["application/json"]
            ["example"],
        seed_body()
    );
}

fn bad_request(reply: &Reply, errors: Value) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.body["code"], 400);
    assert_eq!(reply.body["title"], "Bad request.");
    assert_eq!(
        reply.body["trace_id"].as_str(),
        reply.header("x-request-id").as_deref(),
        "trace_id is the request id"
    );
    assert_eq!(reply.body["errors"], errors, "{}", reply.text);
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("The request is not valid."),
        "{message}"
    );
}

async fn create(app: &TestApp, token: &str, path: &str, body: &Value) -> String {
    let reply = app.post(path, token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body["id"].as_str().expect("an id").to_owned()
}

async fn create_profile(app: &TestApp, token: &str, email: &str) -> String {
    create(app, token, PROFILES, &json!({"email": email})).await
}

async fn create_list(app: &TestApp, token: &str, name: &str) -> String {
    create(app, token, LISTS, &json!({"name": name})).await
}

async fn member_app() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    (app, token)
}

#[tokio::test]
async fn the_seed_request_sent_as_printed_answers_204_and_get_shows_every_field() {
    let (app, token) = member_app().await;
    // The seed names list 1000102; ids are numbered from 1000000.
    let mut list_id = String::new();
    while list_id != "1000102" {
        list_id = create_list(&app, &token, "Newsletter").await;
        assert!(
            list_id.as_str() <= "1000102",
            "ids go up one by one: {list_id}"
        );
    }
    let id = create(
        &app,
        &token,
        PROFILES,
        &json!({"email": "old@example.com", "custom_properties": {"plan": "pro"}}),
    )
    .await;

    // The seed's curl: PATCH with these two headers and the body as printed.
    let response = app
        .client
        .patch(format!("{}{}", app.base_url, profile_path(&id)))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(seed_body().to_string())
        .send()
        .await
        .expect("sent");
    let reply = TestApp::reply(response).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert_eq!(reply.text, "");
    assert_eq!(reply.header("etag").as_deref(), Some("\"2\""));

    let fetched = app.get(&profile_path(&id), &token).await;
    assert_eq!(fetched.status, StatusCode::OK);
    let body = &fetched.body;
    assert_eq!(body["id"], json!(id));
    assert_eq!(body["full_name"], "John Doe");
    assert_eq!(body["mobile_phone_number"], "+49658245684");
    assert_eq!(body["country_code"], "DE");
    assert_eq!(body["email"], "john.doe@example.com");
    assert_eq!(body["organization_id"], "1000");
    assert_eq!(body["lists"], json!(["1000102"]));
    assert_eq!(
        body["custom_properties"],
        json!({"plan": "pro", "clicker": "1"})
    );
    assert_eq!(body["comment"], "New comment for profile");
    assert_eq!(body["unsubscribed"], false);
    for time in ["create_time", "update_time"] {
        let text = body[time].as_str().unwrap_or_default();
        assert!(
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").is_ok(),
            "{time}: {text}"
        );
    }
}

#[tokio::test]
async fn the_seeds_hidden_email_is_refused_as_not_an_address() {
    let (app, token) = member_app().await;
    let id = create_profile(&app, &token, "a@example.com").await;
    let reply = app
        .patch(
            &profile_path(&id),
            &token,
            &json!({"email": "[email protected]"}),
        )
        .await;
    bad_request(
        &reply,
        json!([{"field": "email", "message": "Must be a valid email address"}]),
    );
}

#[tokio::test]
async fn an_empty_patch_is_400_naming_the_updatable_fields() {
    let (app, token) = member_app().await;
    let id = create_profile(&app, &token, "a@example.com").await;
    let reply = app.patch(&profile_path(&id), &token, &json!({})).await;
    bad_request(
        &reply,
        json!([{
            "field": "(body)",
            "message": "At least one of the updatable fields must be sent: email, mobile_phone_number, full_name, organization_id, lists, comment, custom_properties"
        }]),
    );
    let no_body = app
        .send_with(
            Method::PATCH,
            &profile_path(&id),
            Some(&token),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(no_body.status, StatusCode::BAD_REQUEST, "{}", no_body.text);
}

#[tokio::test]
async fn read_only_and_unknown_fields_are_400_and_change_nothing() {
    let (app, token) = member_app().await;
    let id = create_profile(&app, &token, "a@example.com").await;
    let reply = app
        .patch(
            &profile_path(&id),
            &token,
            &json!({"country_code": "FR", "full_name": "Ann", "colour": "red"}),
        )
        .await;
    bad_request(
        &reply,
        json!([
            {"field": "colour", "message": "Unrecognized key: \"colour\""},
            {"field": "country_code", "message": "\"country_code\" is read-only and cannot be set"}
        ]),
    );
    let fetched = app.get(&profile_path(&id), &token).await;
    assert_eq!(fetched.body["full_name"], Value::Null);
    assert_eq!(fetched.header("etag").as_deref(), Some("\"1\""));
}

#[tokio::test]
async fn every_invalid_field_is_listed() {
    let (app, token) = member_app().await;
    let id = create_profile(&app, &token, "a@example.com").await;
    let reply = app
        .patch(
            &profile_path(&id),
            &token,
            &json!({
                "email": "nope",
                "mobile_phone_number": "0049 658",
                "organization_id": 1000,
                "lists": ["abc"],
                "custom_properties": {"nested": {"a": 1}},
                "full_name": "x".repeat(256),
            }),
        )
        .await;
    bad_request(
        &reply,
        json!([
            {"field": "email", "message": "Must be a valid email address"},
            {"field": "mobile_phone_number", "message": "Must be a valid phone number in E.164 format, e.g. +14155552671"},
            {"field": "full_name", "message": "String must contain at most 255 character(s)"},
            {"field": "organization_id", "message": "Expected string, received number"},
            {"field": "lists[0]", "message": "Must be a numeric string, e.g. \"1000\""},
            {"field": "custom_properties.nested", "message": "Expected string, number, boolean or null, received object"}
        ]),
    );
}

#[tokio::test]
async fn lists_must_name_existing_profile_lists_of_the_workspace() {
    let (app, token) = member_app().await;
    let list = create_list(&app, &token, "VIP").await;
    let other_workspace = app.member("globex", "user_1").await;
    // Ids are numbered per workspace: globex's second list has an id that
    // no list of acme has.
    create_list(&app, &other_workspace, "Theirs").await;
    let foreign_list = create_list(&app, &other_workspace, "Theirs too").await;
    let id = create_profile(&app, &token, "a@example.com").await;

    let reply = app
        .patch(
            &profile_path(&id),
            &token,
            &json!({"lists": [list, "999999999", foreign_list]}),
        )
        .await;
    bad_request(
        &reply,
        json!([
            {"field": "lists[1]", "message": "Profile list 999999999 does not exist"},
            {"field": "lists[2]", "message": format!("Profile list {foreign_list} does not exist")}
        ]),
    );
    let ok = app
        .patch(&profile_path(&id), &token, &json!({"lists": [list, list]}))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.text);
    assert_eq!(
        app.get(&profile_path(&id), &token).await.body["lists"],
        json!([list])
    );

    let new = app
        .post(
            PROFILES,
            &token,
            &json!({"email": "b@example.com", "lists": ["42"]}),
        )
        .await;
    bad_request(
        &new,
        json!([{"field": "lists[0]", "message": "Profile list 42 does not exist"}]),
    );
}

#[tokio::test]
async fn custom_properties_merge_key_by_key_and_null_removes_a_key() {
    let (app, token) = member_app().await;
    let id = create(
        &app,
        &token,
        PROFILES,
        &json!({"email": "a@example.com", "custom_properties": {"a": "1", "b": 2}}),
    )
    .await;
    let path = profile_path(&id);
    let reply = app
        .patch(
            &path,
            &token,
            &json!({"custom_properties": {"b": null, "c": true}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert_eq!(
        app.get(&path, &token).await.body["custom_properties"],
        json!({"a": "1", "c": true})
    );
    // The bound holds after the merge: 98 more keys make 100, one more is 101.
    let many: serde_json::Map<String, Value> = (0..98)
        .map(|index| (format!("k{index}"), json!(index)))
        .collect();
    let reply = app
        .patch(&path, &token, &json!({"custom_properties": many}))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let reply = app
        .patch(
            &path,
            &token,
            &json!({"custom_properties": {"one_too_many": 1}}),
        )
        .await;
    bad_request(
        &reply,
        json!([{"field": "custom_properties", "message": "A profile holds at most 100 custom properties; this update would make 101"}]),
    );
    let reply = app
        .patch(&path, &token, &json!({"custom_properties": null}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn clearing_the_last_contact_is_refused_and_phone_sets_country() {
    let (app, token) = member_app().await;
    let id = create_profile(&app, &token, "a@example.com").await;
    let path = profile_path(&id);
    let reply = app.patch(&path, &token, &json!({"email": null})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = app
        .patch(
            &path,
            &token,
            &json!({"mobile_phone_number": "+14155552671", "email": null}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let body = app.get(&path, &token).await.body;
    assert_eq!(
        (body["email"].clone(), body["country_code"].clone()),
        (Value::Null, json!("US"))
    );
    let created = app
        .post(PROFILES, &token, &json!({"full_name": "Nobody"}))
        .await;
    bad_request(
        &created,
        json!([{"field": "email", "message": "Required: a profile needs an email or a mobile_phone_number"}]),
    );
}

#[tokio::test]
async fn delete_is_idempotent() {
    let (app, token) = member_app().await;
    let id = create_profile(&app, &token, "a@example.com").await;
    for _ in 0..2 {
        let reply = app.delete(&profile_path(&id), &token).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert_eq!(reply.text, "");
    }
    assert_eq!(
        app.get(&profile_path(&id), &token).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&profile_path("not-a-number"), &token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn an_unsubscribed_email_or_number_cannot_start_a_new_profile() {
    let (app, token) = member_app().await;
    let id = create(
        &app,
        &token,
        PROFILES,
        &json!({"email": "Ann@Example.com", "mobile_phone_number": "+49658245684"}),
    )
    .await;
    let path = format!("{}/unsubscribe", profile_path(&id));
    for _ in 0..2 {
        let reply = app.send(Method::POST, &path, Some(&token), None).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    }
    let body = app.get(&profile_path(&id), &token).await.body;
    assert_eq!(body["unsubscribed"], true);
    assert!(body["unsubscribe_time"].is_string());

    let again = app
        .post(PROFILES, &token, &json!({"email": "ann@example.com"}))
        .await;
    bad_request(
        &again,
        json!([{"field": "email", "message": "ann@example.com has unsubscribed and cannot be used for a new profile"}]),
    );
    let by_phone = app
        .post(
            PROFILES,
            &token,
            &json!({"mobile_phone_number": "+49658245684"}),
        )
        .await;
    bad_request(
        &by_phone,
        json!([{"field": "mobile_phone_number", "message": "+49658245684 has unsubscribed and cannot be used for a new profile"}]),
    );
    // Suppression is per workspace.
    let elsewhere = app.member("globex", "user_1").await;
    let reply = app
        .post(PROFILES, &elsewhere, &json!({"email": "ann@example.com"}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let missing = app
        .send(
            Method::POST,
            &format!("{PROFILES}/424242/unsubscribe"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Pages in the second half of a list are read from its end; every page,
/// in every order, must still be the matching slice of the whole list, and
/// the total must follow creates and deletes.
#[tokio::test]
async fn every_page_is_its_slice_of_the_whole_order() {
    let (app, token) = member_app().await;
    let mut ids = Vec::new();
    // Two without a name: missing values sort first ascending, last descending.
    for name in ["Gus", "", "Ann", "Fay", "", "Cleo", "Bob"] {
        let mut body = json!({"email": format!("p{}@example.com", ids.len())});
        if !name.is_empty() {
            body["full_name"] = json!(name);
        }
        ids.push(create(&app, &token, PROFILES, &body).await);
    }
    let ids_of = |reply: &Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| item["id"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    for sort in ["", "&sort=full_name", "&sort=-full_name", "&sort=-id"] {
        let whole = app
            .get(&format!("{PROFILES}?page=1,100{sort}"), &token)
            .await;
        let whole = ids_of(&whole);
        assert_eq!(whole.len(), 7, "sort {sort:?}");
        for size in 1..=4 {
            let mut paged = Vec::new();
            for page in 1..=8usize.div_ceil(size) {
                let reply = app
                    .get(&format!("{PROFILES}?page={page},{size}{sort}"), &token)
                    .await;
                assert_eq!(reply.status, StatusCode::OK);
                assert_eq!(reply.body["total"], 7);
                paged.extend(ids_of(&reply));
            }
            assert_eq!(paged, whole, "sort {sort:?}, pages of {size}");
        }
    }
    assert_eq!(
        app.delete(&profile_path(&ids[0]), &token).await.status,
        StatusCode::NO_CONTENT
    );
    let after = app.get(&format!("{PROFILES}?page=3,2"), &token).await;
    assert_eq!(after.body["total"], 6);
    assert_eq!(ids_of(&after), ids[5..7]);
}

/// SQLite keeps the totals of single-value filters on some fields; they
/// must follow every create, change and delete, in every workspace.
#[tokio::test]
async fn filtered_totals_follow_creates_changes_and_deletes() {
    let (app, token) = member_app().await;
    let other_app_token = app.member("globex", "user_abc123").await;
    let total = |reply: Reply| reply.body["total"].clone();
    let mut ids = Vec::new();
    for index in 0..6 {
        let body = json!({
            "email": format!("p{index}@example.com"),
            "organization_id": if index < 4 { "7" } else { "8" },
        });
        ids.push(create(&app, &token, PROFILES, &body).await);
    }
    create(
        &app,
        &other_app_token,
        PROFILES,
        &json!({"email": "p0@example.com", "organization_id": "7"}),
    )
    .await;
    let org = |value: &str| format!("{PROFILES}?organization_id=eq:{value}");
    assert_eq!(total(app.get(&org("7"), &token).await), 4);
    assert_eq!(total(app.get(&org("8"), &token).await), 2);
    assert_eq!(total(app.get(&org("9"), &token).await), 0);
    let email = format!("{PROFILES}?email=eq:p1@example.com");
    assert_eq!(total(app.get(&email, &token).await), 1);

    // Moving one profile to another organization and address moves it.
    let moved = app
        .patch(
            &profile_path(&ids[1]),
            &token,
            &json!({"organization_id": "8", "email": "moved@example.com"}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::NO_CONTENT);
    assert_eq!(total(app.get(&org("7"), &token).await), 3);
    assert_eq!(total(app.get(&org("8"), &token).await), 3);
    assert_eq!(total(app.get(&email, &token).await), 0);
    // A PATCH of other fields leaves the totals alone; removing the field
    // takes the profile out of its organization.
    app.patch(&profile_path(&ids[2]), &token, &json!({"comment": "hi"}))
        .await;
    app.patch(
        &profile_path(&ids[3]),
        &token,
        &json!({"organization_id": null}),
    )
    .await;
    assert_eq!(total(app.get(&org("7"), &token).await), 2);
    // Deleted profiles leave it too.
    app.delete(&profile_path(&ids[0]), &token).await;
    let seven = app.get(&org("7"), &token).await;
    assert_eq!(seven.body["total"], 1);
    assert_eq!(seven.body["items"][0]["id"], json!(ids[2]));
    assert_eq!(total(app.get(&org("8"), &token).await), 3);
    assert_eq!(total(app.get(&org("7"), &other_app_token).await), 1);
}

#[tokio::test]
async fn lists_page_sort_and_filter() {
    let (app, token) = member_app().await;
    let vip = create_list(&app, &token, "VIP").await;
    let mut ids = Vec::new();
    for (index, name) in ["Cleo", "Ann", "Bob", "Dan", "Eve"].iter().enumerate() {
        let mut body =
            json!({"email": format!("{}@example.com", name.to_lowercase()), "full_name": name});
        if index % 2 == 0 {
            body["lists"] = json!([vip]);
        }
        ids.push(create(&app, &token, PROFILES, &body).await);
    }
    let names = |reply: &Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| item["full_name"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let all = app.get(PROFILES, &token).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["total"], 5);
    assert_eq!(names(&all), ["Cleo", "Ann", "Bob", "Dan", "Eve"]);

    let sorted = app
        .get(&format!("{PROFILES}?sort=-full_name&page=1,2"), &token)
        .await;
    assert_eq!(
        (sorted.body["total"].clone(), names(&sorted)),
        (json!(5), vec!["Eve".to_owned(), "Dan".to_owned()])
    );
    let page_3 = app
        .get(&format!("{PROFILES}?sort=full_name&page=3,2"), &token)
        .await;
    assert_eq!(names(&page_3), ["Eve"]);

    let in_vip = app
        .get(&format!("{PROFILES}?lists={vip}&sort=full_name"), &token)
        .await;
    assert_eq!(names(&in_vip), ["Bob", "Cleo", "Eve"]);
    let chosen = app
        .get(
            &format!("{PROFILES}?full_name=in:Ann,Eve&sort=full_name"),
            &token,
        )
        .await;
    assert_eq!(names(&chosen), ["Ann", "Eve"]);
    let above = app
        .get(&format!("{PROFILES}?id=gt:{}&sort=-id", ids[2]), &token)
        .await;
    assert_eq!(names(&above), ["Eve", "Dan"]);
    let not_ann = app
        .get(&format!("{PROFILES}?email=neq:ann@example.com"), &token)
        .await;
    assert_eq!(not_ann.body["total"], 4);

    let bad = app
        .get(&format!("{PROFILES}?password=x&page=0"), &token)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    assert_eq!(bad.body["errors"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn profile_lists_have_their_own_crud() {
    let (app, token) = member_app().await;
    let created = app
        .post(
            LISTS,
            &token,
            &json!({"name": "VIP", "description": "Best", "color": "#33AAFF"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["color"], "#33aaff");
    let id = created.body["id"].as_str().expect("id").to_owned();
    let path = format!("{LISTS}/{id}");
    let patched = app
        .patch(
            &path,
            &token,
            &json!({"description": null, "name": "V.I.P."}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT, "{}", patched.text);
    let fetched = app.get(&path, &token).await;
    assert_eq!(
        (
            fetched.body["name"].clone(),
            fetched.body["description"].clone()
        ),
        (json!("V.I.P."), Value::Null)
    );
    let listed = app.get(LISTS, &token).await;
    assert_eq!(listed.body["total"], 1);
    let bad = app.post(LISTS, &token, &json!({"color": "blue"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.body["errors"].as_array().map(Vec::len),
        Some(2),
        "{}",
        bad.text
    );
    for _ in 0..2 {
        assert_eq!(
            app.delete(&path, &token).await.status,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(app.get(&path, &token).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn other_workspaces_and_bad_tokens_see_nothing() {
    let (app, token) = member_app().await;
    let id = create_profile(&app, &token, "a@example.com").await;
    let outsider = app.admin("globex", "boss").await;
    let reply = app.get(&profile_path(&id), &outsider).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["code"], 404);
    assert_eq!(reply.body["title"], "Not found.");
    assert_eq!(
        reply.body["message"],
        format!("Profile {id} does not exist.")
    );
    let patch = app
        .patch(&profile_path(&id), &outsider, &json!({"full_name": "X"}))
        .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);
    // Idempotent delete answers 204, but the other workspace's record stays.
    assert_eq!(
        app.delete(&profile_path(&id), &outsider).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&profile_path(&id), &token).await.status,
        StatusCode::OK
    );
    assert_eq!(app.get(PROFILES, &outsider).await.body["total"], 0);

    let missing = app.send(Method::GET, PROFILES, None, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.body,
        json!({
            "code": 401,
            "title": "Unauthorized.",
            "message": "Missing Authorization header",
            "trace_id": missing.header("x-request-id").unwrap_or_default()
        })
    );
    let garbage = app.get(PROFILES, "garbage").await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn stale_if_match_is_412() {
    let (app, token) = member_app().await;
    let id = create_profile(&app, &token, "a@example.com").await;
    let path = profile_path(&id);
    let first = app
        .send_with(
            Method::PATCH,
            &path,
            Some(&token),
            Some(&json!({"comment": "1"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(first.status, StatusCode::NO_CONTENT);
    let stale = app
        .send_with(
            Method::PATCH,
            &path,
            Some(&token),
            Some(&json!({"comment": "2"})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(stale.body["code"], 412);
}

/// A malformed `If-Match` is a 400 whether or not the record is there:
/// before this, a DELETE of an absent record answered "already absent"
/// (204) without reading the header (Schemathesis found it).
#[tokio::test]
async fn a_malformed_if_match_is_400_even_for_an_absent_record() {
    let (app, token) = member_app().await;
    for path in [
        "/v1/hood/profile-lists/987654",
        "/v1/hood/profile-lists/not-a-number",
        "/v1/hood/profiles/987654",
    ] {
        for (if_match, status) in [
            ("/\"s", StatusCode::BAD_REQUEST),
            ("\"1\"", StatusCode::NO_CONTENT),
        ] {
            let reply = app
                .send_with(
                    Method::DELETE,
                    path,
                    Some(&token),
                    None,
                    &[("if-match", if_match)],
                )
                .await;
            assert_eq!(reply.status, status, "{path} {if_match}: {}", reply.text);
            if status == StatusCode::BAD_REQUEST {
                assert_eq!(
                    reply.body,
                    json!({
                        "code": 400,
                        "title": "Bad request.",
                        "message": "The request is not valid. If-Match: must be * or entity tags such as \"3\" (the ETag a GET answered), separated by commas",
                        "trace_id": reply.header("x-request-id").unwrap_or_default(),
                    }),
                    "{path}"
                );
            }
        }
    }
}

fn limited(policy: &str) -> AppSettings {
    let mut rate_limits = RateLimits {
        by_surface: Default::default(),
    };
    rate_limits.set("hood", policy.parse::<PolicySetting>().expect("policy"));
    AppSettings {
        rate_limits,
        ..AppSettings::default()
    }
}

async fn burst(app: &TestApp, token: &str, count: usize) -> Vec<Reply> {
    join_all((0..count).map(|_| app.get(PROFILES, token))).await
}

#[tokio::test]
async fn fifteen_requests_in_one_second_let_exactly_ten_through() {
    // The default policy, exactly as a server starts with.
    let app = TestApp::spawn_with(AppSettings::default()).await;
    let token = app.member("acme", "user_abc123").await;
    let replies = burst(&app, &token, 15).await;
    let passed = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::OK)
        .count();
    let refused: Vec<&Reply> = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!((passed, refused.len()), (10, 5));
    for reply in &replies {
        assert_eq!(reply.header("x-ratelimit-limit").as_deref(), Some("10"));
        assert!(reply.header("x-ratelimit-remaining").is_some());
        assert_eq!(reply.header("x-ratelimit-reset").as_deref(), Some("1"));
    }
    for reply in refused {
        assert_eq!(reply.header("retry-after").as_deref(), Some("1"));
        assert_eq!(reply.header("x-ratelimit-remaining").as_deref(), Some("0"));
        assert_eq!(reply.body["code"], 429);
        assert_eq!(reply.body["title"], "Too many requests.");
        assert!(reply.body["trace_id"].is_string());
    }
    // Another workspace has its own budget; other surfaces are not limited.
    let other = app.member("globex", "user_1").await;
    assert_eq!(app.get(PROFILES, &other).await.status, StatusCode::OK);
    let lance = app.get("/api/v1/entities/icps", &token).await;
    assert_eq!(lance.status, StatusCode::OK);
    assert_eq!(lance.header("x-ratelimit-limit"), None);
    // The next second has room again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(app.get(PROFILES, &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_steady_window_counts_across_bursts() {
    // 150 per minute, shrunk to 6 per 2 s so the test need not wait a minute.
    let app = TestApp::spawn_with(limited("10/1s,6/2s")).await;
    let token = app.member("acme", "user_abc123").await;
    let first = burst(&app, &token, 4).await;
    assert!(first.iter().all(|reply| reply.status == StatusCode::OK));
    let second = burst(&app, &token, 4).await;
    let passed = second
        .iter()
        .filter(|reply| reply.status == StatusCode::OK)
        .count();
    assert_eq!(passed, 2, "only 6 fit in the steady window");
    let refused = second
        .iter()
        .find(|reply| reply.status == StatusCode::TOO_MANY_REQUESTS)
        .expect("a refusal");
    assert_eq!(refused.header("x-ratelimit-limit").as_deref(), Some("6"));
    let retry: u64 = refused
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=2).contains(&retry), "{retry}");
    tokio::time::sleep(Duration::from_secs(retry) + Duration::from_millis(100)).await;
    assert_eq!(app.get(PROFILES, &token).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_profile_patches_all_persist() {
    let (app, token) = member_app().await;
    let id = create_profile(&app, &token, "a@example.com").await;
    let patches = (0..50)
        .map(|i| match i % 5 {
            // Most patches each add their own custom property: all must stay.
            0 => FieldPatch {
                body: json!({"full_name": format!("name {i}")}),
                pointer: "/full_name".into(),
                expected: json!(format!("name {i}")),
            },
            1 => FieldPatch {
                body: json!({"comment": format!("comment {i}")}),
                pointer: "/comment".into(),
                expected: json!(format!("comment {i}")),
            },
            _ => FieldPatch {
                body: json!({"custom_properties": {format!("k{i}"): i}}),
                pointer: format!("/custom_properties/k{i}"),
                expected: json!(i),
            },
        })
        .collect();
    assert_concurrent_patches_all_persist(&app, &token, &profile_path(&id), patches).await;
}

#[tokio::test]
async fn an_acknowledged_profile_patch_survives_sigkill() {
    assert_patches_survive_sigkill(KillScenario {
        create_path: PROFILES.to_owned(),
        create_body: json!({"email": "a@example.com"}),
        id_pointer: "/id",
        item_path: profile_path,
        patch: |round| json!({"full_name": format!("round {round}"), "custom_properties": {format!("r{round}"): round}}),
        verify: |body, round| {
            assert_eq!(body["full_name"], json!(format!("round {round}")));
            for earlier in 1..=round {
                assert_eq!(body["custom_properties"][format!("r{earlier}")], json!(earlier));
            }
        },
    })
    .await;
}

/// Each filter value becomes a parameter of the SQL statement and databases
/// bound those (SQLite at 32,766, PostgreSQL at 65,535): a query's filters
/// take at most 1,000 values, beyond which it is a 400 at the parameter,
/// never a 500.
#[tokio::test]
async fn a_query_with_too_many_filter_values_is_400_at_the_parameter() {
    let (app, token) = member_app().await;
    create_profile(&app, &token, "a@example.com").await;
    let many = format!("{PROFILES}?email=in:{}", ",".repeat(32_770));
    let reply = app.get(&many, &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(
        reply.body["errors"],
        json!([{"field": "email", "message":
            "A query's filters take at most 1000 values in all; with this one they have 32771"}])
    );
    let in_all = format!(
        "{PROFILES}?id=in:{}&email=in:{}",
        vec!["1"; 600].join(","),
        vec!["a@example.com"; 401].join(",")
    );
    let reply = app.get(&in_all, &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.body["errors"][0]["field"], "email");
    let at_the_bound = format!(
        "{PROFILES}?id=nin:{}&email=in:{}",
        vec!["1"; 600].join(","),
        vec!["a@example.com"; 400].join(",")
    );
    let reply = app.get(&at_the_bound, &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["total"], 1);
    // Sorting twice by one field cannot change the order; it is not an error.
    let sorted = format!("{PROFILES}?sort={}", vec!["-email"; 5_000].join(","));
    assert_eq!(app.get(&sorted, &token).await.status, StatusCode::OK);
}

/// Filters compare `organization_id` as a 64-bit number, so a larger one is
/// refused where it is written, rather than stored and then matched by a
/// filter on the largest int64.
#[tokio::test]
async fn organization_ids_beyond_int64_are_refused() {
    let (app, token) = member_app().await;
    let too_big = json!({"email": "a@example.com", "organization_id": "9999999999999999999"});
    let reply = app.post(PROFILES, &token, &too_big).await;
    bad_request(
        &reply,
        json!([{"field": "organization_id", "message":
            "Must be at most 9223372036854775807 (organization ids compare as 64-bit numbers)"}]),
    );
    let largest = json!({"email": "b@example.com", "organization_id": "9223372036854775807"});
    let id = create(&app, &token, PROFILES, &largest).await;
    create(
        &app,
        &token,
        PROFILES,
        &json!({"email": "c@example.com", "organization_id": "1"}),
    )
    .await;
    let found = app
        .get(
            &format!("{PROFILES}?organization_id=9223372036854775807"),
            &token,
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(found.body["total"], 1);
    assert_eq!(found.body["items"][0]["id"], json!(id));
}

/// A query string that does not decode is refused in our words, in the
/// surface's envelope, on every surface.
#[tokio::test]
async fn query_strings_that_do_not_decode_are_400_in_our_words() {
    let (app, token) = member_app().await;
    let id = create_profile(&app, &token, "a@example.com").await;
    let expected = "The query string is not valid: it must be URL-encoded UTF-8 (name=value pairs joined by &)";
    let hood = app.get(&format!("{PROFILES}?email=%FF"), &token).await;
    assert_eq!(hood.status, StatusCode::BAD_REQUEST, "{}", hood.text);
    assert_eq!(hood.body["errors"][0]["message"], expected);
    let history = app
        .get(&format!("{}/history?page=%C3", profile_path(&id)), &token)
        .await;
    assert_eq!(history.status, StatusCode::BAD_REQUEST, "{}", history.text);
    let search = app.get("/v2/client/search?name=%FF", &token).await;
    assert_eq!(search.status, StatusCode::BAD_REQUEST, "{}", search.text);
    assert_eq!(search.body["errors"], json!([{"detail": expected}]));
    let icp = crate::support::create_icp(&app, &token, &crate::support::minimal_icp("x")).await;
    let lance = app
        .get(
            &format!("{}/history?limit=%FF", crate::support::icp_path(&icp)),
            &token,
        )
        .await;
    assert_eq!(lance.status, StatusCode::BAD_REQUEST, "{}", lance.text);
    assert_eq!(
        lance.body["error"],
        json!({"code": "BAD_REQUEST", "message": "Invalid query parameters",
               "details": [{"path": [], "message": expected}]})
    );
    let lance = app
        .get(
            &format!(
                "{}/history?limit=ten&offset=-1",
                crate::support::icp_path(&icp)
            ),
            &token,
        )
        .await;
    assert_eq!(
        lance.body["error"],
        json!({"code": "BAD_REQUEST", "message": "Invalid query parameters", "details": [
            {"path": ["limit"], "message": "Expected a whole number between 1 and 1000"},
            {"path": ["offset"], "message": "Expected a whole number between 0 and 9223372036854775807"},
        ]})
    );
}

#[tokio::test]
async fn the_same_patch_again_changes_nothing() {
    let (app, token) = member_app().await;
    let id = create_profile(&app, &token, "a@example.com").await;
    let path = profile_path(&id);
    let change = json!({"comment": "1", "full_name": "Ann"});
    let first = app.patch(&path, &token, &change).await;
    assert_eq!(first.status, StatusCode::NO_CONTENT, "{}", first.text);
    let after_first = app.get(&path, &token).await;
    let history = app.get(&format!("{path}/history"), &token).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    let again = app
        .send_with(
            Method::PATCH,
            &path,
            Some(&token),
            Some(&change),
            &[("if-match", "\"2\"")],
        )
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT, "{}", again.text);
    assert_eq!(again.header("etag").as_deref(), Some("\"2\""));
    let after_again = app.get(&path, &token).await;
    assert_eq!(after_again.body, after_first.body, "update_time unchanged");
    assert_eq!(after_again.header("etag"), after_first.header("etag"));
    assert_eq!(
        app.get(&format!("{path}/history"), &token).await.body,
        history.body
    );
}

/// One answer lists every error: a relation that fails (a list that does
/// not exist) is reported beside the fields that do not read, on create
/// and on PATCH, and nothing is written.
#[tokio::test]
async fn relation_errors_are_listed_beside_field_errors() {
    let (app, token) = member_app().await;
    let reply = app
        .post(PROFILES, &token, &json!({"email": "bad", "lists": ["999"]}))
        .await;
    bad_request(
        &reply,
        json!([
            {"field": "email", "message": "Must be a valid email address"},
            {"field": "lists[0]", "message": "Profile list 999 does not exist"}
        ]),
    );
    let id = create_profile(&app, &token, "a@example.com").await;
    let path = profile_path(&id);
    let reply = app
        .patch(
            &path,
            &token,
            &json!({"email": "bad", "full_name": 7, "lists": ["999", "998"]}),
        )
        .await;
    bad_request(
        &reply,
        json!([
            {"field": "email", "message": "Must be a valid email address"},
            {"field": "full_name", "message": "Expected string, received number"},
            {"field": "lists[0]", "message": "Profile list 999 does not exist"},
            {"field": "lists[1]", "message": "Profile list 998 does not exist"}
        ]),
    );
    let stored = app.get(&path, &token).await;
    assert_eq!(stored.body["email"], "a@example.com");
    assert_eq!(stored.header("etag").as_deref(), Some("\"1\""));
}
