//! The load generators: wrk driving one workload over HTTP, reading its
//! summary from the Lua script's `done()` hook, and pgbench running a
//! request's own statements against PostgreSQL directly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::fixture::Ids;

/// One wrk measurement.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// Requests completed in the run.
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
}

/// One request for wrk to repeat, in the terms of bench/lua/workload.lua.
pub struct Workload<'a> {
    /// The workload's row in the report.
    pub name: &'static str,
    /// Which request the script builds (its BENCH_KIND).
    pub kind: &'static str,
    /// For the kinds that name a record: the ids to pick one from.
    pub ids: Option<&'a Path>,
    /// For `get_path` and `post_path`: the path to request.
    pub path: Option<String>,
    /// For `post_path`: the body to send.
    pub body: Option<String>,
}

impl<'a> Workload<'a> {
    pub const fn new(name: &'static str, kind: &'static str, ids: Option<&'a Path>) -> Self {
        Self {
            name,
            kind,
            ids,
            path: None,
            body: None,
        }
    }

    /// A GET of one fixed path.
    pub fn get(name: &'static str, path: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::new(name, "get_path", None)
        }
    }

    /// A POST of one fixed JSON body to one fixed path.
    pub fn post(name: &'static str, path: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            body: Some(body.into()),
            ..Self::new(name, "post_path", None)
        }
    }
}

/// The files of ids that wrk's script picks records from.
pub struct IdFiles {
    pub icps: PathBuf,
    pub profiles: PathBuf,
}

pub fn write_ids(directory: &Path, ids: &Ids) -> Result<IdFiles, String> {
    let write = |name: &str, ids: &[String]| {
        let path = directory.join(name);
        std::fs::write(&path, ids.join("\n")).map_err(|error| error.to_string())?;
        Ok::<_, String>(path)
    };
    Ok(IdFiles {
        icps: write("icps.txt", &ids.icps)?,
        profiles: write("profiles.txt", &ids.profiles)?,
    })
}

/// Drives `workload` at `url` and reads the summary the script's `done()`
/// hook prints.
pub fn wrk(
    url: &str,
    workload: &Workload,
    token: &str,
    connections: usize,
    seconds: u64,
) -> Result<Measured, String> {
    let threads = connections.clamp(1, 2);
    let output = wrk_command(url, workload, token, (threads, connections), seconds)
        .output()
        .map_err(|error| format!("wrk (install it: apt-get install wrk): {error}"))?;
    wrk_result(&output)
}

/// Drives `workload` at several servers at once, behind one load: wrk has
/// no round robin of its own, so one wrk process per server, started
/// together, each with its share of `connections` and of wrk's two
/// threads. Rates add up; latency percentiles are the worst process's.
pub fn wrk_across(
    urls: &[String],
    workload: &Workload,
    token: &str,
    connections: usize,
    seconds: u64,
) -> Result<Measured, String> {
    let count = urls.len().max(1);
    let threads = (2 / count).max(1);
    let share = (connections / count).max(1);
    let children = urls
        .iter()
        .map(|url| {
            wrk_command(url, workload, token, (threads, share), seconds)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|error| format!("wrk (install it: apt-get install wrk): {error}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = Measured::default();
    for child in children {
        let output = child
            .wait_with_output()
            .map_err(|error| error.to_string())?;
        let one = wrk_result(&output)?;
        total.requests += one.requests;
        total.requests_per_second += one.requests_per_second;
        total.p50_ms = total.p50_ms.max(one.p50_ms);
        total.p99_ms = total.p99_ms.max(one.p99_ms);
        total.max_ms = total.max_ms.max(one.max_ms);
        total.errors += one.errors;
    }
    Ok(total)
}

/// wrk with bench/lua/workload.lua set up for `workload`.
fn wrk_command(
    url: &str,
    workload: &Workload,
    token: &str,
    (threads, connections): (usize, usize),
    seconds: u64,
) -> Command {
    let mut command = Command::new("wrk");
    command
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
        .arg(script("lua/workload.lua"))
        .arg(url)
        .env("BENCH_KIND", workload.kind)
        .env(
            "BENCH_IDS",
            workload
                .ids
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
        )
        .env("BENCH_TOKEN", token)
        .env("BENCH_PATH", workload.path.as_deref().unwrap_or("/"))
        .env("BENCH_BODY", workload.body.as_deref().unwrap_or(""));
    command
}

/// The summary the script's `done()` hook printed.
fn wrk_result(output: &Output) -> Result<Measured, String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("BENCH_RESULT "))
        .ok_or_else(|| all_printed(output, "wrk printed no result"))?;
    let result: Value = serde_json::from_str(line).map_err(|error| error.to_string())?;
    let number = |key: &str| result[key].as_f64().unwrap_or(0.0);
    Ok(Measured {
        requests: result["requests"].as_u64().unwrap_or(0),
        requests_per_second: number("requests") / (number("duration_us") / 1e6).max(1e-9),
        p50_ms: number("p50_us") / 1000.0,
        p99_ms: number("p99_us") / 1000.0,
        max_ms: number("max_us") / 1000.0,
        errors: result["errors"].as_u64().unwrap_or(0),
    })
}

/// The statements one Clientele request issues, as a pgbench script.
pub struct PgbenchScript {
    /// The script, under bench/.
    pub file: &'static str,
    /// What the script runs, for the report.
    pub what: &'static str,
    /// The Clientele workload whose rate the report sets beside pgbench's.
    pub workload: &'static str,
    /// `-M prepared`: a statement sqlx sends prepared (a read) is
    /// measured the same way; the PATCH script keeps the simple protocol
    /// it was first measured with, so its figures stay comparable.
    pub prepared: bool,
}

/// A profile PATCH: lock the row, write it, append its history, commit.
pub const PATCH_PROFILE_STATEMENTS: PgbenchScript = PgbenchScript {
    file: "pgbench/patch_profile.sql",
    what: "the same statements as a profile PATCH",
    workload: "PATCH profile custom_properties",
    prepared: false,
};

/// A GET: one record by its primary key.
pub const GET_RECORD_STATEMENT: PgbenchScript = PgbenchScript {
    file: "pgbench/get_record.sql",
    what: "the same SELECT as a GET, prepared",
    workload: "GET ICP",
    prepared: true,
};

/// PostgreSQL's own speed for the statements of `script`, with the same
/// number of clients as Clientele had connections.
pub fn pgbench(
    script: &PgbenchScript,
    database_url: &str,
    first_id: &str,
    count: usize,
    clients: usize,
    seconds: u64,
) -> Result<f64, String> {
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-M",
            if script.prepared {
                "prepared"
            } else {
                "simple"
            },
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
        .arg(self::script(script.file))
        .arg(database_url)
        .output()
        .map_err(|error| format!("pgbench: {error}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .ok_or_else(|| all_printed(&output, "pgbench printed no tps"))
}

/// A file the load generators run, kept beside this crate's sources.
fn script(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// An error for a tool that printed no figure, carrying all it printed,
/// since that is where the reason is.
fn all_printed(output: &Output, missing: &str) -> String {
    format!(
        "{missing}: {} {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
