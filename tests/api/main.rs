//! Integration tests: each starts the real server on a random port with a
//! fresh database and speaks HTTP to it. One binary, one module per theme.

mod auth;
mod backup;
mod cli;
mod clients;
mod concurrency;
mod contract;
mod crash;
mod docs;
mod durability;
mod history;
mod hood;
mod hood_imports;
mod hostile;
mod icps;
mod idempotency;
mod ids;
mod import;
mod leadlists;
mod metrics;
mod openapi;
mod support;
mod webhooks;

/// This binary runs the suite on SQLite; `api_postgres` runs it on PostgreSQL.
const BACKEND: support::Backend = support::Backend::Sqlite;
