-- 10_kinesis_checkpoints.sql: where kinesis-forwarder keeps its place in the stream.
--
-- What it does
--   kinesis_checkpoints  ReplacingMergeTree(version), one row per write: per shard, the
--                        sequence number of the last record whose insert succeeded, and
--                        whether the shard is finished (closed by a split or merge, and read
--                        to its end). The forwarder writes a shard's row only after the batch
--                        holding its records was inserted, so a checkpoint is never ahead of
--                        the data. The highest `version` wins; the forwarder reads the current
--                        state with argMax, so it does not wait for merges.
--   stream / consumer    the stream name, and the destination table fed from it (one stream
--                        may feed several tables, each with its own place).
--
--   The forwarder runs this statement itself at start-up (unless --no-create-checkpoint-table),
--   with the table name from --checkpoint-table. Run it by hand when the forwarder's user may
--   not create tables.
--
--   Where the forwarder stands:
--     SELECT consumer, shard_id, argMax(sequence_number, version) AS sequence_number,
--            argMax(shard_end, version) AS shard_end, max(updated_at) AS updated_at
--     FROM kinesis_checkpoints GROUP BY consumer, shard_id ORDER BY consumer, shard_id;
--   To read a stream again from its start for one table, delete that table's rows:
--     DELETE FROM kinesis_checkpoints WHERE stream = 'people-changes' AND consumer = 'people';
--
-- Parameters: none.
--
-- Run:
--   clickhouse-client --multiquery < sql/10_kinesis_checkpoints.sql

CREATE TABLE IF NOT EXISTS kinesis_checkpoints
(
    stream          String,
    consumer        String,
    shard_id        String,
    sequence_number String,               -- '' when the shard ended before any record
    shard_end       Bool,
    version         UInt64,               -- microseconds since 1970 at the write
    worker          String,               -- "<index>/<workers>" of the process that wrote it
    updated_at      DateTime64(3) DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (stream, consumer, shard_id);
