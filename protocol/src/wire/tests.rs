//! Wire format tests: exact-byte snapshots (an accidental format change fails
//! loudly), proptest round trips, and decoders fed arbitrary bytes.

use super::*;
use crate::authority::{AuthorityError, Member};
use crate::identity::Role;
use ed25519_dalek::Signature;
use expect_test::{expect, Expect};
use proptest::prelude::*;

fn sample_change(seed: u8) -> SignedChange {
    SignedChange {
        doc: DocId::Comune("092009".parse().unwrap()),
        author: NodeId([seed; 32]),
        actor_nonce: [seed + 1; 16],
        change: vec![0x85, 0x6f, 0x4a, 0x83, seed],
        signature: Signature::from_bytes(&[seed + 2; 64]),
    }
}

fn check_request(req: Request, expect: Expect) {
    let bytes = req.encode();
    expect.assert_eq(&hex::encode(&bytes));
    assert_eq!(Request::decode(&bytes).unwrap(), req);
}

fn check_response(resp: Response, expect: Expect) {
    let bytes = resp.encode();
    expect.assert_eq(&hex::encode(&bytes));
    assert_eq!(Response::decode(&bytes).unwrap(), resp);
}

#[test]
fn hello_bytes() {
    check_request(
        Request::Hello(Hello {
            protocol_version: 1,
            network: "cagliari".into(),
            software: "accordo 0.1".into(),
        }),
        expect!["000001086361676c696172690b6163636f72646f20302e31"],
    );
}

#[test]
fn sync_request_bytes() {
    check_request(
        Request::Sync(SyncRequest {
            push: vec![sample_change(1)],
            cursors: vec![
                Cursor {
                    scope: Scope::Doc(DocId::Plan),
                    after_seq: 300,
                },
                Cursor {
                    scope: Scope::All,
                    after_seq: 0,
                },
            ],
            max_response_bytes: 4096,
            wait_ms: 250,
        }),
        expect!["000101010630393230303901010101010101010101010101010101010101010101010101010101010101010202020202020202020202020202020205856f4a83014003030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303020100ac0200008020fa01"],
    );
}

#[test]
fn hello_ack_bytes() {
    check_response(
        Response::HelloAck(HelloAck {
            relay: NodeId([7; 32]),
            member: Member {
                node: NodeId([8; 32]),
                comune: "083048".parse().unwrap(),
                role: Role::Metro,
            },
            head_seq: 42,
        }),
        expect!["00000707070707070707070707070707070707070707070707070707070707070707080808080808080808080808080808080808080808080808080808080808080806303833303438012a"],
    );
}

#[test]
fn sync_response_bytes() {
    check_response(
        Response::Sync(SyncResponse {
            acks: vec![ChangeHash([3; 32])],
            rejects: vec![
                Rejected {
                    index: 1,
                    hash: Some(ChangeHash([4; 32])),
                    reason: RejectReason::Unauthorized(AuthorityError::NotMetro(NodeId([5; 32]))),
                },
                Rejected {
                    index: 2,
                    hash: None,
                    reason: RejectReason::Envelope("signature does not verify".into()),
                },
            ],
            head_seq: 9,
            progress: vec![CursorProgress {
                scope: Scope::Doc(DocId::Plan),
                reached: 9,
            }],
            entries: vec![LogEntry {
                seq: 8,
                change: sample_change(2),
            }],
        }),
        expect!["0001010303030303030303030303030303030303030303030303030303030303030303020101040404040404040404040404040404040404040404040404040404040404040401020505050505050505050505050505050505050505050505050505050505050505020000197369676e617475726520646f6573206e6f742076657269667909010100090108010630393230303902020202020202020202020202020202020202020202020202020202020202020303030303030303030303030303030305856f4a83024004040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404040404"],
    );
}

#[test]
fn redeem_bytes() {
    let mut change = sample_change(3);
    change.doc = DocId::Registry;
    check_request(
        Request::Redeem(RedeemRequest {
            network: "cagliari".into(),
            change,
        }),
        expect!["0002086361676c696172690203030303030303030303030303030303030303030303030303030303030303030404040404040404040404040404040405856f4a83034005050505050505050505050505050505050505050505050505050505050505050505050505050505050505050505050505050505050505050505050505050505"],
    );
    check_response(
        Response::Redeemed(RedeemAck {
            hash: ChangeHash([9; 32]),
        }),
        expect!["00030909090909090909090909090909090909090909090909090909090909090909"],
    );
}

#[test]
fn members_bytes() {
    check_request(Request::Members, expect!["0003"]);
    check_response(
        Response::Members(MemberList {
            members: vec![ListedMember {
                member: Member {
                    node: NodeId([7; 32]),
                    comune: "092051".parse().unwrap(),
                    role: Role::Comune,
                },
                removed: true,
            }],
        }),
        expect!["0004010707070707070707070707070707070707070707070707070707070707070707063039323035310001"],
    );
}

#[test]
fn presence_bytes() {
    check_request(Request::Presence, expect!["0004"]);
    check_response(
        Response::Presence(PresenceList {
            nodes: vec![NodePresence {
                node: NodeId([7; 32]),
                last_sync_ms: 1_700_000_000_000,
            }],
        }),
        expect![
            "000501070707070707070707070707070707070707070707070707070707070707070780a0abfef962"
        ],
    );
}

#[test]
fn log_epoch_bytes() {
    check_request(Request::LogEpoch, expect!["0005"]);
    check_response(
        Response::LogEpoch(LogEpoch {
            epoch: [0xab; LOG_EPOCH_BYTES],
        }),
        expect!["0006abababababababababababababababab"],
    );
}

#[test]
fn too_many_presences_are_refused() {
    let one = NodePresence {
        node: NodeId([7; 32]),
        last_sync_ms: 1,
    };
    let bytes = Response::Presence(PresenceList {
        nodes: vec![one; MAX_MEMBERS + 1],
    })
    .encode();
    assert!(matches!(
        Response::decode(&bytes),
        Err(WireError::Bounds(_))
    ));
}

#[test]
fn too_many_members_are_refused() {
    let listed = ListedMember {
        member: Member {
            node: NodeId([7; 32]),
            comune: "092051".parse().unwrap(),
            role: Role::Comune,
        },
        removed: false,
    };
    let bytes = Response::Members(MemberList {
        members: vec![listed; MAX_MEMBERS + 1],
    })
    .encode();
    assert!(matches!(
        Response::decode(&bytes),
        Err(WireError::Bounds(_))
    ));
}

#[test]
fn error_bytes() {
    check_response(
        Response::error(ErrorCode::NotAdmitted, "node 0a0b0c0d is not admitted"),
        expect!["0002001d6e6f6465203061306230633064206973206e6f742061646d6974746564"],
    );
}

#[test]
fn error_messages_are_truncated_on_a_char_boundary() {
    let Response::Error(e) = Response::error(ErrorCode::Internal, "è".repeat(MAX_TEXT_BYTES))
    else {
        panic!("not an error response");
    };
    assert!(e.message.len() <= MAX_TEXT_BYTES);
}

#[test]
fn unknown_version_and_trailing_bytes_are_refused() {
    let mut bytes = Request::Hello(Hello {
        protocol_version: 1,
        network: "n".into(),
        software: "s".into(),
    })
    .encode();
    bytes.push(0);
    assert_eq!(Request::decode(&bytes), Err(WireError::Trailing(1)));
    bytes.pop();
    bytes[0] = 7; // WireRequest::V8 does not exist
    assert!(matches!(Request::decode(&bytes), Err(WireError::Decode(_))));
}

#[test]
fn out_of_bounds_requests_are_refused() {
    let req = Request::Hello(Hello {
        protocol_version: 1,
        network: "x".repeat(MAX_TEXT_BYTES + 1),
        software: String::new(),
    });
    assert!(matches!(
        Request::decode(&req.encode()),
        Err(WireError::Bounds(_))
    ));
    let req = Request::Sync(SyncRequest {
        push: vec![],
        cursors: vec![
            Cursor {
                scope: Scope::All,
                after_seq: 0
            };
            MAX_CURSORS + 1
        ],
        max_response_bytes: 0,
        wait_ms: 0,
    });
    assert!(matches!(
        Request::decode(&req.encode()),
        Err(WireError::Bounds(_))
    ));
}

fn arb_doc() -> impl Strategy<Value = DocId> {
    prop_oneof![
        Just(DocId::Plan),
        Just(DocId::Registry),
        "[0-9]{6}".prop_map(|s| DocId::Comune(s.parse().unwrap())),
    ]
}

fn arb_change() -> impl Strategy<Value = SignedChange> {
    (
        arb_doc(),
        any::<[u8; 32]>(),
        any::<[u8; 16]>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<[u8; 32]>(),
    )
        .prop_map(|(doc, author, actor_nonce, change, sig)| {
            let mut s = [0u8; 64];
            s[..32].copy_from_slice(&sig);
            SignedChange {
                doc,
                author: NodeId(author),
                actor_nonce,
                change,
                signature: Signature::from_bytes(&s),
            }
        })
}

fn arb_scope() -> impl Strategy<Value = Scope> {
    prop_oneof![Just(Scope::All), arb_doc().prop_map(Scope::Doc)]
}

fn arb_reason() -> impl Strategy<Value = RejectReason> {
    prop_oneof![
        ".{0,20}".prop_map(RejectReason::Envelope),
        any::<[u8; 32]>()
            .prop_map(|n| RejectReason::Unauthorized(AuthorityError::NotMember(NodeId(n)))),
        proptest::collection::vec(any::<[u8; 32]>().prop_map(ChangeHash), 0..3)
            .prop_map(RejectReason::MissingDeps),
        ".{0,20}".prop_map(|s| RejectReason::Unauthorized(AuthorityError::Statement(s))),
        (any::<u64>(), any::<[u8; 32]>()).prop_map(|(seq, h)| RejectReason::Equivocation {
            actor: "ab".into(),
            seq,
            held: ChangeHash(h)
        }),
    ]
}

fn arb_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (any::<u16>(), ".{0,30}", ".{0,30}").prop_map(|(v, n, s)| Request::Hello(Hello {
            protocol_version: v,
            network: n,
            software: s
        })),
        (
            proptest::collection::vec(arb_change(), 0..4),
            proptest::collection::vec(
                (arb_scope(), any::<u64>())
                    .prop_map(|(scope, after_seq)| Cursor { scope, after_seq }),
                0..4
            ),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(
                |(push, cursors, max_response_bytes, wait_ms)| Request::Sync(SyncRequest {
                    push,
                    cursors,
                    max_response_bytes,
                    wait_ms
                })
            ),
        (".{0,30}", arb_change())
            .prop_map(|(network, change)| Request::Redeem(RedeemRequest { network, change })),
        Just(Request::Members),
        Just(Request::Presence),
        Just(Request::LogEpoch),
    ]
}

fn arb_response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            "[0-9]{6}",
            any::<bool>(),
            any::<u64>()
        )
            .prop_map(|(r, n, c, metro, head_seq)| Response::HelloAck(HelloAck {
                relay: NodeId(r),
                member: Member {
                    node: NodeId(n),
                    comune: c.parse().unwrap(),
                    role: if metro { Role::Metro } else { Role::Admin },
                },
                head_seq,
            })),
        (
            proptest::collection::vec(any::<[u8; 32]>().prop_map(ChangeHash), 0..3),
            proptest::collection::vec(
                (
                    any::<u32>(),
                    proptest::option::of(any::<[u8; 32]>()),
                    arb_reason()
                )
                    .prop_map(|(index, hash, reason)| Rejected {
                        index,
                        hash: hash.map(ChangeHash),
                        reason
                    }),
                0..3
            ),
            any::<u64>(),
            proptest::collection::vec(
                (arb_scope(), any::<u64>())
                    .prop_map(|(scope, reached)| CursorProgress { scope, reached }),
                0..3
            ),
            proptest::collection::vec(
                (any::<u64>(), arb_change()).prop_map(|(seq, change)| LogEntry { seq, change }),
                0..3
            ),
        )
            .prop_map(
                |(acks, rejects, head_seq, progress, entries)| Response::Sync(SyncResponse {
                    acks,
                    rejects,
                    head_seq,
                    progress,
                    entries
                })
            ),
        ".{0,40}".prop_map(|m| Response::error(ErrorCode::BadRequest, m)),
        ".{0,40}".prop_map(|m| Response::error(ErrorCode::Refused, m)),
        any::<[u8; 32]>().prop_map(|h| Response::Redeemed(RedeemAck {
            hash: ChangeHash(h)
        })),
        proptest::collection::vec((any::<[u8; 32]>(), any::<i64>()), 0..3).prop_map(|rows| {
            Response::Presence(PresenceList {
                nodes: rows
                    .into_iter()
                    .map(|(n, last_sync_ms)| NodePresence {
                        node: NodeId(n),
                        last_sync_ms,
                    })
                    .collect(),
            })
        }),
        proptest::collection::vec(
            (any::<[u8; 32]>(), "[0-9]{6}", any::<bool>(), any::<bool>()),
            0..3
        )
        .prop_map(|rows| Response::Members(MemberList {
            members: rows
                .into_iter()
                .map(|(n, c, metro, removed)| ListedMember {
                    member: Member {
                        node: NodeId(n),
                        comune: c.parse().unwrap(),
                        role: if metro { Role::Metro } else { Role::Comune },
                    },
                    removed,
                })
                .collect(),
        })),
        any::<[u8; LOG_EPOCH_BYTES]>().prop_map(|epoch| Response::LogEpoch(LogEpoch { epoch })),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(req in arb_request()) {
        let bytes = req.encode();
        match Request::decode(&bytes) {
            Ok(back) => prop_assert_eq!(back, req),
            // Only the bound checks may refuse a well-formed message.
            Err(e) => prop_assert!(matches!(e, WireError::Bounds(_)), "{e}"),
        }
    }

    #[test]
    fn responses_round_trip(resp in arb_response()) {
        prop_assert_eq!(Response::decode(&resp.encode()).unwrap(), resp);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
    }

    #[test]
    fn truncated_messages_are_errors(req in arb_request(), cut in any::<prop::sample::Index>()) {
        let bytes = req.encode();
        let cut = cut.index(bytes.len());
        prop_assert!(Request::decode(&bytes[..cut]).is_err());
    }
}
