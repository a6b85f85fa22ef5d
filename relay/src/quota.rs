//! Connection quotas: how many connections the relay holds in all, per
//! source address, per key, and for keys it does not know.
//!
//! Any ed25519 key passes the TLS handshake (admission is decided after it),
//! so without these one host, or one key, could take every slot. A slot is a
//! guard: it is counted while held and given back when dropped, so a
//! connection task that ends for any reason (closed, timed out, aborted)
//! frees its slots.

use accordo_protocol::identity::NodeId;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The limits a quota check is made against (from `ServeLimits`).
#[derive(Debug, Clone, Copy)]
pub struct QuotaLimits {
    pub max_connections: usize,
    pub max_per_addr: usize,
    pub max_per_key: usize,
    pub max_unknown: usize,
}

/// Why a connection was refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuotaRefusal {
    #[error("connection limit reached ({0})")]
    Total(usize),
    #[error("connection limit per source address reached ({0})")]
    Addr(usize),
    #[error("connection limit per key reached ({0})")]
    Key(usize),
    #[error("limit on connections by unknown keys reached ({0})")]
    Unknown(usize),
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_addr: HashMap<IpAddr, usize>,
    by_key: HashMap<NodeId, usize>,
    unknown: usize,
}

/// The counts, shared by the accept loop and the connection tasks.
#[derive(Debug, Default)]
pub struct Quotas {
    counts: Mutex<Counts>,
}

impl Quotas {
    /// The counts never panic while locked (plain integer and map updates), so a
    /// poisoned lock still holds consistent counts.
    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections held at once.
    pub fn total(&self) -> usize {
        self.counts().total
    }

    /// Connections held by keys the relay did not know when they connected.
    pub fn unknown(&self) -> usize {
        self.counts().unknown
    }

    /// A slot for a connection from `addr`, before its handshake.
    pub fn addr_slot(
        self: &Arc<Self>,
        addr: IpAddr,
        limits: &QuotaLimits,
    ) -> Result<AddrSlot, QuotaRefusal> {
        let mut c = self.counts();
        if c.total >= limits.max_connections {
            return Err(QuotaRefusal::Total(limits.max_connections));
        }
        let held = c.by_addr.entry(addr).or_insert(0);
        if *held >= limits.max_per_addr {
            return Err(QuotaRefusal::Addr(limits.max_per_addr));
        }
        *held += 1;
        c.total += 1;
        Ok(AddrSlot {
            quotas: Arc::clone(self),
            addr,
        })
    }

    /// A slot for a connection by `key`, after its handshake; `known` says
    /// whether the key is a member, allowlisted or a pinned admin. An unknown
    /// key also takes one of the few unknown slots.
    pub fn key_slot(
        self: &Arc<Self>,
        key: NodeId,
        known: bool,
        limits: &QuotaLimits,
    ) -> Result<KeySlot, QuotaRefusal> {
        let mut c = self.counts();
        if !known && c.unknown >= limits.max_unknown {
            return Err(QuotaRefusal::Unknown(limits.max_unknown));
        }
        let held = c.by_key.entry(key).or_insert(0);
        if *held >= limits.max_per_key {
            return Err(QuotaRefusal::Key(limits.max_per_key));
        }
        *held += 1;
        if !known {
            c.unknown += 1;
        }
        Ok(KeySlot {
            quotas: Arc::clone(self),
            key,
            known,
        })
    }
}

/// Decrements a count, removing a map entry that reaches zero (so the maps
/// hold only addresses and keys with live connections).
fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, k: &K) {
    if let Some(n) = map.get_mut(k) {
        *n -= 1;
        if *n == 0 {
            map.remove(k);
        }
    } else {
        debug_assert!(false, "a slot was released twice");
    }
}

/// A connection's place in the total and per-address counts.
#[derive(Debug)]
pub struct AddrSlot {
    quotas: Arc<Quotas>,
    addr: IpAddr,
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        let mut c = self.quotas.counts();
        c.total -= 1;
        release(&mut c.by_addr, &self.addr);
    }
}

/// A connection's place in the per-key count (and the unknown-key count).
#[derive(Debug)]
pub struct KeySlot {
    quotas: Arc<Quotas>,
    key: NodeId,
    known: bool,
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut c = self.quotas.counts();
        if !self.known {
            c.unknown -= 1;
        }
        release(&mut c.by_key, &self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: QuotaLimits = QuotaLimits {
        max_connections: 4,
        max_per_addr: 2,
        max_per_key: 2,
        max_unknown: 1,
    };

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn per_address_and_total_limits_hold_and_slots_come_back() {
        let q = Arc::new(Quotas::default());
        let a1 = q.addr_slot(ip(1), &LIMITS).unwrap();
        let _a2 = q.addr_slot(ip(1), &LIMITS).unwrap();
        assert_eq!(
            q.addr_slot(ip(1), &LIMITS).unwrap_err(),
            QuotaRefusal::Addr(2)
        );
        let _b1 = q.addr_slot(ip(2), &LIMITS).unwrap();
        let _b2 = q.addr_slot(ip(2), &LIMITS).unwrap();
        assert_eq!(
            q.addr_slot(ip(3), &LIMITS).unwrap_err(),
            QuotaRefusal::Total(4)
        );
        drop(a1);
        assert_eq!(q.total(), 3);
        assert!(
            q.addr_slot(ip(1), &LIMITS).is_ok(),
            "a freed slot is reusable"
        );
    }

    #[test]
    fn per_key_and_unknown_limits_hold_and_maps_empty_out() {
        let q = Arc::new(Quotas::default());
        let (k, u1, u2) = (NodeId([1; 32]), NodeId([2; 32]), NodeId([3; 32]));
        let k1 = q.key_slot(k, true, &LIMITS).unwrap();
        let k2 = q.key_slot(k, true, &LIMITS).unwrap();
        assert_eq!(
            q.key_slot(k, true, &LIMITS).unwrap_err(),
            QuotaRefusal::Key(2)
        );
        let s = q.key_slot(u1, false, &LIMITS).unwrap();
        assert_eq!(q.unknown(), 1);
        assert_eq!(
            q.key_slot(u2, false, &LIMITS).unwrap_err(),
            QuotaRefusal::Unknown(1),
            "the unknown budget is separate and small"
        );
        assert!(
            q.key_slot(u2, true, &LIMITS).is_ok(),
            "known keys do not use it"
        );
        drop((k1, k2, s));
        assert_eq!(q.unknown(), 0);
        assert!(
            q.counts().by_key.is_empty(),
            "no entry outlives its connections"
        );
    }
}
