#!/bin/bash
#
# integrations/packaging/run_e2e.sh: the Debian packages, built from a
# release tarball, on a fresh cluster.
#
#   1. Makes the release tarball: `git archive --format=tar.gz
#      --prefix=perfguard-1.0/ HEAD` in a git checkout (committed files
#      only), else (scripts/test.sh runs the suites in a copy of the tree
#      without .git) a tarball of the tree as it is, minus build products and
#      test scratch directories.  Unpacks it where no .git is reachable.
#   2. Runs scripts/build-deb.sh in the unpacked tree (no root needed:
#      Rules-Requires-Root: no).
#   3. Checks the packages with dpkg-deb -c / -f: the extension package
#      (postgresql-15-perfguard) has perfguard.so and the extension files;
#      perfguard-tools has perfguard-report in /usr/bin and under
#      /usr/share/perfguard/ the exporter queries, the Grafana dashboard and
#      the Django, Rails and SQLAlchemy integrations, and no tests.
#   4. "Installs" them without root: dpkg-deb -x of both into a private root
#      directory, next to a copy of the postgres binary, so the server takes
#      its share and library directories from that root (PostgreSQL
#      installations are relocatable).  A fresh cluster started from it
#      preloads the packaged perfguard.so (checked in /proc/PID/maps) and
#      creates the extension from the packaged SQL files.
#   5. Plays the report demo workload and runs the packaged
#      /usr/bin/perfguard-report, which must write the HTML report with the
#      N+1 and its fix; the packaged integrations import, and the packaged
#      queries.yaml and dashboard parse.
#
# Why not dpkg -i: the suites run as the unprivileged pfgtest, and installing
# would replace the perfguard.so every other test on this machine uses.  The
# root-only `bash scripts/build-deb.sh --install-test` does the real dpkg -i
# (under the install lock) and puts the development build back.
#
# Needs dpkg-dev, debhelper, postgresql-server-dev-all (scripts/setup.sh
# installs them).  As root it re-runs itself as pfgtest.  Last line:
# "N passed, M failed".

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd -P)
source "$here/../lib/cluster.sh"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"

for tool in dpkg-buildpackage dh pg_buildext dpkg-deb; do
	if ! command -v "$tool" >/dev/null; then
		echo "run_e2e.sh: $tool is missing: apt-get install dpkg-dev debhelper postgresql-server-dev-all" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
done

PFG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/perfguard-pkg.XXXXXX")
trap pfg_cleanup EXIT
export PFG_TMP
tarball=$PFG_TMP/perfguard-1.0.tar.gz
git_() { git -c safe.directory='*' -C "$root" "$@"; }

# 1. the release tarball
if [ "$(git_ rev-parse --show-toplevel 2>/dev/null)" = "$root" ]; then
	echo "# tarball: git archive of HEAD $(git_ rev-parse --short HEAD) (uncommitted changes are not in it)"
	git_ archive --format=tar.gz --prefix=perfguard-1.0/ HEAD >"$tarball"
else
	echo "# tarball: the tree at $root ($root is not a git checkout)"
	mkdir -p "$PFG_TMP/stage/perfguard-1.0"
	tar -C "$root" --exclude=./.git --exclude=./tmp --exclude=./tap \
		--exclude='./out_*' --exclude='./instance_*' --exclude='*.o' \
		--exclude='*.so' --exclude='*.bc' --exclude=__pycache__ \
		--exclude='*.pyc' -cf - . | tar -C "$PFG_TMP/stage/perfguard-1.0" -xf -
	tar -C "$PFG_TMP/stage" -czf "$tarball" perfguard-1.0
	rm -rf "$PFG_TMP/stage"
fi
mkdir -p "$PFG_TMP/src"
tar -C "$PFG_TMP/src" -xzf "$tarball"
src=$PFG_TMP/src/perfguard-1.0
check "the release tarball unpacks to perfguard-1.0/ without .git" \
	bash -c "[ -f '$src/scripts/build-deb.sh' ] && [ ! -e '$src/.git' ]"

# 2. build-deb.sh in the tarball tree; git must find no repository around it
debs=$PFG_TMP/debs
(cd "$src" && GIT_CEILING_DIRECTORIES=$PFG_TMP/src bash scripts/build-deb.sh --out "$debs") \
	>"$PFG_TMP/build.out" 2>&1
rc=$?
check "scripts/build-deb.sh builds from the tarball (exit $rc)" [ $rc -eq 0 ]
[ $rc -eq 0 ] || cat "$PFG_TMP/build.out"
v=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
ext_deb=$(ls "$debs"/postgresql-"$v"-perfguard_*.deb 2>/dev/null | head -n 1)
tools_deb=$(ls "$debs"/perfguard-tools_*_all.deb 2>/dev/null | head -n 1)
check "it produced postgresql-$v-perfguard and perfguard-tools" \
	bash -c "[ -f '$ext_deb' ] && [ -f '$tools_deb' ]"
if [ -z "$ext_deb" ] || [ -z "$tools_deb" ]; then
	pfg_finish
fi

# 3. the packages' contents
dpkg-deb -c "$ext_deb" | awk '{print $6}' >"$PFG_TMP/ext.list"
dpkg-deb -c "$tools_deb" | awk '{print $6, $7, $8}' >"$PFG_TMP/tools.list"
# has LIST PATH...: every PATH is in the listing
has()
{
	local list=$1 p
	shift
	for p in "$@"; do
		if ! grep -qE "^\\.$p( |\$)" "$list"; then
			echo "    missing: $p"
			return 1
		fi
	done
}
check "postgresql-$v-perfguard holds perfguard.so, perfguard.control and perfguard--1.0.sql" \
	has "$PFG_TMP/ext.list" "/usr/lib/postgresql/$v/lib/perfguard.so" \
	"/usr/share/postgresql/$v/extension/perfguard.control" \
	"/usr/share/postgresql/$v/extension/perfguard--1.0.sql"
share=/usr/share/perfguard
check "perfguard-tools holds perfguard-report, on PATH as /usr/bin/perfguard-report" \
	bash -c "$(declare -f has); has '$PFG_TMP/tools.list' $share/tools/perfguard-report &&
		grep -qE '^\\./usr/bin/perfguard-report -> \\.\\./share/perfguard/tools/perfguard-report\$' '$PFG_TMP/tools.list'"
check "perfguard-tools holds the exporter queries and the Grafana dashboard" \
	has "$PFG_TMP/tools.list" $share/integrations/prometheus/queries.yaml \
	$share/integrations/grafana/perfguard-dashboard.json
check "perfguard-tools holds the Django integration with its migration" \
	has "$PFG_TMP/tools.list" $share/integrations/django/perfguard_django/__init__.py \
	$share/integrations/django/perfguard_django/middleware.py \
	$share/integrations/django/perfguard_django/testing.py \
	$share/integrations/django/perfguard_django/migrations/__init__.py \
	$share/integrations/django/perfguard_django/migrations/0001_create_extension.py
check "perfguard-tools holds the Rails and SQLAlchemy integrations" \
	has "$PFG_TMP/tools.list" $share/integrations/rails/lib/perfguard.rb \
	$share/integrations/rails/lib/perfguard/minitest.rb \
	$share/integrations/sqlalchemy/perfguard_sqlalchemy.py
check "perfguard-tools ships no tests and no bytecode" \
	bash -c "! grep -Eq 'run_e2e|/tests?/|check_queries|e2e_checks|__pycache__|\\.pyc' '$PFG_TMP/tools.list'"
check "perfguard-tools depends on python3-psycopg2 (perfguard-report needs it)" \
	bash -c "dpkg-deb -f '$tools_deb' Depends | grep -q python3-psycopg2"
check "postgresql-$v-perfguard recommends perfguard-tools" \
	bash -c "dpkg-deb -f '$ext_deb' Recommends | grep -q perfguard-tools"

# 4. a private root with the packaged files and a copy of the postgres
# binary: the server finds share/ and lib/ relative to its own path
inst=$PFG_TMP/root
mkdir -p "$inst"
dpkg-deb -x "$ext_deb" "$inst"
dpkg-deb -x "$tools_deb" "$inst"
bindir=$PFG_BINDIR
pkglib=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
mkdir -p "$inst$bindir" "$inst$pkglib" "$inst$sharedir/extension"
cp "$bindir/postgres" "$inst$bindir/postgres"
for f in "$pkglib"/*; do
	[ -e "$inst$pkglib/$(basename "$f")" ] || ln -s "$f" "$inst$pkglib/"
done
for f in "$sharedir"/*; do
	[ "$(basename "$f")" = extension ] || ln -s "$f" "$inst$sharedir/"
done
for f in "$sharedir"/extension/*; do
	[ -e "$inst$sharedir/extension/$(basename "$f")" ] || ln -s "$f" "$inst$sharedir/extension/"
done

mkdir -p "$PFG_TMP/sock"
if ! "$bindir/initdb" -D "$PFG_TMP/data" -U "$(id -un)" -A trust -E UTF8 --locale=C \
	--no-sync >"$PFG_TMP/initdb.log" 2>&1; then
	cat "$PFG_TMP/initdb.log"
	check "initdb" false
	pfg_finish
fi
cat >>"$PFG_TMP/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$PFG_TMP/sock'
port = $((20000 + RANDOM % 20000))
fsync = off
shared_preload_libraries = 'perfguard'
perfguard.request_gap = '10s'
EOF
export PGHOST=$PFG_TMP/sock PGUSER=$(id -un) PGDATABASE=postgres
PGPORT=$(sed -n 's/^port = //p' "$PFG_TMP/data/postgresql.conf" | tail -n 1)
export PGPORT
if ! "$bindir/pg_ctl" -D "$PFG_TMP/data" -p "$inst$bindir/postgres" -l "$PFG_TMP/server.log" \
	-w start >/dev/null; then
	cat "$PFG_TMP/server.log"
	check "the server starts from the packaged files" false
	pfg_finish
fi
pid=$(head -n 1 "$PFG_TMP/data/postmaster.pid")
check "the server preloads the packaged perfguard.so" \
	bash -c "grep -q ' $inst$pkglib/perfguard.so\$' /proc/$pid/maps && ! grep -q ' $pkglib/perfguard.so\$' /proc/$pid/maps"
check "CREATE EXTENSION perfguard from the packaged SQL files" \
	bash -c "[ \"\$('$PFG_BINDIR/psql' -X -At -c \"SELECT setting FROM pg_config WHERE name = 'SHAREDIR'\")\" = '$inst$sharedir' ] &&
		'$PFG_BINDIR/psql' -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION perfguard' &&
		[ \"\$('$PFG_BINDIR/psql' -X -At -c \"SELECT extversion FROM pg_extension WHERE extname = 'perfguard'\")\" = 1.0 ]"

# 5. the packaged perfguard-report writes a report
pfg_psql -f "$here/../report/workload.sql" >"$PFG_TMP/workload.out" 2>&1 || cat "$PFG_TMP/workload.out"
report=$PFG_TMP/report.html
"$inst/usr/bin/perfguard-report" "host=$PGHOST port=$PGPORT dbname=postgres user=$PGUSER" \
	-o "$report" 2>"$PFG_TMP/report.err"
rc=$?
cat "$PFG_TMP/report.err"
check "the packaged /usr/bin/perfguard-report exits 0 (exit $rc)" [ $rc -eq 0 ]
check "it writes the HTML report with the /essays/ N+1 and its fix" \
	bash -c "grep -q '<html' '$report' && grep -q '/essays/' '$report' && grep -q 'select_related(' '$report'"

intg=$inst$share/integrations
check "the packaged Django integration imports (app, middleware, mixin, migration)" \
	env PYTHONPATH="$intg/django" "$PYTHON" -c "
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=['perfguard_django'])
django.setup()
import importlib
import perfguard_django.middleware, perfguard_django.testing
importlib.import_module('perfguard_django.migrations.0001_create_extension')
assert perfguard_django.__file__.startswith('$intg/')
"
check "the packaged SQLAlchemy integration imports" \
	env PYTHONPATH="$intg/sqlalchemy" "$PYTHON" -c "
import perfguard_sqlalchemy
assert perfguard_sqlalchemy.__file__.startswith('$intg/')
"
if command -v ruby >/dev/null; then
	check "the packaged Rails integration loads" \
		ruby -I "$intg/rails/lib" -e 'require "active_record"; require "perfguard"; require "perfguard/minitest"'
fi
check "the packaged queries.yaml and dashboard parse" \
	"$PYTHON" -c "
import json, yaml
assert yaml.safe_load(open('$intg/prometheus/queries.yaml'))['perfguard_requests']['query']
assert json.load(open('$intg/grafana/perfguard-dashboard.json'))['panels']
"
pfg_finish
