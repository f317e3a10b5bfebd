//! The forwarder's HTTP endpoint: `/metrics` (Prometheus), `/healthz` and `/readyz`.
//!
//! - `/healthz` answers 200 while the process serves: for a liveness probe.
//! - `/readyz` answers 200 when the forwarder is delivering, and 503 with the reasons when
//!   it is not: start-up is not done, the dead-letter breaker is open, or records wait and
//!   nothing was delivered for `--ready-stall`. A forwarder that runs but is stuck is
//!   visible here. Both carry a JSON body with the lag (MillisBehindLatest, the largest of
//!   the shards read), the records waiting and the time of the last delivered batch.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio::net::TcpListener;
use tracing::debug;

use super::stats::{unix_ms, Stats};
use super::Error;

/// What `/readyz` judges by, read from [`Stats`] at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub started: bool,
    pub breaker_open: bool,
    pub waiting: u64,
    /// Unix ms of the last delivered batch, else of the start.
    pub last_progress_ms: u64,
    pub last_insert_ms: Option<u64>,
    pub behind_ms: Option<u64>,
    pub now_ms: u64,
}

impl Snapshot {
    pub(crate) fn of(stats: &Stats, now: SystemTime) -> Snapshot {
        let last = stats.last_insert_ms.load(Relaxed);
        Snapshot {
            started: stats.started.load(Relaxed),
            breaker_open: stats.breaker_open.load(Relaxed),
            waiting: stats.records_waiting(),
            last_progress_ms: if last > 0 {
                last
            } else {
                stats.started_ms.load(Relaxed)
            },
            last_insert_ms: (last > 0).then_some(last),
            behind_ms: stats.max_behind_ms(),
            now_ms: unix_ms(now),
        }
    }

    /// Why the forwarder is not ready; empty when it is.
    pub(crate) fn not_ready(&self, stall: Duration) -> Vec<String> {
        let mut why = Vec::new();
        if !self.started {
            why.push("starting: ClickHouse or the stream has not answered yet".to_string());
        }
        if self.breaker_open {
            why.push(
                "the dead-letter breaker is open: ClickHouse refuses every record".to_string(),
            );
        }
        let idle = Duration::from_millis(self.now_ms.saturating_sub(self.last_progress_ms));
        if self.waiting > 0 && idle > stall {
            why.push(format!(
                "{} records wait and nothing was delivered for {}s",
                self.waiting,
                idle.as_secs()
            ));
        }
        why
    }

    fn body(&self, stall: Duration) -> serde_json::Value {
        let why = self.not_ready(stall);
        let rfc3339 = |ms: u64| {
            humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
        };
        json!({
            "ready": why.is_empty(),
            "reasons": why,
            "started": self.started,
            "breaker_open": self.breaker_open,
            "millis_behind_latest": self.behind_ms,
            "records_waiting": self.waiting,
            "last_insert": self.last_insert_ms.map(rfc3339),
            "seconds_since_last_insert": self
                .last_insert_ms
                .map(|t| self.now_ms.saturating_sub(t) as f64 / 1000.0),
        })
    }
}

/// Serves the endpoint on `addr` until the process ends. Binding fails at once (a
/// configuration error); connections are served on their own tasks.
pub async fn serve(
    addr: SocketAddr,
    metrics: PrometheusHandle,
    stats: Arc<Stats>,
    stall: Duration,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot serve metrics on {addr}: {e}")))?;
    // Histograms are drained into the snapshot by this upkeep.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            let stats = stats.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let r = respond(req.uri().path(), &metrics, &stats, stall);
                        async move { Ok::<_, Infallible>(r) }
                    });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    debug!(error = %e, "metrics connection ended");
                }
            });
        }
    }))
}

fn respond(
    path: &str,
    metrics: &PrometheusHandle,
    stats: &Stats,
    stall: Duration,
) -> Response<Full<Bytes>> {
    let json = |status: StatusCode, v: serde_json::Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(v.to_string())))
            .unwrap_or_default()
    };
    match path {
        "/healthz" => json(
            StatusCode::OK,
            Snapshot::of(stats, SystemTime::now()).body(stall),
        ),
        "/readyz" => {
            let body = Snapshot::of(stats, SystemTime::now()).body(stall);
            let status = if body["ready"] == true {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(status, body)
        }
        _ => Response::builder()
            .header("content-type", "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(metrics.render())))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        Snapshot {
            started: true,
            breaker_open: false,
            waiting: 0,
            last_progress_ms: 1_000_000,
            last_insert_ms: Some(1_000_000),
            behind_ms: Some(20),
            now_ms: 1_000_000 + 600_000,
        }
    }

    #[test]
    fn ready_while_nothing_waits_however_long_ago_the_last_insert() {
        assert!(snap().not_ready(Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn not_ready_when_starting_stuck_or_the_breaker_is_open() {
        let stall = Duration::from_secs(60);
        let s = Snapshot {
            started: false,
            ..snap()
        };
        assert_eq!(s.not_ready(stall).len(), 1);
        let s = Snapshot {
            breaker_open: true,
            ..snap()
        };
        assert!(s.not_ready(stall)[0].contains("breaker"));
        let s = Snapshot {
            waiting: 7,
            ..snap()
        };
        assert_eq!(
            s.not_ready(stall),
            vec!["7 records wait and nothing was delivered for 600s".to_string()]
        );
        // Records wait but a batch went in recently.
        let s = Snapshot {
            waiting: 7,
            now_ms: 1_000_000 + 30_000,
            ..snap()
        };
        assert!(s.not_ready(stall).is_empty());
        let body = s.body(stall);
        assert_eq!(body["ready"], true);
        assert_eq!(body["millis_behind_latest"], 20);
        assert_eq!(body["last_insert"], "1970-01-01T00:16:40.000Z");
        assert_eq!(body["seconds_since_last_insert"], 30.0);
    }
}
