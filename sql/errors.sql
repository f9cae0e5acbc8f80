--
-- errors: failed statements per fingerprint and SQLSTATE
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

-- failed statements, per fingerprint and SQLSTATE, with their text even
-- when they never succeeded
SELECT perfguard.reset();
SELECT 1 / (id - id) FROM by_author WHERE id = 1;
SELECT 1 / (id - id) FROM by_author WHERE id = 2;
INSERT INTO by_author VALUES (1, 'dup');
SELECT query, sqlstate, message, count, first_seen <= last_seen AS seen_ok
  FROM perfguard.errors ORDER BY sqlstate;

-- a statement that fails while it is planned (constant folding divides by
-- zero) never runs: its text is still kept
SELECT perfguard.reset();
SELECT name FROM by_author WHERE id = 1 / 0;
SELECT name FROM by_author WHERE id = 2 / 0;
SELECT query, sqlstate, count FROM perfguard.errors ORDER BY query;

DROP TABLE by_book, by_author;
