//! Probe: how PgBouncer's client logins behave when many arrive together.
//!
//! ```text
//! eval "$(scripts/cluster.sh env)"
//! cargo run --release --example login_wave -- serial           # CPU per login, one at a time
//! cargo run --release --example login_wave -- wave 28          # 28 logins at once, five times
//! cargo run --release --example login_wave -- storm 28 80      # 28 users, 80 ms timeout, retry
//! ```
//!
//! `serial` opens 300 connections through PgBouncer one after another and reports the wall time,
//! this process's CPU and PgBouncer's CPU (from `/proc`, so PgBouncer must run on this host) per
//! login. `wave K` opens K connections at once and reports when each finished. `storm K MS`
//! gives K users a connect timeout of MS ms, each retrying at once after a timeout (the app
//! pool's growth at the start of a 32-user point, where an acquire that times out while
//! connecting abandons the attempt), for 2 s, and reports how many got connected and when.
//! The URL is `POOLSIM_BOUNCER_URL`; nothing is written to the server.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// utime + stime of a process (`self` or a pid), seconds.
fn cpu(pid: &str) -> Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let rest = &s[s
        .rfind(')')
        .ok_or_else(|| anyhow!("odd /proc/{pid}/stat"))?
        + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<f64> {
        Ok(f.get(i)
            .ok_or_else(|| anyhow!("short /proc/{pid}/stat"))?
            .parse::<f64>()?)
    };
    Ok((tick(11)? + tick(12)?) / 100.0)
}

fn pgbouncer_pid() -> Result<String> {
    for e in std::fs::read_dir("/proc")?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.parse::<u32>().is_ok()
            && std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "pgbouncer")
        {
            return Ok(name);
        }
    }
    bail!("no PgBouncer process on this host: the probe reads its CPU from /proc")
}

async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| anyhow!("connecting through PgBouncer: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let url = std::env::var("POOLSIM_BOUNCER_URL")
        .context("POOLSIM_BOUNCER_URL is not set: eval \"$(scripts/cluster.sh env)\" first")?;
    let bouncer = pgbouncer_pid()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, what: &str| -> Result<u64> {
        args.get(i)
            .ok_or_else(|| anyhow!("missing {what}"))?
            .parse()
            .with_context(|| format!("{what} must be a whole number"))
    };
    match args.first().map(String::as_str) {
        Some("serial") => {
            let n = 300;
            let pause = Duration::from_millis(2);
            let (c0, b0, t0) = (cpu("self")?, cpu(&bouncer)?, Instant::now());
            for _ in 0..n {
                drop(connect(&url).await?);
                tokio::time::sleep(pause).await;
            }
            let per = |x: f64| x * 1000.0 / n as f64;
            println!(
                "{n} logins one at a time: {:.3} ms each (wall, less the pause), this process's CPU {:.3} ms, PgBouncer's CPU {:.3} ms",
                per(t0.elapsed().as_secs_f64()) - pause.as_secs_f64() * 1000.0,
                per(cpu("self")? - c0),
                per(cpu(&bouncer)? - b0)
            );
        }
        Some("wave") => {
            let k = arg(1, "the number of logins")?.max(1) as usize;
            for round in 0..5 {
                let (c0, b0, t0) = (cpu("self")?, cpu(&bouncer)?, Instant::now());
                let mut tasks = Vec::new();
                for _ in 0..k {
                    let u = url.clone();
                    tasks.push(tokio::spawn(async move {
                        let t = Instant::now();
                        let c = connect(&u).await?;
                        Ok::<_, anyhow::Error>((t.elapsed().as_secs_f64() * 1000.0, c))
                    }));
                }
                let (mut ms, mut keep) = (Vec::new(), Vec::new());
                for t in tasks {
                    let (m, c) = t.await??;
                    ms.push(m);
                    keep.push(c);
                }
                ms.sort_by(f64::total_cmp);
                println!(
                    "wave {round}: {k} logins at once, all done in {:.1} ms; each took min {:.1}, median {:.1}, max {:.1} ms; this process's CPU {:.0} ms, PgBouncer's {:.0} ms",
                    t0.elapsed().as_secs_f64() * 1000.0,
                    ms[0],
                    ms[k / 2],
                    ms[k - 1],
                    (cpu("self")? - c0) * 1000.0,
                    (cpu(&bouncer)? - b0) * 1000.0
                );
                drop(keep);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Some("storm") => {
            let k = arg(1, "the number of users")?.max(1) as usize;
            let limit = Duration::from_millis(arg(2, "the timeout in ms")?);
            let span = Duration::from_secs(2);
            let (c0, b0, t0) = (cpu("self")?, cpu(&bouncer)?, Instant::now());
            let mut tasks = Vec::new();
            for _ in 0..k {
                let u = url.clone();
                tasks.push(tokio::spawn(async move {
                    let mut attempts = 0u32;
                    while t0.elapsed() < span {
                        attempts += 1;
                        if let Ok(c) = tokio::time::timeout(limit, connect(&u)).await {
                            return Ok::<_, anyhow::Error>((
                                attempts,
                                Some((t0.elapsed().as_secs_f64() * 1000.0, c?)),
                            ));
                        }
                    }
                    Ok((attempts, None))
                }));
            }
            let (mut attempts, mut at, mut keep) = (0, Vec::new(), Vec::new());
            for t in tasks {
                let (a, done) = t.await??;
                attempts += a;
                if let Some((ms, c)) = done {
                    at.push(ms as u64);
                    keep.push(c);
                }
            }
            at.sort_unstable();
            println!(
                "{k} users, connect timeout {} ms: {} connected within {} s after {attempts} attempts (at ms {at:?}); this process's CPU {:.0} ms, PgBouncer's {:.0} ms",
                limit.as_millis(),
                at.len(),
                span.as_secs(),
                (cpu("self")? - c0) * 1000.0,
                (cpu(&bouncer)? - b0) * 1000.0
            );
        }
        _ => bail!("usage: login_wave serial | wave K | storm K TIMEOUT_MS"),
    }
    Ok(())
}
