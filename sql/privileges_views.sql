--
-- privileges_views: a role that is neither superuser nor a member of
-- pg_read_all_stats sees the counters of other roles' statements in every
-- view, but never their text, parameters or plans; a member of
-- pg_read_all_stats sees them; reset() and cursor_secret stay closed.
-- (sql/privileges.sql covers perfguard.statements and the settings.)
--
CREATE EXTENSION IF NOT EXISTS perfguard;
SELECT perfguard.reset();
CREATE ROLE pfg_pv_owner LOGIN;
CREATE ROLE pfg_pv_other LOGIN;
CREATE TABLE pvv_author (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE pvv_book (id int PRIMARY KEY, author_id int REFERENCES pvv_author(id),
                       title text);
CREATE TABLE pvv_log (id int, note text);
INSERT INTO pvv_author SELECT g, 'pvv-secret-' || g FROM generate_series(1, 50) g;
INSERT INTO pvv_book SELECT g, g, 'book ' || g FROM generate_series(1, 50) g;
GRANT SELECT, INSERT ON pvv_author, pvv_book, pvv_log TO pfg_pv_owner, pfg_pv_other;

-- superuser-only settings set here stay in force after SET ROLE: every
-- statement gets a plan sample, findings keep example parameters
SET perfguard.capture_parameters = on;
SET perfguard.slow_query_ms = 0;
SET perfguard.offset_threshold = 10;
SET perfguard.unbounded_rows = 10;

-- the owner's request: an N+1, a duplicate, a write loop, a deep OFFSET, an
-- unbounded result; the secrets are in the parameters
SET ROLE pfg_pv_owner;
SELECT perfguard.begin_request('/pv-owner/');
SELECT id, author_id FROM pvv_book ORDER BY id LIMIT 5;
SELECT id FROM pvv_author WHERE name = 'pvv-secret-1';
SELECT id FROM pvv_author WHERE name = 'pvv-secret-2';
SELECT id FROM pvv_author WHERE name = 'pvv-secret-3';
SELECT id FROM pvv_author WHERE name = 'pvv-secret-4';
SELECT id FROM pvv_author WHERE name = 'pvv-secret-5';
SELECT id FROM pvv_author WHERE name = 'pvv-secret-5';
INSERT INTO pvv_log VALUES (1, 'pvv-secret-note');
INSERT INTO pvv_log VALUES (2, 'pvv-secret-note');
INSERT INTO pvv_log VALUES (3, 'pvv-secret-note');
INSERT INTO pvv_log VALUES (4, 'pvv-secret-note');
INSERT INTO pvv_log VALUES (5, 'pvv-secret-note');
SELECT id FROM pvv_author WHERE name <> 'pvv-secret-x' ORDER BY id LIMIT 1 OFFSET 40;
SELECT id FROM pvv_author WHERE name <> 'pvv-secret-x' ORDER BY id LIMIT 1 OFFSET 41;
SELECT name FROM pvv_book b JOIN pvv_author a ON a.id = b.author_id
 WHERE title <> 'pvv-secret-title' \g /dev/null
SELECT queries, n_plus_one, duplicates, write_loops FROM perfguard.end_request();
RESET ROLE;

-- What each view shows about the owner's statements: rows, and how many
-- of them carry text (query, parent query, parameters, plan, details).  A
-- view reads the store as its caller, so the same query answers for the
-- superuser, the other role and the pg_read_all_stats member.
CREATE VIEW pvv_visible AS
  SELECT 'statements' AS view, count(*) AS n, count(query) AS texts
    FROM perfguard.statements WHERE userid = to_regrole('pfg_pv_owner')
  UNION ALL
  SELECT 'n_plus_one', count(*),
         count(query) + count(parent_query) + count(example_params) + count(suggestion)
    FROM perfguard.n_plus_one WHERE userid = to_regrole('pfg_pv_owner')
  UNION ALL
  SELECT 'duplicates', count(*), count(query) + count(example_params)
    FROM perfguard.duplicates WHERE userid = to_regrole('pfg_pv_owner')
  UNION ALL
  SELECT 'write_loops', count(*), count(query) + count(example_params)
    FROM perfguard.write_loops WHERE userid = to_regrole('pfg_pv_owner')
  UNION ALL
  SELECT 'slow_queries', count(*), count(query) + count(plan)
    FROM perfguard.slow_queries WHERE userid = to_regrole('pfg_pv_owner')
  UNION ALL
  SELECT 'plan_findings', count(*), count(query)
    FROM perfguard.plan_findings WHERE userid = to_regrole('pfg_pv_owner')
  UNION ALL
  -- without the text, the suggestion is the generic one
  SELECT 'offset_pagination', count(*),
         count(query) + count(*) FILTER (WHERE suggestion NOT LIKE
           'replace OFFSET with a keyset predicate on the ORDER BY columns: WHERE (sort_key, id) >%')
    FROM perfguard.offset_pagination WHERE userid = to_regrole('pfg_pv_owner')
  UNION ALL
  SELECT 'requests', count(*), 0
    FROM perfguard.requests WHERE userid = to_regrole('pfg_pv_owner')
  UNION ALL
  SELECT 'findings', count(*), count(query)
    FROM perfguard.findings
   WHERE queryid IN (SELECT queryid FROM perfguard._statements()
                      WHERE userid = to_regrole('pfg_pv_owner'));
GRANT SELECT ON pvv_visible TO PUBLIC;

-- No literal of the owner's statements anywhere, in any column of any view.
CREATE VIEW pvv_leaks AS
  SELECT v.view, count(*) AS leaks
    FROM (SELECT 'statements' AS view, s::text AS t FROM perfguard.statements s
          UNION ALL SELECT 'n_plus_one', s::text FROM perfguard.n_plus_one s
          UNION ALL SELECT 'duplicates', s::text FROM perfguard.duplicates s
          UNION ALL SELECT 'write_loops', s::text FROM perfguard.write_loops s
          UNION ALL SELECT 'slow_queries', s::text FROM perfguard.slow_queries s
          UNION ALL SELECT 'plan_findings', s::text FROM perfguard.plan_findings s
          UNION ALL SELECT 'offset_pagination', s::text FROM perfguard.offset_pagination s
          UNION ALL SELECT 'requests', s::text FROM perfguard.requests s
          UNION ALL SELECT 'findings', s::text FROM perfguard.findings s
          UNION ALL SELECT 'index_advice', s::text FROM perfguard.index_advice s) v
   WHERE v.t LIKE '%pvv-secret%'
   GROUP BY v.view;
GRANT SELECT ON pvv_leaks TO PUBLIC;

-- the superuser sees the owner's text everywhere
SELECT view, n > 0 AS has_rows, texts > 0 AS has_text FROM pvv_visible;
SELECT view, leaks > 0 AS shows_parameters FROM pvv_leaks ORDER BY view;

-- another role sees the same rows and counters, and no text at all
SET ROLE pfg_pv_other;
SELECT view, n > 0 AS has_rows, texts FROM pvv_visible;
SELECT * FROM pvv_leaks ORDER BY view;
SELECT route, occurrences, total_repeats, max_repeats, max_distinct_params
  FROM perfguard.n_plus_one WHERE userid = 'pfg_pv_owner'::regrole;
SELECT route, total_duplicates FROM perfguard.duplicates
 WHERE userid = 'pfg_pv_owner'::regrole;
SELECT route, command, total_repeats FROM perfguard.write_loops
 WHERE userid = 'pfg_pv_owner'::regrole;
SELECT max_offset, calls FROM perfguard.offset_pagination
 WHERE userid = 'pfg_pv_owner'::regrole;
-- it cannot reset, nor read the cursor secret by any route
SELECT perfguard.reset();
SELECT current_setting('perfguard.cursor_secret');
SELECT count(*) AS secret_rows FROM pg_settings WHERE name = 'perfguard.cursor_secret';
-- nor turn capture or plan sampling on for itself
SET perfguard.slow_query_ms = 0;
RESET ROLE;

-- a member of pg_read_all_stats sees everything
GRANT pg_read_all_stats TO pfg_pv_other;
SET ROLE pfg_pv_other;
SELECT view, n > 0 AS has_rows, texts > 0 AS has_text FROM pvv_visible;
RESET ROLE;
REVOKE pg_read_all_stats FROM pfg_pv_other;

RESET perfguard.capture_parameters;
RESET perfguard.slow_query_ms;
RESET perfguard.offset_threshold;
RESET perfguard.unbounded_rows;
SELECT perfguard.reset();
DROP VIEW pvv_visible, pvv_leaks;
DROP TABLE pvv_book, pvv_author, pvv_log;
DROP ROLE pfg_pv_owner;
DROP ROLE pfg_pv_other;
