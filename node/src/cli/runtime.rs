//! The tokio runtime the networked commands (`sync`, `run`, rotation,
//! redemption, revocation) run on.

use anyhow::Result;

/// Worker threads: one connection's puller and pusher, and the store work
/// offloaded beside them; a command needs no more.
const WORKER_THREADS: usize = 2;

/// A multi-thread runtime with I/O and timers.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()?)
}
