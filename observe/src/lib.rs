//! The operator's view of a running node or relay: Prometheus metrics at
//! `/metrics`, liveness at `/healthz` and readiness at `/readyz`, on one
//! small HTTP listener bound only where `--metrics HOST:PORT` asks.
//!
//! Each binary keeps its own registry and typed metric families (see
//! `node/src/metrics.rs` and `relay/src/metrics.rs`); call sites increment
//! them. Gauges that are read from the store (outbox length, store size,
//! view lag) are set by [`Probe::refresh`] just before each scrape, off the
//! async threads, so a scrape never blocks the runtime on SQLite.
//!
//! The body is OpenMetrics text (`prometheus-client`'s encoder), which
//! Prometheus reads natively.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the HTTP listener asks of the binary it serves.
pub trait Probe: Send + Sync + 'static {
    /// The registry to encode at `/metrics`.
    fn registry(&self) -> &Registry;
    /// Sets the gauges read from the store, just before a scrape. Runs on a
    /// blocking thread; an error fails the scrape with 503 and its message.
    fn refresh(&self) -> Result<(), String>;
    /// Whether the process can do its work (the store answers a query; for
    /// a node, its sync loop has started). Runs on a blocking thread; an
    /// error is answered with 503 and the reason.
    fn ready(&self) -> Result<(), String>;
}

/// The media type `prometheus-client`'s text encoder produces.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("--metrics {addr:?}: expected HOST:PORT ({detail})")]
    Address { addr: String, detail: String },
    #[error("binding the metrics listener on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("metrics listener: {0}")]
    Serve(std::io::Error),
}

/// Binds the metrics listener on `addr` (HOST:PORT; port 0 picks a free one).
pub async fn bind(addr: &str) -> Result<tokio::net::TcpListener, ObserveError> {
    let parsed = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| ObserveError::Address {
            addr: addr.to_owned(),
            detail: e.to_string(),
        })?
        .next()
        .ok_or_else(|| ObserveError::Address {
            addr: addr.to_owned(),
            detail: "resolves to no address".into(),
        })?;
    tokio::net::TcpListener::bind(parsed)
        .await
        .map_err(|source| ObserveError::Bind {
            addr: parsed.to_string(),
            source,
        })
}

/// The routes: `/metrics`, `/healthz`, `/readyz`.
pub fn router(probe: Arc<dyn Probe>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(probe)
}

/// Serves the routes on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    probe: Arc<dyn Probe>,
    shutdown: CancellationToken,
) -> Result<(), ObserveError> {
    let local: Option<SocketAddr> = listener.local_addr().ok();
    if let Some(addr) = local {
        tracing::info!(%addr, "metrics listening");
    }
    axum::serve(listener, router(probe))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(ObserveError::Serve)
}

async fn metrics(State(probe): State<Arc<dyn Probe>>) -> Response {
    let encoded = tokio::task::spawn_blocking(move || {
        probe.refresh()?;
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, probe.registry())
            .map_err(|e| format!("encoding the metrics: {e}"))?;
        Ok::<_, String>(body)
    })
    .await
    .unwrap_or_else(|e| Err(format!("metrics task failed: {e}")));
    match encoded {
        Ok(body) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response(),
        Err(why) => {
            tracing::warn!(reason = %why, "metrics scrape failed");
            (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(probe): State<Arc<dyn Probe>>) -> Response {
    let ready = tokio::task::spawn_blocking(move || probe.ready())
        .await
        .unwrap_or_else(|e| Err(format!("readiness task failed: {e}")));
    match ready {
        Ok(()) => "ready\n".into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct TestProbe {
        registry: Registry,
        ready: AtomicBool,
    }

    impl Probe for TestProbe {
        fn registry(&self) -> &Registry {
            &self.registry
        }
        fn refresh(&self) -> Result<(), String> {
            Ok(())
        }
        fn ready(&self) -> Result<(), String> {
            if self.ready.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("the store is gone".into())
            }
        }
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn metrics_health_and_readiness_answer_as_the_probe_says() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("test_events", "Events seen", counter.clone());
        counter.inc_by(3);
        let probe = Arc::new(TestProbe {
            registry,
            ready: AtomicBool::new(false),
        });
        let listener = bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, probe.clone(), shutdown.clone()));

        let metrics = get(addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(
            metrics.contains("application/openmetrics-text"),
            "{metrics}"
        );
        assert!(metrics.contains("# TYPE test_events counter"), "{metrics}");
        assert!(metrics.contains("test_events_total 3"), "{metrics}");
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        let not_ready = get(addr, "/readyz").await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(
            not_ready.contains("not ready: the store is gone"),
            "{not_ready}"
        );
        probe.ready.store(true, Ordering::SeqCst);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/nothing").await.starts_with("HTTP/1.1 404"));

        shutdown.cancel();
        server.await.expect("joins").expect("serves cleanly");
    }

    #[tokio::test]
    async fn a_bad_address_is_named() {
        let err = bind("no-port-here").await.expect_err("refused");
        assert!(err.to_string().contains("no-port-here"), "{err}");
    }
}
