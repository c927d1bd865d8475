//! Each component on a hand-worked sequence of events (traced runs).

use crate::common::{bouncer_base, ms, scenario};
use poolsim::sim::{run_traced, Cause, RunRecord, Trace};
use serde_json::{json, Value};

const JANITOR_NS: u64 = 333_333_000;

#[test]
fn reserve_pool_opens_at_the_first_loop_after_the_head_waiter_passes_the_timeout() {
    // pool_size 1 + reserve 1, reserve_pool_timeout 2 s: client A gets the only server (10 s
    // statement), client B waits from t = 0. Nothing else wakes PgBouncer, so the next loop
    // iteration after B has waited 2 s is the 7th janitor tick (6 ticks = 1.999998 s < 2 s).
    let sc =
        bouncer_base(json!({"pgbouncer": {"reserve_pool_size": 1, "reserve_pool_timeout_s": 2}}));
    let (_, trace) = run_traced(&sc, 0);
    let logins: Vec<(u64, bool)> = trace
        .iter()
        .filter_map(|e| match e {
            Trace::ServerLogin { t, reserve, .. } => Some((t.0, *reserve)),
            _ => None,
        })
        .collect();
    assert_eq!(
        logins[0],
        (0, false),
        "the first waiter triggers a normal login at once"
    );
    let reserve: Vec<u64> = logins.iter().filter(|l| l.1).map(|l| l.0).collect();
    assert_eq!(
        reserve[0],
        7 * JANITOR_NS,
        "reserve login not at the first tick past 2 s: {logins:?}"
    );
    assert!(logins.iter().filter(|l| l.1).all(|l| l.0 >= 2_000_000_000));
    // B is served by the reserve server as soon as it is ready (login = 1 ms)
    let b_linked = trace.iter().find_map(|e| match e {
        Trace::ServerLinked { t, .. } if t.0 > ms(1) => Some(t.0),
        _ => None,
    });
    assert_eq!(b_linked, Some(7 * JANITOR_NS + ms(1)));
}

#[test]
fn reserve_pool_does_not_open_before_the_timeout() {
    let sc = bouncer_base(json!({
        "run": {"duration_s": 1.9},
        "pgbouncer": {"reserve_pool_size": 5, "reserve_pool_timeout_s": 2}
    }));
    let (rec, trace) = run_traced(&sc, 0);
    assert!(!trace
        .iter()
        .any(|e| matches!(e, Trace::ServerLogin { reserve: true, .. })));
    assert_eq!(rec.get("reserve_opened"), 0.0);
}

#[test]
fn the_client_beyond_max_client_conn_is_rejected_not_queued() {
    // max_client_conn 3; five app connections are opened at t = 0: the 4th and 5th are refused
    // at their startup packet (one round trip: 2 ms), and their requests fail at once.
    let sc = bouncer_base(json!({
        "run": {"duration_s": 0.05},
        "clients": {"users": 5},
        "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 100}}]},
        "app": {"pools": {"primary": {"min_size": 0, "max_size": 5}}},
        "pgbouncer": {"max_client_conn": 3, "default_pool_size": 5},
        "network": {"app_bouncer_rtt_ms": 1}
    }));
    let (rec, trace) = run_traced(&sc, 0);
    let refused: Vec<(u64, Cause)> = trace
        .iter()
        .filter_map(|e| match e {
            Trace::ConnectRefused { t, cause, .. } => Some((t.0, *cause)),
            _ => None,
        })
        .collect();
    assert!(refused.len() >= 2, "{refused:?}");
    assert_eq!(
        &refused[..2],
        &[(ms(2), Cause::MaxClientConn), (ms(2), Cause::MaxClientConn)]
    );
    let failed_at_2ms = trace
        .iter()
        .filter(|e| matches!(e, Trace::RequestEnded { t, ok: false } if t.0 == ms(2)))
        .count();
    assert_eq!(
        failed_at_2ms, 2,
        "rejected requests fail immediately, they do not wait"
    );
    assert!(rec.get("max_client_conn_rate") > 0.0);
}

#[test]
fn transaction_mode_holds_the_server_across_the_gaps_of_a_transaction() {
    // BEGIN; s1; (gap 5 ms) s2; (gap 5 ms) s3 COMMIT, each statement 1 ms at the server:
    // linked at the first statement, released once, 13 ms later.
    let sc = bouncer_base(json!({
        "run": {"duration_s": 0.1},
        "clients": {"users": 1},
        "workload": {"transactions": [{"name": "q", "statements": 3, "gap": {"const_ms": 5},
            "statement_wait": {"const_ms": 1}}]},
        "app": {"pools": {"primary": {"min_size": 1, "max_size": 1}}}
    }));
    let (_, trace) = run_traced(&sc, 0);
    let links: Vec<u64> = trace
        .iter()
        .filter_map(|e| match e {
            Trace::ServerLinked { t, .. } => Some(t.0),
            _ => None,
        })
        .collect();
    let releases: Vec<u64> = trace
        .iter()
        .filter_map(|e| match e {
            Trace::ServerReleased { t, .. } => Some(t.0),
            _ => None,
        })
        .collect();
    assert_eq!(links[0], ms(1), "linked when the login (1 ms) completes");
    assert_eq!(releases[0] - links[0], ms(13));
    // one link per transaction: as many links as releases (± the one in progress)
    assert!(links.len() - releases.len() <= 1);
    for w in links.windows(2) {
        assert_eq!(
            w[1] - w[0],
            ms(13),
            "each transaction holds the server 13 ms"
        );
    }
}

#[test]
fn session_mode_holds_the_server_until_the_client_disconnects() {
    // session mode, max_queries 3: the app connection closes after its 3rd query; only then is
    // the server released (and reset before its next use).
    let sc = bouncer_base(json!({
        "run": {"duration_s": 0.05},
        "clients": {"users": 1},
        "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 1}}]},
        "app": {"pools": {"primary": {"min_size": 1, "max_size": 1, "max_queries": 3}}},
        "pgbouncer": {"pool_mode": "session"},
        "network": {"bouncer_postgres_rtt_ms": 0.2}
    }));
    let (_, trace) = run_traced(&sc, 0);
    let mut ended_while_linked = 0;
    let mut linked = false;
    let mut sessions = Vec::new();
    for e in &trace {
        match e {
            Trace::ServerLinked { .. } => {
                assert!(!linked, "a session client links once");
                linked = true;
                ended_while_linked = 0;
            }
            Trace::RequestEnded { ok: true, .. } if linked => ended_while_linked += 1,
            Trace::ServerReleased { .. } => {
                linked = false;
                sessions.push(ended_while_linked);
            }
            _ => {}
        }
    }
    assert!(sessions.len() >= 2, "{trace:?}");
    // the release happens at the disconnect, during the 3rd request (before it ends)
    assert!(
        sessions.iter().all(|&n| n == 2),
        "requests completed per session: {sessions:?}"
    );
    let closes = trace
        .iter()
        .filter(|e| matches!(e, Trace::AppConnClosed { .. }))
        .count();
    assert!(closes >= sessions.len());
}

#[test]
fn max_queries_makes_the_next_acquirer_reconnect() {
    // direct pool of 1 to PostgreSQL, max_queries 2, backend start 3 ms, 1 ms statements:
    // every second request closes the connection and the next one pays the 3 ms connect.
    let sc = scenario(json!({
        "run": {"duration_s": 0.1, "warmup_s": 0, "replications": 1},
        "clients": {"users": 1, "think_time": {"const_ms": 0}},
        "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 1}}]},
        "app": {"pools": {"primary": {"target": "primary", "min_size": 1, "max_size": 1, "max_queries": 2,
            "reset_query": false, "max_inactive_connection_lifetime_s": 0}}},
        "postgres": {"cores": 0, "backend_start": {"const_ms": 3}},
        "network": {"app_postgres_rtt_ms": 0}
    }));
    let (rec, trace) = run_traced(&sc, 0);
    let mut last_close = None;
    let mut reconnects = 0;
    for e in &trace {
        match e {
            Trace::AppConnClosed { t, .. } => last_close = Some(t.0),
            Trace::AppConnect { t, .. } => {
                assert_eq!(
                    Some(t.0),
                    last_close,
                    "reconnect at once, by the next acquirer"
                );
                reconnects += 1;
            }
            _ => {}
        }
    }
    // cycle: 2 requests of 1 ms, then 3 ms of connect in the next acquire = 5 ms per 2 requests
    assert!(reconnects >= 15, "{reconnects}");
    let ends: Vec<u64> = trace
        .iter()
        .filter_map(|e| match e {
            Trace::RequestEnded { t, .. } => Some(t.0),
            _ => None,
        })
        .collect();
    assert_eq!(&ends[..4], &[ms(1), ms(2), ms(6), ms(7)]);
    assert!((rec.get("acquire_wait_p99_ms") - 3.0).abs() < 0.01);
}

#[test]
fn one_login_in_flight_makes_pool_growth_serial() {
    // ten clients arrive together; each login takes 5 ms; logins start one after the other
    let sc = bouncer_base(json!({
        "run": {"duration_s": 0.2},
        "clients": {"users": 10},
        "app": {"pools": {"primary": {"min_size": 10, "max_size": 10}}},
        "pgbouncer": {"default_pool_size": 10},
        "postgres": {"backend_start": {"const_ms": 5}}
    }));
    let (_, trace) = run_traced(&sc, 0);
    let logins: Vec<u64> = trace
        .iter()
        .filter_map(|e| match e {
            Trace::ServerLogin { t, .. } => Some(t.0),
            _ => None,
        })
        .collect();
    let expected: Vec<u64> = (0..10).map(|k| k * ms(5)).collect();
    assert_eq!(logins, expected);
}

#[test]
fn query_wait_timeout_drops_the_waiting_client_on_a_janitor_tick() {
    // one server busy for 200 s; the second client has waited more than 5 s (strict >) at the
    // 16th tick (5.333328 s); it is disconnected with query_wait_timeout.
    let sc = bouncer_base(json!({
        "run": {"duration_s": 8},
        "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 200000}}]},
        "pgbouncer": {"query_wait_timeout_s": 5}
    }));
    let (rec, trace) = run_traced(&sc, 0);
    let first_fail = trace.iter().find_map(|e| match e {
        Trace::RequestEnded { t, ok: false } => Some(t.0),
        _ => None,
    });
    assert_eq!(first_fail, Some(16 * JANITOR_NS));
    assert!(rec.get("query_wait_timeout_rate") > 0.0);
}

#[test]
fn statement_mode_refuses_transaction_blocks() {
    let sc = bouncer_base(json!({
        "run": {"duration_s": 0.5},
        "clients": {"users": 1},
        "workload": {"transactions": [{"name": "q", "statements": 2, "statement_wait": {"const_ms": 1}}]},
        "app": {"pools": {"primary": {"min_size": 1, "max_size": 1}}},
        "pgbouncer": {"pool_mode": "statement"},
        "network": {"app_bouncer_rtt_ms": 0.1}
    }));
    let (rec, _) = run_traced(&sc, 0);
    assert_eq!(rec.get("throughput_rps"), 0.0);
    assert!((rec.get("statement_mode_transaction_rate") - 1.0).abs() < 1e-12);
}

#[test]
fn postgres_refuses_connections_beyond_max_connections_minus_reserved() {
    // usable = 5 − 3 = 2: of 5 direct connections opened at once, 3 fail with 53300
    let sc = scenario(json!({
        "run": {"duration_s": 0.01, "warmup_s": 0, "replications": 1},
        "clients": {"users": 5, "think_time": {"const_ms": 0}},
        "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 50}}]},
        "app": {"pools": {"primary": {"target": "primary", "min_size": 0, "max_size": 5, "reset_query": false}}},
        "postgres": {"max_connections": 5, "superuser_reserved_connections": 3, "cores": 0,
            "backend_start": {"const_ms": 1}},
        "network": {"app_postgres_rtt_ms": 4}
    }));
    let (rec, trace) = run_traced(&sc, 0);
    // refused after one round trip (4 ms at t = 8 ms counting the handshake); the run ends at 10 ms
    let refused: Vec<u64> = trace
        .iter()
        .filter_map(|e| match e {
            Trace::ConnectRefused {
                t,
                cause: Cause::MaxConnections,
                ..
            } => Some(t.0),
            _ => None,
        })
        .collect();
    assert_eq!(refused, vec![ms(8); 3]);
    assert_eq!(rec.get("postgres_peak_connections"), 2.0);
}

#[test]
fn a_request_that_finds_the_host_asleep_pays_the_wakeup() {
    // one user, 1 ms of CPU per statement on one core, 0.5 ms wake-up after 1 ms of idle CPU
    let base = json!({
        "run": {"duration_s": 2, "warmup_s": 0.1, "replications": 1},
        "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 0},
                                       "statement_cpu": {"const_ms": 1}}]},
        "postgres": {"cores": 1},
        "network": {"wakeup": {"const_ms": 0.5}, "wakeup_after_ms": 1}
    });
    let with = |think_ms: f64| {
        let mut over = base.clone();
        over["clients"] = json!({"users": 1, "think_time": {"const_ms": think_ms}});
        let (rec, _) = run_traced(&bouncer_base(over), 0);
        rec.get("latency_mean_ms")
    };
    // back to back the CPU never idles for 1 ms: no wake-up
    let hot = with(0.0);
    // (means come from the latency histogram: 3 significant digits)
    assert!((hot - 1.0).abs() < 1e-3, "{hot}");
    // 0.9 ms of think time: idle, but not for long enough
    let short = with(0.9);
    assert!((short - 1.0).abs() < 1e-3, "{short}");
    // 5 ms of think time: every request finds the host asleep
    let asleep = with(5.0);
    assert!((asleep - 1.5).abs() < 1.5e-3, "{asleep}");
}

#[test]
fn a_transaction_type_with_its_own_wakeup_pays_that_one() {
    // two equally likely types of 1 ms CPU; `long` finds the host asleep at 2 ms extra, `short`
    // pays the network's 0.5 ms; 5 ms of think time: every request finds the host asleep
    let sc = bouncer_base(json!({
        "run": {"duration_s": 4, "warmup_s": 0.1, "replications": 1},
        "clients": {"users": 1, "think_time": {"const_ms": 5}},
        "workload": {"transactions": [
            {"name": "short", "statement_wait": {"const_ms": 0}, "statement_cpu": {"const_ms": 1}},
            {"name": "long", "statement_wait": {"const_ms": 0}, "statement_cpu": {"const_ms": 1},
             "wakeup": {"const_ms": 2}}]},
        "postgres": {"cores": 1},
        "network": {"wakeup": {"const_ms": 0.5}, "wakeup_after_ms": 1}
    }));
    let (rec, _) = run_traced(&sc, 0);
    // the latencies are 1.5 ms and 3 ms, half each: P50 at the lower, P95 at the upper
    let (p50, p95) = (rec.get("latency_p50_ms"), rec.get("latency_p95_ms"));
    assert!((p50 - 1.5).abs() < 2e-3, "{p50}");
    assert!((p95 - 3.0).abs() < 4e-3, "{p95}");
    let mean = rec.get("latency_mean_ms");
    assert!((mean - 2.25).abs() < 0.1, "{mean}");
}

#[test]
fn a_wakeup_grows_with_the_idle_time_by_its_points() {
    // one user, 1 ms of CPU per statement on one core, a 1 ms wake-up after ≥ 1 ms of idle host,
    // × 1 up to 2 ms of idle, × 3 from 10 ms, linear in between
    let with = |think_ms: f64| {
        let sc = bouncer_base(json!({
            "run": {"duration_s": 4, "warmup_s": 0.2, "replications": 1},
            "clients": {"users": 1, "think_time": {"const_ms": think_ms}},
            "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 0},
                "statement_cpu": {"const_ms": 1}, "wakeup": {"const_ms": 1},
                "wakeup_by_idle": [[2, 1], [10, 3]]}]},
            "postgres": {"cores": 1},
            "network": {"wakeup_after_ms": 1}
        }));
        run_traced(&sc, 0).0.get("latency_mean_ms")
    };
    // (means come from the latency histogram: 3 significant digits)
    let close = |x: f64, want: f64| (x - want).abs() < 2e-3 * want;
    // below the first point: its factor
    let short = with(1.5);
    assert!(close(short, 2.0), "{short}");
    // 6 ms of idle: halfway, × 2
    let mid = with(6.0);
    assert!(close(mid, 3.0), "{mid}");
    // beyond the last point: its factor
    let long = with(20.0);
    assert!(close(long, 4.0), "{long}");
    // back to back the host never idles for 1 ms: no wake-up at all
    let hot = with(0.0);
    assert!(close(hot, 1.0), "{hot}");
}

#[test]
fn a_slow_state_outlasts_the_idle_spell_that_set_it() {
    // Poisson arrivals at 100/s, 1 ms of CPU (and `wait_ms` of waiting) on four cores, eight
    // servers (no queueing), a 1 ms wake-up after ≥ 1 ms of idle host; `memory` keeps the host's recent idle
    // spell for 30 ms (`network.wakeup_memory_ms`)
    let with = |memory: bool, wait_ms: f64| {
        let mut net = json!({"wakeup_after_ms": 1});
        if memory {
            net["wakeup_memory_ms"] = json!(30);
        }
        let sc = bouncer_base(json!({
            "run": {"duration_s": 20, "warmup_s": 0.5, "replications": 1},
            "clients": {"mode": "open", "rate_per_s": 100},
            "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": wait_ms},
                "statement_cpu": {"const_ms": 1}, "wakeup": {"const_ms": 1}}]},
            "app": {"pools": {"primary": {"min_size": 8, "max_size": 8}}},
            "pgbouncer": {"default_pool_size": 8},
            "postgres": {"cores": 4},
            "network": net
        }));
        run_traced(&sc, 0).0
    };
    let base = with(false, 0.0);
    let slow = with(true, 0.0);
    // without memory only a request that finds the host idle for 1 ms pays: at 100/s most do,
    // not all (a tenth arrive within 1 ms of the last statement's end, some while it runs)
    // (the share that pays: the mean beyond the latency without a wake-up)
    let paid_base = base.get("latency_mean_ms") - (slow.get("latency_p50_ms") - 1.0);
    assert!(paid_base > 0.75 && paid_base < 0.95, "{paid_base}");
    // with it every request pays, whether or not it finds the host idle: the slow state lasts
    let (mean, p50) = (slow.get("latency_mean_ms"), slow.get("latency_p50_ms"));
    assert!((mean - p50).abs() < 0.01, "{mean} {p50}");
    // ... and a CPU-bound type pays it on its core: 2 ms of CPU a request instead of 1
    let (u_base, u_slow) = (
        base.get("postgres_cpu_utilization"),
        slow.get("postgres_cpu_utilization"),
    );
    assert!((u_slow / u_base - 2.0).abs() < 0.1, "{u_base} {u_slow}");
    // a type that spends half its service waiting has half its wake-up in the slow state, on
    // its core for every request (1.5 ms of CPU a request), and half in waking the hops, a
    // delay only for a request that finds the host idle, as without memory: 1 ms of waiting
    // more than the CPU-bound type, 0.5 ms of CPU less, 0.5 ms × the share that pays more
    let waiting = with(true, 1.0);
    let u = waiting.get("postgres_cpu_utilization");
    assert!((u / u_base - 1.5).abs() < 0.08, "{u} {u_base}");
    let longer = waiting.get("latency_mean_ms") - mean;
    let want = 1.0 - 0.5 + 0.5 * paid_base;
    assert!((longer - want).abs() < 0.06, "{longer} {want}");
}

#[test]
fn pgbouncer_pays_a_wakeup_when_work_finds_its_thread_idle() {
    // 0.1 ms per query and 0.2 ms per wake-up on PgBouncer's thread
    let run = |users: u32, wait_ms: f64| {
        let sc = bouncer_base(json!({
            "run": {"duration_s": 2, "warmup_s": 0.2, "replications": 1},
            "clients": {"users": users},
            "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": wait_ms},
                                           "statement_cpu": {"const_ms": 0}}]},
            "app": {"pools": {"primary": {"min_size": users, "max_size": users}}},
            "pgbouncer": {"default_pool_size": users, "cpu_per_query": {"const_ms": 0.1},
                          "cpu_per_wakeup": {"const_ms": 0.2}},
            "postgres": {"cores": 0}
        }));
        run_traced(&sc, 0).0
    };
    // one user, 1 ms at the server: every query and every response finds the thread idle,
    // 0.1 + 0.2 + 1 + 0.2 ms
    let one = run(1, 1.0).get("latency_mean_ms");
    assert!((one - 1.5).abs() < 2e-3, "{one}");
    // twenty users and nothing at the server: the thread never idles, 0.1 ms a query
    let busy = run(20, 0.0).get("throughput_rps");
    assert!((busy - 10_000.0).abs() < 50.0, "{busy}");
}

#[test]
fn pgbouncer_on_the_database_host_takes_its_share_of_the_cores() {
    // 1 ms of statement CPU on 1 core and 1 ms of PgBouncer CPU per query, 8 users back to back:
    // on separate hosts both run at 1,000/s; on one host the core does 2 ms per transaction
    let rps = |shared: bool| {
        let sc = bouncer_base(json!({
            "run": {"duration_s": 5, "warmup_s": 0.5, "replications": 1},
            "clients": {"users": 8},
            "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 0},
                                           "statement_cpu": {"const_ms": 1}}]},
            "app": {"pools": {"primary": {"min_size": 8, "max_size": 8}}},
            "pgbouncer": {"default_pool_size": 8, "cpu_per_query": {"const_ms": 1},
                          "on_postgres_host": shared},
            "postgres": {"cores": 1}
        }));
        run_traced(&sc, 0).0.get("throughput_rps")
    };
    let apart = rps(false);
    let together = rps(true);
    assert!((apart - 1000.0).abs() < 10.0, "{apart}");
    assert!((together - 500.0).abs() < 10.0, "{together}");
}

#[test]
fn per_core_run_queues_keep_the_throughput_and_widen_the_latency_tail() {
    // 1 ms of CPU per statement on 2 cores, users back to back through a PgBouncer that does not
    // limit them. Shared processor sharing runs the 4 statements at half speed: all take 2 ms.
    // Per-core run queues place the 3rd and 4th on random busy cores: a statement sharing its
    // core with one that started earlier waits longer, one alone runs at full speed, and an
    // emptied core pulls from a crowded one, so throughput stays at 2,000/s.
    let run_with = |users: u32, scheduling: &str| {
        let sc = bouncer_base(json!({
            "run": {"duration_s": 20, "warmup_s": 1, "replications": 1},
            "clients": {"users": users},
            "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 0},
                                           "statement_cpu": {"const_ms": 1}}]},
            "app": {"pools": {"primary": {"min_size": users, "max_size": users}}},
            "pgbouncer": {"default_pool_size": 8},
            "postgres": {"cores": 2, "cpu_scheduling": scheduling}
        }));
        poolsim::sim::run(&sc, 0)
    };
    let shared = run_with(4, "shared");
    let per_core = run_with(4, "per_core");
    let (x_s, x_p) = (shared.get("throughput_rps"), per_core.get("throughput_rps"));
    let (p95_s, p95_p) = (shared.get("latency_p95_ms"), per_core.get("latency_p95_ms"));
    println!(
        "4 users on 2 cores: shared {x_s:.1}/s P50 {:.3} P95 {p95_s:.3} ms; per_core {x_p:.1}/s \
         P50 {:.3} P95 {p95_p:.3} ms",
        shared.get("latency_p50_ms"),
        per_core.get("latency_p50_ms")
    );
    assert!((x_s - 2000.0).abs() < 20.0, "{x_s}");
    assert!(
        (x_p - x_s).abs() < 0.02 * x_s,
        "shared {x_s}, per_core {x_p}"
    );
    assert!((p95_s - 2.0).abs() < 0.01, "{p95_s}");
    assert!(
        p95_p > 1.15 * p95_s,
        "per_core P95 {p95_p} ms, shared {p95_s} ms"
    );
    assert_eq!(
        per_core.get("postgres_cpu_utilization"),
        shared.get("postgres_cpu_utilization")
    );

    // no more statements than cores: both are the same run
    let shared = run_with(2, "shared");
    let per_core = run_with(2, "per_core");
    assert_eq!(shared.values, per_core.values);
    assert!((shared.get("latency_p95_ms") - 1.0).abs() < 0.01);
}

/// 1 ms of CPU per statement on 2 cores (per-core run queues), `users` back to back through a
/// PgBouncer that neither limits nor costs anything; `wake_ms` to wake an idle core from the
/// other.
fn two_cores(
    users: u32,
    wake_ms: Option<f64>,
    bouncer_on_host: bool,
    app_on_host: bool,
) -> RunRecord {
    let mut pg = json!({"cores": 2, "cpu_scheduling": "per_core"});
    if let Some(w) = wake_ms {
        pg["cross_core_wakeup"] = json!({"const_ms": w});
    }
    two_cores_with(users, pg, bouncer_on_host, app_on_host)
}

/// [`two_cores`] with the `postgres` section given whole.
fn two_cores_with(users: u32, pg: Value, bouncer_on_host: bool, app_on_host: bool) -> RunRecord {
    let sc = bouncer_base(json!({
        "run": {"duration_s": 10, "warmup_s": 1, "replications": 1},
        "clients": {"users": users},
        "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 0},
                                       "statement_cpu": {"const_ms": 1}}]},
        "app": {"on_postgres_host": app_on_host,
                "pools": {"primary": {"min_size": users, "max_size": users}}},
        "pgbouncer": {"default_pool_size": 8, "on_postgres_host": bouncer_on_host},
        "postgres": pg
    }));
    poolsim::sim::run(&sc, 0)
}

#[test]
fn a_statement_that_lands_on_an_idle_core_while_another_runs_waits_for_its_wakeup() {
    // one user: the host is idle whenever a statement arrives, nothing changes
    let alone = two_cores(1, Some(0.25), false, false);
    assert_eq!(alone.values, two_cores(1, None, false, false).values);
    assert!((alone.get("throughput_rps") - 1000.0).abs() < 5.0);
    // two users: each statement arrives while the other one runs, and waits 0.25 ms for the
    // idle core: 2 per 1.25 ms
    let two = two_cores(2, Some(0.25), false, false).get("throughput_rps");
    assert!((two - 1600.0).abs() < 0.02 * 1600.0, "{two}");
    let none = two_cores(2, None, false, false).get("throughput_rps");
    assert!((none - 2000.0).abs() < 20.0, "{none}");
    // PgBouncer's thread on the same host is woken by each query and each response while a
    // statement runs, and waits too: 2 per 1.75 ms
    let via = two_cores(2, Some(0.25), true, false).get("throughput_rps");
    assert!((via - 1142.9).abs() < 0.02 * 1142.9, "{via}");
    // four users keep both cores busy: no core is ever idle to be woken
    let four = two_cores(4, Some(0.25), false, false).get("throughput_rps");
    assert!((four - 2000.0).abs() < 0.01 * 2000.0, "{four}");
}

#[test]
fn an_app_on_the_database_host_is_woken_by_its_responses_too() {
    // one user: nothing else runs when its response leaves
    assert_eq!(
        two_cores(1, Some(0.25), false, true).values,
        two_cores(1, Some(0.25), false, false).values,
        "one user"
    );
    // two users: the response that leaves while the other user's statement runs waits 0.25 ms
    // as well: 0.25 (statement) + 1 (CPU) + 0.25 (response) ms, 2 per 1.5 ms
    let together = two_cores(2, Some(0.25), false, true).get("throughput_rps");
    assert!((together - 1333.3).abs() < 0.02 * 1333.3, "{together}");
}

/// 1 ms of CPU per statement on 2 cores (per-core run queues), Poisson arrivals at `rate`/s
/// through a PgBouncer that neither limits nor costs anything, the app on the database host;
/// `behind`: `postgres.response_behind_statement`.
fn two_cores_open(rate: f64, behind: f64) -> RunRecord {
    let mut pg = json!({"cores": 2, "cpu_scheduling": "per_core"});
    if behind > 0.0 {
        pg["response_behind_statement"] = json!(behind);
    }
    let sc = bouncer_base(json!({
        "run": {"duration_s": 400, "warmup_s": 1, "replications": 1},
        "clients": {"mode": "open", "rate_per_s": rate, "users": null, "think_time": null},
        "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 0},
                                       "statement_cpu": {"const_ms": 1}}]},
        "app": {"on_postgres_host": true,
                "pools": {"primary": {"min_size": 8, "max_size": 8}}},
        "pgbouncer": {"default_pool_size": 8},
        "postgres": pg
    }));
    poolsim::sim::run(&sc, 0)
}

#[test]
fn a_response_to_an_app_on_the_host_may_wait_for_a_running_statement_to_end() {
    // At 100/s, a statement's response finds another statement running when one arrived during
    // its 1 ms (probability 1 − e^−0.1 = 0.095); that one started at a uniform offset and has
    // as much left, 0.5 ms on average. Held always: the mean latency grows by ≈ 0.048 ms;
    // held half the time, by half that. Throughput does not move.
    let none = two_cores_open(100.0, 0.0);
    let always = two_cores_open(100.0, 1.0);
    let half = two_cores_open(100.0, 0.5);
    let mean = |r: &RunRecord| r.get("latency_mean_ms");
    let (d1, d5) = (mean(&always) - mean(&none), mean(&half) - mean(&none));
    println!("mean latency: +{d1:.4} ms held always, +{d5:.4} ms held half the time");
    assert!((d1 - 0.048).abs() < 0.006, "{d1}");
    assert!((d5 - 0.024).abs() < 0.005, "{d5}");
    assert_eq!(none.get("throughput_rps"), always.get("throughput_rps"));
    // the tail: a held response waits up to a whole statement
    assert!(always.get("latency_p99_ms") > none.get("latency_p99_ms") + 0.2);
    // one user at a time: nothing else runs when a response leaves, nothing changes
    let one = |behind: f64| {
        let mut pg = json!({"cores": 2, "cpu_scheduling": "per_core"});
        pg["response_behind_statement"] = json!(behind);
        let sc = bouncer_base(json!({
            "run": {"duration_s": 5, "warmup_s": 1, "replications": 1},
            "clients": {"users": 1},
            "workload": {"transactions": [{"name": "q", "statement_wait": {"const_ms": 0},
                                           "statement_cpu": {"const_ms": 1}}]},
            "app": {"on_postgres_host": true},
            "postgres": pg
        }));
        poolsim::sim::run(&sc, 0).values
    };
    assert_eq!(one(1.0), one(0.0));
}

/// [`two_cores`] with PgBouncer on the database host or not and the kernel's time slice.
fn two_cores_slice(users: u32, bouncer_on_host: bool, slice_ms: f64) -> RunRecord {
    let pg = json!({"cores": 2, "cpu_scheduling": "per_core", "scheduler_slice_ms": slice_ms});
    two_cores_with(users, pg, bouncer_on_host, false)
}

#[test]
fn pgbouncer_on_the_host_waits_for_a_core_only_when_every_core_runs_a_statement() {
    // one or two users on two cores: whenever PgBouncer's thread is woken a core is free of
    // statements, and it runs at once, on the host or not
    for users in [1, 2] {
        assert_eq!(
            two_cores_slice(users, true, 1.5).values,
            two_cores_slice(users, false, 1.5).values,
            "{users} users"
        );
    }
    // four users keep a statement on both cores: each wake-up (a query, a response) waits
    // for the statement on its core to end (1 ms at half speed, half of it left on average)
    // or for the slice to be over; the latency grows, bounded by the slice
    let apart = two_cores_slice(4, false, 1.5);
    let mean = |r: &RunRecord| r.get("latency_mean_ms");
    let (d_long, d_short) = (
        mean(&two_cores_slice(4, true, 1.5)) - mean(&apart),
        mean(&two_cores_slice(4, true, 0.05)) - mean(&apart),
    );
    println!("4 users: +{d_long:.3} ms with a slice of 1.5 ms, +{d_short:.3} ms with 0.05 ms");
    assert!(d_long > 0.1, "{d_long}");
    assert!(d_short > 0.0 && d_short < 2.0 * 0.05 + 1e-9, "{d_short}");
    assert!(d_short < d_long / 2.0);
}
