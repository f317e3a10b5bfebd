//! The forwarder's run: start-up, then the shard readers and the batcher side by side,
//! then shutdown.
//!
//! ```text
//!  shard readers ──(chunk + read-buffer permit)──▶ batcher ──insert──▶ ClickHouse
//!        ▲                                            │
//!        └── coordinator ◀──── shard ended ───────────┘ (after its checkpoint is written)
//! ```
//!
//! [`super::startup`] checks the ClickHouse side and lists the shards,
//! [`super::coordinator`] schedules the shard readers, [`super::delivery`] inserts and
//! checkpoints.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::breaker::Breaker;
use super::checkpoint::CheckpointStore;
use super::config::Config;
use super::coordinator::Coordinator;
use super::delivery::Batcher;
use super::reader::Handover;
use super::sink::Sink;
use super::startup;
use super::stats::Stats;
use super::Error;

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub records_inserted: u64,
    pub batches: u64,
    pub error_rows: u64,
    pub shards_ended: usize,
}

/// Stops: `shutdown` ends reading and flushes what was read; `hard_stop` abandons the open
/// batch (it is not checkpointed, so it is read again on the next start).
#[derive(Clone, Default)]
pub struct Stop {
    pub shutdown: CancellationToken,
    pub hard_stop: CancellationToken,
}

/// Runs until `--once` is done or `stop.shutdown` is cancelled.
pub async fn run(cfg: Config, stop: Stop, stats: Arc<Stats>) -> Result<Summary, Error> {
    cfg.validate()?;
    let mut sink =
        Sink::new(&cfg.clickhouse, cfg.flatten, &cfg.flatten_options).map_err(Error::Config)?;
    let Some(source) = startup::connect(&cfg, &stats, &stop.shutdown).await? else {
        return Ok(Summary::default());
    };
    let ch = &cfg.clickhouse;
    let store = |client| {
        CheckpointStore::new(
            client,
            &ch.checkpoint_table,
            source.checkpoint_name(&cfg),
            &ch.table,
            &cfg.worker_label(),
        )
    };
    let reader_store = store(sink.client().clone());
    let mut writer_store = store(sink.client().clone()).with_timeout(ch.timeout);

    let Some(started) = startup::start(
        &cfg,
        &mut sink,
        &reader_store,
        &source,
        &stats,
        &stop.shutdown,
    )
    .await?
    else {
        return Ok(Summary::default());
    };
    writer_store.continue_after(started.newest_version);
    stats.started.store(true, Relaxed);

    let (tx, rx) = mpsc::channel::<Handover>(256);
    let budget = Arc::new(Semaphore::new(cfg.max_buffer_bytes));
    let (ended_tx, ended_rx) = mpsc::unbounded_channel::<String>();
    let batcher = Batcher {
        sink,
        store: writer_store,
        limits: cfg.batch,
        stats: stats.clone(),
        hard_stop: stop.hard_stop.clone(),
        checkpoints: started.checkpoints.clone(),
        ended_tx,
        breaker: Breaker::new(cfg.breaker_after),
    };
    let batcher = tokio::spawn(batcher.run(rx));

    let coordinator = Coordinator {
        cfg: &cfg,
        source: Arc::new(source),
        store: reader_store,
        stats: stats.clone(),
        listed: started
            .listed
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect(),
        ended: started
            .checkpoints
            .iter()
            .filter(|(_, c)| c.shard_end)
            .map(|(id, _)| id.clone())
            .collect(),
        checkpoints: started.checkpoints,
        tx,
        budget,
        readers: CancellationToken::new(),
        once: cfg.once.then(SystemTime::now),
    };
    let coordinated = coordinator.run(&stop.shutdown, ended_rx).await;

    let delivered = match batcher.await {
        Ok(r) => r,
        Err(e) => Err(Error::Task {
            what: "the batcher failed",
            source: Box::new(e),
        }),
    };
    let shards_ended = coordinated?;
    delivered?;
    Ok(Summary {
        records_inserted: stats.records_inserted.load(Relaxed),
        batches: stats.batches.load(Relaxed),
        error_rows: stats.error_rows.load(Relaxed),
        shards_ended,
    })
}
