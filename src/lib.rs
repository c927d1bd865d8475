//! poolsim: capacity planning for PostgreSQL connection pools.
//!
//! A deterministic discrete-event simulator of clients, app instances and their pools, PgBouncer
//! and PostgreSQL (`sim`, `model`), experiments that describe what to simulate (`experiment`),
//! sweeps over configurations with replications and confidence intervals (`sweep`, `stats`), and
//! the renderers of results (`report`). See ARCHITECTURE.md for the map.

pub mod analytic;
pub mod app;
pub mod capacity;
pub mod cli;
pub mod dist;
pub mod experiment;
pub mod live;
pub mod model;
pub mod report;
pub mod rng;
pub mod sim;
pub mod stats;
pub mod sweep;
pub mod units;
pub mod validation;
