//! The command line: the `run`, `scale`, `import`, `webhooks`, `leads` and
//! `ceiling` subcommands and the `Target` group that all but `ceiling`
//! share. The doc comments on these types are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "clientele-bench",
    about = "Benchmarks Clientele against baselines measured in the same run"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The whole benchmark: preload, floor, workloads, ceiling, report.
    Run(RunArgs),
    /// Scale: single-record GET and PATCH, and the first and last list
    /// pages, at a small and a large record count, from one database that
    /// grows between the two; writes bench/SCALE.md.
    Scale(ScaleArgs),
    /// Import: `clientele import` of Hood profiles from CSV against a floor
    /// measured in the same run (a bare rusqlite loop on SQLite, COPY on
    /// PostgreSQL), with the import's peak memory; writes bench/IMPORT.md.
    Import(ImportArgs),
    /// Webhooks: PATCH ICP throughput with one subscription against none
    /// (wrk, runs alternated), then delivery lag at a steady write rate,
    /// deliveries going to a receiver in this process; writes
    /// bench/WEBHOOKS.md. `--seconds 1 --rounds 1 --results ""` is a
    /// quick check that it works.
    Webhooks(WebhooksArgs),
    /// Leads: preloads Lance companies and persons, then measures lead-list
    /// generation from an ICP (real and `?dryRun=true`) and the first page
    /// of a prospect search, and prints the query plan of each; writes
    /// bench/LEADS.md. `--persons 2000 --companies 200 --seconds 1
    /// --results ""` is a quick check that it works.
    Leads(LeadsArgs),
    /// The HTTP ceiling: a bare axum handler with a fixed JSON body.
    Ceiling {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend and the settings that matter, for a report.
    pub fn describe(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite (WAL, synchronous=FULL)",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Seconds each workload runs at each connection count.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// ICPs and Hood profiles to preload (each).
    #[arg(long, default_value_t = 100_000)]
    pub records: usize,
    /// Connection counts to drive each workload with.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    pub connections: Vec<usize>,
    /// Scale-out instead of the workloads: PATCH ICP and GET ICP at the
    /// largest `--connections`, spread evenly over N `clientele serve`
    /// processes on the one database, for each N listed (e.g. `1,2`),
    /// with the CPU each side used; writes bench/SCALEOUT.md (or
    /// SCALEOUT-postgres.md).
    #[arg(long, value_delimiter = ',')]
    pub instances: Vec<usize>,
    #[command(flatten)]
    pub target: Target,
}

/// What to benchmark and where the report goes, for `run`, `scale`,
/// `import`, `webhooks` and `leads`.
#[derive(clap::Args)]
pub struct Target {
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// PostgreSQL server to create the benchmark database on.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_url: String,
    /// Where to write the report (nothing written when empty). Default:
    /// `bench/RESULTS.md` for `run`, `bench/SCALE.md` for `scale`,
    /// `bench/IMPORT.md` for `import`, `bench/WEBHOOKS.md` for `webhooks`,
    /// `bench/LEADS.md` for `leads`, each with `-postgres` before `.md` for
    /// PostgreSQL.
    #[arg(long)]
    pub results: Option<String>,
    /// The `clientele` binary to benchmark (default: beside this one).
    #[arg(long)]
    pub server_binary: Option<PathBuf>,
    /// PostgreSQL: run `VACUUM ANALYZE` after the preload. By default the
    /// harness leaves the planner statistics as a new deployment (or a
    /// fresh bulk import) has them, to the server and autovacuum: the
    /// state a user meets.
    #[arg(long)]
    pub analyze: bool,
}

impl Target {
    /// The report's path: `--results`, or `bench/{name}.md` (with
    /// `-postgres` for PostgreSQL).
    pub fn results(&self, name: &str) -> String {
        self.results.clone().unwrap_or_else(|| match self.backend {
            Backend::Sqlite => format!("bench/{name}.md"),
            Backend::Postgres => format!("bench/{name}-postgres.md"),
        })
    }
}

#[derive(clap::Args)]
pub struct ScaleArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Records of each kind (ICPs, Hood profiles) at the first measurement.
    #[arg(long, default_value_t = 100_000)]
    pub small: usize,
    /// Records of each kind at the second measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub large: usize,
    /// Connections to drive each measurement with.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Rows in the CSV file.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Args)]
pub struct WebhooksArgs {
    /// Seconds each wrk run and the steady-rate run last.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// ICPs (and as many Hood profiles) to preload; the PATCHes pick ICPs
    /// at random among them.
    #[arg(long, default_value_t = 2_000)]
    pub records: usize,
    /// Connections wrk drives the throughput runs with.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Rounds of one run without a subscription and one with (A B in odd
    /// rounds, B A in even ones).
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// PATCHes per second in the lag run, sent on schedule whatever the
    /// earlier ones are doing (open loop).
    #[arg(long, default_value_t = 1_000)]
    pub rate: u64,
    /// Longest wait, after a run, for its deliveries to arrive (seconds).
    #[arg(long, default_value_t = 60)]
    pub drain_timeout: u64,
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Args)]
pub struct LeadsArgs {
    /// Persons to preload, each at one of the companies.
    #[arg(long, default_value_t = 1_000_000)]
    pub persons: usize,
    /// Companies to preload.
    #[arg(long, default_value_t = 100_000)]
    pub companies: usize,
    /// Seconds each workload runs at each connection count.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Connection counts to drive each workload with.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4])]
    pub connections: Vec<usize>,
    /// Preload into this database and keep it (`sqlite://PATH`, or the URL
    /// of an existing PostgreSQL database, which `--backend` must match);
    /// a later run given the same URL finds the persons there and skips
    /// the preload (a million persons take minutes to load)
    #[arg(long)]
    pub keep: Option<String>,
    #[command(flatten)]
    pub target: Target,
}
