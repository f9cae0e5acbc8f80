#!/bin/bash
#
# t/fuzz/run_sqlsmith.sh [N] [SEED]: fuzz perfguard with sqlsmith.
#
# Starts a throwaway cluster with perfguard preloaded and every detector on
# (slow_query_ms = 0, capture_parameters = on, track = all, thresholds of 2,
# log guards), creates a small schema with foreign keys for sqlsmith to
# combine, and lets sqlsmith send N random queries (default 2000, about a
# minute) as a non-superuser role that may also call every perfguard
# function (reset() included).  Random queries fail all the time; that is
# fine.  The run fails when the server crashed or restarted (a backend
# "terminated by signal", a changed postmaster PID, "server closed the
# connection" from sqlsmith), when an error is an internal one (XX000)
# raised from perfguard, or when the views are not readable afterwards.
#
# Run as an unprivileged user (initdb refuses root), or as root: the script
# then re-runs itself as pfgtest.  Long run: t/fuzz/run_sqlsmith.sh 100000
# Needs: sqlsmith (Debian package), PostgreSQL 15 binaries, perfguard
# installed.  Exit status 0 = clean, 1 = a failure, 77 = sqlsmith missing.

set -uo pipefail

n=${1:-2000}
seed=${2:-$RANDOM}
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
export PATH=$bindir:$PATH

if ! command -v sqlsmith >/dev/null 2>&1; then
	echo "run_sqlsmith: sqlsmith is not installed (apt-get install sqlsmith)" >&2
	exit 77
fi

if [ "$(id -u)" -eq 0 ]; then
	id pfgtest >/dev/null 2>&1 || useradd -m pfgtest
	exec runuser -u pfgtest -- env PATH="$PATH" TMPDIR=/tmp \
		bash "$(readlink -f "${BASH_SOURCE[0]}")" "$n" "$seed"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pfg-sqlsmith.XXXXXX")
data=$work/data
log=$work/server.log
port=$((20000 + RANDOM % 30000))
status=0

cleanup()
{
	pg_ctl -D "$data" -m immediate stop >/dev/null 2>&1
	if [ $status -eq 0 ] && [ -z "${PFG_KEEP:-}" ]; then
		rm -rf "$work"
	else
		echo "run_sqlsmith: work directory kept: $work"
	fi
}
trap cleanup EXIT

fail()
{
	echo "run_sqlsmith: FAIL: $*"
	status=1
}

initdb -D "$data" -A trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 ||
	{ cat "$work/initdb.log"; status=1; exit 1; }
cat >>"$data/postgresql.conf" <<EOC
port = $port
listen_addresses = ''
unix_socket_directories = '$work'
shared_preload_libraries = 'perfguard'
max_connections = 20
restart_after_crash = on
log_min_messages = warning
perfguard.slow_query_ms = 0
perfguard.capture_parameters = on
perfguard.track = all
perfguard.max_statements = 500
perfguard.n_plus_one_threshold = 2
perfguard.duplicate_threshold = 2
perfguard.write_loop_threshold = 2
perfguard.offset_threshold = 1
perfguard.unbounded_rows = 1
perfguard.on_n_plus_one = log
perfguard.on_duplicate = log
perfguard.request_gap = 10ms
EOC
pg_ctl -D "$data" -l "$log" -w start >/dev/null ||
	{ cat "$log"; status=1; exit 1; }
pm_pid=$(head -n 1 "$data/postmaster.pid")

psql_c()
{
	psql -X -q -h "$work" -p "$port" -v ON_ERROR_STOP=1 "$@"
}

psql_c -d postgres <<'EOSQL' || { status=1; exit 1; }
CREATE ROLE smith LOGIN;
CREATE DATABASE fuzz OWNER smith;
ALTER DATABASE fuzz SET statement_timeout = '2s';
ALTER DATABASE fuzz SET lock_timeout = '1s';
EOSQL
psql_c -d fuzz >/dev/null <<'EOSQL' || { status=1; exit 1; }
CREATE EXTENSION perfguard;
GRANT EXECUTE ON FUNCTION perfguard.reset() TO smith;
SET ROLE smith;
CREATE TABLE fz_author (id int PRIMARY KEY, name text, created_at timestamptz);
CREATE TABLE fz_book (id int PRIMARY KEY, author_id int REFERENCES fz_author(id),
                      title text, price numeric, tags text[]);
CREATE TABLE fz_review (id bigint PRIMARY KEY, book_id int REFERENCES fz_book(id),
                        body jsonb, stars int);
INSERT INTO fz_author SELECT g, 'author é ' || g, now() - g * interval '1 hour'
  FROM generate_series(1, 200) g;
INSERT INTO fz_book SELECT g, 1 + g % 200, 'book ' || g, g * 1.5, ARRAY['t' || g % 7]
  FROM generate_series(1, 1000) g;
INSERT INTO fz_review SELECT g, 1 + g % 1000, jsonb_build_object('k', g), g % 5
  FROM generate_series(1, 2000) g;
CREATE INDEX ON fz_book (author_id);
ANALYZE fz_author, fz_book, fz_review;
-- a little of everything for the views to show
SELECT perfguard.begin_request('/seed/');
SELECT name FROM fz_author WHERE id = 1;
SELECT name FROM fz_author WHERE id = 2;
SELECT name FROM fz_author WHERE id = 2;
INSERT INTO fz_review VALUES (100001, 1, '{}', 1);
INSERT INTO fz_review VALUES (100002, 1, '{}', 1);
SELECT * FROM fz_book ORDER BY id OFFSET 500;
SELECT perfguard.end_request();
EOSQL

echo "run_sqlsmith: $n queries, seed $seed, port $port"
start=$(date +%s)
timeout $((n / 5 + 300)) sqlsmith --target="host=$work port=$port dbname=fuzz user=smith" \
	--seed="$seed" --max-queries="$n" --exclude-catalog --verbose \
	>"$work/sqlsmith.out" 2>"$work/sqlsmith.err"
rc=$?
echo "run_sqlsmith: sqlsmith exited with $rc after $(($(date +%s) - start)) s"
tail -n 25 "$work/sqlsmith.err" | sed 's/^/  /'

# 1. the server never crashed nor restarted
if grep -E "terminated by signal|was terminated by exception|server process .* exited with exit code|all server processes terminated" "$log"; then
	fail "a server process crashed (see $log)"
fi
if [ "$(head -n 1 "$data/postmaster.pid" 2>/dev/null)" != "$pm_pid" ] ||
	! kill -0 "$pm_pid" 2>/dev/null; then
	fail "the postmaster is gone or was restarted"
fi
if grep -qiE "server closed the connection|connection to server .* failed|broken" \
	"$work/sqlsmith.err" "$work/sqlsmith.out"; then
	grep -iE "server closed|connection to server|broken" \
		"$work/sqlsmith.err" "$work/sqlsmith.out" | head -5
	fail "sqlsmith lost its connection"
fi
if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
	fail "sqlsmith exited with status $rc"
fi

# 2. no internal error raised from perfguard's code
if grep -B2 -A3 -E "XX000|internal error|unrecognized node type|cache lookup failed" "$log" |
	grep -q -i perfguard; then
	grep -B2 -A3 -E "XX000|internal error|unrecognized node type|cache lookup failed" "$log" | head -40
	fail "internal error from perfguard"
fi

# 3. every view is readable, the store is bounded
out=$(psql_c -d fuzz -At <<'EOSQL' 2>&1
SET statement_timeout = '120s';
SELECT 'statements ' || count(*) FROM perfguard.statements;
SELECT 'n_plus_one ' || count(*) FROM perfguard.n_plus_one;
SELECT 'duplicates ' || count(*) FROM perfguard.duplicates;
SELECT 'write_loops ' || count(*) FROM perfguard.write_loops;
SELECT 'requests ' || count(*) FROM perfguard.requests;
SELECT 'slow_queries ' || count(*) FROM perfguard.slow_queries;
SELECT 'plan_findings ' || count(*) FROM perfguard.plan_findings;
SELECT 'offset_pagination ' || count(*) FROM perfguard.offset_pagination;
SELECT 'findings ' || count(*) FROM perfguard.findings;
SELECT 'index_advice ' || count(*) FROM perfguard.index_advice;
SELECT 'bounded ' || (entries <= max_entries) || ' dropped ' || dropped_entries
  FROM perfguard.info;
EOSQL
)
prc=$?
echo "$out" | sed 's/^/  /'
if [ $prc -ne 0 ]; then
	fail "the views are not readable"
elif ! echo "$out" | grep -q "^bounded true"; then
	fail "more entries than max_entries"
fi

if [ $status -eq 0 ]; then
	echo "run_sqlsmith: OK ($n queries, seed $seed)"
fi
exit $status
