//! The HTML report: one self-contained file — inline CSS and inline SVG charts, no script, nothing
//! fetched — with the experiment summary, the SLO verdict table, the charts and, when measured
//! results are given, a projected-against-measured section. A pure renderer: results in, bytes out.

use super::chart::{self, ChartError, ChartKind, ImageFormat};
use super::table::{axis_labels, fmt_num};
use super::{value_text, MetricOut, PointOut, Results};

/// Metrics compared between projection and measurement: name, label, scale for display.
const COMPARED: &[(&str, &str, f64)] = &[
    ("throughput_rps", "throughput (req/s)", 1.0),
    ("latency_p50_ms", "P50 (ms)", 1.0),
    ("latency_p95_ms", "P95 (ms)", 1.0),
    ("latency_p99_ms", "P99 (ms)", 1.0),
    ("failure_rate", "failed (%)", 100.0),
];

const CSS: &str = "
body{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;margin:0 auto;max-width:1440px;padding:16px 28px;color:#1d1d1d;background:#fff;line-height:1.4}
h1{font-size:28px;margin:8px 0 4px}h2{font-size:22px;margin:36px 0 8px;border-bottom:2px solid #ddd;padding-bottom:4px}
h3{font-size:18px;margin:24px 0 8px}.muted{color:#5a5a5a}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0}
dl.summary dt{font-weight:bold}dl.summary dd{margin:0}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #d0d0d0;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f2f2f2}td.l,th.l{text-align:left}
.pass{background:#a6dba0}.uncertain{background:#fee08b}.fail{background:#f4a582}
figure{margin:16px 0 28px}figure svg{width:100%;height:auto;max-width:1400px;border:1px solid #eee}
ul.skipped li{margin:2px 0}.warn{color:#8a4b00;white-space:pre-line}
.scroll{overflow-x:auto;max-width:100%}
";

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Render the report of one or more results documents (measured ones are compared with the
/// projection they belong to, see [`chart::groups`]).
pub fn render(rs: &[Results]) -> Result<Vec<u8>, ChartError> {
    let groups = chart::groups(rs);
    let title = match groups.first() {
        Some(g) if groups.len() == 1 => format!("poolsim report — {}", rs[g.primary].experiment),
        _ => "poolsim report".to_string(),
    };
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str(&format!("<title>{}</title>\n", escape(&title)));
    h.push_str(&format!("<style>{CSS}</style>\n</head>\n<body>\n"));
    h.push_str(&format!("<h1>{}</h1>\n", escape(&title)));
    h.push_str(&format!(
        "<p class=\"muted\">Capacity report of {} results file{}, written by poolsim {}.</p>\n",
        rs.len(),
        if rs.len() == 1 { "" } else { "s" },
        escape(env!("CARGO_PKG_VERSION"))
    ));
    for (gi, g) in groups.iter().enumerate() {
        let r = &rs[g.primary];
        h.push_str(&format!(
            "<section id=\"results-{gi}\">\n<h2>{} <span class=\"muted\">({})</span></h2>\n",
            escape(&r.experiment),
            escape(&r.source)
        ));
        summary(&mut h, r);
        h.push_str("<h3>SLO verdicts</h3>\n");
        verdict_table(&mut h, r);
        h.push_str("<h3>Charts</h3>\n");
        let (kinds, skipped) = chart::plan(r, None);
        for kind in kinds {
            figure(
                &mut h,
                kind,
                &chart::render(kind, r, None, ImageFormat::Svg)?,
            );
        }
        skipped_list(&mut h, &skipped);
        for &m in &g.measured {
            let m = &rs[m];
            h.push_str(&format!(
                "<h3>Projected against measured: {}</h3>\n",
                escape(&m.experiment)
            ));
            h.push_str(&format!(
                "<p class=\"muted\">projected: {}<br>measured: {}</p>\n",
                escape(&chart::describe(r)),
                escape(&chart::describe(m))
            ));
            match chart::render(ChartKind::ProjectedVsMeasured, r, Some(m), ImageFormat::Svg) {
                Ok(svg) => figure(&mut h, ChartKind::ProjectedVsMeasured, &svg),
                Err(ChartError::NotApplicable(why)) => skipped_list(
                    &mut h,
                    &[chart::Skipped {
                        kind: ChartKind::ProjectedVsMeasured,
                        why,
                    }],
                ),
                Err(e) => return Err(e),
            }
            comparison_table(&mut h, r, m);
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body>\n</html>\n");
    Ok(h.into_bytes())
}

fn summary(h: &mut String, r: &Results) {
    if let Some(d) = r
        .resolved_experiment
        .get("description")
        .and_then(|d| d.as_str())
    {
        h.push_str(&format!("<p>{}</p>\n", escape(d)));
    }
    let mut rows: Vec<(String, String)> = vec![
        ("experiment".into(), r.experiment.clone()),
        ("source".into(), r.source.clone()),
        ("seed".into(), r.seed.to_string()),
        (
            "replications".into(),
            format!("{} per point", r.replications),
        ),
        (
            "confidence".into(),
            format!("{} % intervals", chart::tick(r.confidence * 100.0)),
        ),
        ("points".into(), r.points.len().to_string()),
    ];
    if let Some(s) = &r.shard {
        rows.push(("shard".into(), s.clone()));
    }
    for a in &r.axes {
        rows.push((
            format!("axis {}", a.path),
            a.values
                .iter()
                .map(value_text)
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    rows.push((
        "poolsim".into(),
        format!("{} (schema {})", r.poolsim_version, r.schema_version),
    ));
    h.push_str("<dl class=\"summary\">\n");
    for (k, v) in rows {
        h.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", escape(&k), escape(&v)));
    }
    h.push_str("</dl>\n");
    let truncated = r.points.iter().filter(|p| p.truncated).count();
    if !r.warnings.is_empty() || truncated > 0 {
        h.push_str("<ul class=\"warn\">\n");
        for w in &r.warnings {
            h.push_str(&format!("<li>{}</li>\n", escape(w)));
        }
        if truncated > 0 {
            h.push_str(&format!(
                "<li>{truncated} point(s) hit the event limit: their runs were truncated</li>\n"
            ));
        }
        h.push_str("</ul>\n");
    }
}

fn with_ci(m: Option<MetricOut>, scale: f64) -> String {
    match m {
        Some(m) => match m.half_width {
            Some(hw) => format!("{} ± {}", fmt_num(m.mean * scale), fmt_num(hw * scale)),
            None => fmt_num(m.mean * scale),
        },
        None => "–".into(),
    }
}

fn verdict_table(h: &mut String, r: &Results) {
    let paths: Vec<String> = r.axes.iter().map(|a| a.path.clone()).collect();
    let labels = axis_labels(&paths);
    let mut slos: Vec<String> = Vec::new();
    for p in &r.points {
        for s in &p.slo {
            if !slos.contains(&s.slo) {
                slos.push(s.slo.clone());
            }
        }
    }
    h.push_str("<div class=\"scroll\"><table class=\"verdicts\">\n<thead><tr><th>#</th>");
    for (l, p) in labels.iter().zip(&paths) {
        h.push_str(&format!("<th title=\"{}\">{}</th>", escape(p), escape(l)));
    }
    for c in ["throughput (req/s)", "P95 (ms)", "P99 (ms)", "failed (%)"] {
        h.push_str(&format!("<th>{c}</th>"));
    }
    for s in &slos {
        h.push_str(&format!("<th>{}</th>", escape(s)));
    }
    h.push_str("<th class=\"l\">verdict</th></tr></thead>\n<tbody>\n");
    for p in &r.points {
        h.push_str(&format!("<tr><td>{}</td>", p.index));
        for a in &paths {
            h.push_str(&format!(
                "<td>{}</td>",
                escape(&p.params.get(a).map(value_text).unwrap_or_default())
            ));
        }
        h.push_str(&format!(
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            with_ci(p.metric("throughput_rps"), 1.0),
            with_ci(p.metric("latency_p95_ms"), 1.0),
            with_ci(p.metric("latency_p99_ms"), 1.0),
            with_ci(p.metric("failure_rate"), 100.0)
        ));
        for name in &slos {
            match p.slo.iter().find(|s| &s.slo == name) {
                Some(s) => {
                    let scale = if s.slo == "failure_rate" || s.slo == "pool_utilization" {
                        100.0
                    } else {
                        1.0
                    };
                    h.push_str(&format!(
                        "<td class=\"{}\">{} / {}</td>",
                        verdict_class(&s.verdict),
                        fmt_num(s.value * scale),
                        fmt_num(s.threshold * scale)
                    ));
                }
                None => h.push_str("<td>–</td>"),
            }
        }
        h.push_str(&format!(
            "<td class=\"l {}\">{}</td></tr>\n",
            verdict_class(&p.verdict),
            escape(&p.verdict)
        ));
    }
    h.push_str("</tbody>\n</table></div>\n");
    let mut note = String::from(
        "Means ± the half-width of their confidence interval. SLO cells: value / threshold; a \
         verdict is uncertain when the interval straddles the threshold.",
    );
    if slos
        .iter()
        .any(|s| s == "failure_rate" || s == "pool_utilization")
    {
        note.push_str(" failure_rate and pool_utilization are in percent.");
    }
    h.push_str(&format!("<p class=\"muted\">{note}</p>\n"));
}

fn verdict_class(v: &str) -> &'static str {
    match v {
        "pass" => "pass",
        "fail" => "fail",
        "uncertain" => "uncertain",
        _ => "",
    }
}

/// A chart as an inline SVG figure.
fn figure(h: &mut String, kind: ChartKind, svg: &[u8]) {
    let svg = String::from_utf8_lossy(svg);
    let start = svg.find("<svg").unwrap_or(0);
    let svg = &svg[start..];
    // the chart carries its own title
    h.push_str(&format!("<figure id=\"{}\">\n", kind.stem()));
    // label the inline SVG for screen readers
    h.push_str(&format!(
        "<svg role=\"img\" aria-label=\"{}\"",
        escape(kind.title())
    ));
    h.push_str(svg.strip_prefix("<svg").unwrap_or(svg));
    h.push_str("</figure>\n");
}

fn skipped_list(h: &mut String, skipped: &[chart::Skipped]) {
    if skipped.is_empty() {
        return;
    }
    h.push_str("<p>Not drawn:</p>\n<ul class=\"skipped\">\n");
    for s in skipped {
        h.push_str(&format!(
            "<li><b>{}</b>: {}</li>\n",
            escape(s.kind.title()),
            escape(&s.why)
        ));
    }
    h.push_str("</ul>\n");
}

fn interval(m: &MetricOut, scale: f64) -> String {
    format!(
        "{} [{}, {}]",
        fmt_num(m.mean * scale),
        fmt_num(m.low * scale),
        fmt_num(m.high * scale)
    )
}

fn comparison_table(h: &mut String, projected: &Results, measured: &Results) {
    let pairs: Vec<(&PointOut, &PointOut)> = measured
        .points
        .iter()
        .filter_map(|m| chart::matching_point(projected, m).map(|p| (p, m)))
        .collect();
    let unmatched = measured.points.len() - pairs.len();
    if pairs.is_empty() {
        h.push_str("<p>No measured point has the parameters of a projected point.</p>\n");
        return;
    }
    let mut inside = 0;
    let mut total = 0;
    h.push_str("<div class=\"scroll\"><table class=\"comparison\">\n<thead><tr><th class=\"l\">point</th><th class=\"l\">metric</th><th>projected [CI]</th><th>measured [CI]</th><th>error</th><th class=\"l\">measured in projected CI</th></tr></thead>\n<tbody>\n");
    for (p, m) in &pairs {
        let label = if p.params.is_empty() {
            "base scenario".to_string()
        } else {
            p.params
                .iter()
                .map(|(k, v)| format!("{}={}", k.rsplit('.').next().unwrap_or(k), value_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for &(metric, name, scale) in COMPARED {
            let (Some(pm), Some(mm)) = (p.metric(metric), m.metric(metric)) else {
                continue;
            };
            let err = if pm.mean != 0.0 {
                format!("{:+.1} %", (mm.mean - pm.mean) / pm.mean * 100.0)
            } else {
                "–".into()
            };
            let ok = mm.mean >= pm.low && mm.mean <= pm.high;
            total += 1;
            inside += ok as usize;
            h.push_str(&format!(
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l {}\">{}</td></tr>\n",
                escape(&label),
                escape(name),
                interval(&pm, scale),
                interval(&mm, scale),
                err,
                if ok { "pass" } else { "fail" },
                if ok { "yes" } else { "no" }
            ));
        }
    }
    h.push_str("</tbody>\n</table></div>\n");
    h.push_str(&format!(
        "<p>{inside} of {total} measured values lie in the projection's confidence interval; {} measured point(s) matched, {unmatched} had no projected point with the same parameters.</p>\n",
        pairs.len()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    fn fixture(name: &str) -> Results {
        let path = format!(
            "{}/tests/data/results/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn report(rs: &[Results]) -> String {
        String::from_utf8(render(rs).unwrap()).unwrap()
    }

    #[test]
    fn report_is_self_contained() {
        let html = report(&[fixture("sweep"), fixture("measured")]);
        for banned in [
            "<script", "<link", "<img", "<iframe", "@import", "url(", "src=",
        ] {
            assert!(!html.contains(banned), "the report contains {banned}");
        }
        // the only URL is the SVG namespace, which is never fetched
        let urls = html.matches("http").count();
        assert_eq!(urls, html.matches("http://www.w3.org/2000/svg").count());
        // every chart is inline SVG that parses on its own
        let mut charts = 0;
        for (start, _) in html.match_indices("<svg ") {
            let end = start + html[start..].find("</svg>").unwrap() + "</svg>".len();
            roxmltree::Document::parse(&html[start..end]).unwrap();
            charts += 1;
        }
        assert_eq!(charts, 7);
        assert!(html.contains("<h3>SLO verdicts</h3>"));
        assert!(html.contains("<h3>Projected against measured: guide-10k</h3>"));
        assert!(html.contains("measured values lie in the projection's confidence interval"));
    }

    #[test]
    fn report_escapes_every_text() {
        let mut r = fixture("no-load");
        r.experiment = "<img src=x onerror=alert(1)> & co".into();
        r.warnings = vec!["<b>bold</b>".into()];
        r.resolved_experiment["description"] = "\"quoted\" <i>".into();
        let html = report(&[r]);
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>bold"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; &amp; co"));
        assert!(html.contains("&quot;quoted&quot; &lt;i&gt;"));
        // charts that do not apply are listed with the reason
        assert!(html.contains("Not drawn:"));
        assert!(html.contains("the sweep has no load axis"));
    }
}
