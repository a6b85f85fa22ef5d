//! Restoring a backup archive into a new directory (see [`super`]).

#[cfg(unix)]
use super::PRIVATE_MODE;
use super::{io, BackupError, Layout, Manifest, FORMAT, MANIFEST, MAX_MANIFEST_BYTES};
use crate::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A key file's mode in a group-shared directory, as `accordo_net::keyfile`
/// makes it there.
#[cfg(unix)]
const SHARED_KEY_MODE: u32 = 0o640;

/// What a restore put in place.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub manifest: Manifest,
}

/// Removes a staging directory when dropped, unless it was moved into place.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn invalid(from: &Path, why: impl Into<String>) -> BackupError {
    BackupError::Invalid {
        path: from.display().to_string(),
        why: why.into(),
    }
}

/// Whether `dir` is absent or an empty directory.
fn absent_or_empty(dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(dir)(e)),
    }
}

/// Restores the archive `from` into `newdir`, which must be absent or empty.
/// Nothing is written to `newdir` unless every check passes.
pub fn restore(from: &Path, newdir: &Path, layout: &Layout) -> Result<RestoreReport, BackupError> {
    if !absent_or_empty(newdir)? {
        return Err(BackupError::NotEmpty(newdir.display().to_string()));
    }
    let file = File::open(from).map_err(io(from))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut entries = archive
        .entries()
        .map_err(|e| invalid(from, format!("not a tar archive: {e}")))?;
    let manifest = read_manifest(from, &mut entries, layout)?;
    let staging = Staging(staging_path(newdir));
    if let Some(parent) = staging.0.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::create_dir(&staging.0).map_err(io(&staging.0))?;
    let mut seen = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| invalid(from, format!("damaged archive: {e}")))?;
        let name = entry_name(from, &entry)?;
        if !seen.insert(name.clone()) {
            return Err(invalid(from, format!("{name} appears twice")));
        }
        unpack_checked(from, entry, &name, &manifest, layout, &staging.0)?;
    }
    for f in &manifest.files {
        if !seen.contains(&f.name) {
            return Err(invalid(
                from,
                format!("{} is missing from the archive", f.name),
            ));
        }
    }
    check_store(from, &staging.0.join(layout.db_file), &manifest, layout)?;
    #[cfg(unix)]
    share_if_group_dir(&staging.0, newdir, layout)?;
    move_into_place(&staging.0, newdir)?;
    Ok(RestoreReport { manifest })
}

/// A hidden directory for unpacking: inside `newdir` when it exists (its
/// parent, e.g. `/var/lib`, may not be writable by the service user),
/// else beside it.
fn staging_path(newdir: &Path) -> PathBuf {
    let pid = std::process::id();
    if newdir.is_dir() {
        return newdir.join(format!(".restoring-{pid}"));
    }
    let name = newdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "restore".into());
    newdir.with_file_name(format!(".{name}.restoring-{pid}"))
}

fn read_manifest<R: Read>(
    from: &Path,
    entries: &mut tar::Entries<'_, R>,
    layout: &Layout,
) -> Result<Manifest, BackupError> {
    let mut first = entries
        .next()
        .ok_or_else(|| invalid(from, "the archive is empty"))?
        .map_err(|e| invalid(from, format!("damaged archive: {e}")))?;
    if entry_name(from, &first)? != MANIFEST || first.size() > MAX_MANIFEST_BYTES {
        return Err(invalid(from, format!("{MANIFEST} is not its first entry")));
    }
    let mut bytes = Vec::new();
    first
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(from, format!("damaged archive: {e}")))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| invalid(from, format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT {
        return Err(invalid(
            from,
            format!("unknown format {:?}", manifest.format),
        ));
    }
    if manifest.kind != layout.kind {
        return Err(invalid(
            from,
            format!(
                "it is a backup of a {} directory, not of a {}",
                manifest.kind, layout.kind
            ),
        ));
    }
    if manifest.schema_version > layout.schema_version {
        return Err(StoreError::TooNew {
            found: manifest.schema_version,
            known: layout.schema_version,
        }
        .into());
    }
    Ok(manifest)
}

/// An entry's name: a plain file name (no directories, no `..`).
fn entry_name<R: Read>(from: &Path, entry: &tar::Entry<'_, R>) -> Result<String, BackupError> {
    let path = entry
        .path()
        .map_err(|e| invalid(from, format!("entry name: {e}")))?;
    let name = path.to_string_lossy().into_owned();
    let plain = !name.is_empty()
        && !name.contains('/')
        && !name.contains('\\')
        && name != "."
        && name != "..";
    if !plain || entry.header().entry_type() != tar::EntryType::Regular {
        return Err(invalid(from, format!("unexpected entry {name:?}")));
    }
    Ok(name)
}

/// Writes one entry into `staging`, checking its size and digest against
/// the manifest; key files are created readable by their owner only.
fn unpack_checked<R: Read>(
    from: &Path,
    mut entry: tar::Entry<'_, R>,
    name: &str,
    manifest: &Manifest,
    layout: &Layout,
    staging: &Path,
) -> Result<(), BackupError> {
    let Some(expected) = manifest.files.iter().find(|f| f.name == name) else {
        return Err(invalid(from, format!("{name} is not in the manifest")));
    };
    let is_key = name.starts_with(layout.key_prefix);
    if name != layout.db_file && !is_key {
        return Err(invalid(from, format!("unexpected file {name:?}")));
    }
    let dest = staging.join(name);
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if is_key {
        opts.mode(PRIVATE_MODE);
    }
    let mut out = opts.open(&dest).map_err(io(&dest))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| invalid(from, format!("damaged archive at {name}: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io(&dest))?;
        bytes += n as u64;
    }
    out.sync_all().map_err(io(&dest))?;
    let digest = hasher.finalize().to_hex().to_string();
    if bytes != expected.bytes || digest != expected.blake3 {
        return Err(invalid(
            from,
            format!("{name} does not match its digest in the manifest (the file is damaged)"),
        ));
    }
    Ok(())
}

/// `PRAGMA integrity_check` and the schema version of the unpacked store.
fn check_store(
    from: &Path,
    db: &Path,
    manifest: &Manifest,
    layout: &Layout,
) -> Result<(), BackupError> {
    if !db.is_file() {
        return Err(invalid(from, format!("it holds no {}", layout.db_file)));
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(StoreError::from)?;
    let check = crate::integrity_check(&conn)
        .map_err(|e| invalid(from, format!("the store does not open: {e}")))?;
    if check != "ok" {
        return Err(invalid(from, format!("integrity_check: {check}")));
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(StoreError::from)?;
    if version != manifest.schema_version {
        return Err(invalid(
            from,
            format!(
                "the store has schema version {version}, the manifest says {}",
                manifest.schema_version
            ),
        ));
    }
    if version > layout.schema_version {
        return Err(StoreError::TooNew {
            found: version,
            known: layout.schema_version,
        }
        .into());
    }
    Ok(())
}

/// In an existing group-writable directory (the packaged, shared
/// `/var/lib/accordo`), gives the files the modes `init` would have there:
/// the store `0660` and key files `0640`, so the group's members use them.
#[cfg(unix)]
fn share_if_group_dir(staging: &Path, newdir: &Path, layout: &Layout) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    let shared = std::fs::metadata(newdir)
        .map(|m| m.permissions().mode() & crate::GROUP_WRITE != 0)
        .unwrap_or(false);
    if !shared {
        return Ok(());
    }
    for entry in std::fs::read_dir(staging).map_err(io(staging))? {
        let entry = entry.map_err(io(staging))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let mode = if name.starts_with(layout.key_prefix) {
            SHARED_KEY_MODE
        } else {
            crate::SHARED_STORE_MODE
        };
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))
            .map_err(io(&entry.path()))?;
    }
    Ok(())
}

/// Moves the checked files into `newdir` (creating it, or filling it when
/// it exists empty) and syncs the directories.
fn move_into_place(staging: &Path, newdir: &Path) -> Result<(), BackupError> {
    if !newdir.exists() {
        std::fs::rename(staging, newdir).map_err(io(newdir))?;
    } else {
        for entry in std::fs::read_dir(staging).map_err(io(staging))? {
            let entry = entry.map_err(io(staging))?;
            let dest = newdir.join(entry.file_name());
            std::fs::rename(entry.path(), &dest).map_err(io(&dest))?;
        }
    }
    File::open(newdir)
        .and_then(|d| d.sync_all())
        .map_err(io(newdir))?;
    super::sync_parent(newdir)
}
