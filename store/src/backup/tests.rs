//! Backups are consistent while another connection writes, and a restore
//! refuses what it cannot trust before touching anything.

use super::*;

const LAYOUT: Layout = Layout {
    kind: "test",
    db_file: "t.db",
    key_prefix: "t.key",
    schema_version: 1,
};
const SCHEMA: &[&str] = &["CREATE TABLE rows (n INTEGER PRIMARY KEY) STRICT;"];

fn dir_with_store(rows: i64) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = crate::open(&dir.path().join("t.db"), SCHEMA).unwrap();
    for n in 0..rows {
        conn.execute("INSERT INTO rows (n) VALUES (?1)", [n])
            .unwrap();
    }
    std::fs::write(dir.path().join("t.key"), b"secret").unwrap();
    (dir, conn)
}

fn count(dir: &Path) -> i64 {
    let conn = Connection::open(dir.join("t.db")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM rows", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_backup_restores_whole_and_keys_only_when_asked() {
    let (src, _conn) = dir_with_store(100);
    let out = src.path().join("b.tar");
    let report = backup(src.path(), &LAYOUT, &out, false, 1).unwrap();
    assert!(!report.manifest.with_keys);
    assert_eq!(report.manifest.files.len(), 1);
    let target = tempfile::tempdir().unwrap();
    let newdir = target.path().join("restored");
    restore(&out, &newdir, &LAYOUT).unwrap();
    assert_eq!(count(&newdir), 100);
    assert!(!newdir.join("t.key").exists(), "no key without --with-keys");

    backup(src.path(), &LAYOUT, &out, true, 2).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an archive holding keys is private");
    }
    // An existing empty directory is filled (unpacked inside it, since its
    // parent may not be writable), and nothing else is left in it.
    let empty = tempfile::tempdir().unwrap();
    restore(&out, empty.path(), &LAYOUT).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(empty.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["t.db", "t.key"]);
    // A directory whose parents do not exist yet is made.
    let deep = target.path().join("a/b/restored");
    restore(&out, &deep, &LAYOUT).unwrap();
    assert_eq!(count(&deep), 100);
    assert_eq!(
        std::fs::read(empty.path().join("t.key")).unwrap(),
        b"secret"
    );
    assert_eq!(count(empty.path()), 100);
}

#[test]
fn a_non_empty_directory_is_refused_and_left_alone() {
    let (src, _conn) = dir_with_store(3);
    let out = src.path().join("b.tar");
    backup(src.path(), &LAYOUT, &out, true, 1).unwrap();
    let target = tempfile::tempdir().unwrap();
    std::fs::write(target.path().join("notes.txt"), b"mine").unwrap();
    let err = restore(&out, target.path(), &LAYOUT).unwrap_err();
    assert!(matches!(err, BackupError::NotEmpty(_)), "{err}");
    let names: Vec<_> = std::fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
}

#[test]
fn a_damaged_archive_is_refused_and_nothing_is_left_behind() {
    let (src, _conn) = dir_with_store(2_000);
    let out = src.path().join("b.tar");
    backup(src.path(), &LAYOUT, &out, false, 1).unwrap();
    let mut bytes = std::fs::read(&out).unwrap();
    // Past the manifest's 512-byte header and body, inside the store.
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    let damaged = src.path().join("damaged.tar");
    std::fs::write(&damaged, &bytes).unwrap();
    let target = tempfile::tempdir().unwrap();
    let newdir = target.path().join("restored");
    let err = restore(&damaged, &newdir, &LAYOUT).unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    assert!(!newdir.exists());
    assert_eq!(
        std::fs::read_dir(target.path()).unwrap().count(),
        0,
        "staging removed"
    );

    let truncated = src.path().join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    assert!(restore(&truncated, &newdir, &LAYOUT).is_err());
    assert!(!newdir.exists());

    let other = Layout {
        kind: "relay",
        ..LAYOUT
    };
    let err = restore(&out, &newdir, &other).unwrap_err();
    assert!(err.to_string().contains("not of a relay"), "{err}");
}

#[test]
fn a_store_newer_than_the_binary_is_not_backed_up_or_restored() {
    let (src, _conn) = dir_with_store(1);
    let out = src.path().join("b.tar");
    backup(src.path(), &LAYOUT, &out, false, 1).unwrap();
    let older = Layout {
        schema_version: 0,
        ..LAYOUT
    };
    let err = backup(src.path(), &older, &out, false, 1).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
    let target = tempfile::tempdir().unwrap();
    let err = restore(&out, &target.path().join("r"), &older).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn a_backup_taken_while_another_connection_writes_is_a_consistent_prefix() {
    let (src, conn) = dir_with_store(0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // Bounded in count and time.
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut n = 0i64;
            while n < 200_000
                && Instant::now() < deadline
                && !stop.load(std::sync::atomic::Ordering::SeqCst)
            {
                conn.execute("INSERT INTO rows (n) VALUES (?1)", [n])
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    // Wait for the writer to have written something (observed state).
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(src.path()) < 100 {
        assert!(Instant::now() < deadline, "writer made no progress");
        std::thread::yield_now();
    }
    let out = src.path().join("b.tar");
    backup(src.path(), &LAYOUT, &out, false, 1).unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.join().unwrap();
    let target = tempfile::tempdir().unwrap();
    let newdir = target.path().join("r");
    restore(&out, &newdir, &LAYOUT).unwrap();
    let conn = Connection::open(newdir.join("t.db")).unwrap();
    let (n, max): (i64, i64) = conn
        .query_row("SELECT COUNT(*), MAX(n) FROM rows", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(n >= 100 && n <= written, "{n} of {written}");
    assert_eq!(max, n - 1, "rows 0..n with no gap: a committed prefix");
}

#[cfg(unix)]
#[test]
fn a_restore_into_a_group_shared_directory_shares_the_files() {
    use std::os::unix::fs::PermissionsExt;
    let (src, _conn) = dir_with_store(1);
    let out = src.path().join("b.tar");
    backup(src.path(), &LAYOUT, &out, true, 1).unwrap();
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o2770)).unwrap();
    restore(&out, shared.path(), &LAYOUT).unwrap();
    let mode = |f: &str| {
        std::fs::metadata(shared.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("t.db"), 0o660);
    assert_eq!(mode("t.key"), 0o640);
}
