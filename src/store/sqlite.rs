//! The SQLite implementation of [`Store`]: the embedded default.
//!
//! Durability: the database runs in WAL mode with `synchronous = FULL`, so
//! every commit fsyncs the write-ahead log before `COMMIT` returns; a write
//! the server acknowledged survives `kill -9` and power loss alike.
//!
//! Concurrency: one connection is reserved for writes; every write session
//! holds it exclusively, inside a transaction begun with `BEGIN IMMEDIATE`
//! (SQLite's write lock is taken before anything is read). Read-modify-write
//! sequences are therefore serialised and no update is lost; readers use
//! connections of their own and, thanks to WAL, never wait for the writer.
//! Concurrent sessions share one transaction and one fsync through group
//! commit ([`super::group_commit`]), each in its own savepoint. Webhook
//! subscriptions and their delivery bookkeeping live in a second file with
//! a writer of its own ([`webhook_file_path`]), so that they never queue
//! with record writes.
//!
//! The connections are rusqlite's, called directly; sqlx only applies the
//! migrations. A read by key (a record, an API key) takes microseconds and
//! runs inline in the request's task: handing it to another thread, as an
//! async driver must, cost more than the read itself (see bench/PROFILE.md).
//! Reads that may scan (lists, queries, history) run on tokio's blocking
//! threads so they never hold up other requests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use super::group_commit::{GroupWriter, WriterSession, from_rusqlite};

pub mod backup;
mod events;

use super::idempotency::{headers_from_json, headers_to_json};
use super::query::{self, Dialect, Operand, RecordQuery};
use super::search::{self, TermQuery};
use super::{
    ApiKeyRecord, Claim, HistoryEntry, IdempotencyKey, ImportCheckpoint, Kept, KeptResponse, Store,
    StoreError, StoredRecord, StoredRole, WorkspaceId, WriteTx,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// The webhook file's own migrations (see [`webhook_file_path`]).
static WEBHOOK_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite-webhooks");

/// How long a connection waits for SQLite's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle read connections kept open; more are opened when needed.
const IDLE_READERS: usize = 8;
/// How much of the database file a connection reads through a memory
/// map rather than `read` calls (SQLite caps it at its compile-time
/// limit, 2 GiB in the bundled build). A search over a million persons
/// reads tens of thousands of index pages; through the map they come
/// straight from the operating system's page cache, shared by every
/// connection, instead of being copied into each reader's own 2 MiB cache
/// one system call at a time. Writes still go through the WAL as before.
pub(super) const MMAP_BYTES: u64 = 1 << 34;
/// Each reader's own page cache, in KiB (SQLite's default is 2 MiB): the
/// inner pages of the record and term indexes, which every read descends.
const READER_CACHE_KIB: u32 = 16 * 1024;
/// Reads that may scan, running at once; more wait, up to [`SCAN_WAIT`].
const CONCURRENT_SCANS: usize = 8;
const SCAN_WAIT: Duration = Duration::from_secs(10);

/// A SQLite database file, with one writer connection and a pool of readers.
pub struct SqliteStore {
    writer: GroupWriter,
    readers: Arc<ReaderPool>,
    /// The webhook file's writer (at a lower priority) and readers: its
    /// bookkeeping never queues with the records' writes (see
    /// [`webhook_file_path`]).
    webhook_writer: GroupWriter,
    webhook_readers: Arc<ReaderPool>,
    scans: Arc<tokio::sync::Semaphore>,
    /// Idempotency keys whose requests are running: one process owns a
    /// SQLite file, so its memory is where they are seen (and a crash,
    /// which ends those requests, forgets them).
    claims: Mutex<HashMap<IdempotencyKey, Kept>>,
    /// Raised after each committed write session (see
    /// [`super::events::EventStore::committed_signal`]).
    committed: Arc<tokio::sync::Notify>,
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
        let mut migrating = options.connect().await.map_err(|error| {
            StoreError::Unavailable(format!("cannot open the SQLite database: {error}"))
        })?;
        MIGRATOR
            .run(&mut migrating)
            .await
            .map_err(|error| StoreError::Other(format!("migration failed: {error}")))?;
        drop(migrating);
        let path = options.get_filename().to_owned();
        let webhook_path = webhook_file_path(&path);
        let mut migrating = options
            .clone()
            .filename(&webhook_path)
            .connect()
            .await
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot open the SQLite webhook file: {error}"))
            })?;
        WEBHOOK_MIGRATOR
            .run(&mut migrating)
            .await
            .map_err(|error| {
                StoreError::Other(format!("migration of the webhook file failed: {error}"))
            })?;
        drop(migrating);
        events::move_webhook_tables(&path, &webhook_path)?;
        let writer = GroupWriter::open(&path, BUSY_TIMEOUT)?;
        let webhook_writer = GroupWriter::open_in_background(&webhook_path, BUSY_TIMEOUT)?;
        Ok(Self {
            writer,
            readers: ReaderPool::new(path),
            webhook_writer,
            webhook_readers: ReaderPool::new(webhook_path),
            scans: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_SCANS)),
            claims: Mutex::new(HashMap::new()),
            committed: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Runs a read that may scan on a blocking thread.
    async fn scan<R: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.scan_on(&self.readers, read).await
    }

    /// [`SqliteStore::scan`] of the file `readers` read.
    async fn scan_on<R: Send + 'static>(
        &self,
        readers: &Arc<ReaderPool>,
        read: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let permit = tokio::time::timeout(SCAN_WAIT, self.scans.clone().acquire_owned())
            .await
            .map_err(|_| StoreError::Unavailable("every read connection is busy".into()))?
            .map_err(|_| StoreError::Unavailable("the store is closing".into()))?;
        let readers = readers.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            readers.read(read)
        })
        .await
        .map_err(|error| StoreError::Other(format!("a read panicked: {error}")))?
    }
}

/// The webhook file that serves the database at `path`: `<path>.webhooks`
/// (with its own `-wal` and `-shm`). Subscriptions, deliveries and attempts
/// live there rather than in the records' file because SQLite has one
/// writer per file: in the records' file, their four row writes per event
/// and subscription queued with every record write, and one subscription
/// cut the PATCH rate to 0.55 of the rate without (bench/WEBHOOKS.md). A
/// backup takes both files.
pub fn webhook_file_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".webhooks");
    PathBuf::from(name)
}

/// The file a `sqlite:` database URL names, as [`SqliteStore::connect`]
/// reads it (query parameters such as `?mode=` are not part of it).
pub fn database_path(url: &str) -> Result<PathBuf, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|error| StoreError::Other(format!("invalid SQLite URL: {error}")))?;
    let path = options.get_filename();
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Err(StoreError::Other(format!(
            "{url} names no file (an in-memory database cannot be backed up or restored)"
        )));
    }
    Ok(path.to_owned())
}

/// Read connections, taken for one read at a time and put back.
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Connections taken for a read right now (for [`Store::stats`]).
    in_use: std::sync::atomic::AtomicU64,
}

/// How many ids every one of `streams` lists: each statement (with its
/// parameters) lists ids in ascending order, which is SQLite's text order
/// (bytes, as Rust compares them), so one pass over each finds them.
fn count_intersection(
    connection: &Connection,
    streams: &[(String, Vec<String>)],
) -> Result<u64, StoreError> {
    let mut statements = streams
        .iter()
        .map(|(statement, _)| connection.prepare_cached(statement))
        .collect::<Result<Vec<_>, _>>()
        .map_err(from_rusqlite)?;
    let mut cursors = Vec::with_capacity(statements.len());
    for (statement, (_, binds)) in statements.iter_mut().zip(streams) {
        cursors.push(
            statement
                .query(params_from_iter(binds.iter()))
                .map_err(from_rusqlite)?,
        );
    }
    // Puts the cursor's next id in `into`; false at the end.
    fn next_id(cursor: &mut rusqlite::Rows<'_>, into: &mut Vec<u8>) -> Result<bool, StoreError> {
        let Some(row) = cursor.next().map_err(from_rusqlite)? else {
            return Ok(false);
        };
        let id = row.get_ref(0).map_err(from_rusqlite)?;
        into.clear();
        into.extend_from_slice(id.as_bytes().map_err(|error| from_rusqlite(error.into()))?);
        Ok(true)
    }
    let mut current: Vec<Vec<u8>> = vec![Vec::new(); cursors.len()];
    for (cursor, id) in cursors.iter_mut().zip(current.iter_mut()) {
        if !next_id(cursor, id)? {
            return Ok(0);
        }
    }
    let mut count = 0u64;
    let mut highest = Vec::new();
    loop {
        highest.clear();
        if let Some(top) = current.iter().max() {
            highest.extend_from_slice(top);
        }
        let mut all_at_highest = true;
        for (cursor, id) in cursors.iter_mut().zip(current.iter_mut()) {
            while *id < highest {
                if !next_id(cursor, id)? {
                    return Ok(count);
                }
            }
            all_at_highest &= *id == highest;
        }
        if all_at_highest {
            count += 1;
            if !next_id(&mut cursors[0], &mut current[0])? {
                return Ok(count);
            }
        }
    }
}

impl ReaderPool {
    fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            path,
            idle: Mutex::new(Vec::new()),
            in_use: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn open(path: &Path) -> Result<Connection, StoreError> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| StoreError::Unavailable(format!("cannot open the database: {error}")))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(from_rusqlite)?;
        connection
            .execute_batch(&format!(
                "PRAGMA query_only = ON; PRAGMA mmap_size = {MMAP_BYTES}; \
                 PRAGMA cache_size = -{READER_CACHE_KIB}"
            ))
            .map_err(from_rusqlite)?;
        Ok(connection)
    }

    fn report(&self, pool: &'static str) -> super::stats::PoolReport {
        super::stats::PoolReport {
            pool,
            idle: self.idle.lock().map_or(0, |idle| idle.len() as u64),
            in_use: self.in_use.load(std::sync::atomic::Ordering::Relaxed),
            max: None,
        }
    }

    fn read<R>(
        &self,
        read: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match idle {
            Some(connection) => connection,
            None => Self::open(&self.path)?,
        };
        let result = {
            // Counted down on drop, so a read that panics is not counted
            // in use forever.
            let _in_use = InUse::new(&self.in_use);
            read(&connection)
        };
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_READERS
        {
            idle.push(connection);
        }
        result
    }
}

/// Counts one reader connection in use, until dropped.
struct InUse<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> InUse<'a> {
    fn new(counter: &'a std::sync::atomic::AtomicU64) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
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

/// A record row's columns (those of [`SELECT_RECORD`], in its order).
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
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            kind: row.get(0)?,
            id: row.get(1)?,
            version: row.get(2)?,
            lookup: row.get(3)?,
            body: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
        })
    }

    fn into_record(self) -> Result<StoredRecord, StoreError> {
        Ok(StoredRecord {
            kind: self.kind,
            id: self.id,
            version: self.version,
            lookup: self.lookup,
            body: self.body,
            created_at: from_millis(self.created_at)?,
            updated_at: from_millis(self.updated_at)?,
        })
    }
}

/// One record by a three-part key, with `statement` selecting the columns
/// of [`SELECT_RECORD`].
fn select_record(
    connection: &Connection,
    statement: &str,
    key: [&str; 3],
) -> Result<Option<StoredRecord>, StoreError> {
    connection
        .prepare_cached(statement)
        .and_then(|mut select| {
            select
                .query_row(params![key[0], key[1], key[2]], RecordColumns::read)
                .optional()
        })
        .map_err(from_rusqlite)?
        .map(RecordColumns::into_record)
        .transpose()
}

/// Every row of a query, read by `read` and then converted by `convert`.
fn select_all<C, T>(
    connection: &Connection,
    statement: &str,
    parameters: impl rusqlite::Params,
    read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<C>,
    convert: impl FnMut(C) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let columns = connection
        .prepare_cached(statement)
        .and_then(|mut select| {
            select
                .query_map(parameters, read)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(from_rusqlite)?;
    columns.into_iter().map(convert).collect()
}

/// A history row's columns, in the order [`SELECT_HISTORY`] selects them.
type HistoryColumns = (
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
    String,
);

fn history_entry(columns: HistoryColumns) -> Result<HistoryEntry, StoreError> {
    let (
        kind,
        record_id,
        version,
        action,
        user_id,
        key_id,
        request_id,
        client_request_id,
        at,
        changes,
    ) = columns;
    Ok(HistoryEntry {
        kind,
        record_id,
        version,
        action,
        user_id,
        key_id,
        request_id,
        client_request_id,
        at: from_millis(at)?,
        changes: serde_json::from_str(&changes)
            .map_err(|error| StoreError::Other(format!("stored changes are not JSON: {error}")))?,
    })
}

/// An API key row's columns, in the order [`SELECT_API_KEY`] selects them.
type ApiKeyColumns = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
);

fn api_key(columns: ApiKeyColumns) -> Result<ApiKeyRecord, StoreError> {
    let (id, workspace, user_id, role, token_hash, token_prefix, created_at, revoked_at) = columns;
    Ok(ApiKeyRecord {
        id,
        workspace: WorkspaceId::new(workspace),
        user_id,
        role: StoredRole::parse(&role)
            .ok_or_else(|| StoreError::Other(format!("unknown stored role '{role}'")))?,
        token_hash,
        token_prefix,
        created_at: from_millis(created_at)?,
        revoked_at: revoked_at.map(from_millis).transpose()?,
    })
}

const SELECT_RECORD: &str = "SELECT kind, id, version, lookup, body, created_at, updated_at \
     FROM records WHERE workspace_id = ?1 AND kind = ?2 AND id = ?3";
/// The columns [`RecordColumns`] reads, in its order.
const RECORD_COLUMNS: &str = "kind, id, version, lookup, body, created_at, updated_at";
/// The records among the ids of a JSON array (`?3`).
const SELECT_MANY: &str = "SELECT kind, id, version, lookup, body, created_at, updated_at \
     FROM records WHERE workspace_id = ?1 AND kind = ?2 \
     AND id IN (SELECT value FROM json_each(?3)) ORDER BY id";
const SELECT_BY_LOOKUP: &str = "SELECT kind, id, version, lookup, body, created_at, updated_at \
     FROM records WHERE workspace_id = ?1 AND kind = ?2 AND lookup = ?3";
const SELECT_HISTORY: &str = "SELECT kind, record_id, version, action, user_id, key_id, request_id, \
     client_request_id, at, changes \
     FROM history WHERE workspace_id = ?1 AND kind = ?2 AND record_id = ?3 \
     ORDER BY seq LIMIT ?4 OFFSET ?5";
const SELECT_API_KEY: &str = "SELECT id, workspace_id, user_id, role, token_hash, token_prefix, \
     created_at, revoked_at FROM api_keys";

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.readers.read(|connection| {
            connection
                .query_row("SELECT 1", [], |_| Ok(()))
                .map_err(from_rusqlite)
        })
    }

    async fn get(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        id: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        self.readers.read(|connection| {
            select_record(connection, SELECT_RECORD, [workspace.as_str(), kind, id])
        })
    }

    async fn get_by_lookup(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        lookup: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        self.readers.read(|connection| {
            select_record(
                connection,
                SELECT_BY_LOOKUP,
                [workspace.as_str(), kind, lookup],
            )
        })
    }

    async fn scan_by_creation(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        after: Option<(DateTime<Utc>, &str)>,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let (workspace, kind) = (workspace.as_str().to_owned(), kind.to_owned());
        let (after_time, after_id) = match after {
            Some((time, id)) => (millis(time), id.to_owned()),
            None => (i64::MIN, String::new()),
        };
        self.scan(move |connection| {
            select_all(
                connection,
                "SELECT kind, id, version, lookup, body, created_at, updated_at FROM records \
                 WHERE workspace_id = ?1 AND kind = ?2 AND (created_at, id) > (?3, ?4) \
                 ORDER BY created_at, id LIMIT ?5",
                params![workspace, kind, after_time, after_id, limit],
                RecordColumns::read,
                RecordColumns::into_record,
            )
        })
        .await
    }

    async fn import_checkpoint(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        source: &str,
    ) -> Result<Option<ImportCheckpoint>, StoreError> {
        self.readers.read(|connection| {
            connection
                .prepare_cached(
                    "SELECT line, done FROM import_checkpoints \
                     WHERE workspace_id = ?1 AND kind = ?2 AND source = ?3",
                )
                .and_then(|mut select| {
                    select
                        .query_row(params![workspace.as_str(), kind, source], |row| {
                            Ok((row.get::<_, i64>(0)?, row.get::<_, bool>(1)?))
                        })
                        .optional()
                })
                .map_err(from_rusqlite)?
                .map(|(line, done)| {
                    Ok(ImportCheckpoint {
                        line: u64::try_from(line).map_err(|_| {
                            StoreError::Other(format!("stored import checkpoint line {line}"))
                        })?,
                        done,
                    })
                })
                .transpose()
        })
    }

    async fn list(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let (workspace, kind) = (workspace.as_str().to_owned(), kind.to_owned());
        self.scan(move |connection| {
            select_all(
                connection,
                "SELECT kind, id, version, lookup, body, created_at, updated_at FROM records \
                 WHERE workspace_id = ?1 AND kind = ?2 ORDER BY created_at, id",
                params![workspace, kind],
                RecordColumns::read,
                RecordColumns::into_record,
            )
        })
        .await
    }

    async fn query(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        query: &RecordQuery,
    ) -> Result<(Vec<StoredRecord>, u64), StoreError> {
        let statements =
            query::statements(query, kind, Dialect::Sqlite).map_err(StoreError::Other)?;
        let mut parameters = vec![
            SqlValue::Text(workspace.as_str().to_owned()),
            SqlValue::Text(kind.to_owned()),
        ];
        parameters.extend(statements.binds.iter().map(|operand| match operand {
            Operand::Text(text) => SqlValue::Text(text.clone()),
            Operand::Integer(number) => SqlValue::Integer(*number),
            Operand::Bool(flag) => SqlValue::Integer(i64::from(*flag)),
        }));
        self.scan(move |connection| {
            // One snapshot for the count and the page.
            let snapshot = connection.unchecked_transaction().map_err(from_rusqlite)?;
            let total: i64 = connection
                .prepare_cached(&statements.count)
                .and_then(|mut count| {
                    // A kept total takes the workspace, the kind and at
                    // most the one value; a count takes every parameter.
                    let wanted = count.parameter_count();
                    count.query_row(params_from_iter(parameters.iter().take(wanted)), |row| {
                        row.get(0)
                    })
                })
                .map_err(from_rusqlite)?;
            let total = u64::try_from(total).unwrap_or(0);
            let records = select_all(
                connection,
                &statements.page(total),
                params_from_iter(parameters.iter()),
                RecordColumns::read,
                RecordColumns::into_record,
            )?;
            snapshot.commit().map_err(from_rusqlite)?;
            Ok((records, total))
        })
        .await
    }

    async fn search(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        query: &TermQuery,
        count: bool,
    ) -> Result<(Vec<StoredRecord>, Option<u64>), StoreError> {
        let sizing = search::estimates(query, Dialect::Sqlite, count).map_err(StoreError::Other)?;
        let query = query.clone();
        let prefix = [workspace.as_str().to_owned(), kind.to_owned()];
        self.scan(move |connection| {
            let with_prefix = |binds: &[String]| {
                prefix
                    .iter()
                    .cloned()
                    .chain(binds.iter().cloned())
                    .collect::<Vec<_>>()
            };
            // One snapshot for the sizes, the count and the page.
            let snapshot = connection.unchecked_transaction().map_err(from_rusqlite)?;
            let mut sizes = Vec::with_capacity(sizing.len());
            for (position, statement, binds) in &sizing {
                let size: i64 = connection
                    .prepare_cached(statement)
                    .and_then(|mut estimate| {
                        estimate.query_row(params_from_iter(with_prefix(binds)), |row| row.get(0))
                    })
                    .map_err(from_rusqlite)?;
                sizes.push((*position, u64::try_from(size).unwrap_or(0)));
            }
            let streams = count
                .then(|| search::intersection_streams(&query, Dialect::Sqlite, &sizes))
                .flatten();
            let (page, counted) = search::render_sized(
                &query,
                Dialect::Sqlite,
                RECORD_COLUMNS,
                count && streams.is_none(),
                &sizes,
            )
            .map_err(StoreError::Other)?;
            let total = match (streams, counted) {
                (Some(streams), _) => {
                    let streams: Vec<(String, Vec<String>)> = streams
                        .into_iter()
                        .map(|(statement, binds)| (statement, with_prefix(&binds)))
                        .collect();
                    Some(count_intersection(connection, &streams)?)
                }
                (None, Some(counted)) => {
                    let total: i64 = connection
                        .prepare_cached(&counted.count)
                        .and_then(|mut statement| {
                            statement.query_row(
                                params_from_iter(with_prefix(
                                    &counted.binds[..counted.count_binds],
                                )),
                                |row| row.get(0),
                            )
                        })
                        .map_err(from_rusqlite)?;
                    Some(u64::try_from(total).unwrap_or(0))
                }
                (None, None) => None,
            };
            let records = select_all(
                connection,
                &page.page,
                params_from_iter(with_prefix(&page.binds)),
                RecordColumns::read,
                RecordColumns::into_record,
            )?;
            snapshot.commit().map_err(from_rusqlite)?;
            Ok((records, total))
        })
        .await
    }

    async fn get_many(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let ids = serde_json::to_string(ids)
            .map_err(|error| StoreError::Other(format!("encoding ids: {error}")))?;
        let (workspace, kind) = (workspace.as_str().to_owned(), kind.to_owned());
        self.scan(move |connection| {
            select_all(
                connection,
                SELECT_MANY,
                params![workspace, kind, ids],
                RecordColumns::read,
                RecordColumns::into_record,
            )
        })
        .await
    }

    async fn history(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        record_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<HistoryEntry>, u64), StoreError> {
        let key = [workspace.as_str(), kind, record_id].map(str::to_owned);
        self.scan(move |connection| {
            let total: i64 = connection
                .prepare_cached(
                    "SELECT COUNT(*) FROM history \
                     WHERE workspace_id = ?1 AND kind = ?2 AND record_id = ?3",
                )
                .and_then(|mut count| {
                    count.query_row(params![key[0], key[1], key[2]], |row| row.get(0))
                })
                .map_err(from_rusqlite)?;
            let entries = select_all(
                connection,
                SELECT_HISTORY,
                params![
                    key[0],
                    key[1],
                    key[2],
                    i64::try_from(limit).unwrap_or(i64::MAX),
                    i64::try_from(offset).unwrap_or(i64::MAX)
                ],
                |row| HistoryColumns::try_from(row),
                history_entry,
            )?;
            Ok((entries, u64::try_from(total).unwrap_or(0)))
        })
        .await
    }

    async fn begin(&self) -> Result<Box<dyn WriteTx>, StoreError> {
        Ok(Box::new(SqliteWriteTx {
            session: self.writer.begin().await?,
            committed: self.committed.clone(),
        }))
    }

    fn write_runtime(&self) -> Option<tokio::runtime::Handle> {
        Some(self.writer.runtime())
    }

    fn stats(&self) -> super::stats::StoreStats {
        super::stats::StoreStats {
            backend: "sqlite",
            writers: vec![
                self.writer.report("records"),
                self.webhook_writer.report("webhooks"),
            ],
            pools: vec![
                self.readers.report("records_readers"),
                self.webhook_readers.report("webhooks_readers"),
                // Reads that may scan queue here (both files), up to
                // SCAN_WAIT; in use at the maximum means reads wait.
                super::stats::PoolReport {
                    pool: "scans",
                    idle: self.scans.available_permits() as u64,
                    in_use: (CONCURRENT_SCANS
                        - self.scans.available_permits().min(CONCURRENT_SCANS))
                        as u64,
                    max: Some(CONCURRENT_SCANS as u64),
                },
            ],
        }
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
        self.readers.read(|connection| {
            connection
                .query_row("SELECT COUNT(*) FROM workspaces", [], |row| row.get(0))
                .map_err(from_rusqlite)
        })
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
        self.readers.read(|connection| {
            connection
                .prepare_cached(&format!("{SELECT_API_KEY} WHERE token_hash = ?1"))
                .and_then(|mut select| {
                    select
                        .query_row(params![token_hash], |row| ApiKeyColumns::try_from(row))
                        .optional()
                })
                .map_err(from_rusqlite)?
                .map(api_key)
                .transpose()
        })
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.scan(|connection| {
            select_all(
                connection,
                &format!("{SELECT_API_KEY} ORDER BY created_at, id"),
                [],
                |row| ApiKeyColumns::try_from(row),
                api_key,
            )
        })
        .await
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
    async fn idempotency_get(
        &self,
        key: &IdempotencyKey,
        since: DateTime<Utc>,
    ) -> Result<Option<Kept>, StoreError> {
        if let Some(kept) = self.kept_response(key, since)? {
            return Ok(Some(kept));
        }
        Ok(self.claims_guard().get(key).cloned())
    }

    async fn idempotency_claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
        since: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        if let Some(kept) = self.kept_response(key, since)? {
            return Ok(Claim::Taken(kept));
        }
        let mut claims = self.claims_guard();
        match claims.get(key) {
            Some(running) if running.started_at >= stale_before => {
                Ok(Claim::Taken(running.clone()))
            }
            _ => {
                claims.insert(
                    key.clone(),
                    Kept {
                        fingerprint: fingerprint.to_owned(),
                        started_at: Utc::now(),
                        response: None,
                    },
                );
                Ok(Claim::Claimed)
            }
        }
    }

    async fn idempotency_release(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        self.claims_guard().remove(key);
        Ok(())
    }

    async fn idempotency_purge(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.claims_guard()
            .retain(|_, running| running.started_at >= before);
        self.writer
            .write(move |connection| {
                connection
                    .prepare_cached(
                        "DELETE FROM idempotency_keys \
                         WHERE (workspace_id, caller, idempotency_key) IN \
                         (SELECT workspace_id, caller, idempotency_key FROM idempotency_keys \
                          WHERE started_at < ?1 ORDER BY started_at LIMIT ?2)",
                    )
                    .and_then(|mut delete| delete.execute(params![millis(before), limit]))
                    .map(|deleted| deleted as u64)
                    .map_err(from_rusqlite)
            })
            .await
    }
}

impl SqliteStore {
    fn claims_guard(&self) -> std::sync::MutexGuard<'_, HashMap<IdempotencyKey, Kept>> {
        match self.claims.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The response kept under `key` since `since`, read by key (inline, as
    /// every read by key is).
    fn kept_response(
        &self,
        key: &IdempotencyKey,
        since: DateTime<Utc>,
    ) -> Result<Option<Kept>, StoreError> {
        let found = self.readers.read(|connection| {
            connection
                .prepare_cached(
                    "SELECT fingerprint, started_at, status, headers, body FROM idempotency_keys \
                     WHERE workspace_id = ?1 AND caller = ?2 AND idempotency_key = ?3 \
                     AND started_at >= ?4",
                )
                .and_then(|mut select| {
                    select
                        .query_row(
                            params![key.workspace.as_str(), key.caller, key.key, millis(since)],
                            |row| {
                                Ok((
                                    row.get::<_, String>(0)?,
                                    row.get::<_, i64>(1)?,
                                    row.get::<_, i64>(2)?,
                                    row.get::<_, String>(3)?,
                                    row.get::<_, Vec<u8>>(4)?,
                                ))
                            },
                        )
                        .optional()
                })
                .map_err(from_rusqlite)
        })?;
        found
            .map(|(fingerprint, started_at, status, headers, body)| {
                Ok(Kept {
                    fingerprint,
                    started_at: from_millis(started_at)?,
                    response: Some(KeptResponse {
                        status: u16::try_from(status).map_err(|_| {
                            StoreError::Other(format!("stored response status {status}"))
                        })?,
                        headers: headers_from_json(&headers)?,
                        body,
                    }),
                })
            })
            .transpose()
    }
}

/// A write session on the writer connection (see [`super::group_commit`]).
/// Its statements are direct SQLite calls: they take microseconds, and the
/// session runs on the writer thread, so they block no request handling.
struct SqliteWriteTx {
    session: WriterSession,
    committed: Arc<tokio::sync::Notify>,
}

impl SqliteWriteTx {
    fn select_one(
        &mut self,
        statement: &str,
        key: [&str; 3],
    ) -> Result<Option<StoredRecord>, StoreError> {
        select_record(self.session.connection()?, statement, key)
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

    async fn next_sequence(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        start: i64,
    ) -> Result<i64, StoreError> {
        self.session
            .connection()?
            .prepare_cached(
                "INSERT INTO workspace_sequences (workspace_id, name, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (workspace_id, name) DO UPDATE SET value = value + 1 \
                 RETURNING value",
            )
            .and_then(|mut next| {
                next.query_row(params![workspace.as_str(), name, start], |row| row.get(0))
            })
            .map_err(from_rusqlite)
    }

    async fn find_by_field(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        field: &'static str,
        value: &str,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        // The email has an expression index (migration 0004); the other
        // natural keys live in `record_keys`, kept by triggers (0202).
        let statement = if field == "email" {
            "SELECT kind, id, version, lookup, body, created_at, updated_at FROM records \
             WHERE workspace_id = ?1 AND kind = ?2 AND json_extract(body, '$.email') = ?3 \
             ORDER BY id LIMIT ?5"
        } else {
            "SELECT records.kind, records.id, version, lookup, body, created_at, updated_at \
             FROM record_keys CROSS JOIN records \
             ON records.workspace_id = record_keys.workspace_id \
             AND records.kind = record_keys.kind AND records.id = record_keys.id \
             WHERE record_keys.workspace_id = ?1 AND record_keys.kind = ?2 \
             AND record_keys.field = ?4 AND record_keys.value = ?3 \
             ORDER BY records.id LIMIT ?5"
        };
        select_all(
            self.session.connection()?,
            statement,
            params![workspace.as_str(), kind, value, field, limit],
            RecordColumns::read,
            RecordColumns::into_record,
        )
    }

    async fn raise_sequence(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        taken: i64,
        start: i64,
    ) -> Result<(), StoreError> {
        self.session
            .connection()?
            .prepare_cached(
                "INSERT INTO workspace_sequences (workspace_id, name, value) \
                 VALUES (?1, ?2, max(?3, ?4 - 1)) \
                 ON CONFLICT (workspace_id, name) DO UPDATE SET value = max(value, ?3)",
            )
            .and_then(|mut raise| raise.execute(params![workspace.as_str(), name, taken, start]))
            .map(|_| ())
            .map_err(from_rusqlite)
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
        self.session
            .connection()?
            .prepare_cached(
                "INSERT INTO import_checkpoints (workspace_id, kind, source, line, done, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (workspace_id, kind, source) \
                 DO UPDATE SET line = ?4, done = ?5, updated_at = ?6",
            )
            .and_then(|mut save| {
                save.execute(params![
                    workspace.as_str(),
                    kind,
                    source,
                    line,
                    checkpoint.done,
                    millis(Utc::now()),
                ])
            })
            .map(|_| ())
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
                    record.body,
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
                    record.body,
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

    async fn set_terms(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        id: &str,
        terms: &[(&'static str, String)],
    ) -> Result<(), StoreError> {
        let connection = self.session.connection()?;
        connection
            .prepare_cached(
                "DELETE FROM record_terms WHERE workspace_id = ?1 AND kind = ?2 AND id = ?3",
            )
            .and_then(|mut delete| delete.execute(params![workspace.as_str(), kind, id]))
            .map_err(from_rusqlite)?;
        let mut insert = connection
            .prepare_cached(
                "INSERT OR IGNORE INTO record_terms (workspace_id, kind, field, term, id) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(from_rusqlite)?;
        for (field, term) in terms {
            insert
                .execute(params![workspace.as_str(), kind, field, term, id])
                .map_err(from_rusqlite)?;
        }
        Ok(())
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
            search::render(query, Dialect::Sqlite, "id", driver).map_err(StoreError::Other)?;
        let mut parameters = vec![workspace.as_str().to_owned(), kind.to_owned()];
        parameters.extend(rendered.binds);
        self.session
            .connection()?
            .prepare_cached(&rendered.page)
            .and_then(|mut select| {
                select
                    .query_map(params_from_iter(parameters.iter()), |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
            .map_err(from_rusqlite)
    }

    async fn get_many_for_update(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let ids = serde_json::to_string(ids)
            .map_err(|error| StoreError::Other(format!("encoding ids: {error}")))?;
        select_all(
            self.session.connection()?,
            SELECT_MANY,
            params![workspace.as_str(), kind, ids],
            RecordColumns::read,
            RecordColumns::into_record,
        )
    }

    async fn existing_ids(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let ids = serde_json::to_string(ids)
            .map_err(|error| StoreError::Other(format!("encoding ids: {error}")))?;
        self.session
            .connection()?
            .prepare_cached(
                "SELECT id FROM records WHERE workspace_id = ?1 AND kind = ?2 \
                 AND id IN (SELECT value FROM json_each(?3))",
            )
            .and_then(|mut select| {
                select
                    .query_map(params![workspace.as_str(), kind, ids], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
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
                 key_id, request_id, client_request_id, at, changes) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
                    entry.client_request_id,
                    millis(entry.at),
                    entry.changes.to_string(),
                ])
            })
            .map(|_| ())
            .map_err(from_rusqlite)
    }

    async fn idempotency_keep(
        &mut self,
        key: &IdempotencyKey,
        fingerprint: &str,
        response: &KeptResponse,
    ) -> Result<(), StoreError> {
        self.session
            .connection()?
            .prepare_cached(
                "INSERT OR REPLACE INTO idempotency_keys (workspace_id, caller, idempotency_key, \
                 fingerprint, started_at, status, headers, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut insert| {
                insert.execute(params![
                    key.workspace.as_str(),
                    key.caller,
                    key.key,
                    fingerprint,
                    millis(Utc::now()),
                    response.status,
                    headers_to_json(&response.headers),
                    response.body,
                ])
            })
            .map(|_| ())
            .map_err(from_rusqlite)
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.session.commit().await?;
        self.committed.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intersection_of_sorted_id_lists_counts_the_ids_in_every_list() {
        let connection = Connection::open_in_memory().expect("opens");
        connection
            .execute_batch(
                "CREATE TABLE postings (list TEXT, id TEXT, PRIMARY KEY (list, id));
                 INSERT INTO postings VALUES
                   ('a', 'id-01'), ('a', 'id-03'), ('a', 'id-05'), ('a', 'id-07'), ('a', 'id-09'),
                   ('b', 'id-02'), ('b', 'id-03'), ('b', 'id-07'), ('b', 'id-09'), ('b', 'id-10'),
                   ('c', 'id-03'), ('c', 'id-04'), ('c', 'id-09'),
                   ('e', 'id-05');",
            )
            .expect("fills");
        let list = |name: &str| {
            (
                "SELECT id FROM postings WHERE list = ?1 ORDER BY id".to_owned(),
                vec![name.to_owned()],
            )
        };
        let count = |lists: &[&str]| {
            count_intersection(
                &connection,
                &lists.iter().map(|name| list(name)).collect::<Vec<_>>(),
            )
            .expect("counts")
        };
        assert_eq!(count(&["a", "b"]), 3, "03, 07, 09");
        assert_eq!(count(&["b", "a"]), 3);
        assert_eq!(count(&["a", "b", "c"]), 2, "03, 09");
        assert_eq!(count(&["a", "e"]), 1);
        assert_eq!(count(&["b", "e"]), 0);
        assert_eq!(count(&["a", "nothing"]), 0);
        assert_eq!(count(&["c", "c"]), 3);
    }
}
