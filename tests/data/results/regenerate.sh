#!/usr/bin/env bash
# Regenerates the results fixtures in this directory from experiments/10k.json, shortened
# (5 s runs, 2 replications) so that the files stay small. Needs jq.
#
#   sweep.json      users 2,000…20,000 × app max_size 20/35 × bouncer default_pool_size 25/35,
#                   with 1 s acquire timeouts and max_client_conn 120 so that requests fail
#   measured.json   sweep.json relabelled "measured", values perturbed, two points dropped: a
#                   stand-in for `poolsim bench` output in the projected-vs-measured overlay
#   no-load.json    the pool sizes swept at a fixed 15,000 users (no load axis)
#   single.json     `poolsim run`: one point, no axes
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
cd "$ROOT"
cargo build --release --quiet
BIN=target/release/poolsim
SHORT=(--set run.duration_s=5 --set run.warmup_s=1 --set run.replications=2
    --set app.pools.primary.acquire_timeout_ms=1000 --set app.pools.replica.acquire_timeout_ms=1000
    --set pgbouncer.max_client_conn=120)

$BIN sweep experiments/10k.json -q --format json "${SHORT[@]}" \
    --set 'sweep={"clients.users":[2000,10000,15000,20000],"app.pools.primary.max_size":[20,35],"pgbouncer.default_pool_size":[25,35]}' \
    | jq -c . >"$HERE/sweep.json"

jq -c '.source = "measured" | .replications = 3
    | .points |= (map(select(.index != 5 and .index != 14))
        | map(.index as $i | (1 + ((($i * 37) % 11) - 5) / 50) as $f
            | .replications = 3
            | .metrics |= map_values(.mean *= $f | .low *= ($f * 0.96) | .high *= ($f * 1.04))))' \
    "$HERE/sweep.json" >"$HERE/measured.json"

$BIN sweep experiments/10k.json -q --format json "${SHORT[@]}" --set clients.users=15000 \
    --set 'sweep={"app.pools.primary.max_size":[20,35],"pgbouncer.default_pool_size":[25,35]}' \
    | jq -c . >"$HERE/no-load.json"

$BIN run experiments/10k.json --format json "${SHORT[@]}" --set clients.users=2000 \
    | jq -c . >"$HERE/single.json"
