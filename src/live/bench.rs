//! `poolsim bench`: every sweep point of an experiment run for real against a live PostgreSQL +
//! PgBouncer, `replications` times, reported in the simulator's results schema with
//! `"source": "measured"`.
//!
//! Per replication: the point's PgBouncer settings are applied through the admin console
//! (`SET …`, then `RECONNECT` so that the point starts from empty PgBouncer pools), the load
//! generator runs (warm-up, then the window), and meanwhile a sampler reads `SHOW POOLS` and
//! `pg_stat_activity` every [`SAMPLE_PERIOD`] and `SHOW STATS` / `pg_stat_database` at both ends
//! of the window. The server-side metrics come from those samples:
//!
//! | metric | from |
//! |---|---|
//! | `bouncer_server_utilization` | Δ(`total_xact_time` − `total_wait_time`) / window / `default_pool_size` (the mean `sv_active`; sampled `sv_active` in session mode) |
//! | `bouncer_cl_waiting_max` | largest sampled `cl_waiting` |
//! | `bouncer_avg_wait_ms` | Δ`total_wait_time` / Δ server assignments (transactions before 1.23) |
//! | `reserve_opened` | largest sampled server count above `default_pool_size` |
//! | `postgres_peak_connections`, `postgres_slot_utilization` | sampled client backends (peak; mean / usable slots) |
//! | `replica_peak_connections` | the same on the replica |
//! | `connections_opened_per_s` | app connections to PgBouncer + Δ`pg_stat_database.sessions` |
//!
//! CPU utilisations are not measured and are left out of the points' metrics. Afterwards the
//! original PgBouncer settings are restored and the run checks that no connection named
//! `poolsim-bench` is left on the servers.

use super::admin::{self, Monitor, PoolsSample};
use super::loadgen::{self, Db, Phase, RunOutput};
use super::pg::{error_text, Endpoint, PgDb, APPLICATION_NAME, MONITOR_APPLICATION_NAME};
use super::speed;
use super::sql::{compile, LiveTx};
use crate::experiment::{BouncerSpec, Invalid, PoolMode, Problem, Scenario, Target};
use crate::report::{self, MetricOut, PointOut, Results, RunOut};
use crate::sim::{metric_index, RunRecord, METRIC_NAMES};
use crate::sweep::{summarize, Plan, Point};
use anyhow::{anyhow, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often the servers are sampled during the window.
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// Metrics that live mode does not measure (left out of measured points).
pub const NOT_MEASURED: &[&str] = &["postgres_cpu_utilization", "bouncer_cpu_utilization"];

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What `bench` needs besides the experiment.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub pg: String,
    pub bouncer: Option<String>,
    pub bouncer_admin: Option<String>,
    pub replica: Option<String>,
    /// Overrides `run.replications` of every point.
    pub replications: Option<u32>,
    /// Runtime worker threads (1: a single-threaded runtime).
    pub threads: usize,
    /// Run each point's replications one after another, instead of interleaving them with
    /// those of the points that run the same workload (see [`schedule`]).
    pub replications_together: bool,
    /// Draw a progress bar on stderr (the caller checks that stderr is a terminal).
    pub progress: bool,
    /// The machine, as the caller found it (written into the environment).
    pub machine: Value,
}

/// The results, and what went wrong on the way.
pub struct Outcome {
    pub results: Results,
    /// Stopped by Ctrl-C: the results hold what was measured until then.
    pub interrupted: bool,
    /// Errors met during the run (servers gone, settings not applied, leftovers); the run went
    /// on, and they are also in the results' environment.
    pub errors: Vec<String>,
}

/// What one point's replications gathered, in whatever order they ran.
#[derive(Default)]
struct PointRuns {
    records: Vec<RunRecord>,
    /// Failed requests by cause: (count, first message).
    errors: BTreeMap<String, (u64, String)>,
    /// The host's speed before each replication and after the last.
    probes: Vec<speed::Probe>,
    /// Each record on its own, as the results show it.
    runs: Vec<RunOut>,
}

/// Consecutive points that run the same workload (`workload` of the resolved experiment)
/// share a group: the group number of each point.
pub fn workload_groups(points: &[Point]) -> Vec<usize> {
    let mut groups = Vec::with_capacity(points.len());
    let mut last: Option<Value> = None;
    let mut g = 0;
    for p in points {
        let w = serde_json::to_value(&p.resolved.workload).unwrap_or(Value::Null);
        if last.as_ref().is_some_and(|l| *l != w) {
            g += 1;
        }
        last = Some(w);
        groups.push(g);
    }
    groups
}

/// The order of the replications, as (point, replication). Within a group of consecutive
/// points that run the same workload, round-robin: every point's first replication, then every
/// point's second, … — so that a spell of the host's speed (on a shared virtual machine the same
/// statement runs up to a quarter slower for a minute or two) spreads over the group's points,
/// each point's mean averaging over the group's whole span, and its interval showing the spell,
/// instead of one point taking it whole. Groups run one after another in plan order: one
/// workload's writes change what another reads (dead rows lengthen a scan), so their order is
/// the plan's. `together`: each point's replications one after another.
pub fn schedule(groups: &[usize], reps: &[u32], together: bool) -> Vec<(usize, u32)> {
    let mut order = Vec::with_capacity(reps.iter().map(|&r| r as usize).sum());
    let mut start = 0;
    while start < reps.len() {
        let mut end = start + 1;
        while end < reps.len() && !together && groups.get(end) == groups.get(start) {
            end += 1;
        }
        let most = reps[start..end].iter().copied().max().unwrap_or(0);
        for rep in 0..most {
            for (pi, &r) in reps.iter().enumerate().take(end).skip(start) {
                if rep < r {
                    order.push((pi, rep));
                }
            }
        }
        start = end;
    }
    order
}

/// Run the plan's points for real. Builds its own tokio runtime.
pub fn bench(plan: &Plan, warnings: &[Problem], opts: &Options) -> Result<Outcome> {
    let rt = super::runtime(opts.threads)?;
    rt.block_on(bench_async(plan, warnings, opts))
}

fn parse(what: &str, url: &str, app: &str) -> Result<Endpoint> {
    Endpoint::parse(what, url, app).map_err(|e| anyhow!(e))
}

async fn reach(name: &str, ep: &Endpoint) -> Result<Monitor> {
    match tokio::time::timeout(CONNECT_TIMEOUT, Monitor::connect(ep.clone())).await {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) => Err(anyhow!("cannot connect to {name} at {}: {e}", ep.shown)),
        Err(_) => Err(anyhow!(
            "cannot connect to {name} at {}: no answer within {} s",
            ep.shown,
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

fn first_row_value(rows: &[admin::Row], col: &str) -> Option<String> {
    rows.first().and_then(|r| r.get(col)).cloned()
}

async fn pg_settings(m: &mut Monitor) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("url".into(), Value::String(m.endpoint.shown.clone()));
    if let Ok(rows) = m
        .rows(
            "SELECT name, setting FROM pg_settings WHERE name IN ('server_version', \
             'max_connections', 'superuser_reserved_connections', 'reserved_connections', \
             'statement_timeout', 'idle_in_transaction_session_timeout', 'shared_buffers', \
             'max_worker_processes') ORDER BY name",
        )
        .await
    {
        for r in rows {
            if let (Some(n), Some(s)) = (r.get("name"), r.get("setting")) {
                out.insert(n.clone(), Value::String(s.clone()));
            }
        }
    }
    if let Ok(rows) = m.rows("SELECT pg_is_in_recovery()::text AS r").await {
        if let Some(r) = first_row_value(&rows, "r") {
            out.insert("in_recovery".into(), Value::Bool(r == "true"));
        }
    }
    out
}

fn setting_u32(env: &Map<String, Value>, key: &str) -> Option<u32> {
    env.get(key)?.as_str()?.parse().ok()
}

/// Everything the sampler collects during one window.
#[derive(Default)]
struct Samples {
    pools: Vec<PoolsSample>,
    backends: Vec<f64>,
    replica_backends: Vec<f64>,
    stats: Option<(admin::StatsSample, admin::StatsSample)>,
    sessions: Option<f64>,
    notes: Vec<String>,
}

struct Watchers {
    admin: Option<Monitor>,
    pg: Monitor,
    replica: Option<Monitor>,
    bouncer_db: String,
}

async fn sessions(w: &mut Watchers) -> Option<f64> {
    let mut total = admin::pg_sessions(&mut w.pg).await.ok()?;
    if let Some(r) = &mut w.replica {
        total += admin::pg_sessions(r).await.ok()?;
    }
    Some(total)
}

async fn sample(
    mut w: Watchers,
    mut phase: watch::Receiver<Phase>,
    settings: Option<BouncerSpec>,
) -> (Watchers, Samples) {
    let mut s = Samples::default();
    if phase
        .wait_for(|p| matches!(p, Phase::Measuring | Phase::Done))
        .await
        .map(|p| *p == Phase::Done)
        .unwrap_or(true)
    {
        return (w, s);
    }
    let db = w.bouncer_db.clone();
    let stats0 = match &mut w.admin {
        Some(a) => admin::show_stats(a, &db).await.ok(),
        None => None,
    };
    let sessions0 = sessions(&mut w).await;
    let mut tick = tokio::time::interval(SAMPLE_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = phase.wait_for(|p| *p == Phase::Done) => break,
        }
        if let Some(a) = &mut w.admin {
            let seen = a.reconnects;
            if let Ok(p) = admin::show_pools(a, &db).await {
                s.pools.push(p);
            }
            if a.reconnects != seen {
                // PgBouncer came back (restarted from its file): give it the point's settings again
                if let Some(b) = &settings {
                    match admin::apply(a, &db, b).await {
                        Ok(_) => s.notes.push("PgBouncer restarted during the window; the point's settings were applied again".into()),
                        Err(e) => s.notes.push(format!("PgBouncer restarted during the window and its settings could not be applied again: {e}")),
                    }
                }
            }
        }
        if let Ok(n) = admin::pg_backends(&mut w.pg).await {
            s.backends.push(n);
        }
        if let Some(r) = &mut w.replica {
            if let Ok(n) = admin::pg_backends(r).await {
                s.replica_backends.push(n);
            }
        }
    }
    if let (Some(a), Some(s0)) = (&mut w.admin, stats0) {
        if let Ok(s1) = admin::show_stats(a, &db).await {
            // totals that went down: PgBouncer restarted, the difference means nothing
            if s1.xact_count >= s0.xact_count && s1.wait_time_us >= s0.wait_time_us {
                s.stats = Some((s0, s1));
            }
        }
    }
    if let (Some(a), Some(b)) = (sessions0, sessions(&mut w).await) {
        s.sessions = Some((b - a).max(0.0));
    }
    (w, s)
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}
fn peak(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(0.0, f64::max)
}

/// Fill the server-side metrics of one replication from its samples.
fn server_metrics(
    v: &mut [f64],
    sc: &Scenario,
    s: &Samples,
    out: &RunOutput,
    usable_slots: Option<u32>,
) {
    let set = |v: &mut [f64], name: &str, x: f64| v[metric_index(name)] = x;
    let window = out.window.as_secs_f64().max(1e-9);
    if let Some(b) = &sc.bouncer {
        // Servers are linked for the transactions' (statement mode: queries') time in
        // PgBouncer's own totals, a better estimate of the mean sv_active than samples taken
        // through the same single-threaded process; session mode links for whole sessions.
        // PgBouncer starts those clocks when the client's query arrives, before a server is
        // assigned, so the clients' wait for a server comes off.
        let linked = match (b.mode, s.stats) {
            (PoolMode::Transaction, Some((s0, s1))) => Some(
                ((s1.xact_time_us - s0.xact_time_us) - (s1.wait_time_us - s0.wait_time_us))
                    / 1e6
                    / window,
            ),
            (PoolMode::Statement, Some((s0, s1))) => Some(
                ((s1.query_time_us - s0.query_time_us) - (s1.wait_time_us - s0.wait_time_us))
                    / 1e6
                    / window,
            ),
            _ => mean(&s.pools.iter().map(|p| p.sv_active).collect::<Vec<_>>()),
        };
        if let (Some(a), true) = (linked, b.pool_size != u32::MAX) {
            set(
                v,
                "bouncer_server_utilization",
                (a.max(0.0) / b.pool_size as f64).min(1.0),
            );
        }
        let waiting: Vec<f64> = s.pools.iter().map(|p| p.cl_waiting).collect();
        set(v, "bouncer_cl_waiting_max", peak(&waiting));
        if let Some((s0, s1)) = s.stats {
            let n = s1.assignments - s0.assignments;
            if n > 0.0 {
                set(
                    v,
                    "bouncer_avg_wait_ms",
                    (s1.wait_time_us - s0.wait_time_us).max(0.0) / n / 1e3,
                );
            }
        }
        if b.pool_size != u32::MAX {
            let servers: Vec<f64> = s.pools.iter().map(|p| p.servers).collect();
            set(
                v,
                "reserve_opened",
                (peak(&servers) - b.pool_size as f64).max(0.0),
            );
        }
    }
    set(v, "postgres_peak_connections", peak(&s.backends));
    if let (Some(m), Some(slots)) = (mean(&s.backends), usable_slots) {
        set(v, "postgres_slot_utilization", m / slots.max(1) as f64);
    }
    set(v, "replica_peak_connections", peak(&s.replica_backends));
    if let Some(d) = s.sessions {
        set(
            v,
            "connections_opened_per_s",
            (out.opened_bouncer as f64 + d) / window,
        );
    }
}

fn needs(sc: &Scenario, t: Target) -> bool {
    sc.pools.iter().any(|p| p.target == t)
}

struct Progress {
    bar: ProgressBar,
    total_s: f64,
    done_s: f64,
}

impl Progress {
    fn new(show: bool, total_s: f64) -> Progress {
        let bar = if show {
            let pb = ProgressBar::with_draw_target(
                Some((total_s * 10.0) as u64),
                ProgressDrawTarget::stderr(),
            );
            pb.set_style(
                ProgressStyle::with_template(
                    "{spinner} bench [{bar:30}] {msg} {elapsed} elapsed, eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            pb
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            total_s,
            done_s: 0.0,
        }
    }
}

async fn bench_async(plan: &Plan, warnings: &[Problem], opts: &Options) -> Result<Outcome> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut notes: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();

    // --- what the points need, and the SQL they run
    let mut compiled: Vec<Vec<LiveTx>> = Vec::new();
    let mut problems = Vec::new();
    for p in &plan.points {
        match compile(&p.resolved) {
            Ok(t) => compiled.push(t),
            Err(ps) => problems.extend(ps),
        }
    }
    if !problems.is_empty() {
        problems.sort();
        problems.dedup();
        return Err(Invalid(problems).into());
    }
    let any = |t| plan.points.iter().any(|p| needs(&p.scenario, t));
    let want_bouncer = any(Target::Bouncer);
    let want_replicas = any(Target::Replicas);

    // --- endpoints, reached before anything runs
    let pg = parse("--pg", &opts.pg, APPLICATION_NAME)?;
    let bouncer = match (&opts.bouncer, want_bouncer) {
        (Some(u), _) => Some(parse("--bouncer", u, APPLICATION_NAME)?),
        (None, true) => {
            let p = plan
                .points
                .iter()
                .flat_map(|p| &p.scenario.pools)
                .find(|p| p.target == Target::Bouncer)
                .expect("some pool targets pgbouncer");
            return Err(Invalid(vec![Problem {
                severity: crate::experiment::Severity::Error,
                path: format!("app.pools.{}.target", p.name),
                value: "\"pgbouncer\"".into(),
                message: "this app pool connects through PgBouncer, and no PgBouncer URL was given"
                    .into(),
                hint: "give --bouncer URL (or set POOLSIM_BOUNCER_URL)".into(),
            }])
            .into());
        }
        (None, false) => None,
    };
    let replica = match &opts.replica {
        Some(u) => Some(parse("--replica", u, APPLICATION_NAME)?),
        None => None,
    };
    if want_replicas && replica.is_none() {
        notes
            .push("app pools with target replicas run against --pg: no --replica was given".into());
    }
    let mut pg_mon = reach(
        "PostgreSQL",
        &pg.with_dbname(&pg.dbname, MONITOR_APPLICATION_NAME),
    )
    .await?;
    let mut admin_mon = None;
    let mut bouncer_env = Map::new();
    if let Some(b) = &bouncer {
        let mut check = reach("PgBouncer", b).await?;
        check.close();
        let admin_ep = match &opts.bouncer_admin {
            Some(u) => parse("--bouncer-admin", u, MONITOR_APPLICATION_NAME)?,
            None => b.with_dbname("pgbouncer", MONITOR_APPLICATION_NAME),
        };
        let mut a = reach("the PgBouncer admin console", &admin_ep)
            .await
            .context("bench applies each point's PgBouncer settings through the admin console; give --bouncer-admin URL of a user listed in admin_users")?;
        bouncer_env.insert("url".into(), Value::String(b.shown.clone()));
        bouncer_env.insert("admin_url".into(), Value::String(admin_ep.shown.clone()));
        if let Ok(rows) = a.rows("SHOW VERSION").await {
            if let Some(v) = rows.first().and_then(|r| r.values().next()) {
                bouncer_env.insert("version".into(), Value::String(v.clone()));
            }
        }
        admin_mon = Some((a, admin_ep));
    }
    let mut replica_mon = match &replica {
        Some(r) => Some(
            reach(
                "the replica",
                &r.with_dbname(&r.dbname, MONITOR_APPLICATION_NAME),
            )
            .await?,
        ),
        None => None,
    };

    // --- the environment as found
    let pg_env = pg_settings(&mut pg_mon).await;
    let usable = setting_u32(&pg_env, "max_connections").map(|m| {
        m.saturating_sub(setting_u32(&pg_env, "superuser_reserved_connections").unwrap_or(0))
            .saturating_sub(setting_u32(&pg_env, "reserved_connections").unwrap_or(0))
    });
    let replica_env = match &mut replica_mon {
        Some(m) => Some(pg_settings(m).await),
        None => None,
    };
    let mut original_bouncer: BTreeMap<String, String> = BTreeMap::new();
    if let Some((a, _)) = &mut admin_mon {
        let cfg = admin::show_config(a)
            .await
            .map_err(|e| anyhow!("SHOW CONFIG on the PgBouncer admin console failed: {e}"))?;
        let keys = [
            "pool_mode",
            "max_client_conn",
            "default_pool_size",
            "min_pool_size",
            "reserve_pool_size",
            "reserve_pool_timeout",
            "query_wait_timeout",
            "server_login_retry",
            "max_db_connections",
            "server_lifetime",
            "server_idle_timeout",
            "server_reset_query",
            "listen_port",
        ];
        let mut settings = Map::new();
        for k in keys {
            if let Some(v) = cfg.get(k) {
                settings.insert(k.into(), Value::String(v.clone()));
                original_bouncer.insert(k.into(), v.clone());
            }
        }
        bouncer_env.insert("settings_before".into(), Value::Object(settings));
    }
    if let Some(mc) = setting_u32(&pg_env, "max_connections") {
        let exp = plan.points[0].scenario.primary.max_connections;
        if exp != mc {
            notes.push(format!(
                "postgres.max_connections is {exp} in the experiment, {mc} on the server: bench measures the server as it is"
            ));
        }
    }

    // --- the workload's SQL must run before the load does
    for (i, tx) in compiled[0].iter().enumerate() {
        let opens_own = tx.statements.len() > 1 && !tx.block;
        if opens_own {
            continue;
        }
        let mut sql = String::from("BEGIN;\n");
        for s in &tx.statements {
            sql.push_str(&s.render_with(tx.params.first().map_or(1, |p| p.0)));
            sql.push_str(";\n");
        }
        sql.push_str("ROLLBACK;");
        let probe = pg.with_dbname(&pg.dbname, MONITOR_APPLICATION_NAME);
        let client = probe
            .connect()
            .await
            .map_err(|e| anyhow!("cannot connect to PostgreSQL at {}: {e}", pg.shown))?
            .client;
        if let Err(e) = client.batch_execute(&sql).await {
            return Err(anyhow!(
                "workload.transactions.{i} (`{}`) fails on PostgreSQL at {}: {}",
                tx.name,
                pg.shown,
                error_text(&e)
            ));
        }
    }

    // baseline of our own connections, to check that none is left afterwards
    let baseline = admin::pg_connections_named(&mut pg_mon, APPLICATION_NAME)
        .await
        .unwrap_or(0.0);

    // --- Ctrl-C: stop the run, keep what was measured
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
            eprintln!("\ninterrupted: finishing the current replication's window and writing partial results (Ctrl-C again to quit at once)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });

    let db = Arc::new(PgDb::new(
        bouncer.clone(),
        pg.clone(),
        replica.iter().cloned().collect(),
    ));
    let reps_of = |p: &Point| {
        opts.replications
            .unwrap_or(p.scenario.run.replications)
            .max(1)
    };
    let total_s: f64 = plan
        .points
        .iter()
        .map(|p| reps_of(p) as f64 * p.scenario.run.duration.as_s_f64())
        .sum();
    let mut progress = Progress::new(opts.progress, total_s);
    let bouncer_db = bouncer
        .as_ref()
        .map(|b| b.dbname.clone())
        .unwrap_or_default();
    let mut watchers = Watchers {
        admin: admin_mon.map(|(a, _)| a),
        pg: pg_mon,
        replica: replica_mon,
        bouncer_db: bouncer_db.clone(),
    };

    // the host's speed before every replication and after a point's last (see `speed`)
    let prober = speed::Prober::new();
    let mut host_speed: Vec<Value> = Vec::new();
    let mut points_out = Vec::new();
    let mut interrupted = false;
    let n_points = plan.points.len();
    let reps_per_point: Vec<u32> = plan.points.iter().map(reps_of).collect();
    let order = schedule(
        &workload_groups(&plan.points),
        &reps_per_point,
        opts.replications_together,
    );
    let mut runs: Vec<PointRuns> = (0..n_points).map(|_| PointRuns::default()).collect();
    let run_start = Instant::now();
    for &(pi, rep) in &order {
        let point = &plan.points[pi];
        let sc = &point.scenario;
        let reps = reps_per_point[pi];
        if *stop_rx.borrow() {
            interrupted = true;
            break;
        }
        progress.bar.set_message(format!(
            "point {}/{n_points}, replication {}/{reps}",
            pi + 1,
            rep + 1
        ));
        if let (Some(b), true) = (&sc.bouncer, needs(sc, Target::Bouncer)) {
            if b.processes > 1 {
                notes.push(format!(
                    "point {}: pgbouncer.processes = {} cannot be applied; measured with the running PgBouncer",
                    point.index, b.processes
                ));
            }
            if let Some(a) = &mut watchers.admin {
                match admin::apply(a, &bouncer_db, b).await {
                    Ok(_) => {}
                    Err(e) if e.contains("[databases]") => {
                        return Err(anyhow!("point {}: {e}", point.index));
                    }
                    Err(e) => errors.push(format!(
                        "point {} replication {rep}: PgBouncer settings not applied: {e}",
                        point.index
                    )),
                }
                if let Err(e) = admin::reconnect(a, &bouncer_db, Duration::from_secs(5)).await {
                    errors.push(format!(
                        "point {} replication {rep}: RECONNECT failed: {e}",
                        point.index
                    ));
                }
            }
            // settle and verify: a replication starts only once PgBouncer answers a login
            let limit = Duration::from_secs_f64(b.login_retry.as_s_f64() + 10.0);
            match login_probe(&*db, limit).await {
                Ok(waited) if waited > Duration::from_secs(1) => notes.push(format!(
                    "point {} replication {rep}: PgBouncer answered logins again only after {:.1} s; the replication started after that",
                    point.index,
                    waited.as_secs_f64()
                )),
                Ok(_) => {}
                Err(e) => errors.push(format!(
                    "point {} replication {rep}: PgBouncer did not answer a login within {} s before the replication: {e}",
                    point.index,
                    limit.as_secs()
                )),
            }
        }
        runs[pi].probes.push(prober.probe());
        let window_s = run_start.elapsed().as_secs_f64() + sc.run.warmup.as_s_f64();
        let (phase_tx, phase_rx) = watch::channel(Phase::Starting);
        let settings = sc.bouncer.clone().filter(|_| needs(sc, Target::Bouncer));
        let sampler = tokio::spawn(sample(watchers, phase_rx, settings));
        let ticker = {
            let bar = progress.bar.clone();
            let base = progress.done_s;
            let t0 = Instant::now();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    bar.set_position(((base + t0.elapsed().as_secs_f64()) * 10.0) as u64);
                }
            })
        };
        let out = loadgen::run(
            db.clone(),
            sc,
            &compiled[pi],
            rep,
            stop_rx.clone(),
            &phase_tx,
        )
        .await;
        let _ = phase_tx.send(Phase::Done);
        ticker.abort();
        let (w, samples) = sampler.await.context("the sampler task failed")?;
        watchers = w;
        progress.done_s += sc.run.duration.as_s_f64();
        progress
            .bar
            .set_position((progress.done_s.min(progress.total_s) * 10.0) as u64);
        for n in out.notes.iter().chain(&samples.notes) {
            errors.push(format!("point {} replication {rep}: {n}", point.index));
        }
        for (k, (n, msg)) in &out.errors {
            let e = runs[pi].errors.entry(k.clone()).or_insert((0, msg.clone()));
            e.0 += n;
        }
        if let Some(mut v) = out.values.clone() {
            server_metrics(&mut v, sc, &samples, &out, usable);
            let record = RunRecord {
                events: v[metric_index("requests_issued")] as u64,
                values: v,
                truncated: out.interrupted,
            };
            runs[pi].runs.push(RunOut {
                replication: rep,
                started_s: (window_s * 10.0).round() / 10.0,
                throughput_rps: record.get("throughput_rps"),
                latency_p95_ms: record.get("latency_p95_ms"),
                failure_rate: record.get("failure_rate"),
            });
            runs[pi].records.push(record);
        }
        if out.interrupted {
            interrupted = true;
        }
        // the host after a point's last replication
        if rep + 1 == reps && !interrupted {
            runs[pi].probes.push(prober.probe());
        }
        if interrupted {
            break;
        }
    }
    for (point, runs) in plan.points.iter().zip(&runs) {
        if !runs.probes.is_empty() {
            host_speed.push(json!({
                "index": point.index,
                "probes": runs.probes,
                "mean": speed::mean(&runs.probes),
            }));
        }
        for (k, (n, msg)) in &runs.errors {
            errors.push(format!(
                "point {}: {n} request(s) failed with {k}; first: {msg}",
                point.index
            ));
        }
        if !runs.records.is_empty() {
            points_out.push(point_out(point, runs));
        }
    }
    progress.bar.finish_and_clear();
    ctrl_c.abort();

    // --- hygiene: restore PgBouncer, release its servers, check for leftovers
    if let Some(a) = &mut watchers.admin {
        for (k, v) in &original_bouncer {
            if matches!(k.as_str(), "listen_port" | "server_reset_query") {
                continue;
            }
            let cur = admin::show_config(a)
                .await
                .ok()
                .and_then(|c| c.get(k).cloned());
            if cur.as_deref().is_some_and(|c| admin::same_setting(c, v)) {
                continue;
            }
            let val = if k == "pool_mode" {
                format!("'{v}'")
            } else {
                v.clone()
            };
            if let Err(e) = a.command(&format!("SET {k} = {val}")).await {
                errors.push(format!("could not restore PgBouncer's {k} = {v}: {e}"));
            }
        }
        if let Err(e) = admin::reconnect(a, &bouncer_db, Duration::from_secs(5)).await {
            errors.push(format!("RECONNECT after the run failed: {e}"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut left = admin::pg_connections_named(&mut watchers.pg, APPLICATION_NAME)
            .await
            .map(|n| n - baseline)
            .unwrap_or(0.0);
        if let Some(r) = &mut watchers.replica {
            left += admin::pg_connections_named(r, APPLICATION_NAME)
                .await
                .unwrap_or(0.0);
        }
        if left <= 0.0 {
            break;
        }
        if Instant::now() >= deadline {
            errors.push(format!(
                "{left} connection(s) with application_name {APPLICATION_NAME} still open on the servers after the run"
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (what, m) in [
        ("PgBouncer admin console", watchers.admin.as_ref()),
        ("PostgreSQL", Some(&watchers.pg)),
        ("replica", watchers.replica.as_ref()),
    ] {
        if let Some(e) = m.and_then(|m| m.first_error.as_ref()) {
            errors.push(format!(
                "monitoring connection to {what} at {} failed during the run: {e}",
                m.map_or(String::new(), |m| m.endpoint.shown.clone())
            ));
        }
    }

    // --- the results document
    let first = &plan.points[0];
    let sc0 = &first.scenario;
    let mut all_warnings: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    all_warnings.extend(notes.iter().cloned());
    let mut env = Map::new();
    env.insert("postgres".into(), Value::Object(pg_env));
    if !bouncer_env.is_empty() {
        env.insert("pgbouncer".into(), Value::Object(bouncer_env));
    }
    if let Some(r) = replica_env {
        env.insert("replica".into(), Value::Object(r));
    }
    env.insert(
        "load_generator".into(),
        json!({
            "runtime_threads": opts.threads.max(1),
            "app_pool": "deadpool 0.13 managed pool with asyncpg semantics (LIFO idle, FIFO waiters, lazy connect, max_queries, reset query)",
            "protocol": "simple query protocol (tokio-postgres 0.7), no TLS",
            "application_name": APPLICATION_NAME,
            "sample_period_ms": SAMPLE_PERIOD.as_millis() as u64,
            "not_measured": NOT_MEASURED,
        }),
    );
    env.insert("machine".into(), opts.machine.clone());
    env.insert(
        "host_speed".into(),
        json!({"method": speed::METHOD, "points": host_speed}),
    );
    env.insert("started_unix_s".into(), json!(started));
    env.insert("interrupted".into(), json!(interrupted));
    env.insert("errors".into(), json!(errors));
    let results = Results {
        schema_version: report::SCHEMA_VERSION,
        poolsim_version: env!("CARGO_PKG_VERSION").to_string(),
        source: "measured".into(),
        experiment: sc0.name.clone(),
        seed: sc0.seed,
        confidence: sc0.run.confidence,
        replications: opts.replications.unwrap_or(sc0.run.replications),
        shard: None,
        axes: report::axes_of(plan),
        warnings: all_warnings,
        points: points_out,
        resolved_experiment: serde_json::to_value(&first.resolved).expect("serialisable"),
        environment: Some(Value::Object(env)),
    };
    Ok(Outcome {
        results,
        interrupted,
        errors,
    })
}

fn point_out(point: &Point, runs: &PointRuns) -> PointOut {
    let records = &runs.records;
    let intervals = summarize(records, point.scenario.run.confidence);
    let mut metrics = Map::new();
    for (i, name) in METRIC_NAMES.iter().enumerate() {
        if NOT_MEASURED.contains(name) {
            continue;
        }
        metrics.insert(
            (*name).to_string(),
            serde_json::to_value(MetricOut::from(&intervals[i])).expect("serialisable"),
        );
    }
    let (slo, verdict) = report::slo_verdicts(&point.scenario, &intervals);
    PointOut {
        index: point.index,
        params: point.params.iter().cloned().collect(),
        replications: records.len() as u32,
        events: records.iter().map(|r| r.events).sum(),
        truncated: records.iter().any(|r| r.truncated),
        metrics,
        slo,
        verdict,
        precision: None,
        model: None,
        runs: runs.runs.clone(),
    }
}

/// Log in through PgBouncer and run `SELECT 1`, retrying (1 s per attempt) until it works or
/// `limit` passes; returns how long that took.
async fn login_probe<D: Db>(db: &D, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let attempt = Duration::from_secs(1);
    let mut last = String::new();
    while start.elapsed() < limit {
        let t = Instant::now();
        let r = tokio::time::timeout(attempt, async {
            let mut c = db.connect(Target::Bouncer).await.map_err(|e| e.message)?;
            db.execute(&mut c, "SELECT 1").await.map_err(|e| e.message)
        })
        .await;
        match r {
            Ok(Ok(())) => return Ok(start.elapsed()),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no answer within {} s", attempt.as_secs()),
        }
        if let Some(rest) = (t + Duration::from_millis(200)).checked_duration_since(Instant::now())
        {
            tokio::time::sleep(rest).await;
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::LoadedExperiment;

    #[test]
    fn replications_interleave_within_a_workload_and_never_across() {
        // two workloads of two points each, three replications a point
        let order = schedule(&[0, 0, 1, 1], &[3, 3, 3, 3], false);
        let want = [
            (0, 0),
            (1, 0),
            (0, 1),
            (1, 1),
            (0, 2),
            (1, 2),
            (2, 0),
            (3, 0),
            (2, 1),
            (3, 1),
            (2, 2),
            (3, 2),
        ];
        assert_eq!(order, want);
        // together: point by point, as the plan lists them
        let order = schedule(&[0, 0, 1, 1], &[3, 3, 3, 3], true);
        let want: Vec<(usize, u32)> = (0..4).flat_map(|p| (0..3).map(move |r| (p, r))).collect();
        assert_eq!(order, want);
        // uneven replications: every one runs, once
        let order = schedule(&[0, 0, 0], &[1, 3, 2], false);
        assert_eq!(order, [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (1, 2)]);
        assert!(schedule(&[], &[], false).is_empty());
    }

    #[test]
    fn points_group_by_their_workload_in_plan_order() {
        let tx = |name: &str| json!([{"name": name, "statement_wait": {"const_ms": 1}}]);
        let doc = json!({
            "run": {"duration_s": 0.2, "warmup_s": 0, "replications": 1},
            "clients": {"users": 2},
            "workload": {"transactions": tx("a")},
            "app": {"pools": {"primary": {}}},
            "sweep": {
                "workload.transactions": [tx("a"), tx("b")],
                "clients.users": [1, 4, 32]
            }
        });
        let loaded = LoadedExperiment::from_doc("x.json", doc);
        let plan = crate::sweep::plan(&loaded, true).unwrap();
        assert_eq!(workload_groups(&plan.points), [0, 0, 0, 1, 1, 1]);
    }
}
