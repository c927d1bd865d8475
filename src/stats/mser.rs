//! MSER-5 warm-up truncation (White, 1997; Franklin & White, 2008).
//!
//! A simulation started empty spends its first stretch in a transient that
//! biases every steady-state estimate. MSER picks the truncation point that
//! minimises the marginal standard error of the mean of what remains,
//! trading the bias of keeping transient data against the variance of
//! discarding useful data.

/// Batch size of MSER-5.
const BATCH: usize = 5;

/// Number of leading observations of `series` to discard as warm-up,
/// chosen by MSER-5.
///
/// Definition: the series is cut into `m = ⌊len/5⌋` batches, `Y_1 .. Y_m`,
/// each the mean of 5 consecutive observations (a trailing partial batch is
/// ignored). For each batch truncation `d`, with `Ȳ_d` the mean of
/// `Y_(d+1) .. Y_m`,
///
/// ```text
/// MSER(d) = Σ_{j>d} (Y_j − Ȳ_d)² / (m − d)²
/// ```
///
/// and the `d` minimising it is chosen, searching only `0 ≤ d ≤ ⌊m/2⌋`
/// (the usual rule: a minimum in the second half signals a run too short to
/// reach steady state) and keeping at least two batches. Ties go to the
/// smallest `d`. The result is `5·d` original observations.
///
/// Returns 0 for series with fewer than two complete batches (under 10
/// observations), and for series containing a non-finite value, for which
/// the statistic is undefined. A constant series also yields 0.
pub fn mser5(series: &[f64]) -> usize {
    let m = series.len() / BATCH;
    if m < 2 || series.iter().any(|x| !x.is_finite()) {
        return 0;
    }
    let batches: Vec<f64> = series
        .chunks_exact(BATCH)
        .map(|chunk| chunk.iter().sum::<f64>() / BATCH as f64)
        .collect();
    // Shift by a reference batch so that identical batches give exactly zero
    // deviations (a constant series must not pick up rounding noise).
    let reference = batches[m - 1];
    let d_max = (m / 2).min(m - 2);

    // Accumulate suffix statistics from the end (Welford), recording the
    // statistic for each truncation d as the suffix reaches Y_(d+1).
    let mut best_d = 0usize;
    let mut best = f64::INFINITY;
    let mut count = 0usize;
    let mut mean = 0.0_f64;
    let mut ss = 0.0_f64;
    let mut stats = vec![0.0_f64; d_max + 1];
    for d in (0..m).rev() {
        let y = batches[d] - reference;
        count += 1;
        let delta = y - mean;
        mean += delta / count as f64;
        ss += delta * (y - mean);
        if d <= d_max {
            stats[d] = ss / (count as f64 * count as f64);
        }
    }
    for (d, &stat) in stats.iter().enumerate() {
        if stat < best {
            best = stat;
            best_d = d;
        }
    }
    best_d * BATCH
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic uniform noise in [−0.5, 0.5).
    fn noise(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    #[test]
    fn finds_a_decaying_transient() {
        // Starts at 10 and decays to 1 with time constant 50: the transient
        // is over (within the noise) by roughly t = 300.
        for seed in 1..=5 {
            let series: Vec<f64> = noise(5_000, seed)
                .iter()
                .enumerate()
                .map(|(t, e)| 1.0 + 9.0 * (-(t as f64) / 50.0).exp() + e)
                .collect();
            let d = mser5(&series);
            assert_eq!(d % 5, 0);
            assert!((100..=500).contains(&d), "seed {seed}: truncated {d}");
        }
    }

    #[test]
    fn stationary_noise_truncates_little() {
        let series = noise(5_000, 42);
        assert!(mser5(&series) < 2_500);
    }

    #[test]
    fn constant_series_is_not_truncated() {
        assert_eq!(mser5(&[0.1; 1_000]), 0);
        assert_eq!(mser5(&[7.0; 13]), 0);
    }

    #[test]
    fn short_and_invalid_series() {
        assert_eq!(mser5(&[]), 0);
        assert_eq!(mser5(&[5.0, 1.0, 1.0]), 0);
        assert_eq!(mser5(&[9.0; 9]), 0);
        let mut series = vec![1.0; 100];
        series[3] = f64::NAN;
        assert_eq!(mser5(&series), 0);
    }

    #[test]
    fn step_change_is_removed() {
        // 200 observations at 20, then 2000 at 1: truncation at the step.
        let mut series = vec![20.0; 200];
        series.extend(noise(2_000, 7).iter().map(|e| 1.0 + e));
        assert_eq!(mser5(&series), 200);
    }
}
