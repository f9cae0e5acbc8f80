--
-- plan_insights: slow-query plan samples, plan findings, deep OFFSET
-- pagination and unbounded results.  Each finding is triggered by one
-- statement and must stay silent for its clean twin.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
SELECT perfguard.reset();
SET max_parallel_workers_per_gather = 0;
SET jit = off;

-- 50,000 rows, 1% per status value; a twin with an index on status
CREATE TABLE pi_orders AS
  SELECT i AS id, i % 100 AS status, md5(i::text) AS pad
    FROM generate_series(1, 50000) i;
CREATE TABLE pi_orders_idx AS SELECT * FROM pi_orders;
CREATE INDEX pi_orders_idx_status ON pi_orders_idx (status);
-- 2,000 customers, 10 lines each
CREATE TABLE pi_cust AS SELECT i AS id FROM generate_series(1, 2000) i;
CREATE TABLE pi_lines AS
  SELECT i AS id, i % 2000 + 1 AS cust_id FROM generate_series(1, 20000) i;
CREATE INDEX pi_lines_cust ON pi_lines (cust_id);
-- a and b are the same column twice: the planner multiplies their
-- selectivities (1/20 * 1/20) and underestimates a = 1 AND b = 1 by 20x
CREATE TABLE pi_skew AS
  SELECT i AS id, i % 20 AS a, i % 20 AS b FROM generate_series(1, 50000) i;
CREATE TABLE pi_events AS
  SELECT i AS id, timestamptz '2024-01-01' + i * interval '1 minute' AS created_at
    FROM generate_series(1, 5000) i;
ANALYZE pi_orders, pi_orders_idx, pi_cust, pi_lines, pi_skew, pi_events;

-- Statements faster than perfguard.slow_query_ms leave no trace.
SELECT count(*) FROM pi_orders WHERE status = 1;
SELECT count(*) FROM perfguard.slow_queries;
-- a plain user cannot lower the threshold
CREATE ROLE regress_pi_plain;
SET ROLE regress_pi_plain;
SET perfguard.slow_query_ms = 0;
RESET ROLE;

-- From here every statement is "slow": the first execution of a fingerprint
-- is sampled without instrumentation and arms it; the next ones run with
-- row counts and are walked for findings.
SET perfguard.slow_query_ms = 0;

-- seq_scan_large: the filter removes 99% of 50,000 rows
SELECT count(*) FROM pi_orders WHERE status = 7;
SELECT count(*) FROM pi_orders WHERE status = 8;
SELECT count(*) FROM pi_orders WHERE status = 9;
-- twins: the indexed table, and a filter that keeps most rows
SELECT count(*) FROM pi_orders_idx WHERE status = 7;
SELECT count(*) FROM pi_orders_idx WHERE status = 8;
SELECT count(*) FROM pi_orders WHERE status <> 7;
SELECT count(*) FROM pi_orders WHERE status <> 8;

-- nested_loop_many: one inner index scan per customer (2,000 loops)
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SELECT count(*) FROM pi_cust c JOIN pi_lines l ON l.cust_id = c.id;
SELECT count(*) FROM pi_cust c JOIN pi_lines l ON l.cust_id = c.id;
-- twin: 10 outer rows, 10 loops
SELECT count(*) FROM pi_cust c JOIN pi_lines l ON l.cust_id = c.id WHERE c.id <= 10;
SELECT count(*) FROM pi_cust c JOIN pi_lines l ON l.cust_id = c.id WHERE c.id <= 10;
RESET enable_hashjoin;
RESET enable_mergejoin;

-- sort_spill: 50,000 md5 strings in 64 kB
SET work_mem = '64kB';
SELECT count(*) FROM (SELECT pad FROM pi_orders ORDER BY pad OFFSET 0) s;
SELECT count(*) FROM (SELECT pad FROM pi_orders ORDER BY pad OFFSET 0) s;
-- twin: 100 rows sort in memory
SELECT count(*) FROM (SELECT pad FROM pi_orders WHERE id <= 100 ORDER BY pad OFFSET 0) s;
SELECT count(*) FROM (SELECT pad FROM pi_orders WHERE id <= 100 ORDER BY pad OFFSET 0) s;

-- hash_batches: hashing 50,000 rows in 64 kB needs many batches
SET enable_mergejoin = off;
SET enable_nestloop = off;
SELECT count(*) FROM pi_orders a JOIN pi_orders b ON a.pad = b.pad;
SELECT count(*) FROM pi_orders a JOIN pi_orders b ON a.pad = b.pad;
-- twin: the same kind of join with enough work_mem
SET work_mem = '64MB';
SELECT count(*) FROM pi_orders a JOIN pi_orders b ON a.id = b.id;
SELECT count(*) FROM pi_orders a JOIN pi_orders b ON a.id = b.id;
RESET enable_mergejoin;
RESET enable_nestloop;
RESET work_mem;

-- misestimate: estimated ~125 rows, 2,500 found
SELECT count(*) FROM pi_skew WHERE a = 1 AND b = 1;
SELECT count(*) FROM pi_skew WHERE a = 1 AND b = 1;
-- twin: one column, estimated right
SELECT count(*) FROM pi_skew WHERE a = 1;
SELECT count(*) FROM pi_skew WHERE a = 1;

-- offset_scan / offset_pagination: three pages deep into the list
SELECT id FROM pi_events ORDER BY created_at, id LIMIT 3 OFFSET 2000;
SELECT id FROM pi_events ORDER BY created_at, id LIMIT 3 OFFSET 3000;
SELECT id FROM pi_events ORDER BY created_at, id LIMIT 3 OFFSET 1000;
-- below the threshold: not counted (same fingerprint)
SELECT id FROM pi_events ORDER BY created_at, id LIMIT 3 OFFSET 999;
SET perfguard.offset_threshold = 5000;
SELECT id FROM pi_events ORDER BY created_at, id LIMIT 3 OFFSET 4000;
RESET perfguard.offset_threshold;
-- twin: a shallow OFFSET, mixed directions
SELECT id FROM pi_events ORDER BY created_at DESC, id LIMIT 3 OFFSET 10;
SELECT id FROM pi_events ORDER BY created_at DESC, id LIMIT 3 OFFSET 10;

-- unbounded_result: more than perfguard.unbounded_rows rows without LIMIT
SET perfguard.unbounded_rows = 10;
SELECT id FROM pi_orders WHERE id <= 12 ORDER BY id;
-- twins: with a LIMIT, and under the threshold
SELECT id FROM pi_orders WHERE id <= 12 ORDER BY id LIMIT 20;
SELECT id FROM pi_orders WHERE id < 5 ORDER BY id;
-- a cursor is the batch-job cure, not the disease
BEGIN;
DECLARE pi_cur CURSOR FOR SELECT id FROM pi_orders WHERE id <= 30 ORDER BY id;
FETCH 15 FROM pi_cur;
CLOSE pi_cur;
COMMIT;
RESET perfguard.unbounded_rows;

RESET perfguard.slow_query_ms;

-- Every statement above with the findings of its plan: each twin has none.
SELECT query, findings
  FROM perfguard.slow_queries
 WHERE query LIKE '%pi\_%'
 ORDER BY query;

-- The plan findings themselves: node, relation, counts and the fix.
SELECT finding, node, relation, occurrences,
       CASE finding
         WHEN 'seq_scan_large' THEN detail
         WHEN 'nested_loop_many' THEN detail
         WHEN 'misestimate' THEN (detail LIKE '%estimated %, actual 2500 per loop%')::text
         WHEN 'sort_spill' THEN (detail LIKE 'sort spilled to disk (% kB) with work_mem = 64 kB; sort key: pad')::text
         WHEN 'hash_batches' THEN (detail LIKE 'hash table of pi_orders split into % batches%')::text
         ELSE detail END AS detail
  FROM perfguard.plan_findings
 WHERE query LIKE '%pi\_%'
 ORDER BY finding, relation, detail;

SELECT finding, suggestion
  FROM perfguard.plan_findings
 WHERE finding IN ('seq_scan_large', 'nested_loop_many', 'misestimate')
 ORDER BY finding, suggestion;

SELECT finding,
       suggestion LIKE '%work_mem%' AS mentions_work_mem,
       suggestion LIKE '%index on the ORDER BY columns (pad)%' AS names_sort_key
  FROM perfguard.plan_findings
 WHERE finding IN ('sort_spill', 'hash_batches')
 ORDER BY finding;

-- Adaptive sampling: the first slow run keeps an estimates-only plan; the
-- next ones are instrumented and their plan (actual rows) replaces it.
SELECT query, calls, slow_calls, samples, plan_analyzed,
       plan LIKE '%(actual rows=%' AS has_actual_rows,
       plan LIKE '%Rows Removed by Filter: 49500%' AS shows_filter
  FROM perfguard.slow_queries
 WHERE query LIKE '%pi\_orders WHERE status = %'
    OR query LIKE '%pi\_orders WHERE id <= $1 ORDER BY id'
 ORDER BY query;

-- Deep OFFSET pagination and the keyset predicate to use instead.
SELECT query, calls, max_offset, mean_offset, rows_discarded, suggestion
  FROM perfguard.offset_pagination
 WHERE query LIKE '%pi\_events%';

-- The ranked checklist carries the new categories.
SELECT category, count(*) AS n, bool_and(impact_ms >= 0) AS impact_ok,
       bool_and(suggestion IS NOT NULL) AS has_fix
  FROM perfguard.findings
 WHERE query LIKE '%pi\_%'
   AND category IN ('slow_query', 'offset_pagination', 'seq_scan_large',
                    'nested_loop_many', 'sort_spill', 'hash_batches',
                    'misestimate', 'unbounded_result', 'offset_scan')
 GROUP BY category
 ORDER BY category;
-- ... one card per statement: slow_query with its plan findings, deep
-- OFFSET and unbounded result in its detail (these statements were all slow)
SELECT c.code, count(*) AS cards
  FROM perfguard.findings f,
       unnest(ARRAY['seq_scan_large', 'nested_loop_many', 'sort_spill',
                    'hash_batches', 'misestimate', 'unbounded_result',
                    'offset_pagination']) c(code)
 WHERE f.query LIKE '%pi\_%' AND f.detail LIKE '%' || c.code || ': %'
 GROUP BY c.code
 ORDER BY c.code;
SELECT category, count(*) AS cards, count(DISTINCT queryid) AS statements
  FROM perfguard.findings WHERE query LIKE '%pi\_%' GROUP BY category ORDER BY category;

-- Plans and query texts are hidden from other users.
SET ROLE regress_pi_plain;
SELECT count(*) > 0 AS sees_rows, bool_and(plan IS NULL) AS plans_hidden,
       bool_and(query IS NULL) AS texts_hidden
  FROM perfguard.slow_queries;
SELECT bool_and(query IS NULL) AS texts_hidden FROM perfguard.plan_findings;
RESET ROLE;

-- The keyset suggestion for other ORDER BY shapes.
SELECT perfguard._keyset_suggestion(
  'SELECT * FROM essay ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2');
SELECT perfguard._keyset_suggestion(
  'SELECT * FROM essay ORDER BY created_at DESC, id LIMIT $1 OFFSET $2');
SELECT perfguard._keyset_suggestion('SELECT * FROM essay LIMIT $1 OFFSET $2');
SELECT perfguard._keyset_suggestion('SELECT * FROM essay ORDER BY (');

-- reset clears everything
SELECT perfguard.reset();
SELECT (SELECT count(*) FROM perfguard.slow_queries) AS slow,
       (SELECT count(*) FROM perfguard.plan_findings) AS findings,
       (SELECT count(*) FROM perfguard.offset_pagination) AS offsets;

DROP TABLE pi_orders, pi_orders_idx, pi_cust, pi_lines, pi_skew, pi_events;
DROP ROLE regress_pi_plain;
