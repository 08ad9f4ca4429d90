//! The domain core: record types, the patch model, input conversion with
//! field paths, validation rules, the audit trail, authentication and
//! authorization, rate-limit configuration, and the one error type. It
//! knows nothing of HTTP (no axum), of SQL or of the surfaces above it; it
//! reaches storage only through the store's traits
//! ([`crate::store::Store`], [`crate::store::ratelimit::RateLimiter`]).

pub mod auth;
pub mod client;
pub mod error;
pub mod events;
pub mod fields;
pub mod hood;
pub mod hood_import;
pub mod icp;
pub mod idempotency;
pub mod import;
pub mod input;
pub mod leads;
pub mod patch;
pub mod prospecting;
pub mod ratelimit;
pub mod records;
pub mod relations;
pub mod shape;
pub mod webhooks;
