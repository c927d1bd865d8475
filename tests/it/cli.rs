//! The command line, run as a user would: exit codes, error listings, determinism of the bytes.

use std::path::PathBuf;
use std::process::Command;

fn poolsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_poolsim"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tmp(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poolsim-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// A short version of the 10k sweep (same axes, shorter runs), for speed.
fn short_10k(args: &[&str]) -> std::process::Output {
    poolsim()
        .arg("sweep")
        .arg(root().join("experiments/10k.json"))
        .args([
            "--set",
            "run.duration_s=2",
            "--set",
            "run.warmup_s=0.5",
            "--set",
            "run.replications=2",
        ])
        .args(["--set", "sweep.clients.users=[1000, 20000]"])
        .args(["--quiet"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_problem_of_an_invalid_experiment_is_listed_with_path_value_and_fix() {
    let p = tmp(
        "bad.json",
        r#"{
          "clients": {"users": 10, "think_tme": {"const_ms": 1}},
          "workload": {"transactions": [{"name": "q", "statements": "two"}]},
          "app": {"pools": {"primary": {"min_size": 20, "max_size": 10}, "other": {"max_size": -5}}}
        }"#,
    );
    let out = poolsim().arg("check").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no partial output");
    let err = String::from_utf8(out.stderr).unwrap();
    for needle in [
        "clients.think_tme",
        "unknown field",
        "workload.transactions.0.statements = \"two\"",
        "invalid type",
        "app.pools.other.max_size = -5",
        "app.pools.primary.min_size = 20",
        "larger than max_size",
        "fix:",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    assert!(!err.contains("panicked"));
    // the same problems stop `run` and `sweep` before anything is simulated
    for cmd in ["run", "sweep"] {
        let out = poolsim().arg(cmd).arg(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
    }
}

#[test]
fn missing_file_and_bad_override_are_input_errors() {
    let out = poolsim()
        .args(["run", "/nonexistent/x.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));
    let out = poolsim()
        .arg("run")
        .arg(root().join("experiments/guide-before.json"))
        .args(["--set", "novalue"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = poolsim()
        .arg("sweep")
        .arg(root().join("experiments/guide-before.json"))
        .args(["--shard", "3/2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sweep_bytes_are_identical_with_one_and_two_threads() {
    let one = short_10k(&["--jobs", "1", "--format", "json"]);
    let two = short_10k(&["--jobs", "2", "--format", "json"]);
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    assert!(!one.stdout.is_empty());
    assert_eq!(one.stdout, two.stdout);
    let v: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["seed"], 7);
    assert!(v["poolsim_version"].is_string());
    assert!(v["resolved_experiment"]["pgbouncer"]["reserve_pool_size"].is_number());
    assert_eq!(v["points"].as_array().unwrap().len(), 2 * 3 * 3);
}

#[test]
fn golden_short_10k_sweep_table() {
    let out = short_10k(&["--jobs", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!("short_10k_sweep", String::from_utf8(out.stdout).unwrap());
}

#[test]
fn check_prints_capacity_and_warnings() {
    let out = poolsim()
        .arg("check")
        .arg(root().join("experiments/10k.json"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("valid — 36 point(s)"), "{s}");
    assert!(s.contains("bottleneck"), "{s}");
    let out = poolsim()
        .arg("check")
        .arg(root().join("experiments/10k.json"))
        .args(["--set", "pgbouncer.max_client_conn=100", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = v["warnings"].as_array().unwrap();
    assert!(
        w.iter().any(|w| w["path"] == "pgbouncer.max_client_conn"),
        "{v}"
    );
}

#[test]
fn sweep_writes_json_csv_and_table_files() {
    let dir = std::env::temp_dir().join(format!("poolsim-it-out-{}", std::process::id()));
    let out = poolsim()
        .arg("sweep")
        .arg(root().join("experiments/guide-before.json"))
        .args([
            "--set",
            "run.duration_s=1",
            "--set",
            "run.warmup_s=0.2",
            "--set",
            "sweep.app.pools.primary.max_size=[20, 35]",
            "-q",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.starts_with("point,app.pools.primary.max_size,throughput_rps,"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        json["points"][1]["params"]["app.pools.primary.max_size"],
        35
    );
    assert!(dir.join("results.txt").exists());
}

#[test]
fn merged_shards_give_the_bytes_of_the_whole_sweep() {
    let whole = short_10k(&["--format", "json"]);
    assert!(whole.status.success());
    let mut files = Vec::new();
    for k in 1..=3 {
        let out = short_10k(&["--format", "json", "--shard", &format!("{k}/3")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        files.push(tmp(
            &format!("shard-{k}.json"),
            std::str::from_utf8(&out.stdout).unwrap(),
        ));
    }
    // in any order
    let merged = poolsim()
        .arg("merge")
        .args([&files[2], &files[0], &files[1]])
        .output()
        .unwrap();
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    assert_eq!(merged.stdout, whole.stdout);
    // a missing shard is an input error naming the missing points
    let partial = poolsim()
        .arg("merge")
        .args([&files[0], &files[1]])
        .output()
        .unwrap();
    assert_eq!(partial.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&partial.stderr).contains("missing"));
}

#[test]
fn compare_matches_points_and_gates_on_tolerances() {
    let run = |extra: &[&str]| {
        poolsim()
            .arg("sweep")
            .arg(root().join("experiments/guide-before.json"))
            .args([
                "--set",
                "run.duration_s=1",
                "--set",
                "run.warmup_s=0.2",
                "--set",
                "sweep.app.pools.primary.max_size=[20, 35]",
                "-q",
                "--format",
                "json",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let projected = tmp(
        "projected.json",
        std::str::from_utf8(&run(&[]).stdout).unwrap(),
    );
    // a "measurement" from another seed: small errors, all points matched
    let other = run(&["--set", "seed=99"]);
    let mut measured: serde_json::Value = serde_json::from_slice(&other.stdout).unwrap();
    measured["source"] = "measured".into();
    let measured = tmp("measured.json", &measured.to_string());
    let out = poolsim()
        .arg("compare")
        .arg(&projected)
        .arg(&measured)
        .args(["--tolerance", "throughput_rps=5"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("app.pools.primary.max_size=35"), "{text}");
    assert!(text.contains("median"), "{text}");
    // an impossible tolerance fails the gate with exit code 3
    let out = poolsim()
        .arg("compare")
        .arg(&projected)
        .arg(&measured)
        .args(["--tolerance", "latency_p95_ms=0.000001"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    // a pgbench log is a measurement too (one point against a one-point projection)
    let single = poolsim()
        .arg("run")
        .arg(root().join("experiments/guide-before.json"))
        .args([
            "--set",
            "run.duration_s=1",
            "--set",
            "run.warmup_s=0.2",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let single = tmp("single.json", std::str::from_utf8(&single.stdout).unwrap());
    let out = poolsim()
        .arg("compare")
        .arg(&single)
        .arg(root().join("tests/data/pgbench/select-only"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["points"][0]["rows"][0]["measured"]["mean"]
            .as_f64()
            .map(|x| x.round()),
        Some(664.0)
    );
}
