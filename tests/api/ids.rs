//! Numeric ids (ClientSuccess client ids, Hood profile and list ids) are
//! numbered per workspace: another workspace's creates never show in the
//! gaps of a tenant's ids, and a database numbered by the old counter
//! shared by all workspaces goes on without issuing any id twice.

use std::path::Path;

use clientele::app::AppSettings;
use clientele::core::client::Client;
use clientele::core::fields::Declared as _;
use clientele::core::hood::{Profile, ProfileList};
use clientele::core::ratelimit::RateLimits;
use clientele::store;
use clientele::surfaces::clientsuccess::ClientSuccess;
use clientele::surfaces::hood::Hood;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestDatabase};

const CLIENTS: &str = "/v2/client";
const PROFILES: &str = "/v1/hood/profiles";
const LISTS: &str = "/v1/hood/profile-lists";

/// Creates a record and returns its creation body.
async fn create(app: &TestApp, token: &str, path: &str, body: &Value) -> Value {
    let reply = app.post(path, token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{path}: {}", reply.text);
    reply.body
}

async fn client_id(app: &TestApp, token: &str, name: &str) -> i64 {
    let body = json!({"name": name, "status": "ACTIVE", "active": true});
    create(app, token, CLIENTS, &body).await["id"]
        .as_i64()
        .expect("a numeric client id")
}

async fn hood_id(app: &TestApp, token: &str, path: &str, body: &Value) -> String {
    create(app, token, path, body).await["id"]
        .as_str()
        .expect("a numeric-string id")
        .to_owned()
}

fn no_rate_limits() -> AppSettings {
    AppSettings {
        rate_limits: RateLimits {
            by_surface: Default::default(),
        },
        ..AppSettings::default()
    }
}

#[tokio::test]
async fn each_workspace_numbers_from_the_first_id_and_never_sees_anothers_creates() {
    let app = TestApp::spawn().await;
    let acme = app.member("acme", "user_a").await;
    let globex = app.member("globex", "user_g").await;

    // Interleaved creates: each workspace's ids go up by one, from the
    // kind's first number, whatever the other workspace does in between.
    let mut clients = (Vec::new(), Vec::new());
    let mut profiles = (Vec::new(), Vec::new());
    let mut lists = (Vec::new(), Vec::new());
    for round in 0..3 {
        clients
            .0
            .push(client_id(&app, &acme, &format!("Acme {round}")).await);
        for _ in 0..=round {
            // globex creates more each round: acme's gaps must not show it.
            clients
                .1
                .push(client_id(&app, &globex, &format!("Globex {round}")).await);
            profiles.1.push(
                hood_id(
                    &app,
                    &globex,
                    PROFILES,
                    &json!({"email": format!("g{round}-{}@example.com", profiles.1.len())}),
                )
                .await,
            );
        }
        profiles.0.push(
            hood_id(
                &app,
                &acme,
                PROFILES,
                &json!({"email": format!("a{round}@example.com")}),
            )
            .await,
        );
        lists
            .1
            .push(hood_id(&app, &globex, LISTS, &json!({"name": "G"})).await);
        lists
            .0
            .push(hood_id(&app, &acme, LISTS, &json!({"name": "A"})).await);
    }
    assert_eq!(clients.0, [1, 2, 3]);
    assert_eq!(clients.1, [1, 2, 3, 4, 5, 6]);
    assert_eq!(profiles.0, ["1000000", "1000001", "1000002"]);
    assert_eq!(
        profiles.1,
        [
            "1000000", "1000001", "1000002", "1000003", "1000004", "1000005"
        ]
    );
    assert_eq!(lists.0, ["1000000", "1000001", "1000002"]);
    assert_eq!(lists.1, ["1000000", "1000001", "1000002"]);

    // The same id names a different record in each workspace, and every
    // lookup by it (record, history, relations) stays in the caller's.
    let acme_profile = app.get(&format!("{PROFILES}/1000000"), &acme).await;
    let globex_profile = app.get(&format!("{PROFILES}/1000000"), &globex).await;
    assert_eq!(acme_profile.body["email"], "a0@example.com");
    assert_eq!(globex_profile.body["email"], "g0-0@example.com");
    let history = app
        .get(&format!("{PROFILES}/1000000/history"), &globex)
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    assert_eq!(history.body["total"], 1, "{}", history.text);
    let child = create(
        &app,
        &acme,
        CLIENTS,
        &json!({"name": "Child", "status": "ACTIVE", "active": true, "parentClientId": 3}),
    )
    .await;
    assert_eq!(child["id"], 4);
    let acme_client_3 = app
        .get(&format!("{CLIENTS}/search?name=Acme%202"), &acme)
        .await;
    assert_eq!(
        acme_client_3.body["data"][0]["id"], 3,
        "{}",
        acme_client_3.text
    );
    // globex has a client 6; acme has none, so acme cannot name it.
    let orphan = app
        .post(
            CLIENTS,
            &acme,
            &json!({"name": "Orphan", "status": "ACTIVE", "active": true, "parentClientId": 6}),
        )
        .await;
    assert_eq!(orphan.status, StatusCode::BAD_REQUEST, "{}", orphan.text);
    let member = app
        .post(
            PROFILES,
            &globex,
            &json!({"email": "g-member@example.com", "lists": ["1000002"]}),
        )
        .await;
    assert_eq!(member.status, StatusCode::CREATED, "{}", member.text);
    assert_eq!(member.body["id"], "1000006");

    // Deleting acme's 1000000 leaves globex's; acme never issues it again.
    assert_eq!(
        app.delete(&format!("{PROFILES}/1000000"), &acme)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("{PROFILES}/1000000"), &globex)
            .await
            .status,
        StatusCode::OK
    );
    let next = hood_id(
        &app,
        &acme,
        PROFILES,
        &json!({"email": "a-next@example.com"}),
    )
    .await;
    assert_eq!(next, "1000003");
}

/// The migrations that ran before numbering went per workspace: SQLite's
/// 0001–0006, PostgreSQL's 0001–0003.
fn migrations_before_per_workspace_ids() -> (&'static str, i64) {
    match crate::BACKEND {
        Backend::Sqlite => ("sqlite", 7),
        Backend::Postgres => ("postgres", 4),
    }
}

/// Applies the migrations before per-workspace ids to the database at
/// `url`, leaving it as a server of that version would have created it.
async fn migrate_to_the_old_schema(url: &str) {
    let (backend, first_new) = migrations_before_per_workspace_ids();
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let old = tempfile::tempdir().expect("temporary directory");
    for entry in std::fs::read_dir(&source).expect("the migrations") {
        let path = entry.expect("a migration").path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        let version: i64 = name
            .split('_')
            .next()
            .and_then(|number| number.parse().ok())
            .expect("a numbered migration");
        if version < first_new {
            std::fs::copy(&path, old.path().join(name)).expect("copy a migration");
        }
    }
    let migrator = sqlx::migrate::Migrator::new(old.path())
        .await
        .expect("read the old migrations");
    match crate::BACKEND {
        Backend::Sqlite => {
            use sqlx::ConnectOptions;
            use std::str::FromStr;
            let mut connection = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .expect("a SQLite URL")
                .create_if_missing(true)
                .connect()
                .await
                .expect("open the SQLite file");
            migrator.run(&mut connection).await.expect("old migrations");
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(url)
                .await
                .expect("connect to PostgreSQL");
            migrator.run(&mut connection).await.expect("old migrations");
        }
    }
}

/// Runs `script` (several statements) on the database at `url`.
async fn execute(url: &str, script: String) {
    let script = sqlx::AssertSqlSafe(script);
    match crate::BACKEND {
        Backend::Sqlite => {
            use sqlx::ConnectOptions;
            use std::str::FromStr;
            let mut connection = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .expect("a SQLite URL")
                .connect()
                .await
                .expect("open the SQLite file");
            sqlx::raw_sql(script)
                .execute(&mut connection)
                .await
                .expect("the old server's rows");
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut connection = sqlx::PgConnection::connect(url)
                .await
                .expect("connect to PostgreSQL");
            sqlx::raw_sql(script)
                .execute(&mut connection)
                .await
                .expect("the old server's rows");
        }
    }
}

/// SQL that stores a record as the old server did, with its `create` entry
/// in the history.
fn old_record(workspace: &str, kind: &str, id: &str, lookup: Option<&str>, body: &str) -> String {
    let (body, lookup) = (
        body.replace('\'', "''"),
        lookup.map_or("NULL".to_owned(), |lookup| format!("'{lookup}'")),
    );
    format!(
        "INSERT INTO records (workspace_id, kind, id, version, lookup, body, created_at, updated_at) \
         VALUES ('{workspace}', '{kind}', '{id}', 1, {lookup}, '{body}', 1700000000000, 1700000000000);\n{}",
        old_history(workspace, kind, id, "create")
    )
}

fn old_history(workspace: &str, kind: &str, id: &str, action: &str) -> String {
    format!(
        "INSERT INTO history (workspace_id, kind, record_id, version, action, user_id, key_id, \
         request_id, at, changes) VALUES ('{workspace}', '{kind}', '{id}', 1, '{action}', \
         'user_old', NULL, 'old-request', 1700000000000, '[]');\n"
    )
}

fn client_body(id: i64, name: &str, parent: Option<i64>) -> String {
    let mut body = json!({"name": name, "status": "ACTIVE", "active": true});
    if let Some(parent) = parent {
        body["parentClientId"] = json!(parent);
    }
    let client = Client::read_new::<ClientSuccess>(&body)
        .expect("a valid client")
        .with_id(id);
    serde_json::to_string(&client).expect("encode a client")
}

fn profile_body(email: &str, lists: &[&str]) -> String {
    let profile = Profile::read_new::<Hood>(&json!({"email": email, "lists": lists}))
        .expect("a valid profile");
    serde_json::to_string(&profile).expect("encode a profile")
}

fn list_body(name: &str) -> String {
    let list = ProfileList::read_new::<Hood>(&json!({"name": name})).expect("a valid list");
    serde_json::to_string(&list).expect("encode a list")
}

/// A database written by the previous version, whose counters were shared
/// by every workspace, is migrated and served. Each workspace it knew
/// (with a key, with records only — a JWT workspace —, or with history
/// only) continues past the old counter: no id a workspace ever had, its
/// deleted records' included, is issued again, even where a deleted
/// record's id is still referenced. A workspace new to the database starts
/// at the kind's first number.
#[tokio::test]
async fn a_database_numbered_by_the_shared_counter_never_reissues_an_id() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    migrate_to_the_old_schema(&url).await;

    // What the old server left: the shared counters stood at client 4,
    // profile 1000003 and list 1000003.
    // - acme (has a key): clients 1 and 4 (4's parent, 3, was deleted),
    //   list 1000000, list 1000002 deleted but still in profile 1000000's
    //   lists, profile 1000003 deleted.
    // - globex (has a key): client 2, profile 1000001, list 1000001.
    // - initech (JWT only: no workspace row): profile 1000002.
    // - hooli (JWT only, everything deleted): list 1000003, in history only.
    let mut script = String::from(
        "INSERT INTO workspaces (id, created_at) VALUES ('acme', 1700000000000), \
         ('globex', 1700000000000);\n\
         INSERT INTO sequences (name, value) VALUES ('client', 4), ('hood_profile', 1000003), \
         ('hood_profile_list', 1000003);\n",
    );
    script += &old_record(
        "acme",
        "client",
        "00000000-0000-4000-8000-000000000001",
        Some("1"),
        &client_body(1, "Acme One", None),
    );
    script += &old_record(
        "globex",
        "client",
        "00000000-0000-4000-8000-000000000002",
        Some("2"),
        &client_body(2, "Globex Two", None),
    );
    script += &old_history(
        "acme",
        "client",
        "00000000-0000-4000-8000-000000000003",
        "create",
    );
    script += &old_history(
        "acme",
        "client",
        "00000000-0000-4000-8000-000000000003",
        "delete",
    );
    script += &old_record(
        "acme",
        "client",
        "00000000-0000-4000-8000-000000000004",
        Some("4"),
        &client_body(4, "Acme Four", Some(3)),
    );
    script += &old_record(
        "acme",
        "hood_profile_list",
        "1000000",
        None,
        &list_body("Acme list"),
    );
    script += &old_record(
        "globex",
        "hood_profile_list",
        "1000001",
        None,
        &list_body("Globex list"),
    );
    script += &old_history("acme", "hood_profile_list", "1000002", "create");
    script += &old_history("acme", "hood_profile_list", "1000002", "delete");
    script += &old_record(
        "hooli",
        "hood_profile_list",
        "1000003",
        None,
        &list_body("Gone"),
    );
    script += "DELETE FROM records WHERE workspace_id = 'hooli';\n";
    script += &old_history("hooli", "hood_profile_list", "1000003", "delete");
    script += &old_record(
        "acme",
        "hood_profile",
        "1000000",
        None,
        &profile_body("a@example.com", &["1000000", "1000002"]),
    );
    script += &old_history("acme", "hood_profile", "1000003", "create");
    script += &old_history("acme", "hood_profile", "1000003", "delete");
    script += &old_record(
        "globex",
        "hood_profile",
        "1000001",
        None,
        &profile_body("g@example.com", &["1000001"]),
    );
    script += &old_record(
        "initech",
        "hood_profile",
        "1000002",
        None,
        &profile_body("i@example.com", &[]),
    );
    execute(&url, script).await;

    // The new version migrates the database as it opens it.
    let store = store::connect(&url).await.expect("open and migrate");
    let app = TestApp::spawn_with_store(store, database, no_rate_limits()).await;
    let acme = app.member("acme", "user_a").await;
    let globex = app.member("globex", "user_g").await;
    let initech = app.member("initech", "user_i").await;
    let hooli = app.member("hooli", "user_h").await;
    let newco = app.member("newco", "user_n").await;

    // Known workspaces continue past the old counters, in every kind.
    assert_eq!(client_id(&app, &acme, "Acme Five").await, 5);
    assert_eq!(client_id(&app, &globex, "Globex Five").await, 5);
    assert_eq!(client_id(&app, &acme, "Acme Six").await, 6);
    assert_eq!(client_id(&app, &initech, "Initech").await, 5);
    assert_eq!(
        hood_id(&app, &acme, LISTS, &json!({"name": "Acme new"})).await,
        "1000004"
    );
    assert_eq!(
        hood_id(&app, &hooli, LISTS, &json!({"name": "Hooli new"})).await,
        "1000004"
    );
    assert_eq!(
        hood_id(&app, &acme, PROFILES, &json!({"email": "a2@example.com"})).await,
        "1000004"
    );
    assert_eq!(
        hood_id(
            &app,
            &initech,
            PROFILES,
            &json!({"email": "i2@example.com"})
        )
        .await,
        "1000004"
    );
    assert_eq!(
        hood_id(&app, &globex, PROFILES, &json!({"email": "g2@example.com"})).await,
        "1000004"
    );
    // A workspace the old database never named starts at the first number.
    assert_eq!(client_id(&app, &newco, "Newco").await, 1);
    assert_eq!(
        hood_id(&app, &newco, PROFILES, &json!({"email": "n@example.com"})).await,
        "1000000"
    );
    assert_eq!(
        hood_id(&app, &newco, LISTS, &json!({"name": "Newco"})).await,
        "1000000"
    );

    // What the old server stored reads as before: acme's profile still
    // names the deleted list 1000002, which no new list took; the deleted
    // profile 1000003 stays deleted, its history its own; the child still
    // names its deleted parent 3, which no new client took.
    let profile = app.get(&format!("{PROFILES}/1000000"), &acme).await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);
    assert_eq!(profile.body["lists"], json!(["1000000", "1000002"]));
    assert_eq!(
        app.get(&format!("{LISTS}/1000002"), &acme).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("{PROFILES}/1000003"), &acme).await.status,
        StatusCode::NOT_FOUND
    );
    let acme_admin = app.admin("acme", "boss").await;
    let gone = app
        .get(&format!("{PROFILES}/1000003/history"), &acme_admin)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    assert_eq!(gone.body["total"], 2, "{}", gone.text);
    let acme_clients = app.get(&format!("{CLIENTS}/search?size=100"), &acme).await;
    let clients = acme_clients.body["data"]
        .as_array()
        .expect("a page of clients");
    let child = clients
        .iter()
        .find(|client| client["id"] == 4)
        .expect("client 4");
    assert_eq!(child["parentClientId"], 3);
    let ids: Vec<i64> = acme_clients.body["data"]
        .as_array()
        .expect("a page of clients")
        .iter()
        .filter_map(|client| client["id"].as_i64())
        .collect();
    assert_eq!(ids, [1, 4, 5, 6], "{}", acme_clients.text);
}
