#!/bin/bash
#
# integrations/django/run_e2e.sh: test perfguard_django (middleware tags,
# explicit scopes, PerfguardTestMixin, the migration that creates the
# extension) with Django 3.2 against a throwaway cluster that preloads
# perfguard.  Runs the Django tests in tests/ (every Django test counts as one
# check); template1 has no perfguard, so the test database gets it from
# perfguard_django's migration.  Then, as checks of their own:
#   - manage.py migrate as a role that is not a superuser: exit 0, the
#     migration is recorded, no extension, and a warning that says why and
#     what to do; as the superuser in another database: the extension;
#   - the cluster restarted without shared_preload_libraries: the mixin
#     raises PerfguardNotReady saying how to preload (tests/library/
#     not_preloaded.py).
# Needs perfguard installed, Debian's python3-django and python3-psycopg2
# (/usr/bin/python3).  As root it re-runs itself as the OS user pfgtest.
# Last line: "N passed, M failed".

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/cluster.sh"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"

pfg_start_cluster "perfguard.request_gap = '10s'"

# run_django OUT LABEL...: the Django tests; adds their counts to ours
run_django()
{
	local out=$1 line n m rc
	shift
	(cd "$here/tests" && "$PYTHON" runtests.py "$@") >"$out" 2>&1
	rc=$?
	grep -vE '^[0-9]+ passed, [0-9]+ failed$' "$out"
	line=$(grep -E '^django tests: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
	if [ -n "$line" ]; then
		n=${line#django tests: }
		pfg_passed=$((pfg_passed + ${n%% passed*}))
		m=${n#*passed, }
		pfg_failed=$((pfg_failed + ${m%% failed}))
	fi
	if [ $rc -ne 0 ] && { [ -z "$line" ] || [ "${m%% failed}" -eq 0 ]; }; then
		pfg_failed=$((pfg_failed + 1))
	fi
}

# Django creates test_postgres from template1, which has no perfguard: the
# migration must create it
check "template1 has no perfguard extension" \
	test -z "$(pfg_psql -d template1 -c "SELECT 1 FROM pg_extension WHERE extname = 'perfguard'")"
run_django "$PFG_TMP/django.out"

# manage.py migrate as a role that may not create the extension
pfg_psql -c 'CREATE ROLE pfg_app LOGIN' -c 'CREATE DATABASE app_db OWNER pfg_app' \
	-c 'CREATE DATABASE admin_db'
(cd "$here/tests" && PGUSER=pfg_app PGDATABASE=app_db "$PYTHON" manage.py migrate perfguard_django) \
	>"$PFG_TMP/migrate_app.out" 2>&1
rc=$?
cat "$PFG_TMP/migrate_app.out"
recorded=$(pfg_psql -d app_db -c "SELECT name FROM django_migrations WHERE app = 'perfguard_django'")
check "migrate as a role that is not a superuser: exit 0 and the migration is recorded" \
	test "$rc/$recorded" = 0/0001_create_extension
check "... it warns that the role is not a superuser and what to run instead" \
	grep -q 'PerfguardMigrationWarning: perfguard: CREATE EXTENSION perfguard skipped in database "app_db": the role "pfg_app" is not a superuser, and perfguard must be created by one. As a superuser, run CREATE EXTENSION perfguard in this database' \
	"$PFG_TMP/migrate_app.out"
check "... and creates no extension" \
	test -z "$(pfg_psql -d app_db -c "SELECT 1 FROM pg_extension WHERE extname = 'perfguard'")"
(cd "$here/tests" && PGDATABASE=admin_db "$PYTHON" manage.py migrate perfguard_django) \
	>"$PFG_TMP/migrate_admin.out" 2>&1
rc=$?
cat "$PFG_TMP/migrate_admin.out"
version=$(pfg_psql -d admin_db -c "SELECT extversion FROM pg_extension WHERE extname = 'perfguard'")
check "migrate as a superuser: the extension, and no warning" \
	bash -c "[ '$rc/$version' = 0/1.0 ] && ! grep -q Warning '$PFG_TMP/migrate_admin.out'"

# the same server without shared_preload_libraries
if "$PFG_BINDIR/pg_ctl" -D "$PFG_TMP/data" -o "-c shared_preload_libraries=''" -w -m fast \
	restart >>"$PFG_TMP/server.log" 2>&1; then
	check "restarted without shared_preload_libraries" \
		test "$(pfg_psql -c 'SHOW shared_preload_libraries')" = ""
	run_django "$PFG_TMP/django_not_preloaded.out" library.not_preloaded
else
	check "restart without shared_preload_libraries" false
fi
pfg_finish
