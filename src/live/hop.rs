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
    let set = cpu_set(&[cpu]);
    // SAFETY: as above; sched_setaffinity(0, ..) applies to the calling thread only.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

/// The affinity mask of the cores `cpus`.
#[cfg(target_os = "linux")]
fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data, all zeroes the empty set; CPU_SET sets bits of it
    // (bounds-checked: the cores come from this host's mask or its count, below CPU_SETSIZE).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        set
    }
}

#[cfg(not(target_os = "linux"))]
fn pin(_cpu: usize) -> bool {
    false
}

/// This process's threads held on one core (the first this thread may run on) and another
/// process (a backend) on the host's other cores, until dropped: a client and a server that the
/// kernel kept on one core measure a round trip the workload never runs in. Dropping restores
/// every thread of this process to the mask it had (threads started meanwhile to the calling
/// thread's); the other process keeps its mask, which ends with it.
pub struct Apart {
    #[cfg(target_os = "linux")]
    saved: Vec<(libc::pid_t, libc::cpu_set_t)>,
}

impl Apart {
    /// `None` on a host of one core, or where this process may not pin `other`
    /// (another user's process without CAP_SYS_NICE), or not on Linux.
    #[cfg(target_os = "linux")]
    pub fn new(other: u32) -> Option<Apart> {
        let ours = *allowed_cpus()?.first()?;
        let others: Vec<usize> = (0..online_cpus()).filter(|&c| c != ours).collect();
        if others.is_empty() {
            return None;
        }
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: cpu_set_t is plain data; sched_{get,set}affinity read or fill one of `size`
        // bytes for the given thread or process, and fail (non-zero) without touching it.
        let (rest, one) = (cpu_set(&others), cpu_set(&[ours]));
        unsafe {
            if libc::sched_setaffinity(other as libc::pid_t, size, &rest) != 0 {
                return None;
            }
            let me = libc::gettid();
            let mut saved = Vec::new();
            // the calling thread first: its mask is the one for threads started meanwhile
            for tid in std::iter::once(me).chain(own_threads().into_iter().filter(|&t| t != me)) {
                let mut mask: libc::cpu_set_t = std::mem::zeroed();
                if libc::sched_getaffinity(tid, size, &mut mask) == 0
                    && libc::sched_setaffinity(tid, size, &one) == 0
                {
                    saved.push((tid, mask));
                }
            }
            Some(Apart { saved })
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new(_other: u32) -> Option<Apart> {
        None
    }
}

#[cfg(target_os = "linux")]
impl Drop for Apart {
    fn drop(&mut self) {
        let Some(&(_, first)) = self.saved.first() else {
            return;
        };
        for tid in own_threads() {
            let mask = self
                .saved
                .iter()
                .find(|(t, _)| *t == tid)
                .map_or(first, |(_, m)| *m);
            // SAFETY: as in `Apart::new`; a thread that has ended meanwhile fails harmlessly.
            unsafe {
                libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mask);
            }
        }
    }
}

/// The host's online cores (numbered from 0).
#[cfg(target_os = "linux")]
fn online_cpus() -> usize {
    // SAFETY: sysconf reads a system value; -1 (unknown) becomes 0.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(0) as usize
}

/// The thread ids of this process.
#[cfg(target_os = "linux")]
fn own_threads() -> Vec<libc::pid_t> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
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

    #[cfg(target_os = "linux")]
    #[test]
    fn apart_holds_this_process_on_one_core_and_restores_it() {
        let before = allowed_cpus().expect("this thread's mask");
        if online_cpus() < 2 {
            return;
        }
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("a child process");
        let other_mask = |pid: u32| -> Vec<usize> {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let line = status
                .lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))
                .unwrap()
                .to_string();
            line.split_whitespace()
                .nth(1)
                .unwrap()
                .split(',')
                .flat_map(|r| {
                    let mut ends = r.split('-').map(|x| x.parse::<usize>().unwrap());
                    let a = ends.next().unwrap();
                    let z = ends.next().unwrap_or(a);
                    a..=z
                })
                .collect()
        };
        {
            let apart = Apart::new(child.id()).expect("our own child may be pinned");
            assert_eq!(allowed_cpus().unwrap(), vec![before[0]]);
            let others: Vec<usize> = (0..online_cpus()).filter(|&c| c != before[0]).collect();
            assert_eq!(other_mask(child.id()), others);
            drop(apart);
        }
        assert_eq!(allowed_cpus().unwrap(), before);
        child.kill().ok();
        child.wait().ok();
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
