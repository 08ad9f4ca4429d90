//! Group commit for SQLite, on a writer thread of its own: concurrent write
//! transactions share one SQLite transaction and one fsync, while each keeps
//! the rule that its 2xx means its write is on disk.
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
//! Why a thread of its own, and rusqlite rather than sqlx for the writer:
//! the connection is held for the whole session, so everything that delays
//! a session delays every writer. Through sqlx each statement is a round
//! trip to sqlx's SQLite worker thread and back to a tokio worker (two
//! thread wake-ups, and a wait in tokio's queue behind HTTP work); a PATCH
//! runs five statements, and measured with 64 connections the writer spent
//! more time waiting for those hand-offs than executing SQL, with the CPU
//! half idle. Here the sessions themselves run on one thread that owns the
//! connection and calls SQLite directly (prepared statements cached), so a
//! session holds the connection only for the time its statements take.
//!
//! With one writer at a time there is no waiting and a batch is a single
//! session: the cost over a plain transaction is one SAVEPOINT/RELEASE.
//!
//! A session may ask for [`Durability::Deferred`] instead (the SQLite
//! webhook file's delivery bookkeeping, which is redone when lost): its
//! batch commits under `synchronous = NORMAL`, without an fsync of its own.
//! SQLite refuses to change that setting inside a transaction, so a batch
//! has one durability: an [`Durability::OnDisk`] session that finds a
//! deferred batch open commits it first and starts its own. Nothing on disk
//! is ever torn either way, and because the WAL is one log, the fsync of a
//! later on-disk commit makes every deferred commit before it durable too:
//! a power loss can only take back deferred commits made after the last
//! on-disk one.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::runtime::Handle;
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::StoreError;
use super::stats::{WriterReport, WriterStats};

/// Sessions per batch at most, so acknowledgements are never held back long.
pub const MAX_BATCH: usize = 256;
/// A batch older than this commits at the next session end.
pub const MAX_BATCH_AGE: Duration = Duration::from_millis(20);
/// Prepared statements the writer keeps (every write statement fits).
const STATEMENT_CACHE: usize = 64;
/// The writer's page cache, in KiB. SQLite's default (2 MiB) stops holding
/// the inner pages of the record table and its indexes somewhere past a
/// few hundred thousand records, and then every write reads them again.
const WRITER_CACHE_KIB: u32 = 64 * 1024;

type Outcome = Result<(), StoreError>;

/// How durable a write session's commit must be before it is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk (`synchronous = FULL`): the commit fsyncs the WAL before it
    /// returns. Everything a 2xx acknowledges commits this way.
    OnDisk,
    /// Written to the WAL without waiting for an fsync (`synchronous =
    /// NORMAL`): it survives the process being killed, but a power loss
    /// or an operating-system crash may take it back (never half of it).
    /// Only for writes that are redone when lost.
    Deferred,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::OnDisk => "PRAGMA synchronous = FULL",
            Durability::Deferred => "PRAGMA synchronous = NORMAL",
        }
    }
}

struct Batch {
    started: Instant,
    /// The sessions that released their savepoint and wait for `COMMIT`.
    pending: Vec<oneshot::Sender<Outcome>>,
}

struct WriterState {
    connection: Connection,
    /// The connection's `synchronous` setting now: how the open batch, if
    /// any, will commit (it cannot change inside a transaction).
    synchronous: Durability,
    batch: Option<Batch>,
    /// Batch sizes and commit times, recorded where the batch commits.
    stats: Arc<WriterStats>,
}

/// The single writer connection, shared by group commit, and the thread
/// that write sessions run on.
#[derive(Clone)]
pub struct GroupWriter {
    state: Arc<Mutex<WriterState>>,
    /// Sessions waiting for the connection: while any wait, a batch stays
    /// open for them.
    waiting: Arc<AtomicUsize>,
    thread: Arc<WriterThread>,
    stats: Arc<WriterStats>,
}

/// A current-thread tokio runtime on a dedicated OS thread; it stops when
/// the last [`GroupWriter`] is dropped.
struct WriterThread {
    runtime: Handle,
    _stop: oneshot::Sender<()>,
}

/// One write session: exclusive use of the writer connection, inside its
/// own savepoint. Dropping it without [`WriterSession::commit`] rolls back
/// to the savepoint.
pub struct WriterSession {
    guard: Option<OwnedMutexGuard<WriterState>>,
    waiting: Arc<AtomicUsize>,
}

/// How much lower than the request handlers' the priority of background
/// work is (a nice value): the webhook tasks, and on SQLite the webhook
/// file's writer where the idle policy cannot be set (see
/// [`GroupWriter::open_in_background`]). When the CPU is short, answering
/// writes comes first and deliveries catch up after ("delivery never slows
/// a write"); when it is not, the difference is nothing.
pub const BACKGROUND_NICENESS: i32 = 10;

/// Lowers the calling thread's priority by `niceness` (a nice value); a
/// refusal is logged and the thread keeps its priority.
pub fn lower_thread_priority(niceness: i32) {
    #[cfg(unix)]
    {
        let thread = rustix::thread::gettid();
        if let Err(error) = rustix::process::setpriority_process(Some(thread), niceness) {
            tracing::debug!(%error, "a background thread keeps the normal priority");
        }
    }
    #[cfg(not(unix))]
    let _ = niceness;
}

/// Moves the calling thread to the idle scheduling policy (Linux's
/// `SCHED_IDLE`): it runs on a core no request handler, record writer or
/// other normal thread wants, and yields it at once when one wakes. It is
/// not starved: the scheduler still gives it a sliver under constant load.
/// Where the policy is refused (or not Linux), the thread's nice value is
/// raised by [`BACKGROUND_NICENESS`] instead.
pub fn run_when_idle() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        let idle = set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
        match idle {
            Ok(()) => return,
            Err(error) => {
                tracing::debug!(?error, "a background thread cannot take the idle policy");
            }
        }
    }
    lower_thread_priority(BACKGROUND_NICENESS);
}

/// A rusqlite error as a [`StoreError`].
pub fn from_rusqlite(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &error {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let detail = message.clone().unwrap_or_else(|| failure.to_string());
            match failure.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                    StoreError::Unavailable(detail)
                }
                ErrorCode::ConstraintViolation
                    if matches!(
                        failure.extended_code,
                        rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                            | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    ) =>
                {
                    StoreError::Conflict(detail)
                }
                _ => StoreError::Other(detail),
            }
        }
        _ => StoreError::Other(error.to_string()),
    }
}

fn execute(connection: &Connection, statement: &str) -> Result<(), StoreError> {
    connection.execute_batch(statement).map_err(from_rusqlite)
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

/// Opens the database file as the writer, with the durability settings the
/// module documentation describes. The file must already be migrated.
fn open_writer(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let connection = Connection::open(path).map_err(from_rusqlite)?;
    connection
        .busy_timeout(busy_timeout)
        .map_err(from_rusqlite)?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(from_rusqlite)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Other(format!(
            "SQLite refused WAL mode (journal_mode is {mode})"
        )));
    }
    execute(
        &connection,
        &format!(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA mmap_size = {}",
            super::sqlite::MMAP_BYTES
        ),
    )?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

impl GroupWriter {
    /// Opens the writer connection on `path` and starts the writer thread.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        Self::start(path, busy_timeout, false)
    }

    /// Like [`GroupWriter::open`], with the writer thread at the idle
    /// scheduling policy ([`run_when_idle`]): for the SQLite webhook file,
    /// whose delivery bookkeeping (a few rows per event, and their disk
    /// writes) must yield the CPU to the records' writer and the request
    /// handlers when it is short. Measured with `bench/run webhooks`: a
    /// subscription's PATCH rate went from 0.65-0.69 of the rate without
    /// (this writer at nice 10) to 0.88; the same policy on the delivery
    /// thread as well gave 0.79, and on that thread alone 0.69, so the
    /// delivery thread keeps nice 10.
    pub fn open_in_background(path: &Path, busy_timeout: Duration) -> Result<Self, StoreError> {
        Self::start(path, busy_timeout, true)
    }

    fn start(path: &Path, busy_timeout: Duration, background: bool) -> Result<Self, StoreError> {
        let connection = open_writer(path, busy_timeout)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| StoreError::Other(format!("writer runtime: {error}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("clientele-sqlite-writer".into())
            .spawn(move || {
                if background {
                    run_when_idle();
                }
                // Runs the sessions spawned onto `handle` until every
                // GroupWriter is gone (the sender drops).
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|error| StoreError::Other(format!("writer thread: {error}")))?;
        let stats = Arc::new(WriterStats::default());
        Ok(Self {
            state: Arc::new(Mutex::new(WriterState {
                connection,
                synchronous: Durability::OnDisk,
                batch: None,
                stats: stats.clone(),
            })),
            waiting: Arc::new(AtomicUsize::new(0)),
            thread: Arc::new(WriterThread {
                runtime: handle,
                _stop: stop,
            }),
            stats,
        })
    }

    /// This writer's measurements so far, named `writer`.
    pub fn report(&self, writer: &'static str) -> WriterReport {
        let mut report = self.stats.report(writer);
        report.waiting = self.waiting.load(Ordering::Relaxed) as u64;
        report
    }

    /// The runtime write sessions should run on (see the module docs).
    pub fn runtime(&self) -> Handle {
        self.thread.runtime.clone()
    }

    /// Runs `work` in a write session on the writer thread and commits it
    /// on disk.
    pub async fn write<R: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.write_with(Durability::OnDisk, work).await
    }

    /// [`GroupWriter::write`] with the commit's durability chosen.
    pub async fn write_with<R: Send + 'static>(
        &self,
        durability: Durability,
        work: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let writer = self.clone();
        let job = async move {
            let mut session = writer.begin_with(durability).await?;
            let result = work(session.connection()?)?;
            session.commit().await?;
            Ok(result)
        };
        super::run_on(&self.thread.runtime, job).await?
    }

    /// Waits for the writer connection and opens a savepoint (and, if
    /// needed, a batch) on it; the session commits on disk.
    pub async fn begin(&self) -> Result<WriterSession, StoreError> {
        self.begin_with(Durability::OnDisk).await
    }

    /// [`GroupWriter::begin`] with the commit's durability chosen. An
    /// on-disk session does not join a deferred batch: it commits that
    /// batch (its sessions are done with the connection) and opens its own.
    pub async fn begin_with(&self, durability: Durability) -> Result<WriterSession, StoreError> {
        let asked = Instant::now();
        let mut guard = {
            // Counted while waiting, also if the request is cancelled then.
            let _waiting = WaitingFor::new(&self.waiting);
            self.state.clone().lock_owned().await
        };
        self.stats
            .wait_seconds
            .observe(asked.elapsed().as_secs_f64());
        let weaker = guard.synchronous == Durability::Deferred && durability == Durability::OnDisk;
        if weaker && guard.batch.is_some() {
            commit_batch(&mut guard);
        }
        if guard.batch.is_none() {
            if guard.synchronous != durability {
                execute(&guard.connection, durability.pragma())?;
                guard.synchronous = durability;
            }
            execute(&guard.connection, "BEGIN IMMEDIATE")?;
            guard.batch = Some(Batch {
                started: Instant::now(),
                pending: Vec::new(),
            });
        }
        if let Err(error) = execute(&guard.connection, "SAVEPOINT write") {
            finish_if_due(&mut guard, &self.waiting);
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
    pub fn connection(&mut self) -> Result<&Connection, StoreError> {
        self.guard
            .as_ref()
            .map(|guard| &guard.connection)
            .ok_or_else(|| StoreError::Other("write session already ended".into()))
    }

    /// Keeps this session's writes and returns once they are durable (or
    /// the batch's `COMMIT` failed, which fails every session in it).
    pub async fn commit(mut self) -> Result<(), StoreError> {
        let Some(mut guard) = self.guard.take() else {
            return Err(StoreError::Other("write session already ended".into()));
        };
        if let Err(error) = execute(&guard.connection, "RELEASE write") {
            roll_back_savepoint(&mut guard);
            finish_if_due(&mut guard, &self.waiting);
            return Err(error);
        }
        let (sender, outcome) = oneshot::channel();
        match guard.batch.as_mut() {
            Some(batch) => batch.pending.push(sender),
            None => return Err(StoreError::Other("no open batch to commit".into())),
        }
        // Sessions already queued on the writer thread have not asked for
        // the connection yet; yielding lets each of them do so (and count
        // as waiting), so they join this batch instead of each paying for
        // a COMMIT of its own. The batch is finished when the guard drops,
        // also if this task is cancelled during the yield.
        let finishing = FinishOnDrop {
            guard,
            waiting: &self.waiting,
        };
        tokio::task::yield_now().await;
        drop(finishing);
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::Other(
                "the batch ended without an outcome".into(),
            ))
        })
    }
}

impl Drop for WriterSession {
    fn drop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            roll_back_savepoint(&mut guard);
            finish_if_due(&mut guard, &self.waiting);
        }
    }
}

/// Holds the connection after a session's savepoint is released and
/// decides, when dropped, whether the batch commits now.
struct FinishOnDrop<'a> {
    guard: OwnedMutexGuard<WriterState>,
    waiting: &'a AtomicUsize,
}

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        finish_if_due(&mut self.guard, self.waiting);
    }
}

/// Undoes this session's writes. If even that fails, the whole batch is
/// rolled back and its waiting sessions fail: nothing half-written stays.
fn roll_back_savepoint(guard: &mut WriterState) {
    let undone = execute(&guard.connection, "ROLLBACK TO write")
        .and_then(|()| execute(&guard.connection, "RELEASE write"));
    if let Err(error) = undone {
        tracing::error!(%error, "savepoint rollback failed; rolling back the whole batch");
        let _ = execute(&guard.connection, "ROLLBACK");
        if let Some(batch) = guard.batch.take() {
            for session in batch.pending {
                let _ = session.send(Err(error.clone()));
            }
        }
    }
}

/// Ends the open batch if no session waits to join it (or it is full or
/// old): one `COMMIT` for every session in it, each told the outcome.
fn finish_if_due(guard: &mut WriterState, waiting: &AtomicUsize) {
    let due = match &guard.batch {
        None => false,
        Some(batch) => {
            waiting.load(Ordering::SeqCst) == 0
                || batch.pending.len() >= MAX_BATCH
                || batch.started.elapsed() >= MAX_BATCH_AGE
        }
    };
    if due {
        commit_batch(guard);
    }
}

/// Ends the open batch now: one `COMMIT` for every session in it, each told
/// the outcome.
fn commit_batch(guard: &mut WriterState) {
    let Some(batch) = guard.batch.take() else {
        return;
    };
    if batch.pending.is_empty() {
        // Only rolled-back sessions: nothing to keep.
        if let Err(error) = execute(&guard.connection, "ROLLBACK") {
            tracing::error!(%error, "could not end an empty batch");
        }
        return;
    }
    let committing = Instant::now();
    let outcome = execute(&guard.connection, "COMMIT");
    // The COMMIT returns once the WAL is synced, so this is mostly fsync.
    guard
        .stats
        .commit_seconds
        .observe(committing.elapsed().as_secs_f64());
    guard.stats.batch_size.observe(batch.pending.len() as f64);
    if outcome.is_err() {
        let _ = execute(&guard.connection, "ROLLBACK");
    }
    for session in batch.pending {
        let _ = session.send(outcome.clone());
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_schedule_policy,
    };

    #[test]
    fn a_background_thread_takes_the_idle_policy() {
        let policy = std::thread::spawn(|| {
            super::run_when_idle();
            thread_schedule_policy()
        })
        .join()
        .expect("the thread ran");
        assert_eq!(
            policy.expect("the policy reads"),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)
        );
        // The caller's own thread is untouched.
        assert_eq!(
            thread_schedule_policy().expect("the policy reads"),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other)
        );
    }
}

#[cfg(test)]
mod durability_tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use rusqlite::Connection;

    use super::{Durability, GroupWriter, StoreError, from_rusqlite};

    /// SQLite's `synchronous` as the session sees it: 1 NORMAL, 2 FULL.
    fn synchronous(connection: &Connection) -> Result<i64, StoreError> {
        connection
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .map_err(from_rusqlite)
    }

    fn writer_on(directory: &tempfile::TempDir) -> GroupWriter {
        let path = directory.path().join("writer.db");
        let connection = Connection::open(&path).expect("opens");
        connection
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE rows (n INTEGER)")
            .expect("creates the table");
        drop(connection);
        GroupWriter::open(&path, Duration::from_secs(5)).expect("the writer opens")
    }

    #[tokio::test]
    async fn each_batch_commits_with_the_durability_its_session_asked_for() {
        let directory = tempfile::tempdir().expect("a scratch directory");
        let writer = writer_on(&directory);
        let sequence = [
            (Durability::OnDisk, 2),
            (Durability::Deferred, 1),
            (Durability::Deferred, 1),
            (Durability::OnDisk, 2),
            (Durability::Deferred, 1),
        ];
        for (durability, expected) in sequence {
            let seen = writer
                .write_with(durability, synchronous)
                .await
                .expect("the session commits");
            assert_eq!(seen, expected, "{durability:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_on_disk_session_commits_a_deferred_batch_before_starting_its_own() {
        let directory = tempfile::tempdir().expect("a scratch directory");
        let writer = writer_on(&directory);
        let mut deferred = writer
            .begin_with(Durability::Deferred)
            .await
            .expect("the deferred session begins");
        deferred
            .connection()
            .expect("the session has the connection")
            .execute("INSERT INTO rows VALUES (1)", [])
            .expect("inserts");
        let on_disk = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(|connection| {
                        let rows: i64 = connection
                            .query_row("SELECT count(*) FROM rows", [], |row| row.get(0))
                            .map_err(from_rusqlite)?;
                        Ok((rows, synchronous(connection)?))
                    })
                    .await
            }
        });
        // The deferred session's batch stays open while another waits.
        while writer.waiting.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        deferred.commit().await.expect("the deferred batch commits");
        let (rows, setting) = on_disk
            .await
            .expect("the task ran")
            .expect("the on-disk session commits");
        assert_eq!(
            (rows, setting),
            (1, 2),
            "sees the committed deferred row, under FULL"
        );
        // Two batches, one session each: the on-disk session did not join.
        let batches = writer.report("test").batch_size;
        assert_eq!((batches.count, batches.sum), (2, 2.0));
    }
}
