//! Clientele's benchmark harness. `clientele-bench run` (normally through
//! `bench/run`, which builds in release mode first):
//!
//! 1. creates a fresh database (SQLite file, or a PostgreSQL database) and
//!    preloads ICPs and Hood profiles through the library, in batches;
//! 2. measures the *storage floor*: the PATCH's read-modify-write
//!    transaction in a tight in-process loop, no HTTP, one at a time;
//! 3. starts `clientele serve` and drives each workload with wrk at each
//!    connection count, reading wrk's summary from a Lua `done()` hook;
//! 4. measures the *HTTP ceiling*: a bare axum handler returning a fixed
//!    JSON body under the same wrk settings;
//! 5. prints every workload as a ratio to both baselines, with the server's
//!    peak memory, and writes `bench/RESULTS.md`.
//!
//! Baselines are measured in the same run so the ratios hold on a noisy
//! machine. Nothing here asserts a figure; CI runs a 5-second smoke.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use clientele::core::auth::{Principal, Role, WorkspaceId, issue_api_key};
use clientele::core::error::DomainError;
use clientele::core::fields::Declared;
use clientele::core::hood::Profile;
use clientele::core::icp::Icp;
use clientele::core::records::{Precondition, Records};
use clientele::store::SharedStore;
use clientele::surfaces::hood::Hood;
use clientele::surfaces::lance::Lance;
use rand::Rng;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "clientele-bench",
    about = "Benchmarks Clientele against baselines measured in the same run"
)]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The whole benchmark: preload, floor, workloads, ceiling, report.
    Run(RunArgs),
    /// Scale: single-record GET and PATCH, and the first and last list
    /// pages, at a small and a large record count, from one database that
    /// grows between the two; writes bench/SCALE.md.
    Scale(ScaleArgs),
    /// The HTTP ceiling: a bare axum handler with a fixed JSON body.
    Ceiling {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend and the settings that matter, for a report.
    fn describe(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite (WAL, synchronous=FULL)",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

#[derive(clap::Args)]
struct RunArgs {
    /// Seconds each workload runs at each connection count.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// ICPs and Hood profiles to preload (each).
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Connection counts to drive each workload with.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    connections: Vec<usize>,
    #[command(flatten)]
    target: Target,
}

/// What to benchmark and where the report goes, for `run` and `scale`.
#[derive(clap::Args)]
struct Target {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL server to create the benchmark database on.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// Where to write the report (nothing written when empty). Default:
    /// `bench/RESULTS.md` for `run`, `bench/SCALE.md` for `scale`, each
    /// with `-postgres` before `.md` for PostgreSQL.
    #[arg(long)]
    results: Option<String>,
    /// The `clientele` binary to benchmark (default: beside this one).
    #[arg(long)]
    server_binary: Option<PathBuf>,
}

impl Target {
    /// The report's path: `--results`, or `bench/{name}.md` (with
    /// `-postgres` for PostgreSQL).
    fn results(&self, name: &str) -> String {
        self.results.clone().unwrap_or_else(|| match self.backend {
            Backend::Sqlite => format!("bench/{name}.md"),
            Backend::Postgres => format!("bench/{name}-postgres.md"),
        })
    }
}

#[derive(clap::Args)]
struct ScaleArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Records of each kind (ICPs, Hood profiles) at the first measurement.
    #[arg(long, default_value_t = 100_000)]
    small: usize,
    /// Records of each kind at the second measurement.
    #[arg(long, default_value_t = 1_000_000)]
    large: usize,
    /// Connections to drive each measurement with.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[command(flatten)]
    target: Target,
}

const WORKSPACE: &str = "bench";
const USER: &str = "user_bench";

fn main() -> Result<(), String> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("runtime: {error}"))?;
    match cli.command {
        BenchCommand::Run(args) => runtime.block_on(run(args)),
        BenchCommand::Scale(args) => runtime.block_on(scale(args)),
        BenchCommand::Ceiling { listen } => runtime.block_on(ceiling(listen)),
    }
}

async fn ceiling(listen: String) -> Result<(), String> {
    let body = json!({"id": "550e8400-e29b-41d4-a716-446655440000", "name": "Fixed", "ok": true});
    let app = axum::Router::new().fallback(axum::routing::any(move || {
        let body = body.clone();
        async move { axum::Json(body) }
    }));
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|error| format!("bind {listen}: {error}"))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    println!("ceiling listening on http://{address}");
    axum::serve(listener, app)
        .await
        .map_err(|error| error.to_string())
}

/// One wrk measurement.
#[derive(Clone, Debug, Default)]
struct Measured {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
}

struct Database {
    url: String,
    _directory: Option<tempfile::TempDir>,
    drop_on_exit: Option<(String, String)>,
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.drop_on_exit {
            let _ = Command::new("psql")
                .args([
                    admin.as_str(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .status();
        }
    }
}

fn fresh_database(backend: Backend, postgres_url: &str) -> Result<Database, String> {
    match backend {
        Backend::Sqlite => {
            let directory = tempfile::tempdir().map_err(|error| error.to_string())?;
            Ok(Database {
                url: format!("sqlite://{}", directory.path().join("bench.db").display()),
                _directory: Some(directory),
                drop_on_exit: None,
            })
        }
        Backend::Postgres => {
            let name = format!("clientele_bench_{}", std::process::id());
            let status = Command::new("psql")
                .args([postgres_url, "-qc", &format!("CREATE DATABASE {name}")])
                .status()
                .map_err(|error| format!("psql: {error}"))?;
            if !status.success() {
                return Err("could not create the PostgreSQL benchmark database".into());
            }
            let base = postgres_url
                .rsplit_once('/')
                .map_or(postgres_url, |(base, _)| base);
            Ok(Database {
                url: format!("{base}/{name}"),
                _directory: None,
                drop_on_exit: Some((postgres_url.to_owned(), name)),
            })
        }
    }
}

fn principal() -> Principal {
    Principal {
        workspace: WorkspaceId::new(WORKSPACE),
        user_id: USER.to_owned(),
        role: Role::Admin,
        key_id: None,
        request_id: "bench-preload".to_owned(),
    }
}

/// The ICP and the Hood profile preloaded as number `index`.
fn preload_bodies(index: usize) -> Result<(Icp, Profile), DomainError> {
    let principal = principal();
    let body = json!({
        "name": format!("ICP {index}"),
        "description": "C-level and VP-level technology leaders at enterprise companies",
        "userIds": [USER],
        "leadProviderCriteria": [{"provider": "baseProvider", "type": "person",
            "filters": {"job_titles": ["CTO", "VP Engineering"]}}]
    });
    let icp = Icp::read_new::<Lance>(&body)?.created_by(&principal);
    let body = json!({
        "email": format!("person{index}@example.com"),
        "full_name": format!("Person {index}"),
        "organization_id": format!("{}", 1000 + index % 10),
        "custom_properties": {"clicker": "1"}
    });
    Ok((icp, Profile::read_new::<Hood>(&body)?))
}

/// Inserts `count` ICPs and `count` profiles, 1,000 per transaction, and
/// returns their ids.
async fn preload(
    store: &SharedStore,
    start: usize,
    count: usize,
) -> Result<(Vec<String>, Vec<String>), String> {
    let records = Records::new(store.clone());
    let principal = principal();
    let mut icp_ids = Vec::with_capacity(count);
    let mut profile_ids = Vec::with_capacity(count);
    let fail = |error: DomainError| format!("preload: {error}");
    let end = start + count;
    for batch_start in (start..end).step_by(1_000) {
        let batch = batch_start..(batch_start + 1_000).min(end);
        let (icps, profiles) = records
            .transact(&principal, move |session| {
                Box::pin(async move {
                    let mut icp_ids = Vec::with_capacity(batch.len());
                    let mut profile_ids = Vec::with_capacity(batch.len());
                    for index in batch {
                        let (icp, profile) = preload_bodies(index)?;
                        icp_ids.push(session.insert(|_| icp).await?.id);
                        profile_ids.push(session.insert(|_| profile).await?.id);
                    }
                    Ok((icp_ids, profile_ids))
                })
            })
            .await
            .map_err(fail)?;
        icp_ids.extend(icps);
        profile_ids.extend(profiles);
    }
    Ok((icp_ids, profile_ids))
}

/// The storage floor: the PATCH's transaction, back to back, in process.
async fn storage_floor(
    store: &SharedStore,
    ids: &[String],
    seconds: u64,
) -> Result<Measured, String> {
    let records = Records::new(store.clone());
    let principal = principal();
    let patch_body = json!({"name": "Updated ICP Name", "leadsPerList": 50,
        "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": 5}]});
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut latencies = Vec::new();
    let started = Instant::now();
    while Instant::now() < deadline {
        let id = &ids[rand::rng().random_range(0..ids.len())];
        let patch = Icp::read_patch::<Lance>(&patch_body).map_err(|error| error.to_string())?;
        let began = Instant::now();
        records
            .update::<Icp>(&principal, id, &Precondition::None, |icp| patch.apply(icp))
            .await
            .map_err(|error| format!("floor: {error}"))?;
        latencies.push(began.elapsed());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |fraction: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * fraction) as usize)
            .map_or(0.0, |duration| duration.as_secs_f64() * 1000.0)
    };
    Ok(Measured {
        requests_per_second: latencies.len() as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        errors: 0,
    })
}

/// Starts a child that prints `… listening on http://ADDR` and returns it
/// with that URL.
fn start_listening(mut command: Command) -> Result<(Child, String), String> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("spawn: {error}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .ok_or("the process exited before listening")?
            .map_err(|error| error.to_string())?;
        if let Some((_, url)) = line.split_once("listening on ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((child, url))
}

fn wrk(
    url: &str,
    kind: &str,
    ids: Option<&Path>,
    path: Option<&str>,
    token: &str,
    connections: usize,
    seconds: u64,
) -> Result<Measured, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("lua/workload.lua");
    let threads = connections.clamp(1, 2);
    let output = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .env("BENCH_KIND", kind)
        .env(
            "BENCH_IDS",
            ids.map(|path| path.display().to_string())
                .unwrap_or_default(),
        )
        .env("BENCH_TOKEN", token)
        .env("BENCH_PATH", path.unwrap_or("/"))
        .output()
        .map_err(|error| format!("wrk (install it: apt-get install wrk): {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("BENCH_RESULT "))
        .ok_or_else(|| {
            format!(
                "wrk printed no result: {stdout} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let result: Value = serde_json::from_str(line).map_err(|error| error.to_string())?;
    let number = |key: &str| result[key].as_f64().unwrap_or(0.0);
    Ok(Measured {
        requests_per_second: number("requests") / (number("duration_us") / 1e6).max(1e-9),
        p50_ms: number("p50_us") / 1000.0,
        p99_ms: number("p99_us") / 1000.0,
        max_ms: number("max_us") / 1000.0,
        errors: result["errors"].as_u64().unwrap_or(0),
    })
}

/// PostgreSQL's own speed for the same statements a profile PATCH issues,
/// with the same number of clients: pgbench with a custom script.
fn pgbench(
    database_url: &str,
    first_id: &str,
    count: usize,
    clients: usize,
    seconds: u64,
) -> Result<f64, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pgbench/patch_profile.sql");
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            &clients.clamp(1, 2).to_string(),
            "-T",
            &seconds.to_string(),
            "-D",
            &format!("first={first_id}"),
            "-D",
            &format!("count={count}"),
            "-f",
        ])
        .arg(&script)
        .arg(database_url)
        .output()
        .map_err(|error| format!("pgbench: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .ok_or_else(|| {
            format!(
                "pgbench printed no tps: {stdout} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

fn peak_memory_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.split_whitespace().next())
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|name| name.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .next()
                .map(|line| line.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {memory:.0} GiB RAM; {rustc}")
}

fn write_ids(directory: &Path, name: &str, ids: &[String]) -> Result<PathBuf, String> {
    let path = directory.join(name);
    std::fs::write(&path, ids.join("\n")).map_err(|error| error.to_string())?;
    Ok(path)
}

async fn run(args: RunArgs) -> Result<(), String> {
    let server_binary = server_binary(args.target.server_binary.as_ref())?;
    let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
    let database = fresh_database(args.target.backend, &args.target.postgres_url)?;
    let backend = args.target.backend.describe();
    eprintln!(
        "== {backend}: preloading {} ICPs and {} Hood profiles",
        args.records, args.records
    );
    let started = Instant::now();
    let (store, token) = open_with_key(&database.url).await?;
    let (icp_ids, profile_ids) = preload(&store, 0, args.records).await?;
    settle(args.target.backend, &database.url)?;
    eprintln!("   preloaded in {:.1} s", started.elapsed().as_secs_f64());
    let icp_file = write_ids(scratch.path(), "icps.txt", &icp_ids)?;
    let profile_file = write_ids(scratch.path(), "profiles.txt", &profile_ids)?;

    eprintln!(
        "== storage floor: the PATCH transaction in process, {} s",
        args.seconds
    );
    let floor = storage_floor(&store, &icp_ids, args.seconds).await?;
    drop(store);

    let (mut server, server_url) = start_server(&server_binary, &database.url)?;
    let mut ceiling_command =
        Command::new(std::env::current_exe().map_err(|error| error.to_string())?);
    ceiling_command.arg("ceiling");
    let (mut ceiling_child, ceiling_url) = start_listening(ceiling_command)?;

    let workloads: [(&str, &str, Option<&Path>); 4] = [
        ("PATCH ICP (seed body)", "patch_icp", Some(&icp_file)),
        ("GET ICP", "get_icp", Some(&icp_file)),
        (
            "PATCH profile custom_properties",
            "patch_profile",
            Some(&profile_file),
        ),
        ("list profiles, filtered", "list_profiles", None),
    ];
    let mut rows: Vec<(String, usize, Measured, Measured)> = Vec::new();
    for &connections in &args.connections {
        eprintln!("== HTTP ceiling at {connections} connection(s)");
        let ceiling = wrk(
            &ceiling_url,
            "ceiling",
            None,
            None,
            &token,
            connections,
            args.seconds,
        )?;
        for (name, kind, ids) in workloads {
            eprintln!("== {name} at {connections} connection(s)");
            let measured = wrk(
                &server_url,
                kind,
                ids,
                None,
                &token,
                connections,
                args.seconds,
            )?;
            rows.push((name.to_owned(), connections, measured, ceiling.clone()));
        }
    }
    let peak = peak_memory_mib(server.id());
    let mut pgbench_rows = Vec::new();
    if args.target.backend == Backend::Postgres {
        for &connections in &args.connections {
            eprintln!("== pgbench, the profile PATCH's statements, at {connections} client(s)");
            let first = profile_ids.first().cloned().unwrap_or_default();
            let tps = pgbench(
                &database.url,
                &first,
                profile_ids.len(),
                connections,
                args.seconds,
            )?;
            let ours = rows
                .iter()
                .find(|(name, conns, ..)| {
                    name.starts_with("PATCH profile") && *conns == connections
                })
                .map_or(0.0, |(_, _, measured, _)| measured.requests_per_second);
            pgbench_rows.push((connections, tps, ours));
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = ceiling_child.kill();
    let _ = ceiling_child.wait();

    let mut report = String::new();
    let _ = writeln!(report, "Backend: {backend}. Machine: {}.", machine());
    let _ = writeln!(
        report,
        "Preloaded {} ICPs and {} Hood profiles; each workload ran {} s per connection count.\n",
        args.records, args.records, args.seconds
    );
    let _ = writeln!(
        report,
        "Storage floor (one PATCH transaction at a time, in process, no HTTP): {:.0} tx/s, p50 {:.2} ms, p99 {:.2} ms.\n",
        floor.requests_per_second, floor.p50_ms, floor.p99_ms
    );
    let _ = writeln!(
        report,
        "| workload | conns | req/s | p50 ms | p99 ms | max ms | errors | × floor | × ceiling | ceiling req/s |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, connections, measured, ceiling) in &rows {
        let _ = writeln!(
            report,
            "| {name} | {connections} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.3} | {:.0} |",
            measured.requests_per_second,
            measured.p50_ms,
            measured.p99_ms,
            measured.max_ms,
            measured.errors,
            measured.requests_per_second / floor.requests_per_second.max(1e-9),
            measured.requests_per_second / ceiling.requests_per_second.max(1e-9),
            ceiling.requests_per_second,
        );
    }
    let _ = writeln!(report, "\nPeak server memory (VmHWM): {peak:.1} MiB.");
    if !pgbench_rows.is_empty() {
        let _ = writeln!(
            report,
            "\npgbench, the same statements as a profile PATCH (bench/pgbench/patch_profile.sql):\n"
        );
        let _ = writeln!(
            report,
            "| clients | pgbench tx/s | Clientele PATCH profile req/s | ratio |"
        );
        let _ = writeln!(report, "|---:|---:|---:|---:|");
        for (clients, tps, ours) in &pgbench_rows {
            let _ = writeln!(
                report,
                "| {clients} | {tps:.0} | {ours:.0} | {:.2} |",
                ours / tps.max(1e-9)
            );
        }
    }
    publish(
        &args.target.results("RESULTS"),
        "Benchmark results",
        "bench/run",
        &report,
    )
}

/// After a bulk load, lets PostgreSQL catch up before anything is
/// measured: statistics for the planner (autovacuum would gather them some
/// time later, in the middle of a measurement) and a checkpoint (otherwise
/// it writes the load out during the first measurement). In a first run
/// without this, the storage floor right after the load measured 38 tx/s.
fn settle(backend: Backend, database_url: &str) -> Result<(), String> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    let status = Command::new("psql")
        .args([database_url, "-qc", "VACUUM ANALYZE", "-c", "CHECKPOINT"])
        .status()
        .map_err(|error| format!("psql: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("VACUUM ANALYZE / CHECKPOINT after the preload failed".into())
    }
}

/// Opens (and migrates) the benchmark database and issues the admin key
/// every workload uses.
async fn open_with_key(database_url: &str) -> Result<(SharedStore, String), String> {
    let store = clientele::store::connect(database_url)
        .await
        .map_err(|error| format!("open the database: {error}"))?;
    let token = issue_api_key(&store, &WorkspaceId::new(WORKSPACE), USER, Role::Admin)
        .await
        .map_err(|error| format!("key: {error}"))?
        .token;
    Ok((store, token))
}

/// Starts `clientele serve` on `database_url` (rate limits off).
fn start_server(binary: &Path, database_url: &str) -> Result<(Child, String), String> {
    let mut server = Command::new(binary);
    server
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ])
        .args(["--hood-rate-limit", "off", "--log", "warn"]);
    start_listening(server)
}

/// The measurements of one scale point, by workload name.
type ScalePoint = Vec<(String, Measured)>;

/// Starts the server on `database`, runs each scale workload, stops it;
/// returns the measurements and the server's peak memory.
fn measure_scale(
    args: &ScaleArgs,
    binary: &Path,
    database_url: &str,
    token: &str,
    id_files: (&Path, &Path),
    records: usize,
) -> Result<(ScalePoint, f64), String> {
    let (mut server, url) = start_server(binary, database_url)?;
    let last_page = records.div_ceil(20);
    let filtered_last_page = records.div_ceil(10).div_ceil(20);
    let last = format!("/v1/hood/profiles?page={last_page},20");
    let filtered_last =
        format!("/v1/hood/profiles?organization_id=eq:1007&page={filtered_last_page},20");
    let workloads: [(&str, &str, Option<&Path>, Option<&str>); 7] = [
        ("GET ICP", "get_icp", Some(id_files.0), None),
        ("PATCH ICP (seed body)", "patch_icp", Some(id_files.0), None),
        (
            "PATCH profile custom_properties",
            "patch_profile",
            Some(id_files.1),
            None,
        ),
        (
            "list profiles, first page",
            "get_path",
            None,
            Some("/v1/hood/profiles?page=1,20"),
        ),
        ("list profiles, last page", "get_path", None, Some(&last)),
        (
            "list profiles filtered, first page",
            "get_path",
            None,
            Some("/v1/hood/profiles?organization_id=eq:1007&page=1,20"),
        ),
        (
            "list profiles filtered, last page",
            "get_path",
            None,
            Some(&filtered_last),
        ),
    ];
    let mut point = Vec::new();
    for (name, kind, ids, path) in workloads {
        eprintln!("== {records} records: {name}");
        let measured = wrk(&url, kind, ids, path, token, args.connections, args.seconds)?;
        point.push((name.to_owned(), measured));
    }
    let peak = peak_memory_mib(server.id());
    let _ = server.kill();
    let _ = server.wait();
    Ok((point, peak))
}

async fn scale(args: ScaleArgs) -> Result<(), String> {
    if args.large <= args.small {
        return Err("--large must be more than --small".into());
    }
    let binary = server_binary(args.target.server_binary.as_ref())?;
    let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
    let database = fresh_database(args.target.backend, &args.target.postgres_url)?;
    let (store, token) = open_with_key(&database.url).await?;
    let mut points = Vec::new();
    let mut icp_ids = Vec::new();
    let mut profile_ids = Vec::new();
    let mut store = Some(store);
    for records in [args.small, args.large] {
        let open = match store.take() {
            Some(open) => open,
            None => clientele::store::connect(&database.url)
                .await
                .map_err(|error| format!("open the database: {error}"))?,
        };
        let started = Instant::now();
        eprintln!("== growing to {records} ICPs and {records} Hood profiles");
        let (icps, profiles) = preload(&open, icp_ids.len(), records - icp_ids.len()).await?;
        icp_ids.extend(icps);
        profile_ids.extend(profiles);
        settle(args.target.backend, &database.url)?;
        eprintln!("   done in {:.0} s", started.elapsed().as_secs_f64());
        drop(open);
        let icp_file = write_ids(scratch.path(), "icps.txt", &icp_ids)?;
        let profile_file = write_ids(scratch.path(), "profiles.txt", &profile_ids)?;
        let (point, peak) = measure_scale(
            &args,
            &binary,
            &database.url,
            &token,
            (&icp_file, &profile_file),
            records,
        )?;
        points.push((records, point, peak));
    }

    let backend = args.target.backend.describe();
    let (small, large) = (&points[0], &points[1]);
    let mut report = String::new();
    let _ = writeln!(report, "Backend: {backend}. Machine: {}.", machine());
    let _ = writeln!(
        report,
        "One database grown from {} to {} ICPs and as many Hood profiles (10% of the profiles in organization 1007); the server restarted on it for each measurement; {} connection(s), {} s per workload; pages of 20.\n",
        args.small, args.large, args.connections, args.seconds
    );
    let _ = writeln!(
        report,
        "| workload | req/s at {a} | p50 ms | p99 ms | req/s at {b} | p50 ms | p99 ms | p50 ratio | errors |",
        a = args.small,
        b = args.large
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ((name, at_small), (_, at_large)) in small.1.iter().zip(&large.1) {
        let _ = writeln!(
            report,
            "| {name} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            at_small.requests_per_second,
            at_small.p50_ms,
            at_small.p99_ms,
            at_large.requests_per_second,
            at_large.p50_ms,
            at_large.p99_ms,
            at_large.p50_ms / at_small.p50_ms.max(1e-9),
            at_small.errors + at_large.errors,
        );
    }
    let _ = writeln!(
        report,
        "\nPeak server memory (VmHWM): {:.1} MiB at {}, {:.1} MiB at {}.",
        small.2, small.0, large.2, large.0
    );
    publish(
        &args.target.results("SCALE"),
        "Scale results",
        "bench/run scale",
        &report,
    )
}

/// Prints `report` and, unless `results` is empty, writes it there under
/// `title` with the date and the command that produced it.
fn publish(results: &str, title: &str, harness: &str, report: &str) -> Result<(), String> {
    println!("{report}");
    if results.is_empty() {
        return Ok(());
    }
    let command: Vec<String> = std::env::args().collect();
    let document = format!(
        "# {title}\n\nWritten by the harness (`{harness}`), not by hand, on {}.\n\nCommand: `{}`\n\n{report}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        command.join(" ")
    );
    std::fs::write(results, document).map_err(|error| format!("write {results}: {error}"))?;
    eprintln!("wrote {results}");
    Ok(())
}

/// The `clientele` binary to benchmark: `explicit`, or the one beside this.
fn server_binary(explicit: Option<&PathBuf>) -> Result<PathBuf, String> {
    match explicit {
        Some(path) => Ok(path.clone()),
        None => std::env::current_exe()
            .map(|exe| exe.with_file_name("clientele"))
            .map_err(|error| error.to_string()),
    }
}
