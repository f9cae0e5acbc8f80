--
-- parameters: capture_parameters keeps one example parameter set per finding
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

DROP TABLE by_book, by_author;
