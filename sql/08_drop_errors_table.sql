-- 08_drop_errors_table.sql: drop dynamo_errors, but only when it is empty.
--
-- What it does
--   ClickHouse has no conditional DROP (DROP TABLE … IF EMPTY does not exist), so the script
--   checks first and fails on purpose when it must not go on:
--     1. throwIf when dynamo_errors holds any row (look at them first: 06_current_state.sql);
--     2. throwIf when a materialized view other than people_errors_mv writes into it (the
--        errors table is shared by all destination tables: their loads would start failing);
--   and only then drops people_errors_mv and dynamo_errors.
--   clickhouse-client stops a --multiquery script at the first statement that fails, so after
--   a failed check nothing is dropped. The error names the reason, e.g.
--     Code: 395. DB::Exception: dynamo_errors is not empty: nothing was dropped …
--     (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO)
--   By hand, the same: run
--     SELECT count() FROM dynamo_errors;
--   and run the two DROP statements below only if it returns 0.
--
--   Stop the loads first (03, 04, 05 and 12), so that no row arrives between the check and the
--   DROP. Once people_errors_mv is gone, people_flat_mv still keeps only the good rows: a bad
--   row of a later load is then dropped silently. Keep the table as long as the stream path
--   (05) runs, or re-create both with 02_flat_and_errors.sql.
--
-- Parameters: none.
--
-- Run:
--   clickhouse-client --multiquery < sql/08_drop_errors_table.sql

SELECT throwIf(count() > 0, 'dynamo_errors is not empty: nothing was dropped; read its rows first')
FROM dynamo_errors;

SELECT throwIf(count() > 0, 'another materialized view writes into dynamo_errors: nothing was dropped')
FROM system.tables
WHERE engine = 'MaterializedView'
  AND NOT (database = currentDatabase() AND name = 'people_errors_mv')
  AND position(create_table_query, concat(' TO ', currentDatabase(), '.dynamo_errors ')) > 0;

DROP VIEW IF EXISTS people_errors_mv;

DROP TABLE IF EXISTS dynamo_errors;
