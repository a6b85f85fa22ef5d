//! The relay in process, over real QUIC on loopback, governed by a signed
//! registry: every forbidden write is refused with a typed reason and stores
//! nothing, hostile requests get typed errors, and an honest member keeps
//! syncing throughout.

mod common;

use accordo_protocol::authority::AuthorityError;
use accordo_protocol::doc::DocId;
use accordo_protocol::log::RejectReason;
use accordo_protocol::registry::{RegistryRole, Statement};
use accordo_protocol::testkit::TestAuthor;
use accordo_protocol::wire::{
    ErrorCode, Hello, Request, Response, SyncRequest, SyncResponse, MAX_FRAME_BYTES,
};
use accordo_protocol::PROTOCOL_VERSION;
use anyhow::{bail, Context, Result};
use common::{start_relay, Peer, NETWORK};

fn enroll(node: &TestAuthor, comune: &str) -> Statement {
    Statement::Enroll {
        node: node.id(),
        comune: comune.parse().unwrap(),
        role: RegistryRole::Comune,
    }
}

fn reason(resp: &SyncResponse) -> &RejectReason {
    assert_eq!(resp.rejects.len(), 1, "{resp:?}");
    assert!(resp.acks.is_empty(), "{resp:?}");
    &resp.rejects[0].reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_writes_are_refused_typed_and_store_nothing() -> Result<()> {
    let mut admin = TestAuthor::new(100, 1);
    let relay = start_relay(&admin).await?;
    let mut office = TestAuthor::new(1, 1);
    let other = TestAuthor::new(2, 1);
    let genesis = admin.statement(&Statement::Genesis {
        network: NETWORK.into(),
        admins: vec![admin.id()],
    });
    let e1 = admin.statement(&enroll(&office, "092009"));
    let e2 = admin.statement(&enroll(&other, "092051"));
    let a = Peer::connect(&relay, &admin).await?;
    assert!(matches!(a.hello().await?, Response::HelloAck(_)));
    let r = a.push(vec![genesis, e1, e2]).await?;
    assert_eq!(r.acks.len(), 3, "{r:?}");
    let head = r.head_seq;

    let p = Peer::connect(&relay, &office).await?;
    assert!(matches!(p.hello().await?, Response::HelloAck(_)));

    // Another comune's document.
    let foreign = office.edit(DocId::Comune("092051".parse()?), "title", "x");
    let r = p.push(vec![foreign]).await?;
    assert!(matches!(
        reason(&r),
        RejectReason::Unauthorized(AuthorityError::WrongComune { .. })
    ));
    // The plan, which only metro keys write.
    let mut planner = TestAuthor::new(1, 2);
    let r = p.push(vec![planner.edit(DocId::Plan, "axis", "x")]).await?;
    assert!(matches!(
        reason(&r),
        RejectReason::Unauthorized(AuthorityError::NotMetro(_))
    ));
    // A registry statement signed by a member that is not an admin.
    let mut rogue = TestAuthor::new(1, 3);
    let stmt = rogue.statement(&enroll(&TestAuthor::new(9, 1), "092009"));
    let r = p.push(vec![stmt]).await?;
    match reason(&r) {
        RejectReason::Unauthorized(AuthorityError::Statement(s)) => {
            assert!(s.contains("not an admin"), "{s}")
        }
        other => bail!("unexpected {other:?}"),
    }
    // Envelopes altered in transit: signature, author, actor nonce.
    let mut own = TestAuthor::new(1, 4);
    let good = own.edit(DocId::Comune("092009".parse()?), "title", "y");
    let mut bad_sig = good.clone();
    let mut sig = bad_sig.signature.to_bytes();
    sig[3] ^= 1;
    bad_sig.signature = ed25519_dalek::Signature::from_bytes(&sig);
    let mut bad_author = good.clone();
    bad_author.author = other.id();
    let mut bad_nonce = good.clone();
    bad_nonce.actor_nonce[0] ^= 1;
    for altered in [bad_sig, bad_author, bad_nonce] {
        let r = p.push(vec![altered]).await?;
        assert!(
            matches!(reason(&r), RejectReason::Envelope(_)),
            "{:?}",
            r.rejects
        );
    }
    assert_eq!(
        p.push(vec![]).await?.head_seq,
        head,
        "nothing refused was stored"
    );
    // The honest write still lands.
    let r = p.push(vec![good]).await?;
    assert_eq!((r.acks.len(), r.head_seq), (1, head + 1));
    relay.shutdown.cancel();
    relay.task.await??;
    drop(relay.relay);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_typed_errors_and_honest_peers_keep_syncing() -> Result<()> {
    let mut admin = TestAuthor::new(100, 1);
    let relay = start_relay(&admin).await?;
    let honest = Peer::connect(&relay, &admin).await?;
    assert!(matches!(honest.hello().await?, Response::HelloAck(_)));

    // A key nobody enrolled: refused at hello.
    let stranger = Peer::connect(&relay, &TestAuthor::new(50, 1)).await?;
    match stranger.hello().await? {
        Response::Error(e) => assert_eq!(e.code, ErrorCode::NotAdmitted),
        other => bail!("unexpected {other:?}"),
    }
    // Sync before hello, garbage, a wrong protocol version, a wrong network.
    let rude = Peer::connect(&relay, &admin).await?;
    let sync = Request::Sync(SyncRequest {
        push: vec![],
        cursors: vec![],
        max_response_bytes: 0,
        wait_ms: 0,
    });
    for (body, code) in [
        (sync.encode(), ErrorCode::HelloRequired),
        (vec![0xff; 64], ErrorCode::BadRequest),
        (
            Request::Hello(Hello {
                protocol_version: 99,
                network: NETWORK.into(),
                software: String::new(),
            })
            .encode(),
            ErrorCode::VersionMismatch,
        ),
        (
            Request::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                network: "other".into(),
                software: String::new(),
            })
            .encode(),
            ErrorCode::NetworkMismatch,
        ),
    ] {
        match rude.raw(&body).await? {
            Response::Error(e) => assert_eq!(e.code, code, "{}", e.message),
            other => bail!("unexpected {other:?}"),
        }
    }
    // A frame announcing more than the limit: the stream is dropped unanswered.
    let (mut send, mut recv) = rude.conn.open_bi().await?;
    send.write_all(&(u32::MAX).to_be_bytes()).await?;
    let _ = send.finish();
    let answer = accordo_net::read_frame(&mut recv, MAX_FRAME_BYTES).await;
    assert!(answer.is_err(), "an oversized frame gets no answer");

    // Through all of it, the honest admin writes and reads.
    let genesis = admin.statement(&Statement::Genesis {
        network: NETWORK.into(),
        admins: vec![admin.id()],
    });
    let r = honest.push(vec![genesis]).await.context("honest push")?;
    assert_eq!(r.acks.len(), 1);
    relay.shutdown.cancel();
    relay.task.await??;
    Ok(())
}

/// `Presence` (when each key last synced) is answered to metro and admin
/// keys only, after a completed sync of theirs; a comune's key is refused
/// and keeps its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_told_to_metro_and_admin_keys_only() -> Result<()> {
    let mut admin = TestAuthor::new(100, 1);
    let relay = start_relay(&admin).await?;
    let office = TestAuthor::new(1, 1);
    let genesis = admin.statement(&Statement::Genesis {
        network: NETWORK.into(),
        admins: vec![admin.id()],
    });
    let e1 = admin.statement(&enroll(&office, "092009"));
    let a = Peer::connect(&relay, &admin).await?;
    assert!(matches!(a.hello().await?, Response::HelloAck(_)));
    assert_eq!(a.push(vec![genesis, e1]).await?.acks.len(), 2);
    let p = Peer::connect(&relay, &office).await?;
    assert!(matches!(p.hello().await?, Response::HelloAck(_)));
    p.push(Vec::new()).await?;
    match p.call(&Request::Presence).await? {
        Response::Error(e) => assert_eq!(e.code, ErrorCode::Refused, "{e:?}"),
        other => bail!("a comune key was told presence: {other:?}"),
    }
    // Still connected: its next sync works.
    p.push(Vec::new()).await?;
    let Response::Presence(list) = a.call(&Request::Presence).await? else {
        bail!("the admin key is told presence");
    };
    let seen: Vec<_> = list.nodes.iter().map(|n| n.node).collect();
    assert!(
        seen.contains(&office.id()) && seen.contains(&admin.id()),
        "both keys that synced are listed: {list:?}"
    );
    Ok(())
}
