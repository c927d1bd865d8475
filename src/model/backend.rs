//! A PostgreSQL server: connection slots (`max_connections` minus the superuser reserve) and the
//! CPU, shared over `cores` among the statements in their CPU phase, slowed by a USL-shaped
//! contention factor 1 + σ(k−1) + κk(k−1) in the number k of running statements — so that too
//! many active backends *reduce* throughput, as measured on real servers.
//!
//! Two ways of sharing the cores (`postgres.cpu_scheduling`):
//!
//! - `shared` (the default): ideal processor sharing. It is exact and event-light: every running
//!   statement progresses at the same speed, so a virtual clock counts the CPU work each has
//!   received; a statement finishes when the virtual clock reaches its tag (virtual clock at entry
//!   + its work). Only the earliest finish is ever scheduled.
//! - `per_core`: one run queue per core, as Linux keeps them. A statement entering its CPU phase
//!   goes to an idle core when there is one (the lowest-numbered), otherwise to a uniformly random
//!   core; each core shares itself among its own statements by processor sharing (its own virtual
//!   clock, speed 1/n for n statements on it, times the same contention factor in the *total* k).
//!   A core that runs out of work pulls the most recently placed statement from the core with the
//!   most statements, when that core has at least 2 (newidle balancing), keeping its remaining
//!   work. So a core is idle only when no core has two statements: it is work-conserving, as fast
//!   as `shared` in throughput and identical to it while k ≤ cores, but statements stuck behind
//!   others on a busy core wait longer, which widens the latency tail.

use crate::experiment::{CpuScheduling, PgSpec};
use crate::model::NONE;
use crate::rng::Rng;
use crate::units::{SimDuration, SimTime};
use rand::Rng as _;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A statement in the CPU: `tag` is in its virtual clock (the server's, or under `per_core` its
/// core's); `placed` numbers the placements on cores (on entry and on every move), so the most
/// recently placed job is the largest (always 0 under shared processor sharing).
#[derive(Clone, Copy, Debug)]
struct CoreJob {
    tag: f64,
    req: u32,
    seq: u32,
    placed: u64,
}
impl PartialEq for CoreJob {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for CoreJob {}
impl PartialOrd for CoreJob {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for CoreJob {
    fn cmp(&self, o: &Self) -> Ordering {
        // min-heap on (tag, req, seq, placed)
        o.tag
            .total_cmp(&self.tag)
            .then(o.req.cmp(&self.req))
            .then(o.seq.cmp(&self.seq))
            .then(o.placed.cmp(&self.placed))
    }
}

/// One core's run queue, shared among its jobs by processor sharing.
struct Core {
    jobs: BinaryHeap<CoreJob>,
    /// CPU work each job on this core has received since the core was last idle.
    vclock: f64,
}

/// The `per_core` state: the run queues and the placement generator.
struct PerCore {
    cores: Vec<Core>,
    rng: Rng,
    /// Jobs over all cores.
    total: u32,
    placements: u64,
}

impl PerCore {
    fn new(cores: u32, rng: Rng) -> Self {
        assert!(cores >= 1, "per-core scheduling needs at least one core");
        PerCore {
            cores: (0..cores)
                .map(|_| Core {
                    jobs: BinaryHeap::with_capacity(64),
                    vclock: 0.0,
                })
                .collect(),
            rng,
            total: 0,
            placements: 0,
        }
    }

    /// Wall time from `last` to the completion of core `c`'s first job, in (fractional) ns.
    fn time_to_first(&self, c: usize, contention: f64) -> Option<f64> {
        let core = &self.cores[c];
        let j = core.jobs.peek()?;
        let rem = (j.tag - core.vclock).max(0.0);
        Some(rem / core_speed(core.jobs.len(), contention))
    }

    fn place(&mut self, c: usize, req: u32, seq: u32, work: f64) {
        let core = &mut self.cores[c];
        if core.jobs.is_empty() {
            core.vclock = 0.0;
        }
        self.placements += 1;
        core.jobs.push(CoreJob {
            tag: core.vclock + work,
            req,
            seq,
            placed: self.placements,
        });
        self.total += 1;
    }

    /// An idle core (the lowest-numbered), or a uniformly random one when every core is busy.
    fn choose(&mut self) -> usize {
        match self.cores.iter().position(|c| c.jobs.is_empty()) {
            Some(c) => c,
            None => self.rng.random_range(0..self.cores.len()),
        }
    }

    /// Newidle balancing: if a core is idle and another has ≥ 2 jobs, the idle core takes the
    /// most recently placed job of the busiest core (the lowest-numbered among equals), with the
    /// work it has left.
    fn balance(&mut self) {
        let Some(idle) = self.cores.iter().position(|c| c.jobs.is_empty()) else {
            return;
        };
        let mut from = 0;
        for (i, c) in self.cores.iter().enumerate() {
            if c.jobs.len() > self.cores[from].jobs.len() {
                from = i;
            }
        }
        let src = &mut self.cores[from];
        if src.jobs.len() < 2 {
            return;
        }
        let newest = src.jobs.iter().max_by_key(|j| j.placed).copied();
        let j = newest.expect("the busiest core has jobs");
        let before = src.jobs.len();
        src.jobs.retain(|x| x.placed != j.placed);
        assert_eq!(src.jobs.len() + 1, before, "one job moves");
        let rem = (j.tag - src.vclock).max(0.0);
        self.total -= 1;
        self.place(idle, j.req, j.seq, rem);
    }

    /// The job due soonest (on the lowest-numbered core among equals) ends, if it is due now;
    /// then an emptied core balances.
    fn complete(&mut self, contention: f64) -> Option<(u32, u32)> {
        let mut best: Option<(usize, f64)> = None;
        for c in 0..self.cores.len() {
            if let Some(t) = self.time_to_first(c, contention) {
                if best.is_none_or(|(_, b)| t < b) {
                    best = Some((c, t));
                }
            }
        }
        let (c, _) = best?;
        let core = &mut self.cores[c];
        let j = *core.jobs.peek().expect("a first job");
        // the event time was rounded up to whole ns: allow that much slack in virtual work
        if j.tag - core.vclock > 1.0 + 1e-9 * j.tag.abs() {
            return None;
        }
        core.jobs.pop();
        self.total -= 1;
        self.balance();
        self.check();
        Some((j.req, j.seq))
    }

    /// The invariants: the total is the sum over cores, and no core idles while another core
    /// has a job waiting behind another.
    fn check(&self) {
        let mut sum = 0usize;
        let mut idle = false;
        let mut crowded = false;
        for c in &self.cores {
            sum += c.jobs.len();
            idle |= c.jobs.is_empty();
            crowded |= c.jobs.len() >= 2;
        }
        assert_eq!(sum, self.total as usize, "a job lost between the cores");
        assert!(
            !(idle && crowded),
            "a core idles while another has queued jobs"
        );
    }
}

/// The USL slowdown 1 + σ(k−1) + κk(k−1) with k running statements.
fn slowdown(sigma: f64, kappa: f64, k: u32) -> f64 {
    let kf = k.max(1) as f64;
    1.0 + sigma * (kf - 1.0) + kappa * kf * (kf - 1.0)
}

/// The contention factor 1 / (1 + σ(k−1) + κk(k−1)) with k running statements.
fn contention(sigma: f64, kappa: f64, k: u32) -> f64 {
    1.0 / slowdown(sigma, kappa, k)
}

/// The speed of each of the `n` jobs on one core.
fn core_speed(n: usize, contention: f64) -> f64 {
    (1.0 / n as f64) * contention
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
    jobs: BinaryHeap<CoreJob>,
    vclock: f64,
    /// `Some` under `cpu_scheduling: per_core` (then `jobs` and `vclock` are unused).
    per_core: Option<PerCore>,
    last: SimTime,
    /// Generation of the scheduled completion event; older ones are stale.
    pub gen: u32,
}

impl Postgres {
    /// `rng` places statements on cores under `per_core`; it is never drawn from otherwise.
    pub fn new(spec: &PgSpec, rng: Rng) -> Self {
        let per_core = match spec.cpu_scheduling {
            CpuScheduling::Shared => None,
            CpuScheduling::PerCore => {
                let cores = spec
                    .cores
                    .expect("cpu_scheduling per_core needs a number of cores");
                Some(PerCore::new(cores, rng))
            }
        };
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
            per_core,
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
        match &self.per_core {
            Some(pc) => pc.total,
            None => self.jobs.len() as u32,
        }
    }

    /// CPU work per statement per ns of wall time with k running statements, under `shared`.
    pub fn speed(&self, k: u32) -> f64 {
        if k == 0 {
            return 1.0;
        }
        let kf = k as f64;
        let share = match self.cores {
            Some(c) if kf > c => c / kf,
            _ => 1.0,
        };
        share / slowdown(self.sigma, self.kappa, k)
    }

    /// Some but not all of the cores run a statement: work arriving now lands on an idle core
    /// that another core must wake (`postgres.cross_core_wakeup`). PgBouncer's work on the host
    /// is not a statement; the caller counts its thread in `others` when it keeps a core busy.
    /// Never with unlimited cores.
    pub fn partly_busy(&self, others: usize) -> bool {
        let Some(cores) = self.cores else {
            return false;
        };
        let busy = match &self.per_core {
            Some(pc) => pc
                .cores
                .iter()
                .filter(|c| c.jobs.iter().any(|j| j.req != NONE))
                .count() as f64,
            None => (self.jobs.iter().filter(|j| j.req != NONE).count() as f64).min(cores),
        } + others as f64;
        busy > 0.0 && busy < cores
    }

    /// The run queues with their virtual clocks and the speed of each of their jobs: the cores
    /// under `per_core`, else the server's one shared queue.
    fn queues(&self) -> impl Iterator<Item = (&BinaryHeap<CoreJob>, f64, f64)> + '_ {
        let shared = self
            .per_core
            .is_none()
            .then(|| (&self.jobs, self.vclock, self.speed(self.jobs.len() as u32)));
        let cores = self.per_core.iter().flat_map(|pc| {
            let contention = contention(self.sigma, self.kappa, pc.total);
            pc.cores
                .iter()
                .map(move |c| (&c.jobs, c.vclock, core_speed(c.jobs.len(), contention)))
        });
        shared.into_iter().chain(cores)
    }

    /// Wall time until one of the running statements (PgBouncer's work excluded), drawn
    /// uniformly, ends at the current speeds; `None` when no statement runs. Nothing is
    /// advanced: the state is read as it would be at `now`.
    pub fn time_to_end_of_a_statement(&self, now: SimTime, rng: &mut Rng) -> Option<SimDuration> {
        // the heaps' order is their own, fixed by their contents: deterministic
        let statements = || {
            self.queues().flat_map(|(jobs, vclock, speed)| {
                jobs.iter()
                    .filter(|j| j.req != NONE)
                    .map(move |j| (j.tag, vclock, speed))
            })
        };
        let n = statements().count();
        if n == 0 {
            return None;
        }
        let (tag, vclock, speed) = statements().nth(rng.random_range(0..n))?;
        let dt = now.0.saturating_sub(self.last.0) as f64;
        let rem = (tag - vclock - dt * speed).max(0.0);
        Some(SimDuration::from_ns_f64((rem / speed).ceil()))
    }

    /// Cores busy with k running statements (for utilisation).
    pub fn busy_cores(&self) -> f64 {
        if let Some(pc) = &self.per_core {
            let busy = pc.cores.iter().filter(|c| !c.jobs.is_empty()).count();
            assert_eq!(busy, (pc.total as usize).min(pc.cores.len()));
            return busy as f64;
        }
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
            let dt = (now.0 - self.last.0) as f64;
            if let Some(pc) = &mut self.per_core {
                let contention = contention(self.sigma, self.kappa, pc.total);
                for c in &mut pc.cores {
                    if !c.jobs.is_empty() {
                        c.vclock += dt * core_speed(c.jobs.len(), contention);
                    }
                }
            } else {
                let k = self.jobs.len() as u32;
                if k > 0 {
                    self.vclock += dt * self.speed(k);
                }
            }
            self.last = now;
        }
    }

    /// A statement enters its CPU phase with `work` of CPU time. Returns the new next completion.
    pub fn add(&mut self, now: SimTime, req: u32, seq: u32, work: SimDuration) -> Option<SimTime> {
        self.advance(now);
        match self.per_core.as_mut() {
            Some(pc) => {
                let c = pc.choose();
                pc.place(c, req, seq, work.as_ns() as f64);
                pc.check();
            }
            None => self.jobs.push(CoreJob {
                tag: self.vclock + work.as_ns() as f64,
                placed: 0,
                req,
                seq,
            }),
        }
        self.gen = self.gen.wrapping_add(1);
        self.next_completion()
    }

    /// As [`Postgres::add`], on core `core` whatever the placement rule would choose.
    #[cfg(test)]
    fn add_on(
        &mut self,
        now: SimTime,
        core: usize,
        req: u32,
        seq: u32,
        work: SimDuration,
    ) -> Option<SimTime> {
        self.advance(now);
        let pc = self.per_core.as_mut().expect("per_core");
        pc.place(core, req, seq, work.as_ns() as f64);
        self.gen = self.gen.wrapping_add(1);
        self.next_completion()
    }

    /// Remove a statement from the CPU (cancelled). Returns the new next completion.
    pub fn remove(&mut self, now: SimTime, req: u32) -> Option<SimTime> {
        self.advance(now);
        match self.per_core.as_mut() {
            Some(pc) => {
                let mut removed = 0;
                for c in &mut pc.cores {
                    let before = c.jobs.len();
                    c.jobs.retain(|j| j.req != req);
                    removed += before - c.jobs.len();
                }
                pc.total -= removed as u32;
                pc.balance();
                pc.check();
            }
            None => self.jobs.retain(|j| j.req != req),
        }
        self.gen = self.gen.wrapping_add(1);
        self.next_completion()
    }

    /// Remove every statement (the server went down); returns the (req, seq) pairs removed.
    pub fn drain(&mut self, now: SimTime, out: &mut Vec<(u32, u32)>) {
        self.advance(now);
        match self.per_core.as_mut() {
            Some(pc) => {
                for c in &mut pc.cores {
                    out.extend(c.jobs.drain().map(|j| (j.req, j.seq)));
                }
                pc.total = 0;
                pc.check();
            }
            None => out.extend(self.jobs.drain().map(|j| (j.req, j.seq))),
        }
        self.gen = self.gen.wrapping_add(1);
    }

    pub fn next_completion(&self) -> Option<SimTime> {
        if let Some(pc) = &self.per_core {
            let contention = contention(self.sigma, self.kappa, pc.total);
            let dt = (0..pc.cores.len())
                .filter_map(|c| pc.time_to_first(c, contention))
                .min_by(f64::total_cmp)?;
            return Some(self.last + SimDuration::from_ns_f64(dt.ceil()));
        }
        let j = self.jobs.peek()?;
        let rem = (j.tag - self.vclock).max(0.0);
        let dt = (rem / self.speed(self.jobs.len() as u32)).ceil();
        Some(self.last + SimDuration::from_ns_f64(dt))
    }

    /// The completion event fired: pop the statement that finished (if the event is current).
    pub fn complete(&mut self, now: SimTime) -> Option<(u32, u32)> {
        self.advance(now);
        if let Some(pc) = &mut self.per_core {
            let done = pc.complete(contention(self.sigma, self.kappa, pc.total));
            if done.is_some() {
                self.gen = self.gen.wrapping_add(1);
            }
            return done;
        }
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

    /// The requests on each core, in ascending order.
    #[cfg(test)]
    fn per_core_reqs(&self) -> Vec<Vec<u32>> {
        let pc = self.per_core.as_ref().expect("per_core");
        pc.cores
            .iter()
            .map(|c| {
                let mut v: Vec<u32> = c.jobs.iter().map(|j| j.req).collect();
                v.sort_unstable();
                v
            })
            .collect()
    }

    /// CPU work the running statements still need at `now`, in ns.
    #[cfg(test)]
    fn remaining_work(&mut self, now: SimTime) -> f64 {
        self.advance(now);
        match &self.per_core {
            Some(pc) => pc
                .cores
                .iter()
                .flat_map(|c| c.jobs.iter().map(move |j| j.tag - c.vclock))
                .sum(),
            None => self.jobs.iter().map(|j| j.tag - self.vclock).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::Dist;
    use crate::rng::{stream, Stream};

    fn spec(cores: Option<u32>, sigma: f64, kappa: f64) -> PgSpec {
        PgSpec {
            max_connections: 10,
            reserved: 3,
            cores,
            sigma,
            kappa,
            cpu_scheduling: CpuScheduling::Shared,
            cross_core_wakeup: None,
            response_behind_statement: 0.0,
            scheduler_slice: SimDuration::from_ms_f64(1.5),
            backend_start: Dist::ZERO,
            statement_timeout: None,
        }
    }

    fn pg(cores: Option<u32>, sigma: f64, kappa: f64) -> Postgres {
        Postgres::new(
            &spec(cores, sigma, kappa),
            stream(1, 0, Stream::CpuPlacement),
        )
    }

    fn per_core(cores: u32, sigma: f64, kappa: f64, seed: u64) -> Postgres {
        let s = PgSpec {
            cpu_scheduling: CpuScheduling::PerCore,
            ..spec(Some(cores), sigma, kappa)
        };
        Postgres::new(&s, stream(seed, 0, Stream::CpuPlacement))
    }

    /// Arrivals `(t ns, req, work ns)` in time order, run until every job is done; the
    /// completions as `(t ns, req)`. A completion due at an arrival's instant comes first.
    fn drive(pg: &mut Postgres, arrivals: &[(u64, u32, u64)]) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        let mut next = 0;
        loop {
            let done = pg.next_completion();
            let arrive = arrivals.get(next).map(|a| a.0);
            match (done, arrive) {
                (Some(t), a) if a.is_none_or(|a| t.0 <= a) => {
                    let (req, _) = pg.complete(t).expect("the job due then completes");
                    out.push((t.0, req));
                }
                (_, Some(_)) => {
                    let (t, req, work) = arrivals[next];
                    pg.add(SimTime(t), req, 0, SimDuration(work));
                    next += 1;
                }
                (None, None) => return out,
                (Some(_), None) => unreachable!(),
            }
        }
    }

    #[test]
    fn slots_refuse_beyond_max_connections_minus_reserved() {
        let mut pg = pg(Some(1), 0.0, 0.0);
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
        let mut pg = pg(Some(1), 0.0, 0.0);
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
        let pg = pg(Some(4), 0.1, 0.01);
        assert_eq!(pg.speed(1), 1.0);
        // 8 jobs on 4 cores: half speed, then / (1 + 0.1*7 + 0.01*56)
        let expect = 0.5 / (1.0 + 0.7 + 0.56);
        assert!((pg.speed(8) - expect).abs() < 1e-12);
        // throughput k*speed(k) is retrograde past the USL peak
        let x = |k: u32| k as f64 * pg.speed(k);
        assert!(x(16) < x(8));
    }

    #[test]
    fn per_core_with_no_more_jobs_than_cores_is_shared_processor_sharing() {
        // at most 4 jobs at once on 4 cores (each lasts ≤ 3 ms, one arrives per ms): everyone
        // runs at full speed times the contention factor, exactly as under shared
        let arrivals: Vec<(u64, u32, u64)> = (0..40u32)
            .map(|i| {
                (
                    i as u64 * 1_000_000,
                    i,
                    500_000 + (i as u64 * 337_411) % 2_500_000,
                )
            })
            .collect();
        let a = drive(&mut pg(Some(4), 0.05, 0.001), &arrivals);
        let mut p = per_core(4, 0.05, 0.001, 3);
        let b = drive(&mut p, &arrivals);
        assert_eq!(a.len(), 40);
        assert_eq!(a, b);
        // with 2 cores and at most 2 jobs at once as well
        let two: Vec<(u64, u32, u64)> = (0..20u32)
            .map(|i| {
                (
                    i as u64 * 1_000_000,
                    i,
                    900_000 + (i as u64 * 91_711) % 1_000_000,
                )
            })
            .collect();
        assert_eq!(
            drive(&mut pg(Some(2), 0.0, 0.0), &two),
            drive(&mut per_core(2, 0.0, 0.0, 9), &two)
        );
    }

    #[test]
    fn per_core_two_jobs_on_one_core_share_it_while_the_other_core_runs_one() {
        // 2 cores: jobs 1 (10 ms) and 3 (4 ms) on core 0, job 2 (10 ms) on core 1, all at 0.
        // Core 0 gives each half: job 3 ends at 8 ms, job 1 then has 6 ms left. Job 2 ends at
        // 10 ms; core 1 finds nothing to pull (core 0 has one job); job 1 ends at 14 ms.
        // (Shared processor sharing would end them at 6, 12 and 12 ms.)
        let mut p = per_core(2, 0.0, 0.0, 1);
        p.add_on(SimTime(0), 0, 1, 0, SimDuration::from_ms(10));
        p.add_on(SimTime(0), 1, 2, 0, SimDuration::from_ms(10));
        let t = p.add_on(SimTime(0), 0, 3, 0, SimDuration::from_ms(4));
        assert_eq!(t, Some(SimTime(8_000_000)));
        assert_eq!(p.running(), 3);
        assert_eq!(p.busy_cores(), 2.0);
        assert_eq!(p.complete(SimTime(8_000_000)), Some((3, 0)));
        assert_eq!(p.next_completion(), Some(SimTime(10_000_000)));
        assert_eq!(p.complete(SimTime(10_000_000)), Some((2, 0)));
        assert_eq!(p.per_core_reqs(), vec![vec![1], vec![]]);
        assert_eq!(p.busy_cores(), 1.0);
        assert_eq!(p.next_completion(), Some(SimTime(14_000_000)));
        assert_eq!(p.complete(SimTime(14_000_000)), Some((1, 0)));
        assert_eq!(p.running(), 0);
        assert_eq!(p.next_completion(), None);

        // the same with contention σ = 0.5: with 3 jobs every speed is halved again (÷ 2), with
        // 2 jobs ÷ 1.5. Job 3 gets 1/4 of a core: done at 16 ms; jobs 1 and 2 then have 6 and
        // 2 ms left at speed 2/3: job 2 ends at 19 ms, job 1 (4 ms left) at 23 ms.
        let mut p = per_core(2, 0.5, 0.0, 1);
        p.add_on(SimTime(0), 0, 1, 0, SimDuration::from_ms(10));
        p.add_on(SimTime(0), 1, 2, 0, SimDuration::from_ms(10));
        p.add_on(SimTime(0), 0, 3, 0, SimDuration::from_ms(4));
        assert_eq!(
            drive(&mut p, &[]),
            vec![(16_000_000, 3), (19_000_000, 2), (23_000_000, 1)]
        );
    }

    #[test]
    fn per_core_an_emptied_core_pulls_the_newest_job_of_the_busiest_with_its_remaining_work() {
        // 2 cores: job 1 (2 ms) alone on core 0; jobs 2 (10 ms) then 3 (6 ms) on core 1. At
        // 2 ms job 1 ends; jobs 2 and 3 have had 1 ms each. Core 0 pulls job 3 (the newest on
        // core 1) with its 5 ms left: it ends at 7 ms, job 2 (9 ms left, alone) at 11 ms.
        let mut p = per_core(2, 0.0, 0.0, 1);
        p.add_on(SimTime(0), 0, 1, 0, SimDuration::from_ms(2));
        p.add_on(SimTime(0), 1, 2, 0, SimDuration::from_ms(10));
        p.add_on(SimTime(0), 1, 3, 0, SimDuration::from_ms(6));
        let gen = p.gen;
        assert_eq!(p.complete(SimTime(2_000_000)), Some((1, 0)));
        assert_ne!(p.gen, gen, "the next completion changed");
        assert_eq!(p.per_core_reqs(), vec![vec![3], vec![2]]);
        assert_eq!(p.busy_cores(), 2.0);
        assert_eq!(drive(&mut p, &[]), vec![(7_000_000, 3), (11_000_000, 2)]);

        // a cancellation that empties a core pulls the same way; PgBouncer's jobs (req NONE)
        // move like any other
        let none = crate::model::NONE;
        let mut p = per_core(2, 0.0, 0.0, 1);
        p.add_on(SimTime(0), 0, 1, 0, SimDuration::from_ms(5));
        p.add_on(SimTime(0), 1, 2, 0, SimDuration::from_ms(10));
        p.add_on(SimTime(0), 1, none, 0, SimDuration::from_ms(3));
        // at 1 ms jobs 2 and NONE have had 0.5 ms; NONE moves to core 0 with 2.5 ms left
        let t = p.remove(SimTime(1_000_000), 1);
        assert_eq!(p.per_core_reqs(), vec![vec![none], vec![2]]);
        assert_eq!(t, Some(SimTime(3_500_000)));
        assert_eq!(drive(&mut p, &[]), vec![(3_500_000, none), (10_500_000, 2)]);

        // the busiest core gives, not merely any core with two jobs: 3 cores, core 2 has 3
        // jobs and core 1 has 2; core 0's job ends and it pulls from core 2
        let mut p = per_core(3, 0.0, 0.0, 1);
        p.add_on(SimTime(0), 0, 1, 0, SimDuration::from_ms(1));
        for r in 10..12 {
            p.add_on(SimTime(0), 1, r, 0, SimDuration::from_ms(100));
        }
        for r in 20..23 {
            p.add_on(SimTime(0), 2, r, 0, SimDuration::from_ms(100));
        }
        assert_eq!(p.complete(SimTime(1_000_000)), Some((1, 0)));
        assert_eq!(
            p.per_core_reqs(),
            vec![vec![22], vec![10, 11], vec![20, 21]]
        );
    }

    #[test]
    fn per_core_places_on_an_idle_core_first_and_draws_only_when_all_are_busy() {
        let mut p = per_core(3, 0.0, 0.0, 1);
        for r in 0..3 {
            p.add(SimTime(0), r, 0, SimDuration::from_ms(50));
        }
        assert_eq!(p.per_core_reqs(), vec![vec![0], vec![1], vec![2]]);
        // further jobs land on random cores: over many, every core gets some
        for r in 3..60 {
            p.add(SimTime(0), r, 0, SimDuration::from_ms(50));
        }
        let per: Vec<usize> = p.per_core_reqs().iter().map(Vec::len).collect();
        assert_eq!(per.iter().sum::<usize>(), 60);
        assert!(per.iter().all(|&n| n > 5), "{per:?}");
        // the same seed places the same way
        let mut q = per_core(3, 0.0, 0.0, 1);
        for r in 0..60 {
            q.add(SimTime(0), r, 0, SimDuration::from_ms(50));
        }
        assert_eq!(p.per_core_reqs(), q.per_core_reqs());
        let mut out = Vec::new();
        p.drain(SimTime(1), &mut out);
        assert_eq!(out.len(), 60);
        assert_eq!(p.running(), 0);
        assert_eq!(p.busy_cores(), 0.0);
    }

    #[test]
    fn per_core_is_work_conserving_like_shared() {
        // 3 cores, jobs arriving at random (≈ 2.7 cores of work offered, so k keeps crossing
        // 3): both ways a core idles only when fewer than 3 jobs run, so the work done by t is
        // ∫ min(k, 3) dt — under per_core only thanks to the pulls of emptied cores. The work
        // done is what the jobs added so far no longer need.
        use rand::{Rng as _, SeedableRng};
        let mut r = rand_pcg::Pcg64Mcg::seed_from_u64(11);
        let mut arrivals: Vec<(u64, u32, u64)> = Vec::new();
        let mut t = 0u64;
        for i in 0..3000u32 {
            t += r.random_range(1..400_000u64);
            arrivals.push((t, i, r.random_range(1..1_100_000u64)));
        }
        let mut finish_order = Vec::new();
        for mut p in [pg(Some(3), 0.0, 0.0), per_core(3, 0.0, 0.0, 5)] {
            let (mut added, mut busy_integral, mut last) = (0.0, 0.0, 0u64);
            let (mut completions, mut next, mut crowded) = (0u32, 0, 0u32);
            let mut order = Vec::new();
            loop {
                let done = p.next_completion();
                let now = match (done, arrivals.get(next)) {
                    (Some(d), Some(a)) => d.0.min(a.0),
                    (Some(d), None) => d.0,
                    (None, Some(a)) => a.0,
                    (None, None) => break,
                };
                busy_integral += p.running().min(3) as f64 * (now - last) as f64;
                assert_eq!(p.busy_cores(), p.running().min(3) as f64);
                last = now;
                let work_done = added - p.remaining_work(SimTime(now));
                assert!(
                    (work_done - busy_integral).abs() <= completions as f64 + 1e-9 * added,
                    "at {now}: {work_done} done, {busy_integral} expected"
                );
                if done.is_some_and(|d| d.0 == now) {
                    order.push(p.complete(SimTime(now)).expect("due").0);
                    completions += 1;
                } else {
                    let (at, req, work) = arrivals[next];
                    p.add(SimTime(at), req, 0, SimDuration(work));
                    added += work as f64;
                    next += 1;
                    crowded += u32::from(p.running() > 3);
                }
            }
            assert_eq!(completions, 3000);
            assert!(
                crowded > 500,
                "{crowded}: too few arrivals found every core busy"
            );
            finish_order.push(order);
        }
        assert_ne!(
            finish_order[0], finish_order[1],
            "per_core orders the finishes its own way"
        );
    }
}
