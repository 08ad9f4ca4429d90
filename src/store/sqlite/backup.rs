//! Online backup and offline restore of a SQLite database: the records'
//! file and its webhook file ([`super::webhook_file_path`]) together.
//!
//! A backup is the pair `FILE` and `FILE.webhooks`, named as the server
//! names a database and its webhook file, so a backup is itself a database
//! that `clientele serve` can open. Each file is copied with `VACUUM INTO`,
//! which reads the live file in one read transaction (a snapshot of every
//! commit before it began, taken without blocking the server's writer) and
//! writes a compact copy. The online backup API was the other candidate: it
//! copies pages in steps and starts again whenever another connection
//! writes, so under a steady write load from the server's process it might
//! never finish; in one step it would hold the same read transaction as
//! `VACUUM INTO` without compacting.
//!
//! The two files cannot be read in one transaction, so they are snapshots
//! of slightly different moments, and the order matters. The webhook file
//! says how far the history has been fanned out to subscriptions (the
//! dispatch horizon) and holds deliveries naming history sequence numbers.
//! It is copied first, the records' file second: every number the webhook
//! copy names is then in the records' copy, and events committed between
//! the two copies are above its horizon, so a restored server fans them out
//! (at-least-once: a delivery sent between the copies may be sent again,
//! with the same `webhook-id`). The other order could leave a horizon past
//! the records' last event: the restored server would number its next
//! events below the horizon and never send them, and pending deliveries
//! would name numbers that later events reuse.
//!
//! A restore writes into a stopped database through SQLite's backup API,
//! one transaction per file, holding an exclusive lock on both target files
//! while it does: a server that has the database open (even idle, in WAL
//! mode every connection keeps a shared lock on the file) makes the lock
//! fail, and the restore is refused.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::webhook_file_path;

/// Why a backup or a restore did not happen, worded for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackupError(String);

impl BackupError {
    fn at(path: &Path, what: &str, error: impl std::fmt::Display) -> Self {
        Self(format!("{}: {what}: {error}", path.display()))
    }
}

/// One file written, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWritten {
    pub path: PathBuf,
    pub bytes: u64,
}

/// What a database pair holds, as the summary of a backup or restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    pub workspaces: u64,
    pub records: u64,
    /// The history's last sequence number: the last event committed.
    pub last_event: i64,
    pub webhooks: u64,
    /// Every event up to this one has its deliveries queued.
    pub dispatch_horizon: i64,
}

/// The result of [`backup`] or [`restore`].
#[derive(Debug, Clone)]
pub struct Copied {
    pub records_file: FileWritten,
    pub webhook_file: FileWritten,
    pub contents: Contents,
    pub elapsed: Duration,
}

/// Copies the live database at `database` (and its webhook file) to `to`
/// and `to.webhooks`, each checked with `PRAGMA integrity_check` before it
/// takes its final name. An existing backup at `to` is replaced only with
/// `replace`, and never while a program has it open.
pub fn backup(database: &Path, to: &Path, replace: bool) -> Result<Copied, BackupError> {
    let started = Instant::now();
    let webhooks = webhook_file_path(database);
    let to_webhooks = webhook_file_path(to);
    require_file(database, "database", "check --database-url")?;
    require_file(
        &webhooks,
        "webhook file",
        "the server makes it when it opens the database; start it once, then back up",
    )?;
    refuse_same_file(database, to)?;
    refuse_same_file(&webhooks, to)?;
    require_directory(to)?;
    clear_target(to, replace, "backup")?;
    // A crashed earlier run may have left its partial files; VACUUM INTO
    // refuses a file that is not empty.
    let partial = partial_path(to);
    let partial_webhooks = partial_path(&to_webhooks);
    for path in [&partial, &partial_webhooks] {
        remove_if_present(path)?;
    }
    // The webhook file first: see the module's documentation.
    vacuum_into(&webhooks, &partial_webhooks)?;
    vacuum_into(database, &partial)?;
    let mut contents = Contents::default();
    for (path, webhook_file) in [(&partial_webhooks, true), (&partial, false)] {
        let connection = open_existing(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        check_integrity(&connection, path)?;
        count(&connection, path, webhook_file, &mut contents)?;
    }
    check_pair(&contents, to)?;
    fs::rename(&partial_webhooks, &to_webhooks)
        .map_err(|error| BackupError::at(&to_webhooks, "cannot move the copy into place", error))?;
    fs::rename(&partial, to)
        .map_err(|error| BackupError::at(to, "cannot move the copy into place", error))?;
    sync_directory(to)?;
    Ok(Copied {
        records_file: written(to)?,
        webhook_file: written(&to_webhooks)?,
        contents,
        elapsed: started.elapsed(),
    })
}

/// Replaces the stopped database at `database` (and its webhook file) with
/// the backup at `from` and `from.webhooks`, after both pass `PRAGMA
/// integrity_check`. An existing database is replaced only with `replace`,
/// and never while a program (a running server) has it open.
pub fn restore(from: &Path, database: &Path, replace: bool) -> Result<Copied, BackupError> {
    let started = Instant::now();
    let from_webhooks = webhook_file_path(from);
    let webhooks = webhook_file_path(database);
    require_file(from, "backup", "check --from")?;
    require_file(
        &from_webhooks,
        "backup's webhook file",
        "a backup is the pair FILE and FILE.webhooks that `clientele backup` writes; \
         restore needs both, or subscriptions and deliveries would be lost",
    )?;
    refuse_same_file(from, database)?;
    require_directory(database)?;
    let sources = [
        open_existing(&from_webhooks, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
        open_existing(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
    ];
    let mut contents = Contents::default();
    for (source, (path, webhook_file)) in sources
        .iter()
        .zip([(from_webhooks.as_path(), true), (from, false)])
    {
        check_integrity(source, path)?;
        count(source, path, webhook_file, &mut contents)?;
    }
    check_pair(&contents, from)?;
    let exists = [database, &webhooks]
        .iter()
        .any(|path| path.exists() || wal_path(path).exists());
    if exists && !replace {
        return Err(BackupError(format!(
            "{} already exists; pass --force to replace it with the backup \
             (its current content is lost), or restore to another --database-url",
            database.display()
        )));
    }
    // Both targets locked before either is written, and held until both
    // are; the records' file first, so a running server is reported by the
    // name the operator gave.
    let records_lock = lock(database)?;
    let mut targets = [lock(&webhooks)?, records_lock];
    for ((source, target), path) in sources
        .iter()
        .zip(targets.iter_mut())
        .zip([&webhooks, database])
    {
        copy_pages(source, target, path)?;
    }
    drop(targets);
    Ok(Copied {
        records_file: written(database)?,
        webhook_file: written(&webhooks)?,
        contents,
        elapsed: started.elapsed(),
    })
}

fn require_file(path: &Path, what: &str, hint: &str) -> Result<(), BackupError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(BackupError(format!(
            "no {what} at {}; {hint}",
            path.display()
        )))
    }
}

/// Refuses to write over `source` itself (with --force, a typo in --to
/// would otherwise delete the live database).
fn refuse_same_file(source: &Path, target: &Path) -> Result<(), BackupError> {
    let same = match (fs::canonicalize(source), canonical_target(target)) {
        (Ok(source), Some(target)) => source == target,
        _ => false,
    };
    if same {
        return Err(BackupError(format!(
            "{} is the database itself; name another file",
            target.display()
        )));
    }
    Ok(())
}

/// A file to be written must name a file in a directory that exists.
fn require_directory(path: &Path) -> Result<(), BackupError> {
    match canonical_target(path) {
        Some(_) => Ok(()),
        None => Err(BackupError(format!(
            "{} is not a file name in an existing directory; create the directory first",
            path.display()
        ))),
    }
}

/// A path that may not exist yet, with its directory resolved.
fn canonical_target(path: &Path) -> Option<PathBuf> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    Some(fs::canonicalize(parent).ok()?.join(path.file_name()?))
}

/// Makes room for a new backup at `to`: nothing there, or (with `replace`)
/// an old backup that no program has open, removed with its WAL files (a
/// stale `-wal` beside a new file would be replayed into it).
fn clear_target(to: &Path, replace: bool, what: &str) -> Result<(), BackupError> {
    let pair = [to.to_owned(), webhook_file_path(to)];
    let exists = pair.iter().any(|path| path.exists());
    if !exists {
        return Ok(());
    }
    if !replace {
        return Err(BackupError(format!(
            "{} already exists; pass --force to replace that {what}, or name another file",
            to.display()
        )));
    }
    for path in &pair {
        if path.exists() {
            drop(lock(path)?);
        }
    }
    for path in &pair {
        for file in [path.clone(), wal_path(path), shm_path(path)] {
            remove_if_present(&file)?;
        }
    }
    Ok(())
}

fn partial_path(path: &Path) -> PathBuf {
    with_suffix(path, ".partial")
}

fn wal_path(path: &Path) -> PathBuf {
    with_suffix(path, "-wal")
}

fn shm_path(path: &Path) -> PathBuf {
    with_suffix(path, "-shm")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> Result<(), BackupError> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(BackupError::at(path, "cannot remove it", error))
        }
        _ => Ok(()),
    }
}

/// Opens a file that must exist (never creating an empty database where a
/// path was mistyped).
fn open_existing(path: &Path, flags: OpenFlags) -> Result<Connection, BackupError> {
    let connection = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|error| BackupError::at(path, "cannot open it", error))?;
    // The server's writer holds the write lock only for a commit; a read
    // waits for it rather than failing.
    connection
        .busy_timeout(Duration::from_secs(10))
        .map_err(|error| BackupError::at(path, "cannot set a busy timeout", error))?;
    Ok(connection)
}

/// `VACUUM INTO`: one read transaction of the live file, so the copy holds
/// every commit before it began; then fsynced, which SQLite leaves to us.
fn vacuum_into(source: &Path, copy: &Path) -> Result<(), BackupError> {
    let connection = open_existing(source, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let target = copy.to_str().ok_or_else(|| {
        BackupError(format!(
            "{} is not a UTF-8 path, which SQLite needs",
            copy.display()
        ))
    })?;
    connection
        .execute("VACUUM INTO ?1", [target])
        .map_err(|error| BackupError::at(source, "cannot copy it", error))?;
    File::open(copy)
        .and_then(|file| file.sync_all())
        .map_err(|error| BackupError::at(copy, "cannot flush the copy to disk", error))
}

/// `PRAGMA integrity_check` must answer the single row `ok`.
fn check_integrity(connection: &Connection, path: &Path) -> Result<(), BackupError> {
    let damaged = |detail: String| {
        BackupError(format!(
            "{} fails PRAGMA integrity_check ({detail}); it is damaged: use another backup",
            path.display()
        ))
    };
    let mut statement = connection
        .prepare("PRAGMA integrity_check")
        .map_err(|error| damaged(error.to_string()))?;
    let rows = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|error| damaged(error.to_string()))?;
    if rows == ["ok"] {
        Ok(())
    } else {
        let mut problems = rows.into_iter().take(3).collect::<Vec<_>>().join("; ");
        problems.push_str(" …");
        Err(damaged(problems))
    }
}

/// Counts what one file of a pair holds into `contents`; a file without
/// Clientele's tables is refused.
fn count(
    connection: &Connection,
    path: &Path,
    webhook_file: bool,
    contents: &mut Contents,
) -> Result<(), BackupError> {
    let not_ours = |error: rusqlite::Error| {
        let expected = if webhook_file {
            "a Clientele webhook file"
        } else {
            "a Clientele database"
        };
        BackupError(format!("{} is not {expected} ({error})", path.display()))
    };
    let number = |sql: &str| -> Result<i64, BackupError> {
        connection
            .query_row(sql, [], |row| row.get(0))
            .map_err(not_ours)
    };
    if webhook_file {
        contents.webhooks = number("SELECT COUNT(*) FROM webhooks")?.unsigned_abs();
        contents.dispatch_horizon = number("SELECT horizon FROM event_dispatch WHERE id = 1")?;
    } else {
        contents.workspaces = number("SELECT COUNT(*) FROM workspaces")?.unsigned_abs();
        contents.records = number("SELECT COUNT(*) FROM records")?.unsigned_abs();
        contents.last_event = number("SELECT COALESCE(MAX(seq), 0) FROM history")?;
    }
    Ok(())
}

/// The webhook file must not have dispatched events the records' file does
/// not hold: a pair copied in the wrong order, or from two databases.
fn check_pair(contents: &Contents, path: &Path) -> Result<(), BackupError> {
    if contents.dispatch_horizon > contents.last_event {
        return Err(BackupError(format!(
            "{}: the webhook file has dispatched events up to {} but the history ends at {}; \
             the two files are not one backup",
            path.display(),
            contents.dispatch_horizon,
            contents.last_event
        )));
    }
    Ok(())
}

/// Opens `path` (creating it if missing) and takes SQLite's exclusive lock,
/// kept until the connection is dropped. Any other connection, even an idle
/// one of a running server, holds a shared lock in WAL mode, so this fails
/// at once while the database is in use.
fn lock(path: &Path) -> Result<Connection, BackupError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| BackupError::at(path, "cannot open it", error))?;
    let locked = connection
        .busy_timeout(Duration::from_millis(500))
        .and_then(|()| {
            connection.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;")
        });
    match locked {
        Ok(()) => Ok(connection),
        Err(rusqlite::Error::SqliteFailure(failure, _))
            if matches!(
                failure.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Err(BackupError(format!(
                "{} is in use: a running server (or another clientele command) has it open; \
                 stop it first, then run this again",
                path.display()
            )))
        }
        Err(error) => Err(BackupError::at(path, "cannot lock it", error)),
    }
}

/// Copies every page of `source` into `target` in one step (one
/// transaction of the target, so a failure leaves the target as it was).
fn copy_pages(
    source: &Connection,
    target: &mut Connection,
    path: &Path,
) -> Result<(), BackupError> {
    let failed =
        |error: rusqlite::Error| BackupError::at(path, "cannot write the backup into it", error);
    let copy = Backup::new(source, target).map_err(failed)?;
    for _ in 0..100 {
        match copy.step(-1).map_err(failed)? {
            StepResult::Done => return Ok(()),
            // More, Busy, Locked (and any later variant): try again.
            _ => {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    Err(BackupError(format!(
        "{}: the copy did not finish; is another program using it? Stop it and run this again",
        path.display()
    )))
}

/// Makes the renames durable: a rename is an entry of the directory.
fn sync_directory(path: &Path) -> Result<(), BackupError> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(|error| BackupError::at(directory, "cannot flush the directory to disk", error))
}

fn written(path: &Path) -> Result<FileWritten, BackupError> {
    let bytes = fs::metadata(path)
        .map_err(|error| BackupError::at(path, "cannot read its size", error))?
        .len();
    Ok(FileWritten {
        path: path.to_owned(),
        bytes,
    })
}
