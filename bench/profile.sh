#!/bin/bash
# ----------------------------------------------------------------------------
# bench/profile.sh
#
# Where perfguard spends its instructions, from the callgrind files that
# bench/run.sh --only callgrind leaves in bench/out/:
#
#   bench/profile.sh [simple|orm] [config] [object]
#       defaults: simple perfguard perfguard.so
#
# Runs callgrind_annotate (self and --inclusive=yes) on the small and the big
# run of the configuration and prints, for each function of the object, the
# self and the inclusive instructions per statement,
# (Ir_big - Ir_small) / (N_big - N_small), the same difference that run.sh
# uses, so that start-up cancels out.  The first line sums the self cost of
# every function in the object (what the module's own code executes; the core
# functions it calls, such as hash_search or LWLockAcquire, count in the
# inclusive figures only).
# ----------------------------------------------------------------------------
set -euo pipefail
OUT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/out
WL=${1:-simple}
CONFIG=${2:-perfguard}
OBJ=${3:-perfguard.so}
files=$(ls "$OUT"/callgrind."$CONFIG"."$WL".*.out 2>/dev/null | awk -F. '{ print $(NF - 1) "\t" $0 }' | sort -n | cut -f2) || true
[ "$(echo "$files" | grep -c .)" -ge 2 ] ||
	{ echo "profile.sh: need two bench/out/callgrind.$CONFIG.$WL.<n>.out files; run bench/run.sh --only callgrind first" >&2; exit 1; }
small=$(echo "$files" | head -1); big=$(echo "$files" | tail -1)
ns=$(basename "$small" .out | awk -F. '{ print $NF }'); nb=$(basename "$big" .out | awk -F. '{ print $NF }')

# callgrind_annotate lines: "  1,234,567 (12.3%)  file:function [object]" -> "Ir<TAB>file:function [object]"
annotate() {
	callgrind_annotate --auto=no "$@" --threshold=100 2>/dev/null |
		awk 'match($0, /^ *[0-9,]+ +(\([^)]*\) +)?/) {
			head = substr($0, 1, RLENGTH); rest = substr($0, RLENGTH + 1)
			split(head, h, " "); ir = h[1]; gsub(",", "", ir)
			if (rest != "PROGRAM TOTALS") print ir "\t" rest }'
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
annotate "$small" >"$tmp/self.small"
annotate "$big" >"$tmp/self.big"
annotate --inclusive=yes "$small" >"$tmp/incl.small"
annotate --inclusive=yes "$big" >"$tmp/incl.big"

echo "$CONFIG, workload $WL: instructions per statement ($nb - $ns statements), functions of $OBJ"
echo
awk -F'\t' -v d=$((nb - ns)) -v obj="$OBJ" '
	FILENAME ~ /self.small$/ { ss[$2] = $1; next }
	FILENAME ~ /self.big$/   { sb[$2] = $1; names[$2] = 1; next }
	FILENAME ~ /incl.small$/ { is[$2] = $1; next }
	FILENAME ~ /incl.big$/   { ib[$2] = $1; names[$2] = 1; next }
	END {
		for (f in names) {
			if (index(f, obj) == 0) continue
			self = (sb[f] - ss[f]) / d; incl = (ib[f] - is[f]) / d
			total += self
			if (incl >= 5 || self >= 5) printf "%10.0f %10.0f  %s\n", self, incl, f > "/dev/stderr"
		}
		printf "self total of %s: %.0f instructions per statement\n\n", obj, total
		printf "%10s %10s  %s\n", "self", "inclusive", "function"
	}' "$tmp/self.small" "$tmp/self.big" "$tmp/incl.small" "$tmp/incl.big" 2>"$tmp/rows"
sort -k2,2nr "$tmp/rows" | head -60
