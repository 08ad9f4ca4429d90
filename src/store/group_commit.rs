//! Group commit for SQLite: concurrent write transactions share one SQLite
//! transaction and one fsync, while each keeps the rule that its 2xx means
//! its write is on disk.
//!
//! SQLite has one writer at a time, and with `synchronous = FULL` every
//! `COMMIT` waits for an fsync, so writes queue behind the disk. Here the
//! single writer connection opens a batch (`BEGIN IMMEDIATE`) and each
//! write session runs inside it in its own `SAVEPOINT`: a session that fails
//! rolls back to its savepoint and fails alone. A session that succeeds
//! releases its savepoint, leaves the connection to the next waiting
//! session, and waits for the batch to commit. The batch commits as soon as
//! no session is waiting for the connection (or it has grown to
//! [`MAX_BATCH`] sessions or [`MAX_BATCH_AGE`]), and every session of the
//! batch learns the outcome of that one `COMMIT`: success only once it has
//! returned, i.e. once the WAL is synced.
//!
//! With one writer at a time there is no waiting and a batch is a single
//! session: the cost over a plain transaction is one SAVEPOINT/RELEASE.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::SqliteConnection;
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::StoreError;

/// Sessions per batch at most, so acknowledgements are never held back long.
pub const MAX_BATCH: usize = 256;
/// A batch older than this commits at the next session end.
pub const MAX_BATCH_AGE: Duration = Duration::from_millis(20);

type Outcome = Result<(), StoreError>;

struct Batch {
    started: Instant,
    /// The sessions that released their savepoint and wait for `COMMIT`.
    pending: Vec<oneshot::Sender<Outcome>>,
}

struct WriterState {
    connection: SqliteConnection,
    batch: Option<Batch>,
}

/// The single writer connection, shared by group commit.
#[derive(Clone)]
pub struct GroupWriter {
    state: Arc<Mutex<WriterState>>,
    /// Sessions waiting for the connection: while any wait, a batch stays
    /// open for them.
    waiting: Arc<AtomicUsize>,
}

/// One write session: exclusive use of the writer connection, inside its
/// own savepoint. Dropping it without [`WriterSession::commit`] rolls back
/// to the savepoint.
pub struct WriterSession {
    guard: Option<OwnedMutexGuard<WriterState>>,
    waiting: Arc<AtomicUsize>,
}

fn failed(error: sqlx::Error) -> StoreError {
    super::sqlite::from_sqlx(error)
}

async fn execute(
    connection: &mut SqliteConnection,
    statement: &'static str,
) -> Result<(), StoreError> {
    sqlx::query(statement)
        .execute(connection)
        .await
        .map(|_| ())
        .map_err(failed)
}

/// Counts one session waiting for the connection, until dropped.
struct WaitingFor<'a>(&'a AtomicUsize);

impl<'a> WaitingFor<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for WaitingFor<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl GroupWriter {
    pub fn new(connection: SqliteConnection) -> Self {
        Self {
            state: Arc::new(Mutex::new(WriterState {
                connection,
                batch: None,
            })),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Waits for the writer connection and opens a savepoint (and, if
    /// needed, a batch) on it.
    pub async fn begin(&self) -> Result<WriterSession, StoreError> {
        let mut guard = {
            // Counted while waiting, also if the request is cancelled then.
            let _waiting = WaitingFor::new(&self.waiting);
            self.state.clone().lock_owned().await
        };
        if guard.batch.is_none() {
            execute(&mut guard.connection, "BEGIN IMMEDIATE").await?;
            guard.batch = Some(Batch {
                started: Instant::now(),
                pending: Vec::new(),
            });
        }
        if let Err(error) = execute(&mut guard.connection, "SAVEPOINT write").await {
            finish_if_due(&mut guard, &self.waiting).await;
            return Err(error);
        }
        Ok(WriterSession {
            guard: Some(guard),
            waiting: self.waiting.clone(),
        })
    }
}

impl WriterSession {
    /// The writer connection, inside this session's savepoint.
    pub fn connection(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        self.guard
            .as_mut()
            .map(|guard| &mut guard.connection)
            .ok_or_else(|| StoreError::Other("write session already ended".into()))
    }

    /// Keeps this session's writes and returns once they are durable (or
    /// the batch's `COMMIT` failed, which fails every session in it).
    pub async fn commit(mut self) -> Result<(), StoreError> {
        let Some(mut guard) = self.guard.take() else {
            return Err(StoreError::Other("write session already ended".into()));
        };
        if let Err(error) = execute(&mut guard.connection, "RELEASE write").await {
            roll_back_savepoint(&mut guard).await;
            finish_if_due(&mut guard, &self.waiting).await;
            return Err(error);
        }
        let (sender, outcome) = oneshot::channel();
        match guard.batch.as_mut() {
            Some(batch) => batch.pending.push(sender),
            None => return Err(StoreError::Other("no open batch to commit".into())),
        }
        finish_if_due(&mut guard, &self.waiting).await;
        drop(guard);
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::Other(
                "the batch ended without an outcome".into(),
            ))
        })
    }
}

impl Drop for WriterSession {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        let waiting = self.waiting.clone();
        // The guard moves into the task, so no other session can use the
        // connection before the rollback has run.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    roll_back_savepoint(&mut guard).await;
                    finish_if_due(&mut guard, &waiting).await;
                });
            }
            Err(_) => tracing::error!("write session dropped outside a runtime; batch left open"),
        }
    }
}

/// Undoes this session's writes. If even that fails, the whole batch is
/// rolled back and its waiting sessions fail: nothing half-written stays.
async fn roll_back_savepoint(guard: &mut WriterState) {
    let undone = async {
        execute(&mut guard.connection, "ROLLBACK TO write").await?;
        execute(&mut guard.connection, "RELEASE write").await
    }
    .await;
    if let Err(error) = undone {
        tracing::error!(%error, "savepoint rollback failed; rolling back the whole batch");
        let _ = execute(&mut guard.connection, "ROLLBACK").await;
        if let Some(batch) = guard.batch.take() {
            for session in batch.pending {
                let _ = session.send(Err(error.clone()));
            }
        }
    }
}

/// Ends the open batch if no session waits to join it (or it is full or
/// old): one `COMMIT` for every session in it, each told the outcome.
async fn finish_if_due(guard: &mut WriterState, waiting: &AtomicUsize) {
    let due = match &guard.batch {
        None => false,
        Some(batch) => {
            waiting.load(Ordering::SeqCst) == 0
                || batch.pending.len() >= MAX_BATCH
                || batch.started.elapsed() >= MAX_BATCH_AGE
        }
    };
    if !due {
        return;
    }
    let Some(batch) = guard.batch.take() else {
        return;
    };
    if batch.pending.is_empty() {
        // Only rolled-back sessions: nothing to keep.
        if let Err(error) = execute(&mut guard.connection, "ROLLBACK").await {
            tracing::error!(%error, "could not end an empty batch");
        }
        return;
    }
    let outcome = execute(&mut guard.connection, "COMMIT").await;
    if outcome.is_err() {
        let _ = execute(&mut guard.connection, "ROLLBACK").await;
    }
    for session in batch.pending {
        let _ = session.send(outcome.clone());
    }
}
