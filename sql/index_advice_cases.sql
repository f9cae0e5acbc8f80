--
-- index_advice_cases: one regression test per item of issue 18 ("Index
-- advice that matches the best advisors, from the evidence of real
-- executions; no literal in memory").  Written before the fixes: the
-- expected output is the advice the issue asks for, so each case fails
-- until its fix lands.  Each case sets :q (and :q2) to its statements; the
-- lines between "\set ECHO none" and "\set ECHO all" (not echoed, their
-- output discarded) call perfguard.reset(), so that the case sees only its
-- own statements, and run each statement 10 times.
--
-- Advice is shown as the index its DDL builds: iac_index(ddl) runs the DDL
-- (without CONCURRENTLY, inside the function), reads the definition back
-- with pg_get_indexdef() and drops the index again; so the output does not
-- depend on how perfguard spells the DDL, only on the index it creates.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
SELECT perfguard.reset();
SET max_parallel_workers_per_gather = 0;
SET jit = off;

CREATE FUNCTION iac_index(ddl text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  before oid[];
  def text;
  idx regclass;
BEGIN
  SELECT array_agg(indexrelid) INTO before FROM pg_index;
  EXECUTE replace(ddl, ' CONCURRENTLY', '');
  SELECT i.indexrelid, pg_get_indexdef(i.indexrelid) INTO idx, def
    FROM pg_index i
   WHERE i.indexrelid <> ALL (before)
     AND NOT EXISTS (SELECT FROM pg_inherits h WHERE h.inhrelid = i.indexrelid);
  EXECUTE format('DROP INDEX %s', idx);
  RETURN regexp_replace(def, '^CREATE (UNIQUE )?INDEX \S+ ', '');
END $$;
-- the missing-index advice, as the indexes it builds
CREATE VIEW iac_advice AS
  SELECT table_name, iac_index(ddl) AS index
    FROM perfguard.index_advice
   WHERE kind = 'missing' AND NOT applied
   ORDER BY 1, 2;

--
-- 1. WHERE a = $1 ORDER BY b: the candidate (a, b) must be tried (today
-- build_candidates() resets the candidate it copies, so only (a) and (b)
-- are)
--
CREATE TABLE iac_ab (id int PRIMARY KEY, a int NOT NULL, b int NOT NULL, pad text);
INSERT INTO iac_ab
  SELECT g, g % 100, (g * 7919) % 100000, repeat('x', 20)
    FROM generate_series(1, 100000) g;
VACUUM ANALYZE iac_ab;
\set q 'SELECT id, b FROM iac_ab WHERE a = 7 ORDER BY b LIMIT 20'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM iac_advice;
-- advise() of the same statement
SELECT iac_index(ddl) AS index FROM perfguard.advise(:'q')
 WHERE kind = 'missing_index';

--
-- 2. ORDER BY 1 and GROUP BY 1 refer to a column, not to a constant: the
-- normalized text keeps them (as pg_stat_statements does); LIMIT and the
-- constants of the WHERE clause still become $n
--
\set q 'SELECT b FROM iac_ab ORDER BY 1 DESC LIMIT 10'
\set q2 'SELECT a, count(*) FROM iac_ab WHERE b > 5 GROUP BY 1 ORDER BY 1'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
SELECT :'q2' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT query, calls FROM perfguard.statements
 WHERE query LIKE '%iac_ab%' ORDER BY query;
-- and the ORDER BY 1 statement gets its index: (b, a), which also serves
-- the GROUP BY statement (an index-only scan of b > $1 that returns a);
-- the ORDER BY 1 DESC statement alone would get (b), a leading prefix
SELECT * FROM iac_advice;

--
-- 3. A rare value of a skewed column: 400 'pending' jobs among 200,000
-- 'done' ones.  The generic plan estimates status = $1 at half the table
-- (1 / n_distinct), where no index helps; the sampled execution shows a
-- Seq Scan that threw away 99.8% of the rows, and with the real value the
-- index is proven.
--
CREATE TABLE iac_jobs (id int PRIMARY KEY, status text NOT NULL, payload text);
INSERT INTO iac_jobs
  SELECT g, CASE WHEN g % 500 = 0 THEN 'pending' ELSE 'done' END, repeat('p', 30)
    FROM generate_series(1, 200000) g;
VACUUM ANALYZE iac_jobs;
SELECT status, count(*) FROM iac_jobs GROUP BY 1 ORDER BY 1;
-- advise() with the literal finds it ...
SELECT iac_index(ddl) AS index
  FROM perfguard.advise('SELECT id FROM iac_jobs WHERE status = ''pending''')
 WHERE kind = 'missing_index';
-- ... and so must the view, from the sampled executions
SET perfguard.slow_query_ms = 0;
\set q 'SELECT id FROM iac_jobs WHERE status = ''pending'''
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
RESET perfguard.slow_query_ms;
SELECT count(*) AS sampled FROM perfguard.slow_queries
 WHERE query LIKE '%iac_jobs%' AND plan IS NOT NULL;
SELECT * FROM iac_advice;

--
-- 4. Partitioned tables: one index on the partitioned table, proven across
-- all its partitions together.  With 3 partitions each partition's index
-- alone saves about a third; with 8, about an eighth (under the 30% bar).
--
CREATE TABLE iac_p3 (id int, ref int, pad text) PARTITION BY HASH (id);
CREATE TABLE iac_p3_0 PARTITION OF iac_p3 FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE iac_p3_1 PARTITION OF iac_p3 FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE iac_p3_2 PARTITION OF iac_p3 FOR VALUES WITH (MODULUS 3, REMAINDER 2);
INSERT INTO iac_p3 SELECT g, g % 20000, repeat('z', 20) FROM generate_series(1, 120000) g;
CREATE TABLE iac_p8 (id int, ref int, pad text) PARTITION BY HASH (id);
SELECT format('CREATE TABLE iac_p8_%s PARTITION OF iac_p8 FOR VALUES WITH (MODULUS 8, REMAINDER %s)', r, r)
  FROM generate_series(0, 7) r \gexec
INSERT INTO iac_p8 SELECT g, g % 20000, repeat('z', 20) FROM generate_series(1, 160000) g;
ANALYZE iac_p3, iac_p8;
\set q 'SELECT id FROM iac_p3 WHERE ref = 42'
\set q2 'SELECT id FROM iac_p8 WHERE ref = 42'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
SELECT :'q2' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM iac_advice;

--
-- 5. The join key of a big inner relation: one book by ISBN, then its
-- reviews; without review(book_id) every execution scans 200,000 reviews
--
CREATE TABLE iac_book (id int PRIMARY KEY, isbn text NOT NULL UNIQUE, title text);
INSERT INTO iac_book SELECT g, 'isbn-' || g, 'title ' || g FROM generate_series(1, 10000) g;
CREATE TABLE iac_review (id int PRIMARY KEY, book_id int NOT NULL, stars int, body text);
INSERT INTO iac_review
  SELECT g, (g * 7) % 10000 + 1, g % 5 + 1, repeat('r', 30)
    FROM generate_series(1, 200000) g;
VACUUM ANALYZE iac_book, iac_review;
\set q 'SELECT r.stars, r.body FROM iac_book b JOIN iac_review r ON r.book_id = b.id WHERE b.isbn = ''isbn-42'''
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM iac_advice;

--
-- 6. OR of two columns: neither index alone avoids the Seq Scan; the two
-- together make a BitmapOr
--
CREATE TABLE iac_people (id int PRIMARY KEY, email text NOT NULL, phone text NOT NULL, name text);
INSERT INTO iac_people
  SELECT g, 'user' || g || '@example.com', '+1-555-' || lpad(g::text, 7, '0'), 'name ' || g
    FROM generate_series(1, 100000) g;
VACUUM ANALYZE iac_people;
\set q 'SELECT id FROM iac_people WHERE email = ''user42@example.com'' OR phone = ''+1-555-0000043'''
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM iac_advice;

--
-- 7. A table that was never analysed and a materialized view (reltuples is
-- -1 for both; autovacuum is off so that they stay so): the planner's own
-- size estimate says they are big
--
CREATE TABLE iac_fresh (id int, k int, pad text) WITH (autovacuum_enabled = off);
INSERT INTO iac_fresh SELECT g, g % 10000, repeat('f', 20) FROM generate_series(1, 50000) g;
CREATE MATERIALIZED VIEW iac_mv WITH (autovacuum_enabled = off) AS
  SELECT id, k, pad FROM iac_fresh;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('iac_fresh', 'iac_mv') ORDER BY 1;
\set q 'SELECT id FROM iac_fresh WHERE k = 42'
\set q2 'SELECT id FROM iac_mv WHERE k = 42'
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
SELECT :'q2' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM iac_advice;

--
-- 8. lower(col) = ...: an expression index
--
CREATE TABLE iac_users (id int PRIMARY KEY, email text NOT NULL);
INSERT INTO iac_users SELECT g, 'User' || g || '@Example.com' FROM generate_series(1, 100000) g;
VACUUM ANALYZE iac_users;
\set q 'SELECT id FROM iac_users WHERE lower(email) = ''user42@example.com'''
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
SELECT * FROM iac_advice;

--
-- 9. LIKE 'prefix%' under a non-C collation: only a text_pattern_ops index
-- serves it.  A generic plan (LIKE $1) cannot use any index, so the view
-- needs the sampled executions; advise() has the literal.
--
CREATE TABLE iac_names (id int PRIMARY KEY, name text COLLATE "und-x-icu" NOT NULL);
INSERT INTO iac_names SELECT g, 'name' || g FROM generate_series(1, 100000) g;
VACUUM ANALYZE iac_names;
\set q 'SELECT id FROM iac_names WHERE name LIKE ''name4242%'''
SELECT iac_index(ddl) AS index FROM perfguard.advise(:'q')
 WHERE kind = 'missing_index';
SET perfguard.slow_query_ms = 0;
\set ECHO none
\o /dev/null
SELECT perfguard.reset();
SELECT :'q' FROM generate_series(1, 10) \gexec
\o
\set ECHO all
RESET perfguard.slow_query_ms;
SELECT * FROM iac_advice;

--
-- 10. Privacy: with capture_parameters off, no literal of a statement
-- reaches any view, plans and error messages included
--
CREATE TABLE iac_secret (id int PRIMARY KEY, v text NOT NULL, n int);
INSERT INTO iac_secret SELECT g, 'value ' || g, g % 100 FROM generate_series(1, 50000) g;
VACUUM ANALYZE iac_secret;
SET perfguard.capture_parameters = off;
SET perfguard.slow_query_ms = 0;
SET perfguard.offset_threshold = 10;
SET perfguard.unbounded_rows = 10;
SELECT perfguard.reset();
\set ECHO none
\o /dev/null
-- a slow-sampled Seq Scan whose filter has the literal
SELECT 'SELECT count(*) FROM iac_secret WHERE v = ''SECRET_LITERAL_9911''' FROM generate_series(1, 10) \gexec
-- in one request: an N+1 and a duplicate with the literal, a write loop,
-- a deep OFFSET and an unbounded result
SELECT perfguard.begin_request('/iac-secret/');
SELECT id FROM iac_secret WHERE n = 1 AND v <> 'SECRET_LITERAL_9911' ORDER BY id LIMIT 10;
SELECT format('SELECT v FROM iac_secret WHERE id = %s AND v <> ''SECRET_LITERAL_9911''', g)
  FROM generate_series(1, 8) g \gexec
SELECT 'SELECT n FROM iac_secret WHERE v = ''SECRET_LITERAL_9911''' FROM generate_series(1, 3) \gexec
SELECT format('UPDATE iac_secret SET n = n WHERE id = %s AND v <> ''SECRET_LITERAL_9911''', g)
  FROM generate_series(1, 6) g \gexec
SELECT id FROM iac_secret WHERE v <> 'SECRET_LITERAL_9911' ORDER BY id LIMIT 5 OFFSET 100;
SELECT id FROM iac_secret WHERE v <> 'SECRET_LITERAL_9911' AND n < 2;
SELECT perfguard.end_request();
\o
\set ECHO all
-- failing statements whose error messages carry the literal: a cast of a
-- constant fails while the statement is analysed, the next one while it
-- runs, the last one with the literal as a bound parameter
SELECT 'SECRET_LITERAL_9911'::int;
SELECT ('SECRET_LITERAL_9911' || n)::int FROM iac_secret WHERE id = 1;
PREPARE iac_cast(text, int) AS SELECT ($1 || n)::int FROM iac_secret WHERE id = $2;
EXECUTE iac_cast('SECRET_LITERAL_9911', 1);
DEALLOCATE iac_cast;
RESET perfguard.slow_query_ms;
RESET perfguard.offset_threshold;
RESET perfguard.unbounded_rows;
-- the workload left something in each place the literal could hide
SELECT count(*) > 0 AS has_plan FROM perfguard.slow_queries
 WHERE query LIKE '%iac_secret%' AND plan IS NOT NULL;
SELECT DISTINCT sqlstate FROM perfguard.errors ORDER BY 1;
SELECT (SELECT count(*) FROM perfguard.n_plus_one) > 0 AS n_plus_one,
       (SELECT count(*) FROM perfguard.duplicates) > 0 AS duplicates,
       (SELECT count(*) FROM perfguard.write_loops) > 0 AS write_loops,
       (SELECT count(*) FROM perfguard.offset_pagination) > 0 AS offsets,
       (SELECT count(*) FROM perfguard.plan_findings) > 0 AS plan_findings,
       (SELECT count(*) FROM perfguard.findings) > 0 AS findings;
-- the literal in the columns most likely to hold it
SELECT count(*) AS plan_leaks FROM perfguard.slow_queries
 WHERE plan LIKE '%SECRET_LITERAL%';
SELECT count(*) AS error_leaks FROM perfguard.errors
 WHERE message LIKE '%SECRET_LITERAL%';
SELECT count(*) AS detail_leaks FROM perfguard.plan_findings
 WHERE detail LIKE '%SECRET_LITERAL%' OR suggestion LIKE '%SECRET_LITERAL%';
-- and in any column of any view of the schema, and of the set-returning
-- functions under them (each row as text)
CREATE TEMP TABLE iac_sources AS
  SELECT 'view' AS kind, c.relname::text AS source,
         format('%s', c.oid::regclass) AS from_item
    FROM pg_class c
   WHERE c.relnamespace = 'perfguard'::regnamespace AND c.relkind = 'v'
  UNION ALL
  SELECT 'function', p.proname || '()', format('%s()', p.oid::regproc)
    FROM pg_proc p
   WHERE p.pronamespace = 'perfguard'::regnamespace AND p.pronargs = 0
     AND p.proname LIKE '\_%' AND p.prorettype = 'record'::regtype
  UNION ALL
  SELECT 'function', format('_findings_raw(%s)', k),
         format('perfguard._findings_raw(%s)', k)
    FROM generate_series(1, 4) k;
SELECT count(*) FILTER (WHERE kind = 'view') >= 20 AS views,
       count(*) FILTER (WHERE kind = 'function') >= 14 AS functions
  FROM iac_sources;
SELECT string_agg(format('SELECT %L AS source, count(*) AS leaks FROM %s r WHERE r::text LIKE ''%%SECRET_LITERAL%%''',
                         source, from_item), ' UNION ALL ' ORDER BY source) AS scan
  FROM iac_sources \gset
SELECT source, leaks FROM (:scan) s WHERE leaks > 0 ORDER BY source;
RESET perfguard.capture_parameters;

SELECT perfguard.reset();
DROP VIEW iac_advice;
DROP FUNCTION iac_index(text);
DROP TABLE iac_sources;
DROP TABLE iac_ab, iac_jobs, iac_p3, iac_p8, iac_book, iac_review, iac_people,
           iac_users, iac_names, iac_secret;
DROP MATERIALIZED VIEW iac_mv;
DROP TABLE iac_fresh;
