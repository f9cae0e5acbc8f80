--
-- store: counters, reset, enabled, track = top | all, PREPARE/EXECUTE, info
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
CREATE TABLE st_t (id int PRIMARY KEY, v text);
INSERT INTO st_t SELECT g, 'v' || g FROM generate_series(1, 100) g;
SELECT perfguard.reset();

-- three executions of one shape, one of another, one write
SELECT v FROM st_t WHERE id = 1;
SELECT v FROM st_t WHERE id = 2;
SELECT v FROM st_t WHERE id = 3;
SELECT count(*) FROM st_t WHERE id < 50;
UPDATE st_t SET v = 'x' WHERE id = 7;

SELECT query, command, toplevel, calls, rows,
       total_ms >= 0 AND min_ms <= mean_ms AND mean_ms <= max_ms AS times_ok,
       abs(mean_ms * calls - total_ms) < 0.001 AS mean_ok,
       stddev_ms >= 0 AS stddev_ok,
       shared_blks_hit + shared_blks_read > 0 AS touched_buffers,
       temp_blks_written, duplicate_calls, n_plus_one_calls,
       first_seen <= last_seen AS seen_ok
  FROM perfguard.statements
 WHERE query LIKE '%st_t%' AND query NOT LIKE '%perfguard%'
 ORDER BY query;

SELECT version, entries >= 3 AS has_entries, max_entries, dropped_entries,
       stats_reset <= now() AS reset_ok
  FROM perfguard.info;

-- nothing is recorded when perfguard.enabled is off
SET perfguard.enabled = off;
SELECT v FROM st_t WHERE id = 9;
RESET perfguard.enabled;
SELECT calls FROM perfguard.statements WHERE query = 'SELECT v FROM st_t WHERE id = $1';

-- PREPARE / EXECUTE: the prepared statement is counted, whatever the values
-- (its $1 is a Param, not a constant: a fingerprint of its own, shown with
-- the statement text only, without the PREPARE clause)
PREPARE st_p(int) AS SELECT v FROM st_t WHERE id = $1;
EXECUTE st_p(10);
EXECUTE st_p(11);
EXECUTE st_p(11);
SELECT query, calls, toplevel FROM perfguard.statements
 WHERE query LIKE '%st_t WHERE id = $1' ORDER BY query;
DEALLOCATE st_p;

-- track = top (default): statements inside a function are not recorded
CREATE FUNCTION st_f(n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE s int := 0; r int;
BEGIN
  FOR i IN 1..n LOOP
    SELECT length(v) INTO r FROM st_t WHERE id = i;
    s := s + r;
  END LOOP;
  RETURN s;
END $$;
SELECT perfguard.reset();
SELECT st_f(4);
SELECT query, toplevel, calls FROM perfguard.statements
 WHERE (query LIKE '%st_t%' OR query LIKE '%st_f%') AND query NOT LIKE '%perfguard%'
 ORDER BY toplevel DESC, query;

-- track = all: they are, as nested (toplevel = false)
SET perfguard.track = 'all';
SELECT st_f(4);
RESET perfguard.track;
SELECT query, toplevel, calls FROM perfguard.statements
 WHERE (query LIKE '%st_t%' OR query LIKE '%st_f%') AND query NOT LIKE '%perfguard%'
 ORDER BY toplevel DESC, query;

-- parallel query: the workers' executions are not counted again
CREATE TABLE st_big AS SELECT g AS id, g % 7 AS k FROM generate_series(1, 20000) g;
ANALYZE st_big;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET force_parallel_mode = on;
SELECT perfguard.reset();
SELECT count(*) FROM st_big WHERE k = 3;
SELECT count(*) FROM st_big WHERE k = 4;
RESET force_parallel_mode;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;
RESET max_parallel_workers_per_gather;
SELECT query, calls, rows FROM perfguard.statements WHERE query LIKE '%st_big%';
DROP TABLE st_big;

-- reset clears everything
SELECT perfguard.reset();
SELECT count(*) AS st_entries FROM perfguard.statements WHERE query LIKE '%st_t%';

-- bad settings are rejected
SET perfguard.track = 'sometimes';
SET perfguard.n_plus_one_threshold = 1;
SET perfguard.on_n_plus_one = 'explode';
SET perfguard.max_statements = 10;

DROP FUNCTION st_f(int);
DROP TABLE st_t;
