//! ClientSuccess clients (being built).
