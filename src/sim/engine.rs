//! The engine: one request's life through app instance, app pool, PgBouncer and PostgreSQL, as in
//! DESIGN.md §3 "One request, step by step".
//!
//! Requests live in a slab of slots reused as they finish (storage bounded by the requests in
//! flight, never by the run's length). Every event about a request carries the request's sequence
//! number; the number moves on whenever the request moves past a point where an event could still
//! be pending (a new acquire, a new statement, a cancellation), so stale events are recognised and
//! dropped. Lazily removed queue entries (app-pool waiters, PgBouncer waiting clients) use the same
//! idea.

use super::metrics::{Cause, Recorder};
use super::queue::EventQueue;
use super::METRIC_NAMES;
use crate::dist::Dist;
use crate::experiment::{
    Balance, FaultKind, FaultTarget, Hold, Load, PgSpec, PoolKind, PoolMode, Scenario, Target,
    TxType,
};
use crate::model::app::{AppPool, Conn, ConnState, Instance};
use crate::model::backend::Postgres;
use crate::model::bouncer::{BouncerPool, SvState, Waiter};
use crate::model::NONE;
use crate::rng::{stream, stream_of, Rng, Stream};
use crate::units::{SimDuration, SimTime};
use rand::Rng as _;
use std::collections::VecDeque;

/// PgBouncer's janitor period: `USEC / 3`.
const JANITOR_PERIOD: SimDuration = SimDuration(333_333_000);
/// Events at one instant after which a run is declared stalled (time no longer advances).
const STALL_EVENTS: u64 = 5_000_000;
/// App-pool housekeeping (idle lifetime) period.
const HOUSEKEEPING_PERIOD: SimDuration = SimDuration(1_000_000_000);

#[derive(Clone, Copy, Debug)]
enum Ev {
    UserWake(u32),
    /// The request's first hops have woken the sleeping database host.
    HostAwake {
        req: u32,
        seq: u32,
    },
    Arrival,
    Retry {
        user: u32,
        attempt: u32,
    },
    ClientTimeout {
        req: u32,
        gen: u32,
    },
    /// The earliest deadline of a deadline list may have passed.
    Deadline(u32),
    AppCpuDone(u32),
    ConnectDone(u32),
    AcquireTimeout {
        req: u32,
        seq: u32,
    },
    BouncerDispatch {
        req: u32,
        seq: u32,
    },
    PgArrive {
        req: u32,
        seq: u32,
    },
    PgWaitDone {
        req: u32,
        seq: u32,
    },
    PsDone {
        pg: u32,
        gen: u32,
    },
    StatementTimeout {
        req: u32,
        seq: u32,
    },
    BouncerResp {
        req: u32,
        seq: u32,
    },
    AppResp {
        req: u32,
        seq: u32,
    },
    NextStatement {
        req: u32,
        seq: u32,
    },
    LoginDone {
        proc: u32,
        server: u32,
    },
    ResetDone {
        proc: u32,
        server: u32,
    },
    Janitor(u32),
    Housekeeping,
    FaultStart(u32),
    FaultEnd(u32),
    UsersStep(u32),
    RateStep(u32),
    WarmupEnd,
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Free,
    AppCpu,
    Acquiring,
    Connecting,
    ToBouncer,
    BouncerWait,
    ToPg,
    PgWait,
    PgCpu,
    FromPg,
    Gap,
}

/// A request's place in one deadline list.
#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
    deadline: SimTime,
    /// The list it is in, or NONE.
    list: u32,
}

impl Link {
    const UNLINKED: Link = Link {
        prev: NONE,
        next: NONE,
        deadline: SimTime::ZERO,
        list: NONE,
    };
}

#[derive(Clone, Copy, Debug)]
struct DList {
    head: u32,
    tail: u32,
    armed: bool,
}

#[derive(Clone, Debug)]
struct Req {
    /// Deadline lists: [client timeout, command timeout, acquire timeout].
    links: [Link; 3],
    gen: u32,
    seq: u32,
    phase: Phase,
    t0: SimTime,
    user: u32,
    attempt: u32,
    instance: u32,
    pool: u32,
    conn: u32,
    pg: u32,
    tx: u32,
    /// `tx` was drawn at arrival (for its own wake-up) and is the next transaction to run.
    tx_drawn: bool,
    tx_left: u32,
    stmt_left: u32,
    acq_start: SimTime,
    cpu_work: SimDuration,
    /// CPU its first statement does beyond its type's (a wake-up into the host's slow state,
    /// `network.wakeup_memory`).
    cold_cpu: SimDuration,
    in_reset: bool,
    user_done: bool,
    /// Something happened while a message was in transit: fail at the next hop.
    abort: Option<Cause>,
    /// The current statement ended in an error.
    error: Option<Cause>,
}

impl Req {
    fn empty() -> Self {
        Req {
            links: [Link::UNLINKED; 3],
            gen: 0,
            seq: 0,
            phase: Phase::Free,
            t0: SimTime::ZERO,
            user: NONE,
            attempt: 0,
            instance: 0,
            pool: 0,
            conn: NONE,
            pg: 0,
            tx: 0,
            tx_drawn: false,
            tx_left: 0,
            stmt_left: 0,
            acq_start: SimTime::ZERO,
            cpu_work: SimDuration::ZERO,
            cold_cpu: SimDuration::ZERO,
            in_reset: false,
            user_done: false,
            abort: None,
            error: None,
        }
    }
}

/// Notable component events, recorded only by [`run_traced`] (for tests and debugging; a normal
/// run stores nothing per event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trace {
    /// PgBouncer starts a server login (`launch_new_connection`).
    ServerLogin {
        t: SimTime,
        proc: u32,
        reserve: bool,
    },
    /// A server login finished and the server is idle.
    ServerReady { t: SimTime, proc: u32 },
    /// A server was linked to a client connection.
    ServerLinked { t: SimTime, conn: u32, server: u32 },
    /// A server was unlinked from its client connection.
    ServerReleased { t: SimTime, conn: u32, server: u32 },
    /// An app connection attempt started.
    AppConnect { t: SimTime, pool: u32, conn: u32 },
    /// An app connection attempt was refused.
    ConnectRefused { t: SimTime, conn: u32, cause: Cause },
    /// An app connection was closed.
    AppConnClosed { t: SimTime, pool: u32, conn: u32 },
    /// The user saw the outcome of a request.
    RequestEnded { t: SimTime, ok: bool },
}

/// What one replication of one scenario measured.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    /// Indexed like [`METRIC_NAMES`].
    pub values: Vec<f64>,
    pub events: u64,
    /// The run hit `run.max_events` and stopped early.
    pub truncated: bool,
}

impl RunRecord {
    pub fn get(&self, name: &str) -> f64 {
        self.values[super::metric_index(name)]
    }
}

struct Rngs {
    think: Rng,
    arrivals: Rng,
    mix: Rng,
    app_cpu: Rng,
    wait: Rng,
    cpu: Rng,
    gap: Rng,
    connect: Rng,
    acquire: Rng,
    client: Rng,
    balance: Rng,
    retry: Rng,
    bouncer: Rng,
    wakeup: Rng,
    behind: Rng,
}

struct Sim<'a> {
    sc: &'a Scenario,
    now: SimTime,
    q: EventQueue<Ev>,
    r: Rngs,
    reqs: Vec<Req>,
    free_reqs: Vec<u32>,
    /// Closed loop: whether user i has no pending event (it left when the count went down).
    dormant: Vec<bool>,
    users_target: u32,
    rate_idx: usize,
    instances: Vec<Instance>,
    pools: Vec<AppPool>,
    conns: Vec<Conn>,
    free_conns: Vec<u32>,
    bpools: Vec<BouncerPool>,
    bouncer_up: bool,
    /// Whether the primary's CPUs ran a statement at the last change, and since when they have
    /// been idle otherwise (for `network.wakeup`).
    pg_cpu_busy: bool,
    pg_idle_since: SimTime,
    /// The host's recent idle spell (`network.wakeup_memory`): the longest a request found,
    /// decaying since `idle_peak_at`, ms.
    idle_peak_ms: f64,
    idle_peak_at: SimTime,
    pgs: Vec<Postgres>,
    rec: Recorder,
    rr: u32,
    /// Constant client timeouts: deadlines in issue order.
    /// Constant timeouts: 0 = client, 1..=P command per pool spec, P+1..=2P acquire per pool spec.
    dlists: Vec<DList>,
    token: u32,
    scratch: Vec<(u32, u32)>,
    trace: Option<Vec<Trace>>,
    series: Option<Series>,
    /// Whole-run tallies (not windowed) for the conservation check.
    issued_all: u64,
    ended_all: u64,
}

/// Simulate one replication of a scenario.
pub fn run(sc: &Scenario, replication: u32) -> RunRecord {
    simulate(sc, replication, false, false).0
}

/// Number of intervals of a run's time series (for warm-up detection).
pub const SERIES_INTERVALS: usize = 500;

/// Completions and latency per interval of a run, from t = 0: what MSER-5 looks at.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub interval: SimDuration,
    /// Requests completed in each interval.
    pub completed: Vec<u64>,
    /// Sum of their latencies, ns.
    pub latency_ns: Vec<f64>,
}

/// Simulate one replication and record its series (bounded: `SERIES_INTERVALS` entries).
pub fn run_series(sc: &Scenario, replication: u32) -> (RunRecord, Series) {
    let (r, _, s) = simulate_full(sc, replication, false, true);
    (r, s.unwrap_or_default())
}

/// Simulate one replication and record the notable component events.
pub fn run_traced(sc: &Scenario, replication: u32) -> (RunRecord, Vec<Trace>) {
    let (r, t) = simulate(sc, replication, true, false);
    (r, t.unwrap_or_default())
}

fn simulate(
    sc: &Scenario,
    replication: u32,
    traced: bool,
    series: bool,
) -> (RunRecord, Option<Vec<Trace>>) {
    let (r, t, _) = simulate_full(sc, replication, traced, series);
    (r, t)
}

fn simulate_full(
    sc: &Scenario,
    replication: u32,
    traced: bool,
    series: bool,
) -> (RunRecord, Option<Vec<Trace>>, Option<Series>) {
    let seed = sc.seed;
    let s = |st| stream(seed, replication, st);
    let r = Rngs {
        think: s(Stream::Think),
        arrivals: s(Stream::Arrivals),
        mix: s(Stream::TxMix),
        app_cpu: s(Stream::AppCpu),
        wait: s(Stream::StatementWait),
        cpu: s(Stream::StatementCpu),
        gap: s(Stream::Gap),
        connect: s(Stream::Connect),
        acquire: s(Stream::AcquireTimeout),
        client: s(Stream::ClientTimeout),
        balance: s(Stream::Balance),
        retry: s(Stream::Retry),
        bouncer: s(Stream::Bouncer),
        wakeup: s(Stream::Wakeup),
        behind: s(Stream::BehindStatement),
    };
    // server i (0 = the primary) places statements on its cores with its own generator
    let pgs: Vec<Postgres> = std::iter::once(&sc.primary)
        .chain(&sc.replicas)
        .enumerate()
        .map(|(i, spec)| {
            Postgres::new(
                spec,
                stream_of(seed, replication, Stream::CpuPlacement, i as u64),
            )
        })
        .collect();
    let procs = sc.bouncer.as_ref().map_or(0, |b| b.processes);
    let max_users = sc.clients.load.max_users() as usize;
    let mut sim = Sim {
        sc,
        now: SimTime::ZERO,
        q: EventQueue::with_capacity(1024 + max_users),
        r,
        reqs: Vec::with_capacity(1024),
        free_reqs: Vec::with_capacity(1024),
        dormant: vec![true; max_users],
        users_target: 0,
        rate_idx: 0,
        instances: Vec::new(),
        pools: Vec::new(),
        conns: Vec::new(),
        free_conns: Vec::new(),
        bpools: (0..procs).map(|_| BouncerPool::new()).collect(),
        bouncer_up: true,
        pg_cpu_busy: false,
        pg_idle_since: SimTime::ZERO,
        idle_peak_ms: 0.0,
        idle_peak_at: SimTime::ZERO,
        pgs,
        rec: Recorder::new(),
        rr: 0,
        dlists: vec![
            DList {
                head: NONE,
                tail: NONE,
                armed: false
            };
            1 + 2 * sc.pools.len()
        ],
        token: 0,
        scratch: Vec::new(),
        trace: traced.then(Vec::new),
        series: series.then(|| {
            let interval = SimDuration((sc.run.duration.as_ns() / SERIES_INTERVALS as u64).max(1));
            Series {
                interval,
                completed: vec![0; SERIES_INTERVALS],
                latency_ns: vec![0.0; SERIES_INTERVALS],
            }
        }),
        issued_all: 0,
        ended_all: 0,
    };
    sim.init();
    let mut events: u64 = 0;
    let mut truncated = false;
    let mut same_time = 0u64;
    while let Some((t, ev)) = sim.q.pop() {
        same_time = if t == sim.now { same_time + 1 } else { 0 };
        sim.now = t;
        events += 1;
        // a limit on everything: the run's event budget, and no endless loop at one instant
        // (e.g. users with no think time whose requests fail without taking any time)
        if events > sc.run.max_events || same_time > STALL_EVENTS {
            truncated = true;
            break;
        }
        if let Ev::End = ev {
            break;
        }
        sim.dispatch(ev);
        sim.check_invariants();
    }
    if !truncated {
        // conservation: every request issued has ended for its user or is still in the system
        let in_system = sim.rec.in_system.level().round() as u64;
        assert_eq!(
            sim.issued_all,
            sim.ended_all + in_system,
            "requests not conserved"
        );
    }
    let rec = sim.record(events, truncated);
    (rec, sim.trace.take(), sim.series.take())
}

impl<'a> Sim<'a> {
    fn init(&mut self) {
        let sc = self.sc;
        // app instances and pools
        for i in 0..sc.app.instances {
            let mut inst = Instance {
                in_flight: 0,
                cpu_busy: 0,
                cpu_queue: VecDeque::new(),
                pools: Vec::with_capacity(sc.pools.len()),
            };
            for (si, spec) in sc.pools.iter().enumerate() {
                let p = self.pools.len() as u32;
                self.pools.push(AppPool::new(si as u32, i, spec.max_size));
                inst.pools.push(p);
            }
            self.instances.push(inst);
        }
        // the app starts with min_size connections open (asyncpg connects them at pool init)
        for p in 0..self.pools.len() as u32 {
            let spec = &sc.pools[self.pools[p as usize].spec as usize];
            for _ in 0..spec.min_size {
                let c = self.alloc_conn(p);
                if self.establish_now(c) {
                    let conn = &mut self.conns[c as usize];
                    conn.state = ConnState::Idle;
                    self.pools[p as usize].open += 1;
                    self.pools[p as usize].idle.push(c);
                } else {
                    self.free_conn_slot(c);
                }
            }
        }
        if let Some(b) = &sc.bouncer {
            for proc in 0..b.processes {
                if b.prewarm {
                    for _ in 0..b.min_pool_size.min(b.pool_size) {
                        if !self.pgs[0].try_connect() {
                            break;
                        }
                        let bp = &mut self.bpools[proc as usize];
                        let s = bp.alloc(SimTime::ZERO, false);
                        bp.servers[s as usize].state = SvState::Idle;
                        bp.idle.push(s);
                    }
                }
                self.q
                    .push(SimTime::ZERO + JANITOR_PERIOD, Ev::Janitor(proc));
            }
        }
        self.note_backends();
        self.q
            .push(SimTime::ZERO + HOUSEKEEPING_PERIOD, Ev::Housekeeping);
        for (i, f) in sc.faults.iter().enumerate() {
            self.q.push(f.start, Ev::FaultStart(i as u32));
            self.q.push(f.end, Ev::FaultEnd(i as u32));
        }
        match &sc.clients.load {
            Load::Closed { schedule, think } => {
                self.users_target = schedule[0].1;
                for u in 0..self.users_target {
                    let d = think.sample(&mut self.r.think);
                    self.dormant[u as usize] = false;
                    self.q.push(SimTime::ZERO + d, Ev::UserWake(u));
                }
                for (i, st) in schedule.iter().enumerate().skip(1) {
                    self.q.push(st.0, Ev::UsersStep(i as u32));
                }
            }
            Load::Open { schedule } => {
                self.rate_idx = 0;
                self.schedule_arrival();
                for (i, st) in schedule.iter().enumerate().skip(1) {
                    self.q.push(st.0, Ev::RateStep(i as u32));
                }
            }
        }
        if sc.run.warmup.is_zero() {
            self.rec.start_window(SimTime::ZERO);
        } else {
            self.q.push(SimTime::ZERO + sc.run.warmup, Ev::WarmupEnd);
        }
        self.q.push(SimTime::ZERO + sc.run.duration, Ev::End);
    }

    /// Open a connection instantly at start-up (pre-opened pools); false if refused.
    fn establish_now(&mut self, c: u32) -> bool {
        let p = self.conns[c as usize].pool;
        let spec = &self.sc.pools[self.pools[p as usize].spec as usize];
        match spec.target {
            Target::Bouncer => {
                let b = self.sc.bouncer.as_ref().expect("validated");
                let proc = c % b.processes;
                let bp = &mut self.bpools[proc as usize];
                if bp.clients >= b.max_client_conn {
                    return false;
                }
                bp.clients += 1;
                let conn = &mut self.conns[c as usize];
                conn.via_bouncer = true;
                conn.bproc = proc;
                true
            }
            Target::Primary => {
                self.conns[c as usize].pg = 0;
                self.pgs[0].try_connect()
            }
            Target::Replicas => {
                let n = self.sc.replicas.len() as u32;
                let pool = &mut self.pools[p as usize];
                let pg = 1 + pool.rr % n;
                pool.rr += 1;
                self.conns[c as usize].pg = pg;
                self.pgs[pg as usize].try_connect()
            }
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::UserWake(u) => {
                if u >= self.users_target {
                    self.dormant[u as usize] = true;
                } else {
                    self.issue(u, 0);
                }
            }
            Ev::Arrival => {
                self.issue(NONE, 0);
                self.schedule_arrival();
            }
            Ev::Retry { user, attempt } => {
                if user != NONE && user >= self.users_target {
                    self.dormant[user as usize] = true;
                } else {
                    self.issue(user, attempt);
                }
            }
            Ev::ClientTimeout { req, gen } => self.client_timeout(req, gen),
            Ev::Deadline(list) => self.deadline(list),
            Ev::AppCpuDone(r) => self.app_cpu_done(r),
            Ev::HostAwake { req, seq } => {
                if self.valid(req, seq) && self.reqs[req as usize].phase == Phase::AppCpu {
                    self.app_start(req);
                }
            }
            Ev::ConnectDone(c) => self.connect_done(c),
            Ev::AcquireTimeout { req, seq } => self.acquire_timeout(req, seq),
            Ev::BouncerDispatch { req, seq } => {
                if self.valid(req, seq) {
                    self.bouncer_dispatch(req)
                }
            }
            Ev::PgArrive { req, seq } => {
                if self.valid(req, seq) {
                    self.pg_arrive(req)
                }
            }
            Ev::PgWaitDone { req, seq } => {
                if self.valid(req, seq) {
                    self.pg_wait_done(req)
                }
            }
            Ev::PsDone { pg, gen } => self.ps_done(pg, gen),
            Ev::StatementTimeout { req, seq } => {
                if self.valid(req, seq) {
                    self.statement_timeout(req)
                }
            }
            Ev::BouncerResp { req, seq } => {
                if self.valid(req, seq) {
                    self.bouncer_resp(req)
                }
            }
            Ev::AppResp { req, seq } => {
                if self.valid(req, seq) {
                    self.app_resp(req)
                }
            }
            Ev::NextStatement { req, seq } => {
                if self.valid(req, seq) {
                    self.run_statement(req)
                }
            }
            Ev::LoginDone { proc, server } => self.login_done(proc, server),
            Ev::ResetDone { proc, server } => {
                let bp = &mut self.bpools[proc as usize];
                let s = &mut bp.servers[server as usize];
                if s.state == SvState::Tested {
                    s.state = SvState::Idle;
                    s.idle_since = self.now;
                    bp.idle.push(server);
                    self.activate(proc);
                }
            }
            Ev::Janitor(proc) => self.janitor(proc),
            Ev::Housekeeping => self.housekeeping(),
            Ev::FaultStart(i) => self.fault(i, true),
            Ev::FaultEnd(i) => self.fault(i, false),
            Ev::UsersStep(i) => {
                if let Load::Closed { schedule, think } = &self.sc.clients.load {
                    let n = schedule[i as usize].1;
                    for u in self.users_target..n {
                        if self.dormant[u as usize] {
                            self.dormant[u as usize] = false;
                            let d = think.sample(&mut self.r.think);
                            self.q.push(self.now + d, Ev::UserWake(u));
                        }
                    }
                    self.users_target = n;
                }
            }
            Ev::RateStep(i) => {
                self.rate_idx = i as usize;
                self.schedule_arrival();
            }
            Ev::WarmupEnd => {
                let now = self.now;
                self.rec.start_window(now);
                for pg in self.pgs.iter_mut() {
                    pg.peak_backends = pg.backends;
                }
                self.rec.cl_waiting_max = self.bpools.iter().map(|b| b.cl_waiting as u64).sum();
            }
            Ev::End => {}
        }
    }

    #[inline]
    fn tr(&mut self, f: impl FnOnce(SimTime) -> Trace) {
        if let Some(t) = self.trace.as_mut() {
            t.push(f(self.now));
        }
    }

    #[inline]
    fn valid(&self, r: u32, seq: u32) -> bool {
        if r == NONE {
            // PgBouncer's work on the primary's cores (`on_postgres_host`)
            return false;
        }
        let q = &self.reqs[r as usize];
        q.phase != Phase::Free && q.seq == seq
    }

    fn check_invariants(&self) {
        if let Some(b) = &self.sc.bouncer {
            let cap = b.pool_size.saturating_add(b.reserve_size);
            for bp in &self.bpools {
                bp.check(cap);
            }
        }
        for pg in &self.pgs {
            assert!(
                pg.backends <= pg.usable,
                "PostgreSQL over max_connections − reserved"
            );
        }
    }

    // ---------------------------------------------------------------- clients

    fn schedule_arrival(&mut self) {
        let Load::Open { schedule } = &self.sc.clients.load else {
            return;
        };
        let rate = schedule[self.rate_idx].1;
        if rate <= 0.0 {
            return;
        }
        let e: f64 = rand_distr::Distribution::sample(&rand_distr::Exp1, &mut self.r.arrivals);
        let t = self.now + SimDuration::from_s_f64(e / rate);
        if let Some(next) = schedule.get(self.rate_idx + 1) {
            if t >= next.0 {
                // memoryless: the step event draws again from its own time
                return;
            }
        }
        self.q.push(t, Ev::Arrival);
    }

    fn alloc_req(&mut self) -> u32 {
        match self.free_reqs.pop() {
            Some(r) => r,
            None => {
                self.reqs.push(Req::empty());
                (self.reqs.len() - 1) as u32
            }
        }
    }

    fn issue(&mut self, user: u32, attempt: u32) {
        let sc = self.sc;
        self.issued_all += 1;
        if self.rec.measuring {
            self.rec.issued += 1;
            if attempt > 0 {
                self.rec.retries += 1;
            }
        }
        let n = sc.app.instances;
        let inst = match sc.app.balance {
            Balance::RoundRobin => {
                self.rr = (self.rr + 1) % n;
                self.rr
            }
            Balance::Random => self.r.balance.random_range(0..n),
        };
        if let Some(max) = sc.app.max_in_flight {
            if self.instances[inst as usize].in_flight >= max {
                if self.rec.measuring {
                    self.rec.failures[Cause::AdmissionRejected as usize] += 1;
                    self.rec.sojourn_n += 1;
                }
                self.ended_all += 1;
                self.tr(|t| Trace::RequestEnded { t, ok: false });
                self.user_next(user, attempt, true);
                return;
            }
        }
        let r = self.alloc_req();
        let now = self.now;
        let q = &mut self.reqs[r as usize];
        q.seq = q.seq.wrapping_add(1);
        q.phase = Phase::AppCpu;
        q.t0 = now;
        q.user = user;
        q.attempt = attempt;
        q.instance = inst;
        q.conn = NONE;
        q.tx_left = sc.workload.tx_per_request;
        q.tx_drawn = false;
        q.cold_cpu = SimDuration::ZERO;
        q.in_reset = false;
        q.user_done = false;
        q.abort = None;
        q.error = None;
        let gen = q.gen;
        self.instances[inst as usize].in_flight += 1;
        self.rec.in_system.add(now, 1.0);
        if let Some(d) = &sc.clients.timeout {
            let t = now + d.sample(&mut self.r.client);
            if d.as_const().is_some() {
                self.dl_push(0, r, t);
            } else {
                self.q.push(t, Ev::ClientTimeout { req: r, gen });
            }
        }
        let idle = if !sc.network.wakeup.is_zero() || sc.workload.own_wakeup {
            self.host_idle()
        } else {
            None
        };
        if let (Some(tau), true) = (sc.network.wakeup_memory, sc.workload.own_wakeup) {
            let recent = self.recent_idle(tau, idle);
            if self.slow_state_wakeup(r, idle, recent) {
                return;
            }
        } else if let Some(idle) = idle {
            // a transaction type with its own wake-up: the request's first transaction is
            // drawn now, and runs when its turn comes
            let (wake, factor) = if sc.workload.own_wakeup {
                let t = self.draw_tx_at_arrival(r);
                (
                    t.wakeup.as_ref().unwrap_or(&sc.network.wakeup),
                    t.wakeup_factor(idle),
                )
            } else {
                (&sc.network.wakeup, 1.0)
            };
            if !wake.is_zero() {
                let mut d = wake.sample(&mut self.r.wakeup);
                if factor != 1.0 {
                    d = d.mul_f64(factor);
                }
                let seq = self.reqs[r as usize].seq;
                self.q.push(now + d, Ev::HostAwake { req: r, seq });
                return;
            }
        }
        self.app_start(r);
    }

    /// A type's own wake-up with `network.wakeup_memory`, split where its slowness is: the
    /// type's CPU share of it (`TxType::cpu_share`) is the host's slow state, which lasts —
    /// by the factor at the host's `recent` idle spell, paid by every request while that spell
    /// is long enough, as more CPU for its first statement on its core (`Req::cold_cpu`); the
    /// rest is the wake-up of the hops, by the factor at the spell the request finds (`idle`),
    /// paid only when it finds the host idle, as a delay before it starts. One draw of the
    /// wake-up for both. `true` when the request waits for that delay (`HostAwake`).
    fn slow_state_wakeup(
        &mut self,
        r: u32,
        idle: Option<SimDuration>,
        recent: Option<SimDuration>,
    ) -> bool {
        if idle.is_none() && recent.is_none() {
            return false;
        }
        let sc = self.sc;
        let t = self.draw_tx_at_arrival(r);
        let wake = t.wakeup.as_ref().unwrap_or(&sc.network.wakeup);
        if wake.is_zero() {
            return false;
        }
        let d = wake.sample(&mut self.r.wakeup);
        if let Some(recent) = recent {
            let on_core = d.mul_f64(t.wakeup_factor(recent) * t.cpu_share);
            self.reqs[r as usize].cold_cpu = on_core;
        }
        let Some(idle) = idle else {
            return false;
        };
        let delay = d.mul_f64(t.wakeup_factor(idle) * (1.0 - t.cpu_share));
        if delay.is_zero() {
            return false;
        }
        let seq = self.reqs[r as usize].seq;
        self.q.push(self.now + delay, Ev::HostAwake { req: r, seq });
        true
    }

    /// The host's recent idle spell for the types' own wake-ups (`network.wakeup_memory`): the
    /// longest spell a request found, decaying with time constant `tau` — the slow state of an
    /// intermittently loaded host lasts beyond the spell that set it (VALIDATION.md, "The scan
    /// runs at two speeds"). `Some` while it is at least `network.wakeup_after`, whether or not
    /// the host is idle now.
    fn recent_idle(
        &mut self,
        tau: SimDuration,
        now_idle: Option<SimDuration>,
    ) -> Option<SimDuration> {
        let dt = (self.now - self.idle_peak_at).as_ms_f64();
        self.idle_peak_ms *= (-dt / tau.as_ms_f64()).exp();
        self.idle_peak_at = self.now;
        if let Some(g) = now_idle {
            self.idle_peak_ms = self.idle_peak_ms.max(g.as_ms_f64());
        }
        let peak = SimDuration::from_ms_f64(self.idle_peak_ms);
        (peak >= self.sc.network.wakeup_after).then_some(peak)
    }

    /// How long the database host's CPUs have been idle, if for `network.wakeup_after` at
    /// least: no statement in its CPU phase on the primary, PgBouncer's processes without work.
    fn host_idle(&self) -> Option<SimDuration> {
        if self.pg_cpu_busy {
            return None;
        }
        let since = self
            .bpools
            .iter()
            .map(|bp| bp.cpu_free)
            .fold(self.pg_idle_since, SimTime::max);
        let idle = self.now.0.checked_sub(since.0).map(SimDuration)?;
        (idle >= self.sc.network.wakeup_after).then_some(idle)
    }

    /// The request enters the app: app CPU on one of the instance's workers, then its
    /// transactions.
    fn app_start(&mut self, r: u32) {
        let sc = self.sc;
        let now = self.now;
        let inst = self.reqs[r as usize].instance;
        let cpu = &sc.workload.app_cpu;
        if cpu.is_zero() {
            self.start_tx(r);
            return;
        }
        match sc.app.workers {
            None => {
                let d = cpu.sample(&mut self.r.app_cpu);
                self.q.push(now + d, Ev::AppCpuDone(r));
            }
            Some(w) => {
                let i = &mut self.instances[inst as usize];
                if i.cpu_busy < w {
                    i.cpu_busy += 1;
                    let d = cpu.sample(&mut self.r.app_cpu);
                    self.q.push(now + d, Ev::AppCpuDone(r));
                } else {
                    i.cpu_queue.push_back(r);
                }
            }
        }
    }

    // ------------------------------------------------- constant timeouts: deadline lists
    //
    // A constant timeout makes deadlines arrive in the order they were set, so each kind of
    // timeout keeps an intrusive list through the request slots, in deadline order, and one
    // scheduled event for its head. A request leaves the list when the timed thing ends, so the
    // storage is bounded by the requests in flight — not by the timeout's horizon.

    fn kind_of(&self, list: u32) -> usize {
        let p = self.sc.pools.len() as u32;
        if list == 0 {
            0
        } else if list <= p {
            1
        } else {
            2
        }
    }

    fn dl_push(&mut self, list: u32, r: u32, deadline: SimTime) {
        let k = self.kind_of(list);
        self.dl_remove(k, r);
        let tail = self.dlists[list as usize].tail;
        debug_assert!(tail == NONE || self.reqs[tail as usize].links[k].deadline <= deadline);
        self.reqs[r as usize].links[k] = Link {
            prev: tail,
            next: NONE,
            deadline,
            list,
        };
        if tail == NONE {
            self.dlists[list as usize].head = r;
        } else {
            self.reqs[tail as usize].links[k].next = r;
        }
        self.dlists[list as usize].tail = r;
        if !self.dlists[list as usize].armed {
            self.dlists[list as usize].armed = true;
            let head = self.dlists[list as usize].head;
            let t = self.reqs[head as usize].links[k].deadline;
            self.q.push(t.max(self.now), Ev::Deadline(list));
        }
    }

    fn dl_remove(&mut self, k: usize, r: u32) {
        let l = self.reqs[r as usize].links[k];
        if l.list == NONE {
            return;
        }
        if l.prev == NONE {
            self.dlists[l.list as usize].head = l.next;
        } else {
            self.reqs[l.prev as usize].links[k].next = l.next;
        }
        if l.next == NONE {
            self.dlists[l.list as usize].tail = l.prev;
        } else {
            self.reqs[l.next as usize].links[k].prev = l.prev;
        }
        self.reqs[r as usize].links[k] = Link::UNLINKED;
    }

    fn deadline(&mut self, list: u32) {
        let k = self.kind_of(list);
        self.dlists[list as usize].armed = false;
        loop {
            let head = self.dlists[list as usize].head;
            if head == NONE {
                return;
            }
            let t = self.reqs[head as usize].links[k].deadline;
            if t > self.now {
                self.dlists[list as usize].armed = true;
                self.q.push(t, Ev::Deadline(list));
                return;
            }
            self.dl_remove(k, head);
            let q = &self.reqs[head as usize];
            let (gen, seq) = (q.gen, q.seq);
            match k {
                0 => self.client_timeout(head, gen),
                1 => {
                    if self.valid(head, seq) {
                        self.command_timeout(head)
                    }
                }
                _ => self.acquire_timeout(head, seq),
            }
        }
    }

    fn client_timeout(&mut self, r: u32, gen: u32) {
        let q = &self.reqs[r as usize];
        if q.gen != gen || q.phase == Phase::Free || q.user_done {
            return;
        }
        // the user gives up; the request runs on, orphaned, and frees what it holds at its end
        self.user_visible_end(r, Err(Cause::ClientTimeout));
    }

    fn app_cpu_done(&mut self, r: u32) {
        let inst = self.reqs[r as usize].instance as usize;
        if self.sc.app.workers.is_some() {
            if let Some(next) = self.instances[inst].cpu_queue.pop_front() {
                let d = self.sc.workload.app_cpu.sample(&mut self.r.app_cpu);
                self.q.push(self.now + d, Ev::AppCpuDone(next));
            } else {
                self.instances[inst].cpu_busy -= 1;
            }
        }
        self.start_tx(r);
    }

    /// The user sees the outcome: record it, and let the user think (or retry).
    fn user_visible_end(&mut self, r: u32, outcome: Result<(), Cause>) {
        let now = self.now;
        let q = &mut self.reqs[r as usize];
        debug_assert!(!q.user_done);
        q.user_done = true;
        let (user, attempt, t0) = (q.user, q.attempt, q.t0);
        self.dl_remove(0, r);
        self.ended_all += 1;
        self.tr(|t| Trace::RequestEnded {
            t,
            ok: outcome.is_ok(),
        });
        assert!(now >= t0, "causality: a response before its request");
        self.rec.in_system.add(now, -1.0);
        if self.rec.measuring {
            let d = now - t0.max(self.rec.window_start);
            self.rec.sojourn_ns += d.as_ns() as f64;
            self.rec.sojourn_n += 1;
            match outcome {
                Ok(()) => {
                    self.rec.completed += 1;
                    self.rec.latency.record((now - t0).as_ns().max(1));
                }
                Err(c) => self.rec.failures[c as usize] += 1,
            }
        }
        if let (Some(s), Ok(())) = (self.series.as_mut(), outcome) {
            let i = ((now.0 / s.interval.as_ns()) as usize).min(SERIES_INTERVALS - 1);
            s.completed[i] += 1;
            s.latency_ns[i] += (now - t0).as_ns() as f64;
        }
        self.user_next(user, attempt, outcome.is_err());
    }

    fn user_next(&mut self, user: u32, attempt: u32, failed: bool) {
        let c = &self.sc.clients;
        if failed && attempt < c.retries {
            let d = c.backoff.sample(&mut self.r.retry);
            self.q.push(
                self.now + d,
                Ev::Retry {
                    user,
                    attempt: attempt + 1,
                },
            );
            return;
        }
        if user == NONE {
            return;
        }
        if let Load::Closed { think, .. } = &c.load {
            let d = think.sample(&mut self.r.think);
            self.q.push(self.now + d, Ev::UserWake(user));
        }
    }

    /// The request is over internally: free its slot.
    fn finish(&mut self, r: u32, outcome: Result<(), Cause>) {
        if !self.reqs[r as usize].user_done {
            self.user_visible_end(r, outcome);
        }
        for k in 0..3 {
            self.dl_remove(k, r);
        }
        let q = &mut self.reqs[r as usize];
        debug_assert!(q.conn == NONE, "request finished holding a connection");
        q.phase = Phase::Free;
        q.gen = q.gen.wrapping_add(1);
        q.seq = q.seq.wrapping_add(1);
        let inst = q.instance as usize;
        self.instances[inst].in_flight -= 1;
        self.free_reqs.push(r);
    }

    // ---------------------------------------------------------------- app pool

    /// A transaction type from the workload's mix.
    fn draw_tx(&mut self) -> usize {
        let txs = &self.sc.workload.txs;
        let u: f64 = self.r.mix.random();
        txs.iter()
            .position(|t| u < t.cum_weight)
            .unwrap_or(txs.len() - 1)
    }

    /// Request `r`'s first transaction type, drawn on arrival (for its own wake-up); it runs
    /// when its turn comes.
    fn draw_tx_at_arrival(&mut self, r: u32) -> &'a TxType {
        let tx = self.draw_tx();
        let q = &mut self.reqs[r as usize];
        q.tx = tx as u32;
        q.tx_drawn = true;
        &self.sc.workload.txs[tx]
    }

    fn start_tx(&mut self, r: u32) {
        let sc = self.sc;
        let tx = if self.reqs[r as usize].tx_drawn {
            self.reqs[r as usize].tx as usize
        } else {
            self.draw_tx()
        };
        let q = &mut self.reqs[r as usize];
        q.tx_drawn = false;
        q.tx = tx as u32;
        q.stmt_left = sc.workload.txs[tx].statements;
        if q.conn != NONE {
            self.run_statement(r);
            return;
        }
        let inst = q.instance as usize;
        let p = self.instances[inst].pools[sc.workload.txs[tx].route];
        self.acquire(r, p);
    }

    fn acquire(&mut self, r: u32, p: u32) {
        let now = self.now;
        let q = &mut self.reqs[r as usize];
        q.seq = q.seq.wrapping_add(1);
        q.acq_start = now;
        q.pool = p;
        let seq = q.seq;
        if self.rec.measuring {
            self.rec.acquires += 1;
        }
        let pool = &mut self.pools[p as usize];
        if let Some(c) = pool.idle.pop() {
            self.give(r, c);
            return;
        }
        if pool.open < pool.max_size {
            self.reqs[r as usize].phase = Phase::Connecting;
            self.open_conn(p, r);
        } else {
            if self.rec.measuring {
                self.rec.exhaustion_events += 1;
            }
            pool.waiters.push_back((r, seq));
            self.reqs[r as usize].phase = Phase::Acquiring;
        }
        let spec = &self.sc.pools[self.pools[p as usize].spec as usize];
        if let Some(d) = &spec.acquire_timeout {
            let t = now + d.sample(&mut self.r.acquire);
            if d.as_const().is_some() {
                let list = 1 + self.sc.pools.len() as u32 + self.pools[p as usize].spec;
                self.dl_push(list, r, t);
            } else {
                self.q.push(t, Ev::AcquireTimeout { req: r, seq });
            }
        }
    }

    fn alloc_conn(&mut self, p: u32) -> u32 {
        match self.free_conns.pop() {
            Some(c) => {
                self.conns[c as usize] = Conn::new(p);
                c
            }
            None => {
                self.conns.push(Conn::new(p));
                (self.conns.len() - 1) as u32
            }
        }
    }

    fn free_conn_slot(&mut self, c: u32) {
        self.conns[c as usize].state = ConnState::Free;
        self.free_conns.push(c);
    }

    /// Start opening a connection for request `owner` (connect cost paid inside acquire).
    fn open_conn(&mut self, p: u32, owner: u32) {
        let sc = self.sc;
        let c = self.alloc_conn(p);
        self.pools[p as usize].open += 1;
        self.conns[c as usize].state = ConnState::Connecting;
        self.pools[p as usize].check();
        self.conns[c as usize].req = owner;
        self.reqs[owner as usize].conn = c;
        if self.rec.measuring {
            self.rec.connections_opened += 1;
        }
        self.tr(|t| Trace::AppConnect {
            t,
            pool: p,
            conn: c,
        });
        let spec = &sc.pools[self.pools[p as usize].spec as usize];
        let net = &sc.network;
        let (delay, refused) = match spec.target {
            Target::Bouncer => {
                let b = sc.bouncer.as_ref().expect("validated");
                let proc = c % b.processes;
                self.conns[c as usize].via_bouncer = true;
                self.conns[c as usize].bproc = proc;
                let bp = &mut self.bpools[proc as usize];
                if !self.bouncer_up {
                    (net.app_bouncer_rtt, Some(Cause::ConnectRefused))
                } else if bp.clients >= b.max_client_conn {
                    // refused at the startup packet, before authentication (08P01)
                    (
                        net.app_bouncer_rtt + net.app_bouncer_rtt,
                        Some(Cause::MaxClientConn),
                    )
                } else {
                    // the login (authentication: SCRAM, TLS) is work of PgBouncer's single
                    // thread, queued with the queries of the same process
                    bp.clients += 1;
                    let d = b.client_connect.sample(&mut self.r.connect);
                    let done = self.bouncer_work(proc, self.now + net.app_bouncer_rtt, d);
                    ((done - self.now) + net.app_bouncer_rtt, None)
                }
            }
            Target::Primary | Target::Replicas => {
                let pg = if spec.target == Target::Primary {
                    0
                } else {
                    let n = sc.replicas.len() as u32;
                    let pool = &mut self.pools[p as usize];
                    pool.rr += 1;
                    1 + (pool.rr - 1) % n
                };
                self.conns[c as usize].pg = pg;
                let pgs = &mut self.pgs[pg as usize];
                if !pgs.up {
                    (net.app_pg_rtt, Some(Cause::ConnectRefused))
                } else if !pgs.try_connect() {
                    (net.app_pg_rtt + net.app_pg_rtt, Some(Cause::MaxConnections))
                } else {
                    let d = self.pg_spec(pg).backend_start.sample(&mut self.r.connect);
                    self.note_backends();
                    (net.app_pg_rtt + net.app_pg_rtt + d, None)
                }
            }
        };
        self.conns[c as usize].refused = refused;
        self.q.push(self.now + delay, Ev::ConnectDone(c));
    }

    fn connect_done(&mut self, c: u32) {
        let conn = &self.conns[c as usize];
        if conn.state != ConnState::Connecting {
            return;
        }
        let p = conn.pool;
        let owner = conn.req;
        let owner_waits = owner != NONE && {
            let q = &self.reqs[owner as usize];
            q.phase == Phase::Connecting && q.conn == c
        };
        if let Some(cause) = conn.refused {
            self.tr(|t| Trace::ConnectRefused { t, conn: c, cause });
            self.pools[p as usize].open -= 1;
            self.free_conn_slot(c);
            if owner_waits {
                let q = &mut self.reqs[owner as usize];
                q.conn = NONE;
                q.seq = q.seq.wrapping_add(1);
                self.finish(owner, Err(cause));
            }
            self.serve_waiters(p);
            return;
        }
        if conn.broken {
            self.conns[c as usize].state = ConnState::Idle;
            self.close_conn(c);
            if owner_waits {
                let q = &mut self.reqs[owner as usize];
                q.conn = NONE;
                q.seq = q.seq.wrapping_add(1);
                self.finish(owner, Err(Cause::ConnectionLost));
            }
            self.serve_waiters(p);
            return;
        }
        if conn.abandoned {
            self.conns[c as usize].state = ConnState::Idle;
            self.close_conn(c);
            self.serve_waiters(p);
            return;
        }
        if owner_waits {
            self.give(owner, c);
        } else {
            self.conns[c as usize].req = NONE;
            self.conns[c as usize].state = ConnState::Busy;
            self.pools[p as usize].busy += 1;
            if self.pools[p as usize].max_size != u32::MAX {
                self.rec.app_busy.add(self.now, 1.0);
            }
            self.release_conn(c);
        }
    }

    fn give(&mut self, r: u32, c: u32) {
        let now = self.now;
        self.dl_remove(2, r);
        let conn = &mut self.conns[c as usize];
        conn.state = ConnState::Busy;
        conn.req = r;
        let p = conn.pool as usize;
        self.pools[p].busy += 1;
        if self.pools[p].max_size != u32::MAX {
            self.rec.app_busy.add(now, 1.0);
        }
        let q = &mut self.reqs[r as usize];
        q.conn = c;
        if self.rec.measuring {
            self.rec
                .acquire_wait
                .record((now - q.acq_start).as_ns().max(1));
        }
        self.run_statement(r);
    }

    fn acquire_timeout(&mut self, r: u32, seq: u32) {
        if !self.valid(r, seq) {
            return;
        }
        let q = &mut self.reqs[r as usize];
        match q.phase {
            Phase::Acquiring => {}
            Phase::Connecting => {
                let c = q.conn;
                q.conn = NONE;
                // asyncpg cancels the connection attempt: the work already queued at the far
                // end is done anyway, and the connection is closed when the attempt completes
                self.conns[c as usize].req = NONE;
                self.conns[c as usize].abandoned = true;
            }
            _ => return,
        }
        // the wait of a timed-out acquire counts too (censored at the timeout), or the acquire-wait
        // percentiles would look best exactly when the pool is exhausted
        if self.rec.measuring {
            let w = self.now - self.reqs[r as usize].acq_start;
            self.rec.acquire_wait.record(w.as_ns().max(1));
        }
        let q = &mut self.reqs[r as usize];
        q.seq = q.seq.wrapping_add(1);
        self.finish(r, Err(Cause::AcquireTimeout));
    }

    fn waiter_valid(&self, r: u32, seq: u32) -> bool {
        let q = &self.reqs[r as usize];
        q.phase == Phase::Acquiring && q.seq == seq
    }

    /// Hand idle connections to waiters, and let waiters open connections below max_size.
    fn serve_waiters(&mut self, p: u32) {
        self.pools[p as usize].check();
        loop {
            let pool = &mut self.pools[p as usize];
            let Some(&(r, seq)) = pool.waiters.front() else {
                return;
            };
            if !self.waiter_valid(r, seq) {
                self.pools[p as usize].waiters.pop_front();
                continue;
            }
            let pool = &mut self.pools[p as usize];
            if let Some(c) = pool.idle.pop() {
                pool.waiters.pop_front();
                self.give(r, c);
            } else if pool.open < pool.max_size {
                pool.waiters.pop_front();
                self.reqs[r as usize].phase = Phase::Connecting;
                self.open_conn(p, r);
            } else {
                return;
            }
        }
    }

    /// The request gives its connection back to the pool.
    fn release_conn(&mut self, c: u32) {
        let sc = self.sc;
        let now = self.now;
        let conn = &mut self.conns[c as usize];
        debug_assert_eq!(conn.state, ConnState::Busy);
        let p = conn.pool;
        conn.req = NONE;
        self.pools[p as usize].busy -= 1;
        if self.pools[p as usize].max_size != u32::MAX {
            self.rec.app_busy.add(now, -1.0);
        }
        let spec = &sc.pools[self.pools[p as usize].spec as usize];
        let conn = &mut self.conns[c as usize];
        let rotate = spec.max_queries.is_some_and(|m| conn.queries >= m);
        if spec.kind == PoolKind::None || conn.broken || rotate {
            // closed at release; the next acquirer opens a new one
            self.close_conn(c);
        } else {
            conn.state = ConnState::Idle;
            conn.idle_since = now;
            self.pools[p as usize].idle.push(c);
        }
        self.serve_waiters(p);
    }

    /// Close an app connection that is not in use (idle or just released).
    fn close_conn(&mut self, c: u32) {
        let conn = self.conns[c as usize].clone();
        let p = conn.pool as usize;
        self.tr(|t| Trace::AppConnClosed {
            t,
            pool: p as u32,
            conn: c,
        });
        self.pools[p].open -= 1;
        if conn.via_bouncer {
            let proc = conn.bproc;
            let bp = &mut self.bpools[proc as usize];
            assert!(bp.clients > 0, "PgBouncer client count underflow");
            bp.clients -= 1;
            if conn.bwait != NONE {
                bp.cl_waiting -= 1;
            }
            if conn.server != NONE {
                // the client disconnected with a server linked (session mode): reset it, then reuse
                let s = conn.server;
                self.unlink(proc, s);
                let bp = &mut self.bpools[proc as usize];
                bp.servers[s as usize].state = SvState::Tested;
                let d = self.sc.network.bouncer_pg_rtt;
                self.q.push(self.now + d, Ev::ResetDone { proc, server: s });
            }
        } else if !conn.broken {
            self.pgs[conn.pg as usize].disconnect();
            self.note_backends();
        }
        self.free_conn_slot(c);
    }

    // ---------------------------------------------------------------- statements

    fn run_statement(&mut self, r: u32) {
        let sc = self.sc;
        let now = self.now;
        let q = &mut self.reqs[r as usize];
        q.seq = q.seq.wrapping_add(1);
        q.error = None;
        let seq = q.seq;
        let c = q.conn;
        let conn = &mut self.conns[c as usize];
        conn.queries += 1;
        let spec = &sc.pools[self.pools[conn.pool as usize].spec as usize];
        if let Some(d) = spec.command_timeout {
            let list = 1 + self.pools[conn.pool as usize].spec;
            self.dl_push(list, r, now + d);
        }
        let conn = &self.conns[c as usize];
        if conn.broken {
            self.reqs[r as usize].error = Some(Cause::ConnectionLost);
            self.reqs[r as usize].phase = Phase::FromPg;
            self.q.push(now, Ev::AppResp { req: r, seq });
            return;
        }
        if conn.via_bouncer {
            let b = sc.bouncer.as_ref().expect("validated");
            let proc = conn.bproc;
            let cost = b.cpu_per_query.sample(&mut self.r.bouncer);
            let done = self.bouncer_work(proc, now + sc.network.app_bouncer_rtt.half(), cost);
            self.reqs[r as usize].phase = Phase::ToBouncer;
            self.q.push(done, Ev::BouncerDispatch { req: r, seq });
        } else {
            self.reqs[r as usize].phase = Phase::ToPg;
            self.reqs[r as usize].pg = conn.pg;
            self.q.push(
                now + sc.network.app_pg_rtt.half(),
                Ev::PgArrive { req: r, seq },
            );
        }
    }

    /// Send an error back to the app from PgBouncer (half a round trip away).
    fn bouncer_error(&mut self, r: u32, cause: Cause) {
        let q = &mut self.reqs[r as usize];
        q.error = Some(cause);
        q.phase = Phase::FromPg;
        let seq = q.seq;
        let d = self.sc.network.app_bouncer_rtt.half();
        self.q.push(self.now + d, Ev::AppResp { req: r, seq });
    }

    fn bouncer_dispatch(&mut self, r: u32) {
        let q = &self.reqs[r as usize];
        if let Some(cause) = q.abort {
            self.bouncer_error(r, cause);
            return;
        }
        let c = q.conn;
        let conn = &self.conns[c as usize];
        if !self.bouncer_up || conn.broken {
            self.bouncer_error(r, Cause::ConnectionLost);
            return;
        }
        let proc = conn.bproc;
        if conn.server != NONE {
            self.forward(r);
            return;
        }
        let bp = &mut self.bpools[proc as usize];
        if let Some(s) = bp.idle.pop() {
            self.link(proc, c, s);
            if self.rec.measuring {
                self.rec.bouncer_assignments += 1;
            }
            self.forward(r);
            return;
        }
        if bp.last_login_failed && bp.connected() == 0 && self.now < bp.login_blocked_until {
            // "server login has been failing, cached error: … (server_login_retry)"
            self.bouncer_error(r, Cause::ServerLoginFailed);
            return;
        }
        self.token = self.token.wrapping_add(1);
        let token = self.token;
        let now = self.now;
        self.conns[c as usize].bwait = token;
        let bp = &mut self.bpools[proc as usize];
        bp.waiting.push_back(Waiter {
            conn: c,
            token,
            since: now,
        });
        bp.cl_waiting += 1;
        let total: u64 = self.bpools.iter().map(|b| b.cl_waiting as u64).sum();
        if total > self.rec.cl_waiting_max {
            self.rec.cl_waiting_max = total;
        }
        self.reqs[r as usize].phase = Phase::BouncerWait;
        self.activate(proc);
    }

    fn link(&mut self, proc: u32, c: u32, s: u32) {
        let bp = &mut self.bpools[proc as usize];
        let sv = &mut bp.servers[s as usize];
        debug_assert_eq!(sv.state, SvState::Idle);
        sv.state = SvState::Active;
        sv.client = c;
        bp.n_active += 1;
        self.conns[c as usize].server = s;
        self.rec.bouncer_active.add(self.now, 1.0);
        self.tr(|t| Trace::ServerLinked {
            t,
            conn: c,
            server: s,
        });
    }

    fn unlink(&mut self, proc: u32, s: u32) {
        let bp = &mut self.bpools[proc as usize];
        let sv = &mut bp.servers[s as usize];
        debug_assert_eq!(sv.state, SvState::Active);
        let c = sv.client;
        sv.client = NONE;
        sv.state = SvState::Idle;
        bp.n_active -= 1;
        if c != NONE {
            self.conns[c as usize].server = NONE;
        }
        self.rec.bouncer_active.add(self.now, -1.0);
        self.tr(|t| Trace::ServerReleased {
            t,
            conn: c,
            server: s,
        });
    }

    fn forward(&mut self, r: u32) {
        let q = &mut self.reqs[r as usize];
        q.phase = Phase::ToPg;
        q.pg = 0;
        let seq = q.seq;
        let d = self.sc.network.bouncer_pg_rtt.half();
        self.q.push(self.now + d, Ev::PgArrive { req: r, seq });
    }

    /// `per_loop_activate`: serve waiting clients FIFO from idle servers; then maybe launch one
    /// new server (below pool_size, or a reserve one once the head waiter waited long enough).
    fn activate(&mut self, proc: u32) {
        let Some(b) = self.sc.bouncer.as_ref() else {
            return;
        };
        loop {
            let bp = &mut self.bpools[proc as usize];
            let Some(&w) = bp.waiting.front() else {
                return;
            };
            if self.conns[w.conn as usize].bwait != w.token {
                bp.waiting.pop_front();
                continue;
            }
            let Some(s) = bp.idle.pop() else {
                break;
            };
            bp.waiting.pop_front();
            bp.cl_waiting -= 1;
            self.conns[w.conn as usize].bwait = NONE;
            self.link(proc, w.conn, s);
            if self.rec.measuring {
                self.rec.bouncer_assignments += 1;
                self.rec.bouncer_wait_ns += (self.now - w.since).as_ns() as f64;
            }
            let r = self.conns[w.conn as usize].req;
            debug_assert!(r != NONE);
            self.forward(r);
        }
        let bp = &self.bpools[proc as usize];
        if bp.login_in_flight || self.now < bp.login_blocked_until || !self.bouncer_up {
            return;
        }
        let head_since = bp.waiting.front().expect("a valid waiter remains").since;
        let cap_db = b.max_db_connections.unwrap_or(u32::MAX);
        if bp.n_servers >= cap_db {
            return;
        }
        if bp.n_servers < b.pool_size {
            self.launch(proc, false);
        } else if b.reserve_size > 0
            && bp.n_servers < b.pool_size.saturating_add(b.reserve_size)
            && self.now - head_since >= b.reserve_timeout
        {
            self.launch(proc, true);
        }
    }

    /// Open one server connection (one login in flight per pool).
    fn launch(&mut self, proc: u32, reserve: bool) {
        let sc = self.sc;
        let now = self.now;
        let bp = &mut self.bpools[proc as usize];
        assert!(!bp.login_in_flight, "two logins in flight in one pool");
        let s = bp.alloc(now, reserve);
        bp.login_in_flight = true;
        self.tr(|t| Trace::ServerLogin { t, proc, reserve });
        if self.rec.measuring {
            self.rec.server_logins += 1;
            self.rec.connections_opened += 1;
            if reserve {
                self.rec.reserve_opened += 1;
            }
        }
        let net = sc.network.bouncer_pg_rtt;
        let pg = &mut self.pgs[0];
        let (err, delay) = if !pg.up {
            (Some(Cause::ConnectRefused), net)
        } else if !pg.try_connect() {
            (Some(Cause::MaxConnections), net + net)
        } else {
            (
                None,
                net + net + sc.primary.backend_start.sample(&mut self.r.connect),
            )
        };
        self.note_backends();
        self.bpools[proc as usize].servers[s as usize].login_err = err;
        self.q.push(now + delay, Ev::LoginDone { proc, server: s });
    }

    fn login_done(&mut self, proc: u32, s: u32) {
        let b = self.sc.bouncer.as_ref().expect("bouncer");
        let now = self.now;
        let bp = &mut self.bpools[proc as usize];
        if bp.servers[s as usize].state != SvState::Login {
            return;
        }
        bp.login_in_flight = false;
        let err = bp.servers[s as usize].login_err;
        let ok = err.is_none();
        if ok && self.pgs[0].up && self.bouncer_up {
            bp.last_login_failed = false;
            let sv = &mut bp.servers[s as usize];
            sv.state = SvState::Idle;
            sv.idle_since = now;
            bp.idle.push(s);
            self.tr(|t| Trace::ServerReady { t, proc });
            self.activate(proc);
            return;
        }
        if ok {
            // connected, but the server or PgBouncer went down meanwhile
            self.pgs[0].disconnect();
            self.note_backends();
        }
        let bp = &mut self.bpools[proc as usize];
        bp.release_slot(s);
        bp.login_blocked_until = now + b.login_retry;
        bp.last_login_failed = true;
        if bp.connected() == 0 {
            // no server at all: every waiting client gets the server's error and is disconnected
            let mut waiting = std::mem::take(&mut bp.waiting);
            for w in waiting.drain(..) {
                if self.conns[w.conn as usize].bwait != w.token {
                    continue;
                }
                self.bpools[proc as usize].cl_waiting -= 1;
                let conn = &mut self.conns[w.conn as usize];
                conn.bwait = NONE;
                conn.broken = true;
                let r = conn.req;
                // the server's error is passed on to every waiting client
                self.bouncer_error(r, err.unwrap_or(Cause::ConnectionLost));
            }
            self.bpools[proc as usize].waiting = waiting;
        }
    }

    fn pg_arrive(&mut self, r: u32) {
        let sc = self.sc;
        let q = &self.reqs[r as usize];
        if let Some(cause) = q.abort {
            self.pg_respond(r, Some(cause));
            return;
        }
        let pg = q.pg;
        let conn = &self.conns[q.conn as usize];
        let lost =
            !self.pgs[pg as usize].up || conn.broken || (conn.via_bouncer && conn.server == NONE);
        if lost {
            self.pg_respond(r, Some(Cause::ConnectionLost));
            return;
        }
        let (wait, cpu) = if q.in_reset {
            (SimDuration::ZERO, SimDuration::ZERO)
        } else {
            let t = &sc.workload.txs[q.tx as usize];
            let k = self.pgs[pg as usize].slowdown;
            let w = t.wait.sample(&mut self.r.wait);
            let c = t.cpu.sample(&mut self.r.cpu) + q.cold_cpu;
            if k != 1.0 {
                (w.mul_f64(k), c.mul_f64(k))
            } else {
                (w, c)
            }
        };
        let seq = q.seq;
        let in_reset = q.in_reset;
        let sent_by_bouncer = self.conns[q.conn as usize].via_bouncer.then_some(self.now);
        if !in_reset {
            self.reqs[r as usize].cold_cpu = SimDuration::ZERO;
        }
        let spec = self.pg_spec(pg);
        // the statement's message lands on an idle core while another runs: it waits for
        // that core to be woken
        let wait = match self.waking_core(pg, sent_by_bouncer) {
            Some(d) if !in_reset => wait + d.sample(&mut self.r.wait),
            _ => wait,
        };
        if let Some(st) = spec.statement_timeout {
            self.q
                .push(self.now + st, Ev::StatementTimeout { req: r, seq });
        }
        if !wait.is_zero() {
            let q = &mut self.reqs[r as usize];
            q.phase = Phase::PgWait;
            q.cpu_work = cpu;
            self.q.push(self.now + wait, Ev::PgWaitDone { req: r, seq });
        } else if !cpu.is_zero() {
            self.ps_add(r, cpu);
        } else {
            self.pg_respond(r, None);
        }
    }

    fn pg_wait_done(&mut self, r: u32) {
        if self.reqs[r as usize].phase != Phase::PgWait {
            return;
        }
        let q = &self.reqs[r as usize];
        let conn = &self.conns[q.conn as usize];
        let lost = conn.broken || (conn.via_bouncer && conn.server == NONE);
        if !self.pgs[q.pg as usize].up || lost {
            self.pg_respond(r, Some(Cause::ConnectionLost));
            return;
        }
        let cpu = self.reqs[r as usize].cpu_work;
        if cpu.is_zero() {
            self.pg_respond(r, None);
        } else {
            self.ps_add(r, cpu);
        }
    }

    /// `work` of CPU on PgBouncer process `proc`'s single thread, queued behind what it already
    /// has from `arrive` on; returns when it is done. On the database host it also loads the
    /// primary's cores.
    fn bouncer_work(&mut self, proc: u32, arrive: SimTime, mut work: SimDuration) -> SimTime {
        let b = self
            .sc
            .bouncer
            .as_ref()
            .expect("PgBouncer work without a PgBouncer");
        let free = self.bpools[proc as usize].cpu_free;
        // the thread was idle: this work wakes it up
        let woken = arrive >= free;
        if woken && !b.cpu_per_wakeup.is_zero() {
            work = work + b.cpu_per_wakeup.sample(&mut self.r.bouncer);
        }
        let mut start = arrive.max(free);
        // on the database host, a woken thread finds the cores as the message leaves: with a
        // statement on every core it waits until one of them (drawn at random) ends or its
        // slice is over; landing on an idle core while another runs, it waits for that core
        // to be woken
        if woken && b.on_postgres_host {
            if let Some(d) = self.every_core_runs_a_statement(true) {
                start = start.max(self.now + d);
            } else if let Some(d) = self.waking_core(0, None) {
                start += d.sample(&mut self.r.bouncer);
            }
        }
        let done = start + work;
        self.bpools[proc as usize].cpu_free = done;
        if self.rec.measuring {
            self.rec.bouncer_cpu_ns += work.as_ns() as f64;
        }
        if b.on_postgres_host {
            self.host_load(work);
        }
        done
    }

    /// With a statement on every one of the primary's cores, how long a thread woken now on
    /// that host (PgBouncer's when `bouncer`, else the app's) waits for a core: until the
    /// statement on the core it lands on (one drawn at random) ends, or that statement's time
    /// slice is over (`postgres.scheduler_slice_ms`), whichever comes first. PgBouncer's own
    /// work is not a statement: it is the thread in question. `None` with a core free of
    /// statements, or without a number of cores.
    fn every_core_runs_a_statement(&mut self, bouncer: bool) -> Option<SimDuration> {
        let pg = &self.pgs[0];
        if pg.cores().is_none() || pg.partly_busy(0) {
            return None;
        }
        let slice = self.sc.primary.scheduler_slice;
        let rng = if bouncer {
            &mut self.r.bouncer
        } else {
            &mut self.r.behind
        };
        pg.time_to_end_of_a_statement(self.now, rng)
            .map(|d| d.min(slice))
    }

    /// PgBouncer's work on the primary's host takes its share of the same cores: a job of
    /// `work` CPU time in the primary's processor sharing that no request waits for (its
    /// latency is PgBouncer's own single thread).
    fn host_load(&mut self, work: SimDuration) {
        if work.is_zero() || !self.pgs[0].up {
            return;
        }
        let next = self.pgs[0].add(self.now, NONE, 0, work);
        self.after_ps_change(0, next);
    }

    fn ps_add(&mut self, r: u32, work: SimDuration) {
        let q = &mut self.reqs[r as usize];
        q.phase = Phase::PgCpu;
        let (pg, seq) = (q.pg, q.seq);
        let next = self.pgs[pg as usize].add(self.now, r, seq, work);
        self.after_ps_change(pg, next);
    }

    fn after_ps_change(&mut self, pg: u32, next: Option<SimTime>) {
        if pg == 0 {
            let busy = self.pgs[0].busy_cores();
            self.rec.primary_cpu_busy.set(self.now, busy);
            if busy > 0.0 {
                self.pg_cpu_busy = true;
            } else if self.pg_cpu_busy {
                self.pg_cpu_busy = false;
                self.pg_idle_since = self.now;
            }
        }
        if let Some(t) = next {
            let gen = self.pgs[pg as usize].gen;
            self.q.push(t.max(self.now), Ev::PsDone { pg, gen });
        }
    }

    fn ps_done(&mut self, pg: u32, gen: u32) {
        if self.pgs[pg as usize].gen != gen {
            return;
        }
        let done = self.pgs[pg as usize].complete(self.now);
        let next = self.pgs[pg as usize].next_completion();
        self.after_ps_change(pg, next);
        if let Some((r, seq)) = done {
            if self.valid(r, seq) && self.reqs[r as usize].phase == Phase::PgCpu {
                self.pg_respond(r, None);
            }
        }
    }

    /// Take the request's statement off the server now (cancelled, timed out or lost).
    fn pg_cancel(&mut self, r: u32) {
        let q = &mut self.reqs[r as usize];
        let pg = q.pg;
        let was_cpu = q.phase == Phase::PgCpu;
        q.seq = q.seq.wrapping_add(1);
        if was_cpu {
            let next = self.pgs[pg as usize].remove(self.now, r);
            self.after_ps_change(pg, next);
        }
    }

    /// The statement is over at the server: the response goes back.
    fn pg_respond(&mut self, r: u32, error: Option<Cause>) {
        let net = &self.sc.network;
        let q = &mut self.reqs[r as usize];
        if error.is_some() {
            q.error = error;
        }
        q.phase = Phase::FromPg;
        let seq = q.seq;
        let via_bouncer = self.conns[q.conn as usize].via_bouncer;
        if via_bouncer {
            self.q.push(
                self.now + net.bouncer_pg_rtt.half(),
                Ev::BouncerResp { req: r, seq },
            );
        } else {
            let wake = self.client_wake(None);
            self.q.push(
                self.now + wake + net.app_pg_rtt.half(),
                Ev::AppResp { req: r, seq },
            );
        }
    }

    fn statement_timeout(&mut self, r: u32) {
        let phase = self.reqs[r as usize].phase;
        if phase != Phase::PgWait && phase != Phase::PgCpu {
            return;
        }
        self.pg_cancel(r);
        self.pg_respond(r, Some(Cause::StatementTimeout));
    }

    fn command_timeout(&mut self, r: u32) {
        let phase = self.reqs[r as usize].phase;
        match phase {
            Phase::ToBouncer | Phase::ToPg | Phase::FromPg => {
                self.reqs[r as usize].abort = Some(Cause::CommandTimeout);
            }
            Phase::PgWait | Phase::PgCpu => {
                self.pg_cancel(r);
                self.pg_respond(r, Some(Cause::CommandTimeout));
            }
            Phase::BouncerWait => {
                let c = self.reqs[r as usize].conn;
                let conn = &mut self.conns[c as usize];
                if conn.bwait != NONE {
                    conn.bwait = NONE;
                    self.bpools[conn.bproc as usize].cl_waiting -= 1;
                }
                let q = &mut self.reqs[r as usize];
                q.seq = q.seq.wrapping_add(1);
                self.bouncer_error(r, Cause::CommandTimeout);
            }
            _ => return,
        }
        // the app raises at once; the cancel and the connection's return happen as modelled above
        if !self.reqs[r as usize].user_done {
            self.user_visible_end(r, Err(Cause::CommandTimeout));
        }
    }

    fn bouncer_resp(&mut self, r: u32) {
        let sc = self.sc;
        let b = sc.bouncer.as_ref().expect("bouncer");
        let q = &self.reqs[r as usize];
        let c = q.conn;
        let conn = &self.conns[c as usize];
        let proc = conn.bproc;
        let s = conn.server;
        let mut error = q.error.or(q.abort);
        if !self.bouncer_up {
            error = error.or(Some(Cause::ConnectionLost));
        }
        if s != NONE && self.bouncer_up {
            let last = q.stmt_left <= 1 || q.in_reset;
            let multi = sc.workload.txs[q.tx as usize].statements > 1 && !q.in_reset;
            match b.mode {
                PoolMode::Transaction => {
                    if error.is_some() || last {
                        self.release_server(proc, s);
                    }
                }
                PoolMode::Statement => {
                    if multi && error.is_none() {
                        // ReadyForQuery 'T': "transaction blocks not allowed in statement pooling mode"
                        self.close_server(proc, s);
                        self.conns[c as usize].broken = true;
                        error = Some(Cause::StatementModeTransaction);
                        self.activate(proc);
                    } else {
                        self.release_server(proc, s);
                    }
                }
                PoolMode::Session => {}
            }
        }
        let q = &mut self.reqs[r as usize];
        q.error = error;
        let seq = q.seq;
        // a response that finds PgBouncer's thread idle wakes it up too (which costs CPU, and
        // on the database host finds the cores as they are)
        let mut sent = self.now;
        if self.bouncer_up
            && (!b.cpu_per_wakeup.is_zero() || b.on_postgres_host)
            && self.bpools[proc as usize].cpu_free <= self.now
        {
            sent = self.bouncer_work(proc, self.now, SimDuration::ZERO);
        }
        let wake = self.client_wake(Some(sent));
        self.q.push(
            sent + wake + sc.network.app_bouncer_rtt.half(),
            Ev::AppResp { req: r, seq },
        );
    }

    /// A response on its way to an app on the database host wakes the app's thread. With a
    /// statement on every core it waits for a core (`every_core_runs_a_statement`); with a core
    /// free, it may still stay behind a running statement until it ends
    /// (`postgres.response_behind_statement`, one running statement drawn at random);
    /// otherwise, while some but not all cores run one, it takes an idle core, which must be
    /// woken first (`postgres.cross_core_wakeup`); a response PgBouncer sent at `bouncer_sent`
    /// counts its thread as one busy core if it already works on another client's message.
    fn client_wake(&mut self, bouncer_sent: Option<SimTime>) -> SimDuration {
        if !self.sc.app.on_postgres_host {
            return SimDuration::ZERO;
        }
        if let Some(d) = self.every_core_runs_a_statement(false) {
            return d;
        }
        let behind = self.sc.primary.response_behind_statement;
        if behind > 0.0 && self.r.behind.random::<f64>() < behind {
            let pg = &self.pgs[0];
            if let Some(d) = pg.time_to_end_of_a_statement(self.now, &mut self.r.behind) {
                return d;
            }
        }
        match self.waking_core(0, bouncer_sent) {
            Some(d) => d.sample(&mut self.r.wakeup),
            None => SimDuration::ZERO,
        }
    }

    /// Server `pg`'s spec (0 the primary, then the replicas).
    fn pg_spec(&self, pg: u32) -> &'a PgSpec {
        match pg {
            0 => &self.sc.primary,
            _ => &self.sc.replicas[pg as usize - 1],
        }
    }

    /// Server `pg`'s `cross_core_wakeup`, when work arriving now would land on one of its idle
    /// cores while another runs. A message PgBouncer sent at `bouncer_sent` (its own work for it
    /// done by then) finds its thread still on a core when that thread already works on
    /// another client's message: one more busy core.
    fn waking_core(&self, pg: u32, bouncer_sent: Option<SimTime>) -> Option<&'a Dist> {
        let d = self.pg_spec(pg).cross_core_wakeup.as_ref()?;
        let bouncer_busy = bouncer_sent.is_some_and(|sent| {
            pg == 0
                && self.sc.bouncer.as_ref().is_some_and(|b| b.on_postgres_host)
                && self.bpools.iter().any(|bp| bp.cpu_free > sent)
        });
        self.pgs[pg as usize]
            .partly_busy(bouncer_busy as usize)
            .then_some(d)
    }

    /// A server goes back to the pool (or is closed when its lifetime is over) and, at once, to
    /// the oldest waiting client.
    fn release_server(&mut self, proc: u32, s: u32) {
        let b = self.sc.bouncer.as_ref().expect("bouncer");
        self.unlink(proc, s);
        let now = self.now;
        let bp = &mut self.bpools[proc as usize];
        let sv = &bp.servers[s as usize];
        if let Some(life) = b.server_lifetime {
            let spacing = SimDuration(life.as_ns() / b.pool_size.clamp(1, 1 << 20) as u64);
            if now - sv.born >= life && now - bp.last_lifetime_close >= spacing {
                bp.last_lifetime_close = now;
                // unlink left it Idle but not in the idle list: close it directly
                bp.release_slot(s);
                self.pgs[0].disconnect();
                self.note_backends();
                self.activate(proc);
                return;
            }
        }
        let sv = &mut bp.servers[s as usize];
        sv.idle_since = now;
        bp.idle.push(s);
        self.activate(proc);
    }

    /// Close a server connection (lifetime, idle timeout, statement-mode violation, faults).
    fn close_server(&mut self, proc: u32, s: u32) {
        let state = self.bpools[proc as usize].servers[s as usize].state;
        match state {
            SvState::Active => self.unlink(proc, s),
            SvState::Idle => {
                let bp = &mut self.bpools[proc as usize];
                if let Some(i) = bp.idle.iter().position(|&x| x == s) {
                    bp.idle.remove(i);
                }
            }
            SvState::Tested => {}
            SvState::Login | SvState::Free => return,
        }
        self.bpools[proc as usize].release_slot(s);
        self.pgs[0].disconnect();
        self.note_backends();
    }

    fn app_resp(&mut self, r: u32) {
        self.dl_remove(1, r);
        let q = &self.reqs[r as usize];
        if let Some(cause) = q.error.or(q.abort) {
            self.end_tx_error(r, cause);
            return;
        }
        if q.in_reset {
            self.reqs[r as usize].in_reset = false;
            self.after_release(r);
            return;
        }
        let q = &mut self.reqs[r as usize];
        q.stmt_left -= 1;
        if q.stmt_left > 0 {
            let gap = &self.sc.workload.txs[q.tx as usize].gap;
            if gap.is_zero() {
                self.run_statement(r);
            } else {
                q.phase = Phase::Gap;
                let seq = q.seq;
                let d = gap.sample(&mut self.r.gap);
                self.q.push(self.now + d, Ev::NextStatement { req: r, seq });
            }
            return;
        }
        // the transaction is over
        if self.rec.measuring {
            self.rec.tx_completed += 1;
        }
        let sc = self.sc;
        q.tx_left -= 1;
        if sc.workload.hold == Hold::Request && q.tx_left > 0 {
            self.start_tx(r);
            return;
        }
        let p = q.pool;
        let spec = &sc.pools[self.pools[p as usize].spec as usize];
        if spec.reset_query && spec.kind == PoolKind::Asyncpg {
            // asyncpg's reset query at release: its own short transaction, one more round trip
            self.reqs[r as usize].in_reset = true;
            self.run_statement(r);
            return;
        }
        self.after_release(r);
    }

    fn after_release(&mut self, r: u32) {
        let c = self.reqs[r as usize].conn;
        self.reqs[r as usize].conn = NONE;
        self.release_conn(c);
        if self.reqs[r as usize].tx_left > 0 {
            self.start_tx(r);
        } else {
            self.finish(r, Ok(()));
        }
    }

    fn end_tx_error(&mut self, r: u32, cause: Cause) {
        let c = self.reqs[r as usize].conn;
        self.reqs[r as usize].conn = NONE;
        self.reqs[r as usize].in_reset = false;
        if c != NONE {
            if matches!(
                cause,
                Cause::QueryWaitTimeout | Cause::MaxConnections | Cause::ServerLoginFailed
            ) {
                // PgBouncer sent FATAL and closed the client connection
                self.conns[c as usize].broken = true;
            }
            let conn = &self.conns[c as usize];
            if conn.server != NONE
                && self
                    .sc
                    .bouncer
                    .as_ref()
                    .is_some_and(|b| b.mode != PoolMode::Session)
            {
                let (proc, s) = (conn.bproc, conn.server);
                self.release_server(proc, s);
            }
            self.release_conn(c);
        }
        self.finish(r, Err(cause));
    }

    // ---------------------------------------------------------------- periodic work

    fn janitor(&mut self, proc: u32) {
        let Some(b) = self.sc.bouncer.as_ref() else {
            return;
        };
        let now = self.now;
        self.q.push(now + JANITOR_PERIOD, Ev::Janitor(proc));
        if !self.bouncer_up {
            return;
        }
        // query_wait_timeout: strict `>` on the head waiters
        if let Some(qwt) = b.query_wait_timeout {
            loop {
                let bp = &mut self.bpools[proc as usize];
                let Some(&w) = bp.waiting.front() else {
                    break;
                };
                if self.conns[w.conn as usize].bwait != w.token {
                    bp.waiting.pop_front();
                    continue;
                }
                if now - w.since <= qwt {
                    break;
                }
                bp.waiting.pop_front();
                bp.cl_waiting -= 1;
                let conn = &mut self.conns[w.conn as usize];
                conn.bwait = NONE;
                let r = conn.req;
                let q = &mut self.reqs[r as usize];
                q.seq = q.seq.wrapping_add(1);
                self.bouncer_error(r, Cause::QueryWaitTimeout);
            }
        }
        // server_lifetime on idle servers, at most one per lifetime / pool_size
        if let Some(life) = b.server_lifetime {
            let spacing = SimDuration(life.as_ns() / b.pool_size.clamp(1, 1 << 20) as u64);
            let bp = &self.bpools[proc as usize];
            if now - bp.last_lifetime_close >= spacing {
                if let Some(&s) = bp
                    .idle
                    .iter()
                    .find(|&&s| now - bp.servers[s as usize].born >= life)
                {
                    self.bpools[proc as usize].last_lifetime_close = now;
                    self.close_server(proc, s);
                }
            }
        }
        // server_idle_timeout: the longest-idle servers first, never below min_pool_size
        if let Some(idle_t) = b.server_idle_timeout {
            loop {
                let bp = &self.bpools[proc as usize];
                let Some(&s) = bp.idle.first() else {
                    break;
                };
                if now - bp.servers[s as usize].idle_since <= idle_t
                    || bp.connected() <= b.min_pool_size
                {
                    break;
                }
                self.close_server(proc, s);
            }
        }
        // min_pool_size: one connection per tick while the pool has clients
        let bp = &self.bpools[proc as usize];
        if b.min_pool_size > 0
            && bp.clients > 0
            && !bp.login_in_flight
            && now >= bp.login_blocked_until
            && bp.n_servers < b.min_pool_size.min(b.pool_size)
            && bp.n_servers < b.max_db_connections.unwrap_or(u32::MAX)
        {
            self.launch(proc, false);
        }
        // the loop iteration itself (reserve checks happen here when nothing else wakes it)
        let has_waiter = !self.bpools[proc as usize].waiting.is_empty();
        if has_waiter {
            self.activate(proc);
        }
    }

    fn housekeeping(&mut self) {
        let now = self.now;
        self.q.push(now + HOUSEKEEPING_PERIOD, Ev::Housekeeping);
        for p in 0..self.pools.len() {
            let spec = &self.sc.pools[self.pools[p].spec as usize];
            let Some(life) = spec.max_inactive else {
                continue;
            };
            // the bottom of the LIFO stack has been idle longest
            while let Some(&c) = self.pools[p].idle.first() {
                if now - self.conns[c as usize].idle_since < life {
                    break;
                }
                self.pools[p].idle.remove(0);
                self.close_conn(c);
            }
        }
    }

    fn fault(&mut self, i: u32, start: bool) {
        let f = &self.sc.faults[i as usize];
        let pg = match f.target {
            FaultTarget::Primary => Some(0u32),
            FaultTarget::Replica(k) => Some(k + 1),
            FaultTarget::Bouncer => None,
        };
        match (f.kind, pg) {
            (FaultKind::Slowdown(k), Some(pg)) => {
                self.pgs[pg as usize].slowdown = if start { k } else { 1.0 };
            }
            (FaultKind::Down, Some(pg)) => {
                self.pgs[pg as usize].up = !start;
                if start {
                    self.kill_pg(pg);
                }
            }
            (FaultKind::Down, None) => {
                self.bouncer_up = !start;
                if start {
                    self.kill_bouncer();
                }
            }
            (FaultKind::Slowdown(_), None) => {}
        }
    }

    /// A PostgreSQL server goes down: running statements fail, its connections break.
    fn kill_pg(&mut self, pg: u32) {
        let mut jobs = std::mem::take(&mut self.scratch);
        jobs.clear();
        self.pgs[pg as usize].drain(self.now, &mut jobs);
        self.after_ps_change(pg, None);
        for &(r, seq) in &jobs {
            if self.valid(r, seq) {
                self.reqs[r as usize].seq = self.reqs[r as usize].seq.wrapping_add(1);
                self.pg_respond(r, Some(Cause::ConnectionLost));
            }
        }
        self.scratch = jobs;
        // direct connections
        for c in 0..self.conns.len() as u32 {
            let conn = &self.conns[c as usize];
            if conn.state == ConnState::Free || conn.via_bouncer || conn.pg != pg || conn.broken {
                continue;
            }
            let state = conn.state;
            let holds_slot = !(state == ConnState::Connecting && conn.refused.is_some());
            self.conns[c as usize].broken = true;
            if holds_slot {
                self.pgs[pg as usize].disconnect();
            }
            if state == ConnState::Idle {
                let p = self.conns[c as usize].pool as usize;
                if let Some(i) = self.pools[p].idle.iter().position(|&x| x == c) {
                    self.pools[p].idle.remove(i);
                }
                self.close_conn(c);
            }
        }
        // PgBouncer's servers to the primary
        if pg == 0 && self.sc.bouncer.is_some() {
            for proc in 0..self.bpools.len() as u32 {
                for s in 0..self.bpools[proc as usize].servers.len() as u32 {
                    let sv = &self.bpools[proc as usize].servers[s as usize];
                    match sv.state {
                        SvState::Active => {
                            let c = sv.client;
                            let r = self.conns[c as usize].req;
                            if r != NONE && self.reqs[r as usize].phase != Phase::Free {
                                self.reqs[r as usize].abort = Some(Cause::ConnectionLost);
                            }
                            self.close_server(proc, s);
                        }
                        SvState::Idle | SvState::Tested => self.close_server(proc, s),
                        _ => {}
                    }
                }
            }
        }
        self.note_backends();
    }

    /// PgBouncer goes down: every client and server connection through it breaks.
    fn kill_bouncer(&mut self) {
        for proc in 0..self.bpools.len() as u32 {
            for s in 0..self.bpools[proc as usize].servers.len() as u32 {
                let st = self.bpools[proc as usize].servers[s as usize].state;
                if matches!(st, SvState::Active | SvState::Idle | SvState::Tested) {
                    self.close_server(proc, s);
                }
            }
        }
        for c in 0..self.conns.len() as u32 {
            let conn = &self.conns[c as usize];
            if conn.state == ConnState::Free || !conn.via_bouncer || conn.broken {
                continue;
            }
            let state = conn.state;
            let r = conn.req;
            let waiting = conn.bwait != NONE;
            self.conns[c as usize].broken = true;
            if waiting {
                let proc = self.conns[c as usize].bproc;
                self.conns[c as usize].bwait = NONE;
                self.bpools[proc as usize].cl_waiting -= 1;
                if r != NONE && self.reqs[r as usize].phase == Phase::BouncerWait {
                    let q = &mut self.reqs[r as usize];
                    q.seq = q.seq.wrapping_add(1);
                    self.bouncer_error(r, Cause::ConnectionLost);
                }
            } else if state == ConnState::Busy
                && r != NONE
                && self.reqs[r as usize].phase != Phase::Free
            {
                self.reqs[r as usize].abort = Some(Cause::ConnectionLost);
            }
            if state == ConnState::Idle {
                let p = self.conns[c as usize].pool as usize;
                if let Some(i) = self.pools[p].idle.iter().position(|&x| x == c) {
                    self.pools[p].idle.remove(i);
                }
                self.close_conn(c);
            }
        }
    }

    fn note_backends(&mut self) {
        let b = self.pgs[0].backends as f64;
        self.rec.primary_backends.set(self.now, b);
        for pg in &self.pgs[1..] {
            self.rec.replica_backends_peak =
                self.rec.replica_backends_peak.max(pg.peak_backends as f64);
        }
    }

    // ---------------------------------------------------------------- results

    fn record(&mut self, events: u64, truncated: bool) -> RunRecord {
        let sc = self.sc;
        let now = self.now;
        let rec = &mut self.rec;
        let window = (now - rec.window_start).as_s_f64().max(1e-9);
        let mut v = vec![0.0; METRIC_NAMES.len()];
        let set = |v: &mut Vec<f64>, name: &str, x: f64| v[super::metric_index(name)] = x;
        let failed: u64 = rec.failures.iter().sum();
        super::metrics::Outcomes {
            window_s: window,
            completed: rec.completed,
            tx_completed: rec.tx_completed,
            failures: &rec.failures,
            other_failures: 0,
            latency: &rec.latency,
            acquire_wait: &rec.acquire_wait,
            in_system_mean: rec.in_system.mean(now),
            sojourn_n: rec.sojourn_n,
            sojourn_ns: rec.sojourn_ns,
        }
        .write(&mut v);
        let ms = |ns: f64| ns / 1e6;
        set(
            &mut v,
            "pool_exhaustion_per_s",
            rec.exhaustion_events as f64 / window,
        );
        if rec.acquires > 0 {
            let f = rec.exhaustion_events as f64 / rec.acquires as f64;
            set(&mut v, "pool_exhaustion_fraction", f);
        }
        let app_cap: f64 = self
            .pools
            .iter()
            .filter(|p| p.max_size != u32::MAX)
            .map(|p| p.max_size as f64)
            .sum();
        if app_cap > 0.0 {
            set(
                &mut v,
                "app_pool_utilization",
                rec.app_busy.mean(now) / app_cap,
            );
        }
        if let Some(b) = &sc.bouncer {
            if b.pool_size != u32::MAX {
                let cap = (b.pool_size as f64 + b.reserve_size as f64) * b.processes as f64;
                set(
                    &mut v,
                    "bouncer_server_utilization",
                    rec.bouncer_active.mean(now) / cap,
                );
            }
            set(
                &mut v,
                "bouncer_cpu_utilization",
                rec.bouncer_cpu_ns / (window * 1e9) / b.processes as f64,
            );
            if rec.bouncer_assignments > 0 {
                set(
                    &mut v,
                    "bouncer_avg_wait_ms",
                    ms(rec.bouncer_wait_ns / rec.bouncer_assignments as f64),
                );
            }
            set(&mut v, "bouncer_cl_waiting_max", rec.cl_waiting_max as f64);
        }
        set(
            &mut v,
            "postgres_slot_utilization",
            rec.primary_backends.mean(now) / sc.primary.usable_connections().max(1) as f64,
        );
        if let Some(c) = self.pgs[0].cores() {
            set(
                &mut v,
                "postgres_cpu_utilization",
                rec.primary_cpu_busy.mean(now) / c,
            );
        }
        set(
            &mut v,
            "postgres_peak_connections",
            self.pgs[0].peak_backends as f64,
        );
        let rp = self.pgs[1..]
            .iter()
            .map(|p| p.peak_backends)
            .max()
            .unwrap_or(0);
        set(&mut v, "replica_peak_connections", rp as f64);
        set(&mut v, "reserve_opened", rec.reserve_opened as f64);
        set(
            &mut v,
            "connections_opened_per_s",
            rec.connections_opened as f64 / window,
        );
        set(&mut v, "requests_issued", rec.issued as f64);
        set(&mut v, "requests_completed", rec.completed as f64);
        set(&mut v, "requests_failed", failed as f64);
        set(&mut v, "warmup_s", rec.window_start.as_s_f64());
        RunRecord {
            values: v,
            events,
            truncated,
        }
    }
}
