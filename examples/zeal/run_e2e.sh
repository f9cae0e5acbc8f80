#!/bin/bash
#
# examples/zeal/run_e2e.sh: django-zeal's N+1 test cases, ported to Django 3.2
# and perfguard (see README.md).
#
# Starts a throwaway cluster that preloads perfguard at its default settings
# (integrations/lib/cluster.sh), creates the database and the extension, and
# runs run_cases.py: every case tagged, untagged in autocommit and untagged in
# one transaction.  One check per case and way; the last line is
# "N passed, M failed", the exit status non-zero on a failure.
#
# Needs perfguard installed (make install), Debian's python3-django and
# python3-psycopg2 (/usr/bin/python3).  As root it re-runs itself as pfgtest.
#
#   bash examples/zeal/run_e2e.sh                       # everything
#   bash examples/zeal/run_e2e.sh --mode tagged fwd_m2o # one case, one way
#   KEEP_TMP=1 PFG_EXTRA_CONF="log_statement = 'all'" bash examples/zeal/run_e2e.sh

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../../integrations/lib/cluster.sh"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"

pfg_start_cluster
export PGDATABASE=zeal
"$PFG_BINDIR/createdb" zeal || { echo "0 passed, 1 failed"; exit 1; }
pfg_psql -c 'CREATE EXTENSION perfguard' || { echo "0 passed, 1 failed"; exit 1; }

cd "$here"
out=$PFG_TMP/run_cases.out
"$PYTHON" run_cases.py "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
if [ $rc -ne 0 ]; then
	echo "--- server log (last ${PFG_LOG_LINES:-30} lines) ---"
	tail -n "${PFG_LOG_LINES:-30}" "$PFG_TMP/server.log"
	[ -n "$summary" ] || summary="0 passed, 1 failed"
	echo "$summary"
	exit 1
fi
exit 0
