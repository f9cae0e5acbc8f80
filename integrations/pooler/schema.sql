-- Tables of the pooler end-to-end test (every stack uses them).
-- 30 books, each by a different author (so an N+1 over them has 30 distinct
-- parameter sets and no duplicate), two tags per book, and pf_hit for the
-- write loops.
CREATE TABLE pf_author (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE pf_tag (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE pf_book (id int PRIMARY KEY,
                      author_id int NOT NULL REFERENCES pf_author (id),
                      title text NOT NULL);
CREATE INDEX ON pf_book (author_id);
CREATE TABLE pf_book_tags (id serial PRIMARY KEY,
                           book_id int NOT NULL REFERENCES pf_book (id),
                           tag_id int NOT NULL REFERENCES pf_tag (id),
                           UNIQUE (book_id, tag_id));
CREATE INDEX ON pf_book_tags (tag_id);
CREATE TABLE pf_hit (id bigserial PRIMARY KEY, route text NOT NULL, n int NOT NULL);

INSERT INTO pf_author SELECT g, 'Author ' || g FROM generate_series(1, 40) g;
INSERT INTO pf_tag SELECT g, 'tag' || g FROM generate_series(1, 10) g;
INSERT INTO pf_book SELECT g, g, 'Book ' || g FROM generate_series(1, 30) g;
INSERT INTO pf_book_tags (book_id, tag_id)
SELECT b, t FROM generate_series(1, 30) b,
       LATERAL (VALUES (b % 10 + 1), ((b + 3) % 10 + 1)) v(t);
ANALYZE;
