--
-- scopes: request boundaries by sqlcommenter tags, explicit begin/end,
-- idle gap and transaction blocks
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
CREATE TABLE sc_author (id int PRIMARY KEY, name text);
CREATE TABLE sc_book (id int PRIMARY KEY, author_id int REFERENCES sc_author(id));
INSERT INTO sc_author SELECT g, 'a' || g FROM generate_series(1, 10) g;
INSERT INTO sc_book SELECT g, 1 + g % 10 FROM generate_series(1, 10) g;
SET application_name = 'scopes-test';
SELECT perfguard.reset();

-- Tags: two requests to different routes, each with a 3-lookup loop after a
-- list of 10 books: an N+1 of 3 in each, not one of 6 lookups, although the
-- 6 ran back to back.  Untagged BEGIN/COMMIT stay inside the tagged request
-- (as Rails sends them).  A request with an id shows in perfguard.requests
-- while it is still open.
SELECT id, author_id FROM sc_book /*route='%2Fbooks%2F1',traceparent='00-aaaa-0001-01'*/;
BEGIN;
SELECT name FROM sc_author WHERE id = 1 /*route='%2Fbooks%2F1',traceparent='00-aaaa-0002-01'*/;
COMMIT;
SELECT name FROM sc_author WHERE id = 2 /*route='%2Fbooks%2F1',traceparent='00-aaaa-0003-01'*/;
SELECT name FROM sc_author WHERE id = 3 /*route='%2Fbooks%2F1',traceparent='00-aaaa-0004-01'*/;
SELECT id, author_id FROM sc_book /*route='%2Fbooks%2F2',traceparent='00-bbbb-0001-01'*/;
SELECT name FROM sc_author WHERE id = 4 /*route='%2Fbooks%2F2',traceparent='00-bbbb-0002-01'*/;
SELECT name FROM sc_author WHERE id = 5 /*route='%2Fbooks%2F2',traceparent='00-bbbb-0003-01'*/;
SELECT name FROM sc_author WHERE id = 6 /*route='%2Fbooks%2F2',traceparent='00-bbbb-0004-01'*/;
-- same route, same trace, one request with 6 lookups: an N+1, labelled by
-- the URL-decoded route, with untagged statements in the middle
SELECT id, author_id FROM sc_book /*route='%2Fauthors%2F',controller='authors',action='index'*/;
SELECT name FROM sc_author WHERE id = 1 /*route='%2Fauthors%2F',controller='authors',action='index'*/;
SELECT name FROM sc_author WHERE id = 2 /*route='%2Fauthors%2F',controller='authors',action='index'*/;
SELECT name FROM sc_author WHERE id = 3;
SELECT name FROM sc_author WHERE id = 4 /*route='%2Fauthors%2F',controller='authors',action='index'*/;
SAVEPOINT s1;
RELEASE s1;
SELECT name FROM sc_author WHERE id = 5 /*route='%2Fauthors%2F',controller='authors',action='index'*/;
-- controller#action labels a request without a route
SELECT id FROM sc_book /*controller='books',action='show'*/;
SELECT route, query, total_repeats FROM perfguard.n_plus_one ORDER BY route;
SELECT route, requests, queries FROM perfguard.requests
 WHERE route <> 'scopes-test' ORDER BY route;

-- Explicit scopes ignore tags and gaps until end_request().
SELECT perfguard.reset();
SELECT perfguard.begin_request('explicit');
SELECT id, author_id FROM sc_book;
SELECT name FROM sc_author WHERE id = 1 /*route='%2Fother%2F'*/;
SELECT name FROM sc_author WHERE id = 2 /*route='%2Fyet-another%2F'*/;
SET perfguard.request_gap = '10ms';
\! sleep 0.2
SELECT name FROM sc_author WHERE id = 3;
SELECT name FROM sc_author WHERE id = 4;
SELECT name FROM sc_author WHERE id = 5;
SELECT queries, n_plus_one FROM perfguard.end_request();
RESET perfguard.request_gap;

-- Idle gap: the same loop split by a pause longer than request_gap is two
-- requests, each with an N+1 of 3 after its own list.  Untagged scopes are
-- labelled with application_name.
SELECT perfguard.reset();
SET perfguard.request_gap = '100ms';
\! sleep 0.2
SELECT id, author_id FROM sc_book;
SELECT name FROM sc_author WHERE id = 1;
SELECT name FROM sc_author WHERE id = 2;
SELECT name FROM sc_author WHERE id = 3;
\! sleep 0.3
SELECT id, author_id FROM sc_book;
SELECT name FROM sc_author WHERE id = 4;
SELECT name FROM sc_author WHERE id = 5;
SELECT name FROM sc_author WHERE id = 6;
\! sleep 0.3
SELECT count(*) AS n_plus_one FROM perfguard.n_plus_one;
-- without the pause, the same 6 lookups are one request with an N+1
SELECT id, author_id FROM sc_book;
SELECT name FROM sc_author WHERE id = 1;
SELECT name FROM sc_author WHERE id = 2;
SELECT name FROM sc_author WHERE id = 3;
SELECT name FROM sc_author WHERE id = 4;
SELECT name FROM sc_author WHERE id = 5;
SELECT name FROM sc_author WHERE id = 6;
\! sleep 0.3
SELECT route, total_repeats FROM perfguard.n_plus_one;
SELECT route, requests >= 3 AS several_requests FROM perfguard.requests;
RESET perfguard.request_gap;

-- Transactions (untagged traffic): the end of a BEGIN ... COMMIT block ends
-- the request it started, so two transactions with 3 lookups each are two
-- N+1s of 3, even without a pause ...
SELECT perfguard.reset();
BEGIN;
SELECT id, author_id FROM sc_book;
SELECT name FROM sc_author WHERE id = 1;
SELECT name FROM sc_author WHERE id = 2;
SELECT name FROM sc_author WHERE id = 3;
COMMIT;
BEGIN;
SELECT id, author_id FROM sc_book;
SELECT name FROM sc_author WHERE id = 4;
SELECT name FROM sc_author WHERE id = 5;
SELECT name FROM sc_author WHERE id = 6;
ROLLBACK;
SELECT count(*) AS n_plus_one FROM perfguard.n_plus_one;
-- ... while the same 6 lookups in one transaction are
BEGIN;
SELECT id, author_id FROM sc_book;
SELECT name FROM sc_author WHERE id = 1;
SELECT name FROM sc_author WHERE id = 2;
SELECT name FROM sc_author WHERE id = 3;
SELECT name FROM sc_author WHERE id = 4;
SELECT name FROM sc_author WHERE id = 5;
SELECT name FROM sc_author WHERE id = 6;
COMMIT;
SELECT total_repeats FROM perfguard.n_plus_one;

-- An implicit (untagged, unscoped) loop without a parent query that returned
-- rows is not reported as an N+1: that is a batch job, not a page.
SELECT perfguard.reset();
BEGIN;
SELECT name FROM sc_author WHERE id = 1;
SELECT name FROM sc_author WHERE id = 2;
SELECT name FROM sc_author WHERE id = 3;
SELECT name FROM sc_author WHERE id = 4;
SELECT name FROM sc_author WHERE id = 5;
SELECT name FROM sc_author WHERE id = 6;
COMMIT;
SELECT count(*) AS n_plus_one FROM perfguard.n_plus_one;

-- Malformed comments are harmless: no tags, no scope change, no error.
SELECT 1 AS ok /* route= */;
SELECT 2 AS ok /*route='%ZZ%2',='x',traceparent=*/;
SELECT 3 AS ok /*route='unterminated*/;
SELECT 4 AS ok /**/;

-- A tagged begin_request() opens no request of its own (middlewares tag
-- every statement, this one included).
SELECT perfguard.reset();
SELECT perfguard.begin_request('/tagged/') /*route='%2Ftagged%2F'*/;
SELECT id, author_id FROM sc_book /*route='%2Ftagged%2F'*/;
SELECT name FROM sc_author WHERE id = 1 /*route='%2Ftagged%2F'*/;
SELECT queries FROM perfguard.end_request() /*route='%2Ftagged%2F'*/;
SELECT route, requests, queries FROM perfguard.requests WHERE route = '/tagged/';

-- Queries the client did not send are not statements of the request: the
-- checks of DEFERRABLE INITIALLY DEFERRED foreign keys (Django's default)
-- run at COMMIT through SPI, and must not count as duplicates.
CREATE TABLE sc_deferred (id int PRIMARY KEY,
    author_id int REFERENCES sc_author(id) DEFERRABLE INITIALLY DEFERRED);
SELECT perfguard.reset();
SELECT perfguard.begin_request('/bulk/');
BEGIN;
INSERT INTO sc_deferred SELECT g, 1 FROM generate_series(1, 10) g;
COMMIT;
INSERT INTO sc_deferred VALUES (11, 2), (12, 2), (13, 2);
SELECT queries, duplicates, write_loops FROM perfguard.end_request();
SELECT count(*) AS ri_checks_as_statements FROM perfguard.statements
 WHERE query LIKE '%FOR KEY SHARE%';
SET perfguard.track = 'all';
INSERT INTO sc_deferred VALUES (14, 3);
RESET perfguard.track;
SELECT toplevel, calls FROM perfguard.statements WHERE query LIKE '%FOR KEY SHARE%';
DROP TABLE sc_deferred;

RESET application_name;
DROP TABLE sc_book, sc_author;
