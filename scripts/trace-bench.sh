#!/usr/bin/env bash
# Run `poolsim bench` with the kernel's scheduler events recorded, for scripts/exec-times.py.
#
#   scripts/trace-bench.sh EXPERIMENT OUT [bench options…]
#
# writes OUT.json (the measured results) and OUT.trace (sched_switch and sched_waking of the
# whole host while the bench ran). Needs root (tracefs). The database URLs come from the
# environment as for `poolsim bench` (eval "$(scripts/cluster.sh env)").
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 EXPERIMENT OUT [bench options…]" >&2; exit 2; }
exp=$1 out=$2
shift 2
T=/sys/kernel/tracing
if [ ! -e "$T/trace" ]; then
    mount -t tracefs nodev "$T" 2>/dev/null || { echo "tracefs is not available at $T (root?)" >&2; exit 1; }
fi
bin=${POOLSIM_BIN:-$(dirname "$0")/../target/release/poolsim}
[ -x "$bin" ] || { echo "no poolsim binary at $bin: cargo build --release first" >&2; exit 1; }
events="sched_switch sched_waking"
stop() {
    echo 0 >"$T/tracing_on"
    for e in $events; do echo 0 >"$T/events/sched/$e/enable"; done
}
trap stop EXIT
echo 0 >"$T/tracing_on"
echo >"$T/trace"
echo 65536 >"$T/buffer_size_kb"
for e in $events; do echo 1 >"$T/events/sched/$e/enable"; done
echo 1 >"$T/tracing_on"
"$bin" bench "$exp" --quiet --format json "$@" >"$out.json"
echo 0 >"$T/tracing_on"
cat "$T/trace" >"$out.trace"
echo "wrote $out.json and $out.trace ($(wc -l <"$out.trace") events)" >&2
