//! Start-up: the stream (for a DynamoDB table, its latest stream), the ClickHouse side
//! (tables, the destination's columns, the checkpoints), then the stream's shards.
//!
//! A server that does not answer yet is waited for, with backoff. What no retry can fix
//! ends the run with [`Error::StartUp`] (exit status 3) and a message that says what to
//! change: a refused user or password, an unknown database, a table or stream that does
//! not exist, a destination the rows cannot go into, a certificate that is not trusted.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::checkpoint::{Checkpoint, CheckpointStore};
use super::client;
use super::codes;
use super::config::{Config, ExpiredCheckpoint};
use super::retry::Backoff;
use super::shards::Shard;
use super::sink::Sink;
use super::source::{Source, SourceError};
use super::stats::Stats;
use super::Error;

/// What start-up found.
pub(crate) struct Started {
    pub checkpoints: HashMap<String, Checkpoint>,
    /// The highest checkpoint version in the table.
    pub newest_version: u64,
    pub listed: Vec<Shard>,
}

/// Why a start-up step failed.
enum Step {
    Retry(String),
    Fatal(String),
}

/// Sorts a ClickHouse error met at start-up.
fn clickhouse_step(what: &str, e: clickhouse::error::Error) -> Step {
    // The same handshake gives the same answer: a TLS failure is said plainly and ends the run.
    if let Some(tls) = client::tls_failure(&e) {
        return Step::Fatal(format!("{what}: {tls}"));
    }
    let text = format!("{what}: {}", client::error_chain(&e));
    let fatal = match &e {
        clickhouse::error::Error::BadResponse(m) => codes::is_start_up_fatal(m),
        _ => is_fatal_connection_error(&text),
    };
    if fatal {
        Step::Fatal(text)
    } else {
        Step::Retry(text)
    }
}

/// A connection that can never succeed as configured: the server's certificate is not
/// trusted (pass `--clickhouse-ca-file`), or the URL cannot be used.
fn is_fatal_connection_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "certificate",
        "scheme is not http",
        "invalid url",
        "invalid dns name",
    ]
    .iter()
    .any(|p| t.contains(p))
}

/// Connects to the stream; `None` when `shutdown` came first. For a DynamoDB table this
/// finds its latest stream (its ARN names the checkpoints), and for a DynamoDB stream it
/// checks the view type.
pub(crate) async fn connect(
    cfg: &Config,
    stats: &Stats,
    shutdown: &CancellationToken,
) -> Result<Option<Source>, Error> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
    loop {
        match Source::connect(cfg).await {
            Ok(s) => return Ok(Some(s)),
            Err(
                e @ (SourceError::NotFound(_)
                | SourceError::Denied(_)
                | SourceError::Unusable(_)
                | SourceError::InvalidArgument(_)),
            ) => {
                return Err(Error::StartUp {
                    what: format!("cannot read stream {}", cfg.stream),
                    source: Some(Box::new(e)),
                });
            }
            Err(e) => {
                let d = backoff.next_delay();
                warn!(error = %e, delay_ms = d.as_millis() as u64, "cannot reach the stream; retrying");
                stats.retry("connect");
                if sleep_or(shutdown, d).await {
                    return Ok(None);
                }
            }
        }
    }
}

/// Runs start-up; `None` when `shutdown` came first.
pub(crate) async fn start(
    cfg: &Config,
    sink: &mut Sink,
    store: &CheckpointStore,
    source: &Source,
    stats: &Stats,
    shutdown: &CancellationToken,
) -> Result<Option<Started>, Error> {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
    let (checkpoints, newest_version) = loop {
        match clickhouse_side(cfg, sink, store).await {
            Ok(c) => break c,
            Err(Step::Fatal(m)) => return Err(Error::start_up(m)),
            Err(Step::Retry(m)) => {
                let d = backoff.next_delay();
                warn!(error = %m, delay_ms = d.as_millis() as u64, "ClickHouse not ready; retrying");
                stats.retry("clickhouse_start");
                if sleep_or(shutdown, d).await {
                    return Ok(None);
                }
            }
        }
    };
    info!(
        stream = %source.checkpoint_name(cfg),
        table = %cfg.clickhouse.table,
        flatten = ?cfg.flatten,
        worker = %cfg.worker_label(),
        checkpoints = checkpoints.len(),
        "starting"
    );

    let listed = loop {
        match source.list_shards().await {
            Ok(l) => break l,
            Err(e @ (SourceError::NotFound(_) | SourceError::Denied(_))) => {
                return Err(Error::StartUp {
                    what: format!("cannot read stream {}", cfg.stream),
                    source: Some(Box::new(e)),
                });
            }
            Err(e) => {
                let d = backoff.next_delay();
                warn!(error = %e, delay_ms = d.as_millis() as u64, "listing the shards failed; retrying");
                stats.retry("list_shards");
                if sleep_or(shutdown, d).await {
                    return Ok(None);
                }
            }
        }
    };
    check_expired(cfg, &checkpoints, &listed)?;
    if checkpoints.is_empty() {
        check_stream_replaced(cfg, source, store).await?;
    }
    Ok(Some(Started {
        checkpoints,
        newest_version,
        listed,
    }))
}

/// The checkpoint table, the tables rows go to, the destination's columns (`--flatten
/// local`) and the checkpoints, in one attempt.
async fn clickhouse_side(
    cfg: &Config,
    sink: &mut Sink,
    store: &CheckpointStore,
) -> Result<(HashMap<String, Checkpoint>, u64), Step> {
    let ch = &cfg.clickhouse;
    if ch.create_checkpoint_table {
        store
            .create_table()
            .await
            .map_err(|e| clickhouse_step("cannot create the checkpoint table", e))?;
    }
    // The checkpoint table too, when the forwarder does not create it.
    let also: &[&str] = if ch.create_checkpoint_table {
        &[]
    } else {
        &[&ch.checkpoint_table]
    };
    let missing = sink
        .missing_tables(also)
        .await
        .map_err(|e| clickhouse_step("cannot look up the tables", e))?;
    if !missing.is_empty() {
        return Err(Step::Fatal(format!(
            "table(s) {} do not exist in database {}: create them with the scripts in sql/ \
             (or `dynamo-flatten schema`)",
            missing.join(", "),
            ch.database.as_deref().unwrap_or("(the user's default)")
        )));
    }
    if sink.is_local() {
        let described = sink
            .describe_destination()
            .await
            .map_err(|e| clickhouse_step(&format!("cannot describe table {}", ch.table), e))?;
        let key = sink.sorting_key().await.map_err(|e| {
            clickhouse_step(&format!("cannot read the sorting key of {}", ch.table), e)
        })?;
        // A destination the flattened rows cannot go into needs DDL, not a retry.
        let list = sink
            .use_columns(&described, &key)
            .map_err(|m| Step::Fatal(format!("destination: {m}")))?;
        info!(table = %ch.table, columns = %list, "column plan from DESCRIBE TABLE");
        if !list.contains("PRIMARY KEY") {
            warn!(
                table = %ch.table,
                sorting_key = %key,
                "the destination's sorting key is not a list of its columns (nor, for a \
                 Distributed table, that of the table it writes to on this server): an item \
                 whose key attribute is missing or does not fit is stored with the column's \
                 default instead of going to the errors table"
            );
        }
    }
    let checkpoints = store
        .load()
        .await
        .map_err(|e| clickhouse_step("cannot read the checkpoints", e))?;
    let newest = store
        .newest_version()
        .await
        .map_err(|e| clickhouse_step("cannot read the checkpoints", e))?;
    Ok((checkpoints, newest))
}

/// A checkpoint of an unfinished shard that the stream no longer lists: the shard aged out
/// of the stream's retention, and the changes after the checkpoint are gone.
fn check_expired(
    cfg: &Config,
    checkpoints: &HashMap<String, Checkpoint>,
    listed: &[Shard],
) -> Result<(), Error> {
    let ids: HashSet<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    let mut gone: Vec<&String> = checkpoints
        .iter()
        .filter(|(id, c)| !c.shard_end && !ids.contains(id.as_str()))
        .map(|(id, _)| id)
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    gone.sort();
    let msg = format!(
        "the checkpoints of shard(s) {} are older than the stream's retention: those shards \
         are no longer in the stream, so the changes after the checkpoints are not in the \
         stream. To recover: restart with --on-expired-checkpoint trim-horizon (reading goes on \
         from the oldest record the stream holds), then fill the gap from an incremental \
         export of the table from the last checkpoint's time to now, loaded with \
         sql/12_incremental_export.sql; or reload the table from a new full export (sql/03)",
        gone.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    match cfg.expired_checkpoint {
        ExpiredCheckpoint::Fail => Err(Error::CheckpointExpired(msg)),
        ExpiredCheckpoint::TrimHorizon => {
            warn!("{msg}; going on as asked");
            Ok(())
        }
    }
}

/// A DynamoDB stream without checkpoints where the consumer has checkpoints of an earlier
/// stream of the same table: the table's stream was disabled and enabled again (a new
/// ARN). The changes made while no stream was on are in neither stream.
async fn check_stream_replaced(
    cfg: &Config,
    source: &Source,
    store: &CheckpointStore,
) -> Result<(), Error> {
    let Source::DynamoStreams(s) = source else {
        return Ok(());
    };
    let Some(cut) = s.arn().rfind("/stream/") else {
        return Ok(());
    };
    let prefix = &s.arn()[..cut + "/stream/".len()];
    let earlier = match store.other_streams(prefix).await {
        Ok(v) => v,
        Err(e) => {
            warn!(error = %e, "cannot look for checkpoints of the table's earlier streams");
            return Ok(());
        }
    };
    let Some((old, written)) = earlier.first() else {
        return Ok(());
    };
    let since = humantime::format_rfc3339_seconds(*written);
    let msg = format!(
        "the checkpoints of this table are of its stream {old} (last written {since}), but the \
         table's stream is now {}: the stream was disabled and enabled again, and the changes \
         made while it was off are in neither stream. To recover: restart with \
         --on-expired-checkpoint trim-horizon (the new stream is read from its start), then \
         load an incremental export of the table from {since} to now with \
         sql/12_incremental_export.sql; or reload the table from a new full export (sql/03)",
        s.arn()
    );
    match cfg.expired_checkpoint {
        ExpiredCheckpoint::Fail => Err(Error::CheckpointExpired(msg)),
        ExpiredCheckpoint::TrimHorizon => {
            warn!("{msg}; going on as asked");
            Ok(())
        }
    }
}

/// Sleeps `d`; true when `token` is cancelled first.
pub(crate) async fn sleep_or(token: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = token.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_no_retry_fixes() {
        let bad = |m: &str| clickhouse::error::Error::BadResponse(m.into());
        assert!(matches!(
            clickhouse_step("x", bad("Code: 516. DB::Exception: Authentication failed")),
            Step::Fatal(_)
        ));
        assert!(matches!(
            clickhouse_step(
                "x",
                bad("Code: 81. DB::Exception: Database nope does not exist")
            ),
            Step::Fatal(_)
        ));
        assert!(matches!(
            clickhouse_step("x", bad("Code: 241. DB::Exception: Memory limit")),
            Step::Retry(_)
        ));
        assert!(matches!(
            clickhouse_step("x", clickhouse::error::Error::TimedOut),
            Step::Retry(_)
        ));
        assert!(is_fatal_connection_error(
            "network error: invalid peer certificate: UnknownIssuer"
        ));
        assert!(is_fatal_connection_error("invalid URL, scheme is not http"));
        assert!(!is_fatal_connection_error(
            "network error: tcp connect error: Connection refused (os error 111)"
        ));
    }
}
