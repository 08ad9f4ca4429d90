//! The reports, RESULTS.md and SCALE.md: the machine they were measured on,
//! and printing and writing them with the date and the command that
//! produced them.

use std::fmt::Write as _;
use std::process::Command;

use crate::cli::{Backend, RunArgs, ScaleArgs, Target};
use crate::load::Measured;

/// One workload at one connection count, with the ceiling measured beside
/// it.
pub struct RunRow {
    pub workload: &'static str,
    pub connections: usize,
    pub measured: Measured,
    pub ceiling: Measured,
}

/// pgbench's rate for the profile PATCH's statements and Clientele's for
/// the PATCH itself, at one client count.
pub struct PgbenchRow {
    pub clients: usize,
    pub tps: f64,
    pub ours: f64,
}

/// The scale workloads' measurements at one record count, by workload.
pub struct ScalePoint {
    pub records: usize,
    pub rows: Vec<(&'static str, Measured)>,
    pub peak_mib: f64,
}

/// RESULTS.md's text.
pub fn results(
    args: &RunArgs,
    floor: &Measured,
    rows: &[RunRow],
    peak_mib: f64,
    pgbench: &[PgbenchRow],
) -> String {
    let mut report = heading(&args.target);
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
    workload_table(&mut report, floor, rows);
    idempotency_cost(&mut report, rows);
    let _ = writeln!(report, "\nPeak server memory (VmHWM): {peak_mib:.1} MiB.");
    if !pgbench.is_empty() {
        pgbench_table(&mut report, pgbench);
    }
    report
}

/// SCALE.md's text: each workload at both points side by side.
pub fn scale(args: &ScaleArgs, small: &ScalePoint, large: &ScalePoint) -> String {
    let mut report = heading(&args.target);
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
    for ((name, at_small), (_, at_large)) in small.rows.iter().zip(&large.rows) {
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
        small.peak_mib, small.records, large.peak_mib, large.records
    );
    report
}

/// Every report opens with what was measured on what.
pub fn heading(target: &Target) -> String {
    let statistics = match (target.backend, target.analyze) {
        (Backend::Sqlite, _) => "",
        (Backend::Postgres, true) => {
            " Planner statistics: `VACUUM ANALYZE` after the preload (`--analyze`)."
        }
        (Backend::Postgres, false) => {
            " Planner statistics: no `ANALYZE` by the harness; the server refreshes stale ones itself, as for any deployment."
        }
    };
    format!(
        "Backend: {}. Machine: {}.{statistics}\n",
        target.backend.describe(),
        machine()
    )
}

fn workload_table(report: &mut String, floor: &Measured, rows: &[RunRow]) {
    let _ = writeln!(
        report,
        "| workload | conns | req/s | p50 ms | p99 ms | max ms | errors | × floor | × ceiling | ceiling req/s |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let (measured, ceiling) = (&row.measured, &row.ceiling);
        let _ = writeln!(
            report,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.3} | {:.0} |",
            row.workload,
            row.connections,
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
}

/// The keyed PATCH's rate as a share of the plain PATCH's, per connection
/// count: what an Idempotency-Key costs.
fn idempotency_cost(report: &mut String, rows: &[RunRow]) {
    let rate = |prefix: &str, connections: usize| {
        rows.iter()
            .find(|row| row.workload.starts_with(prefix) && row.connections == connections)
            .map(|row| row.measured.requests_per_second)
    };
    let mut shares = Vec::new();
    for row in rows
        .iter()
        .filter(|row| row.workload.starts_with("PATCH ICP (seed"))
    {
        if let Some(keyed) = rate("PATCH ICP, a fresh Idempotency-Key", row.connections)
            && row.measured.requests_per_second > 0.0
        {
            shares.push(format!(
                "{:.2} at {}",
                keyed / row.measured.requests_per_second,
                row.connections
            ));
        }
    }
    if !shares.is_empty() {
        let _ = writeln!(
            report,
            "\nIdempotency-Key cost: PATCH ICP with a fresh key per request ÷ without one = {} connection(s).",
            shares.join(", ")
        );
    }
}

fn pgbench_table(report: &mut String, rows: &[PgbenchRow]) {
    let _ = writeln!(
        report,
        "\npgbench, the same statements as a profile PATCH (bench/pgbench/patch_profile.sql):\n"
    );
    let _ = writeln!(
        report,
        "| clients | pgbench tx/s | Clientele PATCH profile req/s | ratio |"
    );
    let _ = writeln!(report, "|---:|---:|---:|---:|");
    for PgbenchRow { clients, tps, ours } in rows {
        let _ = writeln!(
            report,
            "| {clients} | {tps:.0} | {ours:.0} | {:.2} |",
            ours / tps.max(1e-9)
        );
    }
}

/// The CPU, cores, memory and compiler, for reading the figures against.
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

/// Prints `report` and, unless `results` is empty, writes it there under
/// `title` with the date and the command that produced it.
pub fn publish(results: &str, title: &str, harness: &str, report: &str) -> Result<(), String> {
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

/// CPU used during one measurement, in cores (CPU seconds per second of
/// the run): the `clientele serve` processes, PostgreSQL's processes, and
/// the whole machine (busy, and all of its cores).
pub struct CpuUse {
    pub clientele: f64,
    pub postgres: f64,
    pub busy: f64,
    pub all: f64,
}

/// One workload over some number of instances.
pub struct ScaleOutRow {
    pub instances: usize,
    pub workload: &'static str,
    pub measured: Measured,
    pub cpu: CpuUse,
}

/// SCALEOUT.md's text.
pub fn scale_out(args: &RunArgs, rows: &[ScaleOutRow]) -> String {
    let mut report = heading(&args.target);
    let connections = args.connections.iter().copied().max().unwrap_or(64);
    let _ = writeln!(
        report,
        "Preloaded {} ICPs and {} Hood profiles. Each workload ran {} s at {connections} connections in all, spread evenly over the instances: one wrk process per instance, started together (wrk has no round robin of its own), so rates add up and the latency columns are the worst process's. The load generator, every instance and the database share this machine's cores: CPU is in cores (CPU seconds per second of the run), for the `clientele serve` processes, PostgreSQL's processes, and the rest of the busy time (wrk, the kernel, anything else).\n",
        args.records, args.records, args.seconds
    );
    let _ = writeln!(
        report,
        "| instances | workload | req/s | p50 ms | p99 ms | max ms | errors | clientele cores | PostgreSQL cores | other busy cores | idle cores |"
    );
    let _ = writeln!(
        report,
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        let (measured, cpu) = (&row.measured, &row.cpu);
        let _ = writeln!(
            report,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            row.instances,
            row.workload,
            measured.requests_per_second,
            measured.p50_ms,
            measured.p99_ms,
            measured.max_ms,
            measured.errors,
            cpu.clientele,
            cpu.postgres,
            (cpu.busy - cpu.clientele - cpu.postgres).max(0.0),
            (cpu.all - cpu.busy).max(0.0),
        );
    }
    let base = |workload: &str| {
        rows.iter()
            .find(|row| row.workload == workload)
            .map(|row| (row.instances, row.measured.requests_per_second))
    };
    let mut ratios = Vec::new();
    for row in rows {
        if let Some((instances, rate)) = base(row.workload)
            && row.instances != instances
        {
            ratios.push(format!(
                "{}: {} instances ÷ {instances} = {:.2}",
                row.workload,
                row.instances,
                row.measured.requests_per_second / rate.max(1e-9)
            ));
        }
    }
    if !ratios.is_empty() {
        let _ = writeln!(report, "\n{}.", ratios.join("; "));
    }
    report
}
