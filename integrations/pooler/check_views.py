"""
check_views.py: compare what the drivers of one phase sent (their manifests)
with what perfguard reports, and check from the server log that the phase
really exercised what it claims (the harness checks).

    check_views.py --phase pool2 --dir PHASE_DIR --log server.log --pool 2 --gap-ms 1000

Connects directly to the cluster (PGHOST, PGPORT, PGUSER, PGDATABASE), never
through pgbouncer.  Per route of the manifests:
  <route>: requests         perfguard.requests: requests = R, queries = R x Q,
                            max_queries = Q (so every request has Q queries:
                            none split, none merged)
  <route>: findings         exactly the expected findings, once per request
                            with the exact count sent, or none for a clean twin:
                            n_plus_one (occurrences R, total_repeats R x N,
                            max_repeats N, max_distinct_params N), duplicates
                            (occurrences R, total_duplicates R x (D - 1),
                            max_duplicates D), write_loops (occurrences R,
                            total_repeats R x W, max_repeats W); no repeating
                            sequence
  <route>: request id       (integrations) every statement carries a request id,
                            a distinct one per request: traceparent or request_id
  harness: <route> sent     the server log shows R x Q statements of the route
Per phase (harness, from the log between the phase's markers): how many
backends served it, that requests interleaved on one backend, that a request
ran on two backends (pool 2), that no untagged query of a client ran inside
the phase, that no request paused longer than request_gap.

Prints "ok - ..." / "not ok - ..." lines (details after "#") and
"N passed, M failed" last; exits 1 when something failed.
"""
import argparse
import glob
import json
import re
import sys
from datetime import datetime
from urllib.parse import unquote

import psycopg2

results = []


def check(name, ok, detail=None):
    results.append(bool(ok))
    print('%s - %s' % ('ok' if ok else 'not ok', name))
    if detail and not ok:
        for line in str(detail).splitlines():
            print('#   ' + line)
    sys.stdout.flush()


# ---------------------------------------------------------------- server log

RECORD = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \S+ \[(\d+)\] ([A-Z]+):  (.*)$')
STATEMENT = re.compile(r'^(?:statement|execute [^:]*): (.*)$', re.S)
COMMENT = re.compile(r'/\*([^*]*)\*/\s*;?\s*$')
PAIR = re.compile(r"\s*([^=,\s]+)='((?:[^'\\]|\\.)*)'\s*,?")
# untagged statements that perfguard does not count as queries, and
# pgbouncer's server_check_query (lowercase, unlike the clients' SELECT 1)
UTILITY = re.compile(r'^\s*(?:(?i:BEGIN|COMMIT|ROLLBACK|START|SAVEPOINT|RELEASE|SET|RESET|SHOW|'
                     r'DISCARD|DEALLOCATE|END|ABORT)\b|select 1\s*;?\s*$)')

def parse_tags(sql):
    m = COMMENT.search(sql)
    if not m:
        return None
    tags = {}
    for k, v in PAIR.findall(m.group(1)):
        tags[unquote(k)] = unquote(v.replace("\\'", "'"))
    return tags


def request_key(tags):
    tp = tags.get('traceparent')
    if tp:
        parts = tp.split('-')
        return 't:' + (parts[1] if len(parts) >= 3 else tp)
    if tags.get('request_id'):
        return 'r:' + tags['request_id']
    return None


def read_log(path, phase):
    """The statements logged between the phase's markers: (time, pid, sql)."""
    records = []
    cur = None
    with open(path, errors='replace') as f:
        for line in f:
            line = line.rstrip('\n')
            m = RECORD.match(line)
            if m:
                cur = [m.group(1), int(m.group(2)), m.group(3), m.group(4)]
                records.append(cur)
            elif cur is not None:
                cur[3] += '\n' + line
    out = []
    inside = False
    for ts, pid, level, msg in records:
        if level != 'LOG':
            continue
        sm = STATEMENT.match(msg)
        if not sm:
            continue
        sql = sm.group(1)
        if "'pfgt-begin:%s'" % phase in sql:
            inside = True
            continue
        if "'pfgt-end:%s'" % phase in sql:
            inside = False
            continue
        if inside:
            t = datetime.strptime(ts, '%Y-%m-%d %H:%M:%S.%f')
            out.append((t, pid, sql))
    return out


# ------------------------------------------------------------------- views

def connect():
    conn = psycopg2.connect('')
    conn.autocommit = True
    return conn


def query(conn, sql, args=()):
    with conn.cursor() as c:
        c.execute(sql, args)
        return c.fetchall()


def findings(conn, route):
    got = {}
    got['n_plus_one'] = query(conn, """
        SELECT occurrences, total_repeats, max_repeats, max_distinct_params, left(query, 70)
          FROM perfguard.n_plus_one WHERE route = %s ORDER BY queryid""", (route,))
    got['duplicates'] = query(conn, """
        SELECT occurrences, total_duplicates, max_duplicates, left(query, 70)
          FROM perfguard.duplicates WHERE route = %s ORDER BY queryid""", (route,))
    got['write_loops'] = query(conn, """
        SELECT occurrences, total_repeats, max_repeats, left(query, 70)
          FROM perfguard.write_loops WHERE route = %s ORDER BY queryid""", (route,))
    got['sequences'] = query(conn, """
        SELECT occurrences, total_iterations, max_iterations, queries
          FROM perfguard.n_plus_one_sequences WHERE route = %s""", (route,))
    return got


def expected_findings(r):
    n = r['requests']
    want = {'n_plus_one': [], 'duplicates': [], 'write_loops': [], 'sequences': []}
    if r['n_plus_one']:
        k = r['n_plus_one']
        want['n_plus_one'] = [(n, n * k, k, k)]
    if r['duplicate']:
        k = r['duplicate']
        want['duplicates'] = [(n, n * (k - 1), k)]
    if r['write_loop']:
        k = r['write_loop']
        want['write_loops'] = [(n, n * k, k)]
    return want


def compare_findings(got, want):
    """(ok, text): counts compared, query texts only shown."""
    lines = []
    ok = True
    for kind in ('n_plus_one', 'duplicates', 'write_loops', 'sequences'):
        w = want[kind]
        g = got[kind]
        if kind == 'sequences':
            gc = [tuple(row) for row in g]
        else:
            gc = [tuple(row[:len(w[0])]) if w else tuple(row[:-1]) for row in g]
        if gc != w:
            ok = False
            lines.append('%s: want %s' % (kind, w or 'none'))
            for row in g:
                lines.append('  got %s' % (tuple(row),))
            if not g:
                lines.append('  got none')
    return ok, '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--phase', required=True)
    ap.add_argument('--dir', required=True)
    ap.add_argument('--log', required=True)
    ap.add_argument('--pool', type=int, default=0, help='server connections; 0 = direct')
    ap.add_argument('--gap-ms', type=int, default=200)
    ap.add_argument('--stacks', default='', help='only these manifests (comma-separated)')
    args = ap.parse_args()

    routes = []
    for path in sorted(glob.glob('%s/manifest.*.json' % args.dir)):
        stack = path.split('manifest.')[1][:-5]
        if args.stacks and stack not in args.stacks.split(','):
            continue
        with open(path) as f:
            routes.extend(json.load(f))
    if not routes:
        check('[%s] drivers wrote manifests' % args.phase, False, 'none in %s' % args.dir)

    log = read_log(args.log, args.phase)
    by_route = {}
    per_pid = {}
    untagged = []
    for t, pid, sql in log:
        tags = parse_tags(sql)
        if not tags or 'route' not in tags:
            if not UTILITY.match(sql):
                untagged.append((pid, sql[:120]))
            continue
        key = request_key(tags)
        by_route.setdefault(tags['route'], []).append((t, pid, key))
        per_pid.setdefault(pid, []).append((tags['route'], key))

    conn = connect()
    p = '[%s]' % args.phase
    for r in routes:
        route, n, q = r['route'], r['requests'], r['queries']
        stmts = by_route.get(route, [])
        # harness: the log shows what the manifest says was sent
        check('%s harness: %s sent %d requests x %d statements' % (p, route, n, q),
              len(stmts) == n * q, 'the server log shows %d tagged statements' % len(stmts))
        keys = {}
        for t, pid, key in stmts:
            keys.setdefault(key, []).append((t, pid))
        if r['ids']:
            label = 'harness' if r['stack'] in ('psql', 'pgbench') else 'integration'
            sizes = sorted({len(v) for v in keys.values()})
            check('%s %s: %s: every statement carries a request id, one per request' % (p, label, route),
                  None not in keys and len(keys) == n and sizes == [q],
                  '%d statements without traceparent/request_id; %d distinct ids (want %d); '
                  'statements per id %s (want [%d])' % (len(keys.get(None, [])), len(
                      [k for k in keys if k]), n, sizes, q))
            longest = 0.0
            for key, seen in keys.items():
                if key is None:
                    continue
                seen.sort()
                for a, b in zip(seen, seen[1:]):
                    longest = max(longest, (b[0] - a[0]).total_seconds() * 1000)
            if None not in keys:
                check('%s harness: %s: no request paused longer than request_gap' % (p, route),
                      longest < args.gap_ms,
                      'longest pause between two statements of one request: %.0f ms' % longest)

        rq = query(conn, """SELECT coalesce(sum(requests), 0), coalesce(sum(queries), 0),
                                   coalesce(max(max_queries), 0)
                              FROM perfguard.requests WHERE route = %s""", (route,))[0]
        got = tuple(int(x) for x in rq)
        want = (n, n * q, q)
        check('%s %s: requests = %d of %d queries each%s' % (
            p, route, n, q, ' (%s)' % r['note'] if r.get('note') else ''),
            got == want, 'perfguard.requests: requests %d, queries %d, max_queries %d '
            '(want %d, %d, %d)' % (got + want))
        g = findings(conn, route)
        w = expected_findings(r)
        ok, text = compare_findings(g, w)
        desc = ', '.join(
            '%s %s' % (k, r[k]) for k in ('n_plus_one', 'duplicate', 'write_loop') if r[k]) \
            or 'clean twin: no finding'
        check('%s %s: findings: %s, once per request with the exact count' % (p, route, desc)
              if r['n_plus_one'] or r['duplicate'] or r['write_loop']
              else '%s %s: %s' % (p, route, desc), ok, text)

    # ---- phase-level harness checks
    pids = set(per_pid)
    if args.pool:
        check('%s harness: %d backend(s) served the tagged statements (pool size %d)'
              % (p, args.pool, args.pool), len(pids) == args.pool,
              'backends seen: %d' % len(pids))
        # a request (or, without ids, a route) in two runs on one backend:
        # something else ran between its statements
        interleaved = 0
        for seq in per_pid.values():
            runs = {}
            prev = object()
            for route, key in seq:
                k = key or route
                if k != prev:
                    runs[k] = runs.get(k, 0) + 1
                prev = k
            interleaved += sum(1 for c in runs.values() if c > 1)
        check('%s harness: requests of different clients interleaved on one backend' % p,
              interleaved > 0, 'no A..B..A pattern on any backend')
        if args.pool > 1:
            backends = {}
            for pid, seq in per_pid.items():
                for _, key in seq:
                    if key:
                        backends.setdefault(key, set()).add(pid)
            spans = [k for k, s in backends.items() if len(s) > 1]
            if backends:
                check('%s harness: requests ran on several backends' % p, len(spans) > 0,
                      'no request id seen on two backends')
            else:
                print('# %s no request ids in this phase: cannot tell whether a request '
                      'ran on several backends' % p)
    check('%s harness: no untagged query from a client inside the phase' % p, not untagged,
          '\n'.join('[%d] %s' % u for u in untagged[:10]))

    passed = sum(results)
    print('%d passed, %d failed' % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == '__main__':
    sys.exit(main())
