//! The same integration suite as `tests/api`, run against PostgreSQL: each
//! test creates its own database on the server named by
//! `CLIENTELE_TEST_POSTGRES_URL` (default the local one) and drops it
//! afterwards. Plus the checks that only make sense with several instances
//! on one database. Without a reachable PostgreSQL the binary says so loudly
//! and passes, unless `CLIENTELE_TEST_REQUIRE_POSTGRES=1`.

#[path = "../api/auth.rs"]
mod auth;
mod cancelled;
#[path = "../api/clients.rs"]
mod clients;
#[path = "../api/concurrency.rs"]
mod concurrency;
#[path = "../api/contract.rs"]
mod contract;
#[path = "../api/crash.rs"]
mod crash;
#[path = "../api/durability.rs"]
mod durability;
#[path = "../api/history.rs"]
mod history;
#[path = "../api/hood.rs"]
mod hood;
#[path = "../api/hood_imports.rs"]
mod hood_imports;
#[path = "../api/hostile.rs"]
mod hostile;
#[path = "../api/icps.rs"]
mod icps;
#[path = "../api/idempotency.rs"]
mod idempotency;
#[path = "../api/ids.rs"]
mod ids;
#[path = "../api/import.rs"]
mod import;
#[path = "../api/leadlists.rs"]
mod leadlists;
#[path = "../api/metrics.rs"]
mod metrics;
mod multi_instance;
mod plans;
#[path = "../api/support.rs"]
mod support;
#[path = "../api/webhooks.rs"]
mod webhooks;

const BACKEND: support::Backend = support::Backend::Postgres;
