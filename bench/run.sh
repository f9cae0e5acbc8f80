#!/bin/bash
# ----------------------------------------------------------------------------
# bench/run.sh
#
# The perfguard benchmark suite: one command, not part of the test suite.
#
#   bench/run.sh [--quick] [--only callgrind|pgbench|churn|memory] [--no-build]
#
# Builds and installs perfguard from this tree, then, as the unprivileged OS
# user pfgtest, in throwaway clusters, one per configuration, runs the parts
# below.  The install lock (the file scripts/with-install-lock.sh uses) is held
# from the install until every measurement that reads the installed files has
# them loaded: the callgrind runs (each single-user backend loads perfguard.so)
# and the start of the pgbench clusters (their postmasters load it once, and
# their backends inherit it); pgbench, churn and memory then run unlocked.
#
#   callgrind  instructions per statement (postgres --single under
#              valgrind --tool=callgrind, runs of N1 and N2 statements, the
#              difference divided by N2-N1 so that start-up cancels out), for
#              bare / compute_query_id=on / pg_stat_statements /
#              pgss+auto_explain+pg_qualstats / perfguard, on two workloads
#              (simple lookups; ORM requests with joins and N+1 bursts).
#   pgbench    throughput ratios to the bare server (pgbench -S and the ORM
#              script at 1, 2, 8 and 32 clients; alternating short runs;
#              medians) for bare / pg_stat_statements / perfguard.
#   churn      ~125,000 distinct statement shapes against 5,000 entries, with a
#              poller reading every statistics view once a second.
#   memory     shared memory per statement entry at default settings.
#
# Raw files go to bench/out/; a Markdown summary (bench/out/summary.md) is
# printed at the end, ready to paste into bench/RESULTS.md.
#
# Environment knobs: ROUNDS, DURATION (seconds per pgbench run), CLIENTS,
# CHURN_CLIENTS, CG_SMALL, CG_BIG (statement counts of the callgrind runs).
# ----------------------------------------------------------------------------
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
ORIG_ARGS=("$@")

ONLY=all
QUICK=0
BUILD=1
while [ $# -gt 0 ]; do
	case "$1" in
		--quick) QUICK=1 ;;
		--only) shift; ONLY=${1:-} ;;
		--only=*) ONLY=${1#--only=} ;;
		--no-build) BUILD=0 ;;
		-h|--help) sed -n '2,32p' "$0"; exit 0 ;;
		*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
case "$ONLY" in
	all|callgrind|pgbench|churn|memory) ;;
	*) echo "run.sh: --only takes callgrind, pgbench, churn or memory" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then
	echo "run.sh: run as root (it installs perfguard and runs clusters as pfgtest)" >&2
	exit 2
fi

# The lock file of scripts/with-install-lock.sh (kept in step with it).
LOCK_FILE=$(sed -n 's|.*flock .* \(/[^ ]*\.lock\).*|\1|p' "$REPO_DIR/scripts/with-install-lock.sh" | head -1)
: "${LOCK_FILE:=/tmp/perfguard-install.lock}"
LOCKED=0
take_lock() {
	exec 9>>"$LOCK_FILE"
	echo "run.sh: waiting for the install lock $LOCK_FILE ..." >&2
	if flock -w 900 9; then
		LOCKED=1
	else
		echo "run.sh: WARNING: install lock still busy after 15 min, going on without it" >&2
	fi
}
drop_lock() {
	if [ "$LOCKED" = 1 ]; then flock -u 9; fi
	LOCKED=0
}

PGBIN=$(pg_config --bindir)
PKGLIB=$(pg_config --pkglibdir)
export PATH="$PGBIN:$PATH"

if [ "$QUICK" = 1 ]; then
	: "${ROUNDS:=2}" "${DURATION:=3}" "${CLIENTS:=1 8 32}" "${CHURN_CLIENTS:=8}"
	: "${CG_SMALL:=500}" "${CG_BIG:=2500}"
else
	: "${ROUNDS:=5}" "${DURATION:=5}" "${CLIENTS:=1 2 8 32}" "${CHURN_CLIENTS:=1 8}"
	: "${CG_SMALL:=500}" "${CG_BIG:=20500}"
fi
: "${PB_SCRIPTS:=select orm}"

OUT="$BENCH_DIR/out"
mkdir -p "$OUT"
id pfgtest >/dev/null 2>&1 || useradd -m pfgtest
WORK=$(mktemp -d /tmp/pfgbench.XXXXXX)
chown pfgtest: "$WORK"
chmod 755 "$WORK"
SOCK="$WORK/sock"
as_pfg() { runuser -u pfgtest -- env PATH="$PATH" "$@"; }
as_pfg mkdir -p "$SOCK"

STARTED=()
cleanup() {
	for d in "${STARTED[@]}"; do
		as_pfg pg_ctl -D "$d" -m immediate stop >/dev/null 2>&1 || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- build
take_lock
HAVE_PFG=0
PFG_REASON=""
if [ "$BUILD" = 1 ]; then
	log "building perfguard in $REPO_DIR"
	if make -C "$REPO_DIR" -s >"$OUT/build.log" 2>&1; then
		if make -C "$REPO_DIR" -s install >>"$OUT/build.log" 2>&1; then
			HAVE_PFG=1
		else
			PFG_REASON="make install failed (see bench/out/build.log)"
		fi
	else
		PFG_REASON="the build failed (see bench/out/build.log)"
	fi
else
	if [ -f "$PKGLIB/perfguard.so" ]; then HAVE_PFG=1; else PFG_REASON="$PKGLIB/perfguard.so is missing"; fi
fi
if [ "$HAVE_PFG" = 1 ] && [ ! -f "$PKGLIB/perfguard.so" ]; then
	HAVE_PFG=0; PFG_REASON="$PKGLIB/perfguard.so is missing after install"
fi
PFG_SUM=""
[ "$HAVE_PFG" = 1 ] && PFG_SUM=$(md5sum <"$PKGLIB/perfguard.so")
PFG_CHANGED=0
# pfg_check: did someone install another perfguard.so since ours?
pfg_check() {
	if [ "$HAVE_PFG" = 1 ] && [ "$(md5sum <"$PKGLIB/perfguard.so")" != "$PFG_SUM" ]; then
		PFG_CHANGED=1
		echo "run.sh: WARNING: $PKGLIB/perfguard.so changed during the run" >&2
	fi
}
if [ "$HAVE_PFG" = 0 ]; then
	echo "" >&2
	echo "######################################################################" >&2
	echo "# perfguard is SKIPPED in this run: $PFG_REASON" >&2
	echo "######################################################################" >&2
	echo "" >&2
fi

# ---------------------------------------------------------------- configurations
# name -> postgresql.conf lines.  Statistics files are not saved across the
# callgrind runs (save = off) so that the small and the big run start alike.
conf_for() {
	case "$1" in
		bare) ;;
		queryid) echo "compute_query_id = on" ;;
		pgss)
			echo "shared_preload_libraries = 'pg_stat_statements'" ;;
		pgss_ae_qs)
			echo "shared_preload_libraries = 'pg_stat_statements,auto_explain,pg_qualstats'"
			echo "auto_explain.log_min_duration = '500ms'"
			echo "auto_explain.log_analyze = on" ;;
		perfguard)
			echo "shared_preload_libraries = 'perfguard'" ;;
	esac
}
extensions_for() {
	case "$1" in
		pgss) echo "pg_stat_statements" ;;
		pgss_ae_qs) echo "pg_stat_statements pg_qualstats" ;;
		perfguard) echo "perfguard" ;;
	esac
}
label_for() {
	case "$1" in
		bare) echo "bare server" ;;
		queryid) echo "compute_query_id = on" ;;
		pgss) echo "pg_stat_statements" ;;
		pgss_ae_qs) echo "pgss + auto_explain (500ms, analyze) + pg_qualstats" ;;
		perfguard) echo "perfguard (all detectors, defaults)" ;;
	esac
}

NEXT_PORT=$((54300 + RANDOM % 500))
# make_cluster NAME [extra conf lines...]: initdb, configure, load the schema.
make_cluster() {
	local name=$1; shift
	local dir="$WORK/$name" port=$NEXT_PORT
	NEXT_PORT=$((NEXT_PORT + 1))
	as_pfg mkdir -p "$dir"
	as_pfg initdb -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C -N >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; return 1; }
	{
		echo "# perfguard bench: $name"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$SOCK'"
		echo "port = $port"
		echo "fsync = off"
		echo "synchronous_commit = off"
		echo "full_page_writes = off"
		echo "max_connections = 100"
		echo "autovacuum = off"
		echo "pg_stat_statements.save = off"
		echo "perfguard.save = off"
		conf_for "${name#pb_}"
		for l in "$@"; do echo "$l"; done
	} | as_pfg tee -a "$dir/data/postgresql.conf" >/dev/null
	echo "$port" >"$dir/port"
	start_cluster "$name"
	as_pfg createdb -h "$SOCK" -p "$port" -U postgres bench
	as_pfg psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$port" -U postgres -d bench \
		-f "$BENCH_DIR/schema.sql" >"$dir/schema.log" 2>&1 || { cat "$dir/schema.log" >&2; return 1; }
	for e in $(extensions_for "${name#pb_}"); do
		as_pfg psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$port" -U postgres -d bench \
			-c "CREATE EXTENSION $e" >/dev/null
	done
}
start_cluster() {
	local dir="$WORK/$1"
	as_pfg pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
	STARTED+=("$dir/data")
}
stop_cluster() {
	local dir="$WORK/$1" keep=() d
	as_pfg pg_ctl -D "$dir/data" -m fast -w stop >/dev/null
	for d in "${STARTED[@]}"; do [ "$d" = "$dir/data" ] || keep+=("$d"); done
	STARTED=("${keep[@]+"${keep[@]}"}")
}
psql_on() {
	local name=$1; shift
	as_pfg psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$(cat "$WORK/$name/port")" -U postgres -d bench "$@"
}

# ---------------------------------------------------------------- callgrind
CG_CONFIGS="${CG_CONFIGS:-bare queryid pgss pgss_ae_qs}"
[ "$HAVE_PFG" = 1 ] && CG_CONFIGS="$CG_CONFIGS perfguard"
CG_WORKLOADS="${CG_WORKLOADS:-simple orm tagged pooled}"

# cg_one CONFIG WORKLOAD N: total Ir of one single-user run.
cg_one() {
	local name=$1 wl=$2 n=$3
	local dir="$WORK/$name" base="$OUT/callgrind.$name.$wl.$n"
	awk -v n="$n" -v workload="$wl" -f "$BENCH_DIR/gen_callgrind.awk" | as_pfg tee "$dir/in.$wl.$n.sql" >/dev/null
	as_pfg valgrind --tool=callgrind --trace-children=no --dump-instr=no \
		--callgrind-out-file="$dir/cg.$wl.$n.out" \
		postgres --single -D "$dir/data" bench \
		<"$dir/in.$wl.$n.sql" >/dev/null 2>"$dir/cg.$wl.$n.stderr"
	cp "$dir/cg.$wl.$n.out" "$base.out"
	grep -v '^==' "$dir/cg.$wl.$n.stderr" >"$base.stderr" || true
	if grep -qE '^(ERROR|FATAL|PANIC)' "$base.stderr"; then
		echo "callgrind $name $wl $n: the backend reported errors (see $base.stderr)" >&2
		return 1
	fi
	# "summary:" (or "totals:") holds the Ir total of the run.
	awk '/^(summary|totals):/ { print $2; exit }' "$base.out"
}

run_callgrind() {
	log "callgrind: $CG_SMALL and $CG_BIG statements; configurations: $CG_CONFIGS"
	local name
	rm -f "$OUT"/callgrind.* "$OUT"/profile.* "$OUT"/profile_diff.*
	for name in $CG_CONFIGS; do
		make_cluster "$name"
		stop_cluster "$name"
	done
	: >"$OUT/callgrind.tsv.tmp"
	# Two valgrind runs at a time (2 cores); instruction counts do not depend on it.
	local jobs=() spec
	for name in $CG_CONFIGS; do
		(
			for wl in $CG_WORKLOADS; do
				small=$(cg_one "$name" "$wl" "$CG_SMALL")
				big=$(cg_one "$name" "$wl" "$CG_BIG")
				printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$wl" "$CG_SMALL" "$small" "$CG_BIG" "$big"
			done >"$WORK/$name/cg.tsv"
		) &
		jobs+=($!)
		if [ ${#jobs[@]} -ge 2 ]; then wait "${jobs[0]}"; jobs=("${jobs[@]:1}"); fi
	done
	for spec in "${jobs[@]}"; do wait "$spec"; done
	pfg_check
	{
		printf 'config\tworkload\tn_small\tir_small\tn_big\tir_big\tir_per_stmt\n'
		for name in $CG_CONFIGS; do
			awk -F'\t' -v OFS='\t' '{ printf "%s\t%s\t%s\t%s\t%s\t%s\t%.0f\n", $1, $2, $3, $4, $5, $6, ($6 - $4) / ($5 - $3) }' "$WORK/$name/cg.tsv"
		done
	} >"$OUT/callgrind.tsv"
	rm -f "$OUT/callgrind.tsv.tmp"
	if [ "$HAVE_PFG" = 1 ]; then
		for wl in $CG_WORKLOADS; do
			"$BENCH_DIR/profile.sh" "$wl" perfguard perfguard.so >"$OUT/profile.perfguard.$wl.txt" 2>&1 || true
			"$BENCH_DIR/profile_diff.sh" "$wl" queryid perfguard >"$OUT/profile_diff.perfguard.$wl.txt" 2>&1 || true
			"$BENCH_DIR/profile_diff.sh" "$wl" queryid pgss >"$OUT/profile_diff.pgss.$wl.txt" 2>&1 || true
		done
	fi
	log "callgrind done"
}

# ---------------------------------------------------------------- pgbench / churn / memory
PB_CONFIGS="bare pgss"
[ "$HAVE_PFG" = 1 ] && PB_CONFIGS="$PB_CONFIGS perfguard"
PB_READY=0
pb_clusters() {
	[ "$PB_READY" = 1 ] && return 0
	log "pgbench clusters: $PB_CONFIGS"
	local name
	for name in $PB_CONFIGS; do
		make_cluster "pb_$name"
		as_pfg pgbench -i -q -s 10 -h "$SOCK" -p "$(cat "$WORK/pb_$name/port")" -U postgres bench \
			>"$WORK/pb_$name/pgbench-init.log" 2>&1
		psql_on "pb_$name" -c "VACUUM ANALYZE" >/dev/null
	done
	PB_READY=1
	pfg_check
}

reset_stats() {
	case "$1" in
		pgss) psql_on "pb_$1" -c "SELECT pg_stat_statements_reset()" >/dev/null ;;
		perfguard) psql_on "pb_$1" -c "SELECT perfguard.reset()" >/dev/null ;;
	esac
}

# pb_run CONFIG CLIENTS DURATION ARGS...: prints the TPS.
pb_run() {
	local name=$1 c=$2 d=$3; shift 3
	local j=$((c < 2 ? c : 2))
	as_pfg pgbench -n -h "$SOCK" -p "$(cat "$WORK/pb_$name/port")" -U postgres \
		-c "$c" -j "$j" -T "$d" "$@" bench 2>&1 |
		tee -a "$OUT/pgbench.log" |
		awk '/^tps = / && /without initial connection time/ { print $3 }
		     /^tps = / && /excluding connections/ { print $3 }' | head -1
}

# rotated list of configurations for round r (alternating order)
rotation() {
	local r=$1 arr=($PB_CONFIGS) n i
	n=${#arr[@]}
	for ((i = 0; i < n; i++)); do printf '%s ' "${arr[$(((i + r) % n))]}"; done
}

run_pgbench() {
	pb_clusters
	log "pgbench: clients $CLIENTS, $ROUNDS rounds x ${DURATION}s per configuration"
	rm -f "$OUT"/pgbench.*
	: >"$OUT/pgbench.log"
	printf 'script\tclients\tround\tconfig\ttps\n' >"$OUT/pgbench.tsv"
	local script c r name tps
	for script in $PB_SCRIPTS; do
		for c in $CLIENTS; do
			for ((r = 0; r < ROUNDS; r++)); do
				for name in $(rotation "$r"); do
					if [ "$script" = select ]; then
						tps=$(pb_run "$name" "$c" "$DURATION" -S)
					else
						tps=$(pb_run "$name" "$c" "$DURATION" -f "$BENCH_DIR/orm.pgbench")
					fi
					printf '%s\t%s\t%s\t%s\t%s\n' "$script" "$c" "$r" "$name" "${tps:-NA}" >>"$OUT/pgbench.tsv"
				done
			done
			log "pgbench $script c=$c done"
		done
	done
}

run_churn() {
	pb_clusters
	log "churn: clients $CHURN_CLIENTS, $ROUNDS rounds x ${DURATION}s, poller once a second"
	rm -f "$OUT"/churn.*
	: >"$OUT/churn.log"
	printf 'clients\tround\tconfig\ttps\tpolls\n' >"$OUT/churn.tsv"
	local c r name tps poller polls port
	for name in $PB_CONFIGS; do reset_stats "$name"; done
	for c in $CHURN_CLIENTS; do
		for ((r = 0; r < ROUNDS; r++)); do
			for name in $(rotation "$r"); do
				port=$(cat "$WORK/pb_$name/port")
				: >"$WORK/polls"
				(
					end=$((SECONDS + DURATION))
					while [ $SECONDS -lt $end ]; do
						as_pfg psql -X -q -h "$SOCK" -p "$port" -U postgres -d bench \
							-f "$BENCH_DIR/poll_${name}.sql" >/dev/null 2>>"$OUT/churn.log" &&
							echo . >>"$WORK/polls"
						sleep 1
					done
				) &
				poller=$!
				tps=$(pb_run "$name" "$c" "$DURATION" -f "$BENCH_DIR/churn.pgbench")
				wait "$poller" || true
				polls=$(wc -l <"$WORK/polls")
				printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$r" "$name" "${tps:-NA}" "$polls" >>"$OUT/churn.tsv"
			done
		done
		log "churn c=$c done"
	done
	# what the stores saw
	{
		echo "## pg_stat_statements_info after churn"
		psql_on pb_pgss -c "SELECT 'entries', count(*) FROM pg_stat_statements UNION ALL SELECT 'dealloc', dealloc FROM pg_stat_statements_info"
		if [ "$HAVE_PFG" = 1 ]; then
			echo "## perfguard.info after churn"
			psql_on pb_perfguard -c "SELECT row_to_json(i) FROM perfguard.info i" || true
		fi
	} >"$OUT/churn.stores.txt" 2>&1
}

run_memory() {
	pb_clusters
	log "memory"
	rm -f "$OUT"/memory.*
	{
		printf 'config\tmax_entries\tnamed_bytes\tdelta_vs_bare_bytes\n'
		local total_bare named total name maxe
		total_bare=$(psql_on pb_bare -c "SELECT sum(allocated_size) FROM pg_shmem_allocations WHERE name IS NOT NULL")
		for name in $PB_CONFIGS; do
			total=$(psql_on "pb_$name" -c "SELECT sum(allocated_size) FROM pg_shmem_allocations WHERE name IS NOT NULL")
			case "$name" in
				bare) named=0; maxe=0 ;;
				pgss)
					named=$(psql_on pb_pgss -c "SELECT coalesce(sum(allocated_size), 0) FROM pg_shmem_allocations WHERE name LIKE 'pg_stat_statements%'")
					maxe=$(psql_on pb_pgss -c "SHOW pg_stat_statements.max") ;;
				perfguard)
					named=$(psql_on pb_perfguard -c "SELECT coalesce(sum(allocated_size), 0) FROM pg_shmem_allocations WHERE name LIKE 'perfguard%'")
					maxe=$(psql_on pb_perfguard -c "SHOW perfguard.max_statements") ;;
			esac
			printf '%s\t%s\t%s\t%s\n' "$name" "$maxe" "$named" "$((total - total_bare))"
		done
	} >"$OUT/memory.tsv"
	for name in $PB_CONFIGS; do
		psql_on "pb_$name" -c "SELECT name, size, allocated_size FROM pg_shmem_allocations WHERE name LIKE 'perfguard%' OR name LIKE 'pg_stat_statements%' OR name = '<anonymous>' ORDER BY name" \
			>"$OUT/memory.$name.txt"
	done
}

# ---------------------------------------------------------------- summary
median() { grep -E '^[0-9.]+$' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

summary() {
	local s="$OUT/summary.md"
	{
		echo "### Machine"
		echo
		echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "- nproc: $(nproc); CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
		echo "- memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo); $(postgres --version); $(valgrind --version)"
		echo "- perfguard: $([ "$HAVE_PFG" = 1 ] && [ "$BUILD" = 0 ] && echo "the installed perfguard.so (--no-build); tree at")$([ "$HAVE_PFG" = 1 ] && echo " built from $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo 'an uncommitted tree')$(git -C "$REPO_DIR" status --porcelain 2>/dev/null | grep -q . && echo ' (+ local changes)')" || echo "SKIPPED: $PFG_REASON")"
		[ "$PFG_CHANGED" = 0 ] || echo "- **WARNING: the installed perfguard.so changed during the callgrind part: its perfguard figures may mix two builds**"
		echo "- command: \`bench/run.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}\` (ROUNDS=$ROUNDS DURATION=${DURATION}s CLIENTS='$CLIENTS' PB_SCRIPTS='$PB_SCRIPTS' CHURN_CLIENTS='$CHURN_CLIENTS' CG_SMALL=$CG_SMALL CG_BIG=$CG_BIG)"
		echo
		if [ -s "$OUT/callgrind.tsv" ] && [ "$ONLY" = all -o "$ONLY" = callgrind ]; then
			echo "### Instructions per statement (callgrind, postgres --single, ($CG_BIG - $CG_SMALL) statements)"
			echo
			awk -F'\t' -v wls="$CG_WORKLOADS" '
				NR > 1 { v[$1, $2] = $7; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
				END {
					nw = split(wls, w, " ")
					label["bare"] = "bare server"; label["queryid"] = "compute_query_id = on"
					label["pgss"] = "pg_stat_statements"
					label["pgss_ae_qs"] = "pgss + auto_explain (500ms, log_analyze) + pg_qualstats"
					label["perfguard"] = "perfguard (every detector on, defaults)"
					printf "| configuration |"
					for (k = 1; k <= nw; k++) printf " %s: instr/stmt | added vs bare |", w[k]
					printf "\n|---|"
					for (k = 1; k <= nw; k++) printf "---:|---:|"
					printf "\n"
					for (i = 1; i <= n; i++) {
						c = order[i]
						printf "| %s |", label[c]
						for (k = 1; k <= nw; k++) {
							s = v[c, w[k]]
							d = (c == "bare") ? "—" : sprintf("%+.1fk", (s - v["bare", w[k]]) / 1000)
							printf " %.1fk | %s |", s / 1000, d
						}
						printf "\n"
					}
				}' "$OUT/callgrind.tsv"
			echo
			for wl in $CG_WORKLOADS; do
				[ -s "$OUT/profile.perfguard.$wl.txt" ] &&
					echo "perfguard's own code ($wl): $(grep -m1 '^self total' "$OUT/profile.perfguard.$wl.txt" | sed 's/^self total of perfguard.so: //'); per-function profile in bench/out/profile.perfguard.$wl.txt"
			done
			echo
		fi
		if [ -s "$OUT/pgbench.tsv" ] && [ "$ONLY" = all -o "$ONLY" = pgbench ]; then
			echo "### Throughput ratio to the bare server (pgbench, median of $ROUNDS alternating ${DURATION}s runs)"
			echo
			local hdr="| workload | clients | bare TPS (median) |" sep="|---|---:|---:|" name script c b m
			for name in $PB_CONFIGS; do [ "$name" = bare ] || { hdr="$hdr $name / bare |"; sep="$sep---:|"; }; done
			echo "$hdr"; echo "$sep"
			for script in $PB_SCRIPTS; do
				for c in $CLIENTS; do
					b=$(awk -F'\t' -v s="$script" -v c="$c" '$1 == s && $2 == c && $4 == "bare" { print $5 }' "$OUT/pgbench.tsv" | median)
					line="| $([ "$script" = select ] && echo 'pgbench -S' || echo 'ORM script') | $c | $(printf '%.0f' "$b") |"
					for name in $PB_CONFIGS; do
						[ "$name" = bare ] && continue
						m=$(awk -F'\t' -v s="$script" -v c="$c" -v n="$name" '$1 == s && $2 == c && $4 == n { print $5 }' "$OUT/pgbench.tsv" | median)
						line="$line $(awk -v m="$m" -v b="$b" 'BEGIN { printf "%.3f", m / b }') |"
					done
					echo "$line"
				done
			done
			echo
		fi
		if [ -s "$OUT/churn.tsv" ] && [ "$ONLY" = all -o "$ONLY" = churn ]; then
			echo "### Churn (~125k statement shapes, 5,000 entries, poller reading every view once a second)"
			echo
			local hdr="| clients | bare TPS (median) |" sep="|---:|---:|" p
			for name in $PB_CONFIGS; do [ "$name" = bare ] || { hdr="$hdr $name / bare |"; sep="$sep---:|"; }; done
			hdr="$hdr polls per run (median): $(echo $PB_CONFIGS | sed 's/ / \/ /g') |"; sep="$sep---:|"
			echo "$hdr"; echo "$sep"
			for c in $CHURN_CLIENTS; do
				b=$(awk -F'\t' -v c="$c" '$1 == c && $3 == "bare" { print $4 }' "$OUT/churn.tsv" | median)
				line="| $c | $(printf '%.0f' "$b") |"
				p=""
				for name in $PB_CONFIGS; do
					p="$p${p:+ / }$(awk -F'\t' -v c="$c" -v n="$name" '$1 == c && $3 == n { print $5 }' "$OUT/churn.tsv" | median)"
					[ "$name" = bare ] && continue
					m=$(awk -F'\t' -v c="$c" -v n="$name" '$1 == c && $3 == n { print $4 }' "$OUT/churn.tsv" | median)
					line="$line $(awk -v m="$m" -v b="$b" 'BEGIN { printf "%.3f", m / b }') |"
				done
				echo "$line $p |"
			done
			echo
			echo '```'
			cat "$OUT/churn.stores.txt"
			echo '```'
			echo
		fi
		if [ -s "$OUT/memory.tsv" ] && [ "$ONLY" = all -o "$ONLY" = memory ]; then
			echo "### Shared memory at default settings"
			echo
			echo "| configuration | entries (max) | named segments | per entry | whole footprint (vs bare) | per entry |"
			echo "|---|---:|---:|---:|---:|---:|"
			awk -F'\t' 'NR > 1 && $1 != "bare" {
				pe = ($2 > 0) ? sprintf("%.0f B", $3 / $2) : "—"
				pw = ($2 > 0) ? sprintf("%.0f B", $4 / $2) : "—"
				printf "| %s | %s | %.1f KiB | %s | %.1f KiB | %s |\n", $1, $2, $3 / 1024, pe, $4 / 1024, pw }' "$OUT/memory.tsv"
			echo
			echo "(named segments: rows of pg_shmem_allocations named after the module; whole footprint: the"
			echo "difference of all allocated shared memory against the bare server, which also counts the hash"
			echo "table elements that ShmemInitHash allocates anonymously and the LWLock tranche.)"
			echo
		fi
	} >"$s"
	cat "$s"
}

# Under the lock: everything that reads the installed files.
[ "$ONLY" = callgrind ] || pb_clusters
[ "$ONLY" = all ] || [ "$ONLY" = callgrind ] && run_callgrind
drop_lock
case "$ONLY" in
	all) run_pgbench; run_churn; run_memory ;;
	pgbench) run_pgbench ;;
	churn) run_churn ;;
	memory) run_memory ;;
esac
summary
