//! Watching and steering the servers during a bench: the PgBouncer admin console (`SHOW POOLS`,
//! `SHOW STATS`, `SHOW CONFIG`, `SET`, `RECONNECT`) and PostgreSQL's `pg_stat_activity` /
//! `pg_stat_database`.
//!
//! A [`Monitor`] survives the server it watches going away: a failed query drops the
//! connection, and the next one reconnects (with a short timeout), so a PgBouncer killed in the
//! middle of a run costs samples, not the run.

use super::pg::{error_text, Endpoint};
use crate::experiment::{BouncerSpec, PoolMode};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_postgres::{Client, SimpleQueryMessage};

/// A row of a simple-protocol result, by column name.
pub type Row = BTreeMap<String, String>;

const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One monitoring connection that reconnects when it breaks.
pub struct Monitor {
    pub endpoint: Endpoint,
    client: Option<Client>,
    /// The first error met after the initial connection, if any.
    pub first_error: Option<String>,
    /// Times the connection was re-established after breaking.
    pub reconnects: u32,
}

impl Monitor {
    /// Connect now; a failure here is the caller's to report (the server is unreachable).
    pub async fn connect(endpoint: Endpoint) -> Result<Monitor, String> {
        let client = endpoint.connect().await.map_err(|e| e.message)?.client;
        Ok(Monitor {
            endpoint,
            client: Some(client),
            first_error: None,
            reconnects: 0,
        })
    }

    fn note(&mut self, e: String) -> String {
        self.client = None;
        if self.first_error.is_none() {
            self.first_error = Some(e.clone());
        }
        e
    }

    /// Run a simple query and return its rows (of the last result set).
    pub async fn rows(&mut self, sql: &str) -> Result<Vec<Row>, String> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            match tokio::time::timeout(RECONNECT_TIMEOUT, self.endpoint.connect()).await {
                Ok(Ok(c)) => {
                    self.client = Some(c.client);
                    self.reconnects += 1;
                }
                Ok(Err(e)) => return Err(self.note(e.message)),
                Err(_) => return Err(self.note("reconnect timed out".into())),
            }
        }
        let client = self.client.as_ref().expect("connected above");
        match tokio::time::timeout(QUERY_TIMEOUT, client.simple_query(sql)).await {
            Ok(Ok(msgs)) => {
                let mut rows = Vec::new();
                for m in msgs {
                    if let SimpleQueryMessage::Row(r) = m {
                        let mut row = Row::new();
                        for (i, c) in r.columns().iter().enumerate() {
                            row.insert(c.name().to_string(), r.get(i).unwrap_or("").to_string());
                        }
                        rows.push(row);
                    }
                }
                Ok(rows)
            }
            Ok(Err(e)) => Err(self.note(error_text(&e))),
            Err(_) => Err(self.note(format!("`{sql}` timed out"))),
        }
    }

    /// Run a command whose result does not matter beyond success.
    pub async fn command(&mut self, sql: &str) -> Result<(), String> {
        self.rows(sql).await.map(|_| ())
    }

    /// Close the connection now.
    pub fn close(&mut self) {
        self.client = None;
    }
}

fn num(row: &Row, col: &str) -> f64 {
    row.get(col).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// One `SHOW POOLS` sample of a database's pools (summed over users).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolsSample {
    pub cl_active: f64,
    pub cl_waiting: f64,
    pub sv_active: f64,
    /// Server connections still logging in.
    pub sv_login: f64,
    /// Every server connection: active, idle, used, tested, logging in.
    pub servers: f64,
}

pub async fn show_pools(admin: &mut Monitor, db: &str) -> Result<PoolsSample, String> {
    let rows = admin.rows("SHOW POOLS").await?;
    let mut s = PoolsSample::default();
    for r in rows
        .iter()
        .filter(|r| r.get("database").map(String::as_str) == Some(db))
    {
        s.cl_active += num(r, "cl_active");
        s.cl_waiting += num(r, "cl_waiting");
        s.sv_active += num(r, "sv_active");
        s.sv_login += num(r, "sv_login");
        s.servers += ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"]
            .iter()
            .map(|c| num(r, c))
            .sum::<f64>();
    }
    Ok(s)
}

/// `SHOW STATS` totals of one database.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StatsSample {
    pub xact_count: f64,
    /// `total_xact_time`: µs of transactions as PgBouncer saw them (server linked throughout,
    /// in transaction mode).
    pub xact_time_us: f64,
    pub query_time_us: f64,
    pub wait_time_us: f64,
    /// `total_server_assignment_count` (PgBouncer ≥ 1.23), else the transaction count.
    pub assignments: f64,
}

pub async fn show_stats(admin: &mut Monitor, db: &str) -> Result<StatsSample, String> {
    let rows = admin.rows("SHOW STATS").await?;
    let r = rows
        .iter()
        .find(|r| r.get("database").map(String::as_str) == Some(db))
        .ok_or_else(|| format!("SHOW STATS has no row for database {db}"))?;
    let xact = num(r, "total_xact_count");
    Ok(StatsSample {
        xact_count: xact,
        xact_time_us: num(r, "total_xact_time"),
        query_time_us: num(r, "total_query_time"),
        wait_time_us: num(r, "total_wait_time"),
        assignments: if r.contains_key("total_server_assignment_count") {
            num(r, "total_server_assignment_count")
        } else {
            xact
        },
    })
}

/// `SHOW CONFIG` as key -> value.
pub async fn show_config(admin: &mut Monitor) -> Result<BTreeMap<String, String>, String> {
    let rows = admin.rows("SHOW CONFIG").await?;
    Ok(rows
        .into_iter()
        .filter_map(|mut r| Some((r.remove("key")?, r.remove("value")?)))
        .collect())
}

/// PostgreSQL client backends, not counting the monitor's own.
pub async fn pg_backends(pg: &mut Monitor) -> Result<f64, String> {
    let rows = pg
        .rows(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .await?;
    Ok(rows.first().map_or(0.0, |r| num(r, "n")))
}

/// Sessions ever established to the database (`pg_stat_database.sessions`, PostgreSQL ≥ 14).
pub async fn pg_sessions(pg: &mut Monitor) -> Result<f64, String> {
    let rows = pg
        .rows("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        .await?;
    rows.first()
        .and_then(|r| r.get("sessions"))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "pg_stat_database.sessions is not available".into())
}

/// Connections with the given `application_name`, not counting the monitor's own.
pub async fn pg_connections_named(pg: &mut Monitor, name: &str) -> Result<f64, String> {
    let rows = pg
        .rows(&format!(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE application_name = '{}' AND pid <> pg_backend_pid()",
            name.replace('\'', "''")
        ))
        .await?;
    Ok(rows.first().map_or(0.0, |r| num(r, "n")))
}

pub fn pool_mode_name(m: PoolMode) -> &'static str {
    match m {
        PoolMode::Session => "session",
        PoolMode::Transaction => "transaction",
        PoolMode::Statement => "statement",
    }
}

fn seconds(d: crate::units::SimDuration) -> String {
    let s = d.as_s_f64();
    if s == s.trunc() {
        format!("{}", s as u64)
    } else {
        format!("{s:.3}")
    }
}

/// The `SET key = value` pairs that give PgBouncer a point's settings, in order.
pub fn settings_of(b: &BouncerSpec) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("pool_mode", pool_mode_name(b.mode).to_string()),
        ("max_client_conn", b.max_client_conn.to_string()),
        (
            "default_pool_size",
            if b.pool_size == u32::MAX {
                "0".to_string()
            } else {
                b.pool_size.to_string()
            },
        ),
        ("min_pool_size", b.min_pool_size.to_string()),
        ("reserve_pool_size", b.reserve_size.to_string()),
        ("reserve_pool_timeout", seconds(b.reserve_timeout)),
        (
            "query_wait_timeout",
            b.query_wait_timeout.map_or("0".into(), seconds),
        ),
        ("server_login_retry", seconds(b.login_retry)),
        (
            "max_db_connections",
            b.max_db_connections.unwrap_or(0).to_string(),
        ),
    ];
    if let Some(l) = b.server_lifetime {
        v.push(("server_lifetime", seconds(l)));
    }
    if let Some(i) = b.server_idle_timeout {
        v.push(("server_idle_timeout", seconds(i)));
    }
    v
}

/// Values as PgBouncer prints them in SHOW CONFIG may differ in form from what we SET (`5` vs
/// `5.0`): compare numerically when both parse.
pub fn same_setting(a: &str, b: &str) -> bool {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() < 1e-9,
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

/// Apply a point's settings through the admin console and check that the database entry
/// does not override them. Returns the keys that were changed.
pub async fn apply(
    admin: &mut Monitor,
    db: &str,
    b: &BouncerSpec,
) -> Result<Vec<&'static str>, String> {
    let current = show_config(admin).await?;
    let mut changed = Vec::new();
    for (key, value) in settings_of(b) {
        if current.get(key).is_some_and(|c| same_setting(c, &value)) {
            continue;
        }
        let v = if key == "pool_mode" {
            format!("'{value}'")
        } else {
            value.clone()
        };
        admin
            .command(&format!("SET {key} = {v}"))
            .await
            .map_err(|e| format!("PgBouncer refused `SET {key} = {value}`: {e}"))?;
        changed.push(key);
    }
    // a [databases] entry may pin pool_size or pool_mode, which SET cannot change
    let rows = admin.rows("SHOW DATABASES").await?;
    if let Some(r) = rows
        .iter()
        .find(|r| r.get("name").map(String::as_str) == Some(db))
    {
        let mode = r.get("pool_mode").map(String::as_str).unwrap_or("");
        let want = pool_mode_name(b.mode);
        if !mode.is_empty() && mode != want {
            return Err(format!(
                "the point needs pool_mode {want}, but PgBouncer's [databases] entry for {db} sets pool_mode={mode}; \
                 that takes an edit of pgbouncer.ini and a restart (scripts/cluster.sh up --pool-mode {want})"
            ));
        }
        if b.pool_size != u32::MAX {
            let size = r.get("pool_size").map(String::as_str).unwrap_or("");
            if !size.is_empty() && !same_setting(size, &b.pool_size.to_string()) {
                return Err(format!(
                    "the point needs default_pool_size {}, but PgBouncer's [databases] entry for {db} sets pool_size={size}",
                    b.pool_size
                ));
            }
        }
    }
    Ok(changed)
}

/// Close the database's server connections (after they are released) and wait, up to
/// `limit`, until none is left, so that a point starts from empty PgBouncer pools.
///
/// First waits (within the same limit) until the database has no clients and no server still
/// logging in: RECONNECT closes a server in the middle of its login, and PgBouncer counts that
/// as a failed login and launches no new server for `server_login_retry` (15 s by default) —
/// every new client of the next point would then wait that long for its welcome message.
pub async fn reconnect(admin: &mut Monitor, db: &str, limit: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let s = show_pools(admin, db).await?;
        let quiet = s.cl_active == 0.0 && s.cl_waiting == 0.0 && s.sv_login == 0.0;
        if quiet || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    admin.command(&format!("RECONNECT {db}")).await?;
    loop {
        let s = show_pools(admin, db).await?;
        if s.servers == 0.0 || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::SimDuration;

    #[test]
    fn settings_map_to_set_commands() {
        let b = BouncerSpec {
            mode: PoolMode::Transaction,
            max_client_conn: 10000,
            pool_size: 35,
            min_pool_size: 15,
            reserve_size: 10,
            reserve_timeout: SimDuration::from_s_f64(2.5),
            query_wait_timeout: None,
            server_lifetime: None,
            server_idle_timeout: Some(SimDuration::from_s_f64(600.0)),
            login_retry: SimDuration::from_s_f64(15.0),
            max_db_connections: None,
            cpu_per_query: crate::dist::Dist::ZERO,
            cpu_per_wakeup: crate::dist::Dist::ZERO,
            processes: 1,
            client_connect: crate::dist::Dist::ZERO,
            prewarm: false,
            on_postgres_host: false,
        };
        let s: BTreeMap<_, _> = settings_of(&b).into_iter().collect();
        assert_eq!(s["pool_mode"], "transaction");
        assert_eq!(s["default_pool_size"], "35");
        assert_eq!(s["reserve_pool_timeout"], "2.500");
        assert_eq!(s["query_wait_timeout"], "0");
        assert_eq!(s["server_idle_timeout"], "600");
        assert!(!s.contains_key("server_lifetime"));
        assert!(same_setting("5", "5.0"));
        assert!(same_setting("Transaction", "transaction"));
        assert!(!same_setting("20", "35"));
    }
}
