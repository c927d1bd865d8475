//! The load generator: the experiment's users (closed loop, think time) or arrivals (open loop,
//! rate schedule), app instances with one app pool per route, and the workload's SQL, run for
//! real against anything that implements [`Db`] — tokio-postgres in production
//! ([`super::pg::PgDb`]), a fake with paused tokio time in the tests.
//!
//! # App pools
//!
//! Each (instance, route) has a [`deadpool`] managed pool over a manager of our own
//! ([`Mgr`]), configured to behave like asyncpg's pool (`reference/pool-semantics.md` §2):
//! `min_size` connections opened before the run (one first, then the rest concurrently); lazy
//! growth to `max_size` with the connect paid inside acquire; idle connections reused LIFO
//! (`QueueMode::Lifo`); waiters served FIFO (deadpool's fair semaphore); the acquire timeout
//! covers the whole acquire (queue + connect); a connection found closed at acquire is replaced;
//! at release, the reset query (if configured) and then, at `max_queries`, the connection is
//! closed so that the next acquirer reconnects; idle connections past
//! `max_inactive_connection_lifetime` are closed by a 1 s sweep (asyncpg arms a timer per
//! connection). Differences from asyncpg: no barging (a released connection goes to the oldest
//! waiter, never to a newcomer), and an acquire that times out while connecting abandons the
//! connection attempt (as asyncpg does, and as the simulator does).
//!
//! # Measurement
//!
//! Latency runs from the request's *intended* start — the end of the user's think time in closed
//! loop, the scheduled arrival in open loop — to the moment the user sees the outcome, so a
//! stalled load generator or server inflates the latencies it caused (no coordinated omission).
//! Counters, histograms and time averages cover the window after the warm-up, exactly as the
//! simulator's recorder does, and [`RunOutput::values`] fills the same [`METRIC_NAMES`].
//! A user whose `request_timeout` fires records a client timeout and moves on; the request keeps
//! running, orphaned, and frees what it holds when it ends.

use crate::dist::Dist;
use crate::experiment::{Balance, Hold, Load, PoolKind, Scenario, Target};
use crate::live::sql::LiveTx;
use crate::rng::{self, Rng, Stream};
use crate::sim::metrics::TimeAvg;
use crate::sim::{metric_index, Cause, CAUSES, METRIC_NAMES};
use crate::stats::LatencyHistogram;
use crate::units::{SimDuration, SimTime};
use deadpool::managed::{Manager, Metrics, Object, Pool, PoolError, QueueMode, RecycleError};
use rand::RngCore;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{sleep, sleep_until, timeout, Instant};

/// asyncpg's reset query, run at every release when the pool has `reset_query`.
pub const RESET_QUERY: &str = "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;";

/// Open loop: requests in flight beyond which new arrivals are rejected (a memory bound).
pub const MAX_OPEN_IN_FLIGHT: usize = 200_000;

/// How long closing the pools may take before the run reports connections left open.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// What the load generator needs from a database: connect, run a simple-protocol query, tell a
/// closed connection, cancel the running statement.
pub trait Db: Send + Sync + 'static {
    type Conn: Send + 'static;
    /// Whether the run is on the wall clock (a real database). The open loop's arrival clock
    /// then runs on an OS thread for precise arrival times; otherwise on tokio's (possibly
    /// paused) clock.
    const REAL_TIME: bool = true;
    /// Open a connection to the target of an app pool.
    fn connect(&self, target: Target) -> impl Future<Output = Result<Self::Conn, DbError>> + Send;
    /// Run one query (simple protocol), discarding its rows.
    fn execute(
        &self,
        conn: &mut Self::Conn,
        sql: &str,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
    /// Whether the connection is known to be broken or closed.
    fn is_closed(&self, conn: &Self::Conn) -> bool;
    /// Ask the server to cancel the statement running on `conn` (after a command timeout).
    fn cancel(&self, conn: &Self::Conn) -> impl Future<Output = ()> + Send;
}

/// A failed connect or statement, already mapped onto the simulator's causes.
#[derive(Clone, Debug)]
pub struct DbError {
    /// `None`: an error the simulator does not model (a SQL error, a serialization failure).
    pub cause: Option<Cause>,
    /// Server message or error chain; never contains credentials.
    pub message: String,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// How a request ended for its user.
#[derive(Debug)]
enum Failure {
    Cause(Cause, String),
    /// An error outside the simulator's causes.
    Other(String),
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Self {
        match e.cause {
            Some(c) => Failure::Cause(c, e.message),
            None => Failure::Other(e.message),
        }
    }
}

fn dur(d: SimDuration) -> Duration {
    Duration::from_nanos(d.as_ns())
}

/// Where a run is; sent to the caller so that it can sample the servers in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Starting,
    /// Opening `min_size` connections, then warming up.
    Warmup,
    /// The measurement window is open.
    Measuring,
    Done,
}

// ------------------------------------------------------------------------------- pool manager

/// A pooled connection and what asyncpg tracks for it.
pub struct PooledConn<C> {
    conn: C,
    /// Queries run on it (statements, BEGIN/COMMIT/ROLLBACK and reset queries alike).
    queries: u64,
    released_at: Instant,
    _live: LiveGuard,
}

/// Counts open connections; the count drops when the connection is dropped (closed).
struct LiveGuard(Arc<Counters>);
impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counters shared by pools and requests (atomics: no lock on the hot path).
#[derive(Default)]
struct Counters {
    measuring: AtomicBool,
    /// App connections currently open.
    live: AtomicI64,
    /// App connections opened during the window, by target.
    opened_bouncer: AtomicU64,
    opened_direct: AtomicU64,
    exhaustion: AtomicU64,
    issued: AtomicU64,
}

/// The deadpool manager of one app pool: connects through [`Db`], and recycles an idle
/// connection unless it is closed or has been idle past `max_inactive_connection_lifetime`.
pub struct Mgr<D: Db> {
    db: Arc<D>,
    target: Target,
    max_inactive: Option<Duration>,
    counters: Arc<Counters>,
}

impl<D: Db> Mgr<D> {
    async fn open(&self) -> Result<PooledConn<D::Conn>, DbError> {
        let conn = self.db.connect(self.target).await?;
        self.counters.live.fetch_add(1, Ordering::AcqRel);
        if self.counters.measuring.load(Ordering::Relaxed) {
            match self.target {
                Target::Bouncer => &self.counters.opened_bouncer,
                _ => &self.counters.opened_direct,
            }
            .fetch_add(1, Ordering::Relaxed);
        }
        Ok(PooledConn {
            conn,
            queries: 0,
            released_at: Instant::now(),
            _live: LiveGuard(self.counters.clone()),
        })
    }
}

impl<D: Db> Manager for Mgr<D> {
    type Type = PooledConn<D::Conn>;
    type Error = DbError;

    async fn create(&self) -> Result<Self::Type, DbError> {
        self.open().await
    }

    async fn recycle(
        &self,
        obj: &mut Self::Type,
        _: &Metrics,
    ) -> Result<(), RecycleError<DbError>> {
        if self.db.is_closed(&obj.conn) {
            return Err(RecycleError::message("connection closed"));
        }
        if self
            .max_inactive
            .is_some_and(|m| obj.released_at.elapsed() > m)
        {
            return Err(RecycleError::message("idle past its lifetime"));
        }
        Ok(())
    }
}

/// One app pool of one instance.
struct AppPool<D: Db> {
    /// `None` for `kind: none` (a new connection per transaction).
    pool: Option<Pool<Mgr<D>>>,
    mgr: Arc<Mgr<D>>,
    spec: usize,
}

enum Held<D: Db> {
    Pooled(Object<Mgr<D>>),
    Own(PooledConn<D::Conn>),
}

impl<D: Db> Held<D> {
    fn conn(&mut self) -> &mut PooledConn<D::Conn> {
        match self {
            Held::Pooled(o) => o,
            Held::Own(c) => c,
        }
    }
}

// ------------------------------------------------------------------------------------- tally

/// What the window records, under one lock.
struct Tally {
    t0: Instant,
    window_start: Instant,
    measuring: bool,
    latency: LatencyHistogram,
    acquire_wait: LatencyHistogram,
    completed: u64,
    tx_completed: u64,
    failures: [u64; CAUSES.len()],
    other_failures: u64,
    sojourn_ns: f64,
    sojourn_n: u64,
    app_busy: TimeAvg,
    /// Intended starts (ns since `t0`) of the requests users are waiting for, with their counts:
    /// the time-average of requests in the system is computed exactly from these, even though
    /// a request enters the system at its intended start, which may lie before events already
    /// recorded.
    in_flight: BTreeMap<u64, u32>,
    /// Client deadlines (ns since `t0`) of the requests in flight with a request timeout, with
    /// their counts: at the window's end, those already past are timeouts of the window, even
    /// when a load generator that fell behind (its host's CPUs saturated) has not yet fired them.
    deadlines: BTreeMap<u64, u32>,
    /// ∫ requests in the system dt over the window, for requests that ended (ns).
    in_system_area_ns: f64,
    /// Per cause name (or `other`): count over the whole run and the first message.
    errors: BTreeMap<String, (u64, String)>,
}

impl Tally {
    fn new(start: Instant) -> Tally {
        Tally {
            t0: start,
            window_start: start,
            measuring: false,
            latency: LatencyHistogram::new(),
            acquire_wait: LatencyHistogram::new(),
            completed: 0,
            tx_completed: 0,
            failures: [0; CAUSES.len()],
            other_failures: 0,
            sojourn_ns: 0.0,
            sojourn_n: 0,
            app_busy: TimeAvg::default(),
            in_flight: BTreeMap::new(),
            deadlines: BTreeMap::new(),
            in_system_area_ns: 0.0,
            errors: BTreeMap::new(),
        }
    }

    fn at(&self, t: Instant) -> SimTime {
        SimTime(t.saturating_duration_since(self.t0).as_nanos() as u64)
    }

    /// Counts the requests whose client deadline fell inside the window (up to `end`) but whose
    /// timeout has not been recorded, as client timeouts of the window; returns how many.
    fn overdue_timeouts(&mut self, end: Instant) -> u64 {
        let (from, to) = (self.at(self.window_start).0, self.at(end).0);
        let n: u64 = self
            .deadlines
            .range(from..=to)
            .map(|(_, &n)| n as u64)
            .sum();
        if n > 0 {
            self.failures[Cause::ClientTimeout as usize] += n;
            self.sojourn_n += n;
            let f = Failure::Cause(
                Cause::ClientTimeout,
                "request_timeout expired (counted at the window's end: the load generator, behind, had not fired it yet)".into(),
            );
            self.note_error(&f, n);
        }
        n
    }

    /// Counts `n` failures of the kind of `f` over the whole run, keeping the first message.
    fn note_error(&mut self, f: &Failure, n: u64) {
        let (key, msg) = match f {
            Failure::Cause(c, m) => (c.name(), m),
            Failure::Other(m) => ("other", m),
        };
        let e = self
            .errors
            .entry(key.to_string())
            .or_insert_with(|| (0, msg.clone()));
        e.0 += n;
    }
}

/// One fewer of `key` in a map of counts (gone at zero).
fn leave(counts: &mut BTreeMap<u64, u32>, key: u64) {
    if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

/// The outcome of one replication.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// Indexed like [`METRIC_NAMES`]; the app-side metrics are filled, the server-side ones
    /// (PgBouncer, PostgreSQL) are left at 0 for the caller, which samples the servers.
    /// `None` when the run was stopped before its window opened.
    pub values: Option<Vec<f64>>,
    /// Length of the measurement window.
    pub window: Duration,
    /// Stopped early (Ctrl-C).
    pub interrupted: bool,
    /// Failures by cause name (`other` for errors the simulator does not model): count over the
    /// whole run, warm-up included, and the first message.
    pub errors: BTreeMap<String, (u64, String)>,
    /// Problems outside the requests (pool start-up, connections left open).
    pub notes: Vec<String>,
    /// Connections opened during the window: to PgBouncer (client connections), and directly
    /// to PostgreSQL.
    pub opened_bouncer: u64,
    pub opened_direct: u64,
}

// --------------------------------------------------------------------------------- requests

/// Per-request random streams and scratch buffers.
struct ReqState {
    mix: Rng,
    params: Rng,
    gap: Rng,
    cpu: Rng,
    acquire: Rng,
    values: Vec<i64>,
    sql: String,
}

impl ReqState {
    fn new(seed: u64, rep: u32) -> ReqState {
        ReqState {
            mix: rng::stream(seed, rep, Stream::TxMix),
            params: rng::stream(seed, rep, Stream::SqlParams),
            gap: rng::stream(seed, rep, Stream::Gap),
            cpu: rng::stream(seed, rep, Stream::AppCpu),
            acquire: rng::stream(seed, rep, Stream::AcquireTimeout),
            values: Vec::new(),
            sql: String::new(),
        }
    }
}

/// Per-user streams: one seed per user, derived from the master seed and the user's number.
struct UserState {
    think: Rng,
    client: Rng,
    retry: Rng,
    balance: Rng,
    req: Option<ReqState>,
    seed: u64,
    rep: u32,
    reseeds: u64,
}

impl UserState {
    fn new(master: u64, rep: u32, user: u64) -> UserState {
        let seed = rng::splitmix64(master ^ rng::splitmix64(0x5553_4552_0000_0000 ^ user));
        UserState {
            think: rng::stream(seed, rep, Stream::Think),
            client: rng::stream(seed, rep, Stream::ClientTimeout),
            retry: rng::stream(seed, rep, Stream::Retry),
            balance: rng::stream(seed, rep, Stream::Balance),
            req: Some(ReqState::new(seed, rep)),
            seed,
            rep,
            reseeds: 0,
        }
    }
    fn take_req(&mut self) -> ReqState {
        self.req.take().unwrap_or_else(|| {
            // the previous one went with an orphaned request
            self.reseeds += 1;
            ReqState::new(rng::splitmix64(self.seed ^ self.reseeds), self.rep)
        })
    }
}

/// Aborts a spawned task when dropped, unless disarmed.
struct AbortOnDrop(Option<AbortHandle>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

struct Instance {
    in_flight: AtomicU32,
    cpu: Option<Semaphore>,
}

struct InFlight<'a>(&'a AtomicU32);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Ctx<D: Db> {
    db: Arc<D>,
    sc: Scenario,
    txs: Vec<LiveTx>,
    /// `[instance][pool spec]`.
    pools: Vec<Vec<AppPool<D>>>,
    instances: Vec<Instance>,
    tally: Mutex<Tally>,
    counters: Arc<Counters>,
    stopping: AtomicBool,
    rr: AtomicU32,
    orphans: Mutex<Vec<AbortHandle>>,
    start: Instant,
    seed: u64,
    rep: u32,
    /// On the wall clock: the users' think times end on an OS thread's clock.
    timer: Option<PreciseTimer>,
}

/// Sleeps that end within tens of µs of their deadline, for the real-time load generator:
/// tokio's timer wheel fires up to a millisecond late, and a closed-loop user's latency runs
/// from the end of its think time, so that lateness would be measured as the system's. One OS
/// thread keeps every pending deadline and wakes each sleeper at its own (nanosleep), as the
/// open loop's arrival clock does; it ends when the run's context is dropped.
struct PreciseTimer {
    tx: std::sync::mpsc::Sender<(std::time::Instant, tokio::sync::oneshot::Sender<()>)>,
}

impl PreciseTimer {
    fn new() -> std::io::Result<PreciseTimer> {
        type Waiter = (std::time::Instant, tokio::sync::oneshot::Sender<()>);
        let (tx, rx) = std::sync::mpsc::channel::<Waiter>();
        std::thread::Builder::new()
            .name("poolsim-think-clock".into())
            .spawn(move || {
                let mut pending: BTreeMap<
                    (std::time::Instant, u64),
                    tokio::sync::oneshot::Sender<()>,
                > = BTreeMap::new();
                let mut seq = 0u64;
                loop {
                    let now = std::time::Instant::now();
                    while let Some(entry) = pending.first_entry() {
                        if entry.key().0 > now {
                            break;
                        }
                        // a sleeper that went away (the run stopped) no longer listens
                        let _ = entry.remove().send(());
                    }
                    let next = match pending.first_key_value() {
                        None => rx.recv().map_err(|_| ()),
                        Some((k, _)) => {
                            let wait = k.0.saturating_duration_since(std::time::Instant::now());
                            match rx.recv_timeout(wait.min(Duration::from_millis(50))) {
                                Ok(w) => Ok(w),
                                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(()),
                            }
                        }
                    };
                    match next {
                        Ok((at, waker)) => {
                            seq += 1;
                            pending.insert((at, seq), waker);
                        }
                        Err(()) => return,
                    }
                }
            })?;
        Ok(PreciseTimer { tx })
    }

    async fn sleep_until(&self, at: Instant) {
        let (waker, woken) = tokio::sync::oneshot::channel();
        let sent = self.tx.send((at.into_std(), waker));
        if sent.is_err() || woken.await.is_err() {
            sleep_until(at).await;
        }
    }
}

impl<D: Db> Ctx<D> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The user sees the outcome of a request that it issued at `t0`, with its client deadline.
    fn end(&self, t0: Instant, limit: Option<Instant>, outcome: &Result<(), Failure>) {
        let now = Instant::now();
        let mut t = self.lock();
        let key = t.at(t0).0;
        leave(&mut t.in_flight, key);
        if let Some(l) = limit {
            let key = t.at(l).0;
            leave(&mut t.deadlines, key);
        }
        if let Err(f) = outcome {
            t.note_error(f, 1);
        }
        if t.measuring {
            let from = t0.max(t.window_start);
            let d = now.saturating_duration_since(from).as_nanos() as f64;
            t.sojourn_ns += d;
            t.in_system_area_ns += d;
            t.sojourn_n += 1;
            match outcome {
                Ok(()) => {
                    t.completed += 1;
                    let ns = now.saturating_duration_since(t0).as_nanos() as u64;
                    t.latency.record(ns.max(1));
                }
                Err(Failure::Cause(c, _)) => t.failures[*c as usize] += 1,
                Err(Failure::Other(_)) => t.other_failures += 1,
            }
        }
    }

    fn choose_instance(&self, u: &mut UserState) -> usize {
        let n = self.instances.len() as u32;
        match self.sc.app.balance {
            Balance::RoundRobin => (self.rr.fetch_add(1, Ordering::Relaxed) % n) as usize,
            Balance::Random => (u.balance.next_u64() % n as u64) as usize,
        }
    }

    /// Issue a request (and its retries) intended to start at `t0`.
    async fn issue(self: &Arc<Self>, mut t0: Instant, u: &mut UserState) {
        let c = &self.sc.clients;
        let mut attempt = 0;
        loop {
            let ok = self.attempt(t0, u).await;
            if ok || attempt >= c.retries || self.stopping.load(Ordering::Relaxed) {
                return;
            }
            attempt += 1;
            sleep(dur(c.backoff.sample(&mut u.retry))).await;
            t0 = Instant::now();
        }
    }

    /// One attempt; true when it succeeded.
    async fn attempt(self: &Arc<Self>, t0: Instant, u: &mut UserState) -> bool {
        if self.counters.measuring.load(Ordering::Relaxed) {
            self.counters.issued.fetch_add(1, Ordering::Relaxed);
        }
        let inst = self.choose_instance(u);
        if let Some(max) = self.sc.app.max_in_flight {
            if self.instances[inst].in_flight.load(Ordering::Acquire) >= max {
                let mut t = self.lock();
                let f = Failure::Cause(
                    Cause::AdmissionRejected,
                    "app instance at max_in_flight".into(),
                );
                t.note_error(&f, 1);
                if t.measuring {
                    t.failures[Cause::AdmissionRejected as usize] += 1;
                    t.sojourn_n += 1;
                }
                return false;
            }
        }
        let limit = self
            .sc
            .clients
            .timeout
            .as_ref()
            .map(|patience| t0 + dur(patience.sample(&mut u.client)));
        {
            let mut t = self.lock();
            let key = t.at(t0).0;
            *t.in_flight.entry(key).or_insert(0) += 1;
            if let Some(l) = limit {
                let key = t.at(l).0;
                *t.deadlines.entry(key).or_insert(0) += 1;
            }
        }
        self.instances[inst]
            .in_flight
            .fetch_add(1, Ordering::AcqRel);
        let outcome = match limit {
            None => {
                let mut req = u.take_req();
                let r = self.request(inst, &mut req).await;
                u.req = Some(req);
                r
            }
            Some(limit) => {
                let mut req = u.take_req();
                let me = self.clone();
                let mut handle = tokio::spawn(async move {
                    let r = me.request(inst, &mut req).await;
                    (r, req)
                });
                // if this user is stopped while it waits, the request stops too
                let mut guard = AbortOnDrop(Some(handle.abort_handle()));
                let res = tokio::select! {
                    joined = &mut handle => match joined {
                        Ok((r, req)) => {
                            u.req = Some(req);
                            r
                        }
                        Err(e) => Err(Failure::Other(format!("request task failed: {e}"))),
                    },
                    _ = sleep_until(limit) => {
                        self.orphans
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(handle.abort_handle());
                        Err(Failure::Cause(Cause::ClientTimeout, "request_timeout expired".into()))
                    }
                };
                // finished, or orphaned and registered: the run aborts orphans at its end
                guard.0 = None;
                res
            }
        };
        let ok = outcome.is_ok();
        self.end(t0, limit, &outcome);
        ok
    }

    /// The request inside the app: app CPU, then its transactions on pooled connections.
    async fn request(&self, inst: usize, r: &mut ReqState) -> Result<(), Failure> {
        let _in_flight = InFlight(&self.instances[inst].in_flight);
        let w = &self.sc.workload;
        if !w.app_cpu.is_zero() {
            let d = dur(w.app_cpu.sample(&mut r.cpu));
            match &self.instances[inst].cpu {
                Some(sem) => {
                    let _permit = sem.acquire().await;
                    sleep(d).await;
                }
                None => sleep(d).await,
            }
        }
        match w.hold {
            Hold::Transaction => {
                for _ in 0..w.tx_per_request {
                    let tx = self.pick(r);
                    let pool = &self.pools[inst][w.txs[tx].route];
                    let mut held = self.acquire(pool, r).await?;
                    let res = self.run_tx(&mut held, pool, tx, r).await;
                    self.release(pool, held, 1).await;
                    res?;
                }
            }
            Hold::Request => {
                let first = self.pick(r);
                let pool = &self.pools[inst][w.txs[first].route];
                let mut held = self.acquire(pool, r).await?;
                let mut done = 0;
                let mut res = Ok(());
                for i in 0..w.tx_per_request {
                    let tx = if i == 0 { first } else { self.pick(r) };
                    res = self.run_tx(&mut held, pool, tx, r).await;
                    if res.is_err() {
                        break;
                    }
                    done += 1;
                }
                self.release(pool, held, done).await;
                res?;
            }
        }
        Ok(())
    }

    fn pick(&self, r: &mut ReqState) -> usize {
        let txs = &self.sc.workload.txs;
        if txs.len() == 1 {
            return 0;
        }
        let u: f64 = rand::Rng::random(&mut r.mix);
        txs.iter()
            .position(|t| u < t.cum_weight)
            .unwrap_or(txs.len() - 1)
    }

    async fn acquire(&self, pool: &AppPool<D>, r: &mut ReqState) -> Result<Held<D>, Failure> {
        let spec = &self.sc.pools[pool.spec];
        let start = Instant::now();
        let patience = spec
            .acquire_timeout
            .as_ref()
            .map(|d| dur(d.sample(&mut r.acquire)));
        let got: Result<Held<D>, Failure> = match &pool.pool {
            Some(p) => {
                let st = p.status();
                if st.available == 0
                    && st.size >= st.max_size
                    && self.counters.measuring.load(Ordering::Relaxed)
                {
                    self.counters.exhaustion.fetch_add(1, Ordering::Relaxed);
                }
                let res = match patience {
                    Some(d) => match timeout(d, p.get()).await {
                        Ok(res) => res,
                        Err(_) => return Err(acquire_timed_out(d)),
                    },
                    None => p.get().await,
                };
                match res {
                    Ok(o) => Ok(Held::Pooled(o)),
                    Err(PoolError::Backend(e)) => Err(e.into()),
                    Err(PoolError::Closed) => Err(Failure::Other("the app pool is closed".into())),
                    Err(e) => Err(Failure::Other(format!("app pool: {e}"))),
                }
            }
            None => {
                let res = match patience {
                    Some(d) => match timeout(d, pool.mgr.open()).await {
                        Ok(res) => res,
                        Err(_) => return Err(acquire_timed_out(d)),
                    },
                    None => pool.mgr.open().await,
                };
                res.map(Held::Own).map_err(Failure::from)
            }
        };
        let held = got?;
        let now = Instant::now();
        let mut t = self.lock();
        if t.measuring {
            let ns = now.saturating_duration_since(start).as_nanos() as u64;
            t.acquire_wait.record(ns.max(1));
        }
        let at = t.at(now);
        t.app_busy.add(at, 1.0);
        Ok(held)
    }

    async fn release(&self, pool: &AppPool<D>, mut held: Held<D>, txs_done: u64) {
        let spec = &self.sc.pools[pool.spec];
        let closed = self.db.is_closed(&held.conn().conn);
        if spec.reset_query && !closed && spec.kind == PoolKind::Asyncpg {
            let c = held.conn();
            c.queries += 1;
            if self.db.execute(&mut c.conn, RESET_QUERY).await.is_err() {
                // asyncpg terminates a connection whose reset failed
                if let Held::Pooled(o) = held {
                    drop(Object::take(o));
                }
                self.released(txs_done);
                return;
            }
        }
        let now = Instant::now();
        self.released(txs_done);
        match held {
            Held::Own(c) => drop(c),
            Held::Pooled(mut o) => {
                let rotate = spec.max_queries.is_some_and(|m| o.queries >= m);
                if rotate || self.db.is_closed(&o.conn) {
                    drop(Object::take(o));
                } else {
                    o.released_at = now;
                    drop(o);
                }
            }
        }
    }

    fn released(&self, txs_done: u64) {
        let now = Instant::now();
        let mut t = self.lock();
        let at = t.at(now);
        t.app_busy.add(at, -1.0);
        if t.measuring {
            t.tx_completed += txs_done;
        }
    }

    async fn exec(
        &self,
        c: &mut PooledConn<D::Conn>,
        sql: &str,
        command_timeout: Option<Duration>,
    ) -> Result<(), Failure> {
        c.queries += 1;
        match command_timeout {
            None => Ok(self.db.execute(&mut c.conn, sql).await?),
            Some(d) => match timeout(d, self.db.execute(&mut c.conn, sql)).await {
                Ok(r) => Ok(r?),
                Err(_) => {
                    self.db.cancel(&c.conn).await;
                    Err(Failure::Cause(
                        Cause::CommandTimeout,
                        format!("command_timeout: no answer within {} ms", d.as_millis()),
                    ))
                }
            },
        }
    }

    async fn run_tx(
        &self,
        held: &mut Held<D>,
        pool: &AppPool<D>,
        tx: usize,
        r: &mut ReqState,
    ) -> Result<(), Failure> {
        let live = &self.txs[tx];
        let gap = &self.sc.workload.txs[tx].gap;
        let ct = self.sc.pools[pool.spec].command_timeout.map(dur);
        let c = held.conn();
        live.draw(&mut r.params, &mut r.values);
        let res = async {
            if live.block {
                self.exec(c, "BEGIN", ct).await?;
            }
            for (k, stmt) in live.statements.iter().enumerate() {
                if (k > 0 || live.block) && !gap.is_zero() {
                    sleep(dur(gap.sample(&mut r.gap))).await;
                }
                r.sql.clear();
                stmt.render(&r.values, &mut r.sql);
                self.exec(c, &r.sql, ct).await?;
            }
            if live.block {
                self.exec(c, "COMMIT", ct).await?;
            }
            Ok(())
        }
        .await;
        if res.is_err() && live.block && !self.db.is_closed(&c.conn) {
            let _ = self.exec(c, "ROLLBACK", ct).await;
        }
        res
    }
}

fn acquire_timed_out(d: Duration) -> Failure {
    Failure::Cause(
        Cause::AcquireTimeout,
        format!("acquire timed out after {} ms", d.as_millis()),
    )
}

// ------------------------------------------------------------------------------------ clients

/// Users of `schedule` (steps of user count, times from the run's start) active at `t`.
fn users_at(schedule: &[(SimTime, u32)], t: SimTime) -> u32 {
    schedule
        .iter()
        .take_while(|s| s.0 <= t)
        .last()
        .map_or(0, |s| s.1)
}

async fn user<D: Db>(ctx: Arc<Ctx<D>>, user: u32, think: Dist, schedule: Vec<(SimTime, u32)>) {
    let mut u = UserState::new(ctx.seed, ctx.rep, user as u64);
    let mut next = ctx.start;
    loop {
        let planned = next + dur(think.sample(&mut u.think));
        if planned > Instant::now() {
            match &ctx.timer {
                Some(t) => t.sleep_until(planned).await,
                None => sleep_until(planned).await,
            }
        }
        if ctx.stopping.load(Ordering::Relaxed) {
            return;
        }
        let since = SimTime(planned.saturating_duration_since(ctx.start).as_nanos() as u64);
        if user >= users_at(&schedule, since) {
            // dormant until a step brings the user count above this user
            match schedule.iter().find(|s| s.0 > since && s.1 > user) {
                Some(s) => {
                    next = ctx.start + Duration::from_nanos(s.0 .0);
                    continue;
                }
                None => return,
            }
        }
        ctx.issue(planned, &mut u).await;
        next = Instant::now();
    }
}

/// The open loop's arrival times: Poisson with the schedule's rate, memoryless across steps.
struct ArrivalClock {
    rng: Rng,
    schedule: Vec<(SimTime, f64)>,
    idx: usize,
    /// Offset of the last arrival from the run's start.
    t: Duration,
}

impl ArrivalClock {
    /// The next arrival's offset from the run's start; `None` when the schedule has no more.
    fn next(&mut self) -> Option<Duration> {
        loop {
            let rate = self.schedule[self.idx].1;
            let next_step = self
                .schedule
                .get(self.idx + 1)
                .map(|s| Duration::from_nanos(s.0 .0));
            let cand = (rate > 0.0).then(|| {
                let e: f64 = rand_distr::Distribution::sample(&rand_distr::Exp1, &mut self.rng);
                self.t + Duration::from_secs_f64(e / rate)
            });
            match (cand, next_step) {
                // memoryless: draw again from the step
                (Some(c), Some(s)) if c >= s => {
                    self.t = s;
                    self.idx += 1;
                }
                (None, Some(s)) => {
                    self.t = s;
                    self.idx += 1;
                }
                (None, None) => return None,
                (Some(c), _) => {
                    self.t = c;
                    return Some(c);
                }
            }
        }
    }
}

async fn arrivals<D: Db>(ctx: Arc<Ctx<D>>, schedule: Vec<(SimTime, f64)>) {
    let mut clock = ArrivalClock {
        rng: rng::stream(ctx.seed, ctx.rep, Stream::Arrivals),
        schedule,
        idx: 0,
        t: Duration::ZERO,
    };
    let mut set = JoinSet::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    if D::REAL_TIME {
        // tokio's timer wheel fires up to a millisecond late, and latency runs from the
        // intended arrival: an OS thread keeps the arrival clock (nanosleep, tens of µs)
        let stop = ctx.clone();
        let start = ctx.start.into_std();
        std::thread::Builder::new()
            .name("poolsim-arrivals".into())
            .spawn(move || {
                while let Some(off) = clock.next() {
                    let at = start + off;
                    loop {
                        let now = std::time::Instant::now();
                        if now >= at || stop.stopping.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep((at - now).min(Duration::from_millis(50)));
                    }
                    if stop.stopping.load(Ordering::Relaxed)
                        || tx.send(Instant::from_std(at)).is_err()
                    {
                        return;
                    }
                }
            })
            .expect("spawning the arrival clock thread");
    } else {
        let start = ctx.start;
        let stop = ctx.clone();
        tokio::spawn(async move {
            while let Some(off) = clock.next() {
                let at = start + off;
                sleep_until(at).await;
                if stop.stopping.load(Ordering::Relaxed) || tx.send(at).is_err() {
                    return;
                }
            }
        });
    }
    let mut n: u64 = 0;
    while let Some(t0) = rx.recv().await {
        while set.try_join_next().is_some() {}
        if ctx.stopping.load(Ordering::Relaxed) {
            break;
        }
        n += 1;
        if set.len() >= MAX_OPEN_IN_FLIGHT {
            let mut tl = ctx.lock();
            let f = Failure::Cause(
                Cause::AdmissionRejected,
                format!("more than {MAX_OPEN_IN_FLIGHT} requests in flight in the load generator"),
            );
            tl.note_error(&f, 1);
            if tl.measuring {
                tl.failures[Cause::AdmissionRejected as usize] += 1;
                tl.sojourn_n += 1;
            }
            continue;
        }
        let me = ctx.clone();
        set.spawn(async move {
            let mut u = UserState::new(me.seed ^ 0x4F50_454E, me.rep, n);
            me.issue(t0, &mut u).await;
        });
    }
    // keep the requests in flight running until the run aborts this task
    std::future::pending::<()>().await;
}

// ---------------------------------------------------------------------------------------- run

/// Run one replication of `sc` against `db`: open the app pools, warm up, measure, close
/// everything. `stop` (set to true) ends the run early, keeping what was measured so far.
/// `phase` follows the run (for the caller's sampling of the servers).
pub async fn run<D: Db>(
    db: Arc<D>,
    sc: &Scenario,
    txs: &[LiveTx],
    rep: u32,
    mut stop: watch::Receiver<bool>,
    phase: &watch::Sender<Phase>,
) -> RunOutput {
    let counters = Arc::new(Counters::default());
    let mut notes = Vec::new();
    let instances: Vec<Instance> = (0..sc.app.instances)
        .map(|_| Instance {
            in_flight: AtomicU32::new(0),
            cpu: sc.app.workers.map(|w| Semaphore::new(w as usize)),
        })
        .collect();
    let mut pools = Vec::new();
    for _ in 0..sc.app.instances {
        let mut per = Vec::new();
        for (i, spec) in sc.pools.iter().enumerate() {
            let mgr = Arc::new(Mgr {
                db: db.clone(),
                target: spec.target,
                max_inactive: spec.max_inactive.map(dur),
                counters: counters.clone(),
            });
            let pool = match spec.kind {
                PoolKind::None => None,
                PoolKind::Asyncpg => Some(
                    Pool::builder(Mgr {
                        db: db.clone(),
                        target: spec.target,
                        max_inactive: spec.max_inactive.map(dur),
                        counters: counters.clone(),
                    })
                    .max_size(spec.max_size as usize)
                    .queue_mode(QueueMode::Lifo)
                    .build()
                    .expect("no timeouts, so no runtime needed"),
                ),
            };
            per.push(AppPool { pool, mgr, spec: i });
        }
        pools.push(per);
    }
    let _ = phase.send(Phase::Warmup);
    // asyncpg opens min_size at pool creation: one connection alone, then the rest together
    let mut init = JoinSet::new();
    for per in &pools {
        for p in per {
            let min = sc.pools[p.spec].min_size as usize;
            if let (Some(pool), true) = (&p.pool, min > 0) {
                let pool = pool.clone();
                init.spawn(async move {
                    let first = pool.get().await.map_err(|e| e.to_string())?;
                    let mut rest = JoinSet::new();
                    for _ in 1..min {
                        let pool = pool.clone();
                        rest.spawn(async move { pool.get().await.map_err(|e| e.to_string()) });
                    }
                    let mut held = vec![first];
                    let mut err = None;
                    while let Some(r) = rest.join_next().await {
                        match r {
                            Ok(Ok(o)) => held.push(o),
                            Ok(Err(e)) => err = Some(e),
                            Err(e) => err = Some(e.to_string()),
                        }
                    }
                    drop(held);
                    err.map_or(Ok(()), Err)
                });
            }
        }
    }
    let mut init_failed = None;
    let init_done = async {
        while let Some(r) = init.join_next().await {
            if let Ok(Err(e)) = r {
                init_failed.get_or_insert(e);
            }
        }
    };
    let mut interrupted = false;
    tokio::select! {
        _ = init_done => {}
        _ = stop.wait_for(|s| *s) => interrupted = true,
    }
    drop(init);
    if let Some(e) = init_failed {
        notes.push(format!(
            "opening the app pools' min_size connections failed: {e}"
        ));
    }

    // the run proper starts once the pools are open
    let start = Instant::now();
    let ctx = Arc::new(Ctx {
        db,
        sc: sc.clone(),
        txs: txs.to_vec(),
        pools,
        instances,
        tally: Mutex::new(Tally::new(start)),
        counters: counters.clone(),
        stopping: AtomicBool::new(false),
        rr: AtomicU32::new(u32::MAX),
        orphans: Mutex::new(Vec::new()),
        start,
        seed: sc.seed,
        rep,
        // (a thread that cannot be started leaves the users on tokio's timer)
        timer: if D::REAL_TIME {
            PreciseTimer::new().ok()
        } else {
            None
        },
    });

    let mut tasks = JoinSet::new();
    for per in &ctx.pools {
        for p in per {
            let max = sc.pools[p.spec].max_inactive.map(dur);
            if let (Some(pool), Some(max)) = (&p.pool, max) {
                let pool = pool.clone();
                tasks.spawn(async move {
                    loop {
                        sleep(Duration::from_secs(1)).await;
                        drop(pool.retain(|c, _| c.released_at.elapsed() <= max));
                    }
                });
            }
        }
    }
    if !interrupted {
        match &sc.clients.load {
            Load::Closed { schedule, think } => {
                let max = sc.clients.load.max_users();
                for u in 0..max {
                    tasks.spawn(user(ctx.clone(), u, think.clone(), schedule.clone()));
                }
            }
            Load::Open { schedule } => {
                tasks.spawn(arrivals(ctx.clone(), schedule.clone()));
            }
        }
    }

    let open_window = |ctx: &Ctx<D>| {
        let now = Instant::now();
        let mut t = ctx.lock();
        let at = t.at(now);
        t.measuring = true;
        t.window_start = now;
        t.app_busy.restart(at);
        ctx.counters.measuring.store(true, Ordering::Relaxed);
    };
    if !interrupted {
        if sc.run.warmup.is_zero() {
            open_window(&ctx);
        } else {
            tokio::select! {
                _ = sleep_until(start + dur(sc.run.warmup)) => open_window(&ctx),
                _ = stop.wait_for(|s| *s) => interrupted = true,
            }
        }
    }
    let measuring = !interrupted;
    if measuring {
        let _ = phase.send(Phase::Measuring);
        tokio::select! {
            _ = sleep_until(start + dur(sc.run.duration)) => {}
            _ = stop.wait_for(|s| *s) => interrupted = true,
        }
    }

    // close the window, then stop everything
    ctx.stopping.store(true, Ordering::Relaxed);
    ctx.counters.measuring.store(false, Ordering::Relaxed);
    let end = Instant::now();
    let (values, window, errors) = {
        let mut t = ctx.lock();
        t.measuring = false;
        let window = end.saturating_duration_since(t.window_start);
        if measuring {
            t.overdue_timeouts(end);
        }
        let values = measuring.then(|| window_values(&mut t, &ctx, end, window));
        (values, window, std::mem::take(&mut t.errors))
    };
    let _ = phase.send(Phase::Done);
    tasks.shutdown().await;
    for h in ctx
        .orphans
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        h.abort();
    }
    for per in &ctx.pools {
        for p in per {
            if let Some(pool) = &p.pool {
                pool.close();
            }
        }
    }
    // aborted tasks drop their connections; wait until every one is closed
    let deadline = Instant::now() + CLOSE_GRACE;
    while counters.live.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        sleep(Duration::from_millis(10)).await;
    }
    let left = counters.live.load(Ordering::Acquire);
    if left > 0 {
        notes.push(format!(
            "{left} app connection(s) still open {} s after the run",
            CLOSE_GRACE.as_secs()
        ));
    }
    RunOutput {
        values,
        window,
        interrupted,
        errors,
        notes,
        opened_bouncer: counters.opened_bouncer.load(Ordering::Relaxed),
        opened_direct: counters.opened_direct.load(Ordering::Relaxed),
    }
}

/// The app-side metrics of the window, like the simulator's `record`.
fn window_values<D: Db>(t: &mut Tally, ctx: &Ctx<D>, end: Instant, window: Duration) -> Vec<f64> {
    let now = t.at(end);
    let window_s = window.as_secs_f64().max(1e-9);
    let mut v = vec![0.0; METRIC_NAMES.len()];
    let set = |v: &mut Vec<f64>, name: &str, x: f64| v[metric_index(name)] = x;
    let failed: u64 = t.failures.iter().sum::<u64>() + t.other_failures;
    let c = &ctx.counters;
    set(
        &mut v,
        "pool_exhaustion_per_s",
        c.exhaustion.load(Ordering::Relaxed) as f64 / window_s,
    );
    let cap: f64 = ctx
        .sc
        .pools
        .iter()
        .filter(|p| p.max_size != u32::MAX)
        .map(|p| p.max_size as f64)
        .sum::<f64>()
        * ctx.sc.app.instances as f64;
    if cap > 0.0 {
        set(&mut v, "app_pool_utilization", t.app_busy.mean(now) / cap);
    }
    let opened = c.opened_bouncer.load(Ordering::Relaxed) + c.opened_direct.load(Ordering::Relaxed);
    set(&mut v, "connections_opened_per_s", opened as f64 / window_s);
    // requests still in flight count for their part of the window
    let ws = t.at(t.window_start).0;
    let partial: f64 = t
        .in_flight
        .iter()
        .map(|(&t0, &n)| now.0.saturating_sub(t0.max(ws)) as f64 * n as f64)
        .sum();
    crate::sim::metrics::Outcomes {
        window_s,
        completed: t.completed,
        tx_completed: t.tx_completed,
        failures: &t.failures,
        other_failures: t.other_failures,
        latency: &t.latency,
        acquire_wait: &t.acquire_wait,
        in_system_mean: (t.in_system_area_ns + partial) / (window_s * 1e9),
        sojourn_n: t.sojourn_n,
        sojourn_ns: t.sojourn_ns,
    }
    .write(&mut v);
    set(
        &mut v,
        "requests_issued",
        c.issued.load(Ordering::Relaxed) as f64,
    );
    set(&mut v, "requests_completed", t.completed as f64);
    set(&mut v, "requests_failed", failed as f64);
    v
}

#[cfg(test)]
mod tests;
