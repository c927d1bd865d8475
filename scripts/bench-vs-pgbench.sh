#!/usr/bin/env bash
# scripts/bench-vs-pgbench.sh — the live load generator against pgbench on this machine:
# the same select-only transaction, the same client count, through the same PgBouncer,
# runs alternating (pgbench, poolsim, pgbench, ...). Prints one line per run and the ratio
# of mean TPS. Needs a cluster (scripts/cluster.sh up; eval "$(scripts/cluster.sh env)")
# and a release build (cargo build --release).
#
#   scripts/bench-vs-pgbench.sh [CLIENTS [SECONDS [RUNS [THREADS]]]]   defaults: 8 10 3 1
#
# THREADS is both pgbench's -j and poolsim's --threads.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

clients=${1:-8}
seconds=${2:-10}
runs=${3:-3}
threads=${4:-1}
: "${POOLSIM_PG_URL:?run eval \"\$(scripts/cluster.sh env)\" first}"
: "${POOLSIM_BOUNCER_URL:?run eval \"\$(scripts/cluster.sh env)\" first}"
poolsim=target/release/poolsim
[[ -x $poolsim ]] || { echo "build first: cargo build --release" >&2; exit 1; }

psql -X -q "$POOLSIM_PG_URL" <<'SQL'
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS poolsim_bench_accounts (
    aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84));
INSERT INTO poolsim_bench_accounts SELECT g, 1, 0, '' FROM generate_series(1, 10000) g
    ON CONFLICT DO NOTHING;
ANALYZE poolsim_bench_accounts;
SQL

script=$(mktemp)
printf '%s\n' '\set aid random(1, 10000)' \
    'SELECT abalance FROM poolsim_bench_accounts WHERE aid = :aid;' >"$script"

# CPU seconds (user + sys) of one command; its stdout goes to $out
TIMEFORMAT='%U %S'
cpu_of() { # outfile command...
    local f=$1
    shift
    { time "$@" >"$f" 2>&1; } 2>&1 | awk '{print $1 + $2}'
}
out=$(mktemp)
trap 'rm -f "$script" "$out"' EXIT

pg_tps=() ps_tps=() pg_cpu=() ps_cpu=()
printf '%-8s %3s %10s %12s %14s\n' tool run tps latency_ms cpu_us_per_tx
for ((i = 1; i <= runs; i++)); do
    cpu=$(cpu_of "$out" pgbench -n -M simple -c "$clients" -j "$threads" -T "$seconds" -f "$script" "$POOLSIM_BOUNCER_URL")
    tps=$(awk '/^tps = / {print $3; exit}' "$out")
    lat=$(awk '/^latency average = / {print $4; exit}' "$out")
    n=$(awk '/^number of transactions actually processed/ {print $NF; exit}' "$out")
    pg_tps+=("$tps")
    pg_cpu+=("$(awk -v c="$cpu" -v n="$n" 'BEGIN {print 1e6 * c / n}')")
    printf '%-8s %3d %10.0f %12.3f %14.1f\n' pgbench "$i" "$tps" "$lat" "${pg_cpu[-1]}"
    cpu=$(cpu_of "$out" $poolsim bench experiments/bench-vs-pgbench.json -q --format csv --threads "$threads" \
        --set "clients.users=$clients" --set "app.pools.primary.min_size=$clients" \
        --set "app.pools.primary.max_size=$clients" \
        --set "run.duration_s=$((seconds + 1))" --set run.warmup_s=1)
    # the warm-up second runs transactions too: count it at the window's rate
    read -r tps lat < <(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        NR == 2 { print $col["throughput_rps"], $col["latency_mean_ms"] }' "$out")
    ps_tps+=("$tps")
    ps_cpu+=("$(awk -v c="$cpu" -v t="$tps" -v s="$seconds" 'BEGIN {print 1e6 * c / (t * (s + 1))}')")
    printf '%-8s %3d %10.0f %12.3f %14.1f\n' poolsim "$i" "$tps" "$lat" "${ps_cpu[-1]}"
done
mean() { printf '%s\n' "$@" | awk '{s += $1} END {printf "%.2f", s / NR}'; }
pg=$(mean "${pg_tps[@]}")
ps=$(mean "${ps_tps[@]}")
awk -v a="$ps" -v b="$pg" -v ca="$(mean "${ps_cpu[@]}")" -v cb="$(mean "${pg_cpu[@]}")" 'BEGIN {
    printf "mean tps: pgbench %.0f, poolsim %.0f: poolsim = %.1f %% of pgbench\n", b, a, 100 * a / b
    printf "load generator CPU per transaction: pgbench %.1f us, poolsim %.1f us\n", cb, ca }'
