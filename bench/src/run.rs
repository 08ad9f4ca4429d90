//! `clientele-bench run`: every workload at every connection count against
//! both baselines, the server's peak memory, and on PostgreSQL pgbench for
//! comparison; writes RESULTS.md.

use std::fmt::Write as _;
use std::time::Instant;

use crate::baselines::{CEILING, start_ceiling, storage_floor};
use crate::cli::{Backend, RunArgs};
use crate::fixture::{Ids, fresh_database, open_with_key, preload, settle};
use crate::load::{Measured, Workload, pgbench, write_ids, wrk};
use crate::report::{machine, publish};
use crate::server::{server_binary, start_server};

pub async fn run(args: RunArgs) -> Result<(), String> {
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
    let mut ids = Ids::default();
    preload(&store, &mut ids, args.records).await?;
    settle(args.target.backend, &database.url)?;
    eprintln!("   preloaded in {:.1} s", started.elapsed().as_secs_f64());
    let files = write_ids(scratch.path(), &ids)?;

    eprintln!(
        "== storage floor: the PATCH transaction in process, {} s",
        args.seconds
    );
    let floor = storage_floor(&store, &ids.icps, args.seconds).await?;
    drop(store);

    let server = start_server(&server_binary, &database.url)?;
    let ceiling_server = start_ceiling()?;

    let workloads = [
        Workload::new("PATCH ICP (seed body)", "patch_icp", Some(&files.icps)),
        Workload::new("GET ICP", "get_icp", Some(&files.icps)),
        Workload::new(
            "PATCH profile custom_properties",
            "patch_profile",
            Some(&files.profiles),
        ),
        Workload::new("list profiles, filtered", "list_profiles", None),
    ];
    let mut rows: Vec<(String, usize, Measured, Measured)> = Vec::new();
    for &connections in &args.connections {
        eprintln!("== {} at {connections} connection(s)", CEILING.name);
        let ceiling = wrk(
            &ceiling_server.url,
            &CEILING,
            &token,
            connections,
            args.seconds,
        )?;
        for workload in &workloads {
            eprintln!("== {} at {connections} connection(s)", workload.name);
            let measured = wrk(&server.url, workload, &token, connections, args.seconds)?;
            rows.push((
                workload.name.to_owned(),
                connections,
                measured,
                ceiling.clone(),
            ));
        }
    }
    let peak = server.peak_memory_mib();
    let mut pgbench_rows = Vec::new();
    if args.target.backend == Backend::Postgres {
        for &connections in &args.connections {
            eprintln!("== pgbench, the profile PATCH's statements, at {connections} client(s)");
            let first = ids.profiles.first().cloned().unwrap_or_default();
            let tps = pgbench(
                &database.url,
                &first,
                ids.profiles.len(),
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
    server.stop();
    ceiling_server.stop();

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
