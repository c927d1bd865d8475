//! Properties over small random scenarios. The engine asserts its invariants as it runs (requests
//! conserved, no pool over capacity at any tier, time monotone, responses after their requests),
//! so every generated scenario that runs to its end has kept them; the results are then checked
//! for internal consistency.

use crate::common::scenario;
use poolsim::sim::{metric_index, run, CAUSES, FIRST_CAUSE_METRIC, METRIC_NAMES};
use poolsim::sweep::summarize;
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_dist() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0.0f64..5.0).prop_map(|m| json!({"const_ms": m})),
        (0.05f64..10.0).prop_map(|m| json!({"exp": {"mean_ms": m}})),
        (0.1f64..5.0, 1.0f64..4.0)
            .prop_map(|(m, k)| json!({"lognormal": {"median_ms": m, "p95_ms": m * k}})),
        (0.1f64..5.0).prop_map(|m| json!({"gamma": {"shape": 2.0, "mean_ms": m}})),
    ]
}

prop_compose! {
    fn arb_scenario()(
        closed in any::<bool>(),
        users in 1u32..60,
        rate in 10.0f64..3000.0,
        think in arb_dist(),
        instances in 1u32..3,
        (min, max) in (0i64..6, 1i64..10).prop_map(|(a, b)| (a.min(b), b)),
        target in prop_oneof![Just("pgbouncer"), Just("primary"), Just("replicas")],
        kind in prop_oneof![3 => Just("asyncpg"), 1 => Just("none")],
        mode in prop_oneof![Just("session"), Just("transaction"), Just("statement")],
        pool_size in 1i64..10,
        reserve in 0i64..3,
        reserve_timeout in 0.05f64..2.0,
        max_client_conn in 1u32..40,
        qwt in 0.2f64..3.0,
        max_conn in 5u32..40,
        (cores, per_core) in (0u32..4, any::<bool>()),
        kappa in 0.0f64..0.01,
        statements in 1u32..4,
        wait in arb_dist(),
        cpu in arb_dist(),
        gap in arb_dist(),
        acquire_ms in prop::option::of(1.0f64..300.0),
        command_ms in prop::option::of(5.0f64..500.0),
        statement_ms in prop::option::of(5.0f64..500.0),
        client_ms in prop::option::of(10.0f64..1000.0),
        retries in 0u32..3,
        max_in_flight in prop::option::of(1u32..50),
        fault in prop::option::of((0u8..4, 0.2f64..1.5, 0.05f64..0.8)),
        rtt in 0.0f64..0.5,
        hold in prop_oneof![Just("transaction"), Just("request")],
        tx_per_request in 1u32..3,
        prewarm in any::<bool>(),
    ) -> Value {
        let clients = if closed {
            json!({"mode": "closed", "users": users, "think_time": think})
        } else {
            json!({"mode": "open", "rate_per_s": rate})
        };
        let mut clients = clients;
        if let Some(ms) = client_ms { clients["request_timeout_ms"] = json!(ms); }
        clients["retries"] = json!({"max": retries, "backoff": {"const_ms": 5}});
        let mut pool = json!({"kind": kind, "target": target, "min_size": min, "max_size": max});
        if let Some(ms) = acquire_ms { pool["acquire_timeout_ms"] = json!(ms); }
        if let Some(ms) = command_ms { pool["command_timeout_ms"] = json!(ms); }
        let faults = match fault {
            None => json!([]),
            Some((k, at, len)) => {
                let (kind, target) = match k {
                    0 => ("down", "pgbouncer"),
                    1 => ("down", "primary"),
                    2 => ("down", "replica:0"),
                    _ => ("slowdown", "primary"),
                };
                json!([{"kind": kind, "target": target, "at_s": at, "for_s": len, "factor": 3}])
            }
        };
        let mut app = json!({"instances": instances, "pools": {"primary": pool}});
        if let Some(m) = max_in_flight { app["max_in_flight"] = json!(m); }
        let mut pg = json!({"max_connections": max_conn, "superuser_reserved_connections": 3, "cores": cores,
            "contention_sigma": 0.01, "contention_kappa": kappa, "backend_start": {"const_ms": 1}});
        if let Some(ms) = statement_ms { pg["statement_timeout_ms"] = json!(ms); }
        // per-core run queues need a number of cores (0 is unlimited)
        // (the wake-up of an idle core by another tied to them, to stay within the arity)
        if per_core && cores > 0 {
            pg["cpu_scheduling"] = json!("per_core");
            pg["cross_core_wakeup"] = json!({"const_ms": rtt});
            pg["response_behind_statement"] = json!(0.5);
            app["on_postgres_host"] = json!(true);
        }
        json!({
            "run": {"duration_s": 2, "warmup_s": 0.5, "replications": 2},
            "clients": clients,
            "workload": {"transactions": [{"name": "q", "route": "primary", "statements": statements,
                "statement_wait": wait, "statement_cpu": cpu, "gap": gap,
                "wakeup": {"const_ms": rtt * 2.0}}],
                "hold": hold, "transactions_per_request": tx_per_request},
            "app": app,
            "pgbouncer": {"pool_mode": mode, "default_pool_size": pool_size, "min_pool_size": 1,
                "reserve_pool_size": reserve, "reserve_pool_timeout_s": reserve_timeout,
                "max_client_conn": max_client_conn, "query_wait_timeout_s": qwt, "prewarm": prewarm,
                // (tied to prewarm to stay within the strategy's arity)
                "on_postgres_host": prewarm,
                "cpu_per_wakeup": {"const_ms": rtt / 4.0},
                "server_lifetime_s": 1.5, "server_idle_timeout_s": 1},
            "postgres": pg,
            "replicas": {"count": 2, "max_connections": max_conn},
            "network": {"app_bouncer_rtt_ms": rtt, "bouncer_postgres_rtt_ms": rtt / 2.0, "app_postgres_rtt_ms": rtt,
                "wakeup": {"const_ms": rtt}, "wakeup_after_ms": 0.5},
            "faults": faults
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_scenarios_keep_every_invariant(doc in arb_scenario()) {
        let sc = scenario(doc);
        let recs: Vec<_> = (0..sc.run.replications).map(|r| run(&sc, r)).collect();
        for rec in &recs {
            prop_assert!(!rec.truncated);
            let g = |n: &str| rec.values[metric_index(n)];
            for (i, v) in rec.values.iter().enumerate() {
                prop_assert!(v.is_finite() && *v >= 0.0, "{} = {}", METRIC_NAMES[i], v);
            }
            prop_assert!(g("failure_rate") <= 1.0);
            let causes: f64 = (0..CAUSES.len()).map(|i| rec.values[FIRST_CAUSE_METRIC + i]).sum();
            prop_assert!((causes - g("failure_rate")).abs() < 1e-9);
            if g("requests_completed") > 0.0 {
                prop_assert!(g("latency_p50_ms") <= g("latency_p95_ms"));
                prop_assert!(g("latency_p95_ms") <= g("latency_p99_ms"));
                prop_assert!(g("latency_p99_ms") <= g("latency_max_ms") * (1.0 + 1e-3));
                prop_assert!(g("latency_mean_ms") <= g("latency_max_ms") * (1.0 + 1e-3));
            }
            prop_assert!(g("app_pool_utilization") <= 1.0 + 1e-9);
            prop_assert!(g("bouncer_server_utilization") <= 1.0 + 1e-9);
            prop_assert!(g("postgres_slot_utilization") <= 1.0 + 1e-9);
            prop_assert!(g("postgres_cpu_utilization") <= 1.0 + 1e-9);
            prop_assert!(g("pool_exhaustion_fraction") <= 1.0);
        }
        for iv in summarize(&recs, 0.95) {
            prop_assert!(iv.low <= iv.mean + 1e-9 && iv.mean <= iv.high + 1e-9, "{iv:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_sweep_has_the_product_of_its_axis_lengths(a in 1usize..4, b in 1usize..4, c in 1usize..3) {
        let doc = json!({
            "run": {"duration_s": 0.2, "warmup_s": 0, "replications": 1},
            "clients": {"users": 2},
            "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 1}}]},
            "app": {"pools": {"primary": {}}},
            "sweep": {
                "clients.users": (1..=a).collect::<Vec<_>>(),
                "app.pools.primary.max_size": (10..10 + b).collect::<Vec<_>>(),
                "postgres.cores": (1..=c).collect::<Vec<_>>()
            }
        });
        let loaded = poolsim::experiment::LoadedExperiment::from_doc("x.json", doc);
        let plan = poolsim::sweep::plan(&loaded, true).unwrap();
        prop_assert_eq!(plan.points.len(), a * b * c);
        // the first axis varies slowest
        prop_assert_eq!(&plan.points.last().unwrap().params[0].1, &json!(a));
    }
}
