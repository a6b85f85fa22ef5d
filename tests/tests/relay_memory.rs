//! The relay's memory under repeated handshake floods, measured on the real
//! relay binary in its own process (so the attackers' own buffers do not
//! count): once warmed up, more rounds of the same attack must not grow it,
//! and an honest node syncs during every round.

use accordo_protocol::identity::NodeId;
use accordo_protocol::wire::{ErrorCode, Hello, Request, Response, MAX_FRAME_BYTES};
use accordo_protocol::PROTOCOL_VERSION;
use accordo_tests::{rss_bytes, Node, Relay};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::time::Duration;

/// Handshakes per round, all at once, by keys the relay does not know.
const FLOOD: usize = 200;
const ROUNDS: usize = 5;
/// Growth allowed from the end of the second round (the allocator warmed up)
/// to the end of the last: allocator slack (2–6 MiB seen). A leak of 32 KiB
/// per refused handshake would exceed it over the last three rounds.
const GROWTH_LIMIT: u64 = 16 << 20;

/// One round: `FLOOD` handshakes at once, each saying hello. Returns how many
/// got the typed `NotAdmitted` refusal.
async fn flood(
    addr: SocketAddr,
    relay_key: ed25519_dalek::VerifyingKey,
    network: String,
    round: usize,
) -> Result<usize> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..FLOOD {
        let network = network.clone();
        set.spawn(async move {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&((round * FLOOD + i) as u64 + 1).to_le_bytes());
            seed[31] = 0xf1;
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let client = accordo_net::Client::new(
                "127.0.0.1:0".parse().expect("literal"),
                &key,
                &accordo_net::TransportLimits::default(),
            )?;
            let alpn = accordo_net::alpn(PROTOCOL_VERSION, &network);
            let conn = client
                .connect(addr, &relay_key, alpn, Duration::from_secs(10))
                .await?;
            let hello = Request::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                network,
                software: "flood".into(),
            });
            let reply = accordo_net::request(
                &conn,
                &hello.encode(),
                MAX_FRAME_BYTES,
                Duration::from_secs(10),
            )
            .await?;
            client.close().await;
            anyhow::Ok(matches!(
                Response::decode(&reply)?,
                Response::Error(e) if e.code == ErrorCode::NotAdmitted
            ))
        });
    }
    let mut refused = 0;
    while let Some(r) = set.join_next().await {
        if r?? {
            refused += 1;
        }
    }
    Ok(refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_memory_stays_bounded_under_repeated_handshake_floods() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let pid = relay.pid().context("relay running")?;
    if rss_bytes(pid).is_none() {
        eprintln!(
            "SKIPPED: no /proc/<pid>/status on this system, the relay's memory cannot be read"
        );
        return Ok(());
    }
    let id: NodeId = relay.id.parse()?;
    let key = id.verifying_key().context("relay id is a key")?;
    let network = accordo_relay::cli::default_network(&id);
    let addr: SocketAddr = relay.addr.as_deref().context("relay address")?.parse()?;
    let node = std::sync::Arc::new(Node::admitted(&relay, "092009", "comune")?);

    let mut rss = Vec::new();
    for round in 0..ROUNDS {
        let attack = tokio::spawn(flood(addr, key, network.clone(), round));
        // The honest node edits and syncs while the flood is on.
        let honest = std::sync::Arc::clone(&node);
        tokio::task::spawn_blocking(move || -> Result<()> {
            honest.add(
                &format!("F21B2100031{round:04}"),
                &format!("Progetto {round}"),
            )?;
            honest.sync()?.ok()?;
            Ok(())
        })
        .await??;
        assert_eq!(
            attack.await??,
            FLOOD,
            "round {round}: every unknown key is refused"
        );
        rss.push(rss_bytes(pid).context("relay still running")?);
    }
    assert_eq!(
        node.status()?["outbox_pending"],
        0,
        "every honest edit acknowledged"
    );
    let mib: Vec<String> = rss
        .iter()
        .map(|b| format!("{:.1}", *b as f64 / 1048576.0))
        .collect();
    eprintln!(
        "relay resident memory after each of {ROUNDS} floods of {FLOOD} handshakes: {} MiB",
        mib.join(", ")
    );
    let (first, last) = (rss[1], rss[ROUNDS - 1]);
    assert!(
        last <= first + GROWTH_LIMIT,
        "relay memory grows with repeated floods: {first} → {last} bytes"
    );
    assert!(relay.stop()?, "clean shutdown after the attack");
    Ok(())
}
