//! The workload's SQL for live mode: `:name` placeholders (pgbench's `\set` style) compiled once
//! per point, then rendered per transaction with integers drawn from the transaction's `params`.
//!
//! Parameters are interpolated as decimal integers into the text of a simple-protocol query:
//! an `i64` printed in decimal cannot carry SQL, so this is injection-free, and it avoids named
//! prepared statements, which PgBouncer 1.18 does not track in transaction mode.
//!
//! A placeholder is `:` followed by a letter or `_` and then letters, digits or `_`, outside
//! quoted strings, quoted identifiers, dollar-quoted bodies and comments; `::type` casts are left
//! alone.

use crate::experiment::file::{ExperimentFile, ParamSpec};
use crate::experiment::{Problem, Severity};
use std::fmt::Write as _;

/// One statement with its placeholders resolved to parameter indices.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Param(usize),
}

impl Template {
    /// Compile `sql` against the parameter names; an unknown placeholder is an error naming it.
    pub fn parse(sql: &str, names: &[&str]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        for piece in scan(sql) {
            match piece {
                Piece::Text(t) => text.push_str(t),
                Piece::Placeholder(name) => match names.iter().position(|n| *n == name) {
                    Some(i) => {
                        if !text.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut text)));
                        }
                        parts.push(Part::Param(i));
                    }
                    None => return Err(name.to_string()),
                },
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// Append the statement with `values` substituted to `out`.
    pub fn render(&self, values: &[i64], out: &mut String) {
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Param(i) => {
                    let _ = write!(out, "{}", values[*i]);
                }
            }
        }
    }

    /// The statement with every parameter set to the same value (for dry runs).
    pub fn render_with(&self, value: i64) -> String {
        let n = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Param(i) => i + 1,
                Part::Text(_) => 0,
            })
            .max()
            .unwrap_or(0);
        let mut s = String::new();
        self.render(&vec![value; n], &mut s);
        s
    }
}

enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}
fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Split SQL into text and placeholders, skipping quoted and commented regions.
fn scan(sql: &str) -> Vec<Piece<'_>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'$' => {
                // $tag$ … $tag$ (the tag may be empty); `$1` is a positional parameter
                let mut j = i + 1;
                if b.get(j).is_some_and(u8::is_ascii_digit) {
                    i = j;
                    continue;
                }
                while j < b.len() && is_ident(b[j]) {
                    j += 1;
                }
                if j < b.len() && b[j] == b'$' {
                    let tag = &sql[i..=j];
                    i = match sql[j + 1..].find(tag) {
                        Some(end) => j + 1 + end + tag.len(),
                        None => b.len(),
                    };
                } else {
                    i += 1;
                }
            }
            b':' => {
                if b.get(i + 1) == Some(&b':') {
                    i += 2;
                } else if b.get(i + 1).is_some_and(|c| is_ident_start(*c))
                    && (i == 0 || b[i - 1] != b':')
                {
                    let mut j = i + 1;
                    while j < b.len() && is_ident(b[j]) {
                        j += 1;
                    }
                    if start < i {
                        out.push(Piece::Text(&sql[start..i]));
                    }
                    out.push(Piece::Placeholder(&sql[i + 1..j]));
                    start = j;
                    i = j;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    let end = b.len();
    if start < end {
        out.push(Piece::Text(&sql[start..end]));
    }
    out
}

/// One transaction type as live mode runs it.
#[derive(Clone, Debug)]
pub struct LiveTx {
    pub name: String,
    /// The statements, one round trip each.
    pub statements: Vec<Template>,
    /// Inclusive bounds of each parameter, in the order templates refer to them.
    pub params: Vec<(i64, i64)>,
    /// Wrap the statements in `BEGIN … COMMIT` (more than one statement, and the SQL does not
    /// open its own transaction).
    pub block: bool,
}

impl LiveTx {
    /// Draw this transaction's parameter values.
    pub fn draw<R: rand::Rng + ?Sized>(&self, rng: &mut R, values: &mut Vec<i64>) {
        values.clear();
        values.extend(
            self.params
                .iter()
                .map(|&(lo, hi)| rng.random_range(lo..=hi)),
        );
    }

    /// Round trips per transaction: the statements, plus BEGIN and COMMIT for a block.
    pub fn round_trips(&self) -> usize {
        self.statements.len() + if self.block { 2 } else { 0 }
    }
}

/// Compile every transaction's SQL of a resolved experiment; problems carry their JSON path.
pub fn compile(file: &ExperimentFile) -> Result<Vec<LiveTx>, Vec<Problem>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let txs = file
        .workload
        .as_ref()
        .map(|w| w.transactions.as_slice())
        .unwrap_or_default();
    for (i, t) in txs.iter().enumerate() {
        if t.sql.is_empty() {
            problems.push(Problem {
                severity: Severity::Error,
                path: format!("workload.transactions.{i}.sql"),
                value: "[]".into(),
                message: format!("transaction `{}` has no SQL to run live", t.name),
                hint: "list its statements, e.g. \"sql\": [\"SELECT abalance FROM accounts WHERE aid = :aid\"]".into(),
            });
            continue;
        }
        let names: Vec<&str> = t.params.keys().map(String::as_str).collect();
        let params: Vec<(i64, i64)> = t
            .params
            .values()
            .map(|p| match p {
                ParamSpec::Uniform([lo, hi]) => (*lo, *hi),
            })
            .collect();
        let mut statements = Vec::new();
        for (k, sql) in t.sql.iter().enumerate() {
            match Template::parse(sql, &names) {
                Ok(tpl) => statements.push(tpl),
                Err(name) => problems.push(Problem {
                    severity: Severity::Error,
                    path: format!("workload.transactions.{i}.sql.{k}"),
                    value: format!(":{name}"),
                    message: "this placeholder has no parameter".into(),
                    hint: format!(
                        "add \"params\": {{\"{name}\": {{\"uniform\": [1, 100000]}}}} to the transaction"
                    ),
                }),
            }
        }
        let block = crate::experiment::wraps_in_block(&t.sql);
        out.push(LiveTx {
            name: t.name.clone(),
            statements,
            params,
            block,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(sql: &str, names: &[&str], values: &[i64]) -> String {
        let t = Template::parse(sql, names).unwrap();
        let mut s = String::new();
        t.render(values, &mut s);
        s
    }

    #[test]
    fn placeholders_are_substituted() {
        assert_eq!(
            render(
                "SELECT abalance FROM a WHERE aid = :aid AND bid=:bid;",
                &["aid", "bid"],
                &[42, -7]
            ),
            "SELECT abalance FROM a WHERE aid = 42 AND bid=-7;"
        );
        assert_eq!(render(":x", &["x"], &[1]), "1");
    }

    #[test]
    fn casts_strings_and_comments_are_left_alone() {
        let sql =
            "SELECT ':aid', \":aid\", x::int, $$ :aid $$, $t$:aid$t$ -- :aid\n/* :aid */, :aid";
        assert_eq!(
            render(sql, &["aid"], &[5]),
            "SELECT ':aid', \":aid\", x::int, $$ :aid $$, $t$:aid$t$ -- :aid\n/* :aid */, 5"
        );
        assert_eq!(render("SELECT $1, a[1:2]", &[], &[]), "SELECT $1, a[1:2]");
    }

    #[test]
    fn unknown_placeholders_are_named() {
        assert_eq!(
            Template::parse("SELECT :nope", &["aid"]),
            Err("nope".into())
        );
    }

    #[test]
    fn compile_wraps_multi_statement_transactions() {
        let doc = serde_json::json!({"workload": {"transactions": [
            {"name": "one", "sql": ["SELECT 1"]},
            {"name": "two", "sql": ["UPDATE t SET v = v + 1 WHERE id = :id", "SELECT :id"],
             "params": {"id": {"uniform": [1, 10]}}},
            {"name": "own", "sql": ["BEGIN", "SELECT 1", "COMMIT"]},
            {"name": "none"}
        ]}});
        let file: ExperimentFile = serde_json::from_value(doc).unwrap();
        let err = compile(&file).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].path, "workload.transactions.3.sql");
        let mut file = file;
        file.workload.as_mut().unwrap().transactions.pop();
        let txs = compile(&file).unwrap();
        assert!(!txs[0].block);
        assert!(txs[1].block);
        assert!(!txs[2].block);
        assert_eq!(txs[1].statements[1].render_with(3), "SELECT 3");
        let mut rng = crate::rng::stream(1, 0, crate::rng::Stream::SqlParams);
        let mut v = Vec::new();
        for _ in 0..100 {
            txs[1].draw(&mut rng, &mut v);
            assert!((1..=10).contains(&v[0]));
        }
    }
}
