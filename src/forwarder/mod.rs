//! The Kinesis forwarder: reads the Kinesis data stream that DynamoDB writes its changes to
//! and inserts every record into ClickHouse, checkpointed per shard.
//!
//! One module per concept:
//! - [`config`]: what the forwarder is told (built by the binary from flags and env vars);
//! - `startup`: the checks before reading, and what ends the run at once;
//! - `coordinator`: which shards are read, when and from where;
//! - `shards`: shard lineage and worker assignment (pure);
//! - `kinesis`: one reader per shard (GetRecords, rate limit, iterator renewal);
//! - `batch`: the open batch, cut by rows, bytes and time (pure);
//! - `delivery`: inserts, dead letters and checkpoints, in that order;
//! - `codes`: what a ClickHouse error code says about the rows (pure);
//! - `breaker`: tells bad records from a server that refuses everything (pure);
//! - `encoder`: the rows a batch becomes (raw records, or flattened rows for `--flatten local`);
//! - `columns`: the destination's columns, as the column plan of `--flatten local`;
//! - `client`: the ClickHouse HTTP(S) client (TLS roots, `--clickhouse-ca-file`);
//! - `sink`: inserts into ClickHouse, with deduplication tokens;
//! - `checkpoint`: the checkpoint table;
//! - `retry`: backoff with jitter;
//! - [`stats`]: metrics and the progress line; [`health`]: `/metrics`, `/healthz`, `/readyz`;
//! - [`service`]: ties them together.

mod batch;
mod breaker;
mod checkpoint;
mod client;
mod codes;
mod columns;
pub mod config;
mod coordinator;
mod delivery;
mod encoder;
pub mod error;
pub mod health;
mod kinesis;
mod retry;
pub mod service;
mod shards;
mod sink;
mod startup;
pub mod stats;

pub use config::Config;
pub use error::Error;
pub use service::{run, Summary};
