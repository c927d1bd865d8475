//! The cost of a wake-up that crosses cores: two threads ping-pong one byte over a socket pair,
//! pinned first to one core, then to two. On one core each hop is a plain context switch; on two,
//! the woken thread's core is idle and must be woken by the other (an inter-processor interrupt;
//! on a virtual machine, a halted vCPU's exit and re-entry). The difference per hop is
//! `postgres.cross_core_wakeup`: what work pays when it lands on an idle core while another runs.

use super::calibrate::median;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// One-way hop times, µs: medians over the repetitions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HopTimes {
    pub same_core_us: f64,
    pub cross_core_us: f64,
    /// Round trips timed per placement.
    pub round_trips: usize,
}

impl HopTimes {
    /// The extra latency of a cross-core wake-up, ms (never negative).
    pub fn cross_core_wakeup_ms(&self) -> f64 {
        ((self.cross_core_us - self.same_core_us) / 1000.0).max(0.0)
    }
}

/// Ping-pong `rounds` round trips `reps` times on each placement, alternating. `None` when this
/// process may not run on two cores or cannot pin its threads (not Linux).
pub fn measure(rounds: usize, reps: usize) -> Option<HopTimes> {
    let cpus = allowed_cpus()?;
    if cpus.len() < 2 || rounds == 0 || reps == 0 {
        return None;
    }
    let (a, b) = (cpus[0], cpus[1]);
    let mut same = Vec::with_capacity(reps);
    let mut cross = Vec::with_capacity(reps);
    for _ in 0..reps {
        same.push(ping_pong(a, a, rounds)?);
        cross.push(ping_pong(a, b, rounds)?);
    }
    Some(HopTimes {
        same_core_us: median(&same),
        cross_core_us: median(&cross),
        round_trips: rounds * reps,
    })
}

/// One-way hop time in µs between a thread on core `ca` and one on core `cb`.
fn ping_pong(ca: usize, cb: usize, rounds: usize) -> Option<f64> {
    const WARM: usize = 200;
    let (mut x, mut y) = UnixStream::pair().ok()?;
    let echo = std::thread::spawn(move || -> bool {
        if !pin(cb) {
            return false;
        }
        let mut byte = [0u8; 1];
        // until the other end closes
        while let Ok(1) = y.read(&mut byte) {
            if y.write_all(&byte).is_err() {
                return false;
            }
        }
        true
    });
    let timer = std::thread::spawn(move || -> Option<f64> {
        if !pin(ca) {
            return None;
        }
        let mut byte = [0u8; 1];
        let mut trip = |x: &mut UnixStream| -> Option<()> {
            x.write_all(&byte).ok()?;
            x.read_exact(&mut byte).ok()
        };
        for _ in 0..WARM {
            trip(&mut x)?;
        }
        let t = Instant::now();
        for _ in 0..rounds {
            trip(&mut x)?;
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / (2 * rounds) as f64;
        drop(x);
        Some(us)
    });
    let us = timer.join().ok()?;
    let pinned = echo.join().ok()?;
    us.filter(|_| pinned)
}

#[cfg(target_os = "linux")]
fn allowed_cpus() -> Option<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        Some(
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect(),
        )
    }
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Option<Vec<usize>> {
    None
}

/// Pin the calling thread to core `cpu`.
#[cfg(target_os = "linux")]
fn pin(cpu: usize) -> bool {
    // SAFETY: as above; sched_setaffinity(0, ..) applies to the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn pin(_cpu: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakeup_is_the_difference_per_hop_and_never_negative() {
        let h = HopTimes {
            same_core_us: 1.5,
            cross_core_us: 31.5,
            round_trips: 10,
        };
        assert!((h.cross_core_wakeup_ms() - 0.030).abs() < 1e-12);
        let h = HopTimes {
            same_core_us: 5.0,
            cross_core_us: 4.0,
            round_trips: 10,
        };
        assert_eq!(h.cross_core_wakeup_ms(), 0.0);
    }

    #[test]
    fn measures_both_placements_where_two_cores_are_allowed() {
        match measure(200, 1) {
            // a single-core host or another OS: nothing to measure, and no error
            None => assert!(allowed_cpus().is_none_or(|c| c.len() < 2)),
            Some(h) => {
                assert!(h.same_core_us > 0.0 && h.same_core_us.is_finite(), "{h:?}");
                assert!(
                    h.cross_core_us > 0.0 && h.cross_core_us.is_finite(),
                    "{h:?}"
                );
                assert_eq!(h.round_trips, 200);
            }
        }
    }
}
