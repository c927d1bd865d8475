//! Determinism: the same inputs give the same numbers, whatever runs beside them.

use crate::common::scenario;
use poolsim::experiment::load::apply_override;
use poolsim::experiment::LoadedExperiment;
use poolsim::sim::run;
use poolsim::sweep::{plan, run_points};
use serde_json::json;

fn doc() -> serde_json::Value {
    json!({
        "seed": 5,
        "run": {"duration_s": 3, "warmup_s": 0.5, "replications": 3},
        "clients": {"users": 300, "think_time": {"exp": {"mean_ms": 100}}, "request_timeout_ms": 200},
        "workload": {"transactions": [{"name": "q", "statements": 2, "statement_wait": {"exp": {"mean_ms": 2}},
            "statement_cpu": {"gamma": {"shape": 2, "mean_ms": 0.5}}}]},
        "app": {"instances": 2, "pools": {"primary": {"min_size": 2, "max_size": 8, "acquire_timeout_ms": 50}}},
        "pgbouncer": {"pool_mode": "transaction", "default_pool_size": 6, "reserve_pool_size": 2,
            "reserve_pool_timeout_s": 0.5, "max_client_conn": 100},
        "postgres": {"cores": 2, "contention_kappa": 0.01},
        "sweep": {"clients.users": [100, 300], "pgbouncer.default_pool_size": [4, 6, 8]}
    })
}

/// `f` run on a pool of `n` threads.
fn on_threads<T: Send>(n: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn the_same_seed_gives_the_same_numbers_and_another_seed_other_numbers() {
    let sc = scenario(doc());
    let a = run(&sc, 0);
    let b = run(&sc, 0);
    assert_eq!(a, b);
    let mut other = sc.clone();
    other.seed = 6;
    assert_ne!(run(&other, 0).values, a.values);
    assert_ne!(run(&sc, 1).values, a.values, "replications differ");
}

#[test]
fn a_point_alone_gives_the_numbers_it_gives_inside_a_sweep() {
    let loaded = LoadedExperiment::from_doc("x.json", doc());
    let full = plan(&loaded, true).unwrap();
    let refs: Vec<_> = full.points.iter().collect();
    let swept = run_points(&refs, |_| {}, || {});
    // point 4 = users 300, default_pool_size 6
    let mut alone_doc = doc();
    apply_override(&mut alone_doc, "clients.users", json!(300)).unwrap();
    apply_override(&mut alone_doc, "pgbouncer.default_pool_size", json!(6)).unwrap();
    let alone = LoadedExperiment::from_doc("x.json", alone_doc);
    let single = plan(&alone, false).unwrap();
    let refs: Vec<_> = single.points.iter().collect();
    let one = run_points(&refs, |_| {}, || {});
    assert_eq!(
        full.points[4].params,
        vec![
            ("clients.users".into(), json!(300)),
            ("pgbouncer.default_pool_size".into(), json!(6))
        ]
    );
    assert_eq!(swept[4].records, one[0].records);
}

#[test]
fn precision_stopping_is_deterministic_and_reports_its_outcome() {
    let mut d = doc();
    d["run"]["precision"] = json!({"metrics": ["latency_p95_ms", "throughput_rps"], "relative_half_width": 0.02, "max_replications": 9});
    let loaded = LoadedExperiment::from_doc("x.json", d);
    let p = plan(&loaded, true).unwrap();
    let refs: Vec<_> = p.points.iter().collect();
    let a = run_points(&refs, |_| {}, || {});
    let b = on_threads(1, || run_points(&refs, |_| {}, || {}));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.records, y.records);
        let s = x.precision.as_ref().unwrap();
        assert!(s.replications >= 3 && s.replications <= 9);
        assert!(s.met || s.replications == 9, "{s:?}");
        assert_eq!(s.replications as usize, x.records.len());
    }
}

#[test]
fn a_swept_list_of_transactions_keeps_the_model_properties_of_the_names_it_lists() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/guide-before.json");
    let axis =
        json!([[{"name": "read", "route": "primary"}], [{"name": "write", "route": "primary"}]]);
    let loaded = poolsim::experiment::load_experiment(
        &path,
        &[("sweep.workload.transactions".into(), axis)],
    )
    .unwrap();
    let p = plan(&loaded, true).unwrap();
    assert_eq!(p.points.len(), 2);
    let cpu = |i: usize| p.points[i].scenario.workload.txs[0].cpu.mean_ms();
    let stmts = |i: usize| p.points[i].scenario.workload.txs[0].statements;
    // models/guide.json: read = 2 statements of 0.25 ms CPU, write = 3 statements of 0.3 ms
    assert!(
        (cpu(0) - 0.25).abs() < 1e-9 && stmts(0) == 2,
        "{} {}",
        cpu(0),
        stmts(0)
    );
    assert!(
        (cpu(1) - 0.30).abs() < 1e-9 && stmts(1) == 3,
        "{} {}",
        cpu(1),
        stmts(1)
    );
}

#[test]
fn per_core_scheduling_gives_the_same_numbers_whatever_the_thread_count() {
    // the placement on random busy cores draws from its own stream: a point's numbers depend on
    // the seed and the replication only, and differ from shared processor sharing
    let mut d = doc();
    d["postgres"]["cpu_scheduling"] = json!("per_core");
    d["postgres"]["cross_core_wakeup"] = json!({"exp": {"mean_ms": 0.05}});
    d["postgres"]["response_behind_statement"] = json!(0.5);
    d["app"]["on_postgres_host"] = json!(true);
    let loaded = LoadedExperiment::from_doc("x.json", d.clone());
    let p = plan(&loaded, true).unwrap();
    let refs: Vec<_> = p.points.iter().collect();
    let a = run_points(&refs, |_| {}, || {});
    let b = on_threads(1, || run_points(&refs, |_| {}, || {}));
    let c = on_threads(3, || run_points(&refs, |_| {}, || {}));
    for ((x, y), z) in a.iter().zip(&b).zip(&c) {
        assert_eq!(x.records, y.records);
        assert_eq!(x.records, z.records);
    }
    let sc = scenario(d);
    assert_eq!(run(&sc, 0), run(&sc, 0));
    assert_ne!(run(&sc, 0).values, run(&scenario(doc()), 0).values);
}
