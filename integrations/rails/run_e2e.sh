#!/bin/bash
#
# integrations/rails/run_e2e.sh: test the perfguard ActiveRecord integration
# (sqlcommenter hook, Perfguard::Assertions) with Debian's ruby-activerecord
# and ruby-pg (/usr/bin/ruby, no gems from the internet) against a throwaway
# cluster that preloads perfguard: the includes-less loop is flagged with
# includes(:author), the guard raises ActiveRecord::StatementInvalid (PF001),
# a list view over three relations without foreign keys (t.references) is one
# finding with .includes(:user, :tags, :comments), inferred (issue 17),
# the includes version is clean.  Every Minitest test counts as one check.
# As root it re-runs itself as pfgtest.  Last line: "N passed, M failed".

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/cluster.sh"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"

pfg_start_cluster "perfguard.request_gap = '10s'"
pfg_psql -c 'CREATE EXTENSION perfguard' || { echo "0 passed, 1 failed"; exit 1; }

out=$PFG_TMP/minitest.out
/usr/bin/ruby "$here/test/perfguard_test.rb" -v >"$out" 2>&1
rc=$?
cat "$out"
line=$(grep -E '^[0-9]+ runs, [0-9]+ assertions, [0-9]+ failures, [0-9]+ errors' "$out" | tail -n 1)
if [ -n "$line" ]; then
	read -r runs _ _ _ fails _ errs _ <<<"$line"
	pfg_passed=$((runs - fails - errs))
	pfg_failed=$((fails + errs))
fi
[ $rc -ne 0 ] && [ "$pfg_failed" -eq 0 ] && pfg_failed=1
pfg_finish
