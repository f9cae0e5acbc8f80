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
    OUT first_seen timestamptz, OUT last_seen timestamptz,
    OUT p50_ms double precision, OUT p95_ms double precision,
    OUT p99_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_statements'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW perfguard.statements AS
  SELECT userid, dbid, queryid, toplevel, query, calls, total_ms, mean_ms,
         min_ms, max_ms, stddev_ms, rows, shared_blks_hit, shared_blks_read,
         temp_blks_written, duplicate_calls, n_plus_one_calls, first_seen,
         last_seen, command, p50_ms, p95_ms, p99_ms
    FROM perfguard._statements();
COMMENT ON VIEW perfguard.statements IS
  'Per fingerprint (user, database, query id, top level) counters; query text only for superusers, pg_read_all_stats and the statement''s own user';

CREATE FUNCTION perfguard._statements_history(
    OUT userid oid, OUT dbid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT window_start timestamptz, OUT calls bigint,
    OUT total_ms double precision, OUT mean_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_statements_history'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW perfguard.statements_history AS
  SELECT h.userid, h.dbid, h.queryid, h.toplevel, h.window_start,
         h.window_start + current_setting('perfguard.window')::interval AS window_end,
         h.calls, h.total_ms, h.mean_ms
    FROM perfguard._statements_history() h;
COMMENT ON VIEW perfguard.statements_history IS
  'Calls and time per statement in each of the last 60 windows of perfguard.window: when did a query get slow?';

CREATE FUNCTION perfguard._errors(
    OUT userid oid, OUT dbid oid, OUT queryid bigint, OUT sqlstate text,
    OUT message text, OUT count bigint, OUT first_seen timestamptz,
    OUT last_seen timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_errors'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

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

-- Guards at 'collect' (perfguard.on_n_plus_one = collect, ...): the
-- findings a session kept, and the one failure that lists them all (a test
-- suite calls it at the end of each test; end_request() calls it too).
CREATE FUNCTION perfguard.collected(
    OUT kind text, OUT route text, OUT query text, OUT count bigint,
    OUT distinct_params integer, OUT parent_query text, OUT suggestion text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_collected'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION perfguard.collected() IS
  'Findings kept by guards at collect in this session (reading forgets them)';
CREATE FUNCTION perfguard.check_collected()
RETURNS void
AS 'MODULE_PATHNAME', 'perfguard_check_collected'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION perfguard.check_collected() IS
  'Fail once (SQLSTATE PF004) listing every finding kept by guards at collect, then forget them';

CREATE FUNCTION perfguard._findings_raw(kind integer,
    OUT dbid oid, OUT userid oid, OUT route text, OUT queryid bigint,
    OUT parent_queryid bigint, OUT command text, OUT occurrences bigint,
    OUT total_repeats bigint, OUT max_repeats bigint,
    OUT max_distinct_params bigint, OUT total_duplicates bigint,
    OUT max_duplicates bigint, OUT wasted_ms double precision,
    OUT last_seen timestamptz, OUT example_params text, OUT ignored boolean,
    OUT seq_id bigint, OUT sequence bigint[], OUT test boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_findings_raw'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- Suppression rules: by fingerprint or by route; kept by reset(), saved
-- across restarts like the statistics.
CREATE FUNCTION perfguard.ignore(queryid bigint, reason text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'perfguard_ignore'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION perfguard.unignore(queryid bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'perfguard_unignore'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION perfguard.ignore_route(route text, reason text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'perfguard_ignore_route'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION perfguard.unignore_route(route text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'perfguard_unignore_route'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION perfguard.ignore(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION perfguard.unignore(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION perfguard.ignore_route(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION perfguard.unignore_route(text) FROM PUBLIC;
COMMENT ON FUNCTION perfguard.ignore(bigint, text) IS
  'Suppress the N+1, duplicate and write-loop findings of one fingerprint';
COMMENT ON FUNCTION perfguard.ignore_route(text, text) IS
  'Suppress every finding of the requests of one route';

CREATE FUNCTION perfguard._ignore_rules(
    OUT kind text, OUT queryid bigint, OUT route text, OUT reason text,
    OUT created timestamptz, OUT created_by oid)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_ignore_rules'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW perfguard.ignore_rules AS SELECT * FROM perfguard._ignore_rules();
COMMENT ON VIEW perfguard.ignore_rules IS 'Suppression rules (perfguard.ignore, perfguard.ignore_route)';

-- The kinds of scope findings: the values of pfgFindingKind (src/perfguard.h)
-- that perfguard._findings_raw takes, by name.
CREATE VIEW perfguard._finding_kinds (kind_id, kind) AS
  VALUES (1, 'n_plus_one'), (2, 'duplicate'), (3, 'write_loop'), (4, 'sequence');

-- Scope findings with their suppression: in-band (perfguard='ignore' on the
-- statement when it fired) or by a rule now.
CREATE VIEW perfguard._scope_findings AS
  SELECT f.*, r.reason AS rule_reason, r.kind AS rule_kind,
         f.ignored OR r.kind IS NOT NULL AS suppressed
    FROM (SELECT k.kind AS finding_kind, raw.*
            FROM perfguard._finding_kinds k,
                 LATERAL perfguard._findings_raw(k.kind_id) raw
           -- test traffic (perfguard='test') only when asked for
           WHERE NOT raw.test
              OR coalesce(current_setting('perfguard.include_test', true), 'off') = 'on') f
    LEFT JOIN LATERAL (
           SELECT i.kind, i.reason FROM perfguard._ignore_rules() i
            WHERE (i.kind = 'queryid' AND i.queryid = f.queryid)
               OR (i.kind = 'route' AND i.route = f.route)
            LIMIT 1) r ON true;

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
         x.table_name, x.column_name, x.suggestion, f.example_params,
         (SELECT q.sequence FROM perfguard._findings_raw((SELECT kind_id FROM perfguard._finding_kinds WHERE kind = 'sequence')) q
           WHERE q.queryid = f.seq_id AND q.dbid = f.dbid AND q.userid = f.userid
             AND q.route = f.route LIMIT 1) AS sequence
    FROM perfguard._scope_findings f
    LEFT JOIN perfguard._texts c
           ON c.userid = f.userid AND c.dbid = f.dbid AND c.queryid = f.queryid
    LEFT JOIN perfguard._texts p
           ON p.userid = f.userid AND p.dbid = f.dbid AND p.queryid = f.parent_queryid
    LEFT JOIN LATERAL (
           SELECT * FROM perfguard._n_plus_one_fix(p.query, c.query)
            WHERE f.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND c.query IS NOT NULL) x ON true
   WHERE f.finding_kind = 'n_plus_one' AND NOT f.suppressed;
COMMENT ON VIEW perfguard.n_plus_one IS
  'N+1 suspects: a SELECT repeated with different parameters in one request, with its parent and the fix';

CREATE VIEW perfguard.errors AS
  SELECT e.userid, e.dbid, e.queryid, t.query, e.sqlstate, e.message, e.count,
         e.first_seen, e.last_seen
    FROM perfguard._errors() e
    LEFT JOIN perfguard._texts t
           ON t.userid = e.userid AND t.dbid = e.dbid AND t.queryid = e.queryid;
COMMENT ON VIEW perfguard.errors IS
  'Statements that failed, per fingerprint and SQLSTATE, with the message of the last one';

CREATE VIEW perfguard.n_plus_one_sequences AS
  SELECT f.dbid, f.userid, f.route, f.parent_queryid, p.query AS parent_query,
         f.queryid AS sequence_id, f.sequence,
         (SELECT array_agg(t.query ORDER BY m.ord)
            FROM unnest(f.sequence) WITH ORDINALITY m(qid, ord)
            LEFT JOIN perfguard._texts t
                   ON t.userid = f.userid AND t.dbid = f.dbid AND t.queryid = m.qid) AS queries,
         f.occurrences, f.total_repeats AS total_iterations,
         f.max_repeats AS max_iterations, f.wasted_ms, f.last_seen,
         'one loop runs ' || array_length(f.sequence, 1) ||
         ' queries per row: load each of them for all rows at once (JOINs, or one query per relation with = ANY(...)) / '
         'Django: select_related()/prefetch_related() for each relation in the loop / Rails: includes(...) for each' AS suggestion
    FROM perfguard._scope_findings f
    LEFT JOIN perfguard._texts p
           ON p.userid = f.userid AND p.dbid = f.dbid AND p.queryid = f.parent_queryid
   WHERE f.finding_kind = 'sequence' AND NOT f.suppressed;
COMMENT ON VIEW perfguard.n_plus_one_sequences IS
  'A request that repeats a sequence of 2 to 5 statements per row (M x N+1): one finding with every child';

CREATE VIEW perfguard.duplicates AS
  SELECT f.dbid, f.userid, f.route, f.queryid, c.query, f.occurrences,
         f.total_duplicates, f.max_duplicates, f.wasted_ms, f.last_seen,
         'the same query with the same parameters ran ' || f.max_duplicates ||
         ' times in one request: run it once and reuse the result (a variable, '
         'Django''s cached_property or the cache framework, Rails memoization), '
         'or hoist it out of the loop' AS suggestion,
         f.example_params
    FROM perfguard._scope_findings f
    LEFT JOIN perfguard._texts c
           ON c.userid = f.userid AND c.dbid = f.dbid AND c.queryid = f.queryid
   WHERE f.finding_kind = 'duplicate' AND NOT f.suppressed;
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
    FROM perfguard._scope_findings f
    LEFT JOIN perfguard._texts c
           ON c.userid = f.userid AND c.dbid = f.dbid AND c.queryid = f.queryid
   WHERE f.finding_kind = 'write_loop' AND NOT f.suppressed;
COMMENT ON VIEW perfguard.write_loops IS
  'INSERT/UPDATE/DELETE statements repeated row by row in one request';

CREATE VIEW perfguard.ignored AS
  SELECT CASE f.finding_kind WHEN 'sequence' THEN 'n_plus_one_sequence'
              ELSE f.finding_kind END AS category,
         f.dbid, f.userid, f.route, f.queryid, c.query,
         coalesce(f.rule_reason,
                  CASE WHEN f.ignored THEN 'perfguard=''ignore'' on the statement' END) AS reason,
         CASE WHEN f.rule_kind IS NOT NULL THEN 'rule:' || f.rule_kind ELSE 'in-band' END AS suppressed_by,
         f.occurrences, f.total_repeats, f.total_duplicates, f.wasted_ms, f.last_seen
    FROM perfguard._scope_findings f
    LEFT JOIN perfguard._texts c
           ON c.userid = f.userid AND c.dbid = f.dbid AND c.queryid = f.queryid
   WHERE f.suppressed;
COMMENT ON VIEW perfguard.ignored IS
  'Suppressed findings: still counted, never reported as to-dos nor guarded';

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

------------------------------------------------------------------------------
-- Plan insights: slow-query plan samples, plan findings, deep OFFSET
-- pagination, unbounded results (src/plan_sample.c, src/plan_checks.c,
-- src/store_plans.c; docs/plan_insights.md)
------------------------------------------------------------------------------

CREATE FUNCTION perfguard._slow_queries(
    OUT userid oid, OUT dbid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT slow_calls bigint, OUT slow_total_ms double precision,
    OUT slow_max_ms double precision, OUT samples bigint, OUT plan text,
    OUT plan_ms double precision, OUT plan_analyzed boolean,
    OUT sampling boolean, OUT first_seen timestamptz,
    OUT last_seen timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_slow_queries'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE FUNCTION perfguard._plan_findings(
    OUT userid oid, OUT dbid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT finding text, OUT node text, OUT relation text, OUT detail text,
    OUT suggestion text, OUT occurrences bigint,
    OUT total_ms double precision, OUT value_sum bigint,
    OUT value_max bigint, OUT last_seen timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_plan_findings'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE FUNCTION perfguard._offsets(
    OUT userid oid, OUT dbid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT calls bigint, OUT total_ms double precision, OUT max_offset bigint,
    OUT sum_offset bigint, OUT rows_returned bigint,
    OUT last_seen timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_offsets'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE FUNCTION perfguard._keyset_suggestion(query text)
RETURNS text
AS 'MODULE_PATHNAME', 'perfguard_keyset_suggestion'
LANGUAGE C CALLED ON NULL INPUT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION perfguard._keyset_suggestion(text) IS
  'The keyset predicate that replaces OFFSET, built from the ORDER BY of a (normalized) query';

CREATE VIEW perfguard.offset_pagination AS
  SELECT o.queryid, st.query, o.calls, o.max_offset,
         o.sum_offset::double precision / nullif(o.calls, 0) AS mean_offset,
         o.sum_offset AS rows_discarded,
         perfguard._keyset_suggestion(st.query) AS suggestion,
         o.userid, o.dbid, o.toplevel, o.total_ms, o.rows_returned,
         o.last_seen
    FROM perfguard._offsets() o
    LEFT JOIN perfguard._statements() st
           ON st.userid = o.userid AND st.dbid = o.dbid
          AND st.queryid = o.queryid AND st.toplevel = o.toplevel;
COMMENT ON VIEW perfguard.offset_pagination IS
  'Statements paginated with OFFSET >= perfguard.offset_threshold, and the keyset predicate to use instead';

CREATE VIEW perfguard.plan_findings AS
  SELECT f.queryid, st.query, f.finding, f.node, f.relation, f.detail,
         f.suggestion, f.occurrences, f.last_seen,
         f.userid, f.dbid, f.toplevel, f.total_ms, f.value_sum, f.value_max
    FROM perfguard._plan_findings() f
    LEFT JOIN perfguard._statements() st
           ON st.userid = f.userid AND st.dbid = f.dbid
          AND st.queryid = f.queryid AND st.toplevel = f.toplevel
  UNION ALL
  SELECT o.queryid, o.query, 'offset_scan', 'Limit', NULL::text,
         format('OFFSET up to %s (mean %s): every page reads and throws away the rows before it (%s rows so far)',
                o.max_offset, round(o.mean_offset), o.rows_discarded),
         o.suggestion, o.calls, o.last_seen,
         o.userid, o.dbid, o.toplevel, o.total_ms, o.rows_discarded,
         o.max_offset
    FROM perfguard.offset_pagination o;
COMMENT ON VIEW perfguard.plan_findings IS
  'Problems found in executed plans: big filtered Seq Scans, nested loops over many rows, sorts and hash joins that spill, misestimates, deep OFFSETs, unbounded results';

CREATE VIEW perfguard.slow_queries AS
  SELECT s.queryid, st.query,
         coalesce(st.calls, s.slow_calls) AS calls, s.slow_calls,
         coalesce(st.mean_ms, s.slow_total_ms / nullif(s.slow_calls, 0)) AS mean_ms,
         greatest(st.max_ms, s.slow_max_ms) AS max_ms,
         s.plan,
         ARRAY(SELECT DISTINCT p.finding FROM perfguard.plan_findings p
                WHERE p.userid = s.userid AND p.dbid = s.dbid
                  AND p.queryid = s.queryid
                ORDER BY 1) AS findings,
         s.last_seen,
         s.userid, s.dbid, s.toplevel, s.slow_total_ms, s.samples,
         s.plan_analyzed, s.plan_ms, s.sampling, s.first_seen
    FROM perfguard._slow_queries() s
    LEFT JOIN perfguard._statements() st
           ON st.userid = s.userid AND st.dbid = s.dbid
          AND st.queryid = s.queryid AND st.toplevel = s.toplevel;
COMMENT ON VIEW perfguard.slow_queries IS
  'Statements slower than perfguard.slow_query_ms, with the EXPLAIN text of their slowest sampled execution (actual rows once sampled)';

------------------------------------------------------------------------------
-- Index advice: missing indexes proven with hypothetical indexes (C), and
-- unused / duplicate / redundant indexes and foreign keys without an index
-- (catalog checks in SQL).  See docs/index_advice.md.
------------------------------------------------------------------------------

CREATE FUNCTION perfguard._index_advice_missing(
    OUT kind text, OUT schema_name text, OUT table_name text,
    OUT index_name text, OUT columns text[], OUT ddl text, OUT reason text,
    OUT queryids bigint[], OUT calls bigint,
    OUT est_cost_before double precision, OUT est_cost_after double precision,
    OUT est_improvement double precision, OUT index_bytes bigint,
    OUT impact_ms double precision, OUT applied boolean,
    OUT applied_index text, OUT mean_ms_before double precision,
    OUT mean_ms_after double precision, OUT calls_after bigint,
    OUT actual_improvement double precision, OUT evidence text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_index_advice_missing'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

-- The indexes of the current database's user tables, with 1-based arrays.
CREATE VIEW perfguard._index_catalog AS
  SELECT i.indexrelid, i.indrelid, n.nspname::text AS schema_name,
         t.relname::text AS table_name, c.relname::text AS index_name, c.relam,
         i.indisunique, i.indisprimary, i.indisvalid, i.indnatts,
         i.indnkeyatts AS nkeys,
         (string_to_array(i.indkey::text, ' ')::int2[])[1:i.indnkeyatts] AS keys,
         i.indkey::text AS allkeys,
         string_to_array(i.indclass::text, ' ')::oid[] AS classes,
         string_to_array(i.indcollation::text, ' ')::oid[] AS colls,
         string_to_array(i.indoption::text, ' ')::int2[] AS opts,
         pg_get_expr(i.indexprs, i.indrelid) AS exprs,
         pg_get_expr(i.indpred, i.indrelid) AS pred,
         EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
           AS backs_constraint,
         -- each key column as CREATE INDEX spells it, with its direction
         ARRAY(SELECT pg_get_indexdef(i.indexrelid, g, true)
                      || CASE WHEN i.indoption[g - 1] & 1 <> 0 THEN ' DESC' ELSE '' END
                      || CASE i.indoption[g - 1] & 3 WHEN 2 THEN ' NULLS FIRST'
                                                     WHEN 1 THEN ' NULLS LAST' ELSE '' END
                 FROM generate_series(1, i.indnkeyatts) g ORDER BY g) AS columns
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname !~ '^pg_(toast|temp_)';

CREATE VIEW perfguard._index_advice_catalog AS
  -- never scanned, on a table that is read
  SELECT 'unused'::text AS kind, x.schema_name, x.table_name, x.index_name,
         x.columns,
         format('DROP INDEX CONCURRENTLY %I.%I', x.schema_name, x.index_name) AS ddl,
         format('no scan used this index since statistics were last reset, while %I was read %s times (%s sequential, %s index scans); it costs %s and slows every write',
                x.table_name, st.seq_scan + coalesce(st.idx_scan, 0), st.seq_scan,
                coalesce(st.idx_scan, 0),
                pg_size_pretty(pg_relation_size(x.indexrelid))) AS reason,
         pg_relation_size(x.indexrelid) AS index_bytes
    FROM perfguard._index_catalog x
    JOIN pg_stat_user_indexes s ON s.indexrelid = x.indexrelid
    JOIN pg_stat_user_tables st ON st.relid = x.indrelid
   WHERE s.idx_scan = 0
     AND st.seq_scan + coalesce(st.idx_scan, 0) > 0
     AND x.indisvalid AND NOT x.indisunique AND NOT x.indisprimary
     AND NOT x.backs_constraint
  UNION ALL
  -- same definition as another index of the table, which is kept
  SELECT * FROM (
    SELECT DISTINCT ON (d.indexrelid)
           'duplicate'::text, d.schema_name, d.table_name, d.index_name,
           d.columns,
           format('DROP INDEX CONCURRENTLY %I.%I', d.schema_name, d.index_name),
           format('same columns, operator classes, collations, predicate and access method as %I%s; keep that one',
                  k.index_name,
                  CASE WHEN k.indisprimary THEN ' (the primary key)'
                       WHEN k.backs_constraint THEN ' (backs a constraint)'
                       WHEN k.indisunique THEN ' (unique)' ELSE '' END),
           pg_relation_size(d.indexrelid)
      FROM perfguard._index_catalog d
      JOIN perfguard._index_catalog k
        ON k.indrelid = d.indrelid AND k.indexrelid <> d.indexrelid
       AND k.relam = d.relam AND k.allkeys = d.allkeys
       AND k.nkeys = d.nkeys AND k.classes = d.classes
       AND k.colls = d.colls AND k.opts = d.opts
       AND k.exprs IS NOT DISTINCT FROM d.exprs
       AND k.pred IS NOT DISTINCT FROM d.pred
       AND k.indisvalid
     WHERE d.indisvalid AND NOT d.indisprimary AND NOT d.backs_constraint
       AND (k.indisprimary, k.backs_constraint, k.indisunique, d.index_name)
           > (d.indisprimary, d.backs_constraint, d.indisunique, k.index_name)
     ORDER BY d.indexrelid, k.indisprimary DESC, k.backs_constraint DESC,
              k.indisunique DESC, k.index_name) dup
  UNION ALL
  -- a non-unique btree whose key is a leading prefix of another btree's
  SELECT * FROM (
    SELECT DISTINCT ON (r.indexrelid)
           'redundant'::text, r.schema_name, r.table_name, r.index_name,
           r.columns,
           format('DROP INDEX CONCURRENTLY %I.%I', r.schema_name, r.index_name),
           format('its key (%s) is a leading prefix of %I (%s), which serves the same lookups and orderings',
                  array_to_string(r.columns, ', '), o.index_name,
                  array_to_string(o.columns, ', ')),
           pg_relation_size(r.indexrelid)
      FROM perfguard._index_catalog r
      JOIN perfguard._index_catalog o
        ON o.indrelid = r.indrelid AND o.indexrelid <> r.indexrelid
       AND o.relam = r.relam AND o.nkeys > r.nkeys
       AND o.keys[1:r.nkeys] = r.keys
       AND o.classes[1:r.nkeys] = r.classes
       AND o.colls[1:r.nkeys] = r.colls
       AND o.opts[1:r.nkeys] = r.opts
       AND o.exprs IS NULL
       AND o.pred IS NOT DISTINCT FROM r.pred
       AND o.indisvalid
     WHERE r.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
       AND r.indisvalid AND NOT r.indisunique AND NOT r.indisprimary
       AND NOT r.backs_constraint AND r.exprs IS NULL
       AND r.indnatts = r.nkeys
     ORDER BY r.indexrelid, o.nkeys, o.index_name) red
  UNION ALL
  -- foreign keys whose columns do not lead any index of the table
  SELECT 'fk_without_index'::text, n.nspname::text, t.relname::text, NULL::text,
         ARRAY(SELECT a.attname::text
                 FROM unnest(con.conkey) WITH ORDINALITY u(att, ord)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = u.att
                ORDER BY u.ord),
         format('CREATE INDEX CONCURRENTLY ON %I.%I (%s)', n.nspname, t.relname,
                (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY u.ord)
                   FROM unnest(con.conkey) WITH ORDINALITY u(att, ord)
                   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = u.att)),
         format('foreign key %I references %s: without an index on these columns, joins from %s and every DELETE or key UPDATE on %s scan %I',
                con.conname, con.confrelid::regclass, con.confrelid::regclass,
                con.confrelid::regclass, t.relname),
         NULL::bigint
    FROM pg_constraint con
    JOIN pg_class t ON t.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
   WHERE con.contype = 'f' AND con.conparentid = 0
     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname !~ '^pg_(toast|temp_)'
     AND NOT EXISTS (
           SELECT 1 FROM perfguard._index_catalog x
            WHERE x.indrelid = con.conrelid AND x.indisvalid AND x.pred IS NULL
              AND x.relam IN (SELECT oid FROM pg_am WHERE amname IN ('btree', 'hash'))
              AND x.nkeys >= cardinality(con.conkey)
              AND x.keys[1:cardinality(con.conkey)] @> con.conkey
              AND x.keys[1:cardinality(con.conkey)] <@ con.conkey);

-- applied .. actual_improvement: the closed loop (docs/index_advice.md):
-- a 'missing' advice whose index now exists stays listed with applied = true
-- and the mean time per call of its statements before the advice and since.
-- evidence: what a row rests on: 'execution' (proven with the values of
-- sampled executions), 'generic_plan', both, or 'catalog' (the checks).
CREATE VIEW perfguard.index_advice AS
  SELECT kind, schema_name, table_name, index_name, columns, ddl, reason,
         queryids, calls, est_cost_before, est_cost_after, est_improvement,
         index_bytes, impact_ms, applied, applied_index, mean_ms_before,
         mean_ms_after, calls_after, actual_improvement, evidence
    FROM (
      SELECT m.kind, m.schema_name, m.table_name, m.index_name,
             m.columns, m.ddl, m.reason, m.queryids, m.calls,
             m.est_cost_before, m.est_cost_after, m.est_improvement,
             m.index_bytes, m.impact_ms, m.applied, m.applied_index,
             m.mean_ms_before, m.mean_ms_after, m.calls_after,
             m.actual_improvement, m.evidence, 1 AS korder, m.ord
        FROM perfguard._index_advice_missing() WITH ORDINALITY
             AS m(kind, schema_name, table_name, index_name, columns, ddl,
                  reason, queryids, calls, est_cost_before, est_cost_after,
                  est_improvement, index_bytes, impact_ms, applied,
                  applied_index, mean_ms_before, mean_ms_after, calls_after,
                  actual_improvement, evidence, ord)
      UNION ALL
      SELECT c.kind, c.schema_name, c.table_name, c.index_name, c.columns,
             c.ddl, c.reason, NULL::bigint[], NULL::bigint,
             NULL::float8, NULL::float8, NULL::float8, c.index_bytes,
             NULL::float8, false, NULL::text, NULL::float8, NULL::float8,
             NULL::bigint, NULL::float8, 'catalog'::text,
             CASE c.kind WHEN 'fk_without_index' THEN 2 WHEN 'duplicate' THEN 3
                         WHEN 'redundant' THEN 4 ELSE 5 END,
             0
        FROM perfguard._index_advice_catalog c
    ) a
   ORDER BY korder, ord, index_bytes DESC NULLS LAST, schema_name, table_name,
            index_name;
COMMENT ON VIEW perfguard.index_advice IS
  'Index advice: missing indexes proven with hypothetical indexes, unused, duplicate and redundant indexes, foreign keys without an index';

CREATE FUNCTION perfguard.advise(query text,
    OUT kind text, OUT relation text, OUT detail text, OUT ddl text,
    OUT est_cost_before double precision, OUT est_cost_after double precision,
    OUT est_improvement double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_advise'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION perfguard.advise(text) IS
  'Plan findings and index candidates (proven as hypothetical indexes) for one statement, without running it';

------------------------------------------------------------------------------
-- Keyset pagination (src/keyset.c, src/keyset_cursor.c, docs/keyset.md)
------------------------------------------------------------------------------

CREATE FUNCTION perfguard.keyset_predicate(order_by text, after jsonb)
RETURNS text
AS 'MODULE_PATHNAME', 'perfguard_keyset_predicate'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION perfguard.keyset_predicate(text, jsonb) IS
'WHERE predicate selecting the rows that sort after the row whose sort values are given (jsonb keyed by column name), for an ORDER BY such as ''created_at DESC, id DESC''';

CREATE FUNCTION perfguard.keyset_predicate(order_by text, after jsonb, rel regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'perfguard_keyset_predicate'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION perfguard.keyset_predicate(text, jsonb, regclass) IS
'keyset_predicate checked against a relation: columns must exist, NOT NULL columns need no IS NULL terms (a plain row comparison when all keys share one direction)';

CREATE FUNCTION perfguard.keyset_page(rel regclass, order_by text, page_size int,
                                      cursor text DEFAULT NULL, filter text DEFAULT NULL)
RETURNS TABLE("row" jsonb, next_cursor text)
AS 'MODULE_PATHNAME', 'perfguard_keyset_page'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION perfguard.keyset_page(regclass, text, int, text, text) IS
'one page of a relation in keyset order (ORDER BY must be unique), each row as jsonb; the last row of a page that is not the last one carries the cursor of the next page';

CREATE FUNCTION perfguard.keyset_index(rel regclass, order_by text)
RETURNS text
AS 'MODULE_PATHNAME', 'perfguard_keyset_index'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION perfguard.keyset_index(regclass, text) IS
'the index that serves an ORDER BY on a relation, or the CREATE INDEX CONCURRENTLY statement of one that would';

CREATE FUNCTION perfguard.cursor_encode(jsonb)
RETURNS text
AS 'MODULE_PATHNAME', 'perfguard_cursor_encode'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION perfguard.cursor_encode(jsonb) IS
'opaque URL-safe cursor (base64url) for a jsonb value, HMAC-SHA256 signed when perfguard.cursor_secret is set';

CREATE FUNCTION perfguard.cursor_decode(text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'perfguard_cursor_decode'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION perfguard.cursor_decode(text) IS
'the jsonb value of a cursor from cursor_encode; a malformed, tampered or foreign cursor is an error';

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
     WHERE n.sequence IS NULL
    UNION ALL
    SELECT 'n_plus_one_sequence',
           CASE WHEN q.max_iterations >= 50 THEN 'high'
                WHEN q.max_iterations >= 10 THEN 'medium' ELSE 'low' END,
           q.route, q.sequence_id, array_to_string(q.queries, E'\n'),
           format('%s queries repeated %s times in one request after %s',
                  array_length(q.sequence, 1), q.max_iterations,
                  coalesce(left(q.parent_query, 80), 'an unknown parent')),
           q.suggestion, q.wasted_ms, q.last_seen
      FROM perfguard.n_plus_one_sequences q
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
    UNION ALL
    -- plan samples: slow queries and their plan findings, deep OFFSETs
    SELECT 'slow_query',
           CASE WHEN s.slow_total_ms >= 60000 THEN 'high'
                WHEN s.slow_total_ms >= 5000 THEN 'medium' ELSE 'low' END,
           NULL::text, s.queryid, s.query,
           format('%s of %s calls slower than perfguard.slow_query_ms (max %s ms)%s',
                  s.slow_calls, s.calls, round(s.max_ms::numeric, 1),
                  CASE WHEN cardinality(s.findings) > 0
                       THEN '; plan findings: ' || array_to_string(s.findings, ', ')
                       ELSE '' END),
           'read the sampled plan in perfguard.slow_queries.plan and the fixes in perfguard.plan_findings for this queryid',
           s.slow_total_ms, s.last_seen
      FROM perfguard.slow_queries s
    UNION ALL
    SELECT p.finding,
           CASE WHEN p.impact_ms >= 60000 THEN 'high'
                WHEN p.impact_ms >= 5000 THEN 'medium' ELSE 'low' END,
           NULL::text, p.queryid, p.query, p.detail, p.suggestion, p.impact_ms,
           p.last_seen
      FROM (SELECT p.*,
                   CASE WHEN p.finding = 'unbounded_result' THEN
                     -- time spent on the rows beyond one page
                     p.total_ms * greatest(0.0, 1.0 -
                       coalesce(current_setting('perfguard.unbounded_rows', true), '1000')::float8
                       * p.occurrences / nullif(p.value_sum, 0))
                   ELSE
                     -- the slow time of the statement, shared by its plan findings
                     coalesce(s.slow_total_ms, p.total_ms) /
                       count(*) OVER (PARTITION BY p.userid, p.dbid, p.queryid,
                                      p.finding = 'unbounded_result')
                   END AS impact_ms
              FROM perfguard.plan_findings p
              LEFT JOIN perfguard._slow_queries() s
                     ON s.userid = p.userid AND s.dbid = p.dbid
                    AND s.queryid = p.queryid AND s.toplevel = p.toplevel
             WHERE p.finding <> 'offset_scan') p
    UNION ALL
    SELECT 'offset_pagination',
           CASE WHEN o.max_offset >= 100000 THEN 'high'
                WHEN o.max_offset >= 10000 THEN 'medium' ELSE 'low' END,
           NULL::text, o.queryid, o.query,
           format('OFFSET up to %s (mean %s) in %s calls: %s rows read and thrown away',
                  o.max_offset, round(o.mean_offset), o.calls, o.rows_discarded),
           o.suggestion,
           -- the share of the time spent on rows that were thrown away
           o.total_ms * o.rows_discarded / nullif(o.rows_discarded + o.rows_returned, 0),
           o.last_seen
      FROM perfguard.offset_pagination o
    UNION ALL
    -- index advice
    -- applied advice is no to-do: it shows only as index_applied when its
    -- statements became slower per call since the index exists
    SELECT 'index_' || CASE WHEN a.applied THEN 'applied' ELSE a.kind END,
           CASE WHEN a.applied THEN 'medium'
                WHEN a.kind = 'missing' AND a.est_improvement >= 0.9 THEN 'high'
                WHEN a.kind IN ('missing', 'fk_without_index') THEN 'medium'
                ELSE 'low' END,
           NULL::text, a.queryids[1],
           (SELECT t.query FROM perfguard._texts t
             WHERE t.queryid = a.queryids[1] AND t.query IS NOT NULL
               AND t.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
             LIMIT 1),
           format('%s.%s%s: %s', a.schema_name, a.table_name,
                  CASE WHEN a.index_name IS NOT NULL THEN ' index ' || a.index_name
                       ELSE ' (' || array_to_string(a.columns, ', ') || ')' END,
                  a.reason),
           CASE WHEN a.applied
                THEN format('index %I, created from this advice, did not make its statements faster: check their plans with EXPLAIN, and drop it (DROP INDEX CONCURRENTLY %I.%I) if no statement uses it',
                            a.applied_index, a.schema_name, a.applied_index)
                ELSE a.ddl END,
           CASE WHEN a.applied THEN -a.impact_ms ELSE a.impact_ms END,
           NULL::timestamptz
      FROM perfguard.index_advice a
     WHERE NOT a.applied OR a.actual_improvement < 0
  ) f
  ORDER BY impact_ms DESC NULLS LAST;
COMMENT ON VIEW perfguard.findings IS
  'One ranked checklist across all findings, by the time the fix would save';

GRANT USAGE ON SCHEMA perfguard TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA perfguard TO PUBLIC;
