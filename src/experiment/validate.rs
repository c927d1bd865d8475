//! From the serde mirror to the typed [`Scenario`]: defaults filled in (and written back, so the
//! output can show the fully resolved experiment), every problem collected with its path, value
//! and fix; then the lint of the connection math, whose findings are warnings (risky but legal
//! settings are exactly what a planner wants to simulate).

use super::file::*;
use super::*;
use crate::dist::Dist;
use crate::units::{SimDuration, SimTime};

struct V {
    problems: Vec<Problem>,
}

impl V {
    fn push(
        &mut self,
        sev: Severity,
        path: &str,
        value: impl ToString,
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.problems.push(Problem {
            severity: sev,
            path: path.to_string(),
            value: value.to_string(),
            message: msg.into(),
            hint: hint.into(),
        });
    }
    fn err(
        &mut self,
        path: &str,
        value: impl ToString,
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(Severity::Error, path, value, msg, hint);
    }
    fn warn(
        &mut self,
        path: &str,
        value: impl ToString,
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.push(Severity::Warning, path, value, msg, hint);
    }

    fn dist(&mut self, path: &str, spec: &DurationSpec) -> Dist {
        let r = match spec {
            DurationSpec::ConstMs(v) => Dist::constant_ms(*v),
            DurationSpec::Exp { mean_ms } => Dist::exp_mean_ms(*mean_ms),
            DurationSpec::Lognormal { median_ms, p95_ms } => {
                Dist::lognormal_median_p95(*median_ms, *p95_ms)
            }
            DurationSpec::Gamma { shape, mean_ms } => Dist::gamma_shape_mean_ms(*shape, *mean_ms),
            DurationSpec::Uniform { min_ms, max_ms } => Dist::uniform_ms(*min_ms, *max_ms),
            DurationSpec::Empirical { quantiles } => Dist::empirical_ms(quantiles),
        };
        r.unwrap_or_else(|msg| {
            self.err(
                path,
                serde_json::to_string(spec).unwrap_or_default(),
                msg,
                "give valid distribution parameters",
            );
            Dist::ZERO
        })
    }

    fn dist_or(&mut self, path: &str, spec: &mut Option<DurationSpec>, default_ms: f64) -> Dist {
        let s = spec
            .get_or_insert(DurationSpec::ConstMs(default_ms))
            .clone();
        self.dist(path, &s)
    }

    fn seconds(&mut self, path: &str, v: f64, allow_zero: bool) -> SimDuration {
        if !v.is_finite() || v < 0.0 || (!allow_zero && v == 0.0) {
            self.err(
                path,
                v,
                "must be a positive number of seconds",
                "use a value such as 1 or 0.5",
            );
            return SimDuration::ZERO;
        }
        SimDuration::from_s_f64(v)
    }

    fn ms(&mut self, path: &str, v: f64) -> SimDuration {
        if !v.is_finite() || v < 0.0 {
            self.err(
                path,
                v,
                "must be zero or a positive number of milliseconds",
                "use a value such as 30000",
            );
            return SimDuration::ZERO;
        }
        SimDuration::from_ms_f64(v)
    }

    /// A timeout in ms where 0 (or absent) means off; negative values are errors.
    fn off_or_ms(&mut self, path: &str, v: Option<f64>) -> Option<SimDuration> {
        match v {
            None => None,
            Some(0.0) => None,
            Some(x) => Some(self.ms(path, x)).filter(|d| !d.is_zero()),
        }
    }

    /// A timeout in seconds where 0 means off; negative values are errors.
    fn off_or_s(&mut self, path: &str, x: f64) -> Option<SimDuration> {
        if x == 0.0 {
            None
        } else {
            Some(self.seconds(path, x, true)).filter(|d| !d.is_zero())
        }
    }

    fn size(&mut self, path: &str, v: i64, min: i64) -> u32 {
        if v < min || v > u32::MAX as i64 {
            let what = if min == 0 {
                "zero or more"
            } else {
                "at least 1"
            };
            self.err(
                path,
                v,
                format!("must be {what}"),
                format!("set {path} to {what}, e.g. 10"),
            );
            return min.max(0) as u32;
        }
        v as u32
    }

    fn choice<'a>(&mut self, path: &str, v: &str, options: &[&'a str]) -> Option<&'a str> {
        match options.iter().find(|o| **o == v) {
            Some(o) => Some(*o),
            None => {
                self.err(
                    path,
                    format!("\"{v}\""),
                    "unknown value",
                    format!("use one of: {}", options.join(", ")),
                );
                None
            }
        }
    }
}

/// Validate an experiment. `f` gets every default filled in. Returns the scenario and its warnings,
/// or every problem (errors first) when it is invalid.
pub fn validate(f: &mut ExperimentFile) -> Result<(Scenario, Vec<Problem>), Invalid> {
    let mut v = V {
        problems: Vec::new(),
    };

    let name = f.name.get_or_insert_with(|| "experiment".into()).clone();
    let seed = *f.seed.get_or_insert(1);

    // --- run
    let r = f.run.get_or_insert_with(Default::default);
    let duration_s = *r.duration_s.get_or_insert(60.0);
    let warmup_s = *r.warmup_s.get_or_insert(10.0);
    let replications = *r.replications.get_or_insert(5);
    let confidence = *r.confidence.get_or_insert(0.95);
    let max_events = *r.max_events.get_or_insert(4_000_000_000);
    let duration = v.seconds("run.duration_s", duration_s, false);
    let warmup = v.seconds("run.warmup_s", warmup_s, true);
    if duration_s.is_finite() && warmup_s.is_finite() && warmup_s >= duration_s {
        v.err(
            "run.warmup_s",
            warmup_s,
            format!("the warm-up must be shorter than run.duration_s ({duration_s})"),
            "shorten the warm-up or lengthen the run",
        );
    }
    if duration_s > 86_400.0 {
        v.err(
            "run.duration_s",
            duration_s,
            "runs are limited to one simulated day",
            "use a shorter duration and more replications",
        );
    }
    if replications == 0 || replications > 10_000 {
        v.err(
            "run.replications",
            replications,
            "must be between 1 and 10000",
            "use 5 to 30 replications",
        );
    }
    if !(confidence > 0.5 && confidence < 1.0) {
        v.err(
            "run.confidence",
            confidence,
            "must be a level between 0.5 and 1",
            "use 0.95",
        );
    }
    let auto_warmup = *r.auto_warmup.get_or_insert(false);
    let precision = match r.precision.as_mut() {
        None => None,
        Some(pf) => {
            let names = pf
                .metrics
                .get_or_insert_with(|| vec!["latency_p95_ms".into()])
                .clone();
            let mut metrics = Vec::new();
            for (i, n) in names.iter().enumerate() {
                match crate::sim::METRIC_NAMES.iter().position(|m| m == n) {
                    Some(k) => metrics.push(k),
                    None => v.err(
                        &format!("run.precision.metrics.{i}"),
                        format!("\"{n}\""),
                        "not a metric name",
                        "use a metric of the results, e.g. latency_p95_ms or throughput_rps",
                    ),
                }
            }
            let rel = *pf.relative_half_width.get_or_insert(0.05);
            if !(rel.is_finite() && rel > 0.0 && rel < 1.0) {
                v.err(
                    "run.precision.relative_half_width",
                    rel,
                    "must be a fraction between 0 and 1",
                    "use e.g. 0.05 for ±5 %",
                );
            }
            let max = *pf.max_replications.get_or_insert(50);
            if max < replications || max > 10_000 {
                v.err(
                    "run.precision.max_replications",
                    max,
                    format!("must be between run.replications ({replications}) and 10000"),
                    "use e.g. 50",
                );
            }
            Some(Precision {
                metrics,
                relative_half_width: rel,
                max_replications: max,
            })
        }
    };
    if precision.is_some() && replications < 2 {
        v.err(
            "run.replications",
            replications,
            "precision stopping needs at least 2 replications to start from",
            "use 3 or more",
        );
    }
    let run = Run {
        duration,
        warmup,
        auto_warmup,
        precision,
        replications,
        confidence,
        max_events,
    };

    // --- network
    let n = f.network.get_or_insert_with(Default::default);
    let network = Network {
        app_bouncer_rtt: {
            let x = *n.app_bouncer_rtt_ms.get_or_insert(0.2);
            v.ms("network.app_bouncer_rtt_ms", x)
        },
        bouncer_pg_rtt: {
            let x = *n.bouncer_postgres_rtt_ms.get_or_insert(0.1);
            v.ms("network.bouncer_postgres_rtt_ms", x)
        },
        app_pg_rtt: {
            let x = *n.app_postgres_rtt_ms.get_or_insert(0.2);
            v.ms("network.app_postgres_rtt_ms", x)
        },
        wakeup: v.dist_or("network.wakeup", &mut n.wakeup, 0.0),
        wakeup_after: {
            let x = *n.wakeup_after_ms.get_or_insert(1.0);
            v.ms("network.wakeup_after_ms", x)
        },
        wakeup_memory: n
            .wakeup_memory_ms
            .map(|x| v.ms("network.wakeup_memory_ms", x))
            .filter(|d| !d.is_zero()),
    };

    // --- postgres
    let p = f.postgres.get_or_insert_with(Default::default);
    let max_connections = *p.max_connections.get_or_insert(100);
    let reserved = *p.superuser_reserved_connections.get_or_insert(3);
    let cores = *p.cores.get_or_insert(4);
    let sigma = *p.contention_sigma.get_or_insert(0.0);
    let kappa = *p.contention_kappa.get_or_insert(0.0);
    if !(sigma.is_finite() && (0.0..1.0).contains(&sigma)) {
        v.err(
            "postgres.contention_sigma",
            sigma,
            "must be in [0, 1)",
            "use 0 for no contention, ~0.01-0.1 typically",
        );
    }
    if !(kappa.is_finite() && kappa >= 0.0) {
        v.err(
            "postgres.contention_kappa",
            kappa,
            "must be zero or positive",
            "use 0 for no coherency delay, ~0.0001-0.01 typically",
        );
    }
    // absent means shared, and is not written back: results stay as they were without it
    let cpu_scheduling = match p.cpu_scheduling.as_deref() {
        None => CpuScheduling::Shared,
        Some(s) => match v.choice("postgres.cpu_scheduling", s, &["shared", "per_core"]) {
            Some("per_core") => CpuScheduling::PerCore,
            _ => CpuScheduling::Shared,
        },
    };
    if cpu_scheduling == CpuScheduling::PerCore && cores == 0 {
        v.err(
            "postgres.cpu_scheduling",
            "\"per_core\"",
            "needs a number of cores, but postgres.cores is 0 (unlimited)",
            "set postgres.cores to the host's core count (1 or more), or use cpu_scheduling \"shared\"",
        );
    }
    // absent means none, and is not written back either
    let cross_core_wakeup = p
        .cross_core_wakeup
        .as_ref()
        .map(|s| v.dist("postgres.cross_core_wakeup", s));
    if cross_core_wakeup.is_some() && cores == 0 {
        v.err(
            "postgres.cross_core_wakeup",
            serde_json::to_string(&p.cross_core_wakeup).unwrap_or_default(),
            "needs a number of cores (it applies while some but not all cores are busy), but postgres.cores is 0 (unlimited)",
            "set postgres.cores to the host's core count (1 or more), or remove cross_core_wakeup",
        );
    }
    let response_behind_statement = p.response_behind_statement.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&response_behind_statement) {
        v.err(
            "postgres.response_behind_statement",
            response_behind_statement,
            "is a probability, outside 0 … 1",
            "give a probability between 0 and 1 (0 or absent: responses never wait behind a statement)",
        );
    } else if response_behind_statement > 0.0 && cores == 0 {
        v.err(
            "postgres.response_behind_statement",
            response_behind_statement,
            "needs a number of cores (threads wait behind statements for a core), but postgres.cores is 0 (unlimited)",
            "set postgres.cores to the host's core count (1 or more), or remove response_behind_statement",
        );
    }
    let scheduler_slice = match p.scheduler_slice_ms {
        Some(x) if !x.is_finite() || x <= 0.0 => {
            v.err(
                "postgres.scheduler_slice_ms",
                x,
                "must be a positive number of milliseconds",
                "give the kernel's time slice, such as 1.5, or remove it for Linux's default",
            );
            SimDuration::ZERO
        }
        Some(x) => SimDuration::from_ms_f64(x),
        None => SimDuration::from_ms_f64(super::default_scheduler_slice_ms(cores)),
    };
    if reserved >= max_connections {
        v.err(
            "postgres.superuser_reserved_connections",
            reserved,
            format!("leaves no connection for applications (max_connections is {max_connections})"),
            "reserve fewer connections than max_connections",
        );
    }
    let backend_start = {
        let mut s = p.backend_start.take();
        let d = v.dist_or("postgres.backend_start", &mut s, 10.0);
        p.backend_start = s;
        d
    };
    let statement_timeout = v.off_or_ms("postgres.statement_timeout_ms", p.statement_timeout_ms);
    let primary = PgSpec {
        max_connections,
        reserved,
        cores: (cores > 0).then_some(cores),
        sigma,
        kappa,
        cpu_scheduling,
        cross_core_wakeup,
        response_behind_statement,
        scheduler_slice,
        backend_start: backend_start.clone(),
        statement_timeout,
    };

    // --- replicas
    let rf = f.replicas.get_or_insert_with(Default::default);
    let rcount = *rf.count.get_or_insert(0);
    let rmax = *rf.max_connections.get_or_insert(max_connections);
    let rcores = *rf.cores.get_or_insert(cores);
    if rcount > 64 {
        v.err(
            "replicas.count",
            rcount,
            "at most 64 replicas",
            "model fewer, larger replicas",
        );
    }
    if cpu_scheduling == CpuScheduling::PerCore && rcount > 0 && rcores == 0 {
        v.err(
            "replicas.cores",
            0,
            "postgres.cpu_scheduling \"per_core\" applies to the replicas too and needs a number of cores",
            "set replicas.cores to the replicas' core count (1 or more), or use cpu_scheduling \"shared\"",
        );
    }
    let replicas: Vec<PgSpec> = (0..rcount.min(64))
        .map(|_| PgSpec {
            max_connections: rmax,
            cores: (rcores > 0).then_some(rcores),
            ..primary.clone()
        })
        .collect();

    // --- pgbouncer
    let bouncer = match f.pgbouncer.as_mut() {
        None => None,
        Some(b) => {
            let mode = b.pool_mode.get_or_insert_with(|| "session".into()).clone();
            let mode = match v.choice(
                "pgbouncer.pool_mode",
                &mode,
                &["session", "transaction", "statement"],
            ) {
                Some("transaction") => PoolMode::Transaction,
                Some("statement") => PoolMode::Statement,
                _ => PoolMode::Session,
            };
            let max_client_conn = *b.max_client_conn.get_or_insert(100);
            let dps = *b.default_pool_size.get_or_insert(20);
            let pool_size = v.size("pgbouncer.default_pool_size", dps, 0);
            let pool_size = if pool_size == 0 { u32::MAX } else { pool_size };
            let x = *b.min_pool_size.get_or_insert(0);
            let min_pool_size = v.size("pgbouncer.min_pool_size", x, 0);
            let x = *b.reserve_pool_size.get_or_insert(0);
            let mut reserve_size = v.size("pgbouncer.reserve_pool_size", x, 0);
            let x = *b.reserve_pool_timeout_s.get_or_insert(5.0);
            let reserve_timeout = v.seconds("pgbouncer.reserve_pool_timeout_s", x, true);
            if x == 0.0 && reserve_size > 0 {
                // as in PgBouncer: a zero timeout disables the reserve pool
                v.warn("pgbouncer.reserve_pool_timeout_s", x, format!("0 disables the reserve pool, so its {reserve_size} connections are never used"), "set a timeout such as 2 (seconds) to use the reserve");
                reserve_size = 0;
            }
            let x = *b.query_wait_timeout_s.get_or_insert(120.0);
            let query_wait_timeout = v.off_or_s("pgbouncer.query_wait_timeout_s", x);
            let x = *b.server_lifetime_s.get_or_insert(3600.0);
            let server_lifetime = v.off_or_s("pgbouncer.server_lifetime_s", x);
            let x = *b.server_idle_timeout_s.get_or_insert(600.0);
            let server_idle_timeout = v.off_or_s("pgbouncer.server_idle_timeout_s", x);
            let x = *b.server_login_retry_s.get_or_insert(15.0);
            let login_retry = v.seconds("pgbouncer.server_login_retry_s", x, true);
            let x = *b.max_db_connections.get_or_insert(0);
            let max_db_connections = (x > 0).then_some(x);
            let processes = *b.processes.get_or_insert(1);
            if processes == 0 || processes > 64 {
                v.err(
                    "pgbouncer.processes",
                    processes,
                    "must be between 1 and 64",
                    "use 1 unless you run several PgBouncers with so_reuseport",
                );
            }
            let cpu_per_query = v.dist_or("pgbouncer.cpu_per_query", &mut b.cpu_per_query, 0.035);
            let cpu_per_wakeup = v.dist_or("pgbouncer.cpu_per_wakeup", &mut b.cpu_per_wakeup, 0.0);
            let client_connect = v.dist_or("pgbouncer.client_connect", &mut b.client_connect, 0.3);
            let prewarm = *b.prewarm.get_or_insert(false);
            let on_postgres_host = *b.on_postgres_host.get_or_insert(false);
            if max_client_conn == 0 {
                v.err(
                    "pgbouncer.max_client_conn",
                    0,
                    "PgBouncer would refuse every client",
                    "set it above the app's total pool size",
                );
            }
            Some(BouncerSpec {
                mode,
                max_client_conn,
                pool_size,
                min_pool_size,
                reserve_size,
                reserve_timeout,
                query_wait_timeout,
                server_lifetime,
                server_idle_timeout,
                login_retry,
                max_db_connections,
                cpu_per_query,
                cpu_per_wakeup,
                processes: processes.clamp(1, 64),
                client_connect,
                prewarm,
                on_postgres_host,
            })
        }
    };

    // --- app
    let a = f.app.get_or_insert_with(Default::default);
    let instances = *a.instances.get_or_insert(1);
    if instances == 0 || instances > 10_000 {
        v.err(
            "app.instances",
            instances,
            "must be between 1 and 10000",
            "use the number of app processes",
        );
    }
    let workers = *a.workers_per_instance.get_or_insert(0);
    let max_in_flight = *a.max_in_flight.get_or_insert(0);
    let balance = a
        .balance
        .get_or_insert_with(|| "round_robin".into())
        .clone();
    let balance = match v.choice("app.balance", &balance, &["round_robin", "random"]) {
        Some("random") => Balance::Random,
        _ => Balance::RoundRobin,
    };
    let app = App {
        instances: instances.max(1),
        workers: (workers > 0).then_some(workers),
        max_in_flight: (max_in_flight > 0).then_some(max_in_flight),
        balance,
        // absent means apart, and is not written back
        on_postgres_host: a.on_postgres_host.unwrap_or(false),
    };
    let has_bouncer = bouncer.is_some();
    let mut pools = Vec::new();
    for (pname, pf) in a.pools.iter_mut() {
        let path = |k: &str| format!("app.pools.{pname}.{k}");
        let kind = pf.kind.get_or_insert_with(|| "asyncpg".into()).clone();
        let kind = match v.choice(&path("kind"), &kind, &["asyncpg", "none"]) {
            Some("none") => PoolKind::None,
            _ => PoolKind::Asyncpg,
        };
        let default_target = if pname.starts_with("replica") {
            "replicas"
        } else if has_bouncer {
            "pgbouncer"
        } else {
            "primary"
        };
        let target = pf
            .target
            .get_or_insert_with(|| default_target.into())
            .clone();
        let target = match v.choice(
            &path("target"),
            &target,
            &["pgbouncer", "primary", "replicas"],
        ) {
            Some("pgbouncer") => {
                if !has_bouncer {
                    v.err(
                        &path("target"),
                        "\"pgbouncer\"",
                        "the experiment has no `pgbouncer` section",
                        "add a pgbouncer section or target `primary` directly",
                    );
                }
                Target::Bouncer
            }
            Some("replicas") => {
                if rcount == 0 {
                    v.err(
                        &path("target"),
                        "\"replicas\"",
                        "replicas.count is 0",
                        "set replicas.count, or target `pgbouncer`/`primary`",
                    );
                }
                Target::Replicas
            }
            _ => Target::Primary,
        };
        let (dmin, dmax) = if kind == PoolKind::None {
            (0, 0)
        } else {
            (10, 10)
        };
        let x = *pf.min_size.get_or_insert(dmin);
        let min_size = v.size(&path("min_size"), x, 0);
        let x = *pf.max_size.get_or_insert(dmax);
        let max_size = v.size(
            &path("max_size"),
            x,
            if kind == PoolKind::None { 0 } else { 1 },
        );
        if kind == PoolKind::Asyncpg
            && min_size > max_size
            && pf.max_size.unwrap_or(0) >= 1
            && pf.min_size.unwrap_or(0) >= 0
        {
            v.err(
                &path("min_size"),
                min_size,
                format!("min_size is larger than max_size ({max_size})"),
                format!("set min_size to at most {max_size}, or raise max_size"),
            );
        }
        if max_size > 100_000 {
            v.err(
                &path("max_size"),
                max_size,
                "at most 100000 connections per pool",
                "use a realistic pool size",
            );
        }
        let acquire_timeout = match (&pf.acquire_timeout, pf.acquire_timeout_ms) {
            (Some(spec), _) => Some(v.dist(&path("acquire_timeout"), &spec.clone())),
            (None, ms) => v
                .off_or_ms(&path("acquire_timeout_ms"), ms)
                .map(Dist::Const),
        };
        let command_timeout = v.off_or_ms(&path("command_timeout_ms"), pf.command_timeout_ms);
        let mq = *pf.max_queries.get_or_insert(50_000);
        let mil = *pf.max_inactive_connection_lifetime_s.get_or_insert(300.0);
        let reset_query = *pf.reset_query.get_or_insert(kind == PoolKind::Asyncpg);
        let max_inactive =
            (mil > 0.0).then(|| v.seconds(&path("max_inactive_connection_lifetime_s"), mil, true));
        pools.push(PoolSpec {
            name: pname.clone(),
            kind,
            target,
            min_size: if kind == PoolKind::None { 0 } else { min_size },
            max_size: if kind == PoolKind::None {
                u32::MAX
            } else {
                max_size.max(1)
            },
            acquire_timeout,
            command_timeout,
            max_queries: (mq > 0).then_some(mq),
            max_inactive,
            reset_query,
        });
    }

    // --- workload
    let w = f.workload.get_or_insert_with(Default::default);
    if w.transactions.is_empty() {
        v.err("workload.transactions", "[]", "at least one transaction type is needed", "add e.g. {\"name\": \"read\", \"statements\": 1, \"statement_cpu\": {\"const_ms\": 1}}");
    }
    let mut txs = Vec::new();
    let mut total_w = 0.0;
    for (i, t) in w.transactions.iter_mut().enumerate() {
        let path = |k: &str| format!("workload.transactions.{i}.{k}");
        let weight = *t.weight.get_or_insert(1.0);
        if !(weight.is_finite() && weight >= 0.0) {
            v.err(
                &path("weight"),
                weight,
                "must be zero or positive",
                "weights are relative; use e.g. 0.8 and 0.2",
            );
        }
        total_w += weight.max(0.0);
        let route = t.route.get_or_insert_with(|| "primary".into()).clone();
        let route_idx = pools.iter().position(|p| p.name == route);
        if route_idx.is_none() {
            let known: Vec<&str> = pools.iter().map(|p| p.name.as_str()).collect();
            v.err(
                &path("route"),
                format!("\"{route}\""),
                "no app pool has this name",
                if known.is_empty() {
                    "add app.pools.<route> (e.g. app.pools.primary)".to_string()
                } else {
                    format!(
                        "use one of: {} — or add app.pools.{route}",
                        known.join(", ")
                    )
                },
            );
        }
        // with SQL and no count, the round trips live mode makes: the statements, and BEGIN
        // and COMMIT around several of them (an explicit count is the modeller's and stands)
        let sql_trips = (!t.sql.is_empty()).then(|| super::sql_round_trips(&t.sql) as u32);
        let statements = *t.statements.get_or_insert(sql_trips.unwrap_or(1));
        if statements == 0 || statements > 10_000 {
            v.err(
                &path("statements"),
                statements,
                "must be between 1 and 10000",
                "count the round trips of the transaction",
            );
        }
        for (name, spec) in &t.params {
            let ident = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ident {
                v.err(
                    &path(&format!("params.{name}")),
                    format!("\"{name}\""),
                    "a parameter name is a letter or _ followed by letters, digits or _",
                    "rename it, e.g. aid, and write :aid in the SQL",
                );
            }
            let ParamSpec::Uniform([lo, hi]) = spec;
            if lo > hi {
                v.err(
                    &path(&format!("params.{name}.uniform")),
                    format!("[{lo}, {hi}]"),
                    "the lower bound is above the upper bound",
                    format!("write [{hi}, {lo}]"),
                );
            }
        }
        let wait = v.dist_or(&path("statement_wait"), &mut t.statement_wait, 0.0);
        let cpu = v.dist_or(&path("statement_cpu"), &mut t.statement_cpu, 0.0);
        let gap = v.dist_or(&path("gap"), &mut t.gap, 0.0);
        let wakeup = t.wakeup.as_ref().map(|s| v.dist(&path("wakeup"), s));
        let mut wakeup_by_idle = Vec::new();
        if let Some(pts) = &t.wakeup_by_idle {
            let p = path("wakeup_by_idle");
            let shown = serde_json::to_string(pts).unwrap_or_default();
            let ok_points = pts
                .iter()
                .all(|[ms, f]| ms.is_finite() && *ms >= 0.0 && f.is_finite() && *f >= 0.0);
            let ascending = pts.windows(2).all(|w| w[0][0] < w[1][0]);
            if pts.is_empty() || !ok_points {
                v.err(
                    &p,
                    &shown,
                    "needs [idle_ms, factor] points with idle_ms and factor zero or positive",
                    "write e.g. [[2, 0.8], [5, 1], [50, 3]], or remove it for a factor of 1",
                );
            } else if !ascending {
                v.err(
                    &p,
                    &shown,
                    "the idle times must be strictly ascending",
                    "sort the points by idle time and drop repeated ones",
                );
            } else {
                wakeup_by_idle = pts
                    .iter()
                    .map(|[ms, f]| (SimDuration::from_ms_f64(*ms), *f))
                    .collect();
            }
        }
        let (w_mean, c_mean) = (wait.mean_ns(), cpu.mean_ns());
        let cpu_share = if w_mean + c_mean > 0.0 {
            c_mean / (w_mean + c_mean)
        } else {
            0.0
        };
        txs.push(TxType {
            name: t.name.clone(),
            cum_weight: total_w,
            route: route_idx.unwrap_or(0),
            statements: statements.max(1),
            wait,
            cpu,
            cpu_share,
            gap,
            wakeup,
            wakeup_by_idle,
        });
    }
    if total_w <= 0.0 && !txs.is_empty() {
        v.err(
            "workload.transactions",
            "(weights)",
            "the weights add up to zero",
            "give at least one transaction a positive weight",
        );
    } else {
        for t in &mut txs {
            t.cum_weight /= total_w;
        }
        if let Some(last) = txs.last_mut() {
            last.cum_weight = 1.0;
        }
    }
    let app_cpu = v.dist_or("workload.app_cpu", &mut w.app_cpu, 0.0);
    let hold = w.hold.get_or_insert_with(|| "transaction".into()).clone();
    let hold = match v.choice("workload.hold", &hold, &["transaction", "request"]) {
        Some("request") => Hold::Request,
        _ => Hold::Transaction,
    };
    let tx_per_request = *w.transactions_per_request.get_or_insert(1);
    if tx_per_request == 0 || tx_per_request > 1000 {
        v.err(
            "workload.transactions_per_request",
            tx_per_request,
            "must be between 1 and 1000",
            "use 1 unless a request runs several transactions",
        );
    }
    if hold == Hold::Request {
        let routes: std::collections::BTreeSet<usize> = txs.iter().map(|t| t.route).collect();
        if routes.len() > 1 {
            v.err(
                "workload.hold",
                "\"request\"",
                "holding one connection per request needs every transaction on the same route",
                "use hold: transaction, or one route",
            );
        }
    }
    let workload = Workload {
        own_wakeup: txs
            .iter()
            .any(|t| t.wakeup.is_some() || !t.wakeup_by_idle.is_empty()),
        txs,
        app_cpu,
        hold,
        tx_per_request: tx_per_request.max(1),
    };

    // --- clients
    let c = f.clients.get_or_insert_with(Default::default);
    let mode = c.mode.get_or_insert_with(|| "closed".into()).clone();
    let load = match v.choice("clients.mode", &mode, &["closed", "open"]) {
        Some("open") => {
            let mut schedule = Vec::new();
            if let Some(r) = c.rate_per_s {
                schedule.push((SimTime::ZERO, r));
            }
            for (i, s) in c.rate_schedule.iter().enumerate() {
                let at = v.seconds(&format!("clients.rate_schedule.{i}.at_s"), s.at_s, true);
                if !(s.rate_per_s.is_finite() && s.rate_per_s >= 0.0) {
                    v.err(
                        &format!("clients.rate_schedule.{i}.rate_per_s"),
                        s.rate_per_s,
                        "must be zero or positive",
                        "use requests per second",
                    );
                }
                schedule.push((SimTime::ZERO + at, s.rate_per_s));
            }
            if schedule.is_empty() {
                v.err(
                    "clients.rate_per_s",
                    "(missing)",
                    "an open workload needs an arrival rate",
                    "set clients.rate_per_s (requests per second) or clients.rate_schedule",
                );
            }
            if let Some(r) = c.rate_per_s {
                if !(r.is_finite() && r >= 0.0) {
                    v.err(
                        "clients.rate_per_s",
                        r,
                        "must be zero or positive",
                        "use requests per second",
                    );
                }
            }
            schedule.sort_by_key(|s| s.0);
            if schedule.first().is_some_and(|s| s.0 > SimTime::ZERO) {
                schedule.insert(0, (SimTime::ZERO, 0.0));
            }
            Load::Open { schedule }
        }
        _ => {
            let think = v.dist_or("clients.think_time", &mut c.think_time, 0.0);
            let mut schedule = Vec::new();
            if let Some(u) = c.users {
                schedule.push((SimTime::ZERO, u));
            }
            for (i, s) in c.users_schedule.iter().enumerate() {
                let at = v.seconds(&format!("clients.users_schedule.{i}.at_s"), s.at_s, true);
                schedule.push((SimTime::ZERO + at, s.users));
            }
            if schedule.is_empty() {
                v.err(
                    "clients.users",
                    "(missing)",
                    "a closed workload needs a number of users",
                    "set clients.users, or clients.mode = \"open\" with clients.rate_per_s",
                );
            }
            schedule.sort_by_key(|s| s.0);
            if schedule.first().is_some_and(|s| s.0 > SimTime::ZERO) {
                schedule.insert(0, (SimTime::ZERO, 0));
            }
            let max = schedule.iter().map(|s| s.1).max().unwrap_or(0);
            if max > 5_000_000 {
                v.err(
                    "clients.users",
                    max,
                    "at most 5,000,000 users",
                    "simulate fewer users",
                );
            }
            Load::Closed { schedule, think }
        }
    };
    let timeout = match (&c.request_timeout, c.request_timeout_ms) {
        (Some(s), _) => Some(v.dist("clients.request_timeout", &s.clone())),
        (None, ms) => v
            .off_or_ms("clients.request_timeout_ms", ms)
            .map(Dist::Const),
    };
    let rt = c.retries.get_or_insert_with(Default::default);
    let retries = *rt.max.get_or_insert(0);
    let backoff = v.dist_or("clients.retries.backoff", &mut rt.backoff, 100.0);
    if retries > 100 {
        v.err(
            "clients.retries.max",
            retries,
            "at most 100 retries",
            "use 0 to 3",
        );
    }
    let users_at_start = load.max_users();
    let clients = Clients {
        load,
        timeout,
        retries,
        backoff,
    };

    // --- faults
    let mut faults = Vec::new();
    for (i, ff) in f.faults.iter().enumerate() {
        let path = |k: &str| format!("faults.{i}.{k}");
        let target = match ff.target.as_str() {
            "pgbouncer" => Some(FaultTarget::Bouncer),
            "primary" => Some(FaultTarget::Primary),
            t => match t
                .strip_prefix("replica:")
                .and_then(|n| n.parse::<u32>().ok())
            {
                Some(k) if k < rcount => Some(FaultTarget::Replica(k)),
                _ => {
                    v.err(&path("target"), format!("\"{t}\""), "unknown fault target", format!("use pgbouncer, primary or replica:N with N below replicas.count ({rcount})"));
                    None
                }
            },
        };
        if target == Some(FaultTarget::Bouncer) && !has_bouncer {
            v.err(
                &path("target"),
                "\"pgbouncer\"",
                "the experiment has no pgbouncer",
                "remove the fault or add a pgbouncer section",
            );
        }
        let kind = match ff.kind.as_str() {
            "down" | "restart" => Some(FaultKind::Down),
            "slowdown" => match ff.factor {
                Some(k) if k.is_finite() && k > 0.0 => Some(FaultKind::Slowdown(k)),
                other => {
                    v.err(
                        &path("factor"),
                        format!("{other:?}"),
                        "a slowdown needs a positive factor",
                        "e.g. \"factor\": 3 makes statements 3 times slower",
                    );
                    None
                }
            },
            k => {
                v.err(
                    &path("kind"),
                    format!("\"{k}\""),
                    "unknown fault kind",
                    "use down, restart or slowdown",
                );
                None
            }
        };
        if matches!(kind, Some(FaultKind::Slowdown(_))) && target == Some(FaultTarget::Bouncer) {
            v.err(
                &path("target"),
                "\"pgbouncer\"",
                "slowdowns apply to database servers",
                "target primary or replica:N",
            );
        }
        let start = v.seconds(&path("at_s"), ff.at_s, true);
        let len = v.seconds(&path("for_s"), ff.for_s, false);
        if let (Some(kind), Some(target)) = (kind, target) {
            faults.push(Fault {
                kind,
                target,
                start: SimTime::ZERO + start,
                end: SimTime::ZERO + start + len,
            });
        }
    }

    for (i, a) in faults.iter().enumerate() {
        for b in &faults[i + 1..] {
            if a.target == b.target && a.start < b.end && b.start < a.end {
                v.err(
                    "faults",
                    format!("{:?}", a.target),
                    "two faults on the same target overlap in time",
                    "merge them into one fault, or move one",
                );
            }
        }
    }

    // --- slo
    let s = f.slo.get_or_insert_with(Default::default);
    let mut p95 = s.p95_ms;
    if !s.p95_ms_by_users.is_empty() {
        let mut steps = s.p95_ms_by_users.clone();
        steps.sort_by_key(|x| x.0);
        p95 = steps
            .iter()
            .rev()
            .find(|x| x.0 <= users_at_start)
            .or(steps.first())
            .map(|x| x.1);
    }
    let slo = Slo {
        p95_ms: p95,
        failure_rate: s.failure_rate,
        pool_utilization: s.pool_utilization,
        acquire_p95_ms: s.acquire_p95_ms,
    };

    let sc = Scenario {
        name,
        seed,
        run,
        clients,
        workload,
        app,
        pools,
        bouncer,
        primary,
        replicas,
        network,
        faults,
        slo,
    };
    if !v.problems.iter().any(|p| p.severity == Severity::Error) {
        lint(&sc, &mut v);
    }
    v.problems.sort();
    if v.problems.iter().any(|p| p.severity == Severity::Error) {
        return Err(Invalid(v.problems));
    }
    Ok((sc, v.problems))
}

/// Connection math and settings that contradict each other: warnings.
fn lint(sc: &Scenario, v: &mut V) {
    let inst = sc.app.instances as u64;
    let used: std::collections::BTreeSet<usize> = sc.workload.txs.iter().map(|t| t.route).collect();
    for (i, p) in sc.pools.iter().enumerate() {
        if !used.contains(&i) {
            v.warn(
                &format!("app.pools.{}", p.name),
                "(pool)",
                "no transaction uses this pool",
                "route a transaction to it or remove it",
            );
        }
    }
    let finite = |p: &PoolSpec| p.kind == PoolKind::Asyncpg;
    let to = |t: Target| -> (u64, bool) {
        let mut n = 0u64;
        let mut unbounded = false;
        for p in sc.pools.iter().filter(|p| p.target == t) {
            if finite(p) {
                n += inst * p.max_size as u64;
            } else {
                unbounded = true;
            }
        }
        (n, unbounded)
    };
    let (to_bouncer, _) = to(Target::Bouncer);
    let (to_primary, primary_unbounded) = to(Target::Primary);
    let (to_replicas, _) = to(Target::Replicas);
    let mut server_side = to_primary;
    if let Some(b) = &sc.bouncer {
        let accept = b.max_client_conn as u64 * b.processes as u64;
        if to_bouncer > accept {
            v.warn("pgbouncer.max_client_conn", b.max_client_conn, format!("the app pools can open {to_bouncer} client connections ({} instances × pool sizes) but PgBouncer accepts {accept}: the rest are refused with 08P01, not queued", sc.app.instances), format!("raise max_client_conn to at least {to_bouncer}, or shrink the app pools"));
        }
        if b.pool_size != u32::MAX {
            let mut servers = (b.pool_size as u64 + b.reserve_size as u64) * b.processes as u64;
            if let Some(m) = b.max_db_connections {
                servers = servers.min(m as u64 * b.processes as u64);
            }
            server_side += servers;
            if b.min_pool_size > b.pool_size {
                v.warn(
                    "pgbouncer.min_pool_size",
                    b.min_pool_size,
                    format!(
                        "above default_pool_size ({}): it can never be reached",
                        b.pool_size
                    ),
                    "keep min_pool_size ≤ default_pool_size",
                );
            }
            if b.mode == PoolMode::Session && to_bouncer > (b.pool_size as u64 * b.processes as u64)
            {
                v.warn("pgbouncer.pool_mode", "\"session\"", format!("in session mode every app connection pins a server until it disconnects; {to_bouncer} app connections share {} servers, so the rest wait for query_wait_timeout", b.pool_size as u64 * b.processes as u64), "use transaction mode, or size default_pool_size to the app pools");
            }
        } else {
            server_side += to_bouncer;
        }
        if b.reserve_size > 0 {
            if let Some(q) = b.query_wait_timeout {
                if b.reserve_timeout >= q {
                    v.warn("pgbouncer.reserve_pool_timeout_s", b.reserve_timeout.as_s_f64(), "not shorter than query_wait_timeout: waiters time out before the reserve pool opens", "make reserve_pool_timeout_s shorter than query_wait_timeout_s");
                }
            }
        }
        if b.mode == PoolMode::Statement
            && sc
                .workload
                .txs
                .iter()
                .any(|t| t.statements > 1 && sc.pools[t.route].target == Target::Bouncer)
        {
            v.warn("pgbouncer.pool_mode", "\"statement\"", "statement mode refuses transaction blocks, and some transactions have several statements: they will fail", "use transaction mode, or single-statement transactions");
        }
    }
    let usable = sc.primary.usable_connections() as u64;
    if server_side > usable || primary_unbounded {
        v.warn("postgres.max_connections", sc.primary.max_connections, format!("up to {} connections can be opened to the primary (PgBouncer servers + reserve + direct pools{}) but only {usable} are available to applications (max_connections − superuser_reserved_connections): the rest are refused with 53300", server_side, if primary_unbounded { " + unpooled clients" } else { "" }), format!("raise max_connections to at least {}, or shrink the pools", server_side + sc.primary.reserved as u64));
    }
    if !sc.replicas.is_empty() && to_replicas > 0 {
        let per = to_replicas.div_ceil(sc.replicas.len() as u64);
        let usable = sc.replicas[0].usable_connections() as u64;
        if per > usable {
            v.warn("replicas.max_connections", sc.replicas[0].max_connections, format!("the replica pools can open about {per} connections per replica but each accepts {usable}"), format!("raise replicas.max_connections to at least {}", per + sc.replicas[0].reserved as u64));
        }
    }
    for p in &sc.pools {
        if p.kind == PoolKind::Asyncpg && p.min_size > p.max_size {
            continue;
        }
        if let (Some(Dist::Const(acq)), Some(Dist::Const(client))) =
            (&p.acquire_timeout, &sc.clients.timeout)
        {
            if acq >= client {
                v.warn(&format!("app.pools.{}.acquire_timeout_ms", p.name), acq.as_ms_f64(), format!("not shorter than the client's request timeout ({} ms): the acquire timeout can never fire first", client.as_ms_f64()), "make the acquire timeout shorter than the request timeout");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::load::parse_file;
    use serde_json::json;

    fn check(doc: serde_json::Value) -> Result<(Scenario, Vec<Problem>), Invalid> {
        let (mut f, structural) = parse_file(&doc);
        assert!(structural.is_empty(), "{structural:?}");
        validate(&mut f)
    }

    #[test]
    fn minimal_experiment_gets_defaults() {
        let (sc, _) = check(json!({
            "clients": {"users": 10},
            "workload": {"transactions": [{"name": "q", "statement_cpu": {"const_ms": 1}}]},
            "app": {"pools": {"primary": {}}}
        }))
        .unwrap();
        assert_eq!(sc.pools[0].max_size, 10);
        assert_eq!(sc.pools[0].target, Target::Primary);
        assert_eq!(sc.run.replications, 5);
    }

    #[test]
    fn negative_and_inverted_pool_sizes_are_errors() {
        let err = check(json!({
            "clients": {"users": 10},
            "workload": {"transactions": [{"name": "q"}]},
            "app": {"pools": {"primary": {"min_size": 20, "max_size": 5}, "other": {"max_size": -3}}}
        }))
        .unwrap_err();
        let paths: Vec<&str> = err.0.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"app.pools.primary.min_size"), "{err}");
        assert!(paths.contains(&"app.pools.other.max_size"), "{err}");
    }

    #[test]
    fn cpu_scheduling_is_shared_unless_per_core_is_asked_for_with_cores() {
        let doc = |pg: serde_json::Value| {
            json!({
                "clients": {"users": 1},
                "workload": {"transactions": [{"name": "q"}]},
                "app": {"pools": {"primary": {}}},
                "postgres": pg,
                "replicas": {"count": 1, "cores": 0}
            })
        };
        // absent: shared, and not written back (the resolved experiment stays as it was)
        let (mut f, _) = parse_file(&doc(json!({})));
        f.replicas.as_mut().unwrap().count = Some(0);
        let (sc, _) = validate(&mut f).unwrap();
        assert_eq!(sc.primary.cpu_scheduling, CpuScheduling::Shared);
        assert!(f.postgres.unwrap().cpu_scheduling.is_none());
        let (sc, _) = check(doc(json!({"cpu_scheduling": "shared"}))).unwrap();
        assert_eq!(sc.primary.cpu_scheduling, CpuScheduling::Shared);

        let mut d = doc(json!({"cpu_scheduling": "per_core", "cores": 2}));
        d["replicas"]["cores"] = json!(4);
        let (sc, _) = check(d).unwrap();
        assert_eq!(sc.primary.cpu_scheduling, CpuScheduling::PerCore);
        assert_eq!(sc.replicas[0].cpu_scheduling, CpuScheduling::PerCore);

        let err = check(doc(json!({"cpu_scheduling": "fair"}))).unwrap_err();
        let p = &err.0[0];
        assert_eq!(p.path, "postgres.cpu_scheduling");
        assert_eq!(p.value, "\"fair\"");
        assert!(
            p.hint.contains("shared") && p.hint.contains("per_core"),
            "{err}"
        );

        // a wake-up's growth with the idle time: ascending points, factors zero or positive
        let tx = |g: serde_json::Value| {
            json!({
                "clients": {"users": 1},
                "workload": {"transactions": [{"name": "q", "wakeup_by_idle": g}]},
                "app": {"pools": {"primary": {}}}
            })
        };
        let (sc, _) = check(tx(json!([[2, 0.5], [5, 1], [50, 4]]))).unwrap();
        let t = &sc.workload.txs[0];
        assert!(sc.workload.own_wakeup);
        assert_eq!(t.wakeup_factor(SimDuration::from_ms(1)), 0.5);
        assert!((t.wakeup_factor(SimDuration::from_ms_f64(3.5)) - 0.75).abs() < 1e-12);
        assert!((t.wakeup_factor(SimDuration::from_ms(20)) - 2.0).abs() < 1e-12);
        assert_eq!(t.wakeup_factor(SimDuration::from_ms(500)), 4.0);
        for bad in [json!([[5, 1], [2, 0.5]]), json!([[2, -1]]), json!([])] {
            let err = check(tx(bad.clone())).unwrap_err();
            assert_eq!(
                err.0[0].path, "workload.transactions.0.wakeup_by_idle",
                "{bad}: {err}"
            );
        }
        let (sc, _) = check(tx(serde_json::Value::Null)).unwrap();
        assert!(sc.workload.txs[0].wakeup_by_idle.is_empty());
        assert_eq!(
            sc.workload.txs[0].wakeup_factor(SimDuration::from_ms(9)),
            1.0
        );

        // the wake-up of an idle core needs a number of cores; absent, it is not written back
        let (mut f, _) = parse_file(&doc(json!({"cores": 2})));
        let (sc, _) = validate(&mut f).unwrap();
        assert!(sc.primary.cross_core_wakeup.is_none());
        assert!(f.postgres.unwrap().cross_core_wakeup.is_none());
        let (sc, _) = check(doc(
            json!({"cores": 2, "cross_core_wakeup": {"const_ms": 0.03}}),
        ))
        .unwrap();
        assert!(sc.primary.cross_core_wakeup.is_some());
        let err = check(doc(
            json!({"cores": 0, "cross_core_wakeup": {"const_ms": 0.03}}),
        ))
        .unwrap_err();
        let p = &err.0[0];
        assert_eq!(p.path, "postgres.cross_core_wakeup");
        assert!(p.hint.contains("postgres.cores"), "{err}");

        // the kernel's time slice: Linux's default for the cores unless given, and positive
        let slice = |pg| check(doc(pg)).map(|(sc, _)| sc.primary.scheduler_slice.as_ms_f64());
        assert_eq!(slice(json!({"cores": 1})).unwrap(), 0.75);
        assert_eq!(slice(json!({"cores": 2})).unwrap(), 1.5);
        assert_eq!(slice(json!({"cores": 64})).unwrap(), 3.0);
        assert_eq!(
            slice(json!({"cores": 2, "scheduler_slice_ms": 4})).unwrap(),
            4.0
        );
        for bad in [0.0, -1.0] {
            let err = slice(json!({"cores": 2, "scheduler_slice_ms": bad})).unwrap_err();
            assert_eq!(err.0[0].path, "postgres.scheduler_slice_ms", "{err}");
            assert!(err.to_string().contains("positive"), "{err}");
        }

        // a response behind a running statement: a probability, on a host with cores
        let (sc, _) = check(doc(json!({"cores": 2, "response_behind_statement": 0.5}))).unwrap();
        assert_eq!(sc.primary.response_behind_statement, 0.5);
        let (sc, _) = check(doc(json!({"cores": 2}))).unwrap();
        assert_eq!(sc.primary.response_behind_statement, 0.0);
        for (pg, why) in [
            (
                json!({"cores": 2, "response_behind_statement": 1.5}),
                "0 … 1",
            ),
            (
                json!({"cores": 2, "response_behind_statement": -0.1}),
                "0 … 1",
            ),
            (
                json!({"cores": 0, "response_behind_statement": 0.5}),
                "postgres.cores",
            ),
        ] {
            let err = check(doc(pg.clone())).unwrap_err();
            assert_eq!(err.0[0].path, "postgres.response_behind_statement", "{pg}");
            assert!(err.to_string().contains(why), "{pg}: {err}");
        }

        // unlimited cores cannot be run queues, on the primary or on the replicas
        let err = check(doc(json!({"cpu_scheduling": "per_core", "cores": 0}))).unwrap_err();
        let paths: Vec<&str> = err.0.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"postgres.cpu_scheduling"), "{err}");
        assert!(err.to_string().contains("postgres.cores"), "{err}");
        let err = check(doc(json!({"cpu_scheduling": "per_core", "cores": 2}))).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].path, "replicas.cores");
    }

    #[test]
    fn oversubscribed_max_client_conn_is_a_warning() {
        let (_, warnings) = check(json!({
            "clients": {"users": 10},
            "workload": {"transactions": [{"name": "q"}]},
            "app": {"instances": 5, "pools": {"primary": {"max_size": 50}}},
            "pgbouncer": {"pool_mode": "transaction", "max_client_conn": 100}
        }))
        .unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.path == "pgbouncer.max_client_conn"),
            "{warnings:?}"
        );
    }

    #[test]
    fn statements_default_to_the_round_trips_of_the_sql() {
        let (sc, _) = check(json!({
            "clients": {"users": 1},
            "workload": {"transactions": [
                {"name": "block", "sql": ["UPDATE t SET a = 1", "SELECT 1", "INSERT INTO t VALUES (1)"]},
                {"name": "own", "sql": ["BEGIN", "SELECT 1", "COMMIT"]},
                {"name": "one", "sql": ["SELECT 1"]},
                {"name": "explicit", "statements": 2, "sql": ["SELECT 1"]},
                {"name": "none"}
            ]},
            "app": {"pools": {"primary": {}}}
        }))
        .unwrap();
        let n: Vec<u32> = sc.workload.txs.iter().map(|t| t.statements).collect();
        // BEGIN and COMMIT around three statements; the SQL's own; one; the modeller's; default
        assert_eq!(n, vec![5, 3, 1, 2, 1]);
    }

    #[test]
    fn sql_params_are_checked() {
        let ok = check(json!({
            "clients": {"users": 1},
            "workload": {"transactions": [{"name": "q", "sql": ["SELECT :aid"],
                                           "params": {"aid": {"uniform": [1, 100]}}}]},
            "app": {"pools": {"primary": {}}}
        }));
        assert!(ok.is_ok());
        let err = check(json!({
            "clients": {"users": 1},
            "workload": {"transactions": [{"name": "q", "sql": ["SELECT 1"],
                                           "params": {"a-b": {"uniform": [1, 2]}, "x": {"uniform": [5, 1]}}}]},
            "app": {"pools": {"primary": {}}}
        }))
        .unwrap_err();
        let paths: Vec<&str> = err.0.iter().map(|p| p.path.as_str()).collect();
        assert!(
            paths.contains(&"workload.transactions.0.params.a-b"),
            "{err}"
        );
        assert!(
            paths.contains(&"workload.transactions.0.params.x.uniform"),
            "{err}"
        );
    }

    #[test]
    fn unknown_param_kinds_are_rejected() {
        let (_, structural) = parse_file(&json!({
            "workload": {"transactions": [{"name": "q", "params": {"a": {"normal": [1, 2]}}}]}
        }));
        assert!(!structural.is_empty());
    }
}
