//! `clientele import` and `clientele export` over a real database (SQLite
//! here, PostgreSQL in `api_postgres`): rows validated as the API validates
//! them, rejects with line and path, upserts by natural key, resuming after
//! a kill, and export → import yielding the same records.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{ServerProcess, TestDatabase, run_cli};

fn clientele(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clientele"))
        .args(args)
        .env_remove("CLIENTELE_DATABASE_URL")
        .output()
        .expect("run clientele")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn import(url: &str, workspace: &str, kind: &str, file: &Path, extra: &[&str]) -> Output {
    let file = file.to_str().expect("UTF-8 path");
    let mut args = vec![
        "import",
        "--database-url",
        url,
        "--workspace",
        workspace,
        "--kind",
        kind,
    ];
    args.extend(extra);
    args.push(file);
    clientele(&args)
}

fn export(url: &str, workspace: &str, kind: &str, format: &str) -> String {
    run_cli(&[
        "export",
        "--database-url",
        url,
        "--workspace",
        workspace,
        "--kind",
        kind,
        "--format",
        format,
    ])
}

/// The exported records without the times an import sets anew, in
/// export order.
fn records_without_times(ndjson: &str) -> Vec<Value> {
    ndjson
        .lines()
        .map(|line| {
            let mut record: Value = serde_json::from_str(line).expect("an NDJSON line");
            let object = record.as_object_mut().expect("an object");
            for time in [
                "createdAt",
                "updatedAt",
                "createdTime",
                "modifiedTime",
                "create_time",
                "update_time",
            ] {
                object.remove(time);
            }
            record
        })
        .collect()
}

fn admin_token(url: &str, workspace: &str) -> String {
    run_cli(&[
        "keys",
        "create",
        "--workspace",
        workspace,
        "--user",
        "ann",
        "--admin",
        "--database-url",
        url,
    ])
    .trim()
    .to_owned()
}

async fn send(
    server: &ServerProcess,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = crate::support::http_client();
    let mut request = client
        .request(method, format!("{}{path}", server.base_url))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_export_imported_elsewhere_gives_the_same_records_in_both_formats() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let token = admin_token(&url, "acme");
    let server = ServerProcess::start(&url);
    use reqwest::Method;
    let (status, list) = send(
        &server,
        &token,
        Method::POST,
        "/v1/hood/profile-lists",
        Some(json!({"name": "Newsletter", "color": "#33aaff"})),
    )
    .await;
    assert_eq!(status, 201, "{list}");
    let list_id = list["id"].as_str().expect("list id").to_owned();
    for (email, phone) in [
        ("a@example.com", Some("+49658245684")),
        ("b@example.com", None),
    ] {
        let mut body = json!({"email": email, "full_name": "Ann \"A\", Jr.", "lists": [list_id],
            "custom_properties": {"plan": "pro", "seats": 5}, "comment": "line one\nline two"});
        if let Some(phone) = phone {
            body["mobile_phone_number"] = json!(phone);
        }
        let (status, profile) = send(
            &server,
            &token,
            Method::POST,
            "/v1/hood/profiles",
            Some(body),
        )
        .await;
        assert_eq!(status, 201, "{profile}");
    }
    let (status, parent) = send(
        &server,
        &token,
        Method::POST,
        "/v2/client",
        Some(
            json!({"name": "Parent", "status": "ACTIVE", "active": true, "externalId": "ext-1",
            "custom": {"tier": "gold"}, "region": {"eu": {"west": true}}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{parent}");
    let (status, child) = send(
        &server,
        &token,
        Method::POST,
        "/v2/client",
        Some(json!({"name": "Child", "status": "TRIAL", "active": false,
            "parentClientId": parent["id"], "npsScore": -3, "inceptionDate": "2024-02-29"})),
    )
    .await;
    assert_eq!(status, 201, "{child}");
    let (status, icp) = send(
        &server,
        &token,
        Method::POST,
        "/api/v1/entities/icps",
        Some(crate::support::seed_icp_create()),
    )
    .await;
    assert_eq!(status, 201, "{icp}");
    drop(server);

    let directory = tempfile::tempdir().expect("temporary directory");
    // Lists before profiles and parents before children: an export is in
    // creation order, and relations are checked on import as on the API.
    for format in ["ndjson", "csv"] {
        let copy = format!("copy-{format}");
        for kind in ["profile-list", "profile", "client", "icp"] {
            let file = directory.path().join(format!("{kind}.{format}"));
            std::fs::write(&file, export(&url, "acme", kind, format)).expect("write the export");
            let output = import(&url, &copy, kind, &file, &["--match", "id"]);
            assert!(
                output.status.success(),
                "import {kind} {format}: {}",
                text(&output.stderr)
            );
            // Sorted by id: rows imported in one millisecond may export in
            // another order than they were created.
            let by_id = |mut records: Vec<Value>| {
                records.sort_by_key(|record| record.to_string());
                records
            };
            let original = by_id(records_without_times(&export(&url, "acme", kind, "ndjson")));
            let imported = by_id(records_without_times(&export(&url, &copy, kind, "ndjson")));
            assert_eq!(imported, original, "{kind} through {format}");
            assert!(!original.is_empty());
        }
    }
}

#[tokio::test]
async fn rows_are_checked_like_api_bodies_and_rejects_name_line_and_path() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let directory = tempfile::tempdir().expect("temporary directory");
    let file = directory.path().join("people.csv");
    let mut csv = b"email,full_name,organization_id,custom_properties.plan\n".to_vec();
    csv.extend(b"ann@example.com,Ann,42,pro\n");
    csv.extend(b"not-an-email,Bob,x,basic\n");
    csv.extend(b"carl@example.com,Carl\n");
    csv.extend(b"dora@example.com,Dora \xff,7,\n");
    csv.extend(b"\"eve@example.com\",\"Eve, \"\"E\"\"\",,{\"nested\":1}\n");
    csv.extend(b"fay@example.com,Fay,,\n");
    std::fs::write(&file, &csv).expect("write");
    let output = import(&url, "acme", "profile", &file, &[]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("6 rows in"), "{stderr}");
    assert!(
        stderr.contains("2 created, 0 updated, 0 unchanged, 4 rejected"),
        "{stderr}"
    );
    assert!(stderr.contains("4 of 6 rows were rejected"), "{stderr}");
    let rejects = std::fs::read_to_string(directory.path().join("people.csv.rejects.ndjson"))
        .expect("the rejects file");
    let rejects: Vec<Value> = rejects
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    assert_eq!(
        rejects,
        vec![
            json!({"line": 3, "errors": [
                {"path": "email", "message": "Must be a valid email address"},
                {"path": "organization_id", "message": "Must be a numeric string, e.g. \"1000\""},
            ]}),
            json!({"line": 4, "errors": [{"path": "(body)", "message": "the row has 2 cells; the header has 4"}]}),
            json!({"line": 5, "errors": [{"path": "full_name", "message": "column 2 is not UTF-8 text"}]}),
            json!({"line": 6, "errors": [{"path": "custom_properties.plan", "message": "Expected string, number, boolean or null, received object"}]}),
        ]
    );
    let exported = records_without_times(&export(&url, "acme", "profile", "ndjson"));
    let emails: Vec<&str> = exported
        .iter()
        .map(|p| p["email"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(emails, ["ann@example.com", "fay@example.com"]);
    assert_eq!(exported[0]["organization_id"], "42");
    assert_eq!(exported[0]["custom_properties"], json!({"plan": "pro"}));

    // History names the import and the file, as for any write.
    let token = admin_token(&url, "acme");
    let server = ServerProcess::start(&url);
    let id = exported[0]["id"].as_str().expect("id");
    let (status, history) = send(
        &server,
        &token,
        reqwest::Method::GET,
        &format!("/v1/hood/profiles/{id}/history"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    let entry = &history["items"][0];
    assert_eq!(entry["action"], "create");
    assert_eq!(entry["user_id"], "import");
    assert!(
        entry["trace_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("import-")),
        "{entry}"
    );
    assert_eq!(entry["client_trace_id"], file.to_str().expect("path"));
}

#[tokio::test]
async fn upserts_by_natural_key_update_skip_unchanged_and_refuse_ambiguity() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let directory = tempfile::tempdir().expect("temporary directory");
    let first = directory.path().join("first.ndjson");
    std::fs::write(&first, concat!(
        "{\"email\":\"ann@example.com\",\"full_name\":\"Ann\"}\n",
        "{\"email\":\"bob@example.com\",\"full_name\":\"Bob\",\"custom_properties\":{\"a\":1}}\n",
        "{\"email\":\"twin@example.com\"}\n{\"email\":\"twin@example.com\"}\n",
    )).expect("write");
    let output = import(&url, "acme", "profile", &first, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let second = directory.path().join("second.ndjson");
    std::fs::write(
        &second,
        concat!(
            "{\"email\":\"ann@example.com\",\"full_name\":\"Ann\"}\n",
            "{\"email\":\"bob@example.com\",\"custom_properties\":{\"b\":2}}\n",
            "{\"email\":\"cy@example.com\",\"full_name\":\"Cy\"}\n",
            "{\"email\":\"twin@example.com\",\"full_name\":\"Which?\"}\n",
            "{\"full_name\":\"No key\"}\n",
        ),
    )
    .expect("write");
    let output = import(&url, "acme", "profile", &second, &["--match", "email"]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("1 created, 1 updated, 1 unchanged, 2 rejected"),
        "{stderr}"
    );
    let profiles = records_without_times(&export(&url, "acme", "profile", "ndjson"));
    assert_eq!(profiles.len(), 5);
    let bob = profiles
        .iter()
        .find(|p| p["email"] == "bob@example.com")
        .expect("bob");
    assert_eq!(
        bob["custom_properties"],
        json!({"a": 1, "b": 2}),
        "merged as a PATCH merges"
    );
    assert_eq!(bob["full_name"], "Bob", "fields the row leaves out stay");
    let twins: Vec<&str> = profiles
        .iter()
        .filter(|p| p["email"] == "twin@example.com")
        .map(|p| p["id"].as_str().unwrap_or_default())
        .collect();
    let rejects = std::fs::read_to_string(directory.path().join("second.ndjson.rejects.ndjson"))
        .expect("rejects");
    let rejects: Vec<Value> = rejects
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(
        rejects[0],
        json!({"line": 4, "errors": [{"path": "email",
        "message": format!("twin@example.com matches more than one record ({} and {}); fix the duplicates first", twins[0], twins[1])}]})
    );
    assert_eq!(
        rejects[1],
        json!({"line": 5, "errors": [{"path": "email",
        "message": "required to match records by email"}]})
    );

    // The same file again changes nothing more: a finished file is not
    // imported twice, and with --again every matched row is unchanged.
    let output = import(&url, "acme", "profile", &second, &["--match", "email"]);
    assert!(output.status.success());
    assert!(text(&output.stderr).contains("nothing to do"));
    let output = import(
        &url,
        "acme",
        "profile",
        &second,
        &["--match", "email", "--again"],
    );
    assert!(
        text(&output.stderr).contains("0 created, 0 updated, 3 unchanged, 2 rejected"),
        "{}",
        text(&output.stderr)
    );
    let wrong = import(&url, "acme", "profile", &second, &["--match", "full_name"]);
    assert!(text(&wrong.stderr).contains("cannot match hood_profile by \"full_name\"; choose one of: id, email, mobile_phone_number"),
        "{}", text(&wrong.stderr));
}

#[tokio::test]
async fn a_killed_import_resumes_after_its_last_batch_without_duplicates() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let directory = tempfile::tempdir().expect("temporary directory");
    let file = directory.path().join("many.csv");
    const ROWS: usize = 20_000;
    let mut csv = String::from("email,full_name\n");
    for row in 0..ROWS {
        csv.push_str(&format!("p{row}@example.com,Person {row}\n"));
    }
    std::fs::write(&file, csv).expect("write");
    // Migrated first: two processes must not both create a new file's
    // tables (the export below polls while the import runs).
    run_cli(&["migrate", "--database-url", &url]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_clientele"))
        .args([
            "import",
            "--database-url",
            &url,
            "--workspace",
            "acme",
            "--kind",
            "profile",
            "--batch-rows",
            "200",
            file.to_str().expect("path"),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the import");
    // Kill it once some batches are committed, before it can finish.
    let mut killed_midway = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if child.try_wait().expect("poll").is_some() {
            break;
        }
        let exported = export(&url, "acme", "profile", "ndjson").lines().count();
        if exported > 0 {
            child.kill().expect("SIGKILL");
            killed_midway = true;
            break;
        }
    }
    let _ = child.wait();
    let output = import(&url, "acme", "profile", &file, &["--batch-rows", "200"]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Without a kill part-way the test would prove nothing about resuming.
    assert!(
        killed_midway,
        "the first run ended before it could be killed"
    );
    assert!(
        stderr.contains("Resuming: an earlier run of this file committed every row up to line"),
        "{stderr}"
    );
    let exported = export(&url, "acme", "profile", "ndjson");
    let mut emails: Vec<String> = exported
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).expect("JSON")["email"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(emails.len(), ROWS, "every row once, none twice");
    emails.sort();
    emails.dedup();
    assert_eq!(emails.len(), ROWS);
}

#[tokio::test]
async fn bad_files_say_what_is_wrong_and_write_nothing_they_refuse() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let directory = tempfile::tempdir().expect("temporary directory");
    let write = |name: &str, bytes: &[u8]| {
        let path = directory.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let cases: Vec<(&str, std::path::PathBuf, &str)> = vec![
        (
            "unknown column",
            write("unknown.csv", b"email,colour\na@example.com,red\n"),
            "line 1: column 2 (\"colour\") is not a field of this kind",
        ),
        (
            "binary",
            write("image.csv", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            "line 1: column 1 of the header is not UTF-8 text; is this a CSV file?",
        ),
        ("empty", write("empty.csv", b""), "the file is empty"),
        (
            "unknown format",
            write("people.txt", b"email\n"),
            "pass --format csv or --format ndjson",
        ),
    ];
    for (what, path, expected) in cases {
        let output = import(&url, "acme", "profile", &path, &[]);
        assert!(!output.status.success(), "{what}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(expected), "{what}: {stderr}");
    }
    // A cell of 100 MB stops the file at its line, after the rows before
    // it are committed; nothing of that row is written.
    let mut huge = b"email,comment\nfirst@example.com,ok\nsecond@example.com,\"".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 100 * 1024 * 1024));
    huge.extend(b"\"\nthird@example.com,late\n");
    let path = write("huge.csv", &huge);
    let output = import(&url, "acme", "profile", &path, &[]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("line 3: a row longer than 1 MiB"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Every row up to line 2 is committed"),
        "{stderr}"
    );
    let exported = records_without_times(&export(&url, "acme", "profile", "ndjson"));
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0]["email"], "first@example.com");

    let header_only = write("header.csv", b"email,full_name\n");
    let output = import(&url, "acme", "profile", &header_only, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("0 rows in"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn ctrl_c_stops_after_the_current_batch_and_says_how_to_resume() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let directory = tempfile::tempdir().expect("temporary directory");
    let file = directory.path().join("many.ndjson");
    const ROWS: usize = 20_000;
    let mut ndjson = String::new();
    for row in 0..ROWS {
        ndjson.push_str(&format!("{{\"email\":\"q{row}@example.com\"}}\n"));
    }
    std::fs::write(&file, ndjson).expect("write");
    run_cli(&["migrate", "--database-url", &url]);
    let child = Command::new(env!("CARGO_BIN_EXE_clientele"))
        .args([
            "import",
            "--database-url",
            &url,
            "--workspace",
            "acme",
            "--kind",
            "profile",
            "--batch-rows",
            "100",
            file.to_str().expect("path"),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the import");
    let pid = child.id().to_string();
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if !export(&url, "acme", "profile", "ndjson").is_empty() {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let output = child.wait_with_output().expect("the import ends");
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("stopped by Ctrl-C after line"), "{stderr}");
    assert!(
        stderr.contains("Run the same command again to resume"),
        "{stderr}"
    );
    let imported = export(&url, "acme", "profile", "ndjson").lines().count();
    assert!(imported < ROWS, "it stopped early: {imported}");
    assert_eq!(imported % 100, 0, "whole batches only: {imported}");
    let output = import(&url, "acme", "profile", &file, &["--batch-rows", "100"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains(&format!("committed every row up to line {imported}")));
    assert_eq!(
        export(&url, "acme", "profile", "ndjson").lines().count(),
        ROWS
    );
}

#[tokio::test]
async fn upserts_by_phone_and_by_external_id_follow_changes_made_over_the_api() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let directory = tempfile::tempdir().expect("temporary directory");
    let write = |name: &str, text: &str| {
        let path = directory.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let profiles = write(
        "p1.ndjson",
        "{\"mobile_phone_number\":\"+49658245684\",\"full_name\":\"Ann\"}\n",
    );
    assert!(
        import(
            &url,
            "acme",
            "profile",
            &profiles,
            &["--match", "mobile_phone_number"]
        )
        .status
        .success()
    );
    let clients = write(
        "c1.ndjson",
        "{\"name\":\"Acme\",\"status\":\"ACTIVE\",\"active\":true,\"externalId\":\"crm-1\"}\n",
    );
    assert!(
        import(&url, "acme", "client", &clients, &["--match", "externalId"])
            .status
            .success()
    );

    // Changed over the API: the keys follow the records.
    let token = admin_token(&url, "acme");
    let server = ServerProcess::start(&url);
    let profile = records_without_times(&export(&url, "acme", "profile", "ndjson"))[0].clone();
    let (status, _) = send(
        &server,
        &token,
        reqwest::Method::PATCH,
        &format!("/v1/hood/profiles/{}", profile["id"].as_str().expect("id")),
        Some(json!({"mobile_phone_number": "+14155552671"})),
    )
    .await;
    assert_eq!(status, 204);
    let client = records_without_times(&export(&url, "acme", "client", "ndjson"))[0].clone();
    let (status, _) = send(
        &server,
        &token,
        reqwest::Method::PATCH,
        &format!("/v2/client/{}", client["uuid"].as_str().expect("uuid")),
        Some(json!({"externalId": "crm-2"})),
    )
    .await;
    assert_eq!(status, 200);
    drop(server);

    // The number written another way (E.164 after reading) matches; the old
    // number and the old externalId match nothing any more.
    let profiles = write(
        "p2.ndjson",
        concat!(
            "{\"mobile_phone_number\":\"+1 415 555 2671\",\"full_name\":\"Ann B\"}\n",
            "{\"mobile_phone_number\":\"+49658245684\",\"full_name\":\"New\"}\n",
        ),
    );
    let output = import(
        &url,
        "acme",
        "profile",
        &profiles,
        &["--match", "mobile_phone_number"],
    );
    assert!(
        text(&output.stderr).contains("1 created, 1 updated, 0 unchanged, 0 rejected"),
        "{}",
        text(&output.stderr)
    );
    let clients = write(
        "c2.ndjson",
        concat!(
            "{\"name\":\"Acme Corp\",\"status\":\"ACTIVE\",\"active\":true,\"externalId\":\"crm-2\"}\n",
            "{\"name\":\"Other\",\"status\":\"ACTIVE\",\"active\":true,\"externalId\":\"crm-1\"}\n",
        ),
    );
    let output = import(&url, "acme", "client", &clients, &["--match", "externalId"]);
    assert!(
        text(&output.stderr).contains("1 created, 1 updated, 0 unchanged, 0 rejected"),
        "{}",
        text(&output.stderr)
    );
    let clients = records_without_times(&export(&url, "acme", "client", "ndjson"));
    assert_eq!(clients.len(), 2);
    assert_eq!(clients[0]["name"], "Acme Corp");
    assert_eq!(clients[0]["uuid"], client["uuid"]);
    let profiles = records_without_times(&export(&url, "acme", "profile", "ndjson"));
    assert_eq!(profiles[0]["full_name"], "Ann B");
    assert_eq!(profiles[0]["mobile_phone_number"], "+14155552671");
}

#[tokio::test]
async fn companies_then_persons_import_searchable_with_their_ids_and_links() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let token = admin_token(&url, "acme");
    let directory = tempfile::tempdir().expect("temp dir");
    let company = "660e8400-e29b-41d4-a716-446655440001";
    let companies = directory.path().join("companies.ndjson");
    std::fs::write(
        &companies,
        format!(
            "{}\n",
            json!({"id": company, "name": "Acme", "headcount": "51-200", "industry": "Software"})
        ),
    )
    .expect("write companies");
    let persons = directory.path().join("persons.csv");
    std::fs::write(
        &persons,
        format!(
            "firstName,lastName,jobTitle,seniority,companyId\nJane,Doe,VP of Engineering,VP,{company}\nJohn,Smith,CTO,C-Suite,{company}\nNo,Company,CTO,C-Suite,770e8400-e29b-41d4-a716-446655440009\n"
        ),
    )
    .expect("write persons");
    // `--match id` keeps the ids the rows name (the persons refer to one).
    let output = import(&url, "acme", "company", &companies, &["--match", "id"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = import(&url, "acme", "person", &persons, &[]);
    // The person whose company does not exist is rejected at its line and
    // field; the others are imported.
    assert!(!output.status.success(), "a rejected row fails the run");
    let report = text(&output.stderr);
    assert!(report.contains("2 created"), "{report}");
    let rejects = std::fs::read_to_string(directory.path().join("persons.csv.rejects.ndjson"))
        .expect("the rejects file");
    let reject: Value = serde_json::from_str(rejects.trim()).expect("one reject");
    assert_eq!(
        reject,
        json!({"line": 4, "errors": [{"path": "companyId",
            "message": "Company 770e8400-e29b-41d4-a716-446655440009 not found"}]})
    );

    let server = ServerProcess::start(&url);
    let (status, page) = send(
        &server,
        &token,
        reqwest::Method::POST,
        "/api/v1/entities/prospects/person",
        Some(json!({"account": {"headcount": {"any": {"include": ["51-200"]}}}})),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["totalElements"], json!(2), "{page}");
    let names: Vec<&str> = page["content"]
        .as_array()
        .expect("content")
        .iter()
        .map(|lead| {
            assert_eq!(lead["company"]["id"], json!(company));
            lead["firstName"].as_str().expect("a first name")
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["Jane", "John"]);
    let (status, found) = send(
        &server,
        &token,
        reqwest::Method::GET,
        &format!("/api/v1/entities/prospects/company/{company}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["name"], json!("Acme"));
}
