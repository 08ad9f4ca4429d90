//! Clientele's benchmark harness. `clientele-bench run` (normally through
//! `bench/run`, which builds in release mode first):
//!
//! 1. creates a fresh database (SQLite file, or a PostgreSQL database) and
//!    preloads ICPs and Hood profiles through the library, in batches;
//! 2. measures the *storage floor*: the PATCH's read-modify-write
//!    transaction in a tight in-process loop, no HTTP, one at a time;
//! 3. starts `clientele serve` and drives each workload with wrk at each
//!    connection count, reading wrk's summary from a Lua `done()` hook;
//! 4. measures the *HTTP ceiling*: a bare axum handler returning a fixed
//!    JSON body under the same wrk settings;
//! 5. prints every workload as a ratio to both baselines, with the server's
//!    peak memory, and writes `bench/RESULTS.md`.
//!
//! Baselines are measured in the same run so the ratios hold on a noisy
//! machine. Nothing here asserts a figure; CI runs a 5-second smoke.
//!
//! The steps are in `fixture` (1), `baselines` (2 and 4), `load` and
//! `server` (3) and `report` (5); `run` and `scale` put them in order, and
//! `cli` is the command line. `import`, `webhooks` and `leads` measure the
//! CSV import, webhook deliveries, and lead-list generation and prospect
//! search with the same pieces.

mod baselines;
mod cli;
mod cpu;
mod fixture;
mod import;
mod leads;
mod load;
mod report;
mod run;
mod scale;
mod server;
mod webhooks;

use clap::Parser;

use cli::{BenchCommand, Cli};

fn main() -> Result<(), String> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("runtime: {error}"))?;
    match cli.command {
        BenchCommand::Run(args) => runtime.block_on(run::run(args)),
        BenchCommand::Scale(args) => runtime.block_on(scale::scale(args)),
        BenchCommand::Import(args) => import::import(args),
        BenchCommand::Webhooks(args) => runtime.block_on(webhooks::webhooks(args)),
        BenchCommand::Leads(args) => runtime.block_on(leads::leads(args)),
        BenchCommand::Ceiling { listen } => runtime.block_on(baselines::ceiling(listen)),
    }
}
