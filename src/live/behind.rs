//! Responses that wait behind a running statement: `postgres.response_behind_statement`.
//!
//! Two connections on the workload's path, each driven by its own thread, run a CPU-bound
//! statement of about a millisecond after a pause (the host idle). In a third of the rounds the
//! first runs alone; in the others the second starts while the first runs. On an idle core the
//! first's response comes back as if it were alone; on Linux it often does not: the thread that
//! carries it is woken on the core where the second statement's backend now runs, and waits
//! until that statement ends. The share of overlapping rounds whose first response ends with
//! the second statement — beyond what the lone rounds' own spread explains — is the probability.

use super::calibrate::median;
use super::pg::{error_text, Endpoint};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// The statement's target length at concurrency 1, ms (a short CPU-bound statement).
const TARGET_MS: f64 = 1.0;
/// Rows of the statement before it is tuned to [`TARGET_MS`].
const PROBE_ROWS: u64 = 8000;
/// Idle time before every round.
pub const PAUSE: Duration = Duration::from_millis(5);
/// Overlapping pairs and lone rounds below which no probability is estimated.
const MIN_PAIRS: usize = 40;
const MIN_SOLO: usize = 20;

/// One round: when each statement was sent and when its response arrived, ms from a common
/// origin; the second is `None` in a lone round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Round {
    pub first: (f64, f64),
    pub second: Option<(f64, f64)>,
}

/// The estimate and what it came from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Behind {
    /// `postgres.response_behind_statement`.
    pub probability: f64,
    /// Overlapping pairs used, and how many looked held.
    pub pairs: usize,
    pub held: usize,
    /// How many of them the lone rounds' spread alone would make look held.
    pub expected_by_spread: f64,
    /// Lone rounds, and their median latency, ms.
    pub solo: usize,
    pub solo_median_ms: f64,
    /// Rows of the probe statement (`generate_series`).
    pub rows: u64,
}

/// A round's first response is held when it ends nearer to the second's end than to its own
/// lone median: its excess over the lone median is more than half the gap between that median
/// and the second's end. Lone rounds with an excess that large would look held too; their share
/// is taken out: p = (held − expected) / (pairs − expected). Pairs whose second statement
/// started before a seventh or after six sevenths of the lone median are not used (too close to
/// tell, or barely overlapping). `None` with too few pairs or lone rounds.
pub fn estimate(rounds: &[Round], rows: u64) -> Option<Behind> {
    let solo: Vec<f64> = rounds
        .iter()
        .filter(|r| r.second.is_none())
        .map(|r| r.first.1 - r.first.0)
        .collect();
    if solo.len() < MIN_SOLO {
        return None;
    }
    let l0 = median(&solo);
    let (mut pairs, mut held, mut expected) = (0usize, 0usize, 0.0f64);
    for r in rounds {
        let Some((s1, e1)) = r.second else { continue };
        let (s0, e0) = r.first;
        let off = s1 - s0;
        if off < l0 / 7.0 || off > l0 * 6.0 / 7.0 {
            continue;
        }
        let gap = e1 - (s0 + l0);
        if gap <= 0.0 {
            continue;
        }
        pairs += 1;
        if e0 - s0 - l0 > gap / 2.0 {
            held += 1;
        }
        let like = solo.iter().filter(|&&x| x - l0 > gap / 2.0).count();
        expected += like as f64 / solo.len() as f64;
    }
    if pairs < MIN_PAIRS {
        return None;
    }
    let n = pairs as f64;
    let probability = if expected >= n {
        0.0
    } else {
        ((held as f64 - expected) / (n - expected)).clamp(0.0, 1.0)
    };
    Some(Behind {
        probability,
        pairs,
        held,
        expected_by_spread: expected,
        solo: solo.len(),
        solo_median_ms: l0,
        rows,
    })
}

/// Measure on `ep` with `rounds` rounds (a third of them lone). Blocking: it runs two threads,
/// each with its own runtime and connection. `Ok(None)` when too few rounds could be used.
pub fn measure(ep: &Endpoint, rounds: usize) -> Result<Option<Behind>, String> {
    let barrier = Arc::new(Barrier::new(2));
    let origin = Instant::now();
    let rows = Arc::new(AtomicU64::new(0));
    let run = |who: usize| {
        let (ep, barrier, rows) = (ep.clone(), barrier.clone(), rows.clone());
        std::thread::spawn(move || -> Result<Vec<Option<(f64, f64)>>, String> {
            let rt = super::runtime(1).map_err(|e| format!("the overlap probe: {e:#}"))?;
            rt.block_on(side(who, &ep, &barrier, &rows, rounds, origin))
        })
    };
    let (a, b) = (run(0), run(1));
    let first = a
        .join()
        .map_err(|_| "the overlap probe's thread panicked")?;
    let second = b
        .join()
        .map_err(|_| "the overlap probe's thread panicked")?;
    let (first, second) = (first?, second?);
    let rounds: Vec<Round> = first
        .iter()
        .zip(&second)
        .filter_map(|(f, s)| {
            Some(Round {
                first: (*f)?,
                second: *s,
            })
        })
        .collect();
    Ok(estimate(&rounds, rows.load(Relaxed)))
}

/// One side of the probe. Side 0 tunes the statement, then both meet at the barrier every
/// round; side 1 starts its statement after an offset in two rounds of three.
async fn side(
    who: usize,
    ep: &Endpoint,
    barrier: &Barrier,
    rows: &AtomicU64,
    rounds: usize,
    origin: Instant,
) -> Result<Vec<Option<(f64, f64)>>, String> {
    // a failed connection or statement still meets the other side at every barrier
    let mut failed = None;
    let client = match ep.connect().await {
        Ok(c) => Some(c.client),
        Err(e) => {
            failed = Some(format!("cannot connect to {}: {}", ep.shown, e.message));
            None
        }
    };
    let sql = |n: u64| format!("SELECT count(*) FROM generate_series(1, {n})");
    let stmt_failed = |e: &tokio_postgres::Error| {
        format!(
            "the overlap probe's statement on {}: {}",
            ep.shown,
            error_text(e)
        )
    };
    if let (0, Some(client)) = (who, &client) {
        let mut ms = Vec::new();
        for k in 0..25 {
            let t = Instant::now();
            if let Err(e) = client.simple_query(&sql(PROBE_ROWS)).await {
                failed = Some(stmt_failed(&e));
                break;
            }
            if k >= 5 {
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let n = if ms.is_empty() {
            PROBE_ROWS
        } else {
            ((PROBE_ROWS as f64 * TARGET_MS / median(&ms)).round() as u64).clamp(500, 500_000)
        };
        rows.store(n, Relaxed);
    }
    barrier.wait();
    let stmt = sql(rows.load(Relaxed));
    let mut out = Vec::with_capacity(rounds);
    for i in 0..rounds {
        barrier.wait();
        std::thread::sleep(PAUSE);
        let overlap = i % 3 != 0;
        let client = match &client {
            Some(c) if failed.is_none() && (who == 0 || overlap) => c,
            _ => {
                out.push(None);
                continue;
            }
        };
        if who == 1 {
            // offsets spread over the statement, from a seventh to six sevenths of it
            let frac = (i as f64 * 0.618_034).fract();
            std::thread::sleep(Duration::from_secs_f64(
                TARGET_MS * (1.0 + 5.0 * frac) / 7.0 / 1000.0,
            ));
        }
        let s = origin.elapsed().as_secs_f64() * 1000.0;
        match client.simple_query(&stmt).await {
            Ok(_) => out.push(Some((s, origin.elapsed().as_secs_f64() * 1000.0))),
            Err(e) => {
                failed = Some(stmt_failed(&e));
                out.push(None);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lone rounds of 1 ms with a spread of ±0.05 ms; pairs with the second started at 0.3 ms.
    fn rounds(held_every: usize, pairs: usize) -> Vec<Round> {
        let mut v = Vec::new();
        for i in 0..30 {
            let t = i as f64 * 10.0;
            let x = 1.0 + 0.05 * ((i % 3) as f64 - 1.0);
            v.push(Round {
                first: (t, t + x),
                second: None,
            });
        }
        for i in 0..pairs {
            let t = 1000.0 + i as f64 * 10.0;
            let e1 = t + 0.3 + 1.0;
            let e0 = if i % held_every == 0 {
                e1 + 0.02
            } else {
                t + 1.0
            };
            v.push(Round {
                first: (t, e0),
                second: Some((t + 0.3, e1)),
            });
        }
        v
    }

    #[test]
    fn the_share_of_first_responses_held_until_the_second_ends() {
        let b = estimate(&rounds(2, 60), 8000).expect("enough rounds");
        assert_eq!((b.pairs, b.held), (60, 30));
        assert_eq!(b.expected_by_spread, 0.0);
        assert!((b.probability - 0.5).abs() < 1e-12);
        assert!((b.solo_median_ms - 1.0).abs() < 1e-12);
        let none = estimate(&rounds(1_000_000, 60), 8000).expect("enough rounds");
        assert_eq!((none.held, none.probability), (1, 1.0 / 60.0));
    }

    #[test]
    fn the_lone_rounds_spread_is_taken_out() {
        // every third lone round is 0.2 ms slow: beyond half the 0.3 ms gap, like a held one
        let mut v = rounds(2, 60);
        for (i, r) in v.iter_mut().take(30).enumerate() {
            if i % 3 == 0 {
                r.first.1 = r.first.0 + 1.2;
            }
        }
        let b = estimate(&v, 8000).expect("enough rounds");
        let exp = 60.0 * 10.0 / 30.0;
        assert!((b.expected_by_spread - exp).abs() < 1e-9);
        assert!((b.probability - (30.0 - exp) / (60.0 - exp)).abs() < 1e-12);
    }

    #[test]
    fn too_few_rounds_give_no_estimate() {
        assert_eq!(estimate(&rounds(2, 10), 8000), None);
        assert_eq!(estimate(&rounds(2, 60)[11..], 8000), None);
    }
}
