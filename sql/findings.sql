--
-- findings: one card per (database, route, problem) with the exact combined
-- fix; Django, Rails (no foreign keys) and SQLAlchemy vocabularies; fixes
-- from two databases shown from either; a pg_sleep statement is not ranked
-- above an N+1; suppression on one route; perfguard's own reports are not
-- recorded (issue 17).  No timings and no OIDs are printed.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
\set SHOW_CONTEXT never
\set origdb :DBNAME
SELECT perfguard.reset();

-- a Django list view over three relations: for each post its author
-- (forward FK), its tags (many-to-many) and its comments (reverse FK)
CREATE TABLE blog_author (id int PRIMARY KEY, name text);
CREATE TABLE blog_post (id int PRIMARY KEY, title varchar(100),
    author_id int REFERENCES blog_author (id) DEFERRABLE INITIALLY DEFERRED);
CREATE INDEX blog_post_author_id ON blog_post (author_id);
CREATE INDEX blog_post_title_like ON blog_post (title varchar_pattern_ops);
CREATE TABLE blog_tag (id int PRIMARY KEY, name text);
CREATE TABLE blog_post_tags (id int PRIMARY KEY,
    post_id int REFERENCES blog_post (id), tag_id int REFERENCES blog_tag (id),
    UNIQUE (post_id, tag_id));
CREATE INDEX blog_post_tags_post_id ON blog_post_tags (post_id);
CREATE INDEX blog_post_tags_tag_id ON blog_post_tags (tag_id);
CREATE TABLE blog_comment (id int PRIMARY KEY,
    post_id int REFERENCES blog_post (id), body text);
CREATE INDEX blog_comment_post_id ON blog_comment (post_id);
INSERT INTO blog_author SELECT g, 'author ' || g FROM generate_series(1, 6) g;
INSERT INTO blog_post SELECT g, 'post ' || g, g FROM generate_series(1, 6) g;
INSERT INTO blog_tag SELECT g, 'tag ' || g FROM generate_series(1, 3) g;
INSERT INTO blog_post_tags SELECT g, g, 1 + g % 3 FROM generate_series(1, 6) g;
INSERT INTO blog_comment SELECT g, 1 + g % 6, 'comment' FROM generate_series(1, 12) g;
ANALYZE blog_author, blog_post, blog_tag, blog_post_tags, blog_comment;

SELECT id, title, author_id FROM blog_post ORDER BY id /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 1 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 1 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 1 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 2 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 2 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 2 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 3 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 3 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 3 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 4 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 4 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 4 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 5 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 5 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 5 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 6 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 6 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 6 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 1 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT 'end of /posts/' /*route='%2Fnext'*/;

-- one card, whose fix names all three relations in Django's vocabulary,
-- stored with the finding when it was first recorded
SELECT category, route, database = current_database() AS this_db,
       framework, inferred, cardinality(queryids) AS statements,
       suggestion
  FROM perfguard.findings WHERE route = 'posts/';
SELECT count(*) FILTER (WHERE fix_found) AS stored_fixes, count(*) AS findings
  FROM perfguard._findings_raw(0)
 WHERE route = 'posts/' AND kind_id IN (1, 4);
-- the duplicate of an author lookup is part of that card, not a card of its
-- own (perfguard.duplicates still lists it)
SELECT (SELECT count(*) FROM perfguard.duplicates WHERE route = 'posts/') AS duplicates,
       (SELECT count(*) FROM perfguard.findings WHERE route = 'posts/') AS cards;
SELECT detail LIKE '%of these lookups repeated one with the same parameters%' AS dup_folded
  FROM perfguard.findings WHERE route = 'posts/';
-- each N+1 of the loop keeps its own fix in perfguard.n_plus_one
SELECT table_name, column_name, suggestion FROM perfguard.n_plus_one
 WHERE route = 'posts/' ORDER BY table_name;
-- the same relations untagged: every framework's vocabulary
SELECT perfguard._fix_suggestion(NULL, false, NULL,
         ARRAY['JOIN blog_author ON blog_author.id = blog_post.author_id'],
         ARRAY['''author'''], ARRAY['''tags'', ''comment_set'''], NULL,
         ARRAY[':author, :tags, :comments'], NULL,
         ARRAY['joinedload(Post.author), selectinload(Post.tags), selectinload(Post.comments)'],
         NULL) AS untagged;

-- SQLAlchemy (framework='flask'): joinedload/selectinload, no Django words
CREATE TABLE sa_authors (id int PRIMARY KEY, name text);
CREATE TABLE sa_posts (id int PRIMARY KEY, title text,
    author_id int REFERENCES sa_authors (id));
CREATE TABLE sa_tags (id int PRIMARY KEY, name text);
CREATE TABLE sa_post_tags (post_id int REFERENCES sa_posts (id),
    tag_id int REFERENCES sa_tags (id), PRIMARY KEY (post_id, tag_id));
CREATE TABLE sa_comments (id int PRIMARY KEY,
    post_id int REFERENCES sa_posts (id), body text);
INSERT INTO sa_authors SELECT g, 'author ' || g FROM generate_series(1, 6) g;
INSERT INTO sa_posts SELECT g, 'post ' || g, g FROM generate_series(1, 6) g;
INSERT INTO sa_tags SELECT g, 'tag ' || g FROM generate_series(1, 3) g;
INSERT INTO sa_post_tags SELECT g, 1 + g % 3 FROM generate_series(1, 6) g;
INSERT INTO sa_comments SELECT g, 1 + g % 6, 'comment' FROM generate_series(1, 12) g;

SELECT sa_posts.id AS sa_posts_id, sa_posts.title AS sa_posts_title, sa_posts.author_id AS sa_posts_author_id FROM sa_posts /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_authors.id AS sa_authors_id, sa_authors.name AS sa_authors_name FROM sa_authors WHERE sa_authors.id = 1 /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_tags.id AS sa_tags_id, sa_tags.name AS sa_tags_name FROM sa_tags, sa_post_tags WHERE 1 = sa_post_tags.post_id AND sa_tags.id = sa_post_tags.tag_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_comments.id AS sa_comments_id, sa_comments.body AS sa_comments_body FROM sa_comments WHERE 1 = sa_comments.post_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_authors.id AS sa_authors_id, sa_authors.name AS sa_authors_name FROM sa_authors WHERE sa_authors.id = 2 /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_tags.id AS sa_tags_id, sa_tags.name AS sa_tags_name FROM sa_tags, sa_post_tags WHERE 2 = sa_post_tags.post_id AND sa_tags.id = sa_post_tags.tag_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_comments.id AS sa_comments_id, sa_comments.body AS sa_comments_body FROM sa_comments WHERE 2 = sa_comments.post_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_authors.id AS sa_authors_id, sa_authors.name AS sa_authors_name FROM sa_authors WHERE sa_authors.id = 3 /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_tags.id AS sa_tags_id, sa_tags.name AS sa_tags_name FROM sa_tags, sa_post_tags WHERE 3 = sa_post_tags.post_id AND sa_tags.id = sa_post_tags.tag_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_comments.id AS sa_comments_id, sa_comments.body AS sa_comments_body FROM sa_comments WHERE 3 = sa_comments.post_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_authors.id AS sa_authors_id, sa_authors.name AS sa_authors_name FROM sa_authors WHERE sa_authors.id = 4 /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_tags.id AS sa_tags_id, sa_tags.name AS sa_tags_name FROM sa_tags, sa_post_tags WHERE 4 = sa_post_tags.post_id AND sa_tags.id = sa_post_tags.tag_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_comments.id AS sa_comments_id, sa_comments.body AS sa_comments_body FROM sa_comments WHERE 4 = sa_comments.post_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_authors.id AS sa_authors_id, sa_authors.name AS sa_authors_name FROM sa_authors WHERE sa_authors.id = 5 /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_tags.id AS sa_tags_id, sa_tags.name AS sa_tags_name FROM sa_tags, sa_post_tags WHERE 5 = sa_post_tags.post_id AND sa_tags.id = sa_post_tags.tag_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_comments.id AS sa_comments_id, sa_comments.body AS sa_comments_body FROM sa_comments WHERE 5 = sa_comments.post_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_authors.id AS sa_authors_id, sa_authors.name AS sa_authors_name FROM sa_authors WHERE sa_authors.id = 6 /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_tags.id AS sa_tags_id, sa_tags.name AS sa_tags_name FROM sa_tags, sa_post_tags WHERE 6 = sa_post_tags.post_id AND sa_tags.id = sa_post_tags.tag_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT sa_comments.id AS sa_comments_id, sa_comments.body AS sa_comments_body FROM sa_comments WHERE 6 = sa_comments.post_id /*controller='posts.index',framework='flask',route='%2Fsa%2Fposts'*/;
SELECT 'end of /sa/posts' /*route='%2Fnext'*/;
SELECT category, framework, inferred, suggestion,
       suggestion LIKE '%Django%' OR suggestion LIKE '%prefetch_related%' AS django_words
  FROM perfguard.findings WHERE route = '/sa/posts';

-- slow statements carry the route of their request; a statement whose time
-- is spent in pg_sleep() is not ranked as a plan problem, nor above an N+1
SET perfguard.slow_query_ms = 50;
SELECT pg_sleep(0.06), count(*) FROM blog_post /*route='%2Fsleepy%2F1'*/;
SELECT pg_sleep(0.06), count(*) FROM blog_post /*route='%2Fsleepy%2F2'*/;
SELECT pg_sleep(0.06), count(*) FROM blog_post /*route='%2Fsleepy%2F3'*/;
SELECT pg_sleep(0.06), count(*) FROM blog_post /*route='%2Fsleepy%2F4'*/;
SELECT 'end of /sleepy/' /*route='%2Fnext'*/;
RESET perfguard.slow_query_ms;
SELECT route LIKE '/sleepy/_' AS has_route, wait_what, slow_calls
  FROM perfguard.slow_queries WHERE query LIKE 'SELECT pg_sleep%';
SELECT category, route LIKE '/sleepy/_' AS has_route, impact_ms,
       detail LIKE '%spent waiting (pg_sleep()), not in the plan%' AS says_waiting,
       suggestion LIKE 'no index or plan change makes this faster%' AS says_no_plan_fix,
       rank > (SELECT max(rank) FROM perfguard.findings
                WHERE category LIKE 'n_plus_one%') AS below_every_n_plus_one
  FROM perfguard.findings WHERE query LIKE 'SELECT pg_sleep%';
-- nor when it was never sampled (faster than slow_query_ms): the index
-- advised for its scan saves nothing of the time spent in pg_sleep()
SET perfguard.enabled = off;
CREATE TABLE nap_big (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO nap_big SELECT g, g % 1000 FROM generate_series(1, 100000) g;
ANALYZE nap_big;
RESET perfguard.enabled;
SELECT count(*), pg_sleep(0.01) FROM nap_big WHERE v = 42 /*route='%2Fnap%2F'*/;
SELECT count(*), pg_sleep(0.01) FROM nap_big WHERE v = 43 /*route='%2Fnap%2F'*/;
SELECT 'end of /nap/' /*route='%2Fnext'*/;
SELECT perfguard.refresh_advice() > 0 AS refreshed;
SELECT category, impact_ms,
       detail LIKE '%100\% of the time of its statements is in statements that wait in pg_sleep(), which no index shortens' AS says_waiting,
       suggestion,
       rank > (SELECT max(rank) FROM perfguard.findings
                WHERE category LIKE 'n_plus_one%') AS below_every_n_plus_one
  FROM perfguard.findings WHERE query LIKE '%nap_big%';
DROP TABLE nap_big;
SELECT perfguard.refresh_advice() >= 0 AS refreshed;

-- severity follows the rank
SELECT bool_and(ok) AS severity_follows_rank
  FROM (SELECT (CASE severity WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END)
               <= coalesce(lag(CASE severity WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END)
                           OVER (ORDER BY rank), 3) AS ok
          FROM perfguard.findings) s;
SELECT severity FROM perfguard.findings WHERE rank = 1;

-- ignoring a statement on one route leaves it reported on another
CREATE TABLE ig_author (id int PRIMARY KEY, name text);
CREATE TABLE ig_book (id int PRIMARY KEY, author_id int REFERENCES ig_author (id));
INSERT INTO ig_author SELECT g, 'a' || g FROM generate_series(1, 6) g;
INSERT INTO ig_book SELECT g, g FROM generate_series(1, 6) g;

SELECT id, author_id FROM ig_book ORDER BY id /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 1 /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 2 /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 3 /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 4 /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 5 /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 6 /*route='%2Fhealth%2F'*/;
SELECT id, author_id FROM ig_book ORDER BY id /*route='%2Fbooks%2F'*/;
SELECT name FROM ig_author WHERE id = 1 /*route='%2Fbooks%2F'*/;
SELECT name FROM ig_author WHERE id = 2 /*route='%2Fbooks%2F'*/;
SELECT name FROM ig_author WHERE id = 3 /*route='%2Fbooks%2F'*/;
SELECT name FROM ig_author WHERE id = 4 /*route='%2Fbooks%2F'*/;
SELECT name FROM ig_author WHERE id = 5 /*route='%2Fbooks%2F'*/;
SELECT name FROM ig_author WHERE id = 6 /*route='%2Fbooks%2F'*/;
SELECT 'end' /*route='%2Fnext'*/;
SELECT perfguard.ignore(queryid, 'cached upstream', '/health/')
  FROM perfguard.n_plus_one WHERE route = '/health/';
SELECT kind, queryid IS NOT NULL AS has_queryid, route, reason
  FROM perfguard.ignore_rules;
SELECT route FROM perfguard.n_plus_one WHERE query LIKE '%ig_author%' ORDER BY route;
SELECT route FROM perfguard.findings WHERE query LIKE '%ig_author%' ORDER BY route;
SELECT category, route, suppressed_by FROM perfguard.ignored;
-- the rule holds for later requests: the guard stays quiet on /health/ only
SET perfguard.on_n_plus_one = 'error';

SELECT id, author_id FROM ig_book ORDER BY id /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 1 /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 2 /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 3 /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 4 /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 5 /*route='%2Fhealth%2F'*/;
SELECT name FROM ig_author WHERE id = 6 /*route='%2Fhealth%2F'*/;
SELECT id, author_id FROM ig_book ORDER BY id /*route='%2Fbooks%2F'*/;
SELECT name FROM ig_author WHERE id = 1 /*route='%2Fbooks%2F'*/;
SELECT name FROM ig_author WHERE id = 2 /*route='%2Fbooks%2F'*/;
SELECT name FROM ig_author WHERE id = 3 /*route='%2Fbooks%2F'*/;
SELECT name FROM ig_author WHERE id = 4 /*route='%2Fbooks%2F'*/;
SELECT name FROM ig_author WHERE id = 5 /*route='%2Fbooks%2F'*/;
RESET perfguard.on_n_plus_one;
SELECT perfguard.unignore(queryid, '/health/') FROM perfguard.ignore_rules;
SELECT count(*) AS rules FROM perfguard.ignore_rules;
SELECT perfguard.ignore(1, NULL, '');

-- perfguard's own report statements are neither slow queries nor findings
SELECT perfguard.reset();
SET perfguard.slow_query_ms = 0;
SELECT count(*) >= 0 FROM perfguard.findings;
SELECT count(*) >= 0 FROM perfguard.findings;
SELECT count(*) >= 0 FROM perfguard.n_plus_one;
SELECT 'end' /*route='%2Fnext'*/;
RESET perfguard.slow_query_ms;
SELECT count(*) AS report_samples FROM perfguard.slow_queries
 WHERE query LIKE '%perfguard.%';
SELECT count(*) AS report_findings FROM perfguard._findings_raw(0);

-- a fresh schema gets no DROP advice (perfguard.unused_index_min_age, 7 days)
SELECT count(*) FILTER (WHERE category IN ('index_unused', 'index_duplicate', 'index_redundant'))
         AS drop_cards
  FROM perfguard.findings;
-- ... which the wait alone holds back: blog_post_title_like was never used
SELECT pg_stat_force_next_flush();
SET perfguard.unused_index_min_age = 0;
SELECT perfguard.refresh_advice() > 0 AS refreshed;
SELECT bool_or(category = 'index_unused' AND
               detail LIKE 'public.blog_post index blog_post_title_like: %') AS like_index,
       bool_and(severity = 'low' AND impact_ms IS NULL) AS low_and_last
  FROM perfguard.findings
 WHERE category IN ('index_unused', 'index_duplicate', 'index_redundant')
   AND detail LIKE 'public.blog\_%';
RESET perfguard.unused_index_min_age;
SELECT perfguard.refresh_advice() >= 0 AS refreshed;

-- fixes from two databases: each is stored with its finding, so a report in
-- either database shows both.  The other database is a Rails app whose
-- t.references created no foreign key: the relations are inferred.
SELECT perfguard.reset();

SELECT id, title, author_id FROM blog_post ORDER BY id /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 1 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 1 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 1 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 2 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 2 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 2 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 3 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 3 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 3 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 4 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 4 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 4 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 5 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 5 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 5 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, name FROM blog_author WHERE id = 6 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT blog_tag.id, blog_tag.name FROM blog_tag INNER JOIN blog_post_tags ON blog_tag.id = blog_post_tags.tag_id WHERE blog_post_tags.post_id = 6 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT id, post_id, body FROM blog_comment WHERE post_id = 6 /*controller='post-list',framework='django%3A3.2',route='posts%2F'*/;
SELECT 'end of /posts/' /*route='%2Fnext'*/;
CREATE DATABASE pfg_findings_rails;
\c pfg_findings_rails
SET client_min_messages = warning;
CREATE EXTENSION perfguard;
RESET client_min_messages;
CREATE TABLE authors (id bigserial PRIMARY KEY, name varchar);
CREATE TABLE posts (id bigserial PRIMARY KEY, title varchar, author_id bigint);
CREATE INDEX index_posts_on_author_id ON posts (author_id);
CREATE TABLE tags (id bigserial PRIMARY KEY, name varchar);
CREATE TABLE posts_tags (post_id bigint NOT NULL, tag_id bigint NOT NULL);
CREATE TABLE comments (id bigserial PRIMARY KEY, post_id bigint, body text);
CREATE INDEX index_comments_on_post_id ON comments (post_id);
INSERT INTO authors SELECT g, 'a' || g FROM generate_series(1, 6) g;
INSERT INTO posts SELECT g, 't' || g, g FROM generate_series(1, 6) g;
INSERT INTO tags SELECT g, 'tag' || g FROM generate_series(1, 3) g;
INSERT INTO posts_tags SELECT g, 1 + g % 3 FROM generate_series(1, 6) g;
INSERT INTO comments (post_id, body) SELECT 1 + g % 6, 'c' FROM generate_series(1, 12) g;

SELECT "posts".* FROM "posts" /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "authors".* FROM "authors" WHERE "authors"."id" = 1 LIMIT 1 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "tags".* FROM "tags" INNER JOIN "posts_tags" ON "tags"."id" = "posts_tags"."tag_id" WHERE "posts_tags"."post_id" = 1 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "comments".* FROM "comments" WHERE "comments"."post_id" = 1 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "authors".* FROM "authors" WHERE "authors"."id" = 2 LIMIT 1 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "tags".* FROM "tags" INNER JOIN "posts_tags" ON "tags"."id" = "posts_tags"."tag_id" WHERE "posts_tags"."post_id" = 2 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "comments".* FROM "comments" WHERE "comments"."post_id" = 2 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "authors".* FROM "authors" WHERE "authors"."id" = 3 LIMIT 1 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "tags".* FROM "tags" INNER JOIN "posts_tags" ON "tags"."id" = "posts_tags"."tag_id" WHERE "posts_tags"."post_id" = 3 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "comments".* FROM "comments" WHERE "comments"."post_id" = 3 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "authors".* FROM "authors" WHERE "authors"."id" = 4 LIMIT 1 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "tags".* FROM "tags" INNER JOIN "posts_tags" ON "tags"."id" = "posts_tags"."tag_id" WHERE "posts_tags"."post_id" = 4 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "comments".* FROM "comments" WHERE "comments"."post_id" = 4 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "authors".* FROM "authors" WHERE "authors"."id" = 5 LIMIT 1 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "tags".* FROM "tags" INNER JOIN "posts_tags" ON "tags"."id" = "posts_tags"."tag_id" WHERE "posts_tags"."post_id" = 5 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "comments".* FROM "comments" WHERE "comments"."post_id" = 5 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "authors".* FROM "authors" WHERE "authors"."id" = 6 LIMIT 1 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "tags".* FROM "tags" INNER JOIN "posts_tags" ON "tags"."id" = "posts_tags"."tag_id" WHERE "posts_tags"."post_id" = 6 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT "comments".* FROM "comments" WHERE "comments"."post_id" = 6 /*action='index',controller='posts',framework='rails',route='%2Fposts'*/;
SELECT 'end of /posts' /*route='%2Fnext'*/;
-- read from the Rails database: both cards, each with its fix
SELECT route, database = current_database() AS this_db, framework, inferred,
       suggestion
  FROM perfguard.findings WHERE category LIKE 'n_plus_one%' ORDER BY route;
\c :origdb
-- and from the Django database: the same
SELECT route, database = current_database() AS this_db, framework, inferred,
       suggestion
  FROM perfguard.findings WHERE category LIKE 'n_plus_one%' ORDER BY route;
DROP DATABASE pfg_findings_rails;

SELECT perfguard.reset();
DROP TABLE blog_comment, blog_post_tags, blog_tag, blog_post, blog_author;
DROP TABLE sa_comments, sa_post_tags, sa_tags, sa_posts, sa_authors;
DROP TABLE ig_book, ig_author;
