//! The serde mirror of experiment and model files: the JSON exactly as written, no logic.
//!
//! Unknown fields are rejected everywhere. Every duration is a [`DurationSpec`]: a constant or a
//! distribution. `validate.rs` turns these into the typed, checked [`crate::experiment::Scenario`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A duration: a constant or a distribution, in milliseconds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DurationSpec {
    ConstMs(f64),
    Exp {
        mean_ms: f64,
    },
    Lognormal {
        median_ms: f64,
        p95_ms: f64,
    },
    Gamma {
        shape: f64,
        mean_ms: f64,
    },
    Uniform {
        min_ms: f64,
        max_ms: f64,
    },
    /// `[[probability, ms], …]` from probability 0 to 1, linearly interpolated.
    Empirical {
        quantiles: Vec<(f64, f64)>,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    pub name: Option<String>,
    pub description: Option<String>,
    pub seed: Option<u64>,
    /// Path of a model file (relative to the experiment file) whose `defaults` this file overrides.
    pub model: Option<String>,
    pub run: Option<RunFile>,
    pub clients: Option<ClientsFile>,
    pub workload: Option<WorkloadFile>,
    pub app: Option<AppFile>,
    pub pgbouncer: Option<BouncerFile>,
    pub postgres: Option<PostgresFile>,
    pub replicas: Option<ReplicasFile>,
    pub network: Option<NetworkFile>,
    #[serde(default)]
    pub faults: Vec<FaultFile>,
    pub slo: Option<SloFile>,
    /// Dotted path into this document -> the values to sweep; axes are crossed, in file order.
    #[serde(default)]
    pub sweep: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    pub duration_s: Option<f64>,
    /// Fixed warm-up removed from every metric (see `auto_warmup`).
    pub warmup_s: Option<f64>,
    pub replications: Option<u32>,
    pub confidence: Option<f64>,
    /// Upper bound on events processed by one run (a safety limit).
    pub max_events: Option<u64>,
    /// Choose the warm-up per replication by MSER-5 on the throughput and latency series
    /// (instead of the fixed `warmup_s`).
    pub auto_warmup: Option<bool>,
    /// Add replications until the named metrics are precise enough.
    pub precision: Option<PrecisionFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PrecisionFile {
    /// Metric names (as in the results), default `["latency_p95_ms"]`.
    pub metrics: Option<Vec<String>>,
    /// Target: confidence half-width ≤ this fraction of the mean (default 0.05).
    pub relative_half_width: Option<f64>,
    /// Stop adding replications here even if the target is not met (default 50).
    pub max_replications: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClientsFile {
    /// `closed` (users who think and wait) or `open` (Poisson arrivals).
    pub mode: Option<String>,
    pub users: Option<u32>,
    pub think_time: Option<DurationSpec>,
    /// Closed loop: user count over time, as steps.
    #[serde(default)]
    pub users_schedule: Vec<UsersStepFile>,
    pub rate_per_s: Option<f64>,
    /// Open loop: arrival rate over time, as steps (bursts).
    #[serde(default)]
    pub rate_schedule: Vec<RateStepFile>,
    /// The user's own patience: after this, the user records a timeout and moves on.
    pub request_timeout: Option<DurationSpec>,
    pub request_timeout_ms: Option<f64>,
    pub retries: Option<RetriesFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersStepFile {
    pub at_s: f64,
    pub users: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateStepFile {
    pub at_s: f64,
    pub rate_per_s: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RetriesFile {
    pub max: Option<u32>,
    pub backoff: Option<DurationSpec>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    #[serde(default)]
    pub transactions: Vec<TransactionFile>,
    /// App CPU time per request, spent on one of the instance's workers before any database work.
    pub app_cpu: Option<DurationSpec>,
    /// `transaction` (acquire per transaction) or `request` (hold one connection per request).
    pub hold: Option<String>,
    pub transactions_per_request: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TransactionFile {
    pub name: String,
    pub weight: Option<f64>,
    /// Name of the app pool (route) the transaction runs on, e.g. `primary` or `replica`.
    pub route: Option<String>,
    /// Round trips inside the transaction (> 1 means an explicit BEGIN … COMMIT block). Default
    /// with `sql`: the round trips live mode makes — the statements, plus BEGIN and COMMIT when
    /// there are several and the first is not BEGIN; otherwise 1.
    pub statements: Option<u32>,
    /// Per statement: time at the server that does not use its CPU (I/O, locks, sleep).
    pub statement_wait: Option<DurationSpec>,
    /// Per statement: CPU time at the server, shared by processor sharing over its cores.
    pub statement_cpu: Option<DurationSpec>,
    /// App-side time between a statement's response and the next statement of the transaction.
    pub gap: Option<DurationSpec>,
    /// This transaction's own delay when it finds the database host idle (see
    /// `network.wakeup`, which it replaces for this type): cold CPUs and caches slow a long
    /// statement by more than the wake-up of a trivial round trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wakeup: Option<DurationSpec>,
    /// How that wake-up grows with the host's idle time: `[idle_ms, factor]` points in
    /// ascending idle time, the factor multiplying the wake-up drawn (its own `wakeup`, or
    /// `network.wakeup`), linear in between and flat beyond the ends. Absent: factor 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wakeup_by_idle: Option<Vec<[f64; 2]>>,
    /// The statements, for live mode; the simulator uses only their count. Several statements
    /// run as one `BEGIN … COMMIT` block, one round trip each.
    #[serde(default)]
    pub sql: Vec<String>,
    /// Live mode: values for the `:name` placeholders of `sql`, drawn afresh for every
    /// transaction (like pgbench's `\set name random(lo, hi)`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, ParamSpec>,
}

/// How a live-mode SQL parameter is drawn.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ParamSpec {
    /// A uniform random integer in `[lo, hi]`, both inclusive.
    Uniform([i64; 2]),
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AppFile {
    pub instances: Option<u32>,
    pub workers_per_instance: Option<u32>,
    /// Requests in flight per instance beyond which new ones are rejected (0 or absent: no limit).
    pub max_in_flight: Option<u32>,
    /// `round_robin` or `random`.
    pub balance: Option<String>,
    /// The app runs on the database host (a load generator on loopback): a response that wakes
    /// its thread pays `postgres.cross_core_wakeup` as work arriving on that host does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_postgres_host: Option<bool>,
    #[serde(default)]
    pub pools: BTreeMap<String, PoolFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PoolFile {
    /// `asyncpg` (a pool) or `none` (a new connection per transaction, closed after it).
    pub kind: Option<String>,
    /// `pgbouncer`, `primary` or `replicas`.
    pub target: Option<String>,
    pub min_size: Option<i64>,
    pub max_size: Option<i64>,
    pub acquire_timeout_ms: Option<f64>,
    /// Whole-acquire timeout as a distribution (e.g. exponential patience); overrides the constant.
    pub acquire_timeout: Option<DurationSpec>,
    pub command_timeout_ms: Option<f64>,
    pub max_queries: Option<u64>,
    pub max_inactive_connection_lifetime_s: Option<f64>,
    /// Run the reset query (its own short transaction) at every release.
    pub reset_query: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BouncerFile {
    pub pool_mode: Option<String>,
    pub max_client_conn: Option<u32>,
    pub default_pool_size: Option<i64>,
    pub min_pool_size: Option<i64>,
    pub reserve_pool_size: Option<i64>,
    pub reserve_pool_timeout_s: Option<f64>,
    pub query_wait_timeout_s: Option<f64>,
    pub server_lifetime_s: Option<f64>,
    pub server_idle_timeout_s: Option<f64>,
    pub server_login_retry_s: Option<f64>,
    pub max_db_connections: Option<u32>,
    /// CPU time PgBouncer spends per query on its single thread.
    pub cpu_per_query: Option<DurationSpec>,
    /// Extra CPU time when a query, its response or a login finds PgBouncer's thread idle: it
    /// wakes up (from epoll, on a sleeping CPU) once per busy spell, so a busy PgBouncer spends
    /// less per query.
    pub cpu_per_wakeup: Option<DurationSpec>,
    /// Number of PgBouncer processes sharing the port (so_reuseport); each has its own pools.
    pub processes: Option<u32>,
    /// Client connect cost through PgBouncer (TCP + startup + auth), when the pool is warm.
    pub client_connect: Option<DurationSpec>,
    /// Whether the pools are already at `min_pool_size` when the run starts.
    pub prewarm: Option<bool>,
    /// PgBouncer runs on the primary's host: its CPU (queries and logins) comes out of the same
    /// `postgres.cores` as the statements' (default false: a host of its own).
    pub on_postgres_host: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PostgresFile {
    pub max_connections: Option<u32>,
    pub superuser_reserved_connections: Option<u32>,
    /// CPU cores available to backends; 0 means unlimited (every backend runs at full speed).
    pub cores: Option<u32>,
    /// USL contention σ: serial fraction.
    pub contention_sigma: Option<f64>,
    /// USL coherency κ: crosstalk between running backends.
    pub contention_kappa: Option<f64>,
    /// How the cores are shared among running statements: `shared` (ideal processor sharing,
    /// the default when absent) or `per_core` (one run queue per core, as Linux keeps them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_scheduling: Option<String>,
    /// Latency of work that reaches the host while some but not all of its cores are busy: it
    /// lands on an idle core, which another core must wake (an inter-processor interrupt; on a
    /// virtual machine, a halted vCPU's exit and re-entry). Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_core_wakeup: Option<DurationSpec>,
    /// Probability (0–1) that a response to an app on this host (`app.on_postgres_host`),
    /// leaving while other statements run, waits for one of them to end: Linux wakes the thread
    /// that carries it on a core where a statement runs (even with another core idle), and the
    /// running backend keeps that core. Absent: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_behind_statement: Option<f64>,
    /// The kernel's time slice, ms: a thread woken on this host while every core runs a
    /// statement (PgBouncer's, an app's on the host) waits for the statement on its core to end
    /// or for this long, whichever is shorter. Absent: Linux's default base slice for
    /// `cores`, 0.75 ms × (1 + log2 min(cores, 8)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_slice_ms: Option<f64>,
    /// Cost of starting a backend for a new connection (fork, auth, catalog cache).
    pub backend_start: Option<DurationSpec>,
    pub statement_timeout_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReplicasFile {
    pub count: Option<u32>,
    pub max_connections: Option<u32>,
    pub cores: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    pub app_bouncer_rtt_ms: Option<f64>,
    pub bouncer_postgres_rtt_ms: Option<f64>,
    pub app_postgres_rtt_ms: Option<f64>,
    /// Extra delay of a request that arrives when the database host's CPUs (PostgreSQL's and
    /// PgBouncer's) have been idle for at least `wakeup_after_ms`: idle CPUs sleep, and the
    /// first hops of the request wake them (default 0: none).
    pub wakeup: Option<DurationSpec>,
    /// Idle time after which the host's CPUs count as asleep (default 1 ms).
    pub wakeup_after_ms: Option<f64>,
    /// The host's slow state: with it, the CPU share of a transaction type's own wake-up
    /// follows the host's recent idle spell (the longest a request found, decaying with this
    /// time constant) and is paid by every request, idle host or not, as more CPU on its first
    /// statement's core; the rest stays a delay for a request that finds the host idle, by the
    /// spell it finds (absent: all of it so).
    pub wakeup_memory_ms: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultFile {
    /// `down` (target refuses and drops connections), `restart` (primary down then back),
    /// or `slowdown` (statements at the target take `factor` times longer).
    pub kind: String,
    /// `pgbouncer`, `primary` or `replica:N`.
    pub target: String,
    pub at_s: f64,
    pub for_s: f64,
    pub factor: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SloFile {
    pub p95_ms: Option<f64>,
    /// `[[users, p95_ms], …]`: the threshold of the largest user count not above the point's.
    #[serde(default)]
    pub p95_ms_by_users: Vec<(u32, f64)>,
    pub failure_rate: Option<f64>,
    pub pool_utilization: Option<f64>,
    pub acquire_p95_ms: Option<f64>,
}

/// A model file: measured or assumed properties of a system, as defaults for experiments.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Where the numbers come from: versions, settings, date, method. Never credentials.
    #[serde(default)]
    pub provenance: serde_json::Map<String, serde_json::Value>,
    /// A partial experiment document; the experiment's own values win.
    pub defaults: serde_json::Value,
}
