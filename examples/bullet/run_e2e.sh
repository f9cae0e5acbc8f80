#!/bin/bash
#
# examples/bullet/run_e2e.sh: Bullet's N+1 test cases, ported to
# ActiveRecord 6.1 and perfguard (see README.md).
#
# Starts a throwaway cluster that preloads perfguard at its default settings
# (integrations/lib/cluster.sh), creates the database and the extension, runs
# run_cases.rb (Bullet's schema without foreign keys, its models and seed;
# every case tagged, untagged in autocommit and untagged in one transaction),
# then ../lib/verify_cases.py, which reads perfguard's views and checks each
# case.  One check per case and way; the last line is "N passed, M failed",
# the exit status non-zero on a failure.
#
# Needs perfguard installed (make install), Debian's ruby-activerecord and
# ruby-pg (/usr/bin/ruby), python3-psycopg2.  As root it re-runs itself as
# pfgtest.
#
#   bash examples/bullet/run_e2e.sh
#   bash examples/bullet/run_e2e.sh --mode tagged comment_post    # one case, one way
#   KEEP_TMP=1 PFG_EXTRA_CONF="log_statement = 'all'" bash examples/bullet/run_e2e.sh

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../../integrations/lib/cluster.sh"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"
RUBY=${RUBY:-/usr/bin/ruby}

pfg_start_cluster
export PGDATABASE=bullet
"$PFG_BINDIR/createdb" bullet || { echo "0 passed, 1 failed"; exit 1; }
pfg_psql -c 'CREATE EXTENSION perfguard' || { echo "0 passed, 1 failed"; exit 1; }

cd "$here"
results=$PFG_TMP/bullet_results.json
out=$PFG_TMP/verify.out
if ! "$RUBY" run_cases.rb "$results" "$@"; then
	echo "run_cases.rb failed"
	tail -n "${PFG_LOG_LINES:-30}" "$PFG_TMP/server.log"
	echo "0 passed, 1 failed"
	exit 1
fi
"$PYTHON" ../lib/verify_cases.py "$results" bullet/ 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
if [ $rc -ne 0 ]; then
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
	echo "--- server log (last ${PFG_LOG_LINES:-30} lines) ---"
	tail -n "${PFG_LOG_LINES:-30}" "$PFG_TMP/server.log"
	echo "${summary:-0 passed, 1 failed}"
	exit 1
fi
exit 0
