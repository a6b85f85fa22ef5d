//! The monitoring report's input, read from the query store (caught up
//! with the log first): the same typed data [`accordo_domain::report::input`]
//! takes from materialised documents, without re-reading any document.

use crate::replica::{Replica, ReplicaError};
use accordo_domain::model::Date;
use accordo_domain::report::Input;

/// Gathers the report's input from every document `replica` holds.
pub fn gather(
    replica: &mut Replica,
    as_of: Date,
    period: Option<String>,
) -> Result<Input, ReplicaError> {
    replica.query(|tx| crate::views::report_input(tx, as_of, period))
}
