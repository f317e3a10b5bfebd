//! The checkpoint table (sql/10_kinesis_checkpoints.sql): per shard, the last sequence
//! number durably inserted, and whether the shard is finished.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

use super::sink::{classify, quote_ident, InsertError};

/// The table's definition, as shipped in `sql/`.
pub const DDL: &str = include_str!("../../sql/10_kinesis_checkpoints.sql");
const DDL_NAME: &str = "CREATE TABLE IF NOT EXISTS kinesis_checkpoints";

/// Where a shard stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last record inserted; `None` when none was.
    pub sequence_number: Option<String>,
    /// The shard is closed and was read to its end.
    pub shard_end: bool,
}

#[derive(Debug, Row, Serialize)]
struct WriteRow<'a> {
    stream: &'a str,
    consumer: &'a str,
    shard_id: &'a str,
    sequence_number: &'a str,
    shard_end: bool,
    version: u64,
    worker: &'a str,
}

#[derive(Debug, Row, Deserialize)]
struct ReadRow {
    shard_id: String,
    sequence_number: String,
    shard_end: bool,
}

/// Reads and writes one consumer's checkpoints of one stream.
///
/// A shard's checkpoint is its row with the highest `version`. Versions are the wall clock
/// in microseconds, but never below one more than the highest version the table held at
/// start ([`CheckpointStore::continue_after`]) or the last one written: a clock that steps
/// back cannot make a new checkpoint (a `SHARD_END`, say) lose to an older one.
pub struct CheckpointStore {
    client: Client,
    table: String,
    stream: String,
    consumer: String,
    worker: String,
    last_version: u64,
    timeout: Option<std::time::Duration>,
}

impl CheckpointStore {
    pub fn new(client: Client, table: &str, stream: &str, consumer: &str, worker: &str) -> Self {
        CheckpointStore {
            client,
            table: table.to_string(),
            stream: stream.to_string(),
            consumer: consumer.to_string(),
            worker: worker.to_string(),
            last_version: 0,
            timeout: None,
        }
    }

    /// Gives up a write that takes longer than `timeout` (it is then retried).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// `CREATE TABLE IF NOT EXISTS` with the configured name.
    pub async fn create_table(&self) -> Result<(), clickhouse::error::Error> {
        let start = DDL.find(DDL_NAME).unwrap_or(0);
        let ddl = DDL[start..].trim_end().trim_end_matches(';').replacen(
            DDL_NAME,
            &format!("CREATE TABLE IF NOT EXISTS {}", quote_ident(&self.table)),
            1,
        );
        self.client.query(&ddl).execute().await
    }

    /// The highest version of this consumer's checkpoints of this stream (0 when none).
    pub async fn newest_version(&self) -> Result<u64, clickhouse::error::Error> {
        let sql = format!(
            "SELECT max(version) FROM {} WHERE stream = ? AND consumer = ?",
            quote_ident(&self.table)
        );
        self.client
            .query(&sql)
            .bind(&self.stream)
            .bind(&self.consumer)
            .fetch_one()
            .await
    }

    /// Writes versions above `version` from now on.
    pub fn continue_after(&mut self, version: u64) {
        self.last_version = self.last_version.max(version);
    }

    /// The version of the next write: the clock, or one more than the last, if higher.
    fn next_version(&mut self, now_micros: u64) -> u64 {
        let version = now_micros.max(self.last_version.saturating_add(1));
        self.last_version = version;
        version
    }

    /// Other streams whose names start with `prefix` that this consumer has checkpoints of,
    /// with when each was last written, newest first.
    pub async fn other_streams(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, SystemTime)>, clickhouse::error::Error> {
        let sql = format!(
            "SELECT stream, max(version) AS v FROM {} WHERE consumer = ? AND stream != ? \
             AND startsWith(stream, ?) GROUP BY stream ORDER BY v DESC",
            quote_ident(&self.table)
        );
        let rows: Vec<(String, u64)> = self
            .client
            .query(&sql)
            .bind(&self.consumer)
            .bind(&self.stream)
            .bind(prefix)
            .fetch_all()
            .await?;
        Ok(rows
            .into_iter()
            .map(|(s, v)| (s, UNIX_EPOCH + std::time::Duration::from_micros(v)))
            .collect())
    }

    /// Every shard's current checkpoint.
    pub async fn load(&self) -> Result<HashMap<String, Checkpoint>, clickhouse::error::Error> {
        let sql = format!(
            "SELECT shard_id, argMax(sequence_number, version) AS sequence_number, \
             argMax(shard_end, version) AS shard_end FROM {} \
             WHERE stream = ? AND consumer = ? GROUP BY shard_id",
            quote_ident(&self.table)
        );
        let rows: Vec<ReadRow> = self
            .client
            .query(&sql)
            .bind(&self.stream)
            .bind(&self.consumer)
            .fetch_all()
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let seq = (!r.sequence_number.is_empty()).then_some(r.sequence_number);
                (
                    r.shard_id,
                    Checkpoint {
                        sequence_number: seq,
                        shard_end: r.shard_end,
                    },
                )
            })
            .collect())
    }

    /// Writes `(shard, checkpoint)` rows in one insert.
    pub async fn save(&mut self, rows: &[(&str, &Checkpoint)]) -> Result<(), InsertError> {
        if rows.is_empty() {
            return Ok(());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let version = self.next_version(now);
        let mut insert = self
            .client
            .insert::<WriteRow<'_>>(&self.table)
            .await
            .map_err(classify)?
            .with_timeouts(self.timeout, self.timeout);
        for (shard_id, c) in rows {
            insert
                .write(&WriteRow {
                    stream: &self.stream,
                    consumer: &self.consumer,
                    shard_id,
                    sequence_number: c.sequence_number.as_deref().unwrap_or(""),
                    shard_end: c.shard_end,
                    version,
                    worker: &self.worker,
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
    fn versions_only_go_up_whatever_the_clock_does() {
        let client = Client::default();
        let mut store = CheckpointStore::new(client, "t", "s", "c", "0/1");
        store.continue_after(5_000);
        assert_eq!(store.next_version(1_000), 5_001); // the clock is behind the table
        assert_eq!(store.next_version(9_000), 9_000);
        assert_eq!(store.next_version(8_000), 9_001); // the clock stepped back
        assert_eq!(store.next_version(9_001), 9_002);
        store.continue_after(100); // lower: no effect
        assert_eq!(store.next_version(0), 9_003);
    }

    #[test]
    fn the_shipped_ddl_has_the_name_the_forwarder_replaces() {
        assert_eq!(DDL.matches(DDL_NAME).count(), 1);
        let start = DDL.find(DDL_NAME).unwrap_or(0);
        assert_eq!(
            DDL[start..].matches(';').count(),
            1,
            "one statement after the header"
        );
        assert!(DDL.trim_end().ends_with(';'));
    }
}
