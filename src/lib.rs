//! Move DynamoDB tables into ClickHouse.
//!
//! - [`flatten`]: the core. DynamoDB JSON in, plain JSON out; no I/O.
//! - [`schema`]: column types inferred from sample items, and the SQL for them.
//! - [`udf`]: the ClickHouse executable-UDF framing (RowBinary, TabSeparated,
//!   plain lines) around the core.

pub mod flatten;
pub mod schema;
pub mod udf;
