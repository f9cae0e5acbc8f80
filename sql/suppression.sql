--
-- suppression: rules by fingerprint or route, in-band perfguard='ignore';
-- suppressed findings are still counted, never reported nor guarded
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

-- test traffic (perfguard='test', as the integrations' test helpers tag
-- it) is recorded apart: its requests under "[test] <route>", its findings
-- left out of the reports unless perfguard.include_test is on
SELECT perfguard.reset();
SELECT perfguard.begin_request('/t/');
SELECT id, author_id FROM by_book /*perfguard='test'*/;
SELECT name FROM by_author WHERE id = 1 /*perfguard='test'*/;
SELECT name FROM by_author WHERE id = 2 /*perfguard='test'*/;
SELECT name FROM by_author WHERE id = 3 /*perfguard='test'*/;
SELECT n_plus_one FROM perfguard.end_request();
SELECT count(*) AS n_plus_one FROM perfguard.n_plus_one;
SELECT count(*) AS findings FROM perfguard.findings WHERE category = 'n_plus_one';
SELECT route, requests, n_plus_one_requests FROM perfguard.requests WHERE route LIKE '[test]%';
SET perfguard.include_test = on;
SELECT route, total_repeats FROM perfguard.n_plus_one;
RESET perfguard.include_test;

DROP TABLE by_book, by_author;
