//! Reading experiment and model files, merging model defaults, `--set` overrides and sweep-axis
//! values at dotted paths, and the structural parse that collects *every* problem.

use super::file::{ExperimentFile, ModelFile};
use super::{Invalid, Problem, Severity};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// An experiment document after model defaults and overrides, before validation.
#[derive(Clone, Debug)]
pub struct LoadedExperiment {
    pub path: PathBuf,
    /// The merged document (model defaults under the experiment with its `--set` overrides).
    pub doc: Value,
    pub model: Option<ModelFile>,
    /// With a model: the experiment and its overrides before the model was merged in.
    pub own: Option<Value>,
}

impl LoadedExperiment {
    /// An experiment document with no model file.
    pub fn from_doc(path: impl Into<PathBuf>, doc: Value) -> Self {
        LoadedExperiment {
            path: path.into(),
            doc,
            model: None,
            own: None,
        }
    }

    /// The document of one sweep point: the axis values set on the experiment itself, then the
    /// model's defaults merged underneath — so an axis that replaces a whole list (say the
    /// transactions) still gets the model's properties for the names it lists.
    pub fn point_doc(&self, axes: &[(String, Value)]) -> Result<Value, (String, String)> {
        let mut own = self.own.clone().unwrap_or_else(|| self.doc.clone());
        for (path, v) in axes {
            apply_override(&mut own, path, v.clone()).map_err(|m| (path.clone(), m))?;
        }
        match &self.model {
            Some(m) => {
                let mut merged = m.defaults.clone();
                merge(&mut merged, &own);
                Ok(merged)
            }
            None => Ok(own),
        }
    }
}

fn problem(
    path: &str,
    value: &str,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> Problem {
    Problem {
        severity: Severity::Error,
        path: path.to_string(),
        value: value.to_string(),
        message: message.into(),
        hint: hint.into(),
    }
}

fn read_json(path: &Path, what: &str) -> Result<Value, Invalid> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Invalid(vec![problem(
            what,
            &path.display().to_string(),
            format!("cannot read the file: {e}"),
            "check the path (relative paths are taken from the current directory for experiments, from the experiment's directory for models)",
        )])
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Invalid(vec![problem(
            what,
            &path.display().to_string(),
            format!("not valid JSON: {e}"),
            "fix the JSON syntax at the line and column given",
        )])
    })
}

/// Load an experiment file, merge its model's defaults underneath, apply `--set` overrides.
pub fn load_experiment(
    path: &Path,
    overrides: &[(String, Value)],
) -> Result<LoadedExperiment, Invalid> {
    let mut doc = read_json(path, "(experiment file)")?;
    if !doc.is_object() {
        return Err(Invalid(vec![problem(
            "(root)",
            &compact(&doc),
            "an experiment is a JSON object",
            "start from experiments/10k.json",
        )]));
    }
    let mut problems = Vec::new();
    for (p, v) in overrides {
        if let Err(msg) = apply_override(&mut doc, p, v.clone()) {
            problems.push(problem(
                p,
                &compact(v),
                msg,
                "use a dotted path such as app.pools.primary.max_size",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Invalid(problems));
    }
    let mut model = None;
    let mut own = None;
    if let Some(Value::String(rel)) = doc.get("model").cloned() {
        let base = path.parent().unwrap_or(Path::new("."));
        let mpath = base.join(&rel);
        let mdoc = read_json(&mpath, "model")?;
        let mf: ModelFile = serde_json::from_value(mdoc).map_err(|e| {
            Invalid(vec![problem(
                "model",
                &rel,
                format!("not a valid model file: {e}"),
                "a model file has `name`, optional `description` and `provenance`, and `defaults` (a partial experiment)",
            )])
        })?;
        let mut merged = mf.defaults.clone();
        merge(&mut merged, &doc);
        own = Some(std::mem::replace(&mut doc, merged));
        model = Some(mf);
    }
    Ok(LoadedExperiment {
        path: path.to_path_buf(),
        doc,
        model,
        own,
    })
}

/// The kinds of a duration (`DurationSpec`), each the one key of its object.
const DURATION_KINDS: [&str; 6] = [
    "const_ms",
    "exp",
    "lognormal",
    "gamma",
    "uniform",
    "empirical",
];

/// The kind of a duration written as `{"kind": …}`, if `v` is one.
fn duration_kind(v: &Value) -> Option<&str> {
    let o = v.as_object()?;
    let (k, _) = o.iter().next().filter(|_| o.len() == 1)?;
    DURATION_KINDS.contains(&k.as_str()).then_some(k.as_str())
}

/// Deep merge: objects recursively; arrays of named objects element-wise by `name` (the
/// experiment's elements, each over the model's element of the same name); anything else replaced.
/// A duration of another kind replaces the one beneath (a constant over a calibrated lognormal);
/// of the same kind it merges (`{"lognormal": {"p95_ms": 5}}` changes the tail only).
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (b, o) if duration_kind(o).is_some() && duration_kind(b) != duration_kind(o) => {
            *b = o.clone();
        }
        (Value::Object(b), Value::Object(o)) => {
            for (k, ov) in o {
                match b.get_mut(k) {
                    Some(bv) => merge(bv, ov),
                    None => {
                        b.insert(k.clone(), ov.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) if all_named(o) => {
            let merged: Vec<Value> = o
                .iter()
                .map(|ov| {
                    let name = ov.get("name");
                    match b.iter().find(|bv| bv.get("name") == name) {
                        Some(bv) => {
                            let mut m = bv.clone();
                            merge(&mut m, ov);
                            m
                        }
                        None => ov.clone(),
                    }
                })
                .collect();
            *b = merged;
        }
        (b, o) => *b = o.clone(),
    }
}

fn all_named(a: &[Value]) -> bool {
    !a.is_empty()
        && a.iter()
            .all(|v| v.get("name").is_some_and(|n| n.is_string()))
}

/// Parse `path=value` from the command line; the value is JSON when it parses as JSON, else a string.
pub fn parse_override(s: &str) -> Result<(String, Value), String> {
    let (p, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not path=value (e.g. app.pools.primary.max_size=35)"))?;
    let p = p.trim();
    if p.is_empty() {
        return Err(format!("`{s}` has an empty path"));
    }
    let v = v.trim();
    let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((p.to_string(), value))
}

/// Set `value` at a dotted path. Object keys are created as needed; array elements are addressed
/// by index or by the `name` of the element. Under `sweep.` the rest of the path is one key.
pub fn apply_override(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if let Some(axis) = path.strip_prefix("sweep.") {
        let obj = doc
            .as_object_mut()
            .ok_or("the experiment is not an object")?
            .entry("sweep")
            .or_insert_with(|| Value::Object(Default::default()));
        let obj = obj.as_object_mut().ok_or("`sweep` is not an object")?;
        obj.insert(axis.to_string(), value);
        return Ok(());
    }
    let segs: Vec<&str> = path.split('.').collect();
    let mut cur = doc;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        cur = match cur {
            Value::Object(m) => {
                if last {
                    m.insert(seg.to_string(), value);
                    return Ok(());
                }
                m.entry(seg.to_string())
                    .or_insert_with(|| Value::Object(Default::default()))
            }
            Value::Array(a) => {
                let idx = match seg.parse::<usize>() {
                    Ok(i) if i < a.len() => i,
                    Ok(i) => {
                        return Err(format!("index {i} is past the end ({} elements)", a.len()))
                    }
                    Err(_) => a
                        .iter()
                        .position(|e| e.get("name").and_then(Value::as_str) == Some(seg))
                        .ok_or_else(|| format!("no element named `{seg}` in the list"))?,
                };
                if last {
                    a[idx] = value;
                    return Ok(());
                }
                &mut a[idx]
            }
            other => {
                return Err(format!(
                    "`{}` is {}, not an object",
                    segs[..i].join("."),
                    kind(other)
                ))
            }
        };
    }
    Ok(())
}

/// The value at a dotted path, if any (same addressing as [`apply_override`]).
pub fn get_path<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = doc;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => match seg.parse::<usize>() {
                Ok(i) => a.get(i)?,
                Err(_) => a
                    .iter()
                    .find(|e| e.get("name").and_then(Value::as_str) == Some(seg))?,
            },
            _ => return None,
        };
    }
    Some(cur)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Compact JSON of a value, shortened for messages.
pub fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// Parse the document into the serde mirror, collecting every structural problem (unknown field,
/// wrong type, missing required field): the offending part is reported and dropped, and parsing
/// resumes, so one run of `check` lists them all.
pub fn parse_file(doc: &Value) -> (ExperimentFile, Vec<Problem>) {
    let mut v = doc.clone();
    let mut problems = Vec::new();
    for _ in 0..256 {
        match serde_path_to_error::deserialize::<_, ExperimentFile>(&v) {
            Ok(f) => return (f, problems),
            Err(e) => {
                let segs = segments(&e.path().to_string());
                let msg = e.into_inner().to_string();
                let (segs, hint) = if let Some(field) = between(&msg, "unknown field `", "`") {
                    let mut s = segs.clone();
                    if s.last().map(String::as_str) != Some(field) {
                        s.push(field.to_string());
                    }
                    (s, "remove the field or correct its spelling".to_string())
                } else if msg.starts_with("missing field") {
                    (segs, "add the field, or remove this entry".to_string())
                } else {
                    (segs, "use the type the message names".to_string())
                };
                let shown = segs.join(".");
                let value = lookup(&v, &segs)
                    .map(compact)
                    .unwrap_or_else(|| "(missing)".into());
                let message = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                problems.push(problem(
                    if shown.is_empty() { "(root)" } else { &shown },
                    &value,
                    message,
                    hint,
                ));
                if segs.is_empty() || !remove(&mut v, &segs) {
                    return (ExperimentFile::default(), problems);
                }
            }
        }
    }
    (ExperimentFile::default(), problems)
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let start = s.find(a)? + a.len();
    let len = s[start..].find(b)?;
    Some(&s[start..start + len])
}

/// `a.b[2].c` -> ["a", "b", "2", "c"]
fn segments(path: &str) -> Vec<String> {
    if path == "." || path.is_empty() {
        return Vec::new();
    }
    path.replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn lookup<'a>(v: &'a Value, segs: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for s in segs {
        cur = match cur {
            Value::Object(m) => m.get(s)?,
            Value::Array(a) => a.get(s.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn remove(v: &mut Value, segs: &[String]) -> bool {
    let (last, parent) = match segs.split_last() {
        Some(x) => x,
        None => return false,
    };
    let mut cur = v;
    for s in parent {
        cur = match cur {
            Value::Object(m) => match m.get_mut(s) {
                Some(x) => x,
                None => return false,
            },
            Value::Array(a) => match s.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(x) => x,
                None => return false,
            },
            _ => return false,
        };
    }
    match cur {
        Value::Object(m) => m.remove(last).is_some(),
        Value::Array(a) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_duration_of_another_kind_replaces_the_one_beneath() {
        let mut base =
            json!({"c": {"lognormal": {"median_ms": 3, "p95_ms": 4}}, "t": {"const_ms": 1}});
        merge(
            &mut base,
            &json!({"c": {"const_ms": 2}, "t": {"exp": {"mean_ms": 5}}}),
        );
        assert_eq!(
            base,
            json!({"c": {"const_ms": 2}, "t": {"exp": {"mean_ms": 5}}})
        );
        // the same kind merges: the median stays
        merge(&mut base, &json!({"t": {"exp": {"mean_ms": 6}}}));
        let mut ln = json!({"lognormal": {"median_ms": 3, "p95_ms": 4}});
        merge(&mut ln, &json!({"lognormal": {"p95_ms": 5}}));
        assert_eq!(ln, json!({"lognormal": {"median_ms": 3, "p95_ms": 5}}));
        assert_eq!(base["t"], json!({"exp": {"mean_ms": 6}}));
        // the kinds are exactly the duration's variants, as written
        use crate::experiment::file::DurationSpec as D;
        let every = [
            D::ConstMs(1.0),
            D::Exp { mean_ms: 1.0 },
            D::Lognormal {
                median_ms: 1.0,
                p95_ms: 2.0,
            },
            D::Gamma {
                shape: 2.0,
                mean_ms: 1.0,
            },
            D::Uniform {
                min_ms: 1.0,
                max_ms: 2.0,
            },
            D::Empirical {
                quantiles: vec![(0.0, 1.0), (1.0, 2.0)],
            },
        ];
        for d in &every {
            // a new variant does not compile here until it is in the list above
            match d {
                D::ConstMs(_)
                | D::Exp { .. }
                | D::Lognormal { .. }
                | D::Gamma { .. }
                | D::Uniform { .. }
                | D::Empirical { .. } => {}
            }
        }
        let kinds: Vec<_> = every
            .iter()
            .map(|d| duration_kind(&serde_json::to_value(d).unwrap()).map(str::to_owned))
            .collect();
        assert_eq!(kinds, DURATION_KINDS.map(|k| Some(k.to_owned())));
        // an object that only looks like one by its key count is merged as before
        let mut o = json!({"a": {"x": 1}});
        merge(&mut o, &json!({"a": {"y": 2}}));
        assert_eq!(o, json!({"a": {"x": 1, "y": 2}}));
    }

    #[test]
    fn merge_objects_and_named_arrays() {
        let mut base = json!({"a": {"x": 1, "y": 2}, "t": [{"name": "read", "w": 1, "s": 5}, {"name": "old"}]});
        merge(
            &mut base,
            &json!({"a": {"y": 3}, "t": [{"name": "read", "w": 2}, {"name": "new"}]}),
        );
        assert_eq!(
            base,
            json!({"a": {"x": 1, "y": 3}, "t": [{"name": "read", "w": 2, "s": 5}, {"name": "new"}]})
        );
    }

    #[test]
    fn overrides_by_path_index_and_name() {
        let mut d = json!({"app": {"pools": {}}, "workload": {"transactions": [{"name": "read", "weight": 1}]}});
        apply_override(&mut d, "app.pools.primary.max_size", json!(35)).unwrap();
        apply_override(&mut d, "workload.transactions.read.weight", json!(0.5)).unwrap();
        apply_override(&mut d, "workload.transactions.0.statements", json!(2)).unwrap();
        apply_override(&mut d, "sweep.clients.users", json!([1, 2])).unwrap();
        assert_eq!(d["app"]["pools"]["primary"]["max_size"], json!(35));
        assert_eq!(d["workload"]["transactions"][0]["weight"], json!(0.5));
        assert_eq!(d["workload"]["transactions"][0]["statements"], json!(2));
        assert_eq!(d["sweep"]["clients.users"], json!([1, 2]));
        assert!(apply_override(&mut d, "workload.transactions.nope.weight", json!(1)).is_err());
        assert_eq!(
            get_path(&d, "workload.transactions.read.weight"),
            Some(&json!(0.5))
        );
    }

    #[test]
    fn parse_override_values() {
        assert_eq!(parse_override("a.b=35").unwrap(), ("a.b".into(), json!(35)));
        assert_eq!(
            parse_override("a=session").unwrap(),
            ("a".into(), json!("session"))
        );
        assert!(parse_override("novalue").is_err());
    }

    #[test]
    fn structural_problems_are_all_collected() {
        let d = json!({
            "nmae": "x",
            "app": {"instances": "five", "pools": {"primary": {"max_sise": 3}}},
            "faults": [{"target": "primary", "at_s": 1, "for_s": 1}]
        });
        let (_, problems) = parse_file(&d);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert!(paths.contains(&"nmae"), "{problems:?}");
        assert!(paths.contains(&"app.instances"), "{problems:?}");
        assert!(
            paths.contains(&"app.pools.primary.max_sise"),
            "{problems:?}"
        );
        assert!(paths.contains(&"faults.0"), "{problems:?}");
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
