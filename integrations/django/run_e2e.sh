#!/bin/bash
#
# integrations/django/run_e2e.sh: test perfguard_django (middleware tags,
# explicit scopes, PerfguardTestMixin) with Django 3.2 against a throwaway
# cluster that preloads perfguard.  Runs the Django tests in tests/; every
# Django test counts as one check.  Needs perfguard installed, Debian's
# python3-django and python3-psycopg2 (/usr/bin/python3).  As root it re-runs
# itself as the OS user pfgtest.  Last line: "N passed, M failed".

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/cluster.sh"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"

pfg_start_cluster "perfguard.request_gap = '10s'"
# Django creates test_postgres from template1
pfg_psql -d template1 -c 'CREATE EXTENSION perfguard' || { echo "0 passed, 1 failed"; exit 1; }

out=$PFG_TMP/django.out
(cd "$here/tests" && "$PYTHON" runtests.py) >"$out" 2>&1
rc=$?
grep -vE '^[0-9]+ passed, [0-9]+ failed$' "$out"
line=$(grep -E '^django tests: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
if [ -n "$line" ]; then
	n=${line#django tests: }
	pfg_passed=$((pfg_passed + ${n%% passed*}))
	m=${n#*passed, }
	pfg_failed=$((pfg_failed + ${m%% failed}))
fi
[ $rc -ne 0 ] && [ "$pfg_failed" -eq 0 ] && pfg_failed=1
pfg_finish
