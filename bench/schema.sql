-- bench/schema.sql
--
-- Tables shared by every benchmark part.  Loaded once per throwaway cluster
-- (database "bench") before any measurement.
--
--   t                  10,000 rows: the single-row lookup of the simple workload
--   author/post/comment a small blog for the ORM-like workload (N+1 bursts)
--   event              the INSERT of each ORM request
--   w                  50 integer columns: the churn workload builds distinct
--                      statement shapes from combinations of them

CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO t SELECT g, g * 2 FROM generate_series(1, 10000) g;

CREATE TABLE author (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO author SELECT g, 'author ' || g FROM generate_series(1, 1000) g;

CREATE TABLE post (id int PRIMARY KEY,
                   author_id int NOT NULL REFERENCES author,
                   title text NOT NULL);
INSERT INTO post SELECT g, 1 + (g * 7) % 1000, 'post ' || g
  FROM generate_series(1, 10000) g;
CREATE INDEX post_author_id_idx ON post (author_id);

CREATE TABLE comment (id int PRIMARY KEY,
                      post_id int NOT NULL REFERENCES post,
                      body text NOT NULL);
INSERT INTO comment SELECT g, 1 + (g * 13) % 10000, 'comment ' || g
  FROM generate_series(1, 50000) g;
CREATE INDEX comment_post_id_idx ON comment (post_id);

CREATE TABLE event (id bigserial PRIMARY KEY, post_id int NOT NULL,
                    kind int NOT NULL, at timestamptz NOT NULL DEFAULT now());

SELECT format('CREATE TABLE w (id int PRIMARY KEY, %s)',
              string_agg(format('c%s int NOT NULL DEFAULT %s', i, i), ', '))
  FROM generate_series(1, 50) i \gexec
INSERT INTO w (id) SELECT g FROM generate_series(1, 100) g;

VACUUM ANALYZE;
