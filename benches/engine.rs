//! Engine benchmark: poolsim's full model on a plain M/M/c scenario and on the guide scenario,
//! beside a minimal hand-written M/M/c event loop as the yardstick (same generator, same kind of
//! event queue). Prints events/s and simulated requests/s per core, the ratio to the yardstick,
//! and peak memory for two simulated durations (it must not grow with the duration).
//!
//! `cargo bench --bench engine` (add `-- quick` for a short run). Single-threaded by design: it
//! measures one core. Times are the best of several alternating repetitions (the machine is noisy).

use poolsim::experiment::load::{load_experiment, parse_file};
use poolsim::experiment::{validate, Scenario};
use poolsim::rng::{stream, Stream};
use rand_distr::{Distribution, Exp1};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::path::Path;
use std::time::Instant;

/// The yardstick: M/M/c with FIFO queue, events in a binary heap ordered by (time, seq).
fn yardstick(lambda: f64, mu: f64, c: usize, customers: u64) -> (u64, u64) {
    let mut arr = stream(1, 0, Stream::Arrivals);
    let mut svc = stream(1, 0, Stream::StatementWait);
    let mut heap: BinaryHeap<Reverse<(u64, u64, u8)>> = BinaryHeap::with_capacity(1024);
    let mut seq = 0u64;
    let mut busy = 0usize;
    let mut queue: VecDeque<u64> = VecDeque::with_capacity(1024);
    let ns = |x: f64| (x * 1e9) as u64;
    heap.push(Reverse((0, seq, 0)));
    let (mut done, mut events, mut wait_sum) = (0u64, 0u64, 0u64);
    while let Some(Reverse((t, _, kind))) = heap.pop() {
        events += 1;
        if kind == 0 {
            let e: f64 = Exp1.sample(&mut arr);
            seq += 1;
            heap.push(Reverse((t + ns(e / lambda), seq, 0)));
            if busy < c {
                busy += 1;
                let s: f64 = Exp1.sample(&mut svc);
                seq += 1;
                heap.push(Reverse((t + ns(s / mu), seq, 1)));
            } else {
                queue.push_back(t);
            }
        } else {
            done += 1;
            if done >= customers {
                break;
            }
            if let Some(t0) = queue.pop_front() {
                wait_sum += t - t0;
                let s: f64 = Exp1.sample(&mut svc);
                seq += 1;
                heap.push(Reverse((t + ns(s / mu), seq, 1)));
            } else {
                busy -= 1;
            }
        }
    }
    std::hint::black_box(wait_sum);
    (done, events)
}

fn mmc_scenario(duration_s: f64) -> Scenario {
    let doc = serde_json::json!({
        "name": "mmc", "seed": 1,
        "run": {"duration_s": duration_s, "warmup_s": 0, "replications": 1},
        "clients": {"mode": "open", "rate_per_s": 3000},
        "workload": {"transactions": [{"name": "q", "statement_wait": {"exp": {"mean_ms": 10}}}]},
        "app": {"pools": {"primary": {"target": "primary", "min_size": 35, "max_size": 35, "reset_query": false,
            "max_queries": 0, "max_inactive_connection_lifetime_s": 0}}},
        "postgres": {"max_connections": 1000, "cores": 0},
        "network": {"app_bouncer_rtt_ms": 0, "bouncer_postgres_rtt_ms": 0, "app_postgres_rtt_ms": 0}
    });
    let (mut f, p) = parse_file(&doc);
    assert!(p.is_empty());
    validate(&mut f).expect("valid").0
}

fn guide_scenario(duration_s: f64) -> Scenario {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let overrides = vec![
        ("run.duration_s".to_string(), serde_json::json!(duration_s)),
        ("run.warmup_s".to_string(), serde_json::json!(1)),
    ];
    let loaded = load_experiment(&root.join("experiments/10k.json"), &overrides).expect("loads");
    let (mut f, p) = parse_file(&loaded.doc);
    assert!(p.is_empty());
    validate(&mut f).expect("valid").0
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|x| x.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // child mode: one run, print peak memory
    if let Some(i) = args.iter().position(|a| a == "--mem-probe") {
        let d: f64 = args[i + 1].parse().unwrap();
        let rec = poolsim::sim::run(&guide_scenario(d), 0);
        println!("{} {}", peak_rss_kib(), rec.events);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        println!("engine: bench");
        return;
    }
    let quick = args.iter().any(|a| a == "quick");
    let scale = if quick { 0.2 } else { 1.0 };

    // yardstick and poolsim on the same M/M/c (λ = 3000/s, μ = 100/s, c = 35)
    let duration = 200.0 * scale;
    let customers = (3000.0 * duration) as u64;
    // best of 5, alternating, so both see the same machine conditions
    let sc = mmc_scenario(duration);
    let (mut y_s, mut p_s) = (f64::MAX, f64::MAX);
    let (mut done, mut y_events) = (0, 0);
    let mut rec = None;
    for _ in 0..5 {
        let t = Instant::now();
        (done, y_events) = yardstick(3000.0, 100.0, 35, customers);
        y_s = y_s.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        rec = Some(poolsim::sim::run(&sc, 0));
        p_s = p_s.min(t.elapsed().as_secs_f64());
    }
    let rec = rec.expect("ran");
    let p_done = rec.get("requests_completed");
    println!("M/M/c λ=3000/s μ=100/s c=35, {duration} s simulated");
    println!(
        "  yardstick: {:>12.0} customers/s  {:>12.0} events/s  ({done} customers in {y_s:.3} s)",
        done as f64 / y_s,
        y_events as f64 / y_s
    );
    println!("  poolsim:   {:>12.0} requests/s   {:>12.0} events/s  ({p_done:.0} requests in {p_s:.3} s)", p_done / p_s, rec.events as f64 / p_s);
    println!(
        "  ratio (poolsim / yardstick, customers per second): {:.2}",
        (p_done / p_s) / (done as f64 / y_s)
    );

    // the guide scenario: 10,000 users, 5 instances, PgBouncer, 2 replicas
    let g_duration = 30.0 * scale;
    let sc = guide_scenario(g_duration);
    let mut g_s = f64::MAX;
    let mut rec = None;
    for _ in 0..3 {
        let t = Instant::now();
        rec = Some(poolsim::sim::run(&sc, 0));
        g_s = g_s.min(t.elapsed().as_secs_f64());
    }
    let rec = rec.expect("ran");
    let issued = rec.get("requests_completed") + rec.get("requests_failed");
    println!("guide 10k base scenario, {g_duration} s simulated");
    println!(
        "  poolsim:   {:>12.0} requests/s   {:>12.0} events/s  ({:.0} events/request)",
        issued / g_s,
        rec.events as f64 / g_s,
        rec.events as f64 / issued.max(1.0)
    );

    // peak memory must not depend on the simulated duration
    let exe = std::env::current_exe().unwrap();
    for d in [10.0 * scale.max(0.5), 100.0 * scale.max(0.5)] {
        let out = std::process::Command::new(&exe)
            .args(["--mem-probe", &d.to_string()])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        let mut it = s.split_whitespace();
        let kib: u64 = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        let ev: u64 = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        println!(
            "  peak memory, guide scenario, {d:>5} s simulated: {:>7.1} MiB ({ev} events)",
            kib as f64 / 1024.0
        );
    }
}
