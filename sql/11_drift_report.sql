-- 11_drift_report.sql: which attributes land in `_extra`, how often, of which types.
--
-- What it does
--   For the current rows of `people` (FINAL: the latest version of each key, deletes hidden),
--   one row per attribute found in `_extra`: an attribute that has no column, or whose value
--   did not fit its column (an age of "unknown" in UInt8, a qty nobody has made a column for).
--     attribute   its name in the item
--     rows        how many current rows hold it in _extra
--     share       rows as a percentage of all current rows
--     types       the DynamoDB types seen for it ('N', 'S', 'SS', …)
--     examples    up to 3 distinct values as DynamoDB JSON ({"N":"300"}, {"S":"n/a"})
--   Most frequent first. Nothing here changes data.
--
--   Then `dynamo-flatten schema evolve` prints the SQL that adds columns for them (and moves
--   the stored values out of _extra), with the types inferred from the values:
--     clickhouse-client --query "SELECT _extra FROM people FINAL WHERE JSONHas(_extra, 'qty') FORMAT TSVRaw" |
--         dynamo-flatten schema evolve --table people --columns "$COLUMNS" --add qty > evolve.sql
--   where $COLUMNS is the current column list: the literal of the dynamo_flatten_columns
--   calls ('id String, first_name String, age UInt8, PRIMARY KEY (id)'), or the table's own columns, from
--     SELECT arrayStringConcat(arrayMap(x -> x.2, arraySort(groupArray((position,
--            concat('`', replaceAll(replaceAll(name, '\\', '\\\\'), '`', '\\`'), '` ', type))))), ', ')
--     FROM system.columns WHERE database = currentDatabase() AND table = 'people';
--
-- Parameters: none.
--
-- Run:
--   clickhouse-client --multiquery < sql/11_drift_report.sql
-- or, one statement, for a script:
--   clickhouse-client --query "$(cat sql/11_drift_report.sql)" --format TSV
--
-- FINAL reads the whole table; on a large one, sample it: add SAMPLE (if the table has a
-- sampling key) or WHERE version > … for recent changes only.

SELECT
    attribute,
    count()                                                                  AS rows,
    round(100 * rows / (SELECT count() FROM people FINAL), 2)                AS share,
    arraySort(groupUniqArray(JSONExtractKeys(_extra, attribute)[1]))         AS types,
    arraySort(groupUniqArray(3)(JSONExtractRaw(_extra, attribute)))          AS examples
FROM people FINAL
ARRAY JOIN JSONExtractKeys(_extra) AS attribute
GROUP BY attribute
ORDER BY rows DESC, attribute;
