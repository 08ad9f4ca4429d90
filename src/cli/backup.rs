//! `clientele backup` and `clientele restore`: a consistent copy of a
//! SQLite database (records' file and webhook file) taken while the server
//! runs, and its restoration into a stopped database. On PostgreSQL both
//! say which `pg_dump`/`pg_restore` commands to run instead: a dump is the
//! database's own tool's job, and pretending otherwise would hide that.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::DatabaseArgs;
use crate::store::redact_url;
use crate::store::sqlite::backup::{self, Copied};
use crate::store::sqlite::database_path;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup to write: FILE and FILE.webhooks (the database's webhook
    /// file), named as a database and its webhook file are, so the backup
    /// can itself be served. Written under temporary names, checked with
    /// PRAGMA integrity_check, then renamed into place.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,

    /// Replace an existing backup at FILE (refused while a program has it
    /// open).
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore: FILE and FILE.webhooks, as `clientele backup
    /// --to FILE` wrote them. Both must pass PRAGMA integrity_check.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,

    /// Replace the existing database at --database-url (its current content
    /// is lost). Without it, restore only creates a new database.
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `clientele backup`.
pub async fn backup(args: BackupArgs) -> Result<(), String> {
    let database = sqlite_path(&args.database.database_url, "backup", &args.to)?;
    let to = args.to.clone();
    let copied = tokio::task::spawn_blocking(move || backup::backup(&database, &to, args.force))
        .await
        .map_err(|error| format!("the backup stopped: {error}"))?
        .map_err(|error| format!("backup failed: {error}"))?;
    println!(
        "backed up {} in {} (consistent as of its start; both files pass integrity_check):",
        redact_url(&args.database.database_url),
        took(copied.elapsed)
    );
    summary(&copied);
    println!(
        "not copied: the webhook key file ({} unless --webhook-key-file names another); it \
         unseals the subscriptions' secrets, so keep it apart from the backup",
        key_hint(&args.database.database_url)
    );
    Ok(())
}

/// `clientele restore`.
pub async fn restore(args: RestoreArgs) -> Result<(), String> {
    let database = sqlite_path(&args.database.database_url, "restore", &args.from)?;
    let from = args.from.clone();
    let target = database.clone();
    let copied = tokio::task::spawn_blocking(move || backup::restore(&from, &target, args.force))
        .await
        .map_err(|error| format!("the restore stopped: {error}"))?
        .map_err(|error| format!("restore failed: {error}"))?;
    println!(
        "restored {} into {} in {} (both backup files pass integrity_check):",
        args.from.display(),
        redact_url(&args.database.database_url),
        took(copied.elapsed)
    );
    summary(&copied);
    let key = PathBuf::from(key_hint(&args.database.database_url));
    if copied.contents.webhooks > 0 && !key.exists() {
        println!(
            "note: {} is missing; copy the webhook key file of the server that made the backup \
             there (or pass --webhook-key-file to serve), or its {} subscription(s) cannot sign",
            key.display(),
            copied.contents.webhooks
        );
    }
    Ok(())
}

/// The SQLite file a command works on, or the PostgreSQL tools to use.
fn sqlite_path(url: &str, command: &str, file: &Path) -> Result<PathBuf, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(postgres_instead(url, command, file));
    }
    if !url.starts_with("sqlite:") {
        return Err(format!(
            "--database-url {}: expected sqlite://PATH (or postgres://…, which pg_dump backs up)",
            redact_url(url)
        ));
    }
    database_path(url).map_err(|error| format!("--database-url: {error}"))
}

/// The refusal on PostgreSQL, with the commands that do the job: pg_dump
/// reads every table in one snapshot (records, history and webhooks are in
/// the one database there), while the servers run.
fn postgres_instead(url: &str, command: &str, file: &Path) -> String {
    let url = redact_url(url);
    let file = file.display();
    format!(
        "clientele {command} copies SQLite files; {url} is PostgreSQL, which backs up with its own tools.\n\
         Back up (one consistent snapshot, while the servers run):\n\n    \
         pg_dump --format=custom --file='{file}' '{url}'\n\n\
         Restore into a stopped deployment (no server connected), then start the servers:\n\n    \
         pg_restore --clean --if-exists --no-owner --single-transaction --dbname='{url}' '{file}'\n\n\
         Keep the --webhook-key-file apart from the dump: it unseals the webhook secrets."
    )
}

/// Where `serve` looks for the webhook key of the database at `url` by
/// default (`--webhook-key-file` may name another).
fn key_hint(url: &str) -> String {
    match database_path(url) {
        Ok(path) => format!("{}.webhook-key", path.display()),
        Err(_) => "the --webhook-key-file".to_owned(),
    }
}

fn summary(copied: &Copied) {
    let contents = &copied.contents;
    line(
        &copied.records_file.path,
        copied.records_file.bytes,
        &format!(
            "{} records in {} workspace(s), history up to event {}",
            contents.records, contents.workspaces, contents.last_event
        ),
    );
    line(
        &copied.webhook_file.path,
        copied.webhook_file.bytes,
        &format!(
            "{} webhook subscription(s), deliveries queued up to event {}",
            contents.webhooks, contents.dispatch_horizon
        ),
    );
}

/// Milliseconds under a second (a small database copies in a few), else
/// seconds.
fn took(elapsed: Duration) -> String {
    if elapsed < Duration::from_secs(1) {
        format!("{} ms", elapsed.as_millis())
    } else {
        format!("{:.1} s", elapsed.as_secs_f64())
    }
}

fn line(path: &Path, bytes: u64, what: &str) {
    println!("  {}  {}  {what}", path.display(), size(bytes));
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
