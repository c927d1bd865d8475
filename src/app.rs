//! One function per subcommand; the only place that touches files, stdout and the environment.

use crate::cli::{
    BenchArgs, CheckArgs, CheckFormat, Cli, Cmd, ExperimentArgs, Format, RunArgs, SweepArgs,
};
use crate::experiment::{
    load_experiment, parse_override, Invalid, LoadedExperiment, Problem, Severity,
};
use crate::report;
use crate::sim::METRIC_NAMES;
use crate::sweep::{self, Shard};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;

/// Bad command-line usage (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn main(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Sweep(a) => sweep_cmd(a),
        Cmd::Check(a) => check(a),
        Cmd::Bench(a) => bench(a),
    }
}

fn load(exp: &ExperimentArgs) -> Result<LoadedExperiment> {
    let mut overrides = Vec::new();
    for s in &exp.set {
        overrides.push(parse_override(s).map_err(|m| UsageError(format!("--set {m}")))?);
    }
    Ok(load_experiment(&exp.experiment, &overrides)?)
}

fn set_jobs(jobs: Option<usize>) -> Result<()> {
    if let Some(j) = jobs {
        if j == 0 {
            return Err(UsageError("--jobs must be at least 1".into()).into());
        }
        // ignore "already initialised" (tests call the app more than once per process)
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(j)
            .build_global();
    }
    Ok(())
}

fn print_warnings(ws: &[Problem]) {
    for w in ws.iter().filter(|w| w.severity == Severity::Warning) {
        eprintln!("{w}");
    }
}

fn out(bytes: &[u8]) -> Result<()> {
    let mut so = std::io::stdout().lock();
    so.write_all(bytes)?;
    so.flush()?;
    Ok(())
}

fn progress(total: u64, quiet: bool) -> ProgressBar {
    if quiet || total < 4 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} simulating [{bar:30}] {pos}/{len} runs, {elapsed} elapsed, eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb
}

fn simulate(
    loaded: &LoadedExperiment,
    with_sweep: bool,
    shard: Option<Shard>,
    quiet: bool,
) -> Result<report::Results> {
    let plan = sweep::plan(loaded, with_sweep)?;
    let mut warnings: Vec<Problem> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in &plan.points {
        for w in &p.warnings {
            if seen.insert(w.to_string()) {
                warnings.push(w.clone());
            }
        }
    }
    print_warnings(&warnings);
    let points: Vec<&sweep::Point> = plan
        .points
        .iter()
        .filter(|p| shard.is_none_or(|s| s.contains(p.index)))
        .collect();
    if points.is_empty() {
        return Err(UsageError("this shard has no points".into()).into());
    }
    let total: u64 = points
        .iter()
        .map(|p| p.scenario.run.replications as u64)
        .sum();
    let pb = progress(total, quiet);
    let results = sweep::run_points(&points, || pb.inc(1));
    pb.finish_and_clear();
    let shard_label = shard.map(|s| format!("{}/{}", s.k, s.n));
    Ok(report::build(&plan, &results, &warnings, shard_label))
}

fn run(a: RunArgs) -> Result<()> {
    set_jobs(a.jobs)?;
    let loaded = load(&a.exp)?;
    let results = simulate(&loaded, false, None, true)?;
    match a.format {
        Format::Json => out(&report::to_json(&results)),
        Format::Csv => out(&report::to_csv(&results)),
        Format::Table => {
            let mut s = String::from_utf8(report::table::render(&results)).expect("utf-8");
            let p = &results.points[0];
            s.push('\n');
            for name in METRIC_NAMES {
                if let Some(m) = p.metric(name) {
                    let hw = m
                        .half_width
                        .map(|h| format!(" ± {h:.4}"))
                        .unwrap_or_default();
                    s.push_str(&format!("{name:<34} {:>14.4}{hw}\n", m.mean));
                }
            }
            out(s.as_bytes())
        }
    }
}

fn sweep_cmd(a: SweepArgs) -> Result<()> {
    set_jobs(a.jobs)?;
    let shard = match &a.shard {
        Some(s) => Some(
            s.parse::<Shard>()
                .map_err(|m| UsageError(format!("--shard: {m}")))?,
        ),
        None => None,
    };
    let loaded = load(&a.exp)?;
    let results = simulate(&loaded, true, shard, a.quiet)?;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stem = match shard {
            Some(s) => format!("results.shard-{}-of-{}", s.k, s.n),
            None => "results".into(),
        };
        for (ext, bytes) in [
            ("json", report::to_json(&results)),
            ("csv", report::to_csv(&results)),
            ("txt", report::table::render(&results)),
        ] {
            let path = dir.join(format!("{stem}.{ext}"));
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    match a.format {
        Format::Table => out(&report::table::render(&results)),
        Format::Json => out(&report::to_json(&results)),
        Format::Csv => out(&report::to_csv(&results)),
    }
}

fn check(a: CheckArgs) -> Result<()> {
    let loaded = load(&a.exp)?;
    let plan = sweep::plan(&loaded, true)?;
    let base = sweep::plan(&loaded, false)?;
    let sc = &base.points[0].scenario;
    let cap = crate::capacity::capacity(sc);
    let mut warnings: Vec<Problem> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in &plan.points {
        for w in &p.warnings {
            if seen.insert(w.to_string()) {
                warnings.push(w.clone());
            }
        }
    }
    match a.format {
        CheckFormat::Json => {
            let doc = serde_json::json!({
                "experiment": sc.name,
                "valid": true,
                "points": plan.points.len(),
                "runs": plan.points.iter().map(|p| p.scenario.run.replications as u64).sum::<u64>(),
                "warnings": warnings.iter().map(|w| serde_json::json!({"path": w.path, "value": w.value, "message": w.message, "hint": w.hint})).collect::<Vec<_>>(),
                "capacity": cap,
            });
            let mut v = serde_json::to_vec_pretty(&doc)?;
            v.push(b'\n');
            out(&v)
        }
        CheckFormat::Text => {
            let mut s = format!(
                "{}: valid — {} point(s) × {} replication(s)\n",
                sc.name,
                plan.points.len(),
                sc.run.replications
            );
            s.push_str(&format!("\ncapacity of the base scenario (mean demands, no queueing):\n  offered load          {:>10.0} rps\n", cap.offered_rps));
            for b in &cap.bounds {
                s.push_str(&format!(
                    "  {:<21} {:>10.0} rps  ({})\n",
                    b.tier, b.max_rps, b.why
                ));
            }
            if let Some(min) = cap
                .bounds
                .iter()
                .min_by(|a, b| a.max_rps.total_cmp(&b.max_rps))
            {
                let verdict = if cap.offered_rps > min.max_rps {
                    "overloaded: expect queueing and timeouts"
                } else {
                    "within capacity"
                };
                s.push_str(&format!("  bottleneck: {} — {}\n", min.tier, verdict));
            }
            if warnings.is_empty() {
                s.push_str("\nno warnings\n");
            } else {
                s.push_str(&format!("\n{} warning(s):\n", warnings.len()));
                for w in &warnings {
                    s.push_str(&format!("{w}\n"));
                }
            }
            out(s.as_bytes())
        }
    }
}

/// Re-exported for tests: the problems of an invalid experiment.
pub fn problems_of(e: &anyhow::Error) -> Option<&Invalid> {
    e.downcast_ref::<Invalid>()
}

/// What the load generator runs on, for the measured results' environment.
fn machine() -> serde_json::Value {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let cpu = read("/proc/cpuinfo").and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    serde_json::json!({
        "hostname": read("/proc/sys/kernel/hostname"),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "kernel": read("/proc/sys/kernel/osrelease"),
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
    })
}

fn bench(a: BenchArgs) -> Result<()> {
    use std::io::IsTerminal;
    if a.replications == Some(0) {
        return Err(UsageError("--replications must be at least 1".into()).into());
    }
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(UsageError("--threads must be at least 1".into()).into());
    }
    let loaded = load(&a.exp)?;
    let plan = sweep::plan(&loaded, true)?;
    let mut warnings: Vec<Problem> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in &plan.points {
        for w in &p.warnings {
            if seen.insert(w.to_string()) {
                warnings.push(w.clone());
            }
        }
    }
    print_warnings(&warnings);
    let opts = crate::live::bench::Options {
        pg: a.pg,
        bouncer: a.bouncer,
        bouncer_admin: a.bouncer_admin,
        replica: a.replica,
        replications: a.replications,
        threads,
        progress: !a.quiet && std::io::stderr().is_terminal(),
        machine: machine(),
    };
    let outcome = crate::live::bench::bench(&plan, &warnings, &opts)?;
    for e in &outcome.errors {
        eprintln!("error during the run: {e}");
    }
    let results = &outcome.results;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (ext, bytes) in [
            ("json", report::to_json(results)),
            ("csv", report::to_csv(results)),
            ("txt", report::table::render(results)),
        ] {
            let path = dir.join(format!("results.{ext}"));
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    match a.format {
        Format::Table => out(&report::table::render(results))?,
        Format::Json => out(&report::to_json(results))?,
        Format::Csv => out(&report::to_csv(results))?,
    }
    if outcome.interrupted {
        return Err(anyhow::anyhow!(
            "interrupted: the results above hold the {} point(s) measured so far",
            results.points.len()
        ));
    }
    Ok(())
}
