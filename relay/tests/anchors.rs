//! The relay in process, governed by a registry whose anchors change: two
//! anchors retiring each other concurrently — the retirement that reached
//! the relay first stands, whatever the canonical order would say.

mod common;

use accordo_protocol::authority::AuthorityError;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::SignedChange;
use accordo_protocol::log::RejectReason;
use accordo_protocol::registry::{Cut, CutEntry, Statement};
use accordo_protocol::testkit::TestAuthor;
use accordo_protocol::wire::Response;
use anyhow::{bail, Result};
use common::{start_relay, Peer, NETWORK};

fn hash(env: &SignedChange) -> accordo_protocol::envelope::ChangeHash {
    env.clone().verify().expect("a test envelope verifies").hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_anchors_retiring_each_other_the_first_to_reach_the_relay_stands() -> Result<()> {
    let mut old = TestAuthor::new(100, 1);
    let relay = start_relay(&old).await?;
    let mut new = TestAuthor::new(102, 1);
    let genesis = old.statement(&Statement::Genesis {
        network: NETWORK.into(),
        admins: vec![old.id()],
    });
    let add = old.statement(&Statement::AddAnchor { node: new.id() });
    let a = Peer::connect(&relay, &old).await?;
    assert!(matches!(a.hello().await?, Response::HelloAck(_)));
    let r = a.push(vec![genesis.clone(), add.clone()]).await?;
    assert_eq!(r.acks.len(), 2, "{r:?}");
    new.learn(&mut old);
    // Concurrently, each retires the other.
    let by_old = old.statement(&Statement::RetireAnchor {
        node: new.id(),
        cut: Cut::default(),
    });
    let old_actor = genesis.clone().verify()?.actor;
    let by_new = new.statement(&Statement::RetireAnchor {
        node: old.id(),
        cut: Cut(vec![CutEntry {
            doc: DocId::Registry,
            actor: old_actor,
            max_seq: 2,
        }]),
    });
    // The one the canonical order puts second reaches the relay first.
    let (first, first_author, second) = if hash(&by_old) > hash(&by_new) {
        (by_old, &old, by_new)
    } else {
        (by_new, &new, by_old)
    };
    let p = Peer::connect(&relay, first_author).await?;
    assert!(matches!(p.hello().await?, Response::HelloAck(_)));
    let r = p.push(vec![first]).await?;
    assert_eq!(r.acks.len(), 1, "{r:?}");
    // The second, pushed by the anchor still standing: refused, stores nothing.
    let r = p.push(vec![second]).await?;
    assert_eq!(r.rejects.len(), 1, "{r:?}");
    match &r.rejects[0].reason {
        RejectReason::Unauthorized(AuthorityError::Statement(s)) => {
            assert!(
                s.contains("retired before this statement reached the relay"),
                "{s}"
            )
        }
        other => bail!("unexpected {other:?}"),
    }
    // The retired one can no longer say hello.
    let loser = if std::ptr::eq(first_author, &old) {
        &new
    } else {
        &old
    };
    let q = Peer::connect(&relay, loser).await;
    if let Ok(q) = q {
        assert!(!matches!(q.hello().await, Ok(Response::HelloAck(_))));
    }
    Ok(())
}
