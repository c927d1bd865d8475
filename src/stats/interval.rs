//! Confidence intervals across replications: Student-t intervals for means
//! and Wilson score intervals for proportions.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// A point estimate with a two-sided confidence interval.
///
/// When the interval is undefined (fewer than two samples for a mean, no
/// trials for a proportion, or a spread that is not finite) `half_width` is
/// `None` and `low == high == mean`. Every field is always NaN-free.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Point estimate.
    pub mean: f64,
    /// Lower confidence bound.
    pub low: f64,
    /// Upper confidence bound.
    pub high: f64,
    /// Half the width of the interval, `(high − low)/2`, or `None` when the
    /// interval is undefined.
    pub half_width: Option<f64>,
    /// Number of samples (replications, or trials for a proportion) the
    /// estimate is based on.
    pub n: usize,
}

impl Interval {
    /// A point estimate without an interval.
    fn point(mean: f64, n: usize) -> Self {
        Self {
            mean,
            low: mean,
            high: mean,
            half_width: None,
            n,
        }
    }
}

fn check_level(level: f64) {
    assert!(
        level > 0.0 && level < 1.0,
        "confidence level must be in (0, 1), got {level}"
    );
}

/// Mean of per-replication results with a Student-t confidence interval at
/// confidence `level` (e.g. `0.95`): `mean ± t_{(1+level)/2, n−1} · s/√n`,
/// where `s` is the sample standard deviation (divisor `n − 1`).
///
/// Non-finite samples (NaN or ±∞, e.g. a replication in which the metric was
/// undefined) are excluded; `n` in the result counts only the finite samples
/// used, so a caller can detect exclusions by comparing it with
/// `samples.len()`. With no finite samples the result is a point estimate of
/// 0 with `n = 0`; with one it is that sample with no interval. Zero variance
/// gives `half_width == Some(0.0)`.
///
/// # Panics
///
/// If `level` is not strictly between 0 and 1.
pub fn student_t(samples: &[f64], level: f64) -> Interval {
    check_level(level);
    // Welford's update: stable and free of overflow for large magnitudes.
    let mut n = 0usize;
    let mut mean = 0.0_f64;
    let mut m2 = 0.0_f64;
    for &x in samples.iter().filter(|x| x.is_finite()) {
        n += 1;
        let delta = x - mean;
        mean += delta / n as f64;
        m2 += delta * (x - mean);
    }
    if n == 0 {
        return Interval::point(0.0, 0);
    }
    if n < 2 || !mean.is_finite() {
        return Interval::point(if mean.is_finite() { mean } else { 0.0 }, n);
    }
    let variance = (m2 / (n - 1) as f64).max(0.0);
    let dof = (n - 1) as f64;
    let t = StudentsT::new(0.0, 1.0, dof)
        .expect("degrees of freedom are positive")
        .inverse_cdf(0.5 * (1.0 + level));
    let half = t * (variance / n as f64).sqrt();
    if !half.is_finite() {
        return Interval::point(mean, n);
    }
    Interval {
        mean,
        low: mean - half,
        high: mean + half,
        half_width: Some(half),
        n,
    }
}

/// Proportion `successes / trials` with a Wilson score confidence interval
/// at confidence `level`:
///
/// ```text
/// centre = (p̂ + z²/2n) / (1 + z²/n)
/// half   = z·√(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n)
/// ```
///
/// with `z` the standard normal quantile at `(1+level)/2`. Unlike the normal
/// approximation it stays inside `[0, 1]` and has non-zero width at `p̂ = 0`
/// and `p̂ = 1`. `mean` is the plain proportion `p̂`; `low`/`high` are the
/// Wilson bounds (which are not symmetric about `p̂`) and `half_width` is
/// `(high − low)/2`. `n` is `trials` rounded to the nearest integer.
///
/// `trials` may be fractional (weighted counts). If `trials` is not a finite
/// positive number the result is a point estimate of 0 with `n = 0` and no
/// interval. `successes` is clamped to `[0, trials]`, and NaN is treated
/// as 0.
///
/// # Panics
///
/// If `level` is not strictly between 0 and 1.
pub fn wilson(successes: f64, trials: f64, level: f64) -> Interval {
    check_level(level);
    if !(trials.is_finite() && trials > 0.0) {
        return Interval::point(0.0, 0);
    }
    let successes = if successes.is_nan() {
        0.0
    } else {
        successes.clamp(0.0, trials)
    };
    let n = trials;
    let p = successes / n;
    let z = Normal::standard().inverse_cdf(0.5 * (1.0 + level));
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    let low = (centre - half).clamp(0.0, 1.0);
    let high = (centre + half).clamp(0.0, 1.0);
    Interval {
        mean: p,
        low,
        high,
        half_width: Some(0.5 * (high - low)),
        n: n.round() as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tol: f64) {
        assert!(
            (actual - expected).abs() <= tol,
            "expected {expected}, got {actual}"
        );
    }

    #[test]
    fn student_t_hand_computed_example() {
        let iv = student_t(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95);
        // s² = 2.5, t_{0.975, 4} = 2.776445105...
        let half = 2.776_445_105_197_793 * (2.5_f64 / 5.0).sqrt();
        close(iv.mean, 3.0, 1e-15);
        close(iv.half_width.unwrap(), half, 1e-9);
        close(iv.half_width.unwrap(), 1.963_243, 1e-6);
        close(iv.low, 3.0 - half, 1e-9);
        close(iv.high, 3.0 + half, 1e-9);
        assert_eq!(iv.n, 5);
    }

    #[test]
    fn student_t_degenerate_inputs() {
        let empty = student_t(&[], 0.95);
        assert_eq!(empty, Interval::point(0.0, 0));
        let one = student_t(&[4.5], 0.95);
        assert_eq!(one, Interval::point(4.5, 1));
        let constant = student_t(&[0.1; 7], 0.95);
        assert_eq!(constant.half_width, Some(0.0));
        close(constant.mean, 0.1, 1e-16);
        assert_eq!(constant.low, constant.high);
    }

    #[test]
    fn student_t_excludes_non_finite_samples() {
        let iv = student_t(
            &[
                1.0,
                f64::NAN,
                2.0,
                3.0,
                f64::INFINITY,
                4.0,
                5.0,
                f64::NEG_INFINITY,
            ],
            0.95,
        );
        assert_eq!(iv, student_t(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95));
        let none = student_t(&[f64::NAN, f64::INFINITY], 0.9);
        assert_eq!(none, Interval::point(0.0, 0));
        let huge = student_t(&[f64::MAX, -f64::MAX, f64::MAX], 0.95);
        assert!(!huge.mean.is_nan() && !huge.low.is_nan() && !huge.high.is_nan());
    }

    #[test]
    fn wilson_known_value() {
        let iv = wilson(5.0, 100.0, 0.95);
        close(iv.mean, 0.05, 1e-15);
        close(iv.low, 0.02154, 1e-5);
        close(iv.high, 0.11175, 1e-5);
        close(iv.half_width.unwrap(), (iv.high - iv.low) / 2.0, 1e-15);
        assert_eq!(iv.n, 100);
    }

    #[test]
    fn wilson_at_the_boundaries() {
        let zero = wilson(0.0, 50.0, 0.95);
        assert_eq!(zero.mean, 0.0);
        assert_eq!(zero.low, 0.0);
        // Upper bound z²/(n + z²) at p̂ = 0.
        let z2 = 1.959_963_984_540_054_f64.powi(2);
        close(zero.high, z2 / (50.0 + z2), 1e-12);
        let all = wilson(50.0, 50.0, 0.95);
        assert_eq!(all.mean, 1.0);
        assert_eq!(all.high, 1.0);
        close(all.low, 50.0 / (50.0 + z2), 1e-12);
        assert!(zero.half_width.unwrap() > 0.0 && all.half_width.unwrap() > 0.0);
    }

    #[test]
    fn wilson_degenerate_inputs() {
        assert_eq!(wilson(0.0, 0.0, 0.95), Interval::point(0.0, 0));
        assert_eq!(wilson(3.0, f64::NAN, 0.95), Interval::point(0.0, 0));
        assert_eq!(wilson(f64::NAN, 10.0, 0.95), wilson(0.0, 10.0, 0.95));
        assert_eq!(wilson(12.0, 10.0, 0.95), wilson(10.0, 10.0, 0.95));
    }

    #[test]
    #[should_panic(expected = "confidence level")]
    fn invalid_level_panics() {
        student_t(&[1.0, 2.0], 1.0);
    }
}
