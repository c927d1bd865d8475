#!/usr/bin/env python3
"""How long PostgreSQL backends run a statement on the CPU, from a scheduler trace.

Reads the text of a tracefs dump with the sched_switch and sched_waking events (as
scripts/trace-bench.sh writes it) and finds each statement a backend ran: from the moment a
client process (PgBouncer, the load generator) woke the backend, through its first time on a
core, to the moment it woke a client process again (its response). Statements that ran without
leaving the core in between are timed from their first time on the core to the response: their
execution on the CPU, without queueing or wake-up.

    scripts/exec-times.py RUN.trace [--waker COMM] [--slow-ms MS] [--gaps]

prints how many statements ran, their median and percentiles, per core, and the share slower
than --slow-ms (default: 1.33 x the 10th percentile, which splits a two-speed distribution
between its modes); --gaps adds the same by the time since the last statement on that core.
--waker keeps only statements sent by processes of that name (`pgbouncer`: the workload's
statements through PgBouncer, without the load generator's own monitoring queries).

The kernel's trace buffer keeps the latest events: trace a few seconds of one point.
"""
import argparse
import re
import statistics
import sys

LINE = re.compile(r"^\s*(.+?)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): (.*)$")
WAKEE = re.compile(r"comm=(.+?) pid=(\d+)")
SWITCH = re.compile(r"prev_comm=(.*?) prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)")


def statements(path, waker=None):
    """(start ms, execution ms, core, interrupted) of each statement, in trace order."""
    open_ = {}  # backend pid -> [start, core, interrupted, done]
    on_core = {}  # core -> the pid running there
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            comm, pid, cpu, ts, event, rest = m.groups()
            pid, cpu, t = int(pid), int(cpu), float(ts) * 1e3
            if event == "sched_waking":
                w = WAKEE.search(rest)
                if not w:
                    continue
                wcomm, wpid = w.group(1), int(w.group(2))
                if wcomm == "postgres" and comm != "postgres" and waker in (None, comm):
                    # woken while still on its core (it had not yet gone to sleep): it starts now
                    core = next((c for c, p in on_core.items() if p == wpid), None)
                    open_[wpid] = [t if core is not None else None, core, False, None]
                elif comm == "postgres" and wcomm != "postgres" and pid in open_:
                    e = open_[pid]
                    if e[0] is not None and e[3] is None:
                        e[3] = t
            elif event == "sched_switch":
                s = SWITCH.search(rest)
                if not s:
                    continue
                prev, state, nxt = int(s.group(2)), s.group(3), int(s.group(5))
                on_core[cpu] = nxt
                if prev in open_:
                    e = open_[prev]
                    if e[3] is None:
                        e[2] = True
                    elif state.startswith("S") or state.startswith("D"):
                        if e[0] is not None:
                            out.append((e[0], e[3] - e[0], e[1], e[2]))
                        del open_[prev]
                if nxt in open_ and open_[nxt][0] is None:
                    open_[nxt][0], open_[nxt][1] = t, cpu
    return out


def q(v, p):
    return v[min(len(v) - 1, int(p * len(v)))]


def line(name, v, slow):
    if not v:
        return f"{name:>24}  n 0"
    v = sorted(v)
    share = sum(x > slow for x in v) / len(v)
    return (f"{name:>24}  n {len(v):5d}  median {statistics.median(v):.3f}  p90 {q(v, .9):.3f}  "
            f"p95 {q(v, .95):.3f}  slower than {slow:.2f} ms: {100 * share:4.1f} %")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("trace")
    ap.add_argument("--slow-ms", type=float)
    ap.add_argument("--gaps", action="store_true")
    ap.add_argument("--waker")
    a = ap.parse_args()
    st = statements(a.trace, a.waker)
    clean = [s for s in st if not s[3]]
    if not clean:
        sys.exit("no statement found: was the trace taken with sched_switch and sched_waking on?")
    ex = sorted(s[1] for s in clean)
    slow = a.slow_ms if a.slow_ms else 1.33 * q(ex, 0.1)
    print(f"statements: {len(st)}, of which {len(st) - len(clean)} left the core before responding")
    print(line("on the CPU, all", ex, slow))
    for c in sorted({s[2] for s in clean}):
        print(line(f"core {c}", [s[1] for s in clean if s[2] == c], slow))
    if a.gaps:
        last, rows = {}, []
        for t, d, c, _ in sorted(clean):
            if c in last:
                rows.append((t - last[c], d))
            last[c] = t + d
        for lo, hi in ((0, 0.5), (0.5, 2), (2, 5), (5, 20), (20, 1e12)):
            name = f"core idle {lo}-{hi if hi < 1e12 else 'inf'} ms"
            print(line(name, [d for g, d in rows if lo <= g < hi], slow))


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        sys.stderr.close()
