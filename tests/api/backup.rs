//! `clientele backup` and `clientele restore` on SQLite (this module is not
//! in the PostgreSQL binary: there both commands only name pg_dump and
//! pg_restore, which the last test here checks without a server). A backup
//! taken while writers write holds every write acknowledged before it began
//! and passes `PRAGMA integrity_check`; its webhook file never runs ahead
//! of its history; a restore brings the backed-up state back, and is
//! refused over a running server, over an existing database without
//! `--force`, and from a damaged or incomplete backup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::json;

use crate::durability::send;
use crate::support::{
    ICPS, ServerProcess, http_client, icp_path, member_token, minimal_icp, run_cli,
};

/// Runs `clientele` with `args`, whatever its exit status.
fn clientele(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_clientele"))
        .args(args)
        .env_remove("CLIENTELE_DATABASE_URL")
        .output()
        .expect("run clientele")
}

/// Runs `clientele` with `args`, which must fail; returns its stderr.
fn refused(args: &[&str]) -> String {
    let output = clientele(args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "clientele {args:?} should fail; it printed {stdout}{stderr}"
    );
    stderr
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn webhooks_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.webhooks", path.display()))
}

async fn create(client: &reqwest::Client, server: &str, token: &str, name: &str) -> String {
    let reply = send(
        client,
        Method::POST,
        format!("{server}{ICPS}"),
        token,
        Some(&minimal_icp(name)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body["id"].as_str().expect("an id").to_owned()
}

fn integrity(path: &Path) -> String {
    let connection =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open a copy");
    connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check")
}

/// An acknowledged write: the record's version (its ETag) and name then.
type Acknowledged = HashMap<String, (i64, String)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_concurrent_writes_holds_every_write_acknowledged_before_it() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let database = directory.path().join("live.db");
    let url = sqlite_url(&database);
    let token = member_token(&url, "acme");
    // A subscription to a closed port: every event queues a delivery whose
    // attempts fail and retry, so the webhook file is written throughout.
    run_cli(&[
        "webhooks",
        "add",
        "--workspace",
        "acme",
        "--url",
        "http://127.0.0.1:9/hook",
        "--webhook-allow-private",
        "--database-url",
        &url,
    ]);
    let server = ServerProcess::start_with(
        &url,
        &[
            "--webhook-allow-private",
            "--webhook-retry-schedule",
            "0s,20ms,40ms,80ms,160ms,320ms,640ms",
        ],
    );
    let base = server.base_url.clone();
    let client = http_client();

    let acknowledged = Arc::new(Mutex::new(Acknowledged::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for writer in 0..6 {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        let (acknowledged, stop, writes) = (acknowledged.clone(), stop.clone(), writes.clone());
        writers.push(tokio::spawn(async move {
            // One record per writer, so no PATCH waits on another's; and a
            // new record every fifth round.
            let name = format!("writer {writer}");
            let id = create(&client, &base, &token, &name).await;
            acknowledged
                .lock()
                .expect("map")
                .insert(id.clone(), (1, name));
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let name = format!("writer {writer} round {round}");
                let reply = send(
                    &client,
                    Method::PATCH,
                    format!("{base}{}", icp_path(&id)),
                    &token,
                    Some(&json!({ "name": name })),
                )
                .await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
                let version: i64 = reply
                    .header("etag")
                    .expect("an ETag")
                    .trim_matches('"')
                    .parse()
                    .expect("a numeric ETag");
                acknowledged
                    .lock()
                    .expect("map")
                    .insert(id.clone(), (version, name));
                if round % 5 == 0 {
                    let name = format!("writer {writer} new {round}");
                    let new = create(&client, &base, &token, &name).await;
                    acknowledged.lock().expect("map").insert(new, (1, name));
                }
                writes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Everything acknowledged so far was acknowledged before the backup began.
    let before = acknowledged.lock().expect("map").clone();
    let writes_before = writes.load(Ordering::Relaxed);
    let backup = directory.path().join("backup.db");
    let arguments = [
        "backup".to_owned(),
        "--to".to_owned(),
        backup.display().to_string(),
        "--database-url".to_owned(),
        url.clone(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        clientele(&arguments)
    })
    .await
    .expect("the backup ran");
    let during = writes.load(Ordering::Relaxed) - writes_before;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("a writer");
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "backup failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!(
        "{} records acknowledged before the backup; {during} PATCHes acknowledged while it ran\n{stdout}",
        before.len()
    );
    assert!(stdout.contains(&backup.display().to_string()), "{stdout}");
    assert!(
        stdout.contains(&webhooks_of(&backup).display().to_string()),
        "{stdout}"
    );

    assert_eq!(integrity(&backup), "ok");
    assert_eq!(integrity(&webhooks_of(&backup)), "ok");
    let copy = Connection::open_with_flags(&backup, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the backup");
    for (id, (version, name)) in &before {
        let (stored, stored_name): (i64, String) = copy
            .query_row(
                "SELECT version, json_extract(body, '$.name') FROM records \
                 WHERE workspace_id = 'acme' AND kind = 'icp' AND id = ?1",
                params![id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .expect("read the backup")
            .unwrap_or_else(|| panic!("ICP {id} (acknowledged at version {version}) is missing"));
        assert!(
            stored >= *version,
            "ICP {id}: acknowledged version {version}, the backup has {stored}"
        );
        if stored == *version {
            assert_eq!(&stored_name, name, "ICP {id} at version {version}");
        }
        let in_history: bool = copy
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM history WHERE workspace_id = 'acme' \
                 AND kind = 'icp' AND record_id = ?1 AND version = ?2)",
                params![id, version],
                |row| row.get(0),
            )
            .expect("read the history");
        assert!(in_history, "ICP {id} version {version} is in the history");
    }

    // The webhook file was copied first: it never names an event the
    // records' copy lacks, so a restored server neither skips nor
    // mislabels events.
    let last_event: i64 = copy
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM history", [], |row| {
            row.get(0)
        })
        .expect("last event");
    let webhook_copy =
        Connection::open_with_flags(webhooks_of(&backup), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the webhook copy");
    let (horizon, deliveries, beyond): (i64, i64, i64) = webhook_copy
        .query_row(
            "SELECT (SELECT horizon FROM event_dispatch), \
                    (SELECT COUNT(*) FROM webhook_deliveries), \
                    (SELECT COUNT(*) FROM webhook_deliveries WHERE event_seq > ?1)",
            params![last_event],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("read the webhook copy");
    println!("history up to {last_event}; horizon {horizon}; {deliveries} deliveries");
    assert!(deliveries > 0, "the subscription got deliveries");
    assert!(horizon <= last_event, "horizon {horizon} > {last_event}");
    assert_eq!(beyond, 0, "deliveries of events the history lacks");
}

#[tokio::test]
async fn a_restore_brings_back_the_backup_and_refuses_a_running_server() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let database = directory.path().join("live.db");
    let url = sqlite_url(&database);
    let token = member_token(&url, "acme");
    let client = http_client();
    let server = ServerProcess::start(&url);
    let base = server.base_url.clone();
    let kept = create(&client, &base, &token, "Before").await;
    let patched = send(
        &client,
        Method::PATCH,
        format!("{base}{}", icp_path(&kept)),
        &token,
        Some(&json!({"name": "Kept"})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let backup = directory.path().join("backup.db");
    let backup_text = backup.display().to_string();
    run_cli(&["backup", "--to", &backup_text, "--database-url", &url]);
    // Written after the backup: gone once it is restored.
    let later = create(&client, &base, &token, "After the backup").await;

    // A running server's database is never replaced, even with --force.
    let stderr = refused(&[
        "restore",
        "--from",
        &backup_text,
        "--database-url",
        &url,
        "--force",
    ]);
    assert!(
        stderr.contains("is in use") && stderr.contains("stop it"),
        "{stderr}"
    );
    let still = send(
        &client,
        Method::GET,
        format!("{base}{}", icp_path(&later)),
        &token,
        None,
    )
    .await;
    assert_eq!(still.status, StatusCode::OK, "the server still serves");
    server.kill_hard();

    // A stopped database that exists is replaced only with --force.
    let stderr = refused(&["restore", "--from", &backup_text, "--database-url", &url]);
    assert!(
        stderr.contains("already exists") && stderr.contains("--force"),
        "{stderr}"
    );

    // Into a new file, and over the killed server's (its WAL left behind).
    let fresh = directory.path().join("fresh.db");
    for (target, force) in [(sqlite_url(&fresh), false), (url.clone(), true)] {
        let mut arguments = vec!["restore", "--from", &backup_text, "--database-url", &target];
        if force {
            arguments.push("--force");
        }
        let printed = run_cli(&arguments);
        assert!(
            printed.contains("restored") && printed.contains("1 records"),
            "{printed}"
        );
        let server = ServerProcess::start(&target);
        let base = server.base_url.clone();
        let reply = send(
            &client,
            Method::GET,
            format!("{base}{}", icp_path(&kept)),
            &token,
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.body["name"], "Kept");
        assert_eq!(reply.header("etag").as_deref(), Some("\"2\""));
        let gone = send(
            &client,
            Method::GET,
            format!("{base}{}", icp_path(&later)),
            &token,
            None,
        )
        .await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.text);
        // The restored database takes writes.
        create(&client, &base, &token, "After the restore").await;
    }
}

#[test]
fn damaged_incomplete_and_misdirected_copies_are_refused() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let database = directory.path().join("live.db");
    let url = sqlite_url(&database);
    member_token(&url, "acme");
    let backup = directory.path().join("backup.db");
    let backup_text = backup.display().to_string();
    run_cli(&["backup", "--to", &backup_text, "--database-url", &url]);

    // An existing backup is replaced only with --force.
    let stderr = refused(&["backup", "--to", &backup_text, "--database-url", &url]);
    assert!(stderr.contains("--force"), "{stderr}");
    run_cli(&[
        "backup",
        "--to",
        &backup_text,
        "--database-url",
        &url,
        "--force",
    ]);

    // Never over the database itself, --force or not.
    let live = database.display().to_string();
    let stderr = refused(&["backup", "--to", &live, "--database-url", &url, "--force"]);
    assert!(stderr.contains("is the database itself"), "{stderr}");
    assert_eq!(integrity(&database), "ok");

    let target = directory.path().join("target.db");
    let target_url = sqlite_url(&target);

    // A backup without its webhook file.
    let lone = directory.path().join("lone.db");
    std::fs::copy(&backup, &lone).expect("copy");
    let stderr = refused(&[
        "restore",
        "--from",
        &lone.display().to_string(),
        "--database-url",
        &target_url,
    ]);
    assert!(stderr.contains("lone.db.webhooks"), "{stderr}");

    // A damaged backup: pages past the first overwritten.
    let broken = directory.path().join("broken.db");
    let mut bytes = std::fs::read(&backup).expect("read the backup");
    let end = bytes.len() - 4096;
    for byte in &mut bytes[8192..end] {
        *byte = 0xA5;
    }
    std::fs::write(&broken, bytes).expect("write the damaged copy");
    std::fs::copy(webhooks_of(&backup), webhooks_of(&broken)).expect("copy");
    let stderr = refused(&[
        "restore",
        "--from",
        &broken.display().to_string(),
        "--database-url",
        &target_url,
    ]);
    assert!(
        stderr.contains("integrity_check") && stderr.contains("damaged"),
        "{stderr}"
    );
    assert!(!target.exists(), "nothing was written");

    // The intact backup restores.
    let printed = run_cli(&[
        "restore",
        "--from",
        &backup_text,
        "--database-url",
        &target_url,
    ]);
    assert!(printed.contains(&target.display().to_string()), "{printed}");
    assert_eq!(integrity(&target), "ok");
}

#[test]
fn on_postgresql_backup_and_restore_name_pg_dump_and_pg_restore() {
    // No PostgreSQL is reached: the refusal comes before any connection.
    let url = "postgres://clientele:hunter2@127.0.0.1:1/clientele";
    let stderr = refused(&["backup", "--to", "/tmp/x.dump", "--database-url", url]);
    assert!(
        stderr.contains(
            "pg_dump --format=custom --file='/tmp/x.dump' 'postgres://clientele:***@127.0.0.1:1/clientele'"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the password is not printed: {stderr}"
    );
    let stderr = refused(&["restore", "--from", "/tmp/x.dump", "--database-url", url]);
    assert!(
        stderr.contains("pg_restore --clean --if-exists --no-owner --single-transaction"),
        "{stderr}"
    );
    let help = run_cli(&["backup", "--help"]);
    for flag in [
        "--to",
        "--force",
        "--database-url",
        "CLIENTELE_DATABASE_URL",
    ] {
        assert!(
            help.contains(flag),
            "backup --help mentions {flag}:\n{help}"
        );
    }
    let help = run_cli(&["restore", "--help"]);
    for flag in ["--from", "--force", "--database-url"] {
        assert!(
            help.contains(flag),
            "restore --help mentions {flag}:\n{help}"
        );
    }
}
