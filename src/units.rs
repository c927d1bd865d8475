//! Simulated time: integer nanoseconds.
//!
//! `SimTime` is an instant since the start of a run, `SimDuration` a span. This is the only module
//! that converts between nanoseconds and milliseconds or seconds; everything else speaks in these
//! types, so a unit mistake cannot hide in arithmetic on bare floats.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A span of simulated time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

/// An instant of simulated time: nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

pub const NS_PER_US: u64 = 1_000;
pub const NS_PER_MS: u64 = 1_000_000;
pub const NS_PER_S: u64 = 1_000_000_000;

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);
    /// Longer than any run may last; used for "never".
    pub const MAX: SimDuration = SimDuration(u64::MAX / 4);

    /// From fractional milliseconds, rounded to the nearest nanosecond; negative values clamp to 0.
    pub fn from_ms_f64(ms: f64) -> Self {
        Self::from_ns_f64(ms * NS_PER_MS as f64)
    }
    pub fn from_s_f64(s: f64) -> Self {
        Self::from_ns_f64(s * NS_PER_S as f64)
    }
    pub fn from_us_f64(us: f64) -> Self {
        Self::from_ns_f64(us * NS_PER_US as f64)
    }
    pub fn from_ns_f64(ns: f64) -> Self {
        if ns.is_nan() || ns <= 0.0 {
            SimDuration(0)
        } else if ns >= Self::MAX.0 as f64 {
            Self::MAX
        } else {
            SimDuration(ns.round() as u64)
        }
    }
    pub const fn from_ms(ms: u64) -> Self {
        SimDuration(ms * NS_PER_MS)
    }
    pub const fn from_s(s: u64) -> Self {
        SimDuration(s * NS_PER_S)
    }
    pub fn as_ns(self) -> u64 {
        self.0
    }
    pub fn as_ms_f64(self) -> f64 {
        self.0 as f64 / NS_PER_MS as f64
    }
    pub fn as_s_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S as f64
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    /// Half of this span, rounded down (used for one-way trips of a round-trip time).
    pub fn half(self) -> Self {
        SimDuration(self.0 / 2)
    }
    pub fn mul_f64(self, k: f64) -> Self {
        Self::from_ns_f64(self.0 as f64 * k)
    }
}

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub fn as_ns(self) -> u64 {
        self.0
    }
    pub fn as_s_f64(self) -> f64 {
        self.0 as f64 / NS_PER_S as f64
    }
    /// Time elapsed since `earlier`; saturates at zero (asserted elsewhere where causality matters).
    pub fn since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}
impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        self.0 = self.0.saturating_add(d.0);
    }
}
impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}
impl Sub for SimTime {
    type Output = SimDuration;
    fn sub(self, other: SimTime) -> SimDuration {
        self.since(other)
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} ms", self.as_ms_f64())
    }
}
impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={:.6} s", self.as_s_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        assert_eq!(SimDuration::from_ms_f64(4.2).as_ns(), 4_200_000);
        assert_eq!(SimDuration::from_s_f64(2.0), SimDuration::from_s(2));
        assert_eq!(SimDuration::from_us_f64(35.0).as_ns(), 35_000);
        assert_eq!(SimDuration::from_ms_f64(-1.0), SimDuration::ZERO);
        assert_eq!(SimDuration::from_ms_f64(f64::NAN), SimDuration::ZERO);
        assert_eq!(SimDuration::from_ms(3).as_ms_f64(), 3.0);
        assert_eq!(SimTime(5) + SimDuration(7), SimTime(12));
        assert_eq!(SimTime(5).since(SimTime(9)), SimDuration::ZERO);
    }
}
