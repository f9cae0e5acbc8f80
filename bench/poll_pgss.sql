-- bench/poll_pgss.sql: the pg_stat_statements counterpart of the poller.
SELECT * FROM pg_stat_statements;
SELECT * FROM pg_stat_statements_info;
