/* perfguard--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION perfguard" to load this file. \quit

------------------------------------------------------------------------------
-- Statement store
------------------------------------------------------------------------------

CREATE FUNCTION perfguard._statements(
    OUT userid oid, OUT dbid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT query text, OUT command text, OUT calls bigint,
    OUT total_ms double precision, OUT mean_ms double precision,
    OUT min_ms double precision, OUT max_ms double precision,
    OUT stddev_ms double precision, OUT rows bigint,
    OUT shared_blks_hit bigint, OUT shared_blks_read bigint,
    OUT temp_blks_written bigint, OUT duplicate_calls bigint,
    OUT n_plus_one_calls bigint,
    OUT first_seen timestamptz, OUT last_seen timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_statements'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW perfguard.statements AS
  SELECT userid, dbid, queryid, toplevel, query, calls, total_ms, mean_ms,
         min_ms, max_ms, stddev_ms, rows, shared_blks_hit, shared_blks_read,
         temp_blks_written, duplicate_calls, n_plus_one_calls, first_seen,
         last_seen, command
    FROM perfguard._statements();
COMMENT ON VIEW perfguard.statements IS
  'Per fingerprint (user, database, query id, top level) counters; query text only for superusers, pg_read_all_stats and the statement''s own user';

CREATE FUNCTION perfguard._info(
    OUT version text, OUT stats_reset timestamptz, OUT entries bigint,
    OUT max_entries bigint, OUT dropped_entries bigint,
    OUT dropped_events bigint, OUT finding_entries bigint,
    OUT request_entries bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'perfguard_info'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW perfguard.info AS SELECT * FROM perfguard._info();
COMMENT ON VIEW perfguard.info IS
  'Version, last reset, entries in use and what eviction dropped';

CREATE FUNCTION perfguard.reset()
RETURNS void
AS 'MODULE_PATHNAME', 'perfguard_reset'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;
REVOKE ALL ON FUNCTION perfguard.reset() FROM PUBLIC;
COMMENT ON FUNCTION perfguard.reset() IS 'Clear all perfguard statistics and findings';

------------------------------------------------------------------------------
-- Request scopes and their findings (N+1, duplicates, write loops)
------------------------------------------------------------------------------

CREATE FUNCTION perfguard.begin_request(label text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'perfguard_begin_request'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION perfguard.begin_request(text) IS
  'Open an explicit request scope that lasts until end_request() or the next begin_request()';

CREATE FUNCTION perfguard.end_request(
    OUT queries bigint, OUT total_ms double precision, OUT n_plus_one integer,
    OUT duplicates integer, OUT write_loops integer)
RETURNS record
AS 'MODULE_PATHNAME', 'perfguard_end_request'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION perfguard.end_request() IS
  'Close the explicit request scope and return its summary';

CREATE FUNCTION perfguard._findings_raw(kind integer,
    OUT dbid oid, OUT userid oid, OUT route text, OUT queryid bigint,
    OUT parent_queryid bigint, OUT command text, OUT occurrences bigint,
    OUT total_repeats bigint, OUT max_repeats bigint,
    OUT max_distinct_params bigint, OUT total_duplicates bigint,
    OUT max_duplicates bigint, OUT wasted_ms double precision,
    OUT last_seen timestamptz, OUT example_params text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_findings_raw'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE FUNCTION perfguard._n_plus_one_fix(parent_query text, query text,
    OUT table_name text, OUT column_name text, OUT suggestion text)
RETURNS record
AS 'MODULE_PATHNAME', 'perfguard_n_plus_one_fix'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Query texts of the statement store, as the caller may see them.
CREATE VIEW perfguard._texts AS
  SELECT DISTINCT ON (userid, dbid, queryid) userid, dbid, queryid, query
    FROM perfguard._statements()
   ORDER BY userid, dbid, queryid, toplevel DESC;

CREATE VIEW perfguard.n_plus_one AS
  SELECT f.dbid, f.userid, f.route, f.parent_queryid, p.query AS parent_query,
         f.queryid, c.query, f.occurrences, f.total_repeats, f.max_repeats,
         f.max_distinct_params, f.wasted_ms, f.last_seen,
         x.table_name, x.column_name, x.suggestion, f.example_params
    FROM perfguard._findings_raw(1) f
    LEFT JOIN perfguard._texts c
           ON c.userid = f.userid AND c.dbid = f.dbid AND c.queryid = f.queryid
    LEFT JOIN perfguard._texts p
           ON p.userid = f.userid AND p.dbid = f.dbid AND p.queryid = f.parent_queryid
    LEFT JOIN LATERAL (
           SELECT * FROM perfguard._n_plus_one_fix(p.query, c.query)
            WHERE f.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND c.query IS NOT NULL) x ON true;
COMMENT ON VIEW perfguard.n_plus_one IS
  'N+1 suspects: a SELECT repeated with different parameters in one request, with its parent and the fix';

CREATE VIEW perfguard.duplicates AS
  SELECT f.dbid, f.userid, f.route, f.queryid, c.query, f.occurrences,
         f.total_duplicates, f.max_duplicates, f.wasted_ms, f.last_seen,
         'the same query with the same parameters ran ' || f.max_duplicates ||
         ' times in one request: run it once and reuse the result (a variable, '
         'Django''s cached_property or the cache framework, Rails memoization), '
         'or hoist it out of the loop' AS suggestion,
         f.example_params
    FROM perfguard._findings_raw(2) f
    LEFT JOIN perfguard._texts c
           ON c.userid = f.userid AND c.dbid = f.dbid AND c.queryid = f.queryid;
COMMENT ON VIEW perfguard.duplicates IS
  'Identical statements (same fingerprint, same parameters) run more than once in one request';

CREATE VIEW perfguard.write_loops AS
  SELECT f.dbid, f.userid, f.route, f.queryid, c.query, f.command,
         f.occurrences, f.total_repeats, f.max_repeats, f.wasted_ms,
         f.last_seen,
         CASE f.command
           WHEN 'INSERT' THEN
             'one INSERT per row: use a multi-row INSERT ... VALUES (...), (...) or COPY / Django: bulk_create(objs, batch_size=500) / Rails: insert_all'
           WHEN 'UPDATE' THEN
             'one UPDATE per row: use one UPDATE ... FROM (VALUES ...) or UPDATE ... WHERE id = ANY($1) / Django: bulk_update(objs, fields) or queryset.update() / Rails: update_all or upsert_all'
           WHEN 'DELETE' THEN
             'one DELETE per row: use DELETE ... WHERE id = ANY($1) / Django: queryset.delete() / Rails: delete_all'
           ELSE
             'one statement per row: batch the rows into one statement'
         END AS suggestion,
         f.example_params
    FROM perfguard._findings_raw(3) f
    LEFT JOIN perfguard._texts c
           ON c.userid = f.userid AND c.dbid = f.dbid AND c.queryid = f.queryid;
COMMENT ON VIEW perfguard.write_loops IS
  'INSERT/UPDATE/DELETE statements repeated row by row in one request';

CREATE FUNCTION perfguard._requests(
    OUT dbid oid, OUT userid oid, OUT route text, OUT requests bigint,
    OUT queries bigint, OUT mean_queries double precision,
    OUT max_queries bigint, OUT mean_ms double precision,
    OUT max_ms double precision, OUT n_plus_one_requests bigint,
    OUT duplicate_requests bigint, OUT write_loop_requests bigint,
    OUT last_seen timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_requests'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW perfguard.requests AS SELECT * FROM perfguard._requests();
COMMENT ON VIEW perfguard.requests IS
  'Per route: requests, queries per request (is it bounded?), time, and how many requests had findings';

-- BEGIN plan insights
-- END plan insights

-- BEGIN index advice
-- END index advice

-- BEGIN keyset
-- keyset pagination (src/keyset.c); pasted into perfguard--1.0.sql by the lead.

CREATE FUNCTION perfguard.keyset_predicate(order_by text, after jsonb)
RETURNS text
AS 'MODULE_PATHNAME', 'keyset_predicate'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION perfguard.keyset_predicate(text, jsonb) IS
'WHERE predicate selecting the rows that sort after the row whose sort values are given (jsonb keyed by column name), for an ORDER BY such as ''created_at DESC, id DESC''';

CREATE FUNCTION perfguard.keyset_predicate(order_by text, after jsonb, rel regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'keyset_predicate'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION perfguard.keyset_predicate(text, jsonb, regclass) IS
'keyset_predicate checked against a relation: columns must exist, NOT NULL columns need no IS NULL terms (a plain row comparison when all keys share one direction)';

CREATE FUNCTION perfguard.keyset_page(rel regclass, order_by text, page_size int,
                                      cursor text DEFAULT NULL, filter text DEFAULT NULL)
RETURNS TABLE("row" jsonb, next_cursor text)
AS 'MODULE_PATHNAME', 'keyset_page'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION perfguard.keyset_page(regclass, text, int, text, text) IS
'one page of a relation in keyset order (ORDER BY must be unique), each row as jsonb; the last row of a page that is not the last one carries the cursor of the next page';

CREATE FUNCTION perfguard.keyset_index(rel regclass, order_by text)
RETURNS text
AS 'MODULE_PATHNAME', 'keyset_index'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION perfguard.keyset_index(regclass, text) IS
'the index that serves an ORDER BY on a relation, or the CREATE INDEX CONCURRENTLY statement of one that would';

CREATE FUNCTION perfguard.cursor_encode(jsonb)
RETURNS text
AS 'MODULE_PATHNAME', 'cursor_encode'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION perfguard.cursor_encode(jsonb) IS
'opaque URL-safe cursor (base64url) for a jsonb value, HMAC-SHA256 signed when perfguard.cursor_secret is set';

CREATE FUNCTION perfguard.cursor_decode(text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cursor_decode'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION perfguard.cursor_decode(text) IS
'the jsonb value of a cursor from cursor_encode; a malformed, tampered or foreign cursor is an error';
-- END keyset

------------------------------------------------------------------------------
-- The ranked checklist across all findings
------------------------------------------------------------------------------

CREATE VIEW perfguard.findings AS
  SELECT * FROM (
    SELECT 'n_plus_one'::text AS category,
           CASE WHEN n.max_repeats >= 50 THEN 'high'
                WHEN n.max_repeats >= 10 THEN 'medium' ELSE 'low' END AS severity,
           n.route, n.queryid, n.query,
           format('ran %s times in one request (%s distinct parameter sets) after %s',
                  n.max_repeats, n.max_distinct_params,
                  coalesce(left(n.parent_query, 80), 'an unknown parent')) AS detail,
           n.suggestion, n.wasted_ms AS impact_ms, n.last_seen
      FROM perfguard.n_plus_one n
    UNION ALL
    SELECT 'duplicate', CASE WHEN d.max_duplicates >= 10 THEN 'medium' ELSE 'low' END,
           d.route, d.queryid, d.query,
           format('same statement and parameters up to %s times in one request', d.max_duplicates),
           d.suggestion, d.wasted_ms, d.last_seen
      FROM perfguard.duplicates d
    UNION ALL
    SELECT 'write_loop', CASE WHEN w.max_repeats >= 50 THEN 'high'
                              WHEN w.max_repeats >= 10 THEN 'medium' ELSE 'low' END,
           w.route, w.queryid, w.query,
           format('%s ran %s times row by row in one request', w.command, w.max_repeats),
           w.suggestion, w.wasted_ms, w.last_seen
      FROM perfguard.write_loops w
  ) f
  ORDER BY impact_ms DESC NULLS LAST;
COMMENT ON VIEW perfguard.findings IS
  'One ranked checklist across all findings, by the time the fix would save';

GRANT USAGE ON SCHEMA perfguard TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA perfguard TO PUBLIC;
