//! The destination's columns, for `--flatten local`. Pure: the sink reads the rows with
//! `DESCRIBE TABLE`; this module turns them into the column list the UDF path passes to
//! `dynamo_flatten_columns`, checks that the table has the columns the flattener writes
//! itself, and parses the list into the [`ColumnPlan`] the flattener converts attributes to.

use serde::Deserialize;

use super::sink::quote_ident;
use crate::flatten::{ColumnPlan, EXTRA_FIELD};

/// One row of `DESCRIBE TABLE` (the fields used here; the others are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DescribedColumn {
    pub name: String,
    /// The type as ClickHouse prints it (`DateTime64(3, 'UTC')`).
    #[serde(rename = "type")]
    pub type_text: String,
    /// `""` (an ordinary column), `DEFAULT`, `MATERIALIZED`, `ALIAS` or `EPHEMERAL`.
    #[serde(default)]
    pub default_type: String,
}

impl DescribedColumn {
    /// Whether an insert writes this column: ordinary and DEFAULT columns. MATERIALIZED
    /// and ALIAS columns are computed by the server, EPHEMERAL ones are not stored.
    pub fn is_written(&self) -> bool {
        matches!(self.default_type.as_str(), "" | "DEFAULT")
    }
}

/// The column list of the written columns, in table order: `` `id` String, `age` UInt8 ``,
/// names backquoted, types as ClickHouse prints them. `_extra` and the metadata columns are
/// in it too (the flattener skips them, as `dynamo_flatten_columns` does).
pub fn column_list(columns: &[DescribedColumn]) -> String {
    let mut list = String::new();
    for c in columns.iter().filter(|c| c.is_written()) {
        if !list.is_empty() {
            list.push_str(", ");
        }
        list.push_str(&quote_ident(&c.name));
        list.push(' ');
        list.push_str(&c.type_text);
    }
    list
}

/// The column list and plan for `table`, or why rows flattened for it could not be inserted:
/// no `_extra` column, no version or delete-flag column (named by `--version-field` and
/// `--deleted-field`), such a column that an insert cannot write, or a column type the plan
/// does not support.
pub fn plan(
    table: &str,
    columns: &[DescribedColumn],
    version_field: &str,
    deleted_field: &str,
    sorting_key: &str,
) -> Result<(String, ColumnPlan), String> {
    let find = |name: &str| columns.iter().find(|c| c.name == name);
    let table_q = quote_ident(table);
    for name in [EXTRA_FIELD, version_field, deleted_field] {
        if let Some(c) = find(name).filter(|c| !c.is_written()) {
            return Err(format!(
                "column {} of table {table_q} is {}: --flatten local writes it, so it must be \
                 an ordinary or DEFAULT column",
                quote_ident(name),
                c.default_type
            ));
        }
    }
    if find(EXTRA_FIELD).is_none() {
        return Err(format!(
            "table {table_q} has no {EXTRA_FIELD} column: --flatten local keeps there every \
             attribute that has no column or does not fit its column's type. Add it with: \
             ALTER TABLE {table_q} ADD COLUMN {EXTRA_FIELD} String DEFAULT '{{}}'"
        ));
    }
    let missing: Vec<String> = [
        (version_field, "the version", "--version-field"),
        (deleted_field, "the delete flag", "--deleted-field"),
    ]
    .into_iter()
    .filter(|(name, _, _)| find(name).is_none())
    .map(|(name, what, flag)| format!("{} for {what} ({flag} {name})", quote_ident(name)))
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "table {table_q} has no column {}: pass the names of its version and delete-flag \
             columns (ReplacingMergeTree(version, is_deleted)) with --version-field and \
             --deleted-field",
            missing.join(" and no column ")
        ));
    }
    let mut list = column_list(columns);
    if let Some(keys) = key_columns(sorting_key, columns) {
        list.push_str(&format!(", PRIMARY KEY ({keys})"));
    }
    match ColumnPlan::parse(&list) {
        Ok(plan) => Ok((list, plan)),
        Err(e) => Err(format!(
            "table {table_q} cannot take flattened rows: {e}. --flatten local converts each \
             attribute to its column's type, so every ordinary and DEFAULT column needs a \
             supported type (the list read from DESCRIBE TABLE: {list})"
        )),
    }
}

/// The database and table a Distributed table writes to on its shards, from its row of
/// `system.tables` (`engine_full` as `Distributed('cluster', 'db', 'table', …)`: ClickHouse
/// stores the arguments as string literals, `currentDatabase()` already evaluated). `None`
/// for other engines, or arguments that are not literals.
pub fn distributed_target(engine: &str, engine_full: &str) -> Option<(String, String)> {
    if engine != "Distributed" {
        return None;
    }
    let mut rest = engine_full.strip_prefix("Distributed(")?;
    let mut args = Vec::with_capacity(3);
    while args.len() < 3 {
        rest = rest.trim_start().strip_prefix('\'')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => value.push(chars.next()?.1),
                (i, '\'') => break i,
                (_, c) => value.push(c),
            }
        };
        args.push(value);
        rest = rest[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    let table = args.pop()?;
    let db = args.pop()?;
    Some((db, table))
}

/// The sorting key as a `PRIMARY KEY` list, when it is made of plain written columns (the
/// DynamoDB key attributes): an item whose key is missing or does not fit is then an error
/// row, as in the UDF path with the generated SQL. `None` for an empty key or expressions.
fn key_columns(sorting_key: &str, columns: &[DescribedColumn]) -> Option<String> {
    let names: Vec<&str> = sorting_key
        .split(',')
        .map(|k| {
            // ClickHouse prints a one-column `ORDER BY (id)` (as `dynamo-flatten schema` writes
            // it) as `(id)`.
            let mut k = k.trim();
            while let Some(inner) = k.strip_prefix('(').and_then(|k| k.strip_suffix(')')) {
                k = inner.trim();
            }
            k.strip_prefix('`')
                .and_then(|k| k.strip_suffix('`'))
                .unwrap_or(k)
        })
        .collect();
    let plain = names
        .iter()
        .all(|n| columns.iter().any(|c| c.name == *n && c.is_written()));
    (!sorting_key.trim().is_empty() && plain).then(|| {
        names
            .iter()
            .map(|n| quote_ident(n))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, default_type: &str) -> DescribedColumn {
        DescribedColumn {
            name: name.into(),
            type_text: ty.into(),
            default_type: default_type.into(),
        }
    }

    fn people() -> Vec<DescribedColumn> {
        vec![
            col("id", "String", ""),
            col("price", "Decimal(38, 2)", ""),
            col("seen", "DateTime64(3, 'UTC')", ""),
            col("odd `name`", "Nullable(String)", ""),
            col("source", "LowCardinality(String)", "DEFAULT"),
            col("day", "Date", "MATERIALIZED"),
            col("n", "UInt64", "ALIAS"),
            col("raw", "FixedString(2)", "EPHEMERAL"),
            col("_extra", "String", "DEFAULT"),
            col("v", "UInt64", ""),
            col("d", "UInt8", ""),
        ]
    }

    #[test]
    fn the_list_holds_the_written_columns_backquoted_with_their_types() {
        let want = "`id` String, `price` Decimal(38, 2), `seen` DateTime64(3, 'UTC'), \
                    `odd \\`name\\`` Nullable(String), `source` LowCardinality(String), \
                    `_extra` String, `v` UInt64, `d` UInt8";
        assert_eq!(column_list(&people()), want);
        let (list, plan) = plan("people", &people(), "v", "d", "").unwrap();
        assert_eq!(list, want);
        let names: Vec<&str> = plan.columns().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "price",
                "seen",
                "odd `name`",
                "source",
                "_extra",
                "v",
                "d"
            ]
        );
        assert_eq!(plan.columns()[2].type_text, "DateTime64(3, 'UTC')");
        assert_eq!(column_list(&[]), "");
    }

    #[test]
    fn a_distributed_table_names_the_table_it_writes_to() {
        let t = |full: &str| distributed_target("Distributed", full);
        assert_eq!(
            t("Distributed('c1', 'default', 'people_local', cityHash64(id))"),
            Some(("default".into(), "people_local".into()))
        );
        assert_eq!(
            t(r"Distributed('c1', 'd\'b', 't\\ l')"),
            Some(("d'b".into(), "t\\ l".into()))
        );
        assert_eq!(t("Distributed('c1', 'd')"), None);
        assert_eq!(t("Distributed(c1, d, t)"), None);
        assert_eq!(
            distributed_target("ReplacingMergeTree", "ReplacingMergeTree(v) ORDER BY id"),
            None
        );
    }

    #[test]
    fn a_plain_sorting_key_becomes_the_primary_key() {
        let (list, p) = plan("people", &people(), "v", "d", "id, `source`").unwrap();
        assert!(list.ends_with(", PRIMARY KEY (`id`, `source`)"), "{list}");
        assert_eq!(p.keys(), ["id", "source"]);
        // ORDER BY (`id`) as system.tables prints it.
        for key in ["(id)", "((id)), source"] {
            let (list, _) = plan("people", &people(), "v", "d", key).unwrap();
            assert!(list.contains(", PRIMARY KEY (`id`"), "{key}: {list}");
        }
        // Expressions and computed columns are not DynamoDB keys: no PRIMARY KEY then.
        for key in ["", "cityHash64(id)", "id, day", "(id + 1)"] {
            let (list, p) = plan("people", &people(), "v", "d", key).unwrap();
            assert!(!list.contains("PRIMARY KEY"), "{key}: {list}");
            assert!(p.keys().is_empty());
        }
    }

    #[test]
    fn refuses_tables_it_cannot_fill() {
        let without = |name: &str| -> Vec<DescribedColumn> {
            people().into_iter().filter(|c| c.name != name).collect()
        };
        let e = plan("people", &without("_extra"), "v", "d", "").unwrap_err();
        assert!(e.starts_with("table `people` has no _extra column"), "{e}");
        assert!(
            e.ends_with("ALTER TABLE `people` ADD COLUMN _extra String DEFAULT '{}'"),
            "{e}"
        );

        let e = plan("people", &people(), "version", "d", "").unwrap_err();
        assert!(
            e.starts_with(
                "table `people` has no column `version` for the version (--version-field version):"
            ),
            "{e}"
        );
        let e = plan("people", &people(), "version", "is_deleted", "").unwrap_err();
        assert!(e.contains("`version` for the version (--version-field version) and no column `is_deleted` for the delete flag (--deleted-field is_deleted)"), "{e}");

        let mut m = people();
        m.retain(|c| c.name != "v");
        m.push(col("v", "UInt64", "MATERIALIZED"));
        let e = plan("people", &m, "v", "d", "").unwrap_err();
        assert!(
            e.starts_with("column `v` of table `people` is MATERIALIZED"),
            "{e}"
        );

        let mut u = people();
        u.insert(1, col("token", "UUID", ""));
        let e = plan("people", &u, "v", "d", "").unwrap_err();
        assert!(
            e.contains("column `token`: type UUID is not supported"),
            "{e}"
        );
        assert!(
            e.starts_with("table `people` cannot take flattened rows"),
            "{e}"
        );
    }

    #[test]
    fn reads_describe_rows_as_json() {
        let row: DescribedColumn = serde_json::from_str(
            r#"{"name":"seen","type":"DateTime64(3, 'UTC')","default_type":"","default_expression":"","comment":"","codec_expression":"","ttl_expression":""}"#,
        )
        .unwrap();
        assert_eq!(row, col("seen", "DateTime64(3, 'UTC')", ""));
        assert!(row.is_written());
    }
}
