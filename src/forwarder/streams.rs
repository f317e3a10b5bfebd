//! A table's DynamoDB stream: finding it, its shards, iterators and GetRecords. Each record
//! is written as DynamoDB Streams JSON (see [`super::stream_json`]), which the flatten core
//! reads like a Lambda event's record.

use std::time::SystemTime;

use aws_sdk_dynamodbstreams::types::{ShardIteratorType, StreamStatus, StreamViewType};
use tracing::{info, warn};

use super::batch::Record;
use super::config::StartPosition;
use super::shards::Shard;
use super::source::{sort, Page, Position, SourceError};
use super::stream_json;

/// GetRecords returns at most 1000 records a call on DynamoDB Streams.
pub const MAX_RECORDS_PER_CALL: i32 = 1000;

/// The DynamoDB Streams client and the stream it reads.
pub struct DynamoStreams {
    client: aws_sdk_dynamodbstreams::Client,
    arn: String,
}

impl DynamoStreams {
    /// The stream `arn`, after checking that its records carry the new image of each item.
    pub async fn open(
        sdk: &aws_config::SdkConfig,
        arn: String,
    ) -> Result<DynamoStreams, SourceError> {
        let s = DynamoStreams {
            client: aws_sdk_dynamodbstreams::Client::new(sdk),
            arn,
        };
        s.check().await?;
        Ok(s)
    }

    /// The latest stream of table `table` (the newest `StreamLabel` that ListStreams gives).
    pub async fn open_latest(
        sdk: &aws_config::SdkConfig,
        table: &str,
    ) -> Result<DynamoStreams, SourceError> {
        let client = aws_sdk_dynamodbstreams::Client::new(sdk);
        let mut newest: Option<(String, String)> = None;
        let mut start: Option<String> = None;
        loop {
            let page = client
                .list_streams()
                .table_name(table)
                .set_exclusive_start_stream_arn(start.take())
                .send()
                .await
                .map_err(sort)?;
            for s in page.streams() {
                let (Some(arn), label) = (s.stream_arn(), s.stream_label().unwrap_or_default())
                else {
                    continue;
                };
                if newest.as_ref().is_none_or(|(l, _)| label > l.as_str()) {
                    newest = Some((label.to_string(), arn.to_string()));
                }
            }
            start = page.last_evaluated_stream_arn().map(str::to_string);
            if start.is_none() {
                break;
            }
        }
        let Some((_, arn)) = newest else {
            return Err(SourceError::NotFound(format!(
                "ListStreams finds no DynamoDB stream of table {table}: the table does not \
                 exist in this account and region, or it never had a stream. Enable one with \
                 StreamSpecification={{StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES}}"
            )));
        };
        info!(table, stream = %arn, "the table's latest stream");
        let s = DynamoStreams { client, arn };
        s.check().await?;
        Ok(s)
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Refuses a stream whose records do not carry the item's new image (KEYS_ONLY,
    /// OLD_IMAGE): the items could not be rebuilt from them. Warns when the stream is
    /// disabled (it is still read: it holds its last 24 hours).
    async fn check(&self) -> Result<(), SourceError> {
        let d = self
            .client
            .describe_stream()
            .stream_arn(&self.arn)
            .limit(1)
            .send()
            .await
            .map_err(sort)?;
        let Some(d) = d.stream_description() else {
            return Err(SourceError::Other(format!(
                "DescribeStream gave no description of {}",
                self.arn
            )));
        };
        match d.stream_view_type() {
            Some(StreamViewType::NewImage | StreamViewType::NewAndOldImages) => {}
            other => {
                let view = other.map_or("none", |v| v.as_str());
                return Err(SourceError::Unusable(format!(
                    "the stream {} has view type {view}: its records do not carry the items' \
                     new images, so the table cannot be rebuilt from them. Set the table's \
                     StreamViewType to NEW_AND_OLD_IMAGES (or NEW_IMAGE): disable the stream \
                     and enable it again with that view type, then load a new export",
                    self.arn
                )));
            }
        }
        if let Some(status) = d.stream_status() {
            if !matches!(status, StreamStatus::Enabled | StreamStatus::Enabling) {
                warn!(stream = %self.arn, status = status.as_str(),
                    "the stream is not enabled: it holds no new changes, only those of its last 24 hours");
            }
        }
        Ok(())
    }

    /// Every shard the stream still holds (DescribeStream, page after page).
    pub async fn list_shards(&self) -> Result<Vec<Shard>, SourceError> {
        let mut out = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_stream()
                .stream_arn(&self.arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(sort)?;
            let Some(d) = page.stream_description() else {
                return Ok(out);
            };
            for s in d.shards() {
                let Some(id) = s.shard_id() else { continue };
                out.push(Shard {
                    id: id.to_string(),
                    parents: s
                        .parent_shard_id()
                        .map(str::to_string)
                        .into_iter()
                        .collect(),
                });
            }
            start = d.last_evaluated_shard_id().map(str::to_string);
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    pub async fn iterator(&self, shard: &str, at: &Position) -> Result<String, SourceError> {
        let req = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.arn)
            .shard_id(shard);
        let req = match at {
            Position::After(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            Position::Start(StartPosition::TrimHorizon) => {
                req.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            Position::Start(StartPosition::Latest) => {
                req.shard_iterator_type(ShardIteratorType::Latest)
            }
            // Refused by Config::validate: DynamoDB Streams has no AT_TIMESTAMP iterator.
            Position::Start(StartPosition::AtTimestamp(_)) => {
                return Err(SourceError::Unusable(
                    "DynamoDB Streams has no AT_TIMESTAMP iterator".into(),
                ))
            }
        };
        let out = req.send().await.map_err(sort)?;
        out.shard_iterator
            .ok_or_else(|| SourceError::Other(format!("no shard iterator returned for {shard}")))
    }

    pub async fn get_records(&self, iterator: &str, limit: i32) -> Result<Page, SourceError> {
        let out = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(limit.clamp(1, MAX_RECORDS_PER_CALL))
            .send()
            .await
            .map_err(sort)?;
        let mut records: Vec<Record> = Vec::with_capacity(out.records().len());
        let mut newest_arrival = None;
        for r in out.records() {
            let d = r.dynamodb();
            let created = d
                .and_then(|d| d.approximate_creation_date_time())
                .and_then(|t| SystemTime::try_from(*t).ok());
            newest_arrival = newest_arrival.max(created);
            // A record without a sequence number (never seen) keeps the one before it, so
            // the checkpoint never moves back; its row reaches the errors table if it
            // cannot be read.
            let sequence_number = match d.and_then(|d| d.sequence_number()) {
                Some(s) => s.to_string(),
                None => records
                    .last()
                    .map(|p| p.sequence_number.clone())
                    .unwrap_or_default(),
            };
            let mut data = Vec::with_capacity(256);
            stream_json::write_record(r, &self.arn, &mut data);
            records.push(Record {
                sequence_number,
                data,
            });
        }
        Ok(Page {
            records,
            next_iterator: out.next_shard_iterator,
            millis_behind: None,
            newest_arrival,
        })
    }
}
