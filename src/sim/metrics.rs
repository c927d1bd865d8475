//! What a run records: counters, time-weighted averages and streaming histograms — nothing per
//! request. Everything is measured over the window after the warm-up.

use crate::stats::LatencyHistogram;
use crate::units::SimTime;

/// Causes of failure, as the user or the app sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// The app pool's acquire timed out (queue + connect).
    AcquireTimeout = 0,
    /// PgBouncer dropped the client after `query_wait_timeout`.
    QueryWaitTimeout,
    /// PgBouncer refused the connection: `max_client_conn`.
    MaxClientConn,
    /// PostgreSQL refused the connection: 53300 too many clients.
    MaxConnections,
    /// The app's per-statement `command_timeout`.
    CommandTimeout,
    /// PostgreSQL cancelled the statement: `statement_timeout` (57014).
    StatementTimeout,
    /// The user's own patience ran out (the request went on, orphaned).
    ClientTimeout,
    /// The app instance was at its in-flight limit.
    AdmissionRejected,
    /// PgBouncer failed the query at once: server login has been failing.
    ServerLoginFailed,
    /// A connection was dropped under the request (a fault).
    ConnectionLost,
    /// Statement pooling refused a transaction block.
    StatementModeTransaction,
    /// The target refused the connection (down).
    ConnectRefused,
}

pub const CAUSES: [Cause; 12] = [
    Cause::AcquireTimeout,
    Cause::QueryWaitTimeout,
    Cause::MaxClientConn,
    Cause::MaxConnections,
    Cause::CommandTimeout,
    Cause::StatementTimeout,
    Cause::ClientTimeout,
    Cause::AdmissionRejected,
    Cause::ServerLoginFailed,
    Cause::ConnectionLost,
    Cause::StatementModeTransaction,
    Cause::ConnectRefused,
];

impl Cause {
    /// The metric-name stem for this cause.
    pub fn name(self) -> &'static str {
        match self {
            Cause::AcquireTimeout => "acquire_timeout",
            Cause::QueryWaitTimeout => "query_wait_timeout",
            Cause::MaxClientConn => "max_client_conn",
            Cause::MaxConnections => "max_connections",
            Cause::CommandTimeout => "command_timeout",
            Cause::StatementTimeout => "statement_timeout",
            Cause::ClientTimeout => "client_timeout",
            Cause::AdmissionRejected => "admission_rejected",
            Cause::ServerLoginFailed => "server_login_failed",
            Cause::ConnectionLost => "connection_lost",
            Cause::StatementModeTransaction => "statement_mode_transaction",
            Cause::ConnectRefused => "connect_refused",
        }
    }
    /// A short label for tables.
    pub fn short(self) -> &'static str {
        match self {
            Cause::AcquireTimeout => "acq",
            Cause::QueryWaitTimeout => "qwait",
            Cause::MaxClientConn => "maxcl",
            Cause::MaxConnections => "maxconn",
            Cause::CommandTimeout => "cmd",
            Cause::StatementTimeout => "stmt",
            Cause::ClientTimeout => "client",
            Cause::AdmissionRejected => "admit",
            Cause::ServerLoginFailed => "login",
            Cause::ConnectionLost => "lost",
            Cause::StatementModeTransaction => "stmtmode",
            Cause::ConnectRefused => "refused",
        }
    }
}

/// A level whose time-weighted mean over the measurement window is wanted.
#[derive(Clone, Debug, Default)]
pub struct TimeAvg {
    level: f64,
    last: u64,
    area: f64,
    peak: f64,
    from: u64,
}

impl TimeAvg {
    #[inline]
    pub fn add(&mut self, now: SimTime, delta: f64) {
        let l = self.level + delta;
        self.set(now, l);
    }
    #[inline]
    pub fn set(&mut self, now: SimTime, level: f64) {
        let t = now.0;
        if t > self.last {
            self.area += self.level * (t - self.last) as f64;
            self.last = t;
        }
        self.level = level;
        if level > self.peak {
            self.peak = level;
        }
    }
    pub fn level(&self) -> f64 {
        self.level
    }
    /// Start measuring at `now`: forget the area and the peak so far.
    pub fn restart(&mut self, now: SimTime) {
        self.set(now, self.level);
        self.area = 0.0;
        self.from = now.0;
        self.peak = self.level;
    }
    pub fn mean(&mut self, now: SimTime) -> f64 {
        self.set(now, self.level);
        let span = now.0.saturating_sub(self.from);
        if span == 0 {
            self.level
        } else {
            self.area / span as f64
        }
    }
    pub fn peak(&self) -> f64 {
        self.peak
    }
}

/// Raw tallies of one run.
pub struct Recorder {
    pub measuring: bool,
    pub window_start: SimTime,
    pub latency: LatencyHistogram,
    pub acquire_wait: LatencyHistogram,
    pub completed: u64,
    pub tx_completed: u64,
    pub failures: [u64; CAUSES.len()],
    pub issued: u64,
    pub retries: u64,
    pub exhaustion_events: u64,
    pub acquires: u64,
    pub connections_opened: u64,
    pub server_logins: u64,
    pub reserve_opened: u64,
    pub bouncer_wait_ns: f64,
    pub bouncer_assignments: u64,
    pub cl_waiting_max: u64,
    pub sojourn_ns: f64,
    pub sojourn_n: u64,
    pub app_busy: TimeAvg,
    pub bouncer_active: TimeAvg,
    pub primary_backends: TimeAvg,
    pub replica_backends_peak: f64,
    pub in_system: TimeAvg,
    pub primary_cpu_busy: TimeAvg,
    pub bouncer_cpu_ns: f64,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            measuring: false,
            window_start: SimTime::ZERO,
            latency: LatencyHistogram::new(),
            acquire_wait: LatencyHistogram::new(),
            completed: 0,
            tx_completed: 0,
            failures: [0; CAUSES.len()],
            issued: 0,
            retries: 0,
            exhaustion_events: 0,
            acquires: 0,
            connections_opened: 0,
            server_logins: 0,
            reserve_opened: 0,
            bouncer_wait_ns: 0.0,
            bouncer_assignments: 0,
            cl_waiting_max: 0,
            sojourn_ns: 0.0,
            sojourn_n: 0,
            app_busy: TimeAvg::default(),
            bouncer_active: TimeAvg::default(),
            primary_backends: TimeAvg::default(),
            replica_backends_peak: 0.0,
            in_system: TimeAvg::default(),
            primary_cpu_busy: TimeAvg::default(),
            bouncer_cpu_ns: 0.0,
        }
    }

    /// The warm-up is over: start counting.
    pub fn start_window(&mut self, now: SimTime) {
        self.measuring = true;
        self.window_start = now;
        for t in [
            &mut self.app_busy,
            &mut self.bouncer_active,
            &mut self.primary_backends,
            &mut self.in_system,
            &mut self.primary_cpu_busy,
        ] {
            t.restart(now);
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

/// What a run saw of its requests in the measurement window, from which the outcome metrics are
/// computed the same way whether the run was simulated ([`crate::sim::run`]) or measured (the
/// live load generator).
pub struct Outcomes<'a> {
    pub window_s: f64,
    pub completed: u64,
    pub tx_completed: u64,
    /// Failures by cause, indexed by `Cause as usize`.
    pub failures: &'a [u64; CAUSES.len()],
    /// Failures of no modelled cause (SQL errors, live only): in the failure rate, under no cause.
    pub other_failures: u64,
    pub latency: &'a LatencyHistogram,
    pub acquire_wait: &'a LatencyHistogram,
    /// Time-averaged requests in the system.
    pub in_system_mean: f64,
    /// Requests that ended (served or not) and the sum of their times in the window.
    pub sojourn_n: u64,
    pub sojourn_ns: f64,
}

impl Outcomes<'_> {
    /// Write throughput, latency, failure rates (with causes), acquire wait, mean in system
    /// and Little's-law residual into `v` (indexed like `METRIC_NAMES`).
    pub fn write(&self, v: &mut [f64]) {
        let set = |v: &mut [f64], name: &str, x: f64| v[super::metric_index(name)] = x;
        let ms = |ns: f64| ns / 1e6;
        let window = self.window_s.max(1e-9);
        set(v, "throughput_rps", self.completed as f64 / window);
        set(v, "tx_throughput_tps", self.tx_completed as f64 / window);
        for (h, mean, pcts) in [
            (
                self.latency,
                "latency_mean_ms",
                &[
                    (0.50, "latency_p50_ms"),
                    (0.95, "latency_p95_ms"),
                    (0.99, "latency_p99_ms"),
                ][..],
            ),
            (
                self.acquire_wait,
                "acquire_wait_mean_ms",
                &[(0.95, "acquire_wait_p95_ms"), (0.99, "acquire_wait_p99_ms")][..],
            ),
        ] {
            if h.count() > 0 {
                set(v, mean, ms(h.mean_ns()));
                for &(p, name) in pcts {
                    set(v, name, ms(h.quantile_ns(p) as f64));
                }
            }
        }
        if self.latency.count() > 0 {
            set(v, "latency_max_ms", ms(self.latency.max_ns() as f64));
        }
        let failed: u64 = self.failures.iter().sum::<u64>() + self.other_failures;
        let denom = (self.completed + failed).max(1) as f64;
        set(v, "failure_rate", failed as f64 / denom);
        for (i, c) in CAUSES.iter().enumerate() {
            v[super::FIRST_CAUSE_METRIC + i] = self.failures[*c as usize] as f64 / denom;
        }
        let l = self.in_system_mean;
        set(v, "in_system_mean", l);
        // Little: L = X·W over the window, X counting every request that ended (served or not)
        let x = self.sojourn_n as f64 / window;
        let w = if self.sojourn_n > 0 {
            self.sojourn_ns / self.sojourn_n as f64 / 1e9
        } else {
            0.0
        };
        let resid = if l > 0.0 { (l - x * w).abs() / l } else { 0.0 };
        set(v, "littles_law_residual", resid);
    }
}
