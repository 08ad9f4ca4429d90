//! Ocamba Hood profiles, profile lists and suppressions (being built).
