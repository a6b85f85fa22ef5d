//! Indicator data a node records: observations of the indicators of the
//! plan's catalog for its territory (a comune's document, or the plan for
//! the metropolitan office). `accordo indicator observe` and the web form
//! both call [`observe`]; the metropolitan office publishes an indicator of
//! the catalog on the public portal with [`publish`].

use super::{Author, OpError};
use crate::clock::now_ms;
use crate::replica::{Replica, ReplicaError};
use accordo_domain::indicator::{self, Observation};
use accordo_protocol::doc::DocId;
use accordo_protocol::identity::Role;

/// The document holding this node's indicator data.
pub fn data_doc(replica: &Replica) -> DocId {
    match replica.settings.role {
        Role::Metro => DocId::Plan,
        _ => replica.own_doc(),
    }
}

/// Records an observation of `code` for `period`; returns the period and
/// value as stored.
pub fn observe(
    replica: &mut Replica,
    code: &str,
    period: &str,
    value: &str,
    flag: Option<String>,
    author: &Author,
) -> Result<(String, f64), OpError> {
    let code = code.trim();
    if code.is_empty() {
        return Err(OpError::field(
            "code",
            "invalid indicator code: must not be empty",
        ));
    }
    let period = indicator::parse_period(period)
        .map_err(|e| OpError::field("period", format!("invalid {e}")))?;
    let value = indicator::parse_value("--value", value)
        .map_err(|e| OpError::field("value", format!("invalid {e}")))?;
    let o = Observation {
        value,
        flag: flag.map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()),
    };
    let doc = data_doc(replica);
    replica.edit_as(&doc, now_ms(), author.message(), |d| {
        indicator::observe(d, code, &period, &o).map_err(|e| ReplicaError::Edit(e.to_string()))
    })?;
    Ok((period, value))
}

/// Publishes indicator `code` of the plan's catalog on the public portal
/// and in open data (or takes it back to a draft). Only the metropolitan
/// office writes the catalog. Returns whether anything changed.
pub fn publish(
    replica: &mut Replica,
    code: &str,
    published: bool,
    author: &Author,
) -> Result<bool, OpError> {
    if replica.settings.role != Role::Metro {
        return Err(OpError::Refused(format!(
            "the indicator catalog is written by the metropolitan office; this node is {}",
            replica.settings.role
        )));
    }
    let code = code.trim().to_owned();
    let (found, head) = replica.edit_as(&DocId::Plan, now_ms(), author.message(), |d| {
        let Some(mut def) = indicator::definitions(d)
            .into_iter()
            .find(|def| def.code == code)
        else {
            return Ok(false);
        };
        def.published = published;
        indicator::save_definition(d, &def).map_err(|e| ReplicaError::Edit(e.to_string()))?;
        Ok(true)
    })?;
    if !found {
        return Err(OpError::field(
            "code",
            format!("no indicator {code:?} in the plan's catalog"),
        ));
    }
    Ok(head.is_some())
}
