//! The SQLite implementation of [`Store`]: the embedded default.
//!
//! Durability: the database runs in WAL mode with `synchronous = FULL`, so
//! every commit fsyncs the write-ahead log before `COMMIT` returns; a write
//! the server acknowledged survives `kill -9` and power loss alike.
//!
//! Concurrency: one connection is reserved for writes; every write session
//! holds it exclusively, inside a transaction begun with `BEGIN IMMEDIATE`
//! (SQLite's write lock is taken before anything is read). Read-modify-write
//! sequences are therefore serialised and no update is lost; readers use a
//! separate pool and, thanks to WAL, never wait for the writer. Concurrent
//! sessions share one transaction and one fsync through group commit
//! ([`super::group_commit`]), each in its own savepoint.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{OptionalExtension, params};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::group_commit::{GroupWriter, WriterSession, from_rusqlite};

use super::query::{Dialect, Operand, RecordQuery, render};
use super::{
    ApiKeyRecord, HistoryEntry, Store, StoreError, StoredRecord, StoredRole, WorkspaceId, WriteTx,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for SQLite's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
const READ_CONNECTIONS: u32 = 8;

/// A SQLite database file, with one writer connection and a pool of readers.
pub struct SqliteStore {
    writer: GroupWriter,
    readers: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and migrates it.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| StoreError::Other(format!("invalid SQLite URL: {error}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(from_sqlx)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|error| StoreError::Other(format!("migration failed: {error}")))?;
        writer.close().await;
        let writer = GroupWriter::open(options.get_filename(), BUSY_TIMEOUT)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(from_sqlx)?;
        Ok(Self { writer, readers })
    }
}

pub(super) fn from_sqlx(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        // SQLITE_BUSY / SQLITE_LOCKED: the lock was held past the busy timeout.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6")) => {
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

/// A record row's columns, as either driver reads them.
struct RecordColumns {
    kind: String,
    id: String,
    version: i64,
    lookup: Option<String>,
    body: String,
    created_at: i64,
    updated_at: i64,
}

impl RecordColumns {
    fn into_record(self) -> Result<StoredRecord, StoreError> {
        Ok(StoredRecord {
            kind: self.kind,
            id: self.id,
            version: self.version,
            lookup: self.lookup,
            body: serde_json::from_str(&self.body)
                .map_err(|error| StoreError::Other(format!("stored body is not JSON: {error}")))?,
            created_at: from_millis(self.created_at)?,
            updated_at: from_millis(self.updated_at)?,
        })
    }
}

fn record_from_row(row: &SqliteRow) -> Result<StoredRecord, StoreError> {
    RecordColumns {
        kind: row.try_get("kind").map_err(from_sqlx)?,
        id: row.try_get("id").map_err(from_sqlx)?,
        version: row.try_get("version").map_err(from_sqlx)?,
        lookup: row.try_get("lookup").map_err(from_sqlx)?,
        body: row.try_get("body").map_err(from_sqlx)?,
        created_at: row.try_get("created_at").map_err(from_sqlx)?,
        updated_at: row.try_get("updated_at").map_err(from_sqlx)?,
    }
    .into_record()
}

fn history_from_row(row: &SqliteRow) -> Result<HistoryEntry, StoreError> {
    let changes: String = row.try_get("changes").map_err(from_sqlx)?;
    let changes = serde_json::from_str(&changes)
        .map_err(|error| StoreError::Other(format!("stored changes are not JSON: {error}")))?;
    Ok(HistoryEntry {
        kind: row.try_get("kind").map_err(from_sqlx)?,
        record_id: row.try_get("record_id").map_err(from_sqlx)?,
        version: row.try_get("version").map_err(from_sqlx)?,
        action: row.try_get("action").map_err(from_sqlx)?,
        user_id: row.try_get("user_id").map_err(from_sqlx)?,
        key_id: row.try_get("key_id").map_err(from_sqlx)?,
        request_id: row.try_get("request_id").map_err(from_sqlx)?,
        at: from_millis(row.try_get("at").map_err(from_sqlx)?)?,
        changes,
    })
}

fn api_key_from_row(row: &SqliteRow) -> Result<ApiKeyRecord, StoreError> {
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

const SELECT_RECORD: &str = "SELECT kind, id, version, lookup, body, created_at, updated_at \
     FROM records WHERE workspace_id = ?1 AND kind = ?2 AND id = ?3";
const SELECT_BY_LOOKUP: &str = "SELECT kind, id, version, lookup, body, created_at, updated_at \
     FROM records WHERE workspace_id = ?1 AND kind = ?2 AND lookup = ?3";

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
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
            .fetch_optional(&self.readers)
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
            .fetch_optional(&self.readers)
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn list(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, id, version, lookup, body, created_at, updated_at FROM records \
             WHERE workspace_id = ?1 AND kind = ?2 ORDER BY created_at, id",
        )
        .bind(workspace.as_str())
        .bind(kind)
        .fetch_all(&self.readers)
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
        let rendered = render(query, Dialect::Sqlite, 2).map_err(StoreError::Other)?;
        let count_sql = format!(
            "SELECT COUNT(*) FROM records WHERE workspace_id = ?1 AND kind = ?2{}",
            rendered.filter
        );
        let page_sql = format!(
            "SELECT kind, id, version, lookup, body, created_at, updated_at FROM records \
             WHERE workspace_id = ?1 AND kind = ?2{}{} LIMIT {} OFFSET {}",
            rendered.filter, rendered.order, query.limit, query.offset
        );
        let mut count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql))
            .bind(workspace.as_str())
            .bind(kind);
        let mut page = sqlx::query(sqlx::AssertSqlSafe(page_sql))
            .bind(workspace.as_str())
            .bind(kind);
        for operand in &rendered.binds {
            match operand {
                Operand::Text(text) => {
                    count = count.bind(text.clone());
                    page = page.bind(text.clone());
                }
                Operand::Integer(number) => {
                    count = count.bind(*number);
                    page = page.bind(*number);
                }
                Operand::Bool(flag) => {
                    count = count.bind(*flag);
                    page = page.bind(*flag);
                }
            }
        }
        let total = count.fetch_one(&self.readers).await.map_err(from_sqlx)?;
        let rows = page.fetch_all(&self.readers).await.map_err(from_sqlx)?;
        let records = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((records, u64::try_from(total).unwrap_or(0)))
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
            "SELECT COUNT(*) FROM history WHERE workspace_id = ?1 AND kind = ?2 AND record_id = ?3",
        )
        .bind(workspace.as_str())
        .bind(kind)
        .bind(record_id)
        .fetch_one(&self.readers)
        .await
        .map_err(from_sqlx)?;
        let rows = sqlx::query(
            "SELECT kind, record_id, version, action, user_id, key_id, request_id, at, changes \
             FROM history WHERE workspace_id = ?1 AND kind = ?2 AND record_id = ?3 \
             ORDER BY seq LIMIT ?4 OFFSET ?5",
        )
        .bind(workspace.as_str())
        .bind(kind)
        .bind(record_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.readers)
        .await
        .map_err(from_sqlx)?;
        let entries = rows
            .iter()
            .map(history_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((entries, u64::try_from(total).unwrap_or(0)))
    }

    async fn begin(&self) -> Result<Box<dyn WriteTx>, StoreError> {
        Ok(Box::new(SqliteWriteTx {
            session: self.writer.begin().await?,
        }))
    }

    fn write_runtime(&self) -> Option<tokio::runtime::Handle> {
        Some(self.writer.runtime())
    }

    async fn ensure_workspace(&self, workspace: &WorkspaceId) -> Result<bool, StoreError> {
        let workspace = workspace.as_str().to_owned();
        self.writer
            .write(move |connection| {
                connection
                    .prepare_cached(
                        "INSERT INTO workspaces (id, created_at) VALUES (?1, ?2) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .and_then(|mut insert| insert.execute(params![workspace, millis(Utc::now())]))
                    .map(|inserted| inserted == 1)
                    .map_err(from_rusqlite)
            })
            .await
    }

    async fn workspace_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM workspaces")
            .fetch_one(&self.readers)
            .await
            .map_err(from_sqlx)
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.writer
            .write(move |connection| {
                connection
                    .prepare_cached(
                        "INSERT INTO api_keys (id, workspace_id, user_id, role, token_hash, \
                         token_prefix, created_at, revoked_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .and_then(|mut insert| {
                        insert.execute(params![
                            key.id,
                            key.workspace.as_str(),
                            key.user_id,
                            key.role.as_str(),
                            key.token_hash,
                            key.token_prefix,
                            millis(key.created_at),
                            key.revoked_at.map(millis),
                        ])
                    })
                    .map(|_| ())
                    .map_err(from_rusqlite)
            })
            .await
    }

    async fn find_api_key(&self, token_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE token_hash = ?1")
            .bind(token_hash)
            .fetch_optional(&self.readers)
            .await
            .map_err(from_sqlx)?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at, id")
            .fetch_all(&self.readers)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer
            .write(move |connection| {
                connection
                    .prepare_cached(
                        "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    )
                    .and_then(|mut update| update.execute(params![id, millis(Utc::now())]))
                    .map(|updated| updated == 1)
                    .map_err(from_rusqlite)
            })
            .await
    }
}

/// A write session on the writer connection (see [`super::group_commit`]).
/// Its statements are direct SQLite calls: they take microseconds, and the
/// session runs on the writer thread, so they block no request handling.
struct SqliteWriteTx {
    session: WriterSession,
}

/// A record row read by the writer (the columns of [`SELECT_RECORD`]).
fn record_from_writer_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RecordColumns> {
    Ok(RecordColumns {
        kind: row.get(0)?,
        id: row.get(1)?,
        version: row.get(2)?,
        lookup: row.get(3)?,
        body: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

impl SqliteWriteTx {
    fn select_one(
        &mut self,
        statement: &str,
        key: [&str; 3],
    ) -> Result<Option<StoredRecord>, StoreError> {
        let columns = self
            .session
            .connection()?
            .prepare_cached(statement)
            .and_then(|mut select| {
                select
                    .query_row(params![key[0], key[1], key[2]], record_from_writer_row)
                    .optional()
            })
            .map_err(from_rusqlite)?;
        columns.map(RecordColumns::into_record).transpose()
    }
}

#[async_trait]
impl WriteTx for SqliteWriteTx {
    async fn get_for_update(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        id: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        self.select_one(SELECT_RECORD, [workspace.as_str(), kind, id])
    }

    async fn get_by_lookup_for_update(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        lookup: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        self.select_one(SELECT_BY_LOOKUP, [workspace.as_str(), kind, lookup])
    }

    async fn next_sequence(&mut self, name: &str, start: i64) -> Result<i64, StoreError> {
        self.session
            .connection()?
            .prepare_cached(
                "INSERT INTO sequences (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
            )
            .and_then(|mut next| next.query_row(params![name, start], |row| row.get(0)))
            .map_err(from_rusqlite)
    }

    async fn insert(
        &mut self,
        workspace: &WorkspaceId,
        record: &StoredRecord,
    ) -> Result<(), StoreError> {
        self.session
            .connection()?
            .prepare_cached(
                "INSERT INTO records \
                 (workspace_id, kind, id, version, lookup, body, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    workspace.as_str(),
                    record.kind,
                    record.id,
                    record.version,
                    record.lookup,
                    record.body.to_string(),
                    millis(record.created_at),
                    millis(record.updated_at),
                ])
            })
            .map(|_| ())
            .map_err(from_rusqlite)
    }

    async fn update(
        &mut self,
        workspace: &WorkspaceId,
        record: &StoredRecord,
    ) -> Result<(), StoreError> {
        let updated = self
            .session
            .connection()?
            .prepare_cached(
                "UPDATE records SET version = ?4, body = ?5, updated_at = ?6, lookup = ?7 \
                 WHERE workspace_id = ?1 AND kind = ?2 AND id = ?3 AND version = ?4 - 1",
            )
            .and_then(|mut update| {
                update.execute(params![
                    workspace.as_str(),
                    record.kind,
                    record.id,
                    record.version,
                    record.body.to_string(),
                    millis(record.updated_at),
                    record.lookup,
                ])
            })
            .map_err(from_rusqlite)?;
        if updated == 1 {
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
        self.session
            .connection()?
            .prepare_cached("DELETE FROM records WHERE workspace_id = ?1 AND kind = ?2 AND id = ?3")
            .and_then(|mut delete| delete.execute(params![workspace.as_str(), kind, id]))
            .map(|deleted| deleted == 1)
            .map_err(from_rusqlite)
    }

    async fn append_history(
        &mut self,
        workspace: &WorkspaceId,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError> {
        self.session
            .connection()?
            .prepare_cached(
                "INSERT INTO history (workspace_id, kind, record_id, version, action, user_id, \
                 key_id, request_id, at, changes) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    workspace.as_str(),
                    entry.kind,
                    entry.record_id,
                    entry.version,
                    entry.action,
                    entry.user_id,
                    entry.key_id,
                    entry.request_id,
                    millis(entry.at),
                    entry.changes.to_string(),
                ])
            })
            .map(|_| ())
            .map_err(from_rusqlite)
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.session.commit().await
    }
}
