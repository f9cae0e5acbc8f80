--
-- sequences: repeating sequences of fingerprints (M x N+1)
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
