//! End-to-end trust: a network governed by a signed registry, with the real
//! binaries — invitations, revocation with a causal cut, key rotation,
//! audit and verify.

use accordo_tests::{wait_until, Node, Relay};
use anyhow::{Context, Result};
use serde_json::Value;
use std::time::Duration;

const CAGLIARI: &str = "092009";
const QUARTU: &str = "092051";

fn governed() -> Result<(Relay, Node)> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let admin = Node::admin(&relay)?;
    Ok((relay, admin))
}

fn invited(admin: &Node, comune: &str, role: &str) -> Result<Node> {
    let token = admin.invite(comune, role, "1h")?;
    let (run, node) = Node::from_invite(&token)?;
    node.with_context(|| format!("init --invite failed: {}", run.stderr))
}

fn member<'a>(members: &'a Value, id: &str) -> Option<&'a Value> {
    members.as_array()?.iter().find(|m| m["node"] == id)
}

#[test]
fn invitations_enroll_once_and_forged_or_expired_tokens_are_refused() -> Result<()> {
    let (relay, admin) = governed()?;
    let token = admin.invite(CAGLIARI, "comune", "1h")?;
    let (_, node) = Node::from_invite(&token)?;
    let node = node.context("first redemption")?;
    node.add("F21B21000310006", "Mercato San Benedetto")?;
    node.sync()?.ok()?;

    // The same token again: refused by the relay, nothing left behind.
    let (reused, none) = Node::from_invite(&token)?;
    assert!(none.is_none());
    assert_eq!(reused.code, Some(5), "{}", reused.stderr);
    assert!(
        reused.stderr.contains("already redeemed"),
        "{}",
        reused.stderr
    );
    assert_eq!(reused.stderr.lines().count(), 1, "{}", reused.stderr);

    // A token altered in transit (here: the comune inside it) fails its signature.
    let body = token.trim_start_matches("accordo-invite-v1-");
    let mut bytes = hex_decode(body);
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    let forged = format!("accordo-invite-v1-{}", hex_encode(&bytes));
    let (out, none) = Node::from_invite(&forged)?;
    assert!(none.is_none());
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("forged or altered") || out.stderr.contains("damaged"),
        "{}",
        out.stderr
    );

    // An expired token is refused before anything is created.
    let expired = admin.invite(QUARTU, "comune", "1ms")?;
    let (out, none) = Node::from_invite(&expired)?;
    assert!(none.is_none());
    assert!(out.stderr.contains("expired"), "{}", out.stderr);

    // The metro office, invited too, sees the comune's project.
    let metro = invited(&admin, CAGLIARI, "metro")?;
    metro.sync()?.ok()?;
    let all = metro.projects(true)?;
    assert_eq!(all.len(), 1, "{all:?}");
    admin
        .cmd(&["admin", "add-relay", "--relay", &relay.address()])?
        .ok()?;
    admin.sync()?.ok()?;
    let members = admin
        .cmd(&["admin", "members", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(
        member(&members, &relay.id).context("relay")?["role"],
        "relay"
    );
    // The relay key, announced, still writes nothing and is no member.
    let relay_members = accordo_tests::run(
        &accordo_tests::relay_bin(),
        &[
            "members",
            "--dir",
            &accordo_tests::path(relay.dir.path()),
            "--format",
            "json",
        ],
    )?
    .ok()?
    .json()?;
    assert!(member(&relay_members, &node.id).is_some());
    assert!(member(&relay_members, &relay.id).is_none());
    assert_eq!(
        member(&members, &node.id).context("node")?["status"],
        "active"
    );
    assert_eq!(
        member(&members, &metro.id).context("metro")?["role"],
        "metro"
    );
    Ok(())
}

#[test]
fn a_revoked_key_is_cut_off_and_its_late_changes_are_refused_everywhere() -> Result<()> {
    let (_relay, admin) = governed()?;
    let office = invited(&admin, CAGLIARI, "comune")?;
    let honest = invited(&admin, QUARTU, "comune")?;
    let metro = invited(&admin, CAGLIARI, "metro")?;
    office.add("F21B21000310006", "Prima del taglio")?;
    office.sync()?.ok()?;
    admin.sync()?.ok()?;

    // Concurrently: the office writes offline, and the admin (who holds only
    // the first change) revokes the key on local knowledge.
    office.add("F27H21001230006", "Dopo il taglio")?;
    let revoked = admin
        .cmd(&["admin", "revoke", "--node", &office.id, "--offline"])?
        .ok()?;
    assert!(
        revoked.stdout.contains("on local knowledge")
            // its redemption of the invitation and its first project
            && revoked.stdout.contains("the 2 change(s) of it held here stay valid"),
        "{}",
        revoked.stdout
    );
    // The late change reaches the relay before the revocation does...
    office.sync()?.ok()?;
    // ...and the revocation then invalidates it everywhere.
    admin.sync()?.ok()?;

    let refused = office.sync()?;
    assert_eq!(refused.code, Some(4), "revoked: not admitted any more");
    assert!(
        refused.stderr.contains("no longer admitted") || refused.stderr.contains("not admitted")
    );

    metro.sync()?.ok()?;
    let seen: Vec<String> = metro.projects(true)?.into_iter().map(|p| p.2).collect();
    assert_eq!(seen, vec!["Prima del taglio".to_owned()]);
    let verify = metro.cmd(&["verify", "--format", "json"])?;
    assert_eq!(verify.code, Some(1), "the late change is reported");
    let report = verify.json()?;
    let findings = report["findings"].as_array().context("findings")?;
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0]["author"], office.id);
    assert!(findings[0]["problem"]
        .as_str()
        .unwrap_or("")
        .contains("retired"));

    // Honest nodes keep working.
    honest.add("H81B22000120001", "Pista ciclabile")?;
    honest.sync()?.ok()?;
    metro.sync()?.ok()?;
    assert_eq!(metro.projects(true)?.len(), 2);
    Ok(())
}

#[test]
fn rotation_keeps_old_history_valid_and_audit_names_both_keys() -> Result<()> {
    let (_relay, admin) = governed()?;
    let office = invited(&admin, CAGLIARI, "comune")?;
    let metro = invited(&admin, CAGLIARI, "metro")?;
    office.add("F21B21000310006", "Mercato")?;
    office.sync()?.ok()?;
    let old_id = office.id.clone();
    let new_id = office.cmd(&["key", "rotate"])?.ok()?.last_line();
    assert_ne!(new_id, old_id);
    assert_eq!(office.cmd(&["id"])?.ok()?.last_line(), new_id);
    office
        .cmd(&[
            "project",
            "set",
            "F21B21000310006",
            "--title",
            "Mercato restaurato",
        ])?
        .ok()?;
    office.sync()?.ok()?;

    metro.sync()?.ok()?;
    metro.cmd(&["verify"])?.ok()?;
    let audit = metro
        .cmd(&[
            "audit",
            "F21B21000310006",
            "--comune",
            CAGLIARI,
            "--format",
            "json",
        ])?
        .ok()?
        .json()?;
    let rows = audit.as_array().context("audit rows")?;
    let authors: Vec<&str> = rows.iter().filter_map(|r| r["author"].as_str()).collect();
    assert_eq!(authors, vec![old_id.as_str(), new_id.as_str()]);
    for r in rows {
        assert_eq!(r["valid"], true, "{r}");
        assert_eq!(r["signature_valid"], true);
        assert_eq!(r["comune"], CAGLIARI);
    }
    assert!(rows[1]["fields"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "title")));

    admin.sync()?.ok()?;
    let members = admin
        .cmd(&["admin", "members", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(
        member(&members, &old_id).context("old")?["status"],
        "rotated"
    );
    assert_eq!(
        member(&members, &new_id).context("new")?["status"],
        "active"
    );
    Ok(())
}

/// A running `accordo run` takes up the key `key rotate` installed, without
/// a restart: edits signed by the new key reach the relay through it.
#[test]
fn a_running_node_takes_up_its_rotated_key() -> Result<()> {
    let (_relay, admin) = governed()?;
    let office = invited(&admin, CAGLIARI, "comune")?;
    let metro = invited(&admin, CAGLIARI, "metro")?;
    let mut running = office.spawn_run()?;
    let result = (|| {
        office.add("F21B21000310006", "Mercato")?;
        let new_id = office.cmd(&["key", "rotate"])?.ok()?.last_line();
        office
            .cmd(&[
                "project",
                "set",
                "F21B21000310006",
                "--title",
                "Mercato nuovo",
            ])?
            .ok()?;
        wait_until(Duration::from_secs(20), || {
            metro.sync()?.ok()?;
            Ok(metro.projects(true)?.iter().any(|p| p.2 == "Mercato nuovo"))
        })?;
        assert_eq!(office.status()?["outbox_pending"], 0);
        let audit = metro
            .cmd(&[
                "audit",
                "F21B21000310006",
                "--comune",
                CAGLIARI,
                "--format",
                "json",
            ])?
            .ok()?
            .json()?;
        let last = audit
            .as_array()
            .and_then(|a| a.last())
            .context("audit rows")?;
        assert_eq!(last["author"], new_id.as_str());
        anyhow::Ok(())
    })();
    let _ = running.kill();
    let _ = running.wait();
    result
}

/// Issue 11.1: an admin that has not pulled a comune's latest changes
/// revokes its key; what the network accepted from that key stays valid.
#[test]
fn revoking_a_key_keeps_what_the_network_accepted_from_it() -> Result<()> {
    let (mut relay, admin) = governed()?;
    let office = invited(&admin, CAGLIARI, "comune")?;
    let metro = invited(&admin, CAGLIARI, "metro")?;
    admin.sync()?.ok()?;
    // The office writes and syncs; the metro receives it; the admin does not sync.
    office.add("F21B21000310006", "Accettato dalla rete")?;
    office.sync()?.ok()?;
    metro.sync()?.ok()?;

    let revoked = admin
        .cmd(&["admin", "revoke", "--node", &office.id])?
        .ok()?;
    assert!(
        revoked
            .stdout
            // its redemption of the invitation and the project
            .contains("the 2 change(s) of it the network had accepted stay valid")
            && revoked.stdout.contains("0 change(s) it made concurrently"),
        "{}",
        revoked.stdout
    );
    metro.sync()?.ok()?;
    let seen: Vec<String> = metro.projects(true)?.into_iter().map(|p| p.2).collect();
    assert_eq!(seen, vec!["Accettato dalla rete".to_owned()]);
    metro.cmd(&["verify"])?.ok()?;
    // The key itself is cut off.
    assert_eq!(office.sync()?.code, Some(4));

    // Without the relay, an admin refuses to revoke on stale knowledge...
    let other = invited(&admin, QUARTU, "comune")?;
    admin.sync()?.ok()?;
    other.add("H81B22000120001", "Pista ciclabile")?;
    other.sync()?.ok()?;
    relay.stop()?;
    let refused = admin.cmd(&["admin", "revoke", "--node", &other.id, "--timeout-s", "2"])?;
    assert_eq!(refused.code, Some(3), "{}", refused.stderr);
    assert!(refused.stderr.contains("--offline"), "{}", refused.stderr);
    let members = admin
        .cmd(&["admin", "members", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(
        member(&members, &other.id).context("other")?["status"],
        "active",
        "nothing was signed"
    );
    // ...and with --offline says what it does not know, then sync counts it.
    let offline = admin
        .cmd(&["admin", "revoke", "--node", &other.id, "--offline"])?
        .ok()?;
    assert!(
        offline
            .stdout
            .contains("the 1 change(s) of it held here stay valid"),
        "{}",
        offline.stdout
    );
    relay.start()?;
    let synced = admin.sync()?.ok()?;
    assert!(
        synced
            .stdout
            .contains("1 change(s) held are invalid under the registry"),
        "{}",
        synced.stdout
    );
    Ok(())
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect()
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
