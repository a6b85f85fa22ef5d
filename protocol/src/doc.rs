//! Document ids. One automerge document per comune (portfolio and indicator
//! data) and one shared plan document written by the metropolitan office.
//! The signed member registry is one more document, written by admins.

use crate::codes::Istat;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DocId {
    /// The Strategic Metropolitan Plan, written by metro keys.
    Plan,
    /// A comune's portfolio and indicator data, written by that comune's keys.
    Comune(Istat),
    /// The signed member registry (see `registry`), written by admin keys.
    Registry,
}

impl DocId {
    /// The canonical text form, also used inside signatures.
    pub fn canonical(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Plan => f.write_str("plan"),
            DocId::Comune(istat) => write!(f, "comune/{istat}"),
            DocId::Registry => f.write_str("registry"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid document id {0:?}: expected `plan`, `registry` or `comune/ISTAT`")]
pub struct DocIdError(pub String);

impl FromStr for DocId {
    type Err = DocIdError;
    fn from_str(s: &str) -> Result<Self, DocIdError> {
        match s {
            "plan" => return Ok(DocId::Plan),
            "registry" => return Ok(DocId::Registry),
            _ => {}
        }
        s.strip_prefix("comune/")
            .and_then(|code| code.parse().ok())
            .map(DocId::Comune)
            .ok_or_else(|| DocIdError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_ids_round_trip_through_text() {
        for s in ["plan", "registry", "comune/092009"] {
            assert_eq!(s.parse::<DocId>().unwrap().to_string(), s);
        }
        for bad in ["", "comune/", "comune/12", "Plan", "Registry"] {
            assert!(bad.parse::<DocId>().is_err(), "{bad}");
        }
    }
}
