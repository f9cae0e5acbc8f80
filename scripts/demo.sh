#!/bin/bash
#
# scripts/demo.sh: perfguard catching an N+1 in a few seconds.
#
# Run as root: it calls scripts/setup.sh (packages, build, install), then, as
# the unprivileged user pfgtest, starts a throwaway cluster that preloads
# perfguard, creates a tiny blog (10 authors, 50 essays), and plays a page
# "/essays/" the way an ORM without select_related would: one query for the
# essays, then one query per essay for its author, each tagged with a
# sqlcommenter comment as Django or Rails would send it.  It shows what
# perfguard.n_plus_one reports, then plays the fixed page (one JOIN) and
# shows that it reports nothing.  The cluster and its directory are removed
# at the end.  Exits non-zero if perfguard misses the N+1 or flags the fix.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bash "$repo/scripts/setup.sh"

pgbin=$(pg_config --bindir)
port=54329
work=$(mktemp -d /tmp/perfguard-demo.XXXXXX)
chown pfgtest: "$work"
chmod 755 "$work"

as_pfg()
{
	runuser -u pfgtest -- env -u PGHOST -u PGPORT -u PGDATABASE -u PGUSER \
		-u LC_ALL HOME="$(getent passwd pfgtest | cut -d: -f6)" \
		PATH="$pgbin:$PATH" LANG=C.UTF-8 "$@"
}

cleanup()
{
	if [ -f "$work/data/postmaster.pid" ]; then
		as_pfg pg_ctl -D "$work/data" -m fast -w stop >/dev/null 2>&1 ||
			as_pfg pg_ctl -D "$work/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "== starting a throwaway PostgreSQL 15 with shared_preload_libraries = 'perfguard'"
as_pfg initdb -D "$work/data" -A trust -E UTF8 >"$work/initdb.log" 2>&1 ||
	{ cat "$work/initdb.log"; exit 1; }
cat >>"$work/data/postgresql.conf" <<EOF
shared_preload_libraries = 'perfguard'
listen_addresses = ''
unix_socket_directories = '$work'
port = $port
EOF
as_pfg pg_ctl -D "$work/data" -l "$work/server.log" -w start >/dev/null ||
	{ cat "$work/server.log"; exit 1; }

# The page, as an ORM would run it: every statement carries the route in a
# sqlcommenter comment (values URL-encoded: /essays/ -> %2Fessays%2F).
tag="/*route='%2Fessays%2F'*/"
etag=${tag//\'/\'\'}		# the same, quoted for psql's \echo '...'
lookups=$(for i in $(seq 1 50); do
	echo "SELECT * FROM author WHERE id = $(( (i - 1) % 10 + 1 )) $tag;"
done)

as_pfg psql -X -q -v ON_ERROR_STOP=1 -P pager=off -h "$work" -p "$port" -d postgres <<EOF
CREATE EXTENSION perfguard;
CREATE TABLE author (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE essay (
	id int PRIMARY KEY,
	author_id int NOT NULL REFERENCES author (id),
	title text NOT NULL
);
INSERT INTO author SELECT a, 'Author ' || a FROM generate_series(1, 10) a;
INSERT INTO essay SELECT e, (e - 1) % 10 + 1, 'Essay ' || e FROM generate_series(1, 50) e;
ANALYZE author, essay;

\\echo
\\echo '== the page /essays/ with an N+1: 1 query for the essays, then 1 per essay for its author'
\\echo '   SELECT * FROM essay $etag;'
\\echo '   SELECT * FROM author WHERE id = 1 $etag;'
\\echo '   SELECT * FROM author WHERE id = 2 $etag;'
\\echo '   ... (50 author lookups in all)'
\\o /dev/null
SELECT * FROM essay $tag;
$lookups
\\o
-- The request is over once the session stays idle longer than
-- perfguard.request_gap.
\\! sleep 1

\\echo
\\echo '== SELECT route, query, total_repeats, suggestion FROM perfguard.n_plus_one;'
\\x on
SELECT route, query, total_repeats, suggestion FROM perfguard.n_plus_one;
\\x off
DO \$\$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM perfguard.n_plus_one WHERE route = '/essays/') THEN
		RAISE EXCEPTION 'demo: perfguard did not report the N+1 on /essays/';
	END IF;
END
\$\$;

\\echo
\\echo '== the fixed page: one query with a JOIN (Django: select_related(''author''))'
\\echo '   SELECT essay.id, essay.title, author.name FROM essay JOIN author ON author.id = essay.author_id $etag;'
\\o /dev/null
SELECT perfguard.reset();
SELECT essay.id, essay.title, author.name
  FROM essay JOIN author ON author.id = essay.author_id $tag;
\\o
\\! sleep 1

\\echo
\\echo '== after perfguard.reset() and the fixed page: SELECT count(*) FROM perfguard.n_plus_one;'
SELECT count(*) AS n_plus_one_findings FROM perfguard.n_plus_one;
DO \$\$
BEGIN
	IF EXISTS (SELECT 1 FROM perfguard.n_plus_one) THEN
		RAISE EXCEPTION 'demo: perfguard flagged the fixed page';
	END IF;
END
\$\$;
EOF

echo
echo "== done; the demo cluster is stopped and removed"
