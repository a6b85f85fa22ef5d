//! Hostile peers against the relay in process, over real QUIC: slowloris
//! streams, connections that never say hello, more streams than allowed, a
//! bounded flood of handshakes by unknown keys, truncated frames, one host or
//! one key opening every connection it can, unknown keys holding slots, a
//! peer that never reads its responses, large frames before the hello. Each
//! is cut off by a limit (with a log line), the relay's held state stays
//! bounded and returns to what honest peers need, and an honest member keeps
//! syncing throughout. (The relay binary's memory under attack is measured in
//! `tests/tests/relay_memory.rs`.)

mod common;

use accordo_net::TransportLimits;
use accordo_protocol::doc::DocId;
use accordo_protocol::registry::Statement;
use accordo_protocol::testkit::TestAuthor;
use accordo_protocol::wire::{
    Cursor, ErrorCode, Request, Response, Scope, SyncRequest, MAX_FRAME_BYTES,
};
use accordo_relay::server::{ServeLimits, MAX_UNADMITTED_FRAME_BYTES};
use anyhow::{bail, Context, Result};
use common::{start_relay_with, Peer, TestRelay, NETWORK};
use std::time::Duration;

const SLOW: Duration = Duration::from_millis(300);
/// Hostile connections in the flood: bounded, as every load loop here is.
const FLOOD: usize = 200;

/// QUIC application close codes the relay uses (relay/src/server.rs).
const CLOSE_TOO_SLOW: u64 = 2;
const CLOSE_BUSY: u64 = 3;

fn limits() -> ServeLimits {
    ServeLimits {
        request_read_timeout: SLOW,
        response_write_timeout: SLOW,
        hello_deadline: SLOW,
        unknown_key_deadline: SLOW,
        max_connections: 64,
        ..ServeLimits::default()
    }
}

/// A relay with the tight limits, and an admin peer that has said hello and
/// written the registry's genesis: the honest party of every attack.
async fn relay_with_honest_admin() -> Result<(TestRelay, Peer, TestAuthor)> {
    relay_with_honest_admin_and(limits()).await
}

async fn relay_with_honest_admin_and(limits: ServeLimits) -> Result<(TestRelay, Peer, TestAuthor)> {
    let mut admin = TestAuthor::new(100, 1);
    let relay = start_relay_with(&admin, limits).await?;
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

/// The application close code a connection ended with, if the relay closed it.
async fn closed_with(conn: &quinn::Connection) -> Result<u64> {
    let reason = tokio::time::timeout(Duration::from_secs(10), conn.closed())
        .await
        .context("the relay did not close the connection")?;
    match reason {
        quinn::ConnectionError::ApplicationClosed(close) => Ok(close.error_code.into_inner()),
        other => bail!("closed otherwise: {other}"),
    }
}

/// Connections `author` opens from `host`, keeping those the relay accepts
/// at the handshake (the others are refused there).
async fn open_many(
    relay: &TestRelay,
    author: &TestAuthor,
    host: &str,
    n: usize,
) -> (Vec<Peer>, usize) {
    let (mut held, mut refused) = (Vec::new(), 0);
    for _ in 0..n {
        match Peer::connect_with(relay, author, host, &TransportLimits::default()).await {
            Ok(p) => held.push(p),
            Err(_) => refused += 1,
        }
    }
    (held, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_or_one_key_cannot_take_every_connection() -> Result<()> {
    const PER_ADDR: usize = 6;
    const PER_KEY: usize = 3;
    let (relay, honest, mut admin) = relay_with_honest_admin_and(ServeLimits {
        max_connections_per_addr: PER_ADDR,
        max_connections_per_key: PER_KEY,
        // Unknown keys stay long enough to hold their slots through the test.
        unknown_key_deadline: Duration::from_secs(10),
        ..limits()
    })
    .await?;

    // One host (127.0.0.2), many keys: refused at the handshake past its quota.
    let mut one_host = Vec::new();
    for i in 0..3 * PER_ADDR {
        let author = TestAuthor::new(160 + i as u8, 0);
        one_host.extend(open_many(&relay, &author, "127.0.0.2", 1).await.0);
        assert!(
            relay.relay.connections() <= 1 + PER_ADDR,
            "one host holds at most its quota"
        );
    }
    assert_eq!(one_host.len(), PER_ADDR, "one host gets exactly its quota");
    // Another host still gets in, and the honest member syncs meanwhile.
    let (other, _) = open_many(&relay, &TestAuthor::new(199, 0), "127.0.0.3", 1).await;
    assert_eq!(other.len(), 1, "another address is not affected");
    honest_round(&honest, &mut admin, 1).await?;
    drop((one_host, other));
    wait_connections(&relay.relay, 1).await?;

    // One key (the honest admin's, from 127.0.0.4): connections past its
    // quota are closed after the handshake; the honest one keeps working.
    let (same_key, refused) = open_many(&relay, &admin, "127.0.0.4", 3 * PER_KEY).await;
    assert_eq!(refused, 0, "the address quota is not what stops them");
    let (mut acked, mut busy) = (0, 0);
    for p in &same_key {
        match p.hello().await {
            Ok(Response::HelloAck(_)) => acked += 1,
            _ => {
                assert_eq!(closed_with(&p.conn).await?, CLOSE_BUSY);
                busy += 1;
            }
        }
        assert!(relay.relay.connections() <= 1 + 3 * PER_KEY);
    }
    assert_eq!(
        acked,
        PER_KEY - 1,
        "the key's quota, the honest connection included"
    );
    assert_eq!(busy, 2 * PER_KEY + 1);
    honest_round(&honest, &mut admin, 2).await?;
    drop(same_key);
    wait_connections(&relay.relay, 1).await?;
    honest_round(&honest, &mut admin, 3).await?;
    relay.shutdown.cancel();
    relay.task.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_keys_get_a_small_budget_and_a_short_stay() -> Result<()> {
    const UNKNOWN: usize = 4;
    let (relay, honest, mut admin) = relay_with_honest_admin_and(ServeLimits {
        max_unknown_connections: UNKNOWN,
        // Long enough that the first ones still hold their slots when the last connect.
        unknown_key_deadline: Duration::from_secs(3),
        ..limits()
    })
    .await?;
    // Twelve keys nobody enrolled connect and keep quiet.
    let mut strangers = Vec::new();
    for i in 0..3 * UNKNOWN {
        let host = format!("127.0.0.{}", 10 + i);
        let author = TestAuthor::new(180 + i as u8, 0);
        strangers.extend(open_many(&relay, &author, &host, 1).await.0);
        assert!(relay.relay.unknown_connections() <= UNKNOWN);
    }
    // A member still gets in (its key does not use that budget) and syncs.
    let member = Peer::connect(&relay, &admin).await?;
    assert!(matches!(member.hello().await?, Response::HelloAck(_)));
    honest_round(&honest, &mut admin, 1).await?;
    // Past the budget they were closed at once; within it, at the deadline.
    let (mut busy, mut timed_out) = (0, 0);
    for p in &strangers {
        match closed_with(&p.conn).await? {
            CLOSE_BUSY => busy += 1,
            CLOSE_TOO_SLOW => timed_out += 1,
            other => bail!("unexpected close code {other}"),
        }
    }
    assert_eq!((busy, timed_out), (2 * UNKNOWN, UNKNOWN));
    assert_eq!(relay.relay.unknown_connections(), 0);
    honest_round(&honest, &mut admin, 2).await?;
    relay.shutdown.cancel();
    relay.task.await??;
    Ok(())
}

/// A pull of the whole registry from the start, sent without reading the answer.
async fn pull_unread(peer: &Peer) -> Result<(quinn::SendStream, quinn::RecvStream)> {
    let req = Request::Sync(SyncRequest {
        push: vec![],
        cursors: vec![Cursor {
            scope: Scope::Doc(DocId::Registry),
            after_seq: 0,
        }],
        max_response_bytes: 1 << 20,
        wait_ms: 0,
    });
    let (mut send, recv) = peer.conn.open_bi().await?;
    accordo_net::write_frame(&mut send, &req.encode()).await?;
    send.finish()?;
    Ok((send, recv))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_loses_its_streams_and_connection() -> Result<()> {
    let (relay, honest, mut admin) = relay_with_honest_admin().await?;
    for n in 0..8 {
        honest_round(&honest, &mut admin, n).await?;
    }
    // A member whose QUIC stack grants 1 KiB of credit and whose application
    // never reads: the registry (9 statements) does not fit.
    let tiny = TransportLimits {
        stream_receive_window_bytes: 1024,
        receive_window_bytes: 1024,
        ..TransportLimits::default()
    };
    let reader = Peer::connect_with(&relay, &admin, "127.0.0.5", &tiny).await?;
    assert!(matches!(reader.hello().await?, Response::HelloAck(_)));
    let mut unread = Vec::new();
    for _ in 0..4 {
        unread.push(pull_unread(&reader).await?);
    }
    // The honest member syncs meanwhile; the reader is cut off.
    honest_round(&honest, &mut admin, 50).await?;
    assert_eq!(closed_with(&reader.conn).await?, CLOSE_TOO_SLOW);
    wait_connections(&relay.relay, 1).await?;
    honest_round(&honest, &mut admin, 51).await?;
    drop(unread);
    relay.shutdown.cancel();
    relay.task.await??;
    Ok(())
}

/// Sends one frame of `size` bytes of garbage on a fresh stream; returns the
/// answer, or `None` if the relay dropped the stream without one.
async fn garbage_frame(peer: &Peer, size: usize) -> Result<Option<Response>> {
    let (mut send, mut recv) = peer.conn.open_bi().await?;
    // The relay may stop the stream before all of it is sent: not an error here.
    let _ = accordo_net::write_frame(&mut send, &vec![0xff; size]).await;
    let _ = send.finish();
    let got = tokio::time::timeout(Duration::from_secs(10), recv.read_to_end(1 << 20))
        .await
        .context("no answer and no reset")?;
    match got {
        Ok(bytes) if bytes.len() > 4 => Ok(Some(Response::decode(&bytes[4..])?)),
        _ => Ok(None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_before_the_hello_are_capped_small() -> Result<()> {
    let (relay, honest, mut admin) = relay_with_honest_admin_and(ServeLimits {
        // Time to send the frames; the cap, not the deadline, must stop them.
        hello_deadline: Duration::from_secs(10),
        request_read_timeout: Duration::from_secs(10),
        ..limits()
    })
    .await?;
    let early = Peer::connect(&relay, &admin).await?;
    let over = MAX_UNADMITTED_FRAME_BYTES + 1;
    for _ in 0..4 {
        assert!(
            garbage_frame(&early, over).await?.is_none(),
            "a frame over the pre-hello cap is dropped unread"
        );
    }
    let small = garbage_frame(&early, 16).await?;
    assert!(
        matches!(&small, Some(Response::Error(e)) if e.code == ErrorCode::BadRequest),
        "small frames are read before the hello: {small:?}"
    );
    honest_round(&honest, &mut admin, 1).await?;
    // After the hello the full frame size applies again.
    assert!(matches!(early.hello().await?, Response::HelloAck(_)));
    let big = garbage_frame(&early, over).await?;
    assert!(
        matches!(&big, Some(Response::Error(e)) if e.code == ErrorCode::BadRequest),
        "an admitted peer's large frame is read: {big:?}"
    );
    relay.shutdown.cancel();
    relay.task.await??;
    Ok(())
}
