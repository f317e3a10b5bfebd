-- 06_current_state.sql: read the current state of the table, and the rows that were rejected.
--
-- What it does
--   1. The current state: FINAL merges at read time, so each key shows only its row with the
--      highest version, and keys whose latest row is a delete (is_deleted = 1) are not shown,
--      whatever the background merges have done so far. Without FINAL a query sees every
--      version that has not been merged away yet, delete markers included.
--   2. The rejected rows per destination table and source, with an example reason.
--   3. Reading `_extra`: the attributes that have no column, or whose value did not fit it, as
--      DynamoDB JSON ({"tags":{"SS":["admin","beta"]},"nickname":{"S":"zee"}}; '{}' when
--      there are none), for the rows that have some. Nothing was rounded or dropped:
--        JSONExtractKeys(_extra)                        the attribute names
--        JSONExtractString(_extra, 'nickname', 'S')     an S (or N, B) value as text; '' when
--                                                       the attribute is absent or of another type
--        JSONExtractString(_extra, 'qty', 'N')          a number as its exact text ('300'); convert
--                                                       it with toDecimal128OrNull(…, S), toInt64OrNull
--        JSONExtract(_extra, 'tags', 'SS', 'Array(String)')   a set; NS sets as Array(String) too
--        JSONExtractKeys(_extra, 'tags')[1]             an attribute's DynamoDB type ('SS')
--        JSONExtractRaw(_extra, 'address')              any value as DynamoDB JSON
--        _extra::JSON                                   all of it as a JSON column (every N is a
--                                                       string there, so no digit is lost)
--      11_drift_report.sql sums up which attributes land there, and
--      `dynamo-flatten schema evolve` turns them into columns.
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

SELECT id, first_name, age, _extra, version, is_deleted
FROM people FINAL
ORDER BY id;

SELECT `table`, source, count() AS rows, min(at) AS first, max(at) AS last, any(error) AS example
FROM dynamo_errors
GROUP BY `table`, source
ORDER BY `table`, source;

SELECT
    id,
    JSONExtractKeys(_extra)                            AS attributes,
    JSONExtractString(_extra, 'nickname', 'S')         AS nickname,
    JSONExtract(_extra, 'tags', 'SS', 'Array(String)') AS tags,
    _extra::JSON                                       AS extra
FROM people FINAL
WHERE _extra != '{}'
ORDER BY id;
