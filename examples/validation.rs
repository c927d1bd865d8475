//! Regenerates the analytic tables of VALIDATION.md.
//!
//! `cargo run --release --example validation` — every case of the analytic suite at the test
//! suite's seed, exact against simulated (the table the tests assert on).
//! `cargo run --release --example validation -- coverage 40 0.2` — the empirical coverage of the
//! 95 % intervals: each case re-run with 40 other master seeds at 0.2 × its run length, counting
//! how often the exact value falls inside the interval (it should be about 95 %).

use poolsim::validation::{cases, markdown, run_case, variant};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let t = Instant::now();
    if args.get(1).map(String::as_str) == Some("coverage") {
        let seeds: u64 = args.get(2).and_then(|x| x.parse().ok()).unwrap_or(40);
        let scale: f64 = args.get(3).and_then(|x| x.parse().ok()).unwrap_or(0.2);
        println!("| model | parameters | quantity | exact | coverage of the 95 % CI | mean rel. error |\n|---|---|---|---|---|---|");
        let (mut inside_all, mut total_all) = (0usize, 0usize);
        for case in cases() {
            let mut inside = vec![0usize; case.checks.len()];
            let mut err = vec![0.0f64; case.checks.len()];
            for seed in 1000..1000 + seeds {
                let (outcomes, _) = run_case(&variant(&case, seed, scale));
                for (i, o) in outcomes.iter().enumerate() {
                    inside[i] += o.inside as usize;
                    err[i] += (o.simulated.mean - o.exact) / o.exact / seeds as f64;
                }
            }
            for (i, ch) in case.checks.iter().enumerate() {
                inside_all += inside[i];
                total_all += seeds as usize;
                println!(
                    "| {} | {} | {} | {:.6} | {}/{} ({:.0} %) | {:+.2} % |",
                    case.model,
                    case.params,
                    ch.label,
                    ch.exact,
                    inside[i],
                    seeds,
                    100.0 * inside[i] as f64 / seeds as f64,
                    err[i] * 100.0
                );
            }
        }
        println!(
            "\nOverall: {inside_all} of {total_all} intervals contain the exact value ({:.1} %).",
            100.0 * inside_all as f64 / total_all as f64
        );
        eprintln!("{:.1} s", t.elapsed().as_secs_f64());
        return;
    }
    let mut all = Vec::new();
    for case in cases() {
        let (outcomes, recs) = run_case(&case);
        let little = recs
            .iter()
            .map(|r| r.get("littles_law_residual"))
            .fold(0.0, f64::max);
        eprintln!(
            "{} ({}): worst Little's-law residual {:.2e}",
            case.model, case.params, little
        );
        all.extend(outcomes);
    }
    print!("{}", markdown(&all));
    let failed = all.iter().filter(|o| !o.passed()).count();
    eprintln!(
        "{} checks, {} failed, {:.1} s",
        all.len(),
        failed,
        t.elapsed().as_secs_f64()
    );
}
