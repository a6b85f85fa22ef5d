//! The Accordo node: a comune's (or the metropolitan office's) replica.
//!
//! [`replica`] owns identity, settings and the documents; [`store`] is its
//! SQLite file; the domain (projects, plan, indicators, import, export,
//! report) is the `accordo-domain` crate, without I/O; [`snapshot`] keeps
//! documents as compacted snapshots plus the changes since, and [`views`] is
//! the query store kept current with the log; [`client`] syncs with
//! the relay, counted in [`metrics`]; [`ops`] are the operations on a node's data that both
//! [`cli`] (with [`demo`], the `accordo` command) and [`web`] (the web
//! application, with its accounts in [`users`]) call.

pub mod admin;
pub mod api_tokens;
pub mod audit;
pub mod cli;
pub mod client;
pub mod clock;
pub mod control;
pub mod demo;
pub mod doc_cache;
pub mod invitations;
pub mod metrics;
pub mod ops;
pub mod output_file;
pub mod output_format;
pub mod placement;
pub mod presence;
pub mod relay_epoch;
pub mod replica;
pub mod report_input;
pub mod report_verify;
pub mod revocation;
pub mod signal;
pub mod snapshot;
pub mod store;
pub mod users;
pub mod views;
pub mod web;
