//! Projected against measured: points matched by their parameters, and per metric the projection
//! with its interval, the measurement (with its own interval when it was repeated), the relative
//! error, whether the measurement lies inside the projection's interval, and whether a miss is
//! larger than the two intervals together (more than measurement noise). A summary gives the
//! median and worst error per metric. Pure: results in, comparison out; renderers return bytes.

use super::{MetricOut, PointOut, Results};
use crate::live::pgbench::PgbenchSummary;
use crate::live::speed::Probe;
use serde::Serialize;
use serde_json::{Map, Value};

/// Metrics compared when none are named.
pub const DEFAULT_METRICS: &[&str] = &[
    "throughput_rps",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "failure_rate",
];

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Comparison {
    pub projected: String,
    pub measured: String,
    pub metrics: Vec<String>,
    pub points: Vec<PointComparison>,
    pub summary: Vec<MetricSummary>,
    /// Points of the measured results with no projected point of the same parameters.
    pub unmatched: Vec<Map<String, Value>>,
    pub tolerance_exceeded: Vec<String>,
    /// Points measured while the host ran more than [`HOST_DRIFT`] faster or slower than at
    /// calibration (none when either side was not probed).
    pub host_drifted: usize,
    /// What the comparison's caller measured beside it (`validate`: each workload's level again
    /// after its points, against its calibration's), one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PointComparison {
    pub params: Map<String, Value>,
    pub projected_index: usize,
    pub rows: Vec<Row>,
    /// The host's speed around the point's measurement against the calibration's, when both
    /// were probed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostDrift>,
}

/// A change in the host's speed of more than this fraction, either kind, is reported: beyond
/// what the probe itself varies by on a quiet machine.
pub const HOST_DRIFT: f64 = 0.15;

/// The host's speed while a point was measured against while the model was calibrated.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct HostDrift {
    pub calibration: Probe,
    pub measurement: Probe,
    /// measurement / calibration − 1 for the CPU probe: +0.3 means the same work took 30 %
    /// longer while the point was measured.
    pub cpu_change: f64,
    pub memory_change: f64,
    /// Either change beyond [`HOST_DRIFT`].
    pub drifted: bool,
}

impl HostDrift {
    pub fn new(calibration: Probe, measurement: Probe) -> HostDrift {
        let ch = |m: f64, c: f64| if c > 0.0 { m / c - 1.0 } else { 0.0 };
        let cpu_change = ch(measurement.cpu_ms, calibration.cpu_ms);
        let memory_change = ch(measurement.memory_ms, calibration.memory_ms);
        HostDrift {
            calibration,
            measurement,
            cpu_change,
            memory_change,
            drifted: cpu_change.abs() > HOST_DRIFT || memory_change.abs() > HOST_DRIFT,
        }
    }
}

/// The mean host probe of each measured point (by index), from a measured document's
/// `environment.host_speed`.
fn measured_probes(measured: &Results) -> Vec<(usize, Probe)> {
    let Some(points) = measured
        .environment
        .as_ref()
        .and_then(|e| e.pointer("/host_speed/points"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    points
        .iter()
        .filter_map(|p| {
            let i = p.get("index")?.as_u64()? as usize;
            let m = serde_json::from_value(p.get("mean")?.clone()).ok()?;
            Some((i, m))
        })
        .collect()
}

/// The calibration's mean host probe, from a model file's `provenance.host_speed`.
pub fn model_probe(model: &Value) -> Option<Probe> {
    serde_json::from_value(model.pointer("/provenance/host_speed/mean")?.clone()).ok()
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Row {
    pub metric: String,
    pub projected: MetricOut,
    pub measured: MetricOut,
    /// (projected − measured) / measured; None when the measurement is 0.
    pub rel_error: Option<f64>,
    /// The measured mean lies inside the projection's interval.
    pub inside: bool,
    /// The gap is wider than both half-widths together: more than noise.
    pub beyond_noise: bool,
    /// The tolerance (fraction) this metric is held to, if any, and whether it held.
    pub tolerance: Option<f64>,
    pub within_tolerance: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MetricSummary {
    pub metric: String,
    pub points: usize,
    pub median_abs_rel_error: Option<f64>,
    pub worst_abs_rel_error: Option<f64>,
    pub inside: usize,
    pub beyond_noise: usize,
}

/// Turn an imported pgbench log into a one-point measured results document.
pub fn measured_from_pgbench(s: &PgbenchSummary, source_name: &str) -> Results {
    let mut metrics = Map::new();
    let mut put = |name: &str, mean: f64| {
        let m = MetricOut {
            mean,
            low: mean,
            high: mean,
            half_width: None,
        };
        metrics.insert(
            name.to_string(),
            serde_json::to_value(m).expect("serialisable"),
        );
    };
    let ended = (s.transactions + s.failed) as f64;
    put("throughput_rps", s.tps);
    put("latency_mean_ms", s.latency_mean_ms);
    put("latency_p50_ms", s.latency_p50_ms);
    put("latency_p95_ms", s.latency_p95_ms);
    put("latency_p99_ms", s.latency_p99_ms);
    put("latency_max_ms", s.latency_max_ms);
    put(
        "failure_rate",
        if ended > 0.0 {
            s.failed as f64 / ended
        } else {
            0.0
        },
    );
    put("requests_completed", s.transactions as f64);
    put("requests_failed", s.failed as f64);
    Results {
        schema_version: super::SCHEMA_VERSION,
        poolsim_version: env!("CARGO_PKG_VERSION").to_string(),
        source: "measured".into(),
        experiment: format!("pgbench log {source_name}"),
        seed: 0,
        confidence: 0.95,
        replications: 1,
        shard: None,
        environment: None,
        axes: Vec::new(),
        warnings: Vec::new(),
        points: vec![PointOut {
            index: 0,
            params: Map::new(),
            replications: 1,
            events: 0,
            truncated: false,
            metrics,
            slo: Vec::new(),
            verdict: "-".into(),
            precision: None,
            model: None,
            runs: Vec::new(),
        }],
        resolved_experiment: serde_json::json!({
            "pgbench": {"clients": s.clients, "duration_s": s.duration_s, "transactions": s.transactions,
                        "failed": s.failed, "skipped": s.skipped, "files": s.files}
        }),
    }
}

/// Compare. `tolerances` are (metric, fraction). Measured points are matched to projected points
/// with the same parameters; a measured document with a single point and no parameters (a
/// pgbench log) matches a projected document with a single point.
pub fn compare(
    projected: &Results,
    measured: &Results,
    metrics: &[String],
    tolerances: &[(String, f64)],
    projected_name: &str,
    measured_name: &str,
    host_reference: &dyn Fn(&PointOut) -> Option<Probe>,
) -> Comparison {
    let probes = measured_probes(measured);
    let mut points = Vec::new();
    let mut unmatched = Vec::new();
    let single = measured.points.len() == 1
        && measured.points[0].params.is_empty()
        && projected.points.len() == 1;
    for mp in &measured.points {
        let pp = if single {
            Some(&projected.points[0])
        } else {
            projected
                .points
                .iter()
                .find(|p| same_params(&p.params, &mp.params))
        };
        let Some(pp) = pp else {
            unmatched.push(mp.params.clone());
            continue;
        };
        let mut rows = Vec::new();
        for m in metrics {
            let (Some(pr), Some(me)) = (pp.metric(m), mp.metric(m)) else {
                continue;
            };
            let rel_error = (me.mean != 0.0).then(|| (pr.mean - me.mean) / me.mean);
            let inside = pr.low <= me.mean && me.mean <= pr.high;
            let gap = (pr.mean - me.mean).abs();
            let noise = pr.half_width.unwrap_or(0.0) + me.half_width.unwrap_or(0.0);
            let beyond_noise = gap > noise;
            let tolerance = tolerances.iter().find(|t| &t.0 == m).map(|t| t.1);
            let within_tolerance = match (tolerance, rel_error) {
                (Some(t), Some(e)) => e.abs() <= t,
                (Some(_), None) => gap == 0.0,
                (None, _) => true,
            };
            rows.push(Row {
                metric: m.clone(),
                projected: pr,
                measured: me,
                rel_error,
                inside,
                beyond_noise,
                tolerance,
                within_tolerance,
            });
        }
        let host = host_reference(pp).and_then(|c| {
            let m = probes.iter().find(|(i, _)| *i == mp.index)?.1;
            Some(HostDrift::new(c, m))
        });
        points.push(PointComparison {
            params: mp.params.clone(),
            projected_index: pp.index,
            rows,
            host,
        });
    }
    let summary = metrics
        .iter()
        .map(|m| {
            let rows: Vec<&Row> = points
                .iter()
                .flat_map(|p| p.rows.iter())
                .filter(|r| &r.metric == m)
                .collect();
            let mut errs: Vec<f64> = rows
                .iter()
                .filter_map(|r| r.rel_error.map(f64::abs))
                .collect();
            errs.sort_by(f64::total_cmp);
            let median = if errs.is_empty() {
                None
            } else if errs.len() % 2 == 1 {
                Some(errs[errs.len() / 2])
            } else {
                Some((errs[errs.len() / 2 - 1] + errs[errs.len() / 2]) / 2.0)
            };
            MetricSummary {
                metric: m.clone(),
                points: rows.len(),
                median_abs_rel_error: median,
                worst_abs_rel_error: errs.last().copied(),
                inside: rows.iter().filter(|r| r.inside).count(),
                beyond_noise: rows.iter().filter(|r| r.beyond_noise).count(),
            }
        })
        .collect();
    let tolerance_exceeded = points
        .iter()
        .flat_map(|p| {
            p.rows.iter().filter(|r| !r.within_tolerance).map(move |r| {
                format!(
                    "{} at {}: projected {:.4}, measured {:.4}, error {} > {:.1} %",
                    r.metric,
                    params_text(&p.params),
                    r.projected.mean,
                    r.measured.mean,
                    r.rel_error
                        .map_or("n/a".into(), |e| format!("{:+.1} %", e * 100.0)),
                    r.tolerance.unwrap_or(0.0) * 100.0
                )
            })
        })
        .collect();
    let host_drifted = points
        .iter()
        .filter(|p| p.host.is_some_and(|h| h.drifted))
        .count();
    Comparison {
        host_drifted,
        projected: projected_name.to_string(),
        measured: measured_name.to_string(),
        metrics: metrics.to_vec(),
        points,
        summary,
        unmatched,
        tolerance_exceeded,
        notes: Vec::new(),
    }
}

fn same_params(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| num_eq(v, w)))
}

fn num_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn params_text(p: &Map<String, Value>) -> String {
    if p.is_empty() {
        return "(the point)".into();
    }
    p.iter()
        .map(|(k, v)| format!("{k}={}", super::value_text(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn with_hw(m: &MetricOut) -> String {
    match m.half_width {
        Some(h) if h > 0.0 => format!("{} ± {}", short(m.mean), short(h)),
        _ => short(m.mean),
    }
}

fn short(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.1 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    }
}

/// The comparison as an aligned text table with a summary.
pub fn render_table(c: &Comparison) -> Vec<u8> {
    let mut rows: Vec<Vec<String>> = vec![vec![
        "point".into(),
        "metric".into(),
        "projected".into(),
        "measured".into(),
        "error".into(),
        "in CI".into(),
        "beyond noise".into(),
    ]];
    for p in &c.points {
        for r in &p.rows {
            rows.push(vec![
                params_text(&p.params),
                r.metric.clone(),
                with_hw(&r.projected),
                with_hw(&r.measured),
                r.rel_error
                    .map_or("-".into(), |e| format!("{:+.1} %", e * 100.0)),
                if r.inside { "yes" } else { "no" }.into(),
                if r.beyond_noise { "yes" } else { "no" }.into(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("projected: {}\nmeasured:  {}\n\n", c.projected, c.measured);
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s:<w$}", w = widths[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str("\nsummary (|error| over matched points):\n");
    for s in &c.summary {
        let f = |x: Option<f64>| x.map_or("-".into(), |e| format!("{:.1} %", e * 100.0));
        out.push_str(&format!(
            "  {:<18} median {:>7}  worst {:>7}  in CI {}/{}  beyond noise {}/{}\n",
            s.metric,
            f(s.median_abs_rel_error),
            f(s.worst_abs_rel_error),
            s.inside,
            s.points,
            s.beyond_noise,
            s.points
        ));
    }
    let drifted: Vec<&PointComparison> = c
        .points
        .iter()
        .filter(|p| p.host.is_some_and(|h| h.drifted))
        .collect();
    if !drifted.is_empty() {
        out.push_str(&format!(
            "\nthe host's speed changed by more than {:.0} % against the calibration's while {} of {} point(s) were measured (the same work took this much longer; a miss there may be the machine's, not the model's):\n",
            HOST_DRIFT * 100.0,
            drifted.len(),
            c.points.len()
        ));
        for p in drifted {
            let h = p.host.expect("drifted");
            out.push_str(&format!(
                "  {}: CPU {:+.0} %, memory {:+.0} %\n",
                params_text(&p.params),
                h.cpu_change * 100.0,
                h.memory_change * 100.0
            ));
        }
    }
    if !c.notes.is_empty() {
        out.push('\n');
        for n in &c.notes {
            out.push_str(&format!("{n}\n"));
        }
    }
    if !c.unmatched.is_empty() {
        out.push_str(&format!(
            "\n{} measured point(s) have no projected point with the same parameters:\n",
            c.unmatched.len()
        ));
        for u in &c.unmatched {
            out.push_str(&format!("  {}\n", params_text(u)));
        }
    }
    if !c.tolerance_exceeded.is_empty() {
        out.push_str("\ntolerance exceeded:\n");
        for t in &c.tolerance_exceeded {
            out.push_str(&format!("  {t}\n"));
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn point(params: Value, thr: (f64, f64, f64), p95: (f64, f64, f64)) -> PointOut {
        let m = |(mean, low, high): (f64, f64, f64)| {
            serde_json::to_value(MetricOut {
                mean,
                low,
                high,
                half_width: Some((high - low) / 2.0),
            })
            .unwrap()
        };
        let mut metrics = Map::new();
        metrics.insert("throughput_rps".into(), m(thr));
        metrics.insert("latency_p95_ms".into(), m(p95));
        PointOut {
            index: 0,
            params: params.as_object().unwrap().clone(),
            replications: 3,
            events: 0,
            truncated: false,
            metrics,
            slo: vec![],
            verdict: "-".into(),
            precision: None,
            model: None,
            runs: Vec::new(),
        }
    }

    fn results(points: Vec<PointOut>, source: &str) -> Results {
        Results {
            schema_version: 1,
            poolsim_version: "x".into(),
            source: source.into(),
            experiment: "e".into(),
            seed: 1,
            confidence: 0.95,
            replications: 3,
            shard: None,
            environment: None,
            axes: vec![],
            warnings: vec![],
            points: points
                .into_iter()
                .enumerate()
                .map(|(i, mut p)| {
                    p.index = i;
                    p
                })
                .collect(),
            resolved_experiment: json!({}),
        }
    }

    #[test]
    fn points_match_by_parameters_and_errors_are_relative_to_the_measurement() {
        let proj = results(
            vec![
                point(json!({"users": 10}), (100.0, 98.0, 102.0), (5.0, 4.9, 5.1)),
                point(json!({"users": 20}), (200.0, 196.0, 204.0), (8.0, 7.8, 8.2)),
            ],
            "simulated",
        );
        let meas = results(
            vec![
                point(
                    json!({"users": 20.0}),
                    (190.0, 188.0, 192.0),
                    (8.1, 8.0, 8.2),
                ),
                point(json!({"users": 30}), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)),
            ],
            "measured",
        );
        let metrics: Vec<String> = vec!["throughput_rps".into(), "latency_p95_ms".into()];
        let c = compare(
            &proj,
            &meas,
            &metrics,
            &[("throughput_rps".into(), 0.05)],
            "p",
            "m",
            &|_| None,
        );
        assert_eq!(c.points.len(), 1);
        assert!(c.points[0].host.is_none() && c.host_drifted == 0);
        assert_eq!(c.points[0].projected_index, 1);
        let thr = &c.points[0].rows[0];
        assert!((thr.rel_error.unwrap() - 10.0 / 190.0).abs() < 1e-12);
        assert!(!thr.inside);
        assert!(thr.beyond_noise, "10 apart, half-widths 4 + 2");
        assert!(!thr.within_tolerance, "5.3 % > 5 %");
        let p95 = &c.points[0].rows[1];
        assert!(p95.inside && !p95.beyond_noise && p95.within_tolerance);
        assert_eq!(c.unmatched.len(), 1);
        assert_eq!(c.tolerance_exceeded.len(), 1);
        assert_eq!(
            c.summary[0].worst_abs_rel_error,
            thr.rel_error.map(f64::abs)
        );
        let text = String::from_utf8(render_table(&c)).unwrap();
        assert!(text.contains("users=20"), "{text}");
        assert!(text.contains("tolerance exceeded"), "{text}");
    }

    #[test]
    fn the_hosts_speed_is_set_against_the_calibrations_point_by_point() {
        let proj = results(
            vec![
                point(json!({"users": 1}), (100.0, 98.0, 102.0), (5.0, 4.9, 5.1)),
                point(json!({"users": 2}), (200.0, 196.0, 204.0), (8.0, 7.8, 8.2)),
            ],
            "simulated",
        );
        let mut meas = results(
            vec![
                point(json!({"users": 1}), (100.0, 98.0, 102.0), (5.0, 4.9, 5.1)),
                point(json!({"users": 2}), (150.0, 140.0, 160.0), (9.0, 8.8, 9.2)),
            ],
            "measured",
        );
        meas.environment = Some(json!({"host_speed": {"points": [
            {"index": 0, "mean": {"cpu_ms": 3.1, "memory_ms": 10.5}},
            {"index": 1, "mean": {"cpu_ms": 3.0, "memory_ms": 14.0}},
        ]}}));
        let model =
            json!({"provenance": {"host_speed": {"mean": {"cpu_ms": 3.0, "memory_ms": 10.0}}}});
        let reference = model_probe(&model);
        assert_eq!(
            reference,
            Some(Probe {
                cpu_ms: 3.0,
                memory_ms: 10.0
            })
        );
        let metrics: Vec<String> = vec!["throughput_rps".into()];
        let c = compare(&proj, &meas, &metrics, &[], "p", "m", &|_| reference);
        let h0 = c.points[0].host.unwrap();
        assert!(
            (h0.cpu_change - 0.1 / 3.0).abs() < 1e-12 && (h0.memory_change - 0.05).abs() < 1e-12
        );
        assert!(!h0.drifted, "3 % and 5 %: within the probe's own spread");
        let h1 = c.points[1].host.unwrap();
        assert!((h1.memory_change - 0.4).abs() < 1e-12 && h1.drifted);
        assert_eq!(c.host_drifted, 1);
        let text = String::from_utf8(render_table(&c)).unwrap();
        assert!(text.contains("users=2: CPU +0 %, memory +40 %"), "{text}");
        // without a reference (an uncalibrated model) nothing is said about the host
        let c = compare(&proj, &meas, &metrics, &[], "p", "m", &|_| None);
        assert!(c.points.iter().all(|p| p.host.is_none()) && c.host_drifted == 0);
        // each point against its own model's reference (validate's per-workload calibrations)
        let own = Probe {
            cpu_ms: 3.0,
            memory_ms: 14.0,
        };
        let c = compare(&proj, &meas, &metrics, &[], "p", "m", &|p| {
            if p.index == 1 {
                Some(own)
            } else {
                reference
            }
        });
        assert!(!c.points[1].host.unwrap().drifted && c.host_drifted == 0);
    }
}
