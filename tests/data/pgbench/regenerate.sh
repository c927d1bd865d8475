#!/usr/bin/env bash
# Regenerates the real pgbench fixtures in this directory (see README.md).
#
# Needs PostgreSQL's server binaries and pgbench (Debian: postgresql,
# postgresql-contrib). Creates a throwaway cluster in $WORK on 127.0.0.1:$PORT,
# runs each case as the `postgres` OS user, copies the per-thread logs and
# pgbench's stdout into <case>/, then stops the cluster and deletes it.
# Hand-written cases (legacy-pg14) are left alone.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PGBIN="${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}"
PORT="${PORT:-55499}"
WORK="${WORK:-/tmp/pgbench-fixture-pg}"
PB="$PGBIN/pgbench -h 127.0.0.1 -p $PORT"

as_pg() { if [ "$(id -un)" = postgres ]; then bash -c "$1"; else su postgres -c "$1"; fi; }

rm -rf "$WORK"
mkdir -p "$WORK"
chown postgres: "$WORK" 2>/dev/null || true
as_pg "$PGBIN/initdb -D $WORK/data -A trust -U postgres --no-sync >$WORK/initdb.log"
as_pg "$PGBIN/pg_ctl -D $WORK/data -l $WORK/server.log -w start \
  -o '-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$WORK -c fsync=off'"
trap 'as_pg "$PGBIN/pg_ctl -D $WORK/data -m fast -w stop" || true; rm -rf "$WORK"' EXIT

as_pg "$PGBIN/psql -h 127.0.0.1 -p $PORT -qc 'create database nopk' -c 'create database bench'"
# select-only on tables without primary keys (-I dtgv): every transaction is a
# sequential scan of pgbench_accounts, which keeps the 3 s log small.
as_pg "$PB -i -I dtgv -s 1 nopk" 2>/dev/null
as_pg "$PB -i -s 1 bench" 2>/dev/null
cp "$HERE"/scripts/*.sql "$WORK/"

run_case() {
  local name="$1" db="$2"; shift 2
  local dir="$WORK/run-$name"
  mkdir -p "$dir"
  chown postgres: "$dir" 2>/dev/null || true
  as_pg "cd $dir && PGOPTIONS='-c deadlock_timeout=20ms' $PB $* $db >pgbench-output.txt 2>pgbench-stderr.txt"
  rm -rf "${HERE:?}/$name"
  mkdir -p "$HERE/$name"
  cp "$dir"/pgbench_log.* "$dir/pgbench-output.txt" "$HERE/$name/"
  echo "$name: $(grep -h '^tps' "$dir/pgbench-output.txt")"
}

run_case select-only nopk -S -c 4 -j 2 -T 3 -l
run_case rate bench --rate 300 -c 2 -T 3 -l
run_case rate-latency-limit bench --rate 500 --latency-limit 0.4 -c 2 -T 3 -l
run_case failures bench -f ../conflict.sql@3 -f ../deadlock.sql@1 -c 4 -j 2 -T 2 \
  --max-tries 1 --failures-detailed -l
run_case retries bench -f ../conflict.sql@3 -f ../deadlock.sql@1 -c 4 -j 2 -T 2 \
  --max-tries 3 -l
run_case retries-rate bench -f ../conflict.sql@3 -f ../deadlock.sql@1 -c 4 -j 2 -T 2 \
  --rate 300 --max-tries 3 --failures-detailed -l
run_case aggregated nopk -S -c 2 -T 3 -l --aggregate-interval 1
