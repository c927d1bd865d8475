//! Duration distributions, sampled into [`SimDuration`]s.
//!
//! Every duration in an experiment is a constant or a distribution. Parameters are validated when
//! the distribution is built ([`Dist::lognormal_median_p95`] and friends return an error message
//! naming the problem); sampling is infallible and allocation-free.

use crate::units::SimDuration;
use rand_distr::{Distribution, Exp1, Gamma, StandardNormal};

/// z-score of the 95th percentile of the standard normal distribution.
const Z95: f64 = 1.644_853_626_951_472_2;

#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    Const(SimDuration),
    /// Exponential with the given mean (ns).
    Exp {
        mean_ns: f64,
    },
    /// exp(N(mu, sigma²)) in ns.
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    Gamma {
        shape: f64,
        scale_ns: f64,
        sampler: Gamma<f64>,
    },
    Uniform {
        lo_ns: f64,
        hi_ns: f64,
    },
    /// Inverse CDF by linear interpolation between (probability, ns) points; first p = 0, last p = 1.
    Empirical {
        points: Vec<(f64, f64)>,
    },
}

impl Dist {
    pub const ZERO: Dist = Dist::Const(SimDuration::ZERO);

    pub fn constant_ms(ms: f64) -> Result<Dist, String> {
        finite_non_negative("value", ms)?;
        Ok(Dist::Const(SimDuration::from_ms_f64(ms)))
    }

    pub fn exp_mean_ms(mean_ms: f64) -> Result<Dist, String> {
        finite_positive("mean_ms", mean_ms)?;
        Ok(Dist::Exp {
            mean_ns: mean_ms * 1e6,
        })
    }

    /// Lognormal given by its median and 95th percentile (the way people describe latencies).
    pub fn lognormal_median_p95(median_ms: f64, p95_ms: f64) -> Result<Dist, String> {
        finite_positive("median_ms", median_ms)?;
        finite_positive("p95_ms", p95_ms)?;
        if p95_ms < median_ms {
            return Err(format!(
                "p95_ms ({p95_ms}) must be at least median_ms ({median_ms})"
            ));
        }
        let mu = (median_ms * 1e6).ln();
        let sigma = ((p95_ms * 1e6).ln() - mu) / Z95;
        Ok(Dist::LogNormal { mu, sigma })
    }

    pub fn gamma_shape_mean_ms(shape: f64, mean_ms: f64) -> Result<Dist, String> {
        finite_positive("shape", shape)?;
        finite_positive("mean_ms", mean_ms)?;
        let scale_ns = mean_ms * 1e6 / shape;
        let sampler = Gamma::new(shape, scale_ns).map_err(|e| format!("invalid gamma: {e}"))?;
        Ok(Dist::Gamma {
            shape,
            scale_ns,
            sampler,
        })
    }

    pub fn uniform_ms(min_ms: f64, max_ms: f64) -> Result<Dist, String> {
        finite_non_negative("min_ms", min_ms)?;
        finite_non_negative("max_ms", max_ms)?;
        if max_ms < min_ms {
            return Err(format!(
                "max_ms ({max_ms}) must be at least min_ms ({min_ms})"
            ));
        }
        Ok(Dist::Uniform {
            lo_ns: min_ms * 1e6,
            hi_ns: max_ms * 1e6,
        })
    }

    /// An empirical distribution from (probability, ms) quantile points: probabilities strictly
    /// increasing from 0 to 1, values non-decreasing.
    pub fn empirical_ms(points: &[(f64, f64)]) -> Result<Dist, String> {
        if points.len() < 2 {
            return Err("needs at least two [probability, ms] points, from p = 0 to p = 1".into());
        }
        let (first, last) = (points[0].0, points[points.len() - 1].0);
        if first != 0.0 || last != 1.0 {
            return Err(format!(
                "probabilities must run from 0 to 1 (got {first} .. {last})"
            ));
        }
        for w in points.windows(2) {
            if w[1].0.partial_cmp(&w[0].0) != Some(std::cmp::Ordering::Greater) {
                return Err(format!(
                    "probabilities must be strictly increasing ({} then {})",
                    w[0].0, w[1].0
                ));
            }
            if w[1].1 < w[0].1 {
                return Err(format!(
                    "values must be non-decreasing ({} ms then {} ms)",
                    w[0].1, w[1].1
                ));
            }
        }
        for &(_, v) in points {
            finite_non_negative("quantile value", v)?;
        }
        Ok(Dist::Empirical {
            points: points.iter().map(|&(p, ms)| (p, ms * 1e6)).collect(),
        })
    }

    /// Draw one duration.
    #[inline]
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> SimDuration {
        match self {
            Dist::Const(d) => *d,
            Dist::Exp { mean_ns } => {
                let e: f64 = Exp1.sample(rng);
                SimDuration::from_ns_f64(e * mean_ns)
            }
            Dist::LogNormal { mu, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                SimDuration::from_ns_f64((mu + sigma * z).exp())
            }
            Dist::Gamma { sampler, .. } => SimDuration::from_ns_f64(sampler.sample(rng)),
            Dist::Uniform { lo_ns, hi_ns } => {
                let u: f64 = rng.random();
                SimDuration::from_ns_f64(lo_ns + (hi_ns - lo_ns) * u)
            }
            Dist::Empirical { points } => {
                let u: f64 = rng.random();
                SimDuration::from_ns_f64(empirical_quantile(points, u))
            }
        }
    }

    /// The distribution's mean, in ns.
    pub fn mean_ns(&self) -> f64 {
        match self {
            Dist::Const(d) => d.as_ns() as f64,
            Dist::Exp { mean_ns } => *mean_ns,
            Dist::LogNormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
            Dist::Gamma {
                shape, scale_ns, ..
            } => shape * scale_ns,
            Dist::Uniform { lo_ns, hi_ns } => (lo_ns + hi_ns) / 2.0,
            Dist::Empirical { points } => points
                .windows(2)
                .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
                .sum(),
        }
    }

    pub fn mean_ms(&self) -> f64 {
        self.mean_ns() / 1e6
    }

    /// Whether every draw is zero.
    pub fn is_zero(&self) -> bool {
        matches!(self, Dist::Const(d) if d.is_zero())
    }

    /// Whether every draw is the same value.
    pub fn as_const(&self) -> Option<SimDuration> {
        match self {
            Dist::Const(d) => Some(*d),
            _ => None,
        }
    }
}

fn empirical_quantile(points: &[(f64, f64)], u: f64) -> f64 {
    // points are few; a linear scan beats a binary search for typical sizes
    for w in points.windows(2) {
        let (p0, v0) = w[0];
        let (p1, v1) = w[1];
        if u <= p1 {
            return v0 + (v1 - v0) * (u - p0) / (p1 - p0);
        }
    }
    points[points.len() - 1].1
}

fn finite_positive(name: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "{name} must be a positive number of milliseconds, got {v}"
        ))
    }
}

fn finite_non_negative(name: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("{name} must be zero or positive, got {v}"))
    }
}

/// Draw a uniform index in `0..n` (n > 0).
#[inline]
pub fn uniform_index<R: rand::Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    debug_assert!(n > 0);
    rng.random_range(0..n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};

    fn sample_mean(d: &Dist, n: usize) -> f64 {
        let mut r = stream(1, 0, Stream::Think);
        (0..n).map(|_| d.sample(&mut r).as_ns() as f64).sum::<f64>() / n as f64
    }

    #[test]
    fn sample_means_match_analytic_means() {
        let cases = [
            Dist::exp_mean_ms(4.0).unwrap(),
            Dist::lognormal_median_p95(2.0, 10.0).unwrap(),
            Dist::gamma_shape_mean_ms(2.5, 3.0).unwrap(),
            Dist::uniform_ms(1.0, 3.0).unwrap(),
            Dist::empirical_ms(&[(0.0, 1.0), (0.5, 2.0), (1.0, 10.0)]).unwrap(),
        ];
        for d in &cases {
            let m = sample_mean(d, 200_000);
            let rel = (m - d.mean_ns()).abs() / d.mean_ns();
            assert!(rel < 0.02, "{d:?}: sample mean {m} vs {}", d.mean_ns());
        }
    }

    #[test]
    fn lognormal_median_and_p95_are_honoured() {
        let d = Dist::lognormal_median_p95(3.0, 12.0).unwrap();
        let mut r = stream(2, 0, Stream::Think);
        let mut v: Vec<u64> = (0..100_000).map(|_| d.sample(&mut r).as_ns()).collect();
        v.sort_unstable();
        let med = v[50_000] as f64 / 1e6;
        let p95 = v[95_000] as f64 / 1e6;
        assert!((med - 3.0).abs() / 3.0 < 0.02, "median {med}");
        assert!((p95 - 12.0).abs() / 12.0 < 0.03, "p95 {p95}");
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert!(Dist::exp_mean_ms(0.0).is_err());
        assert!(Dist::lognormal_median_p95(5.0, 1.0).is_err());
        assert!(Dist::uniform_ms(3.0, 1.0).is_err());
        assert!(Dist::empirical_ms(&[(0.0, 1.0), (0.9, 2.0)]).is_err());
        assert!(Dist::empirical_ms(&[(0.0, 3.0), (1.0, 2.0)]).is_err());
        assert!(Dist::constant_ms(-1.0).is_err());
    }
}
