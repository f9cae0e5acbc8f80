-- bench/poll_perfguard.sql: read every view of schema perfguard once
-- (run by the churn poller once a second).
SELECT format('SELECT * FROM perfguard.%I', table_name)
  FROM information_schema.views WHERE table_schema = 'perfguard'
 ORDER BY table_name \gexec
