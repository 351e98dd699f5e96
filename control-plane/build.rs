//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds the
//! `migrations/` folders at compile time, and Cargo cannot see a new file there by itself.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
