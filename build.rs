//! Rebuilds when a migration is added or changed: `sqlx::migrate!` embeds
//! the migrations at compile time, and cargo does not watch the directory
//! on its own (sqlx's documentation asks for this line).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
