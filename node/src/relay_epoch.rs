//! The identity of the relay's log (`LogEpoch`), checked at every
//! connection right after the hello.
//!
//! A relay restored from a backup draws a new epoch: its log may lack
//! changes it acknowledged after the backup (which nodes then dropped from
//! their outboxes), and the positions it hands out again are not the ones
//! the nodes' cursors counted. A node that meets an epoch other than the one
//! it recorded therefore, before anything else on that connection:
//!
//! 1. pushes every change its log holds, in log order (causal order, so no
//!    dependency is missing), in batches: the relay stores what it lacks and
//!    acknowledges the rest as duplicates — its own changes, and the other
//!    nodes' changes it pulled, so the relay is refilled even from nodes
//!    that never come back;
//! 2. then, in one transaction, resets its cursors (it reads the log again
//!    from the start; what it holds is deduplicated) and records the epoch.
//!
//! A connection lost in the middle leaves the old epoch recorded, so the
//! next connection does it all again (every step is idempotent). A relay
//! from before epochs answers `BadRequest`, and nothing is done.

use crate::client::{with_replica, Link, SharedReplica, SyncFailure};
use accordo_protocol::log::LogStore;
use accordo_protocol::wire::{
    ErrorCode, Request, Response, Scope, SyncRequest, MAX_BATCH_BYTES, MAX_PUSH_CHANGES,
};
use accordo_store::StoreError;
use std::time::Duration;
use tracing::{debug, info, warn};

/// Node setting: the epoch of the relay's log this node last synced with (hex).
pub const RELAY_EPOCH_META: &str = "relay_log_epoch";

/// Asks the relay for its log's epoch and, when it changed, refills the
/// relay and resets the cursors (see the module comment). Returns whether
/// it did.
pub async fn check(link: &Link, replica: &SharedReplica) -> Result<bool, SyncFailure> {
    let epoch = match link.call(&Request::LogEpoch, Duration::ZERO).await?.0 {
        Response::LogEpoch(e) => hex::encode(e.epoch),
        Response::Error(e) if e.code == ErrorCode::BadRequest => {
            debug!("the relay predates log epochs");
            return Ok(false);
        }
        Response::Error(e) if e.code == ErrorCode::NotAdmitted => {
            return Err(SyncFailure::NotAdmitted(e.message))
        }
        other => {
            return Err(SyncFailure::RelayFault(format!(
                "unexpected answer to the log epoch request: {other:?}"
            )))
        }
    };
    let held = with_replica(replica, |r| Ok(r.store.meta(RELAY_EPOCH_META)?)).await?;
    match held {
        Some(h) if h == epoch => return Ok(false),
        None => {
            // First contact (or a node from before epochs): nothing to compare.
            with_replica(replica, move |r| {
                Ok(r.store.set_meta(RELAY_EPOCH_META, &epoch)?)
            })
            .await?;
            return Ok(false);
        }
        Some(old) => {
            warn!(%old, new = %epoch, "the relay's log has a new epoch (restored from a backup?): pushing everything held, then reading it again")
        }
    }
    let (pushed, acked) = refill(link, replica).await?;
    with_replica(replica, move |r| {
        r.store.write(|tx| {
            tx.reset_cursors()?;
            tx.set_meta(RELAY_EPOCH_META, &epoch)?;
            Ok::<_, StoreError>(())
        })?;
        Ok(())
    })
    .await?;
    info!(pushed, acked, "relay refilled; cursors reset");
    Ok(true)
}

/// Pushes the whole log in log order, a batch per request. Returns the
/// changes pushed and acknowledged; refusals are logged (they cannot be
/// ours to fix: the relay judged them, and our own stay in the outbox).
async fn refill(link: &Link, replica: &SharedReplica) -> Result<(usize, usize), SyncFailure> {
    let mut after = 0u64;
    let (mut pushed, mut acked) = (0usize, 0usize);
    loop {
        let mut batch = with_replica(replica, move |r| {
            Ok(r.store.read(|tx| {
                tx.log()
                    // Positions are SQLite rowids: i64::MAX bounds them all.
                    .entries(&Scope::All, after, i64::MAX as u64, MAX_BATCH_BYTES)
            })?)
        })
        .await?;
        batch.truncate(MAX_PUSH_CHANGES);
        let Some(last) = batch.last() else {
            return Ok((pushed, acked));
        };
        after = last.seq;
        pushed += batch.len();
        let req = Request::Sync(SyncRequest {
            push: batch.into_iter().map(|e| e.change).collect(),
            cursors: Vec::new(),
            max_response_bytes: 0,
            wait_ms: 0,
        });
        match link.call(&req, Duration::ZERO).await?.0 {
            Response::Sync(resp) => {
                acked += resp.acks.len();
                for r in &resp.rejects {
                    warn!(index = r.index, reason = %r.reason, "refill: change refused by the relay");
                }
            }
            Response::Error(e) if e.code == ErrorCode::NotAdmitted => {
                return Err(SyncFailure::NotAdmitted(e.message))
            }
            other => {
                return Err(SyncFailure::RelayFault(format!(
                    "unexpected answer to a refill: {other:?}"
                )))
            }
        }
    }
}
