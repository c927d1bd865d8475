\set first random(1, 2)
\set second 3 - :first
BEGIN;
UPDATE pgbench_tellers SET tbalance = tbalance + 1 WHERE tid = :first;
SELECT pg_sleep(0.002);
UPDATE pgbench_tellers SET tbalance = tbalance + 1 WHERE tid = :second;
END;
