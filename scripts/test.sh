#!/bin/bash
#
# scripts/test.sh: build, install and run every perfguard test suite.
#
#   bash scripts/test.sh                  all suites
#   bash scripts/test.sh regress tap      only the named ones
#
# Suites:
#   layers     tools/check-layers.py: the map of docs/design.md holds
#   regress    pg_regress over the Makefile's REGRESS list (sql/, expected/)
#   isolation  pg_isolation_regress over the Makefile's ISOLATION list (specs/)
#   tap        t/*.pl with PostgreSQL::Test::Cluster, through prove
#   e2e        examples/*/run_e2e.sh and integrations/*/run_e2e.sh
#
# Run as root: it calls scripts/setup.sh (packages, OS user pfgtest, make,
# make install), then runs every suite as pfgtest against throwaway clusters
# in a private copy of the source tree under /tmp, because the repository is
# owned by root and initdb refuses root.  The whole run holds the install
# lock (scripts/with-install-lock.sh), so nobody swaps perfguard.so under it.
#
# Each pg_regress/isolation test, each TAP assertion and each check an e2e
# script reports (its last "N passed, M failed" line, else the script as one
# check) counts once.  Failures show regression.diffs, isolation diffs, or the
# TAP and e2e logs.  The last line is always "N passed, M failed"; the exit
# status is non-zero when something failed or nothing ran.
#
# Environment: PERFGUARD_KEEP_TMP=1 keeps the work directory for inspection.

set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
all_suites=(layers regress isolation tap e2e)

usage()
{
	echo "usage: bash scripts/test.sh [${all_suites[*]}]..." >&2
	exit 2
}

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=("${all_suites[@]}")
for s in "${suites[@]}"; do
	case " ${all_suites[*]} " in
		*" $s "*) ;;
		*) usage ;;
	esac
done

# Hold the install lock for the whole run (the variable is set only once
# the lock is taken, so nested callers do not wait for themselves).
if [ -z "${PERFGUARD_INSTALL_LOCK_HELD:-}" ]; then
	exec "$repo/scripts/with-install-lock.sh" \
		env PERFGUARD_INSTALL_LOCK_HELD=1 bash "${BASH_SOURCE[0]}" "$@"
fi

passed=0
failed=0

work=

# Stop every postmaster whose data directory lies under $work (pg_regress
# left behind by a timeout, a TAP test that died, an e2e script's cluster).
stop_postmasters()
{
	local pidfile pid i
	while IFS= read -r -d '' pidfile; do
		pid=$(head -n 1 "$pidfile" 2>/dev/null)
		[[ $pid =~ ^[0-9]+$ ]] || continue
		kill -0 "$pid" 2>/dev/null || continue
		grep -q postgres "/proc/$pid/cmdline" 2>/dev/null || continue
		echo "test.sh: stopping stray postmaster $pid (${pidfile%/postmaster.pid})"
		kill -QUIT "$pid" 2>/dev/null
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
	done < <(find "$work" -name postmaster.pid -print0 2>/dev/null)
}

cleanup()
{
	[ -n "$work" ] || return 0
	stop_postmasters
	if [ -n "${PERFGUARD_KEEP_TMP:-}" ]; then
		echo "test.sh: work directory kept: $work"
	else
		rm -rf "$work"
	fi
}

# finish: clean up, print the one summary line (always the last line) and
# exit non-zero when something failed or nothing ran.
finish()
{
	trap - EXIT
	cleanup
	echo "$passed passed, $failed failed"
	if [ "$failed" -gt 0 ] || [ $((passed + failed)) -eq 0 ]; then
		exit 1
	fi
	exit 0
}

if ! bash "$repo/scripts/setup.sh"; then
	failed=$((failed + 1))
	finish
fi

pgbin=$(pg_config --bindir)
pgxs=$(dirname "$(pg_config --pgxs)")/../..
pgxs=$(cd "$pgxs" && pwd)
pg_regress=$pgxs/src/test/regress/pg_regress
pg_isolation_regress=$pgxs/src/test/isolation/pg_isolation_regress

work=$(mktemp -d /tmp/perfguard-test.XXXXXX)

trap cleanup EXIT
trap 'failed=$((failed + 1)); finish' INT TERM

# The files a fresh clone would have (tracked or not ignored, so no build
# products), as e2e scripts may use any of them (tools/, ...).
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null) |
		tar -C "$work" -xf -
else
	tar -C "$repo" --exclude=.git --exclude='*.o' --exclude='*.bc' \
		--exclude='*.so' -cf - . | tar -C "$work" -xf -
fi
mkdir -p "$work/tmp" "$work/tap"
chown -R pfgtest: "$work"
chmod 755 "$work"

# as_pfg CMD...: run CMD as pfgtest with the PostgreSQL 15 binaries first on
# PATH, a private TMPDIR under $work and a fixed UTF-8 locale.
as_pfg()
{
	runuser -u pfgtest -- env -u PGHOST -u PGPORT -u PGDATABASE -u PGUSER \
		-u PGDATA -u PGSERVICE -u LC_ALL -u TEMP_CONFIG \
		HOME="$(getent passwd pfgtest | cut -d: -f6)" \
		PATH="$pgbin:$PATH" TMPDIR="$work/tmp" LANG=C.UTF-8 "$@"
}

# make_var NAME: the value of a variable of the Makefile, PGXS included.
make_var()
{
	make -s --no-print-directory -C "$repo" -f Makefile -f - "print-$1" <<'EOF'
print-%:
	@echo '$($*)'
EOF
}

free_port()
{
	local port
	while :; do
		port=$((20000 + RANDOM % 30000))
		if ! grep -qi ":$(printf '%04X' "$port") " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}

# warn_unlisted DIR EXT LIST: name the test files that no Makefile list runs.
warn_unlisted()
{
	local f name
	for f in "$work/$1"/*"$2"; do
		[ -e "$f" ] || continue
		name=$(basename "$f" "$2")
		case " $3 " in
			*" $name "*) ;;
			*) echo "test.sh: warning: $1/$name$2 is not listed in the Makefile" ;;
		esac
	done
}

# run_pg_regress SUITE BINARY LISTVAR OPTSVAR SRCDIR EXT
# Runs one pg_regress-style suite with a temporary instance that loads the
# --temp-config of the Makefile (perfguard.conf).
run_pg_regress()
{
	local suite=$1 binary=$2 list opts=() run=() o out n_ok n_fail rc
	local outdir=$work/out_$suite
	list=$(make_var "$3")
	warn_unlisted "$5" "$6" "$list"
	if [ -z "$list" ]; then
		echo "== $suite: $3 is empty, nothing to run"
		return
	fi
	echo "== $suite: $list"
	# pg_regress stops at the first test without an expected file; report
	# those as failed here and run the others.
	for o in $list; do
		if [ -e "$work/$5/$o$6" ] && { [ -e "$work/expected/$o.out" ] ||
			[ -e "$work/output/$o.source" ]; }; then
			run+=("$o")
		else
			echo "  test $o ... FAILED (needs $5/$o$6 and expected/$o.out)"
			failed=$((failed + 1))
		fi
	done
	[ ${#run[@]} -gt 0 ] || return
	# Keep the Makefile's options (--temp-config, --dbname, ...); paths
	# relative to the source directory resolve in $work.  Directories and
	# the port are ours.
	for o in $(make_var "$4"); do
		case "$o" in
			--temp-instance=* | --inputdir=* | --outputdir=* | --bindir=* | --port=*) ;;
			*) opts+=("$o") ;;
		esac
	done
	case " ${opts[*]} " in
		*" --temp-config="*) ;;
		*) opts+=("--temp-config=$work/perfguard.conf") ;;
	esac
	mkdir -p "$outdir"
	chown pfgtest: "$outdir"
	out=$outdir/stdout
	(cd "$work" && as_pfg timeout 900 "$binary" \
		--temp-instance="$work/instance_$suite" --inputdir="$work" \
		--outputdir="$outdir" --bindir="$pgbin" --port="$(free_port)" \
		"${opts[@]}" "${run[@]}") >"$out" 2>&1
	rc=$?
	grep -E '\.\.\. (ok|FAILED|failed)' "$out" | sed 's/^/  /'
	n_ok=$(grep -cE '\.\.\. ok( |$)' "$out")
	n_fail=$(grep -cE '\.\.\. (FAILED|failed)' "$out")
	if [ -s "$outdir/regression.diffs" ]; then
		echo "---- $suite: $outdir/regression.diffs"
		cat "$outdir/regression.diffs"
	fi
	if [ $rc -ne 0 ] && [ "$n_fail" -eq 0 ]; then
		# The instance did not start, or the run was killed.
		n_fail=1
		echo "---- $suite: $(basename "$binary") exited with status $rc"
		cat "$out"
		o=$outdir/log/postmaster.log
		[ -s "$o" ] || o=$outdir/log/initdb.log
		[ -s "$o" ] && { echo "---- $o (tail)"; tail -n 50 "$o"; }
	fi
	passed=$((passed + n_ok))
	failed=$((failed + n_fail))
}

run_tap()
{
	local f name out rc n_ok n_fail log
	local files=()
	for f in "$work"/t/*.pl; do
		[ -e "$f" ] && files+=("$f")
	done
	if [ ${#files[@]} -eq 0 ]; then
		echo "== tap: no t/*.pl, nothing to run"
		return
	fi
	echo "== tap"
	for f in "${files[@]}"; do
		name=$(basename "$f" .pl)
		out=$work/tap/$name.out
		(cd "$work" && as_pfg TESTDIR="$work/tap" PG_REGRESS="$pg_regress" \
			timeout 900 prove -v -I "$pgxs/src/test/perl" -I "$work/t" \
			"t/$name.pl") >"$out" 2>&1
		rc=$?
		n_ok=$(grep -cE '^ok [0-9]+' "$out")
		n_fail=$(grep -E '^not ok [0-9]+' "$out" | grep -vc '# TODO')
		if [ $rc -ne 0 ] && [ "$n_fail" -eq 0 ]; then
			# Died before or between assertions, or a bad plan.
			n_fail=1
		fi
		echo "  $name: $n_ok ok, $n_fail failed"
		if [ "$n_fail" -gt 0 ]; then
			echo "---- tap: $name output"
			cat "$out"
			for log in "$work/tap/tmp_check/log/regress_log_$name" \
				"$work"/tap/tmp_check/log/"${name}"_*.log; do
				[ -s "$log" ] && { echo "---- $log (tail)"; tail -n 80 "$log"; }
			done
		fi
		passed=$((passed + n_ok))
		failed=$((failed + n_fail))
		stop_postmasters
	done
}

run_e2e()
{
	local f rel out rc line n_ok n_fail
	local files=()
	for f in "$work"/examples/*/run_e2e.sh "$work"/integrations/*/run_e2e.sh; do
		[ -e "$f" ] && files+=("$f")
	done
	if [ ${#files[@]} -eq 0 ]; then
		echo "== e2e: no run_e2e.sh, nothing to run"
		return
	fi
	echo "== e2e"
	for f in "${files[@]}"; do
		rel=${f#"$work"/}
		out=$work/tmp/e2e_$(echo "$rel" | tr / _).out
		(cd "$(dirname "$f")" && as_pfg PERFGUARD_ROOT="$work" \
			timeout 900 bash run_e2e.sh) >"$out" 2>&1
		rc=$?
		line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
		if [ -n "$line" ]; then
			n_ok=${line%% passed*}
			n_fail=${line#*passed, }
			n_fail=${n_fail%% failed}
			[ $rc -ne 0 ] && [ "$n_fail" -eq 0 ] && n_fail=1
		elif [ $rc -eq 0 ]; then
			n_ok=1 n_fail=0
		else
			n_ok=0 n_fail=1
		fi
		echo "  ${rel%/run_e2e.sh}: $n_ok ok, $n_fail failed (exit $rc)"
		if [ "$n_fail" -gt 0 ]; then
			echo "---- e2e: $rel output (tail)"
			tail -n 100 "$out"
		fi
		passed=$((passed + n_ok))
		failed=$((failed + n_fail))
		stop_postmasters
	done
}

run_layers()
{
	local out
	echo "== layers"
	if out=$(cd "$repo" && /usr/bin/python3 tools/check-layers.py 2>&1); then
		echo "  $out"
		passed=$((passed + 1))
	else
		echo "$out" | sed 's/^/  /'
		failed=$((failed + 1))
	fi
}

for s in "${suites[@]}"; do
	case $s in
		layers) run_layers ;;
		regress) run_pg_regress regress "$pg_regress" REGRESS REGRESS_OPTS sql .sql ;;
		isolation) run_pg_regress isolation "$pg_isolation_regress" ISOLATION ISOLATION_OPTS specs .spec ;;
		tap) run_tap ;;
		e2e) run_e2e ;;
	esac
	stop_postmasters
done

finish
