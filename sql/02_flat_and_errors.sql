-- 02_flat_and_errors.sql: the routing stage. Every raw row is flattened once, then sent either
-- to `people` or to `dynamo_errors`.
--
-- What it does
--   dynamo_errors     MergeTree. One errors table for all destination tables: the `table`
--                     column says which one. `error` is the reason from the function
--                     ("<reason> at byte N"), `line` the complete raw input row.
--   people_flat       ENGINE = Null: stores nothing. Every load inserts
--                     (source, line, j = dynamo_flatten_columns(line, '<column list>')) here:
--                     03 and 12 directly, 04 and 05 through their materialized views.
--   people_flat_mv    people_flat -> people: the good rows, typed with JSONExtract.
--   people_errors_mv  people_flat -> dynamo_errors: the rows whose j starts with {"_error".
--
--   The column list 'id String, first_name String, age UInt8, PRIMARY KEY (id)' (the same
--   literal in 03, 04, 05 and 12) tells the function each attribute's column type. An attribute
--   that is a column and whose value fits its type is written converted (numbers exactly,
--   Decimal columns too); any other attribute goes into "_extra" as DynamoDB JSON. An item
--   whose key (PRIMARY KEY) is missing or does not fit is an error row: stored with a default
--   key it would replace other such items. j is then ONE object
--     {"id":"…","first_name":"…","age":26,"_extra":"{…}","version":N,"is_deleted":0|1}
--   which the Tuple below reads exactly: the columns (without PRIMARY KEY), then _extra String
--   (the text of a JSON object, exactly as the function wrote it), version UInt64 and
--   is_deleted UInt8. A named Tuple is matched by key name.
--
--   Why every row goes through the function exactly once: it is called in only one place
--   per load (the INSERT … SELECT of 03 or 12, or the view of 04 or 05) and its result is the
--   column `j` of the block inserted into people_flat. Both views below receive that same
--   block and only read `j`; neither calls the function. A Null table keeps nothing, so the
--   rows cost no storage on the way.
--
--   A materialized view with TO matches its SELECT's columns to the target's columns by NAME.
--   `untuple(JSONExtract(j, 'Tuple(…)'))` names its columns like
--   `tupleElement(JSONExtract(…), 'id')`, which ClickHouse refuses here ("SELECT query outputs
--   column with name 'tupleElement(…)', which is not found in the target table"), so the view
--   extracts the tuple once and names each element with AS.
--
-- Parameters: none.
--
-- Run (after 01_destination.sql):
--   clickhouse-client --multiquery < sql/02_flat_and_errors.sql
--
-- Another DynamoDB table: one <table>_flat, <table>_flat_mv and <table>_errors_mv per
-- destination table; they all share dynamo_errors (its `table` column tells them apart).
-- One function serves every table: the column list is an argument, so a new column is SQL
-- only (`dynamo-flatten schema evolve` prints it: ALTER TABLE, this view and the loading
-- views with the new list, and a backfill out of _extra).

CREATE TABLE IF NOT EXISTS dynamo_errors
(
    at      DateTime64(3) DEFAULT now64(3),   -- when the row was rejected
    `table` LowCardinality(String),           -- destination table the row was meant for
    source  LowCardinality(String),           -- 'snapshot', 'stream' or 'incremental'
    error   String,                           -- "<reason> at byte N"
    line    String                            -- the raw input row, complete
)
ENGINE = MergeTree
ORDER BY (`table`, at)
-- A retried insert with the same deduplication token lands once (see 01).
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS people_flat
(
    source  LowCardinality(String),
    line    String,
    j       String
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS people_flat_mv TO people AS
SELECT
    tupleElement(r, 'id')         AS id,
    tupleElement(r, 'first_name') AS first_name,
    tupleElement(r, 'age')        AS age,
    tupleElement(r, '_extra')     AS _extra,
    tupleElement(r, 'version')    AS version,
    tupleElement(r, 'is_deleted') AS is_deleted
FROM
(
    SELECT JSONExtract(j, 'Tuple(id String, first_name String, age UInt8, _extra String, version UInt64, is_deleted UInt8)') AS r
    FROM people_flat
    WHERE NOT startsWith(j, '{"_error"')
);

CREATE MATERIALIZED VIEW IF NOT EXISTS people_errors_mv TO dynamo_errors AS
SELECT
    'people'                      AS `table`,
    source,
    JSONExtractString(j, '_error') AS error,
    line
FROM people_flat
WHERE startsWith(j, '{"_error"');
