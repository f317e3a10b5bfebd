-- 12_incremental_export.sql: fill a gap in the change stream from a DynamoDB incremental export.
--
-- What it does
--   1. Reads the data files of an incremental export (ExportTableToPointInTime with ExportType
--      INCREMENTAL_EXPORT and ExportViewType NEW_AND_OLD_IMAGES: one line per item changed in
--      the export's time range, {"Metadata":{"WriteTimestampMicros":{"N":"…"}},"Keys":{…},
--      "NewImage":{…},"OldImage":{…}}, gzip detected from the .gz extension) and inserts
--      (source = 'incremental', line,
--      dynamo_flatten_columns(line, 'id String, first_name String, age UInt8, PRIMARY KEY (id)'))
--      into people_flat, as 03 does, with the same column list; its two views send the good
--      rows to `people` and the unreadable ones to dynamo_errors with source = 'incremental'
--      (02_flat_and_errors.sql). A line with a NewImage writes that item with
--      version = WriteTimestampMicros (µs); a line without one (the item was deleted) writes
--      is_deleted = 1. A bad line does not stop the load.
--   2. Writes the deletes the export leaves out (see "Items created and deleted within the
--      range" below) straight into `people`.
--
-- When to use it
--   The forwarder was stopped for longer than the stream keeps records (its checkpoints
--   expired: it stops with "the checkpoints of shard(s) … are older than the stream's
--   retention", or Kinesis refuses a checkpoint), or the table's stream was off for a while.
--   The changes in between are gone from the stream, but the table's point-in-time recovery
--   (PITR) still has them. Then:
--   a. Restart the forwarder with --on-expired-checkpoint trim-horizon: it goes on from the
--      oldest record the stream still holds, and the stream does not lapse further while the
--      export runs (an export has no guaranteed duration).
--   b. Export the range from the last checkpoint's time to now:
--        aws dynamodb export-table-to-point-in-time \
--            --table-arn arn:aws:dynamodb:us-east-1:123456789012:table/people \
--            --s3-bucket my-exports --s3-prefix dynamo/recovery-20241125 \
--            --export-format DYNAMODB_JSON \
--            --export-type INCREMENTAL_EXPORT \
--            --incremental-export-specification ExportFromTime=1732489200,ExportToTime=1732572000,ExportViewType=NEW_AND_OLD_IMAGES
--      and wait for ExportStatus COMPLETED (aws dynamodb describe-export --export-arn …).
--      Times are seconds since 1970 (ISO 8601 works too); ExportFromTime is inclusive,
--      ExportToTime exclusive.
--      ExportFromTime: no later than the first change the forwarder did not deliver. Its
--      checkpoints say when it last wrote each shard's place; records written shortly before
--      (as much as the forwarder lagged behind) may not have been read, so go back a margin,
--      an hour say, from
--        SELECT min(t) FROM (SELECT shard_id, argMax(updated_at, version) AS t,
--                                   argMax(shard_end, version) AS done
--                            FROM kinesis_checkpoints
--                            WHERE stream = 'people-changes' AND consumer = 'people'
--                            GROUP BY shard_id)
--        WHERE NOT done;
--      Starting earlier only makes the export larger. ExportToTime: a time after the restart
--      in a, so that it is later than the oldest record the restarted forwarder reads: the
--      latest that point-in-time recovery can give, typically about 5 minutes ago
--      (LatestRestorableDateTime in aws dynamodb describe-continuous-backups).
--      DynamoDB exports 15 minutes to 24 hours at once. A longer gap takes several exports,
--      each starting at the previous one's ExportToTime, into the same S3 prefix: this script
--      loads them together, with the first ExportFromTime and the last ExportToTime. PITR
--      must have been on since before ExportFromTime (it reaches back 35 days at most);
--      otherwise reload the table from a new full export (03) and delete its checkpoints.
--   c. Load it with this script. (The restart may also come after the load, as long as it is
--      within the stream's retention after ExportToTime.)
--
-- Why the order does not matter
--   Every row carries the time of its write as its version: the export's WriteTimestampMicros,
--   the stream records' ApproximateCreationDateTime (in µs), 0 for the snapshot. The
--   ReplacingMergeTree keeps the highest version of each key, and a delete is a row too
--   (is_deleted = 1) that outranks every older row of its key. So the export, the records
--   from before the gap and those after it, and the snapshot may arrive in any order, overlap
--   or arrive twice: the result is each item's latest change (statement 2 aside: see below).
--   The export covering changes the forwarder also delivered is harmless, and so is running
--   this script again.
--
-- Items created and deleted within the range
--   DynamoDB compacts an incremental export to one line per item: its state at ExportToTime,
--   or a delete. An item that did not exist at ExportFromTime and no longer exists at
--   ExportToTime has no line at all. If its creation reached `people` before the gap (the
--   range overlaps what the forwarder delivered) and its deletion fell into the gap, nothing
--   in the export deletes it. Statement 2 finds those items: rows of `people FINAL` written
--   within [ExportFromTime, ExportToTime) whose key no line of the export names (an item
--   changed in the range that still exists at its end always has a line), and writes a
--   delete for each, with version ExportToTime (µs) - 1: later than every change in the range,
--   earlier than any change after it. It reads the key of `people` (Keys.id.S); for another
--   table, name its key attributes there. It needs what the forwarder delivered before the
--   gap to be in `people` (it is: the forwarder stopped), and the stream's records from the
--   restart on may arrive before or after it.
--   Run 09_purge_deleted.sql only after this load: the export's rows are older than deletes
--   the restarted forwarder may already have written, and a purged delete no longer outranks
--   them.
--
-- Parameters (ClickHouse query parameters, substituted by the server):
--   url                 the export's data files, with a glob. DynamoDB writes the data files of
--                       incremental exports into a data folder shared by all incremental exports
--                       under the same S3 prefix, <prefix>/AWSDynamoDB/data/ (the dataFileS3Key
--                       entries of manifest-files.json; the manifests themselves are under
--                       <prefix>/AWSDynamoDB/<export-id>/), so give the exports of one recovery
--                       a prefix of their own, as in b, and read
--                       https://my-exports.s3.us-east-1.amazonaws.com/dynamo/recovery-20241125/AWSDynamoDB/data/*.json.gz
--                       An empty data file simply gives no rows.
--   access_key_id       AWS access key id allowed to read the bucket
--   secret_access_key   its secret (other ways to authenticate: the header of 03)
--   export_from_time    ExportFromTime of the export, in seconds since 1970
--   export_to_time      ExportToTime of the export, in seconds since 1970
--
-- Run (after 01 and 02; the forwarder writes into 05's people_stream meanwhile):
--   clickhouse-client --multiquery \
--       --param_url='https://my-exports.s3.us-east-1.amazonaws.com/dynamo/recovery-20241125/AWSDynamoDB/data/*.json.gz' \
--       --param_access_key_id="$AWS_ACCESS_KEY_ID" \
--       --param_secret_access_key="$AWS_SECRET_ACCESS_KEY" \
--       --param_export_from_time=1732489200 \
--       --param_export_to_time=1732572000 \
--       < sql/12_incremental_export.sql
--   Quote the URL: the shell would expand the *.
--   To check the load: the lines read must equal the itemCount of manifest-summary.json (the
--   sum for several exports), and no row of the export should be in dynamo_errors:
--     SELECT count() FROM s3({url:String}, {access_key_id:String}, {secret_access_key:String}, 'LineAsString');
--     SELECT count() FROM dynamo_errors WHERE `table` = 'people' AND source = 'incremental';
--   The local emulator moto makes no incremental exports: asked for one, it writes a full
--   export of the table (see 03).

INSERT INTO people_flat (source, line, j)
SELECT 'incremental', line, dynamo_flatten_columns(line, 'id String, first_name String, age UInt8, PRIMARY KEY (id)')
FROM s3({url:String}, {access_key_id:String}, {secret_access_key:String}, 'LineAsString');

INSERT INTO people (id, version, is_deleted)
SELECT id, {export_to_time:UInt64} * 1000000 - 1, 1
FROM people FINAL
WHERE is_deleted = 0
  AND version >= {export_from_time:UInt64} * 1000000
  AND version < {export_to_time:UInt64} * 1000000
  AND id NOT IN (SELECT JSONExtractString(line, 'Keys', 'id', 'S')
                 FROM s3({url:String}, {access_key_id:String}, {secret_access_key:String}, 'LineAsString'));
