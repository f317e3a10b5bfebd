-- 05_stream.sql: the change stream path (Kinesis Data Streams for DynamoDB).
--
-- What it does
--   people_stream     ENGINE = Null, one column `record`: what a forwarder inserts into, one raw
--                     Kinesis Data Streams for DynamoDB record (the JSON document of the Kinesis
--                     record's data) per row. It stores nothing.
--   people_stream_mv  people_stream -> people_flat: (source = 'stream', record,
--                     dynamo_flatten_columns(record, '<column list of 02>')). INSERT and
--                     MODIFY write the NewImage, REMOVE (TTL deletes included) writes
--                     is_deleted = 1; version is the record's ApproximateCreationDateTime in
--                     microseconds. Unreadable records go to dynamo_errors with
--                     source = 'stream'.
--
--   The stream must carry item images: StreamViewType NEW_IMAGE or NEW_AND_OLD_IMAGES. With
--   KEYS_ONLY a MODIFY record has only the key, and its row would replace the item with
--   empty attributes.
--
--   Records may arrive late, twice or out of order: the highest version wins, and a duplicate
--   of a record already applied changes nothing. Turn the stream on BEFORE the export that
--   feeds 03/04, so that no change falls between the two, and start the forwarder at once,
--   not after the snapshot load: the overlap is harmless (snapshot rows have version 0),
--   while a load that outlasts the stream's retention (24 hours by default) would lose the
--   first changes. Changes lost to the stream later (the forwarder stopped for longer than
--   the retention, or the stream was off) come back from an incremental export:
--   12_incremental_export.sql.
--
-- Parameters: none.
--
-- Run (after 01 and 02):
--   clickhouse-client --multiquery < sql/05_stream.sql
-- A forwarder then inserts records, one per line (the JSON records contain no raw newlines):
--   clickhouse-client --query 'INSERT INTO people_stream FORMAT LineAsString' < records.jsonl
-- or over HTTP: POST /?query=INSERT%20INTO%20people_stream%20FORMAT%20LineAsString
-- DynamoDB Streams records are read too; an event as Lambda receives it holds several
-- records, so insert one row per record:
--   jq -c '.Records[]' lambda-event.json |
--       clickhouse-client --query 'INSERT INTO people_stream FORMAT LineAsString'
-- or, for an event file in the server's user_files directory:
--   INSERT INTO people_stream
--   SELECT arrayJoin(JSONExtractArrayRaw(event, 'Records'))
--   FROM file('lambda-event.json', 'RawBLOB', 'event String');

CREATE TABLE IF NOT EXISTS people_stream
(
    record String
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS people_stream_mv TO people_flat AS
SELECT
    'stream' AS source,
    record   AS line,
    dynamo_flatten_columns(record, 'id String, first_name String, age UInt8, PRIMARY KEY (id)') AS j
FROM people_stream;
