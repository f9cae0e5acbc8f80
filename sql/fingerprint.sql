--
-- fingerprint: normalisation, IN-list folding, sqlcommenter comments
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
CREATE TABLE fp_t (id int PRIMARY KEY, v text, n numeric);
INSERT INTO fp_t SELECT g, 'v' || g, g FROM generate_series(1, 50) g;
SELECT perfguard.reset();

-- constants become $n, whatever their type
SELECT id FROM fp_t WHERE v = 'abc' AND n > 1.5 AND id <> -3;
SELECT id FROM fp_t WHERE v = 'it''s' AND n > 2.5 AND id <> 4;
-- negative numbers are values like any other: these two are N+1-like, not duplicates
SELECT perfguard.begin_request('fp-negative');
SELECT id FROM fp_t WHERE id = -1;
SELECT id FROM fp_t WHERE id = -2;
SELECT duplicates FROM perfguard.end_request();

-- constant IN lists of any length share one fingerprint (Django pk__in)
SELECT id FROM fp_t WHERE id IN (1, 2);
SELECT id FROM fp_t WHERE id IN (1, 2, 3);
SELECT id FROM fp_t WHERE id IN (4, 5, 6, 7, 8, 9, 10);
-- = ANY(ARRAY[...]) is the same tree as IN (...) once analysed: same fingerprint
SELECT id FROM fp_t WHERE id = ANY(ARRAY[1, 2]);
SELECT id FROM fp_t WHERE id = ANY(ARRAY[3, 4, 5, 6]);
-- string lists too
SELECT id FROM fp_t WHERE v IN ('v1', 'v2');
SELECT id FROM fp_t WHERE v IN ('v1', 'v2', 'v3');

-- a trailing sqlcommenter comment does not change the fingerprint
SELECT v FROM fp_t WHERE id = 1 /*route='%2Fa%2F',framework='django'*/;
SELECT v FROM fp_t WHERE id = 2 /*route='%2Fb%2F',framework='django'*/;
SELECT v FROM fp_t WHERE id = 3;

-- multi-row VALUES are not lists: each value is its own parameter
INSERT INTO fp_t VALUES (100, 'x', 1), (101, 'y', 2);

SELECT query, calls, rows FROM perfguard.statements
 WHERE query LIKE '%fp_t%' ORDER BY query;

-- the folded statements share one query id per list shape
SELECT count(DISTINCT queryid) AS in_list_ids
  FROM perfguard.statements WHERE query LIKE '%fp_t WHERE id IN%';

DROP TABLE fp_t;
