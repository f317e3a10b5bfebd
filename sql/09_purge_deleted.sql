-- 09_purge_deleted.sql: remove deleted items from `people` for good.
--
-- What it does
--   Until a CLEANUP merge, a deleted key stays in `people` as a row with is_deleted = 1: FINAL
--   hides it (06_current_state.sql), but it takes space and plain queries see it.
--   OPTIMIZE … FINAL CLEANUP merges every partition into one part and drops the keys whose
--   latest row is a delete. CLEANUP merges are experimental and must be allowed on the table
--   with the MergeTree setting allow_experimental_replacing_merge_with_cleanup = 1 (set here
--   with ALTER … MODIFY SETTING; it can also go in the SETTINGS of 01's CREATE TABLE).
--   Without it the OPTIMIZE fails with
--     Code: 344. DB::Exception: Experimental merges with CLEANUP are not allowed. (SUPPORT_IS_DISABLED)
--
--   Purge only when no OLDER row of a deleted key can still arrive: once the delete marker is
--   gone, a late row with a lower version (the snapshot loaded after the stream, a re-sent
--   Kinesis record from before the delete, an incremental export's row) would bring the item
--   back. So: after the snapshot load and after an incremental export (12) is loaded, and for
--   records older than any replay of the stream.
--
--   OPTIMIZE … FINAL rewrites the whole table. On a large table, let background merges do it
--   instead, for parts older than a given age (the ReplacingMergeTree then applies CLEANUP
--   when it merges an old partition down to one part):
--     ALTER TABLE people MODIFY SETTING
--         allow_experimental_replacing_merge_with_cleanup = 1,
--         min_age_to_force_merge_seconds = 86400,
--         min_age_to_force_merge_on_partition_only = 1,
--         enable_replacing_merge_with_cleanup_for_min_age_to_force_merge = 1;
--   This merges a partition only when ALL its parts are older than min_age_to_force_merge_seconds,
--   i.e. once the partition has had no insert for that long; a table that receives changes
--   all the time still needs the OPTIMIZE below now and then.
--
-- Parameters: none.
--
-- Run:
--   clickhouse-client --multiquery < sql/09_purge_deleted.sql

ALTER TABLE people MODIFY SETTING allow_experimental_replacing_merge_with_cleanup = 1;

OPTIMIZE TABLE people FINAL CLEANUP;
