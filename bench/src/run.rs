//! `clientele-bench run`: every workload at every connection count against
//! both baselines, the server's peak memory, and on PostgreSQL pgbench
//! running the same statements for comparison; writes RESULTS.md.

use std::time::Instant;

use crate::baselines::{CEILING, start_ceiling, storage_floor};
use std::path::Path;

use crate::cli::{Backend, RunArgs};
use crate::cpu::{cpu_by_name, cpu_seconds, machine_seconds, used_between};
use crate::fixture::{Ids, SharedStore, fresh_database, load};
use crate::load::{
    GET_RECORD_STATEMENT, IdFiles, Measured, PATCH_PROFILE_STATEMENTS, Workload, pgbench,
    write_ids, wrk, wrk_across,
};
use crate::report::{self, CpuUse, PgbenchComparison, PgbenchRow, RunRow, ScaleOutRow, publish};
use crate::server::{Server, server_binary, start_server};

pub async fn run(args: RunArgs) -> Result<(), String> {
    let server_binary = server_binary(args.target.server_binary.as_ref())?;
    let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
    let database = fresh_database(args.target.backend, &args.target.postgres_url)?;
    let (store, token, ids) = load(&args.target, &database.url, args.records).await?;
    let files = write_ids(scratch.path(), &ids)?;
    if !args.instances.is_empty() {
        drop(store);
        let rows = scale_out(&args, &server_binary, &database.url, &token, &files)?;
        return publish(
            &args.target.results("SCALEOUT"),
            "Scale-out: instances on one database",
            "bench/run --instances",
            &report::scale_out(&args, &rows),
        );
    }
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

/// Takes the store so that it is closed once the floor is measured, before
/// the server opens the database.
async fn measure_floor(args: &RunArgs, store: SharedStore, ids: &Ids) -> Result<Measured, String> {
    // The server refreshes stale planner statistics when it starts (and
    // every 10 s): the floor, measured in process before it, gets the
    // same, or it would measure the plan of a database no one analyzed
    // (34 tx/s once, against 1,060). PostgreSQL publishes the preload's
    // row counts to the rule's counters within a second of going idle.
    if args.target.backend == Backend::Postgres && !args.target.analyze {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        store
            .refresh_statistics()
            .await
            .map_err(|error| format!("refreshing statistics before the floor: {error}"))?;
    }
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

/// On PostgreSQL, pgbench running a profile PATCH's statements and a
/// GET's SELECT at each connection count, beside Clientele's rate for
/// that request at that count: how much of the database's own speed the
/// server keeps.
fn compare_with_pgbench(
    args: &RunArgs,
    database_url: &str,
    profile_ids: &[String],
    rows: &[RunRow],
) -> Result<Vec<PgbenchComparison>, String> {
    if args.target.backend != Backend::Postgres {
        return Ok(Vec::new());
    }
    let first = profile_ids.first().cloned().unwrap_or_default();
    let mut compared = Vec::new();
    for script in [&PATCH_PROFILE_STATEMENTS, &GET_RECORD_STATEMENT] {
        let mut comparison = PgbenchComparison {
            script,
            rows: Vec::new(),
        };
        for &clients in &args.connections {
            eprintln!("== pgbench, {}, at {clients} client(s)", script.what);
            let tps = pgbench(
                script,
                database_url,
                &first,
                profile_ids.len(),
                clients,
                args.seconds,
            )?;
            let ours = rows
                .iter()
                .find(|row| row.workload == script.workload && row.connections == clients)
                .map_or(0.0, |row| row.measured.requests_per_second);
            comparison.rows.push(PgbenchRow { clients, tps, ours });
        }
        compared.push(comparison);
    }
    Ok(compared)
}

/// PATCH ICP and GET ICP over each number of instances in
/// `args.instances`, with the CPU each side used (see [`CpuUse`]).
fn scale_out(
    args: &RunArgs,
    binary: &Path,
    database_url: &str,
    token: &str,
    files: &IdFiles,
) -> Result<Vec<ScaleOutRow>, String> {
    let connections = args.connections.iter().copied().max().unwrap_or(64);
    let workloads = [
        Workload::new("PATCH ICP (seed body)", "patch_icp", Some(&files.icps)),
        Workload::new("GET ICP", "get_icp", Some(&files.icps)),
    ];
    let mut rows = Vec::new();
    for &count in &args.instances {
        let servers = (0..count.max(1))
            .map(|_| start_server(binary, database_url))
            .collect::<Result<Vec<_>, _>>()?;
        let urls: Vec<String> = servers.iter().map(|server| server.url.clone()).collect();
        let pids: Vec<String> = servers
            .iter()
            .map(|server| server.pid().to_string())
            .collect();
        let clientele = || pids.iter().map(|pid| cpu_seconds(pid)).sum::<f64>();
        for workload in &workloads {
            eprintln!(
                "== {} at {connections} connections over {count} instance(s)",
                workload.name
            );
            let (clientele_before, postgres_before, machine_before) =
                (clientele(), cpu_by_name("postgres"), machine_seconds());
            let started = Instant::now();
            let measured = wrk_across(&urls, workload, token, connections, args.seconds);
            let wall = started.elapsed().as_secs_f64().max(1e-9);
            let machine_after = machine_seconds();
            let cpu = CpuUse {
                clientele: (clientele() - clientele_before) / wall,
                postgres: used_between(&postgres_before, &cpu_by_name("postgres")) / wall,
                busy: (machine_after.0 - machine_before.0) / wall,
                all: (machine_after.1 - machine_before.1) / wall,
            };
            rows.push(ScaleOutRow {
                instances: count,
                workload: workload.name,
                measured: measured?,
                cpu,
            });
        }
        for server in servers {
            server.stop();
        }
    }
    Ok(rows)
}
