#!/bin/bash
# ----------------------------------------------------------------------------
# bench/index_advice.sh
#
# Time and peak backend memory of one read of perfguard.index_advice over
# 200, 1,000 and 5,000 recorded statements (issue 18).  Not part of the test
# suite; run as root from the repository:
#
#   bench/index_advice.sh [--no-build] [--sizes "200 1000 5000"]
#
# Builds and installs perfguard from this tree (under the install lock of
# scripts/with-install-lock.sh, held until the throwaway cluster has loaded
# the library), then, as the OS user pfgtest:
#   - 10 tables of 12 integer columns and 20,000 rows each, analysed;
#   - 5,000 distinct statements (distinct query ids) over them: filters with
#     equality and range columns and an ORDER BY (70%), two-column counts
#     (20%), joins on a column (10%); each run once;
#   - for each size N: perfguard.reset(), the first N statements, then in a
#     fresh session one SELECT count(*) FROM perfguard.index_advice, timed,
#     while a poller reads the backend's /proc/PID/status every 5 ms: the
#     peak of RssAnon (private memory: palloc'd memory, caches; not the
#     shared memory) above the session's RssAnon before the call, and the
#     peak of VmHWM - VmRSS before.  The backend's memory-context total at
#     the end of the call is read from the DEBUG1 line the advisor logs.
# Prints a Markdown table (and writes bench/out/index_advice.md).
#
# Environment: PG_BINDIR (default: pg_config --bindir; a private
# installation can be measured with --no-build).
# ----------------------------------------------------------------------------
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
BUILD=1
SIZES="200 1000 5000"
while [ $# -gt 0 ]; do
	case "$1" in
		--no-build) BUILD=0 ;;
		--sizes) shift; SIZES=$1 ;;
		-h|--help) sed -n '2,28p' "$0"; exit 0 ;;
		*) echo "index_advice.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
if [ "$(id -u)" != 0 ]; then
	echo "index_advice.sh: run as root (it installs perfguard and runs a cluster as pfgtest)" >&2
	exit 2
fi

PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir)}
export PATH="$PG_BINDIR:$PATH"
OUT_DIR=$BENCH_DIR/out
mkdir -p "$OUT_DIR"
WORK=$(mktemp -d /tmp/pfgbench-ia.XXXXXX)
chown pfgtest: "$WORK"
chmod 755 "$WORK"
PORT=$((20000 + RANDOM % 30000))
as_pfg() { runuser -u pfgtest -- env PATH="$PATH" "$@"; }
psql_pfg() { as_pfg psql -X -h "$WORK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }

LOCK_FILE=$(sed -n 's|.*flock .* \(/[^ ]*\.lock\).*|\1|p' "$REPO_DIR/scripts/with-install-lock.sh" | head -1)
: "${LOCK_FILE:=/tmp/perfguard-install.lock}"
LOCKED=0
cleanup() {
	as_pfg pg_ctl -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
	if [ "$LOCKED" = 1 ]; then flock -u 9; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$BUILD" = 1 ]; then
	exec 9>>"$LOCK_FILE"
	echo "index_advice.sh: waiting for the install lock $LOCK_FILE ..." >&2
	flock -w 1500 9 && LOCKED=1
	make -s -C "$REPO_DIR" >/dev/null
	make -s -C "$REPO_DIR" install >/dev/null
fi

as_pfg initdb -D "$WORK/data" -U postgres -A trust -E UTF8 --locale=C -N >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; exit 1; }
cat >>"$WORK/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PORT
shared_preload_libraries = 'perfguard'
perfguard.max_statements = 6000
perfguard.save = off
max_parallel_workers_per_gather = 0
jit = off
log_min_messages = debug1
log_line_prefix = '%p '
EOF
as_pfg pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
# the postmaster has loaded perfguard.so: the install may change from now on
if [ "$LOCKED" = 1 ]; then flock -u 9; LOCKED=0; fi

echo "index_advice.sh: schema and statements ..." >&2
psql_pfg -q <<'EOF'
SET client_min_messages = warning;
CREATE EXTENSION perfguard;
SELECT format('CREATE TABLE ia_t%s (id int PRIMARY KEY, %s)', t,
              string_agg(format('c%s int', c), ', ' ORDER BY c))
  FROM generate_series(1, 10) t, generate_series(1, 12) c GROUP BY t \gexec
SELECT format('INSERT INTO ia_t%s SELECT g, %s FROM generate_series(1, 20000) g', t,
              string_agg(format('(g * %s) %% %s', 7 + c, 10 * c * c), ', ' ORDER BY c))
  FROM generate_series(1, 10) t, generate_series(1, 12) c GROUP BY t \gexec
VACUUM ANALYZE;
-- 5,000 distinct statements, in a fixed pseudo-random order
CREATE TABLE ia_stmts AS
  SELECT row_number() OVER (ORDER BY md5(s)) AS n, s FROM (
    SELECT DISTINCT s FROM (
      SELECT format('SELECT id, c%s FROM ia_t%s WHERE c%s = 1 AND c%s > 2 ORDER BY c%s LIMIT 10',
                    a, t, a, b, c) AS s
        FROM generate_series(1, 10) t, generate_series(1, 12) a,
             generate_series(1, 12) b, generate_series(1, 12) c
       WHERE a <> b AND b <> c AND a <> c AND (t * 31 + a * 7 + b * 3 + c) % 4 = 0
      UNION ALL
      SELECT format('SELECT count(*) FROM ia_t%s WHERE c%s = 3 AND c%s = 4', t, a, b)
        FROM generate_series(1, 10) t, generate_series(1, 12) a, generate_series(1, 12) b
       WHERE a <> b
      UNION ALL
      SELECT format('SELECT x.id FROM ia_t%s x JOIN ia_t%s y ON y.c%s = x.c%s WHERE x.c%s = 5',
                    t, u, a, a, b)
        FROM generate_series(1, 10) t, generate_series(1, 10) u,
             generate_series(1, 12) a, generate_series(1, 12) b
       WHERE t <> u AND a <> b AND (t + u + a + b) % 9 = 0) x) y;
EOF
total=$(psql_pfg -Atc "SELECT count(*) FROM ia_stmts")
echo "index_advice.sh: $total distinct statements generated" >&2

# measure N: peak RssAnon / VmHWM of the backend during one read of the view
measure() {
	local n=$1 fifo=$WORK/in.$n out=$WORK/out.$n pid base_anon base_rss peak_anon peak_hwm
	psql_pfg -q -c "SELECT perfguard.reset()" >/dev/null
	psql_pfg -q -o /dev/null <<EOF
SELECT s FROM ia_stmts WHERE n <= $n ORDER BY n \gexec
EOF
	rm -f "$fifo"
	mkfifo "$fifo"
	chown pfgtest: "$fifo"
	psql_pfg -q -At <"$fifo" >"$out" 2>&1 &
	local psql_job=$!
	exec 8>"$fifo"
	echo "SELECT pg_backend_pid();" >&8
	for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
	pid=$(head -1 "$out")
	base_anon=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
	base_rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
	(
		peak_a=0
		peak_h=0
		while kill -0 "$pid" 2>/dev/null && [ ! -e "$WORK/stop.$n" ]; do
			read -r a h < <(awk '/^RssAnon/ {a=$2} /^VmHWM/ {h=$2} END {print a, h}' "/proc/$pid/status" 2>/dev/null || echo "0 0")
			[ "${a:-0}" -gt "$peak_a" ] && peak_a=$a
			[ "${h:-0}" -gt "$peak_h" ] && peak_h=$h
			echo "$peak_a $peak_h" >"$WORK/peak.$n"
			sleep 0.005
		done
	) &
	local poller=$!
	echo "\\timing on" >&8
	echo "SELECT count(*) AS rows, count(*) FILTER (WHERE kind = 'missing') AS missing FROM perfguard.index_advice;" >&8
	echo "\\q" >&8
	exec 8>&-
	wait "$psql_job" || true
	touch "$WORK/stop.$n"
	wait "$poller" || true
	read -r peak_anon peak_hwm <"$WORK/peak.$n"
	local ms rows missing ctx
	ms=$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$out" | tail -1)
	rows=$(sed -n 2p "$out" | cut -d'|' -f1)
	missing=$(sed -n 2p "$out" | cut -d'|' -f2)
	ctx=$(sed -n "s/^$pid .*perfguard: index_advice: \([0-9]*\) statements.*memory peak \([0-9]*\) kB.*/\2/p" "$WORK/server.log" | tail -1)
	printf '| %s | %s | %.1f s | %.1f MB | %.1f MB | %s MB | %s |\n' \
		"$n" "$missing" "$(echo "${ms:-0} / 1000" | bc -l)" \
		"$(echo "($peak_anon - $base_anon) / 1024" | bc -l)" \
		"$(echo "($peak_hwm - $base_rss) / 1024" | bc -l)" \
		"$( [ -n "$ctx" ] && echo "scale=1; $ctx / 1024" | bc -l || echo '?')" "$rows"
}

{
	echo "| statements | missing rows | time | peak RssAnon growth | peak VmHWM growth | memory contexts (peak) | rows |"
	echo "|---|---|---|---|---|---|---|"
	for n in $SIZES; do
		[ "$n" -le "$total" ] || { echo "index_advice.sh: only $total statements" >&2; continue; }
		measure "$n"
	done
} | tee "$OUT_DIR/index_advice.md"
