//! `accordo-relay backup` and `restore`: the relay directory as one archive
//! (see `accordo_store::backup`): `relay.db` as an online snapshot, and
//! `relay.key` only with `--with-keys`.

use crate::cli::{now_ms, DB_FILE, KEY_FILE};
use accordo_store::backup::Layout;
use anyhow::Result;
use std::path::Path;

/// What a relay directory holds.
pub fn layout() -> Layout {
    Layout {
        kind: "relay",
        db_file: DB_FILE,
        key_prefix: KEY_FILE,
        schema_version: crate::store::schema_version(),
    }
}

pub fn backup(dir: &Path, out: &Path, with_keys: bool) -> Result<()> {
    let report = accordo_store::backup::backup(dir, &layout(), out, with_keys, now_ms())?;
    println!("{}", report.summary(dir, out, with_keys, "the relay key"));
    Ok(())
}

pub fn restore(dir: &Path, from: &Path) -> Result<()> {
    let report = accordo_store::backup::restore(from, dir, &layout())?;
    // The restored log may lack changes acknowledged after the backup: a new
    // epoch tells every node to push what it holds and read again.
    crate::store::open(&dir.join(DB_FILE))?.new_log_epoch()?;
    println!(
        "restored {} into {} (store checked: integrity ok, schema version {})",
        from.display(),
        dir.display(),
        report.manifest.schema_version
    );
    if !report.manifest.with_keys {
        println!(
            "the backup holds no relay key: copy {KEY_FILE} from the original relay into {} (mode 0600) before `serve`; nodes pin the relay's key, so a relay with another key is another relay to them",
            dir.display()
        );
    }
    println!(
        "the restored log has a new epoch: changes acknowledged after the backup are pushed again by the nodes that hold them, and every node reads the log again from the start, at its next connection"
    );
    Ok(())
}
