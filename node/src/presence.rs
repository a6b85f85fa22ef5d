//! When each node last completed a sync with the relay, as the relay
//! reports it ([`Request::Presence`](accordo_protocol::wire::Request::Presence)):
//! what the metro dashboard shows as each comune's last sync, so the office
//! sees who has not synced for days even when that comune made no edits.
//! The daemons (`run`) of metro and admin nodes ask once per
//! [`REFRESH_EVERY`] (every [`REFRESH_ON_NEWS`] while other nodes' changes
//! arrive) and keep the last answer in the store's meta table.

use crate::replica::{Replica, ReplicaError};
use crate::store::NodeStore;
use accordo_protocol::identity::{NodeId, Role};
use accordo_protocol::registry::RegistryRole;
use accordo_protocol::wire::NodePresence;
use accordo_store::StoreError;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// How often a metro or admin node's daemon asks the relay again when
/// nothing new arrives…
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// …and when a response brought other nodes' changes (they just synced).
pub const REFRESH_ON_NEWS: Duration = Duration::from_secs(2);
/// Meta keys: the relay's last answer (JSON), and when it was received.
pub const PRESENCE_META: &str = "relay_presence";
pub const PRESENCE_AT_META: &str = "relay_presence_at_ms";

/// Whether a node of `role` that last asked at `asked` should ask now;
/// `news`: the response at hand brought changes. Decided on the runtime's
/// clock, so a simulation replays the same requests.
pub fn due(role: Role, asked: Option<Instant>, news: bool, now: Instant) -> bool {
    if !matches!(role, Role::Metro | Role::Admin) {
        return false;
    }
    let every = if news { REFRESH_ON_NEWS } else { REFRESH_EVERY };
    asked.is_none_or(|at| now.saturating_duration_since(at) >= every)
}

/// Keeps the relay's answer received at `now_ms`.
pub fn keep(store: &NodeStore, nodes: &[NodePresence], now_ms: i64) -> Result<(), StoreError> {
    let map: HashMap<String, i64> = nodes
        .iter()
        .map(|p| (p.node.to_string(), p.last_sync_ms))
        .collect();
    // Invariant: a map of strings to integers always serialises.
    let json = serde_json::to_string(&map).expect("presence map serialises");
    store.set_meta(PRESENCE_META, &json)?;
    store.set_meta(PRESENCE_AT_META, &now_ms.to_string())
}

/// The relay's last answer: each key's last sync (UNIX ms); empty when
/// never received.
pub fn read(store: &NodeStore) -> Result<HashMap<NodeId, i64>, StoreError> {
    let Some(json) = store.meta(PRESENCE_META)? else {
        return Ok(HashMap::new());
    };
    let map: HashMap<String, i64> = serde_json::from_str(&json).unwrap_or_default();
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
        .collect())
}

/// Each comune's newest sync by any of its comune keys (ISTAT code → UNIX
/// ms), placing keys with the registry (governed) or the relay's allowlist.
/// Metro and admin keys are left out: their comune is the capoluogo's,
/// whose office they are not.
pub fn by_comune(replica: &mut Replica) -> Result<HashMap<String, i64>, ReplicaError> {
    let seen = read(&replica.store)?;
    if seen.is_empty() {
        return Ok(HashMap::new());
    }
    let comune_of: HashMap<NodeId, String> = if replica.governed() {
        replica
            .verdict()?
            .registry
            .members
            .values()
            .filter(|m| m.role == RegistryRole::Comune)
            .filter_map(|m| Some((m.node, m.comune.as_ref()?.as_str().to_owned())))
            .collect()
    } else {
        replica
            .store
            .read(|tx| tx.relay_members())?
            .into_iter()
            .filter(|(_, m)| m.role == Role::Comune)
            .map(|(n, m)| (n, m.comune.as_str().to_owned()))
            .collect()
    };
    let mut out: HashMap<String, i64> = HashMap::new();
    for (node, ms) in seen {
        if let Some(c) = comune_of.get(&node) {
            let e = out.entry(c.clone()).or_insert(ms);
            *e = (*e).max(ms);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_metro_and_admin_ask_once_a_minute_or_every_two_seconds_on_news() {
        let t0 = Instant::now();
        assert!(!due(Role::Comune, None, true, t0), "a comune never asks");
        assert!(due(Role::Metro, None, false, t0), "the first exchange asks");
        assert!(due(Role::Admin, None, false, t0));
        let soon = t0 + Duration::from_secs(3);
        assert!(!due(Role::Metro, Some(t0), false, soon));
        assert!(due(Role::Metro, Some(t0), true, soon), "news after 2 s");
        assert!(!due(
            Role::Metro,
            Some(t0),
            true,
            t0 + Duration::from_secs(1)
        ));
        assert!(due(Role::Metro, Some(t0), false, t0 + REFRESH_EVERY));
    }
}
