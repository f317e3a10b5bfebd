-- 06_current_state.sql: read the current state of the table, and the rows that were rejected.
--
-- What it does
--   1. The current state: FINAL merges at read time, so each key shows only its row with the
--      highest version, and keys whose latest row is a delete (is_deleted = 1) are not shown,
--      whatever the background merges have done so far. Without FINAL a query sees every
--      version that has not been merged away yet, delete markers included.
--   2. The rejected rows per destination table and source, with an example reason.
--
-- Parameters: none.
--
-- Run:
--   clickhouse-client --multiquery < sql/06_current_state.sql
--
-- One item by key (a query parameter):
--   clickhouse-client --param_id='0A556908-F72B-4BE6-9048-9E60715358D4' \
--       --query 'SELECT * FROM people FINAL WHERE id = {id:String}'
-- The primary key index still applies with FINAL, so a lookup by key stays cheap.

SELECT id, first_name, age, version, is_deleted
FROM people FINAL
ORDER BY id;

SELECT `table`, source, count() AS rows, min(at) AS first, max(at) AS last, any(error) AS example
FROM dynamo_errors
GROUP BY `table`, source
ORDER BY `table`, source;
