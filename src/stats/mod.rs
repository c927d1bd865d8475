//! Statistics of simulation output: confidence intervals across independent
//! replications, warm-up (initialisation bias) truncation, and the latency
//! histogram that defines every percentile the tool reports.
//!
//! * [`student_t`] and [`wilson`] turn per-replication results into
//!   [`Interval`]s for means and proportions.
//! * [`mser5`] chooses how much of a run's start to discard as warm-up.
//! * [`LatencyHistogram`] records latencies in nanoseconds with a bounded
//!   relative error and answers quantile queries.

mod histogram;
mod interval;
mod mser;

pub use histogram::LatencyHistogram;
pub use interval::{student_t, wilson, Interval};
pub use mser::mser5;
