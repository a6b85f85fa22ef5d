//! Secret key files shared by the node and the relay: 32 random bytes from the
//! OS, stored as hex in a file only its owner can read, written atomically
//! (temp file + rename) so a crash never leaves a half-written key. In a
//! group-writable directory (the packaged node directory, shared by the
//! service and the office staff in its group) the group may read the key
//! too: whoever may edit the node's data signs with its key.

use ed25519_dalek::SigningKey;
use std::io::Write;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {0} is malformed: expected 64 hex digits")]
    Malformed(String),
    #[error("key file {0} already exists: refusing to overwrite an identity")]
    Exists(String),
    #[error("the operating system gave no randomness: {0}")]
    Random(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A fresh key from the operating system's randomness.
pub fn generate() -> Result<SigningKey, KeyFileError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyFileError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Mode of a key file only its owner can read.
#[cfg(unix)]
const PRIVATE_KEY_MODE: u32 = 0o600;
/// Mode of a key file in a group-writable directory: the group reads it.
#[cfg(unix)]
const GROUP_KEY_MODE: u32 = 0o640;
/// The group-write bit of a directory's mode.
#[cfg(unix)]
const GROUP_WRITE: u32 = 0o020;

/// The mode for a new key file at `path`, from its directory's mode.
#[cfg(unix)]
fn key_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.permissions().mode() & GROUP_WRITE != 0 => GROUP_KEY_MODE,
        _ => PRIVATE_KEY_MODE,
    }
}

/// Writes a new key file; never overwrites an existing one.
pub fn create(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    if path.exists() {
        return Err(KeyFileError::Exists(path.display().to_string()));
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    let mode = key_mode(path);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    let mut file = opts.open(&tmp).map_err(io_err(&tmp))?;
    #[cfg(unix)]
    {
        // The umask may have cleared the group's read bit: set it as meant.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io_err(&tmp))?;
    }
    file.write_all(hex_encode(&key.to_bytes()).as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_parent(path)
}

/// Syncs the directory holding `path`, so that a file created or renamed
/// there survives a power cut (the file's own fsync does not cover its
/// directory entry).
fn sync_parent(path: &Path) -> Result<(), KeyFileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Installs the key file `next` as `path` (a key rotation), keeping the
/// key it replaces as `retired`; durable when it returns: the copy is
/// synced before the rename, and the directory after it. Without that a
/// power cut could bring the retired key back as `path` after the rotation
/// was reported done (found by `tests/tests/power_loss.rs`).
pub fn replace(next: &Path, path: &Path, retired: &Path) -> Result<(), KeyFileError> {
    std::fs::copy(path, retired).map_err(io_err(retired))?;
    std::fs::File::open(retired)
        .and_then(|f| f.sync_all())
        .map_err(io_err(retired))?;
    std::fs::rename(next, path).map_err(io_err(path))?;
    sync_parent(path)
}

/// Reads a key file written by [`create`].
pub fn load(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let text = text.trim();
    let malformed = || KeyFileError::Malformed(path.display().to_string());
    // Only ASCII hex digits: slicing below needs ASCII, and `from_str_radix`
    // alone would accept a `+` sign.
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed());
    }
    let mut seed = [0u8; 32];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| malformed())?;
    }
    Ok(SigningKey::from_bytes(&seed))
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = generate().unwrap();
        create(&path, &key).unwrap();
        assert_eq!(load(&path).unwrap().to_bytes(), key.to_bytes());
        assert!(matches!(
            create(&path, &generate().unwrap()),
            Err(KeyFileError::Exists(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key readable by others");
        }
        std::fs::write(&path, "nothex").unwrap();
        assert!(matches!(load(&path), Err(KeyFileError::Malformed(_))));
    }

    /// The packaged node directory is group-writable (setgid, group
    /// `accordo`): office staff sign with the node key, so the group reads
    /// it; whatever the umask, and never the others.
    #[cfg(unix)]
    #[test]
    fn a_key_in_a_group_writable_directory_is_group_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o2770)).unwrap();
        let path = dir.path().join("node.key");
        create(&path, &generate().unwrap()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, GROUP_KEY_MODE);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let private = dir.path().join("relay.key");
        create(&private, &generate().unwrap()).unwrap();
        let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, PRIVATE_KEY_MODE);
    }

    /// Regression (fuzz target `keyfile`, seeds `crash_*` in
    /// fuzz/corpus/keyfile): 64 bytes holding a multi-byte character made the
    /// hex slicing panic, and a `+` sign was taken as part of a digit pair.
    #[test]
    fn malformed_key_files_are_refused_without_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let non_ascii = format!("a\u{e9}{}", "a".repeat(61));
        let plus_sign = format!("+2{}", "02".repeat(31));
        for text in [non_ascii, plus_sign] {
            assert_eq!(text.len(), 64);
            std::fs::write(&path, &text).unwrap();
            assert!(
                matches!(load(&path), Err(KeyFileError::Malformed(_))),
                "{text:?}"
            );
        }
    }
}
