//! Results: the output schema (one module *is* the contract, versioned) and its renderers — table,
//! JSON, CSV, charts (SVG, PNG) and the HTML report — as pure functions returning bytes.

pub mod chart;
pub mod compare;
pub mod html;
pub mod table;

use crate::experiment::{Problem, Scenario};
use crate::sim::METRIC_NAMES;
use crate::stats::Interval;
use crate::sweep::{Plan, PointResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Bumped whenever a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub schema_version: u32,
    pub poolsim_version: String,
    /// `simulated` or `measured`.
    pub source: String,
    pub experiment: String,
    pub seed: u64,
    pub confidence: f64,
    pub replications: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub axes: Vec<Axis>,
    pub warnings: Vec<String>,
    pub points: Vec<PointOut>,
    /// The experiment as simulated, every default filled in (the sweep axes then vary it).
    pub resolved_experiment: Value,
    /// Measured results only: what was measured (server versions, relevant settings, redacted
    /// URLs, machine), whether the run was interrupted, and the errors met during the run.
    /// Never credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Axis {
    pub path: String,
    pub values: Vec<Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PointOut {
    pub index: usize,
    pub params: Map<String, Value>,
    pub replications: u32,
    pub events: u64,
    pub truncated: bool,
    pub metrics: Map<String, Value>,
    pub slo: Vec<SloOut>,
    /// `pass`, `fail`, or `uncertain` (an interval straddles a threshold).
    pub verdict: String,
    /// Precision stopping, when the experiment asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<PrecisionOut>,
    /// The model file this point was projected with, when it is not the experiment's: `validate`
    /// calibrates each workload of a sweep on its own, right before its points are measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Measured results only: each replication on its own, in the order the replications ran,
    /// so that a spell of the host (one slow replication among fast ones) shows where the
    /// interval alone cannot say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunOut>,
}

/// One measured replication of a point.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunOut {
    pub replication: u32,
    /// When its measured window began, in seconds from the start of the run.
    pub started_s: f64,
    pub throughput_rps: f64,
    pub latency_p95_ms: f64,
    pub failure_rate: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PrecisionOut {
    pub met: bool,
    /// Target relative half-width.
    pub target: f64,
    /// Largest relative half-width among the named metrics, and which metric it is.
    pub worst: f64,
    pub worst_metric: String,
    pub replications: u32,
    pub max_replications: u32,
    /// Why the target was not met, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct MetricOut {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    pub half_width: Option<f64>,
}

impl From<&Interval> for MetricOut {
    fn from(i: &Interval) -> Self {
        let clean = |x: f64| if x.is_finite() { x } else { 0.0 };
        MetricOut {
            mean: clean(i.mean),
            low: clean(i.low),
            high: clean(i.high),
            half_width: i.half_width.filter(|h| h.is_finite()),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SloOut {
    /// The SLO as written in the experiment (`p95_ms`, …).
    pub slo: String,
    /// The metric it is checked against.
    pub metric: String,
    pub threshold: f64,
    pub value: f64,
    pub verdict: String,
}

impl PointOut {
    pub fn metric(&self, name: &str) -> Option<MetricOut> {
        self.metrics
            .get(name)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
    pub fn mean(&self, name: &str) -> f64 {
        self.metric(name).map_or(0.0, |m| m.mean)
    }
}

/// Judge each SLO on the point's interval: pass when the whole interval meets it, fail when none
/// of it does, uncertain otherwise.
pub fn slo_verdicts(sc: &Scenario, metrics: &[Interval]) -> (Vec<SloOut>, String) {
    let idx = crate::sim::metric_index;
    let checks = [
        ("p95_ms", "latency_p95_ms", sc.slo.p95_ms),
        ("failure_rate", "failure_rate", sc.slo.failure_rate),
        (
            "pool_utilization",
            "app_pool_utilization",
            sc.slo.pool_utilization,
        ),
        (
            "acquire_p95_ms",
            "acquire_wait_p95_ms",
            sc.slo.acquire_p95_ms,
        ),
    ];
    let mut out = Vec::new();
    let mut overall = "pass";
    for (slo, metric, th) in checks {
        let Some(th) = th else { continue };
        let m = &metrics[idx(metric)];
        let verdict = if m.high <= th {
            "pass"
        } else if m.low > th {
            "fail"
        } else if m.mean <= th {
            "uncertain"
        } else {
            "fail"
        };
        // a latency SLO with nothing completed cannot pass
        let verdict = if metric == "latency_p95_ms" && metrics[idx("throughput_rps")].mean <= 0.0 {
            "fail"
        } else {
            verdict
        };
        overall = match (overall, verdict) {
            ("fail", _) | (_, "fail") => "fail",
            ("uncertain", _) | (_, "uncertain") => "uncertain",
            _ => "pass",
        };
        out.push(SloOut {
            slo: slo.into(),
            metric: metric.into(),
            threshold: th,
            value: m.mean,
            verdict: verdict.into(),
        });
    }
    if out.is_empty() {
        overall = "-";
    }
    (out, overall.into())
}

/// Assemble the results document of a (possibly sharded) sweep.
pub fn build(
    plan: &Plan,
    results: &[PointResult],
    warnings: &[Problem],
    shard: Option<String>,
) -> Results {
    let first = &plan.points[0];
    let sc = &first.scenario;
    let points = results
        .iter()
        .map(|r| {
            let p = &plan.points[r.index];
            let mut metrics = Map::new();
            for (i, name) in METRIC_NAMES.iter().enumerate() {
                metrics.insert(
                    (*name).to_string(),
                    serde_json::to_value(MetricOut::from(&r.metrics[i])).expect("serialisable"),
                );
            }
            let (slo, verdict) = slo_verdicts(&p.scenario, &r.metrics);
            PointOut {
                index: p.index,
                params: p.params.iter().cloned().collect(),
                replications: r.records.len() as u32,
                events: r.records.iter().map(|x| x.events).sum(),
                truncated: r.records.iter().any(|x| x.truncated),
                metrics,
                slo,
                verdict,
                runs: Vec::new(),
                precision: r.precision.as_ref().map(|p| PrecisionOut {
                    met: p.met,
                    target: p.target,
                    worst: if p.worst.is_finite() { p.worst } else { -1.0 },
                    worst_metric: p.worst_metric.clone(),
                    replications: p.replications,
                    max_replications: p.max_replications,
                    note: (!p.met).then(|| {
                        if p.worst.is_finite() {
                            format!(
                                "{} is still ±{:.1} % after {} replications (the limit): raise run.precision.max_replications or run.duration_s",
                                p.worst_metric,
                                p.worst * 100.0,
                                p.replications
                            )
                        } else {
                            format!("{} has no interval (its mean is 0 or it was never observed)", p.worst_metric)
                        }
                    }),
                }),
                model: None,
            }
        })
        .collect();
    Results {
        schema_version: SCHEMA_VERSION,
        poolsim_version: env!("CARGO_PKG_VERSION").to_string(),
        source: "simulated".into(),
        experiment: sc.name.clone(),
        seed: sc.seed,
        confidence: sc.run.confidence,
        replications: sc.run.replications,
        shard,
        axes: axes_of(plan),
        warnings: warnings.iter().map(|w| w.to_string()).collect(),
        points,
        resolved_experiment: serde_json::to_value(&first.resolved).expect("serialisable"),
        environment: None,
    }
}

/// Pretty JSON with a trailing newline.
pub fn to_json(r: &Results) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(r).expect("serialisable");
    v.push(b'\n');
    v
}

/// CSV: one row per point; axis values, then mean, low and high of every metric, then the verdict.
pub fn to_csv(r: &Results) -> Vec<u8> {
    let mut out = String::new();
    let mut head: Vec<String> = vec!["point".into()];
    head.extend(r.axes.iter().map(|a| a.path.clone()));
    for m in METRIC_NAMES {
        head.push((*m).to_string());
        head.push(format!("{m}_low"));
        head.push(format!("{m}_high"));
    }
    head.push("verdict".into());
    out.push_str(
        &head
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push('\n');
    for p in &r.points {
        let mut row = vec![p.index.to_string()];
        for a in &r.axes {
            row.push(csv_field(&value_text(
                p.params.get(&a.path).unwrap_or(&Value::Null),
            )));
        }
        for m in METRIC_NAMES {
            let x = p.metric(m).unwrap_or(MetricOut {
                mean: 0.0,
                low: 0.0,
                high: 0.0,
                half_width: None,
            });
            row.push(num(x.mean));
            row.push(num(x.low));
            row.push(num(x.high));
        }
        row.push(p.verdict.clone());
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out.into_bytes()
}

fn num(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.6}")
    }
}

/// A parameter value as plain text (strings without quotes; a list of named objects, such as
/// swept transactions, by their names; an object by its scalar fields, or, with none, by its
/// objects — a distribution such as `{"exp": {"mean_ms": 4}}` reads `exp(mean_ms=4)`).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a)
            if !a.is_empty()
                && a.iter()
                    .all(|e| e.get("name").is_some_and(Value::is_string)) =>
        {
            a.iter()
                .filter_map(|e| e.get("name").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("+")
        }
        // an object (e.g. a swept `clients`): its scalar fields, `key=value` separated by spaces
        Value::Object(m) if m.values().any(|v| !v.is_object() && !v.is_array()) => m
            .iter()
            .filter(|(_, v)| !v.is_object() && !v.is_array())
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| v.is_object())
            .map(|(k, v)| format!("{k}({})", value_text(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Why shard results cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no results to merge")]
    Empty,
    #[error("{0} is not from the same sweep as the first file (experiment, seed, axes or settings differ)")]
    Mismatch(String),
    #[error("point {0} appears in more than one file")]
    Duplicate(usize),
    #[error("points are missing: {0:?} (run the remaining shards)")]
    Missing(Vec<usize>),
}

/// Merge the results of the shards of one sweep into the results of the whole sweep: the same
/// document a single unsharded run writes.
pub fn merge(parts: Vec<(String, Results)>) -> Result<Results, MergeError> {
    let mut it = parts.into_iter();
    let (_, first) = it.next().ok_or(MergeError::Empty)?;
    let mut points = first.points.clone();
    let same = |a: &Results, b: &Results| {
        a.schema_version == b.schema_version
            && a.experiment == b.experiment
            && a.seed == b.seed
            && a.axes == b.axes
            && a.resolved_experiment == b.resolved_experiment
            && a.source == b.source
    };
    for (name, r) in it {
        if !same(&first, &r) {
            return Err(MergeError::Mismatch(name));
        }
        points.extend(r.points);
    }
    points.sort_by_key(|p| p.index);
    for w in points.windows(2) {
        if w[0].index == w[1].index {
            return Err(MergeError::Duplicate(w[0].index));
        }
    }
    let total: usize = first.axes.iter().map(|a| a.values.len().max(1)).product();
    let have: std::collections::BTreeSet<usize> = points.iter().map(|p| p.index).collect();
    let missing: Vec<usize> = (0..total).filter(|i| !have.contains(i)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing(missing));
    }
    Ok(Results {
        shard: None,
        points,
        ..first
    })
}

/// The sweep's axes as the results list them.
pub fn axes_of(plan: &Plan) -> Vec<Axis> {
    plan.axes
        .iter()
        .map(|(p, v)| Axis {
            path: p.clone(),
            values: v.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::value_text;
    use serde_json::json;

    #[test]
    fn parameter_values_read_as_text() {
        assert_eq!(value_text(&json!("session")), "session");
        assert_eq!(value_text(&json!(35)), "35");
        assert_eq!(
            value_text(&json!([{"name": "read"}, {"name": "write"}])),
            "read+write"
        );
        assert_eq!(
            value_text(&json!({"mode": "open", "rate_per_s": 300, "think_time": {"const_ms": 0}})),
            "mode=open rate_per_s=300"
        );
        // a distribution has no scalar field: its kind and parameters
        assert_eq!(value_text(&json!({"const_ms": 3.8})), "const_ms=3.8");
        assert_eq!(
            value_text(&json!({"exp": {"mean_ms": 4}})),
            "exp(mean_ms=4)"
        );
        assert_eq!(
            value_text(&json!({"lognormal": {"median_ms": 3, "p95_ms": 4}})),
            "lognormal(median_ms=3 p95_ms=4)"
        );
    }
}
