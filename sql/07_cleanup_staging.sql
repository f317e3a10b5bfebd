-- 07_cleanup_staging.sql: drop the staged snapshot path once the snapshot is in.
--
-- What it does
--   Drops people_snapshot_mv and people_snapshot (04_snapshot_staged.sql). Neither holds data
--   (people_snapshot is a Null table), so nothing is lost. It does not touch `people`,
--   people_flat and its views, the stream path (05) or dynamo_errors: to drop the errors
--   table see 08_drop_errors_table.sql, to purge deleted rows 09_purge_deleted.sql.
--   The view goes first: it reads from the table.
--
-- Parameters: none.
--
-- Run (when nothing inserts into people_snapshot any more):
--   clickhouse-client --multiquery < sql/07_cleanup_staging.sql

DROP VIEW IF EXISTS people_snapshot_mv;

DROP TABLE IF EXISTS people_snapshot;
