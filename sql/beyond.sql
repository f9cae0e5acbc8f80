--
-- beyond: suppression, failed statements, latency percentiles, time windows
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
CREATE TABLE by_author (id int PRIMARY KEY, name text);
CREATE TABLE by_book (id int PRIMARY KEY, author_id int REFERENCES by_author(id));
INSERT INTO by_author SELECT g, 'a' || g FROM generate_series(1, 10) g;
INSERT INTO by_book SELECT g, g FROM generate_series(1, 10) g;
SELECT perfguard.reset();
\set SHOW_CONTEXT never

-- an N+1 ...
SELECT perfguard.begin_request('/a/');
SELECT id, author_id FROM by_book;
SELECT name FROM by_author WHERE id = 1;
SELECT name FROM by_author WHERE id = 2;
SELECT name FROM by_author WHERE id = 3;
SELECT name FROM by_author WHERE id = 4;
SELECT name FROM by_author WHERE id = 5;
SELECT n_plus_one FROM perfguard.end_request();
SELECT route, query FROM perfguard.n_plus_one;

-- ... suppressed by fingerprint: gone from the to-do views, still counted
SELECT perfguard.ignore(queryid, 'author cache warms up here') FROM perfguard.n_plus_one;
SELECT count(*) AS n_plus_one FROM perfguard.n_plus_one;
SELECT count(*) AS findings FROM perfguard.findings WHERE category = 'n_plus_one';
SELECT category, route, query, reason, suppressed_by, occurrences, total_repeats
  FROM perfguard.ignored;
SELECT kind, queryid IS NOT NULL AS has_queryid, route, reason FROM perfguard.ignore_rules;

-- a suppressed finding never triggers the guard, nor flags the request
SET perfguard.on_n_plus_one = 'error';
SELECT perfguard.begin_request('/a/');
SELECT id, author_id FROM by_book;
SELECT name FROM by_author WHERE id = 1;
SELECT name FROM by_author WHERE id = 2;
SELECT name FROM by_author WHERE id = 3;
SELECT name FROM by_author WHERE id = 4;
SELECT name FROM by_author WHERE id = 5;
SELECT queries, n_plus_one FROM perfguard.end_request();
SELECT route, requests, n_plus_one_requests FROM perfguard.requests WHERE route = '/a/';
SELECT occurrences, total_repeats FROM perfguard.ignored;

-- rules are configuration: reset() keeps them
SELECT perfguard.reset();
SELECT count(*) AS rules FROM perfguard.ignore_rules;
SELECT perfguard.unignore(queryid) FROM perfguard.ignore_rules;
SELECT perfguard.unignore(42);

-- suppressed by route
SELECT perfguard.ignore_route('/admin/', 'internal page');
SELECT perfguard.begin_request('/admin/');
SELECT id, author_id FROM by_book;
SELECT name FROM by_author WHERE id = 1;
SELECT name FROM by_author WHERE id = 2;
SELECT name FROM by_author WHERE id = 3;
SELECT name FROM by_author WHERE id = 4;
SELECT name FROM by_author WHERE id = 5;
SELECT n_plus_one FROM perfguard.end_request();
SELECT category, route, reason, suppressed_by FROM perfguard.ignored;
SELECT perfguard.unignore_route('/admin/');

-- suppressed in-band, with a sqlcommenter key on the statement
SELECT perfguard.reset();
SELECT perfguard.begin_request('/inband/');
SELECT id, author_id FROM by_book;
SELECT name FROM by_author WHERE id = 1 /*perfguard='ignore'*/;
SELECT name FROM by_author WHERE id = 2 /*perfguard='ignore'*/;
SELECT name FROM by_author WHERE id = 3 /*perfguard='ignore'*/;
SELECT name FROM by_author WHERE id = 4 /*perfguard='ignore'*/;
SELECT name FROM by_author WHERE id = 5 /*perfguard='ignore'*/;
SELECT n_plus_one FROM perfguard.end_request();
SELECT category, route, reason, suppressed_by FROM perfguard.ignored;
SELECT count(*) AS n_plus_one FROM perfguard.n_plus_one;
RESET perfguard.on_n_plus_one;

-- bad input
SELECT perfguard.ignore(NULL);
SELECT perfguard.ignore_route('');
SELECT perfguard.ignore_route(repeat('r', 100));
SELECT perfguard.ignore(1, repeat('x', 200));

-- capture_parameters: one example parameter set per finding, from the
-- statement's constants or from bound parameters (off by default: values
-- never reach shared memory)
SELECT perfguard.reset();
SELECT perfguard.begin_request('/nocapture/');
SELECT id, author_id FROM by_book;
SELECT name FROM by_author WHERE id = 1;
SELECT name FROM by_author WHERE id = 2;
SELECT name FROM by_author WHERE id = 3;
SELECT name FROM by_author WHERE id = 4;
SELECT name FROM by_author WHERE id = 5;
SELECT n_plus_one FROM perfguard.end_request();
SET perfguard.capture_parameters = on;
SELECT perfguard.begin_request('/capture/');
SELECT id, author_id FROM by_book;
SELECT name FROM by_author WHERE id = 6;
SELECT name FROM by_author WHERE id = 7;
SELECT name FROM by_author WHERE id = 8;
SELECT name FROM by_author WHERE id = 9;
SELECT name FROM by_author WHERE id = 10;
SELECT n_plus_one FROM perfguard.end_request();
PREPARE by_lookup(int) AS SELECT name FROM by_author WHERE id = $1;
SELECT perfguard.begin_request('/capture-prepared/');
SELECT id, author_id FROM by_book;
EXECUTE by_lookup(1);
EXECUTE by_lookup(2);
EXECUTE by_lookup(3);
EXECUTE by_lookup(4);
EXECUTE by_lookup(5);
SELECT n_plus_one FROM perfguard.end_request();
RESET perfguard.capture_parameters;
DEALLOCATE by_lookup;
SELECT route, example_params FROM perfguard.n_plus_one ORDER BY route;

-- failed statements, per fingerprint and SQLSTATE, with their text even
-- when they never succeeded
SELECT perfguard.reset();
SELECT 1 / (id - id) FROM by_author WHERE id = 1;
SELECT 1 / (id - id) FROM by_author WHERE id = 2;
INSERT INTO by_author VALUES (1, 'dup');
SELECT query, sqlstate, message, count, first_seen <= last_seen AS seen_ok
  FROM perfguard.errors ORDER BY sqlstate;

-- latency percentiles and time windows
SELECT perfguard.reset();
SELECT pg_sleep(0.002);
SELECT pg_sleep(0.004);
SELECT pg_sleep(0.006);
SELECT pg_sleep(0.008);
SELECT calls, p50_ms <= p95_ms AND p95_ms <= p99_ms AS ordered,
       p50_ms >= min_ms AND p99_ms <= max_ms AS within_range,
       p50_ms BETWEEN 2 AND 10 AS p50_plausible
  FROM perfguard.statements WHERE query = 'SELECT pg_sleep($1)';
SELECT h.calls, h.window_end - h.window_start AS window_length,
       h.window_start <= now() AS started
  FROM perfguard.statements_history h
  JOIN perfguard.statements s USING (userid, dbid, queryid, toplevel)
 WHERE s.query = 'SELECT pg_sleep($1)';

-- repeating sequences (M x N+1): for each book, its author then its
-- publisher: one finding with both children, not two unrelated ones
CREATE TABLE by_publisher (id int PRIMARY KEY, name text);
INSERT INTO by_publisher SELECT g, 'p' || g FROM generate_series(1, 10) g;
SELECT perfguard.reset();
SELECT perfguard.begin_request('/books/');
SELECT id, author_id FROM by_book ORDER BY id;
SELECT name FROM by_author WHERE id = 1;
SELECT name FROM by_publisher WHERE id = 1;
SELECT name FROM by_author WHERE id = 2;
SELECT name FROM by_publisher WHERE id = 2;
SELECT name FROM by_author WHERE id = 3;
SELECT name FROM by_publisher WHERE id = 3;
SELECT name FROM by_author WHERE id = 4;
SELECT name FROM by_publisher WHERE id = 4;
SELECT name FROM by_author WHERE id = 5;
SELECT name FROM by_publisher WHERE id = 5;
SELECT n_plus_one FROM perfguard.end_request();
SELECT route, parent_query, queries, occurrences, total_iterations,
       suggestion LIKE 'one loop runs 2 queries per row%' AS suggests
  FROM perfguard.n_plus_one_sequences;
SELECT query, sequence IS NOT NULL AS in_sequence,
       cardinality(sequence) AS sequence_length
  FROM perfguard.n_plus_one ORDER BY query;
SELECT category, route, query FROM perfguard.findings
 WHERE category LIKE 'n_plus_one%';
-- a loop of one query alternating with nothing else is no sequence
SELECT perfguard.begin_request('/plain/');
SELECT id, author_id FROM by_book ORDER BY id;
SELECT name FROM by_author WHERE id = 1;
SELECT name FROM by_author WHERE id = 2;
SELECT name FROM by_author WHERE id = 3;
SELECT name FROM by_author WHERE id = 4;
SELECT name FROM by_author WHERE id = 5;
SELECT n_plus_one FROM perfguard.end_request();
SELECT route, cardinality(sequence) FROM perfguard.n_plus_one_sequences ORDER BY route;

DROP TABLE by_book, by_author, by_publisher;
