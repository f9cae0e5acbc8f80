--
-- privileges: counters for everyone, text only for the statement's own
-- user, superusers and pg_read_all_stats; reset() and cursor_secret are
-- not for PUBLIC
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS perfguard;
RESET client_min_messages;
CREATE ROLE pfg_alice LOGIN;
CREATE ROLE pfg_bob LOGIN;
CREATE TABLE pv_t (id int PRIMARY KEY, secret text);
INSERT INTO pv_t VALUES (1, 's1'), (2, 's2');
GRANT SELECT ON pv_t TO pfg_alice, pfg_bob;
SELECT perfguard.reset();

SET ROLE pfg_alice;
SELECT secret FROM pv_t WHERE id = 1;
RESET ROLE;

SET ROLE pfg_bob;
-- bob sees alice's counters, not her text
SELECT query IS NULL AS text_hidden, calls
  FROM perfguard.statements WHERE userid = 'pfg_alice'::regrole;
SELECT secret FROM pv_t WHERE id = 2;
-- his own statements are visible to him
SELECT query FROM perfguard.statements
 WHERE userid = 'pfg_bob'::regrole AND query LIKE '%pv_t%';
-- he cannot reset, nor read the cursor secret
SELECT perfguard.reset();
SHOW perfguard.cursor_secret;
SET perfguard.cursor_secret = 'mine';
SET perfguard.capture_parameters = on;
RESET ROLE;

-- pg_read_all_stats sees everything
GRANT pg_read_all_stats TO pfg_bob;
SET ROLE pfg_bob;
SELECT query FROM perfguard.statements
 WHERE userid = 'pfg_alice'::regrole AND query LIKE '%pv_t%';
RESET ROLE;

-- superuser sees everything and can reset
SELECT count(*) AS alice_texts FROM perfguard.statements
 WHERE userid = 'pfg_alice'::regrole AND query IS NOT NULL;
SELECT perfguard.reset();

REVOKE pg_read_all_stats FROM pfg_bob;
DROP TABLE pv_t;
DROP ROLE pfg_alice;
DROP ROLE pfg_bob;
