//! Hostile peers against the relay in process, over real QUIC: slowloris
//! streams, connections that never say hello, more streams than allowed, a
//! bounded flood of handshakes by unknown keys, truncated frames. Each is
//! cut off by a limit (with a log line), the relay's held state returns to
//! what honest peers need, and an honest member keeps syncing throughout.

mod common;

use accordo_protocol::registry::Statement;
use accordo_protocol::testkit::TestAuthor;
use accordo_protocol::wire::{ErrorCode, Response, MAX_FRAME_BYTES};
use accordo_relay::server::ServeLimits;
use anyhow::{bail, Result};
use common::{start_relay_with, Peer, TestRelay, NETWORK};
use std::time::Duration;

const SLOW: Duration = Duration::from_millis(300);
/// Hostile connections in the flood: bounded, as every load loop here is.
const FLOOD: usize = 200;

fn limits() -> ServeLimits {
    ServeLimits {
        request_read_timeout: SLOW,
        hello_deadline: SLOW,
        max_connections: 64,
    }
}

/// A relay with the tight limits, and an admin peer that has said hello and
/// written the registry's genesis: the honest party of every attack.
async fn relay_with_honest_admin() -> Result<(TestRelay, Peer, TestAuthor)> {
    let mut admin = TestAuthor::new(100, 1);
    let relay = start_relay_with(&admin, limits()).await?;
    let honest = Peer::connect(&relay, &admin).await?;
    assert!(matches!(honest.hello().await?, Response::HelloAck(_)));
    let genesis = admin.statement(&Statement::Genesis {
        network: NETWORK.into(),
        admins: vec![admin.id()],
    });
    assert_eq!(honest.push(vec![genesis]).await?.acks.len(), 1);
    Ok((relay, honest, admin))
}

/// The honest admin writes one more registry statement and gets it acked.
async fn honest_round(peer: &Peer, admin: &mut TestAuthor, n: usize) -> Result<()> {
    let s = admin.statement(&Statement::AddRelay {
        relay: TestAuthor::new(200, n as u8).id(),
        addr: format!("relay{n}.example.it:4433"),
    });
    let r = peer.push(vec![s]).await?;
    if r.acks.len() != 1 {
        bail!("honest push {n} not acknowledged: {r:?}");
    }
    Ok(())
}

async fn wait_connections(
    relay: &accordo_relay::server::Relay,
    at_most: usize,
) -> Result<Duration> {
    let start = tokio::time::Instant::now();
    while relay.connections() > at_most {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("relay still holds {} connections", relay.connections());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_peers_are_cut_off_while_honest_ones_sync() -> Result<()> {
    let (relay, honest, mut admin) = relay_with_honest_admin().await?;

    // Slowloris: admitted, opens streams, sends half a length prefix, stalls.
    let slow = Peer::connect(&relay, &admin).await?;
    assert!(matches!(slow.hello().await?, Response::HelloAck(_)));
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let (mut send, recv) = slow.conn.open_bi().await?;
        send.write_all(&[0, 0]).await?;
        stalled.push((send, recv));
    }
    // Silent: connects and never says hello.
    let mut silent = Vec::new();
    for i in 0..10 {
        silent.push(Peer::connect(&relay, &TestAuthor::new(150, i)).await?);
    }
    // Meanwhile the honest peer syncs.
    for n in 0..5 {
        honest_round(&honest, &mut admin, n).await?;
    }
    // Each stalled stream is answered by a reset, not held.
    for (_, mut recv) in stalled {
        let got = tokio::time::timeout(SLOW * 10, recv.read_to_end(1024)).await;
        assert!(
            matches!(got, Ok(Err(_))),
            "a stalled request is dropped: {got:?}"
        );
    }
    // Silent connections are closed by the hello deadline.
    for p in &silent {
        let reason = tokio::time::timeout(SLOW * 10, p.conn.closed()).await;
        assert!(reason.is_ok(), "a connection without hello is closed");
    }
    wait_connections(&relay.relay, 2).await?;
    honest_round(&honest, &mut admin, 99).await?;
    relay.shutdown.cancel();
    relay.task.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_handshake_flood_and_stream_abuse_leave_honest_peers_working() -> Result<()> {
    let (relay, honest, mut admin) = relay_with_honest_admin().await?;

    // A flood of handshakes by unknown keys, each saying hello: refused.
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..FLOOD {
        let key_seed = 10 + (i % 200) as u8;
        let target = (relay.addr, relay.key.verifying_key());
        flood.spawn(async move {
            let author = TestAuthor::new(key_seed, (i / 200) as u8);
            let client = accordo_net::Client::new(
                "127.0.0.1:0".parse().expect("literal"),
                &author.key,
                &accordo_net::TransportLimits::default(),
            )?;
            let conn = client
                .connect(
                    target.0,
                    &target.1,
                    accordo_net::alpn(accordo_protocol::PROTOCOL_VERSION, NETWORK),
                    Duration::from_secs(5),
                )
                .await;
            let refused = match conn {
                Ok(conn) => {
                    let hello =
                        accordo_protocol::wire::Request::Hello(accordo_protocol::wire::Hello {
                            protocol_version: accordo_protocol::PROTOCOL_VERSION,
                            network: NETWORK.into(),
                            software: "flood".into(),
                        });
                    let reply = accordo_net::request(
                        &conn,
                        &hello.encode(),
                        MAX_FRAME_BYTES,
                        Duration::from_secs(5),
                    )
                    .await;
                    match reply.map(|b| Response::decode(&b)) {
                        Ok(Ok(Response::Error(e))) => e.code == ErrorCode::NotAdmitted,
                        _ => true, // refused at the handshake (connection limit) or closed
                    }
                }
                Err(_) => true,
            };
            anyhow::Ok(refused)
        });
    }
    // The honest peer keeps syncing during the flood.
    for n in 0..5 {
        honest_round(&honest, &mut admin, n).await?;
    }
    let mut refused = 0;
    while let Some(r) = flood.join_next().await {
        if r?? {
            refused += 1;
        }
    }
    assert_eq!(refused, FLOOD, "every unknown key is refused");

    // More streams than allowed on one connection: the extra ones wait for
    // credit instead of costing the relay anything; all are answered in turn.
    let busy = Peer::connect(&relay, &admin).await?;
    assert!(matches!(busy.hello().await?, Response::HelloAck(_)));
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let conn = busy.conn.clone();
        calls.spawn(async move {
            let garbage = vec![0xffu8; 16];
            accordo_net::request(&conn, &garbage, MAX_FRAME_BYTES, Duration::from_secs(10)).await
        });
    }
    let mut answered = 0;
    while let Some(r) = calls.join_next().await {
        if let Ok(Ok(bytes)) = r {
            if let Ok(Response::Error(e)) = Response::decode(&bytes) {
                assert_eq!(e.code, ErrorCode::BadRequest);
                answered += 1;
            }
        }
    }
    assert_eq!(answered, 40);
    // A truncated frame (announces 100 bytes, sends 10, finishes): dropped.
    let (mut send, mut recv) = busy.conn.open_bi().await?;
    send.write_all(&100u32.to_be_bytes()).await?;
    send.write_all(&[1; 10]).await?;
    send.finish()?;
    assert!(recv.read_to_end(1024).await.map_or(true, |b| b.is_empty()));

    wait_connections(&relay.relay, 2).await?;
    honest_round(&honest, &mut admin, 42).await?;
    relay.shutdown.cancel();
    relay.task.await??;
    Ok(())
}
