//! Operations on a node's data, shared by the command line (`cli/`) and the
//! web application (`web/`): each edit is implemented once, here, and both
//! front ends call it — they only parse their input and present the result.
//!
//! Inputs are the strings a person typed (a flag, a form field); every
//! refused value comes back as an [`OpError::Field`] naming the field, with
//! nothing written.

pub mod import;
pub mod indicator;
pub mod listing;
pub mod output;
pub mod project;
pub mod publication;
pub mod status;

use crate::replica::ReplicaError;
use accordo_domain::portfolio::PortfolioError;

/// Why an operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A value refused for a field: `field` is the field's key (the CLI flag
    /// without `--`, the form field's name).
    #[error("{message}")]
    Field {
        field: &'static str,
        message: String,
    },
    /// The request cannot be carried out as asked (nothing to set, no such
    /// line in the project...).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

impl OpError {
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        OpError::Field {
            field,
            message: message.into(),
        }
    }

    /// Whether the error is about something that does not exist (a CUP or
    /// id no project has): a web page answers 404.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            OpError::Replica(ReplicaError::Portfolio(
                PortfolioError::NoSuchCup(_) | PortfolioError::NoSuchId(_)
            ))
        )
    }

    /// Whether the person's input was refused (as opposed to a failure of
    /// the node): a web form shows it next to the field.
    pub fn is_input(&self) -> bool {
        match self {
            OpError::Field { .. } | OpError::Refused(_) => true,
            OpError::Replica(ReplicaError::Portfolio(e)) => !matches!(
                e,
                PortfolioError::Random(_) | PortfolioError::Codec(_) | PortfolioError::Automerge(_)
            ),
            OpError::Replica(_) => false,
        }
    }
}

impl From<PortfolioError> for OpError {
    fn from(e: PortfolioError) -> Self {
        OpError::Replica(ReplicaError::Portfolio(e))
    }
}

/// Who asked for an edit: the signed-in person's name, recorded in the
/// signed change's message so `audit` shows person as well as node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Author(pub Option<String>);

/// The change message's prefix naming the person who made it.
pub const AUTHOR_PREFIX: &str = "user:";

impl Author {
    /// The message to sign with the change, if a person is named.
    pub fn message(&self) -> Option<String> {
        self.0.as_ref().map(|n| format!("{AUTHOR_PREFIX}{n}"))
    }

    /// The person named by a change's message, if it names one.
    pub fn from_message(message: Option<&str>) -> Option<&str> {
        message.and_then(|m| m.strip_prefix(AUTHOR_PREFIX))
    }
}
