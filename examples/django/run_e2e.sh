#!/bin/bash
# examples/django/run_e2e.sh
#
# End-to-end test of perfguard with a real Django 3.2 application.
#
# Starts a throwaway PostgreSQL cluster (temporary directory, private Unix
# socket directory, no TCP) that preloads perfguard, creates the database
# and the extension, applies the Django migrations, loads the example data
# and runs e2e_checks.py: Django's test Client against every BAD and GOOD
# view, with the findings read back from perfguard's views.
#
# Needs perfguard installed (make install) and Debian's python3-django and
# python3-psycopg2 (called through /usr/bin/python3).  initdb refuses root,
# so as root the script re-runs itself as the unprivileged user pfgtest.
#
#   examples/django/run_e2e.sh            # exit status 0 when every check passed
#   KEEP_TMP=1 examples/django/run_e2e.sh # keep the cluster directory for a post-mortem
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
PYTHON=${PYTHON:-/usr/bin/python3}
E2E_USER=${E2E_USER:-pfgtest}

if [ "$(id -u)" = 0 ]; then
	id "$E2E_USER" >/dev/null 2>&1 || useradd -m "$E2E_USER"
	exec runuser -u "$E2E_USER" -- env PG_CONFIG="$PG_CONFIG" PYTHON="$PYTHON" \
		KEEP_TMP="${KEEP_TMP:-}" PATH="$PATH" bash "$HERE/run_e2e.sh" "$@"
fi

BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
if [ ! -f "$PKGLIBDIR/perfguard.so" ] || [ ! -f "$SHAREDIR/extension/perfguard.control" ]; then
	echo "run_e2e.sh: perfguard is not installed for $("$PG_CONFIG" --version) (run make install)" >&2
	exit 2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/perfguard-django-e2e.XXXXXX")
DATA=$TMP/data
SOCK=$TMP/sock
LOG=$TMP/server.log
mkdir -p "$SOCK"
# No TCP listener: the port only names the socket in the private directory,
# so it cannot clash with another cluster.
PORT=$((20000 + RANDOM % 20000))

cleanup() {
	if [ -f "$DATA/postmaster.pid" ]; then
		"$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
	fi
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "run_e2e.sh: kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT

"$BINDIR/initdb" -D "$DATA" -U "$(id -un)" -A trust -E UTF8 --locale=C --no-sync >"$TMP/initdb.log" 2>&1 \
	|| { cat "$TMP/initdb.log" >&2; exit 2; }
cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$SOCK'
port = $PORT
fsync = off
shared_preload_libraries = 'perfguard'
# Explicit scopes (PERFGUARD_SCOPE=explicit) ignore the gap; in the
# sqlcommenter-only mode the route tag separates the requests, and the gap
# must not split one request in two.
perfguard.request_gap = '1s'
CONF
"$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w start >/dev/null || { cat "$LOG" >&2; exit 2; }

export PGHOST=$SOCK PGPORT=$PORT PGUSER=$(id -un) PGDATABASE=perfguard_django
export PYTHONDONTWRITEBYTECODE=1 DJANGO_SETTINGS_MODULE=project.settings
"$BINDIR/createdb" "$PGDATABASE"
"$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION perfguard'

cd "$HERE"
"$PYTHON" manage.py migrate --noinput -v 0
"$PYTHON" manage.py seed

rc=0
"$PYTHON" e2e_checks.py || rc=$?
if [ "$rc" != 0 ]; then
	echo "--- server log (last 40 lines) ---"
	tail -n 40 "$LOG"
fi
exit "$rc"
