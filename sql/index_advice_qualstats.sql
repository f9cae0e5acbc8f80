--
-- index_advice_qualstats: the index advisor test of pg_qualstats
-- (github.com/powa-team/pg_qualstats, test/sql/02_advisor.sql and
-- expected/02_advisor.out), ported to perfguard at table sizes over
-- perfguard's big-table threshold (PFG_BIG_TABLE_ROWS, 10,000 rows):
-- adv has 100,000 rows instead of 1,000, pgqs (from 01_basic.sql) 20,000
-- instead of 100.  The constant that selects half of adv (id1 < 500)
-- scales with it; the others stay.  As in pg_qualstats' test, the tables
-- are not analysed (autovacuum is off here, so that they stay so); a
-- second reading of the advice follows an ANALYZE.
--
-- pg_qualstats_index_advisor() reads the quals of the whole workload and
-- proposes one set of indexes; perfguard.index_advice does the same from
-- the statements it recorded.  Each statement of qs_workload runs 10 times
-- (between "\set ECHO none" and "\set ECHO all": not echoed, the output
-- discarded), after perfguard.reset().  Where perfguard's answer differs
-- from pg_qualstats', the expected output keeps pg_qualstats' answer (the
-- test fails until the advisor gives it), unless the planner costs
-- perfguard's indexes no higher for every statement of the workload, which
-- the HypoPG comparison qs_compare checks (issue 18 accepts that).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
CREATE EXTENSION IF NOT EXISTS hypopg;
RESET client_min_messages;
SET max_parallel_workers_per_gather = 0;

-- perfguard's missing-index advice, as pg_qualstats prints its DDL
CREATE VIEW qs_advice AS
  SELECT regexp_replace(a.ddl, '^CREATE INDEX (CONCURRENTLY )?ON (\S+) ',
                        'CREATE INDEX ON \2 USING btree ') AS ddl
    FROM perfguard.index_advice a
   WHERE kind = 'missing' AND NOT applied
   ORDER BY ddl COLLATE "C";

-- no statement, no advice (pg_qualstats: empty arrays rather than NULL)
SELECT perfguard.reset();
SELECT * FROM qs_advice;

-- pgqs, as 01_basic.sql creates it
CREATE TABLE pgqs WITH (autovacuum_enabled = off) AS
  SELECT id, 'a'::text val FROM generate_series(1, 20000) id;
-- some naive scenario
CREATE TABLE adv (id1 integer, id2 integer, id3 integer, val text)
  WITH (autovacuum_enabled = off);
INSERT INTO adv SELECT i, i, i, 'line ' || i FROM generate_series(1, 100000) i;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('adv', 'pgqs') ORDER BY 1;

CREATE TABLE qs_workload (n int, stmt text);
INSERT INTO qs_workload VALUES
  (1, 'SELECT * FROM adv WHERE id1 < 0'),
  (2, 'SELECT count(*) FROM adv WHERE id1 < 50000'),
  (3, 'SELECT * FROM adv WHERE val = ''meh'''),
  (4, 'SELECT * FROM adv WHERE id1 = 0 and val = ''meh'''),
  (5, 'SELECT * FROM adv WHERE id1 = 1 and val = ''meh'''),
  (6, 'SELECT * FROM adv WHERE id1 = 1 and id2 = 2 AND val = ''meh'''),
  (7, 'SELECT * FROM adv WHERE id1 = 6 and id2 = 6 AND id3 = 6 AND val = ''meh'''),
  (8, 'SELECT COUNT(*) FROM pgqs WHERE id = 1'),
  -- non optimisable statements
  (9, 'SELECT * FROM adv WHERE val ILIKE ''moh'''),
  (10, 'SELECT count(*) FROM adv WHERE val ILIKE ''moh'''),
  (11, 'SELECT * FROM adv WHERE val LIKE ''moh''');
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT stmt FROM qs_workload, generate_series(1, 10) ORDER BY n \gexec
\o
\set ECHO all

-- The planner's cost of each statement with perfguard's indexes and with
-- pg_qualstats' (HypoPG, the statements with their constants):
-- perfguard's must never be costlier (1% tolerance).
CREATE FUNCTION qs_cost(stmt text, ddls text[]) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
  d text;
  j json;
BEGIN
  PERFORM hypopg_reset();
  FOREACH d IN ARRAY coalesce(ddls, '{}') LOOP
    PERFORM hypopg_create_index(d);
  END LOOP;
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || stmt INTO j;
  PERFORM hypopg_reset();
  RETURN (j->0->'Plan'->>'Total Cost')::float8;
END $$;
CREATE VIEW qs_compare AS
  SELECT w.n,
         qs_cost(w.stmt, (SELECT array_agg(ddl) FROM qs_advice))
           <= 1.01 * qs_cost(w.stmt, ARRAY[
                'CREATE INDEX ON public.adv USING btree (id1)',
                'CREATE INDEX ON public.adv USING btree (val, id1, id2, id3)',
                'CREATE INDEX ON public.pgqs USING btree (id)'])
           AS perfguard_no_costlier
    FROM qs_workload w
   ORDER BY w.n;

-- check the results.  The tables were never analysed (reltuples = -1):
-- perfguard sizes them with the planner's own estimate (issue 18, item 6).
-- It gives pg_qualstats' (val, id1, id2, id3) and pgqs (id), one index
-- for statements 3 to 7 as pg_qualstats proposes it, but not adv (id1):
-- for statements 1 and 2 (id1 < 0, id1 < 50000, without statistics a
-- third of the table) that index lowers the planner's cost by about 11%,
-- under perfguard's 30% bar, so qs_compare is false for those two only
-- (decided in issue 18: perfguard does not advise an index that saves
-- less than 30%; pg_qualstats' advisor does not cost its indexes).
SELECT * FROM qs_advice;
SELECT * FROM qs_compare;

-- the same workload once the tables are analysed.  perfguard advises
-- (val) where pg_qualstats has (val, id1, id2, id3): it serves every
-- statement that one serves, at no higher cost (qs_compare)
ANALYZE adv, pgqs;
SELECT * FROM qs_advice;
SELECT * FROM qs_compare;

-- pg_qualstats' unoptimised quals (adv.val ~~ ?, adv.val ~~* ?): no index
-- advised for them.  (An exact LIKE pattern is an equality: the planner
-- can serve LIKE 'moh' from an index on val, so an index advised for
-- statement 11 would be right too.)
SELECT w.n, w.stmt, count(a.ddl) AS indexes
  FROM qs_workload w
  LEFT JOIN LATERAL perfguard.advise(w.stmt) a ON a.kind = 'missing_index'
 WHERE w.n >= 9
 GROUP BY w.n, w.stmt ORDER BY w.n;

-- check quals on removed table
DROP TABLE pgqs;
SELECT * FROM qs_advice;

SELECT perfguard.reset();
DROP VIEW qs_compare, qs_advice;
DROP FUNCTION qs_cost(text, text[]);
DROP TABLE adv, qs_workload;
DROP EXTENSION hypopg;
