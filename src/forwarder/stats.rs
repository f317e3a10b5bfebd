//! Counters: Prometheus metrics (`/metrics`), the progress line, and the exit summary.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the Prometheus recorder; [`super::health`] serves what it renders.
pub fn install_metrics() -> Result<PrometheusHandle, super::Error> {
    PrometheusBuilder::new()
        .set_buckets(&[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ])
        .and_then(|b| b.install_recorder())
        .map_err(|e| super::Error::Config(format!("cannot set up metrics: {e}")))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Totals since start, shared by every task.
#[derive(Debug, Default)]
pub struct Stats {
    pub records_read: AtomicU64,
    pub records_inserted: AtomicU64,
    pub bytes_inserted: AtomicU64,
    pub batches: AtomicU64,
    pub error_rows: AtomicU64,
    pub retries: AtomicU64,
    pub shards_reading: AtomicU64,
    /// MillisBehindLatest of each shard being read.
    behind: Mutex<HashMap<String, u64>>,
    /// Start-up is done: ClickHouse and the stream answered, checkpoints are loaded.
    pub started: AtomicBool,
    /// When the process started and when a batch was last delivered (Unix ms; 0: never).
    pub started_ms: AtomicU64,
    pub last_insert_ms: AtomicU64,
    /// The dead-letter breaker is open (see `forwarder::breaker`).
    pub breaker_open: AtomicBool,
}

impl Stats {
    pub fn new() -> Arc<Stats> {
        let s = Stats::default();
        s.started_ms.store(unix_ms(SystemTime::now()), Relaxed);
        Arc::new(s)
    }

    /// The largest MillisBehindLatest of the shards being read.
    pub fn max_behind_ms(&self) -> Option<u64> {
        let map = self.behind.lock().unwrap_or_else(|p| p.into_inner());
        map.values().copied().max()
    }

    /// A shard's reader stopped: its lag is no longer reported.
    pub fn shard_done(&self, shard: &str) {
        let mut map = self.behind.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(shard);
    }

    /// Records read and not yet delivered (inserted or dead-lettered).
    pub fn records_waiting(&self) -> u64 {
        let done = self.records_inserted.load(Relaxed) + self.error_rows.load(Relaxed);
        self.records_read.load(Relaxed).saturating_sub(done)
    }

    pub fn breaker(&self, open: bool) {
        self.breaker_open.store(open, Relaxed);
        gauge!("kinesis_forwarder_breaker_open").set(if open { 1.0 } else { 0.0 });
        if open {
            counter!("kinesis_forwarder_breaker_opened_total").increment(1);
        }
    }

    pub fn read(&self, shard: &str, records: usize, bytes: usize, behind_ms: Option<i64>) {
        self.records_read.fetch_add(records as u64, Relaxed);
        counter!("kinesis_forwarder_records_read_total").increment(records as u64);
        counter!("kinesis_forwarder_bytes_read_total").increment(bytes as u64);
        if let Some(ms) = behind_ms {
            let ms_u = u64::try_from(ms).unwrap_or(0);
            self.behind
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(shard.to_string(), ms_u);
            gauge!("kinesis_forwarder_millis_behind_latest", "shard" => shard.to_string())
                .set(ms as f64);
        }
    }

    pub fn inserted(&self, rows: usize, bytes: usize, error_rows: usize, took: Duration) {
        self.records_inserted.fetch_add(rows as u64, Relaxed);
        self.bytes_inserted.fetch_add(bytes as u64, Relaxed);
        self.batches.fetch_add(1, Relaxed);
        self.error_rows.fetch_add(error_rows as u64, Relaxed);
        self.last_insert_ms
            .store(unix_ms(SystemTime::now()), Relaxed);
        counter!("kinesis_forwarder_records_inserted_total").increment(rows as u64);
        counter!("kinesis_forwarder_bytes_inserted_total").increment(bytes as u64);
        counter!("kinesis_forwarder_batches_total").increment(1);
        counter!("kinesis_forwarder_error_rows_total").increment(error_rows as u64);
        histogram!("kinesis_forwarder_insert_duration_seconds").record(took.as_secs_f64());
    }

    pub fn retry(&self, op: &'static str) {
        self.retries.fetch_add(1, Relaxed);
        counter!("kinesis_forwarder_retries_total", "op" => op).increment(1);
    }

    pub fn error(&self, kind: &'static str) {
        counter!("kinesis_forwarder_errors_total", "kind" => kind).increment(1);
    }

    pub fn shards(&self, reading: usize) {
        self.shards_reading.store(reading as u64, Relaxed);
        gauge!("kinesis_forwarder_shards_reading").set(reading as f64);
    }

    pub fn checkpoint(&self, shards: usize) {
        counter!("kinesis_forwarder_checkpoints_total").increment(shards as u64);
    }

    /// One line: totals, rate, shards, and how far behind the stream's tip.
    pub fn progress_line(&self, rate: f64) -> String {
        format!(
            "{} read, {} inserted ({:.0}/s), {} batches, {} error rows, {} retries, {} shards, {} ms behind",
            self.records_read.load(Relaxed),
            self.records_inserted.load(Relaxed),
            rate,
            self.batches.load(Relaxed),
            self.error_rows.load(Relaxed),
            self.retries.load(Relaxed),
            self.shards_reading.load(Relaxed),
            self.max_behind_ms().unwrap_or(0),
        )
    }
}

/// Redraws the progress line on stderr every second until `stop` is cancelled.
pub async fn progress(stats: Arc<Stats>, stop: tokio_util::sync::CancellationToken) {
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let now = Instant::now();
        let done = stats.records_inserted.load(Relaxed);
        let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        last = (now, done);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", stats.progress_line(rate));
        let _ = err.flush();
    }
    let _ = writeln!(std::io::stderr());
}
