#!/bin/bash
#
# integrations/report/run_e2e.sh: test tools/perfguard-report in a real
# headless browser.  Starts a throwaway cluster that preloads perfguard,
# plays workload.sql (N+1 loops, duplicates, a write loop, a slow pg_sleep
# statement) and, in a second database, blog.sql (a Django list view over
# three relations), writes the report from the first database, loads it in
# headless Chromium (--dump-dom for the checks, --screenshot for a picture)
# and checks the page: it opens with the top findings in rank order, each
# card naming its database, then a chart of the time to save per route; the
# Django card shows its combined fix although the report ran elsewhere; DROP
# advice has its own section after the CREATE advice.  Needs perfguard
# installed, /usr/bin/python3 with psycopg2 and Debian's chromium.  As root it
# re-runs itself as pfgtest.  REPORT_OUT_DIR=<dir> copies report.html and
# report.png there (docs/report.png is made that way).  Last line:
# "N passed, M failed".

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
PFG_EXTRA_ENV="REPORT_OUT_DIR=${REPORT_OUT_DIR:-}"
source "$here/../lib/cluster.sh"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"

report_tool=${PERFGUARD_REPORT:-$root/tools/perfguard-report}
if [ ! -f "$report_tool" ]; then
	echo "run_e2e.sh: $report_tool not found (set PERFGUARD_REPORT)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
chromium=$(command -v chromium || command -v chromium-browser || true)

pfg_start_cluster "perfguard.slow_query_ms = 30" "perfguard.request_gap = '10s'"
pfg_psql -c 'CREATE EXTENSION perfguard' || { echo "0 passed, 1 failed"; exit 1; }
pfg_psql -f "$here/workload.sql" >"$PFG_TMP/workload.out" 2>&1 ||
	{ cat "$PFG_TMP/workload.out"; echo "0 passed, 1 failed"; exit 1; }
"$PFG_BINDIR/createdb" blogapp
pfg_psql -d blogapp -c 'CREATE EXTENSION perfguard' -f "$here/blog.sql" \
	>"$PFG_TMP/blog.out" 2>&1 ||
	{ cat "$PFG_TMP/blog.out"; echo "0 passed, 1 failed"; exit 1; }

html=$PFG_TMP/report.html
dom=$PFG_TMP/dom.html
png=$PFG_TMP/report.png

"$PYTHON" "$report_tool" "host=$PGHOST port=$PGPORT dbname=postgres user=$PGUSER" \
	-o "$html" --title 'perfguard report (demo)' 2>"$PFG_TMP/report.err"
rc=$?
check "perfguard-report exits 0" [ $rc -eq 0 ]
check "perfguard-report raised no exception" bash -c "! grep -q Traceback '$PFG_TMP/report.err'"
[ -s "$PFG_TMP/report.err" ] && cat "$PFG_TMP/report.err"

# no external assets: no src=, no <link>, no url(), no scripts
check "the page is self-contained" bash -c \
	"[ -s '$html' ] && ! grep -Eiq '<script|<link|<img|src=|url\\(|@import' '$html'"

# chromium <args>: headless Chromium with a fresh profile, no network chatter
run_chromium()
{
	local profile
	profile=$(mktemp -d "$PFG_TMP/chromium.XXXXXX")
	timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic \
		--no-first-run --disable-background-networking --disable-component-update \
		--disable-sync --disable-crash-reporter --user-data-dir="$profile" "$@"
}

if [ -z "$chromium" ]; then
	check "chromium is installed (apt-get install chromium)" false
else
	run_chromium --dump-dom "file://$html" >"$dom" 2>"$PFG_TMP/chromium.err"
	check "headless Chromium loads the page" [ -s "$dom" ]
	check "the DOM has the N+1 table with route /essays/" \
		grep -q '<td class=""><span class="route">/essays/</span>' "$dom"
	check "the N+1 row suggests select_related('author')" \
		bash -c "grep -A0 'route\">/essays/</span>' '$dom' | grep -q \"select_related('author')\""
	check "the N+1 row shows parent and child queries" \
		bash -c "grep -q 'SELECT \\* FROM essay ORDER BY id' '$dom' && grep -q 'SELECT \\* FROM author WHERE id = \$1' '$dom'"
	check "the chart SVG exists with bars" \
		bash -c "grep -q '<svg id=\"requests-chart\"' '$dom' && [ \$(grep -o 'class=\"bar-max\"' '$dom' | wc -l) -ge 5 ]"
	check "the findings checklist lists n_plus_one, duplicate and write_loop" \
		bash -c "grep -q '<span class=\"cat\">n_plus_one</span>' '$dom' && grep -q '<span class=\"cat\">duplicate</span>' '$dom' && grep -q '<span class=\"cat\">write_loop</span>' '$dom'"
	check "the write loop suggests bulk_create" grep -q 'bulk_create' "$dom"
	# issue 17: the page opens with the top findings, in rank order
	check "the first section is the top findings" \
		bash -c "grep -o '<section id=\"[a-z-]*\"' '$dom' | head -n 1 | grep -q 'id=\"findings\"'"
	check "the cards are in rank order (1, 2, 3, ...)" \
		"$PYTHON" -c "
import re, sys
ranks = [int(x) for x in re.findall(r'<span class=\"rank\">(\d+)</span>', open(sys.argv[1]).read())]
sys.exit(0 if ranks and ranks == list(range(1, len(ranks) + 1)) else 1)" "$dom"
	check "every card names its database" \
		"$PYTHON" -c "
import re, sys
cards = re.findall(r'<li class=\"finding\">.*?</li>', open(sys.argv[1]).read(), re.S)
sys.exit(0 if cards and all('class=\"db\"' in c for c in cards) else 1)" "$dom"
	check "the chart of the time to save per route follows the cards" \
		bash -c "grep -o '<section id=\"[a-z-]*\"' '$dom' | sed -n 2p | grep -q 'id=\"wasted\"' &&
			grep -q '<svg id=\"wasted-chart\"' '$dom' && [ \$(grep -o 'class=\"bar-wasted\"' '$dom' | wc -l) -ge 3 ]"
	check "the blogapp card has its combined Django fix, read from the postgres database" \
		"$PYTHON" -c "
import re, sys
cards = re.findall(r'<li class=\"finding\">.*?</li>', open(sys.argv[1]).read(), re.S)
want = \".select_related('author').prefetch_related('tags', 'comment_set')\"
sys.exit(0 if any('>blogapp<' in c and 'posts/' in c and want in c for c in cards) else 1)" "$dom"
	check "the pg_sleep statement is no top card: it saves nothing" \
		"$PYTHON" -c "
import re, sys
cards = re.findall(r'<li class=\"finding\">.*?</li>', open(sys.argv[1]).read(), re.S)
sleepy = [i for i, c in enumerate(cards) if 'pg_sleep' in c]
loops = [i for i, c in enumerate(cards) if '>n_plus_one' in c]
sys.exit(0 if sleepy and loops and min(sleepy) > max(loops) else 1)" "$dom"
	check "DROP advice has its own section, after the CREATE advice" \
		bash -c "grep -o '<section id=\"[a-z-]*\"' '$dom' | tr '\n' ' ' | grep -q 'id=\"indexes\".*id=\"index-drops\"'"
	check "a route with markup is escaped, not parsed" \
		bash -c "grep -q '/search/&lt;b&gt;&amp;\"x\"' '$dom' && ! grep -q '/search/<b>' '$dom'"
	if grep -q 'perfguard.slow_queries could not be read\|no perfguard.slow_queries' "$dom"; then
		echo "# note: this perfguard has no usable perfguard.slow_queries"
	else
		check "the slow statement carries its plan" \
			bash -c "grep -q '<details><summary>plan of the slowest sample' '$dom'"
	fi
	if ! grep -q 'no perfguard.index_advice view' "$dom"; then
		check "index advice shows its DDL" grep -q 'CREATE INDEX CONCURRENTLY' "$dom"
	fi
	run_chromium --screenshot="$png" --window-size=1280,2000 --hide-scrollbars "file://$html" \
		>"$PFG_TMP/shot.out" 2>&1
	check "the screenshot is a PNG" \
		bash -c "[ \"\$(head -c 8 '$png' | od -An -tx1 | tr -d ' \\n')\" = 89504e470d0a1a0a ]"
fi

# an older or partial perfguard: no slow_queries and no index_advice views
# (findings depends on them and goes too); every section still renders
"$PFG_BINDIR/createdb" partial
check "a database with a partial perfguard" pfg_psql -d partial -c 'CREATE EXTENSION perfguard' \
	-c 'ALTER EXTENSION perfguard DROP VIEW perfguard.findings' \
	-c 'ALTER EXTENSION perfguard DROP VIEW perfguard.slow_queries' \
	-c 'ALTER EXTENSION perfguard DROP VIEW perfguard.index_advice' \
	-c 'DROP VIEW perfguard.findings, perfguard.slow_queries, perfguard.index_advice'
"$PYTHON" "$report_tool" "host=$PGHOST port=$PGPORT dbname=partial user=$PGUSER" \
	-o "$PFG_TMP/partial.html" 2>"$PFG_TMP/partial.err"
rc=$?
cat "$PFG_TMP/partial.err"
check "without slow_queries / index_advice: exit 0, no exception" \
	bash -c "[ $rc -eq 0 ] && ! grep -q Traceback '$PFG_TMP/partial.err'"
check "without slow_queries / index_advice / findings: the sections say so" \
	bash -c "grep -q 'no perfguard.slow_queries view' '$PFG_TMP/partial.html' &&
		grep -q 'perfguard.findings could not be read' '$PFG_TMP/partial.html' &&
		grep -q 'no perfguard.index_advice view' '$PFG_TMP/partial.html' &&
		grep -q 'id=\"requests-chart\"' '$PFG_TMP/partial.html'"

# the tool fails cleanly without the extension
"$PFG_BINDIR/createdb" noext
"$PYTHON" "$report_tool" "host=$PGHOST port=$PGPORT dbname=noext user=$PGUSER" -o "$PFG_TMP/x.html" \
	2>"$PFG_TMP/noext.err"
rc=$?
check "without the extension: exit 1 and a clear message" \
	bash -c "[ $rc -eq 1 ] && grep -q 'CREATE EXTENSION perfguard' '$PFG_TMP/noext.err'"

if [ -n "${REPORT_OUT_DIR:-}" ]; then
	cp "$html" "$png" "$REPORT_OUT_DIR/" 2>/dev/null || true
fi
pfg_finish
