//! Upgrading: a node store written by the previous release
//! (`tests/fixtures/node-store-v5/`, schema version 5) opens with today's
//! binary, which migrates it in place to the current schema; its projects,
//! users and signed history are all still there, the derived views equal a
//! rebuild from the log, and the node keeps working.

use accordo_tests::{accordo_bin, path, run};
use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node-store-v5")
}

fn schema_version(db: &Path) -> Result<i64> {
    let c = rusqlite::Connection::open(db)?;
    Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

#[test]
fn a_store_of_the_previous_release_is_migrated_and_keeps_everything() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("node");
    std::fs::create_dir(&dir)?;
    for f in ["node.db", "node.key"] {
        std::fs::copy(fixture().join(f), dir.join(f)).with_context(|| f.to_owned())?;
    }
    // git keeps no file modes beyond the executable bit: the key as init makes it.
    std::fs::set_permissions(dir.join("node.key"), std::fs::Permissions::from_mode(0o600))?;
    assert_eq!(
        schema_version(&dir.join("node.db"))?,
        5,
        "the fixture is the old format"
    );
    let d = path(&dir);
    let cmd = |args: &[&str]| {
        let mut all = vec!["--dir", d.as_str()];
        all.extend_from_slice(args);
        run(&accordo_bin(), &all)
    };

    let listed = cmd(&["project", "list", "--format", "json"])?
        .ok()?
        .json()?;
    let before: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("projects.json"))?)?;
    let key_fields = |v: &serde_json::Value| -> Vec<Vec<serde_json::Value>> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        [
                            "id",
                            "cup",
                            "title",
                            "financed_cents",
                            "paid_cents",
                            "comune",
                        ]
                        .iter()
                        .map(|k| p[*k].clone())
                        .collect()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(key_fields(&listed).len(), 2, "{listed}");
    assert_eq!(
        key_fields(&listed),
        key_fields(&before),
        "the projects read the same after the upgrade"
    );
    let current = schema_version(&dir.join("node.db"))?;
    assert!(current > 5, "migrated in place (now {current})");

    let shown = cmd(&["project", "show", "H81B22000100001", "--format", "json"])?
        .ok()?
        .json()?;
    let text = shown.to_string();
    assert!(
        text.contains("Aggiudicazione lavori") && text.contains("PNRR"),
        "the milestone and funding line survive: {text}"
    );
    let users = cmd(&["user", "list", "--format", "json"])?.ok()?.json()?;
    assert_eq!(users[0]["name"], "anna.rossi", "{users}");
    let verified = cmd(&["verify"])?;
    assert_eq!(
        verified.code,
        Some(0),
        "{}{}",
        verified.stdout,
        verified.stderr
    );
    let rebuilt = cmd(&["rebuild-views"])?;
    assert_eq!(
        rebuilt.code,
        Some(0),
        "the migrated views equal a rebuild from the log: {}{}",
        rebuilt.stdout,
        rebuilt.stderr
    );
    // And the node goes on: an edit after the upgrade.
    cmd(&[
        "project",
        "set",
        "H81B22000100002",
        "--title",
        "Pista ciclabile del Poetto",
    ])?
    .ok()?;
    let after = cmd(&["project", "list", "--format", "json"])?
        .ok()?
        .json()?;
    assert!(after.to_string().contains("Pista ciclabile del Poetto"));
    Ok(())
}

/// The other way round: a store written by a newer release (here: this
/// release's store with its version raised by one) is refused by this
/// binary with a message saying so, and left byte for byte as it was.
#[test]
fn a_store_of_a_newer_release_is_refused_and_left_untouched() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("node");
    std::fs::create_dir(&dir)?;
    for f in ["node.db", "node.key"] {
        std::fs::copy(fixture().join(f), dir.join(f))?;
    }
    std::fs::set_permissions(dir.join("node.key"), std::fs::Permissions::from_mode(0o600))?;
    let d = path(&dir);
    run(&accordo_bin(), &["--dir", &d, "status"])?.ok()?;
    let db = dir.join("node.db");
    let newer = schema_version(&db)? + 1;
    {
        let c = rusqlite::Connection::open(&db)?;
        c.pragma_update(None, "user_version", newer)?;
        c.pragma_update(None, "journal_mode", "DELETE")?;
    }
    let before = std::fs::read(&db)?;
    for args in [
        vec!["--dir", d.as_str(), "status"],
        vec!["--dir", d.as_str(), "project", "add", "--title", "Nuovo"],
    ] {
        let refused = run(&accordo_bin(), &args)?;
        assert_ne!(refused.code, Some(0), "{args:?}");
        assert!(
            refused
                .stderr
                .contains(&format!("store schema version {newer} is newer")),
            "{}",
            refused.stderr
        );
    }
    assert_eq!(
        std::fs::read(&db)?,
        before,
        "the newer store is not touched"
    );
    Ok(())
}
