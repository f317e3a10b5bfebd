//! The Kinesis forwarder: reads the Kinesis data stream that DynamoDB writes its changes to
//! and inserts every record into ClickHouse, checkpointed per shard.
//!
//! One module per concept:
//! - [`config`]: what the forwarder is told (built by the binary from flags and env vars);
//! - [`shards`]: shard lineage and worker assignment (pure);
//! - [`kinesis`]: one reader per shard (GetRecords, rate limit, iterator renewal);
//! - [`batch`]: the open batch, cut by rows, bytes and time (pure);
//! - [`encoder`]: the rows a batch becomes (raw records, or flattened rows for `--flatten local`);
//! - [`columns`]: the destination's columns, as the column plan of `--flatten local`;
//! - `client`: the ClickHouse HTTP client, with TLS for `https://`;
//! - [`sink`]: inserts into ClickHouse, with deduplication tokens;
//! - [`checkpoint`]: the checkpoint table;
//! - [`retry`]: backoff with jitter;
//! - [`stats`]: metrics and the progress line;
//! - [`service`]: ties them together and handles shutdown.

pub mod batch;
pub mod checkpoint;
mod client;
pub mod columns;
pub mod config;
pub mod encoder;
pub mod error;
pub mod kinesis;
pub mod retry;
pub mod service;
pub mod shards;
pub mod sink;
pub mod stats;

pub use config::Config;
pub use error::Error;
pub use service::{run, Summary};
