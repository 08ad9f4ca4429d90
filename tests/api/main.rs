//! Integration tests: each starts the real server on a random port with a
//! fresh database and speaks HTTP to it. One binary, one module per theme.

mod auth;
mod cli;
mod clients;
mod concurrency;
mod durability;
mod hood;
mod icps;
mod openapi;
mod support;
