#!/bin/bash
#
# integrations/prometheus/run_e2e.sh: check the postgres_exporter queries
# file and the Grafana dashboard.  Starts a throwaway cluster that preloads
# perfguard, plays the report demo workload (N+1, duplicates, write loop),
# then runs check_queries.py: queries.yaml parses (python3-yaml), every
# query runs (as the superuser and as a pg_monitor role) and returns exactly
# its declared columns with unique label sets; every query carries the tag
# /*perfguard='ignore'*/, and two scrapes 50 ms apart (one request for
# perfguard) leave no finding from the exporter in perfguard.findings, while
# the same scrapes without the tag do (control); a request with two N+1
# statements counts once in perfguard_requests_n_plus_one_requests; the
# dashboard JSON parses, uses only metrics that queries.yaml defines, and its
# "Requests with an N+1" / "Duplicate-query requests" panels use the
# per-request metrics.  As root it re-runs itself as pfgtest.  Last line:
# "N passed, M failed".

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/cluster.sh"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"

pfg_start_cluster "perfguard.request_gap = '10s'"
pfg_psql -c 'CREATE EXTENSION perfguard' || { echo "0 passed, 1 failed"; exit 1; }
pfg_psql -f "$here/../report/workload.sql" >"$PFG_TMP/workload.out" 2>&1 ||
	{ cat "$PFG_TMP/workload.out"; echo "0 passed, 1 failed"; exit 1; }

out=$PFG_TMP/checks.out
"$PYTHON" "$here/check_queries.py" >"$out" 2>&1
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
