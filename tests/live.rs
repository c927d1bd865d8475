//! `poolsim bench` against the live test cluster (gated on POOLSIM_PG_URL / POOLSIM_BOUNCER_URL;
//! scripts/test.sh sets them and POOLSIM_LIVE=1). The destructive tests (PgBouncer killed,
//! Ctrl-C) live in tests/live_faults.rs, their own binary, so that they never overlap these.

mod common;

use common::*;
use poolsim::report::Results;

#[test]
fn live_bench_writes_measured_results_in_the_simulators_schema() {
    let Some(c) = cluster("live_bench_writes_measured_results_in_the_simulators_schema") else {
        return;
    };
    ensure_accounts(&c.pg);
    let before = poolsim_connections(&c.pg);
    let out_dir = scratch("live-bench");
    let o = poolsim()
        .args([
            "bench",
            "experiments/bench-local.json",
            "--replications",
            "1",
        ])
        .args(["--set", "run.duration_s=3", "--set", "run.warmup_s=1"])
        .args([
            "--pg",
            &c.pg,
            "--bouncer",
            &c.bouncer,
            "--format",
            "json",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "exit {:?}\n{stderr}", o.status);
    assert!(
        !stderr.contains("poolsim:poolsim@"),
        "a password in stderr:\n{stderr}"
    );
    let file = std::fs::read_to_string(out_dir.join("results.json")).unwrap();
    assert_eq!(file, stdout, "stdout and results.json differ");
    assert!(!file.contains(":poolsim@"), "a password in the results");
    let r: Results = serde_json::from_str(&file).unwrap();
    assert_eq!(r.source, "measured");
    assert_eq!(r.points.len(), 4);
    assert_eq!(r.axes.len(), 2);
    let env = r.environment.as_ref().expect("environment");
    assert!(env["postgres"]["server_version"].is_string(), "{env}");
    assert_eq!(
        env["pgbouncer"]["settings_before"]["pool_mode"],
        "transaction"
    );
    assert!(env["pgbouncer"]["version"]
        .as_str()
        .unwrap()
        .contains("PgBouncer"));
    assert_eq!(env["errors"].as_array().unwrap().len(), 0, "{env}");
    for p in &r.points {
        for name in poolsim::sim::METRIC_NAMES {
            if !poolsim::live::bench::NOT_MEASURED.contains(name) {
                assert!(p.metric(name).is_some(), "point {} lacks {name}", p.index);
            }
        }
        let x = p.mean("throughput_rps");
        assert!(x > 100.0, "point {}: {x} rps", p.index);
        assert_eq!(p.mean("failure_rate"), 0.0, "point {}", p.index);
        let resid = p.mean("littles_law_residual");
        assert!(
            resid < 0.02,
            "point {}: Little's-law residual {resid}",
            p.index
        );
        let users = p.params["clients.users"].as_f64().unwrap();
        let l = p.mean("in_system_mean");
        assert!(
            (l - users).abs() / users < 0.05,
            "point {}: L = {l} for {users} users",
            p.index
        );
        let peak = p.mean("postgres_peak_connections");
        assert!(peak >= 1.0, "point {}: peak {peak}", p.index);
        // its one replication, on its own
        assert_eq!(p.runs.len(), 1, "point {}: {:?}", p.index, p.runs);
        let run = &p.runs[0];
        assert_eq!(run.replication, 0);
        assert!(
            (run.throughput_rps - x).abs() <= 1e-9 * x,
            "{run:?} against {x}"
        );
        assert!((run.latency_p95_ms - p.mean("latency_p95_ms")).abs() < 1e-9);
        assert_eq!(run.failure_rate, 0.0);
    }
    // the windows in the order they ran, each after the last one's 3 s
    for w in r.points.windows(2) {
        let (a, b) = (w[0].runs[0].started_s, w[1].runs[0].started_s);
        assert!(b >= a + 3.0, "windows at {a} s then {b} s");
    }
    // the CSV has one row per point
    let csv = std::fs::read_to_string(out_dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
    // nothing of poolsim's is left on the server
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while poolsim_connections(&c.pg) > before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        poolsim_connections(&c.pg),
        before,
        "connections left after the run"
    );
}

#[test]
fn live_unreachable_database_exits_1_naming_the_redacted_url() {
    // no cluster needed: nothing listens on port 1
    let o = poolsim()
        .args([
            "bench",
            "experiments/bench-local.json",
            "--replications",
            "1",
        ])
        .args(["--pg", "postgres://poolsim:Sup3rSecret@127.0.0.1:1/poolsim"])
        .args([
            "--bouncer",
            "postgres://poolsim:Sup3rSecret@127.0.0.1:2/poolsim",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr
            .contains("cannot connect to PostgreSQL at postgres://poolsim:***@127.0.0.1:1/poolsim"),
        "{stderr}"
    );
    assert!(!stderr.contains("Sup3rSecret"), "{stderr}");
}

#[test]
fn live_missing_bouncer_url_is_a_usage_error() {
    let o = poolsim()
        .args(["bench", "experiments/bench-local.json"])
        .args(["--pg", "postgres://poolsim:Sup3rSecret@127.0.0.1:1/poolsim"])
        .output()
        .unwrap();
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("app.pools.primary.target"), "{stderr}");
    assert!(stderr.contains("--bouncer"), "{stderr}");
    assert!(!stderr.contains("Sup3rSecret"), "{stderr}");
}
