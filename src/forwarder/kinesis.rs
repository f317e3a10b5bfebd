//! The Kinesis data stream: shard listing, iterators and GetRecords.

use std::time::SystemTime;

use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;

use super::batch::Record;
use super::config::StartPosition;
use super::shards::Shard;
use super::source::{sort, Page, Position, SourceError};

/// The Kinesis client and the stream it reads.
pub struct Kinesis {
    client: aws_sdk_kinesis::Client,
    name: Option<String>,
    arn: Option<String>,
}

impl Kinesis {
    /// The stream `stream`, a name or an ARN.
    pub fn new(sdk: &aws_config::SdkConfig, stream: &str) -> Kinesis {
        let (name, arn) = if stream.starts_with("arn:") {
            (None, Some(stream.to_string()))
        } else {
            (Some(stream.to_string()), None)
        };
        Kinesis {
            client: aws_sdk_kinesis::Client::new(sdk),
            name,
            arn,
        }
    }

    /// Every shard of the stream, open and closed, that the stream still holds.
    pub async fn list_shards(&self) -> Result<Vec<Shard>, SourceError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            // ListShards refuses the stream name together with a NextToken.
            let req = match &token {
                Some(t) => self.client.list_shards().next_token(t),
                None => self
                    .client
                    .list_shards()
                    .set_stream_name(self.name.clone())
                    .set_stream_arn(self.arn.clone()),
            };
            let page = req.send().await.map_err(sort)?;
            for s in page.shards() {
                let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_string)
                    .collect();
                out.push(Shard {
                    id: s.shard_id().to_string(),
                    parents,
                });
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    pub async fn iterator(&self, shard: &str, at: &Position) -> Result<String, SourceError> {
        let mut req = self
            .client
            .get_shard_iterator()
            .set_stream_name(self.name.clone())
            .set_stream_arn(self.arn.clone())
            .shard_id(shard);
        req = match at {
            Position::After(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
            Position::Start(StartPosition::TrimHorizon) => {
                req.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            Position::Start(StartPosition::Latest) => {
                req.shard_iterator_type(ShardIteratorType::Latest)
            }
            Position::Start(StartPosition::AtTimestamp(t)) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from(*t)),
        };
        let out = req.send().await.map_err(sort)?;
        out.shard_iterator()
            .map(str::to_string)
            .ok_or_else(|| SourceError::Other(format!("no shard iterator returned for {shard}")))
    }

    pub async fn get_records(&self, iterator: &str, limit: i32) -> Result<Page, SourceError> {
        let out = self
            .client
            .get_records()
            .set_stream_arn(self.arn.clone())
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(sort)?;
        let newest_arrival = out
            .records()
            .iter()
            .filter_map(|r| r.approximate_arrival_timestamp())
            .filter_map(|t| SystemTime::try_from(*t).ok())
            .max();
        Ok(Page {
            millis_behind: out.millis_behind_latest(),
            next_iterator: out.next_shard_iterator,
            newest_arrival,
            records: out
                .records
                .into_iter()
                .map(|r| Record {
                    sequence_number: r.sequence_number,
                    data: r.data.into_inner(),
                })
                .collect(),
        })
    }
}
