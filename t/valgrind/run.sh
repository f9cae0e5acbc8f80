#!/bin/bash
#
# t/valgrind/run.sh [TEST...]: the regression suite against a postgres that
# runs under valgrind memcheck.  Not part of CI (it takes several minutes).
#
# Starts a throwaway cluster whose postmaster (and so every backend) runs as
#   valgrind --leak-check=no --error-exitcode=... --trace-children=yes
#            --suppressions=t/valgrind/perfguard.supp
# (PostgreSQL's own src/tools/valgrind.supp is used too when found), runs
# pg_regress with the Makefile's REGRESS list (or the tests named) against
# it, stops it, and scans the valgrind logs: an error whose stack has a
# frame in perfguard.so (or any unsuppressed error, listed separately) is
# reported.  Exit status: 0 = no valgrind error in perfguard code, 1 =
# errors in perfguard, 2 = set-up failure.  Valgrind logs are kept in the
# printed work directory when something was found.
#
# Run as root (re-runs itself as pfgtest) or as an unprivileged user; the
# perfguard that is installed is the one tested (make install first).

set -uo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
pgxs=$(dirname "$("$bindir/pg_config" --pgxs)")/../..
pg_regress=$pgxs/src/test/regress/pg_regress

if ! command -v valgrind >/dev/null 2>&1; then
	echo "valgrind/run.sh: valgrind is not installed (apt-get install valgrind)" >&2
	exit 2
fi

if [ "$(id -u)" -eq 0 ]; then
	id pfgtest >/dev/null 2>&1 || useradd -m pfgtest
	tmp=$(mktemp -d /tmp/pfg-valgrind.XXXXXX)
	for d in sql expected perfguard.conf t/valgrind Makefile; do
		mkdir -p "$tmp/$(dirname "$d")"
		cp -R "$repo/$d" "$tmp/$d"
	done
	chown -R pfgtest: "$tmp"
	runuser -u pfgtest -- env PATH="$bindir:$PATH" TMPDIR="$tmp" \
		bash "$tmp/t/valgrind/run.sh" "$@"
	rc=$?
	[ $rc -eq 0 ] && rm -rf "$tmp"
	exit $rc
fi

if [ $# -gt 0 ]; then
	tests=("$@")
else
	read -r -a tests <<<"$(make -s --no-print-directory -C "$repo" -f Makefile -f - print-REGRESS <<'EOM'
print-%:
	@echo '$($*)'
EOM
)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pfg-vg.XXXXXX")
data=$work/data
port=$((20000 + RANDOM % 30000))
supp=(--suppressions="$repo/t/valgrind/perfguard.supp")
for f in "$pgxs/src/tools/valgrind.supp" /usr/share/postgresql/15/valgrind.supp; do
	[ -f "$f" ] && supp+=(--suppressions="$f")
done

"$bindir/initdb" -D "$data" -A trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 ||
	{ cat "$work/initdb.log"; exit 2; }
cat "$repo/perfguard.conf" >>"$data/postgresql.conf"
cat >>"$data/postgresql.conf" <<EOC
port = $port
listen_addresses = ''
unix_socket_directories = '$work'
max_connections = 20
jit = off
# valgrind is slow: be patient
statement_timeout = 0
authentication_timeout = '10min'
EOC

mkdir -p "$work/vg"
echo "valgrind/run.sh: starting postgres under valgrind (port $port, work $work)"
valgrind --quiet --tool=memcheck --leak-check=no --error-exitcode=99 \
	--trace-children=yes --track-origins=yes --read-var-info=no \
	--num-callers=30 --error-limit=no "${supp[@]}" \
	--log-file="$work/vg/%p.log" \
	"$bindir/postgres" -D "$data" >"$work/server.log" 2>&1 &
vgpid=$!
for i in $(seq 240); do
	"$bindir/pg_isready" -q -h "$work" -p "$port" && break
	kill -0 "$vgpid" 2>/dev/null || break
	sleep 1
done
if ! "$bindir/pg_isready" -q -h "$work" -p "$port"; then
	echo "valgrind/run.sh: postgres did not start"; cat "$work/server.log" "$work"/vg/*.log
	kill "$vgpid" 2>/dev/null
	exit 2
fi

mkdir -p "$work/regress"
echo "valgrind/run.sh: running ${tests[*]}"
(cd "$repo" && "$pg_regress" --host="$work" --port="$port" \
	--inputdir="$repo" --outputdir="$work/regress" --bindir="$bindir" \
	--dbname=contrib_regression "${tests[@]}") | grep -E '\.\.\. |tests? passed|failed'
regress_rc=${PIPESTATUS[0]}

if ! "$bindir/pg_ctl" -D "$data" -m fast -t 300 stop >/dev/null 2>&1; then
	echo "valgrind/run.sh: postgres did not stop; killing it"
	kill -QUIT "$vgpid" 2>/dev/null
	sleep 5
	kill -KILL "$vgpid" 2>/dev/null
fi
wait "$vgpid" 2>/dev/null

# errors: "== <pid> == <kind>" blocks; those with a perfguard frame count
total=0
ours=0
for f in "$work"/vg/*.log; do
	[ -s "$f" ] || continue
	n=$(grep -cE '^==[0-9]+== [A-Z].*(Invalid|uninitialised|Conditional|Syscall param|Mismatched|overlap|free)' "$f")
	total=$((total + n))
	if grep -q 'perfguard' "$f"; then
		ours=$((ours + 1))
		echo "---- $f"
		cat "$f"
	fi
done
if grep -q "exited with exit code 99" "$work/server.log"; then
	echo "valgrind/run.sh: a process exited on a valgrind error (exit code 99), see the logs above"
fi
echo "valgrind/run.sh: regression run exit status $regress_rc"
echo "valgrind/run.sh: $total valgrind error(s) in all processes, $ours log(s) with a perfguard frame"
if [ $ours -gt 0 ]; then
	echo "valgrind/run.sh: work directory kept: $work"
	exit 1
fi
if [ $total -gt 0 ]; then
	echo "valgrind/run.sh: errors outside perfguard (server false positives?) kept in $work/vg"
	exit 0
fi
rm -rf "$work"
exit 0
