//! The reports, RESULTS.md, SCALE.md, SCALEOUT.md and LEADS.md: the
//! machine they were measured on, and printing and writing them with the
//! date and the command that produced them.

use std::fmt::Write as _;
use std::process::Command;

use crate::cli::{Backend, LeadsArgs, RunArgs, ScaleArgs, Target};
use crate::fixture::leads_icp_json;
use crate::leads::LeadsFigures;
use crate::load::{Measured, PgbenchScript};

/// One workload at one connection count, with the ceiling measured beside
/// it.
pub struct RunRow {
    pub workload: &'static str,
    pub connections: usize,
    pub measured: Measured,
    pub ceiling: Measured,
}

/// pgbench running one request's statements, at each client count.
pub struct PgbenchComparison {
    pub script: &'static PgbenchScript,
    pub rows: Vec<PgbenchRow>,
}

/// pgbench's rate for the script's statements and Clientele's for the
/// request itself, at one client count.
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
    pgbench: &[PgbenchComparison],
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

/// One table per script.
fn pgbench_table(report: &mut String, comparisons: &[PgbenchComparison]) {
    for PgbenchComparison { script, rows } in comparisons {
        let _ = writeln!(
            report,
            "\npgbench, {} (bench/{}):\n",
            script.what, script.file
        );
        let _ = writeln!(
            report,
            "| clients | pgbench tx/s | Clientele {} req/s | ratio |",
            script.workload
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

/// The issue's latency targets: (workload name prefix, p99 ms, what). The
/// generation target is the issue's "generate a 50-person list"; the dry
/// run, which also counts every candidate for its funnel, is reported
/// beside it without one.
const LEADS_TARGETS: [(&str, f64, &str); 2] = [
    (
        "generate a lead list",
        200.0,
        "generation p99 < 200 ms on SQLite",
    ),
    (
        "prospect search",
        100.0,
        "prospect search first page p99 < 100 ms",
    ),
];

/// LEADS.md's text.
pub fn leads(args: &LeadsArgs, figures: &LeadsFigures) -> String {
    let mut report = heading(&args.target);
    let rate =
        |count: usize, took: std::time::Duration| count as f64 / took.as_secs_f64().max(1e-9);
    let loaded = if figures.reused {
        format!(
            "Reused {} companies and {} persons preloaded through the library by an earlier run (`--keep`); settled in {:.1} s.",
            args.companies,
            args.persons,
            figures.settle_took.as_secs_f64()
        )
    } else {
        format!(
            "Preloaded {} companies and {} persons through the library, 1,000 per transaction, in {:.1} s: companies {:.1} s ({:.0}/s), persons {:.1} s ({:.0}/s); then settled in {:.1} s.",
            args.companies,
            args.persons,
            (figures.companies_took + figures.persons_took).as_secs_f64(),
            figures.companies_took.as_secs_f64(),
            rate(args.companies, figures.companies_took),
            figures.persons_took.as_secs_f64(),
            rate(args.persons, figures.persons_took),
            figures.settle_took.as_secs_f64(),
        )
    };
    let _ = writeln!(
        report,
        "{loaded} Each record's values are picked by a hash of its number from 30 job titles, 8 seniorities, 20 countries (a city each), 10 departments, 3 of 20 skills, and for companies 8 headcount ranges and 15 industries; each person works at a company so picked and has its industry; every tenth person has a `bullhornId`.\n",
    );
    let _ = writeln!(
        report,
        "The ICP lists are generated from: `{}`. The prospect search: `POST /api/v1/entities/prospects/person` with `{}` (page 0, size 10).\n",
        leads_icp_json(),
        crate::fixture::prospect_search_body(),
    );
    match &figures.sample {
        Ok((funnel, search_total)) => {
            let _ = writeln!(
                report,
                "Before the load, one dry run's funnel: {} candidates, {} examined, {} selected (`{funnel}`); the search matches {search_total} persons.\n",
                funnel["candidates"], funnel["examined"], funnel["selected"],
            );
        }
        Err(error) => {
            let _ = writeln!(
                report,
                "Before the load, one dry run and one search (to read the funnel and the search's total) failed: {error}\n"
            );
        }
    }
    let _ = writeln!(
        report,
        "Each workload ran {} s per connection count (wrk, one fixed request body; the real generation writes a list each time). With few requests in a run, p99 is close to the slowest one.\n",
        args.seconds
    );
    let _ = writeln!(
        report,
        "| workload | conns | requests | req/s | p50 ms | p99 ms | max ms | errors |"
    );
    let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &figures.rows {
        let measured = &row.measured;
        let _ = writeln!(
            report,
            "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {} |",
            row.workload,
            row.connections,
            measured.requests,
            measured.requests_per_second,
            measured.p50_ms,
            measured.p99_ms,
            measured.max_ms,
            measured.errors,
        );
    }
    let _ = writeln!(report, "\nTargets (from the issue):\n");
    for (prefix, limit, what) in LEADS_TARGETS {
        let checks: Vec<String> = figures
            .rows
            .iter()
            .filter(|row| row.workload.starts_with(prefix))
            .map(|row| {
                let measured = &row.measured;
                let at = format!("{} at {}", row.workload, row.connections);
                if measured.requests == 0 {
                    format!(
                        "{at}: no request completed in {} s, **missed**",
                        args.seconds
                    )
                } else {
                    let errors = match measured.errors {
                        0 => String::new(),
                        errors => format!(" ({errors} errors)"),
                    };
                    let verdict = if measured.p99_ms < limit && measured.errors == 0 {
                        "met"
                    } else {
                        "**missed**"
                    };
                    format!(
                        "{at}: {:.2} ms over {} requests{errors}, {verdict}",
                        measured.p99_ms, measured.requests
                    )
                }
            })
            .collect();
        let note = if prefix.starts_with("generate") && args.target.backend != Backend::Sqlite {
            " (the target is for SQLite; shown for comparison)"
        } else {
            ""
        };
        let _ = writeln!(report, "- {what}{note}: {}.", checks.join("; "));
    }
    let mapped = match args.target.backend {
        Backend::Sqlite => {
            " It counts the pages of the database file SQLite reads through its memory map (up to 2 GiB): the operating system's page cache, shared and reclaimable, not the server's own heap."
        }
        Backend::Postgres => "",
    };
    let _ = writeln!(
        report,
        "\nPeak server memory (VmHWM): {:.1} MiB.{mapped}",
        figures.peak_mib
    );
    for explained in &figures.plans {
        let query = &explained.query;
        let placeholder = |index: usize| match args.target.backend {
            Backend::Sqlite => format!("?{index}"),
            Backend::Postgres => format!("${index}"),
        };
        let parameters: Vec<String> = query
            .parameters
            .iter()
            .enumerate()
            .map(|(index, value)| format!("{} = '{value}'", placeholder(index + 1)))
            .collect();
        let _ = writeln!(
            report,
            "\n### Plan: {}\n\n```sql\n{}\n```\n\nParameters: {}.\n\n{}:\n\n```\n{}\n```",
            query.name,
            query.sql,
            parameters.join(", "),
            match args.target.backend {
                Backend::Sqlite => format!("`EXPLAIN QUERY PLAN` ({})", explained.tool),
                Backend::Postgres => format!(
                    "`EXPLAIN (ANALYZE, BUFFERS)` with the parameters as literals ({})",
                    explained.tool
                ),
            },
            explained.plan
        );
    }
    report
}
