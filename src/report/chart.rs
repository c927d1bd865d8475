//! Capacity charts: pure renderers from results documents to SVG or PNG bytes.
//!
//! Which charts a document supports follows from its sweep axes: the load axis (`clients.users`
//! or `clients.rate_per_s`) is the x axis of every chart "against load", and each combination of
//! the other axes is one *configuration*, drawn as one series. [`plan`] says which charts apply
//! and why the others are skipped; [`render`] draws one; [`jobs`] lists every file to draw from
//! several documents.
//! Nothing here touches a file: the caller writes the bytes.
//!
//! Text on PNGs needs a font. The renderer embeds DejaVu Sans (assets/fonts, Bitstream Vera
//! licence, see assets/fonts/LICENSE-DejaVu) through plotters' `ab_glyph` backend, so charts
//! look the same on every machine without fontconfig or an installed font package; SVGs name
//! the same family with `sans-serif` as the fallback.

use super::{value_text, MetricOut, PointOut, Results};
use crate::sim::CAUSES;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;
use std::sync::OnceLock;

/// The font family every text is drawn in (registered under this name and `sans-serif`).
const FONT: &str = "DejaVu Sans, sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Paths of the sweep axes that are a load, in order of preference.
pub const LOAD_AXES: &[&str] = &["clients.users", "clients.rate_per_s"];

/// The guide's configuration, marked on heatmaps whose axes include these paths.
const GUIDE: &[(&str, f64)] = &[
    ("app.pools.primary.max_size", 35.0),
    ("app.pools.replica.max_size", 35.0),
    ("pgbouncer.default_pool_size", 35.0),
];

/// Utilisation panels: metric, title, unit scale (fractions become percent).
const UTILIZATION: &[(&str, &str, f64)] = &[
    ("app_pool_utilization", "app pool utilisation (%)", 100.0),
    (
        "bouncer_server_utilization",
        "bouncer server utilisation (%)",
        100.0,
    ),
    (
        "postgres_slot_utilization",
        "PostgreSQL slot utilisation (%)",
        100.0,
    ),
    ("acquire_wait_p95_ms", "acquire wait P95 (ms)", 1.0),
];

/// Limits that keep a chart readable; past them the chart is skipped with the reason.
const MAX_CONFIGS: usize = 40;
const MAX_PANELS: usize = 16;
const MAX_POINTS_BY_POINT: usize = 60;

/// Colours of the configurations (Tableau 10), repeated past ten.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Colours of the failure causes, in `CAUSES` order.
const CAUSE_COLORS: [RGBColor; 12] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(31, 119, 180),
    RGBColor(23, 190, 207),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(44, 160, 44),
    RGBColor(127, 127, 127),
    RGBColor(255, 187, 120),
    RGBColor(0, 0, 0),
];
const SLO_COLOR: RGBColor = RGBColor(200, 0, 0);
const GRID: RGBColor = RGBColor(225, 225, 225);
const MUTED: RGBColor = RGBColor(90, 90, 90);
const PASS: RGBColor = RGBColor(166, 219, 160);
const UNCERTAIN: RGBColor = RGBColor(254, 224, 139);
const FAIL: RGBColor = RGBColor(244, 165, 130);
const NO_DATA: RGBColor = RGBColor(240, 240, 240);

/// Width of the legend column on the right of every chart: legends never cover data.
const LEGEND_W: u32 = 390;
const HEADER_H: u32 = 90;

/// The title block's height: the overlay names two documents, one line each.
fn header_h(kind: ChartKind) -> u32 {
    if kind == ChartKind::ProjectedVsMeasured {
        HEADER_H + 24
    } else {
        HEADER_H
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The results cannot support this chart (no load axis, no SLO, …): a reason, not a failure.
    #[error("not drawn: {0}")]
    NotApplicable(String),
    #[error("drawing failed: {0}")]
    Drawing(String),
    #[error("PNG encoding failed: {0}")]
    Png(String),
    #[error("the embedded font could not be loaded")]
    Font,
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        ChartError::Drawing(e.to_string())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Svg,
    Png,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Svg => "svg",
            ImageFormat::Png => "png",
        }
    }
}

/// The charts poolsim draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartKind {
    Throughput,
    Latency,
    Failures,
    Heatmap,
    Frontier,
    Utilization,
    /// Latency percentiles at every point: the fallback when there is nothing to plot against
    /// load (a single point, or a sweep that does not vary the load).
    LatencyByPoint,
    ProjectedVsMeasured,
}

impl ChartKind {
    /// The charts of one results document, in the order they are presented.
    pub const SINGLE: [ChartKind; 7] = [
        ChartKind::Throughput,
        ChartKind::Latency,
        ChartKind::Failures,
        ChartKind::Heatmap,
        ChartKind::Frontier,
        ChartKind::Utilization,
        ChartKind::LatencyByPoint,
    ];

    /// The file stem of the chart (`throughput` → throughput.svg).
    pub fn stem(self) -> &'static str {
        match self {
            ChartKind::Throughput => "throughput",
            ChartKind::Latency => "latency",
            ChartKind::Failures => "failures",
            ChartKind::Heatmap => "heatmap",
            ChartKind::Frontier => "frontier",
            ChartKind::Utilization => "utilization",
            ChartKind::LatencyByPoint => "latency-by-point",
            ChartKind::ProjectedVsMeasured => "projected-vs-measured",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ChartKind::Throughput => "Throughput against load",
            ChartKind::Latency => "P95 and P99 latency against load",
            ChartKind::Failures => "Failure rate by cause against load",
            ChartKind::Heatmap => "P95 latency and SLO verdict by pool sizes",
            ChartKind::Frontier => "Capacity frontier: largest load that passes every SLO",
            ChartKind::Utilization => "Pool utilisation and acquire wait against load",
            ChartKind::LatencyByPoint => "Latency percentiles at each point",
            ChartKind::ProjectedVsMeasured => "Projected against measured",
        }
    }
}

/// A chart that was not drawn, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub kind: ChartKind,
    pub why: String,
}

/// Which charts `r` supports (in presentation order), and why the others are skipped.
/// `measured`, when given, adds the projected-against-measured overlay.
pub fn plan(r: &Results, measured: Option<&Results>) -> (Vec<ChartKind>, Vec<Skipped>) {
    let s = Sweep::new(r);
    let mut kinds = Vec::new();
    let mut skipped = Vec::new();
    let load_charts = s.need_load().is_ok();
    let mut consider = ChartKind::SINGLE.to_vec();
    if measured.is_some() {
        consider.push(ChartKind::ProjectedVsMeasured);
    }
    for kind in consider {
        if kind == ChartKind::LatencyByPoint && load_charts {
            continue; // the charts against load say all it would
        }
        match applicable(kind, &s, measured) {
            Ok(()) => kinds.push(kind),
            Err(why) => skipped.push(Skipped { kind, why }),
        }
    }
    (kinds, skipped)
}

/// Draw one chart. `measured` is used by [`ChartKind::ProjectedVsMeasured`] only.
pub fn render(
    kind: ChartKind,
    r: &Results,
    measured: Option<&Results>,
    format: ImageFormat,
) -> Result<Vec<u8>, ChartError> {
    let s = Sweep::new(r);
    applicable(kind, &s, measured).map_err(ChartError::NotApplicable)?;
    let size = size_of(kind, &s);
    ensure_font()?;
    match format {
        ImageFormat::Svg => {
            let mut buf = String::new();
            {
                let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
                draw(kind, &root, &s, measured)?;
                root.present()?;
            }
            Ok(buf.into_bytes())
        }
        ImageFormat::Png => {
            let mut rgb = vec![255u8; size.0 as usize * size.1 as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                draw(kind, &root, &s, measured)?;
                root.present()?;
            }
            encode_png(&rgb, size)
        }
    }
}

/// Several results documents, grouped: each projected document with the measured documents that
/// belong to it (same experiment name, or the only projected document). A measured document with
/// no projection to compare with stands alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Index of the document the charts are drawn from.
    pub primary: usize,
    /// Indices of the measured documents to overlay on it.
    pub measured: Vec<usize>,
}

pub fn groups(rs: &[Results]) -> Vec<Group> {
    let is_measured = |r: &Results| r.source == "measured";
    let projected: Vec<usize> = (0..rs.len()).filter(|&i| !is_measured(&rs[i])).collect();
    let mut out: Vec<Group> = projected
        .iter()
        .map(|&i| Group {
            primary: i,
            measured: Vec::new(),
        })
        .collect();
    for m in (0..rs.len()).filter(|&i| is_measured(&rs[i])) {
        let same_name = projected
            .iter()
            .position(|&p| rs[p].experiment == rs[m].experiment);
        let target = same_name.or((projected.len() == 1).then_some(0));
        match target {
            Some(g) => out[g].measured.push(m),
            None => out.push(Group {
                primary: m,
                measured: Vec::new(),
            }),
        }
    }
    out
}

/// One chart file to draw from a set of results documents.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// File name without extension: the chart's stem, prefixed by the document's label when
    /// there are several documents.
    pub stem: String,
    pub kind: ChartKind,
    /// Indices of the documents drawn from.
    pub primary: usize,
    pub measured: Option<usize>,
}

impl Job {
    pub fn render(&self, rs: &[Results], format: ImageFormat) -> Result<Vec<u8>, ChartError> {
        render(
            self.kind,
            &rs[self.primary],
            self.measured.map(|m| &rs[m]),
            format,
        )
    }
}

/// Every chart to draw from `rs` (see [`groups`]), and the skipped ones as `stem: why`.
pub fn jobs(rs: &[Results]) -> (Vec<Job>, Vec<String>) {
    let groups = groups(rs);
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for g in &groups {
        let r = &rs[g.primary];
        let mut prefix = String::new();
        if groups.len() > 1 {
            let base = file_label(r);
            let mut label = base.clone();
            let mut k = 2;
            while !used.insert(label.clone()) {
                label = format!("{base}-{k}");
                k += 1;
            }
            prefix = format!("{label}-");
        }
        let (kinds, skip) = plan(r, None);
        for s in skip {
            skipped.push(format!("{prefix}{}: {}", s.kind.stem(), s.why));
        }
        for kind in kinds {
            jobs.push(Job {
                stem: format!("{prefix}{}", kind.stem()),
                kind,
                primary: g.primary,
                measured: None,
            });
        }
        for (j, &m) in g.measured.iter().enumerate() {
            let suffix = if g.measured.len() > 1 {
                format!("-{}", j + 1)
            } else {
                String::new()
            };
            let kind = ChartKind::ProjectedVsMeasured;
            jobs.push(Job {
                stem: format!("{prefix}{}{suffix}", kind.stem()),
                kind,
                primary: g.primary,
                measured: Some(m),
            });
        }
    }
    (jobs, skipped)
}

/// A file-name-safe label for a results document: its experiment name, plus `-measured`.
fn file_label(r: &Results) -> String {
    let mut s: String = r
        .experiment
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() {
        s.push_str("results");
    }
    if r.source == "measured" {
        s.push_str("-measured");
    }
    s
}

/// The projected point with the same parameters as `measured`, if any.
pub fn matching_point<'a>(projected: &'a Results, measured: &PointOut) -> Option<&'a PointOut> {
    projected
        .points
        .iter()
        .find(|p| p.params == measured.params)
}

/// One line saying what was simulated (or measured): experiment, source, seed, replications, CI.
pub fn describe(r: &Results) -> String {
    let mut s = format!(
        "{} — {}, seed {}, {} replication{} per point, {} % confidence intervals",
        r.experiment,
        r.source,
        r.seed,
        r.replications,
        if r.replications == 1 { "" } else { "s" },
        tick(r.confidence * 100.0)
    );
    if let Some(sh) = &r.shard {
        s.push_str(&format!(", shard {sh}"));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// The sweep as the charts see it

struct Load {
    path: String,
    /// `users`, `requests/s`.
    unit: &'static str,
    /// Axis description with its unit.
    desc: &'static str,
    values: Vec<f64>,
}

struct Config<'a> {
    label: String,
    /// Values of the configuration axes, in axis order.
    key: Vec<Value>,
    /// (load, point), by increasing load; load 0 when there is no load axis.
    points: Vec<(f64, &'a PointOut)>,
}

struct Sweep<'a> {
    r: &'a Results,
    load: Option<Load>,
    /// Configuration axes: (path, short label).
    axes: Vec<(String, String)>,
    configs: Vec<Config<'a>>,
}

impl<'a> Sweep<'a> {
    fn new(r: &'a Results) -> Self {
        let load_axis = LOAD_AXES
            .iter()
            .find_map(|l| r.axes.iter().find(|a| a.path == *l));
        let load = load_axis.map(|a| {
            let mut values: Vec<f64> = a.values.iter().filter_map(Value::as_f64).collect();
            values.sort_by(f64::total_cmp);
            values.dedup();
            let users = a.path == "clients.users";
            Load {
                path: a.path.clone(),
                unit: if users { "users" } else { "requests/s" },
                desc: if users {
                    "load: concurrent users"
                } else {
                    "load: offered requests/s"
                },
                values,
            }
        });
        let cfg_axes: Vec<&super::Axis> = r
            .axes
            .iter()
            .filter(|a| load.as_ref().is_none_or(|l| l.path != a.path))
            .collect();
        let paths: Vec<String> = cfg_axes.iter().map(|a| a.path.clone()).collect();
        let labels = super::table::axis_labels(&paths);
        let axes: Vec<(String, String)> = paths.into_iter().zip(labels).collect();
        let mut configs: Vec<(Vec<usize>, Config<'a>)> = Vec::new();
        for p in &r.points {
            let key: Vec<Value> = axes
                .iter()
                .map(|(path, _)| p.params.get(path).cloned().unwrap_or(Value::Null))
                .collect();
            let x = load
                .as_ref()
                .and_then(|l| p.params.get(&l.path))
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            match configs.iter_mut().find(|(_, c)| c.key == key) {
                Some((_, c)) => c.points.push((x, p)),
                None => {
                    let order = cfg_axes
                        .iter()
                        .zip(&key)
                        .map(|(a, v)| a.values.iter().position(|w| w == v).unwrap_or(usize::MAX))
                        .collect();
                    let label = if axes.is_empty() {
                        "base configuration".to_string()
                    } else {
                        axes.iter()
                            .zip(&key)
                            .map(|((_, l), v)| format!("{l}={}", value_text(v)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    configs.push((
                        order,
                        Config {
                            label,
                            key,
                            points: vec![(x, p)],
                        },
                    ));
                }
            }
        }
        configs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut configs: Vec<Config<'a>> = configs.into_iter().map(|(_, c)| c).collect();
        for c in &mut configs {
            c.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Sweep {
            r,
            load,
            axes,
            configs,
        }
    }

    /// The load axis, when it has at least two values to draw against.
    fn need_load(&self) -> Result<&Load, String> {
        match &self.load {
            None => Err(format!(
                "the sweep has no load axis ({}): nothing to plot against load",
                LOAD_AXES.join(" or ")
            )),
            Some(l) if l.values.len() < 2 => Err(format!(
                "the sweep has a single load value ({} = {}): nothing to plot against load",
                l.path,
                l.values.first().map_or("?".into(), |v| tick(*v))
            )),
            Some(l) => Ok(l),
        }
    }

    fn need_configs(&self) -> Result<(), String> {
        if self.configs.len() > MAX_CONFIGS {
            Err(format!(
                "{} configurations are too many to tell apart (at most {MAX_CONFIGS})",
                self.configs.len()
            ))
        } else {
            Ok(())
        }
    }

    /// The series of one metric for configuration `c`: (load, interval) scaled by `scale`.
    fn series(&self, c: &Config, metric: &str, scale: f64) -> Vec<(f64, MetricOut)> {
        c.points
            .iter()
            .filter_map(|(x, p)| {
                p.metric(metric).map(|m| {
                    (
                        *x,
                        MetricOut {
                            mean: m.mean * scale,
                            low: m.low * scale,
                            high: m.high * scale,
                            half_width: m.half_width.map(|h| h * scale),
                        },
                    )
                })
            })
            .collect()
    }

    fn has_slo(&self) -> bool {
        self.r.points.iter().any(|p| !p.slo.is_empty())
    }
}

/// The threshold of SLO `name` at a point.
fn slo_threshold(p: &PointOut, name: &str) -> Option<f64> {
    p.slo.iter().find(|s| s.slo == name).map(|s| s.threshold)
}

/// The threshold of SLO `name` at each tested load (from the first point at that load).
fn slo_by_load(c: &Config, name: &str, scale: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (x, p) in &c.points {
        if let Some(t) = slo_threshold(p, name) {
            if out.last().is_none_or(|l| l.0 != *x) {
                out.push((*x, t * scale));
            }
        }
    }
    out
}

/// The threshold line as drawn: each tested load's threshold holds until the next tested load
/// (thresholds such as `p95_ms_by_users` are steps, known here only at the tested loads).
fn steps(t: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for (i, &(x, y)) in t.iter().enumerate() {
        if i > 0 {
            out.push((x, t[i - 1].1));
        }
        out.push((x, y));
    }
    out
}

/// Where a series first rises above a stepped threshold (see [`steps`]), interpolating between
/// tested loads — in log space when the y axis is logarithmic, so the mark sits on the drawn lines.
fn crossing(series: &[(f64, f64)], threshold: &[(f64, f64)], log: bool) -> Option<(f64, f64)> {
    let f = |v: f64| if log { v.max(1e-9).ln() } else { v };
    let th_at = |x: f64| threshold.iter().find(|t| t.0 == x).map(|t| t.1);
    let pts: Vec<(f64, f64, f64)> = series
        .iter()
        .filter_map(|&(x, y)| th_at(x).map(|t| (x, y, t)))
        .collect();
    if pts.first().is_some_and(|p| p.1 > p.2) {
        return Some((pts[0].0, pts[0].2)); // already above at the lowest load
    }
    for w in pts.windows(2) {
        let (x0, y0, t0) = w[0];
        let (x1, y1, t1) = w[1];
        let d0 = f(y0) - f(t0);
        let d1 = f(y1) - f(t0);
        if d0 <= 0.0 && d1 > 0.0 {
            let u = d0 / (d0 - d1);
            return Some((x0 + u * (x1 - x0), t0));
        }
        if y1 > t1 {
            return Some((x1, t1)); // the threshold steps down under the series
        }
    }
    None
}

/// `x` to three significant digits, for "about" figures.
fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let p = 10f64.powi(x.abs().log10().floor() as i32 - 2);
    (x / p).round() * p
}

/// Why `kind` cannot be drawn from these results, if it cannot.
fn applicable(kind: ChartKind, s: &Sweep, measured: Option<&Results>) -> Result<(), String> {
    if s.r.points.is_empty() {
        return Err("the results have no points".into());
    }
    match kind {
        ChartKind::Throughput | ChartKind::Latency | ChartKind::Utilization => {
            s.need_load()?;
            s.need_configs()
        }
        ChartKind::Failures => {
            s.need_load()?;
            if s.configs.len() > MAX_PANELS {
                return Err(format!(
                    "{} configurations are too many for one panel each (at most {MAX_PANELS})",
                    s.configs.len()
                ));
            }
            if failure_causes(s).is_empty() {
                return Err("no request failed at any point (every failure rate is 0)".into());
            }
            Ok(())
        }
        ChartKind::Heatmap => heatmap_layout(s).map(|_| ()),
        ChartKind::Frontier => {
            s.need_load()?;
            s.need_configs()?;
            if !s.has_slo() {
                return Err("the experiment defines no SLO".into());
            }
            Ok(())
        }
        ChartKind::LatencyByPoint => {
            if s.r.points.len() > MAX_POINTS_BY_POINT {
                return Err(format!(
                    "{} points are too many for one row each (at most {MAX_POINTS_BY_POINT})",
                    s.r.points.len()
                ));
            }
            Ok(())
        }
        ChartKind::ProjectedVsMeasured => {
            let m = measured.ok_or("no measured results were given")?;
            s.need_load()?;
            s.need_configs()?;
            if m.points.iter().all(|p| matching_point(s.r, p).is_none()) {
                return Err(format!(
                    "no measured point of {} has the parameters of a projected point of {}",
                    m.experiment, s.r.experiment
                ));
            }
            Ok(())
        }
    }
}

fn failure_causes(s: &Sweep) -> Vec<usize> {
    (0..CAUSES.len())
        .filter(|&i| {
            let name = format!("{}_rate", CAUSES[i].name());
            s.r.points.iter().any(|p| p.mean(&name) > 0.0)
        })
        .collect()
}

struct HeatmapLayout {
    /// Indices into `Sweep::axes` of the x and y axes.
    x: usize,
    y: usize,
    /// The values of each axis, as numbers, in axis order.
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// One panel per combination of the other axes: (caption, point indices).
    panels: Vec<(String, Vec<usize>)>,
}

fn heatmap_layout(s: &Sweep) -> Result<HeatmapLayout, String> {
    let numeric = |path: &str| -> Option<Vec<f64>> {
        let a = s.r.axes.iter().find(|a| a.path == path)?;
        let v: Vec<f64> = a.values.iter().filter_map(Value::as_f64).collect();
        (v.len() == a.values.len() && v.len() >= 2).then_some(v)
    };
    let candidates: Vec<(usize, Vec<f64>)> = s
        .axes
        .iter()
        .enumerate()
        .filter_map(|(i, (p, _))| numeric(p).map(|v| (i, v)))
        .collect();
    if candidates.len() < 2 {
        let has = match candidates.first() {
            None => "none".to_string(),
            Some((i, _)) => format!("only {}", s.axes[*i].0),
        };
        return Err(format!(
            "a heatmap needs two swept numeric axes besides the load; this sweep has {has}"
        ));
    }
    let (x, xs) = candidates[0].clone();
    let (y, ys) = candidates[1].clone();
    let (xp, yp) = (&s.axes[x].0, &s.axes[y].0);
    // panels: the load first, then every other axis
    let mut panels: Vec<(Vec<f64>, String, Vec<usize>)> = Vec::new();
    for (i, p) in s.r.points.iter().enumerate() {
        let mut key = Vec::new();
        let mut caption = Vec::new();
        if let Some(l) = &s.load {
            let v = p.params.get(&l.path).and_then(Value::as_f64).unwrap_or(0.0);
            key.push(v);
            caption.push(format!("{} = {}", l.unit, tick(v)));
        }
        for (path, label) in &s.axes {
            if path == xp || path == yp {
                continue;
            }
            let v = p.params.get(path).cloned().unwrap_or(Value::Null);
            let order =
                s.r.axes
                    .iter()
                    .find(|a| &a.path == path)
                    .and_then(|a| a.values.iter().position(|w| *w == v))
                    .unwrap_or(usize::MAX);
            key.push(order as f64);
            caption.push(format!("{label} = {}", value_text(&v)));
        }
        match panels.iter_mut().find(|(k, _, _)| *k == key) {
            Some(panel) => panel.2.push(i),
            None => panels.push((key, caption.join(", "), vec![i])),
        }
    }
    if panels.len() > MAX_PANELS {
        return Err(format!(
            "{} heatmap panels are too many (at most {MAX_PANELS})",
            panels.len()
        ));
    }
    panels.sort_by(|a, b| {
        a.0.iter()
            .zip(&b.0)
            .map(|(u, v)| u.total_cmp(v))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(HeatmapLayout {
        x,
        y,
        xs,
        ys,
        panels: panels.into_iter().map(|(_, c, v)| (c, v)).collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Drawing

fn ensure_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        [FONT, "sans-serif"]
            .iter()
            .all(|name| plotters::style::register_font(name, FontStyle::Normal, FONT_BYTES).is_ok())
    });
    if ok {
        Ok(())
    } else {
        Err(ChartError::Font)
    }
}

fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc
            .write_header()
            .map_err(|e| ChartError::Png(e.to_string()))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| ChartError::Png(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| ChartError::Png(e.to_string()))?;
    }
    Ok(out)
}

fn grid_shape(n: usize, max_cols: usize) -> (usize, usize) {
    let cols = (n as f64).sqrt().ceil().clamp(1.0, max_cols as f64) as usize;
    (n.div_ceil(cols).max(1), cols)
}

fn size_of(kind: ChartKind, s: &Sweep) -> (u32, u32) {
    match kind {
        ChartKind::Failures => {
            let (rows, _) = grid_shape(s.configs.len(), 3);
            (1400, HEADER_H + 30 + rows as u32 * 330)
        }
        ChartKind::Heatmap => {
            let n = heatmap_layout(s).map_or(1, |l| l.panels.len());
            let (rows, _) = grid_shape(n, 3);
            (1400, HEADER_H + 20 + rows as u32 * 430)
        }
        ChartKind::Frontier => (1400, HEADER_H + 140 + 44 * s.configs.len() as u32),
        // tall enough for the legend
        ChartKind::LatencyByPoint => (
            1400,
            (HEADER_H + 140 + 56 * s.r.points.len() as u32).max(HEADER_H + 260),
        ),
        ChartKind::ProjectedVsMeasured => (1400, 820 + 24),
        ChartKind::Utilization => (1400, 1000),
        _ => (1400, 820),
    }
}

fn draw<DB: DrawingBackend>(
    kind: ChartKind,
    root: &DrawingArea<DB, Shift>,
    s: &Sweep,
    measured: Option<&Results>,
) -> Result<(), ChartError> {
    root.fill(&WHITE)?;
    let subtitles = match (kind, measured) {
        (ChartKind::ProjectedVsMeasured, Some(m)) => vec![
            format!("projected: {}", describe(s.r)),
            format!("measured: {}", describe(m)),
        ],
        _ => vec![describe(s.r)],
    };
    let (head, body) = root.split_vertically(header_h(kind));
    head.draw(&Text::new(
        kind.title().to_string(),
        (24, 14),
        style(24.0, BLACK, HPos::Left, VPos::Top),
    ))?;
    for (i, sub) in subtitles.into_iter().enumerate() {
        head.draw(&Text::new(
            sub,
            (24, 56 + 24 * i as i32),
            style(15.0, MUTED, HPos::Left, VPos::Top),
        ))?;
    }
    let (w, _) = body.dim_in_pixel();
    let (plot, legend) = body.split_horizontally(w.saturating_sub(LEGEND_W));
    match kind {
        ChartKind::Throughput => draw_throughput(&plot, &legend, s),
        ChartKind::Latency => draw_latency(&plot, &legend, s),
        ChartKind::Failures => draw_failures(&plot, &legend, s),
        ChartKind::Heatmap => draw_heatmap(&plot, &legend, s),
        ChartKind::Frontier => draw_frontier(&plot, &legend, s),
        ChartKind::Utilization => draw_utilization(&plot, &legend, s),
        ChartKind::LatencyByPoint => draw_latency_by_point(&plot, &legend, s),
        ChartKind::ProjectedVsMeasured => {
            draw_projected_vs_measured(&plot, &legend, s, measured.expect("checked"))
        }
    }
}

/// A text style; `size` is scaled so that SVG (CSS pixels) and PNG (glyph-height pixels) read alike
/// and stay legible when a chart is scaled down to a page.
fn style(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle {
        font: FontDesc::new(FontFamily::Name(FONT), size * 1.2, FontStyle::Normal),
        color: color.to_backend_color(),
        pos: Pos::new(h, v),
    }
}

fn color_of(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Tick and annotation numbers: thousands separated, no trailing zeros.
pub(crate) fn tick(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if x.abs() >= 1000.0 {
        return super::table::fmt_num(x);
    }
    let digits = if x.abs() >= 100.0 {
        0
    } else if x.abs() >= 10.0 {
        1
    } else if x.abs() >= 1.0 {
        2
    } else {
        ((-x.abs().log10()).floor() as usize + 2).min(8)
    };
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A y range from 0 that holds every value, with headroom.
fn linear_max(values: impl Iterator<Item = f64>) -> f64 {
    let m = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    if m <= 0.0 {
        1.0
    } else {
        m * 1.1
    }
}

/// A log range of whole decades that holds every positive value.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.1, 10.0);
    }
    // a little room, so that nothing sits on the frame
    let lo = 10f64.powf((lo * 0.95).log10().floor());
    let mut hi = 10f64.powf((hi * 1.05).log10().ceil());
    if hi <= lo {
        hi = lo * 10.0;
    }
    (lo, hi)
}

/// A linear axis ticked exactly where told (the tested loads, the cells of a heatmap). plotters'
/// own `with_key_points` loses the number formatting of the axis it wraps.
#[derive(Clone)]
struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(range: std::ops::Range<f64>, ticks: Vec<f64>) -> Self {
        Ticked {
            inner: range.into(),
            ticks,
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// The x range of a chart against load, with a little margin, ticked at the tested loads.
fn load_range(l: &Load) -> Ticked {
    let lo = l.values[0];
    let hi = l.values[l.values.len() - 1];
    let pad = (hi - lo) * 0.04;
    Ticked::new((lo - pad)..(hi + pad), l.values.clone())
}

fn mesh<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
    small: bool,
) -> Result<(), ChartError>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (label, desc) = if small { (13.0, 14.0) } else { (15.0, 17.0) };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(style(label, BLACK, HPos::Center, VPos::Center))
        .axis_desc_style(style(desc, BLACK, HPos::Center, VPos::Center))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .y_labels(8)
        .draw()?;
    Ok(())
}

fn band<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    pts: &[(f64, MetricOut)],
    color: RGBColor,
    floor: f64,
) -> Result<(), ChartError>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    if pts.len() < 2 {
        return Ok(());
    }
    let mut poly: Vec<(f64, f64)> = pts.iter().map(|(x, m)| (*x, m.high.max(floor))).collect();
    poly.extend(pts.iter().rev().map(|(x, m)| (*x, m.low.max(floor))));
    chart.draw_series(std::iter::once(Polygon::new(
        poly,
        color.mix(0.14).filled(),
    )))?;
    Ok(())
}

/// Confidence bands first (so that no band hides a line), then the mean lines with markers;
/// series `k` in colour `color(k)`, values clamped to `floor` (the bottom of a log axis).
fn series_with_bands<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    series: &[Vec<(f64, MetricOut)>],
    color: impl Fn(usize) -> RGBColor,
    floor: f64,
) -> Result<(), ChartError>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (k, pts) in series.iter().enumerate() {
        band(chart, pts, color(k), floor)?;
    }
    for (k, pts) in series.iter().enumerate() {
        let xy: Vec<(f64, f64)> = pts.iter().map(|(x, m)| (*x, m.mean.max(floor))).collect();
        line(chart, &xy, color(k))?;
    }
    Ok(())
}

/// Measured means with their intervals: ringed markers over the projected lines.
fn measured_points<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    series: &[Vec<(f64, MetricOut)>],
    color: impl Fn(usize) -> RGBColor,
    floor: f64,
) -> Result<(), ChartError>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (k, pts) in series.iter().enumerate() {
        for (x, m) in pts {
            let y = m.mean.max(floor);
            chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                *x,
                m.low.max(floor),
                y,
                m.high.max(floor),
                BLACK.stroke_width(2),
                12,
            )))?;
            chart.draw_series([
                Circle::new((*x, y), 7, WHITE.filled()),
                Circle::new((*x, y), 7, BLACK.stroke_width(2)),
                Circle::new((*x, y), 3, color(k).filled()),
            ])?;
        }
    }
    Ok(())
}

fn line<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    pts: &[(f64, f64)],
    color: RGBColor,
) -> Result<(), ChartError>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
    chart.draw_series(
        pts.iter()
            .map(|&p| Circle::new(p, 4, color.filled()).into_dyn()),
    )?;
    Ok(())
}

fn dashed<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    pts: &[(f64, f64)],
    color: RGBColor,
) -> Result<(), ChartError>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart.draw_series(DashedLineSeries::new(
        pts.iter().copied(),
        10,
        6,
        color.stroke_width(2),
    ))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Legends

enum Swatch {
    Line(RGBColor),
    Dashed(RGBColor),
    Block(RGBColor),
    Marker(RGBColor),
    Measured,
    Outline,
}

struct Entry {
    swatch: Swatch,
    label: String,
    /// A second, smaller line under the label.
    note: Option<String>,
}

impl Entry {
    fn new(swatch: Swatch, label: impl Into<String>) -> Self {
        Entry {
            swatch,
            label: label.into(),
            note: None,
        }
    }
}

fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: &str,
    entries: &[Entry],
) -> Result<(), ChartError> {
    let x0 = 10;
    let mut y = 36;
    area.draw(&Text::new(
        heading.to_string(),
        (x0, y),
        style(15.0, BLACK, HPos::Left, VPos::Center),
    ))?;
    y += 34;
    for e in entries {
        let (sx, sy) = (x0, y);
        match e.swatch {
            Swatch::Line(c) => {
                area.draw(&PathElement::new(
                    vec![(sx, sy), (sx + 28, sy)],
                    c.stroke_width(3),
                ))?;
                area.draw(&Circle::new((sx + 14, sy), 4, c.filled()))?;
            }
            Swatch::Dashed(c) => {
                for k in 0..3 {
                    area.draw(&PathElement::new(
                        vec![(sx + k * 11, sy), (sx + k * 11 + 6, sy)],
                        c.stroke_width(2),
                    ))?;
                }
            }
            Swatch::Block(c) => {
                area.draw(&Rectangle::new(
                    [(sx, sy - 8), (sx + 28, sy + 8)],
                    c.filled(),
                ))?;
            }
            Swatch::Marker(c) => {
                area.draw(&Cross::new((sx + 14, sy), 7, c.stroke_width(3)))?;
            }
            Swatch::Measured => {
                area.draw(&Circle::new((sx + 14, sy), 6, WHITE.filled()))?;
                area.draw(&Circle::new((sx + 14, sy), 6, BLACK.stroke_width(2)))?;
            }
            Swatch::Outline => {
                area.draw(&Rectangle::new(
                    [(sx + 2, sy - 9), (sx + 26, sy + 9)],
                    BLACK.stroke_width(3),
                ))?;
            }
        }
        area.draw(&Text::new(
            e.label.clone(),
            (sx + 38, sy),
            style(14.0, BLACK, HPos::Left, VPos::Center),
        ))?;
        y += 28;
        if let Some(n) = &e.note {
            area.draw(&Text::new(
                n.clone(),
                (sx + 38, y - 6),
                style(12.0, MUTED, HPos::Left, VPos::Center),
            ))?;
            y += 20;
        }
    }
    Ok(())
}

fn config_entries(s: &Sweep) -> Vec<Entry> {
    s.configs
        .iter()
        .enumerate()
        .map(|(i, c)| Entry::new(Swatch::Line(color_of(i)), c.label.clone()))
        .collect()
}

fn ci_label(s: &Sweep) -> String {
    format!(
        "band: {} % confidence interval",
        tick(s.r.confidence * 100.0)
    )
}

// ---------------------------------------------------------------------------------------------
// The charts

fn draw_throughput<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    legend_area: &DrawingArea<DB, Shift>,
    s: &Sweep,
) -> Result<(), ChartError> {
    let load = s.need_load().map_err(ChartError::NotApplicable)?;
    let series: Vec<Vec<(f64, MetricOut)>> = s
        .configs
        .iter()
        .map(|c| s.series(c, "throughput_rps", 1.0))
        .collect();
    let ymax = linear_max(series.iter().flatten().map(|(_, m)| m.high.max(m.mean)));
    let mut chart = ChartBuilder::on(plot)
        .margin(16)
        .x_label_area_size(66)
        .y_label_area_size(104)
        .build_cartesian_2d(load_range(load), 0.0..ymax)?;
    mesh(&mut chart, load.desc, "throughput (requests/s)", false)?;
    series_with_bands(&mut chart, &series, color_of, 0.0)?;
    let mut entries = config_entries(s);
    entries.push(Entry::new(
        Swatch::Block(RGBColor(200, 200, 200)),
        ci_label(s),
    ));
    legend(legend_area, "configuration", &entries)
}

fn draw_latency<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    legend_area: &DrawingArea<DB, Shift>,
    s: &Sweep,
) -> Result<(), ChartError> {
    let load = s.need_load().map_err(ChartError::NotApplicable)?;
    let panels = plot.split_evenly((1, 2));
    let p95: Vec<Vec<(f64, MetricOut)>> = s
        .configs
        .iter()
        .map(|c| s.series(c, "latency_p95_ms", 1.0))
        .collect();
    let p99: Vec<Vec<(f64, MetricOut)>> = s
        .configs
        .iter()
        .map(|c| s.series(c, "latency_p99_ms", 1.0))
        .collect();
    let slo: Vec<Vec<(f64, f64)>> = s
        .configs
        .iter()
        .map(|c| slo_by_load(c, "p95_ms", 1.0))
        .collect();
    // one y range for both panels, so they compare at a glance
    let (lo, hi) = log_range(
        p95.iter()
            .chain(&p99)
            .flatten()
            .flat_map(|(_, m)| [m.mean, m.low, m.high])
            .chain(slo.iter().flatten().map(|t| t.1)),
    );
    let mut crossings: Vec<Option<(f64, f64)>> = Vec::new();
    for (panel, (series, name)) in panels.iter().zip([(&p95, "P95"), (&p99, "P99")]) {
        let mut chart = ChartBuilder::on(panel)
            .margin(16)
            .caption(
                format!("{name} latency"),
                style(18.0, BLACK, HPos::Center, VPos::Top),
            )
            .x_label_area_size(66)
            .y_label_area_size(96)
            .build_cartesian_2d(load_range(load), (lo..hi).log_scale())?;
        mesh(
            &mut chart,
            load.desc,
            &format!("{name} latency (ms, log scale)"),
            false,
        )?;
        series_with_bands(&mut chart, series, color_of, lo)?;
        if name == "P95" {
            // thresholds depend on the load only: draw the first configuration's
            if let Some(t) = slo.iter().find(|t| !t.is_empty()) {
                dashed(&mut chart, &steps(t), SLO_COLOR)?;
            }
            for (i, (pts, t)) in series.iter().zip(&slo).enumerate() {
                let xy: Vec<(f64, f64)> = pts.iter().map(|(x, m)| (*x, m.mean)).collect();
                let c = crossing(&xy, t, true);
                if let Some(p) = c {
                    chart.draw_series(std::iter::once(Cross::new(
                        p,
                        9,
                        color_of(i).stroke_width(3),
                    )))?;
                    chart.draw_series(std::iter::once(Circle::new(
                        p,
                        11,
                        BLACK.stroke_width(1),
                    )))?;
                }
                crossings.push(c);
            }
        }
    }
    let mut entries: Vec<Entry> = s
        .configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut e = Entry::new(Swatch::Line(color_of(i)), c.label.clone());
            e.note = crossings.get(i).copied().flatten().map(|(x, _)| {
                format!(
                    "P95 crosses the SLO at ≈ {} {}",
                    tick(round_sig(x)),
                    load.unit
                )
            });
            e
        })
        .collect();
    if slo.iter().any(|t| !t.is_empty()) {
        entries.push(Entry::new(Swatch::Dashed(SLO_COLOR), "SLO: P95 threshold"));
        entries.push(Entry::new(
            Swatch::Marker(BLACK),
            "where P95 crosses the SLO",
        ));
    }
    entries.push(Entry::new(
        Swatch::Block(RGBColor(200, 200, 200)),
        ci_label(s),
    ));
    legend(legend_area, "configuration", &entries)
}

fn draw_failures<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    legend_area: &DrawingArea<DB, Shift>,
    s: &Sweep,
) -> Result<(), ChartError> {
    let load = s.need_load().map_err(ChartError::NotApplicable)?;
    let causes = failure_causes(s);
    let (rows, cols) = grid_shape(s.configs.len(), 3);
    let panels = plot.split_evenly((rows, cols));
    // stacked means, in percent, per configuration: stacks[c][k] = cumulative after cause k
    let stacks: Vec<Vec<Vec<(f64, f64)>>> = s
        .configs
        .iter()
        .map(|c| {
            let mut cum: Vec<(f64, f64)> = c.points.iter().map(|(x, _)| (*x, 0.0)).collect();
            causes
                .iter()
                .map(|&k| {
                    let name = format!("{}_rate", CAUSES[k].name());
                    for (slot, (_, p)) in cum.iter_mut().zip(&c.points) {
                        slot.1 += p.mean(&name).max(0.0) * 100.0;
                    }
                    cum.clone()
                })
                .collect()
        })
        .collect();
    let slo: Option<Vec<(f64, f64)>> = s
        .configs
        .iter()
        .map(|c| slo_by_load(c, "failure_rate", 100.0))
        .find(|t| !t.is_empty());
    let ymax = linear_max(
        stacks
            .iter()
            .filter_map(|st| st.last())
            .flatten()
            .map(|p| p.1)
            .chain(slo.iter().flatten().map(|t| t.1)),
    );
    for (c, (panel, stack)) in s.configs.iter().zip(panels.iter().zip(&stacks)) {
        let mut chart = ChartBuilder::on(panel)
            .margin(10)
            .caption(c.label.clone(), style(14.0, BLACK, HPos::Center, VPos::Top))
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(load_range(load), 0.0..ymax)?;
        mesh(&mut chart, load.desc, "failed requests (%)", true)?;
        let mut below: Vec<(f64, f64)> = c.points.iter().map(|(x, _)| (*x, 0.0)).collect();
        for (layer, &k) in stack.iter().zip(&causes) {
            let mut poly = layer.clone();
            poly.extend(below.iter().rev().copied());
            chart.draw_series(std::iter::once(Polygon::new(
                poly,
                CAUSE_COLORS[k].mix(0.85).filled(),
            )))?;
            below = layer.clone();
        }
        if let Some(top) = stack.last() {
            chart.draw_series(LineSeries::new(top.iter().copied(), BLACK.stroke_width(1)))?;
        }
        if let Some(t) = &slo {
            dashed(&mut chart, &steps(t), SLO_COLOR)?;
        }
    }
    let mut entries: Vec<Entry> = causes
        .iter()
        .rev() // top of the stack first, as drawn
        .map(|&k| Entry::new(Swatch::Block(CAUSE_COLORS[k]), CAUSES[k].name()))
        .collect();
    if slo.is_some() {
        entries.push(Entry::new(Swatch::Dashed(SLO_COLOR), "SLO: failure rate"));
    }
    legend(legend_area, "cause (stacked means)", &entries)
}

fn verdict_color(v: &str) -> RGBColor {
    match v {
        "pass" => PASS,
        "uncertain" => UNCERTAIN,
        "fail" => FAIL,
        _ => NO_DATA,
    }
}

/// A yellow-to-red ramp for P95 when there is no SLO to judge it by.
fn ramp(v: f64, lo: f64, hi: f64) -> RGBColor {
    let t = if hi > lo && v > 0.0 {
        ((v.ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(255.0, 189.0), mix(237.0, 0.0), mix(160.0, 38.0))
}

fn draw_heatmap<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    legend_area: &DrawingArea<DB, Shift>,
    s: &Sweep,
) -> Result<(), ChartError> {
    let lay = heatmap_layout(s).map_err(ChartError::NotApplicable)?;
    let (xp, xl) = &s.axes[lay.x];
    let (yp, yl) = &s.axes[lay.y];
    let by_verdict =
        s.r.points
            .iter()
            .any(|p| matches!(p.verdict.as_str(), "pass" | "fail" | "uncertain"));
    let p95s: Vec<f64> =
        s.r.points
            .iter()
            .map(|p| p.mean("latency_p95_ms"))
            .collect();
    let (plo, phi) = log_range(p95s.iter().copied());
    let guide_x = GUIDE.iter().find(|g| g.0 == xp).map(|g| g.1);
    let guide_y = GUIDE.iter().find(|g| g.0 == yp).map(|g| g.1);
    let guide = match (guide_x, guide_y) {
        (Some(gx), Some(gy)) => lay
            .xs
            .iter()
            .position(|v| *v == gx)
            .zip(lay.ys.iter().position(|v| *v == gy)),
        _ => None,
    };
    let (rows, cols) = grid_shape(lay.panels.len(), 3);
    let areas = plot.split_evenly((rows, cols));
    let nx = lay.xs.len();
    let ny = lay.ys.len();
    let xticks: Vec<f64> = (0..nx).map(|i| i as f64 + 0.5).collect();
    let yticks: Vec<f64> = (0..ny).map(|i| i as f64 + 0.5).collect();
    let xfmt = |v: &f64| {
        lay.xs
            .get(v.floor() as usize)
            .map(|x| tick(*x))
            .unwrap_or_default()
    };
    let yfmt = |v: &f64| {
        lay.ys
            .get(v.floor() as usize)
            .map(|y| tick(*y))
            .unwrap_or_default()
    };
    for ((caption, idx), area) in lay.panels.iter().zip(&areas) {
        let mut chart = ChartBuilder::on(area)
            .margin(14)
            .caption(caption.clone(), style(16.0, BLACK, HPos::Center, VPos::Top))
            .x_label_area_size(62)
            .y_label_area_size(84)
            .build_cartesian_2d(
                Ticked::new(0.0..nx as f64, xticks.clone()),
                Ticked::new(0.0..ny as f64, yticks.clone()),
            )?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(xl.as_str())
            .y_desc(yl.as_str())
            .label_style(style(14.0, BLACK, HPos::Center, VPos::Center))
            .axis_desc_style(style(15.0, BLACK, HPos::Center, VPos::Center))
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .draw()?;
        for &i in idx {
            let p = &s.r.points[i];
            let xv = p.params.get(xp).and_then(Value::as_f64);
            let yv = p.params.get(yp).and_then(Value::as_f64);
            let (Some(cx), Some(cy)) = (
                xv.and_then(|v| lay.xs.iter().position(|w| *w == v)),
                yv.and_then(|v| lay.ys.iter().position(|w| *w == v)),
            ) else {
                continue;
            };
            let p95 = p.mean("latency_p95_ms");
            let fill = if by_verdict {
                verdict_color(&p.verdict)
            } else {
                ramp(p95, plo, phi)
            };
            let (x0, y0) = (cx as f64, cy as f64);
            chart.draw_series([
                Rectangle::new([(x0, y0), (x0 + 1.0, y0 + 1.0)], fill.filled()),
                Rectangle::new([(x0, y0), (x0 + 1.0, y0 + 1.0)], WHITE.stroke_width(2)),
            ])?;
            let mut lines = vec![format!("{} ms", tick(p95))];
            if by_verdict {
                lines.push(p.verdict.clone());
            }
            for (k, t) in lines.iter().enumerate() {
                let dy = (k as f64 - (lines.len() as f64 - 1.0) / 2.0) * 0.16;
                chart.draw_series(std::iter::once(Text::new(
                    t.clone(),
                    (x0 + 0.5, y0 + 0.5 - dy),
                    style(
                        if k == 0 { 16.0 } else { 13.0 },
                        BLACK,
                        HPos::Center,
                        VPos::Center,
                    ),
                )))?;
            }
        }
        if let Some((gx, gy)) = guide {
            let (x0, y0) = (gx as f64, gy as f64);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0 + 0.03, y0 + 0.03), (x0 + 0.97, y0 + 0.97)],
                BLACK.stroke_width(4),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                "guide".to_string(),
                (x0 + 0.5, y0 + 0.14),
                style(12.0, BLACK, HPos::Center, VPos::Center),
            )))?;
        }
    }
    let mut entries = Vec::new();
    if by_verdict {
        entries.push(Entry::new(Swatch::Block(PASS), "pass: every SLO met"));
        entries.push(Entry::new(
            Swatch::Block(UNCERTAIN),
            "uncertain: CI straddles a threshold",
        ));
        entries.push(Entry::new(Swatch::Block(FAIL), "fail: an SLO is missed"));
    } else {
        entries.push(Entry::new(
            Swatch::Block(ramp(plo, plo, phi)),
            format!("P95 ≤ {} ms", tick(plo)),
        ));
        entries.push(Entry::new(
            Swatch::Block(ramp(phi, plo, phi)),
            format!("P95 ≥ {} ms", tick(phi)),
        ));
    }
    if let (Some(gx), Some(gy)) = (guide_x, guide_y) {
        let mut e = Entry::new(Swatch::Outline, "the guide's configuration");
        e.note = Some(format!("{xl}={}, {yl}={}", tick(gx), tick(gy)));
        entries.push(e);
    }
    legend(legend_area, "cell: P95 latency, verdict", &entries)
}

fn draw_frontier<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    legend_area: &DrawingArea<DB, Shift>,
    s: &Sweep,
) -> Result<(), ChartError> {
    let load = s.need_load().map_err(ChartError::NotApplicable)?;
    let n = s.configs.len();
    let max_load = load.values[load.values.len() - 1];
    let label_w = s
        .configs
        .iter()
        .map(|c| c.label.chars().count())
        .max()
        .unwrap_or(10) as u32
        * 10
        + 24;
    let yticks: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
    // 0 is where the bars start; left out when it would crowd the first tested load
    let mut xticks = Vec::new();
    if load.values[0] > max_load * 0.1 {
        xticks.push(0.0);
    }
    xticks.extend(load.values.iter().copied());
    let labels: Vec<String> = s.configs.iter().map(|c| c.label.clone()).collect();
    let yfmt = |v: &f64| {
        // the first configuration at the top
        let i = v.floor() as usize;
        labels
            .get(n.wrapping_sub(1).wrapping_sub(i))
            .cloned()
            .unwrap_or_default()
    };
    let mut chart = ChartBuilder::on(plot)
        .margin(16)
        .x_label_area_size(66)
        .y_label_area_size(label_w.clamp(120, 480))
        .build_cartesian_2d(
            Ticked::new(0.0..max_load * 1.03, xticks),
            Ticked::new(0.0..n as f64, yticks),
        )?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(load.desc)
        .y_desc("configuration")
        .label_style(style(14.0, BLACK, HPos::Center, VPos::Center))
        .axis_desc_style(style(16.0, BLACK, HPos::Center, VPos::Center))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&yfmt)
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .draw()?;
    for (i, c) in s.configs.iter().enumerate() {
        let row = (n - 1 - i) as f64;
        let passing = c
            .points
            .iter()
            .filter(|(_, p)| p.verdict == "pass")
            .map(|(x, _)| *x)
            .reduce(f64::max);
        let base = passing.unwrap_or(0.0);
        let next = c.points.iter().find(|(x, _)| *x > base);
        let color = color_of(i);
        if let Some(pass) = passing {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, row + 0.18), (pass, row + 0.82)],
                lighten(color, 0.55).filled(),
            )))?;
        }
        if let Some((nx, _)) = next {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(base, row + 0.18), (*nx, row + 0.82)],
                lighten(color, 0.16).filled(),
            )))?;
        }
        let what = |p: &PointOut| {
            if p.verdict == "fail" {
                "fails"
            } else {
                "is uncertain"
            }
        };
        let text = match (passing, next) {
            (Some(pass), Some((nx, p))) => format!(
                "passes up to {} {}; {} {}",
                tick(pass),
                load.unit,
                tick(*nx),
                what(p)
            ),
            (Some(pass), None) => format!(
                "every tested load passes (up to {} {})",
                tick(pass),
                load.unit
            ),
            (None, Some((nx, p))) => {
                format!(
                    "no tested load passes ({} {} {})",
                    tick(*nx),
                    load.unit,
                    what(p)
                )
            }
            (None, None) => "no tested load passes".to_string(),
        };
        chart.draw_series(std::iter::once(Text::new(
            text,
            (max_load * 0.01, row + 0.5),
            style(13.0, BLACK, HPos::Left, VPos::Center),
        )))?;
    }
    let entries = vec![
        Entry::new(
            Swatch::Block(lighten(color_of(0), 0.55)),
            "tested loads that pass every SLO",
        ),
        Entry::new(
            Swatch::Block(lighten(color_of(0), 0.16)),
            "the limit lies in here",
        ),
    ];
    legend(legend_area, "frontier", &entries)
}

/// `c` at opacity `a` over white, as an opaque colour (legend swatches match the bars).
fn lighten(c: RGBColor, a: f64) -> RGBColor {
    let f = |v: u8| (v as f64 * a + 255.0 * (1.0 - a)).round() as u8;
    RGBColor(f(c.0), f(c.1), f(c.2))
}

fn draw_utilization<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    legend_area: &DrawingArea<DB, Shift>,
    s: &Sweep,
) -> Result<(), ChartError> {
    let load = s.need_load().map_err(ChartError::NotApplicable)?;
    let panels = plot.split_evenly((2, 2));
    let slos = [
        ("pool_utilization", 100.0),
        ("", 1.0),
        ("", 1.0),
        ("acquire_p95_ms", 1.0),
    ];
    for ((panel, &(metric, title, scale)), (slo_name, slo_scale)) in
        panels.iter().zip(UTILIZATION).zip(slos)
    {
        let series: Vec<Vec<(f64, MetricOut)>> = s
            .configs
            .iter()
            .map(|c| s.series(c, metric, scale))
            .collect();
        let slo: Option<Vec<(f64, f64)>> = (!slo_name.is_empty())
            .then(|| {
                s.configs
                    .iter()
                    .map(|c| slo_by_load(c, slo_name, slo_scale))
                    .find(|t| !t.is_empty())
            })
            .flatten();
        let mut ymax = linear_max(
            series
                .iter()
                .flatten()
                .map(|(_, m)| m.high.max(m.mean))
                .chain(slo.iter().flatten().map(|t| t.1)),
        );
        if scale == 100.0 {
            ymax = ymax.max(100.0);
        }
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .caption(title, style(16.0, BLACK, HPos::Center, VPos::Top))
            .x_label_area_size(58)
            .y_label_area_size(84)
            .build_cartesian_2d(load_range(load), 0.0..ymax)?;
        mesh(&mut chart, load.desc, title, true)?;
        series_with_bands(&mut chart, &series, color_of, 0.0)?;
        if let Some(t) = &slo {
            dashed(&mut chart, &steps(t), SLO_COLOR)?;
        }
    }
    let mut entries = config_entries(s);
    if s.has_slo() {
        entries.push(Entry::new(Swatch::Dashed(SLO_COLOR), "SLO threshold"));
    }
    entries.push(Entry::new(
        Swatch::Block(RGBColor(200, 200, 200)),
        ci_label(s),
    ));
    legend(legend_area, "configuration", &entries)
}

fn point_label(s: &Sweep, p: &PointOut) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(l) = &s.load {
        if let Some(v) = p.params.get(&l.path).and_then(Value::as_f64) {
            parts.push(format!("{}={}", l.unit, tick(v)));
        }
    }
    for (path, label) in &s.axes {
        if let Some(v) = p.params.get(path) {
            parts.push(format!("{label}={}", value_text(v)));
        }
    }
    if parts.is_empty() {
        "base scenario".into()
    } else {
        parts.join(", ")
    }
}

fn draw_latency_by_point<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    legend_area: &DrawingArea<DB, Shift>,
    s: &Sweep,
) -> Result<(), ChartError> {
    const PCTS: [(&str, &str); 3] = [
        ("latency_p50_ms", "P50"),
        ("latency_p95_ms", "P95"),
        ("latency_p99_ms", "P99"),
    ];
    let n = s.r.points.len();
    let labels: Vec<String> = s.r.points.iter().map(|p| point_label(s, p)).collect();
    let (lo, hi) = log_range(
        s.r.points
            .iter()
            .flat_map(|p| PCTS.iter().filter_map(|(m, _)| p.metric(m)))
            .flat_map(|m| [m.mean, m.low, m.high])
            .chain(s.r.points.iter().filter_map(|p| slo_threshold(p, "p95_ms"))),
    );
    let label_w = labels.iter().map(|l| l.chars().count()).max().unwrap_or(10) as u32 * 10 + 24;
    let yticks: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
    let yfmt = |v: &f64| {
        let i = v.floor() as usize;
        labels
            .get(n.wrapping_sub(1).wrapping_sub(i))
            .cloned()
            .unwrap_or_default()
    };
    let mut chart = ChartBuilder::on(plot)
        .margin(16)
        .x_label_area_size(66)
        .y_label_area_size(label_w.clamp(120, 480))
        .build_cartesian_2d((lo..hi).log_scale(), Ticked::new(0.0..n as f64, yticks))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("latency (ms, log scale)")
        .y_desc("point")
        .label_style(style(14.0, BLACK, HPos::Center, VPos::Center))
        .axis_desc_style(style(16.0, BLACK, HPos::Center, VPos::Center))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&yfmt)
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .draw()?;
    for (i, p) in s.r.points.iter().enumerate() {
        let row = (n - 1 - i) as f64 + 0.5;
        for (k, (metric, _)) in PCTS.iter().enumerate() {
            let Some(m) = p.metric(metric) else { continue };
            let c = color_of(k);
            let y = row + (k as f64 - 1.0) * 0.2;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(m.low.max(lo), y), (m.high.max(lo), y)],
                c.stroke_width(2),
            )))?;
            chart.draw_series(std::iter::once(Circle::new(
                (m.mean.max(lo), y),
                5,
                c.filled(),
            )))?;
        }
        if let Some(t) = slo_threshold(p, "p95_ms") {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(t, row - 0.42), (t, row + 0.42)],
                SLO_COLOR.stroke_width(3),
            )))?;
        }
    }
    let mut entries: Vec<Entry> = PCTS
        .iter()
        .enumerate()
        .map(|(k, (_, name))| Entry::new(Swatch::Line(color_of(k)), format!("{name} (mean, CI)")))
        .collect();
    if s.has_slo() {
        entries.push(Entry::new(Swatch::Block(SLO_COLOR), "SLO: P95 threshold"));
    }
    legend(legend_area, "latency percentile", &entries)
}

fn draw_projected_vs_measured<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Shift>,
    legend_area: &DrawingArea<DB, Shift>,
    s: &Sweep,
    measured: &Results,
) -> Result<(), ChartError> {
    let load = s.need_load().map_err(ChartError::NotApplicable)?;
    // measured points per configuration: (load, measured point)
    let matched: Vec<Vec<(f64, &PointOut)>> = s
        .configs
        .iter()
        .map(|c| {
            measured
                .points
                .iter()
                .filter_map(|m| {
                    c.points
                        .iter()
                        .find(|(_, p)| p.params == m.params)
                        .map(|(x, _)| (*x, m))
                })
                .collect()
        })
        .collect();
    let shown: Vec<usize> = (0..s.configs.len())
        .filter(|&i| !matched[i].is_empty())
        .collect();
    let panels = plot.split_evenly((1, 2));
    let metrics = [
        ("throughput_rps", "throughput (requests/s)", false),
        ("latency_p95_ms", "P95 latency (ms, log scale)", true),
    ];
    for (panel, (metric, desc, log)) in panels.iter().zip(metrics) {
        let proj: Vec<Vec<(f64, MetricOut)>> = shown
            .iter()
            .map(|&i| s.series(&s.configs[i], metric, 1.0))
            .collect();
        let meas: Vec<Vec<(f64, MetricOut)>> = shown
            .iter()
            .map(|&i| {
                matched[i]
                    .iter()
                    .filter_map(|(x, p)| p.metric(metric).map(|m| (*x, m)))
                    .collect()
            })
            .collect();
        let all = || {
            proj.iter()
                .chain(&meas)
                .flatten()
                .flat_map(|(_, m)| [m.mean, m.low, m.high])
        };
        let caption = desc.split(" (").next().unwrap_or(desc).to_string();
        if log {
            let (lo, hi) = log_range(all());
            let mut chart = ChartBuilder::on(panel)
                .margin(16)
                .caption(caption, style(18.0, BLACK, HPos::Center, VPos::Top))
                .x_label_area_size(66)
                .y_label_area_size(96)
                .build_cartesian_2d(load_range(load), (lo..hi).log_scale())?;
            mesh(&mut chart, load.desc, desc, false)?;
            series_with_bands(&mut chart, &proj, |k| color_of(shown[k]), lo)?;
            measured_points(&mut chart, &meas, |k| color_of(shown[k]), lo)?;
        } else {
            let ymax = linear_max(all());
            let mut chart = ChartBuilder::on(panel)
                .margin(16)
                .caption(caption, style(18.0, BLACK, HPos::Center, VPos::Top))
                .x_label_area_size(66)
                .y_label_area_size(104)
                .build_cartesian_2d(load_range(load), 0.0..ymax)?;
            mesh(&mut chart, load.desc, desc, false)?;
            series_with_bands(&mut chart, &proj, |k| color_of(shown[k]), 0.0)?;
            measured_points(&mut chart, &meas, |k| color_of(shown[k]), 0.0)?;
        }
    }
    let n_matched: usize = matched.iter().map(Vec::len).sum();
    let mut entries: Vec<Entry> = shown
        .iter()
        .map(|&i| Entry::new(Swatch::Line(color_of(i)), s.configs[i].label.clone()))
        .collect();
    entries.push(Entry::new(
        Swatch::Block(RGBColor(200, 200, 200)),
        "projected: mean and CI band",
    ));
    let mut m = Entry::new(Swatch::Measured, "measured: mean and CI");
    m.note = Some(format!(
        "{n_matched} of {} measured points matched",
        measured.points.len()
    ));
    entries.push(m);
    legend(legend_area, "configuration", &entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Results {
        let path = format!(
            "{}/tests/data/results/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("fixture");
        serde_json::from_str(&text).expect("results")
    }

    #[test]
    fn ticks_are_readable() {
        assert_eq!(tick(10000.0), "10,000");
        assert_eq!(tick(12.5), "12.5");
        assert_eq!(tick(0.05), "0.05");
        assert_eq!(tick(100.0), "100");
        assert_eq!(tick(1.0), "1");
    }

    #[test]
    fn crossing_interpolates_between_loads() {
        let t = [(1000.0, 100.0), (2000.0, 100.0)];
        let (x, y) = crossing(&[(1000.0, 50.0), (2000.0, 150.0)], &t, false).unwrap();
        assert!((x - 1500.0).abs() < 1e-9 && (y - 100.0).abs() < 1e-9);
        assert!(crossing(&[(1000.0, 50.0), (2000.0, 90.0)], &t, false).is_none());
        // in log space the crossing sits where the drawn (log-linear) segments meet
        let (x, _) = crossing(&[(1000.0, 10.0), (2000.0, 1000.0)], &t, true).unwrap();
        assert!((x - 1500.0).abs() < 1e-9);
        // a threshold that steps down under the series is crossed at the step
        let down = [(1000.0, 500.0), (2000.0, 100.0)];
        let c = crossing(&[(1000.0, 50.0), (2000.0, 200.0)], &down, false);
        assert_eq!(c, Some((2000.0, 100.0)));
        assert_eq!(
            steps(&down),
            vec![(1000.0, 500.0), (2000.0, 500.0), (2000.0, 100.0)]
        );
        assert_eq!(round_sig(19122.0), 19100.0);
    }

    #[test]
    fn plan_of_a_full_sweep_draws_everything_but_the_fallback() {
        let r = fixture("sweep");
        let (kinds, skipped) = plan(&r, None);
        assert_eq!(
            kinds,
            vec![
                ChartKind::Throughput,
                ChartKind::Latency,
                ChartKind::Failures,
                ChartKind::Heatmap,
                ChartKind::Frontier,
                ChartKind::Utilization,
            ]
        );
        assert!(skipped.is_empty(), "{skipped:?}");
    }

    #[test]
    fn plan_of_a_single_point_says_why() {
        let r = fixture("single");
        let (kinds, skipped) = plan(&r, None);
        assert_eq!(kinds, vec![ChartKind::LatencyByPoint]);
        let why: Vec<&str> = skipped.iter().map(|s| s.why.as_str()).collect();
        assert!(why.iter().any(|w| w.contains("no load axis")), "{why:?}");
        assert!(
            why.iter().any(|w| w.contains("heatmap needs two")),
            "{why:?}"
        );
    }

    #[test]
    fn groups_pair_measured_with_projected() {
        let p = fixture("sweep");
        let m = fixture("measured");
        let g = groups(&[m.clone(), p.clone()]);
        assert_eq!(
            g,
            vec![Group {
                primary: 1,
                measured: vec![0]
            }]
        );
        let g = groups(&[m]);
        assert_eq!(
            g,
            vec![Group {
                primary: 0,
                measured: vec![]
            }]
        );
    }

    #[test]
    fn configurations_follow_axis_order() {
        let r = fixture("sweep");
        let s = Sweep::new(&r);
        let labels: Vec<&str> = s.configs.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "max_size=20, default_pool_size=25",
                "max_size=20, default_pool_size=35",
                "max_size=35, default_pool_size=25",
                "max_size=35, default_pool_size=35",
            ]
        );
        for c in &s.configs {
            assert!(c.points.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    /// Every text of an SVG, trimmed (plotters ends each text with a newline).
    fn svg_texts(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).expect("the SVG parses as XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .map(|t| t.trim().to_string())
            .collect()
    }

    /// Polylines of one colour with at least `min_points` points: the series, not legend swatches.
    fn series_of(svg: &str, color: RGBColor, min_points: usize) -> usize {
        let hex = format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2);
        let doc = roxmltree::Document::parse(svg).unwrap();
        doc.descendants()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(hex.as_str()))
            .filter(|n| {
                n.attribute("points")
                    .is_some_and(|p| p.split_whitespace().count() >= min_points)
            })
            .count()
    }

    fn svg(kind: ChartKind, r: &Results, m: Option<&Results>) -> String {
        String::from_utf8(render(kind, r, m, ImageFormat::Svg).unwrap()).unwrap()
    }

    #[test]
    fn svgs_parse_and_label_their_axes() {
        let r = fixture("sweep");
        let m = fixture("measured");
        let expect: &[(ChartKind, &[&str])] = &[
            (
                ChartKind::Throughput,
                &["load: concurrent users", "throughput (requests/s)"],
            ),
            (
                ChartKind::Latency,
                &[
                    "load: concurrent users",
                    "P95 latency (ms, log scale)",
                    "P99 latency (ms, log scale)",
                    "SLO: P95 threshold",
                ],
            ),
            (
                ChartKind::Failures,
                &["failed requests (%)", "acquire_timeout", "max_client_conn"],
            ),
            (
                ChartKind::Heatmap,
                &[
                    "max_size",
                    "default_pool_size",
                    "users = 20,000",
                    "the guide's configuration",
                ],
            ),
            (
                ChartKind::Frontier,
                &["load: concurrent users", "configuration"],
            ),
            (
                ChartKind::Utilization,
                &[
                    "app pool utilisation (%)",
                    "bouncer server utilisation (%)",
                    "PostgreSQL slot utilisation (%)",
                    "acquire wait P95 (ms)",
                ],
            ),
            (
                ChartKind::ProjectedVsMeasured,
                &[
                    "throughput (requests/s)",
                    "P95 latency (ms, log scale)",
                    "measured: mean and CI",
                ],
            ),
        ];
        for (kind, labels) in expect {
            let texts = svg_texts(&svg(*kind, &r, Some(&m)));
            for want in labels.iter().chain(&[kind.title()]) {
                assert!(
                    texts.iter().any(|t| t == want),
                    "{kind:?}: no text {want:?} in {texts:?}"
                );
            }
            // the title says what was simulated
            assert!(
                texts.iter().any(|t| t.contains("guide-10k")
                    && t.contains("seed 7")
                    && t.contains("2 replications")
                    && t.contains("95 %")),
                "{kind:?}: {texts:?}"
            );
        }
    }

    #[test]
    fn one_series_per_configuration() {
        let r = fixture("sweep");
        let loads = 4;
        let labels = [
            "max_size=20, default_pool_size=25",
            "max_size=20, default_pool_size=35",
            "max_size=35, default_pool_size=25",
            "max_size=35, default_pool_size=35",
        ];
        // (chart, series per configuration: one per panel)
        for (kind, per_config) in [
            (ChartKind::Throughput, 1),
            (ChartKind::Latency, 2),
            (ChartKind::Utilization, 4),
        ] {
            let doc = svg(kind, &r, None);
            for (i, label) in labels.iter().enumerate() {
                assert_eq!(
                    series_of(&doc, color_of(i), loads),
                    per_config,
                    "{kind:?}, configuration {label}"
                );
            }
            assert_eq!(series_of(&doc, color_of(labels.len()), loads), 0);
            let texts = svg_texts(&doc);
            for label in labels {
                assert!(
                    texts.iter().any(|t| t == label),
                    "{kind:?}: no legend {label}"
                );
            }
        }
    }

    #[test]
    fn latency_marks_where_p95_crosses_the_slo() {
        let texts = svg_texts(&svg(ChartKind::Latency, &fixture("sweep"), None));
        let notes = texts
            .iter()
            .filter(|t| t.starts_with("P95 crosses the SLO at"))
            .count();
        assert_eq!(notes, 4, "{texts:?}");
    }

    /// Decode a PNG: (width, height, distinct colours, fraction of non-white pixels).
    fn png_stats(bytes: &[u8]) -> (u32, u32, usize, f64) {
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = dec.read_info().expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).expect("a frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let px = &buf[..info.buffer_size()];
        let mut colors = std::collections::BTreeSet::new();
        let mut ink = 0usize;
        for p in px.chunks(3) {
            colors.insert((p[0], p[1], p[2]));
            ink += (p != [255, 255, 255]) as usize;
        }
        let n = (info.width * info.height) as f64;
        (info.width, info.height, colors.len(), ink as f64 / n)
    }

    #[test]
    fn pngs_decode_with_their_size_and_are_not_blank() {
        let r = fixture("sweep");
        let m = fixture("measured");
        let (mut kinds, _) = plan(&r, Some(&m));
        kinds.push(ChartKind::LatencyByPoint);
        for kind in kinds {
            let png = render(kind, &r, Some(&m), ImageFormat::Png).unwrap();
            let (w, h, colors, ink) = png_stats(&png);
            assert_eq!((w, h), size_of(kind, &Sweep::new(&r)), "{kind:?}");
            assert!(colors > 16, "{kind:?}: only {colors} colours");
            assert!(
                ink > 0.02 && ink < 0.9,
                "{kind:?}: {ink} of the pixels are not white"
            );
        }
    }

    #[test]
    fn degenerate_results_still_draw_what_makes_sense() {
        for (name, want) in [
            ("single", vec![ChartKind::LatencyByPoint]),
            (
                "no-load",
                vec![ChartKind::Heatmap, ChartKind::LatencyByPoint],
            ),
        ] {
            let r = fixture(name);
            let (kinds, skipped) = plan(&r, None);
            assert_eq!(kinds, want, "{name}");
            assert!(skipped.iter().all(|s| !s.why.is_empty()));
            for kind in kinds {
                svg_texts(&svg(kind, &r, None));
                let (_, _, colors, _) =
                    png_stats(&render(kind, &r, None, ImageFormat::Png).unwrap());
                assert!(colors > 16, "{name} {kind:?}");
            }
            // a chart that does not apply is refused with the reason, not drawn empty
            match render(ChartKind::Throughput, &r, None, ImageFormat::Svg) {
                Err(ChartError::NotApplicable(why)) => assert!(why.contains("no load axis")),
                other => panic!("{name}: {:?}", other.map(|b| b.len())),
            }
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let r = fixture("sweep");
        for f in [ImageFormat::Svg, ImageFormat::Png] {
            let a = render(ChartKind::Latency, &r, None, f).unwrap();
            let b = render(ChartKind::Latency, &r, None, f).unwrap();
            assert!(a == b, "{f:?}");
        }
    }

    #[test]
    fn text_is_escaped_in_svg() {
        let mut r = fixture("sweep");
        r.experiment = "<script>alert('x')</script> & \"co\"".into();
        let doc = svg(ChartKind::Throughput, &r, None);
        assert!(!doc.contains("<script>"));
        let texts = svg_texts(&doc);
        assert!(texts
            .iter()
            .any(|t| t.starts_with("<script>alert('x')</script> & \"co\" — ")));
    }

    #[test]
    fn failures_without_failures_are_skipped_with_the_reason() {
        let mut r = fixture("sweep");
        for p in &mut r.points {
            for (k, v) in p.metrics.iter_mut() {
                if k.ends_with("_rate") {
                    v["mean"] = 0.0.into();
                }
            }
        }
        let (kinds, skipped) = plan(&r, None);
        assert!(!kinds.contains(&ChartKind::Failures));
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].why.contains("no request failed"));
    }

    #[test]
    fn jobs_name_files_after_the_experiment_when_there_are_several() {
        let p = fixture("sweep");
        let m = fixture("measured");
        let (jobs, skipped) = jobs(std::slice::from_ref(&p));
        assert_eq!(jobs.len(), 6);
        assert_eq!(jobs[0].stem, "throughput");
        assert!(skipped.is_empty());
        let mut other = fixture("no-load");
        other.experiment = "no load/axis".into();
        let rs = [p, m, other];
        let (jobs, skipped) = super::jobs(&rs);
        let stems: Vec<&str> = jobs.iter().map(|j| j.stem.as_str()).collect();
        assert!(stems.contains(&"guide-10k-throughput"), "{stems:?}");
        assert!(
            stems.contains(&"guide-10k-projected-vs-measured"),
            "{stems:?}"
        );
        assert!(stems.contains(&"no-load-axis-heatmap"), "{stems:?}");
        assert!(skipped
            .iter()
            .any(|s| s.starts_with("no-load-axis-throughput: ")));
        let overlay = jobs.iter().find(|j| j.measured.is_some()).unwrap();
        assert_eq!((overlay.primary, overlay.measured), (0, Some(1)));
    }
}
