//! The domain of Accordo, without I/O: typed projects ([`model`]) and their
//! place in a comune's document ([`portfolio`]), indicators ([`indicator`]),
//! the plan's structure ([`plan`]), the monitoring report ([`report`]), and
//! their place in the automerge documents ([`codec`]); the ISTAT list of
//! comuni ([`comuni`]); euro amounts ([`money`]); files as they come
//! ([`import`], over [`table`]) and as Accordo writes them ([`open_data`],
//! [`export`]); the sustainability report ([`sustainability`]); what the public portal shows ([`portal`]), its open-data
//! tables ([`open_tables`]) and their DCAT-AP_IT catalogue ([`dcat`]).
//!
//! Documents, typed values and bytes go in, typed values and bytes come out:
//! no tokio, quinn, rusqlite or filesystem access (the node reads and writes
//! files, and owns the replica the documents come from).

pub mod codec;
pub mod comuni;
pub mod dcat;
pub mod export;
pub mod import;
pub mod indicator;
pub mod model;
pub mod money;
pub mod open_data;
pub mod open_tables;
pub mod plan;
pub mod portal;
pub mod portfolio;
pub mod publication;
pub mod report;
pub mod sustainability;
pub mod table;
