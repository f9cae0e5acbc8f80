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
    OUT seq_id bigint, OUT sequence bigint[], OUT test boolean,
    OUT kind_id integer, OUT framework text, OUT query text,
    OUT parent_query text, OUT queries text[],
    OUT fix_found boolean, OUT fix_inferred boolean, OUT fix_table text,
    OUT fix_column text, OUT fix_sql text, OUT fix_django_select text,
    OUT fix_django_prefetch text, OUT fix_django_extra text,
    OUT fix_rails text, OUT fix_rails_extra text, OUT fix_sqla text,
    OUT fix_sqla_extra text, OUT seq_members bigint[], OUT rule_kind text,
    OUT rule_reason text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_findings_raw'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED ROWS 1000;
COMMENT ON FUNCTION perfguard._findings_raw(integer) IS
  'Scope findings of one kind (0: all), with their texts and the fix stored when they were first recorded';

-- Suppression rules: by fingerprint (on every route or on one), or by
-- route; kept by reset(), saved across restarts like the statistics.
CREATE FUNCTION perfguard.ignore(queryid bigint, reason text DEFAULT NULL,
                                 route text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'perfguard_ignore'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION perfguard.unignore(queryid bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'perfguard_unignore'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION perfguard.unignore(queryid bigint, route text)
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
REVOKE ALL ON FUNCTION perfguard.ignore(bigint, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION perfguard.unignore(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION perfguard.unignore(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION perfguard.ignore_route(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION perfguard.unignore_route(text) FROM PUBLIC;
COMMENT ON FUNCTION perfguard.ignore(bigint, text, text) IS
  'Suppress the findings of one fingerprint: on every route, or only on the given route';
COMMENT ON FUNCTION perfguard.unignore(bigint, text) IS
  'Remove the rule that suppresses one fingerprint on one route';
COMMENT ON FUNCTION perfguard.ignore_route(text, text) IS
  'Suppress every finding of the requests of one route';

CREATE FUNCTION perfguard._ignore_rules(
    OUT kind text, OUT queryid bigint, OUT route text, OUT reason text,
    OUT created timestamptz, OUT created_by oid)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_ignore_rules'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE ROWS 10;

CREATE VIEW perfguard.ignore_rules AS SELECT * FROM perfguard._ignore_rules();
COMMENT ON VIEW perfguard.ignore_rules IS
  'Suppression rules (perfguard.ignore, perfguard.ignore_route): kind queryid (a statement everywhere), queryid_route (a statement on one route), route';

-- The kinds of scope findings: the values of pfgFindingKind (src/perfguard.h)
-- that perfguard._findings_raw takes, by name.
CREATE VIEW perfguard._finding_kinds (kind_id, kind) AS
  VALUES (1, 'n_plus_one'), (2, 'duplicate'), (3, 'write_loop'), (4, 'sequence');

-- Scope findings with their database and their suppression: in-band
-- (perfguard='ignore' on the statement when it fired) or by a rule now (on
-- the statement, or on a member of the sequence; on the statement on that
-- route; on the route), which _findings_raw looks up.
CREATE VIEW perfguard._scope_findings AS
  SELECT k.kind AS finding_kind, f.*, d.datname::text AS database,
         f.ignored OR f.rule_kind IS NOT NULL AS suppressed
    FROM perfguard._findings_raw(0) f
    JOIN perfguard._finding_kinds k ON k.kind_id = f.kind_id
    LEFT JOIN pg_database d ON d.oid = f.dbid
   -- test traffic (perfguard='test') only when asked for
   WHERE NOT f.test
      OR coalesce(current_setting('perfguard.include_test', true), 'off') = 'on';

CREATE FUNCTION perfguard._n_plus_one_fix(parent_query text, query text,
    OUT table_name text, OUT column_name text, OUT suggestion text)
RETURNS record
AS 'MODULE_PATHNAME', 'perfguard_n_plus_one_fix'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The parts of the fix of an N+1 (one query) or a sequence (its members),
-- derived now from the current database's catalog (for a finding that has
-- no stored fix), and the one suggestion of the merged parts of several.
CREATE TYPE perfguard._fix AS (
    found boolean, inferred boolean, table_name text, column_name text,
    sql text, django_select text, django_prefetch text, django_extra text,
    rails text, rails_extra text, sqla text, sqla_extra text);
CREATE FUNCTION perfguard._fix_parts(parent_query text, queries text[])
RETURNS perfguard._fix
AS 'MODULE_PATHNAME', 'perfguard_fix_parts'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION perfguard._fix_suggestion(framework text, inferred boolean,
    column_name text, sql text[], django_select text[],
    django_prefetch text[], django_extra text[], rails text[],
    rails_extra text[], sqla text[], sqla_extra text[])
RETURNS text
AS 'MODULE_PATHNAME', 'perfguard_fix_suggestion'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION perfguard._fix_suggestion(text, boolean, text, text[], text[], text[], text[], text[], text[], text[], text[]) IS
  'One suggestion from the merged parts of the fixes of one loop, for one framework (django, rails, sqlalchemy) or, when NULL, all three';

-- Query texts of the statement store, as the caller may see them.
CREATE VIEW perfguard._texts AS
  SELECT DISTINCT ON (userid, dbid, queryid) userid, dbid, queryid, query
    FROM perfguard._statements()
   ORDER BY userid, dbid, queryid, toplevel DESC;

CREATE FUNCTION perfguard._texts_of(queryids bigint[],
    OUT userid oid, OUT dbid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT query text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_texts_of'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE ROWS 20;

-- Every scope finding, and for N+1s and sequences their fix in parts: the
-- one stored when the finding was first recorded (by a backend of its own
-- database), else, for a finding of the current database, derived now.
CREATE VIEW perfguard._loop_findings AS
  SELECT f.*,
         coalesce(f.fix_inferred, (f.fx).inferred, false) AS inferred,
         coalesce(f.fix_table, (f.fx).table_name) AS table_name,
         coalesce(f.fix_column, (f.fx).column_name) AS column_name,
         CASE WHEN f.fix_found IS NULL THEN (f.fx).sql ELSE f.fix_sql END AS p_sql,
         CASE WHEN f.fix_found IS NULL THEN (f.fx).django_select ELSE f.fix_django_select END AS p_django_select,
         CASE WHEN f.fix_found IS NULL THEN (f.fx).django_prefetch ELSE f.fix_django_prefetch END AS p_django_prefetch,
         CASE WHEN f.fix_found IS NULL THEN (f.fx).django_extra ELSE f.fix_django_extra END AS p_django_extra,
         CASE WHEN f.fix_found IS NULL THEN (f.fx).rails ELSE f.fix_rails END AS p_rails,
         CASE WHEN f.fix_found IS NULL THEN (f.fx).rails_extra ELSE f.fix_rails_extra END AS p_rails_extra,
         CASE WHEN f.fix_found IS NULL THEN (f.fx).sqla ELSE f.fix_sqla END AS p_sqla,
         CASE WHEN f.fix_found IS NULL THEN (f.fx).sqla_extra ELSE f.fix_sqla_extra END AS p_sqla_extra,
         CASE WHEN f.finding_kind = 'sequence' THEN f.sequence
              ELSE ARRAY[f.queryid] END AS children,
         CASE WHEN f.finding_kind = 'sequence' THEN f.queries
              ELSE ARRAY[f.query] END AS child_queries
    FROM (SELECT sf.*,
                 -- derived only when nothing is stored (OFFSET 0: once per row)
                 CASE WHEN sf.fix_found IS NULL
                       AND sf.finding_kind IN ('n_plus_one', 'sequence')
                       AND coalesce(sf.query, sf.queries[1]) IS NOT NULL
                       AND sf.database = current_database()
                      THEN perfguard._fix_parts(sf.parent_query,
                             CASE WHEN sf.finding_kind = 'sequence' THEN sf.queries
                                  ELSE ARRAY[sf.query] END)
                 END AS fx
            FROM perfguard._scope_findings sf
          OFFSET 0) f;

CREATE VIEW perfguard.n_plus_one AS
  SELECT f.dbid, f.userid, f.route, f.parent_queryid, f.parent_query,
         f.queryid, f.query, f.occurrences, f.total_repeats, f.max_repeats,
         f.max_distinct_params, f.wasted_ms, f.last_seen,
         f.table_name, f.column_name,
         CASE WHEN f.query IS NOT NULL THEN
           perfguard._fix_suggestion(f.framework, f.inferred, f.column_name,
             ARRAY[f.p_sql], ARRAY[f.p_django_select], ARRAY[f.p_django_prefetch],
             ARRAY[f.p_django_extra], ARRAY[f.p_rails], ARRAY[f.p_rails_extra],
             ARRAY[f.p_sqla], ARRAY[f.p_sqla_extra]) END AS suggestion,
         f.example_params, f.seq_members AS sequence, f.database,
         f.framework, f.inferred
    FROM perfguard._loop_findings f
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
  SELECT f.dbid, f.userid, f.route, f.parent_queryid, f.parent_query,
         f.queryid AS sequence_id, f.sequence, f.queries,
         f.occurrences, f.total_repeats AS total_iterations,
         f.max_repeats AS max_iterations, f.wasted_ms, f.last_seen,
         'one loop runs ' || array_length(f.sequence, 1) ||
         ' queries per row: load each relation for all rows at once: ' ||
         perfguard._fix_suggestion(f.framework, f.inferred, NULL,
             ARRAY[f.p_sql], ARRAY[f.p_django_select], ARRAY[f.p_django_prefetch],
             ARRAY[f.p_django_extra], ARRAY[f.p_rails], ARRAY[f.p_rails_extra],
             ARRAY[f.p_sqla], ARRAY[f.p_sqla_extra]) AS suggestion,
         f.database, f.framework, f.inferred
    FROM perfguard._loop_findings f
   WHERE f.finding_kind = 'sequence' AND NOT f.suppressed;
COMMENT ON VIEW perfguard.n_plus_one_sequences IS
  'A request that repeats a sequence of 2 to 5 statements per row (M x N+1): one finding with every child and one combined fix';

CREATE VIEW perfguard.duplicates AS
  SELECT f.dbid, f.userid, f.route, f.queryid, f.query, f.occurrences,
         f.total_duplicates, f.max_duplicates, f.wasted_ms, f.last_seen,
         'the same query with the same parameters ran ' || f.max_duplicates ||
         ' times in one request: run it once and reuse the result (a variable, '
         'Django''s cached_property or the cache framework, Rails memoization), '
         'or hoist it out of the loop' AS suggestion,
         f.example_params, f.database, f.framework
    FROM perfguard._scope_findings f
   WHERE f.finding_kind = 'duplicate' AND NOT f.suppressed;
COMMENT ON VIEW perfguard.duplicates IS
  'Identical statements (same fingerprint, same parameters) run more than once in one request';

CREATE VIEW perfguard.write_loops AS
  SELECT f.dbid, f.userid, f.route, f.queryid, f.query, f.command,
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
         f.example_params, f.database, f.framework
    FROM perfguard._scope_findings f
   WHERE f.finding_kind = 'write_loop' AND NOT f.suppressed;
COMMENT ON VIEW perfguard.write_loops IS
  'INSERT/UPDATE/DELETE statements repeated row by row in one request';

CREATE VIEW perfguard.ignored AS
  SELECT CASE f.finding_kind WHEN 'sequence' THEN 'n_plus_one_sequence'
              ELSE f.finding_kind END AS category,
         f.dbid, f.userid, f.route, f.queryid, f.query,
         coalesce(f.rule_reason,
                  CASE WHEN f.ignored THEN 'perfguard=''ignore'' on the statement' END) AS reason,
         CASE WHEN f.rule_kind IS NOT NULL THEN 'rule:' || f.rule_kind ELSE 'in-band' END AS suppressed_by,
         f.occurrences, f.total_repeats, f.total_duplicates, f.wasted_ms, f.last_seen,
         f.database
    FROM perfguard._scope_findings f
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
LANGUAGE C STRICT VOLATILE PARALLEL SAFE ROWS 50;

CREATE VIEW perfguard.requests AS
  SELECT r.*, d.datname::text AS database
    FROM perfguard._requests() r
    LEFT JOIN pg_database d ON d.oid = r.dbid;
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
    OUT last_seen timestamptz, OUT route text, OUT work_samples bigint,
    OUT work_ms double precision, OUT work_wall_ms double precision,
    OUT wait_what text, OUT query text, OUT calls bigint,
    OUT mean_ms double precision, OUT max_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_slow_queries'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE ROWS 50;

CREATE FUNCTION perfguard._plan_findings(
    OUT userid oid, OUT dbid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT finding text, OUT node text, OUT relation text, OUT detail text,
    OUT suggestion text, OUT occurrences bigint,
    OUT total_ms double precision, OUT value_sum bigint,
    OUT value_max bigint, OUT last_seen timestamptz, OUT route text,
    OUT query text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_plan_findings'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE ROWS 50;

CREATE FUNCTION perfguard._offsets(
    OUT userid oid, OUT dbid oid, OUT queryid bigint, OUT toplevel boolean,
    OUT calls bigint, OUT total_ms double precision, OUT max_offset bigint,
    OUT sum_offset bigint, OUT rows_returned bigint,
    OUT last_seen timestamptz, OUT route text, OUT query text,
    OUT max_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_offsets'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE ROWS 20;

CREATE FUNCTION perfguard._keyset_suggestion(query text)
RETURNS text
AS 'MODULE_PATHNAME', 'perfguard_keyset_suggestion'
LANGUAGE C CALLED ON NULL INPUT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION perfguard._keyset_suggestion(text) IS
  'The keyset predicate that replaces OFFSET, built from the ORDER BY of a (normalized) query';

-- route: the request of the slowest (offsets) or worst (plan findings)
-- execution; database: by name (pg_database is shared: any database sees it)
CREATE VIEW perfguard.offset_pagination AS
  SELECT o.queryid, o.query, o.calls, o.max_offset,
         o.sum_offset::double precision / nullif(o.calls, 0) AS mean_offset,
         o.sum_offset AS rows_discarded,
         perfguard._keyset_suggestion(o.query) AS suggestion,
         o.userid, o.dbid, o.toplevel, o.total_ms, o.rows_returned,
         o.last_seen, o.route, d.datname::text AS database
    FROM perfguard._offsets() o
    LEFT JOIN pg_database d ON d.oid = o.dbid;
COMMENT ON VIEW perfguard.offset_pagination IS
  'Statements paginated with OFFSET >= perfguard.offset_threshold, and the keyset predicate to use instead';

CREATE VIEW perfguard.plan_findings AS
  SELECT f.queryid, f.query, f.finding, f.node, f.relation, f.detail,
         f.suggestion, f.occurrences, f.last_seen,
         f.userid, f.dbid, f.toplevel, f.total_ms, f.value_sum, f.value_max,
         f.route, d.datname::text AS database
    FROM perfguard._plan_findings() f
    LEFT JOIN pg_database d ON d.oid = f.dbid
  UNION ALL
  SELECT o.queryid, o.query, 'offset_scan', 'Limit', NULL::text,
         format('OFFSET up to %s (mean %s): every page reads and throws away the rows before it (%s rows so far)',
                o.max_offset, round(o.mean_offset), o.rows_discarded),
         o.suggestion, o.calls, o.last_seen,
         o.userid, o.dbid, o.toplevel, o.total_ms, o.rows_discarded,
         o.max_offset, o.route, o.database
    FROM perfguard.offset_pagination o;
COMMENT ON VIEW perfguard.plan_findings IS
  'Problems found in executed plans: big filtered Seq Scans, nested loops over many rows, sorts and hash joins that spill, misestimates, deep OFFSETs, unbounded results';

-- work_share: the share of the sampled executions' time spent working (on
-- the CPU or reading blocks); the rest was spent waiting (wait_what: a
-- waiting function the plan calls), which no plan change saves.
CREATE VIEW perfguard.slow_queries AS
  WITH pf AS MATERIALIZED (
         SELECT p.userid, p.dbid, p.queryid,
                array_agg(DISTINCT p.finding ORDER BY p.finding) AS findings
           FROM perfguard.plan_findings p
          GROUP BY p.userid, p.dbid, p.queryid)
  SELECT s.queryid, s.query,
         coalesce(s.calls, s.slow_calls) AS calls, s.slow_calls,
         coalesce(s.mean_ms, s.slow_total_ms / nullif(s.slow_calls, 0)) AS mean_ms,
         greatest(s.max_ms, s.slow_max_ms) AS max_ms,
         s.plan, coalesce(pf.findings, '{}') AS findings,
         s.last_seen,
         s.userid, s.dbid, s.toplevel, s.slow_total_ms, s.samples,
         s.plan_analyzed, s.plan_ms, s.sampling, s.first_seen,
         s.route, d.datname::text AS database,
         s.work_ms / nullif(s.work_wall_ms, 0) AS work_share, s.wait_what
    FROM perfguard._slow_queries() s
    LEFT JOIN pf ON pf.userid = s.userid AND pf.dbid = s.dbid
                AND pf.queryid = s.queryid
    LEFT JOIN pg_database d ON d.oid = s.dbid;
COMMENT ON VIEW perfguard.slow_queries IS
  'Statements slower than perfguard.slow_query_ms, with the EXPLAIN text of their slowest sampled execution (actual rows once sampled), the route of that execution and where its time went';

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

-- DROP advice waits for evidence (issue 17): statistics must have covered
-- perfguard.unused_index_min_age (7 days) since the later of their last
-- reset (the database's; after a crash, which discards them, the shared
-- statistics' reset) and the time perfguard first saw the index, a safe
-- lower bound of its creation (PostgreSQL keeps no creation time).  A fresh
-- schema (a new Django migrate, a Rails db:migrate) gets no DROP advice.
CREATE FUNCTION perfguard._index_first_seen(oids oid[],
    OUT indexrelid oid, OUT first_seen timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_index_first_seen'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE VIEW perfguard._index_evidence AS
  SELECT fs.indexrelid, fs.first_seen,
         greatest(fs.first_seen, coalesce(db.stats_reset, bg.stats_reset)) AS covered_since,
         -- clock_timestamp(): an index first seen by this very statement is
         -- seen after its transaction's now()
         clock_timestamp() - greatest(fs.first_seen, coalesce(db.stats_reset, bg.stats_reset))
           >= current_setting('perfguard.unused_index_min_age')::interval AS covered
    FROM perfguard._index_first_seen(
           ARRAY(SELECT c.indexrelid FROM perfguard._index_catalog c)) fs
    CROSS JOIN (SELECT max(stats_reset) AS stats_reset FROM pg_stat_database
                 WHERE datname = current_database()) db
    CROSS JOIN (SELECT stats_reset FROM pg_stat_bgwriter) bg;

CREATE VIEW perfguard._index_advice_catalog AS
  -- never scanned, on a table that is read, over enough time
  SELECT 'unused'::text AS kind, x.schema_name, x.table_name, x.index_name,
         x.columns,
         format('DROP INDEX CONCURRENTLY %I.%I', x.schema_name, x.index_name) AS ddl,
         format('no scan used this index in the %s days of statistics since %s, while %I was read %s times (%s sequential, %s index scans); it costs %s and slows every write',
                floor(extract(epoch FROM now() - ev.covered_since) / 86400),
                to_char(ev.covered_since, 'YYYY-MM-DD'),
                x.table_name, st.seq_scan + coalesce(st.idx_scan, 0), st.seq_scan,
                coalesce(st.idx_scan, 0),
                pg_size_pretty(pg_relation_size(x.indexrelid))) AS reason,
         pg_relation_size(x.indexrelid) AS index_bytes
    FROM perfguard._index_catalog x
    JOIN pg_stat_user_indexes s ON s.indexrelid = x.indexrelid
    JOIN pg_stat_user_tables st ON st.relid = x.indrelid
    JOIN perfguard._index_evidence ev ON ev.indexrelid = x.indexrelid
   WHERE s.idx_scan = 0
     AND st.seq_scan + coalesce(st.idx_scan, 0) > 0
     AND x.indisvalid AND NOT x.indisunique AND NOT x.indisprimary
     AND NOT x.backs_constraint AND ev.covered
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
      JOIN perfguard._index_evidence ev ON ev.indexrelid = d.indexrelid AND ev.covered
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
      JOIN perfguard._index_evidence ev ON ev.indexrelid = r.indexrelid AND ev.covered
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

-- The index advice of every database whose advice is cached (the current
-- one recomputed when older than perfguard.advice_refresh, or after DDL or
-- ANALYZE): perfguard.findings does not plan hypothetical indexes on every
-- read.  perfguard.refresh_advice() recomputes it at once.
CREATE FUNCTION perfguard._advice_cached(
    OUT dbid oid, OUT computed_at timestamptz, OUT advice text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_advice_cached'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE ROWS 2;

-- Of the time of the statements with these query ids in the current
-- database, the share spent in statements that call a function that waits
-- (pg_sleep, advisory locks), and the first such function: the index
-- advice is computed with it, and no index saves that share.
CREATE FUNCTION perfguard._waiting(queryids bigint[],
    OUT wait_what text, OUT wait_share double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'perfguard_waiting'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION perfguard.refresh_advice()
RETURNS integer
AS 'MODULE_PATHNAME', 'perfguard_refresh_advice'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION perfguard.refresh_advice() IS
  'Recompute the index advice that perfguard.findings shows for the current database; returns its number of rows';

-- One card per problem, ranked by the time its fix saves (impact_ms):
--  - a loop: the N+1s after one parent query on one route and the repeating
--    sequences there, with one combined fix per framework; the duplicates of
--    the same lookups on that route fold into it;
--  - a duplicate or a write loop not folded into a loop;
--  - a statement: slow_query and its plan findings, deep OFFSET, unbounded
--    result, and the missing index advised for it; its time spent waiting
--    (pg_sleep, locks, the client) is not counted, as no plan change saves
--    it;
--  - index advice (cached, see above); DROP advice has no impact and comes
--    last.
-- severity follows the rank: high for the cards that make up the first half
-- of all the time to save, medium up to 80%, low for the rest and for cards
-- that save nothing measurable.  Suppression rules apply to every card.
CREATE FUNCTION perfguard._scope_cards(
    OUT category text, OUT route text, OUT queryid bigint, OUT query text,
    OUT detail text, OUT suggestion text, OUT impact_ms double precision,
    OUT last_seen timestamptz, OUT framework text, OUT inferred boolean,
    OUT queryids bigint[], OUT dbid oid)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'perfguard_scope_cards'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED ROWS 500;
COMMENT ON FUNCTION perfguard._scope_cards() IS
  'The cards of perfguard.findings from the request scopes: one per loop (N+1s and sequences after one parent on one route, with one combined fix and their duplicates folded in), other duplicates, write loops';

CREATE FUNCTION perfguard._findings(
    OUT category text, OUT severity text, OUT route text, OUT queryid bigint,
    OUT query text, OUT detail text, OUT suggestion text,
    OUT impact_ms double precision, OUT last_seen timestamptz,
    OUT database text, OUT rank bigint, OUT framework text,
    OUT inferred boolean, OUT queryids bigint[], OUT dbid oid)
RETURNS SETOF record
LANGUAGE sql VOLATILE PARALLEL UNSAFE
-- a report over a few thousand rows: compiling it would take longer than
-- running it (the planner's estimates of the functions are wide)
SET jit = off
-- its CTEs are estimated at a few rows each, and nested loops over hundreds
-- of cards were the slowest part: hash them
SET enable_nestloop = off
AS $$
  WITH
  rules AS MATERIALIZED (SELECT * FROM perfguard._ignore_rules()),
  -- the cards of the request scopes: loops (with their combined fix and
  -- their duplicates folded in), other duplicates, write loops
  scope_cards AS (
    SELECT c.category, c.route, c.queryid, c.query, c.detail, c.suggestion,
           c.impact_ms, c.last_seen, d.datname::text AS database, c.framework,
           c.inferred, c.queryids, c.dbid
      FROM perfguard._scope_cards() c
      LEFT JOIN pg_database d ON d.oid = c.dbid),
  -- plan samples, by statement
  sq AS MATERIALIZED (SELECT * FROM perfguard._slow_queries()),
  pf AS MATERIALIZED (SELECT * FROM perfguard._plan_findings()),
  ofs AS MATERIALIZED (SELECT * FROM perfguard._offsets()),
  comp AS (
    SELECT p.userid, p.dbid, p.queryid, p.toplevel, p.finding AS code,
           p.finding || ': ' || p.detail AS detail, p.suggestion, p.route,
           p.query, p.last_seen,
           CASE WHEN p.finding = 'unbounded_result' THEN
             -- time spent on the rows beyond one page
             p.total_ms * greatest(0.0, 1.0 -
               coalesce(current_setting('perfguard.unbounded_rows', true), '1000')::float8
               * p.occurrences / nullif(p.value_sum, 0))
           ELSE
             -- the time of the statement, shared by its plan findings
             p.total_ms / count(*) OVER (PARTITION BY p.userid, p.dbid, p.queryid,
                                         p.toplevel, p.finding = 'unbounded_result')
           END AS impact
      FROM pf p
    UNION ALL
    SELECT o.userid, o.dbid, o.queryid, o.toplevel, 'offset_pagination',
           format('offset_pagination: OFFSET up to %s (mean %s) in %s calls: %s rows read and thrown away',
                  o.max_offset, round(o.sum_offset::numeric / nullif(o.calls, 0)),
                  o.calls, o.sum_offset),
           perfguard._keyset_suggestion(o.query), o.route, o.query, o.last_seen,
           -- the share of the time spent on rows that were thrown away
           o.total_ms * o.sum_offset / nullif(o.sum_offset + o.rows_returned, 0)
      FROM ofs o),
  stmts AS (
    SELECT userid, dbid, queryid, toplevel FROM sq
    UNION
    SELECT userid, dbid, queryid, toplevel FROM comp),
  comp_agg AS (
    SELECT c.userid, c.dbid, c.queryid, c.toplevel,
           (array_agg(c.code ORDER BY c.impact DESC NULLS LAST, c.code))[1] AS top_code,
           max(c.impact) AS impact,
           string_agg(c.detail, '; ' ORDER BY c.impact DESC NULLS LAST, c.code) AS details,
           (SELECT string_agg(DISTINCT x, ' | ') FROM unnest(array_agg(c.suggestion)) x) AS suggestions,
           (array_agg(c.route ORDER BY c.impact DESC NULLS LAST) FILTER (WHERE c.route <> ''))[1] AS route,
           max(c.query) AS query, max(c.last_seen) AS last_seen
      FROM comp c
     GROUP BY c.userid, c.dbid, c.queryid, c.toplevel),
  adv AS MATERIALIZED (
    SELECT c.dbid, d.datname::text AS database, a.*
      FROM perfguard._advice_cached() c
      LEFT JOIN pg_database d ON d.oid = c.dbid,
           jsonb_to_recordset(c.advice::jsonb)
             AS a(kind text, schema_name text, table_name text,
                  index_name text, columns text[], ddl text, reason text,
                  queryids bigint[], est_improvement float8,
                  impact_ms float8, applied boolean, applied_index text,
                  actual_improvement float8, ord bigint, wait_what text,
                  wait_share float8)),
  plan_stmts AS (
    SELECT st.*, s.slow_calls, s.slow_total_ms, s.slow_max_ms, s.calls,
           s.work_samples, s.work_ms, s.work_wall_ms, s.wait_what,
           c.top_code, c.impact AS comp_impact, c.details, c.suggestions,
           coalesce(nullif(s.route, ''), c.route) AS route,
           coalesce(s.query, c.query) AS query,
           greatest(s.last_seen, c.last_seen) AS last_seen,
           s.queryid IS NOT NULL AS slow,
           s.queryid IS NOT NULL AND
             CASE WHEN s.work_samples > 0 THEN s.work_ms < 0.5 * s.work_wall_ms
                  ELSE s.wait_what IS NOT NULL END AS waiting,
           CASE WHEN s.work_samples > 0
                THEN least(s.slow_total_ms, s.slow_calls * s.work_ms / s.work_samples)
                ELSE s.slow_total_ms END AS slow_impact,
           (SELECT a.ddl FROM adv a
             WHERE a.dbid = st.dbid AND a.kind = 'missing'
               AND NOT coalesce(a.applied, false) AND a.queryids[1] = st.queryid
             ORDER BY a.ord LIMIT 1) AS index_ddl
      FROM stmts st
      LEFT JOIN sq s USING (userid, dbid, queryid, toplevel)
      LEFT JOIN comp_agg c USING (userid, dbid, queryid, toplevel)),
  plan_cards AS (
    SELECT CASE WHEN p.slow THEN 'slow_query' ELSE p.top_code END AS category,
           p.route, p.queryid, p.query,
           concat_ws('; ',
             CASE WHEN p.slow THEN
               format('%s of %s calls slower than perfguard.slow_query_ms (max %s ms)',
                      p.slow_calls, coalesce(p.calls, p.slow_calls),
                      round(p.slow_max_ms::numeric, 1)) END,
             CASE WHEN p.waiting THEN
               format('its time is spent waiting (%s), not in the plan%s',
                      coalesce(p.wait_what, 'locks, sleeps or the client'),
                      CASE WHEN p.work_samples > 0 THEN
                        format(': %s%% of the sampled time was work', round(100 * p.work_ms / nullif(p.work_wall_ms, 0)))
                      ELSE '' END) END,
             p.details) AS detail,
           CASE WHEN p.waiting THEN
             format('no index or plan change makes this faster: the statement waits (%s); remove or shorten the wait, take it out of the request, or look at what holds the lock',
                    coalesce(p.wait_what, 'a lock, a sleep or a slow client'))
           ELSE
             concat_ws(' | ', p.index_ddl,
                       coalesce(p.suggestions,
                                'read the sampled plan in perfguard.slow_queries.plan for this queryid'))
           END AS suggestion,
           CASE WHEN p.waiting THEN 0
                ELSE greatest(CASE WHEN p.slow THEN p.slow_impact END, p.comp_impact) END AS impact_ms,
           p.last_seen, d.datname::text AS database, NULL::text AS framework,
           false AS inferred, ARRAY[p.queryid] AS queryids, p.dbid
      FROM plan_stmts p
      LEFT JOIN pg_database d ON d.oid = p.dbid),
  adv_texts AS MATERIALIZED (
    SELECT DISTINCT ON (t.dbid, t.queryid) t.dbid, t.queryid, t.query
      FROM perfguard._texts_of(ARRAY(SELECT a.queryids[1] FROM adv a
                                      WHERE a.queryids IS NOT NULL)) t
     WHERE t.query IS NOT NULL
     ORDER BY t.dbid, t.queryid, t.toplevel DESC),
  -- applied advice is no to-do: it shows only as index_applied when its
  -- statements became slower per call since the index exists
  index_cards AS (
    SELECT 'index_' || CASE WHEN a.applied THEN 'applied' ELSE a.kind END AS category,
           NULL::text AS route, a.queryids[1] AS queryid,
           (SELECT t.query FROM adv_texts t
             WHERE t.dbid = a.dbid AND t.queryid = a.queryids[1]) AS query,
           format('%s.%s%s: %s', a.schema_name, a.table_name,
                  CASE WHEN a.index_name IS NOT NULL THEN ' index ' || a.index_name
                       ELSE ' (' || array_to_string(a.columns, ', ') || ')' END,
                  a.reason) ||
             CASE WHEN a.wait_what IS NOT NULL THEN
               format('; %s%% of the time of its statements is in statements that wait in %s, which no index shortens',
                      round(100 * a.wait_share), a.wait_what)
             ELSE '' END AS detail,
           CASE WHEN a.applied
                THEN format('index %I, created from this advice, did not make its statements faster: check their plans with EXPLAIN, and drop it (DROP INDEX CONCURRENTLY %I.%I) if no statement uses it',
                            a.applied_index, a.schema_name, a.applied_index)
                ELSE a.ddl END AS suggestion,
           CASE WHEN a.applied THEN -a.impact_ms
                ELSE a.impact_ms * (1 - coalesce(a.wait_share, 0)) END AS impact_ms,
           NULL::timestamptz AS last_seen, a.database, NULL::text AS framework,
           false AS inferred, a.queryids, a.dbid
      FROM adv a
     WHERE (NOT coalesce(a.applied, false) OR a.actual_improvement < 0)
       AND NOT (a.kind = 'missing' AND NOT coalesce(a.applied, false) AND
                EXISTS (SELECT 1 FROM plan_stmts p
                         WHERE p.dbid = a.dbid AND p.queryid = a.queryids[1]))),
  other_cards AS (
    SELECT * FROM plan_cards
    UNION ALL SELECT * FROM index_cards),
  cards AS (
    SELECT * FROM scope_cards
    UNION ALL
    -- rules on statements and routes apply to these cards too (the scope
    -- findings were filtered already)
    SELECT o.* FROM other_cards o
     WHERE NOT EXISTS (
             SELECT 1 FROM rules i
              WHERE (i.kind = 'queryid' AND i.queryid = ANY (o.queryids))
                 OR (i.kind = 'route' AND i.route = o.route)
                 OR (i.kind = 'queryid_route' AND i.route = o.route
                     AND i.queryid = ANY (o.queryids)))),
  -- one order for the rank and the running share of the time to save;
  -- DROP advice comes after everything else
  ranked AS (
    SELECT c.*,
           row_number() OVER w AS rank,
           sum(greatest(coalesce(c.impact_ms, 0), 0)) OVER w
             - greatest(coalesce(c.impact_ms, 0), 0) AS before,
           sum(greatest(coalesce(c.impact_ms, 0), 0)) OVER () AS total
      FROM cards c
    WINDOW w AS (ORDER BY c.category IN ('index_unused', 'index_duplicate', 'index_redundant'),
                 c.impact_ms DESC NULLS LAST, c.category, c.database, c.route,
                 c.queryid ROWS UNBOUNDED PRECEDING))
  SELECT r.category,
         CASE WHEN r.impact_ms IS NULL OR r.impact_ms <= 0 THEN 'low'
              WHEN r.before < 0.5 * r.total THEN 'high'
              WHEN r.before < 0.8 * r.total THEN 'medium'
              ELSE 'low' END AS severity,
         r.route, r.queryid, r.query, r.detail, r.suggestion, r.impact_ms,
         r.last_seen, r.database, r.rank, r.framework, r.inferred, r.queryids,
         r.dbid
    FROM ranked r
$$;

CREATE VIEW perfguard.findings AS
  SELECT category, severity, route, queryid, query, detail, suggestion,
         impact_ms, last_seen, database, rank, framework, inferred, queryids,
         dbid
    FROM perfguard._findings()
   ORDER BY rank;
COMMENT ON VIEW perfguard.findings IS
  'One card per problem (database, route, loop or statement), ranked by the time the fix would save, with the fix';

GRANT USAGE ON SCHEMA perfguard TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA perfguard TO PUBLIC;
