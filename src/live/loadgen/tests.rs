//! The load generator against a fake database, in paused tokio time: every duration is exact,
//! so throughput, latency and Little's law can be checked against arithmetic.

use super::*;
use crate::experiment::load::parse_file;
use crate::experiment::validate;
use crate::live::sql::compile;
use serde_json::json;

/// A database whose statements take the time their `pg_sleep(seconds)` says (others: none),
/// whose connections take `connect` to open, and which can stall or drop connections during
/// intervals measured from its creation.
struct Fake {
    base: Instant,
    connect: Duration,
    /// Statements that arrive in this interval finish at its end (on top of their own time).
    stall: Option<(Duration, Duration)>,
    /// Statements that arrive in this interval fail with a lost connection.
    outage: Option<(Duration, Duration)>,
    live: Arc<AtomicI64>,
    connects: AtomicU64,
    statements: AtomicU64,
    cancels: AtomicU64,
}

struct FakeConn {
    closed: bool,
    live: Arc<AtomicI64>,
}

impl Drop for FakeConn {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Fake {
    fn new() -> Fake {
        Fake {
            base: Instant::now(),
            connect: Duration::from_millis(5),
            stall: None,
            outage: None,
            live: Arc::new(AtomicI64::new(0)),
            connects: AtomicU64::new(0),
            statements: AtomicU64::new(0),
            cancels: AtomicU64::new(0),
        }
    }
    fn within(&self, w: Option<(Duration, Duration)>) -> Option<Instant> {
        let (a, b) = w?;
        let now = Instant::now();
        (now >= self.base + a && now < self.base + b).then_some(self.base + b)
    }
}

fn sleep_of(sql: &str) -> Duration {
    match sql.find("pg_sleep(") {
        Some(i) => {
            let rest = &sql[i + 9..];
            let end = rest.find(')').unwrap();
            Duration::from_secs_f64(rest[..end].parse().unwrap())
        }
        None => Duration::ZERO,
    }
}

impl Db for Fake {
    const REAL_TIME: bool = false;
    type Conn = FakeConn;

    async fn connect(&self, _target: Target) -> Result<FakeConn, DbError> {
        sleep(self.connect).await;
        if self.within(self.outage).is_some() {
            return Err(DbError {
                cause: Some(Cause::ConnectRefused),
                message: "connection refused".into(),
            });
        }
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_add(1, Ordering::AcqRel);
        Ok(FakeConn {
            closed: false,
            live: self.live.clone(),
        })
    }

    async fn execute(&self, conn: &mut FakeConn, sql: &str) -> Result<(), DbError> {
        if conn.closed {
            return Err(DbError {
                cause: Some(Cause::ConnectionLost),
                message: "connection closed".into(),
            });
        }
        if self.within(self.outage).is_some() {
            conn.closed = true;
            return Err(DbError {
                cause: Some(Cause::ConnectionLost),
                message: "FATAL 57P01: terminating connection due to administrator command".into(),
            });
        }
        if let Some(end) = self.within(self.stall) {
            sleep_until(end).await;
        }
        sleep(sleep_of(sql)).await;
        self.statements.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn is_closed(&self, conn: &FakeConn) -> bool {
        conn.closed
    }

    async fn cancel(&self, _conn: &FakeConn) {
        self.cancels.fetch_add(1, Ordering::Relaxed);
    }
}

fn scenario(doc: serde_json::Value) -> (Scenario, Vec<LiveTx>) {
    let (mut f, structural) = parse_file(&doc);
    assert!(structural.is_empty(), "{structural:?}");
    let (sc, _) = validate(&mut f).unwrap_or_else(|e| panic!("{e}"));
    let txs = compile(&f).unwrap();
    (sc, txs)
}

fn base(users: u32, pool_max: u32, sleep_s: f64) -> serde_json::Value {
    json!({
        "seed": 3,
        "run": {"duration_s": 10, "warmup_s": 1, "replications": 1},
        "clients": {"mode": "closed", "users": users, "think_time": {"const_ms": 0}},
        "workload": {"transactions": [{"name": "q", "sql": [format!("SELECT pg_sleep({sleep_s})")]}]},
        "app": {"instances": 1, "pools": {"primary": {"target": "primary", "min_size": 0,
                 "max_size": pool_max, "reset_query": false}}}
    })
}

async fn go(db: Arc<Fake>, doc: serde_json::Value) -> RunOutput {
    let (sc, txs) = scenario(doc);
    let (_stop_tx, stop) = watch::channel(false);
    let (phase, _) = watch::channel(Phase::Starting);
    run(db, &sc, &txs, 0, stop, &phase).await
}

fn m(out: &RunOutput, name: &str) -> f64 {
    out.values.as_ref().expect("measured")[metric_index(name)]
}

#[tokio::test(start_paused = true)]
async fn closed_loop_matches_arithmetic() {
    let db = Arc::new(Fake::new());
    let out = go(db.clone(), base(4, 2, 0.010)).await;
    // 2 connections × 100 statements/s; each of 4 users waits for one other request
    let x = m(&out, "throughput_rps");
    assert!((x - 200.0).abs() <= 2.0, "throughput {x}");
    assert!((m(&out, "tx_throughput_tps") - x).abs() < 1e-9);
    let p50 = m(&out, "latency_p50_ms");
    assert!((p50 - 20.0).abs() < 0.5, "p50 {p50}");
    assert!((m(&out, "in_system_mean") - 4.0).abs() < 1e-6);
    assert!(m(&out, "littles_law_residual") < 0.01);
    assert!(m(&out, "app_pool_utilization") > 0.99);
    assert!(m(&out, "pool_exhaustion_per_s") > 150.0);
    let aw = m(&out, "acquire_wait_p95_ms");
    assert!((aw - 10.0).abs() < 0.5, "acquire wait p95 {aw}");
    assert_eq!(m(&out, "failure_rate"), 0.0);
    assert_eq!(db.connects.load(Ordering::Relaxed), 2);
    assert_eq!(db.live.load(Ordering::Relaxed), 0, "connections left open");
    assert!((out.window.as_secs_f64() - 9.0).abs() < 1e-6);
}

#[tokio::test(start_paused = true)]
async fn acquire_timeouts_are_counted() {
    let db = Arc::new(Fake::new());
    let mut doc = base(3, 1, 0.100);
    doc["app"]["pools"]["primary"]["acquire_timeout_ms"] = json!(150);
    let out = go(db.clone(), doc).await;
    let f = m(&out, "failure_rate");
    assert!(f > 0.1, "failure rate {f}");
    assert!((m(&out, "acquire_timeout_rate") - f).abs() < 1e-12);
    assert!(out.errors["acquire_timeout"].1.contains("150 ms"));
    assert_eq!(db.live.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn max_queries_rotates_connections() {
    let db = Arc::new(Fake::new());
    let mut doc = base(1, 1, 0.010);
    doc["run"] = json!({"duration_s": 2, "warmup_s": 0, "replications": 1});
    doc["app"]["pools"]["primary"]["max_queries"] = json!(10);
    doc["app"]["pools"]["primary"]["reset_query"] = json!(true);
    doc["app"]["pools"]["primary"]["min_size"] = json!(1);
    let out = go(db.clone(), doc).await;
    // statement + reset query = 2 queries per transaction: a new connection every 5
    let txs = m(&out, "requests_completed");
    let opened = out.opened_direct as f64;
    assert!(
        (opened - txs / 5.0).abs() <= 1.5,
        "{opened} connections for {txs} transactions"
    );
    // each cycle of 5 pays one connect inside acquire
    assert!((txs - 2000.0 / 55.0 * 5.0).abs() < 6.0, "{txs}");
}

#[tokio::test(start_paused = true)]
async fn open_loop_counts_latency_from_the_intended_start() {
    let mut fake = Fake::new();
    fake.stall = Some((Duration::from_secs(4), Duration::from_secs(5)));
    let db = Arc::new(fake);
    let mut doc = base(0, 10, 0.001);
    doc["clients"] = json!({"mode": "open", "rate_per_s": 100});
    let out = go(db.clone(), doc).await;
    let x = m(&out, "throughput_rps");
    assert!((x - 100.0).abs() < 15.0, "throughput {x}");
    // requests meant to start during the one-second stall wait for its end
    let max = m(&out, "latency_max_ms");
    assert!(max > 900.0 && max < 1100.0, "max {max}");
    assert!(m(&out, "latency_p95_ms") > 200.0);
    assert!(m(&out, "littles_law_residual") < 0.02);
    assert_eq!(db.live.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn client_timeouts_leave_orphans_that_still_free_their_connections() {
    let db = Arc::new(Fake::new());
    let mut doc = base(2, 2, 0.100);
    doc["clients"]["request_timeout_ms"] = json!(50);
    let out = go(db.clone(), doc).await;
    assert_eq!(m(&out, "requests_completed"), 0.0);
    assert!((m(&out, "client_timeout_rate") - 1.0).abs() < 1e-12);
    assert_eq!(db.live.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn lost_connections_are_failures_and_the_run_goes_on() {
    let mut fake = Fake::new();
    fake.outage = Some((Duration::from_secs(3), Duration::from_secs(4)));
    let db = Arc::new(fake);
    let out = go(db.clone(), base(4, 2, 0.010)).await;
    let lost = m(&out, "connection_lost_rate") + m(&out, "connect_refused_rate");
    assert!(lost > 0.0);
    assert!((m(&out, "failure_rate") - lost).abs() < 1e-12);
    // recovered after the outage: most of the 9 s window is served
    assert!(m(&out, "throughput_rps") > 150.0);
    assert!(out.errors.contains_key("connection_lost"));
    assert_eq!(db.live.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn command_timeout_cancels_the_statement() {
    let db = Arc::new(Fake::new());
    let mut doc = base(1, 1, 0.200);
    doc["app"]["pools"]["primary"]["command_timeout_ms"] = json!(50);
    let out = go(db.clone(), doc).await;
    assert!((m(&out, "command_timeout_rate") - 1.0).abs() < 1e-12);
    assert!(db.cancels.load(Ordering::Relaxed) > 0);
}

#[tokio::test(start_paused = true)]
async fn stopping_keeps_what_was_measured() {
    let db = Arc::new(Fake::new());
    let (sc, txs) = scenario(base(2, 2, 0.010));
    let (stop_tx, stop) = watch::channel(false);
    let (phase, _) = watch::channel(Phase::Starting);
    let stopper = tokio::spawn(async move {
        sleep(Duration::from_millis(3000)).await;
        stop_tx.send(true).unwrap();
    });
    let out = run(db.clone(), &sc, &txs, 0, stop, &phase).await;
    stopper.await.unwrap();
    assert!(out.interrupted);
    // the pools open in 5 ms, the window at 1 s after that
    assert!(
        (out.window.as_secs_f64() - 1.995).abs() < 0.01,
        "{:?}",
        out.window
    );
    assert!((m(&out, "throughput_rps") - 200.0).abs() < 2.0);
    assert_eq!(db.live.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn transactions_run_as_blocks_with_rollback_on_failure() {
    let db = Arc::new(Fake::new());
    let mut doc = base(1, 1, 0.0);
    doc["run"] = json!({"duration_s": 1, "warmup_s": 0, "replications": 1});
    doc["workload"]["transactions"] = json!([{"name": "w", "sql": [
        "UPDATE t SET v = :v WHERE id = :id", "SELECT pg_sleep(0.001)"],
        "params": {"id": {"uniform": [1, 10]}, "v": {"uniform": [0, 0]}}}]);
    let out = go(db.clone(), doc).await;
    let n = m(&out, "requests_completed");
    // BEGIN, 2 statements, COMMIT: 4 round trips per transaction, one of 1 ms
    assert!((n - 1000.0).abs() < 20.0, "{n}");
    assert!(db.statements.load(Ordering::Relaxed) as f64 >= 4.0 * n);
}

#[tokio::test(flavor = "current_thread")]
async fn the_think_clock_wakes_every_sleeper_at_or_after_its_deadline_in_order() {
    // real time: the OS thread's clock, not tokio's (unpaused)
    let timer = Arc::new(PreciseTimer::new().expect("a clock thread"));
    let t0 = Instant::now();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut set = JoinSet::new();
    // deadlines given out of order, 1 to 8 ms ahead
    for (i, ms) in [5u64, 1, 8, 3].into_iter().enumerate() {
        let (timer, order) = (timer.clone(), order.clone());
        set.spawn(async move {
            let at = t0 + Duration::from_millis(ms);
            timer.sleep_until(at).await;
            assert!(Instant::now() >= at, "sleeper {i} woke before its deadline");
            order.lock().unwrap().push(ms);
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("a sleeper panicked");
    }
    assert_eq!(*order.lock().unwrap(), vec![1, 3, 5, 8]);
    // a deadline already past returns at once
    timer.sleep_until(t0).await;
}

#[test]
fn timeouts_due_in_the_window_count_even_when_the_load_generator_has_not_fired_them() {
    // a load generator that fell behind (the host's CPUs saturated): at the window's end, the
    // requests whose client deadline passed inside it are its timeouts; those due before the
    // window or after its end are not
    let start = Instant::now();
    let mut t = Tally::new(start);
    t.window_start = start + Duration::from_secs(1);
    let end = start + Duration::from_secs(3);
    for (ms, n) in [(500, 4u32), (1_000, 1), (2_000, 3), (3_000, 2), (3_001, 7)] {
        let key = t.at(start + Duration::from_millis(ms)).0;
        t.deadlines.insert(key, n);
    }
    t.completed = 10;
    assert_eq!(t.overdue_timeouts(end), 6);
    assert_eq!(t.failures[Cause::ClientTimeout as usize], 6);
    assert_eq!(t.sojourn_n, 6);
    assert_eq!(t.errors[Cause::ClientTimeout.name()].0, 6);
    // nothing due: nothing counted
    let mut idle = Tally::new(start);
    assert_eq!(idle.overdue_timeouts(end), 0);
    assert!(idle.errors.is_empty());
}
