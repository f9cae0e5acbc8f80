#!/usr/bin/python3
"""
bench/findings.py: how long perfguard.findings takes over a full store.

Fills the store of a running server (libpq environment: PGHOST, PGPORT,
PGUSER, PGDATABASE) with perfguard.max_statements distinct statements, as
many findings as its findings table holds (loops over three relations,
N+1s, duplicates and write loops on hundreds of routes), slow statements
with sampled plans and deep OFFSETs; then reads perfguard.findings
repeatedly and prints the latencies (ms, client side, all rows fetched):
the first read (which computes the index advice), then reads with the
advice cached.  bench/findings.sh runs it on a throwaway cluster.
"""
import statistics
import sys
import time

import psycopg2

READS = int(sys.argv[1]) if len(sys.argv) > 1 else 30


def main():
    conn = psycopg2.connect('')
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET perfguard.enabled = off")
    cur.execute("""
        DROP TABLE IF EXISTS wide, b_comment, b_post_tags, b_tag, b_post, b_author, b_log;
        CREATE TABLE wide (%s);
        INSERT INTO wide SELECT %s FROM generate_series(1, 2000) g;
        CREATE TABLE b_author (id int PRIMARY KEY, name text);
        CREATE TABLE b_post (id int PRIMARY KEY, title text, author_id int REFERENCES b_author);
        CREATE TABLE b_tag (id int PRIMARY KEY, name text);
        CREATE TABLE b_post_tags (id int PRIMARY KEY, post_id int REFERENCES b_post,
                                  tag_id int REFERENCES b_tag);
        CREATE TABLE b_comment (id int PRIMARY KEY, post_id int REFERENCES b_post, body text);
        CREATE TABLE b_log (id serial PRIMARY KEY, msg text);
        INSERT INTO b_author SELECT g, 'a' || g FROM generate_series(1, 10) g;
        INSERT INTO b_post SELECT g, 't' || g, g FROM generate_series(1, 10) g;
        INSERT INTO b_tag SELECT g, 'tag' || g FROM generate_series(1, 5) g;
        INSERT INTO b_post_tags SELECT g, g, 1 + g %% 5 FROM generate_series(1, 10) g;
        INSERT INTO b_comment SELECT g, 1 + g %% 10, 'c' FROM generate_series(1, 30) g;
        ANALYZE;
    """ % (', '.join('c%d int' % i for i in range(100)), ', '.join('g' for _ in range(100))))
    cur.execute("RESET perfguard.enabled")
    cur.execute("SELECT perfguard.reset()")
    cur.execute("SHOW perfguard.max_statements")
    max_statements = int(cur.fetchone()[0])

    # slow statements with sampled plans (four runs each: one slow, three
    # instrumented) and deep OFFSETs
    cur.execute("SET perfguard.slow_query_ms = 0")
    for i in range(120):
        for _ in range(4):
            cur.execute("SELECT c%d FROM wide WHERE c%d > 10 ORDER BY c%d OFFSET 1500 /*route='%%2Fslow%%2F%d'*/"
                        % (i % 100, (i + 1) % 100, (i + 2) % 100, i))
    cur.execute("RESET perfguard.slow_query_ms")

    # loops on many routes: three relations per row, a duplicate, a write loop
    routes = 0
    while True:
        cur.execute("SELECT finding_entries FROM perfguard.info")
        if cur.fetchone()[0] >= max_statements // 2 - 8 or routes >= 1000:
            break
        tag = "/*framework='django',route='%%2Fr%d%%2F'*/" % routes
        cur.execute("SELECT id, title, author_id FROM b_post ORDER BY id " + tag)
        for k in range(1, 7):
            cur.execute("SELECT name FROM b_author WHERE id = %d %s" % (k, tag))
            cur.execute("SELECT t.id, t.name FROM b_tag t JOIN b_post_tags pt ON t.id = pt.tag_id "
                        "WHERE pt.post_id = %d %s" % (k, tag))
            cur.execute("SELECT id, body FROM b_comment WHERE post_id = %d %s" % (k, tag))
        cur.execute("SELECT name FROM b_author WHERE id = 1 " + tag)
        for k in range(6):
            cur.execute("INSERT INTO b_log (msg) VALUES ('x%d') %s" % (k, tag))
        routes += 1
    cur.execute("SELECT 1 /*route='%2Fend'*/")

    # distinct statements up to the store's capacity
    n = 0
    for i in range(100):
        for j in range(i + 1, 100):
            cur.execute("SELECT c%d, c%d FROM wide WHERE c0 = 1" % (i, j))
            n += 1
            if n % 500 == 0:
                cur.execute("SELECT entries FROM perfguard.info")
                if cur.fetchone()[0] >= max_statements - 20:
                    break
        else:
            continue
        break

    cur.execute("SELECT entries, max_entries, finding_entries, dropped_entries FROM perfguard.info")
    entries, max_entries, findings, dropped = cur.fetchone()
    cur.execute("SELECT count(*) FROM perfguard.slow_queries")
    slow = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM perfguard.plan_findings")
    plan = cur.fetchone()[0]
    print('store: %d of %d statements (%d evicted), %d findings entries on %d routes, '
          '%d slow statements, %d plan findings' % (entries, max_entries, dropped, findings,
                                                    routes, slow, plan))

    def read(sql):
        t0 = time.perf_counter()
        cur.execute(sql)
        rows = cur.fetchall()
        return (time.perf_counter() - t0) * 1000.0, len(rows)

    reader = psycopg2.connect('')
    reader.autocommit = True
    cur = reader.cursor()
    ms, rows = read("SELECT * FROM perfguard.findings")
    print('first read (computes the index advice): %.1f ms, %d cards' % (ms, rows))
    for view in ('findings', 'n_plus_one', 'slow_queries'):
        times = []
        for _ in range(READS):
            ms, rows = read("SELECT * FROM perfguard.%s" % view)
            times.append(ms)
        times.sort()
        print('perfguard.%s, advice cached, %d reads: median %.1f ms, p95 %.1f ms, max %.1f ms (%d rows)'
              % (view, READS, statistics.median(times), times[int(0.95 * (READS - 1))],
                 times[-1], rows))
    t0 = time.perf_counter()
    cur.execute("SELECT perfguard.refresh_advice()")
    print('perfguard.refresh_advice(): %.1f ms' % ((time.perf_counter() - t0) * 1000.0))


if __name__ == '__main__':
    main()
