//! Edits the command line hands to `accordo run` over its control socket
//! (`control`), and `run`'s side of them: the same `execute` functions as
//! the command line's own path, on `run`'s replica, whose documents stay
//! loaded between edits. What they print comes back line by line and is
//! printed by the command line, with the exit code it would have had.

use super::project::{self, ProjectCmd};
use crate::control::{self, Forwarded, Line, Printer, Reply};
use crate::replica::Replica;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// A command `run` carries out for the command line (one per process or
/// connection: the size of the largest variant does not matter).
#[allow(clippy::large_enum_variant)]
#[derive(Serialize, Deserialize, Debug)]
pub enum Served {
    /// `accordo project ...`, an edit (see `ProjectCmd::is_edit`).
    Project(ProjectCmd),
    /// `accordo indicator observe CODE --period P --value V [--flag F]`.
    Observe {
        code: String,
        period: String,
        value: String,
        flag: Option<String>,
    },
    /// `accordo indicator publish|unpublish CODE`.
    IndicatorPublication { code: String, publish: bool },
}

/// Hands `request` to the `run` serving `dir` and prints its answer;
/// `None` when no process served it (the caller does it itself).
pub fn forward(dir: &Path, request: Served) -> Option<ExitCode> {
    match control::forward(dir, &request) {
        Forwarded::NoServer => None,
        Forwarded::NotServed(why) => {
            tracing::debug!(reason = %why, "`accordo run` did not take the edit; doing it here");
            None
        }
        Forwarded::Ran { output, error } => {
            for line in output {
                match line {
                    Line::Out(l) => println!("{l}"),
                    Line::Err(l) => eprintln!("{l}"),
                }
            }
            Some(match error {
                None => ExitCode::SUCCESS,
                Some(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            })
        }
        Forwarded::Lost(why) => {
            eprintln!("error: {why}");
            Some(ExitCode::FAILURE)
        }
    }
}

/// `run`'s handler of the control socket's requests, on `replica` (the
/// one the web application edits through, documents kept loaded).
pub fn handler(replica: Arc<Mutex<Replica>>) -> impl Fn(Served) -> Reply + Send + Sync + 'static {
    move |request| {
        let Ok(mut r) = replica.lock() else {
            return Reply::NotServed(
                "this process's replica is unusable after an internal error".into(),
            );
        };
        let mut out = Printer::capture();
        let done = match request {
            Served::Project(cmd) if cmd.is_edit() => project::execute(&mut r, cmd, &mut out),
            Served::Project(_) => return Reply::NotServed("not an edit".into()),
            Served::Observe {
                code,
                period,
                value,
                flag,
            } => super::monitoring::observe(&mut r, &code, &period, &value, flag, &mut out),
            Served::IndicatorPublication { code, publish } => {
                super::monitoring::indicator_publication(&mut r, &code, publish, &mut out)
            }
        };
        Reply::Ran {
            output: out.into_lines(),
            // As `main` prints an error: the whole chain.
            error: done.err().map(|e| format!("{e:#}")),
        }
    }
}
