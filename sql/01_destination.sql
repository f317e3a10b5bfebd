-- 01_destination.sql: the destination table `people`, which holds the DynamoDB table's data.
--
-- What it does
--   Creates `people`, a ReplacingMergeTree(version, is_deleted): for each key, the row with the
--   highest `version` wins, and when that row has is_deleted = 1 the key is gone. `SELECT … FINAL`
--   shows exactly that state (06_current_state.sql); background merges converge to it over time,
--   and CLEANUP merges physically remove deleted keys (09_purge_deleted.sql).
--
--   _extra      String, the attributes that have no column here, or whose value does not fit its
--               column (an age of "unknown" or 300 in UInt8), as DynamoDB JSON:
--               {"nickname":{"S":"sal"},"age":{"N":"300"}}; '{}' when there are none. Nothing
--               is dropped: 06_current_state.sql shows how to read it, 11_drift_report.sql which
--               attributes land there, and `dynamo-flatten schema evolve` adds columns for them.
--   version     UInt64, microseconds since the epoch of the change, written by the function for
--               every source (Kinesis ms or µs, DynamoDB Streams s, incremental export µs).
--               Full-export lines get 0, so any change record wins over the snapshot, in
--               whatever order the snapshot and the changes arrive.
--   is_deleted  UInt8, 1 for a REMOVE (TTL deletes included), else 0.
--
-- Parameters: none.
--
-- Run:
--   clickhouse-client --multiquery < sql/01_destination.sql
--
-- Order of the scripts: 01, 02, 05 and the forwarder as soon as the table's stream is on, the
-- snapshot (03 and/or 04) while the forwarder runs, 06 to look at the state, 07-09 for cleanup,
-- and 12 when the stream lost changes. Every CREATE uses IF NOT EXISTS, so re-running a script
-- is harmless.
--
-- Another DynamoDB table: copy the files, replace `people` with its name, and list the
-- attributes you want as columns (here id, first_name, age), followed by `_extra`, `version`
-- and `is_deleted`, in this table, in the Tuple(...) of 02_flat_and_errors.sql and in 06; the
-- same attribute columns form the column list of the dynamo_flatten_columns calls in 03, 04,
-- 05 and 12 ('id String, first_name String, age UInt8, PRIMARY KEY (id)'). `dynamo-flatten schema` writes all of
-- it from a sample of the export.
--
-- ORDER BY must be exactly the DynamoDB primary key, because ReplacingMergeTree replaces rows
-- that have the same sorting key:
--   * partition key only (as here):       ORDER BY id
--   * partition key + sort key:           ORDER BY (partition_key, sort_key)
-- Do not add a PARTITION BY that is not a function of that key: rows of one key in different
-- partitions never replace each other, and FINAL and CLEANUP work per partition.
--
-- non_replicated_deduplication_window: the table remembers its last 1000 inserted blocks,
-- so an insert retried with the same insert_deduplication_token (the forwarder gives each
-- batch one, the same on every retry) lands once, even when the first attempt was stored
-- and only its answer was lost. (Replicated tables do this by default.)

CREATE TABLE IF NOT EXISTS people
(
    id          String,
    first_name  String,
    age         UInt8,
    _extra      String DEFAULT '{}',
    version     UInt64,
    is_deleted  UInt8
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY id
SETTINGS non_replicated_deduplication_window = 1000;
