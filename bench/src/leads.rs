//! `clientele-bench leads`: Lance's lead records at scale. Preloads
//! companies and persons through the library, creates an ICP like the
//! seed's, then drives lead-list generation from it (real, writing a list
//! each time, and `?dryRun=true`) and the first page of a prospect search
//! with wrk, prints the query plan of the generation's candidate page and
//! of the search's page, and writes LEADS.md.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::{Backend, LeadsArgs};
use crate::fixture::{
    LeadsPreload, PlannedQuery, create_leads_icp, fresh_database, install_tls_provider,
    kept_database, leads_queries, open_with_key, persons_present, preload_leads,
    prospect_search_body, settle,
};
use crate::load::{Measured, Workload, wrk};
use crate::report::{self, publish};
use crate::server::{server_binary, start_server};

const PROSPECTS_PATH: &str = "/api/v1/entities/prospects/person";

/// One workload at one connection count.
pub struct LeadsRow {
    pub workload: &'static str,
    pub connections: usize,
    pub measured: Measured,
}

/// A query's plan as the database printed it.
pub struct ExplainedQuery {
    pub query: PlannedQuery,
    /// What printed it (`sqlite3 3.40.1`, `psql`, …).
    pub tool: String,
    pub plan: String,
}

/// Everything LEADS.md reports.
pub struct LeadsFigures {
    /// The persons were preloaded by an earlier run (`--keep`).
    pub reused: bool,
    pub companies_took: Duration,
    pub persons_took: Duration,
    pub settle_took: Duration,
    /// The dry run's funnel as the server answered it, and the search's
    /// `totalElements`; or why they could not be read.
    pub sample: Result<(Value, u64), String>,
    pub rows: Vec<LeadsRow>,
    pub peak_mib: f64,
    pub plans: Vec<ExplainedQuery>,
}

pub async fn leads(args: LeadsArgs) -> Result<(), String> {
    let binary = server_binary(args.target.server_binary.as_ref())?;
    let database = match &args.keep {
        Some(url) => kept_database(url),
        None => fresh_database(args.target.backend, &args.target.postgres_url)?,
    };
    let (store, token) = open_with_key(&database.url).await?;
    let present = persons_present(&store).await?;
    let reused = args.keep.is_some() && present > 0;
    let preload = if reused {
        if present != args.persons as u64 {
            return Err(format!(
                "{} holds {present} persons, not --persons {}",
                database.url, args.persons
            ));
        }
        eprintln!(
            "== reusing the {present} persons preloaded in {}",
            database.url
        );
        LeadsPreload::default()
    } else {
        eprintln!(
            "== {}: preloading {} companies and {} persons",
            args.target.backend.describe(),
            args.companies,
            args.persons
        );
        preload_leads(&store, args.companies, args.persons).await?
    };
    let started = Instant::now();
    settle(args.target.backend, &database.url, args.target.analyze)?;
    let settle_took = started.elapsed();
    let icp = create_leads_icp(&store).await?;
    // Closed before the server opens the database.
    drop(store);
    eprintln!(
        "   preloaded in {:.1} s (companies {:.1} s, persons {:.1} s), settled in {:.1} s",
        (preload.companies + preload.persons).as_secs_f64(),
        preload.companies.as_secs_f64(),
        preload.persons.as_secs_f64(),
        settle_took.as_secs_f64()
    );

    let server = start_server(&binary, &database.url)?;
    let generate = format!("/api/v1/entities/icps/{icp}/lead-lists");
    let dry_run = format!("{generate}?dryRun=true");
    let search_body = prospect_search_body().to_string();
    // A failure here is a finding (a generation slower than the server's
    // request timeout answers 503), reported rather than fatal.
    let sampled = sample(&server.url, &token, &dry_run, &search_body).await;
    if let Err(error) = &sampled {
        eprintln!("   the requests before the load failed: {error}");
    }
    let workloads = [
        Workload::post("generate a lead list (writes it)", generate, "{}"),
        Workload::post("generate, ?dryRun=true", dry_run, "{}"),
        Workload::post(
            "prospect search, first page",
            PROSPECTS_PATH,
            search_body.clone(),
        ),
    ];
    let mut rows = Vec::new();
    for &connections in &args.connections {
        for workload in &workloads {
            eprintln!("== {} at {connections} connection(s)", workload.name);
            rows.push(LeadsRow {
                workload: workload.name,
                connections,
                measured: wrk(&server.url, workload, &token, connections, args.seconds)?,
            });
        }
    }
    let peak_mib = server.peak_memory_mib();
    eprintln!("== query plans");
    let plans = explain(args.target.backend, &database.url);
    server.stop();
    let figures = LeadsFigures {
        reused,
        companies_took: preload.companies,
        persons_took: preload.persons,
        settle_took,
        sample: sampled,
        rows,
        peak_mib,
        plans: plans?,
    };
    publish(
        &args.target.results("LEADS"),
        "Lead lists and prospect search",
        "bench/run leads",
        &report::leads(&args, &figures),
    )
}

/// One dry run and one search before the load, for what they found: the
/// funnel, and how many persons the search matches.
async fn sample(
    url: &str,
    token: &str,
    dry_run: &str,
    search_body: &str,
) -> Result<(Value, u64), String> {
    install_tls_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|error| format!("HTTP client: {error}"))?;
    let generated = post_json(&client, url, token, dry_run, "{}").await?;
    let search = post_json(&client, url, token, PROSPECTS_PATH, search_body).await?;
    Ok((
        generated["funnel"].clone(),
        search["totalElements"].as_u64().unwrap_or(0),
    ))
}

/// POSTs `body` to `path` and reads the JSON answer, failing on any
/// status but a success.
async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    path: &str,
    body: &str,
) -> Result<Value, String> {
    let response = client
        .post(format!("{}{path}", url.trim_end_matches('/')))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .map_err(|error| format!("POST {path}: {error}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|error| format!("POST {path}: {error}"))?;
    if !status.is_success() {
        return Err(format!("POST {path}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|error| format!("POST {path}: {error}"))
}

/// The plan of each query the server runs for the two requests:
/// `EXPLAIN QUERY PLAN` on SQLite (with the `sqlite3` CLI if there is one
/// of the version the server links, else through rusqlite, which links the
/// server's SQLite),
/// `EXPLAIN (ANALYZE, BUFFERS)` on PostgreSQL.
fn explain(backend: Backend, database_url: &str) -> Result<Vec<ExplainedQuery>, String> {
    let postgres = backend == Backend::Postgres;
    leads_queries(postgres)?
        .into_iter()
        .map(|query| {
            let (tool, plan) = if postgres {
                explain_postgres(database_url, &query)?
            } else {
                let path = database_url
                    .strip_prefix("sqlite://")
                    .unwrap_or(database_url);
                // The CLI only where it is the SQLite the server links:
                // another version may plan differently (3.40's CLI and the
                // bundled 3.51 do: bloom filters).
                match sqlite3_version().filter(|version| version == rusqlite::version()) {
                    Some(version) => (
                        format!("sqlite3 CLI {version}"),
                        explain_sqlite_cli(path, &query)?,
                    ),
                    None => (
                        format!("rusqlite, SQLite {}", rusqlite::version()),
                        explain_rusqlite(path, &query)?,
                    ),
                }
            };
            eprintln!("{}:\n{plan}", query.name);
            Ok(ExplainedQuery { query, tool, plan })
        })
        .collect()
}

/// The `sqlite3` CLI's version, if it is installed.
fn sqlite3_version() -> Option<String> {
    let output = Command::new("sqlite3").arg("--version").output().ok()?;
    output.status.success().then(|| {
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned()
    })
}

/// `EXPLAIN QUERY PLAN` in the `sqlite3` CLI, each parameter bound with
/// `.parameter set` as a string literal.
fn explain_sqlite_cli(path: &str, query: &PlannedQuery) -> Result<String, String> {
    let mut script = String::from(".parameter init\n");
    for (index, value) in query.parameters.iter().enumerate() {
        // The dot-command argument is double-quoted (backslash escapes),
        // holding an SQL string literal.
        let literal = format!("'{}'", value.replace('\'', "''"))
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        script.push_str(&format!(".parameter set ?{} \"{literal}\"\n", index + 1));
    }
    script.push_str(&format!("EXPLAIN QUERY PLAN {};\n", query.sql));
    let mut child = Command::new("sqlite3")
        .args(["-bail", path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("sqlite3: {error}"))?;
    child
        .stdin
        .take()
        .ok_or("sqlite3: no stdin")?
        .write_all(script.as_bytes())
        .map_err(|error| format!("sqlite3: {error}"))?;
    let output = child
        .wait_with_output()
        .map_err(|error| format!("sqlite3: {error}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !stderr.trim().is_empty() {
        return Err(format!("sqlite3 EXPLAIN QUERY PLAN: {stderr}"));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned())
}

/// `EXPLAIN QUERY PLAN` through rusqlite, printed as the CLI prints it.
fn explain_rusqlite(path: &str, query: &PlannedQuery) -> Result<String, String> {
    let connection = rusqlite::Connection::open(path).map_err(|error| error.to_string())?;
    let mut statement = connection
        .prepare(&format!("EXPLAIN QUERY PLAN {}", query.sql))
        .map_err(|error| error.to_string())?;
    let rows = statement
        .query_map(rusqlite::params_from_iter(query.parameters.iter()), |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(3)?,
            ))
        })
        .map_err(|error| error.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    // Drawn as the CLI draws it: `|--` before a node with later siblings,
    // `` `-- `` before the last one.
    let last_child = |index: usize| {
        let parent = rows[index].1;
        rows[index + 1..].iter().all(|row| row.1 != parent)
    };
    let mut plan = String::from("QUERY PLAN");
    // The open ancestors of the current row: (id, whether it was last).
    let mut path: Vec<(i64, bool)> = Vec::new();
    for (index, (id, parent, detail)) in rows.iter().enumerate() {
        while path.last().is_some_and(|(open, _)| open != parent) {
            path.pop();
        }
        let indent: String = path
            .iter()
            .map(|(_, last)| if *last { "   " } else { "|  " })
            .collect();
        let last = last_child(index);
        plan.push_str(&format!(
            "\n{indent}{}{detail}",
            if last { "`--" } else { "|--" }
        ));
        path.push((*id, last));
    }
    Ok(plan)
}

/// `EXPLAIN (ANALYZE, BUFFERS)` in psql, the parameters substituted as
/// quoted literals.
fn explain_postgres(database_url: &str, query: &PlannedQuery) -> Result<(String, String), String> {
    let mut sql = query.sql.clone();
    // Highest first, so that `$1` does not match the start of `$10`.
    for (index, value) in query.parameters.iter().enumerate().rev() {
        let literal = format!("'{}'", value.replace('\'', "''"));
        sql = sql.replace(&format!("${}", index + 1), &literal);
    }
    let output = Command::new("psql")
        .args([
            database_url,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .arg("-c")
        .arg(format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
        .output()
        .map_err(|error| format!("psql: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "psql EXPLAIN: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let version = Command::new("psql")
        .args([
            database_url,
            "-X",
            "-q",
            "-A",
            "-t",
            "-c",
            "SHOW server_version",
        ])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default();
    Ok((
        format!("psql, PostgreSQL {version}"),
        String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned(),
    ))
}
