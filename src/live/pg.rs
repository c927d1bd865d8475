//! PostgreSQL and PgBouncer over tokio-postgres: connection URLs (and their redaction), the
//! [`Db`] implementation the load generator drives, and the mapping of server errors onto the
//! simulator's failure causes.
//!
//! Every statement goes over the simple query protocol (`batch_execute`): no named prepared
//! statements, which PgBouncer 1.18 does not track in transaction mode. No TLS: live mode is
//! meant for loopback and private networks.

use super::loadgen::{Db, DbError};
use crate::experiment::Target;
use crate::sim::Cause;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_postgres::config::Host;
use tokio_postgres::{CancelToken, Client, Config, NoTls};

/// `application_name` of every load connection, so that leftovers can be found in
/// `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "poolsim-bench";
/// `application_name` of the connections that watch the servers during a run.
pub const MONITOR_APPLICATION_NAME: &str = "poolsim-bench-monitor";

/// Connect timeout used when the URL sets none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection URL (or `key=value` string) with any password replaced by `***`. Use it in
/// every message that shows a URL.
pub fn redact_url(url: &str) -> String {
    let mut s = url.to_string();
    if let Some(scheme_end) = s.find("://") {
        let rest_start = scheme_end + 3;
        let rest = &s[rest_start..];
        let limit = rest.find('?').unwrap_or(rest.len());
        if let Some(at) = rest[..limit].rfind('@') {
            let userinfo = &rest[..at];
            if let Some(colon) = userinfo.find(':') {
                let user = &userinfo[..colon];
                s = format!("{}{user}:***{}", &s[..rest_start], &rest[at..]);
            }
        }
    }
    redact_password_pairs(&s)
}

/// Replace the value of every `password=` pair (query string or `key=value` form).
fn redact_password_pairs(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let b = s.as_bytes();
    while let Some(off) = lower[i..].find("password") {
        let k = i + off;
        let boundary = k == 0 || matches!(b[k - 1], b' ' | b'?' | b'&' | b'\t' | b'\n');
        let mut j = k + "password".len();
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if !boundary || j >= b.len() || b[j] != b'=' {
            out.push_str(&s[i..k + 1]);
            i = k + 1;
            continue;
        }
        j += 1;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        out.push_str(&s[i..j]);
        out.push_str("***");
        // skip the value: quoted (with \' escapes) or up to a space / &
        if j < b.len() && b[j] == b'\'' {
            j += 1;
            while j < b.len() && b[j] != b'\'' {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            j = (j + 1).min(b.len());
        } else {
            while j < b.len() && !matches!(b[j], b' ' | b'&' | b'\t' | b'\n') {
                j += 1;
            }
        }
        i = j;
    }
    out.push_str(&s[i..]);
    out
}

/// A parsed connection target, with the redacted form used in every message.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub config: Config,
    /// The URL with its password replaced.
    pub shown: String,
    /// Database name (the user name when the URL names none, as libpq does).
    pub dbname: String,
}

impl Endpoint {
    /// Parse a URL or `key=value` string; `what` names the option in errors (`--pg`).
    pub fn parse(what: &str, url: &str, application_name: &str) -> Result<Endpoint, String> {
        let shown = redact_url(url);
        let mut config: Config = url
            .parse()
            .map_err(|e| format!("{what}: {shown} is not a valid connection URL: {e}"))?;
        config.application_name(application_name);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        let dbname = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
            .to_string();
        Ok(Endpoint {
            config,
            shown,
            dbname,
        })
    }

    /// The same server and credentials, another database (the PgBouncer admin console).
    pub fn with_dbname(&self, dbname: &str, application_name: &str) -> Endpoint {
        let mut config = self.config.clone();
        config.dbname(dbname);
        config.application_name(application_name);
        let shown = match self.shown.rfind(&format!("/{}", self.dbname)) {
            Some(i) if self.shown.contains("://") => format!(
                "{}/{dbname}{}",
                &self.shown[..i],
                &self.shown[i + 1 + self.dbname.len()..]
            ),
            _ => format!("{} dbname={dbname}", self.shown),
        };
        Endpoint {
            config,
            shown,
            dbname: dbname.to_string(),
        }
    }

    /// Open a connection and drive it on its own task.
    ///
    /// A single TCP host is connected by hand ([`tcp_connect`]) so that the load generator
    /// never holds the server's own port while the server is down.
    pub async fn connect(&self) -> Result<Connected, ConnectError> {
        let hosts = self.config.get_hosts();
        let ports = self.config.get_ports();
        let single_tcp = match (hosts, ports.len()) {
            ([Host::Tcp(h)], 0 | 1) => Some(h.clone()),
            _ => None,
        };
        let Some(host) = single_tcp else {
            let (client, conn) = self
                .config
                .connect(NoTls)
                .await
                .map_err(ConnectError::from)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            return Ok(Connected { client, addr: None });
        };
        let port = ports.first().copied().unwrap_or(5432);
        let limit = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let io = |e: std::io::Error| ConnectError {
            code: None,
            message: format!("error connecting to server: {e}"),
        };
        let stream = match tokio::time::timeout(limit, tcp_connect(&host, port)).await {
            Ok(r) => r.map_err(io)?,
            Err(_) => {
                return Err(ConnectError {
                    code: None,
                    message: format!(
                        "error connecting to server: no answer within {} s",
                        limit.as_secs()
                    ),
                })
            }
        };
        let peer = stream.peer_addr().map_err(io)?;
        let (client, conn) =
            match tokio::time::timeout(limit, self.config.connect_raw(stream, NoTls)).await {
                Ok(r) => r.map_err(ConnectError::from)?,
                Err(_) => {
                    return Err(ConnectError {
                        code: None,
                        message: format!(
                            "no startup answer from {peer} within {} s",
                            limit.as_secs()
                        ),
                    })
                }
            };
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connected {
            client,
            addr: Some(peer),
        })
    }
}

/// Connect a TCP socket that can never hold the server's port: when nothing listens on a port
/// of the ephemeral range (PgBouncer killed; Linux uses 32768–60999), a loopback connect that
/// picks that very port as its own connects to itself, and even once closed its TIME_WAIT
/// keeps the restarted server from binding. So the local port is chosen first (bind to port
/// 0) and never equals the target's, and SO_REUSEADDR lets a listener bind over our
/// TIME_WAITs.
pub async fn tcp_connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        for _ in 0..4 {
            let sock = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            sock.set_reuseaddr(true)?;
            let any: SocketAddr = if addr.is_ipv4() {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            sock.bind(any)?;
            if sock.local_addr()?.port() == port {
                continue;
            }
            sock.set_nodelay(true)?;
            match sock.connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        )
    }))
}

/// An open connection, and the address it went to (for cancel requests).
pub struct Connected {
    pub client: Client,
    pub addr: Option<SocketAddr>,
}

/// A failed connection attempt: SQLSTATE when the server answered, and the message.
#[derive(Clone, Debug)]
pub struct ConnectError {
    pub code: Option<String>,
    pub message: String,
}

impl From<tokio_postgres::Error> for ConnectError {
    fn from(e: tokio_postgres::Error) -> Self {
        ConnectError {
            code: e.as_db_error().map(|d| d.code().code().to_string()),
            message: error_text(&e),
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Text of an error: SQLSTATE and message for server errors, the chain for the others.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s
}

/// Map a server or connection error onto the simulator's failure causes. `None`: an error the
/// simulator does not model (a SQL error, a serialization failure).
pub fn classify(code: Option<&str>, message: &str, connecting: bool) -> Option<Cause> {
    let lost = if connecting {
        Cause::ConnectRefused
    } else {
        Cause::ConnectionLost
    };
    let Some(code) = code else {
        return Some(lost);
    };
    if message.contains("max_client_conn") {
        return Some(Cause::MaxClientConn);
    }
    if message.contains("query_wait_timeout") {
        return Some(Cause::QueryWaitTimeout);
    }
    if message.contains("server login has been failing")
        || message.contains("pgbouncer cannot connect to server")
    {
        return Some(Cause::ServerLoginFailed);
    }
    match code {
        "53300" => Some(Cause::MaxConnections),
        "57014" if message.contains("statement timeout") => Some(Cause::StatementTimeout),
        "57014" => Some(Cause::CommandTimeout),
        // admin shutdown, crash shutdown, cannot connect now, database dropped
        "57P01" | "57P02" | "57P03" | "57P04" | "25P03" => Some(lost),
        c if c.starts_with("08") => Some(lost),
        _ => None,
    }
}

fn db_error(e: &tokio_postgres::Error, connecting: bool) -> DbError {
    let code = e.as_db_error().map(|d| d.code().code().to_string());
    let message = error_text(e);
    DbError {
        cause: classify(code.as_deref(), &message, connecting),
        message,
    }
}

/// The live cluster as the load generator sees it.
pub struct PgDb {
    pub bouncer: Option<Endpoint>,
    pub primary: Endpoint,
    /// Replica endpoints for `replicas` pools, used round robin (the primary when none is given).
    pub replicas: Vec<Endpoint>,
    rr: AtomicUsize,
}

impl PgDb {
    pub fn new(bouncer: Option<Endpoint>, primary: Endpoint, replicas: Vec<Endpoint>) -> PgDb {
        PgDb {
            bouncer,
            primary,
            replicas,
            rr: AtomicUsize::new(0),
        }
    }

    fn endpoint(&self, target: Target) -> &Endpoint {
        match target {
            Target::Bouncer => self.bouncer.as_ref().unwrap_or(&self.primary),
            Target::Primary => &self.primary,
            Target::Replicas if self.replicas.is_empty() => &self.primary,
            Target::Replicas => {
                let i = self.rr.fetch_add(1, Ordering::Relaxed);
                &self.replicas[i % self.replicas.len()]
            }
        }
    }
}

/// One load connection.
pub struct PgConn {
    client: Client,
    cancel: CancelToken,
    addr: Option<SocketAddr>,
}

impl Db for PgDb {
    type Conn = PgConn;

    async fn connect(&self, target: Target) -> Result<PgConn, DbError> {
        let c = self.endpoint(target).connect().await.map_err(|e| DbError {
            cause: classify(e.code.as_deref(), &e.message, true),
            message: e.message,
        })?;
        Ok(PgConn {
            cancel: c.client.cancel_token(),
            client: c.client,
            addr: c.addr,
        })
    }

    async fn execute(&self, conn: &mut PgConn, sql: &str) -> Result<(), DbError> {
        conn.client
            .batch_execute(sql)
            .await
            .map_err(|e| db_error(&e, false))
    }

    fn is_closed(&self, conn: &PgConn) -> bool {
        conn.client.is_closed()
    }

    async fn cancel(&self, conn: &PgConn) {
        let send = async {
            match conn.addr {
                Some(addr) => {
                    if let Ok(s) = tcp_connect(&addr.ip().to_string(), addr.port()).await {
                        let _ = conn.cancel.cancel_query_raw(s, NoTls).await;
                    }
                }
                None => {
                    let _ = conn.cancel.cancel_query(NoTls).await;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), send).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://poolsim:s3cret@127.0.0.1:55432/poolsim"),
            "postgres://poolsim:***@127.0.0.1:55432/poolsim"
        );
        assert_eq!(
            redact_url("postgresql://u:p@ss/w@h/db?sslmode=disable"),
            "postgresql://u:***@h/db?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?password=x&sslmode=disable"),
            "postgres://u@h/db?password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("host=h user=u password='a b\\'c' dbname=d"),
            "host=h user=u password=*** dbname=d"
        );
        assert_eq!(
            redact_url("host=h PASSWORD = x dbname=d"),
            "host=h PASSWORD = *** dbname=d"
        );
        assert_eq!(
            redact_url("postgres://h/db?user=password"),
            "postgres://h/db?user=password"
        );
        assert_eq!(redact_url("postgres://h:5432/db"), "postgres://h:5432/db");
    }

    #[test]
    fn endpoints_keep_the_password_out_of_sight() {
        let e =
            Endpoint::parse("--pg", "postgres://u:pw@127.0.0.1:5/db", APPLICATION_NAME).unwrap();
        assert_eq!(e.dbname, "db");
        assert!(!e.shown.contains("pw"));
        let a = e.with_dbname("pgbouncer", MONITOR_APPLICATION_NAME);
        assert_eq!(a.shown, "postgres://u:***@127.0.0.1:5/pgbouncer");
        let err = Endpoint::parse("--pg", "postgres://u:pw@h:notaport/db", "x").unwrap_err();
        assert!(!err.contains("pw@"), "{err}");
    }

    #[test]
    fn errors_map_to_causes() {
        let c = |code, msg, connecting| classify(code, msg, connecting);
        assert_eq!(
            c(
                Some("08P01"),
                "FATAL 08P01: no more connections allowed (max_client_conn)",
                true
            ),
            Some(Cause::MaxClientConn)
        );
        assert_eq!(
            c(Some("08P01"), "FATAL 08P01: query_wait_timeout", false),
            Some(Cause::QueryWaitTimeout)
        );
        assert_eq!(
            c(
                Some("53300"),
                "FATAL 53300: sorry, too many clients already",
                true
            ),
            Some(Cause::MaxConnections)
        );
        assert_eq!(
            c(
                Some("57014"),
                "ERROR 57014: canceling statement due to statement timeout",
                false
            ),
            Some(Cause::StatementTimeout)
        );
        assert_eq!(
            c(
                Some("57014"),
                "ERROR 57014: canceling statement due to user request",
                false
            ),
            Some(Cause::CommandTimeout)
        );
        assert_eq!(
            c(Some("57P01"), "FATAL 57P01: terminating connection", false),
            Some(Cause::ConnectionLost)
        );
        assert_eq!(
            c(None, "connection refused", true),
            Some(Cause::ConnectRefused)
        );
        assert_eq!(
            c(None, "connection closed", false),
            Some(Cause::ConnectionLost)
        );
        assert_eq!(
            c(
                Some("08P01"),
                "ERROR 08P01: pgbouncer cannot connect to server",
                false
            ),
            Some(Cause::ServerLoginFailed)
        );
        assert_eq!(c(Some("42P01"), "relation does not exist", false), None);
    }
}
