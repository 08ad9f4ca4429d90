//! [`EventStore`] on SQLite. Commits happen one batch at a time on the one
//! writer connection, in sequence order, so every history row a reader
//! sees has every lower sequence number committed (or rolled back for
//! good) before it: the feed needs no horizon.
//!
//! The history (the outbox) is in the records' file; subscriptions,
//! deliveries, attempts and the dispatch horizon are in the webhook file
//! beside it ([`super::webhook_file_path`]), written by a writer of its
//! own at a lower priority. Nothing here needs both files in one
//! transaction: the dispatcher reads events from the records' file and
//! then, in one transaction of the webhook file, inserts their deliveries
//! and moves the horizon past them; a crash between the two only repeats
//! the read. The delivery bookkeeping commits without an fsync of its own
//! ([`BOOKKEEPING`]); subscriptions commit on disk.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::super::events::{
    AttemptRecord, DeliveryCounts, DeliveryOutcome, EventHead, EventStore, FinishedDelivery,
    LeasedDelivery, Router, StoredAttempt, StoredEvent, StoredWebhook,
};
use super::super::group_commit::{Durability, from_rusqlite};
use super::{
    HistoryColumns, SqliteStore, StoreError, WorkspaceId, from_millis, history_entry, millis,
    select_all,
};

/// How the delivery bookkeeping (fan-out, leases, finished deliveries and
/// their attempts, purges) commits: without an fsync of its own, as
/// PostgreSQL's does with `synchronous_commit = off`. A power loss can take
/// back only its last commits, and each loss is redone: a lost fan-out runs
/// again (`INSERT OR IGNORE` keeps it from doubling deliveries), a lost
/// lease is leased again, a lost finished delivery is sent again (a
/// duplicate, which at-least-once delivery allows). The events themselves
/// are history rows in the records' file, committed on disk with their
/// writes. Subscriptions, replays and test sends, which a 2xx acknowledges,
/// commit on disk.
const BOOKKEEPING: Durability = Durability::Deferred;

const SELECT_EVENT: &str = "SELECT seq, workspace_id, kind, record_id, version, action, user_id, \
     key_id, request_id, client_request_id, at, changes FROM history";

const SELECT_WEBHOOK: &str = "SELECT id, workspace_id, url, event_types, description, enabled, \
     disabled_reason, secret, previous_secret, previous_secret_until, created_at, updated_at, \
     events_after FROM webhooks";

fn read_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, HistoryColumns)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        (
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
            row.get(9)?,
            row.get(10)?,
            row.get(11)?,
        ),
    ))
}

fn into_event(
    (seq, workspace, columns): (i64, String, HistoryColumns),
) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq,
        workspace: WorkspaceId::new(workspace),
        entry: history_entry(columns)?,
    })
}

type WebhookColumns = (
    String,
    String,
    String,
    String,
    Option<String>,
    bool,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    i64,
);

fn read_webhook(row: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookColumns> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
    ))
}

fn into_webhook(columns: WebhookColumns) -> Result<StoredWebhook, StoreError> {
    let (
        id,
        workspace,
        url,
        event_types,
        description,
        enabled,
        disabled_reason,
        secret,
        previous_secret,
        previous_secret_until,
        created_at,
        updated_at,
        events_after,
    ) = columns;
    Ok(StoredWebhook {
        id,
        workspace: WorkspaceId::new(workspace),
        url,
        event_types: serde_json::from_str(&event_types)
            .map_err(|error| StoreError::Other(format!("stored event types: {error}")))?,
        description,
        enabled,
        disabled_reason,
        secret,
        previous_secret,
        previous_secret_until: previous_secret_until.map(from_millis).transpose()?,
        events_after: Some(events_after),
        created_at: from_millis(created_at)?,
        updated_at: from_millis(updated_at)?,
    })
}

fn event_types_json(webhook: &StoredWebhook) -> String {
    serde_json::Value::from(webhook.event_types.clone()).to_string()
}

fn enabled_webhooks(connection: &Connection) -> Result<Vec<StoredWebhook>, StoreError> {
    select_all(
        connection,
        &format!("{SELECT_WEBHOOK} WHERE enabled = 1"),
        [],
        read_webhook,
        into_webhook,
    )
}

/// Marks due deliveries leased; returns `(id, webhook, event seq,
/// attempts before)` of each. Only this runs on the writer: the events and
/// subscriptions are read after, on a reader (the writer is every write's
/// bottleneck).
fn lease_on(
    connection: &Connection,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> Result<Vec<(i64, String, i64, i32)>, StoreError> {
    let due: Vec<(i64, String, i64, i32)> = select_all(
        connection,
        "SELECT d.id, d.webhook_id, d.event_seq, d.attempts FROM webhook_deliveries d \
         JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.state IN ('pending', 'leased') AND d.next_attempt_at <= ?1 \
           AND (d.state = 'pending' OR d.lease_until < ?1) AND w.enabled = 1 \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
               WHERE e.webhook_id = d.webhook_id AND e.record_key = d.record_key \
                 AND e.event_seq < d.event_seq AND e.state IN ('pending', 'leased')) \
         ORDER BY d.next_attempt_at, d.event_seq LIMIT ?2",
        params![now, limit],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        Ok,
    )?;
    let mut mark = connection
        .prepare_cached(
            "UPDATE webhook_deliveries SET state = 'leased', lease_owner = ?2, lease_until = ?3 \
             WHERE id = ?1",
        )
        .map_err(from_rusqlite)?;
    for (id, ..) in &due {
        mark.execute(params![id, owner, lease_until])
            .map_err(from_rusqlite)?;
    }
    Ok(due)
}

/// The subscriptions of leased deliveries, read on a webhook file reader.
fn leased_webhooks(
    connection: &Connection,
    due: &[(i64, String, i64, i32)],
) -> Result<Vec<StoredWebhook>, StoreError> {
    let mut webhooks: Vec<StoredWebhook> = Vec::new();
    for (_, webhook_id, ..) in due {
        if webhooks.iter().any(|webhook| &webhook.id == webhook_id) {
            continue;
        }
        let found = connection
            .prepare_cached(&format!("{SELECT_WEBHOOK} WHERE id = ?1"))
            .and_then(|mut select| {
                select
                    .query_row(params![webhook_id], read_webhook)
                    .optional()
            })
            .map_err(from_rusqlite)?
            .map(into_webhook)
            .transpose()?;
        webhooks.extend(found);
    }
    Ok(webhooks)
}

/// The events of leased deliveries, read on a records' reader, joined to
/// their subscriptions (a delivery whose subscription or event is gone is
/// left out).
fn leased_parts(
    connection: &Connection,
    due: Vec<(i64, String, i64, i32)>,
    webhooks: &[StoredWebhook],
) -> Result<Vec<LeasedDelivery>, StoreError> {
    let mut leased = Vec::with_capacity(due.len());
    for (id, webhook_id, seq, attempts_before) in due {
        let Some(webhook) = webhooks.iter().find(|webhook| webhook.id == webhook_id) else {
            continue;
        };
        let event = connection
            .prepare_cached(&format!("{SELECT_EVENT} WHERE seq = ?1"))
            .and_then(|mut select| select.query_row(params![seq], read_event).optional())
            .map_err(from_rusqlite)?
            .map(into_event)
            .transpose()?;
        if let Some(event) = event {
            leased.push(LeasedDelivery {
                id,
                webhook: webhook.clone(),
                event,
                attempts_before,
            });
        }
    }
    Ok(leased)
}

impl SqliteStore {
    /// Where `webhook`'s events start: as given, or (`None`) after the last
    /// event committed, read from the records' file.
    fn events_after(&self, webhook: &StoredWebhook) -> Result<i64, StoreError> {
        match webhook.events_after {
            Some(after) => Ok(after),
            None => self.readers.read(|connection| {
                connection
                    .query_row("SELECT COALESCE(MAX(seq), 0) FROM history", [], |row| {
                        row.get(0)
                    })
                    .map_err(from_rusqlite)
            }),
        }
    }
}

/// Moves the webhook tables from the records' file `records`, where
/// migration 0204 made them, to the webhook file `webhooks` (already
/// migrated), once: copied in one transaction of the webhook file, then
/// dropped in one of the records' file. A crash between the two copies
/// them again at the next start (the copy skips what is there). Also sets
/// the dispatch horizon of a new webhook file, if nothing was moved.
pub(super) fn move_webhook_tables(records: &Path, webhooks: &Path) -> Result<(), StoreError> {
    let connection = Connection::open(webhooks).map_err(from_rusqlite)?;
    connection
        .busy_timeout(Duration::from_secs(10))
        .map_err(from_rusqlite)?;
    let records = records.to_str().ok_or_else(|| {
        StoreError::Other(format!(
            "the database path {} is not UTF-8",
            records.display()
        ))
    })?;
    connection
        .execute("ATTACH DATABASE ?1 AS records", params![records])
        .map_err(from_rusqlite)?;
    let in_records: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM records.sqlite_master \
             WHERE type = 'table' AND name = 'event_dispatch')",
            [],
            |row| row.get(0),
        )
        .map_err(from_rusqlite)?;
    if in_records {
        connection
            .execute_batch(
                "BEGIN IMMEDIATE; \
                 INSERT OR IGNORE INTO main.event_dispatch SELECT * FROM records.event_dispatch; \
                 INSERT OR IGNORE INTO main.webhooks SELECT * FROM records.webhooks; \
                 INSERT OR IGNORE INTO main.webhook_deliveries \
                     SELECT * FROM records.webhook_deliveries; \
                 INSERT OR IGNORE INTO main.webhook_attempts SELECT * FROM records.webhook_attempts; \
                 COMMIT; \
                 BEGIN IMMEDIATE; \
                 DROP TABLE records.webhook_attempts; \
                 DROP TABLE records.webhook_deliveries; \
                 DROP TABLE records.webhooks; \
                 DROP TABLE records.event_dispatch; \
                 COMMIT;",
            )
            .map_err(from_rusqlite)?;
    }
    connection
        .execute_batch(
            "INSERT OR IGNORE INTO main.event_dispatch (id, horizon) \
             SELECT 1, COALESCE(MAX(seq), 0) FROM records.history; \
             DETACH DATABASE records;",
        )
        .map_err(from_rusqlite)
}

fn insert_attempt(connection: &Connection, attempt: &AttemptRecord) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO webhook_attempts \
             (webhook_id, event_id, attempt, at, status, latency_ms, error, outcome) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                attempt.webhook_id,
                attempt.event_id,
                attempt.attempt,
                millis(attempt.at),
                attempt.status,
                attempt.latency_ms,
                attempt.error,
                attempt.outcome,
            ])
        })
        .map(|_| ())
        .map_err(from_rusqlite)
}

fn finish_on(
    connection: &Connection,
    owner: &str,
    finished: &[FinishedDelivery],
) -> Result<(), StoreError> {
    let now = millis(Utc::now());
    for done in finished {
        let (state, next_at) = match &done.outcome {
            DeliveryOutcome::Delivered => ("delivered", now),
            DeliveryOutcome::Retry { at } => ("pending", millis(*at)),
            DeliveryOutcome::Failed | DeliveryOutcome::Disable { .. } => ("failed", now),
        };
        let finished_at = (state != "pending").then_some(now);
        connection
            .prepare_cached(
                "UPDATE webhook_deliveries SET state = ?3, attempts = attempts + 1, \
                 next_attempt_at = ?4, finished_at = ?5, lease_owner = NULL, lease_until = NULL \
                 WHERE id = ?1 AND lease_owner = ?2 AND state = 'leased'",
            )
            .and_then(|mut update| {
                update.execute(params![
                    done.delivery_id,
                    owner,
                    state,
                    next_at,
                    finished_at
                ])
            })
            .map_err(from_rusqlite)?;
        if let DeliveryOutcome::Disable { reason } = &done.outcome {
            connection
                .prepare_cached(
                    "UPDATE webhooks SET enabled = 0, disabled_reason = ?2, updated_at = ?3 \
                     WHERE id = ?1",
                )
                .and_then(|mut update| {
                    update.execute(params![done.attempt.webhook_id, reason, now])
                })
                .map_err(from_rusqlite)?;
        }
        insert_attempt(connection, &done.attempt)?;
    }
    Ok(())
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn events(
        &self,
        workspace: &WorkspaceId,
        after: i64,
        limit: u32,
        only: &[(String, String)],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut sql = format!("{SELECT_EVENT} WHERE workspace_id = ?1 AND seq > ?2");
        let mut parameters: Vec<SqlValue> = vec![
            SqlValue::Text(workspace.as_str().to_owned()),
            SqlValue::Integer(after),
        ];
        if !only.is_empty() {
            let mut alternatives = Vec::with_capacity(only.len());
            for (kind, action) in only {
                parameters.push(SqlValue::Text(kind.clone()));
                parameters.push(SqlValue::Text(action.clone()));
                alternatives.push(format!(
                    "(kind = ?{} AND action = ?{})",
                    parameters.len() - 1,
                    parameters.len()
                ));
            }
            sql.push_str(&format!(" AND ({})", alternatives.join(" OR ")));
        }
        parameters.push(SqlValue::Integer(i64::from(limit)));
        sql.push_str(&format!(" ORDER BY seq LIMIT ?{}", parameters.len()));
        self.scan(move |connection| {
            select_all(
                connection,
                &sql,
                params_from_iter(parameters.iter()),
                read_event,
                into_event,
            )
        })
        .await
    }

    async fn dispatch(&self, limit: u32, route: Router<'_>) -> Result<u64, StoreError> {
        // The router is borrowed, and the writer runs closures that own
        // what they use: read the subscriptions and events here, route
        // them, and hand the writer only the rows to insert. The horizon
        // moves (and the rows go in) only if it is still where this read
        // found it, so a dispatcher that raced this one costs nothing but
        // a round. A cheap read first: with no subscription enabled there is
        // nothing to read, and nothing to write (SQLite's feed needs no
        // horizon).
        let (horizon, webhooks) = self.webhook_readers.read(|connection| {
            let horizon: i64 = connection
                .query_row(
                    "SELECT horizon FROM event_dispatch WHERE id = 1",
                    [],
                    |row| row.get(0),
                )
                .map_err(from_rusqlite)?;
            Ok((horizon, enabled_webhooks(connection)?))
        })?;
        // Events no subscription wants (committed before each was made)
        // are not read at all.
        let Some(start) = webhooks
            .iter()
            .map(|webhook| webhook.events_after.unwrap_or(0))
            .min()
            .map(|first| first.max(horizon))
        else {
            return Ok(0);
        };
        let events = self
            .scan(move |connection| {
                select_all(
                    connection,
                    "SELECT seq, workspace_id, kind, action, record_id FROM history \
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    params![start, limit],
                    |row| {
                        Ok(EventHead {
                            seq: row.get(0)?,
                            workspace: WorkspaceId::new(row.get::<_, String>(1)?),
                            kind: row.get(2)?,
                            action: row.get(3)?,
                            record_id: row.get(4)?,
                        })
                    },
                    Ok,
                )
            })
            .await?;
        let Some(last) = events.last().map(|event| event.seq) else {
            return Ok(0);
        };
        let mut rows = Vec::new();
        for event in &events {
            for webhook_id in route(event, &webhooks) {
                rows.push((webhook_id, event.seq, event.record_key()));
            }
        }
        let passed = events.len() as u64;
        self.webhook_writer
            .write_with(BOOKKEEPING, move |connection| {
                let moved = connection
                    .execute(
                        "UPDATE event_dispatch SET horizon = ?2 WHERE id = 1 AND horizon = ?1",
                        params![horizon, last],
                    )
                    .map_err(from_rusqlite)?;
                if moved == 0 {
                    return Ok(0);
                }
                let now = millis(Utc::now());
                let mut insert = connection
                    .prepare_cached(
                        "INSERT OR IGNORE INTO webhook_deliveries (webhook_id, event_seq, \
                         record_key, state, attempts, next_attempt_at, created_at) \
                         VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4)",
                    )
                    .map_err(from_rusqlite)?;
                for (webhook_id, seq, key) in &rows {
                    insert
                        .execute(params![webhook_id, seq, key, now])
                        .map_err(from_rusqlite)?;
                }
                Ok(passed)
            })
            .await
    }

    fn committed_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.committed.clone()
    }

    async fn maintain_deliveries(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release_orphaned_leases(&self) -> Result<u64, StoreError> {
        self.webhook_writer
            .write_with(BOOKKEEPING, |connection| {
                connection
                    .execute(
                        "UPDATE webhook_deliveries SET state = 'pending', lease_owner = NULL, \
                         lease_until = NULL WHERE state = 'leased'",
                        [],
                    )
                    .map(|count| count as u64)
                    .map_err(from_rusqlite)
            })
            .await
    }

    async fn lease_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<LeasedDelivery>, StoreError> {
        let owner = owner.to_owned();
        let now_ms = millis(now);
        let until = now_ms + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let due = self
            .webhook_writer
            .write_with(BOOKKEEPING, move |connection| {
                lease_on(connection, &owner, now_ms, until, limit)
            })
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let webhooks = self
            .webhook_readers
            .read(|connection| leased_webhooks(connection, &due))?;
        self.scan(move |connection| leased_parts(connection, due, &webhooks))
            .await
    }

    async fn finish_deliveries(
        &self,
        owner: &str,
        finished: &[FinishedDelivery],
    ) -> Result<(), StoreError> {
        let owner = owner.to_owned();
        let finished = finished.to_vec();
        self.webhook_writer
            .write_with(BOOKKEEPING, move |connection| {
                finish_on(connection, &owner, &finished)
            })
            .await
    }

    async fn insert_webhook(&self, webhook: &StoredWebhook) -> Result<(), StoreError> {
        let webhook = webhook.clone();
        let events_after = self.events_after(&webhook)?;
        self.webhook_writer
            .write(move |connection| {
                connection
                    .prepare_cached(
                        "INSERT INTO webhooks (id, workspace_id, url, event_types, description, \
                         enabled, disabled_reason, secret, previous_secret, \
                         previous_secret_until, created_at, updated_at, events_after) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    )
                    .and_then(|mut insert| {
                        insert.execute(params![
                            webhook.id,
                            webhook.workspace.as_str(),
                            webhook.url,
                            event_types_json(&webhook),
                            webhook.description,
                            webhook.enabled,
                            webhook.disabled_reason,
                            webhook.secret,
                            webhook.previous_secret,
                            webhook.previous_secret_until.map(millis),
                            millis(webhook.created_at),
                            millis(webhook.updated_at),
                            events_after,
                        ])
                    })
                    .map(|_| ())
                    .map_err(from_rusqlite)
            })
            .await
    }

    async fn webhook(
        &self,
        workspace: &WorkspaceId,
        id: &str,
    ) -> Result<Option<StoredWebhook>, StoreError> {
        let key = [workspace.as_str(), id].map(str::to_owned);
        self.webhook_readers.read(move |connection| {
            connection
                .prepare_cached(&format!(
                    "{SELECT_WEBHOOK} WHERE workspace_id = ?1 AND id = ?2"
                ))
                .and_then(|mut select| {
                    select
                        .query_row(params![key[0], key[1]], read_webhook)
                        .optional()
                })
                .map_err(from_rusqlite)?
                .map(into_webhook)
                .transpose()
        })
    }

    async fn webhooks(&self, workspace: &WorkspaceId) -> Result<Vec<StoredWebhook>, StoreError> {
        let workspace = workspace.as_str().to_owned();
        self.scan_on(&self.webhook_readers, move |connection| {
            select_all(
                connection,
                &format!("{SELECT_WEBHOOK} WHERE workspace_id = ?1 ORDER BY created_at, id"),
                params![workspace],
                read_webhook,
                into_webhook,
            )
        })
        .await
    }

    async fn update_webhook(&self, webhook: &StoredWebhook) -> Result<bool, StoreError> {
        let webhook = webhook.clone();
        let events_after = self.events_after(&webhook)?;
        self.webhook_writer
            .write(move |connection| {
                connection
                    .prepare_cached(
                        "UPDATE webhooks SET url = ?3, event_types = ?4, description = ?5, \
                         enabled = ?6, disabled_reason = ?7, secret = ?8, previous_secret = ?9, \
                         previous_secret_until = ?10, updated_at = ?11, \
                         events_after = ?12 \
                         WHERE workspace_id = ?1 AND id = ?2",
                    )
                    .and_then(|mut update| {
                        update.execute(params![
                            webhook.workspace.as_str(),
                            webhook.id,
                            webhook.url,
                            event_types_json(&webhook),
                            webhook.description,
                            webhook.enabled,
                            webhook.disabled_reason,
                            webhook.secret,
                            webhook.previous_secret,
                            webhook.previous_secret_until.map(millis),
                            millis(webhook.updated_at),
                            events_after,
                        ])
                    })
                    .map(|changed| changed > 0)
                    .map_err(from_rusqlite)
            })
            .await
    }

    async fn delete_webhook(&self, workspace: &WorkspaceId, id: &str) -> Result<bool, StoreError> {
        let key = [workspace.as_str(), id].map(str::to_owned);
        self.webhook_writer
            .write(move |connection| {
                let deleted = connection
                    .execute(
                        "DELETE FROM webhooks WHERE workspace_id = ?1 AND id = ?2",
                        params![key[0], key[1]],
                    )
                    .map_err(from_rusqlite)?;
                if deleted > 0 {
                    for table in ["webhook_deliveries", "webhook_attempts"] {
                        connection
                            .execute(
                                &format!("DELETE FROM {table} WHERE webhook_id = ?1"),
                                params![key[1]],
                            )
                            .map_err(from_rusqlite)?;
                    }
                }
                Ok(deleted > 0)
            })
            .await
    }

    async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<(), StoreError> {
        let attempt = attempt.clone();
        self.webhook_writer
            .write(move |connection| insert_attempt(connection, &attempt))
            .await
    }

    async fn attempts(
        &self,
        workspace: &WorkspaceId,
        webhook_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredAttempt>, StoreError> {
        let key = [workspace.as_str(), webhook_id].map(str::to_owned);
        self.scan_on(&self.webhook_readers, move |connection| {
            select_all(
                connection,
                "SELECT a.id, a.webhook_id, a.event_id, a.attempt, a.at, a.status, a.latency_ms, \
                 a.error, a.outcome FROM webhook_attempts a \
                 JOIN webhooks w ON w.id = a.webhook_id \
                 WHERE w.workspace_id = ?1 AND a.webhook_id = ?2 AND a.id > ?3 \
                 ORDER BY a.id LIMIT ?4",
                params![key[0], key[1], after, limit],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i32>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, Option<u16>>(5)?,
                        row.get::<_, i64>(6)?,
                        row.get::<_, Option<String>>(7)?,
                        row.get::<_, String>(8)?,
                    ))
                },
                |(id, webhook_id, event_id, attempt, at, status, latency_ms, error, outcome)| {
                    Ok(StoredAttempt {
                        id,
                        attempt: AttemptRecord {
                            webhook_id,
                            event_id,
                            attempt,
                            at: from_millis(at)?,
                            status,
                            latency_ms,
                            error,
                            outcome,
                        },
                    })
                },
            )
        })
        .await
    }

    async fn delivery_counts(
        &self,
        workspace: &WorkspaceId,
        webhook_id: &str,
    ) -> Result<DeliveryCounts, StoreError> {
        let key = [workspace.as_str(), webhook_id].map(str::to_owned);
        self.scan_on(&self.webhook_readers, move |connection| {
            let rows: Vec<(String, i64)> = select_all(
                connection,
                "SELECT d.state, COUNT(*) FROM webhook_deliveries d \
                 JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE w.workspace_id = ?1 AND d.webhook_id = ?2 GROUP BY d.state",
                params![key[0], key[1]],
                |row| Ok((row.get(0)?, row.get(1)?)),
                Ok,
            )?;
            Ok(DeliveryCounts::from_rows(rows))
        })
        .await
    }

    async fn replay(
        &self,
        workspace: &WorkspaceId,
        webhook_id: Option<&str>,
        since: DateTime<Utc>,
        include_delivered: bool,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let workspace = workspace.as_str().to_owned();
        let webhook_id = webhook_id.map(str::to_owned);
        self.webhook_writer
            .write(move |connection| {
                connection
                    .execute(
                        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, \
                         next_attempt_at = ?4, finished_at = NULL \
                         WHERE created_at >= ?2 \
                           AND (state = 'failed' OR (?3 AND state = 'delivered')) \
                           AND webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = ?1 \
                               AND (?5 IS NULL OR id = ?5))",
                        params![
                            workspace,
                            millis(since),
                            include_delivered,
                            millis(now),
                            webhook_id
                        ],
                    )
                    .map(|count| count as u64)
                    .map_err(from_rusqlite)
            })
            .await
    }

    async fn purge_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let before = millis(before);
        self.webhook_writer
            .write_with(BOOKKEEPING, move |connection| {
                let deliveries = connection
                    .execute(
                        "DELETE FROM webhook_deliveries WHERE finished_at IS NOT NULL \
                         AND finished_at < ?1",
                        params![before],
                    )
                    .map_err(from_rusqlite)?;
                let attempts = connection
                    .execute(
                        "DELETE FROM webhook_attempts WHERE at < ?1",
                        params![before],
                    )
                    .map_err(from_rusqlite)?;
                Ok((deliveries + attempts) as u64)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MIGRATOR, SqliteStore, webhook_file_path};
    use super::*;
    use sqlx::ConnectOptions;
    use sqlx::sqlite::SqliteConnectOptions;
    use std::str::FromStr;

    /// A records' file as the release before the webhook file left it:
    /// migrated, with a subscription, a delivery, an attempt and a horizon
    /// in its own tables.
    async fn records_file_with_webhooks_inside(path: &Path) {
        let url = format!("sqlite://{}", path.display());
        let mut connection = SqliteConnectOptions::from_str(&url)
            .expect("url")
            .create_if_missing(true)
            .connect()
            .await
            .expect("connect");
        MIGRATOR.run(&mut connection).await.expect("migrate");
        drop(connection);
        let connection = Connection::open(path).expect("open");
        connection
            .execute_batch(
                "UPDATE event_dispatch SET horizon = 41; \
                 INSERT INTO webhooks (id, workspace_id, url, event_types, enabled, secret, \
                     events_after, created_at, updated_at) \
                     VALUES ('wh_1', 'acme', 'https://example.com/hook', '[\"*\"]', 1, \
                     'sealed', 7, 1000, 1000); \
                 INSERT INTO webhook_deliveries (webhook_id, event_seq, record_key, state, \
                     attempts, next_attempt_at, created_at, finished_at) \
                     VALUES ('wh_1', 40, 'icp/1', 'failed', 8, 2000, 1500, 2000); \
                 INSERT INTO webhook_attempts (webhook_id, event_id, attempt, at, status, \
                     latency_ms, outcome) \
                     VALUES ('wh_1', 'evt_0000000000000040', 8, 2000, 500, 12, 'failed');",
            )
            .expect("old rows");
    }

    fn horizon(store: &SqliteStore) -> i64 {
        store
            .webhook_readers
            .read(|connection| {
                connection
                    .query_row("SELECT horizon FROM event_dispatch", [], |row| row.get(0))
                    .map_err(from_rusqlite)
            })
            .expect("horizon")
    }

    fn tables(path: &Path) -> Vec<String> {
        let connection = Connection::open(path).expect("open");
        let mut select = connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .expect("prepare");
        select
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[tokio::test]
    async fn opening_a_database_moves_its_webhook_tables_to_the_webhook_file() {
        let directory = tempfile::tempdir().expect("directory");
        let path = directory.path().join("clientele.db");
        records_file_with_webhooks_inside(&path).await;
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::connect(&url).await.expect("open");

        let workspace = WorkspaceId::new("acme");
        let webhooks = store.webhooks(&workspace).await.expect("webhooks");
        assert_eq!(webhooks.len(), 1);
        assert_eq!(webhooks[0].id, "wh_1");
        assert_eq!(webhooks[0].events_after, Some(7));
        let attempts = store
            .attempts(&workspace, "wh_1", 0, 10)
            .await
            .expect("attempts");
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].attempt.status, Some(500));
        let counts = store
            .delivery_counts(&workspace, "wh_1")
            .await
            .expect("counts");
        assert_eq!(counts.failed, 1);
        assert_eq!(horizon(&store), 41);
        drop(store);

        let left: Vec<String> = tables(&path)
            .into_iter()
            .filter(|name| name.contains("webhook") || name == "event_dispatch")
            .collect();
        assert!(left.is_empty(), "still in the records' file: {left:?}");
        // Opening again moves nothing and loses nothing.
        let store = SqliteStore::connect(&url).await.expect("open again");
        assert_eq!(store.webhooks(&workspace).await.expect("webhooks").len(), 1);
        assert!(webhook_file_path(&path).exists());
    }

    #[tokio::test]
    async fn a_lost_webhook_file_is_made_again_starting_after_the_history() {
        let directory = tempfile::tempdir().expect("directory");
        let path = directory.path().join("clientele.db");
        let url = format!("sqlite://{}", path.display());
        drop(SqliteStore::connect(&url).await.expect("open"));
        // History written while the webhook file existed, which is then
        // lost (deleted, or not restored from a backup).
        Connection::open(&path)
            .expect("open")
            .execute_batch(
                "INSERT INTO history (workspace_id, kind, record_id, version, action, user_id, \
                     request_id, at, changes) \
                 VALUES ('acme', 'icp', 'a', 1, 'create', 'ann', 'r1', 1000, '[]'), \
                        ('acme', 'icp', 'a', 2, 'update', 'ann', 'r2', 2000, '[]');",
            )
            .expect("history");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", webhook_file_path(&path).display()));
        }
        let store = SqliteStore::connect(&url).await.expect("open again");
        // Events committed before the file was made again are not sent.
        assert_eq!(horizon(&store), 2);
        assert!(tables(&webhook_file_path(&path)).contains(&"webhook_deliveries".to_owned()));
    }
}
