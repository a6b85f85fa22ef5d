//! The monitoring report's input gathered from a replica: every document it
//! holds, materialised, handed to the pure [`accordo_domain::report::input`].

use crate::replica::{Replica, ReplicaError};
use accordo_domain::model::Date;
use accordo_domain::report::{self, Input};

/// Gathers the report's input from every document `replica` holds.
pub fn gather(
    replica: &mut Replica,
    as_of: Date,
    period: Option<String>,
) -> Result<Input, ReplicaError> {
    let docs = replica.materialise_all()?;
    Ok(report::input(as_of, period, &docs))
}
