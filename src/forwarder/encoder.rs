//! What a batch becomes on the wire.
//!
//! - [`FlattenMode::Server`](super::config::FlattenMode::Server): one [`StreamRow`] per
//!   record, the record's bytes unchanged, for the stream landing table.
//! - [`FlattenMode::Local`](super::config::FlattenMode::Local): [`LocalEncoder`] flattens
//!   every record with the same core and the same column plan as `dynamo_flatten_columns`
//!   into a `JSONEachRow` body for the destination table (each attribute in its column or in
//!   `_extra`), and collects the records it cannot read as [`ErrorRow`]s.

use std::ops::Range;
use std::sync::Arc;

use clickhouse::Row;
use serde::Serialize;

use super::batch::Batch;
use crate::flatten::{ColumnPlan, Flattener, Options};

/// A row of the stream landing table (`record String`).
#[derive(Debug, Row, Serialize)]
pub struct StreamRow<'a> {
    #[serde(with = "serde_bytes")]
    pub record: &'a [u8],
}

/// A row of the errors table (`at` takes its default).
#[derive(Debug, Row, Serialize)]
pub struct ErrorRow<'a> {
    pub table: &'a str,
    pub source: &'a str,
    pub error: &'a str,
    #[serde(with = "serde_bytes")]
    pub line: &'a [u8],
}

/// The `source` written to the errors table by the forwarder, as by sql/05's view.
pub const SOURCE: &str = "stream";

/// Flattens records into a `JSONEachRow` body. Buffers are reused from batch to batch.
/// The destination's column plan is given with [`set_columns`](Self::set_columns) once the
/// table has been described.
pub struct LocalEncoder {
    flattener: Flattener,
    body: Vec<u8>,
    /// (record index, reason)
    errors: Vec<(usize, String)>,
}

impl LocalEncoder {
    pub fn new(options: Options) -> LocalEncoder {
        LocalEncoder {
            flattener: Flattener::new(options),
            body: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Converts each attribute to its column's type from now on; what has no column or does
    /// not fit goes to `_extra`.
    pub fn set_columns(&mut self, plan: Arc<ColumnPlan>) {
        self.flattener.set_columns(Some(plan));
    }

    /// The flattener's options (the metadata field names among them).
    pub fn options(&self) -> &Options {
        self.flattener.options()
    }

    /// Whether a column plan is set.
    pub fn has_columns(&self) -> bool {
        self.flattener.options().columns.is_some()
    }

    /// Flattens records `range` of `batch`: the good ones into [`body`](Self::body), one
    /// JSON object per line; the others into [`errors`](Self::errors) with their reason
    /// (the same text `dynamo_flatten` puts in `_error`).
    pub fn encode(&mut self, batch: &Batch, range: Range<usize>) {
        self.body.clear();
        self.errors.clear();
        for i in range {
            let record = batch.record(i);
            match self.flattener.flatten(record, &mut self.body) {
                Ok(_) => self.body.push(b'\n'),
                Err(e) => self.errors.push((i, e.to_string())),
            }
        }
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn errors(&self) -> &[(usize, String)] {
        &self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forwarder::batch::{Chunk, Record};
    use std::time::Instant;

    #[test]
    fn flattens_good_records_into_the_columns_and_keeps_the_reason_for_bad_ones() {
        let mut b = Batch::new();
        let rec = |s: &str, d: &str| Record {
            sequence_number: s.into(),
            data: d.as_bytes().to_vec(),
        };
        b.push(
            Chunk {
                shard_id: "s".into(),
                records: vec![
                    rec(
                        "1",
                        r#"{"Item":{"id":{"S":"a"},"n":{"N":"300"},"v":{"S":"x"},"new":{"BOOL":true}}}"#,
                    ),
                    rec("2", r#"{"Item":{"id":{"Q":"a"}}}"#),
                    rec("3", r#"{"id":{"S":"b"},"n":{"N":"1E+2"}}"#),
                ],
                shard_end: false,
            },
            Instant::now(),
        );
        let mut enc = LocalEncoder::new(Options {
            version_field: "v".into(),
            deleted_field: "d".into(),
            ..Options::default()
        });
        assert!(!enc.has_columns());
        let plan = ColumnPlan::parse(
            "`id` String, `n` UInt8, `item_v` String, `_extra` String, `v` UInt64, `d` UInt8",
        )
        .unwrap();
        enc.set_columns(Arc::new(plan));
        assert!(enc.has_columns());
        enc.encode(&b, 0..3);
        let body = String::from_utf8(enc.body().to_vec()).unwrap();
        assert_eq!(
            body,
            concat!(
                r#"{"id":"a","item_v":"x","_extra":"{\"n\":{\"N\":\"300\"},\"new\":{\"BOOL\":true}}","v":0,"d":0}"#,
                "\n",
                r#"{"id":"b","n":100,"_extra":"{}","v":0,"d":0}"#,
                "\n"
            )
        );
        assert_eq!(enc.errors().len(), 1);
        assert_eq!(enc.errors()[0].0, 1);
        assert!(
            enc.errors()[0].1.contains("unknown type tag"),
            "{:?}",
            enc.errors()
        );
        enc.encode(&b, 2..3);
        assert_eq!(enc.errors().len(), 0);
        assert_eq!(enc.body().iter().filter(|&&c| c == b'\n').count(), 1);
    }
}
