//! Sans-IO core of Accordo.
//!
//! Everything the node and the relay must agree on lives here: identities and
//! codes ([`identity`], [`codes`]), document ids ([`doc`]), signed change
//! envelopes ([`envelope`]), write authority ([`authority`]) and the signed
//! member registry behind it ([`registry`]), the wire format
//! ([`wire`]), the causally closed change log and its ingest rules ([`log`]) and
//! the node's sync state machine ([`sync`]).
//!
//! This crate does no I/O: no sockets, no files, no clock and no randomness of
//! its own. Time and random bytes are passed in, so every rule can be tested in
//! microseconds and driven from a deterministic simulation.

pub mod authority;
pub mod bundle;
pub mod codes;
pub mod doc;
pub mod envelope;
pub mod identity;
pub mod log;
pub mod registry;
pub mod sync;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod unit;
pub mod wire;

/// Version of the wire protocol; carried in the ALPN and in the hello.
pub const PROTOCOL_VERSION: u16 = 1;

/// Every wire version this build speaks, newest first. A relay offers them
/// all and picks the newest one a node also offers (ALPN, server order), so
/// a network upgrades one machine at a time: a release keeps the previous
/// release's version here until every node has moved on.
pub const SUPPORTED_VERSIONS: &[u16] = &[PROTOCOL_VERSION];

/// Whether this build speaks wire `version`.
pub fn speaks(version: u16) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}
