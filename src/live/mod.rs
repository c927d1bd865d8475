//! Live mode: the only async code and the only network access in the crate. `bench` runs an
//! experiment's points against a real PostgreSQL + PgBouncer with the load generator of
//! `loadgen` (over the `Db` trait, so that it is testable without a database), watches the
//! servers through `admin`, and reports in the simulator's results schema; `pgbench` imports
//! pgbench's per-transaction logs as measurements; `calibrate` measures a cluster and writes a
//! model file.

pub mod admin;
pub mod behind;
pub mod bench;
pub mod calibrate;
pub mod fit;
pub mod hop;
pub mod loadgen;
pub mod pg;
pub mod pgbench;
pub mod speed;
pub mod sql;

pub use pg::redact_url;

/// The async runtime the live commands measure from: `threads` workers, or a single-threaded
/// runtime for 1 (one event loop, as one asyncpg or Node.js process runs).
pub fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .context("starting the async runtime")
}

#[cfg(test)]
mod tests {
    /// The engine stays synchronous and offline: no tokio, no network outside `live`.
    #[test]
    fn only_live_mode_is_async() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut checked = 0;
        for dir in ["sim", "model", "stats", "experiment"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                for word in ["tokio", "std::net", "async fn"] {
                    assert!(!text.contains(word), "{} mentions {word}", path.display());
                }
                checked += 1;
            }
        }
        assert!(checked > 5);
    }
}
