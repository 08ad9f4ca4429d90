//! Clientele: a server for customer records that speaks three vendors'
//! APIs (Lance ICPs, ClientSuccess clients, Ocamba Hood profiles) on one
//! core. Layers, top to bottom: [`surfaces`] (one module per vendor
//! contract) over [`http`] (shared middleware and extractors) over [`core`]
//! (records, patches, validation, auth) over [`store`] (one trait, SQLite).
//! [`app`] assembles them; [`cli`] is the command line.

pub mod app;
pub mod cli;
pub mod core;
pub mod http;
pub mod store;
pub mod surfaces;
