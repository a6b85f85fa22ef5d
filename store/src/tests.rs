//! The SQL log obeys the same rules as the in-memory one.

use super::*;
use accordo_protocol::log::{admit, Admitted, RejectReason};
use accordo_protocol::testkit::{comune_doc, TestAuthor};

const SCHEMA: &[&str] = &[LOG_SCHEMA];

fn db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = open(&dir.path().join("t.db"), SCHEMA).unwrap();
    (dir, conn)
}

#[test]
fn log_rules_hold_in_sqlite() {
    let (_dir, mut conn) = db();
    let mut a = TestAuthor::new(1, 1);
    let mut twin = TestAuthor::new(1, 1);
    let c1 = a.edit(comune_doc(), "k", "1").verify().unwrap();
    let c2 = a.edit(comune_doc(), "k", "2").verify().unwrap();
    let fork = twin.edit(comune_doc(), "k", "fork").verify().unwrap();
    let tx = conn.transaction().unwrap();
    let mut log = SqlLog::new(&tx);
    assert!(matches!(
        admit(&mut log, &c2).unwrap(),
        Err(RejectReason::MissingDeps(_))
    ));
    assert_eq!(admit(&mut log, &c1).unwrap(), Ok(Admitted::Stored(1)));
    assert_eq!(admit(&mut log, &c1).unwrap(), Ok(Admitted::Duplicate(1)));
    assert!(matches!(
        admit(&mut log, &fork).unwrap(),
        Err(RejectReason::Equivocation { seq: 1, .. })
    ));
    assert_eq!(admit(&mut log, &c2).unwrap(), Ok(Admitted::Stored(2)));
    assert_eq!(log.head_seq().unwrap(), 2);
    assert_eq!(log.doc_changes(&comune_doc()).unwrap().len(), 2);
    assert_eq!(log.docs().unwrap(), vec![(comune_doc(), 2)]);
    tx.commit().unwrap();
    assert_eq!(integrity_check(&conn).unwrap(), "ok");
}

#[test]
fn entries_filter_by_scope_and_budget() {
    let (_dir, mut conn) = db();
    let mut a = TestAuthor::new(1, 1);
    let mut m = TestAuthor::new(2, 1);
    let tx = conn.transaction().unwrap();
    let mut log = SqlLog::new(&tx);
    for i in 0..4 {
        let c = a.edit(comune_doc(), "k", &i.to_string()).verify().unwrap();
        admit(&mut log, &c).unwrap().unwrap();
        let p = m.edit(DocId::Plan, "k", &i.to_string()).verify().unwrap();
        admit(&mut log, &p).unwrap().unwrap();
    }
    let plan = log
        .entries(&Scope::Doc(DocId::Plan), 0, 8, usize::MAX)
        .unwrap();
    assert_eq!(
        plan.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 4, 6, 8]
    );
    let all = log.entries(&Scope::All, 3, 6, usize::MAX).unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4, 5, 6]);
    let one = log.entries(&Scope::All, 0, 8, 1).unwrap();
    assert_eq!(one.len(), 1, "a tiny budget still yields one entry");
}

#[test]
fn newer_schemas_are_refused_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(open(&path, SCHEMA).unwrap());
    let conn = open(&path, SCHEMA).unwrap();
    conn.pragma_update(None, "user_version", 5).unwrap();
    drop(conn);
    assert!(matches!(
        open(&path, SCHEMA),
        Err(StoreError::TooNew { found: 5, known: 1 })
    ));
}

/// In a group-writable directory (the packaged node directory) the database
/// and the `-wal` and `-shm` files SQLite makes beside it are group
/// read-write even under a umask that would clear the group's bits, so the
/// service user and office staff in the group both write the store.
#[cfg(unix)]
#[test]
fn a_store_in_a_group_writable_directory_is_shared_with_the_group() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o2770)).unwrap();
    let path = dir.path().join("node.db");
    let conn = open(&path, &["CREATE TABLE t (x INTEGER);"]).unwrap();
    conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
    for name in ["node.db", "node.db-wal", "node.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, SHARED_STORE_MODE, "{name}");
    }
    drop(conn);
    // An existing store is opened as it is, its mode untouched.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    drop(open(&path, &["CREATE TABLE t (x INTEGER);"]).unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
