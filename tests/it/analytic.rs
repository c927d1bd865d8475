//! The analytic validation suite (see `poolsim::validation`): every degenerate configuration of
//! the full model reproduces its exact queueing result — inside the simulated 95 % interval and
//! within 2 % (means) or 3 % (tails, probabilities ≥ 0.05) — and Little's law holds in every run.

use poolsim::validation::{cases, markdown, run_case};

#[test]
fn the_model_reproduces_the_exact_queueing_results() {
    let mut all = Vec::new();
    let mut little = Vec::new();
    for case in cases() {
        let (outcomes, recs) = run_case(&case);
        for r in &recs {
            little.push((
                case.model,
                case.params.clone(),
                r.get("littles_law_residual"),
            ));
        }
        all.extend(outcomes);
    }
    let table = markdown(&all);
    println!("{table}");
    let failed: Vec<_> = all.iter().filter(|o| !o.passed()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} checks failed:\n{table}",
        failed.len(),
        all.len()
    );
    for (model, params, res) in little {
        assert!(
            res < 0.01,
            "Little's law residual {res} in {model} ({params})"
        );
    }
}
