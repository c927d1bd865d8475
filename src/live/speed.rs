//! The host's speed, to tell a model's miss from a machine that changed under it. Two fixed
//! pieces of work, timed on the calling thread: a dependent chain of multiply-xorshift steps
//! (the cores' speed: it neither vectorises nor touches memory) and a walk of a random cycle
//! through a buffer far beyond the caches (memory latency: what a scan of shared buffers
//! waits on). On a shared virtual machine either can take two to three times as long from one
//! minute to the next (other guests on the host; no steal time reported), and a database's
//! throughput moves with them. `calibrate` records the probe while it measures, `bench` before
//! every replication and after a point's last, and `compare` sets each point's against the
//! calibration's.

use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::time::Instant;

/// Multiply-xorshift steps per timed chunk (about 3 ms on a 3 GHz core).
const CPU_STEPS: u64 = 2_000_000;
/// Entries (u32) of the walked buffer: 32 MiB, beyond the last-level cache a small machine's
/// cores share.
const WALK_ENTRIES: usize = 8 << 20;
/// Steps of the walk per timed chunk (about 10 ms at 100 ns an access).
const WALK_STEPS: usize = 100_000;
/// Timed chunks of each kind per probe.
const CHUNKS: usize = 4;

/// One probe: milliseconds per chunk of each kind (the mean over four chunks).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub cpu_ms: f64,
    pub memory_ms: f64,
}

/// The walked buffer, built once (its pages touched) and kept for every probe, so that a probe
/// times the memory as a long-lived process's buffers see it, not a fresh allocation's faults.
pub struct Prober {
    next: Vec<u32>,
}

impl Default for Prober {
    fn default() -> Self {
        Self::new()
    }
}

impl Prober {
    /// Build the buffer: one random cycle through all entries (Sattolo's shuffle, fixed seed).
    pub fn new() -> Prober {
        Prober::with_entries(WALK_ENTRIES)
    }

    fn with_entries(n: usize) -> Prober {
        let mut next: Vec<u32> = (0..n as u32).collect();
        let mut s: u64 = 0x853c_49e6_748f_ea9b;
        for i in (1..n).rev() {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let j = ((s >> 33) as usize) % i;
            next.swap(i, j);
        }
        Prober { next }
    }

    /// Time the two kinds of work, alternating chunk by chunk.
    pub fn probe(&self) -> Probe {
        let (mut cpu, mut mem) = (0.0, 0.0);
        let mut p = 0u32;
        for k in 0..CHUNKS {
            let t = Instant::now();
            black_box(chain(black_box(CPU_STEPS), k as u64));
            cpu += t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            for _ in 0..WALK_STEPS {
                p = self.next[p as usize];
            }
            black_box(p);
            mem += t.elapsed().as_secs_f64() * 1e3;
        }
        Probe {
            cpu_ms: cpu / CHUNKS as f64,
            memory_ms: mem / CHUNKS as f64,
        }
    }
}

fn chain(steps: u64, seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..steps {
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
    }
    x
}

/// The mean of probes, kind by kind; `None` for none.
pub fn mean(probes: &[Probe]) -> Option<Probe> {
    if probes.is_empty() {
        return None;
    }
    let n = probes.len() as f64;
    Some(Probe {
        cpu_ms: probes.iter().map(|p| p.cpu_ms).sum::<f64>() / n,
        memory_ms: probes.iter().map(|p| p.memory_ms).sum::<f64>() / n,
    })
}

/// How the method is described where probes are recorded.
pub const METHOD: &str = "each probe times, alternating, four chunks of a dependent chain of 2,000,000 multiply-xorshift steps (cpu_ms) and four walks of 100,000 steps along a random cycle through a 32 MiB buffer built once per process (memory_ms); ms per chunk, the mean of the four";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_is_one_cycle_through_every_entry() {
        let p = Prober::with_entries(1000);
        let (mut at, mut seen) = (0u32, vec![false; 1000]);
        for _ in 0..1000 {
            assert!(!seen[at as usize], "entry {at} visited twice");
            seen[at as usize] = true;
            at = p.next[at as usize];
        }
        assert_eq!(at, 0, "back at the start after every entry");
    }

    #[test]
    fn a_probe_times_both_kinds_of_work() {
        let p = Prober::with_entries(1 << 16).probe();
        assert!(p.cpu_ms > 0.0 && p.cpu_ms.is_finite(), "{p:?}");
        assert!(p.memory_ms > 0.0 && p.memory_ms.is_finite(), "{p:?}");
    }

    #[test]
    fn the_mean_is_kind_by_kind() {
        let m = mean(&[
            Probe {
                cpu_ms: 2.0,
                memory_ms: 10.0,
            },
            Probe {
                cpu_ms: 4.0,
                memory_ms: 20.0,
            },
        ])
        .unwrap();
        assert_eq!(m.cpu_ms, 3.0);
        assert_eq!(m.memory_ms, 15.0);
        assert!(mean(&[]).is_none());
    }
}
