//! Back-of-the-envelope capacity of each tier of a scenario, from mean service demands (no
//! queueing): what `poolsim check` prints, and a sanity bound for simulated throughput. The
//! smallest bound is the bottleneck the simulation will find (contention can only lower it).

use crate::experiment::{Load, PoolKind, PoolMode, Scenario, Target};

#[derive(Clone, Debug, serde::Serialize)]
pub struct TierBound {
    pub tier: String,
    /// Requests per second this tier can serve at most.
    pub max_rps: f64,
    pub why: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Capacity {
    /// Requests per second offered (closed loop: users / (think + fastest response)).
    pub offered_rps: f64,
    pub bounds: Vec<TierBound>,
    /// Mean time a request holds an app-pool connection, ms (no queueing).
    pub app_hold_ms: f64,
    /// Mean time a transaction holds a PgBouncer server, ms (no queueing).
    pub server_hold_ms: f64,
}

/// Compute the per-tier bounds of a scenario.
pub fn capacity(sc: &Scenario) -> Capacity {
    let net = &sc.network;
    let w = &sc.workload;
    let mut tx_hold_app = 0.0; // ms per request of app-connection hold
    let mut srv_hold = 0.0; // ms per request of PgBouncer server hold
    let mut pg_cpu = 0.0; // ms of primary CPU per request
    let mut replica_cpu = 0.0; // ms of replica CPU per request (all replicas together)
    let mut bouncer_queries = 0.0; // queries per request through PgBouncer
    let mut prev = 0.0;
    for t in &w.txs {
        let share = t.cum_weight - prev;
        prev = t.cum_weight;
        let pool = &sc.pools[t.route];
        let via_bouncer = pool.target == Target::Bouncer;
        let rtt = if via_bouncer {
            net.app_bouncer_rtt.as_ms_f64() + net.bouncer_pg_rtt.as_ms_f64()
        } else {
            net.app_pg_rtt.as_ms_f64()
        };
        let n = t.statements as f64;
        let exec = t.wait.mean_ms() + t.cpu.mean_ms();
        let reset = if pool.reset_query && pool.kind == PoolKind::Asyncpg {
            rtt
        } else {
            0.0
        };
        let per_tx = n * (rtt + exec) + (n - 1.0) * t.gap.mean_ms() + reset;
        let tpr = w.tx_per_request as f64;
        tx_hold_app += share * tpr * per_tx;
        if via_bouncer {
            let inner = n * (net.bouncer_pg_rtt.as_ms_f64() + exec)
                + (n - 1.0) * (net.app_bouncer_rtt.as_ms_f64() + t.gap.mean_ms());
            srv_hold += share * tpr * inner;
            bouncer_queries += share * tpr * (n + if reset > 0.0 { 1.0 } else { 0.0 });
        }
        if pool.target == Target::Replicas {
            replica_cpu += share * tpr * n * t.cpu.mean_ms();
        } else {
            pg_cpu += share * tpr * n * t.cpu.mean_ms();
        }
    }
    let mut bounds = Vec::new();
    let app_slots: f64 = sc
        .pools
        .iter()
        .filter(|p| p.kind == PoolKind::Asyncpg)
        .map(|p| p.max_size as f64 * sc.app.instances as f64)
        .sum();
    if app_slots > 0.0 && tx_hold_app > 0.0 {
        let hold = tx_hold_app;
        bounds.push(TierBound {
            tier: "app pools".into(),
            max_rps: app_slots / (hold / 1000.0),
            why: format!("{app_slots:.0} connections / {hold:.2} ms held per request"),
        });
    }
    if let Some(b) = &sc.bouncer {
        if srv_hold > 0.0 && b.pool_size != u32::MAX {
            let servers = (b.pool_size as f64 + b.reserve_size as f64) * b.processes as f64;
            let (servers, note) = if b.mode == PoolMode::Session {
                (
                    servers,
                    " (session mode: servers stay pinned to app connections)",
                )
            } else {
                (servers, "")
            };
            bounds.push(TierBound {
                tier: "PgBouncer servers".into(),
                max_rps: servers / (srv_hold / 1000.0),
                why: format!("{servers:.0} servers (pool + reserve) / {srv_hold:.2} ms held per request{note}"),
            });
        }
        let cpu = b.cpu_per_query.mean_ms();
        if b.on_postgres_host {
            // its CPU comes out of the primary's cores too
            pg_cpu += cpu * bouncer_queries;
        }
        if cpu > 0.0 && bouncer_queries > 0.0 {
            bounds.push(TierBound {
                tier: "PgBouncer CPU".into(),
                max_rps: b.processes as f64 / (cpu * bouncer_queries / 1000.0),
                why: format!(
                    "{} process(es) / ({:.3} ms × {bouncer_queries:.1} queries per request)",
                    b.processes, cpu
                ),
            });
        }
    }
    if let Some(c) = sc.primary.cores {
        if pg_cpu > 0.0 {
            bounds.push(TierBound {
                tier: "primary CPU".into(),
                max_rps: c as f64 / (pg_cpu / 1000.0),
                why: format!("{c} cores / {pg_cpu:.3} ms CPU per request (before contention)"),
            });
        }
    }
    if let Some(r) = sc.replicas.first() {
        if let (Some(c), true) = (r.cores, replica_cpu > 0.0) {
            let cores = c as f64 * sc.replicas.len() as f64;
            bounds.push(TierBound {
                tier: "replica CPU".into(),
                max_rps: cores / (replica_cpu / 1000.0),
                why: format!(
                    "{} × {c} cores / {replica_cpu:.3} ms CPU per request (before contention)",
                    sc.replicas.len()
                ),
            });
        }
    }
    if let Some(wk) = sc.app.workers {
        let cpu = w.app_cpu.mean_ms();
        if cpu > 0.0 {
            let n = wk as f64 * sc.app.instances as f64;
            bounds.push(TierBound {
                tier: "app CPU".into(),
                max_rps: n / (cpu / 1000.0),
                why: format!("{n:.0} workers / {cpu:.2} ms per request"),
            });
        }
    }
    let min_response_ms = w.app_cpu.mean_ms() + tx_hold_app;
    let offered_rps = match &sc.clients.load {
        Load::Closed { schedule, think } => {
            let users = schedule.iter().map(|s| s.1).max().unwrap_or(0) as f64;
            users / ((think.mean_ms() + min_response_ms) / 1000.0)
        }
        Load::Open { schedule } => schedule.iter().map(|s| s.1).fold(0.0, f64::max),
    };
    Capacity {
        offered_rps,
        bounds,
        app_hold_ms: tx_hold_app,
        server_hold_ms: srv_hold,
    }
}
