//! Live mode: the only async code and the only network access in the crate. `bench` runs an
//! experiment's points against a real PostgreSQL + PgBouncer with the load generator of
//! `loadgen` (over the `Db` trait, so that it is testable without a database), watches the
//! servers through `admin`, and reports in the simulator's results schema; `pgbench` imports
//! pgbench's per-transaction logs as measurements.

pub mod admin;
pub mod bench;
pub mod loadgen;
pub mod pg;
pub mod pgbench;
pub mod sql;

pub use pg::redact_url;
