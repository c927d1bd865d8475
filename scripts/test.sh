#!/usr/bin/env bash
# scripts/test.sh — poolsim's whole test suite in one command (CI runs this too).
#
#   scripts/test.sh                        everything, live tests included
#   scripts/test.sh live_                  extra arguments go to `cargo test`
#   POOLSIM_NO_CLUSTER=1 scripts/test.sh   no PostgreSQL: live tests are skipped
#
# It starts a private PostgreSQL with a streaming replica and a PgBouncer in
# front of it (scripts/cluster.sh, which installs the Debian packages when
# they are missing), exports their URLs (POOLSIM_PG_URL, POOLSIM_BOUNCER_URL,
# POOLSIM_BOUNCER_ADMIN_URL, POOLSIM_REPLICA_URL, ...), sets POOLSIM_LIVE=1 so
# that live tests fail instead of skipping when they cannot reach the servers,
# runs `cargo test --locked "$@"` from the repository root, and always stops
# the cluster again on exit. The exit status is cargo's.
#
# The test cluster has its own state directory and ports, so it never touches
# a cluster started by hand with `scripts/cluster.sh up`:
#   POOLSIM_TEST_CLUSTER_DIR   state directory (default /tmp/poolsim-test-cluster)
#   ports                      PostgreSQL 55532, replica 55533, PgBouncer 56532
#   POOLSIM_KEEP_CLUSTER=1     leave the test cluster running afterwards

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Settings and URLs from the caller's shell (e.g. after eval "$(scripts/cluster.sh env)")
# must not leak into the test run: the suite gets its own, known cluster.
while read -r var; do
    unset "$var"
done < <(compgen -v POOLSIM_CLUSTER_ || true)
unset POOLSIM_LIVE POOLSIM_PG_URL POOLSIM_BOUNCER_URL POOLSIM_BOUNCER_ADMIN_URL \
    POOLSIM_REPLICA_URL POOLSIM_BOUNCER_REPLICA_URL

banner() {
    printf '\n==================================================================\n' >&2
    printf '  %s\n' "$@" >&2
    printf '==================================================================\n\n' >&2
}

# The HTML report test screenshots the report in headless Chromium (Debian's `chromium`).
if [[ ! -x /usr/bin/chromium ]] && command -v apt-get >/dev/null 2>&1 && ((EUID == 0)); then
    echo "test.sh: installing chromium (apt-get install -y chromium)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
fi

if [[ "${POOLSIM_NO_CLUSTER:-0}" == 1 ]]; then
    banner "POOLSIM_NO_CLUSTER=1: no PostgreSQL/PgBouncer is started." \
        "LIVE TESTS WILL BE SKIPPED; this is not a full test run."
    status=0
    cargo test --locked "$@" || status=$?
    banner "POOLSIM_NO_CLUSTER=1: live tests were SKIPPED."
    exit "$status"
fi

export POOLSIM_CLUSTER_DIR=${POOLSIM_TEST_CLUSTER_DIR:-/tmp/poolsim-test-cluster}

# shellcheck disable=SC2317 # invoked through the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ "${POOLSIM_KEEP_CLUSTER:-0}" == 1 ]]; then
        echo "test.sh: POOLSIM_KEEP_CLUSTER=1: the test cluster stays up in $POOLSIM_CLUSTER_DIR" >&2
        echo "test.sh: stop it with: POOLSIM_CLUSTER_DIR=$POOLSIM_CLUSTER_DIR scripts/cluster.sh down" >&2
    else
        if ((status != 0)) && [[ -d "$POOLSIM_CLUSTER_DIR" ]]; then
            local f
            for f in postgresql.log replica.log pgbouncer.log; do
                [[ -s "$POOLSIM_CLUSTER_DIR/$f" ]] || continue
                echo "test.sh: last lines of $f:" >&2
                tail -n 20 "$POOLSIM_CLUSTER_DIR/$f" >&2 || true
            done
        fi
        scripts/cluster.sh down || echo "test.sh: warning: could not stop the test cluster" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/cluster.sh up --replica --pg-port 55532 --bouncer-port 56532 --replica-port 55533
cluster_env=$(scripts/cluster.sh env)
eval "$cluster_env"
export POOLSIM_LIVE=1

status=0
cargo test --locked "$@" || status=$?
exit "$status"
