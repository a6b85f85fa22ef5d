//! The relay's Prometheus metrics: one registry with typed families, held by
//! the running [`Relay`](crate::server::Relay); the server's call sites
//! increment them. Gauges read from the store (its size, the log head) are
//! set by [`RelayProbe`] just before each scrape.
//!
//! Names (all prefixed `accordo_relay_`): `connected_nodes`,
//! `changes_ingested_total`, `changes_rejected_total{reason}`,
//! `received_bytes_total`, `sent_bytes_total`, `sync_requests_total`,
//! `sync_duration_seconds` (histogram, excluding the long-poll wait),
//! `last_sync_timestamp_seconds{comune,role}`, `store_size_bytes`,
//! `log_head_seq`.

use crate::server::Relay;
use accordo_protocol::authority::Member;
use accordo_protocol::log::RejectReason;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why the relay refused a change, as a label value.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Reason {
    Envelope,
    Unauthorized,
    MissingDeps,
    Equivocation,
}

impl From<&RejectReason> for Reason {
    fn from(r: &RejectReason) -> Self {
        match r {
            RejectReason::Envelope(_) => Reason::Envelope,
            RejectReason::Unauthorized(_) => Reason::Unauthorized,
            RejectReason::MissingDeps(_) => Reason::MissingDeps,
            RejectReason::Equivocation { .. } => Reason::Equivocation,
        }
    }
}

impl EncodeLabelValue for Reason {
    fn encode(&self, out: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        out.write_str(match self {
            Reason::Envelope => "envelope",
            Reason::Unauthorized => "unauthorized",
            Reason::MissingDeps => "missing_deps",
            Reason::Equivocation => "equivocation",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: Reason,
}

/// A member's comune and role: at most one series per comune and role, so
/// the label set is bounded by the metropolitan city's comuni.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComuneLabel {
    pub comune: String,
    pub role: String,
}

/// Sync durations from 1 ms to ~16 s (15 doublings): a warm exchange is a
/// few milliseconds, a full 8 MiB batch on a slow link several seconds.
const SYNC_BUCKETS: (f64, f64, u16) = (0.001, 2.0, 15);

fn sync_histogram() -> Histogram {
    let (start, factor, n) = SYNC_BUCKETS;
    Histogram::new(exponential_buckets(start, factor, n))
}

/// The relay's metric families.
pub struct RelayMetrics {
    registry: Registry,
    pub connected_nodes: Gauge,
    pub changes_ingested: Counter,
    pub changes_rejected: Family<ReasonLabel, Counter>,
    pub received_bytes: Counter,
    pub sent_bytes: Counter,
    pub sync_requests: Counter,
    pub sync_duration: Histogram,
    pub last_sync: Family<ComuneLabel, Gauge>,
    pub store_size: Gauge,
    pub log_head: Gauge,
}

impl Default for RelayMetrics {
    fn default() -> Self {
        let mut m = RelayMetrics {
            registry: Registry::with_prefix("accordo_relay"),
            connected_nodes: Gauge::default(),
            changes_ingested: Counter::default(),
            changes_rejected: Family::default(),
            received_bytes: Counter::default(),
            sent_bytes: Counter::default(),
            sync_requests: Counter::default(),
            sync_duration: sync_histogram(),
            last_sync: Family::default(),
            store_size: Gauge::default(),
            log_head: Gauge::default(),
        };
        // Every reason from zero, so that the first refusal is an increase.
        for reason in [
            Reason::Envelope,
            Reason::Unauthorized,
            Reason::MissingDeps,
            Reason::Equivocation,
        ] {
            let _ = m.changes_rejected.get_or_create(&ReasonLabel { reason });
        }
        let r = &mut m.registry;
        r.register(
            "connected_nodes",
            "Connections admitted by a hello and still open",
            m.connected_nodes.clone(),
        );
        r.register(
            "changes_ingested",
            "Pushed changes newly stored in the log",
            m.changes_ingested.clone(),
        );
        r.register(
            "changes_rejected",
            "Pushed changes refused, by reason",
            m.changes_rejected.clone(),
        );
        r.register(
            "received_bytes",
            "Request bytes received (frames with their length prefix)",
            m.received_bytes.clone(),
        );
        r.register(
            "sent_bytes",
            "Response bytes sent (frames with their length prefix)",
            m.sent_bytes.clone(),
        );
        r.register(
            "sync_requests",
            "Sync requests served",
            m.sync_requests.clone(),
        );
        r.register(
            "sync_duration_seconds",
            "Time to serve a sync request (push and pull), excluding the long-poll wait",
            m.sync_duration.clone(),
        );
        r.register(
            "last_sync_timestamp_seconds",
            "Unix time of the last sync of a member of this comune and role (from the stored presence at start; the start time for a key never seen)",
            m.last_sync.clone(),
        );
        r.register(
            "store_size_bytes",
            "Size of the store's files (database and write-ahead log)",
            m.store_size.clone(),
        );
        r.register(
            "log_head_seq",
            "Position of the last change in the log",
            m.log_head.clone(),
        );
        m
    }
}

impl RelayMetrics {
    /// Counts the outcome of one push.
    pub fn pushed(&self, ingested: u64, rejects: &[accordo_protocol::wire::Rejected]) {
        self.changes_ingested.inc_by(ingested);
        for r in rejects {
            let reason = Reason::from(&r.reason);
            self.changes_rejected
                .get_or_create(&ReasonLabel { reason })
                .inc();
        }
    }

    /// Records a served sync request of `member`.
    pub fn synced(&self, member: &Member, took: Duration, now_unix_s: i64) {
        self.sync_requests.inc();
        self.sync_duration.observe(took.as_secs_f64());
        self.seen(member, now_unix_s);
    }

    /// Sets `member`'s comune and role as last seen at `unix_s`.
    pub fn seen(&self, member: &Member, unix_s: i64) {
        self.last_sync
            .get_or_create(&Self::label(member))
            .set(unix_s);
    }

    /// [`RelayMetrics::seen`], unless a later time is already set (another
    /// office of the same comune and role).
    pub fn seen_at_least(&self, member: &Member, unix_s: i64) {
        let gauge = self.last_sync.get_or_create(&Self::label(member));
        if gauge.get() < unix_s {
            gauge.set(unix_s);
        }
    }

    fn label(member: &Member) -> ComuneLabel {
        ComuneLabel {
            comune: member.comune.as_str().to_owned(),
            role: member.role.as_str().to_owned(),
        }
    }
}

/// An admitted connection, counted in `connected_nodes` until dropped.
pub struct ConnectedGuard(Arc<Relay>);

impl ConnectedGuard {
    pub fn new(relay: Arc<Relay>) -> Self {
        relay.metrics().connected_nodes.inc();
        ConnectedGuard(relay)
    }
}

impl Drop for ConnectedGuard {
    fn drop(&mut self) {
        self.0.metrics().connected_nodes.dec();
    }
}

/// What `/metrics` and `/readyz` read from a running relay.
pub struct RelayProbe {
    pub relay: Arc<Relay>,
    /// The store's database file; its `-wal` file is counted with it.
    pub db_path: PathBuf,
}

impl accordo_observe::Probe for RelayProbe {
    fn registry(&self) -> &Registry {
        &self.relay.metrics().registry
    }

    fn refresh(&self) -> Result<(), String> {
        let head = self.relay.store_head_seq().map_err(|e| e.to_string())?;
        let m = self.relay.metrics();
        m.log_head.set(i64::try_from(head).unwrap_or(i64::MAX));
        let size = accordo_store::file_size_bytes(&self.db_path);
        m.store_size.set(i64::try_from(size).unwrap_or(i64::MAX));
        Ok(())
    }

    fn ready(&self) -> Result<(), String> {
        if let Some(why) = self.relay.fatal_error() {
            return Err(format!("the relay stopped: {why}"));
        }
        self.relay
            .store_head_seq()
            .map(|_| ())
            .map_err(|e| format!("the store does not answer: {e}"))
    }
}
