#!/usr/bin/env python3
# Markdown table of a `poolsim validate` / `poolsim compare --format json` comparison of
# experiments/validate-local.json (used for VALIDATION.md):
#   scripts/comparison-table.py validation/comparison.json
import json,sys
c=json.load(open(sys.argv[1]))
print("| workload | PgBouncer pool | load | throughput projected | measured | error | P95 projected (ms) | measured | failures projected | measured |")
print("|---|---|---|---|---|---|---|---|---|---|")
errs=[];perrs=[]
for p in c['points']:
    pr=p['params']; tx=pr['workload.transactions'][0]['name']; ps=pr['pgbouncer.default_pool_size']; cl=pr['clients']
    load = f"{cl['users']} users" if cl['mode']=='closed' else f"{cl['rate_per_s']:g}/s open"
    r={x['metric']:x for x in p['rows']}
    t=r['throughput_rps']; f=r['failure_rate']; l=r['latency_p95_ms']
    e=t['rel_error']; pe=l['rel_error']
    if e is not None: errs.append(abs(e))
    if pe is not None: perrs.append(abs(pe))
    fmt=lambda m: f"{m['mean']:.0f}" + (f" ± {m['half_width']:.0f}" if m.get('half_width') else "")
    fmtl=lambda m: f"{m['mean']:.2f}" + (f" ± {m['half_width']:.2f}" if m.get('half_width') else "")
    print(f"| {tx} | {ps} | {load} | {fmt(t['projected'])} | {fmt(t['measured'])} | {'-' if e is None else f'{100*e:+.1f} %'} | {fmtl(l['projected'])} | {fmtl(l['measured'])} | {100*f['projected']['mean']:.1f} % | {100*f['measured']['mean']:.1f} % |")
errs.sort(); perrs.sort()
med=lambda v: (v[len(v)//2] if len(v)%2 else (v[len(v)//2-1]+v[len(v)//2])/2) if v else float('nan')
print(f"\nMedian |error|: throughput {100*med(errs):.1f} % (worst {100*errs[-1]:.1f} %), P95 {100*med(perrs):.1f} % (worst {100*perrs[-1]:.1f} %), over {len(errs)} and {len(perrs)} points.")
