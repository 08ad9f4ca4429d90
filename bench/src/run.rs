//! `clientele-bench run`: every workload at every connection count against
//! both baselines, the server's peak memory, and on PostgreSQL pgbench for
//! comparison; writes RESULTS.md.

use std::time::Instant;

use crate::baselines::{CEILING, start_ceiling, storage_floor};
use crate::cli::{Backend, RunArgs};
use crate::fixture::{Ids, SharedStore, fresh_database, open_with_key, preload, settle};
use crate::load::{IdFiles, Measured, Workload, pgbench, write_ids, wrk};
use crate::report::{self, PgbenchRow, RunRow, publish};
use crate::server::{Server, server_binary, start_server};

pub async fn run(args: RunArgs) -> Result<(), String> {
    let server_binary = server_binary(args.target.server_binary.as_ref())?;
    let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
    let database = fresh_database(args.target.backend, &args.target.postgres_url)?;
    let (store, token, ids) = load(&args, &database.url).await?;
    let files = write_ids(scratch.path(), &ids)?;
    let floor = measure_floor(&args, store, &ids).await?;

    let server = start_server(&server_binary, &database.url)?;
    let ceiling = start_ceiling()?;
    let rows = measure_workloads(&args, &server, &ceiling, &token, &files)?;
    let peak = server.peak_memory_mib();
    let pgbench = compare_with_pgbench(&args, &database.url, &ids.profiles, &rows)?;
    server.stop();
    ceiling.stop();

    let report = report::results(&args, &floor, &rows, peak, &pgbench);
    publish(
        &args.target.results("RESULTS"),
        "Benchmark results",
        "bench/run",
        &report,
    )
}

/// Opens the fresh database, preloads `args.records` of each kind and
/// settles it, timed; returns the store still open for the floor, the key
/// and the ids.
async fn load(args: &RunArgs, database_url: &str) -> Result<(SharedStore, String, Ids), String> {
    eprintln!(
        "== {}: preloading {} ICPs and {} Hood profiles",
        args.target.backend.describe(),
        args.records,
        args.records
    );
    let started = Instant::now();
    let (store, token) = open_with_key(database_url).await?;
    let mut ids = Ids::default();
    preload(&store, &mut ids, args.records).await?;
    settle(args.target.backend, database_url, args.target.analyze)?;
    eprintln!("   preloaded in {:.1} s", started.elapsed().as_secs_f64());
    Ok((store, token, ids))
}

/// Takes the store so that it is closed once the floor is measured, before
/// the server opens the database.
async fn measure_floor(args: &RunArgs, store: SharedStore, ids: &Ids) -> Result<Measured, String> {
    eprintln!(
        "== storage floor: the PATCH transaction in process, {} s",
        args.seconds
    );
    storage_floor(&store, &ids.icps, args.seconds).await
}

/// Each workload at each connection count, after the ceiling at that count,
/// so that every row carries the ceiling measured beside it.
fn measure_workloads(
    args: &RunArgs,
    server: &Server,
    ceiling_server: &Server,
    token: &str,
    files: &IdFiles,
) -> Result<Vec<RunRow>, String> {
    let workloads = [
        Workload::new("PATCH ICP (seed body)", "patch_icp", Some(&files.icps)),
        Workload::new(
            "PATCH ICP, a fresh Idempotency-Key each",
            "patch_icp_keyed",
            Some(&files.icps),
        ),
        Workload::new("GET ICP", "get_icp", Some(&files.icps)),
        Workload::new(
            "PATCH profile custom_properties",
            "patch_profile",
            Some(&files.profiles),
        ),
        Workload::new("list profiles, filtered", "list_profiles", None),
    ];
    let mut rows = Vec::new();
    for &connections in &args.connections {
        let measure = |server: &Server, workload: &Workload| {
            eprintln!("== {} at {connections} connection(s)", workload.name);
            wrk(&server.url, workload, token, connections, args.seconds)
        };
        let ceiling = measure(ceiling_server, &CEILING)?;
        for workload in &workloads {
            rows.push(RunRow {
                workload: workload.name,
                connections,
                measured: measure(server, workload)?,
                ceiling: ceiling.clone(),
            });
        }
    }
    Ok(rows)
}

/// On PostgreSQL, pgbench running the profile PATCH's statements at each
/// connection count, beside Clientele's PATCH profile rate at that count:
/// how much of the database's own speed the server keeps.
fn compare_with_pgbench(
    args: &RunArgs,
    database_url: &str,
    profile_ids: &[String],
    rows: &[RunRow],
) -> Result<Vec<PgbenchRow>, String> {
    if args.target.backend != Backend::Postgres {
        return Ok(Vec::new());
    }
    let first = profile_ids.first().cloned().unwrap_or_default();
    let mut compared = Vec::new();
    for &clients in &args.connections {
        eprintln!("== pgbench, the profile PATCH's statements, at {clients} client(s)");
        let tps = pgbench(
            database_url,
            &first,
            profile_ids.len(),
            clients,
            args.seconds,
        )?;
        let ours = rows
            .iter()
            .find(|row| row.workload.starts_with("PATCH profile") && row.connections == clients)
            .map_or(0.0, |row| row.measured.requests_per_second);
        compared.push(PgbenchRow { clients, tps, ours });
    }
    Ok(compared)
}
