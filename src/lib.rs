//! Clientele: a server for customer records that speaks three vendors'
//! APIs (Lance ICPs, ClientSuccess clients, Ocamba Hood profiles) on one
//! core.
//!
//! The modules are layers, top to bottom; each uses only the ones below it,
//! and [`surfaces`] and [`http`] reach the store only through the core
//! (`tests/layers.rs` fails on any import that breaks this):
//!
//! - [`cli`]: the command line (serve, keys, migrate, openapi); opens the
//!   store and runs [`app`].
//! - [`app`]: assembles the application: builds the [`http::AppState`],
//!   merges the surfaces' routes with health and OpenAPI routes, adds the
//!   middleware, serves.
//! - [`surfaces`]: one module per vendor contract (routes, wire types, the
//!   error envelope), each stating its own facts (prefix, envelope, default
//!   rate limit) on its [`http::Surface`] impl, and the one list of them.
//! - [`http`]: axum glue every surface shares: the `Surface` trait, the
//!   status code and headers of each error, extractors, request context,
//!   rate-limit headers, the handlers' shared state.
//! - [`delivery`]: sends webhooks: the tasks that fan committed events out
//!   and send them, and the guarded HTTP client (what to send and what an
//!   answer means is the core's).
//! - [`core`]: the domain, without HTTP: records, versions and the audit
//!   trail, patches, validation, authentication, which surface gets which
//!   rate limit, and the one error type.
//! - [`store`]: storage (one trait; SQLite and PostgreSQL), queries
//!   rendered to SQL, and the rate-limit counters (in memory or in Redis).
//!   It knows nothing of the layers above it.

pub mod app;
pub mod cli;
pub mod core;
pub mod delivery;
pub mod http;
pub mod store;
pub mod surfaces;
