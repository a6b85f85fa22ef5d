//! The filesystem through a real mount: system calls in, a cut, and what a
//! process sees afterwards. These fail (never skip) where FUSE cannot mount.

use accordo_powerfs::{Cut, Mount};
use rusqlite::Connection;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

fn mounted() -> (tempfile::TempDir, Mount) {
    let dir = tempfile::tempdir().unwrap();
    let mount = Mount::new(dir.path()).expect("the power-loss filesystem must mount here");
    (dir, mount)
}

fn sync_dir(dir: &Path) {
    File::open(dir).unwrap().sync_all().unwrap();
}

#[test]
fn a_synced_write_survives_and_an_unsynced_one_is_lost() {
    let (_dir, fs) = mounted();
    let path = fs.path().join("data");
    let mut f = File::create(&path).unwrap();
    f.write_all(&[1; 4096]).unwrap();
    f.sync_data().unwrap();
    sync_dir(fs.path());
    f.write_all(&[2; 4096]).unwrap(); // appended, never synced
    drop(f);
    assert_eq!(
        std::fs::read(&path).unwrap().len(),
        8192,
        "visible before the cut"
    );
    let report = fs.cut(Cut::DropUnsynced);
    assert_eq!(std::fs::read(&path).unwrap(), vec![1; 4096]);
    assert_eq!(report.sectors_lost, 8);
    assert_eq!(report.sizes_lost, 1);
}

#[test]
fn a_new_file_is_lost_unless_its_directory_was_synced() {
    let (_dir, fs) = mounted();
    let (kept, lost) = (fs.path().join("kept"), fs.path().join("lost"));
    for p in [&kept, &lost] {
        let mut f = File::create(p).unwrap();
        f.write_all(b"synced").unwrap();
        f.sync_all().unwrap();
        if p == &kept {
            sync_dir(fs.path());
        }
    }
    fs.cut(Cut::DropUnsynced);
    assert_eq!(std::fs::read(&kept).unwrap(), b"synced");
    assert!(!lost.exists(), "its entry was never synced");
    // And an unlink not synced comes back.
    std::fs::remove_file(&kept).unwrap();
    fs.cut(Cut::DropUnsynced);
    assert_eq!(std::fs::read(&kept).unwrap(), b"synced");
}

#[test]
fn everything_survives_a_cut_after_sync_all() {
    let (_dir, fs) = mounted();
    std::fs::create_dir(fs.path().join("d")).unwrap();
    std::fs::write(fs.path().join("d/f"), b"quiet").unwrap();
    fs.sync_all();
    let report = fs.cut(Cut::DropUnsynced);
    assert!(!report.lost_anything(), "{report:?}");
    assert_eq!(std::fs::read(fs.path().join("d/f")).unwrap(), b"quiet");
}

fn store(path: &Path, synchronous: &str) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", synchronous)
        .unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY, v BLOB)")
        .unwrap();
    conn
}

fn rows_and_integrity(path: &Path) -> (i64, String) {
    let conn = Connection::open(path).unwrap();
    let rows = conn
        .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
        .unwrap_or(-1);
    let check = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    (rows, check)
}

/// Commits `n` rows one transaction each on a store made durable first,
/// then cuts; returns the rows and the integrity verdict afterwards.
fn commit_then_cut(fs: &Mount, synchronous: &str, n: i64, how: Cut) -> (i64, String) {
    let db = fs.path().join(format!("{synchronous}-{how:?}.db"));
    drop(store(&db, "FULL"));
    fs.sync_all();
    let conn = store(&db, synchronous);
    for i in 0..n {
        conn.execute("INSERT INTO t (n, v) VALUES (?1, zeroblob(3000))", [i])
            .unwrap();
    }
    drop(conn);
    fs.cut(how);
    rows_and_integrity(&db)
}

#[test]
fn sqlite_with_synchronous_full_keeps_every_commit_and_with_off_loses_them() {
    let (_dir, fs) = mounted();
    assert_eq!(
        commit_then_cut(&fs, "FULL", 40, Cut::DropUnsynced),
        (40, "ok".into())
    );
    // The same writes without syncs are gone: the filesystem really drops
    // what was not synced (and the store is still sound).
    assert_eq!(
        commit_then_cut(&fs, "OFF", 40, Cut::DropUnsynced),
        (0, "ok".into())
    );
}

#[test]
fn sqlite_with_synchronous_full_survives_torn_cuts() {
    let (_dir, fs) = mounted();
    for seed in 1..=8 {
        assert_eq!(
            commit_then_cut(&fs, "FULL", 30, Cut::Torn { seed }),
            (30, "ok".into()),
            "seed {seed}"
        );
    }
}

#[test]
fn a_file_open_across_a_cut_reads_the_surviving_data() {
    let (_dir, fs) = mounted();
    let path = fs.path().join("data");
    std::fs::write(&path, b"old").unwrap();
    fs.sync_all();
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(b"new").unwrap();
    drop(f);
    assert_eq!(std::fs::read(&path).unwrap(), b"new", "the page cache");
    fs.cut(Cut::DropUnsynced);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"old",
        "not a stale cached page"
    );
}
