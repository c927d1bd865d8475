#!/usr/bin/env python3
# How much of a validation run's misses is the level? Re-projects a `poolsim validate` run
# (its model.json and measured.json) with each transaction type's statement times scaled, per
# PgBouncer pool, until the projected 1-user throughput is the measured one — an oracle no
# calibration has, since the 1-user points are held out — and prints each point's errors before
# and after, and the held-out summary without the 1-user points (VALIDATION.md, runs 46-51):
#   scripts/level-oracle.py VALIDATE_OUT_DIR [WORK_DIR]
# A run that calibrated each workload on its own (model-K-NAME.json) is re-projected per workload
# with that workload's model. Needs target/release/poolsim (cargo build --release) and
# experiments/validate-local.json.
import copy, glob, json, os, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, 'target', 'release', 'poolsim')
EXP = os.path.join(ROOT, 'experiments', 'validate-local.json')
RUN = sys.argv[1]
WORK = sys.argv[2] if len(sys.argv) > 2 else os.path.join('/tmp', 'level-oracle', os.path.basename(os.path.abspath(RUN)))


def key(p):
    pr = p['params']
    cl = pr['clients']
    load = f"{cl['users']}u" if cl['mode'] == 'closed' else f"{cl['rate_per_s']:g}/s"
    return (pr['workload.transactions'][0]['name'], pr['pgbouncer.default_pool_size'], load)


def project(model, d):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'model.json'), 'w') as f:
        json.dump(model, f)
    subprocess.run([BIN, 'sweep', EXP, '--set', f"model={json.dumps(os.path.join(d, 'model.json'))}",
                    '--out', d, '-q'], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([BIN, 'compare', os.path.join(d, 'results.json'), os.path.join(RUN, 'measured.json'),
                          '--format', 'json'], capture_output=True, text=True).stdout
    return {key(p): {r['metric']: r for r in p['rows']} for p in json.loads(out)['points']}


def scaled(model, tx, f):
    m = copy.deepcopy(model)
    for t in m['defaults']['workload']['transactions']:
        if t['name'] != tx:
            continue
        for k in ('statement_cpu', 'statement_wait'):
            d = t.get(k, {})
            if 'empirical' in d:
                d['empirical']['quantiles'] = [[a, b * f] for a, b in d['empirical']['quantiles']]
            elif 'const_ms' in d:
                d['const_ms'] *= f
            elif 'lognormal' in d:
                d['lognormal'] = {k: v * f for k, v in d['lognormal'].items()}
    return m


def load_model(path):
    m = json.load(open(path))
    m['defaults'].get('postgres', {}).pop('behind_at_most_ms', None)  # a field of older models
    return m


# each transaction type's model: the run's one model.json, or each workload's own
if os.path.exists(os.path.join(RUN, 'model.json')):
    models = {None: load_model(os.path.join(RUN, 'model.json'))}
else:
    models = {}
    for path in sorted(glob.glob(os.path.join(RUN, 'model-*.json'))):
        m = load_model(path)
        for t in m['defaults']['workload']['transactions']:
            models[t['name']] = m
model_of = lambda tx: models.get(tx, models.get(None))
before = {}
for tx, m in models.items():
    got = project(m, os.path.join(WORK, f'base-{tx or "all"}'))
    before.update({k: v for k, v in got.items() if tx is None or k[0] == tx})
rows = []
for tx in sorted({k[0] for k in before}):
    for pool in sorted({k[1] for k in before if k[0] == tx}):
        f, after = 1.0, before
        for _ in range(4):
            r = after[(tx, pool, '1u')]['throughput_rps']
            f *= r['projected']['mean'] / r['measured']['mean']
            after = project(scaled(model_of(tx), tx, f), os.path.join(WORK, f'{tx}-{pool}'))
        for k, v in after.items():
            if k[:2] != (tx, pool):
                continue
            fl = v['failure_rate']
            both_failed = fl['projected']['mean'] > 0.99 and fl['measured']['mean'] > 0.99
            err = lambda c, m: None if both_failed else c[k][m]['rel_error']
            rows.append((k, f, err(before, 'throughput_rps'), err(after, 'throughput_rps'),
                         err(before, 'latency_p95_ms'), err(after, 'latency_p95_ms')))
pct = lambda x: '     -' if x is None else f'{100 * x:+6.1f} %'
print(f'{os.path.basename(os.path.abspath(RUN))}: errors as calibrated -> with the 1-user level matched')
for k, f, t0, t1, p0, p1 in rows:
    flag = ('T' if t1 is not None and abs(t1) > .10 else ' ') + ('P' if p1 is not None and abs(p1) > .30 else ' ')
    print(f'  {k[0]:6} pool {k[1]} {k[2]:8} level x {f:.3f}  throughput {pct(t0)} -> {pct(t1)}   P95 {pct(p0)} -> {pct(p1)} {flag}')
held = [r for r in rows if r[0][2] != '1u']
T = [abs(r[3]) for r in held if r[3] is not None]
P = [abs(r[5]) for r in held if r[5] is not None]
print(f'  without the 1-user points: throughput median {100 * statistics.median(T):.1f} % (beyond 10 %: {sum(x > .1 for x in T)}), '
      f'P95 median {100 * statistics.median(P):.1f} % (beyond 30 %: {sum(x > .3 for x in P)})')
