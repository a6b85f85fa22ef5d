//! Exit codes of the commands that talk to the relay, so scripts can tell
//! an unreachable relay from a refusal.

use crate::client::SyncFailure;
use std::process::ExitCode;

/// 3: relay unreachable; 4: this node not admitted; 5: a change or an
/// invitation refused; 1 otherwise.
pub(super) fn failure_code(e: &SyncFailure) -> ExitCode {
    match e {
        SyncFailure::Unreachable { .. } => ExitCode::from(3),
        SyncFailure::NotAdmitted(_) => ExitCode::from(4),
        SyncFailure::Rejected(_) | SyncFailure::RedeemRefused(_) => ExitCode::from(5),
        _ => ExitCode::FAILURE,
    }
}
