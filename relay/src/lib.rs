//! The metropolitan relay: verifies, stores and forwards signed changes.
//!
//! [`store`] holds the durable log and the members; [`server`] runs the QUIC
//! service over it; [`cli`] is the `accordo-relay` command line.

pub mod cli;
pub mod server;
pub mod store;
