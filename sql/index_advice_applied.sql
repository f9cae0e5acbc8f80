--
-- index_advice_applied: the closed loop.  perfguard remembers the 'missing'
-- advice it gives; once an index with the advised leading columns exists,
-- the advice stays in perfguard.index_advice with applied = true and the
-- mean time per call of its statements before the advice and since.
-- No timings are printed: only what they imply.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
SELECT perfguard.reset();

-- 50,000 events; account_id has 5,000 values: an index will be created
CREATE TABLE iaa_events (
    id int PRIMARY KEY,
    account_id int NOT NULL,
    payload text);
INSERT INTO iaa_events
  SELECT g, g % 5000, repeat('x', 40) FROM generate_series(1, 50000) g;
VACUUM ANALYZE iaa_events;
-- the clean twin: advised too, but nobody creates its index
CREATE TABLE iaa_twin (
    id int PRIMARY KEY,
    ref_id int NOT NULL,
    payload text);
INSERT INTO iaa_twin
  SELECT g, g % 5000, repeat('y', 40) FROM generate_series(1, 50000) g;
VACUUM ANALYZE iaa_twin;

-- five calls of each statement without an index
SELECT count(*) FROM iaa_events WHERE account_id = 1;
SELECT count(*) FROM iaa_events WHERE account_id = 2;
SELECT count(*) FROM iaa_events WHERE account_id = 3;
SELECT count(*) FROM iaa_events WHERE account_id = 4;
SELECT count(*) FROM iaa_events WHERE account_id = 5;
SELECT count(*) FROM iaa_twin WHERE ref_id = 1;
SELECT count(*) FROM iaa_twin WHERE ref_id = 2;
SELECT count(*) FROM iaa_twin WHERE ref_id = 3;
SELECT count(*) FROM iaa_twin WHERE ref_id = 4;
SELECT count(*) FROM iaa_twin WHERE ref_id = 5;

-- reading the advice remembers it: nothing applied yet
SELECT table_name, columns, ddl, calls, applied,
       applied_index IS NULL AS no_index,
       mean_ms_before > 0 AS has_mean_before,
       mean_ms_after IS NULL AS no_mean_after,
       calls_after IS NULL AS no_calls_after,
       actual_improvement IS NULL AS no_actual
  FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name LIKE 'iaa\_%'
 ORDER BY table_name;

-- follow the advice for iaa_events only
SELECT ddl FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iaa_events' \gexec

-- the index exists, and no statement has run since
SELECT table_name, columns, applied, applied_index, calls,
       mean_ms_before > 0 AS has_mean_before,
       mean_ms_after IS NULL AS no_mean_after, calls_after,
       actual_improvement IS NULL AS no_actual,
       est_improvement >= 0.3 AS kept_estimate,
       index_bytes > 0 AS real_size,
       CASE WHEN applied THEN reason LIKE 'applied: index iaa_events_account_id_idx serves (account_id); %did not run%' END AS reason_ok
  FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name LIKE 'iaa\_%'
 ORDER BY table_name;

-- six calls with the index
SELECT count(*) FROM iaa_events WHERE account_id = 6;
SELECT count(*) FROM iaa_events WHERE account_id = 7;
SELECT count(*) FROM iaa_events WHERE account_id = 8;
SELECT count(*) FROM iaa_events WHERE account_id = 9;
SELECT count(*) FROM iaa_events WHERE account_id = 10;
SELECT count(*) FROM iaa_events WHERE account_id = 11;
-- and one more call of the twin, still without an index
SELECT count(*) FROM iaa_twin WHERE ref_id = 6;

-- the advice paid off: faster per call since the index exists
SELECT table_name, applied, applied_index, calls, calls_after,
       mean_ms_after < mean_ms_before AS faster,
       actual_improvement > 0 AS paid_off,
       actual_improvement <= 1 AS fraction,
       CASE WHEN applied THEN impact_ms > 0 END AS saved_time,
       CASE WHEN applied THEN reason LIKE '%ran 6 times since the advice%' END AS reason_ok
  FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name LIKE 'iaa\_%'
 ORDER BY table_name;

-- the to-do list: what is not applied yet
SELECT table_name, columns FROM perfguard.index_advice
 WHERE kind = 'missing' AND NOT applied AND table_name LIKE 'iaa\_%';

-- findings: the applied advice is no to-do, and it did not regress
SELECT category, detail LIKE 'public.iaa_twin (ref_id): %' AS twin
  FROM perfguard.findings
 WHERE category IN ('index_missing', 'index_applied')
   AND detail LIKE 'public.iaa\_%'
 ORDER BY category, detail;

-- an index whose leading columns are the advised ones counts too; with the
-- advised index dropped, the wider one is the one reported
CREATE INDEX iaa_events_wide ON iaa_events (account_id, id);
DROP INDEX iaa_events_account_id_idx;
SELECT table_name, applied, applied_index, calls_after
  FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iaa_events';

-- with no index left, the advice is plain advice again
DROP INDEX iaa_events_wide;
SELECT table_name, columns, applied, applied_index IS NULL AS no_index,
       calls_after IS NULL AS no_calls_after
  FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iaa_events';

-- advice that did not pay off: the statements became slower per call after
-- the index (here through the sleep each matching row now costs).  It shows
-- as applied with actual_improvement < 0, and as the finding index_applied.
CREATE TABLE iaa_slow AS SELECT g AS id, g % 5000 AS k FROM generate_series(1, 50000) g;
VACUUM ANALYZE iaa_slow;
SELECT count(*) FROM iaa_slow WHERE k = 1 AND pg_sleep(0.0) IS NOT NULL;
SELECT count(*) FROM iaa_slow WHERE k = 2 AND pg_sleep(0.0) IS NOT NULL;
SELECT count(*) FROM iaa_slow WHERE k = 3 AND pg_sleep(0.0) IS NOT NULL;
SELECT ddl FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iaa_slow' \gexec
SELECT count(*) FROM iaa_slow WHERE k = 4 AND pg_sleep(0.005) IS NOT NULL;
SELECT count(*) FROM iaa_slow WHERE k = 5 AND pg_sleep(0.005) IS NOT NULL;
SELECT count(*) FROM iaa_slow WHERE k = 6 AND pg_sleep(0.005) IS NOT NULL;
SELECT table_name, applied, applied_index, calls_after,
       actual_improvement < 0 AS regressed, impact_ms < 0 AS lost_time
  FROM perfguard.index_advice
 WHERE kind = 'missing' AND table_name = 'iaa_slow';
SELECT category, severity IN ('high', 'medium') AS ranked_up,
       suggestion LIKE 'index iaa_slow_k_idx, created from this advice, did not make its statements faster%' AS suggestion_ok,
       impact_ms > 0 AS positive_impact
  FROM perfguard.findings
 WHERE category IN ('index_missing', 'index_applied')
   AND detail LIKE 'public.iaa_slow %';
DROP TABLE iaa_slow;

-- advice on a dropped table is forgotten, without an error
DROP TABLE iaa_twin;
SELECT count(*) AS twin_rows FROM perfguard.index_advice
 WHERE table_name = 'iaa_twin';

DROP TABLE iaa_events;
SELECT count(*) AS left_over FROM perfguard.index_advice
 WHERE table_name LIKE 'iaa\_%';
