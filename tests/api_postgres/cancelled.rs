//! Requests whose clients give up mid-flight: the server drops their work
//! wherever it stands (between sending `BEGIN` and reading its answer,
//! say), and the connection goes back to the pool. None may go back
//! inside a transaction, or the next request on it runs in that stale
//! transaction, and after its first error every statement on that
//! connection fails (a 500) until the pool recycles it. sqlx 0.9.0 did
//! exactly that when `BEGIN` was cancelled (fixed in 0.9.1).

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{ICPS, ServerProcess, TestDatabase, member_token};

/// Connections of the test database that sit inside a transaction.
async fn connections_in_a_transaction(database_url: &str) -> Vec<String> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(database_url)
        .await
        .expect("connect");
    sqlx::query_scalar(
        "SELECT state || ': ' || query FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
           AND state LIKE 'idle in transaction%'",
    )
    .fetch_all(&mut connection)
    .await
    .expect("pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_abandoned_by_their_clients_leave_no_connection_in_a_transaction() {
    let database = TestDatabase::create().await;
    let workspace = format!("ws_{}", uuid::Uuid::new_v4().simple());
    let token = member_token(database.url(), &workspace);
    // Two pooled connections: whatever one abandoned request leaves on a
    // connection, the next requests meet.
    let server = ServerProcess::start_with(database.url(), &["--database-max-connections", "2"]);
    let client = crate::support::http_client();
    let id = server.create_icp(&client, &token, "Abandoned").await;
    let path = format!("{}{ICPS}/{id}", server.base_url);

    // Clients that hang up after 0 to 3 ms: over a few thousand requests,
    // every point of a write's round trips gets cancelled somewhere.
    let mut abandoned = 0;
    for round in 0..40u64 {
        let outcomes = join_all((0..50u64).map(|index| {
            let timeout = Duration::from_micros((round * 50 + index) * 37 % 3_000);
            let request = client
                .patch(&path)
                .timeout(timeout.max(Duration::from_micros(1)))
                .bearer_auth(&token)
                .json(&json!({"name": format!("Abandoned {round}-{index}")}))
                .send();
            async move { request.await.is_err_and(|error| error.is_timeout()) }
        }))
        .await;
        abandoned += outcomes.into_iter().filter(|&timed_out| timed_out).count();
    }
    // Timeouts under 0.3 ms (a tenth of them) end before any PATCH can
    // answer: the test does cancel requests, whatever the machine.
    assert!(
        abandoned >= 200,
        "only {abandoned} of 2000 requests were abandoned"
    );

    // Every abandoned request has ended once the pool is idle again.
    let mut stale = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stale = connections_in_a_transaction(database.url()).await;
        if stale.is_empty() {
            break;
        }
    }
    assert!(stale.is_empty(), "left inside a transaction: {stale:?}");

    // And the server answers every request as before.
    for index in 0..20 {
        let reply = client
            .patch(&path)
            .bearer_auth(&token)
            .json(&json!({"name": format!("After {index}")}))
            .send()
            .await
            .expect("send");
        assert_eq!(reply.status(), StatusCode::OK);
        let icp: serde_json::Value = reply.json().await.expect("json");
        assert_eq!(icp["id"], id.as_str());
        assert_eq!(icp["name"], format!("After {index}"));
    }
}
