//! Experiments: loading (model defaults, `--set` overrides, sweep points), parsing and validation
//! into the typed [`Scenario`] the engine runs.
//!
//! Pipeline: JSON text -> `serde_json::Value` -> model defaults merged underneath -> overrides
//! applied at dotted paths -> [`file::ExperimentFile`] (serde, unknown fields rejected; every
//! structural problem collected, not just the first) -> [`validate()`] -> [`Scenario`] plus warnings.

pub mod file;
pub mod load;
pub mod validate;

use crate::dist::Dist;
use crate::units::{SimDuration, SimTime};
use std::fmt;

pub use load::{apply_override, load_experiment, parse_override, LoadedExperiment};
pub use validate::validate;

/// One problem found in an experiment, with where it is, what it is, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub severity: Severity,
    /// JSON path, dotted (`app.pools.primary.max_size`).
    pub path: String,
    /// The offending value as written (or `(missing)`).
    pub value: String,
    pub message: String,
    pub hint: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {} = {}: {}", self.path, self.value, self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  fix: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Every problem of an invalid experiment (errors first).
#[derive(Debug)]
pub struct Invalid(pub Vec<Problem>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self
            .0
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        writeln!(f, "the experiment has {n} problem(s):")?;
        for p in &self.0 {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}
impl std::error::Error for Invalid {}

/// A validated experiment: everything the engine needs, in engine units.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    pub run: Run,
    pub clients: Clients,
    pub workload: Workload,
    pub app: App,
    /// App pools, one per route, in name order.
    pub pools: Vec<PoolSpec>,
    pub bouncer: Option<BouncerSpec>,
    pub primary: PgSpec,
    pub replicas: Vec<PgSpec>,
    pub network: Network,
    pub faults: Vec<Fault>,
    pub slo: Slo,
}

#[derive(Clone, Debug)]
pub struct Run {
    pub duration: SimDuration,
    pub warmup: SimDuration,
    /// Choose the warm-up by MSER-5 per replication (then `warmup` is ignored).
    pub auto_warmup: bool,
    pub precision: Option<Precision>,
    pub replications: u32,
    pub confidence: f64,
    pub max_events: u64,
}

/// Precision stopping: replications are added until every named metric's confidence half-width
/// is within `relative_half_width` of its mean, or `max_replications` is reached.
#[derive(Clone, Debug)]
pub struct Precision {
    /// Indices into `sim::METRIC_NAMES`.
    pub metrics: Vec<usize>,
    pub relative_half_width: f64,
    pub max_replications: u32,
}

#[derive(Clone, Debug)]
pub enum Load {
    /// Users who think, send a request, wait for it (or give up), think again. Steps of user count.
    Closed {
        schedule: Vec<(SimTime, u32)>,
        think: Dist,
    },
    /// Poisson arrivals; steps of rate per second.
    Open { schedule: Vec<(SimTime, f64)> },
}

impl Load {
    pub fn max_users(&self) -> u32 {
        match self {
            Load::Closed { schedule, .. } => schedule.iter().map(|s| s.1).max().unwrap_or(0),
            Load::Open { .. } => 0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Clients {
    pub load: Load,
    pub timeout: Option<Dist>,
    pub retries: u32,
    pub backoff: Dist,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    Transaction,
    Request,
}

/// Whether live mode runs these statements inside its own `BEGIN … COMMIT`: several statements,
/// and the SQL does not open a transaction itself.
pub fn wraps_in_block(sql: &[String]) -> bool {
    sql.len() > 1 && !opens_transaction(&sql[0])
}

/// Round trips live mode makes for a transaction's SQL (BEGIN and COMMIT included).
pub fn sql_round_trips(sql: &[String]) -> usize {
    sql.len() + if wraps_in_block(sql) { 2 } else { 0 }
}

fn opens_transaction(sql: &str) -> bool {
    let s = sql.trim_start().to_ascii_lowercase();
    s.starts_with("begin") || s.starts_with("start transaction")
}

#[derive(Clone, Debug)]
pub struct TxType {
    pub name: String,
    /// Cumulative weight, normalised so the last is 1.
    pub cum_weight: f64,
    /// Index into `Scenario::pools`.
    pub route: usize,
    pub statements: u32,
    pub wait: Dist,
    pub cpu: Dist,
    /// The CPU's share of a statement's mean service (mean CPU over mean wait + CPU; 0 when
    /// both are zero).
    pub cpu_share: f64,
    pub gap: Dist,
    /// Replaces `network.wakeup` for a request whose first transaction is of this type.
    pub wakeup: Option<Dist>,
    /// The factor of that wake-up by the host's idle time (`wakeup_by_idle`); empty: 1.
    pub wakeup_by_idle: Vec<(SimDuration, f64)>,
}

impl TxType {
    /// The factor of this type's wake-up after `idle` of idle host: linear between the
    /// points, flat beyond the ends, 1 without points.
    pub fn wakeup_factor(&self, idle: SimDuration) -> f64 {
        let pts = &self.wakeup_by_idle;
        let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
            return 1.0;
        };
        if idle <= first.0 {
            return first.1;
        }
        if idle >= last.0 {
            return last.1;
        }
        let i = pts.partition_point(|p| p.0 <= idle);
        let (a, b) = (pts[i - 1], pts[i]);
        let x = (idle.as_ns() - a.0.as_ns()) as f64 / (b.0.as_ns() - a.0.as_ns()) as f64;
        a.1 + x * (b.1 - a.1)
    }
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub txs: Vec<TxType>,
    /// Some transaction type has its own `wakeup` or `wakeup_by_idle`.
    pub own_wakeup: bool,
    pub app_cpu: Dist,
    pub hold: Hold,
    pub tx_per_request: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    RoundRobin,
    Random,
}

#[derive(Clone, Debug)]
pub struct App {
    pub instances: u32,
    /// CPU workers per instance; `None` = unlimited (app CPU is then a pure delay).
    pub workers: Option<u32>,
    pub max_in_flight: Option<u32>,
    pub balance: Balance,
    /// On the database host: responses pay `postgres.cross_core_wakeup` too.
    pub on_postgres_host: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Asyncpg,
    /// A new connection per transaction, closed after it (serverless-style clients).
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Bouncer,
    Primary,
    Replicas,
}

#[derive(Clone, Debug)]
pub struct PoolSpec {
    pub name: String,
    pub kind: PoolKind,
    pub target: Target,
    pub min_size: u32,
    pub max_size: u32,
    pub acquire_timeout: Option<Dist>,
    pub command_timeout: Option<SimDuration>,
    pub max_queries: Option<u64>,
    pub max_inactive: Option<SimDuration>,
    pub reset_query: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    Session,
    Transaction,
    Statement,
}

#[derive(Clone, Debug)]
pub struct BouncerSpec {
    pub mode: PoolMode,
    pub max_client_conn: u32,
    /// Servers per pool; `u32::MAX` when `default_pool_size = 0` (unlimited).
    pub pool_size: u32,
    pub min_pool_size: u32,
    pub reserve_size: u32,
    pub reserve_timeout: SimDuration,
    pub query_wait_timeout: Option<SimDuration>,
    pub server_lifetime: Option<SimDuration>,
    pub server_idle_timeout: Option<SimDuration>,
    pub login_retry: SimDuration,
    pub max_db_connections: Option<u32>,
    pub cpu_per_query: Dist,
    /// Added to the work that finds the thread idle.
    pub cpu_per_wakeup: Dist,
    pub processes: u32,
    pub client_connect: Dist,
    pub prewarm: bool,
    /// Its CPU work also loads the primary's cores.
    pub on_postgres_host: bool,
}

#[derive(Clone, Debug)]
pub struct PgSpec {
    pub max_connections: u32,
    pub reserved: u32,
    /// `None` = unlimited: every running statement progresses at full speed.
    pub cores: Option<u32>,
    pub sigma: f64,
    pub kappa: f64,
    /// How the cores are shared among the running statements.
    pub cpu_scheduling: CpuScheduling,
    /// Latency of a statement (or of PgBouncer's work on this host) that arrives while some
    /// but not all of the cores are busy: it wakes an idle core from another.
    pub cross_core_wakeup: Option<Dist>,
    /// Probability that a response to an app on this host, leaving while other statements run,
    /// waits for one of them to end (0: never).
    pub response_behind_statement: f64,
    /// The longest a thread woken on this host waits for a core while every core runs a
    /// statement (`postgres.scheduler_slice_ms`).
    pub scheduler_slice: SimDuration,
    pub backend_start: Dist,
    pub statement_timeout: Option<SimDuration>,
}

/// Linux's default base time slice on a host with `cores` cores, ms: 0.75 ms scaled by
/// 1 + log2 of the cores (at most 8), the kernel's default `SCHED_TUNABLESCALING_LOG`
/// (`sysctl_sched_base_slice`, before EEVDF `sched_min_granularity`).
pub fn default_scheduler_slice_ms(cores: u32) -> f64 {
    0.75 * (1 + cores.clamp(1, 8).ilog2()) as f64
}

/// `postgres.cpu_scheduling`: how PostgreSQL's cores are shared among running statements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CpuScheduling {
    /// `shared`: ideal processor sharing over all the cores.
    #[default]
    Shared,
    /// `per_core`: one run queue per core, placement on an idle core or a random one, and
    /// newidle balancing (see `model/backend.rs`). Needs a finite number of cores.
    PerCore,
}

impl PgSpec {
    /// Connections ordinary roles may hold: `max_connections − superuser_reserved_connections`.
    pub fn usable_connections(&self) -> u32 {
        self.max_connections.saturating_sub(self.reserved)
    }
}

#[derive(Clone, Debug)]
pub struct Network {
    pub app_bouncer_rtt: SimDuration,
    pub bouncer_pg_rtt: SimDuration,
    pub app_pg_rtt: SimDuration,
    /// Delay of a request that finds the database host's CPUs asleep.
    pub wakeup: Dist,
    /// Idle time after which they count as asleep.
    pub wakeup_after: SimDuration,
    /// The memory of the host's recent idle spells for the types' own wake-ups, if any.
    pub wakeup_memory: Option<SimDuration>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultKind {
    Down,
    Slowdown(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultTarget {
    Bouncer,
    Primary,
    Replica(u32),
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub kind: FaultKind,
    pub target: FaultTarget,
    pub start: SimTime,
    pub end: SimTime,
}

#[derive(Clone, Debug, Default)]
pub struct Slo {
    pub p95_ms: Option<f64>,
    pub failure_rate: Option<f64>,
    pub pool_utilization: Option<f64>,
    pub acquire_p95_ms: Option<f64>,
}
