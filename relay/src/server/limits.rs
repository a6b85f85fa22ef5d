//! The limits that protect the relay from slow or hostile peers, each a
//! named constant with the reason for its number.

use crate::quota::QuotaLimits;
use std::time::Duration;

/// Limits that protect the relay from slow or hostile peers.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// A request must arrive whole within this time after its stream opens
    /// (slowloris: a peer that opens streams and sends nothing).
    pub request_read_timeout: Duration,
    /// A response must be written within this time, or its stream is reset
    /// and the connection closed (a peer that never reads).
    pub response_write_timeout: Duration,
    /// A connection must be admitted by a hello within this time.
    pub hello_deadline: Duration,
    /// A connection by a key the relay does not know is closed this long
    /// after its handshake, whatever it does.
    pub unknown_key_deadline: Duration,
    /// Connections held at once; more are refused at the handshake.
    pub max_connections: usize,
    /// Connections held at once from one source IP address.
    pub max_connections_per_addr: usize,
    /// Connections held at once by one key.
    pub max_connections_per_key: usize,
    /// Connections held at once by keys the relay does not know.
    pub max_unknown_connections: usize,
}

/// 10 s covers a full 8 MiB frame on a slow municipal link (≈ 7 Mbit/s).
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Twice what a full 8 MiB response takes on a ≈ 7 Mbit/s link; a peer that
/// reads gives flow-control credit every round trip, so only one that does
/// not read (or is gone) waits this long.
pub const RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// A node says hello right after the handshake; 10 s is generous.
pub const HELLO_DEADLINE: Duration = Duration::from_secs(10);
/// An unknown key may only say hello (to be refused) or redeem an
/// invitation: one round trip and one store commit, well within 5 s.
pub const UNKNOWN_KEY_DEADLINE: Duration = Duration::from_secs(5);
/// Torino's 312 comuni with several offices each fit with room to spare.
pub const MAX_CONNECTIONS: usize = 4_096;
/// Offices of several comuni may share one address (a regional network's
/// NAT); 256 is a sixteenth of `MAX_CONNECTIONS`, so one host cannot fill it.
pub const MAX_CONNECTIONS_PER_ADDR: usize = 256;
/// A node holds one connection; a few more cover reconnects while an old
/// connection waits out its idle timeout.
pub const MAX_CONNECTIONS_PER_KEY: usize = 8;
/// Unknown keys are enrolling offices (rare: once per office) or attackers;
/// 64 at once is a whole metropolitan city's enrollment day.
pub const MAX_UNKNOWN_CONNECTIONS: usize = 64;
/// A request before the hello is a hello or a redemption (under 4 KiB); a
/// frame declaring more is refused before it is read.
pub const MAX_UNADMITTED_FRAME_BYTES: usize = 64 * 1024;

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            request_read_timeout: REQUEST_READ_TIMEOUT,
            response_write_timeout: RESPONSE_WRITE_TIMEOUT,
            hello_deadline: HELLO_DEADLINE,
            unknown_key_deadline: UNKNOWN_KEY_DEADLINE,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_addr: MAX_CONNECTIONS_PER_ADDR,
            max_connections_per_key: MAX_CONNECTIONS_PER_KEY,
            max_unknown_connections: MAX_UNKNOWN_CONNECTIONS,
        }
    }
}

impl ServeLimits {
    pub(crate) fn quota(&self) -> QuotaLimits {
        QuotaLimits {
            max_connections: self.max_connections,
            max_per_addr: self.max_connections_per_addr,
            max_per_key: self.max_connections_per_key,
            max_unknown: self.max_unknown_connections,
        }
    }
}
