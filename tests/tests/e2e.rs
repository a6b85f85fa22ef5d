//! End-to-end: the real `accordo` and `accordo-relay` binaries on loopback.

use accordo_tests::{wait_until, Node, Relay};
use anyhow::Result;
use std::time::Duration;

const CAGLIARI: &str = "092009";
const QUARTU: &str = "092051";
const SELARGIUS: &str = "092068";

#[test]
fn offline_edits_sync_and_the_metro_node_sees_every_comune() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    let a = Node::admitted(&relay, CAGLIARI, "comune")?;
    let b = Node::admitted(&relay, QUARTU, "comune")?;
    let c = Node::admitted(&relay, SELARGIUS, "comune")?;
    assert!(relay.stop()?, "SIGTERM gives a clean shutdown and exit 0");

    // Offline: edits work and stay in the outbox.
    a.add("F21B21000310006", "Mercato San Benedetto")?;
    b.add("H81B22000120001", "Pista ciclabile")?;
    c.add("B61C22000450005", "Scuola via Roma")?;
    c.cmd(&[
        "project",
        "set",
        "B61C22000450005",
        "--title",
        "Scuola di via Roma",
    ])?
    .ok()?;
    assert_eq!(c.status()?["outbox_pending"], 2);
    let offline = a.cmd(&["sync", "--timeout-s", "2"])?;
    assert_ne!(offline.code, Some(0));
    assert!(offline.stderr.contains("unreachable"), "{}", offline.stderr);
    assert_eq!(
        a.status()?["outbox_pending"],
        1,
        "a failed sync loses nothing"
    );

    relay.start()?;
    for n in [&a, &b, &c, &metro] {
        n.sync()?.ok()?;
    }
    assert_eq!(c.status()?["outbox_pending"], 0);
    let all = metro.projects(true)?;
    assert_eq!(
        all,
        vec![
            (
                CAGLIARI.into(),
                "F21B21000310006".into(),
                "Mercato San Benedetto".into()
            ),
            (
                QUARTU.into(),
                "H81B22000120001".into(),
                "Pista ciclabile".into()
            ),
            (
                SELARGIUS.into(),
                "B61C22000450005".into(),
                "Scuola di via Roma".into()
            ),
        ]
    );
    // A comune follows its own document (and the plan), not the others.
    assert_eq!(b.projects(true)?.len(), 1);
    assert_eq!(
        metro.heads(&format!("comune/{SELARGIUS}"))?,
        c.heads(&format!("comune/{SELARGIUS}"))?
    );
    Ok(())
}

#[test]
fn an_unadmitted_node_is_refused_while_others_keep_working() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let honest = Node::admitted(&relay, CAGLIARI, "comune")?;
    let stranger = Node::init(&relay, QUARTU, "comune")?;
    stranger.add("H81B22000120001", "Intruso")?;
    let out = stranger.sync()?;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("not admitted"), "{}", out.stderr);
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "one clear line: {}",
        out.stderr
    );
    honest.add("F21B21000310006", "Mercato")?;
    honest.sync()?.ok()?;
    assert_eq!(honest.status()?["outbox_pending"], 0);
    Ok(())
}

#[test]
fn a_relay_killed_with_sigkill_loses_nothing_it_acknowledged() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let a = Node::admitted(&relay, CAGLIARI, "comune")?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    for i in 0..5 {
        a.add(&format!("F21B2100031{i:04}"), &format!("Progetto {i}"))?;
        a.sync()?.ok()?; // exit 0 = durably acknowledged
        relay.kill9();
        relay.start()?;
    }
    metro.sync()?.ok()?;
    assert_eq!(metro.projects(true)?.len(), 5);
    Ok(())
}

#[test]
fn two_offices_of_one_comune_editing_the_same_project_converge() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let a = Node::admitted(&relay, CAGLIARI, "comune")?;
    let b = Node::admitted(&relay, CAGLIARI, "comune")?;
    a.add("F21B21000310006", "Mercato")?;
    a.sync()?.ok()?;
    b.sync()?.ok()?;
    a.cmd(&["project", "set", "F21B21000310006", "--title", "Titolo A"])?
        .ok()?;
    b.cmd(&["project", "set", "F21B21000310006", "--title", "Titolo B"])?
        .ok()?;
    a.sync()?.ok()?;
    b.sync()?.ok()?;
    a.sync()?.ok()?;
    let (pa, pb) = (a.projects(false)?, b.projects(false)?);
    assert_eq!(pa, pb);
    assert!(["Titolo A", "Titolo B"].contains(&pa[0].2.as_str()));
    let show = a
        .cmd(&["project", "show", "F21B21000310006", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(show["conflicts"]["title"]["winner"], pa[0].2.as_str());
    // A later edit resolves the conflict everywhere.
    b.cmd(&[
        "project",
        "set",
        "F21B21000310006",
        "--title",
        "Titolo concordato",
    ])?
    .ok()?;
    b.sync()?.ok()?;
    a.sync()?.ok()?;
    let show = a
        .cmd(&["project", "show", "F21B21000310006", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(show["title"], "Titolo concordato");
    assert!(show["conflicts"].as_object().unwrap().is_empty());
    Ok(())
}

#[test]
fn a_node_restored_from_an_old_copy_keeps_syncing() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let a = Node::admitted(&relay, CAGLIARI, "comune")?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    a.add("F21B21000310001", "Prima")?;
    a.sync()?.ok()?;
    let backup = tempfile::tempdir()?;
    copy_dir(a.dir.path(), backup.path())?;
    a.add("F21B21000310002", "Seconda")?;
    a.cmd(&[
        "project",
        "set",
        "F21B21000310001",
        "--title",
        "Prima (modificata)",
    ])?
    .ok()?;
    a.sync()?.ok()?;
    // Restore the old copy over the live directory.
    std::fs::remove_dir_all(a.dir.path())?;
    copy_dir(backup.path(), a.dir.path())?;
    a.add("F21B21000310003", "Terza, dopo il ripristino")?;
    a.sync()?.ok()?; // no equivocation: the restored node got a fresh actor
    metro.sync()?.ok()?;
    let titles: Vec<String> = metro.projects(true)?.into_iter().map(|p| p.2).collect();
    assert_eq!(
        titles,
        vec!["Prima (modificata)", "Seconda", "Terza, dopo il ripristino"]
    );
    assert_eq!(a.heads("comune/092009")?, metro.heads("comune/092009")?);
    Ok(())
}

#[test]
fn edits_made_while_run_is_running_reach_the_relay_within_seconds() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let a = Node::admitted(&relay, QUARTU, "comune")?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    let mut running = a.spawn_run()?;
    a.add("H81B22000120001", "Pista ciclabile")?;
    let took = wait_until(Duration::from_secs(10), || {
        metro.sync()?.ok()?;
        Ok(metro.projects(true)?.len() == 1)
    });
    let _ = running.kill();
    let _ = running.wait();
    let took = took?;
    assert!(took < Duration::from_secs(10));
    assert_eq!(a.status()?["outbox_pending"], 0);
    Ok(())
}

#[test]
fn malformed_codes_are_refused_naming_the_field() -> Result<()> {
    let relay = Relay::init()?;
    let bad_istat = accordo_tests::run(
        &accordo_tests::accordo_bin(),
        &[
            "init",
            "--dir",
            "/nonexistent-never-created",
            "--comune",
            "92009",
            "--relay",
            &format!("{}@127.0.0.1:9", relay.id),
        ],
    )?;
    assert_ne!(bad_istat.code, Some(0));
    assert!(
        bad_istat.stderr.contains("--comune") && bad_istat.stderr.contains("ISTAT"),
        "{}",
        bad_istat.stderr
    );
    let mut relay = relay;
    relay.start()?;
    let a = Node::init(&relay, CAGLIARI, "comune")?;
    let bad_cup = a.cmd(&["project", "add", "--cup", "F21B2100031", "--title", "x"])?;
    assert_ne!(bad_cup.code, Some(0));
    assert!(
        bad_cup.stderr.contains("--cup") && bad_cup.stderr.contains("CUP"),
        "{}",
        bad_cup.stderr
    );
    let bad_amount = a.cmd(&[
        "project",
        "add",
        "--cup",
        "F21B21000310006",
        "--title",
        "x",
        "--cost-eur",
        "1.234",
    ])?;
    assert!(
        bad_amount.stderr.contains("--cost-eur"),
        "{}",
        bad_amount.stderr
    );
    assert_eq!(
        a.status()?["outbox_pending"],
        0,
        "refused input stores nothing"
    );
    Ok(())
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}

/// Issue 11.5: without an admin a key can be removed from the relay's
/// allowlist; what it wrote before stays, nodes place its authors with the
/// list the relay serves, and the removed key can no longer sync.
#[test]
fn a_key_removed_from_the_allowlist_writes_no_more_and_keeps_its_history() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let a = Node::admitted(&relay, CAGLIARI, "comune")?;
    let b = Node::admitted(&relay, QUARTU, "comune")?;
    b.add("H81B22000120001", "Prima della rimozione")?;
    b.sync()?.ok()?;
    a.add("F21B21000310006", "Mercato")?;
    a.sync()?.ok()?;

    let relay_cmd = |args: &[&str]| {
        let mut all = args.to_vec();
        let dir = accordo_tests::path(relay.dir.path());
        all.extend(["--dir", dir.as_str()]);
        accordo_tests::run(&accordo_tests::relay_bin(), &all)
    };
    let removed = relay_cmd(&["remove", "--node", &b.id])?.ok()?;
    assert!(
        removed.stdout.contains("can no longer connect"),
        "{}",
        removed.stdout
    );
    let again = relay_cmd(&["remove", "--node", &b.id])?;
    assert_ne!(again.code, Some(0), "a key removed twice is an error");
    let members = relay_cmd(&["members", "--format", "json"])?.ok()?.json()?;
    assert!(!members.to_string().contains(&b.id), "{members}");

    b.add("H88I22000050006", "Dopo la rimozione")?;
    assert_eq!(b.sync()?.code, Some(4), "a removed key is not admitted");

    // A metro node created afterwards still places the removed key's history.
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    metro.sync()?.ok()?;
    let mut titles: Vec<String> = metro.projects(true)?.into_iter().map(|p| p.2).collect();
    titles.sort();
    assert_eq!(
        titles,
        vec!["Mercato".to_owned(), "Prima della rimozione".to_owned()]
    );
    assert_eq!(metro.status()?["quarantined"], 0);
    Ok(())
}
