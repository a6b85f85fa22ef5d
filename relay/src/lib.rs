//! The metropolitan relay: verifies, stores and forwards signed changes.
//!
//! [`store`] holds the durable log and the members; [`trust`] decides who may
//! write (local allowlist or signed registry); [`server`] runs the QUIC
//! service over it, within the connection limits of [`quota`], counted in
//! [`metrics`]; [`presence`] remembers when each key last synced; [`cli`] is
//! the `accordo-relay` command line.

pub mod backup;
pub mod cli;
pub mod metrics;
pub mod presence;
pub mod quota;
pub mod server;
pub mod store;
pub mod trust;
