#!/bin/bash
# bench/findings.sh: perfguard.findings over a full store (issue 17: under
# 100 ms with 5,000 statements).  Starts a throwaway cluster with perfguard
# preloaded (integrations/lib/cluster.sh; as root it re-runs itself as
# pfgtest), runs bench/findings.py there and prints its figures.  Needs
# perfguard installed; PG_CONFIG selects the installation.  Not part of the
# test suite: timings depend on the machine.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../integrations/lib/cluster.sh"
pfg_as_unprivileged "$here/findings.sh" "$@"
pfg_start_cluster "perfguard.request_gap = '10s'"
pfg_psql -c 'CREATE EXTENSION perfguard' || exit 1
"$PYTHON" "$here/findings.py" "$@"
