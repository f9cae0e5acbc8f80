--
-- percentiles: latency histogram percentiles and time windows
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

DROP TABLE by_book, by_author;
