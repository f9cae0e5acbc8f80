--
-- index_advice: missing indexes proven with hypothetical indexes, unused,
-- duplicate and redundant indexes, foreign keys without an index, and
-- perfguard.advise().  No costs are printed: only what they imply.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
SELECT perfguard.reset();

-- 50,000 orders: customer_id (5,000 values), tenant_id (50 values)
CREATE TABLE ia_orders (
    id int PRIMARY KEY,
    customer_id int NOT NULL,
    tenant_id int NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    note text);
INSERT INTO ia_orders
  SELECT g, g % 5000, g % 50, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'done' END,
         '2024-01-01'::timestamptz + g * interval '1 minute', 'order ' || g
    FROM generate_series(1, 50000) g;
VACUUM ANALYZE ia_orders;
-- a small table: a Seq Scan there is fine (clean twin)
CREATE TABLE ia_small (id int, code text);
INSERT INTO ia_small SELECT g, 'c' || g FROM generate_series(1, 100) g;
ANALYZE ia_small;

-- the statements must run first, so that perfguard holds them
SELECT count(*) FROM ia_orders WHERE customer_id = 42;
SELECT count(*) FROM ia_orders WHERE customer_id = 43;
SELECT count(*) FROM ia_orders WHERE customer_id = 44;
SELECT id FROM ia_orders
 WHERE tenant_id = 10 AND status = 'open' AND created_at >= '2024-01-20'
 ORDER BY created_at DESC LIMIT 5;
SELECT note FROM ia_orders WHERE id = 4242;            -- primary key: clean
SELECT code FROM ia_small WHERE code = 'c7';           -- small table: clean
-- a statement whose table is gone by report time is skipped, not an error
CREATE TABLE ia_gone AS SELECT g AS id, g % 100 AS k FROM generate_series(1, 20000) g;
ANALYZE ia_gone;
SELECT count(*) FROM ia_gone WHERE k = 5;
DROP TABLE ia_gone;

-- missing: one row per index, ranked; the composite one has the equality
-- columns, then the range column that is also the (descending) order column,
-- so that an ascending index scanned backward serves it
SELECT kind, schema_name, table_name, index_name, columns, ddl, calls,
       cardinality(queryids) AS statements,
       est_cost_after < est_cost_before AS cheaper,
       est_improvement >= 0.3 AS improves_30pct,
       est_improvement <= 1 AS fraction,
       index_bytes > 8192 AS sized,
       reason LIKE 'Seq Scan on public.ia_orders filters on %' AS reason_ok
  FROM perfguard.index_advice
 WHERE kind = 'missing'
 ORDER BY columns;
-- nothing for the primary key lookup, the small table or the dropped table
SELECT count(*) AS unexpected FROM perfguard.index_advice
 WHERE kind = 'missing'
   AND (table_name IN ('ia_small', 'ia_gone') OR columns = '{id}');

-- the advice ranks by calls x saving: the customer lookup ran 3 times
SELECT columns FROM perfguard.index_advice WHERE kind = 'missing' LIMIT 1;

-- run the DDL as given (CONCURRENTLY, outside a transaction block) ...
SELECT ddl FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'ia_orders'
 ORDER BY columns \gexec
-- ... and the planner uses the new indexes
EXPLAIN (COSTS OFF) SELECT count(*) FROM ia_orders WHERE customer_id = 42;
EXPLAIN (COSTS OFF) SELECT id FROM ia_orders
 WHERE tenant_id = 10 AND status = 'open' AND created_at >= '2024-01-20'
 ORDER BY created_at DESC LIMIT 5;
-- with the indexes in place, nothing is missing any more: the advice shows
-- as applied (the closed loop, see index_advice_applied)
SELECT count(*) AS still_missing FROM perfguard.index_advice
 WHERE kind = 'missing' AND NOT applied AND table_name = 'ia_orders';
SELECT columns, applied, applied_index, calls_after
  FROM perfguard.index_advice
 WHERE kind = 'missing' AND applied AND table_name = 'ia_orders'
 ORDER BY columns;
SELECT indexname FROM pg_indexes WHERE tablename = 'ia_orders' ORDER BY 1;

--
-- catalog checks
--
CREATE TABLE ia_parent (id int PRIMARY KEY);
CREATE TABLE ia_parent2 (x int, y int, PRIMARY KEY (x, y));
CREATE TABLE ia_child (
    id int PRIMARY KEY,
    parent_id int REFERENCES ia_parent,     -- no index: fk_without_index
    other_id int REFERENCES ia_parent,      -- leads ia_child_other: clean
    pair_a int, pair_b int,
    a int, b int, c int,
    FOREIGN KEY (pair_b, pair_a) REFERENCES ia_parent2);
CREATE INDEX ia_child_other ON ia_child (other_id, a);
CREATE INDEX ia_child_pair ON ia_child (pair_a, pair_b, c);  -- serves the 2-column FK in any order
CREATE INDEX ia_child_a ON ia_child (a);                 -- redundant with ia_child_a_b
CREATE INDEX ia_child_a_b ON ia_child (a, b);
CREATE UNIQUE INDEX ia_child_b_u ON ia_child (b);        -- unique prefix: clean
CREATE INDEX ia_child_b_c ON ia_child (b, c);
CREATE INDEX ia_child_c1 ON ia_child (c);
CREATE INDEX ia_child_c2 ON ia_child (c);                -- duplicate of ia_child_c1
CREATE INDEX ia_child_c_pos ON ia_child (c) WHERE c > 0; -- other predicate: clean
CREATE INDEX ia_child_c_desc ON ia_child (c DESC);       -- other order: clean
CREATE UNIQUE INDEX ia_child_id_dup ON ia_child (id);    -- duplicate of the primary key
-- building an index counts as a sequential scan of its table: forget those,
-- so that ia_child is a table nobody reads (its indexes are not "unused")
SELECT pg_stat_force_next_flush();
SELECT pg_stat_reset_single_table_counters('ia_child'::regclass);

-- unused: an index never scanned on a table that is read
CREATE TABLE ia_logs (id int PRIMARY KEY, ts timestamptz, level int);
INSERT INTO ia_logs
  SELECT g, '2024-01-01'::timestamptz + g * interval '1 second', g % 5
    FROM generate_series(1, 20000) g;
CREATE INDEX ia_logs_level ON ia_logs (level);            -- never used
CREATE INDEX ia_logs_ts ON ia_logs (ts);                  -- used: clean
VACUUM ANALYZE ia_logs;
SET enable_indexonlyscan = off;
SELECT count(*) FROM ia_logs;
RESET enable_indexonlyscan;
SELECT id FROM ia_logs WHERE ts = '2024-01-01 01:00:00+00';
-- the new ia_orders indexes are used too (they must not show as unused)
SELECT count(*) FROM ia_orders WHERE customer_id = 42;
SELECT id FROM ia_orders
 WHERE tenant_id = 10 AND status = 'open' AND created_at >= '2024-01-20'
 ORDER BY created_at DESC LIMIT 5;
SELECT pg_stat_force_next_flush();

-- DROP advice waits for statistics that cover perfguard.unused_index_min_age
-- (7 days) since the index was first seen: these indexes are minutes old,
-- so only the CREATE advice shows
SHOW perfguard.unused_index_min_age;
SELECT kind, table_name, index_name
  FROM perfguard.index_advice
 WHERE kind <> 'missing' AND table_name LIKE 'ia\_%'
 ORDER BY kind, table_name, index_name;
-- without the wait, every DROP advice of the catalog checks
SET perfguard.unused_index_min_age = 0;
SELECT kind, table_name, index_name, columns, ddl,
       reason IS NOT NULL AS has_reason
  FROM perfguard.index_advice
 WHERE kind <> 'missing' AND table_name LIKE 'ia\_%'
 ORDER BY kind, table_name, index_name;

-- the findings checklist carries the index advice (cached: refreshed now,
-- as the setting changed what it says); DROP advice saves no measured time
-- and comes after the rest
SELECT perfguard.refresh_advice() > 0 AS refreshed;
SELECT category, severity, count(*) FROM perfguard.findings
 WHERE category LIKE 'index\_%' AND detail LIKE 'public.ia\_%'
 GROUP BY category, severity ORDER BY category;
SELECT bool_and(category IN ('index_duplicate', 'index_redundant', 'index_unused'))
         AS drops_last
  FROM (SELECT category FROM perfguard.findings
         ORDER BY rank DESC LIMIT 4) last;
RESET perfguard.unused_index_min_age;

--
-- perfguard.advise(): findings and proven candidates for one statement
--
DROP INDEX ia_orders_customer_id_idx;
SELECT kind, relation, ddl, est_improvement >= 0.3 AS improves_30pct
  FROM perfguard.advise('SELECT * FROM ia_orders WHERE customer_id = $1');
SELECT kind, relation, ddl, est_improvement >= 0.3 AS improves_30pct
  FROM perfguard.advise('UPDATE ia_orders SET note = $2 WHERE customer_id = $1');
SELECT kind, relation, ddl, est_improvement >= 0.3 AS improves_30pct
  FROM perfguard.advise('SELECT id FROM ia_orders ORDER BY status, note LIMIT 10');
-- constants work as well as $n; an indexed lookup has no findings
SELECT count(*) FROM perfguard.advise('SELECT * FROM ia_orders WHERE id = 5');
SELECT count(*) FROM perfguard.advise('SELECT * FROM ia_small WHERE code = ''x''');
-- a filter no btree index helps: reported as such
SELECT kind, relation, ddl FROM perfguard.advise(
  'SELECT count(*) FROM ia_orders WHERE status <> $1');
-- advise() does not run the statement
SELECT count(*) FROM perfguard.advise('DELETE FROM ia_orders WHERE note = $1');
SELECT count(*) FROM ia_orders;

-- bad input
SELECT * FROM perfguard.advise(NULL);
SELECT * FROM perfguard.advise('   ');
SELECT * FROM perfguard.advise('SELEC * FROM ia_orders');
SELECT * FROM perfguard.advise('SELECT 1; SELECT 2');
SELECT * FROM perfguard.advise('INSERT INTO ia_small VALUES (1, $1)');
SELECT * FROM perfguard.advise('CREATE TABLE ia_x (a int)');
SELECT * FROM perfguard.advise('SELECT * INTO ia_x FROM ia_small');
SELECT * FROM perfguard.advise('SELECT * FROM ia_no_such_table');

DROP TABLE ia_orders, ia_small, ia_child, ia_parent, ia_parent2, ia_logs;
