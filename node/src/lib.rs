//! The Accordo node: a comune's (or the metropolitan office's) replica.
//!
//! [`replica`] owns identity, settings and the documents; [`store`] is its
//! SQLite file; [`portfolio`] and [`money`] are the domain; [`client`] syncs
//! with the relay; [`cli`] and [`demo`] are the `accordo` command.

pub mod admin;
pub mod audit;
pub mod cli;
pub mod client;
pub mod demo;
pub mod domain;
pub mod money;
pub mod placement;
pub mod portfolio;
pub mod replica;
pub mod signal;
pub mod store;
