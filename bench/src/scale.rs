//! `clientele-bench scale`: the single-record requests and the first and
//! last list pages at a small and a large record count, from one database
//! grown between the two; writes SCALE.md.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::cli::ScaleArgs;
use crate::fixture::{self, Ids, fresh_database, open_with_key, preload, settle};
use crate::load::{IdFiles, Measured, Workload, write_ids, wrk};
use crate::report::{machine, publish};
use crate::server::{server_binary, start_server};

/// The measurements of one scale point, by workload name.
pub type ScalePoint = Vec<(String, Measured)>;

/// Starts the server on `database`, runs each scale workload, stops it;
/// returns the measurements and the server's peak memory.
pub fn measure_scale(
    args: &ScaleArgs,
    binary: &Path,
    database_url: &str,
    token: &str,
    files: &IdFiles,
    records: usize,
) -> Result<(ScalePoint, f64), String> {
    let server = start_server(binary, database_url)?;
    let last_page = records.div_ceil(20);
    let filtered_last_page = records.div_ceil(10).div_ceil(20);
    let last = format!("/v1/hood/profiles?page={last_page},20");
    let filtered_last =
        format!("/v1/hood/profiles?organization_id=eq:1007&page={filtered_last_page},20");
    let workloads = [
        Workload::new("GET ICP", "get_icp", Some(&files.icps)),
        Workload::new("PATCH ICP (seed body)", "patch_icp", Some(&files.icps)),
        Workload::new(
            "PATCH profile custom_properties",
            "patch_profile",
            Some(&files.profiles),
        ),
        Workload::get("list profiles, first page", "/v1/hood/profiles?page=1,20"),
        Workload::get("list profiles, last page", last),
        Workload::get(
            "list profiles filtered, first page",
            "/v1/hood/profiles?organization_id=eq:1007&page=1,20",
        ),
        Workload::get("list profiles filtered, last page", filtered_last),
    ];
    let mut point = Vec::new();
    for workload in &workloads {
        eprintln!("== {records} records: {}", workload.name);
        let measured = wrk(&server.url, workload, token, args.connections, args.seconds)?;
        point.push((workload.name.to_owned(), measured));
    }
    let peak = server.peak_memory_mib();
    server.stop();
    Ok((point, peak))
}

pub async fn scale(args: ScaleArgs) -> Result<(), String> {
    if args.large <= args.small {
        return Err("--large must be more than --small".into());
    }
    let binary = server_binary(args.target.server_binary.as_ref())?;
    let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
    let database = fresh_database(args.target.backend, &args.target.postgres_url)?;
    let (store, token) = open_with_key(&database.url).await?;
    let mut points = Vec::new();
    let mut ids = Ids::default();
    let mut store = Some(store);
    for records in [args.small, args.large] {
        let open = match store.take() {
            Some(open) => open,
            None => fixture::open(&database.url).await?,
        };
        let started = Instant::now();
        eprintln!("== growing to {records} ICPs and {records} Hood profiles");
        preload(&open, &mut ids, records).await?;
        settle(args.target.backend, &database.url)?;
        eprintln!("   done in {:.0} s", started.elapsed().as_secs_f64());
        drop(open);
        let files = write_ids(scratch.path(), &ids)?;
        let (point, peak) = measure_scale(&args, &binary, &database.url, &token, &files, records)?;
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
