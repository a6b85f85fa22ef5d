//! The node's Prometheus metrics, served by `accordo run --metrics HOST:PORT`
//! (with `/healthz` and `/readyz`, see `accordo_observe`).
//!
//! The sync engine's counters live in one process-wide set ([`engine`]):
//! a node process runs one engine, and `client` increments them at its call
//! sites. (The in-process simulations run several engines, which then share
//! the counters; nothing reads them there.) Gauges read from the store are
//! set by [`NodeProbe::refresh`] at each scrape, on its own connection, so
//! a scrape never waits for the engine's replica lock.
//!
//! Names (all prefixed `accordo_node_`): `outbox_changes{state}`,
//! `changes_pulled_total`, `changes_pushed_total`, `changes_rejected_total`,
//! `sync_round_trips_total{kind}`, `sync_duration_seconds{kind}`
//! (histogram), `relay_connected`, `last_sync_timestamp_seconds`,
//! `store_size_bytes`, `view_lag_changes`.

use crate::client::LAST_CONTACT_META;
use crate::replica::DB_FILE;
use crate::store::NodeStore;
use accordo_store::StoreError;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Which kind of exchange a round trip was.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Kind {
    /// Answered at once (a push, or `accordo sync`).
    Immediate,
    /// A long-poll: the relay answers when its head moves or the wait ends,
    /// so its duration is mostly waiting.
    LongPoll,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum OutboxState {
    Pending,
    Rejected,
}

impl EncodeLabelValue for Kind {
    fn encode(&self, out: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        out.write_str(match self {
            Kind::Immediate => "immediate",
            Kind::LongPoll => "long_poll",
        })
    }
}

impl EncodeLabelValue for OutboxState {
    fn encode(&self, out: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        out.write_str(match self {
            OutboxState::Pending => "pending",
            OutboxState::Rejected => "rejected",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: OutboxState,
}

/// Round trips from 1 ms to ~33 s (16 doublings): a warm push is a few
/// milliseconds; a long-poll waits up to `MAX_WAIT_MS`.
fn sync_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The sync engine's counters (see the module comment).
pub struct EngineMetrics {
    pub pulled: Counter,
    pub pushed: Counter,
    pub rejected: Counter,
    pub round_trips: Family<KindLabel, Counter>,
    pub duration: Family<KindLabel, Histogram, fn() -> Histogram>,
    pub connected: Gauge,
    started: AtomicBool,
}

static ENGINE: LazyLock<EngineMetrics> = LazyLock::new(|| {
    let m = EngineMetrics {
        pulled: Counter::default(),
        pushed: Counter::default(),
        rejected: Counter::default(),
        round_trips: Family::default(),
        duration: Family::new_with_constructor(sync_histogram),
        connected: Gauge::default(),
        started: AtomicBool::new(false),
    };
    // Both kinds from zero, so that the first exchange is an increase.
    for kind in [Kind::Immediate, Kind::LongPoll] {
        let _ = m.round_trips.get_or_create(&KindLabel { kind });
        let _ = m.duration.get_or_create(&KindLabel { kind });
    }
    m
});

/// This process's sync engine counters.
pub fn engine() -> &'static EngineMetrics {
    &ENGINE
}

impl EngineMetrics {
    /// Records one exchange with the relay.
    pub fn exchanged(
        &self,
        long_poll: bool,
        took: Duration,
        acked: usize,
        pulled: usize,
        rejected: usize,
    ) {
        let kind = if long_poll {
            Kind::LongPoll
        } else {
            Kind::Immediate
        };
        let label = KindLabel { kind };
        self.round_trips.get_or_create(&label).inc();
        self.duration
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        self.pushed.inc_by(acked as u64);
        self.pulled.inc_by(pulled as u64);
        self.rejected.inc_by(rejected as u64);
    }

    /// The `run` loop has started (readiness).
    pub fn mark_started(&self) {
        self.started.store(true, Ordering::SeqCst);
    }

    pub fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }
}

/// What `/metrics` and `/readyz` read from a node.
pub struct NodeProbe {
    registry: Registry,
    store: Mutex<NodeStore>,
    db_path: PathBuf,
    outbox: Family<StateLabel, Gauge>,
    last_sync: Gauge,
    store_size: Gauge,
    view_lag: Gauge,
}

impl NodeProbe {
    /// Opens its own connection to the node's store in `dir`.
    pub fn open(dir: &Path) -> Result<NodeProbe, StoreError> {
        let db_path = dir.join(DB_FILE);
        let store = crate::store::open(&db_path)?;
        let mut probe = NodeProbe {
            registry: Registry::with_prefix("accordo_node"),
            store: Mutex::new(store),
            db_path,
            outbox: Family::default(),
            last_sync: Gauge::default(),
            store_size: Gauge::default(),
            view_lag: Gauge::default(),
        };
        probe.register();
        Ok(probe)
    }

    fn register(&mut self) {
        let e = engine();
        let r = &mut self.registry;
        r.register(
            "outbox_changes",
            "Local changes the relay has not acknowledged (pending) or refused (rejected)",
            self.outbox.clone(),
        );
        r.register(
            "changes_pulled",
            "Changes received from the relay and stored",
            e.pulled.clone(),
        );
        r.register(
            "changes_pushed",
            "Local changes the relay acknowledged",
            e.pushed.clone(),
        );
        r.register(
            "changes_rejected",
            "Local changes the relay refused (kept in the outbox, marked rejected)",
            e.rejected.clone(),
        );
        r.register(
            "sync_round_trips",
            "Exchanges with the relay, by kind",
            e.round_trips.clone(),
        );
        r.register(
            "sync_duration_seconds",
            "Duration of an exchange with the relay, by kind (a long-poll's is mostly waiting)",
            e.duration.clone(),
        );
        r.register(
            "relay_connected",
            "1 while connected to the relay and admitted",
            e.connected.clone(),
        );
        r.register(
            "last_sync_timestamp_seconds",
            "Unix time this node last stored a response of the relay (0: never)",
            self.last_sync.clone(),
        );
        r.register(
            "store_size_bytes",
            "Size of the store's files (database and write-ahead log)",
            self.store_size.clone(),
        );
        r.register(
            "view_lag_changes",
            "Changes in the log the query store does not cover yet",
            self.view_lag.clone(),
        );
    }

    fn read(&self) -> Result<(u64, u64, i64, i64), StoreError> {
        let mut store = self
            .store
            .lock()
            .map_err(|_| StoreError::Corrupt("metrics store lock poisoned".into()))?;
        store.read(|tx| {
            let (pending, rejected) = tx.outbox_counts()?;
            let last_ms: i64 = tx
                .meta(LAST_CONTACT_META)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let lag: i64 = tx.sql().query_row(
                "SELECT COUNT(*) FROM log l LEFT JOIN doc_state s ON s.doc = l.doc
                 WHERE s.doc IS NULL OR l.seq > s.view_seq",
                [],
                |r| r.get(0),
            )?;
            Ok::<_, StoreError>((pending, rejected, last_ms, lag))
        })
    }
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl accordo_observe::Probe for NodeProbe {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn refresh(&self) -> Result<(), String> {
        let (pending, rejected, last_ms, lag) = self.read().map_err(|e| e.to_string())?;
        let set = |state, n| {
            self.outbox
                .get_or_create(&StateLabel { state })
                .set(gauge_value(n))
        };
        set(OutboxState::Pending, pending);
        set(OutboxState::Rejected, rejected);
        self.last_sync.set(last_ms / 1000);
        self.view_lag.set(lag);
        let size = accordo_store::file_size_bytes(&self.db_path);
        self.store_size.set(gauge_value(size));
        Ok(())
    }

    fn ready(&self) -> Result<(), String> {
        self.read()
            .map_err(|e| format!("the store does not answer: {e}"))?;
        if !engine().started() {
            return Err("the sync loop has not started".into());
        }
        Ok(())
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `shutdown`.
pub async fn serve(dir: &Path, addr: &str, shutdown: CancellationToken) -> anyhow::Result<()> {
    let probe = NodeProbe::open(dir)?;
    let listener = accordo_observe::bind(addr).await?;
    eprintln!("metrics on http://{}/metrics", listener.local_addr()?);
    accordo_observe::serve(listener, Arc::new(probe), shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use accordo_observe::Probe;

    #[test]
    fn readiness_waits_for_the_sync_loop_and_gauges_read_the_store() {
        let dir = tempfile::tempdir().expect("temp dir");
        let probe = NodeProbe::open(dir.path()).expect("store opens");
        // No test of this crate runs the sync loop (`client::run_with`),
        // so the process-wide flag is still down here.
        let why = probe.ready().expect_err("not ready before the loop");
        assert!(why.contains("sync loop"), "{why}");
        engine().mark_started();
        probe.ready().expect("ready once the loop started");
        probe.refresh().expect("gauges read");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, probe.registry()).expect("encodes");
        assert!(
            text.contains("accordo_node_outbox_changes{state=\"pending\"} 0"),
            "{text}"
        );
        assert!(text.contains("accordo_node_view_lag_changes 0"), "{text}");
        assert!(
            text.contains("accordo_node_last_sync_timestamp_seconds 0"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE accordo_node_sync_duration_seconds histogram"),
            "{text}"
        );
    }
}
