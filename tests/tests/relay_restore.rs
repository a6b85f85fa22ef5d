//! A relay restored from an old backup (issue 13): its log lacks changes it
//! acknowledged after the backup, which the nodes dropped from their
//! outboxes. The restored log has a new epoch; every node that meets it
//! pushes what it holds and reads again from the start, so nothing
//! acknowledged is lost — not even the changes of a node that never comes
//! back, which another node had pulled.

use accordo_tests::{path, relay_bin, run, Node, Relay};
use anyhow::Result;

const CAGLIARI: &str = "092009";
const QUARTU: &str = "092051";
const SELARGIUS: &str = "092068";

#[test]
fn a_relay_restored_from_an_old_backup_is_refilled_by_its_nodes() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    let quartu = Node::admitted(&relay, QUARTU, "comune")?;
    let selargius = Node::admitted(&relay, SELARGIUS, "comune")?;
    quartu.add("H81B22000120001", "Prima del backup")?;
    quartu.sync()?.ok()?;
    metro.sync()?.ok()?;

    let backups = tempfile::tempdir()?;
    let archive = backups.path().join("relay.tar");
    run(
        &relay_bin(),
        &[
            "--dir",
            &path(relay.dir.path()),
            "backup",
            "--out",
            &path(&archive),
            "--with-keys",
        ],
    )?
    .ok()?;

    // After the backup: acknowledged writes, then every node syncs, and
    // Selargius goes away for good (its directory is gone).
    quartu.add("H81B22000120002", "Dopo il backup")?;
    quartu.sync()?.ok()?;
    selargius.add("B61C22000450005", "Scuola via Roma")?;
    selargius.sync()?.ok()?;
    assert_eq!(selargius.status()?["outbox_pending"], 0, "acknowledged");
    metro.sync()?.ok()?;
    assert_eq!(metro.projects(true)?.len(), 3);
    drop(selargius);

    // The relay's machine dies; it is restored from the old backup at the
    // same address.
    let addr = relay.addr.clone();
    relay.kill9();
    let restored_dir = tempfile::tempdir()?;
    let out = run(
        &relay_bin(),
        &[
            "--dir",
            &path(restored_dir.path()),
            "restore",
            "--from",
            &path(&archive),
        ],
    )?
    .ok()?;
    assert!(out.stdout.contains("new epoch"), "{}", out.stdout);
    let mut restored = Relay::from_dir(restored_dir)?;
    restored.addr = addr;
    restored.start()?;

    // The surviving nodes reconnect: each pushes what it holds.
    quartu.sync()?.ok()?;
    metro.sync()?.ok()?;

    // A node that never saw the old relay finds everything acknowledged.
    let newcomer = Node::admitted(&restored, CAGLIARI, "metro")?;
    newcomer.sync()?.ok()?;
    let titles: Vec<String> = newcomer
        .projects(true)?
        .into_iter()
        .map(|(_, _, t)| t)
        .collect();
    assert_eq!(
        titles,
        vec!["Prima del backup", "Dopo il backup", "Scuola via Roma"],
        "the restored relay was refilled with every acknowledged change"
    );
    // The old nodes are consistent with it and keep working.
    quartu.add("H81B22000120003", "Dopo il ripristino")?;
    quartu.sync()?.ok()?;
    metro.sync()?.ok()?;
    assert_eq!(metro.projects(true)?.len(), 4);
    assert_eq!(quartu.status()?["outbox_pending"], 0);
    Ok(())
}
