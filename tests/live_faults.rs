//! Destructive live tests, in their own test binary (cargo runs test binaries one after the
//! other) and serialised among themselves: PgBouncer killed in the middle of a bench, and a
//! bench stopped with Ctrl-C. Gated like tests/live.rs.

mod common;

use common::*;
use poolsim::report::Results;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// bench-local.json as one point that runs for `duration_s`.
fn one_point(dir: &std::path::Path, duration_s: u32) -> std::path::PathBuf {
    let mut doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("experiments/bench-local.json")).unwrap(),
    )
    .unwrap();
    doc["sweep"] = serde_json::json!({});
    doc["run"] = serde_json::json!({"duration_s": duration_s, "warmup_s": 1, "replications": 1});
    doc["app"]["pools"]["primary"]["acquire_timeout_ms"] = serde_json::json!(2000);
    let p = dir.join("one-point.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    p
}

fn port_of(url: &str) -> Option<String> {
    let after_host = url.rsplit('@').next()?;
    let host_port = after_host.split('/').next()?;
    Some(host_port.rsplit(':').next()?.to_string())
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn live_pgbouncer_killed_mid_run_results_still_written() {
    let Some(c) = cluster("live_pgbouncer_killed_mid_run_results_still_written") else {
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster_dir = std::env::var("POOLSIM_CLUSTER_DIR")
        .expect("POOLSIM_CLUSTER_DIR (set by scripts/cluster.sh env) to find pgbouncer.pid");
    ensure_accounts(&c.pg);
    let before = poolsim_connections(&c.pg);
    let dir = scratch("live-kill");
    let exp = one_point(&dir, 8);
    let child = poolsim()
        .args(["bench"])
        .arg(&exp)
        .args([
            "--pg",
            &c.pg,
            "--bouncer",
            &c.bouncer,
            "--format",
            "json",
            "--out",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let pid_file = std::path::Path::new(&cluster_dir).join("pgbouncer.pid");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    signal(pid, "-KILL");
    std::thread::sleep(Duration::from_millis(1500));
    // bring PgBouncer back with the cluster's own options (the ports in its URLs)
    let mut up = Command::new(repo().join("scripts/cluster.sh"));
    up.arg("up");
    up.args(["--pg-port", &port_of(&c.pg).unwrap()]);
    up.args(["--bouncer-port", &port_of(&c.bouncer).unwrap()]);
    if let Ok(r) = std::env::var("POOLSIM_REPLICA_URL") {
        up.args(["--replica", "--replica-port", &port_of(&r).unwrap()]);
    }
    let up = up.stdout(Stdio::null()).output().unwrap();
    assert!(
        up.status.success(),
        "cluster.sh up: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let o = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "exit {:?}\n{stderr}", o.status);
    assert!(
        stderr.contains("error during the run"),
        "the error is not reported:\n{stderr}"
    );
    assert!(!stderr.contains(":poolsim@"), "{stderr}");
    let r: Results = serde_json::from_str(&stdout).unwrap();
    let written: Results =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(r, written);
    assert_eq!(r.points.len(), 1);
    let p = &r.points[0];
    let conn_failures = p.mean("connection_lost_rate")
        + p.mean("connect_refused_rate")
        + p.mean("server_login_failed_rate")
        + p.mean("acquire_timeout_rate");
    assert!(
        conn_failures > 0.0,
        "no connection failures counted: {:?}",
        p.metrics
    );
    assert!(p.mean("requests_completed") > 0.0);
    let errors = r.environment.as_ref().unwrap()["errors"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!errors.is_empty());
    // the load recovered once PgBouncer was back, and nothing is left behind
    let deadline = Instant::now() + Duration::from_secs(5);
    while poolsim_connections(&c.pg) > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        poolsim_connections(&c.pg),
        before,
        "connections left after the run"
    );
}

#[test]
fn live_ctrl_c_writes_partial_results() {
    let Some(c) = cluster("live_ctrl_c_writes_partial_results") else {
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ensure_accounts(&c.pg);
    let before = poolsim_connections(&c.pg);
    let dir = scratch("live-ctrl-c");
    let exp = one_point(&dir, 30);
    let child = poolsim()
        .args(["bench"])
        .arg(&exp)
        .args([
            "--pg",
            &c.pg,
            "--bouncer",
            &c.bouncer,
            "--format",
            "json",
            "--out",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    signal(child.id(), "-INT");
    let started = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "Ctrl-C took too long"
    );
    let (stdout, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let r: Results = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r.points.len(), 1, "the partial point is kept");
    assert!(r.points[0].truncated);
    assert_eq!(r.environment.as_ref().unwrap()["interrupted"], true);
    assert!(r.points[0].mean("throughput_rps") > 0.0);
    assert!(dir.join("results.json").exists());
    let deadline = Instant::now() + Duration::from_secs(5);
    while poolsim_connections(&c.pg) > before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        poolsim_connections(&c.pg),
        before,
        "connections left after the run"
    );
}
