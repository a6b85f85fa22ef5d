//! When each key last completed a sync with this relay: the metro office's
//! "who has not synced for days". Held in memory, answered to
//! [`Request::Presence`](accordo_protocol::wire::Request::Presence), and
//! written to the store at most once per [`PERSIST_EVERY`] per key, so a
//! restarted relay still knows who was silent before it stopped, without a
//! write (and an fsync) per long-poll.

use accordo_protocol::identity::NodeId;
use accordo_protocol::wire::NodePresence;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long after writing a key's time it is written again (by the
/// runtime's clock, so a simulation replays the same writes).
pub const PERSIST_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Presence {
    /// key → (last sync in UNIX ms, when that key was last written).
    seen: Mutex<HashMap<NodeId, (i64, Option<Instant>)>>,
}

impl Presence {
    /// Presence as read back from the store at start.
    pub fn loaded(rows: impl IntoIterator<Item = (NodeId, i64)>) -> Presence {
        Presence {
            seen: Mutex::new(rows.into_iter().map(|(n, ms)| (n, (ms, None))).collect()),
        }
    }

    /// Notes a completed sync of `node` at `now_ms` (UNIX ms); `true` when
    /// its time is due to be written (first sight since start, or
    /// [`PERSIST_EVERY`] since the last write) — the caller writes it.
    pub fn note(&self, node: NodeId, now_ms: i64, now: Instant) -> bool {
        let mut seen = self.lock();
        let e = seen.entry(node).or_insert((now_ms, None));
        e.0 = e.0.max(now_ms);
        if e.1
            .is_none_or(|at| now.saturating_duration_since(at) >= PERSIST_EVERY)
        {
            e.1 = Some(now);
            return true;
        }
        false
    }

    /// Every key seen, by key.
    pub fn list(&self) -> Vec<NodePresence> {
        let mut out: Vec<NodePresence> = self
            .lock()
            .iter()
            .map(|(node, (last, _))| NodePresence {
                node: *node,
                last_sync_ms: *last,
            })
            .collect();
        out.sort_by_key(|p| p.node);
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, (i64, Option<Instant>)>> {
        // A poisoned map only holds times; the data are still usable.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_written_on_first_sight_then_at_most_once_a_minute() {
        let p = Presence::default();
        let n = NodeId([1; 32]);
        let t0 = Instant::now();
        assert!(p.note(n, 1_000, t0), "first sight is written");
        assert!(!p.note(n, 2_000, t0 + Duration::from_secs(1)));
        assert!(!p.note(n, 3_000, t0 + PERSIST_EVERY - Duration::from_millis(1)));
        assert!(p.note(n, 61_000, t0 + PERSIST_EVERY));
        assert_eq!(p.list()[0].last_sync_ms, 61_000);
        assert!(
            !p.note(n, 500, t0 + PERSIST_EVERY),
            "an older time never moves it back"
        );
        assert_eq!(p.list()[0].last_sync_ms, 61_000);
    }

    #[test]
    fn loaded_times_are_listed_and_written_again_on_first_sight() {
        let n = NodeId([2; 32]);
        let p = Presence::loaded([(n, 10_000)]);
        assert_eq!(p.list()[0].last_sync_ms, 10_000);
        let t0 = Instant::now();
        assert!(p.note(n, 20_000, t0));
        assert!(!p.note(n, 21_000, t0));
    }
}
