//! The ClientSuccess client contract over HTTP (being built).
