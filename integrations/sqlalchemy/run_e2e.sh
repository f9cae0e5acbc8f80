#!/bin/bash
#
# integrations/sqlalchemy/run_e2e.sh: test perfguard_sqlalchemy (comment
# hook, no_n_plus_one / max_queries) with Debian's python3-sqlalchemy (1.4)
# and python3-psycopg2 against a throwaway cluster that preloads perfguard:
# lazy-loaded relationship loops are flagged, joinedload / selectinload are
# clean; a page over three relations is one finding whose fix is
# .options(joinedload(...), selectinload(...)) (issue 17).  As root it re-runs itself as pfgtest.  Last line: "N passed, M failed".

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/cluster.sh"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"

pfg_start_cluster "perfguard.request_gap = '10s'"
pfg_psql -c 'CREATE EXTENSION perfguard' || { echo "0 passed, 1 failed"; exit 1; }

out=$PFG_TMP/checks.out
"$PYTHON" "$here/e2e_checks.py" >"$out" 2>&1
rc=$?
grep -vE '^[0-9]+ passed, [0-9]+ failed$' "$out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
if [ -n "$line" ]; then
	pfg_passed=${line%% passed*}
	m=${line#*passed, }
	pfg_failed=${m%% failed}
fi
[ $rc -ne 0 ] && [ "$pfg_failed" -eq 0 ] && pfg_failed=1
pfg_finish
