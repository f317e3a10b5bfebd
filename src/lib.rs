//! Move DynamoDB tables into ClickHouse.
//!
//! - [`flatten`]: the core. DynamoDB JSON in, plain JSON out; no I/O.
//! - [`schema`]: column types inferred from sample items, and the SQL for them.
//! - [`udf`]: the ClickHouse executable-UDF framing (RowBinary, TabSeparated,
//!   plain lines) around the core.
//! - [`forwarder`] (feature `forwarder`, on by default): Kinesis Data Streams for DynamoDB
//!   into ClickHouse, checkpointed per shard.

pub mod flatten;
#[cfg(feature = "forwarder")]
pub mod forwarder;
pub mod schema;
pub mod udf;
