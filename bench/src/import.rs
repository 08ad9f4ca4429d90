//! `clientele-bench import`: `clientele import` of N Hood profiles from a
//! CSV file, against a floor measured in the same run on the same rows:
//!
//! - SQLite: a bare rusqlite loop inserting each row's record (the JSON
//!   body a profile is stored as) into `records` with one cached INSERT,
//!   as many rows per transaction as the import writes, WAL and
//!   `synchronous = FULL` as the server
//!   runs; no validation, no history, no checkpoint.
//! - PostgreSQL: `COPY` of the same records into `records` (psql `\copy`),
//!   the fastest way PostgreSQL loads rows.
//!
//! It prints rows/s for both, the ratio, and the import's peak memory
//! (VmHWM of the `clientele import` process), and writes bench/IMPORT.md.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clientele::core::import::BATCH_ROWS;

use crate::cli::{Backend, ImportArgs};
use crate::fixture::{Database, fresh_database};
use crate::report::publish;
use crate::server::server_binary;

/// The figures of one run.
struct Figures {
    rows: usize,
    floor_rows_per_s: f64,
    import_rows_per_s: f64,
    peak_mib: f64,
    summary: String,
}

pub fn import(args: ImportArgs) -> Result<(), String> {
    let binary = server_binary(args.target.server_binary.as_ref())?;
    let directory = tempfile::tempdir().map_err(|error| error.to_string())?;
    let csv = directory.path().join("profiles.csv");
    write_profiles(&csv, args.rows)?;
    eprintln!("wrote {} rows to {}", args.rows, csv.display());

    let floor_database = fresh_database(args.target.backend, &args.target.postgres_url)?;
    migrate(&binary, &floor_database)?;
    let floor = match args.target.backend {
        Backend::Sqlite => sqlite_floor(&floor_database, &csv)?,
        Backend::Postgres => copy_floor(&floor_database, &csv, directory.path())?,
    };
    drop(floor_database);
    eprintln!(
        "floor: {:.0} rows/s",
        args.rows as f64 / floor.as_secs_f64()
    );

    let database = fresh_database(args.target.backend, &args.target.postgres_url)?;
    migrate(&binary, &database)?;
    let (elapsed, peak_mib, summary) = run_import(&binary, &database, &csv)?;
    let figures = Figures {
        rows: args.rows,
        floor_rows_per_s: args.rows as f64 / floor.as_secs_f64(),
        import_rows_per_s: args.rows as f64 / elapsed.as_secs_f64(),
        peak_mib,
        summary,
    };
    let report = report(&figures, args.target.backend);
    publish(
        &args.target.results("IMPORT"),
        "Import benchmark",
        "clientele-bench import",
        &report,
    )
}

fn report(figures: &Figures, backend: Backend) -> String {
    let floor_name = match backend {
        Backend::Sqlite => "bare rusqlite loop, same rows per transaction as the import",
        Backend::Postgres => "COPY into records",
    };
    format!(
        "{} Hood profiles from CSV, {}.\n\n\
         | | rows/s | ratio |\n|---|---:|---:|\n\
         | floor ({floor_name}) | {:.0} | 1.00 |\n\
         | `clientele import` | {:.0} | **{:.2}** |\n\n\
         Peak memory of `clientele import`: **{:.1} MiB**.\n\n\
         What the import printed: `{}`\n",
        figures.rows,
        backend.describe(),
        figures.floor_rows_per_s,
        figures.import_rows_per_s,
        figures.import_rows_per_s / figures.floor_rows_per_s,
        figures.peak_mib,
        figures.summary.trim(),
    )
}

/// N profiles: unique emails, names, organisations and two custom
/// properties (dotted columns).
fn write_profiles(path: &Path, rows: usize) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|error| error.to_string())?;
    let mut out = std::io::BufWriter::new(file);
    let write = |out: &mut std::io::BufWriter<std::fs::File>, line: String| {
        out.write_all(line.as_bytes())
            .map_err(|error| error.to_string())
    };
    write(
        &mut out,
        "email,full_name,organization_id,comment,custom_properties.plan,custom_properties.score\n"
            .into(),
    )?;
    for row in 0..rows {
        let plan = if row % 3 == 0 { "pro" } else { "basic" };
        write(
            &mut out,
            format!(
                "person{row}@example.com,Person {row},{},Imported from the old CRM,{plan},{}\n",
                row % 1000,
                row % 100
            ),
        )?;
    }
    out.flush().map_err(|error| error.to_string())
}

/// The stored body of a profile from one row, as the server stores it.
fn body(cells: &csv::StringRecord) -> String {
    serde_json::json!({
        "email": &cells[0],
        "mobile_phone_number": null,
        "country_code": null,
        "full_name": &cells[1],
        "organization_id": &cells[2],
        "lists": [],
        "comment": &cells[3],
        "custom_properties": {"plan": &cells[4], "score": cells[5].parse::<i64>().unwrap_or_default()},
        "unsubscribed": false,
        "unsubscribe_time": null,
    })
    .to_string()
}

fn migrate(binary: &Path, database: &Database) -> Result<(), String> {
    let status = Command::new(binary)
        .args(["migrate", "--database-url", &database.url])
        .stdout(Stdio::null())
        .status()
        .map_err(|error| format!("clientele migrate: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("clientele migrate failed".into())
    }
}

fn sqlite_floor(database: &Database, csv: &Path) -> Result<Duration, String> {
    let path = database
        .url
        .strip_prefix("sqlite://")
        .ok_or("not a SQLite URL")?;
    let mut connection = rusqlite::Connection::open(path).map_err(|error| error.to_string())?;
    connection
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .map_err(|error| error.to_string())?;
    let started = Instant::now();
    let mut reader = csv::Reader::from_path(csv).map_err(|error| error.to_string())?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut rows = reader.records();
    let mut id: i64 = 1_000_000;
    loop {
        let transaction = connection
            .transaction()
            .map_err(|error| error.to_string())?;
        let mut written = 0;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO records (workspace_id, kind, id, version, lookup, body, created_at, updated_at) \
                     VALUES ('bench', 'hood_profile', ?1, 1, NULL, ?2, ?3, ?3)",
                )
                .map_err(|error| error.to_string())?;
            for row in rows.by_ref().take(BATCH_ROWS) {
                let cells = row.map_err(|error| error.to_string())?;
                insert
                    .execute(rusqlite::params![id.to_string(), body(&cells), now])
                    .map_err(|error| error.to_string())?;
                id += 1;
                written += 1;
            }
        }
        transaction.commit().map_err(|error| error.to_string())?;
        if written < BATCH_ROWS {
            break;
        }
    }
    Ok(started.elapsed())
}

/// `COPY` of the same records, from a file in COPY's text format written
/// beforehand (not timed).
fn copy_floor(database: &Database, csv: &Path, directory: &Path) -> Result<Duration, String> {
    let copy_file = directory.join("profiles.copy");
    {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&copy_file).map_err(|error| error.to_string())?,
        );
        let mut reader = csv::Reader::from_path(csv).map_err(|error| error.to_string())?;
        let now = chrono::Utc::now().timestamp_millis();
        for (index, row) in reader.records().enumerate() {
            let cells = row.map_err(|error| error.to_string())?;
            // COPY's text format: backslashes doubled; the bodies hold no
            // tabs or newlines.
            let body = body(&cells).replace('\\', "\\\\");
            writeln!(
                out,
                "bench\thood_profile\t{}\t1\t\\N\t{body}\t{now}\t{now}",
                1_000_000 + index
            )
            .map_err(|error| error.to_string())?;
        }
        out.flush().map_err(|error| error.to_string())?;
    }
    let started = Instant::now();
    let status = Command::new("psql")
        .args([
            database.url.as_str(),
            "-qc",
            &format!(
                "\\copy records (workspace_id, kind, id, version, lookup, body, created_at, updated_at) FROM '{}'",
                copy_file.display()
            ),
        ])
        .status()
        .map_err(|error| format!("psql: {error}"))?;
    if !status.success() {
        return Err("COPY failed".into());
    }
    Ok(started.elapsed())
}

/// Runs `clientele import`, watching its peak memory; returns the wall
/// time, the peak in MiB and the summary line it printed.
fn run_import(
    binary: &Path,
    database: &Database,
    csv: &Path,
) -> Result<(Duration, f64, String), String> {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args([
            "import",
            "--database-url",
            &database.url,
            "--workspace",
            "bench",
            "--kind",
            "profile",
        ])
        .arg(csv)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|error| format!("clientele import: {error}"))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let lines = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .inspect(|line| eprintln!("  {line}"))
            .collect::<Vec<_>>()
    });
    let pid = child.id();
    let mut peak: f64 = 0.0;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            break status;
        }
        peak = peak.max(crate::server::peak_memory_of(pid));
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = started.elapsed();
    let lines = lines.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("clientele import failed: {}", lines.join("\n")));
    }
    let summary = lines
        .iter()
        .rev()
        .find(|line| line.contains("rows in"))
        .cloned()
        .unwrap_or_default();
    Ok((elapsed, peak, summary))
}
