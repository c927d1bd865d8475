//! The analytic validation suite: degenerate configurations of the full model whose exact
//! answers are known (`analytic`), simulated and compared. Used by the test suite (which asserts
//! the tolerances) and by `cargo run --release --example validation`, which writes the table of
//! VALIDATION.md.
//!
//! A check passes when the exact value lies inside the simulated confidence interval and the
//! relative error is within 2 % for means and 3 % for tails and for probabilities of at least 0.05
//! (smaller probabilities are held to the interval only, and to an absolute error of 0.005).

use crate::analytic::{self, ClosedFinite, ErlangA, Mm1, Mmc, MmcD, MmcK};
use crate::experiment::load::{merge, parse_file};
use crate::experiment::{validate, Scenario};
use crate::sim::{metric_index, RunRecord};
use crate::stats::Interval;
use crate::sweep::{run_one, summarize};
use rayon::prelude::*;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mean,
    Tail,
    Probability,
}

/// One quantity to compare.
#[derive(Clone, Debug)]
pub struct Check {
    pub label: &'static str,
    /// The metric of the results it is read from.
    pub metric: &'static str,
    /// Multiply the metric by this to get the exact value's unit (e.g. ms -> s: 0.001).
    pub scale: f64,
    pub exact: f64,
    pub kind: Kind,
}

/// One configuration of the model with its exact answers.
#[derive(Clone, Debug)]
pub struct Case {
    pub model: &'static str,
    pub mapping: &'static str,
    pub params: String,
    pub doc: Value,
    pub checks: Vec<Check>,
}

/// The outcome of one check.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub model: &'static str,
    pub mapping: &'static str,
    pub params: String,
    pub label: &'static str,
    pub kind: Kind,
    pub exact: f64,
    pub simulated: Interval,
    pub rel_error: f64,
    pub inside: bool,
    pub within_tolerance: bool,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.inside && self.within_tolerance
    }
}

/// The seed of the suite as run by the test suite.
pub const SEED: u64 = 2;

fn base(over: Value) -> Value {
    let mut doc = json!({
        "name": "analytic", "seed": SEED,
        "run": {"duration_s": 200, "warmup_s": 20, "replications": 10},
        "clients": {"mode": "open"},
        "app": {"instances": 1, "pools": {"primary": {"target": "primary", "reset_query": false,
            "max_queries": 0, "max_inactive_connection_lifetime_s": 0}}},
        "postgres": {"max_connections": 100000, "cores": 0, "backend_start": {"const_ms": 0}},
        "network": {"app_bouncer_rtt_ms": 0, "bouncer_postgres_rtt_ms": 0, "app_postgres_rtt_ms": 0}
    });
    merge(&mut doc, &over);
    doc
}

/// PgBouncer in transaction mode with `c` servers open from the start and no costs of its own.
fn ideal_bouncer(c: u32, max_client_conn: u32) -> Value {
    json!({"pool_mode": "transaction", "max_client_conn": max_client_conn, "default_pool_size": c,
        "min_pool_size": c, "prewarm": true, "cpu_per_query": {"const_ms": 0},
        "client_connect": {"const_ms": 0}, "query_wait_timeout_s": 0, "server_lifetime_s": 0,
        "server_idle_timeout_s": 0})
}

fn exp_ms(mean_s: f64) -> Value {
    json!({"exp": {"mean_ms": mean_s * 1000.0}})
}

/// App pool of `c` connections as the servers; exponential service of mean 1/μ.
fn app_pool_servers(lambda: f64, mu: f64, c: u32, over: Value) -> Value {
    let mut d = base(json!({
        "clients": {"rate_per_s": lambda},
        "workload": {"transactions": [{"name": "q", "statement_wait": exp_ms(1.0 / mu)}]},
        "app": {"pools": {"primary": {"min_size": c, "max_size": c}}}
    }));
    merge(&mut d, &over);
    d
}

fn mean(label: &'static str, metric: &'static str, scale: f64, exact: f64) -> Check {
    Check {
        label,
        metric,
        scale,
        exact,
        kind: Kind::Mean,
    }
}
fn tail(label: &'static str, metric: &'static str, scale: f64, exact: f64) -> Check {
    Check {
        label,
        metric,
        scale,
        exact,
        kind: Kind::Tail,
    }
}
fn prob(label: &'static str, metric: &'static str, exact: f64) -> Check {
    Check {
        label,
        metric,
        scale: 1.0,
        exact,
        kind: Kind::Probability,
    }
}

const MS: f64 = 0.001;

/// Every case of the suite.
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    // --- M/M/1
    for (l, m) in [(80.0, 100.0), (30.0, 50.0)] {
        let q = Mm1 { lambda: l, mu: m };
        v.push(Case {
            model: "M/M/1",
            mapping: "app pool of 1",
            params: format!("λ={l}, μ={m}"),
            doc: app_pool_servers(
                l,
                m,
                1,
                json!({"run": {"duration_s": 2000, "warmup_s": 100}}),
            ),
            checks: vec![
                mean(
                    "mean response (s)",
                    "latency_mean_ms",
                    MS,
                    q.mean_response(),
                ),
                tail(
                    "P95 response (s)",
                    "latency_p95_ms",
                    MS,
                    q.response_quantile(0.95),
                ),
            ],
        });
    }
    // --- M/M/c, the app pool as the servers
    for (l, m, c, dur) in [(3000.0, 100.0, 35, 1000.0), (450.0, 50.0, 10, 5000.0)] {
        let q = Mmc {
            lambda: l,
            mu: m,
            c,
        };
        let mut checks = vec![
            mean(
                "mean response (s)",
                "latency_mean_ms",
                MS,
                q.mean_response(),
            ),
            tail(
                "P95 response (s)",
                "latency_p95_ms",
                MS,
                q.response_quantile(0.95),
            ),
            prob("P(wait)", "pool_exhaustion_fraction", q.p_wait()),
            mean("mean wait (s)", "acquire_wait_mean_ms", MS, q.mean_wait()),
        ];
        if q.p_wait() > 0.05 {
            checks.push(tail(
                "P95 wait (s)",
                "acquire_wait_p95_ms",
                MS,
                q.wait_quantile(0.95),
            ));
        }
        v.push(Case {
            model: "M/M/c",
            mapping: "app pool of c",
            params: format!("λ={l}, μ={m}, c={c}"),
            doc: app_pool_servers(
                l,
                m,
                c,
                json!({"run": {"duration_s": dur, "warmup_s": dur / 10.0}}),
            ),
            checks,
        });
    }
    // --- M/M/c, PgBouncer (transaction mode) as the servers
    {
        let (l, m, c) = (1600.0, 200.0, 10);
        let q = Mmc {
            lambda: l,
            mu: m,
            c,
        };
        let doc = base(json!({
            "run": {"duration_s": 500, "warmup_s": 50},
            "clients": {"rate_per_s": l},
            "workload": {"transactions": [{"name": "q", "statement_wait": exp_ms(1.0 / m)}]},
            "app": {"pools": {"primary": {"target": "pgbouncer", "min_size": 300, "max_size": 300}}},
            "pgbouncer": ideal_bouncer(c, 10000)
        }));
        v.push(Case {
            model: "M/M/c",
            mapping: "PgBouncer pool of c (transaction mode)",
            params: format!("λ={l}, μ={m}, c={c}"),
            doc,
            checks: vec![
                mean(
                    "mean response (s)",
                    "latency_mean_ms",
                    MS,
                    q.mean_response(),
                ),
                tail(
                    "P95 response (s)",
                    "latency_p95_ms",
                    MS,
                    q.response_quantile(0.95),
                ),
                mean("mean wait (s)", "bouncer_avg_wait_ms", MS, q.mean_wait()),
            ],
        });
    }
    // --- M/M/c, PostgreSQL's cores as the servers (processor sharing): the mean response
    {
        let (l, m, c) = (300.0, 100.0, 4);
        let q = Mmc {
            lambda: l,
            mu: m,
            c,
        };
        let doc = base(json!({
            "run": {"duration_s": 1000, "warmup_s": 100},
            "clients": {"rate_per_s": l},
            "workload": {"transactions": [{"name": "q", "statement_cpu": exp_ms(1.0 / m)}]},
            "app": {"pools": {"primary": {"min_size": 200, "max_size": 200}}},
            "postgres": {"cores": c}
        }));
        v.push(Case {
            model: "M/M/c (PS)",
            mapping: "PostgreSQL with c cores, statements all CPU",
            params: format!("λ={l}, μ={m}, c={c}"),
            doc,
            checks: vec![mean(
                "mean response (s)",
                "latency_mean_ms",
                MS,
                q.mean_response(),
            )],
        });
    }
    // --- M/M/c/K: the app instance's admission limit K, the pool as the c servers
    for (l, m, c, k) in [(1200.0, 100.0, 10, 20), (500.0, 40.0, 8, 12)] {
        let q = MmcK {
            lambda: l,
            mu: m,
            c,
            k,
        };
        v.push(Case {
            model: "M/M/c/K",
            mapping: "app admission limit K, app pool of c",
            params: format!("λ={l}, μ={m}, c={c}, K={k}"),
            doc: app_pool_servers(l, m, c, json!({"app": {"max_in_flight": k}})),
            checks: vec![
                prob("blocking", "admission_rejected_rate", q.blocking()),
                mean(
                    "mean response, admitted (s)",
                    "latency_mean_ms",
                    MS,
                    q.mean_response_admitted(),
                ),
                mean("throughput (1/s)", "throughput_rps", 1.0, q.throughput()),
            ],
        });
    }
    // --- Erlang B: PgBouncer's max_client_conn with a new connection per request
    {
        let (l, m, c) = (800.0, 100.0, 10);
        let b = analytic::erlang_b(c, l / m);
        let doc = base(json!({
            "clients": {"rate_per_s": l},
            "workload": {"transactions": [{"name": "q", "statement_wait": exp_ms(1.0 / m)}]},
            "app": {"pools": {"primary": {"kind": "none", "target": "pgbouncer"}}},
            "pgbouncer": ideal_bouncer(c, c)
        }));
        v.push(Case {
            model: "Erlang B (M/M/c/c)",
            mapping: "max_client_conn = c, one connection per request",
            params: format!("λ={l}, μ={m}, c={c}"),
            doc,
            checks: vec![prob("blocking", "max_client_conn_rate", b)],
        });
    }
    // --- Erlang A: exponential acquire timeout
    for (l, m, c, pat) in [(2500.0, 100.0, 20, 0.05), (900.0, 50.0, 15, 0.1)] {
        let q = ErlangA {
            lambda: l,
            mu: m,
            c,
            gamma: 1.0 / pat,
        };
        v.push(Case {
            model: "Erlang A (M/M/c+M)",
            mapping: "app pool of c, exponential acquire timeout",
            params: format!("λ={l}, μ={m}, c={c}, patience {pat} s"),
            doc: app_pool_servers(
                l,
                m,
                c,
                json!({"app": {"pools": {"primary": {"acquire_timeout": exp_ms(pat)}}}}),
            ),
            checks: vec![prob("P(abandon)", "acquire_timeout_rate", q.p_abandon())],
        });
    }
    // --- M/M/c+D: constant acquire timeout (what real pools have)
    for (l, m, c, tau) in [(950.0, 100.0, 10, 0.02), (1300.0, 100.0, 12, 0.01)] {
        let q = MmcD {
            lambda: l,
            mu: m,
            c,
            tau,
        };
        v.push(Case {
            model: "M/M/c+D",
            mapping: "app pool of c, constant acquire timeout",
            params: format!("λ={l}, μ={m}, c={c}, τ={tau} s"),
            doc: app_pool_servers(
                l,
                m,
                c,
                json!({"run": {"duration_s": 500, "warmup_s": 50},
                       "app": {"pools": {"primary": {"acquire_timeout_ms": tau * 1000.0}}}}),
            ),
            checks: vec![
                prob("P(abandon)", "acquire_timeout_rate", q.p_abandon()),
                mean(
                    "mean wait, all (s)",
                    "acquire_wait_mean_ms",
                    MS,
                    q.mean_wait(),
                ),
            ],
        });
    }
    // --- closed finite-source model
    for (n, z, s, c) in [(1000, 0.25, 0.01, 35), (200, 0.5, 0.02, 10)] {
        let q = ClosedFinite {
            n_users: n,
            think: z,
            service: s,
            c,
        };
        let doc = base(json!({
            "run": {"duration_s": 1000, "warmup_s": 50},
            "clients": {"mode": "closed", "users": n, "think_time": exp_ms(z)},
            "workload": {"transactions": [{"name": "q", "statement_wait": exp_ms(s)}]},
            "app": {"pools": {"primary": {"min_size": c, "max_size": c}}}
        }));
        v.push(Case {
            model: "closed finite-source",
            mapping: "N users with think time, app pool of c",
            params: format!("N={n}, Z={z} s, S={s} s, c={c}"),
            doc,
            checks: vec![
                mean("throughput (1/s)", "throughput_rps", 1.0, q.throughput()),
                mean(
                    "mean response (s)",
                    "latency_mean_ms",
                    MS,
                    q.mean_response(),
                ),
            ],
        });
    }
    // --- M/G/1-PS with lognormal service: insensitive, mean response S / (1 − ρ)
    {
        let (median, p95): (f64, f64) = (4.0, 20.0);
        let z95 = 1.644_853_626_951_472_2_f64;
        let sigma = (p95 / median).ln() / z95;
        let mean_s = median * (sigma * sigma / 2.0).exp() / 1000.0;
        let rho = 0.7;
        let l = rho / mean_s;
        let doc = base(json!({
            "run": {"duration_s": 3000, "warmup_s": 100},
            "clients": {"rate_per_s": l},
            "workload": {"transactions": [{"name": "q", "statement_cpu": {"lognormal": {"median_ms": median, "p95_ms": p95}}}]},
            "app": {"pools": {"primary": {"min_size": 200, "max_size": 200}}},
            "postgres": {"cores": 1}
        }));
        v.push(Case {
            model: "M/G/1-PS",
            mapping: "PostgreSQL with 1 core, lognormal CPU",
            params: format!("ρ={rho}, lognormal median {median} ms, P95 {p95} ms"),
            doc,
            checks: vec![mean(
                "mean response (s)",
                "latency_mean_ms",
                MS,
                analytic::mg1_ps_mean_response(l, mean_s),
            )],
        });
    }
    v
}

/// Build a case's scenario (panics on an invalid case: a bug in the suite).
pub fn scenario(case: &Case) -> Scenario {
    let (mut f, problems) = parse_file(&case.doc);
    assert!(problems.is_empty(), "{}: {problems:?}", case.model);
    validate(&mut f)
        .unwrap_or_else(|e| panic!("{}: {e}", case.model))
        .0
}

/// The same case with another master seed and its run length scaled (for coverage studies).
pub fn variant(case: &Case, seed: u64, length: f64) -> Case {
    let mut c = case.clone();
    c.doc["seed"] = json!(seed);
    for k in ["duration_s", "warmup_s"] {
        if let Some(x) = c.doc["run"][k].as_f64() {
            c.doc["run"][k] = json!(x * length);
        }
    }
    c
}

/// Simulate a case (replications in parallel) and compare every check.
pub fn run_case(case: &Case) -> (Vec<Outcome>, Vec<RunRecord>) {
    let sc = scenario(case);
    let recs: Vec<RunRecord> = (0..sc.run.replications)
        .into_par_iter()
        .map(|r| run_one(&sc, r))
        .collect();
    let summary = summarize(&recs, sc.run.confidence);
    let outcomes = case
        .checks
        .iter()
        .map(|ch| {
            let iv = summary[metric_index(ch.metric)];
            let simulated = Interval {
                mean: iv.mean * ch.scale,
                low: iv.low * ch.scale,
                high: iv.high * ch.scale,
                half_width: iv.half_width.map(|h| h * ch.scale),
                n: iv.n,
            };
            let rel_error = (simulated.mean - ch.exact).abs() / ch.exact.abs().max(1e-300);
            let inside = simulated.low <= ch.exact && ch.exact <= simulated.high;
            let within_tolerance = match ch.kind {
                Kind::Mean => rel_error <= 0.02,
                Kind::Tail => rel_error <= 0.03,
                Kind::Probability if ch.exact >= 0.05 => rel_error <= 0.03,
                Kind::Probability => (simulated.mean - ch.exact).abs() <= 0.005,
            };
            Outcome {
                model: case.model,
                mapping: case.mapping,
                params: case.params.clone(),
                label: ch.label,
                kind: ch.kind,
                exact: ch.exact,
                simulated,
                rel_error,
                inside,
                within_tolerance,
            }
        })
        .collect();
    (outcomes, recs)
}

/// The Markdown table of outcomes.
pub fn markdown(outcomes: &[Outcome]) -> String {
    let mut s = String::from(
        "| model | mapped onto | parameters | quantity | exact | simulated (95 % CI) | rel. error | in CI | within tol. |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let hw = o.simulated.half_width.unwrap_or(0.0);
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} ± {} | {:.2} % | {} | {} |\n",
            o.model,
            o.mapping,
            o.params,
            o.label,
            sig(o.exact),
            sig(o.simulated.mean),
            sig(hw),
            o.rel_error * 100.0,
            if o.inside { "yes" } else { "**no**" },
            if o.within_tolerance { "yes" } else { "**no**" },
        ));
    }
    s
}

fn sig(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        let digits = (5 - x.abs().log10().floor() as i32 - 1).clamp(0, 9) as usize;
        format!("{x:.digits$}")
    }
}
