--
-- index_advice_hypopg: perfguard's hypothetical indexes against HypoPG's.
-- For the same candidate index, perfguard's estimated cost with the index
-- must agree with the cost of HypoPG's EXPLAIN within 10%.  Both are the
-- generic plan (parameters stay $n).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
SELECT perfguard.reset();
CREATE EXTENSION hypopg;

CREATE TABLE iah_events (
    id int PRIMARY KEY,
    account_id int NOT NULL,
    ref int NOT NULL,
    kind text NOT NULL,
    created_at timestamptz NOT NULL,
    payload text);
INSERT INTO iah_events
  SELECT g, g % 2000, (g * 7) % 60013, 'k' || (g % 7), '2024-01-01'::timestamptz + g * interval '1 minute',
         repeat('x', 40)
    FROM generate_series(1, 60000) g;
VACUUM ANALYZE iah_events;

-- EXPLAIN total cost of a statement's generic plan
CREATE FUNCTION iah_generic_cost(stmt text, types text, args text)
RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
  j json;
BEGIN
  EXECUTE format('PREPARE iah_p(%s) AS %s', types, stmt);
  SET LOCAL plan_cache_mode = force_generic_plan;
  EXECUTE format('EXPLAIN (FORMAT JSON) EXECUTE iah_p(%s)', args) INTO j;
  DEALLOCATE iah_p;
  RETURN (j->0->'Plan'->>'Total Cost')::float8;
END $$;

-- 1. the view: one statement, one candidate
SELECT * FROM iah_events WHERE ref = 17;
SELECT kind, columns, ddl FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iah_events';

SELECT hypopg_create_index(replace(ddl, ' CONCURRENTLY', '')) IS NOT NULL AS created
  FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iah_events';
CREATE TEMP TABLE iah_check AS
  SELECT a.ddl, a.index_bytes,
         a.est_cost_before AS pfg_before, a.est_cost_after AS pfg_after,
         iah_generic_cost('SELECT * FROM iah_events WHERE ref = $1',
                          'int', '1') AS hypo_after
    FROM perfguard.index_advice a
   WHERE a.kind = 'missing' AND a.table_name = 'iah_events';
SELECT hypopg_reset();
SELECT abs(pfg_after - hypo_after) <= 0.10 * hypo_after AS agrees_within_10pct,
       hypo_after < pfg_before AS hypopg_also_cheaper
  FROM iah_check;
-- without hypothetical indexes the cost is perfguard's "before"
SELECT abs(iah_generic_cost('SELECT * FROM iah_events WHERE ref = $1',
                            'int', '1') - pfg_before) <= 0.01 * pfg_before
       AS same_before
  FROM iah_check;

-- 2. advise(): a composite candidate (equality, range, order)
CREATE TEMP TABLE iah_adv AS
  SELECT ddl, est_cost_before, est_cost_after
    FROM perfguard.advise('SELECT id FROM iah_events WHERE account_id = $1 AND kind = $2 AND created_at >= $3 ORDER BY created_at LIMIT 20')
   WHERE kind = 'missing_index';
SELECT ddl FROM iah_adv;
SELECT hypopg_create_index(replace(ddl, ' CONCURRENTLY', '')) IS NOT NULL AS created
  FROM iah_adv;
SELECT abs(a.est_cost_after - h.c) <= 0.10 * h.c AS agrees_within_10pct
  FROM iah_adv a,
       LATERAL (SELECT iah_generic_cost(
                  'SELECT id FROM iah_events WHERE account_id = $1 AND kind = $2 AND created_at >= $3 ORDER BY created_at LIMIT 20',
                  'int, text, timestamptz', '1, ''k1'', now()') AS c) h;
SELECT hypopg_reset();

-- 3. perfguard's size estimate against the real index (unique keys, so
-- btree deduplication, which perfguard does not model, plays no part)
SELECT ddl FROM iah_check \gexec
SELECT abs(pg_relation_size(i.indexrelid)::float8 - c.index_bytes)
         <= 0.15 * pg_relation_size(i.indexrelid) AS size_within_15pct
  FROM pg_index i, iah_check c
 WHERE i.indrelid = 'iah_events'::regclass AND NOT i.indisprimary;

DROP TABLE iah_events;
DROP FUNCTION iah_generic_cost(text, text, text);
DROP EXTENSION hypopg;
