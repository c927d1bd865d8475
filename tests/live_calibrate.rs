//! `poolsim calibrate` against the live test cluster (gated on POOLSIM_PG_URL /
//! POOLSIM_BOUNCER_URL; scripts/test.sh sets them and POOLSIM_LIVE=1). Its own binary, so that
//! the load it puts on the cluster never overlaps the bench tests.

mod common;

use common::*;
use serde_json::Value;

/// Rows of a simple query, every column as text.
fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connecting to the test cluster");
        tokio::spawn(conn);
        let msgs = client.simple_query(sql).await.expect("test SQL");
        msgs.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("").to_string())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    })
}

/// Calibrate's own connections still on PostgreSQL. PgBouncer's pooled server connections
/// carry the last client's application_name, but they are PgBouncer's (closed by its
/// server_idle_timeout), so the backends whose client port is one of PgBouncer's server
/// connections (SHOW SERVERS) do not count.
/// Held by the tests that calibrate the shared test cluster and count the calibration's
/// connections afterwards: another calibration running meanwhile would be counted too.
static CALIBRATING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn calibrate_connections(pg: &str, bouncer: &str) -> usize {
    let admin = match bouncer.rfind('/') {
        Some(i) => format!("{}/pgbouncer", &bouncer[..i]),
        None => bouncer.to_string(),
    };
    let servers = query(&admin, "SHOW SERVERS");
    // local_port is the 8th column of SHOW SERVERS (type, user, database, state, addr, port,
    // local_addr, local_port, …)
    let bouncer_ports: Vec<String> = servers.iter().filter_map(|r| r.get(7).cloned()).collect();
    query(
        pg,
        "SELECT client_port FROM pg_stat_activity WHERE application_name LIKE 'poolsim-calibrate%'",
    )
    .into_iter()
    .filter(|r| !bouncer_ports.contains(&r[0]))
    .count()
}

#[test]
fn live_calibrate_writes_a_model_an_experiment_runs_on() {
    let Some(c) = cluster("live_calibrate_writes_a_model_an_experiment_runs_on") else {
        return;
    };
    let _alone = CALIBRATING.lock().unwrap_or_else(|e| e.into_inner());
    ensure_accounts(&c.pg);
    let dir = scratch("live-calibrate");
    let model_path = dir.join("local.json");
    let o = poolsim()
        .args(["calibrate", "--workload", "experiments/bench-local.json"])
        .args(["--budget-s", "20", "--max-concurrency", "4"])
        .args(["--pg", &c.pg, "--bouncer", &c.bouncer])
        .arg("--out")
        .arg(&model_path)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("USL"), "{stdout}");
    assert!(stdout.contains("transaction select"), "{stdout}");
    assert!(!stdout.contains("poolsim:poolsim@") && !stderr.contains("poolsim:poolsim@"));

    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(&model_path).unwrap()).unwrap();
    assert_eq!(model["name"], "local");
    assert!(model["description"].is_string());
    let p = &model["provenance"];
    for k in [
        "method",
        "command",
        "date",
        "postgres",
        "pgbouncer",
        "cores",
        "round_trip",
        "pgbouncer_latency",
        "transactions",
        "usl",
        "contention",
        "wait_cpu_split",
        "backend_start",
        "client_connect",
        "two_speeds",
    ] {
        assert!(p.get(k).is_some(), "provenance.{k} missing: {p:#}");
    }
    // one verdict per type, from the samples it names (null: one mode)
    let speeds = p["two_speeds"]["types"].as_array().unwrap();
    assert_eq!(speeds.len(), 1, "{speeds:?}");
    assert_eq!(speeds[0]["transaction"], "select");
    assert!(speeds[0]["back_to_back_samples"].as_u64().unwrap() >= 50);
    assert!(speeds[0]["after_a_pause_samples"].as_u64().unwrap() >= 50);
    for k in ["back_to_back", "after_a_pause"] {
        let t = &speeds[0][k];
        assert!(
            t.is_null() || t["slow_ms"].as_f64() >= t["fast_ms"].as_f64(),
            "{t}"
        );
    }
    assert!(p["postgres"]["server_version"].as_str().unwrap().len() > 1);
    assert!(p["pgbouncer"]["version"]
        .as_str()
        .unwrap()
        .contains("PgBouncer"));
    assert!(
        p["transactions"]["select"]["fits"]
            .as_array()
            .unwrap()
            .len()
            == 3
    );
    let d = &model["defaults"];
    for path in [
        "/network/app_postgres_rtt_ms",
        "/network/app_bouncer_rtt_ms",
        "/network/bouncer_postgres_rtt_ms",
        "/pgbouncer/cpu_per_query",
        "/pgbouncer/client_connect",
        "/postgres/cores",
        "/postgres/contention_sigma",
        "/postgres/contention_kappa",
        "/postgres/backend_start",
        "/workload/transactions/0/statement_wait",
        "/workload/transactions/0/statement_cpu",
        "/workload/transactions/0/wakeup",
        "/network/wakeup_after_ms",
    ] {
        assert!(d.pointer(path).is_some(), "defaults{path} missing: {d:#}");
    }
    // the host's slow state outlasts an idle spell by the traced 30 ms
    assert_eq!(d["network"]["wakeup_memory_ms"], 30.0, "{d:#}");
    assert_eq!(d["workload"]["transactions"][0]["name"], "select");
    let text_all = serde_json::to_string(&model).unwrap();
    assert!(
        !text_all.contains("poolsim:poolsim@"),
        "a password in the model"
    );

    // the experiment on top of the model validates and simulates
    let mut exp: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("experiments/bench-local.json")).unwrap(),
    )
    .unwrap();
    exp["model"] = Value::String("local.json".into());
    let exp_path = dir.join("bench-local-calibrated.json");
    std::fs::write(&exp_path, serde_json::to_string_pretty(&exp).unwrap()).unwrap();
    let o = poolsim().arg("run").arg(&exp_path).output().unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("throughput"), "{stdout}");

    // nothing left behind
    let mut left = calibrate_connections(&c.pg, &c.bouncer);
    for _ in 0..20 {
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = calibrate_connections(&c.pg, &c.bouncer);
    }
    assert_eq!(left, 0, "poolsim-calibrate connections remain");
}

#[test]
fn live_calibrate_unreachable_database_exits_1_naming_the_redacted_url() {
    // no cluster needed: nothing listens on port 1
    let o = poolsim()
        .args(["calibrate", "--workload", "experiments/bench-local.json"])
        .args(["--out", "/nonexistent-dir/never.json", "--budget-s", "10"])
        .args(["--pg", "postgres://poolsim:Sup3rSecret@127.0.0.1:1/poolsim"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr
            .contains("cannot connect to PostgreSQL at postgres://poolsim:***@127.0.0.1:1/poolsim"),
        "{stderr}"
    );
    assert!(!stderr.contains("Sup3rSecret"), "{stderr}");
}

#[test]
fn live_calibrate_failing_sql_names_the_transaction() {
    let Some(c) = cluster("live_calibrate_failing_sql_names_the_transaction") else {
        return;
    };
    let dir = scratch("live-calibrate-bad-sql");
    let exp = serde_json::json!({
        "name": "bad",
        "workload": {"transactions": [
            {"name": "broken", "sql": ["SELECT * FROM poolsim_no_such_table"]}
        ]}
    });
    let exp_path = dir.join("bad.json");
    std::fs::write(&exp_path, exp.to_string()).unwrap();
    let o = poolsim()
        .args(["calibrate", "--budget-s", "10", "--pg", &c.pg])
        .arg("--workload")
        .arg(&exp_path)
        .arg("--out")
        .arg(dir.join("bad-model.json"))
        .output()
        .unwrap();
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`broken`"), "{stderr}");
    assert!(stderr.contains("poolsim_no_such_table"), "{stderr}");
    assert!(!stderr.contains("poolsim:poolsim@"), "{stderr}");
    assert!(!dir.join("bad-model.json").exists());
}

/// A shortened `poolsim validate` of experiments/validate-local.json: two waiting-bound workloads,
/// each calibrated briefly on its own right before its two points are benched; projected,
/// compared, every artefact written.
#[test]
fn live_validate_runs_the_whole_loop_on_a_short_sweep() {
    let Some(c) = cluster("live_validate_runs_the_whole_loop_on_a_short_sweep") else {
        return;
    };
    let _alone = CALIBRATING.lock().unwrap_or_else(|e| e.into_inner());
    ensure_accounts(&c.pg);
    let _ = psql(
        &c.pg,
        "CREATE TABLE IF NOT EXISTS poolsim_bench_history (aid int NOT NULL, delta int NOT NULL, mtime timestamptz NOT NULL)",
    );
    let dir = scratch("live-validate");
    let o = poolsim()
        .args(["validate", "experiments/validate-local.json", "--budget-s", "20", "-q"])
        .args(["--pg", &c.pg, "--bouncer", &c.bouncer])
        .args(["--replications", "1"])
        .args(["--set", "run.duration_s=2", "--set", "run.warmup_s=0.5"])
        .args(["--set", r#"sweep.workload.transactions=[[{"name": "sleep", "route": "primary", "sql": ["SELECT pg_sleep(0.004)"]}], [{"name": "nap", "route": "primary", "sql": ["SELECT pg_sleep(0.002)"]}]]"#])
        .args(["--set", "sweep.pgbouncer.default_pool_size=[2]"])
        .args(["--set", r#"sweep.clients=[{"mode": "closed", "users": 1, "think_time": {"const_ms": 0}}, {"mode": "closed", "users": 4, "think_time": {"const_ms": 0}}]"#])
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("summary"), "{stdout}");
    assert!(!stdout.contains("poolsim:poolsim@") && !stderr.contains("poolsim:poolsim@"));
    for f in [
        "model-1-sleep.json",
        "calibration-1-sleep.txt",
        "model-2-nap.json",
        "calibration-2-nap.txt",
        "projected.json",
        "measured.json",
        "comparison.json",
        "comparison.txt",
        "report.html",
    ] {
        assert!(dir.join(f).exists(), "{f} missing in {}", dir.display());
    }
    // each calibration measured its own workload only, and each point names its model
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model-2-nap.json")).unwrap())
            .unwrap();
    let measured_types: Vec<&str> = model["provenance"]["transactions"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(measured_types, ["nap"], "{:#}", model["provenance"]);
    let projected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("projected.json")).unwrap())
            .unwrap();
    let models: Vec<&str> = projected["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["model"].as_str().unwrap())
        .collect();
    assert!(
        models[..2]
            .iter()
            .all(|m| m.ends_with("model-1-sleep.json"))
            && models[2..].iter().all(|m| m.ends_with("model-2-nap.json")),
        "{models:?}"
    );
    let cmp: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("comparison.json")).unwrap())
            .unwrap();
    let points = cmp["points"].as_array().unwrap();
    assert_eq!(points.len(), 4, "{cmp:#}");
    // each workload's level measured again after its points, against its calibration's
    let notes: Vec<&str> = cmp["notes"]
        .as_array()
        .unwrap_or_else(|| panic!("no notes: {cmp:#}"))
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].starts_with("`sleep` back to back on the path: "),
        "{notes:?}"
    );
    assert!(
        notes[1].starts_with("`nap` back to back on the path: "),
        "{notes:?}"
    );
    assert!(
        notes.iter().all(|n| n.contains(" ms after its points (")),
        "{notes:?}"
    );
    let table = std::fs::read_to_string(dir.join("comparison.txt")).unwrap();
    assert!(table.contains(notes[1]), "{table}");
    // the waiting-bound workloads at pool 2: 4 users saturate PgBouncer's two servers (≈ 2 / 4 ms);
    // the projection must land in the same regime as the measurement
    for p in points {
        let thr = p["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["metric"] == "throughput_rps")
            .unwrap();
        let e = thr["rel_error"].as_f64().unwrap();
        assert!(
            e.abs() < 0.5,
            "projected vs measured throughput off by {e}: {thr:#}"
        );
    }
}
