# integrations/lib/cluster.sh: shared helpers of the integrations/*/run_e2e.sh
#
# Sourced, not run.  Gives each end-to-end script:
#   pfg_as_unprivileged SCRIPT ARGS  as root, re-run SCRIPT as the OS user
#                                    pfgtest (initdb refuses root); else no-op
#   pfg_start_cluster [CONF_LINE]... initdb + start a throwaway cluster that
#                                    preloads perfguard, in a private temp
#                                    directory, Unix socket only (no TCP), on
#                                    a random port; exports PGHOST, PGPORT,
#                                    PGUSER, PGDATABASE (= postgres) and
#                                    PFG_TMP (scratch directory)
#   pfg_psql ARGS                    psql -X -q -v ON_ERROR_STOP=1 -At
#   check NAME CMD...                run CMD, count it as passed or failed
#   pfg_finish                       print "N passed, M failed" and exit 0/1
# The cluster is stopped and the directory removed on exit (trap), unless
# KEEP_TMP=1.

PG_CONFIG=${PG_CONFIG:-pg_config}
PYTHON=${PYTHON:-/usr/bin/python3}
PFG_BINDIR=$("$PG_CONFIG" --bindir)
pfg_passed=0
pfg_failed=0
PFG_TMP=

pfg_as_unprivileged()
{
	local script=$1
	shift
	if [ "$(id -u)" = 0 ]; then
		id pfgtest >/dev/null 2>&1 || useradd -m pfgtest
		exec runuser -u pfgtest -- env PG_CONFIG="$PG_CONFIG" PYTHON="$PYTHON" \
			KEEP_TMP="${KEEP_TMP:-}" PFG_EXTRA_CONF="${PFG_EXTRA_CONF:-}" PFG_LOG_LINES="${PFG_LOG_LINES:-}" PATH="$PATH" \
			HOME="$(getent passwd pfgtest | cut -d: -f6)" \
			${PFG_EXTRA_ENV:-} bash "$script" "$@"
	fi
}

pfg_cleanup()
{
	[ -n "$PFG_TMP" ] || return 0
	if [ -f "$PFG_TMP/data/postmaster.pid" ]; then
		"$PFG_BINDIR/pg_ctl" -D "$PFG_TMP/data" -m fast -w stop >/dev/null 2>&1 ||
			"$PFG_BINDIR/pg_ctl" -D "$PFG_TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "kept $PFG_TMP"
	else
		rm -rf "$PFG_TMP"
	fi
}

pfg_start_cluster()
{
	local line pkglib share
	pkglib=$("$PG_CONFIG" --pkglibdir)
	share=$("$PG_CONFIG" --sharedir)
	if [ ! -f "$pkglib/perfguard.so" ] || [ ! -f "$share/extension/perfguard.control" ]; then
		echo "perfguard is not installed (run make install)" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
	PFG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/perfguard-int.XXXXXX")
	trap pfg_cleanup EXIT
	mkdir -p "$PFG_TMP/sock"
	if ! "$PFG_BINDIR/initdb" -D "$PFG_TMP/data" -U "$(id -un)" -A trust -E UTF8 \
		--locale=C --no-sync >"$PFG_TMP/initdb.log" 2>&1; then
		cat "$PFG_TMP/initdb.log" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$PFG_TMP/sock'"
		echo "port = $((20000 + RANDOM % 20000))"
		echo "fsync = off"
		echo "shared_preload_libraries = 'perfguard'"
		for line in "$@"; do
			echo "$line"
		done
		# extra settings for debugging, e.g. PFG_EXTRA_CONF="log_statement = 'all'"
		[ -n "${PFG_EXTRA_CONF:-}" ] && echo "$PFG_EXTRA_CONF"
	} >>"$PFG_TMP/data/postgresql.conf"
	PGPORT=$(sed -n 's/^port = //p' "$PFG_TMP/data/postgresql.conf" | tail -n 1)
	if ! "$PFG_BINDIR/pg_ctl" -D "$PFG_TMP/data" -l "$PFG_TMP/server.log" -w start >/dev/null; then
		cat "$PFG_TMP/server.log" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
	export PGHOST=$PFG_TMP/sock PGPORT PGUSER=$(id -un) PGDATABASE=postgres
	export PFG_TMP
	export PYTHONDONTWRITEBYTECODE=1
}

pfg_psql()
{
	"$PFG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"
}

# check NAME CMD...: one assertion.
check()
{
	local name=$1
	shift
	if "$@"; then
		echo "ok - $name"
		pfg_passed=$((pfg_passed + 1))
	else
		echo "not ok - $name"
		pfg_failed=$((pfg_failed + 1))
	fi
}

pfg_finish()
{
	if [ "$pfg_failed" -gt 0 ] && [ -n "$PFG_TMP" ] && [ -f "$PFG_TMP/server.log" ]; then
		echo "--- server log (last 30 lines) ---"
		tail -n "${PFG_LOG_LINES:-30}" "$PFG_TMP/server.log"
	fi
	echo "$pfg_passed passed, $pfg_failed failed"
	[ "$pfg_failed" -eq 0 ] && [ "$pfg_passed" -gt 0 ]
	exit $?
}
