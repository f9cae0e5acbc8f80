SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
-- own schema: no clash with the objects of other suites in the same database
CREATE SCHEMA keyset_test;
SET search_path = keyset_test, public;

--
-- keyset_predicate: the generated text for several shapes
--
-- same direction, no NULLs: a row comparison (DESC sorts NULLs first, so it is exact)
SELECT perfguard.keyset_predicate('created_at DESC, id DESC',
       '{"created_at": "2024-01-02T00:00:00+00:00", "id": 7}');
-- ASC sorts NULLs last: without a relation the columns may hold NULLs
SELECT perfguard.keyset_predicate('id', '{"id": 5}');
SELECT perfguard.keyset_predicate('a, b', '{"a": "x", "b": 1}');
-- mixed directions: an OR-chain
SELECT perfguard.keyset_predicate('score DESC, id', '{"score": 10, "id": 3}');
SELECT perfguard.keyset_predicate('a DESC NULLS LAST, b ASC NULLS FIRST, c DESC',
       '{"a": 1.5, "b": "q", "c": true}');
-- NULLs in the sort values
SELECT perfguard.keyset_predicate('score DESC NULLS LAST, id', '{"score": null, "id": 3}');
SELECT perfguard.keyset_predicate('score NULLS FIRST, id DESC', '{"score": null, "id": 3}');
SELECT perfguard.keyset_predicate('a, b', '{"a": null, "b": null}');
-- extra keys are ignored (a whole to_jsonb(row) may be passed)
SELECT perfguard.keyset_predicate('id DESC', '{"id": 9, "other": "ignored"}');
-- quoted identifiers, case folding, and values that try to escape their literal
SELECT perfguard.keyset_predicate('"Weird ""Name""" DESC, ID DESC',
       '{"Weird \"Name\"": "it''s", "id": 1}');
SELECT perfguard.keyset_predicate('id', $${"id": "1') OR true; DROP TABLE x; --"}$$);
SELECT perfguard.keyset_predicate('id', $${"id": "a\\b"}$$);

-- bad input
SELECT perfguard.keyset_predicate('id; DROP TABLE x', '{"id": 1}');
SELECT perfguard.keyset_predicate('"id"; --', '{"id": 1}');
SELECT perfguard.keyset_predicate('id DESC, t.x', '{"id": 1}');
SELECT perfguard.keyset_predicate('lower(name)', '{"id": 1}');
SELECT perfguard.keyset_predicate('id NULLS', '{"id": 1}');
SELECT perfguard.keyset_predicate('id DESC ASC', '{"id": 1}');
SELECT perfguard.keyset_predicate('id,', '{"id": 1}');
SELECT perfguard.keyset_predicate('"unterminated', '{"id": 1}');
SELECT perfguard.keyset_predicate('  ', '{"id": 1}');
SELECT perfguard.keyset_predicate('id, ID', '{"id": 1}');
SELECT perfguard.keyset_predicate('id', '{"other": 1}');
SELECT perfguard.keyset_predicate('id', '[1]');

--
-- test data: duplicate sort values, NULLs, a composite key
--
CREATE TABLE items (
    id int PRIMARY KEY,
    grp int NOT NULL,
    score int,
    name text,
    created_at timestamptz NOT NULL
);
INSERT INTO items
SELECT i, i % 3,
       CASE WHEN i % 5 = 0 THEN NULL ELSE (i * 7) % 6 END,
       CASE WHEN i % 4 = 0 THEN NULL ELSE chr(97 + i % 3) END,
       '2024-01-01 00:00:00+00'::timestamptz + (i % 6) * interval '1 hour'
FROM generate_series(1, 40) i;
CREATE INDEX items_created_at_id_idx ON items (created_at, id);
CREATE TABLE pairs (a int, b int, payload text, PRIMARY KEY (a, b));
INSERT INTO pairs SELECT i / 4, i % 4, 'p' || i FROM generate_series(0, 29) i;
CREATE TABLE empty_t (id int PRIMARY KEY);

-- with a relation, NOT NULL columns need no IS NULL terms
SELECT perfguard.keyset_predicate('created_at, id',
       '{"created_at": "2024-01-01T02:00:00+00:00", "id": 8}', 'items');
SELECT perfguard.keyset_predicate('score, id', '{"score": 4, "id": 8}', 'items');
SELECT perfguard.keyset_predicate('score DESC NULLS LAST, id', '{"score": 4, "id": 8}', 'items');
SELECT perfguard.keyset_predicate('nosuch', '{"nosuch": 1}', 'items');
-- the row comparison is an index condition
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM items
WHERE (created_at, id) > ('2024-01-01T02:00:00+00:00', '8')
ORDER BY created_at, id LIMIT 5;
RESET enable_seqscan;

-- which index serves an ORDER BY (or which one to create)
SELECT perfguard.keyset_index('items', 'created_at, id');
SELECT perfguard.keyset_index('items', 'created_at DESC, id DESC');
SELECT perfguard.keyset_index('items', 'id DESC');
SELECT perfguard.keyset_index('items', 'created_at, id DESC');
SELECT perfguard.keyset_index('items', 'score DESC NULLS LAST, id');
SELECT perfguard.keyset_index('pairs', 'a DESC, b DESC');

--
-- keyset_page: walk all pages and compare with one ORDER BY
--
CREATE FUNCTION page_all(rel regclass, ob text, ps int, flt text DEFAULT NULL)
RETURNS TABLE (page int, n int, r jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    cur text := NULL;
    rec record;
    got int;
BEGIN
    page := 0;
    n := 0;
    LOOP
        page := page + 1;
        got := 0;
        FOR rec IN SELECT * FROM perfguard.keyset_page(rel, ob, ps, cur, flt) LOOP
            got := got + 1;
            IF rec.next_cursor IS NOT NULL AND got < ps THEN
                RAISE EXCEPTION 'cursor on row % of page %', got, page;
            END IF;
            n := n + 1;
            r := rec.row;
            cur := rec.next_cursor;
            RETURN NEXT;
        END LOOP;
        IF got = 0 AND page > 1 THEN
            RAISE EXCEPTION 'empty page % after a cursor', page;
        END IF;
        EXIT WHEN cur IS NULL;
        IF page > 1000 THEN
            RAISE EXCEPTION 'too many pages';
        END IF;
    END LOOP;
END;
$$;

-- compare paged rows (position and content) with the single query
CREATE FUNCTION check_paging(rel regclass, ob text, ps int, flt text DEFAULT NULL)
RETURNS TABLE (paged bigint, total bigint, pages int, same_order boolean)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH p AS (SELECT * FROM page_all(%L, %L, %s, %L)),
              q AS (SELECT row_number() OVER (ORDER BY %s)::int AS n, to_jsonb(t.*) AS r
                    FROM %s t %s)
         SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM q),
                (SELECT max(page) FROM p),
                NOT EXISTS (SELECT n, r FROM p EXCEPT ALL SELECT n, r FROM q)
                AND NOT EXISTS (SELECT n, r FROM q EXCEPT ALL SELECT n, r FROM p)',
        rel, ob, ps, flt, ob, rel,
        CASE WHEN flt IS NULL THEN '' ELSE 'WHERE ' || flt END);
END;
$$;

SET client_min_messages = warning;	-- hide the "no index" notices of the loops
SELECT * FROM check_paging('items', 'created_at, id', 7);
SELECT * FROM check_paging('items', 'created_at DESC, id DESC', 5);
SELECT * FROM check_paging('items', 'score, id', 4);
SELECT * FROM check_paging('items', 'score DESC, name, id', 3);
SELECT * FROM check_paging('items', 'score NULLS FIRST, name DESC NULLS LAST, id', 2);
SELECT * FROM check_paging('items', 'name DESC NULLS LAST, score NULLS FIRST, id DESC', 1);
SELECT * FROM check_paging('items', 'grp, name, created_at DESC, id', 6);
SELECT * FROM check_paging('items', 'id', 10);		-- 40 rows: exactly 4 pages
SELECT * FROM check_paging('items', 'created_at, id', 40);	-- one page
SELECT * FROM check_paging('items', 'created_at, id', 10000);
SELECT * FROM check_paging('pairs', 'a DESC, b', 4);
SELECT * FROM check_paging('pairs', 'b, a DESC, payload', 5);
SELECT * FROM check_paging('items', 'score DESC, id', 4, 'grp = 2 AND name IS NOT NULL');
SELECT * FROM check_paging('items', 'id', 3, '(SELECT count(*) FROM pairs) > 0');
SELECT * FROM check_paging('empty_t', 'id', 5);
RESET client_min_messages;

-- a page as it is returned; the cursor only on the last row of a non-final page
SELECT p.row->>'id' AS id, p.next_cursor IS NOT NULL AS has_cursor
FROM perfguard.keyset_page('items', 'created_at DESC, id DESC', 3) p;
SELECT count(*) FROM perfguard.keyset_page('empty_t', 'id', 5);
-- NOTICE once when no index serves the order
SELECT p.row->>'id' AS id
FROM perfguard.keyset_page('items', 'score DESC NULLS LAST, id', 2) p;

-- rows inserted between pages: keyset continues after the last row seen
CREATE TABLE feed (id int PRIMARY KEY, created_at timestamptz NOT NULL);
INSERT INTO feed SELECT i, '2024-01-01 00:00:00+00'::timestamptz + i * interval '1 minute'
FROM generate_series(1, 10) i;
SELECT next_cursor AS c1 FROM perfguard.keyset_page('feed', 'created_at, id', 4)
WHERE next_cursor IS NOT NULL \gset
SELECT perfguard.cursor_decode(:'c1');
-- one row sorts before the cursor (not shown later), one after (shown)
INSERT INTO feed VALUES (100, '2024-01-01 00:00:30+00'), (101, '2024-01-01 00:06:30+00');
SELECT p.row->>'id' AS id, p.next_cursor IS NOT NULL AS has_cursor
FROM perfguard.keyset_page('feed', 'created_at, id', 4, :'c1') p;

--
-- cursors
--
SELECT perfguard.cursor_encode('{"id": 5}');
SELECT perfguard.cursor_decode(perfguard.cursor_encode('{"id": 5, "t": "x y/+"}'));
SELECT perfguard.cursor_decode(perfguard.cursor_encode('[1, null, "é"]'));
SELECT perfguard.cursor_encode('{"s": "???>>>"}') ~ '^[A-Za-z0-9_-]+$' AS url_safe;
-- tampered, truncated, foreign
SELECT perfguard.cursor_decode('AQB7ImlkIjogNn0');	-- payload edited by hand, unsigned: decodes
SELECT perfguard.cursor_decode('AQB7ImlkIjogN');
SELECT perfguard.cursor_decode('AQB7ImlkIjog');
SELECT perfguard.cursor_decode('AQ');
SELECT perfguard.cursor_decode('A');
SELECT perfguard.cursor_decode('AQB7Im$kIjogNX0');
SELECT perfguard.cursor_decode('AQB7ImlkIjogNX0=');
SELECT perfguard.cursor_decode('AgB7ImlkIjogNX0');
SELECT perfguard.cursor_decode('AQJ7ImlkIjogNX0');
SELECT perfguard.cursor_decode('');
SELECT * FROM perfguard.keyset_page('items', 'id', 5, 'AQB7ImlkIjogN');
-- a cursor of another ORDER BY
SELECT * FROM perfguard.keyset_page('items', 'created_at, id', 5,
                                    perfguard.cursor_encode('{"id": 5}'));

-- signed cursors
SET perfguard.cursor_secret = 'first secret';
SELECT perfguard.cursor_encode('{"id": 5}') AS s1 \gset
SELECT length(:'s1') AS signed_length, perfguard.cursor_decode(:'s1');
-- every single-character change and every truncation is refused
DO $$
DECLARE
    c text := perfguard.cursor_encode('{"id": 5}');
    bad int := 0;
    i int;
BEGIN
    FOR i IN 1 .. length(c) LOOP
        BEGIN
            PERFORM perfguard.cursor_decode(overlay(c placing
                CASE WHEN substr(c, i, 1) = 'A' THEN 'B' ELSE 'A' END from i for 1));
            bad := bad + 1;
        EXCEPTION WHEN invalid_parameter_value THEN
            NULL;
        END;
    END LOOP;
    -- truncations too
    FOR i IN 0 .. length(c) - 1 LOOP
        BEGIN
            PERFORM perfguard.cursor_decode(left(c, i));
            bad := bad + 1;
        EXCEPTION WHEN invalid_parameter_value THEN
            NULL;
        END;
    END LOOP;
    RAISE NOTICE 'altered or truncated cursors accepted: %', bad;
END;
$$;
-- an unsigned cursor is refused while a secret is set
SELECT perfguard.cursor_decode('AQB7ImlkIjogNX0');
-- another secret
SET perfguard.cursor_secret = 'second secret';
SELECT perfguard.cursor_decode(:'s1');
-- no secret: a signed cursor cannot be verified
RESET perfguard.cursor_secret;
SELECT perfguard.cursor_decode(:'s1');
-- paging works with signed cursors
SET perfguard.cursor_secret = 'first secret';
SET client_min_messages = warning;
SELECT * FROM check_paging('items', 'score DESC, name, id', 6);
RESET client_min_messages;
RESET perfguard.cursor_secret;

--
-- keyset_page refusals
--
SELECT * FROM perfguard.keyset_page('items', 'created_at', 5);
SELECT * FROM perfguard.keyset_page('items', 'created_at DESC, grp DESC', 5);
SELECT * FROM perfguard.keyset_page('pairs', 'a', 5);
CREATE TABLE codes (code text UNIQUE, v int);
SELECT * FROM perfguard.keyset_page('codes', 'code', 5);	-- unique, but NULLs repeat
SELECT * FROM perfguard.keyset_page('items', 'id', 0);
SELECT * FROM perfguard.keyset_page('items', 'id', 10001);
SELECT * FROM perfguard.keyset_page('items', 'nosuch', 5);
SELECT * FROM perfguard.keyset_page('items', 'ctid', 5);
CREATE VIEW items_v AS SELECT * FROM items;
SELECT * FROM perfguard.keyset_page('items_v', 'id', 5);
SELECT * FROM perfguard.keyset_page(NULL, 'id', 5);

-- injection attempts in order_by and filter
SELECT * FROM perfguard.keyset_page('items', 'id; DROP TABLE items', 5);
SELECT * FROM perfguard.keyset_page('items', '"id"; --', 5);
SELECT * FROM perfguard.keyset_page('items', 'id', 5, NULL, 'true); DROP TABLE items; --');
SELECT * FROM perfguard.keyset_page('items', 'id', 5, NULL, 'grp = 1; DROP TABLE items');
SELECT * FROM perfguard.keyset_page('items', 'id', 5, NULL, 'true) OR (true');
SELECT * FROM perfguard.keyset_page('items', 'id', 5, NULL, 'true UNION SELECT 1');
SELECT * FROM perfguard.keyset_page('items', 'id', 5, NULL, $$name = 'a'') OR true --$$);
SELECT * FROM perfguard.keyset_page('items', 'id', 5, NULL, 'true /*');
SELECT * FROM perfguard.keyset_page('items', 'id', 5, NULL, '');
-- a trailing comment cannot swallow the keyset predicate
SELECT count(*) FROM perfguard.keyset_page('items', 'id', 100,
    perfguard.cursor_encode('{"id": 35}'), 'true --');
-- a filter that is not boolean or names an unknown column fails in the page query
SELECT * FROM perfguard.keyset_page('items', 'id', 5, NULL, 'nosuch = 1');
SELECT count(*) AS items_still_there FROM items;

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA keyset_test CASCADE;
RESET client_min_messages;
