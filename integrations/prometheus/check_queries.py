"""
Checks of queries.yaml and the Grafana dashboard against a live cluster
(run by run_e2e.sh with PGHOST/PGPORT/PGUSER/PGDATABASE exported and the
demo workload loaded).  One "ok - ..." / "not ok - ..." line per check,
"N passed, M failed" last.
"""
import json
import os
import re
import sys

import psycopg2
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
QUERIES = os.path.join(HERE, 'queries.yaml')
DASHBOARD = os.path.join(HERE, '..', 'grafana', 'perfguard-dashboard.json')
USAGES = {'LABEL', 'COUNTER', 'GAUGE', 'DISCARD', 'MAPPEDMETRIC', 'DURATION'}

results = []


def check(name, ok, info=None):
    results.append(bool(ok))
    print('%s - %s' % ('ok' if ok else 'not ok', name))
    if not ok and info:
        print('    %s' % info)


with open(QUERIES) as f:
    spec = yaml.safe_load(f)
check('queries.yaml parses to a mapping of namespaces', isinstance(spec, dict) and spec)

defined = set()
declared = {}
for ns, entry in spec.items():
    cols = []
    ok = isinstance(entry, dict) and isinstance(entry.get('query'), str) and isinstance(entry.get('metrics'), list)
    for m in entry.get('metrics', []) if ok else []:
        if not (isinstance(m, dict) and len(m) == 1):
            ok = False
            continue
        col, props = next(iter(m.items()))
        if props.get('usage') not in USAGES or not props.get('description'):
            ok = False
        cols.append(col)
        if props.get('usage') != 'LABEL':
            defined.add('%s_%s' % (ns, col))
    declared[ns] = cols
    check('%s: well-formed (query, metrics with usage and description)' % ns, ok)
    check('%s: metric names are Prometheus-safe' % ns,
          all(re.match(r'^[a-zA-Z_][a-zA-Z0-9_]*$', '%s_%s' % (ns, c)) for c in cols))


def run_all(conn, who):
    for ns, entry in spec.items():
        try:
            with conn.cursor() as cur:
                cur.execute(entry['query'])
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
        except psycopg2.Error as exc:
            check('%s: runs as %s' % (ns, who), False, str(exc).strip())
            continue
        check('%s: runs as %s and returns the declared columns' % (ns, who),
              names == declared[ns], '%s != %s' % (names, declared[ns]))
        usage = {col: props['usage'] for m in entry['metrics'] for col, props in m.items()}
        labels = [i for i, c in enumerate(names) if usage.get(c) == 'LABEL']
        keys = [tuple(r[i] for i in labels) for r in rows]
        check('%s: label sets are unique (%s rows)' % (ns, len(rows)),
              len(keys) == len(set(keys)))
        if ns == 'perfguard_n_plus_one' and who == 'the superuser':
            check('perfguard_n_plus_one: the demo N+1 route is there',
                  any(r[names.index('route')] == '/essays/' and r[names.index('occurrences')] == 2
                      for r in rows), rows)
        if ns == 'perfguard_requests' and who == 'the superuser':
            r = [x for x in rows if x[names.index('route')] == '/essays/']
            check('perfguard_requests: /essays/ has max_queries 61',
                  r and r[0][names.index('max_queries')] == 61, rows)


conn = psycopg2.connect('')
conn.autocommit = True
run_all(conn, 'the superuser')
with conn.cursor() as cur:
    cur.execute('DROP ROLE IF EXISTS pfg_exporter')
    cur.execute('CREATE ROLE pfg_exporter LOGIN IN ROLE pg_monitor')
mon = psycopg2.connect('', user='pfg_exporter')
mon.autocommit = True
run_all(mon, 'a pg_monitor role')
mon.close()
conn.close()

with open(DASHBOARD) as f:
    dash = json.load(f)
check('the dashboard JSON parses and has a title, uid and panels',
      dash.get('title') and dash.get('uid') and len(dash.get('panels', [])) >= 5)
exprs = [t['expr'] for p in dash['panels'] for t in p.get('targets', [])]
exprs += [v['definition'] for v in dash.get('templating', {}).get('list', []) if v.get('definition')]
check('every panel has a query', all(p.get('targets') for p in dash['panels']))
used = set(re.findall(r'\bperfguard_[a-z0-9_]+', ' '.join(exprs)))
check('the dashboard uses only metrics defined in queries.yaml',
      used and used <= defined, 'undefined: %s' % sorted(used - defined))
check('the dashboard covers N+1, duplicates, write loops, requests, statements and info',
      all(any(m.startswith(ns) for m in used) for ns in spec))
ids = [p['id'] for p in dash['panels']]
check('panel ids are unique', len(ids) == len(set(ids)))

passed = sum(results)
print('%d passed, %d failed' % (passed, len(results) - passed))
sys.exit(0 if passed == len(results) else 1)
