//! Move DynamoDB tables into ClickHouse.
//!
//! - [`flatten`]: the core. DynamoDB JSON in, plain JSON out; no I/O.
//! - [`udf`]: the ClickHouse executable-UDF framing (RowBinary, TabSeparated,
//!   plain lines) around the core.

pub mod flatten;
pub mod udf;
