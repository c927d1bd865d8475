//! One function per subcommand; the only place that writes files and stdout (experiment and
//! model files are read by `experiment::load`, pgbench logs by `live::pgbench`).

use crate::cli::{
    BenchArgs, CalibrateArgs, ChartArgs, ChartFormat, CheckArgs, CheckFormat, Cli, Cmd,
    CompareArgs, ExperimentArgs, Format, MergeArgs, ReportArgs, RunArgs, SweepArgs, ValidateArgs,
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
use std::path::Path;

/// `compare` found a metric past its tolerance (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("tolerance exceeded at {0} place(s)")]
pub struct ToleranceExceeded(pub usize);

/// Bad command-line usage (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn main(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Sweep(a) => sweep_cmd(a),
        Cmd::Check(a) => check(a),
        Cmd::Merge(a) => merge(a),
        Cmd::Compare(a) => compare(a),
        Cmd::Chart(a) => chart_cmd(a),
        Cmd::Report(a) => report_cmd(a),
        Cmd::Bench(a) => bench(a),
        Cmd::Validate(a) => validate(a),
        Cmd::Calibrate(a) => calibrate(a),
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
    let keep = |p: &sweep::Point| shard.is_none_or(|s| s.contains(p.index));
    let label = shard.map(|s| format!("{}/{}", s.k, s.n));
    simulate_where(loaded, with_sweep, &keep, label, quiet)
}

/// Simulate the plan's points that `keep` selects.
fn simulate_where(
    loaded: &LoadedExperiment,
    with_sweep: bool,
    keep: &dyn Fn(&sweep::Point) -> bool,
    shard_label: Option<String>,
    quiet: bool,
) -> Result<report::Results> {
    let plan = sweep::plan(loaded, with_sweep)?;
    let warnings = plan.warnings();
    print_warnings(&warnings);
    let points: Vec<&sweep::Point> = plan.points.iter().filter(|p| keep(p)).collect();
    if points.is_empty() {
        return Err(UsageError("this shard has no points".into()).into());
    }
    let total: u64 = points
        .iter()
        .map(|p| p.scenario.run.replications as u64)
        .sum();
    let pb = progress(total, quiet);
    let added = std::sync::atomic::AtomicBool::new(false);
    let results = sweep::run_points(
        &points,
        |n| {
            // the first round is already counted in the bar's length
            if added.swap(true, std::sync::atomic::Ordering::Relaxed) {
                pb.inc_length(n);
            }
        },
        || pb.inc(1),
    );
    pb.finish_and_clear();
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
        let stem = match shard {
            Some(s) => format!("results.shard-{}-of-{}", s.k, s.n),
            None => "results".into(),
        };
        write_results(dir, &stem, &results)?;
    }
    if let Some(dir) = &a.charts {
        write_charts(std::slice::from_ref(&results), dir, ChartFormat::Both)?;
    }
    match a.format {
        Format::Table => out(&report::table::render(&results)),
        Format::Json => out(&report::to_json(&results)),
        Format::Csv => out(&report::to_csv(&results)),
    }
}

fn write_results(dir: &std::path::Path, stem: &str, results: &report::Results) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (ext, bytes) in [
        ("json", report::to_json(results)),
        ("csv", report::to_csv(results)),
        ("txt", report::table::render(results)),
    ] {
        let path = dir.join(format!("{stem}.{ext}"));
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn merge(a: MergeArgs) -> Result<()> {
    let mut parts = Vec::new();
    for p in &a.shards {
        parts.push((p.display().to_string(), read_results_file(p)?));
    }
    let results = report::merge(parts).map_err(|e| UsageError(e.to_string()))?;
    if let Some(dir) = &a.out {
        write_results(dir, "results", &results)?;
    }
    match a.format {
        Format::Table => out(&report::table::render(&results)),
        Format::Json => out(&report::to_json(&results)),
        Format::Csv => out(&report::to_csv(&results)),
    }
}

fn compare(a: CompareArgs) -> Result<()> {
    let projected = read_results_file(&a.projected)?;
    let looks_like_results = a.measured.len() == 1
        && a.measured[0].extension().is_some_and(|e| e == "json")
        && a.measured[0].is_file();
    let (measured, mname) = if looks_like_results {
        (
            read_results_file(&a.measured[0])?,
            a.measured[0].display().to_string(),
        )
    } else {
        let s = crate::live::pgbench::import_paths(&a.measured)
            .map_err(|e| UsageError(format!("measured: {e}")))?;
        let name = a
            .measured
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        (report::compare::measured_from_pgbench(&s, &name), name)
    };
    let metrics: Vec<String> = if a.metrics.is_empty() {
        report::compare::DEFAULT_METRICS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        a.metrics.clone()
    };
    for m in &metrics {
        if !crate::sim::METRIC_NAMES.contains(&m.as_str()) {
            return Err(UsageError(format!(
                "--metrics: `{m}` is not a metric (see the results' metric names)"
            ))
            .into());
        }
    }
    let tolerances = parse_tolerances(&a.tolerances)?;
    let mut metrics = metrics;
    for (m, _) in &tolerances {
        if !metrics.contains(m) {
            metrics.push(m.clone());
        }
    }
    let c = report::compare::compare(
        &projected,
        &measured,
        &metrics,
        &tolerances,
        &a.projected.display().to_string(),
        &mname,
        &host_references(&projected),
    );
    if c.points.is_empty() {
        return Err(UsageError(
            "no measured point matches a projected point (points are matched by their swept parameters)".into(),
        )
        .into());
    }
    match a.format {
        CheckFormat::Text => out(&report::compare::render_table(&c))?,
        CheckFormat::Json => {
            let mut v = serde_json::to_vec_pretty(&c)?;
            v.push(b'\n');
            out(&v)?
        }
    }
    if !c.tolerance_exceeded.is_empty() {
        return Err(ToleranceExceeded(c.tolerance_exceeded.len()).into());
    }
    Ok(())
}

/// The warnings of a calibration's summary, one per line.
fn calibration_warnings(summary: &str) -> impl Iterator<Item = &str> {
    summary
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("warning:"))
}

/// The host's speed while each projected point's model was calibrated: the model file the point
/// names (`validate`'s per-workload calibrations) or else the one the projected experiment names,
/// when it can be read and holds the probe (a calibrated model).
fn host_references(
    projected: &report::Results,
) -> impl Fn(&report::PointOut) -> Option<crate::live::speed::Probe> {
    let read = |path: &str| -> Option<crate::live::speed::Probe> {
        let text = std::fs::read_to_string(path).ok()?;
        let model: serde_json::Value = serde_json::from_str(&text).ok()?;
        report::compare::model_probe(&model)
    };
    let experiment_model = projected
        .resolved_experiment
        .get("model")
        .and_then(|m| m.as_str())
        .map(str::to_string);
    let mut probes = std::collections::BTreeMap::new();
    for path in projected
        .points
        .iter()
        .filter_map(|p| p.model.clone())
        .chain(experiment_model.clone())
    {
        let probe = read(&path);
        probes.insert(path, probe);
    }
    move |p: &report::PointOut| {
        let path = p.model.as_ref().or(experiment_model.as_ref())?;
        probes.get(path).copied().flatten()
    }
}

fn check(a: CheckArgs) -> Result<()> {
    let loaded = load(&a.exp)?;
    let plan = sweep::plan(&loaded, true)?;
    let base = sweep::plan(&loaded, false)?;
    let sc = &base.points[0].scenario;
    let cap = crate::capacity::capacity(sc);
    let warnings = plan.warnings();
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

fn read_results(paths: &[std::path::PathBuf]) -> Result<Vec<report::Results>> {
    paths.iter().map(|p| read_results_file(p)).collect()
}

fn read_results_file(path: &Path) -> Result<report::Results> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let r: report::Results = serde_json::from_str(&text).map_err(|e| {
        UsageError(format!(
            "{}: not a poolsim results file ({e}); write one with `poolsim sweep … --format json`",
            path.display()
        ))
    })?;
    if r.schema_version > report::SCHEMA_VERSION {
        return Err(UsageError(format!(
            "{}: results schema {} is newer than this poolsim reads ({}): upgrade poolsim",
            path.display(),
            r.schema_version,
            report::SCHEMA_VERSION
        ))
        .into());
    }
    Ok(r)
}

/// Render the charts of `rs` into `dir` (see `chart::jobs`); say on stderr what was written and
/// what was skipped, and why.
fn write_charts(rs: &[report::Results], dir: &Path, format: ChartFormat) -> Result<()> {
    use rayon::prelude::*;
    use report::chart::{self, ChartError, ImageFormat};
    let formats: &[ImageFormat] = match format {
        ChartFormat::Svg => &[ImageFormat::Svg],
        ChartFormat::Png => &[ImageFormat::Png],
        ChartFormat::Both => &[ImageFormat::Svg, ImageFormat::Png],
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (jobs, mut skipped) = chart::jobs(rs);
    let tasks: Vec<(&chart::Job, ImageFormat)> = jobs
        .iter()
        .flat_map(|j| formats.iter().map(move |f| (j, *f)))
        .collect();
    let rendered: Vec<_> = tasks
        .par_iter()
        .map(|&(j, f)| (j, f, j.render(rs, f)))
        .collect();
    let mut written = 0;
    for (job, f, bytes) in rendered {
        match bytes {
            Ok(bytes) => {
                let path = dir.join(format!("{}.{}", job.stem, f.extension()));
                std::fs::write(&path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
                written += 1;
            }
            Err(ChartError::NotApplicable(why)) if f == formats[0] => {
                skipped.push(format!("{}: {why}", job.stem));
            }
            Err(ChartError::NotApplicable(_)) => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("drawing {}", job.stem))),
        }
    }
    for s in &skipped {
        eprintln!("skipped {s}");
    }
    eprintln!(
        "{written} chart file(s) in {}, {} chart(s) skipped",
        dir.display(),
        skipped.len()
    );
    Ok(())
}

fn chart_cmd(a: ChartArgs) -> Result<()> {
    let rs = read_results(&a.results)?;
    write_charts(&rs, &a.out, a.format)
}

fn report_cmd(a: ReportArgs) -> Result<()> {
    let rs = read_results(&a.results)?;
    let html = report::html::render(&rs).context("drawing the report's charts")?;
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&a.out, html).with_context(|| format!("writing {}", a.out.display()))?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
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

/// `--threads` of the live commands: the async runtime's worker threads, one per core by
/// default.
fn runtime_threads(threads: Option<usize>) -> Result<usize> {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if n == 0 {
        return Err(UsageError(
            "--threads must be at least 1 (1 runs a single-threaded runtime)".into(),
        )
        .into());
    }
    Ok(n)
}

fn bench(a: BenchArgs) -> Result<()> {
    use std::io::IsTerminal;
    if a.replications == Some(0) {
        return Err(UsageError("--replications must be at least 1".into()).into());
    }
    let threads = runtime_threads(a.threads)?;
    let loaded = load(&a.exp)?;
    let plan = sweep::plan(&loaded, true)?;
    let warnings = plan.warnings();
    print_warnings(&warnings);
    let opts = crate::live::bench::Options {
        pg: a.cluster.pg,
        bouncer: a.cluster.bouncer,
        bouncer_admin: a.cluster.bouncer_admin,
        replica: a.cluster.replica,
        replications: a.replications,
        replications_together: a.replications_together,
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

fn calibrate(a: CalibrateArgs) -> Result<()> {
    use crate::live::redact_url;
    use std::io::IsTerminal;
    if !(a.budget_s.is_finite() && a.budget_s >= 5.0) {
        return Err(UsageError("--budget-s must be at least 5".into()).into());
    }
    if a.max_concurrency == Some(0) {
        return Err(UsageError("--max-concurrency must be at least 1".into()).into());
    }
    let name = a
        .out
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| UsageError(format!("--out {}: needs a file name", a.out.display())))?
        .to_string();
    let mut command = format!("poolsim calibrate --pg {}", redact_url(&a.pg));
    if let Some(b) = &a.bouncer {
        command.push_str(&format!(" --bouncer {}", redact_url(b)));
    }
    if let Some(b) = &a.bouncer_admin {
        command.push_str(&format!(" --bouncer-admin {}", redact_url(b)));
    }
    command.push_str(&format!(
        " --workload {} --out {} --budget-s {}",
        a.workload.display(),
        a.out.display(),
        a.budget_s
    ));
    if let Some(n) = a.max_concurrency {
        command.push_str(&format!(" --max-concurrency {n}"));
    }
    let opts = crate::live::calibrate::CalibrateOptions {
        pg: a.pg,
        bouncer: a.bouncer,
        bouncer_admin: a.bouncer_admin,
        workload: a.workload,
        workload_set: Vec::new(),
        name,
        budget: std::time::Duration::from_secs_f64(a.budget_s),
        max_concurrency: a.max_concurrency,
        progress: !a.quiet && std::io::stderr().is_terminal(),
        threads: runtime_threads(a.threads)?,
        command,
    };
    let cal = crate::live::calibrate::calibrate(&opts)?;
    let mut text = serde_json::to_string_pretty(&cal.model)?;
    text.push('\n');
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&a.out, text).with_context(|| format!("writing {}", a.out.display()))?;
    match a.format {
        CheckFormat::Text => {
            out(format!("{}model written to {}\n", cal.summary, a.out.display()).as_bytes())
        }
        CheckFormat::Json => {
            let doc = serde_json::json!({
                "model_file": a.out.display().to_string(),
                "model": cal.model,
                "measurements": cal.measurements,
                "summary": cal.summary,
            });
            let mut s = serde_json::to_string_pretty(&doc)?;
            s.push('\n');
            out(s.as_bytes())
        }
    }
}

/// Parse `--tolerance METRIC=PCT` arguments into (metric, fraction).
fn parse_tolerances(ts: &[String]) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    for t in ts {
        let (m, pct) = t.split_once('=').ok_or_else(|| {
            UsageError(format!(
                "--tolerance `{t}` is not METRIC=PCT (e.g. throughput_rps=5)"
            ))
        })?;
        let pct: f64 =
            pct.trim().trim_end_matches('%').parse().map_err(|_| {
                UsageError(format!("--tolerance `{t}`: `{pct}` is not a percentage"))
            })?;
        if !crate::sim::METRIC_NAMES.contains(&m) {
            return Err(UsageError(format!("--tolerance: `{m}` is not a metric")).into());
        }
        out.push((m.to_string(), pct / 100.0));
    }
    Ok(out)
}

/// The points of a `validate` sweep calibrated together, and what their calibration measures.
struct Part {
    /// The workload's transaction names, for messages and file names.
    label: String,
    /// Plan indices of the points.
    points: std::collections::BTreeSet<usize>,
    /// The workload experiment's overrides for the calibration (the sweep's workload).
    workload_set: Vec<(String, serde_json::Value)>,
}

/// How `validate` splits its sweep among calibrations: one per workload, in plan order, when each
/// workload's points run together (the workload the outermost axis, as the bench runs them);
/// otherwise, or when `once`, a single one for all the points (with a note saying why, when the
/// workloads alternate).
fn validate_parts(exp: &ExperimentArgs, once: bool) -> Result<(Vec<Part>, Option<String>)> {
    let mut e = exp.clone();
    e.set.push("model=null".into());
    let plan = sweep::plan(&load(&e)?, true)?;
    let groups = crate::live::bench::workload_groups(&plan.points);
    let names = |p: &sweep::Point| {
        p.resolved
            .workload
            .as_ref()
            .map(|w| {
                w.transactions
                    .iter()
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .unwrap_or_default()
    };
    let all = || Part {
        label: "the whole workload".into(),
        points: plan.points.iter().map(|p| p.index).collect(),
        workload_set: Vec::new(),
    };
    let distinct: std::collections::BTreeSet<String> = plan
        .points
        .iter()
        .map(|p| serde_json::to_string(&p.resolved.workload).unwrap_or_default())
        .collect();
    let n_groups = groups.last().map_or(0, |g| g + 1);
    if once {
        return Ok((vec![all()], None));
    }
    if n_groups != distinct.len() {
        return Ok((
            vec![all()],
            Some(format!(
                "the sweep's {} workloads alternate along its points ({} runs of them): one calibration for all; put workload.transactions first among the sweep's axes to calibrate each right before its points",
                distinct.len(),
                n_groups
            )),
        ));
    }
    let mut parts: Vec<Part> = Vec::new();
    for (p, &g) in plan.points.iter().zip(&groups) {
        if g == parts.len() {
            let workload_set = p
                .params
                .iter()
                .find(|(k, _)| k == "workload.transactions")
                .map(|(k, v)| vec![(k.clone(), v.clone())])
                .unwrap_or_default();
            parts.push(Part {
                label: names(p),
                points: Default::default(),
                workload_set,
            });
        }
        parts[g].points.insert(p.index);
    }
    Ok((parts, None))
}

/// One document of the results of every part: the first part's, with every part's points (in
/// plan order) and, for measured results, every part's host probes, errors and interruption.
fn splice(parts: Vec<report::Results>) -> Option<report::Results> {
    let mut it = parts.into_iter();
    let mut out = it.next()?;
    for r in it {
        out.points.extend(r.points);
        for w in r.warnings {
            if !out.warnings.contains(&w) {
                out.warnings.push(w);
            }
        }
        if let (Some(serde_json::Value::Object(o)), Some(serde_json::Value::Object(n))) =
            (out.environment.as_mut(), r.environment)
        {
            for (ptr, key) in [("host_speed", "points"), ("errors", "")] {
                let Some(more) = (if key.is_empty() {
                    n.get(ptr)
                } else {
                    n.get(ptr).and_then(|v| v.get(key))
                })
                .and_then(|v| v.as_array())
                .cloned() else {
                    continue;
                };
                let slot = if key.is_empty() {
                    o.get_mut(ptr)
                } else {
                    o.get_mut(ptr).and_then(|v| v.get_mut(key))
                };
                if let Some(serde_json::Value::Array(a)) = slot {
                    a.extend(more);
                }
            }
            if n.get("interrupted") == Some(&serde_json::Value::Bool(true)) {
                o.insert("interrupted".into(), serde_json::Value::Bool(true));
            }
        }
    }
    out.points.sort_by_key(|p| p.index);
    Some(out)
}

/// A transaction type whose level (back to back on the workload's path) moved more than this
/// between its calibration and its measurement again right after its points is flagged: the
/// bound on a point's throughput error, within which the host's drift alone could carry a miss.
const LEVEL_DRIFT: f64 = 0.10;

/// One line per transaction type: its level at calibration (the model's
/// `provenance.service_on_the_path`) against `again`, measured after its points, and a warning
/// when it moved more than [`LEVEL_DRIFT`].
fn level_drift_notes(model: &serde_json::Value, again: &[(String, f64)]) -> Vec<String> {
    let at_calibration = |name: &str| {
        model["provenance"]["service_on_the_path"]["types"]
            .as_array()?
            .iter()
            .find(|t| t["transaction"] == name)?["back_to_back_mean_ms"]
            .as_f64()
    };
    again
        .iter()
        .filter_map(|(name, after)| {
            let before = at_calibration(name).filter(|b| *b > 0.0)?;
            let change = after / before - 1.0;
            let mut line = format!(
                "`{name}` back to back on the path: {before:.3} ms a transaction at its calibration, {after:.3} ms after its points ({:+.1} %)",
                change * 100.0
            );
            if change.abs() > LEVEL_DRIFT {
                line.push_str(&format!(
                    ": the host ran it {} after than at calibration, by more than {:.0} %; a miss at its points may be the host's, not the model's",
                    if change < 0.0 { "faster" } else { "slower" },
                    LEVEL_DRIFT * 100.0
                ));
            }
            Some(line)
        })
        .collect()
}

/// Calibrate, simulate, bench, compare — the whole loop in one command. Without `--model`, each
/// workload of the sweep is calibrated on its own right before its points are measured (a
/// shared host's speed drifts over minutes; `--calibrate-once` calibrates the whole workload
/// once, first).
fn validate(a: ValidateArgs) -> Result<()> {
    use crate::live::redact_url;
    use std::io::IsTerminal;
    let tolerances = parse_tolerances(&a.tolerances)?;
    let threads = runtime_threads(a.threads)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let progress = !a.quiet && std::io::stderr().is_terminal();
    let mut exp = ExperimentArgs {
        experiment: a.exp.experiment.clone(),
        set: a.exp.set.clone(),
    };
    if let Some(r) = a.replications {
        if r == 0 {
            return Err(UsageError("--replications must be at least 1".into()).into());
        }
        exp.set.push(format!("run.replications={r}"));
    }
    let mut user_sets = Vec::new();
    for s in &a.exp.set {
        user_sets.push(parse_override(s).map_err(|m| UsageError(format!("--set {m}")))?);
    }
    let (parts, note) = validate_parts(&exp, a.model.is_some() || a.calibrate_once)?;
    if let Some(n) = note {
        eprintln!("validate: {n}");
    }
    let budget = a.budget_s.max(5.0) / parts.len() as f64;
    let bench_opts = crate::live::bench::Options {
        pg: a.cluster.pg.clone(),
        bouncer: a.cluster.bouncer.clone(),
        bouncer_admin: a.cluster.bouncer_admin.clone(),
        replica: a.cluster.replica.clone(),
        replications: a.replications,
        replications_together: a.replications_together,
        threads,
        progress,
        machine: machine(),
    };
    let (mut projected_parts, mut measured_parts) = (Vec::new(), Vec::new());
    let mut interrupted = false;
    let mut failed: Option<anyhow::Error> = None;
    let mut level_notes: Vec<String> = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        let several = parts.len() > 1;
        let stem = |what: &str, ext: &str| {
            if several {
                let label: String = part
                    .label
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect();
                format!("{what}-{}-{label}.{ext}", k + 1)
            } else {
                format!("{what}.{ext}")
            }
        };
        let of = if several {
            format!(" `{}`", part.label)
        } else {
            String::new()
        };
        type Calibrated = Option<(crate::live::calibrate::CalibrateOptions, serde_json::Value)>;
        let step = || -> Result<(report::Results, crate::live::bench::Outcome, Calibrated)> {
            // 1. the model: given, or calibrated now on this part's workload
            let mut calibrated = None;
            let model_path = match &a.model {
                Some(m) => m.clone(),
                None => {
                    eprintln!(
                        "validate: calibrating{of} on {} (budget {budget:.0} s)",
                        redact_url(&a.cluster.pg),
                    );
                    let path = a.out.join(stem("model", "json"));
                    let mut workload_set = user_sets.clone();
                    workload_set.extend(part.workload_set.iter().cloned());
                    let opts = crate::live::calibrate::CalibrateOptions {
                        pg: a.cluster.pg.clone(),
                        bouncer: a.cluster.bouncer.clone(),
                        bouncer_admin: a.cluster.bouncer_admin.clone(),
                        workload: a.exp.experiment.clone(),
                        workload_set,
                        name: path
                            .file_stem()
                            .map_or("model".into(), |s| s.to_string_lossy().into_owned()),
                        budget: std::time::Duration::from_secs_f64(budget),
                        max_concurrency: None,
                        progress,
                        threads,
                        command: format!(
                            "poolsim validate {} --pg {} --out {}{}",
                            a.exp.experiment.display(),
                            redact_url(&a.cluster.pg),
                            a.out.display(),
                            a.threads
                                .map_or(String::new(), |n| format!(" --threads {n}"))
                        ),
                    };
                    let cal = crate::live::calibrate::calibrate(&opts)?;
                    let mut bytes = serde_json::to_vec_pretty(&cal.model)?;
                    bytes.push(b'\n');
                    std::fs::write(&path, bytes)
                        .with_context(|| format!("writing {}", path.display()))?;
                    std::fs::write(
                        a.out.join(stem("calibration", "txt")),
                        cal.summary.as_bytes(),
                    )?;
                    // the calibration's own warnings (a co-located reference, a scale at its
                    // bound) would otherwise stay in its summary, behind a comparison they explain
                    for w in calibration_warnings(&cal.summary) {
                        eprintln!("validate: calibration{of} {w}");
                    }
                    calibrated = Some((opts, cal.model));
                    path
                }
            };
            let model_abs = std::fs::canonicalize(&model_path)
                .with_context(|| format!("reading {}", model_path.display()))?;
            // 2. this part's points on that model, with the same replications for both sides
            let mut e = exp.clone();
            e.set.push(format!(
                "model={}",
                serde_json::Value::String(model_abs.display().to_string())
            ));
            let loaded = load(&e)?;
            eprintln!("validate: simulating{of}");
            let keep = |p: &sweep::Point| part.points.contains(&p.index);
            let mut projected = simulate_where(&loaded, true, &keep, None, !progress)?;
            if several {
                for p in &mut projected.points {
                    p.model = Some(model_abs.display().to_string());
                }
            }
            // 3. the same points for real
            eprintln!("validate: measuring{of} on the live cluster");
            let mut plan = sweep::plan(&loaded, true)?;
            plan.points.retain(|p| keep(p));
            let outcome = crate::live::bench::bench(&plan, &[], &bench_opts)?;
            Ok((projected, outcome, calibrated))
        };
        match step() {
            Ok((projected, outcome, calibrated)) => {
                for e in &outcome.errors {
                    eprintln!("error during the measurement: {e}");
                }
                // 3b. the workload's level again: does the host still run it as at calibration?
                if let (Some((opts, model)), false) = (calibrated, outcome.interrupted) {
                    let notes = match crate::live::calibrate::levels_again(&opts) {
                        Ok(again) => level_drift_notes(&model, &again),
                        Err(e) => vec![format!(
                            "the levels could not be measured again after the points: {e:#}"
                        )],
                    };
                    for n in notes {
                        eprintln!("validate: {n}");
                        level_notes.push(n);
                    }
                }
                projected_parts.push(projected);
                measured_parts.push(outcome.results);
                if outcome.interrupted {
                    interrupted = true;
                    break;
                }
            }
            // what the earlier parts measured is kept: written below, then the error
            Err(e) if !measured_parts.is_empty() => {
                failed = Some(e);
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let (Some(projected), Some(measured)) = (splice(projected_parts), splice(measured_parts))
    else {
        return Err(anyhow::anyhow!("validate: nothing was measured"));
    };
    write_results(&a.out, "projected", &projected)?;
    write_results(&a.out, "measured", &measured)?;
    // 4. compare, and draw
    let metrics: Vec<String> = report::compare::DEFAULT_METRICS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut c = report::compare::compare(
        &projected,
        &measured,
        &metrics,
        &tolerances,
        &a.out.join("projected.json").display().to_string(),
        &a.out.join("measured.json").display().to_string(),
        &host_references(&projected),
    );
    c.notes = level_notes;
    let table = report::compare::render_table(&c);
    std::fs::write(a.out.join("comparison.txt"), &table)?;
    let mut cj = serde_json::to_vec_pretty(&c)?;
    cj.push(b'\n');
    std::fs::write(a.out.join("comparison.json"), cj)?;
    match report::html::render(&[projected.clone(), measured.clone()]) {
        Ok(html) => std::fs::write(a.out.join("report.html"), html)?,
        Err(e) => eprintln!("validate: no HTML report: {e}"),
    }
    out(&table)?;
    if let Some(e) = failed {
        return Err(e.context(format!(
            "validate stopped: {} holds the points measured before",
            a.out.display()
        )));
    }
    if interrupted {
        return Err(anyhow::anyhow!(
            "interrupted: the measurement holds the points measured so far"
        ));
    }
    if !c.tolerance_exceeded.is_empty() {
        return Err(ToleranceExceeded(c.tolerance_exceeded.len()).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{calibration_warnings, level_drift_notes, splice, validate_parts};
    use crate::cli::ExperimentArgs;
    use serde_json::json;

    fn part(indices: &[usize], env: serde_json::Value) -> crate::report::Results {
        let points: Vec<serde_json::Value> = indices
            .iter()
            .map(|&i| {
                json!({"index": i, "params": {}, "replications": 1, "events": 0, "truncated": false,
                       "metrics": {}, "slo": [], "verdict": "-"})
            })
            .collect();
        serde_json::from_value(json!({
            "schema_version": 1, "poolsim_version": "x", "source": "measured", "experiment": "e",
            "seed": 1, "confidence": 0.95, "replications": 1, "axes": [], "warnings": ["w"],
            "points": points, "resolved_experiment": {}, "environment": env
        }))
        .unwrap()
    }

    #[test]
    fn the_parts_results_splice_into_one_document_in_plan_order() {
        let a = part(
            &[0, 2],
            json!({"host_speed": {"points": [{"index": 0}, {"index": 2}]}, "errors": ["e0"], "interrupted": false}),
        );
        let b = part(
            &[1],
            json!({"host_speed": {"points": [{"index": 1}]}, "errors": ["e1"], "interrupted": true}),
        );
        let r = splice(vec![a, b]).unwrap();
        let idx: Vec<usize> = r.points.iter().map(|p| p.index).collect();
        assert_eq!(idx, [0, 1, 2]);
        assert_eq!(r.warnings, ["w"], "each warning once");
        let env = r.environment.unwrap();
        assert_eq!(env["host_speed"]["points"].as_array().unwrap().len(), 3);
        assert_eq!(env["errors"], json!(["e0", "e1"]));
        assert_eq!(
            env["interrupted"],
            json!(true),
            "one part interrupted: the whole run was"
        );
        assert!(splice(Vec::new()).is_none());
    }

    #[test]
    fn validate_calibrates_each_workload_when_its_points_run_together() {
        let exp = |set: &[&str]| ExperimentArgs {
            experiment: concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/experiments/validate-local.json"
            )
            .into(),
            set: set.iter().map(|s| s.to_string()).collect(),
        };
        let (parts, note) = validate_parts(&exp(&[]), false).unwrap();
        assert!(note.is_none());
        let labels: Vec<&str> = parts.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["sleep", "scan", "mixed"]);
        for (k, p) in parts.iter().enumerate() {
            assert_eq!(p.points, (10 * k..10 * k + 10).collect(), "{}", p.label);
            assert_eq!(p.workload_set.len(), 1);
            assert_eq!(p.workload_set[0].0, "workload.transactions");
            assert_eq!(p.workload_set[0].1[0]["name"], json!(p.label));
        }
        let (once, _) = validate_parts(&exp(&[]), true).unwrap();
        assert_eq!(once.len(), 1);
        assert_eq!(once[0].points.len(), 30);
        assert!(once[0].workload_set.is_empty());
        // the workload an inner axis: its points alternate, one calibration for all, and why
        let inner = r#"sweep={"clients": [{"mode": "closed", "users": 1}, {"mode": "closed", "users": 4}], "workload.transactions": [[{"name": "a", "route": "primary", "sql": ["SELECT 1"]}], [{"name": "b", "route": "primary", "sql": ["SELECT 2"]}]]}"#;
        let (alt, note) = validate_parts(&exp(&[inner]), false).unwrap();
        assert_eq!(alt.len(), 1);
        assert_eq!(alt[0].points.len(), 4);
        assert!(note.unwrap().contains("alternate"));
    }

    #[test]
    fn a_calibrations_warnings_are_its_lines_that_start_with_warning() {
        let summary = "round trip: 0.08 ms\n    warning: the direct SELECT 1 stayed below 1/3 of the same through PgBouncer\ntransaction mixed: no warning here\n    warning: the scale is at its bound\n";
        let w: Vec<&str> = calibration_warnings(summary).collect();
        assert_eq!(
            w,
            [
                "warning: the direct SELECT 1 stayed below 1/3 of the same through PgBouncer",
                "warning: the scale is at its bound"
            ]
        );
        assert_eq!(calibration_warnings("all well\n").count(), 0);
    }

    #[test]
    fn a_level_that_moved_beyond_the_bound_after_the_points_is_flagged() {
        // run 63's mixed transaction: calibrated in a slow state, the host faster afterwards
        let model = serde_json::json!({"provenance": {"service_on_the_path": {"types": [
            {"transaction": "mixed", "back_to_back_mean_ms": 0.8824},
            {"transaction": "scan", "back_to_back_mean_ms": 1.463}
        ]}}});
        let notes = level_drift_notes(
            &model,
            &[
                ("mixed".into(), 0.65),
                ("scan".into(), 1.49),
                ("unknown".into(), 1.0),
            ],
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].starts_with("`mixed` back to back on the path: 0.882 ms a transaction at its calibration, 0.650 ms after its points (-26.3 %): the host ran it faster after"),
            "{}",
            notes[0]
        );
        assert!(notes[0].contains("may be the host's"), "{}", notes[0]);
        // within the bound: the figures, no warning
        assert!(
            notes[1].ends_with("1.490 ms after its points (+1.8 %)"),
            "{}",
            notes[1]
        );
        // slower after, beyond the bound
        let slow = level_drift_notes(&model, &[("scan".into(), 1.7)]);
        assert!(
            slow[0].contains("the host ran it slower after"),
            "{}",
            slow[0]
        );
        // a model without the figure (given with --model, or older): nothing to say
        assert!(level_drift_notes(&serde_json::json!({}), &[("scan".into(), 1.7)]).is_empty());
    }
}
