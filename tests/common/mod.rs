//! Helpers shared by the live test binaries: the gate on the cluster's URLs, the table the
//! bench experiment reads, and running the `poolsim` binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The URLs of the live cluster, or `None` (said loudly) when they are not set. With
/// `POOLSIM_LIVE=1` (set by scripts/test.sh) missing URLs fail the test instead.
pub fn cluster(test: &str) -> Option<Cluster> {
    let pg = std::env::var("POOLSIM_PG_URL").ok();
    let bouncer = std::env::var("POOLSIM_BOUNCER_URL").ok();
    match (pg, bouncer) {
        (Some(pg), Some(bouncer)) => Some(Cluster { pg, bouncer }),
        _ => {
            if std::env::var("POOLSIM_LIVE").as_deref() == Ok("1") {
                panic!(
                    "{test}: POOLSIM_LIVE=1 but POOLSIM_PG_URL / POOLSIM_BOUNCER_URL are not set; \
                     run the tests through scripts/test.sh, or eval \"$(scripts/cluster.sh env)\""
                );
            }
            eprintln!(
                "\n************************************************************************\n\
                 SKIPPED {test}: live test, needs POOLSIM_PG_URL and POOLSIM_BOUNCER_URL\n\
                 (scripts/test.sh starts a cluster and sets them)\n\
                 ************************************************************************\n"
            );
            None
        }
    }
}

pub struct Cluster {
    pub pg: String,
    pub bouncer: String,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run SQL on PostgreSQL (simple protocol) and return the first column of the first row.
pub fn psql(url: &str, sql: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connecting to the test cluster");
        tokio::spawn(conn);
        let msgs = client.simple_query(sql).await.expect("test SQL");
        msgs.into_iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
    })
}

/// The table of experiments/bench-local.json: 10,000 accounts, pgbench-like.
pub fn ensure_accounts(pg: &str) {
    psql(
        pg,
        "SET client_min_messages = warning;
         CREATE TABLE IF NOT EXISTS poolsim_bench_accounts (
             aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84));
         INSERT INTO poolsim_bench_accounts
             SELECT g, 1 + (g - 1) / 10000, 0, '' FROM generate_series(1, 10000) g
             ON CONFLICT DO NOTHING;
         ANALYZE poolsim_bench_accounts;",
    );
}

/// Connections of poolsim's load generator or monitors still on the server (other than ours).
pub fn poolsim_connections(pg: &str) -> i64 {
    psql(
        pg,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'poolsim-bench%'",
    )
    .unwrap()
    .parse()
    .unwrap()
}

pub fn poolsim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_poolsim"));
    c.current_dir(repo());
    for v in [
        "POOLSIM_PG_URL",
        "POOLSIM_BOUNCER_URL",
        "POOLSIM_BOUNCER_ADMIN_URL",
        "POOLSIM_REPLICA_URL",
    ] {
        c.env_remove(v);
    }
    c
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A fresh, empty directory under the target directory.
pub fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
