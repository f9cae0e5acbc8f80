-- bench/poll_bare.sql: the bare server's poller (same connection cost, a
-- cheap catalog view instead of statistics views).
SELECT * FROM pg_stat_activity;
