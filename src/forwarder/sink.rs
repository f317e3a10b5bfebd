//! Inserts into ClickHouse over HTTP with the official `clickhouse` crate.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use clickhouse::{Client, Compression};

use super::batch::Batch;
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
        other => InsertError::Transient(other.to_string()),
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

const SEND_TIMEOUT: Duration = Duration::from_secs(30);
const END_TIMEOUT: Duration = Duration::from_secs(180);

/// The ClickHouse side of the forwarder.
pub struct Sink {
    client: Client,
    cfg: ClickHouse,
    encoder: Option<LocalEncoder>,
}

impl Sink {
    pub fn new(cfg: &ClickHouse, mode: FlattenMode, options: &Options) -> Sink {
        let mut client = Client::default()
            .with_url(&cfg.url)
            .with_user(&cfg.user)
            .with_compression(if cfg.lz4 {
                Compression::Lz4
            } else {
                Compression::None
            });
        if !cfg.password.is_empty() {
            client = client.with_password(cfg.password.expose());
        }
        if let Some(db) = &cfg.database {
            client = client.with_database(db);
        }
        Sink {
            client,
            cfg: cfg.clone(),
            encoder: (mode == FlattenMode::Local).then(|| LocalEncoder::new(options.clone())),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
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
                .map_err(|e| Error::ClickHouse(format!("cannot check table {t}: {e}")))?;
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
                .with_setting("insert_deduplication_token", token)
                .with_setting("input_format_skip_unknown_fields", "1")
                .with_timeouts(Some(SEND_TIMEOUT), Some(END_TIMEOUT));
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
