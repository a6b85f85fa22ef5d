//! The wire format: versioned request/response messages encoded with postcard.
//!
//! On a QUIC stream every message travels in a frame (a u32 big-endian length,
//! then the body; see `accordo-net`). A body is a postcard-encoded
//! [`WireRequest`]/[`WireResponse`], whose outer enum is the format version.
//! Each request is idempotent, so a client may resend it after a broken
//! connection: pushes are deduplicated by change hash and pulls are by cursor.

use crate::authority::Member;
use crate::doc::DocId;
use crate::envelope::{ChangeHash, SignedChange};
use crate::identity::NodeId;
use crate::log::RejectReason;
use serde::{Deserialize, Serialize};

/// Largest frame either side accepts. Holds one full push or pull batch
/// (each capped at [`MAX_BATCH_BYTES`]) with room for envelope overhead.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;
/// Budget of change bytes in one push or one pull response: large enough to
/// move thousands of small edits per round trip, small enough to keep a frame
/// well under [`MAX_FRAME_BYTES`] and memory per stream bounded.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most envelopes in one push (bounds verification work per request).
pub const MAX_PUSH_CHANGES: usize = 10_000;
/// Most cursors in one request (a metro node uses one `All` cursor).
pub const MAX_CURSORS: usize = 1_024;
/// Longest a relay holds a long-poll open; below the 30 s idle timeout so
/// keep-alives, not the poll, keep the connection up.
pub const MAX_WAIT_MS: u32 = 20_000;
/// Most keys in an allowlist answer: every comune of Italy (7,896) with a
/// few offices each.
pub const MAX_MEMBERS: usize = 50_000;
/// Longest free-text field (network name, software string, error message).
pub const MAX_TEXT_BYTES: usize = 256;

/// The first request on every connection: the application-level admission check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u16,
    pub network: String,
    pub software: String,
}

/// The relay's answer to an admitted hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloAck {
    pub relay: NodeId,
    /// Who the relay believes this key is.
    pub member: Member,
    pub head_seq: u64,
}

/// Which part of the relay's log a cursor walks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Every document (the metropolitan office).
    All,
    /// One document.
    Doc(DocId),
}

/// "Everything in `scope` after relay sequence number `after_seq`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub scope: Scope,
    pub after_seq: u64,
}

/// Push the outbox and pull what is new, in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Local changes in causal order (a change after its dependencies).
    pub push: Vec<SignedChange>,
    pub cursors: Vec<Cursor>,
    /// Change-byte budget of the response; the relay caps it at [`MAX_BATCH_BYTES`].
    pub max_response_bytes: u32,
    /// If nothing is new and nothing was pushed, wait up to this long for news.
    pub wait_ms: u32,
}

/// A stored change and its position in the relay's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub seq: u64,
    pub change: SignedChange,
}

/// How far a cursor got: everything in scope up to `reached` is in this response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorProgress {
    pub scope: Scope,
    pub reached: u64,
}

/// A pushed change the relay refused, by its position in the push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub index: u32,
    pub hash: Option<ChangeHash>,
    pub reason: RejectReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// Hashes of pushed changes now durably stored (new or already held).
    pub acks: Vec<ChangeHash>,
    pub rejects: Vec<Rejected>,
    /// The relay's last sequence number when this response was built.
    pub head_seq: u64,
    pub progress: Vec<CursorProgress>,
    /// New entries in sequence order, excluding changes pushed in this request.
    pub entries: Vec<LogEntry>,
}

/// Why the relay refused a request as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    NotAdmitted,
    VersionMismatch,
    NetworkMismatch,
    HelloRequired,
    BadRequest,
    Busy,
    Internal,
    /// A registry statement (an invitation's redemption) was refused.
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Hello(Hello),
    Sync(SyncRequest),
    /// Redeems an invitation: a key not yet enrolled sends its signed
    /// redeem statement, without a hello.
    Redeem(RedeemRequest),
    /// The relay's allowlist (a network without an admin): who may write
    /// what, as the relay decides it. Nodes of such a network place the
    /// authors of pulled changes with it.
    Members,
    /// When each key last completed a sync with this relay, so the metro
    /// office sees which comune has not synced for days. Added after the
    /// first release: an older relay answers it with `BadRequest`.
    Presence,
    /// The identity of the relay's log ([`LogEpoch`]). Added after the
    /// first release: a relay that predates it answers `BadRequest`.
    LogEpoch,
}

/// When one key last completed a sync with the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePresence {
    pub node: NodeId,
    /// UNIX milliseconds, by the relay's clock.
    pub last_sync_ms: i64,
}

/// The relay's record of its nodes' syncs, in answer to [`Request::Presence`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceList {
    pub nodes: Vec<NodePresence>,
}

/// Bytes of a log epoch: random, so two logs never share one.
pub const LOG_EPOCH_BYTES: usize = 16;

/// The identity of a relay's log, drawn when the log is created and drawn
/// again when it is restored from a backup: a log with another epoch may
/// lack changes the relay acknowledged under the old one, and its positions
/// may have been reused. A node that meets a new epoch pushes what it holds
/// and reads again from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogEpoch {
    pub epoch: [u8; LOG_EPOCH_BYTES],
}

/// One key of the relay's allowlist. A removed key writes nothing more, but
/// what the relay stored from it before its removal stays its.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedMember {
    pub member: Member,
    pub removed: bool,
}

/// The relay's allowlist, in answer to [`Request::Members`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberList {
    pub members: Vec<ListedMember>,
}

/// An invitation's redemption, sent by the invited key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemRequest {
    pub network: String,
    /// A registry change carrying a `Redeem` statement, signed by the
    /// connecting key.
    pub change: SignedChange,
}

/// The relay stored the redemption: the key is now enrolled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemAck {
    pub hash: ChangeHash,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    HelloAck(HelloAck),
    Sync(SyncResponse),
    Error(ErrorResponse),
    Redeemed(RedeemAck),
    Members(MemberList),
    Presence(PresenceList),
    LogEpoch(LogEpoch),
}

/// The versioned outer envelope of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireRequest {
    V1(Request),
}

/// The versioned outer envelope of a response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireResponse {
    V1(Response),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte frame limit")]
    TooLarge(usize),
    #[error("message does not decode: {0}")]
    Decode(String),
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    #[error("request out of bounds: {0}")]
    Bounds(String),
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| WireError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Trailing(rest.len()));
    }
    Ok(value)
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Invariant: postcard only fails to serialise on a full fixed buffer or
    // unsupported serde types, and these messages use neither.
    postcard::to_stdvec(value).expect("wire messages always serialise")
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        encode(&WireRequest::V1(self.clone()))
    }

    /// Decodes and checks the request's bounds. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Request, WireError> {
        let WireRequest::V1(req) = decode(bytes)?;
        req.check_bounds()?;
        Ok(req)
    }

    fn check_bounds(&self) -> Result<(), WireError> {
        let bounds = |msg: String| Err(WireError::Bounds(msg));
        match self {
            Request::Hello(h) if h.network.len() > MAX_TEXT_BYTES => {
                bounds(format!("network name of {} bytes", h.network.len()))
            }
            Request::Redeem(r) if r.network.len() > MAX_TEXT_BYTES => {
                bounds(format!("network name of {} bytes", r.network.len()))
            }
            Request::Hello(h) if h.software.len() > MAX_TEXT_BYTES => {
                bounds(format!("software string of {} bytes", h.software.len()))
            }
            Request::Sync(s) if s.push.len() > MAX_PUSH_CHANGES => bounds(format!(
                "{} pushed changes (max {MAX_PUSH_CHANGES})",
                s.push.len()
            )),
            Request::Sync(s) if s.cursors.len() > MAX_CURSORS => {
                bounds(format!("{} cursors (max {MAX_CURSORS})", s.cursors.len()))
            }
            _ => Ok(()),
        }
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        encode(&WireResponse::V1(self.clone()))
    }

    /// Decodes a response. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Response, WireError> {
        let WireResponse::V1(resp) = decode(bytes)?;
        let listed = match &resp {
            Response::Members(list) => Some(list.members.len()),
            Response::Presence(list) => Some(list.nodes.len()),
            _ => None,
        };
        if let Some(n) = listed.filter(|n| *n > MAX_MEMBERS) {
            return Err(WireError::Bounds(format!(
                "{n} members (max {MAX_MEMBERS})"
            )));
        }
        Ok(resp)
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        let mut message = message.into();
        if message.len() > MAX_TEXT_BYTES {
            let mut cut = MAX_TEXT_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        Response::Error(ErrorResponse { code, message })
    }
}

#[cfg(test)]
mod tests;
