#!/usr/bin/env python3
# Markdown table of a `poolsim validate` / `poolsim compare --format json` comparison of
# experiments/validate-local.json (used for VALIDATION.md), and the checks of its targets:
#   scripts/comparison-table.py validation/comparison.json
# Points where both sides failed more than 99 % of their requests have (almost) no successful
# request: their throughput and P95 are not compared (shown as "-"), only their failures.
# The last column is the host's speed probe while the point was measured against the
# calibration's (the same work took this much longer), when both were probed.
import json, sys

c = json.load(open(sys.argv[1]))
print("| workload | PgBouncer pool | load | throughput projected | measured | error | P95 projected (ms) | measured | error | failures projected | measured | host vs calibration (CPU / memory) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
errs, perrs, worst_t, worst_p, fail_miss, drifted = [], [], [], [], [], []
for p in c['points']:
    pr = p['params']
    tx = pr['workload.transactions'][0]['name']
    ps = pr['pgbouncer.default_pool_size']
    cl = pr['clients']
    load = f"{cl['users']} users" if cl['mode'] == 'closed' else f"{cl['rate_per_s']:g}/s open"
    name = f"{tx} / pool {ps} / {load}"
    r = {x['metric']: x for x in p['rows']}
    t, f, l = r['throughput_rps'], r['failure_rate'], r['latency_p95_ms']
    fp, fm = f['projected']['mean'], f['measured']['mean']
    all_failed = fp > 0.99 and fm > 0.99
    e = None if all_failed else t['rel_error']
    pe = None if all_failed else l['rel_error']
    if e is not None:
        errs.append(abs(e))
        if abs(e) > 0.10:
            worst_t.append(f"{name} ({100 * e:+.1f} %)")
    if pe is not None:
        perrs.append(abs(pe))
        if abs(pe) > 0.30:
            worst_p.append(f"{name} ({100 * pe:+.1f} %)")
    if (fp > 0.01) != (fm > 0.01):
        fail_miss.append(f"{name} (projected {100 * fp:.1f} %, measured {100 * fm:.1f} %)")
    fmt = lambda m: f"{m['mean']:.0f}" + (f" ± {m['half_width']:.0f}" if m.get('half_width') else "")
    fmtl = lambda m: f"{m['mean']:.2f}" + (f" ± {m['half_width']:.2f}" if m.get('half_width') else "")
    pct = lambda x: '-' if x is None else f'{100 * x:+.1f} %'
    h = p.get('host')
    host = '-' if h is None else f"{100 * h['cpu_change']:+.0f} % / {100 * h['memory_change']:+.0f} %"
    if h is not None and h['drifted']:
        drifted.append(name)
    print(f"| {tx} | {ps} | {load} | {fmt(t['projected'])} | {fmt(t['measured'])} | {pct(e)} "
          f"| {fmtl(l['projected'])} | {fmtl(l['measured'])} | {pct(pe)} "
          f"| {100 * fp:.1f} % | {100 * fm:.1f} % | {host} |")
errs.sort()
perrs.sort()
med = lambda v: (v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2) if v else float('nan')
print(f"\nMedian |error|: throughput {100 * med(errs):.1f} % (worst {100 * errs[-1]:.1f} %) over {len(errs)} points; "
      f"P95 {100 * med(perrs):.1f} % (worst {100 * perrs[-1]:.1f} %) over {len(perrs)} points.")
print(f"Throughput beyond 10 %: {len(worst_t)}" + (": " + "; ".join(worst_t) if worst_t else ""))
print(f"P95 beyond 30 %: {len(worst_p)}" + (": " + "; ".join(worst_p) if worst_p else ""))
print(f"Failures (> 1 %) on one side only: {len(fail_miss)}" + (": " + "; ".join(fail_miss) if fail_miss else ""))
print(f"Host more than 15 % faster or slower than at calibration: {len(drifted)}" + (": " + "; ".join(drifted) if drifted else ""))
