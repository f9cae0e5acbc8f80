--
-- hostile: every perfguard function called with hostile arguments (NULLs,
-- 1 MB texts, garbage cursors and ORDER BYs, injection attempts), and
-- hostile statements through the hooks (malformed sqlcommenter comments,
-- invalid UTF-8 escapes, 10 kB and 1 MB comments, OFFSET 2^63-1, 200 nested
-- subselects, deep recursion with track = all, failing nested statements).
-- The server never crashes, each bad argument is an ERROR with a proper
-- SQLSTATE (never XX000, internal error), hooked statements never fail, and
-- every text in every view stays valid UTF-8.
--
CREATE EXTENSION IF NOT EXISTS perfguard;
SELECT perfguard.reset();
CREATE TABLE hs_t (id int PRIMARY KEY, created_at timestamptz, name text);
INSERT INTO hs_t SELECT g, '2024-01-01'::timestamptz + g * interval '1 day', 'n' || g
  FROM generate_series(1, 30) g;

-- hx(statement): 'ok', or the SQLSTATE and the start of the message
CREATE FUNCTION hx(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ' ' || left(SQLERRM, 70);
END $$;

CREATE TEMP TABLE hs_cases (n serial, stmt text, result text);
INSERT INTO hs_cases (stmt) VALUES
 -- request scopes
 ($$SELECT perfguard.begin_request(NULL)$$),
 ($$SELECT perfguard.end_request()$$),
 ($$SELECT perfguard.end_request()$$),
 ($$SELECT perfguard.begin_request(repeat('x', 1000000))$$),
 ($$SELECT perfguard.begin_request(repeat('é', 40))$$),
 ($$SELECT perfguard.begin_request(E'\t\r\n')$$),
 ($$SELECT perfguard.end_request()$$),
 -- internal report functions
 ($$SELECT perfguard._findings_raw(NULL)$$),
 ($$SELECT perfguard._findings_raw(-1)$$),
 ($$SELECT perfguard._findings_raw(2147483647)$$),
 ($$SELECT perfguard._n_plus_one_fix(NULL, NULL)$$),
 ($$SELECT perfguard._n_plus_one_fix('garbage ((', 'SELECT')$$),
 ($$SELECT perfguard._n_plus_one_fix(repeat('x', 1000000), repeat('(', 100000))$$),
 ($$SELECT perfguard._n_plus_one_fix('SELECT * FROM hs_t', 'SELECT * FROM hs_t WHERE id = $1; DROP TABLE hs_t')$$),
 ($$SELECT perfguard._keyset_suggestion(NULL)$$),
 ($$SELECT perfguard._keyset_suggestion(repeat('SELECT ', 200000))$$),
 ($$SELECT perfguard._keyset_suggestion('SELECT * FROM t ORDER BY "unterminated')$$),
 -- advise: only one SELECT/UPDATE/DELETE, never executed
 ($$SELECT perfguard.advise(NULL)$$),
 ($$SELECT perfguard.advise('')$$),
 ($$SELECT perfguard.advise('garbage')$$),
 ($$SELECT perfguard.advise('SELECT 1; DROP TABLE hs_t')$$),
 ($$SELECT perfguard.advise('DROP TABLE hs_t')$$),
 ($$SELECT perfguard.advise('DELETE FROM hs_t')$$),
 ($$SELECT perfguard.advise('EXPLAIN ANALYZE DELETE FROM hs_t')$$),
 ($$SELECT perfguard.advise('COMMIT')$$),
 ($$SELECT perfguard.advise('SELECT * FROM hs_t WHERE id = $1')$$),
 ($$SELECT perfguard.advise('SELECT 1 /* unterminated')$$),
 ($$SELECT perfguard.advise(repeat('x ', 500000))$$),
 ($$SELECT perfguard.advise('SELECT * FROM hs_t ORDER BY id OFFSET 9223372036854775807')$$),
 ($$SELECT perfguard.advise('SELECT * FROM hs_t WHERE name = ''' || repeat('é', 500000) || '''')$$),
 -- keyset_predicate
 ($$SELECT perfguard.keyset_predicate('', '{}')$$),
 ($$SELECT perfguard.keyset_predicate('id', '{}')$$),
 ($$SELECT perfguard.keyset_predicate('id', '[]')$$),
 ($$SELECT perfguard.keyset_predicate('id', 'null')$$),
 ($$SELECT perfguard.keyset_predicate('id', '{"id": {"a": 1}}')$$),
 ($$SELECT perfguard.keyset_predicate('id; DROP TABLE hs_t', '{"id": 1}')$$),
 ($$SELECT perfguard.keyset_predicate('"unterminated', '{"id": 1}')$$),
 ($$SELECT perfguard.keyset_predicate('id DESC NULLS', '{"id": 1}')$$),
 ($$SELECT perfguard.keyset_predicate('id ASC DESC', '{"id": 1}')$$),
 ($$SELECT perfguard.keyset_predicate('id,,name', '{"id": 1}')$$),
 ($$SELECT perfguard.keyset_predicate('lower(name)', '{"id": 1}')$$),
 ($$SELECT perfguard.keyset_predicate(repeat('a,', 500000) || 'a', '{"a": 1}')$$),
 ($$SELECT perfguard.keyset_predicate('id', jsonb_build_object('id', repeat('x', 1000000)))$$),
 ($$SELECT perfguard.keyset_predicate('id', '{"id": "x''; DROP TABLE hs_t; --"}')$$),
 ($$SELECT perfguard.keyset_predicate('nope', '{"id": 1}', 'hs_t')$$),
 ($$SELECT perfguard.keyset_predicate('id', '{"id": 1}', 0)$$),
 -- keyset_page
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 0)$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', -1)$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 2147483647)$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', NULL)$$),
 ($$SELECT perfguard.keyset_page(NULL, 'id', 5)$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'name', 5)$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, 'garbage')$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, '')$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, repeat('A', 1000000))$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, perfguard.cursor_encode('{"id": "abc"}'))$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, perfguard.cursor_encode('{"nope": 1}'))$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, perfguard.cursor_encode('[1]'))$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, NULL, 'true; DROP TABLE hs_t')$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, NULL, 'true) OR (true')$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, NULL, 'true /*')$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, NULL, '')$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, NULL, 'nope = 1')$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, NULL, '1')$$),
 ($$SELECT perfguard.keyset_page('hs_t', 'id', 5, NULL, repeat('(', 10000) || 'true' || repeat(')', 10000))$$),
 -- keyset_index
 ($$SELECT perfguard.keyset_index('hs_t', '')$$),
 ($$SELECT perfguard.keyset_index('hs_t', 'nope')$$),
 ($$SELECT perfguard.keyset_index(0, 'id')$$),
 -- cursors
 ($$SELECT perfguard.cursor_decode('')$$),
 ($$SELECT perfguard.cursor_decode('garbage!!')$$),
 ($$SELECT perfguard.cursor_decode('====')$$),
 ($$SELECT perfguard.cursor_decode(repeat('A', 1000000))$$),
 ($$SELECT perfguard.cursor_decode(encode(convert_to('{"id":1', 'UTF8'), 'base64'))$$),
 ($$SELECT perfguard.cursor_decode(left(perfguard.cursor_encode('{"id": 1}'), -2))$$),
 ($$SELECT perfguard.cursor_encode(jsonb_build_object('k', repeat('x', 1000000)))$$),
 -- settings
 ($$SET perfguard.request_gap = '-1'$$),
 ($$SET perfguard.n_plus_one_threshold = -5$$),
 ($$SET perfguard.on_n_plus_one = 'bogus'$$),
 ($$SET perfguard.max_statements = 100$$);
-- signed cursors: tampered or foreign ones are rejected
SET perfguard.cursor_secret = 'hostile-secret';
INSERT INTO hs_cases (stmt) VALUES
 ($$SELECT perfguard.cursor_decode(perfguard.cursor_encode('{"id": 1}'))$$),
 ($$SELECT perfguard.cursor_decode(translate(perfguard.cursor_encode('{"id": 1}'), 'AEIOUaeiou', 'EIOUAeioua'))$$),
 ($$SELECT perfguard.cursor_decode(perfguard.cursor_encode('{"id": 1}') || 'A')$$);
UPDATE hs_cases SET result = hx(stmt) WHERE n > 0;
SELECT n, result FROM hs_cases ORDER BY n;
SELECT count(*) AS internal_errors FROM hs_cases WHERE result LIKE 'XX%';
-- a cursor signed with another secret
SELECT perfguard.cursor_encode('{"id": 1}') AS foreign_cursor \gset
SET perfguard.cursor_secret = 'other-secret';
SELECT hx(format('SELECT perfguard.cursor_decode(%L)', :'foreign_cursor')) AS foreign_cursor;
RESET perfguard.cursor_secret;

-- the functions of the findings (issue 17), each case with its result
SELECT n, hx(s) AS result
  FROM unnest(ARRAY[
   $$SELECT perfguard._fix_parts(NULL, NULL)$$,
   $$SELECT perfguard._fix_parts('garbage ((', ARRAY['SELECT'])$$,
   $$SELECT perfguard._fix_parts('SELECT * FROM hs_t', ARRAY[repeat('(', 100000), NULL, ''])$$,
   $$SELECT perfguard._fix_parts('SELECT * FROM hs_t', '{{a},{b}}')$$,
   $$SELECT perfguard._fix_suggestion(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)$$,
   $$SELECT length(perfguard._fix_suggestion('bogus', true, repeat('c', 1000000), ARRAY[repeat('s', 1000000)], ARRAY[repeat('d', 1000000), NULL], NULL, NULL, NULL, NULL, NULL, NULL)) > 0$$,
   $$SELECT perfguard._fix_suggestion('django', false, NULL, '{{a},{b}}', NULL, NULL, NULL, NULL, NULL, NULL, NULL)$$,
   $$SELECT perfguard._texts_of(NULL)$$,
   $$SELECT perfguard._texts_of('{{1},{2}}')$$,
   $$SELECT count(*) FROM perfguard._texts_of(ARRAY[0, -1, 9223372036854775807])$$,
   $$SELECT count(*) FROM perfguard._index_first_seen(ARRAY[0::oid, NULL])$$,
   $$SELECT perfguard._index_first_seen('{{1},{2}}')$$,
   $$SELECT perfguard.ignore(1, 'r', '')$$,
   $$SELECT perfguard.ignore(1, 'r', repeat('x', 100))$$,
   $$SELECT perfguard.unignore(1, repeat('x', 100))$$,
   $$SELECT perfguard.unignore(NULL, '/x/')$$,
   $$SELECT count(*) >= 0 FROM perfguard._scope_cards()$$,
   $$SELECT perfguard.refresh_advice() >= 0$$]) WITH ORDINALITY u(s, n)
 ORDER BY n;

-- Through the hooks, with every detector on.  None of these may fail.
SET perfguard.slow_query_ms = 0;
SET perfguard.capture_parameters = on;
SET perfguard.track = 'all';
SET perfguard.n_plus_one_threshold = 2;
SET perfguard.duplicate_threshold = 2;
SET perfguard.write_loop_threshold = 2;
SET perfguard.offset_threshold = 1;
SET perfguard.unbounded_rows = 1;
SET perfguard.on_n_plus_one = 'log';
SET perfguard.on_duplicate = 'log';
SET perfguard.max_queries_per_request = 3;
SET perfguard.on_too_many_queries = 'log';
SELECT perfguard.reset();
-- malformed sqlcommenter comments
SELECT 1 AS a /*route='unterminated*/;
SELECT 1 AS a /*route='abc%'*/;
SELECT 1 AS a /*route='%ZZ%2'*/;
SELECT 1 AS a /*route='%FF%FE'*/;
SELECT 1 AS a /*route='%00%01%1Fx'*/;
SELECT 1 AS a /*controller='%E2%82',action='%C3'*/;
SELECT 1 AS a /**/;
SELECT 1 AS a /*'*/;
SELECT 1 AS a /*=''*/;
SELECT 1 AS a /*,,,,*/;
SELECT 1 AS a /* /* route='nested' */ */;
SELECT 1 AS a /*traceparent='-'*/;
SELECT 1 AS a /*traceparent='--'*/;
SELECT 1 AS a /*traceparent='',route='empty-trace'*/;
SELECT 1 AS a /*route='first'*/ \; SELECT 2 AS b /*route='second'*/;
-- long ones: a 10 kB value, 10 kB of tags, a 1 MB unterminated value,
-- multibyte routes cut at the label length (generated statements are not
-- echoed: ECHO none around \gexec)
\set ECHO none
SELECT format('SELECT 1 AS a /*route=''%s''*/', repeat('r', 10000)) \gexec
SELECT format('SELECT 1 AS a /*%s*/', repeat('route=''x'',', 1000)) \gexec
SELECT format('SELECT 1 AS a /*route=''%s*/', repeat('y', 1000000)) \gexec
SELECT format('SELECT 1 AS a /*route=''%s''*/', repeat('%C3%A9', 40)) \gexec
SELECT format('SELECT 1 AS a /*route=''%s''*/', repeat('%C3%A9', 100)) \gexec
SELECT format('SELECT 1 AS a /*controller=''%s'',action=''%s''*/',
              repeat('%E2%82%AC', 15), repeat('%E2%82%AC', 15)) \gexec
\set ECHO all
SELECT perfguard.begin_request('hostile-end');
SELECT perfguard.end_request() IS NOT NULL AS ended;
SELECT route, requests FROM perfguard.requests
 WHERE route NOT IN ('pg_regress', 'hostile-end') ORDER BY route COLLATE "C";

-- OFFSET 2^63-1, twice: no wrap-around in the sums
SELECT * FROM hs_t ORDER BY id OFFSET 9223372036854775807;
SELECT * FROM hs_t ORDER BY id OFFSET 9223372036854775807;
SELECT max_offset, mean_offset >= 0 AS mean_ok, rows_discarded >= 0 AS sum_ok, calls
  FROM perfguard.offset_pagination;
-- 200 nested subselects, kept apart by OFFSET 0
\set ECHO none
SELECT 'SELECT count(*) FROM ' || repeat('(SELECT * FROM ', 200) || 'hs_t' ||
       repeat(' OFFSET 0) s', 200) \gexec
-- a 1000-deep parenthesised expression, and a 1 MB statement
SELECT 'SELECT ' || repeat('(', 1000) || '1' || repeat(')', 1000) || ' AS deep' \gexec
SELECT 'SELECT length(''' || repeat('z', 1000000) || ''') AS big' \gexec
-- texts longer than the store keeps, with multibyte characters at the cut:
-- queries with a 1,200-character multibyte alias, plans with a multibyte
-- constant (the prefix grows by an odd number of bytes from one to the next)
SET client_min_messages = warning;
SELECT format('SELECT count(*) FROM (SELECT 0 AS x%s, 1 AS "%s") s',
              repeat(', 0 AS x', k), repeat('é', 1200))
  FROM generate_series(1, 2) k \gexec
RESET client_min_messages;
SELECT format('SELECT count(*) FROM hs_t WHERE name <> %L%s', repeat('é', 6000),
              repeat(' AND id > 0', k))
  FROM generate_series(1, 3) k \gexec
\set ECHO all
-- one of the two texts was cut one byte short, between two characters
SELECT octet_length(query) AS stored_bytes FROM perfguard.statements
 WHERE query LIKE 'SELECT count(*) FROM (SELECT $1 AS x, $2 AS x, %' ORDER BY 1;
-- recursion deeper than perfguard tracks (track = all)
CREATE FUNCTION hs_rec(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  IF n <= 0 THEN RETURN 0; END IF;
  RETURN 1 + (SELECT hs_rec(n - 1));
END $$;
SELECT hs_rec(100);
-- nested statements that fail, caught 50 times
DO $$
BEGIN
  FOR i IN 1..50 LOOP
    BEGIN
      PERFORM 1 / (i - i) FROM hs_t WHERE id = i;
    EXCEPTION WHEN division_by_zero THEN NULL;
    END;
  END LOOP;
END $$;
-- a cursor fetched in part, one closed by the end of the transaction
BEGIN;
DECLARE hs_c1 CURSOR FOR SELECT id FROM hs_t ORDER BY id;
FETCH 2 FROM hs_c1;
CLOSE hs_c1;
DECLARE hs_c2 CURSOR FOR SELECT name FROM hs_t ORDER BY id;
FETCH 1 FROM hs_c2;
COMMIT;
-- the same N+1 detection still works afterwards
SELECT perfguard.begin_request('hostile-after');
SELECT name FROM hs_t WHERE id = 1;
SELECT name FROM hs_t WHERE id = 2;
SELECT name FROM hs_t WHERE id = 3;
SELECT queries, n_plus_one FROM perfguard.end_request();
SELECT route, total_repeats, max_distinct_params FROM perfguard.n_plus_one
 WHERE route = 'hostile-after';

-- every view is readable and all its text is valid UTF-8 (convert_from
-- raises an error on an invalid byte sequence)
SELECT v, count(*) >= 0 AS readable,
       bool_and(convert_from(convert_to(t, 'UTF8'), 'UTF8') = t) IS NOT FALSE AS valid_utf8
  FROM (SELECT 'statements' AS v, s::text AS t FROM perfguard.statements s
        UNION ALL SELECT 'n_plus_one', s::text FROM perfguard.n_plus_one s
        UNION ALL SELECT 'duplicates', s::text FROM perfguard.duplicates s
        UNION ALL SELECT 'write_loops', s::text FROM perfguard.write_loops s
        UNION ALL SELECT 'requests', s::text FROM perfguard.requests s
        UNION ALL SELECT 'slow_queries', s::text FROM perfguard.slow_queries s
        UNION ALL SELECT 'plan_findings', s::text FROM perfguard.plan_findings s
        UNION ALL SELECT 'offset_pagination', s::text FROM perfguard.offset_pagination s
        UNION ALL SELECT 'findings', s::text FROM perfguard.findings s
        UNION ALL SELECT 'index_advice', s::text FROM perfguard.index_advice s
        UNION ALL SELECT 'info', s::text FROM perfguard.info s) x
 GROUP BY v ORDER BY v;
SELECT entries <= max_entries AS bounded FROM perfguard.info;

RESET perfguard.slow_query_ms;
RESET perfguard.capture_parameters;
RESET perfguard.track;
RESET perfguard.n_plus_one_threshold;
RESET perfguard.duplicate_threshold;
RESET perfguard.write_loop_threshold;
RESET perfguard.offset_threshold;
RESET perfguard.unbounded_rows;
RESET perfguard.on_n_plus_one;
RESET perfguard.on_duplicate;
RESET perfguard.max_queries_per_request;
RESET perfguard.on_too_many_queries;
SELECT perfguard.reset();
DROP FUNCTION hs_rec(int);
DROP FUNCTION hx(text);
DROP TABLE hs_t;
