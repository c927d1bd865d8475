//! The human-readable table of a sweep: one row per point, the P95 as "value ± half-width",
//! failures by cause, acquire wait, utilisations and the SLO verdict.

use super::{value_text, Results};
use crate::sim::CAUSES;

/// Short, unambiguous column names for the axes: the last path segment, or more if two clash.
pub(crate) fn axis_labels(paths: &[String]) -> Vec<String> {
    let mut depth = vec![1usize; paths.len()];
    for _ in 0..4 {
        let labels: Vec<String> = paths.iter().zip(&depth).map(|(p, d)| tail(p, *d)).collect();
        let mut changed = false;
        for i in 0..paths.len() {
            if labels.iter().filter(|l| **l == labels[i]).count() > 1 {
                depth[i] += 1;
                changed = true;
            }
        }
        if !changed {
            return labels;
        }
    }
    paths.to_vec()
}

fn tail(p: &str, d: usize) -> String {
    let segs: Vec<&str> = p.split('.').collect();
    segs[segs.len().saturating_sub(d)..].join(".")
}

pub(crate) fn fmt_num(x: f64) -> String {
    if x.abs() >= 1000.0 {
        let s = format!("{:.0}", x);
        let neg = s.starts_with('-');
        let digits: Vec<char> = s.trim_start_matches('-').chars().collect();
        let mut out = String::new();
        for (i, c) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(*c);
        }
        if neg {
            format!("-{out}")
        } else {
            out
        }
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn pct(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x < 0.0001 {
        "<0.01".into()
    } else {
        format!("{:.2}", x * 100.0)
    }
}

/// Render the results as an aligned text table.
pub fn render(r: &Results) -> Vec<u8> {
    let paths: Vec<String> = r.axes.iter().map(|a| a.path.clone()).collect();
    let labels = axis_labels(&paths);
    let mut head: Vec<String> = vec!["#".into()];
    head.extend(labels.iter().cloned());
    for h in [
        "rps",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "fail %",
        "by cause %",
        "acq p95 ms",
        "app %",
        "bnc %",
        "pg %",
        "SLO",
    ] {
        head.push(h.into());
    }
    let with_precision = r.points.iter().any(|p| p.precision.is_some());
    if with_precision {
        head.insert(head.len() - 1, "reps".into());
    }
    let mut rows = vec![head];
    for p in &r.points {
        let mut row = vec![p.index.to_string()];
        for a in &paths {
            row.push(p.params.get(a).map(value_text).unwrap_or_default());
        }
        row.push(fmt_num(p.mean("throughput_rps")));
        row.push(fmt_num(p.mean("latency_p50_ms")));
        let p95 = p.metric("latency_p95_ms");
        row.push(match p95 {
            Some(m) => match m.half_width {
                Some(h) => format!("{} ± {}", fmt_num(m.mean), fmt_num(h)),
                None => fmt_num(m.mean),
            },
            None => "-".into(),
        });
        row.push(fmt_num(p.mean("latency_p99_ms")));
        row.push(pct(p.mean("failure_rate")));
        let causes: Vec<String> = CAUSES
            .iter()
            .filter_map(|c| {
                let v = p.mean(&format!("{}_rate", c.name()));
                (v > 0.0).then(|| format!("{} {}", c.short(), pct(v)))
            })
            .collect();
        row.push(if causes.is_empty() {
            "-".into()
        } else {
            causes.join(" ")
        });
        row.push(fmt_num(p.mean("acquire_wait_p95_ms")));
        row.push(format!("{:.0}", p.mean("app_pool_utilization") * 100.0));
        row.push(format!(
            "{:.0}",
            p.mean("bouncer_server_utilization") * 100.0
        ));
        row.push(format!(
            "{:.0}",
            p.mean("postgres_slot_utilization") * 100.0
        ));
        if with_precision {
            row.push(match &p.precision {
                Some(pr) if pr.met => pr.replications.to_string(),
                Some(pr) => format!("{}!", pr.replications),
                None => p.replications.to_string(),
            });
        }
        let failed: Vec<&str> = p
            .slo
            .iter()
            .filter(|s| s.verdict != "pass")
            .map(|s| s.slo.as_str())
            .collect();
        row.push(match p.verdict.as_str() {
            "pass" => "PASS".into(),
            "-" => "-".into(),
            v => format!("{} ({})", v.to_uppercase(), failed.join(",")),
        });
        rows.push(row);
    }
    let ncol = rows[0].len();
    let widths: Vec<usize> = (0..ncol)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let causes_col = rows[0].iter().position(|h| h == "by cause %").unwrap_or(0);
    let text_cols: Vec<bool> = (0..ncol)
        .map(|c| c == ncol - 1 || c == causes_col)
        .collect();
    let mut out = String::new();
    if r.source == "measured" {
        out.push_str("measured: ");
    }
    out.push_str(&format!(
        "{} — seed {}, {} replication(s) per point, {:.0} % confidence intervals\n",
        r.experiment,
        r.seed,
        r.replications,
        r.confidence * 100.0
    ));
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| {
                let pad = widths[c] - s.chars().count();
                if text_cols[c] || i == 0 {
                    format!("{s}{}", " ".repeat(pad))
                } else {
                    format!("{}{s}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if with_precision {
        let unmet = r
            .points
            .iter()
            .filter(|p| p.precision.as_ref().is_some_and(|x| !x.met))
            .count();
        let target = r
            .points
            .iter()
            .find_map(|p| p.precision.as_ref().map(|x| x.target))
            .unwrap_or(0.0);
        out.push_str(&format!(
            "precision target ±{:.1} % of the mean: met at {} of {} points{}\n",
            target * 100.0,
            r.points.len() - unmet,
            r.points.len(),
            if unmet > 0 {
                " (reps marked ! stopped at max_replications)"
            } else {
                ""
            }
        ));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_disambiguate() {
        let l = axis_labels(&[
            "app.pools.primary.max_size".into(),
            "app.pools.replica.max_size".into(),
            "clients.users".into(),
        ]);
        assert_eq!(l, vec!["primary.max_size", "replica.max_size", "users"]);
    }

    #[test]
    fn numbers_are_readable() {
        assert_eq!(fmt_num(8333.4), "8,333");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
        assert_eq!(pct(0.0123), "1.23");
    }
}
