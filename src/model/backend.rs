//! A PostgreSQL server: connection slots (`max_connections` minus the superuser reserve) and the
//! CPU, shared by processor sharing over `cores` among the statements in their CPU phase, slowed by
//! a USL-shaped contention factor 1 + σ(k−1) + κk(k−1) in the number k of running statements — so
//! that too many active backends *reduce* throughput, as measured on real servers.
//!
//! Processor sharing is exact and event-light: every running statement progresses at the same
//! speed, so a virtual clock counts the CPU work each has received; a statement finishes when the
//! virtual clock reaches its tag (virtual clock at entry + its work). Only the earliest finish is
//! ever scheduled.

use crate::experiment::PgSpec;
use crate::units::{SimDuration, SimTime};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug)]
struct Job {
    tag: f64,
    req: u32,
    seq: u32,
}
impl PartialEq for Job {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Job {}
impl PartialOrd for Job {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Job {
    fn cmp(&self, o: &Self) -> Ordering {
        // min-heap on (tag, req, seq)
        o.tag
            .total_cmp(&self.tag)
            .then(o.req.cmp(&self.req))
            .then(o.seq.cmp(&self.seq))
    }
}

pub struct Postgres {
    pub usable: u32,
    /// Connections established or starting (each holds a slot).
    pub backends: u32,
    pub peak_backends: u32,
    pub up: bool,
    /// Statement time multiplier (a scheduled slowdown).
    pub slowdown: f64,
    cores: Option<f64>,
    sigma: f64,
    kappa: f64,
    jobs: BinaryHeap<Job>,
    vclock: f64,
    last: SimTime,
    /// Generation of the scheduled completion event; older ones are stale.
    pub gen: u32,
}

impl Postgres {
    pub fn new(spec: &PgSpec) -> Self {
        Postgres {
            usable: spec.usable_connections(),
            backends: 0,
            peak_backends: 0,
            up: true,
            slowdown: 1.0,
            cores: spec.cores.map(f64::from),
            sigma: spec.sigma,
            kappa: spec.kappa,
            jobs: BinaryHeap::with_capacity(256),
            vclock: 0.0,
            last: SimTime::ZERO,
            gen: 0,
        }
    }

    /// Take a connection slot; false when PostgreSQL would refuse (53300) or is down.
    pub fn try_connect(&mut self) -> bool {
        if !self.up || self.backends >= self.usable {
            return false;
        }
        self.backends += 1;
        self.peak_backends = self.peak_backends.max(self.backends);
        true
    }

    pub fn disconnect(&mut self) {
        assert!(self.backends > 0, "backend count underflow");
        self.backends -= 1;
    }

    /// Statements currently in their CPU phase.
    pub fn running(&self) -> u32 {
        self.jobs.len() as u32
    }

    /// CPU work per statement per ns of wall time with k running statements.
    pub fn speed(&self, k: u32) -> f64 {
        if k == 0 {
            return 1.0;
        }
        let kf = k as f64;
        let share = match self.cores {
            Some(c) if kf > c => c / kf,
            _ => 1.0,
        };
        share / (1.0 + self.sigma * (kf - 1.0) + self.kappa * kf * (kf - 1.0))
    }

    /// Cores busy with k running statements (for utilisation).
    pub fn busy_cores(&self) -> f64 {
        let k = self.jobs.len() as f64;
        match self.cores {
            Some(c) => k.min(c),
            None => k,
        }
    }

    pub fn cores(&self) -> Option<f64> {
        self.cores
    }

    fn advance(&mut self, now: SimTime) {
        if now > self.last {
            let k = self.jobs.len() as u32;
            if k > 0 {
                self.vclock += (now.0 - self.last.0) as f64 * self.speed(k);
            }
            self.last = now;
        }
    }

    /// A statement enters its CPU phase with `work` of CPU time. Returns the new next completion.
    pub fn add(&mut self, now: SimTime, req: u32, seq: u32, work: SimDuration) -> Option<SimTime> {
        self.advance(now);
        self.jobs.push(Job {
            tag: self.vclock + work.as_ns() as f64,
            req,
            seq,
        });
        self.gen = self.gen.wrapping_add(1);
        self.next_completion()
    }

    /// Remove a statement from the CPU (cancelled). Returns the new next completion.
    pub fn remove(&mut self, now: SimTime, req: u32) -> Option<SimTime> {
        self.advance(now);
        self.jobs.retain(|j| j.req != req);
        self.gen = self.gen.wrapping_add(1);
        self.next_completion()
    }

    /// Remove every statement (the server went down); returns the (req, seq) pairs removed.
    pub fn drain(&mut self, now: SimTime, out: &mut Vec<(u32, u32)>) {
        self.advance(now);
        out.extend(self.jobs.drain().map(|j| (j.req, j.seq)));
        self.gen = self.gen.wrapping_add(1);
    }

    pub fn next_completion(&self) -> Option<SimTime> {
        let j = self.jobs.peek()?;
        let rem = (j.tag - self.vclock).max(0.0);
        let dt = (rem / self.speed(self.jobs.len() as u32)).ceil();
        Some(self.last + SimDuration::from_ns_f64(dt))
    }

    /// The completion event fired: pop the statement that finished (if the event is current).
    pub fn complete(&mut self, now: SimTime) -> Option<(u32, u32)> {
        self.advance(now);
        let j = *self.jobs.peek()?;
        // the event time was rounded up to whole ns: allow that much slack in virtual work
        if j.tag - self.vclock <= 1.0 + 1e-9 * j.tag.abs() {
            self.jobs.pop();
            self.gen = self.gen.wrapping_add(1);
            Some((j.req, j.seq))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::Dist;

    fn spec(cores: Option<u32>, sigma: f64, kappa: f64) -> PgSpec {
        PgSpec {
            max_connections: 10,
            reserved: 3,
            cores,
            sigma,
            kappa,
            backend_start: Dist::ZERO,
            statement_timeout: None,
        }
    }

    #[test]
    fn slots_refuse_beyond_max_connections_minus_reserved() {
        let mut pg = Postgres::new(&spec(Some(1), 0.0, 0.0));
        for _ in 0..7 {
            assert!(pg.try_connect());
        }
        assert!(
            !pg.try_connect(),
            "the 8th of max_connections 10 − 3 reserved is refused"
        );
        pg.disconnect();
        assert!(pg.try_connect());
        assert_eq!(pg.peak_backends, 7);
    }

    #[test]
    fn processor_sharing_on_one_core() {
        // two jobs of 10 ms and 20 ms arrive together on one core: the first ends at 20 ms
        // (each gets half), the second at 30 ms.
        let mut pg = Postgres::new(&spec(Some(1), 0.0, 0.0));
        pg.add(SimTime(0), 1, 0, SimDuration::from_ms(10));
        let t = pg.add(SimTime(0), 2, 0, SimDuration::from_ms(20)).unwrap();
        assert_eq!(t, SimTime(20_000_000));
        assert_eq!(pg.complete(t), Some((1, 0)));
        let t2 = pg.next_completion().unwrap();
        assert_eq!(t2, SimTime(30_000_000));
        assert_eq!(pg.complete(t2), Some((2, 0)));
        assert!(pg.next_completion().is_none());
    }

    #[test]
    fn contention_slows_every_job_and_cores_cap_parallelism() {
        let pg = Postgres::new(&spec(Some(4), 0.1, 0.01));
        assert_eq!(pg.speed(1), 1.0);
        // 8 jobs on 4 cores: half speed, then / (1 + 0.1*7 + 0.01*56)
        let expect = 0.5 / (1.0 + 0.7 + 0.56);
        assert!((pg.speed(8) - expect).abs() < 1e-12);
        // throughput k*speed(k) is retrograde past the USL peak
        let x = |k: u32| k as f64 * pg.speed(k);
        assert!(x(16) < x(8));
    }
}
