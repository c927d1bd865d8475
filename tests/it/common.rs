//! Helpers: build validated scenarios from JSON.

use poolsim::experiment::load::{merge, parse_file};
use poolsim::experiment::{validate, Scenario};
use serde_json::{json, Value};

/// A scenario from a JSON document; panics (test failure) on any problem.
pub fn scenario(doc: Value) -> Scenario {
    let (mut f, problems) = parse_file(&doc);
    assert!(problems.is_empty(), "structural problems: {problems:?}");
    match validate(&mut f) {
        Ok((sc, _warnings)) => sc,
        Err(e) => panic!("invalid test scenario: {e}"),
    }
}

/// A small PgBouncer scenario with zero network and CPU costs, overridden by `over`.
pub fn bouncer_base(over: Value) -> Scenario {
    let mut doc = json!({
        "run": {"duration_s": 30, "warmup_s": 0, "replications": 1},
        "clients": {"mode": "closed", "users": 2, "think_time": {"const_ms": 0}},
        "workload": {"transactions": [{"name": "q", "statements": 1, "statement_wait": {"const_ms": 10000}}]},
        "app": {"instances": 1, "pools": {"primary": {"target": "pgbouncer", "min_size": 2, "max_size": 2,
            "reset_query": false, "max_queries": 0, "max_inactive_connection_lifetime_s": 0}}},
        "pgbouncer": {"pool_mode": "transaction", "max_client_conn": 100, "default_pool_size": 1,
            "reserve_pool_size": 0, "cpu_per_query": {"const_ms": 0}, "client_connect": {"const_ms": 0},
            "server_idle_timeout_s": 0, "server_lifetime_s": 0},
        "postgres": {"max_connections": 100, "cores": 0, "backend_start": {"const_ms": 1}},
        "network": {"app_bouncer_rtt_ms": 0, "bouncer_postgres_rtt_ms": 0, "app_postgres_rtt_ms": 0}
    });
    merge(&mut doc, &over);
    scenario(doc)
}

/// Nanoseconds from milliseconds.
pub const fn ms(x: u64) -> u64 {
    x * 1_000_000
}
