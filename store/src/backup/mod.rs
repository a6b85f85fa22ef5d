//! Online backups of a node or relay directory, and their restore.
//!
//! A backup is one tar archive: `MANIFEST.json` first (what kind of
//! directory, the store's schema version, whether keys are included, and the
//! size and blake3 digest of every file), then the store as a consistent
//! snapshot made with `VACUUM INTO` — one read transaction, so `run` or
//! `serve` goes on writing meanwhile — and, only when asked, the secret key
//! files. Settings live in the store's `meta` table, so they travel with it.
//! The archive is written to a temporary file, synced and renamed into
//! place: a crash leaves the old file or the new one, never half of one.
//!
//! A restore refuses a directory that is not empty before it writes
//! anything, unpacks into a staging directory beside it, checks every
//! file against the manifest, then `PRAGMA integrity_check` and the schema
//! version of the store, and only then moves the files into place.

use crate::StoreError;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The archive's first entry.
pub const MANIFEST: &str = "MANIFEST.json";
/// The manifest format this code writes and reads.
const FORMAT: &str = "accordo-backup/1";
/// Mode of an archive that holds secret keys, and of restored key files.
#[cfg(unix)]
const PRIVATE_MODE: u32 = 0o600;
/// Mode of an archive without keys: the store still holds settings and (on
/// a node) the web accounts' password hashes, so it is not world-readable.
#[cfg(unix)]
const ARCHIVE_MODE: u32 = 0o640;
/// A manifest is a few hundred bytes; anything much larger is not one.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// What a directory of one kind holds.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// `"node"` or `"relay"`: recorded, and checked on restore.
    pub kind: &'static str,
    /// The store file, e.g. `node.db`.
    pub db_file: &'static str,
    /// Secret key files start with this (`node.key`, `node.key.next`, the
    /// retired keys `node.key.retired-*`); the first is the key itself.
    pub key_prefix: &'static str,
    /// The newest schema version this binary knows (its migration count).
    pub schema_version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub kind: String,
    pub schema_version: i64,
    pub created_unix_ms: i64,
    pub with_keys: bool,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub blake3: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} holds no store ({1}): not a {2} directory")]
    NoStore(String, &'static str, &'static str),
    #[error("{0} is not empty: restore into a new or empty directory (nothing was changed)")]
    NotEmpty(String),
    #[error("{path} is not a usable backup: {why} (nothing was restored)")]
    Invalid { path: String, why: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub manifest: Manifest,
    pub archive_bytes: u64,
    pub took: Duration,
}

impl BackupReport {
    /// The line a command prints once a backup of `dir` is in `out`;
    /// `key` names the directory's key ("the node's key", "the relay key").
    pub fn summary(&self, dir: &Path, out: &Path, with_keys: bool, key: &str) -> String {
        let keys = if with_keys {
            format!("with {key} (keep the file as secret as the key)")
        } else {
            format!("without {key}")
        };
        format!(
            "backed up {} to {} ({} bytes, schema version {}, {keys}) in {} ms",
            dir.display(),
            out.display(),
            self.archive_bytes,
            self.manifest.schema_version,
            self.took.as_millis()
        )
    }
}

/// Removes a temporary file when dropped (on every path out of a backup).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A temporary path beside `out`, unique to this process.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    out.with_file_name(format!(".{name}.{}.{suffix}", std::process::id()))
}

fn digest_file(path: &Path) -> Result<(u64, String), BackupError> {
    let mut hasher = blake3::Hasher::new();
    let mut file = File::open(path).map_err(io(path))?;
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(io(path))?;
    Ok((bytes, hasher.finalize().to_hex().to_string()))
}

/// The schema version of an open store.
fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Snapshots `dir`'s store (while other processes write it) and its key
/// files if `with_keys`, into the archive `out`.
pub fn backup(
    dir: &Path,
    layout: &Layout,
    out: &Path,
    with_keys: bool,
    now_unix_ms: i64,
) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    let db = dir.join(layout.db_file);
    if !db.is_file() {
        return Err(BackupError::NoStore(
            dir.display().to_string(),
            layout.db_file,
            layout.kind,
        ));
    }
    let snapshot = TempFile(beside(out, "db.tmp"));
    let _ = std::fs::remove_file(&snapshot.0);
    let version = snapshot_store(&db, &snapshot.0, layout)?;
    let mut files = vec![(layout.db_file.to_owned(), snapshot.0.clone())];
    if with_keys {
        files.extend(key_files(dir, layout)?);
    }
    let mut entries = Vec::new();
    for (name, path) in &files {
        let (bytes, blake3) = digest_file(path)?;
        entries.push(FileEntry {
            name: name.clone(),
            bytes,
            blake3,
        });
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        kind: layout.kind.into(),
        schema_version: version,
        created_unix_ms: now_unix_ms,
        with_keys,
        files: entries,
    };
    let archive_bytes = write_archive(out, &manifest, &files, with_keys)?;
    Ok(BackupReport {
        manifest,
        archive_bytes,
        took: started.elapsed(),
    })
}

/// `VACUUM INTO` a fresh file: a consistent snapshot taken in one read
/// transaction, compacted. Returns the store's schema version.
fn snapshot_store(db: &Path, into: &Path, layout: &Layout) -> Result<i64, BackupError> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(StoreError::from)?;
    conn.busy_timeout(crate::BUSY_TIMEOUT)
        .map_err(StoreError::from)?;
    let version = user_version(&conn)?;
    if version > layout.schema_version {
        return Err(StoreError::TooNew {
            found: version,
            known: layout.schema_version,
        }
        .into());
    }
    let into_s = into.to_str().ok_or_else(|| BackupError::Invalid {
        path: into.display().to_string(),
        why: "the path is not UTF-8".into(),
    })?;
    conn.execute("VACUUM INTO ?1", [into_s])
        .map_err(StoreError::from)?;
    // VACUUM INTO does not sync what it wrote; the archive is synced whole.
    Ok(version)
}

/// The key files present in `dir`, sorted by name.
fn key_files(dir: &Path, layout: &Layout) -> Result<Vec<(String, PathBuf)>, BackupError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(layout.key_prefix) && entry.path().is_file() {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    if !out.iter().any(|(n, _)| n == layout.key_prefix) {
        return Err(BackupError::NoStore(
            dir.display().to_string(),
            layout.key_prefix,
            layout.kind,
        ));
    }
    Ok(out)
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)
}

/// Writes the archive to a temporary file, syncs it and renames it to `out`.
fn write_archive(
    out: &Path,
    manifest: &Manifest,
    files: &[(String, PathBuf)],
    with_keys: bool,
) -> Result<u64, BackupError> {
    let tmp = TempFile(beside(out, "tmp"));
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(if with_keys {
        PRIVATE_MODE
    } else {
        ARCHIVE_MODE
    });
    let _ = std::fs::remove_file(&tmp.0);
    let file = opts.open(&tmp.0).map_err(io(&tmp.0))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let manifest_json = serde_json::to_vec_pretty(manifest).map_err(|e| BackupError::Invalid {
        path: out.display().to_string(),
        why: format!("manifest: {e}"),
    })?;
    append_bytes(&mut tar, MANIFEST, &manifest_json).map_err(io(&tmp.0))?;
    for (name, path) in files {
        let mut src = File::open(path).map_err(io(path))?;
        let len = src.metadata().map_err(io(path))?.len();
        let mut header = tar::Header::new_ustar();
        header.set_size(len);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append_data(&mut header, name, &mut src)
            .map_err(io(path))?;
    }
    let writer = tar.into_inner().map_err(io(&tmp.0))?;
    let file = writer.into_inner().map_err(|e| BackupError::Io {
        path: tmp.0.display().to_string(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io(&tmp.0))?;
    let bytes = file.metadata().map_err(io(&tmp.0))?.len();
    drop(file);
    std::fs::rename(&tmp.0, out).map_err(io(out))?;
    sync_parent(out)?;
    Ok(bytes)
}

/// Syncs the directory holding `path`, so a rename in it is durable.
fn sync_parent(path: &Path) -> Result<(), BackupError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io(parent))
}

mod restore;

pub use restore::{restore, RestoreReport};

#[cfg(test)]
mod tests;
