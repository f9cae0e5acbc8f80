"""
check_load.py: the load phase of run_e2e.sh.  pgbench ran load.pgbench
through pgbouncer (32 clients): each transaction one request of 10
statements (a list, 8 lookups: an N+1 of 8, one INSERT) with a unique trace
id.  perfguard was reset just before.

  harness: pgbench       exited 0, no failed transaction, T transactions
  harness: statements    perfguard.statements counts each statement of the
                         script T times (8T lookups): what was sent
  requests               perfguard.requests for /pgbench/load: the queries
                         per request add up to the 10T statements sent, T
                         requests, max_queries 10 (none merged), apart from
                         what perfguard.info counts as dropped
  n_plus_one             one N+1 per request, 8 repeats each

Prints "ok - ..." / "not ok - ..." and "N passed, M failed" last.
"""
import argparse
import re
import sys

import psycopg2

ROUTE = '/pgbench/load'
PER_REQUEST = 10
LOOKUPS = 8
results = []


def check(name, ok, detail=None):
    results.append(bool(ok))
    print('%s - %s' % ('ok' if ok else 'not ok', name))
    if detail and not ok:
        for line in str(detail).splitlines():
            print('#   ' + line)
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--pgbench-output', required=True)
    ap.add_argument('--pgbench-status', type=int, required=True)
    ap.add_argument('--dropped-before', type=int, default=0)
    args = ap.parse_args()

    with open(args.pgbench_output) as f:
        out = f.read()
    m = re.search(r'number of transactions actually processed: (\d+)', out)
    t = int(m.group(1)) if m else 0
    fm = re.search(r'number of failed transactions: (\d+)', out)
    failed = int(fm.group(1)) if fm else 0
    tps = re.search(r'tps = ([\d.]+)', out)
    check('[load] harness: pgbench ran %d transactions (%s tps), none failed'
          % (t, tps.group(1) if tps else '?'),
          args.pgbench_status == 0 and t > 0 and failed == 0 and 'ERROR' not in out,
          None if args.pgbench_status == 0 and t > 0 else out[-3000:])

    conn = psycopg2.connect('')
    conn.autocommit = True
    cur = conn.cursor()

    def one(sql, params=()):
        cur.execute(sql, params)
        return cur.fetchone()

    calls = one("""
        SELECT coalesce(sum(calls) FILTER (WHERE query LIKE 'SELECT id, author_id FROM pf_book WHERE id >= $1%%'), 0),
               coalesce(sum(calls) FILTER (WHERE query = 'SELECT name FROM pf_author WHERE id = $1'), 0),
               coalesce(sum(calls) FILTER (WHERE query LIKE 'INSERT INTO pf_hit%%'), 0)
          FROM perfguard.statements""")
    calls = tuple(int(x) for x in calls)
    check('[load] harness: perfguard.statements counted every statement sent (%d x 10)' % t,
          calls == (t, LOOKUPS * t, t),
          'calls of the list, the lookup, the INSERT: %s (want %s)' % (calls, (t, LOOKUPS * t, t)))

    dropped = int(one('SELECT dropped_events FROM perfguard.info')[0]) - args.dropped_before
    req = one("""SELECT coalesce(sum(requests), 0), coalesce(sum(queries), 0),
                        coalesce(max(max_queries), 0)
                   FROM perfguard.requests WHERE route = %s""", (ROUTE,))
    requests, queries, max_queries = (int(x) for x in req)
    sent = PER_REQUEST * t
    print('# pgbench: %d transactions, %d statements; perfguard.requests: requests %d, '
          'queries %d, max_queries %d; info.dropped_events +%d'
          % (t, sent, requests, queries, max_queries, dropped))
    # a dropped request loses at most its 10 queries
    check('[load] the queries per request add up to the %d statements sent (apart from %d dropped)'
          % (sent, dropped),
          queries <= sent and sent - queries <= PER_REQUEST * dropped,
          'perfguard.requests: queries %d' % queries)
    check('[load] requests = %d transactions (apart from %d dropped)' % (t, dropped),
          requests <= t and t - requests <= dropped,
          'perfguard.requests: requests %d' % requests)
    check('[load] every request has its %d queries, none split or merged' % PER_REQUEST,
          max_queries == PER_REQUEST and (requests == 0 or queries == PER_REQUEST * requests),
          'max_queries %d, queries / requests = %.2f'
          % (max_queries, queries / requests if requests else 0))
    np = one("""SELECT count(*), coalesce(sum(occurrences), 0), coalesce(sum(total_repeats), 0),
                       coalesce(max(max_repeats), 0)
                  FROM perfguard.n_plus_one WHERE route = %s""", (ROUTE,))
    rows, occ, total, mx = (int(x) for x in np)
    check('[load] one N+1 of %d per request' % LOOKUPS,
          rows == 1 and occ <= t and t - occ <= dropped and total == LOOKUPS * occ and mx == LOOKUPS,
          'n_plus_one: %d rows, occurrences %d, total_repeats %d, max_repeats %d (want 1, %d, %d, %d)'
          % (rows, occ, total, mx, t, LOOKUPS * t, LOOKUPS))

    passed = sum(results)
    print('%d passed, %d failed' % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


if __name__ == '__main__':
    sys.exit(main())
