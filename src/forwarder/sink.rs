//! Inserts into ClickHouse over HTTP with the official `clickhouse` crate.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clickhouse::sql::Identifier;
use clickhouse::Client;

use super::batch::Batch;
use super::client;
use super::columns::{self, DescribedColumn};
use super::config::{ClickHouse, FlattenMode};
use super::encoder::{ErrorRow, LocalEncoder, StreamRow, SOURCE};
use super::Error;
use crate::flatten::Options;

/// Why an insert failed.
#[derive(Debug)]
pub enum InsertError {
    /// Worth retrying as is: the network, a timeout, or a server condition that passes
    /// (too many parts, memory, a missing table that an operator may create, …).
    Transient(String),
    /// The server refused the data itself (a parse or type error, a view that throws).
    /// Retrying the same rows gives the same answer.
    Rejected(String),
}

impl InsertError {
    pub fn message(&self) -> &str {
        match self {
            InsertError::Transient(m) | InsertError::Rejected(m) => m,
        }
    }
}

/// Server error codes that say nothing about the rows: retried, never dead-lettered.
/// (Network and timeouts, load, access, and objects that do not exist yet.)
const ENVIRONMENT_CODES: &[u32] = &[
    3,   // UNEXPECTED_END_OF_FILE (a cut connection)
    16,  // NO_SUCH_COLUMN_IN_TABLE
    46,  // UNKNOWN_FUNCTION (the UDF is not registered)
    60,  // UNKNOWN_TABLE
    81,  // UNKNOWN_DATABASE
    115, // UNKNOWN_SETTING (a server older than the insert's settings)
    159, // TIMEOUT_EXCEEDED
    164, // READONLY
    192, // UNKNOWN_USER
    193, // WRONG_PASSWORD
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    236, // ABORTED
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    319, // UNKNOWN_STATUS_OF_INSERT
    394, // QUERY_WAS_CANCELLED
    425, // SYSTEM_ERROR
    439, // CANNOT_SCHEDULE_TASK
    497, // ACCESS_DENIED
    516, // AUTHENTICATION_FAILED
    999, // KEEPER_EXCEPTION
];

/// The `N` of a `Code: N.` server message.
pub fn server_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + 6..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Sorts a client error into retry-as-is or refused-data.
pub fn classify(e: clickhouse::error::Error) -> InsertError {
    use clickhouse::error::Error as E;
    match e {
        E::BadResponse(m) => match server_code(&m) {
            Some(code) if !ENVIRONMENT_CODES.contains(&code) => InsertError::Rejected(m),
            _ => InsertError::Transient(m),
        },
        other => InsertError::Transient(client::error_chain(&other)),
    }
}

/// A failed call at start-up, `context` first: a TLS failure is a configuration error (the
/// same handshake gives the same answer), anything else is worth retrying.
pub fn startup_error(context: &str, e: &clickhouse::error::Error) -> Error {
    match client::tls_failure(e) {
        Some(m) => Error::Config(format!("{context}: {m}")),
        None => Error::ClickHouse(format!("{context}: {}", client::error_chain(e))),
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
pub struct Inserted {
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

const SEND_TIMEOUT: Duration = Duration::from_secs(30);
const END_TIMEOUT: Duration = Duration::from_secs(180);

/// The ClickHouse side of the forwarder.
pub struct Sink {
    client: Client,
    cfg: ClickHouse,
    encoder: Option<LocalEncoder>,
}

impl Sink {
    /// Fails when the client cannot be built (a `--clickhouse-ca-file` that cannot be used).
    pub fn new(cfg: &ClickHouse, mode: FlattenMode, options: &Options) -> Result<Sink, String> {
        Ok(Sink {
            client: client::build(cfg)?,
            cfg: cfg.clone(),
            encoder: (mode == FlattenMode::Local).then(|| LocalEncoder::new(options.clone())),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether records are flattened here (`--flatten local`).
    pub fn is_local(&self) -> bool {
        self.encoder.is_some()
    }

    /// The destination's columns, from `DESCRIBE TABLE`. An error here is worth retrying
    /// (the server is not reachable, or the table not created yet).
    pub async fn describe_destination(&self) -> Result<Vec<DescribedColumn>, Error> {
        let t = &self.cfg.table;
        let context = format!("cannot describe table {t}");
        let failed = |e: clickhouse::error::Error| startup_error(&context, &e);
        let body = self
            .client
            .query("DESCRIBE TABLE ?")
            .bind(Identifier(t))
            .with_setting("describe_include_subcolumns", "0")
            .with_setting("describe_include_virtual_columns", "0")
            .with_setting("describe_compact_output", "0")
            .fetch_bytes("JSONEachRow")
            .map_err(failed)?
            .collect()
            .await
            .map_err(failed)?;
        body.split(|&c| c == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_slice(line)
                    .map_err(|e| Error::ClickHouse(format!("{context}: {e}")))
            })
            .collect()
    }

    /// The destination's sorting key as ClickHouse prints it (`id`, `pk, sk`): the DynamoDB
    /// key, which the column plan then requires of every item.
    pub async fn sorting_key(&self) -> Result<String, Error> {
        let t = &self.cfg.table;
        let context = format!("cannot read the sorting key of {t}");
        let failed = |e: clickhouse::error::Error| startup_error(&context, &e);
        let body = self
            .client
            .query(
                "SELECT sorting_key FROM system.tables \
                 WHERE database = currentDatabase() AND name = ?",
            )
            .bind(t.as_str())
            .fetch_bytes("TSVRaw")
            .map_err(failed)?
            .collect()
            .await
            .map_err(failed)?;
        Ok(String::from_utf8_lossy(&body).trim().to_string())
    }

    /// Gives the flattener the destination's column plan (`--flatten local`); returns the
    /// column list. Fails when the table cannot take the rows (see [`columns::plan`]).
    pub fn use_columns(
        &mut self,
        described: &[DescribedColumn],
        sorting_key: &str,
    ) -> Result<String, Error> {
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
        )
        .map_err(Error::Destination)?;
        enc.set_columns(Arc::new(plan));
        Ok(list)
    }

    /// The tables rows go to, for this mode.
    pub fn target_tables(&self) -> Vec<&str> {
        if self.encoder.is_some() {
            vec![&self.cfg.table, &self.cfg.errors_table]
        } else {
            vec![&self.cfg.stream_table, &self.cfg.errors_table]
        }
    }

    /// Fails unless every table the forwarder writes to exists.
    pub async fn check_tables(&self) -> Result<(), Error> {
        for t in self.target_tables() {
            let n: u64 = self
                .client
                .query("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?")
                .bind(t)
                .fetch_one()
                .await
                .map_err(|e| startup_error(&format!("cannot check table {t}"), &e))?;
            if n == 0 {
                return Err(Error::ClickHouse(format!(
                    "table {t} does not exist in the database (create it with the scripts in sql/, \
                     or `dynamo-flatten schema`)"
                )));
            }
        }
        Ok(())
    }

    /// Inserts records `range` of `batch`, with deduplication token `token`.
    pub async fn insert(
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
        let mut insert = self
            .client
            .insert::<StreamRow<'_>>(&self.cfg.stream_table)
            .await
            .map_err(classify)?
            .with_setting("insert_deduplication_token", token)
            .with_timeouts(Some(SEND_TIMEOUT), Some(END_TIMEOUT));
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
            let mut insert = insert.with_timeouts(Some(SEND_TIMEOUT), Some(END_TIMEOUT));
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
    pub async fn insert_errors(
        &self,
        rows: &[(&[u8], &str)],
        token: &str,
    ) -> Result<(), InsertError> {
        let mut insert = self
            .client
            .insert::<ErrorRow<'_>>(&self.cfg.errors_table)
            .await
            .map_err(classify)?
            .with_setting("insert_deduplication_token", token)
            .with_timeouts(Some(SEND_TIMEOUT), Some(END_TIMEOUT));
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
    fn reads_server_codes() {
        assert_eq!(
            server_code("Code: 395. DB::Exception: Value passed to 'throwIf' function is non-zero"),
            Some(395)
        );
        assert_eq!(
            server_code("bad response: Code: 60. DB::Exception: Unknown table"),
            Some(60)
        );
        assert_eq!(server_code("connection refused"), None);
        let e = |m: &str| classify(clickhouse::error::Error::BadResponse(m.into()));
        assert!(matches!(
            e("Code: 395. DB::Exception: x"),
            InsertError::Rejected(_)
        ));
        assert!(matches!(
            e("Code: 60. DB::Exception: x"),
            InsertError::Transient(_)
        ));
        assert!(matches!(e("<html>502</html>"), InsertError::Transient(_)));
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("people"), "`people`");
        assert_eq!(quote_ident("a`b\\c"), "`a\\`b\\\\c`");
    }
}
