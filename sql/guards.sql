--
-- guards: on_n_plus_one, on_duplicate, max_queries_per_request
-- (the database-side assertNumQueries)
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
CREATE TABLE gd_author (id int PRIMARY KEY, name text);
CREATE TABLE gd_essay (id int PRIMARY KEY, created_by_id int REFERENCES gd_author(id));
INSERT INTO gd_author SELECT g, 'a' || g FROM generate_series(1, 10) g;
INSERT INTO gd_essay SELECT g, g FROM generate_series(1, 10) g;
SELECT perfguard.reset();
\set SHOW_CONTEXT never

-- error: the statement that crosses the threshold fails, with the fix as hint
SET perfguard.on_n_plus_one = 'error';
SELECT perfguard.begin_request('/guarded/');
SELECT id, created_by_id FROM gd_essay;
SELECT name FROM gd_author WHERE id = 1;
SELECT name FROM gd_author WHERE id = 2;
SELECT name FROM gd_author WHERE id = 3;
SELECT name FROM gd_author WHERE id = 4;
SELECT name FROM gd_author WHERE id = 5;
\echo :LAST_ERROR_SQLSTATE
-- only once per request: the loop may go on (the test has failed already)
SELECT name FROM gd_author WHERE id = 6;
SELECT queries, n_plus_one FROM perfguard.end_request();
-- the clean version passes
SELECT perfguard.begin_request('/guarded-good/');
SELECT e.id, a.name FROM gd_essay e JOIN gd_author a ON a.id = e.created_by_id ORDER BY e.id LIMIT 3;
SELECT queries, n_plus_one FROM perfguard.end_request();

-- warning: the statement runs, with a WARNING
SET perfguard.on_n_plus_one = 'warning';
SELECT perfguard.begin_request('/warned/');
SELECT id, created_by_id FROM gd_essay;
SELECT name FROM gd_author WHERE id = 1;
SELECT name FROM gd_author WHERE id = 2;
SELECT name FROM gd_author WHERE id = 3;
SELECT name FROM gd_author WHERE id = 4;
SELECT name FROM gd_author WHERE id = 5;
SELECT queries, n_plus_one FROM perfguard.end_request();
RESET perfguard.on_n_plus_one;

-- duplicates
SET perfguard.on_duplicate = 'error';
SELECT perfguard.begin_request('/dup/');
SELECT name FROM gd_author WHERE id = 7;
SELECT name FROM gd_author WHERE id = 7;
\echo :LAST_ERROR_SQLSTATE
SELECT duplicates FROM perfguard.end_request();
RESET perfguard.on_duplicate;

-- too many queries per request
SET perfguard.max_queries_per_request = 3;
SET perfguard.on_too_many_queries = 'error';
SELECT perfguard.begin_request('/busy/');
SELECT 1;
SELECT 2;
SELECT 3;
SELECT 4;
\echo :LAST_ERROR_SQLSTATE
SELECT queries FROM perfguard.end_request();
RESET perfguard.max_queries_per_request;
RESET perfguard.on_too_many_queries;

-- with the guards off (the default) nothing fails
SELECT perfguard.begin_request('/free/');
SELECT id, created_by_id FROM gd_essay;
SELECT name FROM gd_author WHERE id = 1;
SELECT name FROM gd_author WHERE id = 2;
SELECT name FROM gd_author WHERE id = 3;
SELECT name FROM gd_author WHERE id = 4;
SELECT name FROM gd_author WHERE id = 5;
SELECT queries, n_plus_one FROM perfguard.end_request();


-- collect: the request finishes, then one failure lists every finding
-- with its statement, count, parent and fix
CREATE TABLE gd_tag (id int PRIMARY KEY, name text);
INSERT INTO gd_tag SELECT g, 't' || g FROM generate_series(1, 10) g;
SET perfguard.on_n_plus_one = 'collect';
SET perfguard.on_duplicate = 'collect';
SELECT perfguard.begin_request('/collected/');
SELECT id, created_by_id FROM gd_essay ORDER BY id LIMIT 3;
SELECT name FROM gd_author WHERE id = 1;
SELECT name FROM gd_author WHERE id = 2;
SELECT name FROM gd_author WHERE id = 3;
SELECT name FROM gd_tag WHERE id = 1;
SELECT name FROM gd_tag WHERE id = 2;
SELECT name FROM gd_tag WHERE id = 3;
SELECT name FROM gd_author WHERE id = 1;
SELECT queries FROM perfguard.end_request();
-- nothing left after the failure; perfguard.collected() reads them instead
SELECT count(*) AS left_over FROM perfguard.collected();
SELECT perfguard.begin_request('/collected/');
SELECT id, created_by_id FROM gd_essay ORDER BY id LIMIT 3;
SELECT name FROM gd_author WHERE id = 1;
SELECT name FROM gd_author WHERE id = 2;
SELECT kind, route, query, count, distinct_params, parent_query IS NOT NULL AS has_parent,
       suggestion LIKE '%select_related(''created_by'')%' AS names_relation
  FROM perfguard.collected();
SELECT perfguard.check_collected();
-- a duplicate now: check_collected() fails with PF004
SELECT name FROM gd_author WHERE id = 1;
DO $$ BEGIN PERFORM perfguard.check_collected();
EXCEPTION WHEN SQLSTATE 'PF004' THEN RAISE NOTICE 'check_collected failed with PF004: %', SQLERRM; END $$;
SELECT queries FROM perfguard.end_request();
RESET perfguard.on_n_plus_one;
RESET perfguard.on_duplicate;
DROP TABLE gd_tag, gd_essay, gd_author;
