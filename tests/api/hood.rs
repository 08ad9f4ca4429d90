//! The Ocamba Hood profile contract over HTTP (being built).
