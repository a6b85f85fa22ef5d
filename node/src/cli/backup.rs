//! `accordo backup` and `accordo restore`: a node directory as one archive
//! (see `accordo_store::backup`): `node.db` (settings, log, outbox, cursors,
//! views, web accounts) as an online snapshot, and the key files
//! (`node.key`, and a rotation's `node.key.next` or retired keys) only with
//! `--with-keys`.
//!
//! A restored node needs nothing special to be safe: every process that
//! opens a replica draws a fresh actor nonce (see `replica`), so it cannot
//! sign a second change for an (actor, seq) its former self already used;
//! its cursors are those of the backup, so its next sync pulls again what
//! the relay holds since — its own acknowledged changes included.

use crate::clock::now_ms;
use crate::replica::{DB_FILE, KEY_FILE};
use accordo_store::backup::Layout;
use anyhow::Result;
use std::path::Path;

/// What a node directory holds.
pub fn layout() -> Layout {
    Layout {
        kind: "node",
        db_file: DB_FILE,
        key_prefix: KEY_FILE,
        schema_version: crate::store::schema_version(),
    }
}

pub fn backup(dir: &Path, out: &Path, with_keys: bool) -> Result<()> {
    let report = accordo_store::backup::backup(dir, &layout(), out, with_keys, now_ms())?;
    println!("{}", report.summary(dir, out, with_keys, "the node's keys"));
    Ok(())
}

pub fn restore(dir: &Path, from: &Path) -> Result<()> {
    let report = accordo_store::backup::restore(from, dir, &layout())?;
    println!(
        "restored {} into {} (store checked: integrity ok, schema version {})",
        from.display(),
        dir.display(),
        report.manifest.schema_version
    );
    if report.manifest.with_keys {
        println!("run `accordo sync` or `accordo run`: the node reads again from the relay what changed since the backup, and pushes what its outbox held");
    } else {
        println!(
            "the backup holds no key: copy {KEY_FILE} from the original node into {} (mode 0600), then sync; if the key is lost, this store cannot sign: create a new node (`accordo init`) and have it admitted (`accordo-relay allow` or `accordo admin enroll`)",
            dir.display()
        );
    }
    Ok(())
}
