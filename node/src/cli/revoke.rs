//! `accordo admin revoke`: revoking a key without erasing what the network
//! accepted from it.
//!
//! A revocation's cut keeps valid exactly the revoked key's changes the admin
//! holds when it signs. An admin that has not pulled the key's latest changes
//! would cut them off — history the relay had accepted and every office had
//! seen would vanish. So the command first brings the admin up to date with
//! every document (the admin role follows them all), signs the cut, pushes it
//! at once and pulls again to count what the key wrote concurrently. It
//! refuses when the relay cannot be reached; `--offline` revokes on local
//! knowledge and says so.

use super::exit_code::failure_code;
use super::runtime::runtime;
use crate::admin;
use crate::client::{self, SyncFailure};
use crate::replica::Replica;
use accordo_protocol::identity::NodeId;
use anyhow::Result;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Exit code when the relay is unreachable (as `sync`).
const EXIT_UNREACHABLE: u8 = 3;

/// How `admin revoke` learns what the key wrote before signing the cut.
pub struct RevokeArgs {
    pub node: NodeId,
    pub offline: bool,
    pub timeout: Duration,
    pub now_ms: i64,
}

pub fn run(replica: Replica, args: RevokeArgs) -> Result<ExitCode> {
    let shared = Arc::new(Mutex::new(replica));
    let rt = runtime()?;
    if !args.offline {
        if let Err(e) = rt.block_on(client::sync_once(Arc::clone(&shared), args.timeout)) {
            if let Some(code) = refuse_unsynced(&args.node, &e) {
                return Ok(code);
            }
            // A rejected local change does not stop the pull: the admin is
            // up to date with the relay; say so and go on.
            eprintln!("warning: {e}");
        }
    }
    let kept = {
        let mut r = lock(&shared);
        let (_, kept) = admin::revoke(&mut r, args.node, args.now_ms)?;
        kept
    };
    if args.offline {
        let last = lock(&shared).store.meta(client::LAST_CONTACT_META)?;
        println!(
            "revoked {} on local knowledge (--offline): the {kept} change(s) of it held here stay valid; \
             any change of it the network accepted that this node has not pulled (last contact with the relay: {}) \
             becomes invalid everywhere — the next `accordo sync` pushes the revocation and reports how many",
            args.node,
            last.as_deref().map_or_else(|| "never".to_owned(), describe_ms),
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(e) = rt.block_on(client::sync_once(Arc::clone(&shared), args.timeout)) {
        eprintln!(
            "error: revoked {} here, but the revocation is not delivered: {e}; run `accordo sync` to deliver it",
            args.node
        );
        return Ok(failure_code(&e));
    }
    let late = invalid_of(&mut lock(&shared), &args.node)?;
    println!(
        "revoked {}: the {kept} change(s) of it the network had accepted stay valid; \
         {late} change(s) it made concurrently (not yet at the relay when the admin pulled) are refused everywhere",
        args.node
    );
    Ok(ExitCode::SUCCESS)
}

/// The refusal to sign a cut without knowing what the key wrote, or `None`
/// when the failure did not prevent pulling.
fn refuse_unsynced(node: &NodeId, e: &SyncFailure) -> Option<ExitCode> {
    match e {
        SyncFailure::Rejected(_) => None,
        SyncFailure::Unreachable { .. } => {
            eprintln!(
                "error: cannot revoke {node} now: {e}. The revocation keeps valid only the changes of it this admin holds, \
                 so it must first pull what the network accepted from that key. Retry when the relay is reachable, or pass \
                 --offline to revoke on local knowledge (changes of it this admin has not pulled become invalid)"
            );
            Some(ExitCode::from(EXIT_UNREACHABLE))
        }
        other => {
            eprintln!("error: cannot revoke {node} now: the admin could not sync first: {other}");
            Some(failure_code(other))
        }
    }
}

/// How many held changes of `node` the registry now invalidates.
pub fn invalid_of(replica: &mut Replica, node: &NodeId) -> Result<usize> {
    let verdict = replica.verdict()?;
    let metas = replica.held_metas()?;
    Ok(metas
        .iter()
        .filter(|m| m.author == *node && verdict.invalid.contains_key(&m.hash))
        .count())
}

fn lock(shared: &client::SharedReplica) -> std::sync::MutexGuard<'_, Replica> {
    // Invariant: poisoned only if a store call panicked, which is a bug.
    shared.lock().expect("replica mutex poisoned")
}

/// A stored UNIX-milliseconds time as "YYYY-MM-DD HH:MM:SS UTC".
fn describe_ms(ms: &str) -> String {
    let Ok(ms) = ms.parse::<u64>() else {
        return ms.to_owned();
    };
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}
