//! The simulation engine: the event enum, the queue ordered by (time, insertion), and the one
//! central dispatch. `run(&Scenario, replication) -> RunRecord` is infallible, does no I/O, reads
//! no clock and starts no thread; a timeout or a refused connection is an outcome it counts.

pub mod engine;
pub mod metrics;
pub mod queue;

pub use engine::{run, run_series, run_traced, RunRecord, Series, Trace, SERIES_INTERVALS};
pub use metrics::{Cause, CAUSES};

/// Names of the per-run metrics, in the order of `RunRecord::values`. Units are last in each name.
pub const METRIC_NAMES: &[&str] = &[
    "throughput_rps",
    "tx_throughput_tps",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "failure_rate",
    "acquire_timeout_rate",
    "query_wait_timeout_rate",
    "max_client_conn_rate",
    "max_connections_rate",
    "command_timeout_rate",
    "statement_timeout_rate",
    "client_timeout_rate",
    "admission_rejected_rate",
    "server_login_failed_rate",
    "connection_lost_rate",
    "statement_mode_transaction_rate",
    "connect_refused_rate",
    "acquire_wait_mean_ms",
    "acquire_wait_p95_ms",
    "acquire_wait_p99_ms",
    "pool_exhaustion_per_s",
    "pool_exhaustion_fraction",
    "app_pool_utilization",
    "bouncer_server_utilization",
    "postgres_slot_utilization",
    "postgres_cpu_utilization",
    "bouncer_cpu_utilization",
    "postgres_peak_connections",
    "replica_peak_connections",
    "reserve_opened",
    "connections_opened_per_s",
    "bouncer_cl_waiting_max",
    "bouncer_avg_wait_ms",
    "in_system_mean",
    "littles_law_residual",
    "requests_issued",
    "requests_completed",
    "requests_failed",
    "warmup_s",
];

/// Index of a metric by name (panics on an unknown name: a programming error).
pub fn metric_index(name: &str) -> usize {
    METRIC_NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("unknown metric {name}"))
}

/// Index of the first per-cause failure rate; causes follow in `CAUSES` order.
pub const FIRST_CAUSE_METRIC: usize = 8;
