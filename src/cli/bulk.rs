//! `clientele import` and `clientele export`: files of records in and
//! out, with a progress bar on a terminal and periodic lines elsewhere.
//!
//! The import reads the file on a thread of its own (parsing, validation:
//! CPU), hands batches of prepared rows to the store's writer (I/O), and
//! overlaps the two: while one batch commits the next is read. A file's
//! SHA-256 names its progress in the database, so running the same command
//! again after a kill or Ctrl-C resumes after the last committed batch.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{DatabaseArgs, open_store};
use crate::core::auth::WorkspaceId;
use crate::core::error::DomainError;
use crate::core::import::rows::{FileError, Format, RowReader, RowWriter};
use crate::core::import::{
    BATCH_ROWS, ImportCheckpoint, Outcome, Progress, Summary, import_actor, row_errors,
};
use crate::core::records::Records;
use crate::store::SharedStore;

use crate::surfaces::kinds::{self, BulkKind, PreparedBatch, RowImporter};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FileFormat {
    Csv,
    Ndjson,
}

impl From<FileFormat> for Format {
    fn from(format: FileFormat) -> Self {
        match format {
            FileFormat::Csv => Format::Csv,
            FileFormat::Ndjson => Format::Ndjson,
        }
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The workspace the records go into (created if it does not exist).
    #[arg(long, env = "CLIENTELE_WORKSPACE")]
    pub workspace: String,

    /// The kind of record each row is: icp (Lance format), client
    /// (ClientSuccess), profile or profile-list (Hood).
    #[arg(long)]
    pub kind: String,

    /// Upsert instead of create: a row updates the record it matches and
    /// creates one only when none does. `id` (any kind; the surface's id
    /// column), `email` or `mobile_phone_number` (profile), `externalId`
    /// (client). A row matching two records is rejected with both ids.
    #[arg(long = "match", value_name = "FIELD")]
    pub match_field: Option<String>,

    /// The file's format; by default from its extension (.csv; .ndjson,
    /// .jsonl), or for standard input from its first byte (`{`: NDJSON).
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,

    /// Where rejected rows go, one JSON line each with the row's line
    /// number and every field error; default FILE.rejects.ndjson.
    #[arg(long)]
    pub rejects: Option<PathBuf>,

    /// Import a file again although an earlier run finished it (by
    /// default a finished file is not imported twice).
    #[arg(long)]
    pub again: bool,

    /// Rows per write transaction.
    #[arg(long, default_value_t = BATCH_ROWS as u32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_rows: u32,

    /// The file to read: CSV with a header row, or NDJSON; `-` for
    /// standard input.
    pub file: String,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The workspace whose records are written.
    #[arg(long, env = "CLIENTELE_WORKSPACE")]
    pub workspace: String,

    /// The kind of record: icp, client, profile or profile-list.
    #[arg(long)]
    pub kind: String,

    /// NDJSON (every value as the surface's GET shows it) or CSV (text as
    /// it is, other values as JSON in the cell).
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: FileFormat,

    /// Where to write; standard output by default.
    #[arg(long, short)]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// What the import reader thread sends: a batch, or why the file stopped.
enum FromReader {
    Batch {
        prepared: PreparedBatch,
        /// Rows refused while reading (bad cells, bad lines).
        refused: Vec<(u64, DomainError)>,
        last_line: u64,
    },
    Failed(FileError),
}

/// The parts of an import run that stay fixed while it runs.
struct Run {
    kind: &'static dyn BulkKind,
    workspace: WorkspaceId,
    file_name: String,
    /// The file's SHA-256, naming its checkpoint (none for standard input,
    /// which cannot be read twice: re-run it with --match instead).
    source: Option<String>,
    size: Option<u64>,
    importer: Arc<dyn RowImporter>,
    store: SharedStore,
}

/// How far a run got.
struct Ending {
    summary: Summary,
    committed_line: u64,
    failure: Option<String>,
    elapsed: Duration,
}

pub async fn import(args: ImportArgs) -> Result<(), String> {
    let run = start_run(&args).await?;
    let Some(resume_after) = resume_point(&run, args.again).await? else {
        return Ok(());
    };
    let (input, format) = open_input(&args.file, args.format.map(Format::from))?;
    let reader = RowReader::open(input, format, &run.kind.columns())
        .map_err(|error| format!("{}: {error}", run.file_name))?;
    let rejects_path = args.rejects.clone().unwrap_or_else(|| {
        PathBuf::from(match run.source {
            None => "import.rejects.ndjson".to_owned(),
            Some(_) => format!("{}.rejects.ndjson", args.file),
        })
    });
    let mut rejects = Rejects::new(rejects_path, resume_after > 0);
    let stop = stop_on_ctrl_c();
    let ending = write_all(
        &run,
        reader,
        resume_after,
        args.batch_rows as usize,
        &stop,
        &mut rejects,
    )
    .await;
    rejects.flush()?;
    finish(&run, ending, stop.load(Ordering::SeqCst), &rejects).await
}

/// Checks the arguments, hashes the file and opens the store.
async fn start_run(args: &ImportArgs) -> Result<Run, String> {
    let kind = kinds::kind(&args.kind)?;
    let workspace = WorkspaceId::new(args.workspace.clone());
    crate::core::auth::check_name("--workspace", workspace.as_str())?;
    let from_stdin = args.file == "-";
    let file_name = if from_stdin {
        "standard input".to_owned()
    } else {
        args.file.clone()
    };
    let (source, size) = if from_stdin {
        (None, None)
    } else {
        let (hash, size) = hash_file(Path::new(&args.file))?;
        (Some(hash), Some(size))
    };
    let store = open_store(&args.database).await?;
    store
        .ensure_workspace(&workspace)
        .await
        .map_err(|error| format!("cannot create workspace {workspace}: {error}"))?;
    let actor = import_actor(workspace.clone(), &file_name);
    let importer = Arc::from(kind.importer(
        Records::new(store.clone()),
        actor,
        args.match_field.as_deref(),
    )?);
    Ok(Run {
        kind,
        workspace,
        file_name,
        source,
        size,
        importer,
        store,
    })
}

/// The line to resume after (0 for a fresh start), or `None` when this
/// file was imported already and nothing is to be done.
async fn resume_point(run: &Run, again: bool) -> Result<Option<u64>, String> {
    let Some(source) = &run.source else {
        return Ok(Some(0));
    };
    if again {
        return Ok(Some(0));
    }
    let checkpoint = run
        .importer
        .checkpoint(source.clone())
        .await
        .map_err(|error| format!("cannot read the import's progress: {error}"))?;
    Ok(match checkpoint {
        Some(ImportCheckpoint { done: true, .. }) => {
            eprintln!(
                "{} was imported into workspace {} already (this exact file, by its SHA-256); nothing to do. Pass --again to import it once more.",
                run.file_name, run.workspace
            );
            None
        }
        Some(ImportCheckpoint { line, done: false }) => {
            eprintln!(
                "Resuming: an earlier run of this file committed every row up to line {line}."
            );
            Some(line)
        }
        None => Some(0),
    })
}

/// A flag set by the first Ctrl-C: the run stops after its current batch.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    stop
}

/// Reads and prepares batches on a thread of their own, one batch ahead of
/// the writer, and writes them in order, each with its checkpoint.
async fn write_all(
    run: &Run,
    reader: RowReader,
    resume_after: u64,
    batch_rows: usize,
    stop: &Arc<AtomicBool>,
    rejects: &mut Rejects,
) -> Ending {
    let progress = Meter::new(run.size, reader.bytes_read.clone(), resume_after);
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<FromReader>(2);
    let reading = {
        let (importer, stop) = (run.importer.clone(), stop.clone());
        std::thread::spawn(move || {
            read_batches(reader, importer, resume_after, batch_rows, stop, sender)
        })
    };
    let started = Instant::now();
    let mut ending = Ending {
        summary: Summary::default(),
        committed_line: resume_after,
        failure: None,
        elapsed: Duration::ZERO,
    };
    let mut in_flight: Option<(Writing, u64, Refused)> = None;
    loop {
        let next = receiver.recv().await;
        // The batch in flight is finished before the next one is sent, so
        // batches commit (and count) in file order.
        if let Some((task, last_line, refused)) = in_flight.take() {
            match finish_batch(task, refused, &mut ending.summary, rejects).await {
                Ok(()) => ending.committed_line = last_line,
                Err(message) => {
                    ending.failure = Some(message);
                    break;
                }
            }
            progress.update(&ending.summary);
        }
        match next {
            None => break,
            Some(FromReader::Failed(error)) => {
                ending.failure = Some(format!("{}: {error}", run.file_name));
                break;
            }
            Some(FromReader::Batch {
                prepared,
                refused,
                last_line,
            }) => {
                let checkpoint = run.source.as_ref().map(|source| Progress {
                    source: source.clone(),
                    checkpoint: ImportCheckpoint {
                        line: last_line,
                        done: false,
                    },
                });
                let importer = run.importer.clone();
                let task = tokio::spawn(async move { importer.write(prepared, checkpoint).await });
                in_flight = Some((task, last_line, refused));
            }
        }
    }
    drop(receiver);
    let _ = reading.join();
    progress.finish();
    ending.elapsed = started.elapsed();
    ending
}

/// Prints the summary, records a finished file, and says what failed.
async fn finish(run: &Run, ending: Ending, stopped: bool, rejects: &Rejects) -> Result<(), String> {
    let Ending {
        summary,
        committed_line,
        failure,
        elapsed,
    } = ending;
    // A bulk load leaves PostgreSQL's planner statistics behind the data
    // (see Store::refresh_statistics): whatever committed, gather them now
    // rather than leave the first writes after the import to a bad plan.
    if let Err(error) = run.store.analyze_all().await {
        eprintln!("warning: could not refresh the planner statistics: {error}");
    }
    let rate = summary.rows() as f64 / elapsed.as_secs_f64().max(0.001);
    eprintln!(
        "{} → workspace {} ({}): {} rows in {:.1} s ({rate:.0} rows/s): {} created, {} updated, {} unchanged, {} rejected",
        run.file_name,
        run.workspace,
        run.kind.name(),
        summary.rows(),
        elapsed.as_secs_f64(),
        summary.created,
        summary.updated,
        summary.unchanged,
        summary.rejected,
    );
    if let Some(message) = failure {
        return Err(format!(
            "{message}\nEvery row up to line {committed_line} is committed; run the same command again to resume after it."
        ));
    }
    if stopped {
        return Err(format!(
            "stopped by Ctrl-C after line {committed_line}: every row up to it is committed. Run the same command again to resume{}.",
            if run.source.is_some() {
                ""
            } else {
                " (standard input cannot resume: use --match to re-run safely)"
            }
        ));
    }
    if let Some(source) = &run.source {
        let done = Progress {
            source: source.clone(),
            checkpoint: ImportCheckpoint {
                line: committed_line,
                done: true,
            },
        };
        run.importer
            .write(run.importer.prepare(Vec::new()), Some(done))
            .await
            .map_err(|error| format!("cannot record that the import finished: {error}"))?;
    }
    if summary.rejected > 0 {
        return Err(format!(
            "{} of {} rows were rejected; their line numbers and errors are in {}",
            summary.rejected,
            summary.rows(),
            rejects.path.display()
        ));
    }
    Ok(())
}

/// A batch being written: what each row became, by line.
type Writing = tokio::task::JoinHandle<Result<Vec<(u64, Outcome)>, DomainError>>;
/// Rows refused while reading, by line.
type Refused = Vec<(u64, DomainError)>;

async fn finish_batch(
    task: Writing,
    refused: Refused,
    summary: &mut Summary,
    rejects: &mut Rejects,
) -> Result<(), String> {
    let outcomes = task
        .await
        .map_err(|error| format!("a batch failed: {error}"))?
        .map_err(|error| {
            format!("a batch could not be written (none of its rows were): {error}")
        })?;
    let mut outcomes: Vec<(u64, Outcome)> = outcomes;
    outcomes.extend(
        refused
            .into_iter()
            .map(|(line, error)| (line, Outcome::Rejected(error))),
    );
    outcomes.sort_by_key(|(line, _)| *line);
    for (line, outcome) in &outcomes {
        summary.count(outcome);
        if let Outcome::Rejected(error) = outcome {
            rejects.write(*line, error)?;
        }
    }
    Ok(())
}

fn read_batches(
    reader: RowReader,
    importer: Arc<dyn RowImporter>,
    resume_after: u64,
    batch_rows: usize,
    stop: Arc<AtomicBool>,
    sender: tokio::sync::mpsc::Sender<FromReader>,
) {
    let mut rows = Vec::with_capacity(batch_rows);
    let mut refused = Vec::new();
    let mut last_line = resume_after;
    let send = |rows: &mut Vec<(u64, Map<String, Value>)>,
                refused: &mut Vec<(u64, DomainError)>,
                last_line: u64| {
        let prepared = importer.prepare(std::mem::take(rows));
        sender
            .blocking_send(FromReader::Batch {
                prepared,
                refused: std::mem::take(refused),
                last_line,
            })
            .is_ok()
    };
    for row in reader {
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                if !rows.is_empty() || !refused.is_empty() {
                    send(&mut rows, &mut refused, last_line);
                }
                let _ = sender.blocking_send(FromReader::Failed(error));
                return;
            }
        };
        if row.line <= resume_after {
            continue;
        }
        last_line = row.line;
        match row.fields {
            Ok(fields) => rows.push((row.line, fields)),
            Err(error) => refused.push((row.line, error)),
        }
        if rows.len() + refused.len() >= batch_rows {
            if !send(&mut rows, &mut refused, last_line) {
                return;
            }
            if stop.load(Ordering::SeqCst) {
                return;
            }
        }
    }
    if !rows.is_empty() || !refused.is_empty() {
        send(&mut rows, &mut refused, last_line);
    }
}

/// The SHA-256 of a file's bytes (hex) and its size.
fn hash_file(path: &Path) -> Result<(String, u64), String> {
    let mut file =
        File::open(path).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    let mut size = 0;
    loop {
        let count = file
            .read(&mut buffer)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        if count == 0 {
            break;
        }
        size += count as u64;
        hasher.update(&buffer[..count]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// The input and its format (from `--format`, the name, or for standard
/// input the first byte).
fn open_input(
    name: &str,
    format: Option<Format>,
) -> Result<(Box<dyn Read + Send>, Format), String> {
    if name == "-" {
        let mut stdin = io::stdin().lock();
        let mut first = Vec::new();
        // Peek at the first non-blank byte.
        let mut byte = [0u8; 1];
        loop {
            let count = stdin
                .read(&mut byte)
                .map_err(|error| format!("cannot read standard input: {error}"))?;
            if count == 0 {
                break;
            }
            first.push(byte[0]);
            if !byte[0].is_ascii_whitespace() {
                break;
            }
        }
        let format = format.unwrap_or(if first.last() == Some(&b'{') {
            Format::Ndjson
        } else {
            Format::Csv
        });
        let rest: Box<dyn Read + Send> = Box::new(io::Cursor::new(first).chain(io::stdin()));
        return Ok((rest, format));
    }
    let format = format.or_else(|| Format::from_name(name)).ok_or_else(|| {
        format!(
            "cannot tell the format of {name} from its name; pass --format csv or --format ndjson"
        )
    })?;
    let file = File::open(name).map_err(|error| format!("cannot open {name}: {error}"))?;
    Ok((Box::new(file), format))
}

/// The rejects file, created at the first rejected row.
struct Rejects {
    path: PathBuf,
    append: bool,
    file: Option<io::BufWriter<File>>,
}

impl Rejects {
    fn new(path: PathBuf, append: bool) -> Self {
        Self {
            path,
            append,
            file: None,
        }
    }

    fn write(&mut self, line: u64, error: &DomainError) -> Result<(), String> {
        if self.file.is_none() {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(self.append)
                .truncate(!self.append)
                .open(&self.path)
                .map_err(|error| format!("cannot write {}: {error}", self.path.display()))?;
            self.file = Some(io::BufWriter::new(file));
        }
        let errors: Vec<Value> = row_errors(error)
            .iter()
            .map(|error| json!({"path": error.path.to_string(), "message": error.message}))
            .collect();
        let entry = json!({"line": line, "errors": errors});
        if let Some(file) = &mut self.file {
            writeln!(file, "{entry}")
                .map_err(|error| format!("cannot write {}: {error}", self.path.display()))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        match &mut self.file {
            Some(file) => file
                .flush()
                .map_err(|error| format!("cannot write {}: {error}", self.path.display())),
            None => Ok(()),
        }
    }
}

/// Progress: a bar on a terminal, a line every few seconds elsewhere.
struct Meter {
    bar: Option<ProgressBar>,
    bytes_read: Arc<AtomicU64>,
    size: Option<u64>,
    started: Instant,
    last_line: std::sync::Mutex<Instant>,
    resumed_rows: u64,
}

/// How often a line is printed when standard error is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl Meter {
    fn new(size: Option<u64>, bytes_read: Arc<AtomicU64>, resume_after: u64) -> Self {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = match size {
                Some(size) => ProgressBar::new(size),
                None => ProgressBar::new_spinner(),
            };
            let template = if size.is_some() {
                "{spinner} {elapsed_precise} [{bar:32}] {percent:>3}%  {msg}  ETA {eta}"
            } else {
                "{spinner} {elapsed_precise}  {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            bytes_read,
            size,
            started: Instant::now(),
            last_line: std::sync::Mutex::new(Instant::now()),
            resumed_rows: resume_after,
        }
    }

    fn update(&self, summary: &Summary) {
        let rows = summary.rows();
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = rows as f64 / elapsed;
        let read = self.bytes_read.load(Ordering::Relaxed);
        let message = format!(
            "{rows} rows, {rate:.0} rows/s ({} created, {} updated, {} unchanged, {} rejected)",
            summary.created, summary.updated, summary.unchanged, summary.rejected
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(read);
                bar.set_message(message);
            }
            None => {
                let Ok(mut last) = self.last_line.lock() else {
                    return;
                };
                if last.elapsed() < PLAIN_EVERY {
                    return;
                }
                *last = Instant::now();
                let share = self
                    .size
                    .filter(|size| *size > 0)
                    .map(|size| {
                        let fraction = read as f64 / size as f64;
                        let eta = elapsed / fraction.max(0.0001) - elapsed;
                        format!(
                            ", {:.0}% of the file, ETA {:.0} s",
                            fraction * 100.0,
                            eta.max(0.0)
                        )
                    })
                    .unwrap_or_default();
                let resumed = if self.resumed_rows > 0 {
                    format!(" (resumed after line {})", self.resumed_rows)
                } else {
                    String::new()
                };
                eprintln!("import: {message}{share}{resumed}");
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub async fn export(args: ExportArgs) -> Result<(), String> {
    let kind: &dyn BulkKind = kinds::kind(&args.kind)?;
    let workspace = WorkspaceId::new(args.workspace.clone());
    let store = open_store(&args.database).await?;
    let records = Records::new(store);
    let principal = import_actor(workspace, "export");
    let output: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(io::BufWriter::new(File::create(path).map_err(|error| {
                format!("cannot create {}: {error}", path.display())
            })?))
        }
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    let mut writer = RowWriter::new(output, args.format.into(), kind.export_columns())
        .map_err(|error| format!("cannot write: {error}"))?;
    let mut after = None;
    let mut count = 0u64;
    loop {
        let (page, next) = kind
            .export_page(records.clone(), principal.clone(), after.take(), 1_000)
            .await
            .map_err(|error| format!("cannot read records: {error}"))?;
        for view in &page {
            writer
                .write(view)
                .map_err(|error| format!("cannot write: {error}"))?;
        }
        count += page.len() as u64;
        match next {
            Some(next) if page.len() == 1_000 => after = Some(next),
            _ => break,
        }
    }
    writer
        .finish()
        .map_err(|error| format!("cannot write: {error}"))?;
    eprintln!("exported {count} records ({})", kind.name());
    Ok(())
}
