//! Sweeps: the crossed axes expanded into points, every (point, replication) run in parallel with
//! rayon, and a sequential reduction in point order — so the bytes of the output do not depend on
//! the number of threads. Seeds come from (master seed, replication, stream) only: every point sees
//! the same random numbers (common random numbers).

use crate::experiment::file::ExperimentFile;
use crate::experiment::load::{apply_override, compact, parse_file};
use crate::experiment::{validate, Invalid, LoadedExperiment, Problem, Scenario, Severity};
use crate::sim::{self, RunRecord, FIRST_CAUSE_METRIC, METRIC_NAMES};
use crate::stats::{student_t, wilson, Interval};
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
        problems.push(Problem {
            severity: Severity::Error,
            path: "sweep".into(),
            value: format!("{total} points × {reps} replications"),
            message: format!("a sweep is limited to {MAX_RUNS} runs"),
            hint: "sweep fewer values, or split the sweep with --shard".into(),
        });
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
        let mut doc = loaded.doc.clone();
        let mut point_problems = Vec::new();
        for (i, (path, values)) in axes.iter().enumerate() {
            let v = values[idx[i]].clone();
            if let Err(msg) = apply_override(&mut doc, path, v.clone()) {
                point_problems.push(Problem {
                    severity: Severity::Error,
                    path: format!("sweep.{path}"),
                    value: compact(&v),
                    message: msg,
                    hint: "use a dotted path that exists in the experiment".into(),
                });
            }
            params.push((path.clone(), v));
        }
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
        problems.push(Problem {
            severity: Severity::Error,
            path: "sweep".into(),
            value: format!("{runs} runs"),
            message: format!("a sweep is limited to {MAX_RUNS} runs"),
            hint: "sweep fewer values or replications, or split the sweep with --shard".into(),
        });
    }
    if problems.iter().any(|p| p.severity == Severity::Error) {
        problems.sort();
        return Err(Invalid(problems));
    }
    Ok(Plan { axes, points })
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
}

/// Run every (point, replication) in parallel; results come back in point order.
pub fn run_points<F>(points: &[&Point], on_done: F) -> Vec<PointResult>
where
    F: Fn() + Sync,
{
    let tasks: Vec<(usize, u32)> = points
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (0..p.scenario.run.replications).map(move |r| (i, r)))
        .collect();
    let records: Vec<RunRecord> = tasks
        .par_iter()
        .map(|&(i, r)| {
            let rec = sim::run(&points[i].scenario, r);
            on_done();
            rec
        })
        .collect();
    let mut out = Vec::with_capacity(points.len());
    let mut it = records.into_iter();
    for p in points {
        let recs: Vec<RunRecord> = it
            .by_ref()
            .take(p.scenario.run.replications as usize)
            .collect();
        let metrics = summarize(&recs, p.scenario.run.confidence);
        out.push(PointResult {
            index: p.index,
            records: recs,
            metrics,
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
