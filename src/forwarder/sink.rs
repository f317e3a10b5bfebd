//! Inserts into ClickHouse over HTTP with the official `clickhouse` crate.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clickhouse::sql::Identifier;
use clickhouse::Client;

use super::batch::Batch;
use super::client;
use super::codes;
use super::columns::{self, DescribedColumn};
use super::config::{ClickHouse, FlattenMode};
use super::encoder::{ErrorRow, LocalEncoder, StreamRow, SOURCE};
use crate::flatten::Options;

/// Why an insert failed.
#[derive(Debug)]
pub(crate) enum InsertError {
    /// Worth retrying as is: the network, a timeout, or any server error that is not
    /// known to be about the rows (see [`codes`]).
    Transient(String),
    /// The server refused the rows themselves with data code `code` (a parse or type
    /// error, a view's check). Retrying the same rows gives the same answer.
    Rejected { code: u32, message: String },
}

impl InsertError {
    pub(crate) fn message(&self) -> &str {
        match self {
            InsertError::Transient(m) | InsertError::Rejected { message: m, .. } => m,
        }
    }
}

/// The columns of `system.tables` that say where a destination's key is.
#[derive(Debug, serde::Deserialize)]
struct TableRow {
    engine: String,
    engine_full: String,
    sorting_key: String,
}

/// Sorts a client error into retry-as-is or refused-data.
pub(crate) fn classify(e: clickhouse::error::Error) -> InsertError {
    use clickhouse::error::Error as E;
    match e {
        E::BadResponse(m) => match codes::data_refusal(&m) {
            Some(code) => InsertError::Rejected { code, message: m },
            None => InsertError::Transient(m),
        },
        other => InsertError::Transient(client::error_chain(&other)),
    }
}

/// Backquotes an identifier.
pub fn quote_ident(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('`');
    for c in name.chars() {
        if c == '`' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('`');
    s
}

/// What an insert wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inserted {
    /// Rows sent to the stream table or the destination.
    pub rows: usize,
    /// Records written to the errors table (local flattening only).
    pub errors: usize,
}

/// Settings of the `JSONEachRow` insert of `--flatten local`. The rows hold exactly the
/// plan's columns, `_extra` and the metadata fields; these make the server read them as
/// `JSONExtract(j, 'Tuple(<columns>, _extra String, version UInt64, is_deleted UInt8)')`
/// reads them on the UDF path (checked value by value in tests/py/test_forwarder.py).
pub const LOCAL_INSERT_SETTINGS: &[(&str, &str)] = &[
    // Every field is a column: an unknown one is a bug to fail on, not a value to drop.
    ("input_format_skip_unknown_fields", "0"),
    // A column left out (no such attribute, or a misfit kept in `_extra`) gets its type's
    // default or NULL, as from JSONExtract, not the column's DEFAULT expression.
    ("input_format_defaults_for_omitted_fields", "0"),
    // DateTime64 values are seconds since the epoch ("1704164645.123") or, before 1970,
    // ISO text ("1969-12-31T23:59:59.5Z"), which 'basic' refuses. JSONExtract reads both.
    // (The default since ClickHouse 26.5; set for older servers and other profiles.)
    ("date_time_input_format", "best_effort"),
    // M and L values of String columns, and `_extra`, are JSON objects and arrays: read as
    // their text. (Both on by default.)
    ("input_format_json_read_objects_as_strings", "1"),
    ("input_format_json_read_arrays_as_strings", "1"),
];

/// The longest the body of an insert may take to send (at most `--clickhouse-timeout`).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The ClickHouse side of the forwarder.
pub(crate) struct Sink {
    client: Client,
    cfg: ClickHouse,
    encoder: Option<LocalEncoder>,
}

impl Sink {
    /// Fails when the client cannot be built (a `--clickhouse-ca-file` that cannot be used).
    pub(crate) fn new(
        cfg: &ClickHouse,
        mode: FlattenMode,
        options: &Options,
    ) -> Result<Sink, String> {
        Ok(Sink {
            client: client::build(cfg)?,
            cfg: cfg.clone(),
            encoder: (mode == FlattenMode::Local).then(|| LocalEncoder::new(options.clone())),
        })
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Whether records are flattened here (`--flatten local`).
    pub(crate) fn is_local(&self) -> bool {
        self.encoder.is_some()
    }

    /// The destination's columns, from `DESCRIBE TABLE`.
    pub(crate) async fn describe_destination(
        &self,
    ) -> Result<Vec<DescribedColumn>, clickhouse::error::Error> {
        let body = self
            .client
            .query("DESCRIBE TABLE ?")
            .bind(Identifier(&self.cfg.table))
            .with_setting("describe_include_subcolumns", "0")
            .with_setting("describe_include_virtual_columns", "0")
            .with_setting("describe_compact_output", "0")
            .fetch_bytes("JSONEachRow")?
            .collect()
            .await?;
        body.split(|&c| c == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_slice(line)
                    .map_err(|e| clickhouse::error::Error::Custom(format!("DESCRIBE TABLE: {e}")))
            })
            .collect()
    }

    /// The destination's sorting key as ClickHouse prints it (`id`, `pk, sk`): the DynamoDB
    /// key, which the column plan then requires of every item. A Distributed destination has
    /// none of its own: the key is that of the table it writes to on the shards (its engine's
    /// database and table arguments), as this server has it; `""` when it has no such table.
    pub(crate) async fn sorting_key(&self) -> Result<String, clickhouse::error::Error> {
        let mut table = self.table_row(None, &self.cfg.table).await?;
        if let Some(t) = &table {
            if let Some((db, name)) = columns::distributed_target(&t.engine, &t.engine_full) {
                table = self.table_row(Some(&db), &name).await?;
            }
        }
        Ok(table.map(|t| t.sorting_key).unwrap_or_default())
    }

    /// `table`'s row of `system.tables`, in `database` (else the current one).
    async fn table_row(
        &self,
        database: Option<&str>,
        table: &str,
    ) -> Result<Option<TableRow>, clickhouse::error::Error> {
        let sql = "SELECT engine, engine_full, sorting_key FROM system.tables \
                   WHERE database = if(? = '', currentDatabase(), ?) AND name = ?";
        let db = database.unwrap_or("");
        let body = self
            .client
            .query(sql)
            .bind(db)
            .bind(db)
            .bind(table)
            .fetch_bytes("JSONEachRow")?
            .collect()
            .await?;
        let line = body.split(|&c| c == b'\n').find(|l| !l.is_empty());
        line.map(|l| {
            serde_json::from_slice(l)
                .map_err(|e| clickhouse::error::Error::Custom(format!("system.tables: {e}")))
        })
        .transpose()
    }

    /// Gives the flattener the destination's column plan (`--flatten local`); returns the
    /// column list. Fails when the table cannot take the rows (see [`columns::plan`]).
    pub(crate) fn use_columns(
        &mut self,
        described: &[DescribedColumn],
        sorting_key: &str,
    ) -> Result<String, String> {
        let Some(enc) = &mut self.encoder else {
            return Ok(String::new());
        };
        let o = enc.options();
        let (list, plan) = columns::plan(
            &self.cfg.table,
            described,
            &o.version_field,
            &o.deleted_field,
            sorting_key,
        )?;
        enc.set_columns(Arc::new(plan));
        Ok(list)
    }

    /// The tables rows go to, for this mode.
    pub(crate) fn target_tables(&self) -> Vec<&str> {
        if self.encoder.is_some() {
            vec![&self.cfg.table, &self.cfg.errors_table]
        } else {
            vec![&self.cfg.stream_table, &self.cfg.errors_table]
        }
    }

    /// The tables of [`Sink::target_tables`], and `also`, that do not exist.
    pub(crate) async fn missing_tables(
        &self,
        also: &[&str],
    ) -> Result<Vec<String>, clickhouse::error::Error> {
        let mut missing = Vec::new();
        for t in self.target_tables().into_iter().chain(also.iter().copied()) {
            let n: u64 = self
                .client
                .query("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?")
                .bind(t)
                .fetch_one()
                .await?;
            if n == 0 {
                missing.push(t.to_string());
            }
        }
        Ok(missing)
    }

    /// The send and end timeouts of an insert.
    fn timeouts(&self) -> (Option<Duration>, Option<Duration>) {
        (
            Some(self.cfg.timeout.min(SEND_TIMEOUT)),
            Some(self.cfg.timeout),
        )
    }

    /// Inserts records `range` of `batch`, with deduplication token `token`.
    pub(crate) async fn insert(
        &mut self,
        batch: &Batch,
        range: Range<usize>,
        token: &str,
    ) -> Result<Inserted, InsertError> {
        if range.is_empty() {
            return Ok(Inserted::default());
        }
        match self.encoder.take() {
            None => self.insert_raw(batch, range, token).await,
            Some(mut enc) => {
                let r = self.insert_local(&mut enc, batch, range, token).await;
                self.encoder = Some(enc);
                r
            }
        }
    }

    async fn insert_raw(
        &self,
        batch: &Batch,
        range: Range<usize>,
        token: &str,
    ) -> Result<Inserted, InsertError> {
        let (send, end) = self.timeouts();
        let mut insert = self
            .client
            .insert::<StreamRow<'_>>(&self.cfg.stream_table)
            .await
            .map_err(classify)?
            .with_setting("insert_deduplication_token", token)
            .with_timeouts(send, end);
        let rows = range.len();
        for i in range {
            insert
                .write(&StreamRow {
                    record: batch.record(i),
                })
                .await
                .map_err(classify)?;
        }
        insert.end().await.map_err(classify)?;
        Ok(Inserted { rows, errors: 0 })
    }

    async fn insert_local(
        &self,
        enc: &mut LocalEncoder,
        batch: &Batch,
        range: Range<usize>,
        token: &str,
    ) -> Result<Inserted, InsertError> {
        if !enc.has_columns() {
            return Err(InsertError::Transient(format!(
                "the columns of table {} have not been read",
                self.cfg.table
            )));
        }
        enc.encode(batch, range.clone());
        let errors = enc.errors().len();
        let rows = range.len() - errors;
        if rows > 0 {
            let sql = format!(
                "INSERT INTO {} FORMAT JSONEachRow",
                quote_ident(&self.cfg.table)
            );
            let mut insert = self
                .client
                .insert_formatted_with(sql)
                .with_setting("insert_deduplication_token", token);
            for (name, value) in LOCAL_INSERT_SETTINGS {
                insert = insert.with_setting(*name, *value);
            }
            let (send, end) = self.timeouts();
            let mut insert = insert.with_timeouts(send, end);
            insert
                .send(Bytes::copy_from_slice(enc.body()))
                .await
                .map_err(classify)?;
            insert.end().await.map_err(classify)?;
        }
        if errors > 0 {
            let rows: Vec<(&[u8], &str)> = enc
                .errors()
                .iter()
                .map(|(i, reason)| (batch.record(*i), reason.as_str()))
                .collect();
            self.insert_errors(&rows, &format!("{token}-errors"))
                .await?;
        }
        Ok(Inserted { rows, errors })
    }

    /// Writes `(record, reason)` pairs to the errors table.
    pub(crate) async fn insert_errors(
        &self,
        rows: &[(&[u8], &str)],
        token: &str,
    ) -> Result<(), InsertError> {
        let (send, end) = self.timeouts();
        let mut insert = self
            .client
            .insert::<ErrorRow<'_>>(&self.cfg.errors_table)
            .await
            .map_err(classify)?
            .with_setting("insert_deduplication_token", token)
            .with_timeouts(send, end);
        for (line, error) in rows {
            insert
                .write(&ErrorRow {
                    table: &self.cfg.table,
                    source: SOURCE,
                    error,
                    line,
                })
                .await
                .map_err(classify)?;
        }
        insert.end().await.map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_codes_are_refusals() {
        let e = |m: &str| classify(clickhouse::error::Error::BadResponse(m.into()));
        assert!(matches!(
            e("Code: 395. DB::Exception: x"),
            InsertError::Rejected { code: 395, .. }
        ));
        assert!(matches!(
            e("Code: 60. DB::Exception: x"),
            InsertError::Transient(_)
        ));
        assert!(matches!(
            e("Code: 754. DB::Exception: UDF: Original error: Code: 159. timeout"),
            InsertError::Transient(_)
        ));
        assert!(matches!(e("<html>502</html>"), InsertError::Transient(_)));
        assert!(matches!(
            classify(clickhouse::error::Error::TimedOut),
            InsertError::Transient(_)
        ));
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("people"), "`people`");
        assert_eq!(quote_ident("a`b\\c"), "`a\\`b\\\\c`");
    }
}
