//! The PostgreSQL implementation of [`Store`]: for several stateless
//! Clientele instances behind a load balancer on one database.
//!
//! Concurrency: write transactions run at READ COMMITTED and read the
//! record they change with `SELECT … FOR UPDATE`. The row lock makes
//! concurrent read-modify-writes of one record — from any instance — queue
//! behind each other, each seeing the previous one's commit, so no update
//! is lost and of several PATCHes carrying the same `If-Match` exactly one
//! wins. Row locks were chosen over SERIALIZABLE (which aborts the losers
//! and needs a retry loop around the request) and over a blind version
//! check (which turns every contended write into a retry): waiting for one
//! row is cheaper than redoing the work, and different records never wait
//! for each other.
//!
//! Durability: PostgreSQL's defaults (`fsync = on`,
//! `synchronous_commit = on`) flush the WAL before `COMMIT` returns.
//!
//! Outages: connections are checked before use and the pool gives up after
//! `acquire_timeout`, so while the database is unreachable requests fail
//! fast with 503 and the pool reconnects by itself when it returns.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::value::RawValue;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};

use super::query::{self, Dialect, Operand, RecordQuery};
use super::search::{self, TermQuery};
use super::stats::{PoolReport, StoreStats, WriterStats};
use super::{
    ApiKeyRecord, Claim, HistoryEntry, IdempotencyKey, ImportCheckpoint, Kept, KeptResponse, Store,
    StoreError, StoredRecord, StoredRole, WorkspaceId, WriteTx,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Pool settings; see the README's deployment section.
#[derive(Debug, Clone, Copy)]
pub struct PgSettings {
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503.
    pub acquire_timeout: Duration,
}

impl Default for PgSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// A PostgreSQL database, shared by every instance.
pub struct PostgresStore {
    pool: PgPool,
    /// Raised after each committed write (see
    /// [`super::events::EventStore::committed_signal`]).
    committed: std::sync::Arc<tokio::sync::Notify>,
    /// The history gap the dispatcher waits on (see [`events`]).
    gap: std::sync::Mutex<events::GapWatch>,
    /// Write transactions' waits for a connection and commit times.
    writes: std::sync::Arc<WriterStats>,
    max_connections: u32,
}

mod events;

impl PostgresStore {
    /// Connects to the database at `url` and migrates it (migrations take
    /// an advisory lock, so instances may start together).
    pub async fn connect(url: &str, settings: PgSettings) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|error| StoreError::Other(format!("invalid PostgreSQL URL: {error}")))?
            .application_name("clientele")
            // A backstop for a transaction left open by a bug: it would
            // hold row locks, and hold back the change feed's horizon.
            .options([("idle_in_transaction_session_timeout", "60s")]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(from_sqlx)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|error| StoreError::Other(format!("migration failed: {error}")))?;
        Ok(Self {
            pool,
            committed: std::sync::Arc::new(tokio::sync::Notify::new()),
            gap: std::sync::Mutex::new(events::GapWatch::default()),
            writes: std::sync::Arc::default(),
            max_connections: settings.max_connections,
        })
    }
}

fn from_sqlx(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        // Class 08 (connection), 40001/40P01 (serialization, deadlock), 53
        // (resources), 57P (shutdown): retrying may work.
        sqlx::Error::Database(db)
            if db.code().is_some_and(|code| {
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "40001"
                    || code == "40P01"
            }) =>
        {
            StoreError::Unavailable(db.message().to_owned())
        }
        _ => StoreError::Other(error.to_string()),
    }
}

fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

fn from_millis(value: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(value)
        .single()
        .ok_or_else(|| StoreError::Other(format!("stored timestamp {value} out of range")))
}

/// The parameters of a rendered query: the workspace, the kind, then the
/// query's own values, for both its count and its page.
fn query_arguments(
    workspace: &WorkspaceId,
    kind: &str,
    binds: &[Operand],
) -> Result<sqlx::postgres::PgArguments, StoreError> {
    use sqlx::Arguments;
    let mut arguments = sqlx::postgres::PgArguments::default();
    let add = |added: Result<(), sqlx::error::BoxDynError>| {
        added.map_err(|error| StoreError::Other(format!("binding a query value: {error}")))
    };
    add(arguments.add(workspace.as_str().to_owned()))?;
    add(arguments.add(kind.to_owned()))?;
    for operand in binds {
        add(match operand {
            Operand::Text(text) => arguments.add(text.clone()),
            Operand::Integer(number) => arguments.add(*number),
            Operand::Bool(flag) => arguments.add(*flag),
        })?;
    }
    Ok(arguments)
}

/// A record's JSON text, to be bound as JSONB as it is.
fn raw_json(text: &str) -> Result<&RawValue, StoreError> {
    serde_json::from_str(text)
        .map_err(|error| StoreError::Other(format!("a record body is not JSON: {error}")))
}

fn record_from_row(row: &PgRow) -> Result<StoredRecord, StoreError> {
    let Json(body): Json<Box<RawValue>> = row.try_get("body").map_err(from_sqlx)?;
    Ok(StoredRecord {
        kind: row.try_get("kind").map_err(from_sqlx)?,
        id: row.try_get("id").map_err(from_sqlx)?,
        version: row.try_get("version").map_err(from_sqlx)?,
        lookup: row.try_get("lookup").map_err(from_sqlx)?,
        body: body.get().to_owned(),
        created_at: from_millis(row.try_get("created_at").map_err(from_sqlx)?)?,
        updated_at: from_millis(row.try_get("updated_at").map_err(from_sqlx)?)?,
    })
}

fn history_from_row(row: &PgRow) -> Result<HistoryEntry, StoreError> {
    let Json(changes): Json<serde_json::Value> = row.try_get("changes").map_err(from_sqlx)?;
    Ok(HistoryEntry {
        kind: row.try_get("kind").map_err(from_sqlx)?,
        record_id: row.try_get("record_id").map_err(from_sqlx)?,
        version: row.try_get("version").map_err(from_sqlx)?,
        action: row.try_get("action").map_err(from_sqlx)?,
        user_id: row.try_get("user_id").map_err(from_sqlx)?,
        key_id: row.try_get("key_id").map_err(from_sqlx)?,
        request_id: row.try_get("request_id").map_err(from_sqlx)?,
        client_request_id: row.try_get("client_request_id").map_err(from_sqlx)?,
        at: from_millis(row.try_get("at").map_err(from_sqlx)?)?,
        changes,
    })
}

fn api_key_from_row(row: &PgRow) -> Result<ApiKeyRecord, StoreError> {
    let role: String = row.try_get("role").map_err(from_sqlx)?;
    let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(from_sqlx)?;
    Ok(ApiKeyRecord {
        id: row.try_get("id").map_err(from_sqlx)?,
        workspace: WorkspaceId::new(
            row.try_get::<String, _>("workspace_id")
                .map_err(from_sqlx)?,
        ),
        user_id: row.try_get("user_id").map_err(from_sqlx)?,
        role: StoredRole::parse(&role)
            .ok_or_else(|| StoreError::Other(format!("unknown stored role '{role}'")))?,
        token_hash: row.try_get("token_hash").map_err(from_sqlx)?,
        token_prefix: row.try_get("token_prefix").map_err(from_sqlx)?,
        created_at: from_millis(row.try_get("created_at").map_err(from_sqlx)?)?,
        revoked_at: revoked_at.map(from_millis).transpose()?,
    })
}

/// The records among the ids of an array (`$3`), in id order.
const SELECT_MANY: &str = "SELECT kind, id, version, lookup, body, created_at, updated_at \
     FROM records WHERE workspace_id = $1 AND kind = $2 AND id = ANY($3) ORDER BY id";
/// The columns [`record_from_row`] reads.
const RECORD_COLUMNS: &str = "kind, id, version, lookup, body, created_at, updated_at";
const SELECT_RECORD: &str = "SELECT kind, id, version, lookup, body, created_at, updated_at \
     FROM records WHERE workspace_id = $1 AND kind = $2 AND id = $3";
const SELECT_RECORD_FOR_UPDATE: &str = "SELECT kind, id, version, lookup, body, created_at, updated_at \
     FROM records WHERE workspace_id = $1 AND kind = $2 AND id = $3 FOR UPDATE";
const SELECT_BY_LOOKUP_FOR_UPDATE: &str = "SELECT kind, id, version, lookup, body, created_at, updated_at \
     FROM records WHERE workspace_id = $1 AND kind = $2 AND lookup = $3 FOR UPDATE";
const SELECT_BY_LOOKUP: &str = "SELECT kind, id, version, lookup, body, created_at, updated_at \
     FROM records WHERE workspace_id = $1 AND kind = $2 AND lookup = $3";

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(from_sqlx)
    }

    /// Why this matters: a record is read and written by its primary key
    /// (`workspace_id, kind, id`), and four other indexes of `records`
    /// start with `workspace_id, kind`. Without column statistics the
    /// planner guesses that `workspace_id = $1 AND kind = $2` matches one
    /// row, so every one of them costs the same as the primary key for a
    /// lookup, and it picked `records_body_organization`, reading every
    /// record of the kind to find one: measured on a fresh database with
    /// 2,000 ICPs, 2,000 index entries read per lookup and half the PATCH
    /// rate. With statistics (`kind = 'icp'` matches half the table) the
    /// primary key wins. Autovacuum would gather them, but only when it
    /// runs (it may be off, and it wakes once a minute), so the server
    /// applies autovacuum's own rule itself: a table with more than 50 +
    /// 10% of its rows changed since its last analysis is analyzed, at
    /// most once a minute (a table never analyzed, at once).
    async fn refresh_statistics(&self) -> Result<Vec<String>, StoreError> {
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname <> '_sqlx_migrations' \
               AND n_mod_since_analyze > 50 + 0.1 * n_live_tup \
               AND (COALESCE(last_analyze, last_autoanalyze) IS NULL \
                    OR GREATEST(last_analyze, last_autoanalyze) < now() - interval '1 minute') \
             ORDER BY relname",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        // Autovacuum's rule for tables that mostly grow (PostgreSQL 13's
        // insert threshold: 1,000 + 20% of the rows inserted since the
        // last vacuum), applied for the same reason: until a vacuum marks
        // its pages all-visible, an index-only scan of `record_terms` reads
        // the table too for every entry. Over a million persons, a lead
        // list's candidate page took 3 s before and 98 ms after. A plain
        // VACUUM blocks neither reads nor writes.
        let unvacuumed: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname <> '_sqlx_migrations' \
               AND n_ins_since_vacuum > 1000 + 0.2 * n_live_tup \
               AND (COALESCE(last_vacuum, last_autovacuum) IS NULL \
                    OR GREATEST(last_vacuum, last_autovacuum) < now() - interval '1 minute') \
             ORDER BY relname",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        let mut refreshed = Vec::with_capacity(stale.len() + unvacuumed.len());
        for table in &unvacuumed {
            let quoted = format!("\"{}\"", table.replace('"', "\"\""));
            sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM (ANALYZE) {quoted}")))
                .execute(&self.pool)
                .await
                .map_err(from_sqlx)?;
            refreshed.push(format!("{table} (vacuumed)"));
        }
        for table in stale.iter().filter(|table| !unvacuumed.contains(table)) {
            let quoted = format!("\"{}\"", table.replace('"', "\"\""));
            sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {quoted}")))
                .execute(&self.pool)
                .await
                .map_err(from_sqlx)?;
            refreshed.push(table.clone());
        }
        Ok(refreshed)
    }

    async fn analyze_all(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(from_sqlx)
    }

    async fn get(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        id: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let row = sqlx::query(SELECT_RECORD)
            .bind(workspace.as_str())
            .bind(kind)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn get_by_lookup(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        lookup: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let row = sqlx::query(SELECT_BY_LOOKUP)
            .bind(workspace.as_str())
            .bind(kind)
            .bind(lookup)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn scan_by_creation(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        after: Option<(DateTime<Utc>, &str)>,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let (after_time, after_id) = match after {
            Some((time, id)) => (time.timestamp_millis(), id),
            None => (i64::MIN, ""),
        };
        let rows = sqlx::query(
            "SELECT kind, id, version, lookup, body, created_at, updated_at FROM records \
             WHERE workspace_id = $1 AND kind = $2 AND (created_at, id) > ($3, $4) \
             ORDER BY created_at, id LIMIT $5",
        )
        .bind(workspace.as_str())
        .bind(kind)
        .bind(after_time)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn import_checkpoint(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        source: &str,
    ) -> Result<Option<ImportCheckpoint>, StoreError> {
        let row: Option<(i64, bool)> = sqlx::query_as(
            "SELECT line, done FROM import_checkpoints \
             WHERE workspace_id = $1 AND kind = $2 AND source = $3",
        )
        .bind(workspace.as_str())
        .bind(kind)
        .bind(source)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        row.map(|(line, done)| {
            Ok(ImportCheckpoint {
                line: u64::try_from(line).map_err(|_| {
                    StoreError::Other(format!("stored import checkpoint line {line}"))
                })?,
                done,
            })
        })
        .transpose()
    }

    async fn list(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, id, version, lookup, body, created_at, updated_at FROM records \
             WHERE workspace_id = $1 AND kind = $2 ORDER BY created_at, id",
        )
        .bind(workspace.as_str())
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn query(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        query: &RecordQuery,
    ) -> Result<(Vec<StoredRecord>, u64), StoreError> {
        let statements =
            query::statements(query, kind, Dialect::Postgres).map_err(StoreError::Other)?;
        let arguments = query_arguments(workspace, kind, &statements.binds)?;
        let total: i64 = sqlx::query_scalar_with(
            sqlx::AssertSqlSafe(statements.count.clone()),
            arguments.clone(),
        )
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        let total = u64::try_from(total).unwrap_or(0);
        let page = sqlx::query_with(sqlx::AssertSqlSafe(statements.page(total)), arguments);
        let rows = page.fetch_all(&self.pool).await.map_err(from_sqlx)?;
        let records = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((records, total))
    }

    async fn search(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        query: &TermQuery,
        count: bool,
    ) -> Result<(Vec<StoredRecord>, Option<u64>), StoreError> {
        let sizing =
            search::estimates(query, Dialect::Postgres, count).map_err(StoreError::Other)?;
        let bind_all = |statement: String, binds: &[String]| {
            let mut bound = sqlx::query(sqlx::AssertSqlSafe(statement))
                .bind(workspace.as_str().to_owned())
                .bind(kind.to_owned());
            for value in binds {
                bound = bound.bind(value.clone());
            }
            bound
        };
        // One snapshot for the sizes, the count and the page.
        let mut transaction = self.pool.begin().await.map_err(from_sqlx)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        let mut sizes = Vec::with_capacity(sizing.len());
        for (position, statement, binds) in sizing {
            let row = bind_all(statement, &binds)
                .fetch_one(&mut *transaction)
                .await
                .map_err(from_sqlx)?;
            let size: i64 = row.try_get(0).map_err(from_sqlx)?;
            sizes.push((position, u64::try_from(size).unwrap_or(0)));
        }
        let intersected = count
            .then(|| search::intersection_count(query, Dialect::Postgres, &sizes))
            .flatten();
        let (page, counted) = search::render_sized(
            query,
            Dialect::Postgres,
            RECORD_COLUMNS,
            count && intersected.is_none(),
            &sizes,
        )
        .map_err(StoreError::Other)?;
        let total = match (intersected, counted) {
            (Some((statement, binds)), _) => {
                // Only a merge of the postings, for this statement (see
                // `search::intersection_count`); the page's probes need
                // nested loops again.
                for setting in ["enable_hashjoin = off", "enable_nestloop = off"] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL {setting}")))
                        .execute(&mut *transaction)
                        .await
                        .map_err(from_sqlx)?;
                }
                let row = bind_all(statement, &binds)
                    .fetch_one(&mut *transaction)
                    .await
                    .map_err(from_sqlx)?;
                for setting in ["enable_hashjoin", "enable_nestloop"] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("RESET {setting}")))
                        .execute(&mut *transaction)
                        .await
                        .map_err(from_sqlx)?;
                }
                let total: i64 = row.try_get(0).map_err(from_sqlx)?;
                Some(u64::try_from(total).unwrap_or(0))
            }
            (None, Some(counted)) => {
                let row = bind_all(counted.count.clone(), &counted.binds[..counted.count_binds])
                    .fetch_one(&mut *transaction)
                    .await
                    .map_err(from_sqlx)?;
                let total: i64 = row.try_get(0).map_err(from_sqlx)?;
                Some(u64::try_from(total).unwrap_or(0))
            }
            (None, None) => None,
        };
        let rows = bind_all(page.page.clone(), &page.binds)
            .fetch_all(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        transaction.commit().await.map_err(from_sqlx)?;
        let records = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((records, total))
    }

    async fn get_many(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = sqlx::query(SELECT_MANY)
            .bind(workspace.as_str())
            .bind(kind)
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn history(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        record_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<HistoryEntry>, u64), StoreError> {
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM history WHERE workspace_id = $1 AND kind = $2 AND record_id = $3",
        )
        .bind(workspace.as_str())
        .bind(kind)
        .bind(record_id)
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        let rows = sqlx::query(
            "SELECT kind, record_id, version, action, user_id, key_id, request_id, \
             client_request_id, at, changes \
             FROM history WHERE workspace_id = $1 AND kind = $2 AND record_id = $3 \
             ORDER BY seq LIMIT $4 OFFSET $5",
        )
        .bind(workspace.as_str())
        .bind(kind)
        .bind(record_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        let entries = rows
            .iter()
            .map(history_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((entries, u64::try_from(total).unwrap_or(0)))
    }

    async fn begin(&self) -> Result<Box<dyn WriteTx>, StoreError> {
        let asked = std::time::Instant::now();
        self.writes
            .waiting
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let transaction = self.pool.begin().await;
        self.writes
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        // Measured for the connections that came too, as the time a
        // write waited before it could start.
        self.writes
            .wait_seconds
            .observe(asked.elapsed().as_secs_f64());
        Ok(Box::new(PgWriteTx {
            transaction: RollbackOnDrop(Some(transaction.map_err(from_sqlx)?)),
            committed: self.committed.clone(),
            writes: self.writes.clone(),
        }))
    }

    fn stats(&self) -> StoreStats {
        let size = u64::from(self.pool.size());
        let idle = self.pool.num_idle() as u64;
        StoreStats {
            backend: "postgres",
            writers: vec![self.writes.report("records")],
            pools: vec![PoolReport {
                pool: "postgres",
                idle,
                in_use: size.saturating_sub(idle),
                max: Some(u64::from(self.max_connections)),
            }],
        }
    }

    async fn ensure_workspace(&self, workspace: &WorkspaceId) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO workspaces (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(workspace.as_str())
        .bind(millis(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(result.rows_affected() == 1)
    }

    async fn workspace_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM workspaces")
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys \
             (id, workspace_id, user_id, role, token_hash, token_prefix, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&key.id)
        .bind(key.workspace.as_str())
        .bind(&key.user_id)
        .bind(key.role.as_str())
        .bind(&key.token_hash)
        .bind(&key.token_prefix)
        .bind(millis(key.created_at))
        .bind(key.revoked_at.map(millis))
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(from_sqlx)
    }

    async fn find_api_key(&self, token_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(millis(Utc::now()))
                .execute(&self.pool)
                .await
                .map_err(from_sqlx)?;
        Ok(result.rows_affected() == 1)
    }
    async fn idempotency_get(
        &self,
        key: &IdempotencyKey,
        since: DateTime<Utc>,
    ) -> Result<Option<Kept>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, started_at, status, headers, body FROM idempotency_keys \
             WHERE workspace_id = $1 AND caller = $2 AND idempotency_key = $3 \
             AND (status IS NULL OR started_at >= $4)",
        )
        .bind(key.workspace.as_str())
        .bind(&key.caller)
        .bind(&key.key)
        .bind(millis(since))
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        row.as_ref().map(kept_from_row).transpose()
    }

    async fn idempotency_claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
        since: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        // A claim only has to be seen by the other instances while its
        // request runs; it need not survive a crash (see the trait), so its
        // commit does not wait for the WAL flush.
        let mut transaction = self.pool.begin().await.map_err(from_sqlx)?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys \
             (workspace_id, caller, idempotency_key, fingerprint, started_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (workspace_id, caller, idempotency_key) DO UPDATE \
             SET fingerprint = EXCLUDED.fingerprint, started_at = EXCLUDED.started_at, \
                 status = NULL, headers = NULL, body = NULL \
             WHERE (idempotency_keys.status IS NULL AND idempotency_keys.started_at < $6) \
                OR (idempotency_keys.status IS NOT NULL AND idempotency_keys.started_at < $7)",
        )
        .bind(key.workspace.as_str())
        .bind(&key.caller)
        .bind(&key.key)
        .bind(fingerprint)
        .bind(millis(Utc::now()))
        .bind(millis(stale_before))
        .bind(millis(since))
        .execute(&mut *transaction)
        .await
        .map_err(from_sqlx)?
        .rows_affected()
            == 1;
        let outcome = if claimed {
            Claim::Claimed
        } else {
            let row = sqlx::query(
                "SELECT fingerprint, started_at, status, headers, body FROM idempotency_keys \
                 WHERE workspace_id = $1 AND caller = $2 AND idempotency_key = $3",
            )
            .bind(key.workspace.as_str())
            .bind(&key.caller)
            .bind(&key.key)
            .fetch_one(&mut *transaction)
            .await
            .map_err(from_sqlx)?;
            Claim::Taken(kept_from_row(&row)?)
        };
        transaction.commit().await.map_err(from_sqlx)?;
        Ok(outcome)
    }

    async fn idempotency_release(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE workspace_id = $1 AND caller = $2 \
             AND idempotency_key = $3 AND status IS NULL",
        )
        .bind(key.workspace.as_str())
        .bind(&key.caller)
        .bind(&key.key)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(from_sqlx)
    }

    async fn idempotency_purge(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE ctid IN \
             (SELECT ctid FROM idempotency_keys WHERE started_at < $1 \
              ORDER BY started_at LIMIT $2)",
        )
        .bind(millis(before))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map(|result| result.rows_affected())
        .map_err(from_sqlx)
    }
}

/// An `idempotency_keys` row: a claim (no status yet) or a kept response.
fn kept_from_row(row: &PgRow) -> Result<Kept, StoreError> {
    let status: Option<i32> = row.try_get("status").map_err(from_sqlx)?;
    let response = match status {
        None => None,
        Some(status) => {
            let headers: Option<Json<Vec<(String, String)>>> =
                row.try_get("headers").map_err(from_sqlx)?;
            let body: Option<Vec<u8>> = row.try_get("body").map_err(from_sqlx)?;
            Some(KeptResponse {
                status: u16::try_from(status)
                    .map_err(|_| StoreError::Other(format!("stored response status {status}")))?,
                headers: headers.map(|Json(headers)| headers).unwrap_or_default(),
                body: body.unwrap_or_default(),
            })
        }
    };
    Ok(Kept {
        fingerprint: row.try_get("fingerprint").map_err(from_sqlx)?,
        started_at: from_millis(row.try_get("started_at").map_err(from_sqlx)?)?,
        response,
    })
}

/// A READ COMMITTED transaction whose reads lock the rows they return.
struct PgWriteTx {
    transaction: RollbackOnDrop,
    committed: std::sync::Arc<tokio::sync::Notify>,
    writes: std::sync::Arc<WriterStats>,
}

/// A transaction that, dropped without a commit (a failed or cancelled
/// request), is rolled back at once. sqlx only queues the rollback for the
/// connection's next use, and a connection can sit idle in the pool for
/// long: meanwhile its transaction holds its row locks, and its id keeps
/// the change feed's horizon from passing (see [`events`]).
struct RollbackOnDrop(Option<Transaction<'static, Postgres>>);

impl std::ops::Deref for RollbackOnDrop {
    type Target = sqlx::PgConnection;

    fn deref(&self) -> &sqlx::PgConnection {
        self.0
            .as_deref()
            .expect("a transaction is only taken to end it")
    }
}

impl std::ops::DerefMut for RollbackOnDrop {
    fn deref_mut(&mut self) -> &mut sqlx::PgConnection {
        self.0
            .as_deref_mut()
            .expect("a transaction is only taken to end it")
    }
}

impl Drop for RollbackOnDrop {
    fn drop(&mut self) {
        if let (Some(transaction), Ok(runtime)) =
            (self.0.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move {
                if let Err(error) = transaction.rollback().await {
                    tracing::debug!(%error, "rolling back an abandoned transaction failed");
                }
            });
        }
    }
}

#[async_trait]
impl WriteTx for PgWriteTx {
    async fn get_for_update(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        id: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let row = sqlx::query(SELECT_RECORD_FOR_UPDATE)
            .bind(workspace.as_str())
            .bind(kind)
            .bind(id)
            .fetch_optional(&mut *self.transaction)
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn get_by_lookup_for_update(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        lookup: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let row = sqlx::query(SELECT_BY_LOOKUP_FOR_UPDATE)
            .bind(workspace.as_str())
            .bind(kind)
            .bind(lookup)
            .fetch_optional(&mut *self.transaction)
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn find_by_field(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        field: &'static str,
        value: &str,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let field = query::identifier(field).map_err(StoreError::Other)?;
        // The expression is the one the indexes of migrations 0003 and 0202
        // are built on, so the lookup is an index scan.
        let kind_literal = query::identifier(kind).map_err(StoreError::Other)?;
        // The kind is written into the statement (a plain name, checked
        // above) so that even a generic plan can use the partial indexes of
        // migration 0202, which hold one kind each.
        let statement = format!(
            "SELECT kind, id, version, lookup, body, created_at, updated_at FROM records \
             WHERE workspace_id = $1 AND kind = $2 AND kind = '{kind_literal}' \
             AND (body->>'{field}') = $3 ORDER BY id LIMIT $4 FOR UPDATE"
        );
        // `field` is a checked plain identifier from the core's fixed list.
        let rows = sqlx::query(sqlx::AssertSqlSafe(statement))
            .bind(workspace.as_str())
            .bind(kind)
            .bind(value)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.transaction)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn raise_sequence(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        taken: i64,
        start: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workspace_sequences (workspace_id, name, value) \
             VALUES ($1, $2, GREATEST($3, $4 - 1)) \
             ON CONFLICT (workspace_id, name) \
             DO UPDATE SET value = GREATEST(workspace_sequences.value, $3)",
        )
        .bind(workspace.as_str())
        .bind(name)
        .bind(taken)
        .bind(start)
        .execute(&mut *self.transaction)
        .await
        .map(|_| ())
        .map_err(from_sqlx)
    }

    async fn save_import_checkpoint(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        source: &str,
        checkpoint: &ImportCheckpoint,
    ) -> Result<(), StoreError> {
        let line = i64::try_from(checkpoint.line)
            .map_err(|_| StoreError::Other(format!("line {} out of range", checkpoint.line)))?;
        sqlx::query(
            "INSERT INTO import_checkpoints (workspace_id, kind, source, line, done, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (workspace_id, kind, source) \
             DO UPDATE SET line = $4, done = $5, updated_at = $6",
        )
        .bind(workspace.as_str())
        .bind(kind)
        .bind(source)
        .bind(line)
        .bind(checkpoint.done)
        .bind(Utc::now().timestamp_millis())
        .execute(&mut *self.transaction)
        .await
        .map(|_| ())
        .map_err(from_sqlx)
    }

    async fn next_sequence(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        start: i64,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO workspace_sequences (workspace_id, name, value) VALUES ($1, $2, $3) \
             ON CONFLICT (workspace_id, name) DO UPDATE SET value = workspace_sequences.value + 1 \
             RETURNING value",
        )
        .bind(workspace.as_str())
        .bind(name)
        .bind(start)
        .fetch_one(&mut *self.transaction)
        .await
        .map_err(from_sqlx)
    }

    async fn insert(
        &mut self,
        workspace: &WorkspaceId,
        record: &StoredRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO records \
             (workspace_id, kind, id, version, lookup, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(workspace.as_str())
        .bind(&record.kind)
        .bind(&record.id)
        .bind(record.version)
        .bind(&record.lookup)
        .bind(Json(raw_json(&record.body)?))
        .bind(millis(record.created_at))
        .bind(millis(record.updated_at))
        .execute(&mut *self.transaction)
        .await
        .map(|_| ())
        .map_err(from_sqlx)
    }

    async fn update(
        &mut self,
        workspace: &WorkspaceId,
        record: &StoredRecord,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE records SET version = $4, body = $5, updated_at = $6, lookup = $7 \
             WHERE workspace_id = $1 AND kind = $2 AND id = $3 AND version = $4 - 1",
        )
        .bind(workspace.as_str())
        .bind(&record.kind)
        .bind(&record.id)
        .bind(record.version)
        .bind(Json(raw_json(&record.body)?))
        .bind(millis(record.updated_at))
        .bind(&record.lookup)
        .execute(&mut *self.transaction)
        .await
        .map_err(from_sqlx)?;
        if result.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Other(format!(
                "update of {} {} expected version {}",
                record.kind,
                record.id,
                record.version - 1
            )))
        }
    }

    async fn delete(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("DELETE FROM records WHERE workspace_id = $1 AND kind = $2 AND id = $3")
                .bind(workspace.as_str())
                .bind(kind)
                .bind(id)
                .execute(&mut *self.transaction)
                .await
                .map_err(from_sqlx)?;
        Ok(result.rows_affected() == 1)
    }

    async fn set_terms(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        id: &str,
        terms: &[(&'static str, String)],
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM record_terms WHERE workspace_id = $1 AND kind = $2 AND id = $3")
            .bind(workspace.as_str())
            .bind(kind)
            .bind(id)
            .execute(&mut *self.transaction)
            .await
            .map_err(from_sqlx)?;
        if terms.is_empty() {
            return Ok(());
        }
        // One statement for all of them: a round trip per term would cost
        // more than the rows.
        let fields: Vec<&str> = terms.iter().map(|(field, _)| *field).collect();
        let values: Vec<&str> = terms.iter().map(|(_, term)| term.as_str()).collect();
        sqlx::query(
            "INSERT INTO record_terms (workspace_id, kind, field, term, id) \
             SELECT $1, $2, field, term, $3 FROM unnest($4::text[], $5::text[]) AS t (field, term) \
             ON CONFLICT DO NOTHING",
        )
        .bind(workspace.as_str())
        .bind(kind)
        .bind(id)
        .bind(&fields)
        .bind(&values)
        .execute(&mut *self.transaction)
        .await
        .map(|_| ())
        .map_err(from_sqlx)
    }

    async fn search_ids(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        query: &TermQuery,
    ) -> Result<Vec<String>, StoreError> {
        // The searches made in a write (an ICP's lists) have one small test.
        let driver = search::driver_candidates(query)
            .first()
            .map(|(position, _)| *position);
        let rendered =
            search::render(query, Dialect::Postgres, "id", driver).map_err(StoreError::Other)?;
        let mut bound = sqlx::query_scalar(sqlx::AssertSqlSafe(rendered.page))
            .bind(workspace.as_str().to_owned())
            .bind(kind.to_owned());
        for value in rendered.binds {
            bound = bound.bind(value);
        }
        bound
            .fetch_all(&mut *self.transaction)
            .await
            .map_err(from_sqlx)
    }

    async fn get_many_for_update(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = sqlx::query(SELECT_MANY)
            .bind(workspace.as_str())
            .bind(kind)
            .bind(ids)
            .fetch_all(&mut *self.transaction)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn existing_ids(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM records WHERE workspace_id = $1 AND kind = $2 AND id = ANY($3)",
        )
        .bind(workspace.as_str())
        .bind(kind)
        .bind(ids)
        .fetch_all(&mut *self.transaction)
        .await
        .map_err(from_sqlx)
    }

    async fn append_history(
        &mut self,
        workspace: &WorkspaceId,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO history (workspace_id, kind, record_id, version, action, user_id, \
             key_id, request_id, client_request_id, at, changes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(workspace.as_str())
        .bind(&entry.kind)
        .bind(&entry.record_id)
        .bind(entry.version)
        .bind(&entry.action)
        .bind(&entry.user_id)
        .bind(&entry.key_id)
        .bind(&entry.request_id)
        .bind(&entry.client_request_id)
        .bind(millis(entry.at))
        .bind(Json(&entry.changes))
        .execute(&mut *self.transaction)
        .await
        .map(|_| ())
        .map_err(from_sqlx)
    }

    async fn idempotency_keep(
        &mut self,
        key: &IdempotencyKey,
        fingerprint: &str,
        response: &KeptResponse,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO idempotency_keys (workspace_id, caller, idempotency_key, fingerprint, \
             started_at, status, headers, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (workspace_id, caller, idempotency_key) DO UPDATE \
             SET fingerprint = EXCLUDED.fingerprint, started_at = EXCLUDED.started_at, \
                 status = EXCLUDED.status, headers = EXCLUDED.headers, body = EXCLUDED.body",
        )
        .bind(key.workspace.as_str())
        .bind(&key.caller)
        .bind(&key.key)
        .bind(fingerprint)
        .bind(millis(Utc::now()))
        .bind(i32::from(response.status))
        .bind(Json(&response.headers))
        .bind(&response.body)
        .execute(&mut *self.transaction)
        .await
        .map(|_| ())
        .map_err(from_sqlx)
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let Some(transaction) = self.transaction.0.take() else {
            return Err(StoreError::Other("the transaction has ended".into()));
        };
        let committing = std::time::Instant::now();
        let outcome = transaction.commit().await;
        // Includes the server's WAL flush (`synchronous_commit = on`).
        self.writes
            .commit_seconds
            .observe(committing.elapsed().as_secs_f64());
        self.writes.batch_size.observe(1.0);
        outcome.map_err(from_sqlx)?;
        self.committed.notify_one();
        Ok(())
    }
}
