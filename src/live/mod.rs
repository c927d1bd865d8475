//! Live mode: the only network access and the only async code. For now: importing pgbench logs
//! as measurements.

pub mod fit;
pub mod pgbench;
