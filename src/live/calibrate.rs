//! `poolsim calibrate`: measure a live PostgreSQL (and PgBouncer) and write a model file.
//!
//! Phases, each within its share of the time budget:
//!
//! 1. provenance: server versions and settings, the load generator's core count, the date;
//! 2. round-trip time: `SELECT 1` at concurrency 1, direct and through PgBouncer, and
//!    PgBouncer's CPU time per query read from `/proc` when its process is on this host;
//! 3. per transaction type: the workload's SQL at concurrency 1, direct, each statement timed;
//!    the statement time minus the round trip is fitted ([`fit::best_fit`]); then each type
//!    after a pause against the same type back to back, on the workload's path (its own
//!    `wakeup`);
//! 4. throughput against concurrency (closed loop, direct, the workload mix), fitted to the USL
//!    ([`fit::fit_usl`]); the throughput ceiling splits each statement into wait and CPU time;
//! 5. connection set-up: new direct connections (backend start) and new client connections
//!    through PgBouncer.
//!
//! Nothing is left on the server: every connection carries `application_name`
//! [`APPLICATION_NAME`] and is closed at the end, no setting is changed, no table created (the
//! workload's own SQL excepted).

use super::behind;
use super::fit::{self, DistFit, Fitted, SplitRegime, UslFit};
use super::hop::{self, HopTimes};
use super::pg::{error_text, Endpoint};
use super::speed;
use super::sql::{compile, LiveTx};
use crate::experiment::file::ExperimentFile;
use crate::experiment::load::{load_experiment, parse_file};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, SimpleQueryMessage};

/// `application_name` of every connection calibrate opens.
pub const APPLICATION_NAME: &str = "poolsim-calibrate";

/// Smallest PgBouncer CPU time per query the model gets, ms.
pub const MIN_BOUNCER_CPU_MS: f64 = 0.005;

/// Linux clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`).
const CLK_TCK: f64 = 100.0;

/// What to measure, and where.
#[derive(Clone, Debug)]
pub struct CalibrateOptions {
    /// PostgreSQL URL (direct).
    pub pg: String,
    /// PgBouncer URL, if there is one.
    pub bouncer: Option<String>,
    /// PgBouncer admin console URL (default: the PgBouncer URL with database `pgbouncer`).
    pub bouncer_admin: Option<String>,
    /// The experiment whose `workload.transactions` are measured.
    pub workload: PathBuf,
    /// Overrides of the workload experiment's fields (dotted path, value), as `--set` gives
    /// them: `validate` sets `workload.transactions` to one workload of its sweep.
    pub workload_set: Vec<(String, Value)>,
    /// The model's name (the output file's stem).
    pub name: String,
    /// Total time budget.
    pub budget: Duration,
    /// Highest concurrency of the throughput sweep (default 8 × cores, at least 16).
    pub max_concurrency: Option<usize>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Worker threads of the runtime the measurements run on (1: a single-threaded runtime),
    /// as the load generator's (`bench --threads`).
    pub threads: usize,
    /// The command line, as recorded in the provenance (URLs redacted).
    pub command: String,
}

/// The outcome: the model file document, a human report, and the raw measurements.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// The model file document (`name`, `description`, `provenance`, `defaults`).
    pub model: Value,
    /// Human-readable report.
    pub summary: String,
    /// Every measurement and fit, for `--format json`.
    pub measurements: Value,
}

// ---------------------------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------------------------

/// Split PgBouncer's added latency: the client ↔ PgBouncer hop costs what the direct hop costs
/// (loopback), the remainder is PgBouncer's CPU per query (at least [`MIN_BOUNCER_CPU_MS`]).
/// Returns `(app_bouncer_rtt_ms, cpu_per_query_ms)`.
pub fn split_bouncer_latency(direct_rtt_ms: f64, through_bouncer_ms: f64) -> (f64, f64) {
    let added = through_bouncer_ms - direct_rtt_ms;
    (direct_rtt_ms, added.max(MIN_BOUNCER_CPU_MS))
}

/// Round to 4 significant digits (model files are read by people).
pub fn sig4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let mag = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * mag).round() / mag
}

/// A fitted distribution scaled by `factor` (every time value multiplied), as an experiment
/// duration. A factor of 0 gives `{"const_ms": 0}`.
pub fn scale_dist(d: &DistFit, factor: f64) -> Value {
    if factor <= 1e-9 {
        return json!({"const_ms": 0.0});
    }
    match d {
        DistFit::Lognormal {
            median_ms, p95_ms, ..
        } => {
            let median = sig4(median_ms * factor);
            let p95 = sig4(p95_ms * factor).max(median * 1.0001);
            json!({"lognormal": {"median_ms": median, "p95_ms": sig4(p95)}})
        }
        DistFit::Gamma { shape, mean_ms } => {
            json!({"gamma": {"shape": sig4(*shape), "mean_ms": sig4(mean_ms * factor)}})
        }
        DistFit::Exponential { mean_ms } => json!({"exp": {"mean_ms": sig4(mean_ms * factor)}}),
        DistFit::Empirical { quantiles } => {
            let mut last = 0.0f64;
            let q: Vec<Value> = quantiles
                .iter()
                .map(|&(p, ms)| {
                    last = last.max(sig4(ms * factor));
                    json!([p, last])
                })
                .collect();
            json!({"empirical": {"quantiles": q}})
        }
    }
}

/// The concurrencies of the throughput sweep: 1, 2, 4, … and `max` itself.
pub fn levels(max: usize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut n = 1;
    while n < max {
        v.push(n);
        n *= 2;
    }
    v.push(max.max(1));
    v
}

/// Median of a sample (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

/// Quantile by linear interpolation between order statistics (0 when empty).
pub fn quantile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let h = p.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    s[lo] + (h - lo as f64) * (s[hi] - s[lo])
}

/// `YYYY-MM-DDTHH:MM:SSZ` of seconds since the Unix epoch.
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil from days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Measurements of one transaction type at concurrency 1.
#[derive(Clone, Debug)]
pub struct TxMeasured {
    pub name: String,
    /// Round trips per transaction: its SQL statements, and BEGIN and COMMIT for a block.
    pub statements: usize,
    pub weight: f64,
    /// Statement service times (latency minus the round trip), ms.
    pub service_ms: Vec<f64>,
    /// Mean statement latency as measured (round trip included), ms.
    pub latency_mean_ms: f64,
    pub best: Fitted,
    pub all: Vec<Fitted>,
}

/// One window of the throughput sweep.
#[derive(Clone, Copy, Debug)]
pub struct LevelPoint {
    pub clients: usize,
    pub statements_per_s: f64,
    pub transactions_per_s: f64,
    /// Mean statement latency, ms.
    pub statement_latency_ms: f64,
}

/// The wait / CPU split of statements: fractions of the service time (after the round trip).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fractions {
    pub wait: f64,
    pub cpu: f64,
}

/// Wait and CPU fractions of the service time `service_ms`, given the CPU time per statement
/// the throughput ceiling implies (`cores / ceiling`). That CPU time the throughput ceiling implies is kept even when it exceeds the service
/// time (on loopback the round trip itself is CPU work of the client, kernel and server): the
/// simulated ceiling then matches the measured one, and the single-client latency is overstated
/// by at most one round trip.
pub fn fractions(service_ms: f64, cpu_ms: f64) -> Fractions {
    if service_ms <= 0.0 {
        return Fractions {
            wait: 0.0,
            cpu: 0.0,
        };
    }
    let cpu = cpu_ms.max(0.0);
    let wait = (service_ms - cpu).max(0.0);
    Fractions {
        wait: wait / service_ms,
        cpu: cpu / service_ms,
    }
}

/// Contention beyond core saturation, for the simulator: σ, κ ≥ 0 such that
/// `X(N) = min(N·x1, x_max) / (1 + σ(N − 1) + κN(N − 1))` fits the measured `(N, X)` points
/// best (linear least squares in σ, κ on `min(N·x1, x_max)/X − 1`, constrained to σ, κ ≥ 0).
///
/// The simulator already caps throughput at the cores (processor sharing, with the CPU time
/// per statement from the ceiling `x_max`) and applies σ, κ on top, to the statements in
/// their CPU phase; the USL fitted to the raw points would count the cores' saturation twice.
pub fn residual_contention(points: &[(f64, f64)], x1: f64, x_max: f64) -> (f64, f64) {
    let data: Vec<(f64, f64, f64)> = points
        .iter()
        .filter(|&&(n, x)| n > 1.0 && x > 0.0)
        .map(|&(n, x)| ((n - 1.0), n * (n - 1.0), (n * x1).min(x_max) / x - 1.0))
        .collect();
    if data.is_empty() || !(x1 > 0.0 && x_max > 0.0) {
        return (0.0, 0.0);
    }
    let sse = |s: f64, k: f64| -> f64 {
        data.iter()
            .map(|&(a, b, y)| (y - s * a - k * b).powi(2))
            .sum()
    };
    let (saa, sab, sbb, say, sby) = data
        .iter()
        .fold((0.0, 0.0, 0.0, 0.0, 0.0), |t, &(a, b, y)| {
            (
                t.0 + a * a,
                t.1 + a * b,
                t.2 + b * b,
                t.3 + a * y,
                t.4 + b * y,
            )
        });
    let mut cands = vec![
        (0.0, 0.0),
        ((say / saa).max(0.0), 0.0),
        (0.0, (sby / sbb).max(0.0)),
    ];
    let det = saa * sbb - sab * sab;
    if det.abs() > 1e-12 * saa * sbb {
        let s = (say * sbb - sby * sab) / det;
        let k = (saa * sby - sab * say) / det;
        if s >= 0.0 && k >= 0.0 {
            cands.push((s, k));
        }
    }
    cands
        .into_iter()
        .filter(|c| c.0.is_finite() && c.1.is_finite() && c.0 < 1.0)
        .min_by(|a, b| sse(a.0, a.1).total_cmp(&sse(b.0, b.1)))
        .unwrap_or((0.0, 0.0))
}

/// Everything the model document is built from.
#[derive(Clone, Debug)]
pub struct ModelInputs {
    pub name: String,
    pub provenance: Map<String, Value>,
    pub cores: usize,
    pub rtt_ms: f64,
    /// `(hop_rtt_ms, cpu_per_query_ms)` when PgBouncer was measured: the hop is both
    /// app ↔ PgBouncer and PgBouncer ↔ PostgreSQL; the CPU is concurrency 1's, where every
    /// query wakes PgBouncer's thread up.
    pub bouncer: Option<(f64, f64)>,
    /// What a wake-up of its idle thread costs (`pgbouncer.cpu_per_wakeup`); at concurrency 1
    /// the query and its response each pay one, and the rest is `cpu_per_query`.
    pub bouncer_wakeup: Option<f64>,
    pub client_connect: Option<Value>,
    pub backend_start: Option<Value>,
    pub superuser_reserved_connections: Option<u32>,
    pub txs: Vec<TxMeasured>,
    /// Per transaction (same order), the wait / CPU fractions.
    pub fractions: Vec<Fractions>,
    /// σ, κ for the simulator (see [`residual_contention`]).
    pub contention: (f64, f64),
    /// `network.wakeup`: a round trip's extra delay when the host was idle.
    pub wakeup: Option<Value>,
    /// Per transaction (same order, may be empty): its own `wakeup`.
    pub tx_wakeups: Vec<Value>,
    /// Per transaction (same order, may be empty): its `wakeup_by_idle` points.
    pub tx_wakeup_by_idle: Vec<Value>,
    /// PgBouncer and PostgreSQL were found on the same host (`pgbouncer.on_postgres_host`).
    pub bouncer_on_postgres_host: bool,
    /// The server runs on this (Linux) host, whose kernel keeps a run queue per core
    /// (`postgres.cpu_scheduling: per_core`).
    pub per_core: bool,
    /// `postgres.cross_core_wakeup`, ms: measured on this host when the server runs on it.
    pub cross_core_wakeup: Option<f64>,
    /// The load generator (the app) runs on the database host (`app.on_postgres_host`).
    pub app_on_postgres_host: bool,
    /// `postgres.response_behind_statement`: measured on this host when the server runs on it.
    pub response_behind_statement: Option<f64>,
}

/// The model file document.
pub fn build_model(m: &ModelInputs) -> Value {
    let mut transactions = Vec::new();
    for (i, (t, f)) in m.txs.iter().zip(&m.fractions).enumerate() {
        let mut tx = json!({
            "name": t.name,
            "statements": t.statements,
            "statement_wait": scale_dist(&t.best.dist, f.wait),
            "statement_cpu": scale_dist(&t.best.dist, f.cpu),
        });
        if let Some(w) = m.tx_wakeups.get(i) {
            tx["wakeup"] = w.clone();
        }
        if let Some(g) = m.tx_wakeup_by_idle.get(i).filter(|g| !g.is_null()) {
            tx["wakeup_by_idle"] = g.clone();
        }
        transactions.push(tx);
    }
    let rtt = sig4(m.rtt_ms);
    let mut network = json!({
        "app_postgres_rtt_ms": rtt,
        "bouncer_postgres_rtt_ms": rtt,
        "app_bouncer_rtt_ms": rtt,
    });
    let mut defaults = json!({
        "network": {},
        "workload": {"transactions": transactions},
        "postgres": {
            "cores": m.cores,
            "contention_sigma": sig4(m.contention.0),
            "contention_kappa": sig4(m.contention.1),
        },
    });
    let pg = defaults["postgres"].as_object_mut().expect("object");
    if let Some(b) = &m.backend_start {
        pg.insert("backend_start".into(), b.clone());
    }
    if let Some(s) = m.superuser_reserved_connections {
        pg.insert("superuser_reserved_connections".into(), json!(s));
    }
    if m.per_core {
        pg.insert("cpu_scheduling".into(), json!("per_core"));
        // written out, so that the model says what it assumes of this host's kernel
        let slice = crate::experiment::default_scheduler_slice_ms(m.cores as u32);
        pg.insert("scheduler_slice_ms".into(), json!(slice));
    }
    if let Some(x) = m.cross_core_wakeup.filter(|&x| x > 0.0) {
        pg.insert("cross_core_wakeup".into(), json!({"const_ms": sig4(x)}));
    }
    if let Some(p) = m.response_behind_statement.filter(|&p| p > 0.0) {
        pg.insert("response_behind_statement".into(), json!(sig4(p)));
    }
    let mut bouncer = Map::new();
    if let Some((hop, cpu)) = m.bouncer {
        network["app_bouncer_rtt_ms"] = json!(sig4(hop));
        network["bouncer_postgres_rtt_ms"] = json!(sig4(hop));
        let wake = m.bouncer_wakeup.unwrap_or(0.0).clamp(0.0, cpu / 2.0);
        bouncer.insert(
            "cpu_per_query".into(),
            json!({"const_ms": sig4((cpu - 2.0 * wake).max(MIN_BOUNCER_CPU_MS))}),
        );
        if wake > 0.0 {
            bouncer.insert("cpu_per_wakeup".into(), json!({"const_ms": sig4(wake)}));
        }
    }
    if let Some(c) = &m.client_connect {
        bouncer.insert("client_connect".into(), c.clone());
    }
    if m.bouncer_on_postgres_host {
        bouncer.insert("on_postgres_host".into(), json!(true));
    }
    if !bouncer.is_empty() {
        defaults["pgbouncer"] = Value::Object(bouncer);
    }
    if m.app_on_postgres_host {
        defaults["app"] = json!({"on_postgres_host": true});
    }
    if let Some(w) = &m.wakeup {
        network["wakeup"] = w.clone();
        network["wakeup_after_ms"] = json!(WAKEUP_AFTER.as_secs_f64() * 1000.0);
        network["wakeup_memory_ms"] = json!(SLOW_STATE_MEMORY.as_secs_f64() * 1000.0);
    }
    defaults["network"] = network;
    json!({
        "name": m.name,
        "description": format!(
            "Measured by `poolsim calibrate` on a live cluster ({} core(s) on the load generator's \
             host). Statement times are the workload's own statements at concurrency 1, minus the \
             round trip; their split into wait and CPU time, and the contention σ, κ, come from the \
             throughput ceiling measured against concurrency directly against PostgreSQL, so \
             everything that competed for the CPU on that host during the measurement (the load \
             generator itself, PgBouncer if it shares the host, other work) is inside the fitted \
             ceiling. See `provenance` for the figures and fits.",
            m.cores
        ),
        "provenance": Value::Object(m.provenance.clone()),
        "defaults": defaults,
    })
}

fn fit_json(f: &Fitted) -> Value {
    json!({
        "family": f.dist.family(),
        "dist": f.dist,
        "ks_d": sig4(f.ks_d),
        "ks_p": sig4(f.ks_p),
        "n": f.n,
    })
}

fn usl_json(u: &UslFit, unit: &str) -> Value {
    let pair = |p: (f64, f64)| json!([sig4(p.0), sig4(p.1)]);
    json!({
        "unit": unit,
        "lambda": sig4(u.lambda),
        "lambda_ci95": pair(u.lambda_ci),
        "sigma": sig4(u.sigma),
        "sigma_ci95": pair(u.sigma_ci),
        "kappa": sig4(u.kappa),
        "kappa_ci95": pair(u.kappa_ci),
        "r_squared": sig4(u.r_squared),
        "peak_concurrency": u.peak_concurrency.map(sig4),
        "peak_throughput": if u.peak_throughput.is_finite() { json!(sig4(u.peak_throughput)) } else { json!("unbounded") },
        "points": u.n_points,
    })
}

// ---------------------------------------------------------------------------------------------
// Live parts
// ---------------------------------------------------------------------------------------------

/// A type saturates the cores when its highest concurrency gains less than this factor over
/// 2 × cores.
const SATURATED_GAIN: f64 = 1.25;
/// ... or, on the database's host, when the host's cores were at least this busy at the high
/// concurrency: a low point caught in a slow moment makes the gain look large (run 46: the
/// mixed transaction 26,740 round trips/s at 4 clients, 37,480 at 16, taken as not saturated
/// and charged 0.098 ms of CPU a round trip where every other run measured 0.052–0.063).
const SATURATED_BUSY: f64 = 0.85;

/// Whether a type alone saturated the cores: `x_lo` and `x_hi` its round trips per second at
/// the low and the high concurrency, `busy` the host's busy share of its cores at the high one
/// (when the database runs on this host).
fn saturated_alone(x_lo: f64, x_hi: f64, busy: Option<f64>) -> bool {
    let by_gain = x_lo > 0.0 && x_hi < SATURATED_GAIN * x_lo;
    x_hi > 0.0 && (by_gain || busy.is_some_and(|b| b >= SATURATED_BUSY))
}

/// An OS thread that wakes the calibration task after a pause, as the load generator's arrival
/// clock wakes its workers (and a request from the network wakes an application's): the
/// cross-thread wake-up is part of what a request that finds everything idle pays.
struct Alarm {
    go: std::sync::mpsc::Sender<Duration>,
    rang: tokio::sync::mpsc::UnboundedReceiver<Instant>,
}

impl Alarm {
    fn new() -> Result<Alarm> {
        let (go, go_rx) = std::sync::mpsc::channel::<Duration>();
        let (rang_tx, rang) = tokio::sync::mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("poolsim-calibrate-alarm".into())
            .spawn(move || {
                while let Ok(pause) = go_rx.recv() {
                    let at = Instant::now() + pause;
                    loop {
                        let now = Instant::now();
                        if now >= at {
                            break;
                        }
                        std::thread::sleep(at - now);
                    }
                    if rang_tx.send(at).is_err() {
                        return;
                    }
                }
            })
            .context("spawning the calibration's alarm thread")?;
        Ok(Alarm { go, rang })
    }

    /// Wait `pause`; the instant the alarm was due (latencies run from it, as the load
    /// generator's run from a request's intended arrival).
    async fn after(&mut self, pause: Duration) -> Result<Instant> {
        self.go
            .send(pause)
            .map_err(|_| anyhow!("the calibration's alarm thread stopped"))?;
        self.rang
            .recv()
            .await
            .ok_or_else(|| anyhow!("the calibration's alarm thread stopped"))
    }
}

/// Delay samples (ms) as a model distribution, an empirical table; samples that are all the same
/// give that constant (a host kept busy by other work may show no wake-up at all: every excess
/// is then the 0.001 ms floor).
fn delay_dist(samples: &[f64]) -> std::result::Result<Value, fit::FitError> {
    match fit::fit_empirical(samples) {
        Ok(f) => Ok(scale_dist(&f.dist, 1.0)),
        Err(e) => {
            let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !samples.is_empty() && lo.is_finite() && hi - lo <= 1e-9 * hi.abs().max(1.0) {
                Ok(json!({"const_ms": sig4(lo)}))
            } else {
                Err(e)
            }
        }
    }
}

/// Bounds of the factor that sets a type's service to its latency on the workload's path. Wide:
/// a statement of a few hundredths of a millisecond timed directly carries the direct loop's own
/// noise (the mixed transaction's statements: 0.095 to 0.122 ms from run to run, for a level
/// on the path that needs 0.05), so factors of 0.4 are measured, not errors.
const PATH_SCALE: (f64, f64) = (0.2, 5.0);

/// At concurrency 1, a reference `SELECT 1` after every this many transactions.
const REF_EVERY: usize = 4;
/// A direct reference `SELECT 1` below 1 / this of the same through PgBouncer was measured with
/// the client and its backend on one core: through PgBouncer a round trip makes two more hops
/// and PgBouncer's CPU, at most about twice the direct one (1.4–2.2 × over twenty calibrations
/// here), and a co-located direct pair measured 4.3 ×.
const COLOCATED_RATIO: f64 = 3.0;
/// Fresh direct connections tried for the references before the co-located one is kept.
const COLOCATED_RETRIES: usize = 3;
/// Round trips per run and runs per placement of the cross-core ping-pong (about 2 s on a VM).
const HOP_ROUNDS: usize = 4000;
const HOP_REPS: usize = 5;
/// Rounds of the overlap probe (`live::behind`): a third lone, the rest overlapping pairs.
const BEHIND_ROUNDS: usize = 300;

/// The pause before each "after idle" round trip.
const WAKEUP_PAUSE: Duration = Duration::from_millis(5);
/// Each type's unbroken back-to-back runs: untimed for `STEADY_WARMUP`, then timed for
/// `STEADY_SPAN` (at least `STEADY_MIN` transactions); the trimmed mean of the runs' means is the level
/// of its service. A user without think time runs for seconds without a pause, and a short burst
/// after other work does not reach that state (the mixed transaction: 0.54–0.58 ms a transaction
/// over 100 transactions after 15 untimed, 0.50 ms in bench). The runs are spread over the
/// type's phase (before, between and after the blocks below), so that a passing state sets no
/// level: a 400 ms run of the mixed transaction measured anywhere from 0.39 to 0.59 ms over
/// twelve calibrations, and two of three runs in one caught a fast spell (0.482, 0.416, 0.414 ms,
/// its level 17 % below the 0.496–0.502 ms that one user then measured for 6 s), where bench's
/// single user measured 0.49–0.55 ms in every one of fourteen validation runs. The states
/// alternate within a second (seven runs of one calibration: 0.39 to 0.58 ms), and a user's
/// throughput over seconds is their time average: the level is the mean of seven runs of 700 ms
/// without the fastest and the slowest (a passing disturbance: run 9's one slow run of the scan,
/// 1.465 ms against 1.146).
const STEADY_WARMUP: Duration = Duration::from_millis(300);
const STEADY_SPAN: Duration = Duration::from_millis(700);
const STEADY_MIN: usize = 20;
const STEADY_RUNS: usize = 7;
/// Untimed transactions that start each back-to-back block (it follows a pause).
const HOT_WARMUP: usize = 3;
/// The pauses each type is timed after, ascending, with how many transactions per block (10
/// back to back between): the excess after the reference pause (`WAKEUP_PAUSE`) is the type's own
/// wake-up, the others' against it how the wake-up grows with the idle time (`wakeup_by_idle`).
/// The shortest is `WAKEUP_AFTER`: an idle virtual CPU halts at once (no halt polling), so an
/// open loop's idle spells well below a millisecond pay a wake-up too.
const PAUSES: [(Duration, usize); 6] = [
    (WAKEUP_AFTER, 4),
    (Duration::from_millis(1), 4),
    (Duration::from_millis(2), 4),
    (WAKEUP_PAUSE, 10),
    (Duration::from_millis(20), 3),
    (Duration::from_millis(50), 2),
];
/// At least this many transactions of each type after the reference pause (eight blocks,
/// about 1.8 s of the mixed transaction): the wake-up's tail decides the P95 of an open loop,
/// and 40 samples set it by one or two (run 27's mixed transaction: p95 1.10 ms against a
/// median of 0.34, P95 at 300/s projected +14 … +24 %).
const MIN_AFTER_PAUSE: usize = 80;
/// `PAUSES[REFERENCE]` is `WAKEUP_PAUSE`.
const REFERENCE: usize = 3;
/// How long the host's slow state outlasts the idle spell that set it
/// (`network.wakeup_memory_ms`): traced on the validation host, a CPU-bound scan at 300/s ran in
/// its slow mode in streaks of a median 6 and a mean 9 statements, 20–30 ms, and its slow share
/// did not depend on how long the core had idled just before (VALIDATION.md, "The scan runs at
/// two speeds"). Re-projecting six validation runs, 30 ms brought the scan's P95 at 300/s from
/// −11 … −46 % to −29 … +14 %, where 100 ms pushed the mixed transaction's up to +64 %.
const SLOW_STATE_MEMORY: Duration = Duration::from_millis(30);
/// The idle time from which the model charges a wake-up (`network.wakeup_after_ms`): the
/// shortest pause measured.
const WAKEUP_AFTER: Duration = Duration::from_micros(250);
const _: () = assert!(PAUSES[REFERENCE].0.as_nanos() == WAKEUP_PAUSE.as_nanos());

/// One transaction type timed on one client, its parameters drawn afresh each time.
struct TxTimer<'c> {
    client: &'c Client,
    tx: &'c LiveTx,
    values: Vec<i64>,
    buf: String,
    scratch: Vec<f64>,
}

impl<'c> TxTimer<'c> {
    fn new(client: &'c Client, tx: &'c LiveTx) -> Self {
        TxTimer {
            client,
            tx,
            values: Vec::new(),
            buf: String::new(),
            scratch: Vec::new(),
        }
    }

    /// One transaction, ms: at once, or after `pause` woken by the alarm (timed from when it
    /// rang, as the load generator times from a request's intended arrival).
    async fn time(
        &mut self,
        rng: &mut rand_pcg::Pcg64Mcg,
        alarm: &mut Alarm,
        pause: Option<Duration>,
    ) -> Result<f64> {
        self.tx.draw(rng, &mut self.values);
        self.scratch.clear();
        let t = match pause {
            Some(p) => alarm.after(p).await?,
            None => Instant::now(),
        };
        run_tx(
            self.client,
            self.tx,
            &self.values,
            &mut self.buf,
            &mut self.scratch,
        )
        .await
        .map_err(|m| tx_failed(self.tx, &m))?;
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    }
}

/// Measure and build the model (see the module documentation).
pub fn calibrate(opts: &CalibrateOptions) -> Result<Calibration> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = super::runtime(opts.threads)?;
    // measured from a task on the runtime's workers, as the load generator's users run
    let opts = opts.clone();
    rt.block_on(async move {
        tokio::spawn(async move { calibrate_async(&opts, cores).await })
            .await
            .context("the calibration task failed")?
    })
}

struct Budget {
    start: Instant,
    total: Duration,
    pb: ProgressBar,
}

impl Budget {
    fn share(&self, fraction: f64) -> Duration {
        self.total.mul_f64(fraction)
    }
    fn tick(&self) {
        self.pb
            .set_position(self.start.elapsed().as_millis() as u64);
    }
    fn phase(&self, msg: &'static str) {
        self.pb.set_message(msg);
        self.tick();
    }
}

async fn connect(ep: &Endpoint, what: &str) -> Result<Client> {
    match ep.connect().await {
        Ok(c) => Ok(c.client),
        Err(e) => bail!("cannot connect to {what} at {}: {}", ep.shown, e.message),
    }
}

async fn timed(client: &Client, sql: &str) -> Result<f64, tokio_postgres::Error> {
    let t = Instant::now();
    client.batch_execute(sql).await?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

async fn rows(client: &Client, sql: &str) -> Result<Vec<Map<String, Value>>> {
    let msgs = client
        .simple_query(sql)
        .await
        .map_err(|e| anyhow!("`{sql}`: {}", error_text(&e)))?;
    let mut out = Vec::new();
    for m in msgs {
        if let SimpleQueryMessage::Row(r) = m {
            let mut row = Map::new();
            for (i, c) in r.columns().iter().enumerate() {
                row.insert(c.name().to_string(), json!(r.get(i).unwrap_or("")));
            }
            out.push(row);
        }
    }
    Ok(out)
}

fn first(rows: &[Map<String, Value>], col: &str) -> Option<String> {
    rows.first()?.get(col)?.as_str().map(str::to_string)
}

/// The pid of `client`'s backend.
async fn backend_pid_of(client: &Client) -> Option<u32> {
    rows(client, "SELECT pg_backend_pid()::text AS pid")
        .await
        .ok()
        .and_then(|r| first(&r, "pid"))
        .and_then(|p| p.parse().ok())
}

/// One reference `SELECT 1` on `direct`, then one on `via` (PgBouncer) when given; ms.
async fn select1_pair(direct: &Client, via: Option<&Client>) -> Result<(f64, Option<f64>)> {
    let one = timed(direct, "SELECT 1")
        .await
        .map_err(|e| anyhow!("SELECT 1: {}", error_text(&e)))?;
    let through = match via {
        Some(c) => Some(
            timed(c, "SELECT 1")
                .await
                .map_err(|e| anyhow!("SELECT 1 through PgBouncer: {}", error_text(&e)))?,
        ),
        None => None,
    };
    Ok((one, through))
}

/// `SELECT 1` `n` times (or until `limit`) on `direct`, alternating with `other` when given;
/// latencies in ms.
async fn select1(
    direct: &Client,
    other: Option<&Client>,
    n: usize,
    limit: Duration,
    b: &Budget,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let end = Instant::now() + limit;
    let mut v = Vec::with_capacity(n);
    let mut w = Vec::with_capacity(n);
    while v.len() < n && (v.len() < 20 || Instant::now() < end) {
        let (one, through) = select1_pair(direct, other).await?;
        v.push(one);
        w.extend(through);
        if v.len().is_multiple_of(50) {
            b.tick();
        }
    }
    Ok((v, w))
}

/// Inodes of the TCP sockets listening on `port` on this host.
fn listening_inodes(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if f.get(3) == Some(&"0A") && local_port == Some(port) {
                if let Some(inode) = f.get(9) {
                    out.push(inode.to_string());
                }
            }
        }
    }
    out
}

/// Whether process `pid` holds one of the socket `inodes`.
fn holds_socket(pid: u32, inodes: &[String]) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|l| {
            let l = l.to_string_lossy();
            inodes.iter().any(|i| l == format!("socket:[{i}]"))
        })
    })
}

/// The local PgBouncer process listening on `port`: the one that holds the listening socket,
/// or the only PgBouncer on this host when that cannot be told.
fn local_pgbouncer(port: u16) -> Option<u32> {
    let found = pgbouncer_pids()?;
    let inodes = listening_inodes(port);
    if let Some(&pid) = found.iter().find(|&&pid| holds_socket(pid, &inodes)) {
        return Some(pid);
    }
    (found.len() == 1).then(|| found[0])
}

fn pgbouncer_pids() -> Option<Vec<u32>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.trim() == "pgbouncer")
        {
            found.push(pid);
        }
    }
    Some(found)
}

/// Busy time of all the host's cores (everything but idle, iowait and steal), in seconds.
fn host_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice (guest time is in user)
    let busy = f.get(..7)?.iter().sum::<f64>() - f[3] - f[4];
    Some(busy / CLK_TCK)
}

/// This process's own utime + stime, in seconds.
fn own_cpu_seconds() -> Option<f64> {
    cpu_seconds(std::process::id())
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // after the command: field 3 (state) is f[0]; utime is field 14, stime field 15
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / CLK_TCK)
}

fn i_tx(all: &[TxMeasured], m: &TxMeasured) -> usize {
    all.iter()
        .position(|x| std::ptr::eq(x, m))
        .unwrap_or(usize::MAX)
}

fn is_loopback(ep: &Endpoint) -> bool {
    ep.config.get_hosts().iter().all(|h| match h {
        tokio_postgres::config::Host::Tcp(s) => {
            s == "localhost" || s.starts_with("127.") || s == "::1"
        }
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => true,
    })
}

async fn total_queries(admin: &Client) -> Option<f64> {
    let r = rows(admin, "SHOW STATS").await.ok()?;
    Some(
        r.iter()
            .filter_map(|row| row.get("total_query_count")?.as_str()?.parse::<f64>().ok())
            .sum(),
    )
}

/// Run one transaction; per-statement latencies (ms) of the SQL statements.
async fn run_tx(
    client: &Client,
    tx: &LiveTx,
    values: &[i64],
    buf: &mut String,
    out: &mut Vec<f64>,
) -> Result<(), String> {
    let err = |e: tokio_postgres::Error| error_text(&e);
    if tx.block {
        out.push(timed(client, "BEGIN").await.map_err(err)?);
    }
    for st in &tx.statements {
        buf.clear();
        st.render(values, buf);
        match timed(client, buf).await {
            Ok(ms) => out.push(ms),
            Err(e) => {
                if tx.block {
                    let _ = client.batch_execute("ROLLBACK").await;
                }
                return Err(err(e));
            }
        }
    }
    if tx.block {
        out.push(timed(client, "COMMIT").await.map_err(err)?);
    }
    Ok(())
}

/// PgBouncer's CPU time (`/proc`) and query count (`SHOW STATS`, when the admin console answers)
/// at the start of a measurement.
struct BouncerMeter {
    pid: u32,
    cpu_s: Option<f64>,
    queries: Option<f64>,
}

impl BouncerMeter {
    async fn start(pid: u32, admin: Option<&Client>) -> BouncerMeter {
        let queries = match admin {
            Some(a) => total_queries(a).await,
            None => None,
        };
        BouncerMeter {
            pid,
            cpu_s: cpu_seconds(pid),
            queries,
        }
    }

    /// `(CPU seconds, queries)` since the start, `n` queries sent: the queries are SHOW STATS'
    /// count when it covers them, else `n`. `None` without a `/proc` reading.
    async fn stop(&self, admin: Option<&Client>, n: f64) -> Option<(f64, f64)> {
        let cpu = cpu_seconds(self.pid);
        let q1 = match admin {
            Some(a) => total_queries(a).await,
            None => None,
        };
        let queries = match (self.queries, q1) {
            (Some(a), Some(b)) if b - a >= n => b - a,
            _ => n,
        };
        Some((cpu? - self.cpu_s?, queries))
    }
}

/// PgBouncer's CPU per query (ms) with `clients` connections through it running `SELECT 1` back
/// to back for `dur`, and the queries counted; `None` when `/proc` gives no reading.
async fn bouncer_cpu_under_load(
    ep: &Endpoint,
    pid: u32,
    admin: Option<&Client>,
    clients: usize,
    dur: Duration,
) -> Result<Option<(f64, f64)>> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(connect(ep, "PgBouncer").await?);
    }
    let meter = BouncerMeter::start(pid, admin).await;
    let end = Instant::now() + dur.max(Duration::from_millis(300));
    let mut tasks = Vec::with_capacity(clients);
    for c in conns {
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                if c.batch_execute("SELECT 1").await.is_err() {
                    break;
                }
                n += 1;
            }
            n
        }));
    }
    let mut n = 0u64;
    for t in tasks {
        n += t.await.unwrap_or(0);
    }
    Ok(match meter.stop(admin, n as f64).await {
        Some((cpu_s, queries)) if cpu_s > 0.0 && n > 0 => Some((cpu_s * 1000.0 / queries, queries)),
        _ => None,
    })
}

fn tx_failed(tx: &LiveTx, msg: &str) -> anyhow::Error {
    anyhow!("transaction `{}` of the workload failed: {msg}", tx.name)
}

async fn connect_costs(
    ep: &Endpoint,
    what: &str,
    n: usize,
    limit: Duration,
    rtt_ms: f64,
) -> Result<Vec<f64>> {
    let end = Instant::now() + limit;
    let mut v = Vec::new();
    while v.len() < n && (v.len() < 5 || Instant::now() < end) {
        let t = Instant::now();
        let c = connect(ep, what).await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        drop(c);
        v.push((ms - 2.0 * rtt_ms).max(0.001));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(v)
}

fn lognormal_of(samples: &[f64]) -> Value {
    let med = sig4(median(samples));
    let p95 = sig4(quantile(samples, 0.95)).max(sig4(med * 1.05));
    json!({"lognormal": {"median_ms": med, "p95_ms": p95}})
}

/// One closed-loop level: `clients` connections running the mix for `dur` after `warm`.
async fn run_level(
    clients: &[Arc<Client>],
    txs: &Arc<Vec<LiveTx>>,
    cum_weights: &Arc<Vec<f64>>,
    warm: Duration,
    dur: Duration,
    seed: u64,
) -> Result<Vec<LevelPoint>> {
    let t0 = Instant::now() + warm;
    let end = t0 + dur;
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        let c = c.clone();
        let txs = txs.clone();
        let cw = cum_weights.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed ^ (i as u64 * 0x9E37_79B9));
            let mut values = Vec::new();
            let mut buf = String::new();
            let mut lat = Vec::new();
            // (completion offset from t0 in s, statements, statement latency sum ms)
            let mut done: Vec<(f64, usize, f64)> = Vec::new();
            let total = *cw.last().unwrap_or(&1.0);
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let u = rng.random::<f64>() * total;
                let k = cw.iter().position(|&w| u < w).unwrap_or(cw.len() - 1);
                let tx = &txs[k];
                tx.draw(&mut rng, &mut values);
                lat.clear();
                if let Err(m) = run_tx(&c, tx, &values, &mut buf, &mut lat).await {
                    return Err(tx_failed(tx, &m));
                }
                let fin = Instant::now();
                if fin >= t0 && fin <= end {
                    done.push(((fin - t0).as_secs_f64(), lat.len(), lat.iter().sum::<f64>()));
                }
            }
            Ok(done)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| anyhow!("load task: {e}"))??);
    }
    // two windows per level: two points for the fit
    let half = dur.as_secs_f64() / 2.0;
    let mut out = Vec::new();
    for w in 0..2 {
        let lo = half * w as f64;
        let hi = lo + half;
        let sel: Vec<&(f64, usize, f64)> = all.iter().filter(|d| d.0 >= lo && d.0 < hi).collect();
        let stmts: usize = sel.iter().map(|d| d.1).sum();
        let lat: f64 = sel.iter().map(|d| d.2).sum();
        if stmts == 0 {
            continue;
        }
        out.push(LevelPoint {
            clients: clients.len(),
            statements_per_s: stmts as f64 / half,
            transactions_per_s: sel.len() as f64 / half,
            statement_latency_ms: lat / stmts as f64,
        });
    }
    Ok(out)
}

async fn calibrate_async(opts: &CalibrateOptions, cores: usize) -> Result<Calibration> {
    let pb = if opts.progress {
        let pb = ProgressBar::with_draw_target(
            Some(opts.budget.as_millis() as u64),
            ProgressDrawTarget::stderr(),
        );
        pb.set_style(
            ProgressStyle::with_template("{spinner} calibrating [{bar:30}] {elapsed} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let b = Budget {
        start: Instant::now(),
        total: opts.budget,
        pb,
    };
    let r = measure(opts, cores, &b).await;
    b.pb.finish_and_clear();
    // let the connection tasks send their Terminate messages
    tokio::time::sleep(Duration::from_millis(100)).await;
    r
}

/// The workload experiment (with its overrides) and its transaction types, compiled.
fn workload_of(opts: &CalibrateOptions) -> Result<(ExperimentFile, Vec<LiveTx>)> {
    // the workload's own model (often the one being calibrated) is not needed to measure it
    let mut sets = opts.workload_set.clone();
    sets.push(("model".to_string(), Value::Null));
    let loaded = load_experiment(&opts.workload, &sets)?;
    let (file, problems) = parse_file(&loaded.doc);
    if let Some(p) = problems.first() {
        return Err(crate::experiment::Invalid(problems.clone()))
            .with_context(|| format!("{}: {p}", opts.workload.display()));
    }
    let txs = compile(&file).map_err(crate::experiment::Invalid)?;
    if txs.is_empty() {
        bail!(
            "{}: the workload has no transactions to measure",
            opts.workload.display()
        );
    }
    Ok((file, txs))
}

/// Unbroken back-to-back runs a level is measured again with ([`levels_again`]).
const AGAIN_RUNS: usize = 3;

/// Each transaction type's level measured again, as calibration measures it — the trimmed mean
/// of unbroken back-to-back runs on the workload's path (through PgBouncer when there is one),
/// here three of them, a few seconds a type: (type, ms a transaction). `validate` takes
/// it right after a workload's points, to see whether the host still runs the workload as fast
/// as at its calibration.
pub fn levels_again(opts: &CalibrateOptions) -> Result<Vec<(String, f64)>> {
    let rt = super::runtime(opts.threads)?;
    let opts = opts.clone();
    rt.block_on(async move {
        tokio::spawn(async move {
            let (_, txs) = workload_of(&opts)?;
            let ep = match &opts.bouncer {
                Some(u) => Endpoint::parse("--bouncer", u, APPLICATION_NAME),
                None => Endpoint::parse("--pg", &opts.pg, APPLICATION_NAME),
            }
            .map_err(|m| anyhow!(m))?;
            let client = connect(
                &ep,
                if opts.bouncer.is_some() {
                    "PgBouncer"
                } else {
                    "PostgreSQL"
                },
            )
            .await?;
            let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0x0041_4741_494e);
            let mut alarm = Alarm::new()?;
            let mut out = Vec::with_capacity(txs.len());
            for tx in &txs {
                let mut timer = TxTimer::new(&client, tx);
                let mut means = Vec::with_capacity(AGAIN_RUNS);
                for _ in 0..AGAIN_RUNS {
                    means.push(steady_run(&mut timer, &mut rng, &mut alarm).await?.0);
                }
                out.push((tx.name.clone(), trimmed_mean(&means)));
            }
            drop(client);
            // let the connection task send its Terminate message
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(out)
        })
        .await
        .context("the measurement task failed")?
    })
}

async fn measure(opts: &CalibrateOptions, cores: usize, b: &Budget) -> Result<Calibration> {
    // --- the workload
    let (file, txs) = workload_of(opts)?;
    let weights: Vec<f64> = file
        .workload
        .as_ref()
        .map(|w| {
            w.transactions
                .iter()
                .map(|t| t.weight.unwrap_or(1.0).max(0.0))
                .collect()
        })
        .unwrap_or_default();

    let pg = Endpoint::parse("--pg", &opts.pg, APPLICATION_NAME).map_err(|m| anyhow!(m))?;
    let bouncer = match &opts.bouncer {
        Some(u) => Some(Endpoint::parse("--bouncer", u, APPLICATION_NAME).map_err(|m| anyhow!(m))?),
        None => None,
    };
    let admin_ep = match (&opts.bouncer_admin, &bouncer) {
        (Some(u), _) => {
            Some(Endpoint::parse("--bouncer-admin", u, APPLICATION_NAME).map_err(|m| anyhow!(m))?)
        }
        (None, Some(bep)) => Some(bep.with_dbname("pgbouncer", APPLICATION_NAME)),
        _ => None,
    };

    // --- 1. provenance
    b.phase("provenance");
    let direct = connect(&pg, "PostgreSQL").await?;
    // the host's speed while the calibration measures (see `speed`)
    let prober = speed::Prober::new();
    let mut host_probes = vec![prober.probe()];
    let mut prov = Map::new();
    prov.insert(
        "method".into(),
        json!(
            "poolsim calibrate: SELECT 1 round trips direct and through PgBouncer; the workload's \
               transactions at concurrency 1, direct, each statement timed, minus the round trip, \
               fitted by maximum likelihood (lognormal, gamma, exponential; empirical table when \
               none passes KS at 1 %); closed-loop throughput of the workload mix against \
               concurrency, direct, fitted to the USL; wait/CPU split per transaction type from its \
               backend's CPU time (/proc, when the server is on this host) plus the CPU the \
               throughput ceiling implies beyond the backends'; \
               new connections timed minus two round trips"
        ),
    );
    prov.insert("command".into(), json!(opts.command));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    prov.insert("date".into(), json!(utc_timestamp(now)));
    prov.insert(
        "workload".into(),
        json!(opts.workload.display().to_string()),
    );
    if !opts.workload_set.is_empty() {
        // the paths only: the values are the experiment's (the transactions measured are
        // under `transactions`)
        prov.insert(
            "workload_set".into(),
            json!(opts
                .workload_set
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()),
        );
    }
    prov.insert("postgres_url".into(), json!(pg.shown));
    let mut pg_settings = Map::new();
    for s in [
        "server_version",
        "max_connections",
        "superuser_reserved_connections",
        "shared_buffers",
    ] {
        let r = rows(&direct, &format!("SHOW {s}")).await?;
        pg_settings.insert(s.into(), json!(first(&r, s).unwrap_or_default()));
    }
    let superuser_reserved = pg_settings
        .get("superuser_reserved_connections")
        .and_then(|v| v.as_str()?.parse().ok());
    prov.insert("postgres".into(), Value::Object(pg_settings.clone()));
    prov.insert("runtime_threads".into(), json!(opts.threads.max(1)));
    prov.insert(
        "cores".into(),
        json!({
            "count": cores,
            "note": "CPUs available to the load generator's process on its host (std::thread::available_parallelism); with the servers on loopback, also the servers' host",
        }),
    );
    let mut admin: Option<Client> = None;
    if let Some(aep) = &admin_ep {
        match aep.connect().await {
            Ok(c) => {
                let mut bp = Map::new();
                let v = rows(&c.client, "SHOW VERSION").await.unwrap_or_default();
                let version = v
                    .first()
                    .and_then(|r| r.values().next())
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string();
                bp.insert("version".into(), json!(version));
                let cfg = rows(&c.client, "SHOW CONFIG").await.unwrap_or_default();
                for key in ["pool_mode", "default_pool_size", "max_client_conn"] {
                    if let Some(r) = cfg
                        .iter()
                        .find(|r| r.get("key").and_then(|k| k.as_str()) == Some(key))
                    {
                        bp.insert(key.into(), r.get("value").cloned().unwrap_or(Value::Null));
                    }
                }
                bp.insert("admin_url".into(), json!(aep.shown));
                prov.insert("pgbouncer".into(), Value::Object(bp));
                admin = Some(c.client);
            }
            Err(e) => {
                prov.insert(
                    "pgbouncer_admin".into(),
                    json!(format!("not reachable at {}: {}", aep.shown, e.message)),
                );
            }
        }
    }

    // --- 2. round trips
    b.phase("round trips");
    let bc = match &bouncer {
        Some(bep) => Some(connect(bep, "PgBouncer").await?),
        None => None,
    };
    // direct and through PgBouncer interleaved, so that both see the same conditions
    let (mut direct_rtts, via) = select1(&direct, bc.as_ref(), 400, b.share(0.05), b).await?;
    // with the server on this host, its backends' own CPU time, from /proc
    let backend_pid: Option<u32> = if is_loopback(&pg) {
        backend_pid_of(&direct)
            .await
            .filter(|pid| cpu_seconds(*pid).is_some())
    } else {
        None
    };
    // back to back, as a busy application issues them: the round trip the model charges, and
    // the backend CPU of a trivial statement
    b.phase("round trips");
    let cpu0 = backend_pid.and_then(cpu_seconds);
    let (own0, host0) = (own_cpu_seconds(), host_busy_seconds());
    let (hot, _) = select1(&direct, None, 3000, b.share(0.04), b).await?;
    // CPU ms per round trip between two readings of a CPU clock (s) over `n` round trips
    let per_rt = |a: Option<f64>, z: Option<f64>, n: usize| match (a, z) {
        (Some(a), Some(z)) => Some((z - a).max(0.0) * 1000.0 / n.max(1) as f64),
        _ => None,
    };
    let own_direct = per_rt(own0, own_cpu_seconds(), hot.len());
    let host_direct = per_rt(host0, host_busy_seconds(), hot.len());
    let hot_rtt = median(&hot);
    let trivial_cpu = per_rt(cpu0, backend_pid.and_then(cpu_seconds), hot.len());
    let mut hot_via = Vec::new();
    let (mut own_via, mut host_via) = (None, None);
    let mut summary = String::new();
    let mut bouncer_split = None;
    // PgBouncer's CPU per wake-up of its idle thread (concurrency 1's CPU per query less a busy
    // thread's)
    let mut bouncer_wakeup: Option<f64> = None;
    // PgBouncer runs on this host, and so does PostgreSQL: they share the cores
    let mut bouncer_local = false;
    let mut bouncer_client: Option<Client> = None;
    let mut m_bouncer = Value::Null;
    let rtt_phase2 = median(&direct_rtts);
    if let (Some(bep), Some(bc)) = (&bouncer, bc) {
        let rtt = rtt_phase2;
        let via_med = median(&via);
        let (hop, added_cpu) = split_bouncer_latency(rtt, via_med);
        let mut cpu = added_cpu;
        let mut cpu_method =
            "PgBouncer's added latency: median of SELECT 1 through it minus the direct median"
                .to_string();
        let mut proc_figure = Value::Null;
        if is_loopback(bep) {
            let port = bep.config.get_ports().first().copied().unwrap_or(5432);
            if let Some(pid) = local_pgbouncer(port) {
                bouncer_local = is_loopback(&pg);
                b.phase("PgBouncer CPU");
                let meter = BouncerMeter::start(pid, admin.as_ref()).await;
                let (own0, host0) = (own_cpu_seconds(), host_busy_seconds());
                let end = Instant::now() + b.share(0.07);
                let mut n = 0usize;
                while n < 3000 || (Instant::now() < end && n < 50_000) {
                    hot_via.push(
                        timed(&bc, "SELECT 1").await.map_err(|e| {
                            anyhow!("SELECT 1 through PgBouncer: {}", error_text(&e))
                        })?,
                    );
                    n += 1;
                    if n.is_multiple_of(200) {
                        b.tick();
                        if Instant::now() >= end && n >= 3000 {
                            break;
                        }
                    }
                }
                own_via = per_rt(own0, own_cpu_seconds(), n);
                host_via = per_rt(host0, host_busy_seconds(), n);
                if let Some((cpu_s, queries)) = meter.stop(admin.as_ref(), n as f64).await {
                    let ms = cpu_s * 1000.0 / queries;
                    proc_figure = json!({
                        "pid": pid, "cpu_s": sig4(cpu_s), "queries": queries,
                        "ms_per_query": sig4(ms),
                        "resolution_ms_per_query": sig4(1000.0 / CLK_TCK / queries),
                    });
                    if cpu_s > 0.0 {
                        cpu = ms.max(MIN_BOUNCER_CPU_MS);
                        cpu_method = format!(
                            "CPU time of the local PgBouncer process (pid {pid}, /proc utime+stime at {CLK_TCK} ticks/s) over {queries} queries (SHOW STATS count when available)"
                        );
                    }
                }
                // busy, PgBouncer serves several clients' messages per wake-up and spends less
                // per query: what its share of the cores is charged under load (its latency at
                // concurrency 1 is in the hops, which take the rest of the measured round trip)
                b.phase("PgBouncer CPU under load");
                let clients = (4 * cores).max(8);
                let loaded =
                    bouncer_cpu_under_load(bep, pid, admin.as_ref(), clients, b.share(0.03))
                        .await?;
                if let Some((ms, queries)) = loaded {
                    proc_figure["under_load"] = json!({
                        "clients": clients, "queries": queries, "ms_per_query": sig4(ms),
                    });
                    if ms < cpu {
                        // per query under load; the rest of concurrency 1's figure is two
                        // wake-ups of an idle thread (the query's and its response's)
                        bouncer_wakeup = Some((cpu - ms.max(MIN_BOUNCER_CPU_MS)) / 2.0);
                        cpu_method = format!(
                            "CPU time of the local PgBouncer process (pid {pid}, /proc utime+stime at {CLK_TCK} ticks/s): per query, over {queries} queries from {clients} clients back to back (a busy thread); per wake-up, half of what concurrency 1 (where the query and its response each wake it) spends beyond that"
                        );
                    }
                }
            }
        }
        if hot_via.is_empty() {
            let (h, _) = select1(&bc, None, 3000, b.share(0.04), b).await?;
            hot_via = h;
        }
        bouncer_split = Some((hop, cpu));
        m_bouncer = json!({
            "select1_back_to_back_median_ms": sig4(median(&hot_via)),
            "select1_back_to_back_samples": hot_via.len(),
            "select1_median_ms": sig4(via_med),
            "select1_samples": via.len(),
            "added_latency_ms": sig4(via_med - rtt),
            "cpu_per_query_ms": sig4(cpu),
            "cpu_per_query_method": cpu_method,
            "proc": proc_figure,
        });
        bouncer_client = Some(bc);
    }
    // idle CPUs sleep: a round trip after a pause (as the workload's own path: through
    // PgBouncer when there is one) pays their wake-up beyond the back-to-back round trip
    b.phase("round trips after a pause");
    let (cold_on, hot_ref) = match &bouncer_client {
        Some(c) => (c, median(&hot_via)),
        None => (&direct, hot_rtt),
    };
    let mut wake = Vec::new();
    let end = Instant::now() + b.share(0.03);
    while wake.len() < 300 && (wake.len() < 50 || Instant::now() < end) {
        tokio::time::sleep(WAKEUP_PAUSE).await;
        let ms = timed(cold_on, "SELECT 1")
            .await
            .map_err(|e| anyhow!("SELECT 1 after a pause: {}", error_text(&e)))?;
        wake.push((ms - hot_ref).max(0.001));
        if wake.len().is_multiple_of(50) {
            b.tick();
        }
    }
    let (wake, wake_transients) = without_transients(&wake);
    let wakeup = delay_dist(&wake).map_err(|e| anyhow!("fitting the wake-up delays: {e}"))?;
    prov.insert(
        "wakeup".into(),
        json!({
            "samples": wake.len(),
            "transients_left_out_ms": wake_transients.iter().map(|&x| sig4(x)).collect::<Vec<_>>(),
            "median_ms": sig4(median(&wake)),
            "p95_ms": sig4(quantile(&wake, 0.95)),
            "pause_ms": WAKEUP_PAUSE.as_millis() as u64,
            "method": "SELECT 1 after a pause, minus the back-to-back median of the same path; the model applies it to a request that finds the database host's CPUs idle for network.wakeup_after_ms",
        }),
    );
    // --- 2c. the wake-up of an idle core by another: only for a server on this host, whose
    // processes wake each other across its cores
    let hop = if backend_pid.is_some() {
        tokio::task::spawn_blocking(|| hop::measure(HOP_ROUNDS, HOP_REPS))
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    b.tick();
    if backend_pid.is_some() {
        prov.insert(
            "scheduler_slice".into(),
            json!({
                "ms": crate::experiment::default_scheduler_slice_ms(cores as u32),
                "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
                "method": "not measured: Linux's default base slice for this many cores, 0.75 ms × (1 + log2 min(cores, 8)); the longest a thread woken while every core runs a statement waits for one of them",
            }),
        );
    }
    if let Some(h) = &hop {
        prov.insert(
            "cross_core_wakeup".into(),
            json!({
                "same_core_hop_us": sig4(h.same_core_us),
                "cross_core_hop_us": sig4(h.cross_core_us),
                "round_trips": h.round_trips,
                "method": "two threads ping-pong one byte over a socket pair, pinned to one core and then to two (medians of alternating runs); the difference per one-way hop is the latency of work that lands on an idle core while another runs, applied to statements and to PgBouncer's woken thread on the database host",
            }),
        );
    }
    // --- 2d. responses that wait behind a running statement: only for a server on this host,
    // where the load generator's and PgBouncer's threads share the cores with the backends
    let behind = if backend_pid.is_some() {
        b.phase("responses behind a running statement");
        let ep = bouncer.as_ref().unwrap_or(&pg).clone();
        tokio::task::spawn_blocking(move || behind::measure(&ep, BEHIND_ROUNDS))
            .await
            .map_err(|e| anyhow!("the overlap probe: {e}"))?
            .map_err(|e| anyhow!("{e}"))?
    } else {
        None
    };
    b.tick();
    if let Some(x) = &behind {
        prov.insert(
            "response_behind_statement".into(),
            json!({
                "path": if bouncer.is_some() { "through PgBouncer" } else { "direct" },
                "statement": format!("SELECT count(*) FROM generate_series(1, {})", x.rows),
                "lone_rounds": x.solo,
                "lone_median_ms": sig4(x.solo_median_ms),
                "overlapping_pairs": x.pairs,
                "first_response_held": x.held,
                "held_by_the_lone_spread": sig4(x.expected_by_spread),
                "probability": sig4(x.probability),
                "pause_ms": behind::PAUSE.as_millis() as u64,
                "method": "two connections on the workload's path run a CPU-bound statement of about a millisecond after a pause; in two rounds of three the second starts while the first runs. A first response that ends nearer to the second's end than to the lone median counts as held behind the second statement; the share held, less what the lone rounds' spread alone explains, is the probability that a response to an app on this host waits for a running statement to end",
            }),
        );
    }
    // --- 3. per transaction type at concurrency 1, every REF_EVERY-th transaction followed by a
    // SELECT 1 (the round trip subtracted is measured under the same conditions)
    let mut raw = Vec::new();
    let mut backend_cpu: Vec<Option<f64>> = Vec::new();
    // the trivial round trips measured in the same loop as the statements, direct and through
    // PgBouncer: the reference the statements' excess is taken against (the machine's state
    // drifts between phases; within one loop it is shared)
    let mut after_tx = Vec::new();
    let mut via_after_tx = Vec::new();
    let share = b.share(0.2).div_f64(txs.len() as f64);
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
    for tx in &txs {
        let cpu0 = backend_pid.and_then(cpu_seconds);
        b.phase("transactions at concurrency 1");
        host_probes.push(prober.probe());
        let end = Instant::now() + share;
        let mut lat = Vec::new();
        let mut values = Vec::new();
        let mut buf = String::new();
        let (mut n, mut refs) = (0usize, 0usize);
        while n < 500 && (n < 32 || Instant::now() < end) {
            tx.draw(&mut rng, &mut values);
            run_tx(&direct, tx, &values, &mut buf, &mut lat)
                .await
                .map_err(|m| tx_failed(tx, &m))?;
            n += 1;
            // the references after every REF_EVERY-th transaction: the others follow a
            // transaction on the same connection, as a busy application's do
            if n.is_multiple_of(REF_EVERY) {
                refs += 1;
                let (one, through) = select1_pair(&direct, bouncer_client.as_ref()).await?;
                direct_rtts.push(one);
                after_tx.push(one);
                via_after_tx.extend(through);
            }
            if n.is_multiple_of(20) {
                b.tick();
            }
        }
        // backend CPU ms per round trip, without the reference SELECT 1s
        backend_cpu.push(match (cpu0, backend_pid.and_then(cpu_seconds)) {
            (Some(a), Some(z)) => {
                let statements =
                    (z - a).max(0.0) * 1000.0 - refs as f64 * trivial_cpu.unwrap_or(0.0);
                let trips = tx.round_trips().max(1) as f64;
                Some(statements.max(0.0) / n.max(1) as f64 / trips)
            }
            _ => None,
        });
        raw.push(lat);
    }
    // A direct reference far below the path's means the direct connection's backend shares a
    // core with this client (a ping-pong the kernel keeps on one core: 0.015 ms where 0.06–0.09
    // is usual), a state the workload through PgBouncer's three processes never runs in; its
    // backend keeps that placement for minutes. The references are then taken again on fresh
    // connections, whose backends start elsewhere.
    let mut reopened = 0usize;
    let mut held_apart = false;
    if let Some(bc) = &bouncer_client {
        let mut tries = 0;
        while tries < COLOCATED_RETRIES && colocated(&after_tx, &via_after_tx) {
            tries += 1;
            b.phase("round trips on a fresh connection");
            let fresh = connect(&pg, "PostgreSQL").await?;
            let (a, v) = references(&fresh, bc, &txs, &mut rng, b.share(0.02)).await?;
            if !a.is_empty() {
                reopened = tries;
                after_tx = a;
                via_after_tx = v;
            }
        }
        // still on one core (run 32: on three fresh connections): a fresh backend held on the
        // other cores, this process on one, while the references are taken — the placement the
        // kernel gives them in the ordinary state; the backend ends with its connection
        if colocated(&after_tx, &via_after_tx) && backend_pid.is_some() {
            b.phase("round trips, client and backend apart");
            let fresh = connect(&pg, "PostgreSQL").await?;
            if let Some(apart) = backend_pid_of(&fresh).await.and_then(hop::Apart::new) {
                let (a, v) = references(&fresh, bc, &txs, &mut rng, b.share(0.02)).await?;
                drop(apart);
                if !a.is_empty() {
                    held_apart = true;
                    after_tx = a;
                    via_after_tx = v;
                }
            }
        }
    }
    let colocated_reference = bouncer_client.is_some() && colocated(&after_tx, &via_after_tx);
    // --- 3b. each type after a pause, on the workload's own path (through PgBouncer when there
    // is one): what a transaction that finds the host idle pays beyond the same transaction back
    // to back. A long statement pays more than a trivial round trip's wake-up (its CPU starts
    // with cold caches), so each type gets its own.
    b.phase("transactions after a pause");
    host_probes.push(prober.probe());
    let path = bouncer_client.as_ref().unwrap_or(&direct);
    let path_name = if bouncer_client.is_some() {
        "through PgBouncer"
    } else {
        "direct"
    };
    let share = b.share(0.1).div_f64(txs.len() as f64);
    let mut cold_prov = Vec::new();
    let mut tx_wakeups = Vec::new();
    let mut tx_wakeup_by_idle = Vec::new();
    let mut hot_means: Vec<f64> = Vec::new();
    // the latencies of the unbroken runs the level keeps, per type (their P95 sets the spread)
    let mut hot_lats: Vec<Vec<f64>> = Vec::new();
    // per type, whether its transactions after the reference pause ran at two speeds, and
    // how many were timed
    let mut cold_speeds: Vec<(Option<fit::TwoSpeeds>, usize)> = Vec::new();
    let mut alarm = Alarm::new()?;
    for tx in &txs {
        let end = Instant::now() + share;
        let mut timer = TxTimer::new(path, tx);
        // the level: unbroken runs back to back, as a user without think time runs (the
        // back-to-back blocks below follow pauses, and their first transactions start cold)
        let mut steady = Vec::with_capacity(STEADY_RUNS);
        steady.push(steady_run(&mut timer, &mut rng, &mut alarm).await?);
        // alternating blocks, so that all see the same conditions: back to back (its first
        // transactions follow a pause, and run untimed), then after each pause
        let mut hot_tx = Vec::new();
        let mut after: [Vec<f64>; PAUSES.len()] = Default::default();
        while after[REFERENCE].len() < 300
            && (after[REFERENCE].len() < MIN_AFTER_PAUSE || Instant::now() < end)
        {
            // one run between blocks, three kept for the end
            if !hot_tx.is_empty() && steady.len() + 3 < STEADY_RUNS {
                steady.push(steady_run(&mut timer, &mut rng, &mut alarm).await?);
            }
            for k in 0..HOT_WARMUP + 10 {
                let ms = timer.time(&mut rng, &mut alarm, None).await?;
                if k >= HOT_WARMUP {
                    hot_tx.push(ms);
                }
            }
            for (samples, &(pause, n)) in after.iter_mut().zip(&PAUSES) {
                for _ in 0..n {
                    samples.push(timer.time(&mut rng, &mut alarm, Some(pause)).await?);
                }
            }
            b.tick();
        }
        while steady.len() < STEADY_RUNS {
            steady.push(steady_run(&mut timer, &mut rng, &mut alarm).await?);
        }
        let steady_means: Vec<f64> = steady.iter().map(|s| s.0).collect();
        let level = trimmed_mean(&steady_means);
        hot_lats.push(kept_latencies(&steady));
        let cold_tx = &after[REFERENCE];
        let hot_med = median(&hot_tx);
        hot_means.push(level);
        // beyond the level the model serves the type at (at least 0.001 ms: a wake-up is never
        // negative), so that level + wake-up is the latency after a pause; the back-to-back
        // blocks, which follow pauses, run slower than the unbroken runs (run 22's mixed
        // transaction: 0.535 against 0.486 ms), and an excess taken from them came out short
        let excess_of =
            |v: &[f64]| -> Vec<f64> { v.iter().map(|ms| (ms - level).max(0.001)).collect() };
        let all_excess = excess_of(cold_tx);
        let (excess, transients, speeds) = wakeup_samples(cold_tx, &all_excess);
        cold_speeds.push((speeds, cold_tx.len()));
        let fitted =
            delay_dist(&excess).map_err(|e| anyhow!("fitting `{}` after a pause: {e}", tx.name))?;
        // the growth with the idle time: each pause's median excess against the reference's,
        // never less after a longer pause
        let by_pause: Vec<(f64, f64, usize)> = PAUSES
            .iter()
            .zip(&after)
            .map(|(&(p, _), v)| (p.as_secs_f64() * 1000.0, median(&excess_of(v)), v.len()))
            .collect();
        let reference = by_pause[REFERENCE].1.max(0.001);
        let mut points = Vec::new();
        let mut floor = 0.0_f64;
        for &(p, ex, _) in &by_pause {
            floor = floor.max(ex / reference);
            points.push(json!([p, sig4(floor)]));
        }
        tx_wakeup_by_idle.push(Value::Array(points));
        cold_prov.push(json!({
            "transaction": tx.name,
            "back_to_back_median_ms": sig4(hot_med),
            "unbroken_runs_level_ms": sig4(level),
            "unbroken_run_means_ms": steady_means.iter().map(|&m| sig4(m)).collect::<Vec<_>>(),
            "unbroken_run_samples": steady.iter().map(|s| s.1.len()).collect::<Vec<_>>(),
            "unbroken_run_warmup_ms": STEADY_WARMUP.as_millis() as u64,
            "after_pause_median_ms": sig4(median(cold_tx)),
            "after_pause_p95_ms": sig4(quantile(cold_tx, 0.95)),
            "excess_median_ms": sig4(median(&excess)),
            "excess_p95_ms": sig4(quantile(&excess, 0.95)),
            "samples": cold_tx.len(),
            "transients_left_out_ms": transients.iter().map(|&x| sig4(x)).collect::<Vec<_>>(),
            "far_samples_kept_as_the_slow_mode": speeds.is_some(),
            "by_pause": by_pause
                .iter()
                .map(|&(p, ex, n)| json!({"pause_ms": p, "excess_median_ms": sig4(ex), "samples": n}))
                .collect::<Vec<_>>(),
        }));
        tx_wakeups.push(fitted);
    }
    prov.insert(
        "transactions_after_a_pause".into(),
        json!({
            "path": path_name,
            "pause_ms": WAKEUP_PAUSE.as_millis() as u64,
            "method": "each type's transaction after a pause, minus its level (the mean of its unbroken runs without the fastest and the slowest), timed in blocks that alternate with the same transaction back to back: after the reference pause, the type's own wakeup, applied to a request that finds the database host idle; after the other pauses, its median against the reference's is wakeup_by_idle, the factor by the host's idle time (never less after a longer pause)",
            "types": cold_prov,
        }),
    );
    // the round trip as the interleaved samples saw it (connection set-up subtracts two)
    let rtt = median(&direct_rtts);
    if !m_bouncer.is_null() {
        prov.insert("pgbouncer_latency".into(), m_bouncer.clone());
    }
    let trips: Vec<usize> = txs.iter().map(LiveTx::round_trips).collect();

    // --- 4. throughput against concurrency
    let max_c = opts.max_concurrency.unwrap_or((8 * cores).max(16)).max(1);
    let lv = levels(max_c);
    let usl_share = b.share(0.4);
    let per_level = usl_share.div_f64(lv.len() as f64);
    let warm = per_level.mul_f64(0.15).min(Duration::from_millis(500));
    let dur = per_level
        .saturating_sub(warm)
        .max(Duration::from_millis(200));
    let txs_arc = Arc::new(txs.clone());
    let w_of = |i: usize| weights.get(i).copied().unwrap_or(1.0);
    let mut cum = Vec::new();
    let mut acc = 0.0;
    for i in 0..txs.len() {
        acc += w_of(i);
        cum.push(acc);
    }
    if acc <= 0.0 {
        cum = (1..=txs.len()).map(|i| i as f64).collect();
    }
    let cum = Arc::new(cum);
    let mut pool: Vec<Arc<Client>> = Vec::new();
    let mut points = Vec::new();
    for (li, &n) in lv.iter().enumerate() {
        b.phase("throughput against concurrency");
        if li == 0 {
            host_probes.push(prober.probe());
        }
        while pool.len() < n {
            pool.push(Arc::new(connect(&pg, "PostgreSQL").await?));
        }
        let ticker = {
            let pb = b.pb.clone();
            let start = b.start;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    pb.set_position(start.elapsed().as_millis() as u64);
                }
            })
        };
        let r = run_level(&pool[..n], &txs_arc, &cum, warm, dur, 1000 + li as u64).await;
        ticker.abort();
        points.extend(r?);
    }
    // --- 4b. each type alone at a low and a high concurrency: where the high one adds little,
    // the type saturated the cores, and cores / its round trips per second is its CPU per round
    // trip under load (for short statements far below what concurrency 1 suggests: busy
    // processes do not pay the wake-ups an idle chain does)
    let (lo_n, hi_n) = ((2 * cores).max(2), *lv.last().unwrap_or(&1));
    let local_db = is_loopback(&pg);
    let mut loaded_cpu: Vec<Option<f64>> = vec![None; txs.len()];
    let mut loaded_prov = Vec::new();
    if hi_n >= 2 * lo_n {
        let each = b.share(0.12).div_f64(2.0 * txs.len() as f64);
        let warm = each.mul_f64(0.2).min(Duration::from_millis(300));
        let dur = each.saturating_sub(warm).max(Duration::from_millis(300));
        for (i, tx) in txs.iter().enumerate() {
            b.phase("each type's throughput ceiling");
            let one = Arc::new(vec![tx.clone()]);
            let w = Arc::new(vec![1.0]);
            let top = |v: Vec<LevelPoint>| v.iter().map(|p| p.statements_per_s).fold(0.0, f64::max);
            let x_lo = top(run_level(&pool[..lo_n], &one, &w, warm, dur, 2000 + i as u64).await?);
            // the host's cores while the high concurrency ran (on the database's host only)
            let (t0, busy0) = (Instant::now(), local_db.then(host_busy_seconds).flatten());
            let x_hi = top(run_level(&pool[..hi_n], &one, &w, warm, dur, 3000 + i as u64).await?);
            let busy = busy0
                .zip(host_busy_seconds())
                .map(|(a, z)| (z - a) / (t0.elapsed().as_secs_f64() * cores as f64));
            let saturated = saturated_alone(x_lo, x_hi, busy);
            if saturated {
                loaded_cpu[i] = Some(1000.0 * cores as f64 / x_hi.max(x_lo));
            }
            loaded_prov.push(json!({
                "transaction": tx.name,
                "round_trips_per_s": [[lo_n, sig4(x_lo)], [hi_n, sig4(x_hi)]],
                "host_busy_at_high": busy.map(sig4),
                "saturated": saturated,
                "cpu_per_round_trip_ms": loaded_cpu[i].map(sig4),
            }));
            b.tick();
        }
    }
    drop(pool);
    let usl_points: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.clients as f64, p.statements_per_s))
        .collect();
    let usl = fit::fit_usl(&usl_points);
    let latency_points: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.clients as f64, p.statement_latency_ms))
        .collect();
    // round-trip weights of the mix
    let total_w: f64 = (0..txs.len()).map(w_of).sum::<f64>().max(1e-12);
    let rt_w: Vec<f64> = (0..txs.len())
        .map(|i| w_of(i) / total_w * trips[i] as f64)
        .collect();
    let rt_total = rt_w.iter().sum::<f64>().max(1e-12);
    let mix_mean = |per_type: &dyn Fn(usize) -> f64| -> f64 {
        (0..txs.len()).map(|i| rt_w[i] * per_type(i)).sum::<f64>() / rt_total
    };
    // mean round-trip latency of the mix at concurrency 1
    let s1_full = mix_mean(&|i| fit_mean(&raw[i]));
    let split = fit::split_wait_cpu(s1_full, &latency_points, cores as f64)
        .map_err(|e| anyhow!("splitting wait and CPU time: {e}"))?;
    // the CPU time per round trip the ceiling implies, uncapped (see `fractions`)
    let cpu_ms = 1000.0 * cores as f64 / split.max_throughput_per_s;
    let ones: Vec<f64> = points
        .iter()
        .filter(|p| p.clients == 1)
        .map(|p| p.statements_per_s)
        .collect();
    let contention = residual_contention(&usl_points, fit_mean(&ones), split.max_throughput_per_s);

    // The simulator shares postgres.cores among the statements' CPU parts and charges the
    // round trips as pure delay. With /proc: a round trip's CPU part is its backend's CPU plus
    // `overhead`, the CPU per round trip the ceiling implies beyond the backends' (the client,
    // the kernel: whatever competes for the same cores); the pure delay is what is left of a
    // trivial statement's back-to-back round trip, so a statement's latency at concurrency 1 is
    // not charged that CPU twice. Without /proc: the delay is the back-to-back round trip and
    // every type gets the mix's wait / CPU split of its service time.
    // The overhead is the larger of the client's CPU per round trip (on loopback) and what the
    // ceiling implies beyond the backends' CPU — known only when the ceiling was reached: below
    // it, cores / highest throughput overstates the CPU per round trip.
    let with_proc = backend_cpu.iter().all(Option::is_some) && trivial_cpu.is_some();
    let b_mix = mix_mean(&|i| backend_cpu[i].unwrap_or(0.0));
    let trivial = trivial_cpu.unwrap_or(0.0);
    let ref_rtt = if after_tx.is_empty() {
        hot_rtt
    } else {
        median(&after_tx)
    };
    // On loopback there is no wire: what a back-to-back trivial round trip costs beyond the
    // backend's CPU is CPU of the same host too (the client, the kernel), and it competes with
    // the statements for the same cores.
    let client_cpu = if with_proc && is_loopback(&pg) {
        (ref_rtt - trivial).max(0.0)
    } else {
        0.0
    };
    let ceiling_overhead = if with_proc && split.regime == SplitRegime::CpuCeiling {
        (cpu_ms - b_mix).max(0.0)
    } else {
        0.0
    };
    let overhead = client_cpu.max(ceiling_overhead);
    let delay = if with_proc {
        (ref_rtt - trivial - overhead).max(0.0)
    } else {
        ref_rtt
    };
    // through PgBouncer: the back-to-back round trip less PgBouncer's CPU, the backend's and the
    // overhead, as two equal hops
    let bouncer_split = bouncer_split.map(|(_, cpu): (f64, f64)| {
        let via = if via_after_tx.is_empty() {
            median(&hot_via)
        } else {
            median(&via_after_tx)
        };
        let hops = if with_proc {
            via - cpu - trivial - overhead
        } else {
            via - cpu - (ref_rtt - delay)
        };
        ((hops / 2.0).max(0.0), cpu)
    });
    let mut measured = Vec::new();
    let mut fit_methods = Vec::new();
    for (i, (tx, lat)) in txs.iter().zip(&raw).enumerate() {
        let (m, method) = statement_fit(tx, w_of(i), lat, delay)?;
        measured.push(m);
        fit_methods.push(method);
    }
    // The model's latency of a type at concurrency 1 on the workload's path is its round trips
    // × (service + the path's cost per round trip). The statements timed directly give the
    // shape; their level is set so that this is the type's back-to-back latency measured on the
    // path itself (the direct loop, interleaved with the reference round trips, runs slower than
    // a transaction chain does: 0.1 against 0.087 ms per round trip for short statements).
    let path_cost = match bouncer_split {
        Some((hop, cpu)) => 2.0 * hop + cpu.max(MIN_BOUNCER_CPU_MS),
        None => delay,
    };
    // --- 4c. a level measured in a slow state of the host (see `slow_level`): every type's
    // level is measured again, now that the ceiling says the host was slow while they were
    // measured (one phase, seconds apart: run 50's scan was flagged at 1.56 × and the mixed
    // transaction, measured beside it, came out 0.897 ms against 0.67–0.70 in the runs around
    // it), in the same unbroken runs; the faster of the two stands. The wake-ups after a pause
    // stay as measured: each an excess over its level, taken within the same state as it.
    let level_per_rt = |i: usize, level: f64| level / trips[i].max(1) as f64;
    let flagged: Vec<Option<f64>> = (0..txs.len())
        .map(|i| {
            let loaded = loaded_cpu.get(i).copied().flatten()?;
            slow_level(level_per_rt(i, *hot_means.get(i)?), path_cost, loaded)
        })
        .collect();
    let mut again_prov = Vec::new();
    if flagged.iter().any(Option::is_some) {
        for (i, tx) in txs.iter().enumerate() {
            let Some(&first) = hot_means.get(i) else {
                continue;
            };
            b.phase("levels measured again (a slow host)");
            let mut timer = TxTimer::new(bouncer_client.as_ref().unwrap_or(&direct), tx);
            let mut again_runs = Vec::with_capacity(STEADY_RUNS);
            for _ in 0..STEADY_RUNS {
                again_runs.push(steady_run(&mut timer, &mut rng, &mut alarm).await?);
                b.tick();
            }
            let runs: Vec<f64> = again_runs.iter().map(|r| r.0).collect();
            let again = trimmed_mean(&runs);
            hot_means[i] = first.min(again);
            if again < first {
                hot_lats[i] = kept_latencies(&again_runs);
            }
            let loaded = loaded_cpu.get(i).copied().flatten();
            again_prov.push(json!({
                "transaction": tx.name,
                "first_level_ms": sig4(first),
                "first_against_cpu_under_load": flagged[i].map(sig4),
                "again_level_ms": sig4(again),
                "again_run_means_ms": runs.iter().map(|&m| sig4(m)).collect::<Vec<_>>(),
                "again_against_cpu_under_load": loaded.map(|c| sig4(level_per_rt(i, again) / c)),
                "level_ms": sig4(hot_means[i]),
            }));
        }
        prov.insert(
            "levels_measured_again".into(),
            json!({
                "method": "when a type's level per round trip at concurrency 1 was beyond 1.25 × its CPU per round trip under load (the host slower while the levels were measured), every type gets its seven unbroken runs again after the throughput sweep; the faster of the two levels stands",
                "types": again_prov,
            }),
        );
    }
    // A type that saturated the cores alone is charged its CPU per round trip under load, but
    // never more than its service (below): a path's cost that leaves a type less service than
    // that CPU undercharges it where the cores saturate (run 35: the mixed transaction's
    // service 0.047 ms against 0.055 ms of CPU, projected +10.6 % at its ceiling). The
    // difference comes out of the path's delays — on loopback a hop is mostly the CPU of the
    // processes it wakes, which the figure under load already counts — so that each type's level
    // at concurrency 1 stays what was measured.
    let movable = match bouncer_split {
        Some((hop, _)) => 2.0 * hop,
        None => delay,
    };
    let levels: Vec<(f64, Option<f64>)> = (0..txs.len())
        .filter_map(|i| {
            let hot = *hot_means.get(i)?;
            Some((level_per_rt(i, hot), loaded_cpu[i]))
        })
        .collect();
    let moved = if with_proc {
        delay_to_cpu(&levels, path_cost, movable)
    } else {
        0.0
    };
    let bouncer_split = bouncer_split.map(|(hop, cpu)| ((hop - moved / 2.0).max(0.0), cpu));
    let delay = if bouncer_split.is_some() {
        delay
    } else {
        (delay - moved).max(0.0)
    };
    let path_cost = path_cost - moved;
    let mut path_prov = Vec::new();
    for (i, m) in measured.iter_mut().enumerate() {
        let s = fit_mean(&m.service_ms);
        let Some(&hot) = hot_means.get(i) else {
            continue;
        };
        let per_rt = level_per_rt(i, hot);
        let loaded = loaded_cpu.get(i).copied().flatten();
        let k = path_scale(s, per_rt - path_cost);
        for x in &mut m.service_ms {
            *x *= k;
        }
        m.best.dist = scaled(&m.best.dist, k);
        path_prov.push(json!({
            "transaction": m.name,
            "back_to_back_mean_ms": sig4(hot),
            "path_cost_per_round_trip_ms": sig4(path_cost),
            "direct_service_mean_ms": sig4(s),
            "scale": sig4(k),
            "scale_at_its_bound": k == PATH_SCALE.0 || k == PATH_SCALE.1,
            "cpu_per_round_trip_under_load_ms": loaded.map(sig4),
            "level_against_cpu_under_load": loaded
                .and_then(|c| slow_level(per_rt, path_cost, c))
                .map(sig4),
        }));
    }
    prov.insert(
        "service_on_the_path".into(),
        json!({
            "method": "each type's statement service (shape from the direct timings) scaled so that round trips × (service + the path's cost per round trip) is the mean latency of seven unbroken back-to-back runs spread over the type's phase (each 700 ms after 300 ms untimed), the fastest and the slowest left out on the workload's path (through PgBouncer when there is one); scale bounded to [0.2, 5]",
            "types": path_prov,
            "delay_moved_to_service_per_round_trip_ms": sig4(moved),
            "delay_moved_note": "taken from the path's delays (two equal hops through PgBouncer) where a type that saturated the cores alone would otherwise get less service per round trip than its CPU under load",
        }),
    );
    let s1_service = mix_mean(&|i| fit_mean(&measured[i].service_ms));
    // the mix's CPU share of its service time, applied to every type alike
    let mix = fractions(s1_service, cpu_ms);
    let fr: Vec<Fractions> = if with_proc && !measured.is_empty() {
        measured
            .iter()
            .zip(&backend_cpu)
            .zip(&loaded_cpu)
            .map(|((m, c), loaded)| {
                // a type that saturated the cores alone: its CPU per round trip under load;
                // otherwise its backend's CPU plus the overhead. At concurrency 1 the CPU lies
                // on the latency's path: no more than the service time is charged (CPU a
                // backend spends after answering — WAL, statistics — is not)
                let s = fit_mean(&m.service_ms);
                let b = loaded.unwrap_or(c.unwrap_or(0.0) + overhead).min(s);
                if s <= 0.0 {
                    return Fractions {
                        wait: 0.0,
                        cpu: 0.0,
                    };
                }
                Fractions {
                    wait: (s - b).max(0.0) / s,
                    cpu: b / s,
                }
            })
            .collect()
    } else {
        measured.iter().map(|_| mix).collect()
    };
    // the spread: the tail of each type's service set so that a transaction's P95 back to back
    // on the path at concurrency 1 is the one its unbroken runs measured (`spread_to_path`)
    let mut spread_prov = Vec::new();
    for (i, m) in measured.iter_mut().enumerate() {
        let Some(lat) = hot_lats.get(i).filter(|l| !l.is_empty()) else {
            continue;
        };
        let target = quantile(lat, 0.95);
        let f = fr[i];
        let Some((k, before, widened)) = spread_to_path(
            &m.service_ms,
            trips[i].max(1),
            (f.wait, f.cpu),
            path_cost,
            target,
        ) else {
            continue;
        };
        let changed = (k - 1.0).abs() > 0.05;
        if changed {
            let fitted = fit::fit_empirical(&widened)
                .map_err(|e| anyhow!("the spread of `{}`: {e}", m.name))?;
            m.service_ms = widened;
            m.best = fitted;
        }
        spread_prov.push(json!({
            "transaction": m.name,
            "back_to_back_p95_ms": sig4(target),
            "back_to_back_samples": lat.len(),
            "model_p95_before_ms": sig4(before),
            "tail_factor": sig4(k),
            "tail_factor_at_its_bound": k == SPREAD_BOUNDS.0 || k == SPREAD_BOUNDS.1,
            "applied": changed,
        }));
    }
    prov.insert(
        "spread_on_the_path".into(),
        json!({
            "method": "each type's statement service above its median stretched (or shrunk) by the factor, then scaled back to its mean, with which the model's P95 of a transaction at concurrency 1 (round trips × (path cost + wait and CPU drawn apart), 20,000 drawn) is the P95 of the unbroken back-to-back runs the level keeps; applied (an empirical table) when the factor is more than 5 % from 1; factor bounded to [0.25, 6]",
            "types": spread_prov,
        }),
    );
    // two speeds: a type whose latencies on the path split into a fast and a slow mode
    let speeds_json = |t: fit::TwoSpeeds| {
        json!({
            "fast_ms": sig4(t.fast),
            "slow_ms": sig4(t.slow),
            "slow_share": sig4(t.slow_share),
            "separation": sig4(t.separation),
        })
    };
    let mut speeds_prov = Vec::new();
    for (i, m) in measured.iter().enumerate() {
        let of = |v: Option<&Vec<f64>>| v.and_then(|l| fit::two_speeds(l));
        let (cold, cold_n) = cold_speeds.get(i).copied().unwrap_or((None, 0));
        let b2b = of(hot_lats.get(i));
        speeds_prov.push(json!({
            "transaction": m.name,
            "back_to_back": b2b.map(speeds_json),
            "back_to_back_samples": hot_lats.get(i).map_or(0, Vec::len),
            "after_a_pause": cold.map(speeds_json),
            "after_a_pause_samples": cold_n,
        }));
    }
    prov.insert(
        "two_speeds".into(),
        json!({
            "method": "each type's latencies on the path (the unbroken back-to-back runs the level keeps; the transactions after the reference pause) split where the split explains most of their variance (Otsu); two speeds when it explains at least 70 %, the slower mode's median is at least 1.3 × the faster's and holds 2–98 % of the samples. The model serves one speed: a P95 falls in the slower mode once its share passes 5 %, and the share moves with the host's load and over minutes",
            "types": speeds_prov,
        }),
    );
    prov.insert("loaded_ceilings".into(), json!(loaded_prov));
    prov.insert(
        "round_trip".into(),
        json!({
            "direct_select1_median_ms": sig4(rtt),
            "direct_select1_p95_ms": sig4(quantile(&direct_rtts, 0.95)),
            "samples": direct_rtts.len(),
            "back_to_back_select1_median_ms": sig4(hot_rtt),
            "select1_after_each_transaction_median_ms": sig4(ref_rtt),
            "select1_through_pgbouncer_after_each_transaction_median_ms": (!via_after_tx.is_empty()).then(|| sig4(median(&via_after_tx))),
            "references_on_a_fresh_connection": reopened,
            "references_with_client_and_backend_held_apart": held_apart,
            "direct_reference_colocated": colocated_reference,
            "back_to_back_samples": hot.len(),
            "back_to_back_own_cpu_ms": own_direct.map(sig4),
            "back_to_back_host_cpu_ms": host_direct.map(sig4),
            "through_pgbouncer_back_to_back_own_cpu_ms": own_via.map(sig4),
            "through_pgbouncer_back_to_back_host_cpu_ms": host_via.map(sig4),
            "backend_cpu_per_trivial_statement_ms": trivial_cpu.map(sig4),
            "cpu_overhead_per_round_trip_ms": sig4(overhead),
            "client_cpu_per_round_trip_ms": sig4(client_cpu),
            "ceiling_overhead_per_round_trip_ms": sig4(ceiling_overhead),
            "pure_delay_ms": sig4(delay),
            "note": "network.app_postgres_rtt_ms is the pure delay: the SELECT 1 after each transaction (direct, median) minus the backend's CPU for it and the CPU overhead per round trip (both charged to the statements' CPU part instead); through PgBouncer, the SELECT 1 through it after each transaction minus PgBouncer's CPU, the backend's and the overhead, split into two equal hops. The back-to-back loop gives the backend's CPU of a trivial statement",
        }),
    );

    // --- 5. connection set-up
    b.phase("connection set-up");
    host_probes.push(prober.probe());
    prov.insert(
        "host_speed".into(),
        json!({
            "method": speed::METHOD,
            "when": "at the start, before each type's transactions at concurrency 1, before those after a pause, before the throughput sweep, and before the connection set-up",
            "probes": host_probes,
            "mean": speed::mean(&host_probes),
        }),
    );
    let backend = connect_costs(&pg, "PostgreSQL", 20, b.share(0.05), rtt).await?;
    let client_connect = match &bouncer {
        Some(bep) => Some(connect_costs(bep, "PgBouncer", 20, b.share(0.05), rtt).await?),
        None => None,
    };

    // --- provenance of the fits
    let mut tx_prov = Map::new();
    for ((m, f), method) in measured.iter().zip(&fr).zip(&fit_methods) {
        tx_prov.insert(
            m.name.clone(),
            json!({
                "statements": m.statements,
                "samples": m.service_ms.len(),
                "latency_mean_ms": sig4(m.latency_mean_ms),
                "service_mean_ms": sig4(fit_mean(&m.service_ms)),
                "service_p95_ms": sig4(quantile(&m.service_ms, 0.95)),
                "best": fit_json(&m.best),
                "fits": m.all.iter().map(fit_json).collect::<Vec<_>>(),
                "method": method,
                "wait_fraction": sig4(f.wait),
                "cpu_fraction": sig4(f.cpu),
                "backend_cpu_per_statement_ms": backend_cpu.get(i_tx(&measured, m)).copied().flatten().map(sig4),
            }),
        );
    }
    prov.insert("transactions".into(), Value::Object(tx_prov));
    let usl_value = match &usl {
        Ok(u) => usl_json(u, "round trips/s"),
        Err(e) => json!({"error": e.to_string()}),
    };
    prov.insert("usl".into(), usl_value.clone());
    prov.insert(
        "throughput_points".into(),
        json!(points
            .iter()
            .map(|p| json!([
                p.clients,
                sig4(p.statements_per_s),
                sig4(p.statement_latency_ms)
            ]))
            .collect::<Vec<_>>()),
    );
    prov.insert(
        "contention".into(),
        json!({
            "sigma": sig4(contention.0),
            "kappa": sig4(contention.1),
            "note": "the simulator shares postgres.cores among the statements in their CPU phase (which caps throughput at the measured ceiling, through statement_cpu) and applies contention_sigma / contention_kappa on top of that, to the same statements; so they are not the USL's σ, κ (under `usl`, which include the cores' saturation) but the throughput loss beyond min(N × X(1), ceiling), fitted the same way (σ, κ ≥ 0)",
        }),
    );
    let regime = match split.regime {
        SplitRegime::CpuCeiling => "cpu_ceiling",
        SplitRegime::CeilingNotReached => "ceiling_not_reached",
        SplitRegime::NonCpuCeiling => "non_cpu_ceiling",
    };
    prov.insert(
        "wait_cpu_split".into(),
        json!({
            "statement_latency_c1_ms": sig4(s1_full),
            "statement_service_c1_ms": sig4(s1_service),
            "ceiling_statements_per_s": sig4(split.max_throughput_per_s),
            "cpu_ms": sig4(cpu_ms),
            "regime": regime,
            "note": "cpu = cores / highest round trips/s measured (BEGIN and COMMIT of a block are round trips of the transaction, and a transaction's `statements` counts them); with /proc, each type's statement_cpu is its backend's CPU per round trip plus the overhead (cpu − the mix's backend CPU) and statement_wait the rest of its service time; without /proc, every type gets the mix's wait / CPU fractions",
        }),
    );
    prov.insert(
        "backend_start".into(),
        json!({"samples": backend.len(), "median_ms": sig4(median(&backend)), "p95_ms": sig4(quantile(&backend, 0.95)), "method": "new direct connection (TCP, startup, authentication) minus two round trips"}),
    );
    if let Some(cc) = &client_connect {
        prov.insert(
            "client_connect".into(),
            json!({"samples": cc.len(), "median_ms": sig4(median(cc)), "p95_ms": sig4(quantile(cc, 0.95)), "method": "new client connection through PgBouncer minus two round trips"}),
        );
    }

    // --- close everything before building the report
    drop(direct);
    drop(bouncer_client);
    drop(admin);

    let inputs = ModelInputs {
        name: opts.name.clone(),
        provenance: prov,
        cores,
        rtt_ms: delay,
        bouncer: bouncer_split,
        bouncer_wakeup,
        client_connect: client_connect.as_deref().map(lognormal_of),
        backend_start: Some(lognormal_of(&backend)),
        superuser_reserved_connections: superuser_reserved,
        txs: measured.clone(),
        fractions: fr.clone(),
        contention,
        wakeup: Some(wakeup),
        tx_wakeups,
        tx_wakeup_by_idle,
        bouncer_on_postgres_host: bouncer_local,
        per_core: backend_pid.is_some(),
        cross_core_wakeup: hop.as_ref().map(HopTimes::cross_core_wakeup_ms),
        app_on_postgres_host: backend_pid.is_some(),
        response_behind_statement: behind.map(|x| x.probability),
    };
    let model = build_model(&inputs);

    // --- the human report
    use std::fmt::Write as _;
    let s = &mut summary;
    let _ = writeln!(s, "calibration of {} ({} core(s) here)", pg.shown, cores);
    let _ = writeln!(
        s,
        "  PostgreSQL {}  max_connections {}  shared_buffers {}",
        pg_settings["server_version"].as_str().unwrap_or("?"),
        pg_settings["max_connections"].as_str().unwrap_or("?"),
        pg_settings["shared_buffers"].as_str().unwrap_or("?"),
    );
    if let Some(bp) = model["provenance"].get("pgbouncer") {
        let _ = writeln!(
            s,
            "  {}  pool_mode {}  default_pool_size {}",
            bp["version"].as_str().unwrap_or("PgBouncer ?"),
            bp["pool_mode"].as_str().unwrap_or("?"),
            bp["default_pool_size"].as_str().unwrap_or("?"),
        );
    }
    let _ = writeln!(
        s,
        "round trip (SELECT 1, direct): median {:.4} ms over {} samples",
        rtt,
        direct_rtts.len()
    );
    if let Some((hop, cpu)) = bouncer_split {
        let _ =
            writeln!(
            s,
            "through PgBouncer: {:+.4} ms  → app_bouncer_rtt {:.4} ms, cpu_per_query {:.4} ms + cpu_per_wakeup {:.4} ms ({})",
            m_bouncer["added_latency_ms"].as_f64().unwrap_or(0.0),
            hop,
            cpu - 2.0 * bouncer_wakeup.unwrap_or(0.0),
            bouncer_wakeup.unwrap_or(0.0),
            match (
                m_bouncer["proc"]["ms_per_query"].as_f64(),
                m_bouncer["proc"]["under_load"]["ms_per_query"].as_f64()
            ) {
                (None, _) => "from the added latency".to_string(),
                (Some(c1), None) => format!("from /proc; {c1:.4} ms at concurrency 1"),
                (Some(c1), Some(l)) => format!(
                    "from /proc: {c1:.4} ms at concurrency 1, {l:.4} ms from {} clients",
                    m_bouncer["proc"]["under_load"]["clients"]
                ),
            }
        );
    }
    let _ = writeln!(
        s,
        "SELECT 1 after each transaction: {:.4} ms direct{}; backend CPU of a trivial statement {}; CPU overhead per round trip {:.4} ms (client {:.4}, beyond the ceiling {:.4}) → pure delay {:.4} ms",
        ref_rtt,
        if via_after_tx.is_empty() {
            String::new()
        } else {
            format!(", {:.4} ms through PgBouncer", median(&via_after_tx))
        },
        trivial_cpu.map_or("unknown (no /proc)".to_string(), |c| format!("{c:.4} ms")),
        overhead,
        client_cpu,
        ceiling_overhead,
        delay
    );
    if reopened > 0 {
        let _ = writeln!(
            s,
            "    the direct references were taken again on {reopened} fresh connection(s): the first ones ran far below the path's (a client and its backend on one core)"
        );
    }
    if held_apart {
        let _ = writeln!(
            s,
            "    they stayed so, and were taken once more with this process held on one core and a fresh backend on the others"
        );
    }
    if colocated_reference {
        let _ = writeln!(
            s,
            "    warning: the direct SELECT 1 stayed below 1/{COLOCATED_RATIO} of the same through PgBouncer on {COLOCATED_RETRIES} fresh connections{} (a client and its backend on one core): the path's cost per round trip is overstated and the short statements' service understated; calibrate again",
            if held_apart { " and with client and backend held apart" } else { "" }
        );
    }
    let _ = writeln!(
        s,
        "wake-up after {} ms idle: median {:.4} ms, p95 {:.4} ms ({} samples)",
        WAKEUP_PAUSE.as_millis(),
        median(&wake),
        quantile(&wake, 0.95),
        wake.len()
    );
    match &hop {
        Some(h) => {
            let _ = writeln!(
                s,
                "wake-up of an idle core by another: {:.1} µs per hop across cores against {:.1} µs on one ({} round trips each) → cross_core_wakeup {:.4} ms",
                h.cross_core_us,
                h.same_core_us,
                h.round_trips,
                h.cross_core_wakeup_ms()
            );
        }
        None if backend_pid.is_some() => {
            let _ = writeln!(
                s,
                "wake-up of an idle core by another: not measured (this process may not pin threads to two cores)"
            );
        }
        None => {}
    }
    match &behind {
        Some(x) => {
            let _ = writeln!(
                s,
                "responses behind a running statement: {} of {} overlapping pairs held ({:.1} expected from the lone rounds' spread) → response_behind_statement {:.3}",
                x.held, x.pairs, x.expected_by_spread, x.probability
            );
        }
        None if backend_pid.is_some() => {
            let _ = writeln!(
                s,
                "responses behind a running statement: not measured (too few usable rounds)"
            );
        }
        None => {}
    }
    for c in &cold_prov {
        let f = |k: &str| c[k].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            s,
            "{} after {} ms idle ({}): median {:.4} ms against its level {:.4} ms (blocks back to back {:.4} ms) → own wake-up median {:.4} ms, p95 {:.4} ms ({} samples)",
            c["transaction"].as_str().unwrap_or(""),
            WAKEUP_PAUSE.as_millis(),
            path_name,
            f("after_pause_median_ms"),
            f("unbroken_runs_level_ms"),
            f("back_to_back_median_ms"),
            f("excess_median_ms"),
            f("excess_p95_ms"),
            f("samples"),
        );
        if let Some(t) = c["transients_left_out_ms"]
            .as_array()
            .filter(|t| !t.is_empty())
        {
            let _ = writeln!(
                s,
                "    left out as transients (beyond {TRANSIENT_IQRS} interquartile ranges and {TRANSIENT_MIN_RATIO} × the upper quartile): {} ms",
                t.iter()
                    .map(|x| format!("{:.3}", x.as_f64().unwrap_or(0.0)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(bp) = c["by_pause"].as_array() {
            let reference = f("excess_median_ms").max(0.001);
            let _ = writeln!(
                s,
                "    by idle time: {}",
                bp.iter()
                    .map(|x| format!(
                        "{} ms +{:.4} ms (×{:.2}, {} samples)",
                        x["pause_ms"].as_f64().unwrap_or(0.0),
                        x["excess_median_ms"].as_f64().unwrap_or(0.0),
                        x["excess_median_ms"].as_f64().unwrap_or(0.0) / reference,
                        x["samples"].as_u64().unwrap_or(0)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    for p in &again_prov {
        let g = |k: &str| p[k].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            s,
            "{}: level measured again (the host was slow while the levels were measured): {:.4} ms{}, again {:.4} ms{} → {:.4} ms",
            p["transaction"].as_str().unwrap_or(""),
            g("first_level_ms"),
            p["first_against_cpu_under_load"]
                .as_f64()
                .map_or(String::new(), |r| format!(
                    " ({r:.2} × its CPU per round trip under load)"
                )),
            g("again_level_ms"),
            p["again_against_cpu_under_load"]
                .as_f64()
                .map_or(String::new(), |r| format!(" ({r:.2} ×)")),
            g("level_ms"),
        );
    }
    for (p, tx) in loaded_prov.iter().zip(&txs) {
        let _ = writeln!(
            s,
            "{} alone: {} round trips/s{}{}",
            tx.name,
            p["round_trips_per_s"]
                .as_array()
                .map(|v| v
                    .iter()
                    .map(|x| format!("{:.0} at N={}", x[1].as_f64().unwrap_or(0.0), x[0]))
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
            match p["host_busy_at_high"].as_f64() {
                Some(b) => format!(
                    " (the host's cores {:.0} % busy at the high one)",
                    100.0 * b
                ),
                None => String::new(),
            },
            match p["cpu_per_round_trip_ms"].as_f64() {
                Some(c) => format!(" → saturated: {c:.4} ms CPU per round trip under load"),
                None => " → not saturated: backend CPU + overhead".to_string(),
            }
        );
    }
    if moved > 0.0 {
        let _ = writeln!(
            s,
            "the path's delays give {moved:.4} ms a round trip to the services: a type that saturated the cores alone needs at least its CPU under load as service"
        );
    }
    for (i, (m, f)) in measured.iter().zip(&fr).enumerate() {
        let p = path_prov.get(i);
        let g = |k: &str| p.and_then(|p| p[k].as_f64()).unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "transaction {}: {} round trip(s), {} samples, service mean {:.4} ms (direct {:.4} ms × {:.3}: {:.4} ms back to back on the path, {:.4} ms per round trip for the path), best {} (KS D {:.3}, p {:.3})",
            m.name,
            m.statements,
            m.service_ms.len(),
            fit_mean(&m.service_ms),
            g("direct_service_mean_ms"),
            g("scale"),
            g("back_to_back_mean_ms"),
            g("path_cost_per_round_trip_ms"),
            m.best.dist.family(),
            m.best.ks_d,
            m.best.ks_p
        );
        if let Some(r) = p.and_then(|p| p["level_against_cpu_under_load"].as_f64()) {
            let _ = writeln!(
                s,
                "    warning: `{}` ran {r:.2} × slower back to back at concurrency 1 than its CPU per round trip under load allows (measured minutes apart): the host was slower while its level was measured; calibrate again",
                m.name
            );
        }
        if p.is_some_and(|p| p["scale_at_its_bound"] == true) {
            let _ = writeln!(
                s,
                "    warning: the scale is at its bound [{}, {}]: the direct timings and the path's latency disagree beyond what noise explains; the model's level of `{}` is off",
                PATH_SCALE.0, PATH_SCALE.1, m.name
            );
        }
        for a in &m.all {
            let _ = writeln!(
                s,
                "    {:<10} KS D {:.3}  p {:.3}",
                a.dist.family(),
                a.ks_d,
                a.ks_p
            );
        }
        let _ = writeln!(
            s,
            "    statement_wait {}  statement_cpu {}",
            scale_dist(&m.best.dist, f.wait),
            scale_dist(&m.best.dist, f.cpu)
        );
    }
    for p in &spread_prov {
        let g = |k: &str| p[k].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            s,
            "{} spread: P95 back to back on the path {:.4} ms ({} transactions), the model's {:.4} ms → tail above the median × {:.2}{}",
            p["transaction"].as_str().unwrap_or(""),
            g("back_to_back_p95_ms"),
            p["back_to_back_samples"],
            g("model_p95_before_ms"),
            g("tail_factor"),
            if p["applied"] == true { "" } else { " (within 5 %: left as fitted)" },
        );
    }
    for p in &speeds_prov {
        let (b2b, cold) = (&p["back_to_back"], &p["after_a_pause"]);
        let Some(t) = [b2b, cold].into_iter().find(|t| !t.is_null()) else {
            continue;
        };
        let share = |t: &Value| match t["slow_share"].as_f64() {
            Some(x) => format!("{:.0} %", 100.0 * x),
            None => "one mode".to_string(),
        };
        let _ = writeln!(
            s,
            "    warning: `{}` runs at two speeds on this host: {:.3} and {:.3} ms a transaction on the path (the slower's share: {} back to back, {} after a {} ms pause); a P95 falls in the slower mode once its share passes 5 %, and that share moves with the load and over minutes: expect P95 misses between idle and saturation",
            p["transaction"].as_str().unwrap_or(""),
            t["fast_ms"].as_f64().unwrap_or(f64::NAN),
            t["slow_ms"].as_f64().unwrap_or(f64::NAN),
            share(b2b),
            share(cold),
            WAKEUP_PAUSE.as_millis()
        );
    }
    let _ = writeln!(s, "throughput (round trips/s) against clients, direct:");
    for p in &points {
        let _ = writeln!(
            s,
            "    N={:<3} {:>9.0}/s  latency {:.3} ms",
            p.clients, p.statements_per_s, p.statement_latency_ms
        );
    }
    match &usl {
        Ok(u) => {
            let _ = writeln!(
                s,
                "USL: λ {:.0}/s [{:.0}, {:.0}]  σ {:.4} [{:.4}, {:.4}]  κ {:.5} [{:.5}, {:.5}]  R² {:.3}  N* {}",
                u.lambda,
                u.lambda_ci.0,
                u.lambda_ci.1,
                u.sigma,
                u.sigma_ci.0,
                u.sigma_ci.1,
                u.kappa,
                u.kappa_ci.0,
                u.kappa_ci.1,
                u.r_squared,
                u.peak_concurrency
                    .map_or("none (κ = 0)".to_string(), |n| format!("{n:.1}"))
            );
        }
        Err(e) => {
            let _ = writeln!(s, "USL: no fit ({e}); contention set to 0");
        }
    }
    let _ = writeln!(
        s,
        "wait/CPU: ceiling {:.0} round trips/s on {} core(s) → {:.4} ms CPU per round trip ({regime}); the mix's fractions of its service time: wait {:.3}, cpu {:.3}",
        split.max_throughput_per_s, cores, cpu_ms, mix.wait, mix.cpu
    );
    let _ = writeln!(
        s,
        "contention for the simulator (beyond the cores' saturation): σ {:.4}, κ {:.5}",
        contention.0, contention.1
    );
    let _ = writeln!(
        s,
        "backend start: median {:.3} ms, p95 {:.3} ms ({} connections)",
        median(&backend),
        quantile(&backend, 0.95),
        backend.len()
    );
    if let Some(cc) = &client_connect {
        let _ = writeln!(
            s,
            "client connect through PgBouncer: median {:.3} ms, p95 {:.3} ms ({} connections)",
            median(cc),
            quantile(cc, 0.95),
            cc.len()
        );
    }
    let measurements = json!({
        "round_trip_ms": {"direct_median": rtt, "direct_samples": direct_rtts.len()},
        "pgbouncer": m_bouncer,
        "usl": usl_value,
        "throughput_points": points.iter().map(|p| json!({
            "clients": p.clients, "statements_per_s": p.statements_per_s,
            "transactions_per_s": p.transactions_per_s, "statement_latency_ms": p.statement_latency_ms,
        })).collect::<Vec<_>>(),
        "split": split,
        "elapsed_s": b.start.elapsed().as_secs_f64(),
    });
    Ok(Calibration {
        model,
        summary,
        measurements,
    })
}

/// Fit a transaction type's statement service time from its statement latencies and the
/// round trip. When at least 95 % of the latencies exceed the round trip, the service times are
/// `latency − rtt`, fitted as they are; otherwise (statements about as fast as `SELECT 1`, where
/// the subtraction leaves mostly noise) the latencies are fitted and the distribution scaled by
/// `mean(service) / mean(latency)`, which keeps its shape and gives the right mean.
fn statement_fit(tx: &LiveTx, weight: f64, lat: &[f64], rtt: f64) -> Result<(TxMeasured, String)> {
    let fail = |e: fit::FitError| anyhow!("fitting the statement times of `{}`: {e}", tx.name);
    let latency_mean = fit_mean(lat);
    let service_mean = (latency_mean - rtt).max(0.001);
    let (best, all, service, method) = if quantile(lat, 0.05) > rtt {
        let service: Vec<f64> = lat.iter().map(|&x| (x - rtt).max(0.001)).collect();
        (
            fit::best_fit(&service).map_err(fail)?,
            fit::fit_all(&service).map_err(fail)?,
            service,
            "statement latency minus the median round trip, fitted".to_string(),
        )
    } else {
        let k = service_mean / latency_mean;
        let scale = |f: Fitted| Fitted {
            dist: scaled(&f.dist, k),
            ..f
        };
        (
            scale(fit::best_fit(lat).map_err(fail)?),
            fit::fit_all(lat)
                .map_err(fail)?
                .into_iter()
                .map(scale)
                .collect(),
            lat.iter().map(|&x| x * k).collect(),
            format!(
                "statement latency fitted (the KS figures are of that fit), then scaled by {:.4} = mean service / mean latency: fewer than 95 % of the latencies exceed the round trip",
                k
            ),
        )
    };
    Ok((
        TxMeasured {
            name: tx.name.clone(),
            statements: tx.round_trips(),
            weight,
            latency_mean_ms: latency_mean,
            service_ms: service,
            best,
            all,
        },
        method,
    ))
}

/// A distribution with every time value multiplied by `k`.
fn scaled(d: &DistFit, k: f64) -> DistFit {
    match d {
        DistFit::Lognormal {
            median_ms,
            p95_ms,
            mu,
            sigma,
        } => DistFit::Lognormal {
            median_ms: median_ms * k,
            p95_ms: p95_ms * k,
            mu: mu + k.ln(),
            sigma: *sigma,
        },
        DistFit::Gamma { shape, mean_ms } => DistFit::Gamma {
            shape: *shape,
            mean_ms: mean_ms * k,
        },
        DistFit::Exponential { mean_ms } => DistFit::Exponential {
            mean_ms: mean_ms * k,
        },
        DistFit::Empirical { quantiles } => DistFit::Empirical {
            quantiles: quantiles.iter().map(|&(p, x)| (p, x * k)).collect(),
        },
    }
}

/// A type's wake-up samples (`excess`, ms, of the transactions timed after the reference
/// pause, `after`, ms): the kept ones, the transients left out, and the two speeds of `after`
/// when it has them (then the far samples were kept as the type's slow mode). A stall of many wake-ups in a few samples is a passing
/// disturbance (a checkpoint's write, another process), not the wake-up: it stays out of the
/// fit, on the record ([`without_transients`]) — unless the transactions split into two
/// speeds ([`fit::two_speeds`]): then the far samples are the type's slow mode, which open
/// loops meet, and stay (VALIDATION.md, "The scan runs at two speeds": run 68's scan after 5 ms,
/// 8 of 80 samples near 1.1 ms of excess left out as transients, where 15–60 % of an open
/// loop's scans ran that slow in the traces).
fn wakeup_samples(after: &[f64], excess: &[f64]) -> (Vec<f64>, Vec<f64>, Option<fit::TwoSpeeds>) {
    if let Some(t) = fit::two_speeds(after) {
        return (excess.to_vec(), Vec::new(), Some(t));
    }
    let (kept, out) = without_transients(excess);
    (kept, out, None)
}

/// Tukey's far-out fence, in interquartile ranges above the upper quartile, beyond which a
/// wake-up sample is a transient (and at least `TRANSIENT_MIN_RATIO` times the upper quartile).
const TRANSIENT_IQRS: f64 = 3.0;
const TRANSIENT_MIN_RATIO: f64 = 3.0;
/// At most this share of the samples is left out as transients; more is the distribution itself.
const TRANSIENT_MAX_SHARE: f64 = 0.1;

/// `samples` (ms) split into those kept and the transients left out: those beyond both
/// Tukey's far-out fence and `TRANSIENT_MIN_RATIO` × the upper quartile, when they are few
/// (at most `TRANSIENT_MAX_SHARE`). Run 19's mixed transaction after a pause: 40 samples with
/// quartiles 0.37 and 0.65 ms, and two stalls of about 9 and 10.7 ms that no later measurement
/// showed (bench at 300/s: p99 1.64 ms); fitted in, they made 4 % of the projected requests
/// after idle pay several milliseconds.
fn without_transients(samples: &[f64]) -> (Vec<f64>, Vec<f64>) {
    if samples.len() < 8 {
        return (samples.to_vec(), Vec::new());
    }
    let (q1, q3) = (quantile(samples, 0.25), quantile(samples, 0.75));
    let fence = (q3 + TRANSIENT_IQRS * (q3 - q1)).max(TRANSIENT_MIN_RATIO * q3);
    let (kept, out): (Vec<f64>, Vec<f64>) = samples.iter().partition(|&&x| x <= fence);
    if (out.len() as f64) > TRANSIENT_MAX_SHARE * samples.len() as f64 {
        (samples.to_vec(), Vec::new())
    } else {
        (kept, out)
    }
}

/// Whether the direct reference round trips (`direct`, ms) ran with the client and its backend
/// on one core, judged against the same through PgBouncer (`via`); false without both.
fn colocated(direct: &[f64], via: &[f64]) -> bool {
    !direct.is_empty() && !via.is_empty() && median(via) > COLOCATED_RATIO * median(direct)
}

/// The reference round trips of phase 3 again, on `direct` (a fresh connection): the mix's
/// transactions in turn, each `REF_EVERY`-th followed by `SELECT 1` directly and then through
/// PgBouncer (`via`), for `dur` (at least 40 references); the two lists of latencies (ms).
async fn references(
    direct: &Client,
    via: &Client,
    txs: &[LiveTx],
    rng: &mut rand_pcg::Pcg64Mcg,
    dur: Duration,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut after, mut through) = (Vec::new(), Vec::new());
    if txs.is_empty() {
        return Ok((after, through));
    }
    let end = Instant::now() + dur;
    let (mut values, mut buf, mut lat) = (Vec::new(), String::new(), Vec::new());
    let mut n = 0usize;
    while after.len() < 40 || (Instant::now() < end && after.len() < 300) {
        let tx = &txs[(n / REF_EVERY) % txs.len()];
        tx.draw(rng, &mut values);
        lat.clear();
        run_tx(direct, tx, &values, &mut buf, &mut lat)
            .await
            .map_err(|m| tx_failed(tx, &m))?;
        n += 1;
        if n.is_multiple_of(REF_EVERY) {
            let (one, v) = select1_pair(direct, Some(via)).await?;
            after.push(one);
            through.extend(v);
        }
    }
    Ok((after, through))
}

/// How much of the path's delay per round trip (at most `movable`) must become service so that
/// every type's service on the path — its level per round trip (`levels`: level, and its CPU per
/// round trip under load when it saturated the cores alone) less `path_cost` — is at least that
/// CPU. 0 when none falls short.
fn delay_to_cpu(levels: &[(f64, Option<f64>)], path_cost: f64, movable: f64) -> f64 {
    levels
        .iter()
        .filter_map(|&(level, loaded)| Some(loaded? - (level - path_cost)))
        .fold(0.0, f64::max)
        .min(movable.max(0.0))
}

/// The factor from a type's direct service `s` to `target`, its service on the path (its level
/// per round trip less the path's cost), within [`PATH_SCALE`]. A target of nothing or less — a
/// path's cost measured above the type's whole level — asks for the least service allowed, not
/// for the direct timings as they are; 1 when there is no direct service to scale.
fn path_scale(s: f64, target: f64) -> f64 {
    if s <= 0.0 {
        return 1.0;
    }
    (target.max(0.0) / s).clamp(PATH_SCALE.0, PATH_SCALE.1)
}

/// A level measured in a slow state of the host: above this many times the type's CPU per
/// round trip under load. Calibrations on this host gave 1.03–1.18 in ordinary states, 1.33
/// and 1.63 in two that the measurement then contradicted by 18–33 % (VALIDATION.md, *The
/// host's speed*).
const SLOW_LEVEL: f64 = 1.25;

/// For a type whose statement dominates its round trip (its CPU per round trip under load,
/// `loaded_cpu`, at least ten times the path's cost) the level per round trip at concurrency 1
/// (`level`, the path's cost included) is that CPU plus little; beyond [`SLOW_LEVEL`] times it,
/// the host was slower while the level was measured than while the ceiling was: the ratio.
/// `None` when it is not beyond, or for short statements, whose level is mostly wake-ups.
fn slow_level(level: f64, path_cost: f64, loaded_cpu: f64) -> Option<f64> {
    let r = level / loaded_cpu;
    (loaded_cpu >= 10.0 * path_cost && loaded_cpu > 0.0 && r > SLOW_LEVEL).then_some(r)
}

/// One unbroken back-to-back run: [`STEADY_WARMUP`] untimed, then [`STEADY_SPAN`] timed (at
/// least [`STEADY_MIN`] transactions); its mean latency and its latencies (ms).
async fn steady_run(
    timer: &mut TxTimer<'_>,
    rng: &mut rand_pcg::Pcg64Mcg,
    alarm: &mut Alarm,
) -> Result<(f64, Vec<f64>)> {
    let start = Instant::now();
    while start.elapsed() < STEADY_WARMUP {
        timer.time(rng, alarm, None).await?;
    }
    let start = Instant::now();
    let mut lat = Vec::new();
    while lat.len() < STEADY_MIN || start.elapsed() < STEADY_SPAN {
        lat.push(timer.time(rng, alarm, None).await?);
    }
    Ok((fit_mean(&lat), lat))
}

/// The latencies of the runs the level keeps ([`trimmed_mean`]: all but the fastest and the
/// slowest run of three or more).
fn kept_latencies(runs: &[(f64, Vec<f64>)]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| runs[a].0.total_cmp(&runs[b].0));
    let kept = if runs.len() < 3 {
        &order[..]
    } else {
        &order[1..order.len() - 1]
    };
    kept.iter()
        .flat_map(|&i| runs[i].1.iter().copied())
        .collect()
}

/// Transactions drawn to set a type's spread ([`spread_to_path`]).
const SPREAD_DRAWS: usize = 20_000;
/// Bounds of the factor on the service's tail above its median.
const SPREAD_BOUNDS: (f64, f64) = (0.25, 6.0);

/// The statement service samples with their part above the median stretched (or shrunk) by the
/// factor that makes the model's P95 of a whole transaction at concurrency 1 —
/// `trips` × (`path_cost` + a statement's wait and CPU, drawn apart as the simulator draws them:
/// `wait` and `cpu` of its service) — the P95 measured back to back on the path (`target_p95`),
/// then scaled back to their mean. The direct timings give the statements' shape alone; on the
/// path, a transaction also meets the host's jitter (preemption, timer ticks, the other
/// processes), and its P95 measured back to back ran 10–25 % above the model's (runs 52–56).
/// Returns (factor, the model's P95 before, the samples after).
fn spread_to_path(
    service: &[f64],
    trips: usize,
    (wait, cpu): (f64, f64),
    path_cost: f64,
    target_p95: f64,
) -> Option<(f64, f64, Vec<f64>)> {
    use rand::Rng;
    if service.len() < 2 || trips == 0 || target_p95.is_nan() || target_p95 <= 0.0 {
        return None;
    }
    let mean = fit_mean(service);
    let med = median(service);
    if mean.is_nan() || mean <= 0.0 {
        return None;
    }
    let stretched = |k: f64| -> Vec<f64> {
        let v: Vec<f64> = service
            .iter()
            .map(|&x| if x > med { med + k * (x - med) } else { x })
            .collect();
        let m = fit_mean(&v);
        v.iter().map(|x| x * mean / m).collect()
    };
    // the same draws for every factor, so that the P95 moves with the factor alone
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0x5350_5245_4144);
    let n = service.len();
    let draws: Vec<usize> = (0..SPREAD_DRAWS * trips * 2)
        .map(|_| rng.random_range(0..n))
        .collect();
    let p95_of = |v: &[f64]| -> f64 {
        let tx: Vec<f64> = draws
            .chunks(trips * 2)
            .map(|d| {
                d.chunks(2)
                    .map(|p| path_cost + wait * v[p[0]] + cpu * v[p[1]])
                    .sum::<f64>()
            })
            .collect();
        quantile(&tx, 0.95)
    };
    let before = p95_of(service);
    let (mut lo, mut hi) = SPREAD_BOUNDS;
    let k = if p95_of(&stretched(lo)) >= target_p95 {
        lo
    } else if p95_of(&stretched(hi)) <= target_p95 {
        hi
    } else {
        for _ in 0..30 {
            let mid = 0.5 * (lo + hi);
            if p95_of(&stretched(mid)) < target_p95 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    Some((k, before, stretched(k)))
}

/// The mean without the lowest and the highest value (the plain mean of fewer than three).
fn trimmed_mean(v: &[f64]) -> f64 {
    if v.len() < 3 {
        return fit_mean(v);
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    fit_mean(&s[1..s.len() - 1])
}

fn fit_mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_is_the_mean_of_the_runs_without_the_extremes() {
        // run 23's seven runs of the mixed transaction
        let runs = [0.4732, 0.565, 0.4543, 0.3889, 0.3905, 0.5774, 0.5758];
        let t = trimmed_mean(&runs);
        assert!((t - (0.4732 + 0.565 + 0.4543 + 0.3905 + 0.5758) / 5.0).abs() < 1e-12);
        // one slow run among steady ones sets nothing
        assert!((trimmed_mean(&[1.146, 1.465, 1.15, 1.14]) - 1.148).abs() < 1e-12);
        assert_eq!(trimmed_mean(&[1.0, 3.0]), 2.0);
    }

    #[test]
    fn the_service_tail_is_set_to_the_paths_p95_and_keeps_its_mean() {
        // a statement's service spread evenly over 1..2 ms; one round trip, all CPU, no path cost
        let service: Vec<f64> = (0..1000).map(|i| 1.0 + i as f64 / 999.0).collect();
        let mean = fit_mean(&service);
        let (k, before, after) = spread_to_path(&service, 1, (0.0, 1.0), 0.0, 1.0).unwrap();
        assert!((before - 1.95).abs() < 0.02, "{before}");
        assert_eq!(
            k, SPREAD_BOUNDS.0,
            "a target below every factor's: the lower bound"
        );
        assert!((fit_mean(&after) - mean).abs() < 1e-9);
        for target in [2.2, 1.85] {
            let (k, _, after) = spread_to_path(&service, 1, (0.0, 1.0), 0.0, target).unwrap();
            assert!((k > 1.0) == (target > before), "{target}: {k}");
            assert!((fit_mean(&after) - mean).abs() < 1e-9);
            // the body below the median moves only by the scaling back to the mean
            let p95 = quantile(&after, 0.95);
            assert!((p95 / target - 1.0).abs() < 0.02, "{target}: {p95}");
        }
        // five round trips, wait and CPU drawn apart, a path cost: the sum's P95 is what is set
        let (k, before, _) = spread_to_path(&service, 5, (0.4, 0.6), 0.05, 9.0).unwrap();
        assert!(before < 9.0 && k > 1.0, "{before} {k}");
        assert!(spread_to_path(&service, 1, (0.0, 1.0), 0.0, f64::NAN).is_none());
        assert!(spread_to_path(&[1.0], 1, (0.0, 1.0), 0.0, 1.0).is_none());
    }

    #[test]
    fn the_spreads_latencies_are_those_of_the_runs_the_level_keeps() {
        let runs = vec![
            (2.0, vec![2.0, 2.0]),
            (1.0, vec![1.0]),
            (3.0, vec![3.0]),
            (2.5, vec![2.5]),
        ];
        let mut kept = kept_latencies(&runs);
        kept.sort_by(f64::total_cmp);
        assert_eq!(kept, [2.0, 2.0, 2.5]);
        assert_eq!(kept_latencies(&runs[..2]).len(), 3, "fewer than three: all");
    }

    #[test]
    fn a_few_stalls_far_beyond_the_wake_ups_are_left_out_as_transients() {
        // run 19's mixed transaction after a pause: a body of 0.1–1.7 ms and two stalls
        let mut v: Vec<f64> = (0..38).map(|i| 0.1 + 0.04 * i as f64).collect();
        v.extend([8.9, 10.7]);
        let (kept, out) = without_transients(&v);
        assert_eq!(out, vec![8.9, 10.7]);
        assert_eq!(kept.len(), 38);
        // run 18's: a tail to 1.18 ms over quartiles 0.42 and 0.54 is the distribution's own
        let mut v: Vec<f64> = (0..37).map(|i| 0.2 + 0.012 * i as f64).collect();
        v.extend([0.998, 1.163, 1.181]);
        assert!(without_transients(&v).1.is_empty());
        // many far samples are the distribution itself, not transients
        let mut v: Vec<f64> = (0..30).map(|i| 0.2 + 0.01 * i as f64).collect();
        v.extend([9.0; 10]);
        assert!(without_transients(&v).1.is_empty());
        // too few samples to tell
        assert!(without_transients(&[0.2, 0.3, 9.0]).1.is_empty());
    }

    #[test]
    fn far_wakeups_stay_when_the_transactions_run_at_two_speeds() {
        // 72 transactions at ~1.3 ms and 8 at ~2.4 ms after the pause, level 1.25 ms: the far
        // excesses (~1.15 ms) lie beyond the fence of the near ones (~0.05 ms) and are a tenth,
        // so the filter alone leaves them out ...
        let mut after: Vec<f64> = (0..72).map(|i| 1.29 + 0.0005 * i as f64).collect();
        after.extend((0..8).map(|i| 2.38 + 0.005 * i as f64));
        let excess: Vec<f64> = after.iter().map(|ms| ms - 1.25).collect();
        assert_eq!(without_transients(&excess).1.len(), 8);
        // ... but the transactions run at two speeds: they are the slow mode, and all stay
        let (kept, out, slow) = wakeup_samples(&after, &excess);
        assert!(slow.is_some());
        assert_eq!((kept.len(), out.len()), (80, 0));
        // a stall of two samples in a single speed still goes
        let mut after: Vec<f64> = (0..78).map(|i| 1.29 + 0.0005 * i as f64).collect();
        after.extend([11.0, 12.0]);
        let excess: Vec<f64> = after.iter().map(|ms| ms - 1.25).collect();
        let (kept, out, slow) = wakeup_samples(&after, &excess);
        assert!(slow.is_none());
        assert_eq!((kept.len(), out.len()), (78, 2), "{out:?}");
    }

    #[test]
    fn a_type_saturates_the_cores_by_its_gain_or_by_the_busy_host() {
        // the scan: no gain from 4 to 16 clients
        assert!(saturated_alone(1302.0, 1454.0, None));
        // run 46's mixed transaction: a slow low point makes a large gain, the cores 92 % busy
        assert!(!saturated_alone(26_740.0, 37_480.0, None));
        assert!(saturated_alone(26_740.0, 37_480.0, Some(0.92)));
        // pg_sleep: grows with the clients on an idle host
        assert!(!saturated_alone(908.0, 3700.0, Some(0.24)));
        assert!(!saturated_alone(0.0, 0.0, Some(1.0)));
    }

    #[test]
    fn a_level_far_above_the_cpu_under_load_was_measured_slow() {
        // runs 43 and 44: the scan's level against its CPU under load; the mixed transaction's
        // short statements are never judged
        assert_eq!(slow_level(1.462, 0.0565, 1.32), None);
        let r = slow_level(2.192, 0.0895, 1.345).expect("slow");
        assert!((r - 1.63).abs() < 0.01, "{r}");
        assert_eq!(slow_level(0.168, 0.0565, 0.0587), None);
    }

    #[test]
    fn delay_becomes_service_only_where_a_loaded_type_falls_short() {
        // run 35: the mixed transaction's level 0.1315 ms a round trip, the path 0.0841, its CPU
        // under load 0.0547: 0.0073 of the hops' 0.0487 moves
        let levels = [(4.3, None), (1.46, Some(1.32)), (0.1315, Some(0.0547))];
        assert!((delay_to_cpu(&levels, 0.0841, 0.0487) - 0.0073).abs() < 1e-12);
        // nothing falls short: nothing moves
        assert_eq!(delay_to_cpu(&levels[..2], 0.0841, 0.0487), 0.0);
        assert_eq!(delay_to_cpu(&[(0.1315, None)], 0.0841, 0.0487), 0.0);
        // never more than the delays there are
        assert_eq!(delay_to_cpu(&[(0.1, Some(0.09))], 0.08, 0.03), 0.03);
        assert_eq!(delay_to_cpu(&[(0.1, Some(0.09))], 0.08, -1.0), 0.0);
    }

    #[test]
    fn a_direct_reference_far_below_the_paths_is_colocated() {
        // run 16's references: 0.0298 ms direct, 0.129 through PgBouncer
        assert!(colocated(&[0.0298, 0.03, 0.029], &[0.129, 0.13, 0.128]));
        // the widest ratio of twenty ordinary calibrations: 0.063 against 0.137
        assert!(!colocated(&[0.063], &[0.137]));
        assert!(!colocated(&[0.084, 0.09], &[0.126, 0.13]));
        assert!(!colocated(&[], &[0.13]));
        assert!(!colocated(&[0.03], &[]));
    }

    #[test]
    fn the_scale_to_the_path_stays_within_its_bounds() {
        assert!((path_scale(0.1, 0.05) - 0.5).abs() < 1e-12);
        assert_eq!(path_scale(0.1, 0.001), PATH_SCALE.0);
        // a path's cost above the whole level: the least service, not the direct timings
        assert_eq!(path_scale(0.0567, -0.0043), PATH_SCALE.0);
        assert_eq!(path_scale(0.1, 10.0), PATH_SCALE.1);
        assert_eq!(path_scale(0.0, 0.05), 1.0);
    }

    #[test]
    fn equal_delays_are_a_constant_and_spread_ones_a_table() {
        assert_eq!(
            delay_dist(&[0.001; 40]).unwrap(),
            json!({"const_ms": 0.001})
        );
        let spread: Vec<f64> = (1..=50).map(|i| i as f64 * 0.01).collect();
        assert!(delay_dist(&spread).unwrap().get("empirical").is_some());
        assert!(delay_dist(&[]).is_err());
    }
    use crate::experiment::load::merge;

    #[test]
    fn bouncer_latency_splits_into_hop_and_cpu() {
        assert_eq!(split_bouncer_latency(0.1, 0.15).0, 0.1);
        assert!((split_bouncer_latency(0.1, 0.15).1 - 0.05).abs() < 1e-12);
        // never below the floor, even when PgBouncer looked faster than direct
        assert_eq!(split_bouncer_latency(0.1, 0.09).1, MIN_BOUNCER_CPU_MS);
        assert_eq!(split_bouncer_latency(0.1, 0.1).1, MIN_BOUNCER_CPU_MS);
    }

    #[test]
    fn distributions_scale_in_every_time_value() {
        let ln = DistFit::Lognormal {
            median_ms: 1.0,
            p95_ms: 3.0,
            mu: 0.0,
            sigma: 0.67,
        };
        assert_eq!(
            scale_dist(&ln, 0.25),
            json!({"lognormal": {"median_ms": 0.25, "p95_ms": 0.75}})
        );
        let g = DistFit::Gamma {
            shape: 2.0,
            mean_ms: 4.0,
        };
        assert_eq!(
            scale_dist(&g, 0.5),
            json!({"gamma": {"shape": 2.0, "mean_ms": 2.0}})
        );
        let e = DistFit::Exponential { mean_ms: 2.0 };
        assert_eq!(scale_dist(&e, 1.5), json!({"exp": {"mean_ms": 3.0}}));
        let q = DistFit::Empirical {
            quantiles: vec![(0.0, 1.0), (0.5, 2.0), (1.0, 4.0)],
        };
        assert_eq!(
            scale_dist(&q, 0.5),
            json!({"empirical": {"quantiles": [[0.0, 0.5], [0.5, 1.0], [1.0, 2.0]]}})
        );
        assert_eq!(scale_dist(&g, 0.0), json!({"const_ms": 0.0}));
        // every scaled form parses as an experiment duration
        for v in [
            scale_dist(&ln, 0.3),
            scale_dist(&g, 0.3),
            scale_dist(&e, 0.3),
            scale_dist(&q, 0.3),
            scale_dist(&q, 0.0),
        ] {
            serde_json::from_value::<crate::experiment::file::DurationSpec>(v).unwrap();
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(levels(8), vec![1, 2, 4, 8]);
        assert_eq!(levels(12), vec![1, 2, 4, 8, 12]);
        assert_eq!(levels(1), vec![1]);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95), 4.8);
        assert_eq!(sig4(0.123456), 0.1235);
        assert_eq!(sig4(12345.0), 12350.0);
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(utc_timestamp(1_767_225_599), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn contention_is_what_the_cores_do_not_explain() {
        // pure core saturation: nothing left over
        let pts = [(1.0, 1000.0), (2.0, 2000.0), (4.0, 3000.0), (8.0, 3000.0)];
        assert_eq!(residual_contention(&pts, 1000.0, 3000.0), (0.0, 0.0));
        // a retrograde tail: κ > 0, recovered exactly from a noiseless curve
        let kappa = 0.002;
        let pts: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0, 16.0]
            .iter()
            .map(|&n: &f64| (n, (n * 1000.0).min(3000.0) / (1.0 + kappa * n * (n - 1.0))))
            .collect();
        let (s, k) = residual_contention(&pts, 1000.0, 3000.0);
        assert!(s.abs() < 1e-9 && (k - kappa).abs() < 1e-9, "{s} {k}");
        // superlinear points (negative residuals) never give negative parameters
        let pts = [(1.0, 1000.0), (2.0, 2500.0), (4.0, 3000.0)];
        let (s, k) = residual_contention(&pts, 1000.0, 3000.0);
        assert!(s >= 0.0 && k >= 0.0);
    }

    #[test]
    fn fractions_keep_the_ceilings_cpu() {
        let split = fit::split_wait_cpu_from_ceiling(1.0, 4000.0, 2.0).unwrap();
        // cpu 0.5 ms of a 0.8 ms service time
        let f = fractions(0.8, split.cpu_ms);
        assert!((f.cpu - 0.625).abs() < 1e-12 && (f.wait - 0.375).abs() < 1e-12);
        // ceiling needs more CPU than the service time: all CPU, none waiting
        let f = fractions(0.4, split.cpu_ms);
        assert!((f.cpu - 1.25).abs() < 1e-12 && f.wait == 0.0);
    }

    fn inputs() -> ModelInputs {
        let samples: Vec<f64> = (1..200).map(|i| 0.1 + (i as f64 * 0.37) % 0.5).collect();
        let best = fit::best_fit(&samples).unwrap();
        let all = fit::fit_all(&samples).unwrap();
        ModelInputs {
            name: "local".into(),
            provenance: Map::new(),
            cores: 2,
            rtt_ms: 0.05,
            bouncer: Some((0.05, 0.02)),
            client_connect: Some(lognormal_of(&[0.5, 0.6, 0.7, 0.9])),
            backend_start: Some(lognormal_of(&[2.0, 2.5, 3.0, 4.0])),
            superuser_reserved_connections: Some(3),
            txs: vec![TxMeasured {
                name: "select".into(),
                statements: 1,
                weight: 1.0,
                service_ms: samples,
                latency_mean_ms: 0.4,
                best,
                all,
            }],
            fractions: vec![Fractions {
                wait: 0.4,
                cpu: 0.6,
            }],
            contention: residual_contention(
                &[(1.0, 1000.0), (2.0, 1900.0), (4.0, 3000.0), (8.0, 2800.0)],
                1000.0,
                3000.0,
            ),
            wakeup: Some(json!({"const_ms": 0.3})),
            tx_wakeups: vec![json!({"const_ms": 0.7})],
            tx_wakeup_by_idle: vec![json!([[2.0, 0.8], [5.0, 1.0], [50.0, 3.0]])],
            bouncer_wakeup: Some(0.0075),
            bouncer_on_postgres_host: true,
            per_core: true,
            cross_core_wakeup: Some(0.031),
            app_on_postgres_host: true,
            response_behind_statement: Some(0.42),
        }
    }

    #[test]
    fn the_model_merges_under_an_experiment_and_validates() {
        let model = build_model(&inputs());
        for k in ["name", "description", "provenance", "defaults"] {
            assert!(model.get(k).is_some(), "{k}");
        }
        let mf: crate::experiment::file::ModelFile = serde_json::from_value(model.clone()).unwrap();
        assert_eq!(mf.name, "local");
        let d = &model["defaults"];
        assert_eq!(d["postgres"]["cores"], 2);
        assert_eq!(d["postgres"]["cpu_scheduling"], "per_core");
        assert_eq!(
            d["postgres"]["cross_core_wakeup"],
            json!({"const_ms": 0.031})
        );
        assert_eq!(d["app"]["on_postgres_host"], true);
        assert_eq!(d["postgres"]["response_behind_statement"], 0.42);
        assert_eq!(d["postgres"]["scheduler_slice_ms"], 1.5);
        // concurrency 1's 0.02 ms: 0.005 per query and two wake-ups of 0.0075
        assert_eq!(d["pgbouncer"]["cpu_per_query"], json!({"const_ms": 0.005}));
        assert_eq!(
            d["pgbouncer"]["cpu_per_wakeup"],
            json!({"const_ms": 0.0075})
        );
        assert_eq!(d["network"]["app_postgres_rtt_ms"], 0.05);
        // the measured hop is both app ↔ PgBouncer and PgBouncer ↔ PostgreSQL
        assert_eq!(d["network"]["app_bouncer_rtt_ms"], 0.05);
        assert_eq!(d["network"]["bouncer_postgres_rtt_ms"], 0.05);
        assert_eq!(d["network"]["wakeup"], json!({"const_ms": 0.3}));
        assert_eq!(
            d["workload"]["transactions"][0]["wakeup"],
            json!({"const_ms": 0.7})
        );
        assert_eq!(
            d["workload"]["transactions"][0]["wakeup_by_idle"],
            json!([[2.0, 0.8], [5.0, 1.0], [50.0, 3.0]])
        );
        assert_eq!(d["pgbouncer"]["on_postgres_host"], true);
        // the experiment of the live tests, merged over the model's defaults
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/bench-local.json"),
        )
        .unwrap();
        let exp: Value = serde_json::from_str(&text).unwrap();
        let mut doc = mf.defaults.clone();
        merge(&mut doc, &exp);
        let t = &doc["workload"]["transactions"][0];
        assert_eq!(t["name"], "select");
        assert!(t.get("statement_cpu").is_some() && t.get("sql").is_some());
        let (mut file, problems) = parse_file(&doc);
        assert!(problems.is_empty(), "{problems:?}");
        let (scenario, _warnings) = crate::experiment::validate(&mut file).unwrap();
        assert_eq!(scenario.workload.txs.len(), 1);
    }
}
