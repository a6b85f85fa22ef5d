//! End-to-end anchor rotation (issue 13): a governed network whose founding
//! anchor is replaced. Every node and the relay keep the anchor they pinned
//! and follow the registry from it to the new one; the old anchor's
//! statements after its cut are refused by the relay and by every node.

use accordo_tests::{accordo_bin, path, run, Node, Relay};
use anyhow::{Context, Result};
use serde_json::Value;

const CAGLIARI: &str = "092009";
const QUARTU: &str = "092051";

fn member<'a>(members: &'a Value, id: &str) -> Option<&'a Value> {
    members.as_array()?.iter().find(|m| m["node"] == id)
}

/// A node created with `init --admin ANCHOR`: it pins that anchor only.
fn pinned_node(relay: &Relay, comune: &str, anchor: &str) -> Result<Node> {
    let dir = tempfile::tempdir()?;
    let id = run(
        &accordo_bin(),
        &[
            "init",
            "--dir",
            &path(dir.path()),
            "--comune",
            comune,
            "--relay",
            &relay.address(),
            "--admin",
            anchor,
        ],
    )?
    .ok()?
    .last_line();
    Ok(Node { dir, id })
}

/// `admin join`: an admin directory that pins `anchor`.
fn joined_admin(relay: &Relay, anchor: &str) -> Result<Node> {
    let dir = tempfile::tempdir()?;
    let id = run(
        &accordo_bin(),
        &[
            "admin",
            "join",
            "--dir",
            &path(dir.path()),
            "--relay",
            &relay.address(),
            "--anchor",
            anchor,
        ],
    )?
    .ok()?
    .last_line();
    Ok(Node { dir, id })
}

fn members(node: &Node) -> Result<Value> {
    node.cmd(&["admin", "members", "--format", "json"])?
        .ok()?
        .json()
}

#[test]
fn a_new_anchor_takes_over_and_the_retired_ones_late_statements_are_refused() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let old = Node::admin(&relay)?;
    let office = pinned_node(&relay, CAGLIARI, &old.id)?;
    let metro = {
        let token = old.invite(CAGLIARI, "metro", "1h")?;
        let (out, node) = Node::from_invite(&token)?;
        node.with_context(|| format!("init --invite: {}", out.stderr))?
    };
    old.cmd(&[
        "admin", "enroll", "--node", &office.id, "--comune", CAGLIARI,
    ])?
    .ok()?;
    old.sync()?.ok()?;

    // The new anchor: a fresh admin directory trusting the old one, added by it.
    let new = joined_admin(&relay, &old.id)?;
    let early = new.sync()?;
    assert_eq!(early.code, Some(4), "not yet admitted: {}", early.stderr);
    old.cmd(&["admin", "add-anchor", "--key", &new.id])?.ok()?;
    // An anchor key cannot be revoked like a member key.
    let revoke = old.cmd(&["admin", "revoke", "--node", &new.id, "--offline"])?;
    assert_ne!(revoke.code, Some(0));
    assert!(revoke.stderr.contains("retire-anchor"), "{}", revoke.stderr);
    old.sync()?.ok()?;
    new.sync()?.ok()?;
    let listed = members(&new)?;
    assert_eq!(member(&listed, &new.id).context("new")?["anchor"], true);
    assert_eq!(member(&listed, &old.id).context("old")?["anchor"], true);

    // Meanwhile the old anchor enrolls a comune key, which writes; the new
    // anchor has not pulled either and retires the old one on what it holds.
    let late = pinned_node(&relay, QUARTU, &old.id)?;
    old.cmd(&["admin", "enroll", "--node", &late.id, "--comune", QUARTU])?
        .ok()?;
    old.sync()?.ok()?;
    late.add("F27H21001230006", "Fuori dal taglio")?;
    late.sync()?.ok()?;
    let retired = new
        .cmd(&["admin", "retire-anchor", "--key", &old.id, "--offline"])?
        .ok()?;
    assert!(
        retired.stdout.contains("retired anchor"),
        "{}",
        retired.stdout
    );
    new.sync()?.ok()?;
    // The last active anchor cannot retire itself.
    let last = new.cmd(&["admin", "retire-anchor", "--key", &new.id, "--offline"])?;
    assert_ne!(last.code, Some(0));
    assert!(
        last.stderr.contains("last active anchor"),
        "{}",
        last.stderr
    );

    // The new anchor enrolls a comune key whose node pinned the old anchor:
    // it follows the chain and syncs.
    let joiner = pinned_node(&relay, CAGLIARI, &old.id)?;
    new.cmd(&[
        "admin", "enroll", "--node", &joiner.id, "--comune", CAGLIARI,
    ])?
    .ok()?;
    new.sync()?.ok()?;
    joiner.add("F21B21000310006", "Dal nuovo anchor")?;
    joiner.sync()?.ok()?;

    // The relay: the old anchor and the key it enrolled past its cut can no
    // longer connect; a statement the old anchor signs now never lands.
    old.cmd(&["admin", "add-relay", "--relay", &relay.address()])?
        .ok()?;
    let refused = old.sync()?;
    assert_eq!(
        refused.code,
        Some(4),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    assert_eq!(late.sync()?.code, Some(4));
    let relay_members = run(
        &accordo_tests::relay_bin(),
        &[
            "members",
            "--dir",
            &path(relay.dir.path()),
            "--format",
            "json",
        ],
    )?
    .ok()?
    .json()?;
    assert!(member(&relay_members, &old.id).is_none(), "{relay_members}");
    assert!(member(&relay_members, &late.id).is_none());
    assert!(member(&relay_members, &joiner.id).is_some());

    // An invitation signed by the new anchor carries the anchors it pins
    // (the old one): the invitee trusts the same root as everyone else, so
    // it accepts what the old anchor enrolled before its cut.
    let token = new.invite(CAGLIARI, "comune", "1h")?;
    assert!(token.starts_with("accordo-invite-v2-"), "{token}");
    let (out, invitee) = Node::from_invite(&token)?;
    let invitee = invitee.with_context(|| format!("init --invite: {}", out.stderr))?;
    invitee.sync()?.ok()?;
    let listed = members(&invitee)?;
    assert_eq!(member(&listed, &old.id).context("old")?["pinned"], true);
    assert_eq!(
        member(&listed, &office.id).context("office")?["status"],
        "active"
    );
    let invitee_seen: Vec<String> = invitee.projects(true)?.into_iter().map(|p| p.2).collect();
    assert!(
        invitee_seen.iter().any(|t| t == "Dal nuovo anchor"),
        "{invitee_seen:?}"
    );

    // Every node, pinned with the old anchor only, agrees.
    for node in [&office, &metro] {
        node.sync()?.ok()?;
        let listed = members(node)?;
        let o = member(&listed, &old.id).context("old anchor")?;
        assert_eq!(o["anchor"], false, "{o}");
        assert_eq!(o["status"], "revoked", "{o}");
        assert_eq!(member(&listed, &new.id).context("new")?["anchor"], true);
        assert_eq!(
            member(&listed, &joiner.id).context("joiner")?["status"],
            "active"
        );
        // The old anchor's enrollment past its cut is refused, and with it
        // the key it enrolled.
        assert!(member(&listed, &late.id).is_none(), "{listed}");
    }
    let seen: Vec<String> = metro.projects(true)?.into_iter().map(|p| p.2).collect();
    assert!(seen.iter().any(|t| t == "Dal nuovo anchor"), "{seen:?}");
    assert!(!seen.iter().any(|t| t == "Fuori dal taglio"), "{seen:?}");
    let office_seen: Vec<String> = office.projects(true)?.into_iter().map(|p| p.2).collect();
    assert!(
        office_seen.iter().any(|t| t == "Dal nuovo anchor"),
        "{office_seen:?}"
    );
    // `verify` names what it refused: the late enrollment (the late key's
    // change, by a key the node cannot place, is held apart, never shown).
    let verify = metro.cmd(&["verify", "--format", "json"])?;
    assert_eq!(verify.code, Some(1), "{}", verify.stdout);
    let findings = verify.json()?;
    let authors: Vec<&str> = findings["findings"]
        .as_array()
        .or(findings.as_array())
        .context("findings")?
        .iter()
        .filter_map(|f| f["author"].as_str())
        .collect();
    assert!(authors.contains(&old.id.as_str()), "{findings}");
    assert!(
        findings.to_string().contains("outside its cut"),
        "{findings}"
    );
    Ok(())
}

/// `key rotate` on an anchor's node: the new key is an anchor, every node
/// follows, and the rotated-out key is retired.
#[test]
fn an_anchor_rotates_its_own_key() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let admin = Node::admin(&relay)?;
    let old_id = admin.id.clone();
    let office = pinned_node(&relay, CAGLIARI, &old_id)?;
    let new_id = admin.cmd(&["key", "rotate"])?.ok()?.last_line();
    assert_ne!(new_id, old_id);
    admin
        .cmd(&[
            "admin", "enroll", "--node", &office.id, "--comune", CAGLIARI,
        ])?
        .ok()?;
    admin.sync()?.ok()?;
    office.add("F21B21000310006", "Dopo la rotazione")?;
    office.sync()?.ok()?;
    let listed = members(&office)?;
    assert_eq!(member(&listed, &new_id).context("new")?["anchor"], true);
    let old = member(&listed, &old_id).context("old")?;
    assert_eq!(old["status"], "rotated", "{old}");
    assert_eq!(old["anchor"], false);
    assert_eq!(old["pinned"], true);
    office.cmd(&["verify"])?.ok()?;
    Ok(())
}
