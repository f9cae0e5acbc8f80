#!/bin/bash
# ----------------------------------------------------------------------------
# bench/profile_diff.sh
#
# Which functions, anywhere in the process, execute more (or fewer)
# instructions per statement in one configuration than in another:
#
#   bench/profile_diff.sh [simple|orm] [base] [config]
#       defaults: simple queryid perfguard
#
# Self cost per function, per statement ((Ir_big - Ir_small) / (N_big - N_small)
# from the callgrind files of bench/run.sh --only callgrind), config minus
# base, largest differences first.  With base = queryid this attributes what
# perfguard adds on top of the core query id, including the core functions its
# hooks call (hash_search, LWLockAcquire, clock_gettime, palloc ...).
# ----------------------------------------------------------------------------
set -euo pipefail
OUT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/out
WL=${1:-simple}
BASE=${2:-queryid}
CONFIG=${3:-perfguard}

perstmt() {
	local cfg=$1 files small big ns nb
	files=$(ls "$OUT"/callgrind."$cfg"."$WL".*.out 2>/dev/null | awk -F. '{ print $(NF - 1) "\t" $0 }' | sort -n | cut -f2) || true
	[ "$(echo "$files" | grep -c .)" -ge 2 ] ||
		{ echo "profile_diff.sh: need two bench/out/callgrind.$cfg.$WL.<n>.out files" >&2; exit 1; }
	small=$(echo "$files" | head -1); big=$(echo "$files" | tail -1)
	ns=$(basename "$small" .out | awk -F. '{ print $NF }'); nb=$(basename "$big" .out | awk -F. '{ print $NF }')
	for f in "$small" "$big"; do
		callgrind_annotate --auto=no --threshold=100 "$f" 2>/dev/null |
			awk 'match($0, /^ *[0-9,]+ +(\([^)]*\) +)?/) {
				head = substr($0, 1, RLENGTH); rest = substr($0, RLENGTH + 1)
				split(head, h, " "); ir = h[1]; gsub(",", "", ir)
				sub(/ \[.*\]$/, "", rest); sub(/^.*:/, "", rest)
				if (rest != "PROGRAM TOTALS") print ir "\t" rest }'
		echo "--"
	done | awk -F'\t' -v d=$((nb - ns)) '
		$0 == "--" { part++; next }
		part == 0 { s[$2] += $1; next }
		{ b[$2] += $1 }
		END { for (f in b) printf "%s\t%.1f\n", f, (b[f] - s[f]) / d }'
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
perstmt "$BASE" >"$tmp/base"
perstmt "$CONFIG" >"$tmp/cfg"
echo "$CONFIG minus $BASE, workload $WL: self instructions per statement, by function"
awk -F'\t' 'NR == FNR { b[$1] = $2; next } { c[$1] = $2; seen[$1] = 1 }
	END {
		for (f in b) seen[f] = 1
		for (f in seen) { d = c[f] - b[f]; tot += d; if (d >= 10 || d <= -10) printf "%10.0f  %s\n", d, f }
		printf "%10.0f  TOTAL\n", tot
	}' "$tmp/base" "$tmp/cfg" | sort -rn | head -50
