#!/bin/bash
#
# bench/keyset.sh -- keyset pagination vs OFFSET on a 1,000,000-row table
#
# Starts a throwaway cluster as the unprivileged user pfgtest, loads
# events(id, created_at, payload) with 1M rows (created_at has duplicates,
# index on (created_at, id)), and times page 1, 100 and 10,000 (page size 25)
# three ways, several repetitions each, printing the median in ms:
#   offset   SELECT ... ORDER BY created_at, id LIMIT 25 OFFSET (page-1)*25
#   keyset   SELECT ... WHERE <perfguard.keyset_predicate(...)> ORDER BY created_at, id LIMIT 25
#   kpage    perfguard.keyset_page('events', 'created_at, id', 25, <cursor>)
# and the ratio offset/keyset.  Not part of the tests.  Timings are taken
# inside the server (clock_timestamp around EXECUTE), so the client and the
# network are not measured.
#
# Usage: bench/keyset.sh [reps]      (run as root; needs the extension installed)
#   EXT=perfguard (default) names the extension that provides perfguard.keyset_*.
#
set -euo pipefail

REPS=${1:-15}
EXT=${EXT:-perfguard}
ROWS=${ROWS:-1000000}
PGBIN=${PGBIN:-$(pg_config --bindir)}
PORT=${PORT:-55437}

id pfgtest >/dev/null 2>&1 || useradd -m pfgtest
DIR=$(mktemp -d /tmp/pfg-keyset-bench.XXXXXX)
chown pfgtest "$DIR"
as_pfg() { runuser -u pfgtest -- "$@"; }
cleanup() {
	as_pfg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$DIR"
}
trap cleanup EXIT

as_pfg "$PGBIN/initdb" -D "$DIR/data" -A trust -U pfgtest >/dev/null
cat >>"$DIR/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
shared_buffers = 256MB
work_mem = 16MB
max_parallel_workers_per_gather = 0
CONF
as_pfg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start >/dev/null

psql_() { as_pfg "$PGBIN/psql" -h "$DIR" -p "$PORT" -d postgres -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_ <<SQL
CREATE EXTENSION $EXT;
CREATE TABLE events (
    id bigint PRIMARY KEY,
    created_at timestamptz NOT NULL,
    payload text NOT NULL
);
-- three rows per second: equal created_at values make the id tie-breaker matter
INSERT INTO events
SELECT i, '2024-01-01 00:00:00+00'::timestamptz + (i / 3) * interval '1 second',
       md5(i::text)
FROM generate_series(1, $ROWS) i;
CREATE INDEX events_created_at_id_idx ON events (created_at, id);
VACUUM ANALYZE events;

CREATE FUNCTION bench_ms(q text, reps int) RETURNS numeric
LANGUAGE plpgsql AS \$\$
DECLARE
    t0 timestamptz;
    ms float8[] := '{}';
    n bigint;
BEGIN
    EXECUTE 'SELECT count(*) FROM (' || q || ') s' INTO n;	-- warm-up
    FOR i IN 1 .. reps LOOP
        t0 := clock_timestamp();
        EXECUTE 'SELECT count(*) FROM (' || q || ') s' INTO n;
        ms := ms || (extract(epoch FROM clock_timestamp() - t0) * 1000)::float8;
    END LOOP;
    IF n <> 25 THEN
        RAISE EXCEPTION 'page returned % rows', n;
    END IF;
    RETURN (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 3)
            FROM unnest(ms) x);
END;
\$\$;
SQL

echo "keyset vs OFFSET, $ROWS rows, page size 25, median of $REPS runs (ms)"
echo "predicate used at page 10000:"
psql_ -At <<'SQL'
SELECT '  ' || perfguard.keyset_predicate('created_at, id',
           (SELECT to_jsonb(e) FROM events e ORDER BY created_at, id OFFSET 249974 LIMIT 1),
           'events');
SELECT '  index: ' || perfguard.keyset_index('events', 'created_at, id');
SQL
psql_ -v reps="$REPS" <<'SQL'
WITH pages(page) AS (VALUES (1), (100), (10000)),
q AS (
    SELECT page, (page - 1) * 25 AS off,
           -- sort values of the last row of the previous page (not timed)
           (SELECT to_jsonb(e) FROM events e ORDER BY created_at, id
            OFFSET greatest((page - 1) * 25 - 1, 0) LIMIT 1) AS after
    FROM pages
),
t AS (
    SELECT page,
        bench_ms(format('SELECT * FROM events ORDER BY created_at, id LIMIT 25 OFFSET %s', off),
                 :reps) AS offset_ms,
        bench_ms(format('SELECT * FROM events %s ORDER BY created_at, id LIMIT 25',
                        CASE WHEN page = 1 THEN ''
                             ELSE 'WHERE ' || perfguard.keyset_predicate('created_at, id', after, 'events') END),
                 :reps) AS keyset_ms,
        bench_ms(format('SELECT * FROM perfguard.keyset_page(%L, %L, 25, %L)', 'events', 'created_at, id',
                        CASE WHEN page = 1 THEN NULL
                             ELSE perfguard.cursor_encode(jsonb_build_object('created_at', after->'created_at',
                                                                             'id', after->'id')) END),
                 :reps) AS keyset_page_ms
    FROM q
)
SELECT page, offset_ms, keyset_ms, keyset_page_ms,
       round(offset_ms / nullif(keyset_ms, 0), 1) AS "offset/keyset"
FROM t ORDER BY page;
SQL
