//! When each key last completed a sync with this relay: the metro office's
//! "who has not synced for days". Held in memory, answered to
//! [`Request::Presence`](accordo_protocol::wire::Request::Presence), and
//! written to the store at most once per [`PERSIST_EVERY_MS`] per key, so a
//! restarted relay still knows who was silent before it stopped, without a
//! write (and an fsync) per long-poll.

use accordo_protocol::identity::NodeId;
use accordo_protocol::wire::NodePresence;
use std::collections::HashMap;
use std::sync::Mutex;

/// How stale the stored time of a key may get before it is written again.
pub const PERSIST_EVERY_MS: i64 = 60_000;

#[derive(Default)]
pub struct Presence {
    /// key → (last sync, last sync as stored).
    seen: Mutex<HashMap<NodeId, (i64, i64)>>,
}

impl Presence {
    /// Presence as read back from the store at start.
    pub fn loaded(rows: impl IntoIterator<Item = (NodeId, i64)>) -> Presence {
        Presence {
            seen: Mutex::new(rows.into_iter().map(|(n, ms)| (n, (ms, ms))).collect()),
        }
    }

    /// Notes a completed sync of `node` at `now_ms`; `true` when the stored
    /// time is due to be written (the caller writes it, then it counts as
    /// stored).
    pub fn note(&self, node: NodeId, now_ms: i64) -> bool {
        let mut seen = self.lock();
        let e = seen.entry(node).or_insert((now_ms, i64::MIN));
        e.0 = e.0.max(now_ms);
        if e.0.saturating_sub(e.1) >= PERSIST_EVERY_MS {
            e.1 = e.0;
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, (i64, i64)>> {
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
        assert!(p.note(n, 1_000), "first sight is written");
        assert!(!p.note(n, 2_000));
        assert!(!p.note(n, 1_000 + PERSIST_EVERY_MS - 1));
        assert!(p.note(n, 1_000 + PERSIST_EVERY_MS));
        assert_eq!(p.list()[0].last_sync_ms, 1_000 + PERSIST_EVERY_MS);
        assert!(!p.note(n, 500), "an older time never moves it back");
        assert_eq!(p.list()[0].last_sync_ms, 1_000 + PERSIST_EVERY_MS);
    }

    #[test]
    fn loaded_times_are_listed_and_not_written_again_at_once() {
        let n = NodeId([2; 32]);
        let p = Presence::loaded([(n, 10_000)]);
        assert_eq!(p.list()[0].last_sync_ms, 10_000);
        assert!(!p.note(n, 10_500));
        assert!(p.note(n, 10_000 + PERSIST_EVERY_MS));
    }
}
