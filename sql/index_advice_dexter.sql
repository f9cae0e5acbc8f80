--
-- index_advice_dexter: the test cases of Dexter, the automatic indexer
-- (github.com/ankane/dexter, test/statement_test.rb, input_test.rb,
-- create_test.rb, batching_test.rb; schema and data from
-- test/support/schema.sql), ported to perfguard.
--
-- Dexter explains each statement with HypoPG and prints "Index found:
-- schema.table (columns)".  Here each case sets :q to its statement; the
-- lines between "\set ECHO none" and "\set ECHO all" (not echoed, their
-- output discarded) call perfguard.reset(), so that the case sees only its
-- own statements, and run :q 10 times, so that perfguard records it.  Then
-- dx_advice prints the missing-index rows of perfguard.index_advice in
-- Dexter's notation.
--
-- The comment "-- dexter:" above each case is the answer Dexter's test
-- expects.  Where perfguard answers differently, the expected output keeps
-- Dexter's answer and the test fails until the advisor gives it (issue 18),
-- except where perfguard's index is one the planner costs lower, which a
-- HypoPG comparison right after the case shows (the issue accepts that).
--
-- Not ported: Dexter's command-line options (--include, --exclude,
-- --min-cost, --min-cost-savings-pct, --analyze, --tablespace, log levels,
-- input formats), which perfguard has no counterpart for, and the counts of
-- hypothetical indexes Dexter tries internally.  Changed for a shared
-- regression database: the foreign server is dx_other (Dexter: other), and
-- autovacuum is off for the tables whose statistics must stay as the test
-- left them.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
RESET client_min_messages;
SELECT perfguard.reset();

-- Dexter's schema.  100,000 posts: id unique, blog_id 1,000 values,
-- user_id 10 values, indexed unique and indexed.
CREATE TABLE posts (
  id int,
  blog_id int,
  user_id int,
  json json,
  jsonb jsonb,
  hstore hstore,
  point point,
  indexed int);
INSERT INTO posts (id, blog_id, user_id, indexed)
  SELECT n, n % 1000, n % 10, n FROM generate_series(1, 100000) n;
CREATE INDEX ON posts (indexed);
CREATE VIEW posts_view AS SELECT id AS view_id FROM posts;
-- never analysed, as in Dexter's schema (autovacuum off so that it stays so)
CREATE MATERIALIZED VIEW posts_materialized WITH (autovacuum_enabled = off)
  AS SELECT * FROM posts;
ANALYZE posts;
-- autovacuum off: the rolled-back UPDATEs at the end must not re-analyse it
ALTER TABLE posts SET (autovacuum_enabled = off);
CREATE TABLE blogs (id int PRIMARY KEY);
INSERT INTO blogs (id) SELECT n FROM generate_series(1, 1000) n;
ANALYZE blogs;
-- 100,000 events in 3 hash partitions of about 33,000 rows each
CREATE TABLE events (id int, blog_id int) PARTITION BY HASH (blog_id);
CREATE TABLE events_0 PARTITION OF events FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE events_1 PARTITION OF events FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE events_2 PARTITION OF events FOR VALUES WITH (MODULUS 3, REMAINDER 2);
INSERT INTO events (id, blog_id) SELECT n, n FROM generate_series(1, 100000) n;
ANALYZE events;
CREATE SCHEMA "Bar";
CREATE TABLE "Bar"."Foo" ("Id" int);
INSERT INTO "Bar"."Foo" SELECT * FROM generate_series(1, 100000);
ANALYZE "Bar"."Foo";
CREATE SERVER dx_other FOREIGN DATA WRAPPER postgres_fdw;
CREATE FOREIGN TABLE comments (post_id int) SERVER dx_other;
SELECT relname, reltuples FROM pg_class
 WHERE relname IN ('posts', 'posts_materialized') ORDER BY relname;

-- perfguard's missing-index advice in Dexter's notation: the DDL without
-- CREATE INDEX (the columns array has no ASC/DESC; Dexter prints names
-- unquoted)
CREATE VIEW dx_advice AS
  SELECT regexp_replace(ddl, '^CREATE INDEX (CONCURRENTLY )?ON ', '') AS index
    FROM perfguard.index_advice
   WHERE kind = 'missing' AND NOT applied
   ORDER BY 1;
-- the planner's cost of a statement with one hypothetical index (or none)
CREATE FUNCTION dx_cost(stmt text, idx text) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
  j json;
BEGIN
  PERFORM hypopg_reset();
  IF idx IS NOT NULL THEN
    PERFORM hypopg_create_index(idx);
  END IF;
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || stmt INTO j;
  PERFORM hypopg_reset();
  RETURN (j->0->'Plan'->>'Total Cost')::float8;
END $$;

--
-- statement_test.rb
--
-- test_basic_index; dexter: public.posts (id)
\set q 'SELECT * FROM posts WHERE id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_basic_no_index; dexter: none
\set q 'SELECT * FROM posts'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_multicolumn; dexter: public.posts (user_id, blog_id)
\set q 'SELECT * FROM posts WHERE user_id = 1 AND blog_id = 2'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_multicolumn_3pass; dexter: public.posts (blog_id)
-- perfguard: public.posts (user_id, blog_id), which the planner costs lower
\set q 'SELECT * FROM posts WHERE user_id = 1 AND blog_id < 10'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;
SELECT dx_cost(:'q', 'CREATE INDEX ON posts (user_id, blog_id)')
         < dx_cost(:'q', 'CREATE INDEX ON posts (blog_id)') AS perfguard_cheaper;

-- test_multicolumn_order; dexter: public.posts (user_id, blog_id)
-- (issue 18, item 1: the (equality, order) candidate is never tried)
\set q 'SELECT * FROM posts WHERE user_id = 1 ORDER BY blog_id LIMIT 1000'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_join; dexter: public.posts (blog_id)
\set q 'SELECT * FROM posts INNER JOIN blogs ON blogs.id = posts.blog_id WHERE blogs.id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_view; dexter: public.posts (id)
\set q 'SELECT * FROM posts_view WHERE view_id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_materialized_view; dexter: public.posts_materialized (id)
-- (reltuples = -1: issue 18, item 6)
\set q 'SELECT * FROM posts_materialized WHERE id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_missing_table; dexter: none.  A statement that fails is counted in
-- perfguard.errors and never stored as a statement: one run is enough.
SELECT perfguard.reset();
SELECT * FROM missing;
SELECT * FROM dx_advice;

-- test_partitioned_table; dexter: public.events (blog_id)
-- (issue 18, item 4: one index on the parent, not one per partition)
\set q 'SELECT * FROM events WHERE blog_id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_partitioned_table_and_partition; dexter: public.events (blog_id) and
-- public.events_0 (blog_id), which its test marks "TODO fix": the parent's
-- index creates events_0's.  perfguard gives the fixed answer (decided in
-- issue 18): the statement on events_0 is served by the index on events,
-- so it is one row, public.events (blog_id), serving both statements.
\set q 'SELECT * FROM events WHERE blog_id = 1'
\set q2 'SELECT * FROM events_0 WHERE blog_id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
SELECT :'q2' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_foreign_table; dexter: none.  Running the statement would connect
-- to the foreign server, so advise() plans it without running it.
SELECT kind, relation, ddl
  FROM perfguard.advise('SELECT * FROM comments WHERE post_id = 1');

-- test_cte; dexter: public.posts (id)
\set q 'WITH cte AS (SELECT * FROM posts WHERE id = 1) SELECT * FROM cte'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_cte_fence; dexter: public.posts (id)
\set q 'WITH cte AS (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_materialized_cte; dexter: none
\set q 'WITH cte AS MATERIALIZED (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_not_materialized_cte; dexter: public.posts (id)
\set q 'WITH cte AS NOT MATERIALIZED (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_order; dexter: public.posts (user_id)
\set q 'SELECT * FROM posts ORDER BY user_id DESC LIMIT 10'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_order_column_number; dexter: public.posts (user_id)
-- (issue 18, item 2: ORDER BY 1 is stored as ORDER BY $1)
\set q 'SELECT user_id FROM posts ORDER BY 1 DESC LIMIT 10'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_order_column_number_star; dexter: none, which its test calls "not
-- ideal": ORDER BY 1 is id, and an index on (id) is what the planner costs
-- lower (checked below); expected here: public.posts (id)
-- (issue 18, item 2 as well)
\set q 'SELECT * FROM posts ORDER BY 1 DESC LIMIT 10'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;
SELECT dx_cost(:'q', 'CREATE INDEX ON posts (id)') < dx_cost(:'q', NULL) AS cheaper_than_none;

-- test_order_column_alias; dexter: public.posts (user_id)
\set q 'SELECT user_id AS u FROM posts ORDER BY u DESC LIMIT 10'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_order_multiple; dexter: public.posts (user_id, blog_id)
\set q 'SELECT * FROM posts ORDER BY user_id, blog_id LIMIT 10'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_order_multiple_direction (skipped in Dexter's suite); dexter:
-- public.posts (user_id DESC, blog_id)
\set q 'SELECT * FROM posts ORDER BY user_id DESC, blog_id LIMIT 10'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_schema; dexter: Bar.Foo (Id) (perfguard quotes the names, as SQL needs)
\set q 'SELECT * FROM "Bar"."Foo" WHERE "Id" = 10000'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_normalized; dexter: public.posts (id).  The statement has a
-- parameter: prepared and executed 10 times, and given to advise() as is.
PREPARE dx_normalized(int) AS SELECT * FROM posts WHERE id = $1;
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT format('EXECUTE dx_normalized(%s)', g) FROM generate_series(1, 10) g \gexec
\o
\set ECHO all
DEALLOCATE dx_normalized;
SELECT * FROM dx_advice;
SELECT relation, ddl FROM perfguard.advise('SELECT * FROM posts WHERE id = $1')
 WHERE kind = 'missing_index';

-- test_no_tables; dexter: none
\set q 'SELECT 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_information_schema, test_pg_catalog, test_pg_index; dexter: none
\set q 'SELECT * FROM information_schema.tables'
\set q2 'SELECT * FROM pg_catalog.pg_index'
\set q3 'SELECT * FROM pg_index'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
SELECT :'q2' FROM generate_series(1, 10) \gexec
SELECT :'q3' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_parse_error, test_explain_error; dexter: none (failing statements,
-- run once: see test_missing_table)
SELECT perfguard.reset();
SELECT +;
SELECT bad FROM posts;
SELECT * FROM dx_advice;

-- test_indexed; dexter: none
\set q 'SELECT * FROM posts WHERE indexed = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

--
-- input_test.rb
--
-- test_multiple_statements; dexter: public.posts (id) and public.posts (user_id)
\set q 'SELECT * FROM posts WHERE id = 1'
\set q2 'SELECT * FROM posts WHERE user_id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
SELECT :'q2' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_pg_stat_statements; dexter: public.posts (id).  The REFRESH of the
-- materialized view in the workload is no statement to advise on.
\set q 'SELECT * FROM posts WHERE id = 1'
\set q2 'REFRESH MATERIALIZED VIEW posts_materialized'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT unnest(ARRAY[:'q', :'q2']) FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

--
-- create_test.rb: the DDL of the advice runs as given
--
-- test_create; dexter: CREATE INDEX CONCURRENTLY ON "public"."posts" ("id")
\set q 'SELECT * FROM posts WHERE id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT ddl FROM perfguard.index_advice WHERE kind = 'missing' AND NOT applied \gexec
SELECT indexdef FROM pg_indexes WHERE tablename = 'posts' ORDER BY 1;
EXPLAIN (COSTS OFF) SELECT * FROM posts WHERE id = 1;
DROP INDEX posts_id_idx;

-- test_partitioned_table_non_concurrently; dexter: CREATE INDEX ON
-- "public"."events" ("blog_id") (and an error for CONCURRENTLY, which a
-- partitioned table does not support).  The advised DDL, run as given
-- (not echoed: how it is spelled is up to the advisor), must build an
-- index on the parent, with the partitions' indexes attached to it.
\set q 'SELECT * FROM events WHERE blog_id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
SELECT ddl FROM perfguard.index_advice WHERE kind = 'missing' AND NOT applied \gexec
\set ECHO all
SELECT c.relname AS table_name,
       regexp_replace(pg_get_indexdef(i.indexrelid), '^CREATE INDEX \S+ ', '') AS index,
       EXISTS (SELECT FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) AS attached
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relname LIKE 'events%' ORDER BY 1;
-- drop them (the parent's index takes the partitions' along)
\set ECHO none
SELECT format('DROP INDEX %s', i.indexrelid::regclass)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relname LIKE 'events%'
   AND NOT EXISTS (SELECT FROM pg_inherits h WHERE h.inhrelid = i.indexrelid) \gexec
\set ECHO all

-- test_partition; dexter: CREATE INDEX CONCURRENTLY ON "public"."events_0" ("blog_id")
\set q 'SELECT * FROM events_0 WHERE blog_id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT ddl FROM perfguard.index_advice WHERE kind = 'missing' AND NOT applied \gexec
SELECT indexdef FROM pg_indexes WHERE tablename LIKE 'events%' ORDER BY 1;
DROP INDEX events_0_blog_id_idx;

--
-- batching_test.rb
--
-- test_many_columns; dexter: an index (its test names none) on t, a table of
-- 100 int columns and 2,000 rows, never analysed, for a filter on all 100
-- columns.  This fails as long as perfguard leaves tables under its
-- big-table threshold (PFG_BIG_TABLE_ROWS, 10,000 rows) alone.
CREATE TABLE t (
  c00 int, c01 int, c02 int, c03 int, c04 int, c05 int, c06 int, c07 int, c08 int, c09 int,
  c10 int, c11 int, c12 int, c13 int, c14 int, c15 int, c16 int, c17 int, c18 int, c19 int,
  c20 int, c21 int, c22 int, c23 int, c24 int, c25 int, c26 int, c27 int, c28 int, c29 int,
  c30 int, c31 int, c32 int, c33 int, c34 int, c35 int, c36 int, c37 int, c38 int, c39 int,
  c40 int, c41 int, c42 int, c43 int, c44 int, c45 int, c46 int, c47 int, c48 int, c49 int,
  c50 int, c51 int, c52 int, c53 int, c54 int, c55 int, c56 int, c57 int, c58 int, c59 int,
  c60 int, c61 int, c62 int, c63 int, c64 int, c65 int, c66 int, c67 int, c68 int, c69 int,
  c70 int, c71 int, c72 int, c73 int, c74 int, c75 int, c76 int, c77 int, c78 int, c79 int,
  c80 int, c81 int, c82 int, c83 int, c84 int, c85 int, c86 int, c87 int, c88 int, c89 int,
  c90 int, c91 int, c92 int, c93 int, c94 int, c95 int, c96 int, c97 int, c98 int, c99 int)
  WITH (autovacuum_enabled = off);
SELECT format('INSERT INTO t SELECT %s FROM generate_series(1, 2000) n',
              string_agg('n', ', ')) AS ins
  FROM generate_series(0, 99) \gset
SELECT format('SELECT * FROM t WHERE %s',
              string_agg(format('c%s = 1', lpad(i::text, 2, '0')), ' AND ' ORDER BY i)) AS q
  FROM generate_series(0, 99) i \gset
:ins;
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT count(*) > 0 AS index_found FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 't';

--
-- statement_test.rb, the writes: each runs in a transaction that is rolled
-- back, so that the data stays as it was
--
-- test_update; dexter: public.posts (user_id)
\set q 'UPDATE posts SET user_id = 2 WHERE user_id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT unnest(ARRAY['BEGIN', :'q', 'ROLLBACK']) FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

-- test_delete; dexter: public.posts (user_id)
\set q 'DELETE FROM posts WHERE user_id = 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT unnest(ARRAY['BEGIN', :'q', 'ROLLBACK']) FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM dx_advice;

SELECT perfguard.reset();
DROP VIEW dx_advice;
DROP FUNCTION dx_cost(text, text);
DROP TABLE posts, blogs, events, t CASCADE;
DROP SCHEMA "Bar" CASCADE;
DROP FOREIGN TABLE comments;
DROP SERVER dx_other;
DROP EXTENSION hypopg;
