//! The plans PostgreSQL makes for the statements every write runs, on a
//! fresh database as a new deployment meets it: no `ANALYZE` by anyone
//! but the server itself (autovacuum is off on the test machines).

use std::time::{Duration, Instant};

use futures::future::join_all;
use sqlx::Connection;

use crate::support::{ICPS, ServerProcess, TestDatabase, member_token, minimal_icp, run_cli};

/// The lookup a PATCH makes before it writes (and the UPDATE's `WHERE`).
const LOOKUP: &str = "SELECT kind, id, version FROM records \
     WHERE workspace_id = $1 AND kind = $2 AND id = $3 FOR UPDATE";

/// The plan of [`LOOKUP`] for these values: as a one-off statement, and
/// as the generic plan a prepared statement switches to.
async fn lookup_plans(
    connection: &mut sqlx::PgConnection,
    workspace: &str,
    id: &str,
) -> (String, String) {
    let mut plans = Vec::new();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
            .execute(&mut *connection)
            .await
            .expect("set plan_cache_mode");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PREPARE lookup (text, text, text) AS {LOOKUP}"
        )))
        .execute(&mut *connection)
        .await
        .expect("prepare");
        let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN EXECUTE lookup ('{workspace}', 'icp', '{id}')"
        )))
        .fetch_all(&mut *connection)
        .await
        .expect("explain");
        sqlx::query("DEALLOCATE lookup")
            .execute(&mut *connection)
            .await
            .expect("deallocate");
        plans.push(lines.join("\n"));
    }
    let generic = plans.pop().unwrap_or_default();
    let custom = plans.pop().unwrap_or_default();
    (custom, generic)
}

#[tokio::test]
async fn a_fresh_database_plans_record_lookups_on_the_primary_key() {
    let database = TestDatabase::create().await;
    let workspace = format!("ws_{}", uuid::Uuid::new_v4().simple());
    let token = member_token(database.url(), &workspace);
    let server = ServerProcess::start_with(database.url(), &[]);
    let client = crate::support::http_client();
    // A few hundred ICPs, as a new team's first day makes them.
    let mut ids = Vec::new();
    for chunk in 0..10 {
        let created = join_all((0..30).map(|index| {
            let request = client
                .post(format!("{}{ICPS}", server.base_url))
                .bearer_auth(&token)
                .json(&minimal_icp(&format!("ICP {chunk}-{index}")))
                .send();
            async move {
                let body: serde_json::Value =
                    request.await.expect("send").json().await.expect("json");
                body["id"].as_str().expect("id").to_owned()
            }
        }))
        .await;
        ids.extend(created);
    }

    let mut connection = sqlx::PgConnection::connect(database.url())
        .await
        .expect("connect");
    // The server checks its statistics every 10 s.
    let started = Instant::now();
    let (custom, generic) = loop {
        let plans = lookup_plans(&mut connection, &workspace, &ids[17]).await;
        let analyzed: Option<bool> = sqlx::query_scalar(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'records'",
        )
        .fetch_optional(&mut connection)
        .await
        .expect("statistics");
        if analyzed == Some(true) || started.elapsed() > Duration::from_secs(40) {
            break plans;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for (mode, plan) in [("one-off", &custom), ("generic", &generic)] {
        assert!(
            plan.contains("Index Scan using records_pkey on records"),
            "the {mode} plan of a record lookup on a fresh database does not use the primary key:\n{plan}"
        );
    }
    drop(server);
}

#[tokio::test]
async fn an_import_leaves_fresh_statistics_behind() {
    let database = TestDatabase::create().await;
    let directory = tempfile::tempdir().expect("directory");
    let file = directory.path().join("icps.ndjson");
    let rows: Vec<String> = (0..200)
        .map(|index| minimal_icp(&format!("Imported {index}")).to_string())
        .collect();
    std::fs::write(&file, rows.join("\n")).expect("write");
    run_cli(&[
        "import",
        "--database-url",
        database.url(),
        "--workspace",
        "acme",
        "--kind",
        "icp",
        file.to_str().expect("UTF-8 path"),
    ]);
    // No server ran: only the import can have analyzed.
    let mut connection = sqlx::PgConnection::connect(database.url())
        .await
        .expect("connect");
    let analyzed: Option<bool> = sqlx::query_scalar(
        "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'records'",
    )
    .fetch_optional(&mut connection)
    .await
    .expect("statistics");
    assert_eq!(analyzed, Some(true), "the import did not analyze records");
    let id: String = sqlx::query_scalar("SELECT id FROM records WHERE kind = 'icp' LIMIT 1")
        .fetch_one(&mut connection)
        .await
        .expect("an ICP");
    let (custom, generic) = lookup_plans(&mut connection, "acme", &id).await;
    for plan in [&custom, &generic] {
        assert!(
            plan.contains("Index Scan using records_pkey on records"),
            "{plan}"
        );
    }
}
