//! The domain: typed projects ([`model`]), indicators ([`indicator`]), the
//! plan's structure ([`plan`]), the monitoring report ([`report`]), and their
//! place in the automerge documents ([`codec`]); the ISTAT list of comuni
//! ([`comuni`]).

pub mod codec;
pub mod comuni;
pub mod export;
pub mod import;
pub mod indicator;
pub mod model;
pub mod plan;
pub mod report;
