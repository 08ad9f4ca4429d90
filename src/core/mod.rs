//! The domain core: record types, the patch model, input conversion with
//! field paths, validation rules, authentication and authorization. It
//! knows nothing of HTTP (no axum) and nothing of SQL; it reaches storage
//! only through the [`crate::store::Store`] trait.

pub mod auth;
pub mod client;
pub mod error;
pub mod fields;
pub mod hood;
pub mod icp;
pub mod input;
pub mod patch;
pub mod ratelimit;
pub mod records;
pub mod shape;
