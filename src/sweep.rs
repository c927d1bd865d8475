//! Sweeps: the crossed axes expanded into points, every (point, replication) run in parallel with
//! rayon, and a sequential reduction in point order — so the bytes of the output do not depend on
//! the number of threads. Seeds come from (master seed, replication, stream) only: every point sees
//! the same random numbers (common random numbers).

use crate::experiment::file::ExperimentFile;
use crate::experiment::load::{compact, parse_file};
use crate::experiment::{validate, Invalid, LoadedExperiment, Problem, Scenario, Severity};
use crate::sim::{self, RunRecord, Series, FIRST_CAUSE_METRIC, METRIC_NAMES};
use crate::stats::{mser5, student_t, wilson, Interval};
use crate::units::SimDuration;
use rayon::prelude::*;
use serde_json::Value;

/// Largest sweep accepted (points × replications).
pub const MAX_RUNS: usize = 1_000_000;

/// One configuration to simulate.
#[derive(Clone, Debug)]
pub struct Point {
    pub index: usize,
    /// (dotted path, value) of each axis at this point, in axis order.
    pub params: Vec<(String, Value)>,
    pub scenario: Scenario,
    /// The experiment with every default filled in, as it was simulated.
    pub resolved: ExperimentFile,
    pub warnings: Vec<Problem>,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub axes: Vec<(String, Vec<Value>)>,
    pub points: Vec<Point>,
}

impl Plan {
    /// The warnings of every point, each once, in point order.
    pub fn warnings(&self) -> Vec<Problem> {
        let mut seen = std::collections::BTreeSet::new();
        self.points
            .iter()
            .flat_map(|p| p.warnings.iter())
            .filter(|w| seen.insert(w.to_string()))
            .cloned()
            .collect()
    }
}

/// Expand the experiment's sweep axes (or only its base scenario) into validated points.
/// Every problem of every point is reported at once.
pub fn plan(loaded: &LoadedExperiment, with_sweep: bool) -> Result<Plan, Invalid> {
    let (base_file, structural) = parse_file(&loaded.doc);
    let mut problems: Vec<Problem> = structural;
    let axes: Vec<(String, Vec<Value>)> = if with_sweep {
        base_file
            .sweep
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    for (path, v) in &base_file.sweep {
        if !v.is_array() && with_sweep {
            problems.push(Problem {
                severity: Severity::Error,
                path: format!("sweep.{path}"),
                value: compact(v),
                message: "an axis is a list of values".into(),
                hint: format!("write \"{path}\": [{}]", compact(v)),
            });
        }
    }
    for (path, values) in &axes {
        if values.is_empty() {
            problems.push(Problem {
                severity: Severity::Error,
                path: format!("sweep.{path}"),
                value: "[]".into(),
                message: "an axis needs at least one value".into(),
                hint: "list the values to sweep, e.g. [20, 35, 50]".into(),
            });
        }
    }
    let total: usize = axes.iter().map(|a| a.1.len().max(1)).product();
    let reps = base_file
        .run
        .as_ref()
        .and_then(|r| r.replications)
        .unwrap_or(5) as usize;
    if total.saturating_mul(reps) > MAX_RUNS {
        problems.push(too_many_runs(format!(
            "{total} points × {reps} replications"
        )));
    }
    if problems.iter().any(|p| p.severity == Severity::Error) {
        // report what validation finds in the rest of the document too, all at once
        let mut partial = base_file.clone();
        if let Err(Invalid(more)) = validate(&mut partial) {
            problems.extend(more);
        }
        problems.sort();
        problems.dedup();
        return Err(Invalid(problems));
    }
    let mut points = Vec::with_capacity(total);
    let mut seen_warnings = std::collections::BTreeSet::new();
    for index in 0..total {
        let mut rest = index;
        let mut params = Vec::with_capacity(axes.len());
        // the first axis varies slowest
        let mut idx = vec![0usize; axes.len()];
        for (i, (_, values)) in axes.iter().enumerate().rev() {
            idx[i] = rest % values.len();
            rest /= values.len();
        }
        let mut point_problems = Vec::new();
        for (i, (path, values)) in axes.iter().enumerate() {
            params.push((path.clone(), values[idx[i]].clone()));
        }
        let doc = match loaded.point_doc(&params) {
            Ok(d) => d,
            Err((path, msg)) => {
                let v = params
                    .iter()
                    .find(|p| p.0 == path)
                    .map(|p| compact(&p.1))
                    .unwrap_or_default();
                point_problems.push(Problem {
                    severity: Severity::Error,
                    path: format!("sweep.{path}"),
                    value: v,
                    message: msg,
                    hint: "use a dotted path that exists in the experiment".into(),
                });
                loaded.doc.clone()
            }
        };
        let (mut file, structural) = parse_file(&doc);
        point_problems.extend(structural);
        let label = if params.is_empty() {
            String::new()
        } else {
            format!(
                " (at {})",
                params
                    .iter()
                    .map(|(p, v)| format!("{p}={}", compact(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let outcome = if point_problems.is_empty() {
            validate(&mut file)
        } else {
            Err(Invalid(point_problems))
        };
        match outcome {
            Ok((scenario, warnings)) => {
                for w in &warnings {
                    if seen_warnings.insert(w.to_string()) {
                        problems.push(Problem {
                            message: format!("{}{label}", w.message),
                            ..w.clone()
                        });
                    }
                }
                points.push(Point {
                    index,
                    params,
                    scenario,
                    resolved: file,
                    warnings,
                });
            }
            Err(Invalid(ps)) => {
                for p in ps {
                    let key = format!("{}{}", p.path, p.message);
                    if seen_warnings.insert(key) {
                        problems.push(Problem {
                            message: format!("{}{label}", p.message),
                            ..p
                        });
                    }
                }
            }
        }
    }
    let runs: usize = points
        .iter()
        .map(|p| p.scenario.run.replications as usize)
        .sum();
    if runs > MAX_RUNS {
        problems.push(too_many_runs(format!("{runs} runs")));
    }
    if problems.iter().any(|p| p.severity == Severity::Error) {
        problems.sort();
        return Err(Invalid(problems));
    }
    Ok(Plan { axes, points })
}

fn too_many_runs(value: String) -> Problem {
    Problem {
        severity: Severity::Error,
        path: "sweep".into(),
        value,
        message: format!("a sweep is limited to {MAX_RUNS} runs"),
        hint: "sweep fewer values or replications, or split the sweep with --shard".into(),
    }
}

/// A shard `k/n` (1-based k) of the points: points whose index ≡ k−1 (mod n).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not K/N (e.g. 2/8)"))?;
        let k: usize = k
            .trim()
            .parse()
            .map_err(|_| format!("`{k}` is not a shard number"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a shard count"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!("shard {k}/{n}: need 1 ≤ K ≤ N"));
        }
        Ok(Shard { k, n })
    }
}

impl Shard {
    pub fn contains(&self, index: usize) -> bool {
        index % self.n == self.k - 1
    }
}

/// Every replication of one point, and their summary.
#[derive(Clone, Debug)]
pub struct PointResult {
    pub index: usize,
    pub records: Vec<RunRecord>,
    /// Per metric (like `METRIC_NAMES`): mean across replications and its interval.
    pub metrics: Vec<Interval>,
    /// Precision stopping: whether the target was met, when the experiment asks for one.
    pub precision: Option<PrecisionStatus>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PrecisionStatus {
    pub met: bool,
    pub target: f64,
    /// The largest relative half-width among the named metrics.
    pub worst: f64,
    /// The metric that is furthest from the target.
    pub worst_metric: String,
    pub replications: u32,
    pub max_replications: u32,
}

/// One replication of one point. With `auto_warmup`, the replication runs twice: once with its
/// time series recorded to choose the truncation point by MSER-5, then again (same seed, so the same
/// trajectory) measuring from that point.
pub fn run_one(sc: &Scenario, replication: u32) -> RunRecord {
    if !sc.run.auto_warmup {
        return sim::run(sc, replication);
    }
    let mut first = sc.clone();
    first.run.warmup = SimDuration::ZERO;
    let (_, series) = sim::run_series(&first, replication);
    let mut second = sc.clone();
    second.run.warmup = mser_truncation(&series);
    second.run.auto_warmup = false;
    sim::run(&second, replication)
}

/// The warm-up chosen by MSER-5: the later of the truncation points of the throughput series and
/// of the mean-latency series (intervals without completions carry the previous mean).
pub fn mser_truncation(s: &Series) -> SimDuration {
    let thr: Vec<f64> = s.completed.iter().map(|&c| c as f64).collect();
    let mut last = 0.0;
    let lat: Vec<f64> = s
        .completed
        .iter()
        .zip(&s.latency_ns)
        .map(|(&c, &l)| {
            if c > 0 {
                last = l / c as f64;
            }
            last
        })
        .collect();
    let k = mser5(&thr).max(mser5(&lat));
    SimDuration(s.interval.as_ns() * k as u64)
}

/// Run every (point, replication) in parallel; results come back in point order. With precision
/// stopping, rounds of further replications follow for the points that need them (a round adds
/// as many replications as the experiment starts with); what a round runs depends only on the
/// results so far, never on timing, so the output is the same for any thread count.
pub fn run_points<M, D>(points: &[&Point], on_more: M, on_done: D) -> Vec<PointResult>
where
    M: Fn(u64),
    D: Fn() + Sync,
{
    let n = points.len();
    let mut recs: Vec<Vec<RunRecord>> = vec![Vec::new(); n];
    let mut want: Vec<u32> = points.iter().map(|p| p.scenario.run.replications).collect();
    let mut status: Vec<Option<PrecisionStatus>> = vec![None; n];
    loop {
        let tasks: Vec<(usize, u32)> = (0..n)
            .flat_map(|i| (recs[i].len() as u32..want[i]).map(move |r| (i, r)))
            .collect();
        if tasks.is_empty() {
            break;
        }
        on_more(tasks.len() as u64);
        let done: Vec<RunRecord> = tasks
            .par_iter()
            .map(|&(i, r)| {
                let rec = run_one(&points[i].scenario, r);
                on_done();
                rec
            })
            .collect();
        for ((i, _), rec) in tasks.iter().zip(done) {
            recs[*i].push(rec);
        }
        for i in 0..n {
            let run = &points[i].scenario.run;
            let Some(p) = &run.precision else { continue };
            let summary = summarize(&recs[i], run.confidence);
            let (mut worst, mut worst_metric) = (0.0f64, String::new());
            for &m in &p.metrics {
                let iv = &summary[m];
                let rel = match iv.half_width {
                    Some(h) if iv.mean.abs() > 0.0 => h / iv.mean.abs(),
                    Some(0.0) => 0.0,
                    _ => f64::INFINITY,
                };
                if rel >= worst || worst_metric.is_empty() {
                    worst = rel;
                    worst_metric = METRIC_NAMES[m].to_string();
                }
            }
            let met = worst <= p.relative_half_width;
            let have = recs[i].len() as u32;
            if !met && have < p.max_replications {
                want[i] = (have + run.replications).min(p.max_replications);
            }
            status[i] = Some(PrecisionStatus {
                met,
                target: p.relative_half_width,
                worst,
                worst_metric,
                replications: have,
                max_replications: p.max_replications,
            });
        }
    }
    let mut out = Vec::with_capacity(n);
    for (i, p) in points.iter().enumerate() {
        let records = std::mem::take(&mut recs[i]);
        let metrics = summarize(&records, p.scenario.run.confidence);
        out.push(PointResult {
            index: p.index,
            records,
            metrics,
            precision: status[i].take(),
        });
    }
    out
}

/// Mean and interval of every metric over replications: Student-t, except failure rates, which get
/// a Wilson interval on the pooled counts (well behaved near 0 and 1).
pub fn summarize(recs: &[RunRecord], level: f64) -> Vec<Interval> {
    let completed = sim::metric_index("requests_completed");
    let failed = sim::metric_index("requests_failed");
    let failure_rate = sim::metric_index("failure_rate");
    let trials: f64 = recs
        .iter()
        .map(|r| r.values[completed] + r.values[failed])
        .sum();
    (0..METRIC_NAMES.len())
        .map(|m| {
            let xs: Vec<f64> = recs.iter().map(|r| r.values[m]).collect();
            let is_rate = m == failure_rate
                || (FIRST_CAUSE_METRIC..FIRST_CAUSE_METRIC + sim::CAUSES.len()).contains(&m);
            if is_rate && trials > 0.0 {
                let successes: f64 = recs
                    .iter()
                    .map(|r| (r.values[m] * (r.values[completed] + r.values[failed])).round())
                    .sum();
                // the union of a Wilson interval on the pooled counts (well behaved at 0 and 1)
                // and the Student-t interval across replications (which sees bursts of failures
                // that make requests within a replication correlated)
                let w = wilson(successes, trials, level);
                let t = student_t(&xs, level);
                let (low, high) = (w.low.min(t.low), w.high.max(t.high));
                Interval {
                    mean: t.mean,
                    low,
                    high,
                    half_width: Some((high - low) / 2.0),
                    n: t.n,
                }
            } else {
                student_t(&xs, level)
            }
        })
        .collect()
}
