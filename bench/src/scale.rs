//! `clientele-bench scale`: the single-record requests and the first and
//! last list pages at a small and a large record count, from one database
//! grown between the two; writes SCALE.md.

use std::path::Path;
use std::time::Instant;

use crate::cli::ScaleArgs;
use crate::fixture::{self, Ids, SharedStore, fresh_database, open_with_key, preload, settle};
use crate::load::{IdFiles, Workload, write_ids, wrk};
use crate::report::{self, ScalePoint, publish};
use crate::server::{server_binary, start_server};

pub async fn scale(args: ScaleArgs) -> Result<(), String> {
    if args.large <= args.small {
        return Err("--large must be more than --small".into());
    }
    let binary = server_binary(args.target.server_binary.as_ref())?;
    let scratch = tempfile::tempdir().map_err(|error| error.to_string())?;
    let database = fresh_database(args.target.backend, &args.target.postgres_url)?;
    let (store, token) = open_with_key(&database.url).await?;
    let mut store = Some(store);
    let mut ids = Ids::default();
    let mut points = Vec::new();
    for records in [args.small, args.large] {
        // The first growth uses the store the key was issued on; grow
        // closes it, so later growths reopen the database.
        let open = match store.take() {
            Some(open) => open,
            None => fixture::open(&database.url).await?,
        };
        grow(&args, &database.url, open, &mut ids, records).await?;
        let files = write_ids(scratch.path(), &ids)?;
        points.push(measure_scale(
            &args,
            &binary,
            &database.url,
            &token,
            &files,
            records,
        )?);
    }
    let report = report::scale(&args, &points[0], &points[1]);
    publish(
        &args.target.results("SCALE"),
        "Scale results",
        "bench/run scale",
        &report,
    )
}

/// Preloads until there are `records` of each kind and settles, timed;
/// takes the store so that it is closed before the server opens the
/// database.
async fn grow(
    args: &ScaleArgs,
    database_url: &str,
    store: SharedStore,
    ids: &mut Ids,
    records: usize,
) -> Result<(), String> {
    let started = Instant::now();
    eprintln!("== growing to {records} ICPs and {records} Hood profiles");
    preload(&store, ids, records).await?;
    settle(args.target.backend, database_url, args.target.analyze)?;
    eprintln!("   done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Starts the server on the database as it now is, runs each scale
/// workload, reads the server's peak memory and stops it. A server per
/// point, because VmHWM only rises: one kept from the small point would
/// report the higher of the two peaks at the large one.
fn measure_scale(
    args: &ScaleArgs,
    binary: &Path,
    database_url: &str,
    token: &str,
    files: &IdFiles,
    records: usize,
) -> Result<ScalePoint, String> {
    let server = start_server(binary, database_url)?;
    let mut rows = Vec::new();
    for workload in &workloads(files, records) {
        eprintln!("== {records} records: {}", workload.name);
        let measured = wrk(&server.url, workload, token, args.connections, args.seconds)?;
        rows.push((workload.name, measured));
    }
    let peak_mib = server.peak_memory_mib();
    server.stop();
    Ok(ScalePoint {
        records,
        rows,
        peak_mib,
    })
}

/// The requests whose cost could grow with the record count: single
/// records by id, and list pages at both ends, unfiltered and filtered to
/// the organization that holds a tenth of the profiles.
fn workloads(files: &IdFiles, records: usize) -> [Workload<'_>; 7] {
    let last_page = records.div_ceil(20);
    let filtered_last_page = records.div_ceil(10).div_ceil(20);
    [
        Workload::new("GET ICP", "get_icp", Some(&files.icps)),
        Workload::new("PATCH ICP (seed body)", "patch_icp", Some(&files.icps)),
        Workload::new(
            "PATCH profile custom_properties",
            "patch_profile",
            Some(&files.profiles),
        ),
        Workload::get("list profiles, first page", "/v1/hood/profiles?page=1,20"),
        Workload::get(
            "list profiles, last page",
            format!("/v1/hood/profiles?page={last_page},20"),
        ),
        Workload::get(
            "list profiles filtered, first page",
            "/v1/hood/profiles?organization_id=eq:1007&page=1,20",
        ),
        Workload::get(
            "list profiles filtered, last page",
            format!("/v1/hood/profiles?organization_id=eq:1007&page={filtered_last_page},20"),
        ),
    ]
}
