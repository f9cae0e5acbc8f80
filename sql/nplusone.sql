--
-- nplusone: N+1 variants with their fixes, duplicates, write loops,
-- requests, and the clean versions that must stay silent
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
CREATE TABLE np_author (id int PRIMARY KEY, name text);
CREATE TABLE np_publisher (id int PRIMARY KEY, name text);
CREATE TABLE np_essay (id int PRIMARY KEY, title text, body text,
                       created_by_id int REFERENCES np_author(id),
                       publisher_id int REFERENCES np_publisher(id));
CREATE TABLE np_scene (id int PRIMARY KEY, essay_id int REFERENCES np_essay(id),
                       title text, estimated_seconds int);
CREATE TABLE np_tag (id int PRIMARY KEY, name text);
CREATE TABLE np_essay_tags (id int PRIMARY KEY,
                            essay_id int REFERENCES np_essay(id),
                            tag_id int REFERENCES np_tag(id));
INSERT INTO np_author SELECT g, 'author ' || g FROM generate_series(1, 10) g;
INSERT INTO np_publisher SELECT g, 'pub ' || g FROM generate_series(1, 3) g;
INSERT INTO np_essay SELECT g, 'essay ' || g, 'body ' || g, 1 + g % 10, 1 + g % 3
  FROM generate_series(1, 20) g;
INSERT INTO np_scene SELECT g, 1 + g % 20, 'scene ' || g, g FROM generate_series(1, 60) g;
INSERT INTO np_tag SELECT g, 'tag ' || g FROM generate_series(1, 5) g;
INSERT INTO np_essay_tags SELECT g, 1 + g % 20, 1 + g % 5 FROM generate_series(1, 40) g;
SELECT perfguard.reset();

-- forward FK: essays, then each essay's author (Django essay.created_by)
SELECT perfguard.begin_request('/essays/');
SELECT id, title, created_by_id FROM np_essay ORDER BY id LIMIT 8;
SELECT id, name FROM np_author WHERE id = 2;
SELECT id, name FROM np_author WHERE id = 3;
SELECT id, name FROM np_author WHERE id = 4;
SELECT id, name FROM np_author WHERE id = 5;
SELECT id, name FROM np_author WHERE id = 6;
SELECT id, name FROM np_author WHERE id = 7;
SELECT id, name FROM np_author WHERE id = 8;
SELECT id, name FROM np_author WHERE id = 9;
SELECT queries, n_plus_one, duplicates, write_loops, total_ms >= 0 AS timed
  FROM perfguard.end_request();

-- reverse FK: each essay's scenes (essay.scenes.all())
SELECT perfguard.begin_request('/scenes/');
SELECT id, title FROM np_essay ORDER BY id LIMIT 6;
SELECT id, title FROM np_scene WHERE essay_id = 1;
SELECT id, title FROM np_scene WHERE essay_id = 2;
SELECT id, title FROM np_scene WHERE essay_id = 3;
SELECT id, title FROM np_scene WHERE essay_id = 4;
SELECT id, title FROM np_scene WHERE essay_id = 5;
SELECT id, title FROM np_scene WHERE essay_id = 6;
SELECT queries, n_plus_one, duplicates FROM perfguard.end_request();

-- many-to-many: each essay's tags (essay.tags.all())
SELECT perfguard.begin_request('/tags/');
SELECT id, title FROM np_essay ORDER BY id LIMIT 5;
SELECT t.id, t.name FROM np_tag t JOIN np_essay_tags et ON t.id = et.tag_id WHERE et.essay_id = 1;
SELECT t.id, t.name FROM np_tag t JOIN np_essay_tags et ON t.id = et.tag_id WHERE et.essay_id = 2;
SELECT t.id, t.name FROM np_tag t JOIN np_essay_tags et ON t.id = et.tag_id WHERE et.essay_id = 3;
SELECT t.id, t.name FROM np_tag t JOIN np_essay_tags et ON t.id = et.tag_id WHERE et.essay_id = 4;
SELECT t.id, t.name FROM np_tag t JOIN np_essay_tags et ON t.id = et.tag_id WHERE et.essay_id = 5;
SELECT queries, n_plus_one FROM perfguard.end_request();

-- deferred field loaded per row (.only('id', 'title') then essay.body)
SELECT perfguard.begin_request('/deferred/');
SELECT id, title FROM np_essay ORDER BY id LIMIT 5;
SELECT id, body FROM np_essay WHERE id = 1;
SELECT id, body FROM np_essay WHERE id = 2;
SELECT id, body FROM np_essay WHERE id = 3;
SELECT id, body FROM np_essay WHERE id = 4;
SELECT id, body FROM np_essay WHERE id = 5;
SELECT queries, n_plus_one FROM perfguard.end_request();

-- aggregate per row (essay.scenes.count())
SELECT perfguard.begin_request('/counts/');
SELECT id, title FROM np_essay ORDER BY id LIMIT 5;
SELECT count(*) FROM np_scene WHERE essay_id = 1;
SELECT count(*) FROM np_scene WHERE essay_id = 2;
SELECT count(*) FROM np_scene WHERE essay_id = 3;
SELECT count(*) FROM np_scene WHERE essay_id = 4;
SELECT count(*) FROM np_scene WHERE essay_id = 5;
SELECT queries, n_plus_one FROM perfguard.end_request();

SELECT route, parent_query, query, occurrences, total_repeats, max_repeats,
       max_distinct_params, table_name, column_name, suggestion
  FROM perfguard.n_plus_one ORDER BY route;

-- the clean versions: a JOIN (select_related), one IN (...) (prefetch_related),
-- annotate(Count()), no deferred field: no N+1
SELECT perfguard.reset();
SELECT perfguard.begin_request('/essays-good/');
SELECT e.id, e.title, a.name FROM np_essay e JOIN np_author a ON a.id = e.created_by_id ORDER BY e.id LIMIT 8;
SELECT id, title FROM np_essay ORDER BY id LIMIT 6;
SELECT id, essay_id, title FROM np_scene WHERE essay_id IN (1, 2, 3, 4, 5, 6);
SELECT e.id, count(s.id) FROM np_essay e LEFT JOIN np_scene s ON s.essay_id = e.id GROUP BY e.id ORDER BY e.id LIMIT 5;
SELECT id, title, body FROM np_essay ORDER BY id LIMIT 5;
SELECT queries, n_plus_one, duplicates, write_loops FROM perfguard.end_request();
SELECT count(*) AS findings FROM perfguard.findings
 WHERE category IN ('n_plus_one', 'duplicate', 'write_loop');

-- without a parent that returned several rows (a detail page, one row),
-- fewer than n_plus_one_threshold lookups are no N+1 ...
SELECT perfguard.begin_request('/few/');
SELECT id, created_by_id FROM np_essay WHERE id = 1;
SELECT id, name FROM np_author WHERE id = 1;
SELECT id, name FROM np_author WHERE id = 2;
SELECT id, name FROM np_author WHERE id = 3;
SELECT id, name FROM np_author WHERE id = 4;
SELECT n_plus_one FROM perfguard.end_request();
-- ... unless the threshold says so
SET perfguard.n_plus_one_threshold = 3;
SELECT perfguard.begin_request('/few/');
SELECT id, created_by_id FROM np_essay WHERE id = 1;
SELECT id, name FROM np_author WHERE id = 1;
SELECT id, name FROM np_author WHERE id = 2;
SELECT id, name FROM np_author WHERE id = 3;
SELECT n_plus_one FROM perfguard.end_request();
RESET perfguard.n_plus_one_threshold;
-- after a list that returned 4 rows, two lookups are already an N+1
-- (n_plus_one_linked_threshold), as Bullet and django-zeal say
SELECT perfguard.begin_request('/few-linked/');
SELECT id, created_by_id FROM np_essay ORDER BY id LIMIT 4;
SELECT id, name FROM np_author WHERE id = 1;
SELECT id, name FROM np_author WHERE id = 2;
SELECT n_plus_one FROM perfguard.end_request();
-- ... but not one lookup, nor two lookups of one list page that paginates
SELECT perfguard.begin_request('/few-linked/');
SELECT id, created_by_id FROM np_essay ORDER BY id LIMIT 4;
SELECT id, name FROM np_author WHERE id = 1;
SELECT id, title FROM np_essay ORDER BY id LIMIT 2 OFFSET 2;
SELECT id, title FROM np_essay ORDER BY id LIMIT 2 OFFSET 4;
SELECT n_plus_one FROM perfguard.end_request();

-- duplicates: the same author fetched three times (debug toolbar's
-- "duplicated" queries), plus 10 lookups of 4 distinct authors, which is an
-- N+1 (repeats 10, distinct 4 with threshold 4) and duplicates at once
SELECT perfguard.reset();
SELECT perfguard.begin_request('/dup/');
SELECT id, name FROM np_publisher WHERE id = 1;
SELECT id, name FROM np_publisher WHERE id = 1;
SELECT id, name FROM np_publisher WHERE id = 1;
SELECT id, created_by_id FROM np_essay ORDER BY id LIMIT 10;
SET perfguard.n_plus_one_threshold = 4;
SELECT id, name FROM np_author WHERE id = 1;
SELECT id, name FROM np_author WHERE id = 2;
SELECT id, name FROM np_author WHERE id = 3;
SELECT id, name FROM np_author WHERE id = 4;
SELECT id, name FROM np_author WHERE id = 1;
SELECT id, name FROM np_author WHERE id = 2;
SELECT id, name FROM np_author WHERE id = 3;
SELECT id, name FROM np_author WHERE id = 4;
SELECT id, name FROM np_author WHERE id = 1;
SELECT id, name FROM np_author WHERE id = 2;
RESET perfguard.n_plus_one_threshold;
SELECT queries, n_plus_one, duplicates FROM perfguard.end_request();
SELECT route, query, occurrences, total_duplicates, max_duplicates,
       suggestion LIKE '%run it once%' AS suggests_reuse
  FROM perfguard.duplicates ORDER BY query;
SELECT query, total_repeats, max_distinct_params FROM perfguard.n_plus_one;
SELECT query, calls, duplicate_calls, n_plus_one_calls FROM perfguard.statements
 WHERE query LIKE '%np_author%' OR query LIKE '%np_publisher%' ORDER BY query;

-- write loops: one INSERT / UPDATE / DELETE per row
SELECT perfguard.reset();
CREATE TABLE np_log (id int PRIMARY KEY, msg text);
SELECT perfguard.begin_request('/import/');
INSERT INTO np_log VALUES (1, 'a');
INSERT INTO np_log VALUES (2, 'b');
INSERT INTO np_log VALUES (3, 'c');
INSERT INTO np_log VALUES (4, 'd');
INSERT INTO np_log VALUES (5, 'e');
INSERT INTO np_log VALUES (6, 'f');
UPDATE np_log SET msg = 'x' WHERE id = 1;
UPDATE np_log SET msg = 'x' WHERE id = 2;
UPDATE np_log SET msg = 'x' WHERE id = 3;
UPDATE np_log SET msg = 'x' WHERE id = 4;
UPDATE np_log SET msg = 'x' WHERE id = 5;
DELETE FROM np_log WHERE id = 1;
DELETE FROM np_log WHERE id = 2;
DELETE FROM np_log WHERE id = 3;
DELETE FROM np_log WHERE id = 4;
DELETE FROM np_log WHERE id = 5;
SELECT queries, write_loops FROM perfguard.end_request();
-- the clean version: one multi-row INSERT (bulk_create), one UPDATE
SELECT perfguard.begin_request('/import-good/');
INSERT INTO np_log SELECT g, 'm' || g FROM generate_series(10, 20) g;
INSERT INTO np_log VALUES (30, 'a'), (31, 'b'), (32, 'c'), (33, 'd'), (34, 'e');
UPDATE np_log SET msg = 'y' WHERE id BETWEEN 10 AND 20;
SELECT queries, write_loops FROM perfguard.end_request();
SELECT route, query, command, occurrences, total_repeats, max_repeats,
       split_part(suggestion, ' / ', 2) AS django
  FROM perfguard.write_loops ORDER BY command;

-- per-route request statistics
SELECT route, requests, queries, mean_queries, max_queries,
       n_plus_one_requests, duplicate_requests, write_loop_requests
  FROM perfguard.requests WHERE route LIKE '/%' ORDER BY route;

-- the ranked checklist (severity follows the rank, by the measured time:
-- see sql/findings.sql)
SELECT category, route, severity IN ('high', 'medium', 'low') AS has_severity
  FROM perfguard.findings
 WHERE category IN ('n_plus_one', 'duplicate', 'write_loop') ORDER BY category, route;

-- end_request without begin_request is an error
SELECT * FROM perfguard.end_request();
SELECT perfguard.begin_request(repeat('x', 100));

DROP TABLE np_log, np_essay_tags, np_tag, np_scene, np_essay, np_publisher, np_author;
