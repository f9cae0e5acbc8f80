--
-- index_advice_evidence: index candidates proven at the end of sampled
-- executions, with their values (issue 18), and only then: the evidence
-- column of index_advice, PREPARE/EXECUTE and cursors, no evidence without a
-- sample, perfguard.reset() forgetting it.  No costs are printed.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
SELECT perfguard.reset();
SET max_parallel_workers_per_gather = 0;

-- 300 'pending' rows among 150,000: the generic plan sees half the table
CREATE TABLE iae_jobs (id int PRIMARY KEY, status text NOT NULL, payload text);
INSERT INTO iae_jobs
  SELECT g, CASE WHEN g % 500 = 0 THEN 'pending' ELSE 'done' END, repeat('p', 30)
    FROM generate_series(1, 150000) g;
VACUUM ANALYZE iae_jobs;

-- not sampled (under slow_query_ms): proven on the generic plan, where no
-- index helps half the table
SELECT count(*) FROM iae_jobs WHERE status = 'pending';
SELECT count(*) AS advice FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iae_jobs';

-- sampled: the same statement is proven with its value
SET perfguard.slow_query_ms = 0;
SELECT count(*) FROM iae_jobs WHERE status = 'pending';
SELECT count(*) FROM iae_jobs WHERE status = 'pending';
RESET perfguard.slow_query_ms;
SELECT columns, evidence,
       reason LIKE '%proven with the values of a sampled execution, whose scan kept 0.2% of about%' AS reason_ok,
       est_improvement > 0.9 AS improves
  FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iae_jobs';
-- the catalog checks say what they rest on too (DROP advice waits for
-- statistics that cover unused_index_min_age: not here)
SET perfguard.unused_index_min_age = 0;
CREATE INDEX iae_jobs_id_dup ON iae_jobs (id);
SELECT kind, evidence FROM perfguard.index_advice WHERE index_name = 'iae_jobs_id_dup';
DROP INDEX iae_jobs_id_dup;
RESET perfguard.unused_index_min_age;

-- reset() forgets the evidence: generic again
SELECT perfguard.reset();
SELECT count(*) FROM iae_jobs WHERE status = 'pending';
SELECT count(*) AS advice FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iae_jobs';

-- EXECUTE: the bound value is the evidence (the text is the PREPARE)
SELECT perfguard.reset();
PREPARE iae_q(text) AS SELECT id FROM iae_jobs WHERE status = $1 ORDER BY id LIMIT 5;
SET perfguard.slow_query_ms = 0;
EXECUTE iae_q('pending');
RESET perfguard.slow_query_ms;
SELECT columns, evidence FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iae_jobs';
DEALLOCATE iae_q;

-- a cursor: sampled when it is closed, DECLARE looked through
SELECT perfguard.reset();
SET perfguard.slow_query_ms = 0;
BEGIN;
DECLARE iae_c CURSOR FOR SELECT id FROM iae_jobs WHERE status = 'pending';
FETCH 2 FROM iae_c;
CLOSE iae_c;
COMMIT;
RESET perfguard.slow_query_ms;
SELECT columns, evidence FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iae_jobs';

-- a sampled execution whose statement no longer analyses at its end (it
-- changed search_path, so its table is not found any more) loses its
-- evidence, not the statement
CREATE TABLE iae_lost AS SELECT g AS id, g % 100 AS k FROM generate_series(1, 20000) g;
ANALYZE iae_lost;
SELECT perfguard.reset();
SET perfguard.slow_query_ms = 0;
SELECT count(*), set_config('search_path', 'iae_nowhere', false) AS path
  FROM iae_lost WHERE k = 5;
RESET search_path;
RESET perfguard.slow_query_ms;
-- proven on the generic plan instead, with the caller's search_path
SELECT columns, evidence FROM perfguard.index_advice WHERE kind = 'missing';

-- a failed sampled statement: no evidence either, and the error is the
-- statement's own
SET perfguard.slow_query_ms = 0;
SELECT 1 / (id - id) FROM iae_jobs WHERE status = 'pending' LIMIT 1;
RESET perfguard.slow_query_ms;

-- the columns array spells directions, for advice and for existing indexes
CREATE TABLE iae_dir (id int, a int, b int);
INSERT INTO iae_dir SELECT g, g % 1000, g FROM generate_series(1, 50000) g;
ANALYZE iae_dir;
SELECT perfguard.reset();
SELECT id FROM iae_dir ORDER BY a DESC, b LIMIT 5;
SELECT columns, ddl FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iae_dir';
CREATE INDEX iae_dir_a ON iae_dir (a DESC);
CREATE INDEX iae_dir_a_b ON iae_dir (a DESC, b NULLS FIRST);
SET perfguard.unused_index_min_age = 0;
SELECT kind, index_name, columns, reason FROM perfguard.index_advice
 WHERE kind = 'redundant' AND table_name = 'iae_dir';

RESET perfguard.unused_index_min_age;
SELECT perfguard.reset();
DROP TABLE iae_jobs, iae_lost, iae_dir;
