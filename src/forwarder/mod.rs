//! The forwarder: reads the stream DynamoDB writes a table's changes to (the table's Kinesis
//! data stream, or its DynamoDB stream) and inserts every record into ClickHouse,
//! checkpointed per shard.
//!
//! One module per concept:
//! - [`config`]: what the forwarder is told (built by the binary from flags and env vars);
//! - `startup`: the checks before reading, and what ends the run at once;
//! - `coordinator`: which shards are read, when and from where;
//! - `shards`: shard lineage and worker assignment (pure);
//! - `source`: the stream read, Kinesis or DynamoDB Streams, behind one face;
//! - `kinesis`, `streams`: the two services' calls; `stream_json`: a DynamoDB Streams
//!   record as the JSON the flatten core reads (pure);
//! - `reader`: one reader per shard (GetRecords, rate limit, iterator renewal);
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
mod reader;
mod retry;
pub mod service;
mod shards;
mod sink;
mod source;
mod startup;
pub mod stats;
mod stream_json;
mod streams;

pub use config::Config;
pub use error::Error;
pub use service::{run, Summary};
