//! [`EventStore`] on PostgreSQL, for several instances on one database.
//!
//! **Why a horizon.** A history row's sequence number is taken when the
//! row is inserted, but becomes visible at commit, and transactions commit
//! in any order: a reader can see 7 before 6 commits. A consumer that had
//! paged past 7 would never see 6. So the feed and the fan-out read only
//! up to `event_dispatch.horizon`, below which the history is complete.
//!
//! **How the horizon moves.** The dispatcher (one instance at a time: it
//! locks the horizon row with `SKIP LOCKED`) reads the rows above the
//! horizon in sequence order together with the snapshot it read them in,
//! and moves the horizon across every row that follows without a gap. A
//! gap (a missing number below a visible row) is either a transaction
//! still running, or one that rolled back. Which one is decided without
//! guessing: a write takes its transaction id with its first change of a
//! record, before it inserts its history row, so the owner of a missing
//! number had a transaction id when the later row was visible, and was
//! running or done at that snapshot S1. Once a later snapshot's `xmin` is
//! at or past S1's `xmax`, every transaction running at S1 has ended; a
//! number still missing then never commits, and the horizon passes it.
//! A gap therefore delays events by about one transaction's duration.
//!
//! **Delivery bookkeeping commits without waiting for its WAL flush**
//! (`synchronous_commit = off` for the fan-out, lease and finish
//! transactions only; see [`PostgresStore::begin_bookkeeping`]). Events
//! themselves are history rows, committed durably by the write that made
//! them. What a database crash can take back is the last fraction of a
//! second of bookkeeping: a horizon move (the fan-out runs again and
//! `ON CONFLICT` keeps it from doubling a delivery), a lease (the
//! delivery is leased again) or a finished delivery and its attempt row
//! (the event is sent again). Each of these is a duplicate, which
//! at-least-once delivery allows; none loses an event. What it saves is a
//! WAL flush per bookkeeping transaction, which competed with the
//! records' own commits for the disk (bench/WEBHOOKS-postgres.md).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use super::super::events::{
    AttemptRecord, DeliveryCounts, DeliveryOutcome, EventHead, EventStore, FinishedDelivery,
    LeasedDelivery, Router, StoredAttempt, StoredEvent, StoredWebhook,
};
use super::{
    PostgresStore, StoreError, WorkspaceId, from_millis, from_sqlx, history_from_row, millis,
};

const EVENT_COLUMNS: &str = "seq, workspace_id, kind, record_id, version, action, user_id, \
     key_id, request_id, client_request_id, at, changes";

const SELECT_WEBHOOK: &str = "SELECT id, workspace_id, url, event_types, description, enabled, \
     disabled_reason, secret, previous_secret, previous_secret_until, created_at, updated_at, \
     events_after FROM webhooks";

/// The first gap the dispatcher is waiting on: its first missing number,
/// and the `xmax` of the snapshot it was first seen in.
#[derive(Debug, Clone, Copy, Default)]
pub struct GapWatch(Option<(i64, i64)>);

fn event_from_row(row: &PgRow) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: row.try_get("seq").map_err(from_sqlx)?,
        workspace: WorkspaceId::new(
            row.try_get::<String, _>("workspace_id")
                .map_err(from_sqlx)?,
        ),
        entry: history_from_row(row)?,
    })
}

fn webhook_from_row(row: &PgRow) -> Result<StoredWebhook, StoreError> {
    let Json(event_types): Json<Vec<String>> = row.try_get("event_types").map_err(from_sqlx)?;
    let until: Option<i64> = row.try_get("previous_secret_until").map_err(from_sqlx)?;
    Ok(StoredWebhook {
        id: row.try_get("id").map_err(from_sqlx)?,
        workspace: WorkspaceId::new(
            row.try_get::<String, _>("workspace_id")
                .map_err(from_sqlx)?,
        ),
        url: row.try_get("url").map_err(from_sqlx)?,
        event_types,
        description: row.try_get("description").map_err(from_sqlx)?,
        enabled: row.try_get("enabled").map_err(from_sqlx)?,
        disabled_reason: row.try_get("disabled_reason").map_err(from_sqlx)?,
        secret: row.try_get("secret").map_err(from_sqlx)?,
        previous_secret: row.try_get("previous_secret").map_err(from_sqlx)?,
        previous_secret_until: until.map(from_millis).transpose()?,
        events_after: Some(row.try_get("events_after").map_err(from_sqlx)?),
        created_at: from_millis(row.try_get("created_at").map_err(from_sqlx)?)?,
        updated_at: from_millis(row.try_get("updated_at").map_err(from_sqlx)?)?,
    })
}

impl PostgresStore {
    /// A transaction for delivery bookkeeping, whose commit does not wait
    /// for its WAL to reach the disk; see the module docs for why losing
    /// its last moments to a database crash only repeats deliveries.
    async fn begin_bookkeeping(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut transaction = self.pool.begin().await.map_err(from_sqlx)?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        Ok(transaction)
    }

    /// One dispatch round inside `transaction`; see the module docs.
    async fn dispatch_in(
        &self,
        transaction: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        limit: u32,
        route: Router<'_>,
    ) -> Result<u64, StoreError> {
        let horizon: Option<i64> = sqlx::query_scalar(
            "SELECT horizon FROM event_dispatch WHERE id = 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut **transaction)
        .await
        .map_err(from_sqlx)?;
        let Some(horizon) = horizon else {
            return Ok(0);
        };
        let webhooks = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_WEBHOOK} WHERE enabled"
        )))
        .fetch_all(&mut **transaction)
        .await
        .map_err(from_sqlx)?
        .iter()
        .map(webhook_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        // Without subscriptions only the numbers are read: the horizon
        // still moves, for the feed.
        let columns = if webhooks.is_empty() {
            "seq"
        } else {
            "seq, workspace_id, kind, action, record_id"
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin, \
                                  pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax) \
             SELECT snap.xmin, snap.xmax, h.* FROM snap LEFT JOIN LATERAL \
               (SELECT {columns} FROM history WHERE seq > $1 ORDER BY seq LIMIT $2) h ON true \
             ORDER BY h.seq"
        )))
        .bind(horizon)
        .bind(i64::from(limit))
        .fetch_all(&mut **transaction)
        .await
        .map_err(from_sqlx)?;
        let Some(first) = rows.first() else {
            return Ok(0);
        };
        let snapshot_xmin: i64 = first.try_get("xmin").map_err(from_sqlx)?;
        let snapshot_xmax: i64 = first.try_get("xmax").map_err(from_sqlx)?;
        let mut accepted = Vec::new();
        let mut expected = horizon + 1;
        for row in &rows {
            let Some(seq) = row.try_get::<Option<i64>, _>("seq").map_err(from_sqlx)? else {
                break;
            };
            if seq > expected {
                let mut watch = self
                    .gap
                    .lock()
                    .map_err(|_| StoreError::Other("the gap watch is poisoned".into()))?;
                match watch.0 {
                    Some((start, first_xmax)) if start == expected => {
                        if snapshot_xmin < first_xmax {
                            break;
                        }
                        watch.0 = None;
                    }
                    _ => {
                        watch.0 = Some((expected, snapshot_xmax));
                        break;
                    }
                }
            }
            accepted.push(row);
            expected = seq + 1;
        }
        if accepted.is_empty() {
            return Ok(0);
        }
        let last = expected - 1;
        if !webhooks.is_empty() {
            let mut ids = Vec::new();
            let mut seqs = Vec::new();
            let mut keys = Vec::new();
            for row in &accepted {
                let event = EventHead {
                    seq: row.try_get("seq").map_err(from_sqlx)?,
                    workspace: WorkspaceId::new(
                        row.try_get::<String, _>("workspace_id")
                            .map_err(from_sqlx)?,
                    ),
                    kind: row.try_get("kind").map_err(from_sqlx)?,
                    action: row.try_get("action").map_err(from_sqlx)?,
                    record_id: row.try_get("record_id").map_err(from_sqlx)?,
                };
                for webhook_id in route(&event, &webhooks) {
                    ids.push(webhook_id);
                    seqs.push(event.seq);
                    keys.push(event.record_key());
                }
            }
            if !ids.is_empty() {
                sqlx::query(
                    "INSERT INTO webhook_deliveries (webhook_id, event_seq, record_key, state, \
                     attempts, next_attempt_at, created_at) \
                     SELECT w, s, k, 'pending', 0, $4, $4 FROM UNNEST($1::text[], $2::bigint[], $3::text[]) AS t(w, s, k) \
                     ON CONFLICT (webhook_id, event_seq) DO NOTHING",
                )
                .bind(&ids)
                .bind(&seqs)
                .bind(&keys)
                .bind(millis(Utc::now()))
                .execute(&mut **transaction)
                .await
                .map_err(from_sqlx)?;
            }
        }
        sqlx::query("UPDATE event_dispatch SET horizon = $1 WHERE id = 1")
            .bind(last)
            .execute(&mut **transaction)
            .await
            .map_err(from_sqlx)?;
        Ok(accepted.len() as u64)
    }
}

/// Attempts as one array per column, inserted by one statement.
#[derive(Default)]
struct AttemptColumns {
    webhook_ids: Vec<String>,
    event_ids: Vec<String>,
    attempts: Vec<i32>,
    ats: Vec<i64>,
    statuses: Vec<Option<i32>>,
    latencies: Vec<i64>,
    errors: Vec<Option<String>>,
    outcomes: Vec<String>,
}

impl AttemptColumns {
    fn push(&mut self, attempt: &AttemptRecord) {
        self.webhook_ids.push(attempt.webhook_id.clone());
        self.event_ids.push(attempt.event_id.clone());
        self.attempts.push(attempt.attempt);
        self.ats.push(millis(attempt.at));
        self.statuses.push(attempt.status.map(i32::from));
        self.latencies.push(attempt.latency_ms);
        self.errors.push(attempt.error.clone());
        self.outcomes.push(attempt.outcome.clone());
    }

    /// Inserts the attempts in the order they were pushed (their ids,
    /// the attempt list's cursor, follow it).
    async fn insert<'c>(&self, executor: impl sqlx::PgExecutor<'c>) -> Result<(), StoreError> {
        if self.webhook_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO webhook_attempts \
             (webhook_id, event_id, attempt, at, status, latency_ms, error, outcome) \
             SELECT w, e, a, t, s, l, r, o FROM UNNEST($1::text[], $2::text[], $3::int[], \
                 $4::bigint[], $5::int[], $6::bigint[], $7::text[], $8::text[]) \
                 WITH ORDINALITY AS u(w, e, a, t, s, l, r, o, n) ORDER BY n",
        )
        .bind(&self.webhook_ids)
        .bind(&self.event_ids)
        .bind(&self.attempts)
        .bind(&self.ats)
        .bind(&self.statuses)
        .bind(&self.latencies)
        .bind(&self.errors)
        .bind(&self.outcomes)
        .execute(executor)
        .await
        .map(|_| ())
        .map_err(from_sqlx)
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn events(
        &self,
        workspace: &WorkspaceId,
        after: i64,
        limit: u32,
        only: &[(String, String)],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (kinds, actions): (Vec<String>, Vec<String>) = only.iter().cloned().unzip();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM history \
             WHERE workspace_id = $1 AND seq > $2 \
               AND seq <= (SELECT horizon FROM event_dispatch WHERE id = 1) \
               AND (cardinality($4::text[]) = 0 OR (kind, action) IN \
                    (SELECT * FROM UNNEST($4::text[], $5::text[]))) \
             ORDER BY seq LIMIT $3"
        )))
        .bind(workspace.as_str())
        .bind(after)
        .bind(i64::from(limit))
        .bind(&kinds)
        .bind(&actions)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .iter()
        .map(event_from_row)
        .collect()
    }

    async fn dispatch(&self, limit: u32, route: Router<'_>) -> Result<u64, StoreError> {
        let mut transaction = self.begin_bookkeeping().await?;
        let passed = self.dispatch_in(&mut transaction, limit, route).await?;
        transaction.commit().await.map_err(from_sqlx)?;
        Ok(passed)
    }

    fn committed_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.committed.clone()
    }

    async fn maintain_deliveries(&self) -> Result<(), StoreError> {
        // Not in a transaction: VACUUM cannot run in one.
        sqlx::query("VACUUM (ANALYZE) webhook_deliveries")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(from_sqlx)
    }

    async fn release_orphaned_leases(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn lease_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<LeasedDelivery>, StoreError> {
        let now = millis(now);
        let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let mut transaction = self.begin_bookkeeping().await?;
        let leased = sqlx::query(
            "WITH due AS ( \
               SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
               WHERE d.state IN ('pending', 'leased') AND d.next_attempt_at <= $1 \
                 AND (d.state = 'pending' OR d.lease_until < $1) AND w.enabled \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
                     WHERE e.webhook_id = d.webhook_id AND e.record_key = d.record_key \
                       AND e.event_seq < d.event_seq AND e.state IN ('pending', 'leased')) \
               ORDER BY d.next_attempt_at, d.event_seq LIMIT $2 \
               FOR UPDATE OF d SKIP LOCKED) \
             UPDATE webhook_deliveries d SET state = 'leased', lease_owner = $3, lease_until = $4 \
             FROM due WHERE d.id = due.id \
             RETURNING d.id, d.webhook_id, d.event_seq, d.attempts",
        )
        .bind(now)
        .bind(i64::from(limit))
        .bind(owner)
        .bind(until)
        .fetch_all(&mut *transaction)
        .await
        .map_err(from_sqlx)?;
        if leased.is_empty() {
            transaction.commit().await.map_err(from_sqlx)?;
            return Ok(Vec::new());
        }
        let mut due = Vec::with_capacity(leased.len());
        for row in &leased {
            due.push((
                row.try_get::<i64, _>("id").map_err(from_sqlx)?,
                row.try_get::<String, _>("webhook_id").map_err(from_sqlx)?,
                row.try_get::<i64, _>("event_seq").map_err(from_sqlx)?,
                row.try_get::<i32, _>("attempts").map_err(from_sqlx)?,
            ));
        }
        let webhook_ids: Vec<String> = due.iter().map(|row| row.1.clone()).collect();
        let seqs: Vec<i64> = due.iter().map(|row| row.2).collect();
        let webhooks = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_WEBHOOK} WHERE id = ANY($1)"
        )))
        .bind(&webhook_ids)
        .fetch_all(&mut *transaction)
        .await
        .map_err(from_sqlx)?
        .iter()
        .map(webhook_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let events = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM history WHERE seq = ANY($1)"
        )))
        .bind(&seqs)
        .fetch_all(&mut *transaction)
        .await
        .map_err(from_sqlx)?
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        transaction.commit().await.map_err(from_sqlx)?;
        Ok(due
            .into_iter()
            .filter_map(|(id, webhook_id, seq, attempts_before)| {
                let webhook = webhooks.iter().find(|webhook| webhook.id == webhook_id)?;
                let event = events.iter().find(|event| event.seq == seq)?;
                Some(LeasedDelivery {
                    id,
                    webhook: webhook.clone(),
                    event: event.clone(),
                    attempts_before,
                })
            })
            .collect())
    }

    async fn finish_deliveries(
        &self,
        owner: &str,
        finished: &[FinishedDelivery],
    ) -> Result<(), StoreError> {
        // Two statements for the whole batch, whatever its size: one
        // statement per delivery and per attempt made a batch of 256 cost
        // 512 round trips, and under write load the deliveries fell
        // seconds behind a steady 1,000 writes/s (bench/run webhooks).
        let now = millis(Utc::now());
        let mut ids = Vec::with_capacity(finished.len());
        let mut states = Vec::with_capacity(finished.len());
        let mut next_attempts = Vec::with_capacity(finished.len());
        let mut finished_ats: Vec<Option<i64>> = Vec::with_capacity(finished.len());
        let mut disabled = Vec::new();
        let mut attempts = AttemptColumns::default();
        for done in finished {
            let (state, next_at) = match &done.outcome {
                DeliveryOutcome::Delivered => ("delivered", now),
                DeliveryOutcome::Retry { at } => ("pending", millis(*at)),
                DeliveryOutcome::Failed | DeliveryOutcome::Disable { .. } => ("failed", now),
            };
            ids.push(done.delivery_id);
            states.push(state);
            next_attempts.push(next_at);
            finished_ats.push((state != "pending").then_some(now));
            if let DeliveryOutcome::Disable { reason } = &done.outcome {
                disabled.push((&done.attempt.webhook_id, reason));
            }
            attempts.push(&done.attempt);
        }
        let mut transaction = self.begin_bookkeeping().await?;
        sqlx::query(
            "UPDATE webhook_deliveries d SET state = t.state, attempts = d.attempts + 1, \
             next_attempt_at = t.next_at, finished_at = t.finished_at, lease_owner = NULL, \
             lease_until = NULL \
             FROM UNNEST($1::bigint[], $3::text[], $4::bigint[], $5::bigint[]) \
                 AS t(id, state, next_at, finished_at) \
             WHERE d.id = t.id AND d.lease_owner = $2 AND d.state = 'leased'",
        )
        .bind(&ids)
        .bind(owner)
        .bind(&states)
        .bind(&next_attempts)
        .bind(&finished_ats)
        .execute(&mut *transaction)
        .await
        .map_err(from_sqlx)?;
        for (webhook_id, reason) in disabled {
            sqlx::query(
                "UPDATE webhooks SET enabled = false, disabled_reason = $2, updated_at = $3 \
                 WHERE id = $1",
            )
            .bind(webhook_id)
            .bind(reason)
            .bind(now)
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        }
        attempts.insert(&mut *transaction).await?;
        transaction.commit().await.map_err(from_sqlx)
    }

    async fn insert_webhook(&self, webhook: &StoredWebhook) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhooks (id, workspace_id, url, event_types, description, enabled, \
             disabled_reason, secret, previous_secret, previous_secret_until, created_at, \
             updated_at, events_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
             COALESCE($13, (SELECT COALESCE(MAX(seq), 0) FROM history)))",
        )
        .bind(&webhook.id)
        .bind(webhook.workspace.as_str())
        .bind(&webhook.url)
        .bind(Json(&webhook.event_types))
        .bind(&webhook.description)
        .bind(webhook.enabled)
        .bind(&webhook.disabled_reason)
        .bind(&webhook.secret)
        .bind(&webhook.previous_secret)
        .bind(webhook.previous_secret_until.map(millis))
        .bind(millis(webhook.created_at))
        .bind(millis(webhook.updated_at))
        .bind(webhook.events_after)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(from_sqlx)
    }

    async fn webhook(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<StoredWebhook>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_WEBHOOK} WHERE workspace_id = $1 AND id = $2"
        )))
        .bind(workspace.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?
        .as_ref()
        .map(webhook_from_row)
        .transpose()
    }

    async fn webhooks(&self, workspace: &WorkspaceId) -> Result<Vec<StoredWebhook>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_WEBHOOK} WHERE workspace_id = $1 ORDER BY created_at, id"
        )))
        .bind(workspace.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .iter()
        .map(webhook_from_row)
        .collect()
    }

    async fn update_webhook(&self, webhook: &StoredWebhook) -> Result<bool, StoreError> {
        sqlx::query(
            "UPDATE webhooks SET url = $3, event_types = $4, description = $5, enabled = $6, \
             disabled_reason = $7, secret = $8, previous_secret = $9, \
             previous_secret_until = $10, updated_at = $11, \
             events_after = COALESCE($12, (SELECT COALESCE(MAX(seq), 0) FROM history)) \
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind(webhook.workspace.as_str())
        .bind(&webhook.id)
        .bind(&webhook.url)
        .bind(Json(&webhook.event_types))
        .bind(&webhook.description)
        .bind(webhook.enabled)
        .bind(&webhook.disabled_reason)
        .bind(&webhook.secret)
        .bind(&webhook.previous_secret)
        .bind(webhook.previous_secret_until.map(millis))
        .bind(millis(webhook.updated_at))
        .bind(webhook.events_after)
        .execute(&self.pool)
        .await
        .map(|result| result.rows_affected() > 0)
        .map_err(from_sqlx)
    }

    async fn delete_webhook(&self, workspace: &WorkspaceId, id: &str) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await.map_err(from_sqlx)?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2")
            .bind(workspace.as_str())
            .bind(id)
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?
            .rows_affected()
            > 0;
        if deleted {
            for table in ["webhook_deliveries", "webhook_attempts"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE webhook_id = $1"
                )))
                .bind(id)
                .execute(&mut *transaction)
                .await
                .map_err(from_sqlx)?;
            }
        }
        transaction.commit().await.map_err(from_sqlx)?;
        Ok(deleted)
    }

    async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<(), StoreError> {
        let mut attempts = AttemptColumns::default();
        attempts.push(attempt);
        attempts.insert(&self.pool).await
    }

    async fn attempts(
        &self,
        workspace: &WorkspaceId,
        webhook_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredAttempt>, StoreError> {
        sqlx::query(
            "SELECT a.id, a.webhook_id, a.event_id, a.attempt, a.at, a.status, a.latency_ms, \
             a.error, a.outcome FROM webhook_attempts a JOIN webhooks w ON w.id = a.webhook_id \
             WHERE w.workspace_id = $1 AND a.webhook_id = $2 AND a.id > $3 \
             ORDER BY a.id LIMIT $4",
        )
        .bind(workspace.as_str())
        .bind(webhook_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .iter()
        .map(|row| {
            let status: Option<i32> = row.try_get("status").map_err(from_sqlx)?;
            Ok(StoredAttempt {
                id: row.try_get("id").map_err(from_sqlx)?,
                attempt: AttemptRecord {
                    webhook_id: row.try_get("webhook_id").map_err(from_sqlx)?,
                    event_id: row.try_get("event_id").map_err(from_sqlx)?,
                    attempt: row.try_get("attempt").map_err(from_sqlx)?,
                    at: from_millis(row.try_get("at").map_err(from_sqlx)?)?,
                    status: status.and_then(|status| u16::try_from(status).ok()),
                    latency_ms: row.try_get("latency_ms").map_err(from_sqlx)?,
                    error: row.try_get("error").map_err(from_sqlx)?,
                    outcome: row.try_get("outcome").map_err(from_sqlx)?,
                },
            })
        })
        .collect()
    }

    async fn delivery_counts(
        &self,
        workspace: &WorkspaceId,
        webhook_id: &str,
    ) -> Result<DeliveryCounts, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT d.state, COUNT(*) FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id \
             WHERE w.workspace_id = $1 AND d.webhook_id = $2 GROUP BY d.state",
        )
        .bind(workspace.as_str())
        .bind(webhook_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(DeliveryCounts::from_rows(rows))
    }

    async fn replay(
        &self,
        workspace: &WorkspaceId,
        webhook_id: Option<&str>,
        since: DateTime<Utc>,
        include_delivered: bool,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, \
             next_attempt_at = $4, finished_at = NULL \
             WHERE created_at >= $2 AND (state = 'failed' OR ($3 AND state = 'delivered')) \
               AND webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = $1 \
                   AND ($5::text IS NULL OR id = $5))",
        )
        .bind(workspace.as_str())
        .bind(millis(since))
        .bind(include_delivered)
        .bind(millis(now))
        .bind(webhook_id)
        .execute(&self.pool)
        .await
        .map(|result| result.rows_affected())
        .map_err(from_sqlx)
    }

    async fn purge_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = millis(before);
        let deliveries = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE finished_at IS NOT NULL AND finished_at < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        let attempts = sqlx::query("DELETE FROM webhook_attempts WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        Ok(deliveries + attempts)
    }
}
