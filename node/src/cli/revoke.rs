//! `accordo admin revoke` and `admin retire-anchor`: [`crate::revocation`]
//! on the command line, with its messages and exit codes.

use super::exit_code::failure_code;
use super::runtime::runtime;
use crate::replica::Replica;
use crate::revocation::{self, Refusal, Request, Retirement};
use anyhow::Result;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// Exit code when the relay is unreachable (as `sync`).
const EXIT_UNREACHABLE: u8 = 3;

pub fn run(replica: Replica, req: Request) -> Result<ExitCode> {
    run_retirement(replica, req, Retirement::Revoke)
}

/// `admin revoke` or `admin retire-anchor`: the same procedure and output.
pub fn run_retirement(replica: Replica, req: Request, what: Retirement) -> Result<ExitCode> {
    let shared = Arc::new(Mutex::new(replica));
    let node = req.node;
    let offline = req.offline;
    let verb = match what {
        Retirement::Revoke => "revoked",
        Retirement::RetireAnchor => "retired anchor",
    };
    let done = runtime()?.block_on(revocation::retire(shared, req, what));
    let r = match done {
        Ok(r) => r,
        Err(Refusal::Admin(e)) => return Err(e.into()),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(match &e {
                Refusal::Unreachable { .. } => ExitCode::from(EXIT_UNREACHABLE),
                other => other.sync_failure().map_or(ExitCode::FAILURE, failure_code),
            });
        }
    };
    if let Some(w) = &r.warning {
        eprintln!("warning: {w}");
    }
    if offline {
        println!(
            "{verb} {node} on local knowledge (--offline): the {} change(s) of it held here stay valid; \
             any change of it the network accepted that this node has not pulled (last contact with the relay: {}) \
             becomes invalid everywhere — the next `accordo sync` pushes the revocation and reports how many",
            r.kept,
            r.last_contact
                .as_deref()
                .map_or_else(
                    || "never".to_owned(),
                    |ms| ms.parse().map_or_else(|_| ms.to_owned(), crate::clock::iso_ms)
                ),
        );
    } else {
        println!(
            "{verb} {node}: the {} change(s) of it the network had accepted stay valid; \
             {} change(s) it made concurrently (not yet at the relay when the admin pulled) are refused everywhere",
            r.kept,
            r.refused.unwrap_or(0)
        );
    }
    Ok(ExitCode::SUCCESS)
}
