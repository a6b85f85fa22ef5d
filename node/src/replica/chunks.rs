//! A large edit (an import) as several signed changes in one store
//! transaction, made on two cores: a worker thread writes the document and
//! commits each chunk as an automerge change, while the calling thread,
//! which holds the store transaction, writes the projects' view rows and
//! then signs and logs each change as it arrives. Automerge (writing the
//! projects, building each change twice — to commit it and to read it
//! back) was ~60% of a first import of 20,000 rows, the view rows and the
//! signatures ~25%: the second part now runs beside the first.

use super::{commit_change, store_signed, Replica, ReplicaError};
use crate::store::NodeTx;
use crate::views;
use accordo_domain::portfolio::Project;
use accordo_protocol::doc::DocId;
use automerge::{AutoCommit, Change};
use std::sync::mpsc;

/// Committed changes waiting to be signed and logged: the worker runs at
/// most this far ahead (each is up to `MAX_CHANGE_BYTES`).
const CHANGES_IN_FLIGHT: usize = 2;

impl Replica {
    /// Applies `f` to `doc` until it returns `false`, each call's edits
    /// becoming one signed change, all committed in one store transaction:
    /// a large edit (an import) stays atomic while no change exceeds the
    /// size limit. `f` runs on a worker thread; it returns whether more
    /// calls are needed (each commit costs time in proportion to the
    /// document, so calls stop when `f` is done).
    ///
    /// `plan` runs first, in the same store transaction, before the
    /// document is loaded, so that it can decide from the query store
    /// whether anything is to be written (an import compares its rows with
    /// the stored projects there); `f` gets what it returned. `Ok(None)`
    /// when `plan` returned `None`: the document was not loaded, nothing
    /// written. Otherwise the plan and the number of changes made.
    ///
    /// `projects` lists what `f` writes, when that is all it writes, typed
    /// as the document will hold them: their view rows are then written
    /// from them, beside the worker, rather than read back out of the
    /// document afterwards (`None`: they are).
    pub fn edit_chunks<P: Sync>(
        &mut self,
        doc: &DocId,
        now_ms: i64,
        plan: impl FnOnce(&NodeTx<'_>) -> Result<Option<P>, ReplicaError>,
        mut f: impl FnMut(&mut AutoCommit, &P) -> Result<bool, ReplicaError> + Send,
        projects: impl FnOnce(&P) -> Option<Vec<&Project>>,
    ) -> Result<Option<usize>, ReplicaError> {
        self.refuse_while_rotating()?;
        self.write_doc_planned(doc, plan, |ctx, am, planned| {
            let rows_first =
                views::rows_first(ctx.tx, ctx.anchors, doc, ctx.invalid, ctx.before_seq)?;
            // After the check above, so that nothing can return between
            // here and the reset below.
            set_cache_kib(ctx.tx, LARGE_EDIT_CACHE_KIB)?;
            let done = std::thread::scope(|scope| {
                let (send, changes) = mpsc::sync_channel::<Change>(CHANGES_IN_FLIGHT);
                let planned = &planned;
                let worker = scope.spawn(move || -> Result<(), ReplicaError> {
                    loop {
                        let more = f(am, planned)?;
                        if let Some(change) = commit_change(
                            am,
                            automerge::transaction::CommitOptions::default()
                                .with_time(now_ms / 1000),
                        ) {
                            if send.send(change).is_err() {
                                // The caller stopped on an error of its own.
                                return Ok(());
                            }
                        }
                        if !more {
                            return Ok(());
                        }
                    }
                });
                let records = match (rows_first, projects(planned)) {
                    (Some(comune), Some(written)) => {
                        views::rows::rewrite_projects(ctx.tx, doc, &comune, &written)?;
                        Some(written.len())
                    }
                    _ => None,
                };
                let mut made = 0;
                for change in changes {
                    store_signed(&change, doc, ctx.key, ctx.nonce, ctx.tx)?;
                    made += 1;
                }
                match worker.join() {
                    Ok(done) => done?,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
                Ok::<_, ReplicaError>((made, records))
            });
            // What follows (a snapshot of the whole document is due after
            // a large edit) needs as much memory again as the document
            // holds: the plan and the page cache are given back first.
            let restored = set_cache_kib(ctx.tx, DEFAULT_CACHE_KIB);
            drop(planned);
            give_back_freed_memory();
            let (made, records) = done?;
            restored?;
            Ok((made, records))
        })
    }
}

/// SQLite's page cache while a large edit writes (KiB): the views of
/// thousands of projects are written in one transaction, and with the
/// default 2 MiB SQLite spilled and re-read their pages hundreds of
/// thousands of times (a first import of 20,000 rows made 337,000 `pwrite`
/// and 381,000 `pread` calls; with the rows written in key order, 125,000
/// and 89,000; with a 64 MiB cache too, 60,600 and 20,200). Pages are
/// allocated only as used, so this is also what the edit's peak memory
/// may grow by: 32 MiB holds the indexes 20,000 projects touch at random.
const LARGE_EDIT_CACHE_KIB: i64 = 32 << 10;

/// SQLite's default page cache (KiB), restored after a large edit (the
/// web application's process goes on).
const DEFAULT_CACHE_KIB: i64 = 2_000;

fn set_cache_kib(tx: &NodeTx<'_>, kib: i64) -> Result<(), ReplicaError> {
    tx.sql()
        .pragma_update(None, "cache_size", -kib)
        .map_err(|e| ReplicaError::Store(accordo_store::StoreError::from(e)))
}

/// Returns the heap's free pages to the system. glibc keeps what a
/// program frees for its next allocations, but a snapshot's buffers
/// (tens of MB each) are mapped afresh, so the plan just dropped would
/// otherwise stay resident beside them: ~100 MB at a national extract.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of glibc's own heap;
    // it takes no pointer and is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
