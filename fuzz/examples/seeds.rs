//! Writes the seed corpus: small valid inputs for every byte-level fuzz
//! target, built with the real encoders and real signatures, so the fuzzer
//! starts from messages that get past decoding and verification.
//!
//! Run from the repository root (changes are committed at time 0, so the
//! output is the same on every run):
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```
//!
//! The structured targets (`log_admission`, `registry_derive`) take
//! `arbitrary` input; their seeds are inputs kept from fuzzing runs.

use accordo_fuzz::{comune_doc, frame, id, key, relay_fixture, Author, COMUNE, NETWORK};
use accordo_protocol::authority::Member;
use accordo_protocol::doc::DocId;
use accordo_protocol::identity::{RelayAddr, Role};
use accordo_protocol::log::{serve_sync, LogStore};
use accordo_protocol::registry::{Cut, CutEntry, Invite, RegistryRole, Statement};
use accordo_protocol::wire::{
    Cursor, ErrorCode, Hello, HelloAck, LogEpoch, RedeemAck, RedeemRequest, Request, Response,
    Scope, SyncRequest, LOG_EPOCH_BYTES,
};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ObjType, ROOT};
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("seed written");
}

fn invite() -> Invite {
    let relay = RelayAddr {
        id: id(7),
        host_port: "relay.example.org:4433".into(),
    };
    let comune = COMUNE.parse().expect("six digits");
    Invite::sign(
        &key(0),
        NETWORK,
        &relay,
        comune,
        Role::Comune,
        1_900_000_000_000,
        [9; 16],
    )
}

fn sync_request(
    push: Vec<accordo_protocol::envelope::SignedChange>,
    cursors: Vec<(Scope, u64)>,
) -> SyncRequest {
    SyncRequest {
        push,
        cursors: cursors
            .into_iter()
            .map(|(scope, after_seq)| Cursor { scope, after_seq })
            .collect(),
        max_response_bytes: 4096,
        wait_ms: 0,
    }
}

fn main() {
    let fixture = relay_fixture();
    let other = DocId::Comune("092051".parse().expect("six digits"));

    // Requests: hello, a sync pushing a change that extends the relay's log,
    // a sync pushing changes the relay refuses, a redemption.
    let hello = Request::Hello(Hello {
        protocol_version: accordo_protocol::PROTOCOL_VERSION,
        network: NETWORK.into(),
        software: "accordo 0.1.0".into(),
    });
    let comune_sync = sync_request(
        vec![fixture.fresh[0].clone()],
        vec![(Scope::Doc(comune_doc()), 1), (Scope::Doc(DocId::Plan), 0)],
    );
    let refused_sync = sync_request(fixture.fresh[1..].to_vec(), vec![(Scope::All, 2)]);
    let metro_pull = sync_request(
        Vec::new(),
        vec![(Scope::All, 0), (Scope::Doc(other.clone()), 3)],
    );
    let mut invited = Author::new(5, 0);
    let redeem_change = invited.statement(&Statement::Redeem { invite: invite() });
    let redeem = Request::Redeem(RedeemRequest {
        network: NETWORK.into(),
        change: redeem_change.clone(),
    });
    write("wire_request", "hello", &hello.encode());
    write(
        "wire_request",
        "sync_push",
        &Request::Sync(comune_sync.clone()).encode(),
    );
    write("wire_request", "redeem", &redeem.encode());
    write(
        "relay_sync",
        "comune_push_and_pull",
        &Request::Sync(comune_sync.clone()).encode(),
    );
    write(
        "relay_sync",
        "refused_pushes",
        &Request::Sync(refused_sync).encode(),
    );
    write(
        "relay_sync",
        "metro_pull",
        &Request::Sync(metro_pull.clone()).encode(),
    );
    let mut small = metro_pull.clone();
    small.max_response_bytes = 1;
    write(
        "relay_sync",
        "metro_pull_small_budget",
        &Request::Sync(small).encode(),
    );

    // Responses, served by the relay fixture.
    let serve = |req: &SyncRequest| {
        let mut log = fixture.log.clone();
        let verified = req.push.iter().cloned().map(|c| c.verify()).collect();
        serve_sync(&mut log, &fixture.members, req, verified).expect("MemLog is infallible")
    };
    let pulled_all = serve(&metro_pull);
    let pulled_comune = serve(&comune_sync);
    let hello_ack = Response::HelloAck(HelloAck {
        relay: id(7),
        member: Member {
            node: id(1),
            comune: COMUNE.parse().expect("six digits"),
            role: Role::Comune,
        },
        head_seq: fixture.log.head_seq().expect("MemLog is infallible"),
    });
    let error = Response::error(ErrorCode::NotAdmitted, "this key is not a member");
    let redeemed = Response::Redeemed(RedeemAck {
        hash: redeem_change.verify().expect("verifies").hash,
    });
    write("wire_response", "hello_ack", &hello_ack.encode());
    write(
        "wire_response",
        "sync",
        &Response::Sync(pulled_comune.clone()).encode(),
    );
    write("wire_response", "error", &error.encode());
    write("wire_response", "redeemed", &redeemed.encode());
    write(
        "wire_response",
        "log_epoch",
        &Response::LogEpoch(LogEpoch { epoch: [0xab; LOG_EPOCH_BYTES] }).encode(),
    );
    write("wire_request", "log_epoch", &Request::LogEpoch.encode());

    // Sync session: config byte (cursor layout), then u16-framed responses.
    let all = Response::Sync(pulled_all.clone()).encode();
    let comune = Response::Sync(pulled_comune).encode();
    write(
        "sync_session",
        "metro_pull_then_repeat",
        &[&[0u8][..], &frame(&[all.clone(), all])].concat(),
    );
    write(
        "sync_session",
        "comune_pull",
        &[&[2u8][..], &frame(&[comune])].concat(),
    );
    let mut regressed = pulled_all;
    regressed.head_seq = 0;
    regressed.entries.clear();
    let regressed = Response::Sync(regressed).encode();
    write(
        "sync_session",
        "regressed_relay",
        &[&[(4 << 2) | 1u8][..], &frame(&[regressed])].concat(),
    );

    // Envelopes: a first change, one with a dependency, a registry statement.
    let mut a = Author::new(1, 0);
    let first = a.edit(comune_doc(), "title", "Scuola");
    let second = a.edit(comune_doc(), "amount_cents", "120000");
    let mut admin = Author::new(0, 0);
    let genesis = admin.statement(&Statement::Genesis {
        network: NETWORK.into(),
        admins: vec![admin.id()],
    });
    let enc = |e| postcard::to_stdvec(e).expect("encodes");
    write("envelope", "first_change", &enc(&first));
    write("envelope", "dependent_change", &enc(&second));
    write("envelope", "registry_genesis", &enc(&genesis));

    // A bundle of one author's edits (wire v2's codec), and the bundles on
    // which automerge 0.12 panics or allocates 1 GiB (from `envelope`).
    let mut b = Author::new(2, 0);
    for i in 0..12 {
        b.edit(comune_doc(), "title", &format!("Scuola {i}"));
    }
    let hashes: Vec<_> = b.doc.get_changes(&[]).iter().map(|c| c.hash()).collect();
    let bundle = b.doc.bundle(hashes).expect("the changes are held");
    write("bundle", "twelve_edits", bundle.bytes());
    // The same edits as wire v2 units, raw and bundled.
    let changes = b.doc.get_changes(&[]);
    for (name, bundled) in [("raw", None), ("bundled", Some(bundle.bytes().to_vec()))] {
        let unit = accordo_protocol::unit::Unit::seal(
            comune_doc(),
            &b.key,
            vec![b.nonce],
            &changes,
            bundled,
        );
        write("unit", name, &postcard::to_stdvec(&unit).expect("encodes"));
    }
    let hex_seeds = [
        (
            "crash_automerge_bundle_panic",
            "856f4a83c5c15531035f000100000123020080282a9ff469a26cd00996e7cdd5f167f9ca\
             3f75a3e087109d000200004c4a83c5c1553103ee37a25df60f5b8fc9b3940000000000000000000000\
             0000000069856f4a83c5656e7473017f017f663036303000000031",
        ),
        (
            "crash_automerge_bundle_alloc",
            "856f4a83c5c15531035f000100000123288002012a9ff469a29a2ff669e7cacdd53f67f9f1\
             75a3e087109d000200004c4a83c5c155314e3666757a7a6572313246757a7a65724472697665724550\
             6950505069856f4a83c5656e7473017f017f663036303000000a31",
        ),
    ];
    for (name, hex) in hex_seeds {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        write("bundle", name, &bytes);
    }

    // Text forms.
    let texts: [(&str, String); 9] = [
        ("node_id", id(1).to_string()),
        ("relay_addr", format!("{}@relay.example.org:4433", id(7))),
        ("relay_addr_v6", format!("{}@[::1]:4433", id(7))),
        ("istat", COMUNE.into()),
        ("cup", "J51B21000120006".into()),
        ("doc_comune", comune_doc().to_string()),
        ("doc_plan", "plan".into()),
        ("doc_registry", "registry".into()),
        ("role", "metro".into()),
    ];
    for (name, text) in texts {
        write("text_ids", name, text.as_bytes());
    }
    write(
        "text_ids",
        "postcard_doc",
        &postcard::to_stdvec(&comune_doc()).expect("encodes"),
    );

    // Registry text forms: one statement of each kind, a signed token.
    let cut = Cut(vec![CutEntry {
        doc: comune_doc(),
        actor: [3; 16],
        max_seq: 4,
    }]);
    let statements = [
        (
            "genesis",
            Statement::Genesis {
                network: NETWORK.into(),
                admins: vec![id(0)],
            },
        ),
        (
            "enroll",
            Statement::Enroll {
                node: id(1),
                comune: COMUNE.parse().expect("six digits"),
                role: RegistryRole::Comune,
            },
        ),
        (
            "revoke",
            Statement::Revoke {
                node: id(1),
                cut: cut.clone(),
            },
        ),
        ("rotate", Statement::Rotate { new: id(4), cut }),
        ("redeem", Statement::Redeem { invite: invite() }),
        (
            "add_relay",
            Statement::AddRelay {
                relay: id(7),
                addr: "relay.example.org:4433".into(),
            },
        ),
    ];
    for (name, s) in statements {
        write("registry_text", name, s.to_message().as_bytes());
    }
    write(
        "registry_text",
        "invite_token",
        invite().to_token().as_bytes(),
    );

    // Key files: as `create` writes them, and upper case with blanks.
    let digits: String = key(1)
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    write("keyfile", "as_written", format!("{digits}\n").as_bytes());
    write(
        "keyfile",
        "upper_blanks",
        format!("  {}\r\n", digits.to_uppercase()).as_bytes(),
    );

    apply_changes_seeds();
    println!("seeds written under {}/corpus", env!("CARGO_MANIFEST_DIR"));
}

/// Changes of a comune document by two offices that learnt of each other:
/// in log order, and reversed (automerge queues what it cannot apply yet).
fn apply_changes_seeds() {
    let (mut a, mut b) = (Author::new(1, 0), Author::new(2, 0));
    let mut changes = vec![a.edit(comune_doc(), "title", "Scuola")];
    b.learn(&mut a);
    changes.push(b.edit(comune_doc(), "cup", "F21B21000310001"));
    changes.push(a.edit(comune_doc(), "title", "Scuola media"));
    let bytes: Vec<Vec<u8>> = changes.iter().map(|c| c.change.clone()).collect();
    write("apply_changes", "one", &frame(&bytes[..1]));
    write("apply_changes", "two_offices", &frame(&bytes));
    let reversed: Vec<Vec<u8>> = bytes.iter().rev().cloned().collect();
    write("apply_changes", "reversed", &frame(&reversed));
    // A change that inserts into a list it never made (its creation cut
    // out): automerge 0.12 panics applying it; the node's guard refuses it.
    let list = a
        .doc
        .put_object(ROOT, "phases", ObjType::List)
        .expect("a list at the root");
    a.doc.insert(&list, 0, "progettazione").expect("insert");
    a.doc
        .commit_with(CommitOptions::default().with_time(0))
        .expect("the insert makes a change");
    let mut expanded = a.doc.get_last_local_change().expect("committed").decode();
    expanded.operations.remove(0);
    let hostile = automerge::Change::from(expanded);
    write(
        "apply_changes",
        "insert_into_missing_list",
        &frame(&[
            bytes[0].clone(),
            bytes[2].clone(),
            hostile.raw_bytes().to_vec(),
        ]),
    );
}
