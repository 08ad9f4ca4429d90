//! Storage: one trait, [`Store`], with a SQLite implementation (the
//! embedded default) and a PostgreSQL one (for several instances). The store keeps records as JSON documents keyed by workspace,
//! kind and id, with a version and timestamps; it never sees a wire format
//! and knows nothing of HTTP. Every query takes a [`WorkspaceId`], so
//! forgetting tenancy does not compile.
//!
//! Writes go through a [`WriteTx`]: the core reads the current record under
//! the transaction's write lock, decides, writes, and commits. Dropping a
//! transaction without committing rolls it back, so an error anywhere in
//! between leaves nothing half-written.
//!
//! Besides records the store keeps rate-limit counters: [`ratelimit`]
//! counts fixed windows in this process, [`redis_limiter`] in a Redis that
//! every instance shares. The store knows nothing of the core above it.
//!
//! It measures its own writes and pools ([`stats`]: atomics, no wire
//! format); the HTTP layer reads them through the core for `/metrics`.

pub mod events;
mod group_commit;
pub mod idempotency;
pub mod postgres;
pub mod query;
pub mod ratelimit;
pub mod redis_limiter;
pub mod search;
pub mod sqlite;
pub mod stats;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The tenant every record belongs to. Every query takes one, so a query
/// that forgets tenancy does not compile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkspaceId(String);

impl WorkspaceId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub use group_commit::{BACKGROUND_NICENESS, lower_thread_priority};
pub use idempotency::{Claim, IdempotencyKey, Kept, KeptResponse};

/// A failure of the storage backend itself (not of the caller's request).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached, or is too busy; retrying may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A write conflicted with a uniqueness rule (e.g. an id already taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else: a bug, corrupt data, a failed migration.
    #[error("storage error: {0}")]
    Other(String),
}

/// One stored record: a JSON document plus the metadata the store manages.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub kind: String,
    pub id: String,
    /// Starts at 1 and grows by one with every update.
    pub version: i64,
    /// An optional second key, unique per workspace and kind (e.g. a
    /// ClientSuccess client's numeric id beside its UUID).
    pub lookup: Option<String>,
    /// The record's JSON document, as text: the core decodes it straight
    /// into its typed record, with no `serde_json::Value` in between.
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub kind: String,
    pub record_id: String,
    /// The record's version after the change (for a delete, the last one).
    pub version: i64,
    /// `create`, `update` or `delete`.
    pub action: String,
    pub user_id: String,
    pub key_id: Option<String>,
    /// The server's id of the request that made the change. Entries written
    /// before the client's id had a column of its own may hold that instead.
    pub request_id: String,
    /// The `X-Request-Id` the client sent with that request, if any.
    pub client_request_id: Option<String>,
    pub at: DateTime<Utc>,
    /// `[{"field", "old", "new"}, …]` for each changed top-level field.
    pub changes: Value,
}

/// How far an import of one file got: every row up to `line` (a line
/// number of the file) is committed; `done` once the whole file was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportCheckpoint {
    pub line: u64,
    pub done: bool,
}

/// Whether an API key may act on every record of its workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredRole {
    Member,
    Admin,
}

impl StoredRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StoredRole::Member => "member",
            StoredRole::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "member" => Some(StoredRole::Member),
            "admin" => Some(StoredRole::Admin),
            _ => None,
        }
    }
}

/// An API key as stored: only the SHA-256 of the token, never the token.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub workspace: WorkspaceId,
    pub user_id: String,
    pub role: StoredRole,
    pub token_hash: String,
    /// The first characters of the token, to recognise it in a listing.
    pub token_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The storage backend (records, keys, idempotency; events and webhooks in
/// [`events::EventStore`]).
#[async_trait]
pub trait Store: events::EventStore + Send + Sync + 'static {
    /// Succeeds when the backend answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Refreshes the planner's statistics of the tables whose statistics
    /// are missing or stale, and vacuums the tables that grew by a fifth
    /// since their last vacuum; returns the tables it analyzed or vacuumed.
    /// PostgreSQL plans each statement from the statistics, and without
    /// them it picks the wrong index for the record lookups every write
    /// makes; until a vacuum, its index-only scans read the table as well
    /// (see the PostgreSQL implementation). Autovacuum does both too, when
    /// it is on, and late. SQLite needs neither: nothing to do.
    async fn refresh_statistics(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// Gathers the planner's statistics of every table now, after a bulk
    /// load (whose changes the database's activity counters, which
    /// [`Store::refresh_statistics`] reads, may not show yet).
    async fn analyze_all(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// One record, or `None` if the workspace has no record of that kind and id.
    async fn get(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        id: &str,
    ) -> Result<Option<StoredRecord>, StoreError>;

    /// The record whose second key is `lookup`.
    async fn get_by_lookup(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        lookup: &str,
    ) -> Result<Option<StoredRecord>, StoreError>;

    /// Up to `limit` records of a kind in creation order (ties by id),
    /// after the record created at `after.0` with id `after.1` (from the
    /// first with `None`): a walk over a whole kind in pages of bounded
    /// size, for exports.
    async fn scan_by_creation(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        after: Option<(DateTime<Utc>, &str)>,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// How far an import of the file `source` (its SHA-256) got.
    async fn import_checkpoint(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        source: &str,
    ) -> Result<Option<ImportCheckpoint>, StoreError>;

    /// Every record of a kind in a workspace, oldest first.
    async fn list(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// The page of records of a kind that `query` selects, and how many
    /// match in all.
    async fn query(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        query: &query::RecordQuery,
    ) -> Result<(Vec<StoredRecord>, u64), StoreError>;

    /// The page of records of a kind that a term search selects, in id
    /// order, and (if `count`) how many match in all.
    async fn search(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        query: &search::TermQuery,
        count: bool,
    ) -> Result<(Vec<StoredRecord>, Option<u64>), StoreError>;

    /// The records of a kind among `ids` (absent ones are left out), in
    /// id order.
    async fn get_many(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// A page of a record's audit trail, oldest first, and how many entries
    /// it has in all.
    async fn history(
        &self,
        workspace: &WorkspaceId,
        kind: &str,
        record_id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<HistoryEntry>, u64), StoreError>;

    /// Starts a write transaction holding the write lock for what it reads.
    async fn begin(&self) -> Result<Box<dyn WriteTx>, StoreError>;

    /// The runtime that write transactions should run on, if the backend
    /// has one of its own (SQLite's writer thread); `None` runs them in the
    /// caller's task.
    fn write_runtime(&self) -> Option<tokio::runtime::Handle> {
        None
    }

    /// What the backend measured about its writes and connection pools so
    /// far (see [`stats`]).
    fn stats(&self) -> stats::StoreStats {
        stats::StoreStats::default()
    }

    /// Creates the workspace if it does not exist; true if it was created.
    async fn ensure_workspace(&self, workspace: &WorkspaceId) -> Result<bool, StoreError>;

    /// How many workspaces exist (zero on a new database).
    async fn workspace_count(&self) -> Result<i64, StoreError>;

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;

    /// The key whose token hashes to `token_hash`, revoked or not.
    async fn find_api_key(&self, token_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Marks a key revoked; false if no such key or already revoked.
    async fn revoke_api_key(&self, id: &str) -> Result<bool, StoreError>;

    /// What `key` holds: a response kept since `since`, or a running
    /// request's claim.
    async fn idempotency_get(
        &self,
        key: &IdempotencyKey,
        since: DateTime<Utc>,
    ) -> Result<Option<Kept>, StoreError>;

    /// Claims `key` for a request with `fingerprint`, unless a request holds
    /// it or answered under it since `since`; a claim made before
    /// `stale_before` is taken over (its request died). Claims need not be
    /// durable: a lost one only lets a retry run again, and the response,
    /// kept in the write's own transaction, still stops a second write.
    async fn idempotency_claim(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
        since: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;

    /// Gives up a claim whose request kept no response.
    async fn idempotency_release(&self, key: &IdempotencyKey) -> Result<(), StoreError>;

    /// Deletes at most `limit` keys (kept or claimed) from before `before`,
    /// oldest first; returns how many.
    async fn idempotency_purge(&self, before: DateTime<Utc>, limit: u32)
    -> Result<u64, StoreError>;
}

/// A write transaction. Reads made through it see the latest committed data
/// and hold the lock that stops concurrent writers from changing it until
/// commit; dropping it without [`WriteTx::commit`] rolls back.
#[async_trait]
pub trait WriteTx: Send {
    async fn get_for_update(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        id: &str,
    ) -> Result<Option<StoredRecord>, StoreError>;

    /// Like [`Store::get_by_lookup`], inside this transaction.
    async fn get_by_lookup_for_update(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        lookup: &str,
    ) -> Result<Option<StoredRecord>, StoreError>;

    /// The next value of the workspace's named counter: `start` the first
    /// time in that workspace, then one more each time. Each workspace
    /// counts on its own, so the gaps a tenant sees in its ids count only
    /// its own creates (another workspace must not be observable). Committed
    /// with the transaction, so an id is never handed out twice in a
    /// workspace.
    async fn next_sequence(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        start: i64,
    ) -> Result<i64, StoreError>;

    /// Up to `limit` records of a kind whose top-level body field `field`
    /// (a plain name from the core's fixed list, e.g. `email`) holds the
    /// string `value`, locked like [`WriteTx::get_for_update`].
    async fn find_by_field(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        field: &'static str,
        value: &str,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// Makes the workspace's counter `name` hand out numbers above
    /// `taken` from now on (a record arrived with that number already);
    /// a counter not started yet still starts no lower than `start`.
    async fn raise_sequence(
        &mut self,
        workspace: &WorkspaceId,
        name: &str,
        taken: i64,
        start: i64,
    ) -> Result<(), StoreError>;

    /// Records how far an import of `source` got, with the batch it counts.
    async fn save_import_checkpoint(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        source: &str,
        checkpoint: &ImportCheckpoint,
    ) -> Result<(), StoreError>;

    /// Inserts a new record; `Conflict` if the id or lookup key is taken.
    async fn insert(
        &mut self,
        workspace: &WorkspaceId,
        record: &StoredRecord,
    ) -> Result<(), StoreError>;

    /// Replaces a record whose stored version is `record.version - 1`.
    /// Fails if it is not: the caller read it under this transaction, so a
    /// mismatch is a bug, never a lost update.
    async fn update(
        &mut self,
        workspace: &WorkspaceId,
        record: &StoredRecord,
    ) -> Result<(), StoreError>;

    /// Removes a record; false if there was none.
    async fn delete(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        id: &str,
    ) -> Result<bool, StoreError>;

    /// Replaces the search terms of a record (`(field, term)` pairs; none
    /// removes them), in this transaction.
    async fn set_terms(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        id: &str,
        terms: &[(&'static str, String)],
    ) -> Result<(), StoreError>;

    /// The ids of the records of a kind that a term search selects, in
    /// this transaction (the page `query` asks for, in id order).
    async fn search_ids(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        query: &search::TermQuery,
    ) -> Result<Vec<String>, StoreError>;

    /// [`Store::get_many`], in this transaction.
    async fn get_many_for_update(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<StoredRecord>, StoreError>;

    /// Which of `ids` name records of a kind, in this transaction.
    async fn existing_ids(
        &mut self,
        workspace: &WorkspaceId,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError>;

    /// Appends to the audit trail, in this transaction.
    async fn append_history(
        &mut self,
        workspace: &WorkspaceId,
        entry: &HistoryEntry,
    ) -> Result<(), StoreError>;

    /// Keeps `response` under `key`, with the writes of this transaction.
    async fn idempotency_keep(
        &mut self,
        key: &IdempotencyKey,
        fingerprint: &str,
        response: &KeptResponse,
    ) -> Result<(), StoreError>;

    /// Makes every write of this transaction durable before returning.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// Runs `job` on `runtime` and waits for it. If the caller stops waiting
/// (a cancelled request), the job is aborted at its next await, as if it
/// had run in the caller's own task.
pub async fn run_on<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    job: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    AbortOnDrop(runtime.spawn(job)).await.map_err(|error| {
        if error.is_cancelled() {
            StoreError::Unavailable("the database writer has stopped".into())
        } else {
            StoreError::Other(format!("a write transaction panicked: {error}"))
        }
    })
}

/// A spawned task's handle that aborts the task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(context)
    }
}

/// The store shared by every request.
pub type SharedStore = Arc<dyn Store>;

/// How often a server checks for stale planner statistics.
pub const STATISTICS_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs [`Store::refresh_statistics`] now and every `every`, for as long
/// as the runtime runs; a failure is logged and tried again next time.
pub async fn refresh_statistics_forever(store: SharedStore, every: std::time::Duration) {
    loop {
        match store.refresh_statistics().await {
            Ok(tables) if !tables.is_empty() => {
                tracing::info!(tables = %tables.join(","), "refreshed planner statistics");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "refreshing planner statistics failed"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Opens the backend that `database_url` names and applies its migrations.
pub async fn connect(database_url: &str) -> Result<SharedStore, StoreError> {
    connect_with(database_url, postgres::PgSettings::default()).await
}

/// Like [`connect`], with PostgreSQL pool settings.
pub async fn connect_with(
    database_url: &str,
    pg: postgres::PgSettings,
) -> Result<SharedStore, StoreError> {
    if database_url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(database_url).await?))
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PostgresStore::connect(database_url, pg).await?,
        ))
    } else {
        Err(StoreError::Other(format!(
            "unsupported database URL '{}': expected sqlite://PATH or postgres://USER@HOST/DB",
            redact_url(database_url)
        )))
    }
}

/// A database URL with any password replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://user:secret@host/db"),
            "postgres://user:***@host/db"
        );
        assert_eq!(redact_url("sqlite://clientele.db"), "sqlite://clientele.db");
    }
}
