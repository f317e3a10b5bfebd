-- 04_snapshot_staged.sql: the staged snapshot path, for raw export lines that arrive by some
-- other means than 03 (a ClickPipe, a file upload, a script).
--
-- What it does
--   people_snapshot     ENGINE = Null, one column `line`: insert the raw export lines here, one
--                       {"Item":{…}} per row. It stores nothing.
--   people_snapshot_mv  people_snapshot -> people_flat: (source = 'snapshot', line,
--                       dynamo_flatten_columns(line, '<column list of 02>')); from there the
--                       rows go to `people` or to dynamo_errors exactly as in 03 (see
--                       02_flat_and_errors.sql). A bad line lands in dynamo_errors and the rest
--                       of the insert goes on.
--   When the snapshot is in, drop both with 07_cleanup_staging.sql.
--
-- Parameters: none.
--
-- Run (after 01 and 02):
--   clickhouse-client --multiquery < sql/04_snapshot_staged.sql
-- then land the lines, for example from a local copy of the export:
--   zcat AWSDynamoDB/<export-id>/data/*.json.gz |
--       clickhouse-client --query 'INSERT INTO people_snapshot FORMAT LineAsString'
-- or point a ClickPipe (S3 source, LineAsString format) at people_snapshot.

CREATE TABLE IF NOT EXISTS people_snapshot
(
    line String
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS people_snapshot_mv TO people_flat AS
SELECT
    'snapshot' AS source,
    line,
    dynamo_flatten_columns(line, 'id String, first_name String, age UInt8, PRIMARY KEY (id)') AS j
FROM people_snapshot;
