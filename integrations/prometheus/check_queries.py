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
import time

import psycopg2
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
QUERIES = os.path.join(HERE, 'queries.yaml')
DASHBOARD = os.path.join(HERE, '..', 'grafana', 'perfguard-dashboard.json')
USAGES = {'LABEL', 'COUNTER', 'GAUGE', 'DISCARD', 'MAPPEDMETRIC', 'DURATION'}
# the in-band suppression tag every exporter query carries
IGNORE_TAG = "/*perfguard='ignore'*/"

results = []


def check(name, ok, info=None):
    results.append(bool(ok))
    print('%s - %s' % ('ok' if ok else 'not ok', name))
    if not ok and info:
        print('    %s' % info)


with open(QUERIES) as f:
    spec = yaml.safe_load(f)
check('queries.yaml parses to a mapping of namespaces', isinstance(spec, dict) and spec)
for ns, entry in spec.items():
    check('%s: the query ends with the tag %s' % (ns, IGNORE_TAG),
          isinstance(entry, dict) and str(entry.get('query', '')).rstrip().endswith(IGNORE_TAG))

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
            check('perfguard_requests: /essays/ has n_plus_one_requests 2',
                  r and r[0][names.index('n_plus_one_requests')] == 2, rows)


def sql(conn, query, params=None):
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else None


def scrape_twice(strip_tag=False):
    """
    What postgres_exporter does on two scrapes 50 ms apart: every query of
    queries.yaml, in turn, on one connection of the pg_monitor role, twice.
    The session keeps perfguard's default request gap (200 ms; the cluster
    runs with 10s), so both scrapes fall into one request, as in production.
    strip_tag runs the queries without their perfguard='ignore' tag.
    """
    exp = psycopg2.connect('', user='pfg_exporter', options='-c perfguard.request_gap=200ms')
    exp.autocommit = True
    for scrape in (1, 2):
        if scrape == 2:
            time.sleep(0.05)
        for entry in spec.values():
            query = entry['query']
            if strip_tag:
                query = query.replace(IGNORE_TAG, '')
            sql(exp, query)
    exp.close()


def exporter_queryids(conn):
    return [r[0] for r in sql(conn, 'SELECT DISTINCT queryid FROM perfguard.statements '
                                    "WHERE userid = 'pfg_exporter'::regrole")]


def exporter_findings(conn, ids):
    """Findings of the exporter's statements: by query id, or by text reading perfguard's views."""
    return sql(conn, "SELECT category, queryid, query FROM perfguard.findings "
                     "WHERE queryid = ANY(%s) OR query ILIKE '%%FROM perfguard.%%'", [ids])


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

# One request with two different N+1 statements: perfguard_n_plus_one
# counts it once per statement, perfguard_requests_n_plus_one_requests once.
sql(conn, "SELECT perfguard.begin_request('/two-n-plus-one/')")
sql(conn, 'SELECT * FROM essay ORDER BY id LIMIT 10')
for i in range(1, 7):
    sql(conn, 'SELECT * FROM author WHERE id = %d' % i)
for i in range(1, 7):
    sql(conn, 'SELECT * FROM essay WHERE author_id = %d' % i)
sql(conn, 'SELECT * FROM perfguard.end_request()')
metric = {}
for ns in ('perfguard_n_plus_one', 'perfguard_requests'):
    with conn.cursor() as cur:
        cur.execute(spec[ns]['query'])
        names = [d[0] for d in cur.description]
        for row in cur.fetchall():
            if row[names.index('route')] == '/two-n-plus-one/':
                for col, value in zip(names, row):
                    metric['%s_%s' % (ns, col)] = value
check('a request with two N+1 statements: perfguard_n_plus_one_occurrences 2, '
      'perfguard_requests_n_plus_one_requests 1',
      metric.get('perfguard_n_plus_one_occurrences') == 2
      and metric.get('perfguard_requests_n_plus_one_requests') == 1, metric)

conn.close()

# Two scrapes 50 ms apart: the exporter's own statements never become findings.
# This checker looks from a session that perfguard does not record.
obs = psycopg2.connect('', options='-c perfguard.enabled=off')
obs.autocommit = True
sql(obs, 'SELECT perfguard.reset()')
scrape_twice()
ids = exporter_queryids(obs)
check('two scrapes 50 ms apart: perfguard recorded every exporter query (%d)' % len(spec),
      len(ids) == len(spec), ids)
found = exporter_findings(obs, ids)
check('two scrapes 50 ms apart: no finding and no statement from the exporter in perfguard.findings',
      ids and not found, found)
# Every exporter query reads perfguard's views: perfguard's own report
# statements are never findings (issue 17), not even suppressed ones.
ignored = sql(obs, 'SELECT DISTINCT queryid FROM perfguard.ignored WHERE queryid = ANY(%s)', [ids])
check('two scrapes 50 ms apart: no suppressed finding either (reports are not recorded)',
      not ignored, ignored)
# The same two scrapes without the tag: still none, as they are reports.
sql(obs, 'SELECT perfguard.reset()')
scrape_twice(strip_tag=True)
ids = exporter_queryids(obs)
found = exporter_findings(obs, ids)
check('without the tag, the two scrapes are no findings either (perfguard reads are not recorded)',
      ids and not found, found)
obs.close()

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

def panel_metrics(title):
    panels = [p for p in dash['panels'] if p.get('title', '').startswith(title)]
    exprs = [t.get('expr', '') for p in panels for t in p.get('targets', [])]
    return set(re.findall(r'\bperfguard_[a-z0-9_]+', ' '.join(exprs))) if panels else None


# a request counts once, however many N+1 (duplicate) statements it ran
for title, metric in (('Requests with an N+1', 'perfguard_requests_n_plus_one_requests'),
                      ('Duplicate-query requests', 'perfguard_requests_duplicate_requests')):
    used = panel_metrics(title)
    check('the panel "%s" uses exactly %s' % (title, metric), used == {metric}, used)
ids = [p['id'] for p in dash['panels']]
check('panel ids are unique', len(ids) == len(set(ids)))

passed = sum(results)
print('%d passed, %d failed' % (passed, len(results) - passed))
sys.exit(0 if passed == len(results) else 1)
