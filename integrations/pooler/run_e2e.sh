#!/bin/bash
#
# integrations/pooler/run_e2e.sh: perfguard's request scopes behind a
# transaction-mode pooler (issue 15).  Debian's pgbouncer 1.18 runs in front
# of a throwaway cluster, in transaction mode, once with 1 and once with 2
# server connections (integrations/lib/pgbouncer.sh).
#
# Phases: direct (every client on its own connection, no pooler: the
# baseline, which also proves the expected numbers), pool1, pool2.  In each,
# four drivers run at once, each with 4 concurrent clients (plus back-to-back
# clients), every one in autocommit unless said otherwise:
#   psql        psql_clients.py: tagged psql scripts (traceparent, request_id),
#               N+1, clean twin, duplicate, write loop of 300, back to back
#   django      django_clients.py: Django 3.2, perfguard_django middleware
#               defaults, CONN_MAX_AGE = 60: N+1 (FK, many-to-many), write
#               loop, duplicate and their clean twins; ten back-to-back
#               requests of a clean page on one persistent connection
#   rails       ar_clients.rb: ActiveRecord 6.1, prepared_statements: false,
#               integrations/rails/lib: N+1 and its includes() twin, a
#               create! loop (BEGIN/COMMIT each) and insert_all, duplicate
#   sqlalchemy  sa_clients.py: SQLAlchemy 1.4 + perfguard_sqlalchemy, in
#               autocommit and in transactions (an N+1 spread over two)
# check_views.py then compares, route by route, what was sent with
# perfguard.requests / n_plus_one / duplicates / write_loops /
# n_plus_one_sequences: each finding once per request with the exact count,
# nothing for a clean twin, the right number of requests and of queries per
# request; and checks from the server log (log_statement = all) that the
# phase did what it claims (harness checks: the pool size, requests
# interleaved on one backend, requests spread over two backends, no
# untagged query, no pause longer than request_gap).
#
# Load: pgbench through pgbouncer (2 server connections), 32 clients, for
# PFG_POOLER_LOAD_SECONDS (default 60; 0 skips it), each transaction one
# request of 10 statements tagged with a unique trace id (load.pgbench): the
# queries per request in perfguard.requests add up to the statements sent,
# apart from what perfguard.info counts as dropped.
#
# Environment: PFG_POOLER_LOAD_SECONDS (60), PFG_POOLER_PHASES ("direct pool1
# pool2"), PFG_POOLER_STACKS ("psql django rails sqlalchemy"), KEEP_TMP=1.
# As root it re-runs itself as pfgtest.  Last line: "N passed, M failed".

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/cluster.sh"
source "$here/../lib/pgbouncer.sh"
# passed on when re-run as pfgtest (words without spaces: lists use commas)
PFG_EXTRA_ENV="${PFG_EXTRA_ENV:-} PFG_POOLER_LOAD_SECONDS=${PFG_POOLER_LOAD_SECONDS:-60}"
PFG_EXTRA_ENV+=" PFG_POOLER_PHASES=$(echo ${PFG_POOLER_PHASES:-direct pool1 pool2} | tr ' ' ,)"
PFG_EXTRA_ENV+=" PFG_POOLER_STACKS=$(echo ${PFG_POOLER_STACKS:-psql django rails sqlalchemy} | tr ' ' ,)"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"

load_seconds=${PFG_POOLER_LOAD_SECONDS:-60}
phases=$(echo "${PFG_POOLER_PHASES:-direct pool1 pool2}" | tr ',' ' ')
stacks=$(echo "${PFG_POOLER_STACKS:-psql django rails sqlalchemy}" | tr ',' ' ')
# request_gap of the functional phases: long enough that a stall of a busy
# test machine does not split a request (the harness checks measure the
# longest pause); the load phase runs with the default, 200ms.
gap_ms=1000
settle=2

pfg_start_cluster "perfguard.request_gap = '${gap_ms}ms'" \
	"log_statement = 'all'" "log_line_prefix = '%m [%p] '" \
	"max_connections = 100"
pfg_psql -c 'CREATE EXTENSION perfguard' -f "$here/schema.sql" >/dev/null ||
	{ echo "0 passed, 1 failed"; exit 1; }
log=$PFG_TMP/server.log

check "pgbouncer with 1 server connection starts" pfg_start_pgbouncer pool1 1
port_pool1=$PFG_BOUNCER_PORT
check "pgbouncer with 2 server connections starts" pfg_start_pgbouncer pool2 2
port_pool2=$PFG_BOUNCER_PORT
if [ "$pfg_failed" -gt 0 ]; then
	pfg_finish
fi

# add_counts FILE: add the "N passed, M failed" of a checker's output.
add_counts()
{
	local line m
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1)
	if [ -z "$line" ]; then
		pfg_failed=$((pfg_failed + 1))
		return
	fi
	pfg_passed=$((pfg_passed + ${line%% passed*}))
	m=${line#*passed, }
	pfg_failed=$((pfg_failed + ${m%% failed}))
}

# run_driver STACK: the driver of one stack (PFGT_* in the environment).
run_driver()
{
	case $1 in
		psql) "$PYTHON" "$here/psql_clients.py" ;;
		django) "$PYTHON" "$here/django_clients.py" ;;
		rails) /usr/bin/ruby "$here/ar_clients.rb" ;;
		sqlalchemy) "$PYTHON" "$here/sa_clients.py" ;;
		*) echo "unknown stack $1" >&2; return 2 ;;
	esac
}

# run_phase NAME HOST PORT POOL: every driver at once against HOST:PORT.
run_phase()
{
	local phase=$1 host=$2 port=$3 pool=$4 dir s waiting rc _
	local -A pids=()
	dir=$PFG_TMP/phase-$phase
	mkdir -p "$dir"
	echo "== phase $phase ($([ "$pool" = 0 ] && echo "direct connections" ||
		echo "pgbouncer, transaction mode, $pool server connection(s)"))"
	for s in $stacks; do
		(
			export PFGT_PHASE=$phase PFGT_DIR=$dir PFGT_HOST=$host PFGT_PORT=$port
			export PFGT_PSQL=$PFG_BINDIR/psql
			run_driver "$s"
		) >"$dir/$s.out" 2>&1 &
		pids[$s]=$!
	done
	# every driver connected and warmed up (or dead)
	for _ in $(seq 1200); do
		waiting=0
		for s in "${!pids[@]}"; do
			if [ ! -e "$dir/ready.$s" ] && kill -0 "${pids[$s]}" 2>/dev/null; then
				waiting=1
			fi
		done
		[ $waiting = 0 ] && break
		sleep 0.1
	done
	# the warm-up statements' requests end before the phase starts
	sleep "$settle"
	pfg_psql -c "SELECT 'pfgt-begin:$phase'" >/dev/null
	touch "$dir/go"
	for s in "${!pids[@]}"; do
		wait "${pids[$s]}"
		rc=$?
		if [ $rc -ne 0 ] || [ ! -e "$dir/manifest.$s.json" ]; then
			echo "--- $s driver output (tail)"
			tail -n 40 "$dir/$s.out"
		fi
		check "[$phase] $s clients ran without error" [ $rc -eq 0 ]
	done
	pfg_psql -c "SELECT 'pfgt-end:$phase'" >/dev/null
	# requests end request_gap after their last statement
	sleep "$settle"
	(cd "$here" && "$PYTHON" check_views.py --phase "$phase" --dir "$dir" --log "$log" \
		--pool "$pool" --gap-ms "$gap_ms") >"$dir/checks.out" 2>&1
	cat "$dir/checks.out"
	add_counts "$dir/checks.out"
}

for phase in $phases; do
	case $phase in
		direct) run_phase direct "$PGHOST" "$PGPORT" 0 ;;
		pool1) run_phase pool1 127.0.0.1 "$port_pool1" 1 ;;
		pool2) run_phase pool2 127.0.0.1 "$port_pool2" 2 ;;
		*) echo "unknown phase $phase" >&2 ;;
	esac
done

# ---- load: pgbench through pgbouncer, 32 clients
run_load()
{
	local dir=$PFG_TMP/load rc
	mkdir -p "$dir"
	echo "== load: pgbench, 32 clients, ${load_seconds}s, pgbouncer with 2 server connections"
	# no statement log under load; the default request_gap (200ms)
	pfg_psql -c "ALTER SYSTEM SET log_statement = 'none'" \
		-c "ALTER SYSTEM SET perfguard.request_gap = '200ms'" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 1
	check "[load] harness: request_gap is 200ms on the pool's backends" \
		[ "$(pfg_psql -h 127.0.0.1 -p "$port_pool2" -c 'SHOW perfguard.request_gap')" = 200ms ]
	pfg_psql -c 'SELECT perfguard.reset()' >/dev/null
	sleep 1
	pfg_psql -At -c 'SELECT dropped_events FROM perfguard.info' >"$dir/dropped_before"
	"$PFG_BINDIR/pgbench" -n -h 127.0.0.1 -p "$port_pool2" -c 32 -j 4 -T "$load_seconds" \
		-f "$here/load.pgbench" "$PGDATABASE" >"$dir/pgbench.out" 2>&1
	rc=$?
	sleep "$settle"
	(cd "$here" && "$PYTHON" check_load.py --pgbench-output "$dir/pgbench.out" \
		--pgbench-status "$rc" --dropped-before "$(cat "$dir/dropped_before")") \
		>"$dir/checks.out" 2>&1
	cat "$dir/checks.out"
	add_counts "$dir/checks.out"
}

if [ "$load_seconds" -gt 0 ]; then
	run_load
fi

pfg_finish
