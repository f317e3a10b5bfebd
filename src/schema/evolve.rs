//! Schema evolution: the SQL that gives a destination new columns for attributes that have
//! been landing in `_extra`, switches its views to the new column list without losing a
//! row, and moves the values already stored out of `_extra` into the new columns.
//!
//! The backfill re-inserts the current rows (`FINAL`) that hold a moved attribute, with the
//! same version: a `ReplacingMergeTree` keeps the last inserted of rows with equal versions.
//! The new values come from the function itself, applied to `_extra` (a DynamoDB-JSON
//! attribute map) with the new columns as its list: exactly the conversion a new row gets,
//! and the values that still do not fit stay in the `_extra` it returns. `_extra` goes in
//! wrapped as a full-export line, `{"Item":<_extra>}`, so that it is read as an item whatever
//! its attribute names (a bare `{"Item":{"S":"x"}}` would be taken for an export line, one
//! with `eventName` and `dynamodb` for a change record).
//!
//! On a cluster (`schema --cluster`) every statement runs `ON CLUSTER`, the columns go to the
//! per-shard `<t>_local` and then to the Distributed `<t>`, and the backfill reads and writes
//! through the Distributed table: each row goes back to the shard it came from.

use std::fmt::Write as _;

use crate::flatten::{unquote_sql, ColumnPlan, RENAMED_PREFIX};

use super::cluster::{ClusterName, Layout};
use super::{
    column_list, flat_view_select, function_call, function_list, ident, literal,
    stream_view_select, Col, EXTRA_COLUMN, FUNCTION,
};

/// How the views get the new column list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ViewChange {
    /// `ALTER TABLE <view> MODIFY QUERY`: an atomic swap, loads keep running.
    #[default]
    ModifyQuery,
    /// `DROP VIEW` + `CREATE MATERIALIZED VIEW`: loads must be stopped meanwhile.
    Recreate,
}

/// A column to add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewColumn {
    /// The column, named as the function writes the attribute.
    pub col: Col,
    /// The attribute's name in `_extra`.
    pub attribute: String,
    /// Where the type comes from, or what does not fit it.
    pub note: Option<String>,
}

/// A column named on the command line: with its type, or for the type to be inferred.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddSpec {
    Name(String),
    Typed(Col),
}

/// A problem with the column lists.
#[derive(Debug, PartialEq, Eq)]
pub struct EvolveError(pub String);

impl std::fmt::Display for EvolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvolveError {}

fn err(msg: impl Into<String>) -> EvolveError {
    EvolveError(msg.into())
}

/// The column named for an attribute: the function writes an attribute named like a
/// metadata field as `item_<name>`.
pub fn column_name(attribute: &str, version_field: &str, deleted_field: &str) -> String {
    if attribute == version_field || attribute == deleted_field {
        format!("{RENAMED_PREFIX}{attribute}")
    } else {
        attribute.to_string()
    }
}

/// Refuses a new column named like one the destination has: an attribute column of the
/// current list, `_extra` or a metadata column.
pub fn check_free(
    columns: &[Col],
    column: &str,
    version_field: &str,
    deleted_field: &str,
) -> Result<(), EvolveError> {
    if [EXTRA_COLUMN, version_field, deleted_field].contains(&column) {
        return Err(err(format!(
            "{} cannot be added: the name is taken by the destination's own columns",
            ident(column)
        )));
    }
    if columns.iter().any(|c| c.name == column) {
        return Err(err(format!(
            "{} is already in the current column list",
            ident(column)
        )));
    }
    Ok(())
}

/// Parses a column list as the function takes it (a single-quoted SQL literal is unquoted
/// first).
fn parse_list(list: &str) -> Result<Vec<Col>, EvolveError> {
    let plan = ColumnPlan::parse(&unquote_sql(list.trim())).map_err(|e| err(e.to_string()))?;
    Ok(plan
        .columns()
        .iter()
        .map(|c| Col::new(c.name.clone(), c.type_text.trim()))
        .collect())
}

/// The key columns of a table's current list (its `PRIMARY KEY (…)`, if it has one).
pub fn current_keys(list: &str) -> Result<Vec<String>, EvolveError> {
    let plan = ColumnPlan::parse(&unquote_sql(list.trim())).map_err(|e| err(e.to_string()))?;
    Ok(plan.keys().to_vec())
}

/// The attribute columns of a table's current list: the literal of its
/// `dynamo_flatten_columns` calls, or the destination's whole list (`_extra` and the metadata
/// columns are skipped).
pub fn current_columns(
    list: &str,
    version_field: &str,
    deleted_field: &str,
) -> Result<Vec<Col>, EvolveError> {
    let cols: Vec<Col> = parse_list(list)?
        .into_iter()
        .filter(|c| c.name != EXTRA_COLUMN && c.name != version_field && c.name != deleted_field)
        .collect();
    if cols.is_empty() {
        return Err(err("the current column list has no attribute column"));
    }
    Ok(cols)
}

/// Reads a name at the start of `s`: an identifier, `backquoted` or "double-quoted"
/// (backslash escapes and doubled quotes inside); returns it and the rest.
fn leading_name(s: &str) -> Option<(String, &str)> {
    let b = s.as_bytes();
    match b.first()? {
        &q @ (b'`' | b'"') => {
            let mut out = Vec::new();
            let mut i = 1;
            loop {
                match *b.get(i)? {
                    b'\\' => {
                        out.push(*b.get(i + 1)?);
                        i += 2;
                    }
                    c if c == q && b.get(i + 1) == Some(&q) => {
                        out.push(q);
                        i += 2;
                    }
                    c if c == q => break,
                    c => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            Some((String::from_utf8(out).ok()?, &s[i + 1..]))
        }
        c if c.is_ascii_alphabetic() || *c == b'_' => {
            let end = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(s.len());
            Some((s[..end].to_string(), &s[end..]))
        }
        _ => None,
    }
}

/// One `--add` value: `qty` (type inferred), `qty Int64`, or several typed columns
/// separated by commas. Names that are not identifiers are backquoted.
pub fn parse_add(s: &str) -> Result<Vec<AddSpec>, EvolveError> {
    let s = s.trim();
    if let Some((name, rest)) = leading_name(s) {
        if rest.trim().is_empty() {
            return Ok(vec![AddSpec::Name(name)]);
        }
    }
    Ok(parse_list(s)
        .map_err(|e| err(format!("--add {s:?}: {e}")))?
        .into_iter()
        .map(AddSpec::Typed)
        .collect())
}

/// What to print.
#[derive(Clone, Debug)]
pub struct Evolution {
    pub table: String,
    /// The attribute columns the table has now, in order.
    pub columns: Vec<Col>,
    /// The key columns named by the current list's `PRIMARY KEY (…)`, if any.
    pub keys: Vec<String>,
    pub add: Vec<NewColumn>,
    pub version_field: String,
    pub deleted_field: String,
    pub views: ViewChange,
    /// The cluster the table is on (`schema --cluster`): every statement `ON CLUSTER`, the
    /// columns added to the per-shard table and to the Distributed one over it.
    pub cluster: Option<ClusterName>,
}

impl Evolution {
    /// The attribute columns after the change.
    pub fn new_columns(&self) -> Vec<Col> {
        let mut all = self.columns.clone();
        all.extend(self.add.iter().map(|n| n.col.clone()));
        all
    }

    fn check(&self) -> Result<(), EvolveError> {
        if self.add.is_empty() {
            return Err(err("no column to add"));
        }
        for (i, n) in self.add.iter().enumerate() {
            check_free(
                &self.columns,
                &n.col.name,
                &self.version_field,
                &self.deleted_field,
            )?;
            if self.add[..i].iter().any(|o| o.col.name == n.col.name) {
                return Err(err(format!("{} is added twice", ident(&n.col.name))));
            }
        }
        // The function must accept the new list, or every load would fail.
        ColumnPlan::parse(&column_list(&self.new_columns())).map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    /// The SQL: the new columns, the views with the new list, and the backfill.
    pub fn render(&self) -> Result<String, EvolveError> {
        self.check()?;
        let t = &self.table;
        let all = self.new_columns();
        let new_list = function_list(&all, &self.keys);
        let (flat_mv, stream_mv) = (format!("{t}_flat_mv"), format!("{t}_stream_mv"));
        let mut s = String::new();
        let w = &mut s;

        let _ = writeln!(
            w,
            "-- Generated by `dynamo-flatten schema evolve`: new columns for {}.",
            ident(t)
        );
        for n in &self.add {
            let _ = writeln!(
                w,
                "--   {} {}{}",
                ident(&n.col.name),
                n.col.ty,
                n.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(
            w,
            "--\n-- The new column list. Use it in every load you run yourself (the snapshot INSERT of\n\
             -- `dynamo-flatten schema`, sql/03_snapshot_from_s3.sql):\n--   {}",
            literal(&new_list)
        );
        if let Some(c) = &self.cluster {
            let _ = writeln!(
                w,
                "--\n-- For the cluster {}: every statement ON CLUSTER; the columns are added to {} on every\n\
                 -- shard, then to the Distributed {}.",
                c.as_str(),
                ident(&super::cluster::local(t)),
                ident(t)
            );
        }
        let _ = writeln!(
            w,
            "--\n-- Run the statements in this order (clickhouse-client --multiquery < this file):\n\
             --   1. ALTER TABLE ... ADD COLUMN. Loads go on meanwhile: new rows get NULL (or the\n\
             --      type's default) there and keep the attribute in {EXTRA_COLUMN}."
        );
        match self.views {
            ViewChange::ModifyQuery => {
                let _ = writeln!(
                    w,
                    "--   2. The views: {} BEFORE {}.\n\
                     --      The new flat view also reads rows flattened with the old list (the attribute\n\
                     --      is then in {EXTRA_COLUMN}), whereas the old one would drop the new column from\n\
                     --      rows flattened with the new list.\n\
                     --      ALTER TABLE ... MODIFY QUERY swaps a view's query atomically: every insert runs\n\
                     --      wholly with the old or the new query, so no row is lost, and kinesis-forwarder\n\
                     --      and other loads can keep running.",
                    ident(&flat_mv),
                    ident(&stream_mv)
                );
            }
            ViewChange::Recreate => {
                let _ = writeln!(
                    w,
                    "--   2. The views: {} BEFORE {}, each dropped and created again.\n\
                     --      Between DROP and CREATE a row inserted into {} or {} is LOST\n\
                     --      (they are Null tables): stop every load first. kinesis-forwarder: SIGTERM (it sends and\n\
                     --      checkpoints its open batch, then exits); start it again after this step and it\n\
                     --      goes on from its checkpoints. Snapshot loads: let them finish or start them after.",
                    ident(&flat_mv),
                    ident(&stream_mv),
                    ident(&format!("{t}_flat")),
                    ident(&format!("{t}_stream"))
                );
            }
        }
        let _ = writeln!(
            w,
            "--   3. The backfill: the current rows (FINAL) that hold a moved attribute in {EXTRA_COLUMN} are\n\
             --      inserted again with the same version (the last inserted of equal versions wins),\n\
             --      the values converted by {FUNCTION} itself, exactly as a new row. Values that\n\
             --      still do not fit stay in {EXTRA_COLUMN}; rows where nothing fits are left as they are.\n\
             --      Run it after step 2. Running it again is harmless, e.g. when a load that was in\n\
             --      flight during step 2 has landed rows flattened with the old list."
        );
        let _ = writeln!(
            w,
            "--\n-- A staged snapshot view (sql/04_snapshot_staged.sql), if there is one, needs the new list too:\n\
             --   ALTER TABLE {} MODIFY QUERY SELECT 'snapshot' AS source, line, {} AS j FROM {};",
            ident(&format!("{t}_snapshot_mv")),
            function_call("line", &all, &self.keys),
            ident(&format!("{t}_snapshot"))
        );

        // 1. The columns, after the last attribute column (before _extra).
        let mut after = self
            .columns
            .last()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let adds: Vec<String> = self
            .add
            .iter()
            .map(|n| {
                let a = format!(
                    "    ADD COLUMN IF NOT EXISTS {} {} AFTER {}",
                    ident(&n.col.name),
                    n.col.ty,
                    ident(&after)
                );
                after = n.col.name.clone();
                a
            })
            .collect();
        let layout = Layout {
            cluster: self.cluster.as_ref(),
        };
        let on = layout.on();
        // On a cluster the shards' tables first: the Distributed table reads their columns.
        let mut altered = vec![layout.stored(t)];
        if self.cluster.is_some() {
            altered.push(t.clone());
        }
        for table in altered {
            let _ = writeln!(
                w,
                "\nALTER TABLE {}{on}\n{};",
                ident(&table),
                adds.join(",\n")
            );
        }

        // 2. The views.
        let flat_select = flat_view_select(t, &all, &self.version_field, &self.deleted_field);
        let stream_select = stream_view_select(t, &all, &self.keys);
        let views = [
            (&flat_mv, ident(t), flat_select),
            (&stream_mv, ident(&format!("{t}_flat")), stream_select),
        ];
        for (view, target, select) in views {
            match self.views {
                ViewChange::ModifyQuery => {
                    let _ = writeln!(
                        w,
                        "\nALTER TABLE {}{on} MODIFY QUERY\n{select};",
                        ident(view)
                    );
                }
                ViewChange::Recreate => {
                    let _ = writeln!(
                        w,
                        "\nDROP VIEW IF EXISTS {}{on};\nCREATE MATERIALIZED VIEW {}{on} TO {target} AS\n{select};",
                        ident(view),
                        ident(view)
                    );
                }
            }
        }

        // 3. The backfill.
        let (j, r) = (ident("_df_j"), ident("_df_r"));
        let added: Vec<Col> = self.add.iter().map(|n| n.col.clone()).collect();
        let mut tuple = added.clone();
        tuple.push(Col::new(EXTRA_COLUMN, "String"));
        let extra_at = tuple.len();
        let replaced: Vec<String> = added
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "if(JSONHas({j}, {}), {r}.{}, {}) AS {}",
                    literal(&c.name),
                    i + 1,
                    ident(&c.name),
                    ident(&c.name)
                )
            })
            .chain([format!("{r}.{extra_at} AS {}", ident(EXTRA_COLUMN))])
            .collect();
        let has_attr: Vec<String> = self
            .add
            .iter()
            .map(|n| {
                format!(
                    "JSONHas({}, {})",
                    ident(EXTRA_COLUMN),
                    literal(&n.attribute)
                )
            })
            .collect();
        let converted: Vec<String> = self
            .add
            .iter()
            .map(|n| format!("JSONHas({j}, {})", literal(&n.col.name)))
            .collect();
        let moved: Vec<String> = self
            .add
            .iter()
            .map(|n| {
                format!(
                    "if(JSONHas({j}, {}), [{}], [])",
                    literal(&n.col.name),
                    literal(&n.attribute)
                )
            })
            .collect();
        let _ = writeln!(
            w,
            "\n-- Backfill. {EXTRA_COLUMN} goes in as the item of an export line, {{\"Item\":<{EXTRA_COLUMN}>}}. A row is\n\
             -- changed only if every attribute of its old {EXTRA_COLUMN} ends in a new column or in the new one."
        );
        let _ = writeln!(
            w,
            "INSERT INTO {t_id}\n\
             SELECT * EXCEPT ({j}, {r}) REPLACE ({replaced})\n\
             FROM\n(\n    \
             SELECT *, JSONExtract({j}, {tuple_lit}) AS {r}\n    \
             FROM (SELECT *, {call} AS {j} FROM {t_id} FINAL WHERE {has_attr})\n    \
             WHERE NOT startsWith({j}, '{{\"_error\"')\n      \
             AND ({converted})\n      \
             AND arraySort(JSONExtractKeys({extra})) = arraySort(arrayConcat(JSONExtractKeys({r}.{extra_at}), {moved}))\n){settings};",
            t_id = ident(t),
            replaced = replaced.join(", "),
            tuple_lit = literal(&format!("Tuple({})", column_list(&tuple))),
            call = function_call(
                &format!("concat('{{\"Item\":', {}, '}}')", ident(EXTRA_COLUMN)),
                &added,
                &[]
            ),
            has_attr = has_attr.join(" OR "),
            converted = converted.join(" OR "),
            extra = ident(EXTRA_COLUMN),
            moved = moved.join(", "),
            // Through the Distributed table: each row back to its shard before the INSERT ends.
            settings = if self.cluster.is_some() {
                "\nSETTINGS distributed_foreground_insert = 1"
            } else {
                ""
            },
        );
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people() -> Evolution {
        Evolution {
            table: "people".into(),
            keys: vec!["id".into()],
            columns: current_columns(
                "'id String, first_name String, age UInt8'",
                "version",
                "is_deleted",
            )
            .unwrap(),
            add: vec![NewColumn {
                col: Col::new("qty", "Nullable(Int64)"),
                attribute: "qty".into(),
                note: None,
            }],
            version_field: "version".into(),
            deleted_field: "is_deleted".into(),
            views: ViewChange::ModifyQuery,
            cluster: None,
        }
    }

    #[test]
    fn lists() {
        let cols = current_columns(
            "`id` String, `odd \\`name` Nullable(Decimal(38, 6)), _extra String, version UInt64, \
             is_deleted UInt8",
            "version",
            "is_deleted",
        )
        .unwrap();
        assert_eq!(
            cols,
            [
                Col::new("id", "String"),
                Col::new("odd `name", "Nullable(Decimal(38, 6))")
            ]
        );
        assert!(current_columns("_extra String", "version", "is_deleted").is_err());
        assert!(current_columns("id Strin", "version", "is_deleted")
            .unwrap_err()
            .0
            .contains("id"));
        assert_eq!(parse_add("qty").unwrap(), [AddSpec::Name("qty".into())]);
        assert_eq!(
            parse_add(" `odd name` ").unwrap(),
            [AddSpec::Name("odd name".into())]
        );
        assert_eq!(
            parse_add("qty Int64, `p q` Decimal(38, 2)").unwrap(),
            [
                AddSpec::Typed(Col::new("qty", "Int64")),
                AddSpec::Typed(Col::new("p q", "Decimal(38, 2)"))
            ]
        );
        assert!(parse_add("qty Int65").is_err());
        assert_eq!(
            column_name("version", "version", "is_deleted"),
            "item_version"
        );
        assert_eq!(column_name("qty", "version", "is_deleted"), "qty");
    }

    #[test]
    fn renders_columns_views_and_backfill() {
        let sql = people().render().unwrap();
        let list = "'`id` String, `first_name` String, `age` UInt8, `qty` Nullable(Int64), \
                    PRIMARY KEY (`id`)'";
        assert!(sql.contains(&format!("--   {list}\n")), "{sql}");
        assert!(sql.contains(
            "\nALTER TABLE `people`\n    ADD COLUMN IF NOT EXISTS `qty` Nullable(Int64) AFTER `age`;\n"
        ));
        let flat = sql
            .find("ALTER TABLE `people_flat_mv` MODIFY QUERY\nSELECT t.1 AS `id`")
            .unwrap();
        let stream = sql
            .find(&format!(
                "ALTER TABLE `people_stream_mv` MODIFY QUERY\nSELECT 'stream' AS source, record AS line, \
                 dynamo_flatten_columns(record, {list}) AS j FROM `people_stream`;"
            ))
            .unwrap();
        assert!(flat < stream);
        assert!(sql.contains(
            "'Tuple(`id` String, `first_name` String, `age` UInt8, `qty` Nullable(Int64), \
             `_extra` String, `version` UInt64, `is_deleted` UInt8)'"
        ));
        assert!(sql.contains(
            "INSERT INTO `people`\n\
             SELECT * EXCEPT (`_df_j`, `_df_r`) REPLACE (if(JSONHas(`_df_j`, 'qty'), `_df_r`.1, `qty`) AS `qty`, `_df_r`.2 AS `_extra`)\n\
             FROM\n(\n    \
             SELECT *, JSONExtract(`_df_j`, 'Tuple(`qty` Nullable(Int64), `_extra` String)') AS `_df_r`\n    \
             FROM (SELECT *, dynamo_flatten_columns(concat('{\"Item\":', `_extra`, '}'), '`qty` Nullable(Int64)') AS `_df_j` FROM `people` FINAL WHERE JSONHas(`_extra`, 'qty'))\n    \
             WHERE NOT startsWith(`_df_j`, '{\"_error\"')\n      \
             AND (JSONHas(`_df_j`, 'qty'))\n      \
             AND arraySort(JSONExtractKeys(`_extra`)) = arraySort(arrayConcat(JSONExtractKeys(`_df_r`.2), if(JSONHas(`_df_j`, 'qty'), ['qty'], [])))\n);\n"
        ), "{sql}");
        assert!(!sql.contains("DROP VIEW"));
    }

    #[test]
    fn recreate_and_renamed_attributes() {
        let mut e = people();
        e.views = ViewChange::Recreate;
        e.add.push(NewColumn {
            col: Col::new("item_version", "Nullable(Int64)"),
            attribute: "version".into(),
            note: None,
        });
        let sql = e.render().unwrap();
        let drop = sql.find("\nDROP VIEW IF EXISTS `people_flat_mv`;\nCREATE MATERIALIZED VIEW `people_flat_mv` TO `people` AS\nSELECT").unwrap();
        let drop2 = sql.find("\nDROP VIEW IF EXISTS `people_stream_mv`;\nCREATE MATERIALIZED VIEW `people_stream_mv` TO `people_flat` AS\nSELECT").unwrap();
        assert!(drop < drop2);
        assert!(sql.contains("is LOST"));
        assert!(sql.contains(
            "ADD COLUMN IF NOT EXISTS `qty` Nullable(Int64) AFTER `age`,\n    \
             ADD COLUMN IF NOT EXISTS `item_version` Nullable(Int64) AFTER `qty`;"
        ));
        assert!(sql.contains("WHERE JSONHas(`_extra`, 'qty') OR JSONHas(`_extra`, 'version'))"));
        assert!(sql.contains("if(JSONHas(`_df_j`, 'item_version'), ['version'], [])"));
    }

    #[test]
    fn refuses_bad_additions() {
        let mut e = people();
        e.add[0].col.name = "age".into();
        assert!(e
            .render()
            .unwrap_err()
            .0
            .contains("already in the current column list"));
        let mut e = people();
        e.add[0].col.name = "_extra".into();
        assert!(e.render().is_err());
        let mut e = people();
        e.add.push(e.add[0].clone());
        assert!(e.render().unwrap_err().0.contains("added twice"));
        let mut e = people();
        e.add[0].col.ty = "Int65".into();
        assert!(e.render().is_err());
    }

    #[test]
    fn on_a_cluster_every_statement_on_cluster_local_table_first() {
        for views in [ViewChange::ModifyQuery, ViewChange::Recreate] {
            let mut e = people();
            e.views = views;
            e.cluster = Some(ClusterName::parse("c1").unwrap());
            let sql = e.render().unwrap();
            let stmts: Vec<String> = sql
                .split(";\n")
                .map(|s| {
                    let code: Vec<&str> = s.lines().filter(|l| !l.starts_with("--")).collect();
                    code.join("\n").trim().to_string()
                })
                .filter(|s| !s.is_empty())
                .collect();
            let local = stmts
                .iter()
                .position(|s| s.starts_with("ALTER TABLE `people_local` ON CLUSTER `c1`\n"));
            let dist = stmts
                .iter()
                .position(|s| s.starts_with("ALTER TABLE `people` ON CLUSTER `c1`\n"));
            assert!(local.is_some() && local < dist, "{sql}");
            for s in &stmts {
                if !s.starts_with("INSERT") {
                    assert!(s.contains(" ON CLUSTER `c1`"), "{s}");
                }
            }
            let insert = stmts.last().unwrap();
            assert!(insert.starts_with("INSERT INTO `people`\n"), "{insert}");
            assert!(insert.contains("FROM `people` FINAL"), "{insert}");
            assert!(
                insert.ends_with("SETTINGS distributed_foreground_insert = 1"),
                "{insert}"
            );
        }
        let one = people().render().unwrap();
        assert!(!one.contains("ON CLUSTER") && !one.contains("people_local"));
    }
}
