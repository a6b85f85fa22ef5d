//! The public portal's rate limit: requests per client address in a fixed
//! window, with a bounded table of addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Requests one address may make per window: a person browsing makes a few
/// a minute, a harvester fetching the catalogue and its 12 files a few
/// dozen; a client above this is a scraper in a loop.
pub const MAX_REQUESTS_PER_WINDOW: u32 = 300;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once (each entry is a few dozen bytes).
pub const MAX_TRACKED_CLIENTS: usize = 65_536;

#[derive(Default)]
pub struct RequestLimiter {
    clients: HashMap<IpAddr, (u32, Instant)>,
}

impl RequestLimiter {
    /// Counts a request of `client`; whether it may be served.
    pub fn allow(&mut self, client: IpAddr, now: Instant) -> bool {
        if self.clients.len() >= MAX_TRACKED_CLIENTS && !self.clients.contains_key(&client) {
            self.clients
                .retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if self.clients.len() >= MAX_TRACKED_CLIENTS {
                // Still full of live windows: the oldest makes room (refusing
                // to track would let the newcomer through unlimited).
                if let Some(oldest) = self
                    .clients
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| *k)
                {
                    self.clients.remove(&oldest);
                }
            }
        }
        let entry = self.clients.entry(client).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        entry.0 <= MAX_REQUESTS_PER_WINDOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_the_limit_waits_for_the_next_window_others_do_not() {
        let mut l = RequestLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..MAX_REQUESTS_PER_WINDOW {
            assert!(l.allow(a, t0));
        }
        assert!(!l.allow(a, t0 + Duration::from_secs(1)));
        assert!(l.allow(b, t0 + Duration::from_secs(1)));
        assert!(l.allow(a, t0 + WINDOW));
    }
}
