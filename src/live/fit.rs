//! Model fitting for `poolsim calibrate`: turning measurements of a real database into the
//! parameters the simulator needs. Everything here is a pure function of the numbers passed in.
//!
//! * [`fit_usl`] fits the Universal Scalability Law to throughput measured at several
//!   concurrencies: contention σ, coherency κ, the single-client rate λ, the concurrency of peak
//!   throughput and that peak.
//! * [`best_fit`] and [`fit_all`] fit service-time samples (ms) to a lognormal, a gamma and an
//!   exponential by maximum likelihood, judge each with the Kolmogorov–Smirnov statistic, and fall
//!   back to an empirical quantile table when no family fits. [`DistFit`] serializes exactly like
//!   a duration of an experiment file.
//! * [`split_wait_cpu`] splits a statement's single-client latency into CPU time and time spent
//!   waiting off the CPU, from the throughput ceiling the CPUs impose.
//!
//! Nothing here panics on bad data: every entry point validates its input and returns a
//! [`FitError`] that says what was wrong.
//!
//! # USL fit
//!
//! The model is `X(N) = λN / (1 + σ(N − 1) + κN(N − 1))`. The parameters minimise the sum of
//! squared throughput residuals (unweighted, as is usual for the USL, so that the points near the
//! peak, where the model matters, carry the most weight) under the constraints λ > 0, 0 ≤ σ < 1,
//! κ ≥ 0, by a Levenberg–Marquardt iteration (Marquardt's diagonal scaling, Nielsen's damping
//! update). A parameter that sits on a bound and whose gradient points out of the feasible region
//! is held on the bound for that step, so the iteration converges to constrained optima such as
//! σ = 0 exactly; σ or κ whose effect on every prediction in the measured range is below 1e-10
//! (relative) is reported as exactly 0.
//!
//! The iteration starts from several points and keeps the best optimum: the linearisation
//! `N/X = 1/λ + (σ/λ)(N − 1) + (κ/λ)N(N − 1)` solved by ordinary least squares (the classic
//! `N/C − 1 = σ(N − 1) + κN(N − 1)` with `C = X/X(1)`, but with X(1) estimated rather than
//! taken from a single measurement), that classic form anchored at the measured lowest
//! concurrency, and the best node of a coarse (σ, κ) grid with λ solved exactly.
//!
//! Standard errors come from the Jacobian at the optimum, `cov = s²(JᵀJ)⁻¹` with
//! `s² = SSE/(n − 3)`, and the 95 % intervals are `estimate ± t(0.975, n − 3)·se`, clipped to the
//! admissible range of each parameter. They are the usual linearised (Wald) intervals: they
//! assume independent residuals of equal variance and a model that is close to linear over the
//! interval; with a parameter on its bound they are one-sided in effect. A fit needs at least
//! four points at three or more distinct concurrencies, so that there is one degree of freedom
//! left for the error estimate.
//!
//! # Service-time distributions
//!
//! Samples must be finite and positive (milliseconds); at least [`MIN_DIST_SAMPLES`] of them and
//! not all equal. Maximum-likelihood estimates:
//!
//! * lognormal: μ and σ are the mean and (population) standard deviation of `ln x`; reported as
//!   the median `e^μ` and the 95th percentile `e^(μ + 1.645σ)`, the way experiment files take it;
//! * gamma: the shape k solves `ln k − ψ(k) = ln(mean) − mean(ln x)` (Newton's method from
//!   Minka's closed-form start, safeguarded by bisection), the scale is `mean/k`;
//! * exponential: the mean.
//!
//! Each fit is scored by the Kolmogorov–Smirnov distance D between the sample and the fitted CDF,
//! with the asymptotic p-value of the Kolmogorov distribution at `(√n + 0.12 + 0.11/√n)·D`
//! (Stephens' small-sample correction). The parameters are estimated from the same sample, which
//! makes the test conservative (the true p-value is smaller than the one reported): read the
//! p-value as a measure of fit, not as an exact significance level.
//!
//! [`best_fit`] picks the family with the smallest D, with one refinement: the exponential is the
//! gamma with shape 1, and a gamma fitted to exponential data almost always has a slightly
//! smaller D thanks to its extra parameter. When the gamma wins but a likelihood-ratio test at the
//! 1 % level cannot tell its shape from 1 (and the exponential passes the KS test too), the
//! exponential is reported instead. When even the best family has a p-value below
//! [`NO_FIT_P_VALUE`], the result is an empirical quantile table at
//! [`EMPIRICAL_PROBABILITIES`], scored against its own piecewise-linear CDF (that figure says how
//! faithfully the table reproduces the sample, it is not a test).
//!
//! # Wait versus CPU time
//!
//! See [`split_wait_cpu`].

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Exp, LogNormal, StudentsT};
use statrs::function::erf::erfc;
use statrs::function::gamma::{checked_gamma_lr, digamma, ln_gamma};

/// z-score of the 95th percentile of the standard normal distribution.
const Z95: f64 = 1.644_853_626_951_472_2;

/// 99th percentile of the χ² distribution with one degree of freedom (likelihood-ratio test of
/// exponential against gamma at the 1 % level).
const CHI2_1_P99: f64 = 6.634_896_601_021_214;

/// Errors of the fits. Every message says what was wrong with the data.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Not enough data to fit the model.
    #[error("too few {what}: need at least {needed}, got {got}")]
    TooFewSamples {
        /// What was counted.
        what: &'static str,
        /// The minimum the fit needs.
        needed: usize,
        /// How many there were.
        got: usize,
    },
    /// A measurement is not a finite number in the admissible range.
    #[error("{what} at index {index} is {value}: it must be finite and {requirement}")]
    InvalidValue {
        /// The quantity (for example "service time (ms)").
        what: &'static str,
        /// Index of the measurement in the input slice.
        index: usize,
        /// The offending value.
        value: f64,
        /// The range it must be in (for example "> 0").
        requirement: &'static str,
    },
    /// A scalar argument is not a finite number in the admissible range.
    #[error("{what} is {value}: it must be finite and {requirement}")]
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// The offending value.
        value: f64,
        /// The range it must be in.
        requirement: &'static str,
    },
    /// The data cannot identify the model (for example, all samples equal).
    #[error("{0}")]
    Degenerate(String),
    /// An iterative estimate did not converge.
    #[error("{what} did not converge within {iterations} iterations")]
    NoConvergence {
        /// The estimate.
        what: &'static str,
        /// The iteration limit that was reached.
        iterations: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Universal Scalability Law
// ---------------------------------------------------------------------------------------------

/// Minimum number of (concurrency, throughput) points for [`fit_usl`]: three parameters plus one
/// degree of freedom for the error estimate.
pub const USL_MIN_POINTS: usize = 4;

/// Minimum number of distinct concurrencies for [`fit_usl`].
pub const USL_MIN_LEVELS: usize = 3;

/// Upper bound used for σ (the model requires σ < 1).
const SIGMA_MAX: f64 = 1.0 - 1e-9;

/// Iteration limit of one Levenberg–Marquardt run.
const LM_MAX_ITER: usize = 1000;

/// A fitted Universal Scalability Law, `X(N) = λN / (1 + σ(N − 1) + κN(N − 1))`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UslFit {
    /// λ: throughput of one client without contention (the unit of the input throughput).
    pub lambda: f64,
    /// σ: contention (serial fraction), in [0, 1).
    pub sigma: f64,
    /// κ: coherency (crosstalk) penalty, ≥ 0.
    pub kappa: f64,
    /// Standard error of λ.
    pub lambda_se: f64,
    /// Standard error of σ.
    pub sigma_se: f64,
    /// Standard error of κ.
    pub kappa_se: f64,
    /// Approximate 95 % interval of λ, clipped to λ ≥ 0.
    pub lambda_ci: (f64, f64),
    /// Approximate 95 % interval of σ, clipped to [0, 1].
    pub sigma_ci: (f64, f64),
    /// Approximate 95 % interval of κ, clipped to κ ≥ 0.
    pub kappa_ci: (f64, f64),
    /// Coefficient of determination of the throughput fit, `1 − SSE/SST`.
    pub r_squared: f64,
    /// Residual standard error `s = √(SSE/(n − 3))`, in throughput units.
    pub residual_std_error: f64,
    /// Observed minus fitted throughput, in the order of the input points.
    pub residuals: Vec<f64>,
    /// N* = √((1 − σ)/κ), the (continuous) concurrency of peak throughput, at least 1; `None`
    /// when κ = 0, where throughput never falls. When κ cannot be told from 0 (`kappa_ci.0 == 0`), N* can
    /// lie far beyond the measured concurrencies and means little.
    pub peak_concurrency: Option<f64>,
    /// The highest throughput the model allows: X(N*) when κ > 0, otherwise the asymptote λ/σ
    /// (infinite when σ = 0 as well: linear scaling).
    pub peak_throughput: f64,
    /// Number of points fitted.
    pub n_points: usize,
}

impl UslFit {
    /// Throughput the fitted model predicts at concurrency `n`.
    pub fn throughput(&self, n: f64) -> f64 {
        usl(&[self.lambda, self.sigma, self.kappa], n)
    }
}

fn usl(p: &[f64; 3], n: f64) -> f64 {
    p[0] * n / (1.0 + p[1] * (n - 1.0) + p[2] * n * (n - 1.0))
}

fn usl_sse(data: &[(f64, f64)], p: &[f64; 3]) -> f64 {
    data.iter()
        .map(|&(n, y)| {
            let r = y - usl(p, n);
            r * r
        })
        .sum()
}

/// JᵀJ and Jᵀr of the model at `p`, with J = ∂X/∂(λ, σ, κ) and r = observed − fitted.
fn usl_normal_equations(data: &[(f64, f64)], p: &[f64; 3]) -> ([[f64; 3]; 3], [f64; 3]) {
    let mut a = [[0.0; 3]; 3];
    let mut g = [0.0; 3];
    for &(n, y) in data {
        let d = 1.0 + p[1] * (n - 1.0) + p[2] * n * (n - 1.0);
        let f = p[0] * n / d;
        let q = p[0] * n * (n - 1.0) / (d * d);
        let j = [n / d, -q, -q * n];
        let r = y - f;
        for row in 0..3 {
            g[row] += j[row] * r;
            for col in 0..3 {
                a[row][col] += j[row] * j[col];
            }
        }
    }
    (a, g)
}

fn clamp_usl(p: [f64; 3]) -> [f64; 3] {
    [p[0], p[1].clamp(0.0, SIGMA_MAX), p[2].max(0.0)]
}

/// Solves the leading `k`×`k` block of `a·x = b` by Gaussian elimination with partial pivoting.
/// `None` when the block is singular to working precision.
fn solve_small(mut a: [[f64; 3]; 3], mut b: [f64; 3], k: usize) -> Option<[f64; 3]> {
    let scale = (0..k)
        .flat_map(|r| (0..k).map(move |c| (r, c)))
        .map(|(r, c)| a[r][c].abs())
        .fold(0.0, f64::max);
    if !(scale > 0.0 && scale.is_finite()) {
        return None;
    }
    for col in 0..k {
        let pivot = (col..k).max_by(|&r1, &r2| a[r1][col].abs().total_cmp(&a[r2][col].abs()))?;
        if a[pivot][col].abs() <= 1e-14 * scale {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..k {
            let m = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[row][col..k].iter_mut().zip(&pivot_row[col..k]) {
                *x -= m * p;
            }
            b[row] -= m * b[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..k).rev() {
        let s: f64 = (row + 1..k).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Inverse of a symmetric positive semi-definite 3×3 matrix, computed on its unit-diagonal
/// scaling for accuracy. `None` when singular.
fn invert_spd3(a: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let d: Vec<f64> = (0..3).map(|i| a[i][i].sqrt()).collect();
    if d.iter().any(|v| !(*v > 0.0 && v.is_finite())) {
        return None;
    }
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            r[i][j] = a[i][j] / (d[i] * d[j]);
        }
    }
    let mut inv = [[0.0; 3]; 3];
    for j in 0..3 {
        let mut e = [0.0; 3];
        e[j] = 1.0;
        let col = solve_small(r, e, 3)?;
        for i in 0..3 {
            inv[i][j] = col[i] / (d[i] * d[j]);
        }
    }
    Some(inv)
}

/// Ordinary least squares of `target` on up to three regressors (through the origin). Columns are
/// scaled to unit maximum before forming the normal equations.
fn least_squares(rows: &[([f64; 3], f64)], k: usize) -> Option<[f64; 3]> {
    let mut scale = [0.0f64; 3];
    for (x, _) in rows {
        for c in 0..k {
            scale[c] = scale[c].max(x[c].abs());
        }
    }
    if scale[..k].iter().any(|&s| s.is_nan() || s <= 0.0) {
        return None;
    }
    let mut a = [[0.0; 3]; 3];
    let mut b = [0.0; 3];
    for (x, t) in rows {
        for r in 0..k {
            b[r] += x[r] / scale[r] * t;
            for c in 0..k {
                a[r][c] += x[r] / scale[r] * x[c] / scale[c];
            }
        }
    }
    let mut beta = solve_small(a, b, k)?;
    for c in 0..k {
        beta[c] /= scale[c];
    }
    Some(beta)
}

/// Start from the linearisation `N/X = a + b(N − 1) + cN(N − 1)`, `λ = 1/a`, `σ = b/a`, `κ = c/a`.
fn usl_start_linearised(data: &[(f64, f64)]) -> Option<[f64; 3]> {
    let rows: Vec<([f64; 3], f64)> = data
        .iter()
        .map(|&(n, y)| ([1.0, n - 1.0, n * (n - 1.0)], n / y))
        .collect();
    let [a, b, c] = least_squares(&rows, 3)?;
    (a > 0.0).then(|| clamp_usl([1.0 / a, b / a, c / a]))
}

/// Start from `N/C − 1 = σ(N − 1) + κN(N − 1)` with `C = X/X(1)`, X(1) estimated as the mean
/// throughput per client at the lowest measured concurrency.
fn usl_start_anchored(data: &[(f64, f64)]) -> Option<[f64; 3]> {
    let n_min = data.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let at_min: Vec<f64> = data
        .iter()
        .filter(|p| p.0 == n_min)
        .map(|p| p.1 / p.0)
        .collect();
    let x1 = at_min.iter().sum::<f64>() / at_min.len() as f64;
    let rows: Vec<([f64; 3], f64)> = data
        .iter()
        .filter(|p| p.0 > 1.0)
        .map(|&(n, y)| ([n - 1.0, n * (n - 1.0), 0.0], n * x1 / y - 1.0))
        .collect();
    let [s, k, _] = least_squares(&rows, 2)?;
    Some(clamp_usl([x1, s, k]))
}

/// Least-squares λ for fixed σ and κ (the model is linear in λ).
fn usl_profile_lambda(data: &[(f64, f64)], sigma: f64, kappa: f64) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for &(n, y) in data {
        let g = n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0));
        num += g * y;
        den += g * g;
    }
    num / den
}

/// Start from the best node of a coarse (σ, κ) grid, λ profiled out.
fn usl_start_grid(data: &[(f64, f64)]) -> [f64; 3] {
    const SIGMAS: [f64; 8] = [0.0, 0.001, 0.01, 0.03, 0.1, 0.3, 0.6, 0.9];
    const KAPPAS: [f64; 8] = [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0];
    let mut best = (
        [usl_profile_lambda(data, 0.0, 0.0), 0.0, 0.0],
        f64::INFINITY,
    );
    for &s in &SIGMAS {
        for &k in &KAPPAS {
            let p = [usl_profile_lambda(data, s, k), s, k];
            let sse = usl_sse(data, &p);
            if sse < best.1 {
                best = (p, sse);
            }
        }
    }
    best.0
}

struct LmOutcome {
    p: [f64; 3],
    sse: f64,
    converged: bool,
}

/// The Levenberg–Marquardt step on the `free` parameters: `(A + μ·diag A) δ = g`, in full
/// coordinates (zero for held parameters). `None` when the system is singular.
fn damped_step(a: &[[f64; 3]; 3], g: &[f64; 3], free: &[usize], mu: f64) -> Option<[f64; 3]> {
    let mut m = [[0.0; 3]; 3];
    let mut b = [0.0; 3];
    for (r, &i) in free.iter().enumerate() {
        b[r] = g[i];
        for (c, &j) in free.iter().enumerate() {
            m[r][c] = a[i][j];
        }
        m[r][r] += mu * a[i][i];
    }
    let reduced = solve_small(m, b, free.len())?;
    let mut step = [0.0; 3];
    for (r, &i) in free.iter().enumerate() {
        step[i] = reduced[r];
    }
    Some(step)
}

fn dot3(x: &[f64; 3], y: &[f64; 3]) -> f64 {
    x[0] * y[0] + x[1] * y[1] + x[2] * y[2]
}

/// Projected Levenberg–Marquardt with Marquardt's scaling and Nielsen's update of the damping
/// from the ratio of actual to predicted decrease. `data` throughput should be of order 1.
///
/// Converged when the undamped Gauss–Newton step promises less than a 1e-12 relative decrease of
/// the sum of squares (a parameter change far below its standard error), or when no step,
/// however short, decreases it any more (a minimum to working precision).
fn usl_levenberg_marquardt(data: &[(f64, f64)], start: [f64; 3]) -> LmOutcome {
    let total: f64 = data.iter().map(|p| p.1 * p.1).sum();
    let mut p = start;
    let mut sse = usl_sse(data, &p);
    let (mut mu, mut nu) = (1e-3, 2.0);
    if !sse.is_finite() {
        return LmOutcome {
            p,
            sse,
            converged: false,
        };
    }
    for _ in 0..LM_MAX_ITER {
        let converged = LmOutcome {
            p,
            sse,
            converged: true,
        };
        if sse <= 1e-28 * total {
            return converged;
        }
        let (a, g) = usl_normal_equations(data, &p);
        // Hold a parameter on its bound when the descent direction points outside.
        let held = [
            false,
            (p[1] <= 0.0 && g[1] < 0.0) || (p[1] >= SIGMA_MAX && g[1] > 0.0),
            p[2] <= 0.0 && g[2] < 0.0,
        ];
        let free: Vec<usize> = (0..3).filter(|&i| !held[i]).collect();
        if let Some(gauss_newton) = damped_step(&a, &g, &free, 0.0) {
            if dot3(&gauss_newton, &g) <= 1e-12 * sse {
                return converged;
            }
        }
        loop {
            if let Some(step) = damped_step(&a, &g, &free, mu) {
                let mut trial = p;
                for i in 0..3 {
                    trial[i] += step[i];
                }
                let mut trial = clamp_usl(trial);
                if trial[0] <= 0.0 {
                    trial[0] = 0.5 * p[0];
                }
                let trial_sse = usl_sse(data, &trial);
                if trial_sse.is_finite() && trial_sse < sse {
                    let taken = [trial[0] - p[0], trial[1] - p[1], trial[2] - p[2]];
                    let a_taken = [0, 1, 2].map(|r| dot3(&a[r], &taken));
                    let predicted = 2.0 * dot3(&taken, &g) - dot3(&taken, &a_taken);
                    let rho = if predicted > 0.0 {
                        (sse - trial_sse) / predicted
                    } else {
                        1.0
                    };
                    mu *= (1.0f64 / 3.0).max(1.0 - (2.0 * rho - 1.0).powi(3));
                    mu = mu.max(1e-15);
                    nu = 2.0;
                    p = trial;
                    sse = trial_sse;
                    break;
                }
            }
            mu *= nu;
            nu *= 2.0;
            if mu.is_nan() || mu > 1e16 {
                return converged;
            }
        }
    }
    LmOutcome {
        p,
        sse,
        converged: false,
    }
}

/// `(concurrency, value)` points: concurrencies finite and ≥ 1, values (named `what`) finite
/// and > 0.
fn check_concurrency_points(points: &[(f64, f64)], what: &'static str) -> Result<(), FitError> {
    for (index, &(n, x)) in points.iter().enumerate() {
        if !(n.is_finite() && n >= 1.0) {
            return Err(FitError::InvalidValue {
                what: "concurrency",
                index,
                value: n,
                requirement: ">= 1",
            });
        }
        if !(x.is_finite() && x > 0.0) {
            return Err(FitError::InvalidValue {
                what,
                index,
                value: x,
                requirement: "> 0",
            });
        }
    }
    Ok(())
}

/// Fits the Universal Scalability Law to `(concurrency, throughput)` points by constrained
/// non-linear least squares (see the module documentation).
///
/// Concurrencies must be finite and ≥ 1, throughputs finite and > 0 (any unit: λ and the peak
/// come out in the same unit). Several points per concurrency are welcome; at least
/// [`USL_MIN_POINTS`] points at [`USL_MIN_LEVELS`] distinct concurrencies are required.
pub fn fit_usl(points: &[(f64, f64)]) -> Result<UslFit, FitError> {
    check_concurrency_points(points, "throughput")?;
    if points.len() < USL_MIN_POINTS {
        return Err(FitError::TooFewSamples {
            what: "(concurrency, throughput) points for a USL fit",
            needed: USL_MIN_POINTS,
            got: points.len(),
        });
    }
    let mut levels: Vec<f64> = points.iter().map(|p| p.0).collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    if levels.len() < USL_MIN_LEVELS {
        return Err(FitError::TooFewSamples {
            what: "distinct concurrencies for a USL fit",
            needed: USL_MIN_LEVELS,
            got: levels.len(),
        });
    }
    let n_max = levels[levels.len() - 1];

    // Work with throughput scaled to a maximum of 1 so that λ, σ and κ have comparable size.
    let y_scale = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let data: Vec<(f64, f64)> = points.iter().map(|&(n, x)| (n, x / y_scale)).collect();

    let mut starts = vec![usl_start_grid(&data)];
    starts.extend(usl_start_linearised(&data));
    starts.extend(usl_start_anchored(&data));
    let best = starts
        .into_iter()
        .filter(|s| s.iter().all(|v| v.is_finite()) && s[0] > 0.0)
        .map(|s| usl_levenberg_marquardt(&data, s))
        .filter(|o| o.converged && o.sse.is_finite())
        .min_by(|a, b| a.sse.total_cmp(&b.sse))
        .ok_or(FitError::NoConvergence {
            what: "USL least-squares fit",
            iterations: LM_MAX_ITER,
        })?;

    // A term that changes no prediction in the measured range by more than 1e-10 (relative) is
    // zero: the optimum is on the bound, and the iteration merely stopped next to it.
    let mut p = best.p;
    if p[1] * (n_max - 1.0) < 1e-10 {
        p[1] = 0.0;
    }
    if p[2] * n_max * (n_max - 1.0) < 1e-10 {
        p[2] = 0.0;
    }
    let sse_scaled = usl_sse(&data, &p);

    let n = points.len();
    let dof = (n - 3) as f64;
    let s2 = sse_scaled / dof;
    let (jtj, _) = usl_normal_equations(&data, &p);
    let se = match invert_spd3(&jtj) {
        Some(inv) => [0, 1, 2].map(|i| (s2 * inv[i][i]).max(0.0).sqrt()),
        None => [f64::INFINITY; 3],
    };
    let t = StudentsT::new(0.0, 1.0, dof)
        .map(|d| d.inverse_cdf(0.975))
        .ok()
        .filter(|t| t.is_finite())
        .unwrap_or(f64::INFINITY);

    let lambda = p[0] * y_scale;
    let (sigma, kappa) = (p[1], p[2]);
    let lambda_se = se[0] * y_scale;
    let interval = |est: f64, se: f64, lo: f64, hi: f64| {
        let half = if se == 0.0 { 0.0 } else { t * se };
        ((est - half).clamp(lo, hi), (est + half).clamp(lo, hi))
    };

    let fitted = UslFit {
        lambda,
        sigma,
        kappa,
        lambda_se,
        sigma_se: se[1],
        kappa_se: se[2],
        lambda_ci: interval(lambda, lambda_se, 0.0, f64::INFINITY),
        sigma_ci: interval(sigma, se[1], 0.0, 1.0),
        kappa_ci: interval(kappa, se[2], 0.0, f64::INFINITY),
        r_squared: 0.0,
        residual_std_error: s2.sqrt() * y_scale,
        residuals: Vec::new(),
        peak_concurrency: None,
        peak_throughput: f64::INFINITY,
        n_points: n,
    };
    let residuals: Vec<f64> = points
        .iter()
        .map(|&(n, x)| x - fitted.throughput(n))
        .collect();
    let sse: f64 = residuals.iter().map(|r| r * r).sum();
    let mean = points.iter().map(|p| p.1 / n as f64).sum::<f64>();
    let sst: f64 = points.iter().map(|p| (p.1 - mean) * (p.1 - mean)).sum();
    let r_squared = if sst > 0.0 {
        1.0 - sse / sst
    } else if sse == 0.0 {
        1.0
    } else {
        0.0
    };
    // Below one client the curve has no meaning: a peak there means throughput falls from N = 1.
    let peak_concurrency = (kappa > 0.0).then(|| ((1.0 - sigma) / kappa).sqrt().max(1.0));
    let peak_throughput = match peak_concurrency {
        Some(n_star) => fitted.throughput(n_star),
        None if sigma > 0.0 => lambda / sigma,
        None => f64::INFINITY,
    };
    Ok(UslFit {
        r_squared,
        residuals,
        peak_concurrency,
        peak_throughput,
        ..fitted
    })
}

// ---------------------------------------------------------------------------------------------
// Service-time distributions
// ---------------------------------------------------------------------------------------------

/// Minimum number of samples for a distribution fit.
pub const MIN_DIST_SAMPLES: usize = 10;

/// [`best_fit`] falls back to an empirical table when the best family's KS p-value is below this.
pub const NO_FIT_P_VALUE: f64 = 0.01;

/// Probabilities of the empirical quantile table. The tail is finer than the body: between
/// two levels the table interpolates linearly, and with only 0.99 and 0.999 a few stalls among
/// thousands of samples (run 38: three of 2,500 round trips of 1.3–2.4 ms where the 99th
/// percentile was 0.14 ms) spread 0.9 % of the mass evenly up to the stalls, which a
/// transaction of five round trips meets at its own 95th percentile.
pub const EMPIRICAL_PROBABILITIES: [f64; 14] = [
    0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.998, 0.999, 1.0,
];

/// Above this shape the gamma CDF is evaluated with the Wilson–Hilferty approximation (error far
/// below any KS resolution there); the incomplete gamma series becomes slow for larger shapes.
const GAMMA_WH_SHAPE: f64 = 1e4;

/// Iteration limit of the gamma shape estimate.
const GAMMA_MAX_ITER: usize = 200;

/// A fitted service-time distribution, in milliseconds. Serializes like a duration of an
/// experiment file: `{"lognormal": {"median_ms": …, "p95_ms": …}}`,
/// `{"gamma": {"shape": …, "mean_ms": …}}`, `{"exp": {"mean_ms": …}}`,
/// `{"empirical": {"quantiles": [[p, ms], …]}}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DistFit {
    /// `exp(N(μ, σ²))`.
    Lognormal {
        /// `e^μ`.
        median_ms: f64,
        /// `e^(μ + 1.645σ)`.
        p95_ms: f64,
        /// Mean of `ln x` (x in ms).
        #[serde(skip)]
        mu: f64,
        /// Standard deviation of `ln x`.
        #[serde(skip)]
        sigma: f64,
    },
    /// Gamma with the given shape and mean (scale = mean / shape).
    Gamma {
        /// Shape k.
        shape: f64,
        /// Mean kθ.
        mean_ms: f64,
    },
    /// Exponential with the given mean.
    #[serde(rename = "exp")]
    Exponential {
        /// Mean.
        mean_ms: f64,
    },
    /// `(probability, ms)` quantiles, probabilities strictly increasing from 0 to 1, values
    /// non-decreasing; linear interpolation in between.
    Empirical {
        /// The table.
        quantiles: Vec<(f64, f64)>,
    },
}

impl DistFit {
    /// Name of the family as it appears in experiment files.
    pub fn family(&self) -> &'static str {
        match self {
            DistFit::Lognormal { .. } => "lognormal",
            DistFit::Gamma { .. } => "gamma",
            DistFit::Exponential { .. } => "exp",
            DistFit::Empirical { .. } => "empirical",
        }
    }

    /// Mean in ms.
    pub fn mean_ms(&self) -> f64 {
        match self {
            DistFit::Lognormal { mu, sigma, .. } => (mu + 0.5 * sigma * sigma).exp(),
            DistFit::Gamma { mean_ms, .. } | DistFit::Exponential { mean_ms } => *mean_ms,
            DistFit::Empirical { quantiles } => quantiles
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) * 0.5 * (w[0].1 + w[1].1))
                .sum(),
        }
    }

    /// CDF at `x_ms`.
    pub fn cdf(&self, x_ms: f64) -> f64 {
        match self {
            DistFit::Lognormal { mu, sigma, .. } => lognormal_cdf(*mu, *sigma, x_ms),
            DistFit::Gamma { shape, mean_ms } => gamma_cdf(*shape, *mean_ms, x_ms),
            DistFit::Exponential { mean_ms } => exp_cdf(*mean_ms, x_ms),
            DistFit::Empirical { quantiles } => table_cdf(quantiles, x_ms, false),
        }
    }
}

/// A fitted distribution with its Kolmogorov–Smirnov figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fitted {
    /// The distribution.
    pub dist: DistFit,
    /// Kolmogorov–Smirnov distance between the sample and the fitted CDF.
    pub ks_d: f64,
    /// Asymptotic p-value of `ks_d` (conservative, see the module documentation).
    pub ks_p: f64,
    /// Number of samples.
    pub n: usize,
}

fn lognormal_cdf(mu: f64, sigma: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    LogNormal::new(mu, sigma).map_or(f64::NAN, |d| d.cdf(x))
}

fn exp_cdf(mean: f64, x: f64) -> f64 {
    Exp::new(1.0 / mean).map_or(f64::NAN, |d| d.cdf(x))
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn gamma_cdf(shape: f64, mean: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if !(shape > 0.0 && mean > 0.0 && shape.is_finite() && mean.is_finite()) {
        return f64::NAN;
    }
    if shape > GAMMA_WH_SHAPE {
        // Wilson–Hilferty: (X / mean)^(1/3) is close to normal with mean 1 − 1/(9k) and variance
        // 1/(9k).
        let v = 1.0 / (9.0 * shape);
        return normal_cdf(((x / mean).cbrt() - (1.0 - v)) / v.sqrt());
    }
    // statrs' Gamma::cdf panics when x·rate underflows to 0 or overflows; take those limits
    // here and call the checked incomplete gamma function.
    let z = x / mean * shape;
    if z == 0.0 {
        0.0
    } else if z.is_infinite() {
        1.0
    } else {
        checked_gamma_lr(shape, z).unwrap_or(f64::NAN)
    }
}

/// Piecewise-linear CDF of a quantile table. `left` gives the left limit F(x−) (the CDF jumps
/// where the table repeats a value).
fn table_cdf(q: &[(f64, f64)], x: f64, left: bool) -> f64 {
    let k = if left {
        q.partition_point(|&(_, v)| v < x)
    } else {
        q.partition_point(|&(_, v)| v <= x)
    };
    if k == 0 {
        return 0.0;
    }
    if k == q.len() {
        return 1.0;
    }
    let ((p0, v0), (p1, v1)) = (q[k - 1], q[k]);
    p0 + (p1 - p0) * (x - v0) / (v1 - v0)
}

/// Kolmogorov–Smirnov distance between the empirical CDF of `sorted` and `cdf` (with left limits
/// `cdf_left`, equal to `cdf` for a continuous distribution). Handles ties in the sample.
fn ks_statistic(sorted: &[f64], cdf: impl Fn(f64) -> f64, cdf_left: impl Fn(f64) -> f64) -> f64 {
    let n = sorted.len() as f64;
    let mut d = 0.0f64;
    let mut i = 0;
    while i < sorted.len() {
        let x = sorted[i];
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == x {
            j += 1;
        }
        let below = i as f64 / n;
        let upto = (j + 1) as f64 / n;
        let (f, fl) = (cdf(x), cdf_left(x));
        if !(f.is_finite() && fl.is_finite()) {
            return 1.0;
        }
        d = d.max((upto - f).abs()).max((fl - below).abs());
        i = j + 1;
    }
    d.min(1.0)
}

/// Asymptotic p-value of a Kolmogorov–Smirnov distance `d` from `n` samples:
/// `Q(λ) = 2 Σ_{j≥1} (−1)^(j−1) e^(−2j²λ²)` at `λ = (√n + 0.12 + 0.11/√n)·d`.
///
/// For λ < 1.18, where that alternating series converges slowly, the equivalent form
/// `Q(λ) = 1 − (√(2π)/λ) Σ_{j≥1} e^(−(2j−1)²π²/(8λ²))` is summed instead. Returns a value in
/// [0, 1]; NaN for a NaN distance or no samples.
pub fn kolmogorov_p_value(d: f64, n: usize) -> f64 {
    if d.is_nan() || n == 0 {
        return f64::NAN;
    }
    let sn = (n as f64).sqrt();
    let lambda = (sn + 0.12 + 0.11 / sn) * d.max(0.0);
    kolmogorov_q(lambda)
}

fn kolmogorov_q(lambda: f64) -> f64 {
    use std::f64::consts::PI;
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda.is_infinite() {
        return 0.0;
    }
    let q = if lambda < 1.18 {
        let c = -PI * PI / (8.0 * lambda * lambda);
        let mut sum = 0.0;
        for j in 1..=100u32 {
            let m = f64::from(2 * j - 1);
            let term = (c * m * m).exp();
            sum += term;
            if term <= 1e-17 * sum {
                break;
            }
        }
        1.0 - (2.0 * PI).sqrt() / lambda * sum
    } else {
        let c = -2.0 * lambda * lambda;
        let mut sum = 0.0;
        for j in 1..=100u32 {
            let jf = f64::from(j);
            let term = (c * jf * jf).exp();
            sum += if j % 2 == 1 { term } else { -term };
            if term <= 1e-17 * sum.abs() {
                break;
            }
        }
        2.0 * sum
    };
    q.clamp(0.0, 1.0)
}

/// From here on `ln k − ψ(k)` and its derivative are summed from their asymptotic series
/// (truncation error below 1e-13 relative).
const DIGAMMA_SERIES_FROM: f64 = 10.0;

/// `ln k − ψ(k)`, the left side of the gamma shape equation. For large k the difference is
/// taken from the asymptotic series, which avoids the cancellation of two nearly equal logs.
fn log_minus_digamma(k: f64) -> f64 {
    if k >= DIGAMMA_SERIES_FROM {
        let r = 1.0 / k;
        let r2 = r * r;
        r * 0.5
            + r2 * (1.0 / 12.0
                - r2 * (1.0 / 120.0 - r2 * (1.0 / 252.0 - r2 * (1.0 / 240.0 - r2 / 132.0))))
    } else {
        k.ln() - digamma(k)
    }
}

/// Derivative of [`log_minus_digamma`]: `1/k − ψ′(k)` (negative).
fn log_minus_digamma_derivative(k: f64) -> f64 {
    let series = |x: f64| {
        // −1/(2x²) − 1/(6x³) + 1/(30x⁵) − 1/(42x⁷) + 1/(30x⁹) − 5/(66x¹¹)
        let r = 1.0 / x;
        let r2 = r * r;
        -r2 * (0.5
            + r * (1.0 / 6.0
                - r2 * (1.0 / 30.0 - r2 * (1.0 / 42.0 - r2 * (1.0 / 30.0 - r2 * 5.0 / 66.0)))))
    };
    if k >= DIGAMMA_SERIES_FROM {
        return series(k);
    }
    // ψ′(k) = Σ_{i<m} 1/(k + i)² + ψ′(k + m), and 1/x − ψ′(x) at x = k + m from the series.
    let mut x = k;
    let mut trigamma_head = 0.0;
    while x < DIGAMMA_SERIES_FROM {
        trigamma_head += 1.0 / (x * x);
        x += 1.0;
    }
    let trigamma = trigamma_head + 1.0 / x - series(x);
    1.0 / k - trigamma
}

/// Maximum-likelihood gamma shape: solves `ln k − ψ(k) = s` for `s > 0`.
fn gamma_shape_mle(s: f64) -> Result<f64, FitError> {
    if !(s > 0.0 && s.is_finite()) {
        return Err(FitError::Degenerate(format!(
            "cannot fit a gamma: ln(mean) − mean(ln x) is {s}, not a finite positive number"
        )));
    }
    // Minka's closed-form approximation, within 1.5 % of the root everywhere.
    let mut k = (3.0 - s + ((s - 3.0) * (s - 3.0) + 24.0 * s).sqrt()) / (12.0 * s);
    let (mut lo, mut hi) = (0.0f64, f64::INFINITY);
    for _ in 0..GAMMA_MAX_ITER {
        let f = log_minus_digamma(k) - s;
        if f == 0.0 {
            return Ok(k);
        }
        // ln k − ψ(k) decreases in k: a positive f means k is below the root.
        if f > 0.0 {
            lo = k;
        } else {
            hi = k;
        }
        let mut next = k - f / log_minus_digamma_derivative(k);
        if !(next > lo && next < hi) {
            next = if hi.is_finite() {
                0.5 * (lo + hi)
            } else {
                2.0 * k
            };
        }
        if (next - k).abs() <= 1e-12 * k || hi - lo <= 1e-12 * k {
            return Ok(next);
        }
        k = next;
    }
    Err(FitError::NoConvergence {
        what: "gamma shape (maximum likelihood)",
        iterations: GAMMA_MAX_ITER,
    })
}

/// Validated, sorted samples with the summaries the fits need.
struct Sample {
    sorted: Vec<f64>,
    mean: f64,
    mean_ln: f64,
    sd_ln: f64,
    /// `ln(mean) − mean(ln x)`, computed without cancellation.
    gamma_s: f64,
}

impl Sample {
    fn new(samples: &[f64]) -> Result<Sample, FitError> {
        for (index, &x) in samples.iter().enumerate() {
            if !(x.is_finite() && x > 0.0) {
                return Err(FitError::InvalidValue {
                    what: "service time (ms)",
                    index,
                    value: x,
                    requirement: "> 0",
                });
            }
        }
        if samples.len() < MIN_DIST_SAMPLES {
            return Err(FitError::TooFewSamples {
                what: "service-time samples for a distribution fit",
                needed: MIN_DIST_SAMPLES,
                got: samples.len(),
            });
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        if max / min - 1.0 < 1e-9 {
            return Err(FitError::Degenerate(format!(
                "all {} samples are equal to {min} ms (to 1e-9): that is a constant, not a \
                 distribution",
                sorted.len()
            )));
        }
        // Summed as x/n so that no sum of finite samples overflows.
        let mean = sorted.iter().map(|x| x / n).sum::<f64>();
        let mean_ln = sorted.iter().map(|x| x.ln()).sum::<f64>() / n;
        let sd_ln = (sorted
            .iter()
            .map(|x| (x.ln() - mean_ln).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        // ln(mean) − mean(ln x) = mean(d − ln(1 + d)) with d = x/mean − 1 (Σd = 0); every term
        // is ≥ 0, and the form absorbs the rounding of the mean. Near d = 0 the term comes from
        // its series; far from it ln(1 + d) = ln x − ln(mean), which stays finite when x/mean
        // underflows.
        let ln_mean = mean.ln();
        let gamma_s = sorted
            .iter()
            .map(|&x| {
                let d = x / mean - 1.0;
                let term = if d.abs() < 1e-3 {
                    d * d * (0.5 - d * (1.0 / 3.0 - d * (0.25 - d * (0.2 - d / 6.0))))
                } else {
                    d - (x.ln() - ln_mean)
                };
                term / n
            })
            .sum::<f64>();
        Ok(Sample {
            sorted,
            mean,
            mean_ln,
            sd_ln,
            gamma_s,
        })
    }

    fn n(&self) -> usize {
        self.sorted.len()
    }

    fn score(&self, dist: DistFit) -> Fitted {
        let ks_d = match &dist {
            DistFit::Empirical { quantiles } => ks_statistic(
                &self.sorted,
                |x| table_cdf(quantiles, x, false),
                |x| table_cdf(quantiles, x, true),
            ),
            continuous => ks_statistic(&self.sorted, |x| continuous.cdf(x), |x| continuous.cdf(x)),
        };
        Fitted {
            dist,
            ks_d,
            ks_p: kolmogorov_p_value(ks_d, self.n()),
            n: self.n(),
        }
    }

    fn lognormal(&self) -> DistFit {
        DistFit::Lognormal {
            median_ms: self.mean_ln.exp(),
            p95_ms: (self.mean_ln + Z95 * self.sd_ln).exp(),
            mu: self.mean_ln,
            sigma: self.sd_ln,
        }
    }

    fn gamma_shape(&self) -> Result<f64, FitError> {
        gamma_shape_mle(self.gamma_s)
    }

    /// Log-likelihood ratio statistic `2(ℓ_gamma − ℓ_exp)` for a gamma of shape `k`.
    fn gamma_vs_exp_lr(&self, k: f64) -> f64 {
        let n = self.n() as f64;
        let ln_mean = self.mean.ln();
        // ℓ/n for the gamma at the MLE (scale = mean/k) and for the exponential (mean).
        let gamma = (k - 1.0) * self.mean_ln - k - k * (ln_mean - k.ln()) - ln_gamma(k);
        let exp = -ln_mean - 1.0;
        (2.0 * n * (gamma - exp)).max(0.0)
    }

    fn quantile(&self, p: f64) -> f64 {
        let h = (self.sorted.len() - 1) as f64 * p;
        let lo = h.floor() as usize;
        let hi = (lo + 1).min(self.sorted.len() - 1);
        self.sorted[lo] + (h - lo as f64) * (self.sorted[hi] - self.sorted[lo])
    }

    fn empirical(&self) -> DistFit {
        let mut floor = 0.0f64;
        let quantiles = EMPIRICAL_PROBABILITIES
            .iter()
            .map(|&p| {
                floor = floor.max(self.quantile(p));
                (p, floor)
            })
            .collect();
        DistFit::Empirical { quantiles }
    }
}

struct Parametric {
    lognormal: Fitted,
    gamma: Fitted,
    exponential: Fitted,
    /// Likelihood-ratio statistic of the gamma against the exponential.
    gamma_vs_exp_lr: f64,
}

fn fit_parametric(sample: &Sample) -> Result<Parametric, FitError> {
    let shape = sample.gamma_shape()?;
    Ok(Parametric {
        lognormal: sample.score(sample.lognormal()),
        gamma: sample.score(DistFit::Gamma {
            shape,
            mean_ms: sample.mean,
        }),
        exponential: sample.score(DistFit::Exponential {
            mean_ms: sample.mean,
        }),
        gamma_vs_exp_lr: sample.gamma_vs_exp_lr(shape),
    })
}

/// Fits every parametric family (lognormal, gamma, exponential) to service-time samples in ms,
/// best (smallest KS distance) first. For reporting; [`best_fit`] makes the choice.
pub fn fit_all(samples: &[f64]) -> Result<Vec<Fitted>, FitError> {
    let sample = Sample::new(samples)?;
    let fits = fit_parametric(&sample)?;
    let mut all = vec![fits.lognormal, fits.gamma, fits.exponential];
    all.sort_by(|a, b| a.ks_d.total_cmp(&b.ks_d));
    Ok(all)
}

/// The empirical quantile table of service-time samples in ms (at [`EMPIRICAL_PROBABILITIES`],
/// linear interpolation between order statistics), scored against its own piecewise-linear CDF.
pub fn fit_empirical(samples: &[f64]) -> Result<Fitted, FitError> {
    let sample = Sample::new(samples)?;
    Ok(sample.score(sample.empirical()))
}

/// The distribution that describes service-time samples (ms) best: the parametric family with
/// the smallest KS distance (preferring the exponential to a gamma that cannot be told from it),
/// or an empirical quantile table when that family's p-value is below [`NO_FIT_P_VALUE`].
pub fn best_fit(samples: &[f64]) -> Result<Fitted, FitError> {
    let sample = Sample::new(samples)?;
    let fits = fit_parametric(&sample)?;
    let Parametric {
        lognormal,
        gamma,
        exponential,
        gamma_vs_exp_lr,
    } = fits;
    let mut best = lognormal;
    for candidate in [gamma, exponential] {
        if candidate.ks_d < best.ks_d {
            best = candidate;
        }
    }
    if matches!(best.dist, DistFit::Gamma { .. }) && gamma_vs_exp_lr < CHI2_1_P99 {
        let exp = sample.score(DistFit::Exponential {
            mean_ms: sample.mean,
        });
        if exp.ks_p >= NO_FIT_P_VALUE {
            best = exp;
        }
    }
    if best.ks_p < NO_FIT_P_VALUE {
        return Ok(sample.score(sample.empirical()));
    }
    Ok(best)
}

// ---------------------------------------------------------------------------------------------
// Wait versus CPU time
// ---------------------------------------------------------------------------------------------

/// [`split_wait_cpu`] calls the CPU ceiling observed when the highest measured concurrency is at
/// least this multiple of the knee.
pub const CEILING_MARGIN: f64 = 2.0;

/// A ceiling implying up to this multiple of the single-client latency in CPU time is still read
/// as a CPU ceiling (with the CPU time clamped to that latency).
const NON_CPU_TOLERANCE: f64 = 1.1;

/// How far to trust a [`WaitCpuSplit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitRegime {
    /// The throughput ceiling was observed and is read as the CPU ceiling `cores / cpu`.
    CpuCeiling,
    /// The measurements stop before throughput levels off (highest concurrency below
    /// [`CEILING_MARGIN`] × knee): the ceiling is at least the throughput seen, so `cpu_ms` is an
    /// upper bound and `wait_ms` a lower bound. Measure at higher concurrency.
    CeilingNotReached,
    /// The ceiling is lower than even a purely CPU-bound statement would allow
    /// (`cores / s1`): something other than the CPU limits throughput (a lock, a disk, the
    /// network, the load generator). `cpu_ms` is set to the whole single-client latency and
    /// `wait_ms` to 0, but the split is really unknown.
    NonCpuCeiling,
}

/// A statement's single-client latency split into CPU time and time waiting off the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WaitCpuSplit {
    /// Time not spent on a CPU (I/O, network, client round trip), ms.
    pub wait_ms: f64,
    /// CPU time per statement, ms.
    pub cpu_ms: f64,
    /// The throughput ceiling used, statements per second.
    pub max_throughput_per_s: f64,
    /// Concurrency at which the CPUs saturate under this split, `cores·s1/cpu = s1·X_max`
    /// (the knee of the asymptotic bounds).
    pub knee_concurrency: f64,
    /// How far to trust the split.
    pub regime: SplitRegime,
}

fn check_positive(what: &'static str, value: f64) -> Result<(), FitError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(FitError::InvalidArgument {
            what,
            value,
            requirement: "> 0",
        })
    }
}

/// Splits a statement's mean latency at concurrency 1, `s1_ms`, into CPU and wait time, from the
/// mean latency measured by closed-loop clients at several concurrencies (`(clients, mean
/// latency ms)`, no think time) on a server with `cores` CPUs.
///
/// # Model
///
/// A statement spends `cpu` ms on one of the `cores` CPUs and `wait` ms off them (I/O, network,
/// the client's round trip), with `wait + cpu = s1` since a lone client queues for nothing. Each
/// CPU completes at most `1/cpu` statements per ms, so throughput can never exceed
/// `X_max = cores/cpu` (the utilisation law: it holds whatever the distributions), and with
/// enough clients it gets there. With `N` clients and no think time, `X(N) = N/R(N)` (Little's
/// law), so the highest measured throughput gives
///
/// ```text
/// cpu = cores / X_max,    wait = max(0, s1 − cpu).
/// ```
///
/// # Limits
///
/// * The wait must be uncontended (every client waits independently). Waiting on a shared,
///   saturating resource — one disk, a WAL flush, a row lock — caps throughput below the CPU
///   ceiling, and that cap is taken for the CPU's: `cpu_ms` comes out too high. When the cap is
///   below `cores/s1`, which no split can explain, the result is flagged
///   [`SplitRegime::NonCpuCeiling`].
/// * CPU-bound statements (`cpu ≈ s1`) saturate at about `cores` clients and are easy to split.
///   Wait-bound statements (`cpu ≪ s1`) saturate only near `N = cores·s1/cpu`, which can be
///   hundreds of clients; a sweep that stops short never sees the ceiling and only bounds the CPU
///   time from above ([`SplitRegime::CeilingNotReached`]).
/// * `cores` is the number of CPUs PostgreSQL can actually use. CPU spent by anything else on the
///   host (a load generator on the same machine, autovacuum, the checkpointer) is charged to the
///   statement; with SMT the useful figure lies between physical and logical cores.
/// * Mean values only; the split says nothing about the shape of either part.
pub fn split_wait_cpu(
    s1_ms: f64,
    points: &[(f64, f64)],
    cores: f64,
) -> Result<WaitCpuSplit, FitError> {
    check_positive("single-client latency s1_ms", s1_ms)?;
    check_positive("cores", cores)?;
    if points.is_empty() {
        return Err(FitError::TooFewSamples {
            what: "(concurrency, latency) points to find the throughput ceiling",
            needed: 1,
            got: 0,
        });
    }
    let mut max_throughput = 0.0f64;
    let mut n_top = 0.0f64;
    check_concurrency_points(points, "mean latency (ms)")?;
    for &(n, r) in points {
        max_throughput = max_throughput.max(1000.0 * n / r);
        n_top = n_top.max(n);
    }
    let mut split = split_wait_cpu_from_ceiling(s1_ms, max_throughput, cores)?;
    if split.regime == SplitRegime::CpuCeiling && n_top < CEILING_MARGIN * split.knee_concurrency {
        split.regime = SplitRegime::CeilingNotReached;
    }
    Ok(split)
}

/// [`split_wait_cpu`] from a throughput ceiling measured directly (statements per second, for
/// example a USL [`UslFit::peak_throughput`]). The caller vouches that the CPUs were saturated,
/// so the regime is [`SplitRegime::CpuCeiling`] unless the ceiling is too low for any split.
pub fn split_wait_cpu_from_ceiling(
    s1_ms: f64,
    max_throughput_per_s: f64,
    cores: f64,
) -> Result<WaitCpuSplit, FitError> {
    check_positive("single-client latency s1_ms", s1_ms)?;
    check_positive("maximum throughput (per second)", max_throughput_per_s)?;
    check_positive("cores", cores)?;
    let cpu_raw = 1000.0 * cores / max_throughput_per_s;
    let regime = if cpu_raw > NON_CPU_TOLERANCE * s1_ms {
        SplitRegime::NonCpuCeiling
    } else {
        SplitRegime::CpuCeiling
    };
    let cpu_ms = cpu_raw.min(s1_ms);
    Ok(WaitCpuSplit {
        wait_ms: (s1_ms - cpu_ms).max(0.0),
        cpu_ms,
        max_throughput_per_s,
        knee_concurrency: s1_ms * max_throughput_per_s / 1000.0,
        regime,
    })
}

/// Latencies that come from two speeds of the same work: a fast mode and a slow one, far apart,
/// with few samples between (on the validation host a CPU-bound scan runs either in about 1.2 ms
/// or in about 2.1 ms on the CPU, in spells; VALIDATION.md).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoSpeeds {
    /// Median of the fast mode and of the slow one, in the samples' unit.
    pub fast: f64,
    pub slow: f64,
    /// Share of the samples in the slow mode.
    pub slow_share: f64,
    /// Share of the variance the split into two modes explains (Otsu's η, 0–1).
    pub separation: f64,
}

/// Samples below this count are never called two-speed.
const TWO_SPEEDS_MIN: usize = 50;
/// The slow mode's median over the fast one's, at least.
const TWO_SPEEDS_RATIO: f64 = 1.3;
/// The split must explain at least this share of the variance: a unimodal sample, however
/// skewed, stays below (lognormal σ = 0.4: 0.60, exponential: 0.65, normal: 0.64), two modes
/// 1.75 × apart with a tenth in the slower reach 0.75–0.85.
const TWO_SPEEDS_SEPARATION: f64 = 0.7;

/// Whether `samples` come from two speeds ([`TwoSpeeds`]): the split of the sorted samples that
/// explains most of their variance (Otsu's method, each side at least a fiftieth and ten
/// samples), kept when it explains at least 70 % of it, the slower mode's median is at least
/// 1.3 × the faster's, and the slower holds between 2 % and 98 % of the samples. `None`
/// otherwise, or with fewer than 50 samples.
pub fn two_speeds(samples: &[f64]) -> Option<TwoSpeeds> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n < TWO_SPEEDS_MIN {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let (mut sum, mut sum2) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    for (i, &x) in v.iter().enumerate() {
        sum[i + 1] = sum[i] + x;
        sum2[i + 1] = sum2[i] + x * x;
    }
    let total = sum2[n] - sum[n] * sum[n] / n as f64;
    if total <= 0.0 {
        return None;
    }
    let side = (n / 50).max(10);
    let mut best: Option<(f64, usize)> = None;
    for i in side..=n - side {
        let (lo, hi) = (i as f64, (n - i) as f64);
        let within_lo = sum2[i] - sum[i] * sum[i] / lo;
        let s_hi = sum[n] - sum[i];
        let within_hi = (sum2[n] - sum2[i]) - s_hi * s_hi / hi;
        let eta = 1.0 - (within_lo + within_hi) / total;
        if best.is_none_or(|(b, _)| eta > b) {
            best = Some((eta, i));
        }
    }
    let (separation, i) = best?;
    let mid = |w: &[f64]| w[w.len() / 2];
    let (fast, slow) = (mid(&v[..i]), mid(&v[i..]));
    let slow_share = (n - i) as f64 / n as f64;
    (separation >= TWO_SPEEDS_SEPARATION
        && slow >= TWO_SPEEDS_RATIO * fast
        && (0.02..=0.98).contains(&slow_share))
    .then_some(TwoSpeeds {
        fast,
        slow,
        slow_share,
        separation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_distr::Distribution;
    use rand_pcg::Pcg64Mcg;

    /// `n` samples at the quantiles of `q` (deterministic, no draw).
    fn at_quantiles(n: usize, q: impl Fn(f64) -> f64) -> Vec<f64> {
        (0..n).map(|i| q((i as f64 + 0.5) / n as f64)).collect()
    }

    #[test]
    fn two_speeds_finds_a_slow_mode_and_its_share() {
        // 900 around 1.2 ms and 100 around 2.1 ms, each with a 3 % spread
        let mut v = at_quantiles(900, |p| 1.2 * (1.0 + 0.03 * (p - 0.5)));
        v.extend(at_quantiles(100, |p| 2.1 * (1.0 + 0.03 * (p - 0.5))));
        let t = two_speeds(&v).expect("two modes 1.75 x apart");
        assert!((t.fast - 1.2).abs() < 0.01, "{t:?}");
        assert!((t.slow - 2.1).abs() < 0.01, "{t:?}");
        assert!((t.slow_share - 0.1).abs() < 1e-9, "{t:?}");
        assert!(t.separation > 0.9, "{t:?}");
        // the slow mode's share follows it, in either order of the samples
        v.reverse();
        assert_eq!(two_speeds(&v), Some(t));
    }

    #[test]
    fn two_speeds_leaves_one_mode_alone_however_skewed() {
        let ln = LogNormal::new(0.0, 0.4).unwrap();
        let ex = Exp::new(1.0).unwrap();
        let tight = LogNormal::new(0.0, 0.05).unwrap();
        for (name, v) in [
            ("lognormal 0.4", at_quantiles(2000, |p| ln.inverse_cdf(p))),
            ("exponential", at_quantiles(2000, |p| ex.inverse_cdf(p))),
            ("tight", at_quantiles(2000, |p| tight.inverse_cdf(p))),
        ] {
            assert_eq!(two_speeds(&v), None, "{name}");
        }
        // a few slow samples (1 %) are a tail, not a mode; too few samples say nothing
        let mut v = at_quantiles(990, |p| 1.2 * (1.0 + 0.03 * (p - 0.5)));
        v.extend([2.1; 10]);
        assert_eq!(two_speeds(&v), None);
        assert_eq!(two_speeds(&[1.2, 1.2, 2.1, 2.1]), None);
        assert_eq!(two_speeds(&[1.0; 200]), None);
    }

    fn rng(seed: u64) -> Pcg64Mcg {
        Pcg64Mcg::seed_from_u64(seed)
    }

    fn draw<D: Distribution<f64>>(dist: D, n: usize, seed: u64) -> Vec<f64> {
        let mut r = rng(seed);
        (0..n).map(|_| dist.sample(&mut r)).collect()
    }

    fn usl_points(
        p: [f64; 3],
        levels: &[f64],
        reps: usize,
        noise: f64,
        seed: u64,
    ) -> Vec<(f64, f64)> {
        let mut r = rng(seed);
        let normal = rand_distr::Normal::new(0.0, noise).unwrap();
        let mut out = Vec::new();
        for &n in levels {
            for _ in 0..reps {
                out.push((n, usl(&p, n) * (1.0 + normal.sample(&mut r))));
            }
        }
        out
    }

    fn within(ci: (f64, f64), v: f64) -> bool {
        ci.0 <= v && v <= ci.1
    }

    const LEVELS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
    const TRUTH: [f64; 3] = [1000.0, 0.05, 0.002];

    // ---- USL ------------------------------------------------------------------------------

    #[test]
    fn usl_recovers_known_parameters_within_intervals() {
        for (reps, seed) in [(1, 7), (3, 11)] {
            let fit = fit_usl(&usl_points(TRUTH, &LEVELS, reps, 0.02, seed)).unwrap();
            eprintln!(
                "USL {reps}x7 points: λ = {:.1} {:?}, σ = {:.4} {:?}, κ = {:.5} {:?}, N* = {:?}, \
                 X* = {:.1}, R² = {:.5}",
                fit.lambda,
                fit.lambda_ci,
                fit.sigma,
                fit.sigma_ci,
                fit.kappa,
                fit.kappa_ci,
                fit.peak_concurrency,
                fit.peak_throughput,
                fit.r_squared
            );
            assert!(within(fit.lambda_ci, TRUTH[0]), "{fit:?}");
            assert!(within(fit.sigma_ci, TRUTH[1]), "{fit:?}");
            assert!(within(fit.kappa_ci, TRUTH[2]), "{fit:?}");
            assert!(fit.r_squared > 0.99);
            let n_star = ((1.0 - TRUTH[1]) / TRUTH[2]).sqrt();
            assert!((fit.peak_concurrency.unwrap() / n_star - 1.0).abs() < 0.1);
            assert!((fit.peak_throughput / usl(&TRUTH, n_star) - 1.0).abs() < 0.03);
            assert_eq!(fit.n_points, 7 * reps);
            assert_eq!(fit.residuals.len(), 7 * reps);
        }
    }

    #[test]
    fn usl_interval_coverage_is_close_to_nominal() {
        let runs = 200;
        let mut covered = [0usize; 3];
        for seed in 0..runs {
            let fit = fit_usl(&usl_points(TRUTH, &LEVELS, 3, 0.02, 1000 + seed)).unwrap();
            covered[0] += usize::from(within(fit.lambda_ci, TRUTH[0]));
            covered[1] += usize::from(within(fit.sigma_ci, TRUTH[1]));
            covered[2] += usize::from(within(fit.kappa_ci, TRUTH[2]));
        }
        eprintln!("USL 95 % interval coverage over {runs} runs (λ, σ, κ): {covered:?}");
        for c in covered {
            assert!(c as f64 >= 0.85 * runs as f64, "{covered:?}");
        }
    }

    #[test]
    fn usl_fits_published_pgbench_points() {
        let points = [
            (1.0, 4373.0),
            (4.0, 15583.0),
            (8.0, 27354.0),
            (12.0, 37502.0),
            (16.0, 45365.0),
            (20.0, 46927.0),
            (24.0, 42854.0),
        ];
        let fit = fit_usl(&points).unwrap();
        eprintln!("pgbench USL: {fit:#?}");
        assert!(fit.sigma < 0.03, "{fit:?}");
        assert!((0.001..0.004).contains(&fit.kappa), "{fit:?}");
        let n_star = fit.peak_concurrency.unwrap();
        assert!((18.0..26.0).contains(&n_star), "{fit:?}");
        assert!(
            (45_000.0..50_000.0).contains(&fit.peak_throughput),
            "{fit:?}"
        );
        assert!(fit.r_squared > 0.98, "{fit:?}");
        // Anchoring λ at X(1) (the classic normalised fit) gives σ ≈ 0.01, κ ≈ 0.002: inside
        // the intervals of the free fit.
        assert!(
            within(fit.sigma_ci, 0.01) && within(fit.kappa_ci, 0.002),
            "{fit:?}"
        );
        // The optimum: no point of a fine grid around it (λ profiled) does better.
        let sse = |p: &[f64; 3]| usl_sse(&points, p);
        let best = sse(&[fit.lambda, fit.sigma, fit.kappa]);
        for i in 0..=60 {
            for j in 0..=60 {
                let (s, k) = (0.001 * f64::from(i), 0.0001 * f64::from(j));
                let l = usl_profile_lambda(&points, s, k);
                assert!(sse(&[l, s, k]) >= best * (1.0 - 1e-9), "σ = {s}, κ = {k}");
            }
        }
    }

    #[test]
    fn usl_linear_data_has_no_peak() {
        let points: Vec<(f64, f64)> = (1..=32)
            .map(|n| (f64::from(n), 250.0 * f64::from(n)))
            .collect();
        let fit = fit_usl(&points).unwrap();
        assert_eq!(fit.sigma, 0.0, "{fit:?}");
        assert_eq!(fit.kappa, 0.0, "{fit:?}");
        assert!((fit.lambda / 250.0 - 1.0).abs() < 1e-9, "{fit:?}");
        assert_eq!(fit.peak_concurrency, None);
        assert_eq!(fit.peak_throughput, f64::INFINITY);
        assert!(fit.r_squared > 1.0 - 1e-12);
    }

    #[test]
    fn usl_noisy_linear_data_intervals_include_zero() {
        let fit = fit_usl(&usl_points([500.0, 0.0, 0.0], &LEVELS, 3, 0.02, 5)).unwrap();
        eprintln!("noisy linear: {fit:?}");
        assert!(fit.sigma_ci.0 == 0.0 && fit.kappa_ci.0 == 0.0, "{fit:?}");
        assert!(fit.sigma < 0.01 && fit.kappa < 1e-4, "{fit:?}");
    }

    #[test]
    fn usl_contention_only_has_asymptote_not_peak() {
        let p = [800.0, 0.1, 0.0];
        let points: Vec<(f64, f64)> = LEVELS.iter().map(|&n| (n, usl(&p, n))).collect();
        let fit = fit_usl(&points).unwrap();
        assert_eq!(fit.kappa, 0.0, "{fit:?}");
        assert!((fit.sigma - 0.1).abs() < 1e-9, "{fit:?}");
        assert_eq!(fit.peak_concurrency, None);
        assert!((fit.peak_throughput - 8000.0).abs() < 1e-3, "{fit:?}");
    }

    #[test]
    fn usl_needs_no_single_client_point() {
        let p = [1234.0, 0.03, 0.0005];
        let levels = [4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
        let points: Vec<(f64, f64)> = levels.iter().map(|&n| (n, usl(&p, n))).collect();
        let fit = fit_usl(&points).unwrap();
        assert!((fit.lambda / p[0] - 1.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.sigma - p[1]).abs() < 1e-7, "{fit:?}");
        assert!((fit.kappa - p[2]).abs() < 1e-9, "{fit:?}");
    }

    #[test]
    fn usl_rejects_bad_input() {
        let good = [(1.0, 10.0), (2.0, 19.0), (4.0, 35.0), (8.0, 60.0)];
        assert_eq!(
            fit_usl(&good[..3]).unwrap_err().to_string(),
            "too few (concurrency, throughput) points for a USL fit: need at least 4, got 3"
        );
        let two_levels = [(1.0, 10.0), (1.0, 11.0), (2.0, 19.0), (2.0, 20.0)];
        assert_eq!(
            fit_usl(&two_levels).unwrap_err().to_string(),
            "too few distinct concurrencies for a USL fit: need at least 3, got 2"
        );
        let mut bad = good;
        bad[2].1 = -1.0;
        assert_eq!(
            fit_usl(&bad).unwrap_err().to_string(),
            "throughput at index 2 is -1: it must be finite and > 0"
        );
        bad = good;
        bad[1].0 = 0.5;
        assert_eq!(
            fit_usl(&bad).unwrap_err().to_string(),
            "concurrency at index 1 is 0.5: it must be finite and >= 1"
        );
        bad = good;
        bad[3].1 = f64::NAN;
        assert!(matches!(
            fit_usl(&bad),
            Err(FitError::InvalidValue { index: 3, .. })
        ));
    }

    // ---- Service-time distributions --------------------------------------------------------

    const N_LARGE: usize = 20_000;

    #[test]
    fn lognormal_sample_recovers_parameters_and_wins() {
        let (median, p95) = (5.0f64, 15.0f64);
        let (mu, sigma) = (median.ln(), (p95 / median).ln() / Z95);
        let samples = draw(rand_distr::LogNormal::new(mu, sigma).unwrap(), N_LARGE, 1);
        let best = best_fit(&samples).unwrap();
        eprintln!("lognormal(median 5, p95 15): {best:?}");
        let DistFit::Lognormal {
            median_ms,
            p95_ms,
            mu: m,
            sigma: s,
        } = best.dist
        else {
            panic!("expected a lognormal, got {best:?}");
        };
        assert!((median_ms / median - 1.0).abs() < 0.02);
        assert!((p95_ms / p95 - 1.0).abs() < 0.03);
        assert!((m - mu).abs() < 0.02 && (s / sigma - 1.0).abs() < 0.02);
        assert!(best.ks_p > 0.01);
        assert_eq!(best.n, N_LARGE);
    }

    #[test]
    fn gamma_sample_recovers_parameters_and_wins() {
        let (shape, mean) = (2.5, 8.0);
        let samples = draw(
            rand_distr::Gamma::new(shape, mean / shape).unwrap(),
            N_LARGE,
            2,
        );
        let best = best_fit(&samples).unwrap();
        eprintln!("gamma(shape 2.5, mean 8): {best:?}");
        let DistFit::Gamma { shape: k, mean_ms } = best.dist else {
            panic!("expected a gamma, got {best:?}");
        };
        assert!((k / shape - 1.0).abs() < 0.03);
        assert!((mean_ms / mean - 1.0).abs() < 0.02);
        assert!(best.ks_p > 0.01);
    }

    #[test]
    fn exponential_sample_recovers_mean_and_wins() {
        let mean = 3.0;
        let samples = draw(rand_distr::Exp::new(1.0 / mean).unwrap(), N_LARGE, 3);
        let all = fit_all(&samples).unwrap();
        eprintln!("exp(mean 3), all fits: {all:?}");
        let best = best_fit(&samples).unwrap();
        eprintln!("exp(mean 3): {best:?}");
        let DistFit::Exponential { mean_ms } = best.dist else {
            panic!("expected an exponential, got {best:?}");
        };
        assert!((mean_ms / mean - 1.0).abs() < 0.02);
        assert!(best.ks_p > 0.01);
    }

    #[test]
    fn bimodal_sample_falls_back_to_empirical_table() {
        let fast = draw(rand_distr::LogNormal::new(0.0, 0.1).unwrap(), 7_000, 4);
        let slow = draw(
            rand_distr::LogNormal::new(20f64.ln(), 0.1).unwrap(),
            3_000,
            5,
        );
        let samples: Vec<f64> = fast.into_iter().chain(slow).collect();
        let best = best_fit(&samples).unwrap();
        eprintln!("bimodal: {best:?}");
        let DistFit::Empirical { quantiles } = &best.dist else {
            panic!("expected an empirical table, got {best:?}");
        };
        let ps: Vec<f64> = quantiles.iter().map(|q| q.0).collect();
        assert_eq!(ps, EMPIRICAL_PROBABILITIES);
        assert!(quantiles.windows(2).all(|w| w[0].1 <= w[1].1));
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(0.0, f64::max);
        assert_eq!(
            (quantiles[0].1, quantiles[quantiles.len() - 1].1),
            (min, max)
        );
        assert!(quantiles[5].1 < 2.0 && quantiles[9].1 > 15.0);
        // Every family was rejected.
        assert!(fit_all(&samples).unwrap().iter().all(|f| f.ks_p < 1e-6));
    }

    #[test]
    fn ks_p_value_is_rarely_small_under_the_true_model() {
        let runs = 50u64;
        let mut passed = [0u32; 3];
        for seed in 0..runs {
            let ln = draw(
                rand_distr::LogNormal::new(1.0, 0.6).unwrap(),
                1_000,
                100 + seed,
            );
            let ga = draw(rand_distr::Gamma::new(3.0, 2.0).unwrap(), 1_000, 200 + seed);
            let ex = draw(rand_distr::Exp::new(0.5).unwrap(), 1_000, 300 + seed);
            let p = |s: &[f64], family: &str| {
                fit_all(s)
                    .unwrap()
                    .into_iter()
                    .find(|f| f.dist.family() == family)
                    .unwrap()
                    .ks_p
            };
            passed[0] += u32::from(p(&ln, "lognormal") > 0.01);
            passed[1] += u32::from(p(&ga, "gamma") > 0.01);
            passed[2] += u32::from(p(&ex, "exp") > 0.01);
        }
        eprintln!("p > 0.01 under the true model, of {runs}: {passed:?}");
        assert!(passed.iter().all(|&k| k >= 45), "{passed:?}");
    }

    #[test]
    fn ks_p_value_is_tiny_for_the_wrong_model() {
        let samples = draw(rand_distr::LogNormal::new(1.0, 0.8).unwrap(), N_LARGE, 6);
        let all = fit_all(&samples).unwrap();
        eprintln!("lognormal sample, all fits: {all:?}");
        assert_eq!(all[0].dist.family(), "lognormal");
        for f in &all[1..] {
            assert!(f.ks_p < 1e-6, "{f:?}");
        }
    }

    #[test]
    fn fit_all_is_sorted_by_ks_distance() {
        let samples = draw(rand_distr::Gamma::new(1.7, 1.0).unwrap(), 500, 8);
        let all = fit_all(&samples).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.windows(2).all(|w| w[0].ks_d <= w[1].ks_d));
        let mut families: Vec<&str> = all.iter().map(|f| f.dist.family()).collect();
        families.sort_unstable();
        assert_eq!(families, ["exp", "gamma", "lognormal"]);
    }

    #[test]
    fn kolmogorov_p_value_matches_reference_values() {
        // Q(λ) for the limiting Kolmogorov distribution.
        for (lambda, q) in [
            (0.5, 0.963_945_243_6),
            (1.0, 0.269_999_671_6),
            (1.358_098_8, 0.05),
            (1.627_624_4, 0.01),
            (2.0, 0.000_670_925_5),
        ] {
            assert!((kolmogorov_q(lambda) - q).abs() < 1e-7, "Q({lambda})");
        }
        // Both branches agree at the switch.
        let (below, above) = (kolmogorov_q(1.18 - 1e-12), {
            let c: f64 = -2.0 * 1.18 * 1.18;
            2.0 * (1..20)
                .map(|j: i32| (-1f64).powi(j - 1) * (c * f64::from(j * j)).exp())
                .sum::<f64>()
        });
        assert!((below - above).abs() < 1e-12);
        assert_eq!(kolmogorov_p_value(0.0, 100), 1.0);
        assert_eq!(kolmogorov_p_value(1.0, 10_000), 0.0);
        assert!(kolmogorov_p_value(f64::NAN, 10).is_nan());
        let n = 400usize;
        let sn = (n as f64).sqrt();
        let d = 1.0 / (sn + 0.12 + 0.11 / sn);
        assert!((kolmogorov_p_value(d, n) - 0.269_999_671_6).abs() < 1e-7);
    }

    #[test]
    fn gamma_shape_solves_the_likelihood_equation() {
        for k in [1e-3, 0.05, 0.5, 1.0, 2.5, 9.9, 10.1, 100.0, 1e4, 1e7] {
            let s = log_minus_digamma(k);
            let got = gamma_shape_mle(s).unwrap();
            assert!((got / k - 1.0).abs() < 1e-9, "k = {k}: got {got}");
        }
        // The series and statrs' digamma agree where they meet.
        for k in [10.0f64, 12.0, 40.0] {
            let direct = k.ln() - digamma(k);
            assert!(
                (log_minus_digamma(k) / direct - 1.0).abs() < 1e-12,
                "k = {k}"
            );
        }
        // Derivative against a central difference.
        for k in [0.3, 1.0, 5.0, 9.99, 10.0, 50.0] {
            let h = 1e-5 * k;
            let numeric = (log_minus_digamma(k + h) - log_minus_digamma(k - h)) / (2.0 * h);
            let analytic = log_minus_digamma_derivative(k);
            assert!((numeric / analytic - 1.0).abs() < 1e-6, "k = {k}");
        }
        assert!(gamma_shape_mle(0.0).is_err());
    }

    #[test]
    fn gamma_cdf_approximation_agrees_with_the_exact_cdf() {
        let shape = GAMMA_WH_SHAPE;
        let exact = statrs::distribution::Gamma::new(shape, shape / 10.0).unwrap();
        for z in [-3.0, -1.0, 0.0, 0.5, 2.0] {
            let x = 10.0 * (1.0 + z / shape.sqrt());
            assert!(
                (gamma_cdf(shape * 1.000_001, 10.0, x) - exact.cdf(x)).abs() < 1e-5,
                "z = {z}"
            );
        }
    }

    #[test]
    fn nearly_constant_samples_fit_without_trouble() {
        let samples = draw(rand_distr::Normal::new(5.0, 1e-5).unwrap(), 2_000, 9);
        let all = fit_all(&samples).unwrap();
        let gamma = all.iter().find(|f| f.dist.family() == "gamma").unwrap();
        let DistFit::Gamma { shape, .. } = gamma.dist else {
            unreachable!()
        };
        assert!((shape / 2.5e11 - 1.0).abs() < 0.1, "{gamma:?}");
        assert!(all.iter().all(|f| f.ks_d.is_finite() && f.ks_p.is_finite()));
    }

    #[test]
    fn extreme_magnitudes_do_not_break_the_fits() {
        // x/mean underflows for the smallest samples, x·rate for the gamma CDF too, and the
        // lognormal mean overflows: results, not panics.
        let mut samples = vec![1e-6; 8];
        samples.extend([1e-300, 1e-300, 358_519.99]);
        let all = fit_all(&samples).unwrap();
        assert!(all.iter().all(|f| (0.0..=1.0).contains(&f.ks_d)), "{all:?}");
        let best = best_fit(&samples).unwrap();
        assert!(best.dist.mean_ms() > 0.0, "{best:?}");
        let wide: Vec<f64> = (0..50).map(|i| 10f64.powi(12 * i - 300)).collect();
        assert!(best_fit(&wide).is_ok());
    }

    #[test]
    fn tied_samples_are_scored_correctly() {
        // Latencies logged to whole ms: many ties, and the KS distance must still be exact.
        let samples: Vec<f64> = draw(rand_distr::Exp::new(0.2).unwrap(), 5_000, 10)
            .into_iter()
            .map(|x| x.ceil())
            .collect();
        let table = fit_empirical(&samples).unwrap();
        let DistFit::Empirical { quantiles } = &table.dist else {
            unreachable!()
        };
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        // Brute force: the supremum is approached just left of, or at, each sample value.
        let n = sorted.len() as f64;
        let ecdf = |x: f64| sorted.partition_point(|&s| s <= x) as f64 / n;
        let mut d = 0.0f64;
        for &x in &sorted {
            let left = x - 1e-9;
            d = d.max((ecdf(x) - table.dist.cdf(x)).abs());
            d = d.max((ecdf(left) - table.dist.cdf(left)).abs());
        }
        assert!((d - table.ks_d).abs() < 1e-6, "{d} vs {}", table.ks_d);
        assert!(quantiles
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn dist_fit_serializes_like_experiment_durations() {
        let cases = [
            (
                DistFit::Lognormal {
                    median_ms: 2.0,
                    p95_ms: 9.5,
                    mu: 2f64.ln(),
                    sigma: 0.9,
                },
                r#"{"lognormal":{"median_ms":2.0,"p95_ms":9.5}}"#,
            ),
            (
                DistFit::Gamma {
                    shape: 2.5,
                    mean_ms: 8.0,
                },
                r#"{"gamma":{"shape":2.5,"mean_ms":8.0}}"#,
            ),
            (
                DistFit::Exponential { mean_ms: 3.0 },
                r#"{"exp":{"mean_ms":3.0}}"#,
            ),
            (
                DistFit::Empirical {
                    quantiles: vec![(0.0, 1.0), (0.5, 2.0), (1.0, 4.0)],
                },
                r#"{"empirical":{"quantiles":[[0.0,1.0],[0.5,2.0],[1.0,4.0]]}}"#,
            ),
        ];
        for (dist, json) in cases {
            assert_eq!(serde_json::to_string(&dist).unwrap(), json);
        }
    }

    #[test]
    fn distribution_fit_rejects_bad_input() {
        assert_eq!(
            best_fit(&[1.0, 2.0, 3.0]).unwrap_err().to_string(),
            "too few service-time samples for a distribution fit: need at least 10, got 3"
        );
        let mut samples = vec![1.0; 20];
        samples[7] = 0.0;
        assert_eq!(
            best_fit(&samples).unwrap_err().to_string(),
            "service time (ms) at index 7 is 0: it must be finite and > 0"
        );
        samples[7] = f64::INFINITY;
        assert!(matches!(
            fit_all(&samples),
            Err(FitError::InvalidValue { index: 7, .. })
        ));
        samples[7] = 1.0;
        let err = best_fit(&samples).unwrap_err();
        assert!(matches!(err, FitError::Degenerate(_)), "{err}");
        assert!(err.to_string().contains("all 20 samples are equal to 1 ms"));
        assert!(fit_empirical(&samples).is_err());
    }

    // ---- Wait versus CPU -----------------------------------------------------------------

    /// Exact mean latency (ms) of `clients` closed-loop clients, each alternating `wait` ms off
    /// the CPU with `cpu` ms on one of `cores` processor-shared CPUs (the machine-repairman
    /// model; its mean values do not depend on the distributions).
    fn closed_loop_latency_ms(clients: u32, wait: f64, cpu: f64, cores: u32) -> f64 {
        let n = clients as usize;
        let mut log_w = vec![0.0f64; n + 1];
        for k in 0..n {
            let up = (n - k) as f64 / wait;
            let down = ((k + 1) as f64).min(f64::from(cores)) / cpu;
            log_w[k + 1] = log_w[k] + (up / down).ln();
        }
        let top = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (mut total, mut busy) = (0.0, 0.0);
        for (k, lw) in log_w.iter().enumerate() {
            let w = (lw - top).exp();
            total += w;
            busy += w * (k as f64).min(f64::from(cores));
        }
        let throughput_per_ms = busy / total / cpu;
        f64::from(clients) / throughput_per_ms
    }

    fn sweep(clients: &[u32], wait: f64, cpu: f64, cores: u32) -> Vec<(f64, f64)> {
        clients
            .iter()
            .map(|&n| (f64::from(n), closed_loop_latency_ms(n, wait, cpu, cores)))
            .collect()
    }

    #[test]
    fn split_cpu_bound_statement() {
        let (wait, cpu, cores) = (1.0, 4.0, 4);
        let s1 = closed_loop_latency_ms(1, wait, cpu, cores);
        assert!((s1 - 5.0).abs() < 1e-12);
        let points = sweep(&[1, 2, 4, 8, 16, 32], wait, cpu, cores);
        let split = split_wait_cpu(s1, &points, f64::from(cores)).unwrap();
        eprintln!("CPU-bound (wait 1, cpu 4, 4 cores): {split:?}");
        assert_eq!(split.regime, SplitRegime::CpuCeiling);
        assert!((split.cpu_ms / cpu - 1.0).abs() < 0.01, "{split:?}");
        assert!((split.wait_ms - wait).abs() < 0.05, "{split:?}");
        assert!((split.wait_ms + split.cpu_ms - s1).abs() < 1e-12);
    }

    #[test]
    fn split_wait_bound_statement() {
        let (wait, cpu, cores) = (9.5, 0.5, 8);
        let s1 = wait + cpu;
        // Knee at cores·s1/cpu = 160 clients.
        let far = sweep(&[1, 16, 64, 256, 512, 1024], wait, cpu, cores);
        let split = split_wait_cpu(s1, &far, f64::from(cores)).unwrap();
        eprintln!("wait-bound (wait 9.5, cpu 0.5, 8 cores), sweep to 1024: {split:?}");
        assert_eq!(split.regime, SplitRegime::CpuCeiling);
        assert!((split.cpu_ms / cpu - 1.0).abs() < 0.01, "{split:?}");
        assert!((split.wait_ms / wait - 1.0).abs() < 0.01, "{split:?}");
        assert!(
            (split.knee_concurrency / 160.0 - 1.0).abs() < 0.01,
            "{split:?}"
        );

        let short = sweep(&[1, 4, 16, 64], wait, cpu, cores);
        let split = split_wait_cpu(s1, &short, f64::from(cores)).unwrap();
        eprintln!("wait-bound, sweep to 64: {split:?}");
        assert_eq!(split.regime, SplitRegime::CeilingNotReached);
        // An upper bound on the CPU time, a lower bound on the wait.
        assert!(split.cpu_ms > cpu && split.wait_ms < wait, "{split:?}");
    }

    #[test]
    fn split_flags_a_ceiling_the_cpus_cannot_explain() {
        // 2 ms statements on 8 cores, but a lock serialises them: at most 500 per second.
        let split = split_wait_cpu_from_ceiling(2.0, 500.0, 8.0).unwrap();
        assert_eq!(split.regime, SplitRegime::NonCpuCeiling);
        assert_eq!((split.cpu_ms, split.wait_ms), (2.0, 0.0));
        // A pure-CPU statement measured with a little noise is still a CPU ceiling.
        let split = split_wait_cpu_from_ceiling(2.0, 3_900.0, 8.0).unwrap();
        assert_eq!(split.regime, SplitRegime::CpuCeiling);
        assert_eq!((split.cpu_ms, split.wait_ms), (2.0, 0.0));
    }

    #[test]
    fn split_rejects_bad_input() {
        assert_eq!(
            split_wait_cpu(0.0, &[(1.0, 1.0)], 4.0)
                .unwrap_err()
                .to_string(),
            "single-client latency s1_ms is 0: it must be finite and > 0"
        );
        assert_eq!(
            split_wait_cpu(1.0, &[(1.0, 1.0)], f64::NAN)
                .unwrap_err()
                .to_string(),
            "cores is NaN: it must be finite and > 0"
        );
        assert_eq!(
            split_wait_cpu(1.0, &[], 4.0).unwrap_err().to_string(),
            "too few (concurrency, latency) points to find the throughput ceiling: need at \
             least 1, got 0"
        );
        assert_eq!(
            split_wait_cpu(1.0, &[(1.0, 1.0), (4.0, -2.0)], 4.0)
                .unwrap_err()
                .to_string(),
            "mean latency (ms) at index 1 is -2: it must be finite and > 0"
        );
        assert!(split_wait_cpu_from_ceiling(1.0, 0.0, 4.0).is_err());
    }

    // ---- Properties ------------------------------------------------------------------------

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn usl_never_panics_and_respects_constraints(
            points in prop::collection::vec((1.0f64..500.0, 1e-3f64..1e6), 0..30),
        ) {
            if let Ok(fit) = fit_usl(&points) {
                prop_assert!(fit.lambda > 0.0 && fit.lambda.is_finite());
                prop_assert!((0.0..1.0).contains(&fit.sigma));
                prop_assert!(fit.kappa >= 0.0 && fit.kappa.is_finite());
                prop_assert!(within(fit.lambda_ci, fit.lambda));
                prop_assert!(within(fit.sigma_ci, fit.sigma));
                prop_assert!(within(fit.kappa_ci, fit.kappa));
                prop_assert!(fit.r_squared <= 1.0 + 1e-12);
                prop_assert_eq!(fit.residuals.len(), points.len());
                prop_assert_eq!(fit.peak_concurrency.is_some(), fit.kappa > 0.0);
                prop_assert!(fit.peak_concurrency.is_none_or(|n| n >= 1.0));
                prop_assert!(fit.peak_throughput > 0.0);
            }
        }

        #[test]
        fn usl_recovers_noise_free_curves(
            lambda in 1.0f64..1e5,
            sigma in 0.0f64..0.5,
            kappa in 0.0f64..0.01,
        ) {
            let p = [lambda, sigma, kappa];
            let points: Vec<(f64, f64)> = LEVELS.iter().map(|&n| (n, usl(&p, n))).collect();
            let fit = fit_usl(&points).unwrap();
            for &(n, x) in &points {
                prop_assert!((fit.throughput(n) / x - 1.0).abs() < 1e-6, "{:?}", fit);
            }
            prop_assert!((fit.lambda / lambda - 1.0).abs() < 1e-5, "{:?}", fit);
            prop_assert!((fit.sigma - sigma).abs() < 1e-5, "{:?}", fit);
            prop_assert!((fit.kappa - kappa).abs() < 1e-7, "{:?}", fit);
        }

        #[test]
        fn distribution_fits_never_panic(
            samples in prop::collection::vec(
                prop_oneof![1e-6f64..1e6, 1e-300f64..1e-250, 1e250f64..1e300, Just(3.0)],
                0..200,
            ),
        ) {
            if let Ok(best) = best_fit(&samples) {
                prop_assert!((0.0..=1.0).contains(&best.ks_d));
                prop_assert!((0.0..=1.0).contains(&best.ks_p));
                // The mean may overflow to +inf for samples spanning hundreds of decades.
                prop_assert!(best.dist.mean_ms() > 0.0);
            }
            if let Ok(all) = fit_all(&samples) {
                prop_assert!(all.iter().all(|f| (0.0..=1.0).contains(&f.ks_p)));
            }
        }

        #[test]
        fn empirical_table_is_well_formed(
            samples in prop::collection::vec(prop_oneof![1e-3f64..1e3, Just(2.0)], 10..300),
        ) {
            prop_assume!(samples.iter().any(|&x| x != samples[0]));
            let fitted = fit_empirical(&samples).unwrap();
            let DistFit::Empirical { quantiles } = &fitted.dist else { unreachable!() };
            prop_assert_eq!(quantiles.len(), EMPIRICAL_PROBABILITIES.len());
            prop_assert!(quantiles.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
            let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
            let max = samples.iter().copied().fold(0.0, f64::max);
            prop_assert_eq!(quantiles[0], (0.0, min));
            prop_assert_eq!(quantiles[quantiles.len() - 1], (1.0, max));
            prop_assert!((0.0..=1.0).contains(&fitted.ks_d));
        }

        #[test]
        fn kolmogorov_p_value_decreases_with_distance(
            d1 in 0.0f64..1.0,
            d2 in 0.0f64..1.0,
            n in 1usize..100_000,
        ) {
            let (lo, hi) = if d1 <= d2 { (d1, d2) } else { (d2, d1) };
            let (p_lo, p_hi) = (kolmogorov_p_value(lo, n), kolmogorov_p_value(hi, n));
            prop_assert!((0.0..=1.0).contains(&p_lo) && (0.0..=1.0).contains(&p_hi));
            prop_assert!(p_hi <= p_lo + 1e-12);
        }

        #[test]
        fn split_parts_add_up(
            s1 in 1e-3f64..1e3,
            tps in 1e-2f64..1e7,
            cores in 1.0f64..256.0,
        ) {
            let split = split_wait_cpu_from_ceiling(s1, tps, cores).unwrap();
            prop_assert!(split.cpu_ms > 0.0 && split.wait_ms >= 0.0);
            prop_assert!((split.cpu_ms + split.wait_ms - s1).abs() <= 1e-12 * s1);
        }
    }
}
