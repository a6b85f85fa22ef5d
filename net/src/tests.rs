//! Transport tests on loopback, port 0.

use super::*;
use ed25519_dalek::SigningKey;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

const ALPN_VERSION: u16 = 1;

fn server(seed: u8, network: &str) -> (quinn::Endpoint, SocketAddr) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ep = server_endpoint(
        socket,
        &key(seed),
        alpn(ALPN_VERSION, network),
        &TransportLimits::default(),
    )
    .unwrap();
    let addr = ep.local_addr().unwrap();
    (ep, addr)
}

fn client(seed: u8) -> Client {
    Client::new(
        "127.0.0.1:0".parse().unwrap(),
        &key(seed),
        &TransportLimits::default(),
    )
    .unwrap()
}

const T: Duration = Duration::from_secs(5);

/// Echo server: answers each request frame with the same bytes; returns the client keys seen.
async fn echo_one(ep: quinn::Endpoint, max: usize) -> Option<[u8; 32]> {
    let conn = ep.accept().await?.await.ok()?;
    let peer = peer_key(&conn);
    let (mut send, mut recv) = conn.accept_bi().await.ok()?;
    match read_frame(&mut recv, max).await {
        Ok(body) => {
            write_frame(&mut send, &body).await.ok()?;
            let _ = send.finish();
            let _ = send.stopped().await;
        }
        Err(FrameError::TooLarge { .. }) => {
            write_frame(&mut send, b"too large").await.ok()?;
            let _ = send.finish();
            let _ = send.stopped().await;
        }
        Err(_) => {}
    }
    peer
}

#[tokio::test]
async fn mutual_keys_are_seen_and_requests_round_trip() {
    let (ep, addr) = server(1, "net");
    let srv = tokio::spawn(echo_one(ep.clone(), 4 << 20));
    let c = client(2);
    let conn = c
        .connect(addr, &key(1).verifying_key(), alpn(ALPN_VERSION, "net"), T)
        .await
        .unwrap();
    assert_eq!(peer_key(&conn), Some(key(1).verifying_key().to_bytes()));
    let body = vec![7u8; 1 << 20];
    let reply = request(&conn, &body, 4 << 20, T).await.unwrap();
    assert_eq!(reply, body);
    assert_eq!(
        srv.await.unwrap(),
        Some(key(2).verifying_key().to_bytes()),
        "server sees the client key"
    );
}

#[tokio::test]
async fn a_wrong_pinned_relay_key_is_reported_as_such() {
    let (ep, addr) = server(1, "net");
    let accept = tokio::spawn(async move { ep.accept().await.unwrap().await.is_err() });
    let err = client(2)
        .connect(addr, &key(3).verifying_key(), alpn(ALPN_VERSION, "net"), T)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::RelayKeyMismatch), "{err}");
    assert!(
        accept.await.unwrap(),
        "the handshake failed on the server too"
    );
}

#[tokio::test]
async fn another_network_or_version_fails_the_handshake() {
    let (ep, addr) = server(1, "net");
    let accept = tokio::spawn(async move { ep.accept().await.unwrap().await.is_err() });
    let err = client(2)
        .connect(
            addr,
            &key(1).verifying_key(),
            alpn(ALPN_VERSION, "other"),
            T,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::AlpnMismatch), "{err}");
    assert!(accept.await.unwrap(), "server refused the handshake too");
}

#[tokio::test]
async fn a_silent_port_times_out_within_the_connect_timeout() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = client(2)
        .connect(
            addr,
            &key(1).verifying_key(),
            alpn(ALPN_VERSION, "net"),
            timeout,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Timeout(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn oversized_frames_are_refused_before_reading() {
    let (ep, addr) = server(1, "net");
    let srv = tokio::spawn(echo_one(ep.clone(), 1024));
    let conn = client(2)
        .connect(addr, &key(1).verifying_key(), alpn(ALPN_VERSION, "net"), T)
        .await
        .unwrap();
    let reply = request(&conn, &vec![0u8; 4096], 1 << 20, T).await.unwrap();
    assert_eq!(reply, b"too large");
    srv.await.unwrap();
    // And the client side refuses a response above its own cap.
    let (ep2, addr2) = server(1, "net");
    let srv2 = tokio::spawn(echo_one(ep2.clone(), 1 << 20));
    let conn2 = client(2)
        .connect(addr2, &key(1).verifying_key(), alpn(ALPN_VERSION, "net"), T)
        .await
        .unwrap();
    let err = request(&conn2, &vec![0u8; 4096], 100, T).await.unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Frame(FrameError::TooLarge {
                size: 4096,
                max: 100
            })
        ),
        "{err}"
    );
    conn2.close(0u32.into(), b"");
    let _ = srv2.await;
}

#[test]
fn backoff_grows_to_its_cap_with_jitter_and_resets() {
    let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(16));
    let mut last_cap = Duration::ZERO;
    for i in 0..20 {
        let low = b.next_delay(0);
        assert!(low <= Duration::from_secs(16));
        if i < 10 {
            assert!(low >= last_cap, "lower bound grows");
        }
        last_cap = low;
    }
    assert!(b.next_delay(u64::MAX) <= Duration::from_secs(16));
    assert!(
        b.next_delay(0) >= Duration::from_secs(8),
        "at the cap, at least half of it"
    );
    b.reset();
    assert!(b.next_delay(u64::MAX) <= Duration::from_millis(10));
}

#[test]
fn spki_round_trips_and_refuses_other_keys() {
    let k = key(9).verifying_key().to_bytes();
    assert_eq!(tls::ed25519_from_spki(&tls::spki(&k)), Some(k));
    assert_eq!(tls::ed25519_from_spki(&[0u8; 44]), None);
}

#[test]
fn a_frame_buffer_grows_with_the_bytes_never_beyond_the_declared_length() {
    const SIZE: usize = 8 << 20;
    let mut body = Vec::with_capacity(SIZE.min(FRAME_INITIAL_CAPACITY_BYTES));
    let mut capacities = vec![body.capacity()];
    while body.len() < SIZE {
        let chunk = (SIZE - body.len()).min(1200 * 7);
        grow_for(&mut body, chunk, SIZE);
        body.resize(body.len() + chunk, 0);
        assert!(
            body.capacity() <= SIZE,
            "capacity {} beyond the frame",
            body.capacity()
        );
        assert!(
            body.capacity() <= 2 * body.len().max(FRAME_INITIAL_CAPACITY_BYTES),
            "capacity {} far ahead of the {} bytes received",
            body.capacity(),
            body.len()
        );
        if capacities.last() != Some(&body.capacity()) {
            capacities.push(body.capacity());
        }
    }
    assert_eq!(
        body.capacity(),
        SIZE,
        "the last growth stops at the frame's length"
    );
    assert!(
        capacities.len() < 12,
        "doubling, not one growth per chunk: {capacities:?}"
    );
}

#[tokio::test]
async fn a_frame_announcing_more_than_it_sends_is_truncated_not_reserved() {
    let (ep, addr) = server(1, "net");
    let srv = tokio::spawn(async move {
        let conn = ep.accept().await.unwrap().await.unwrap();
        let (_send, mut recv) = conn.accept_bi().await.unwrap();
        read_frame(&mut recv, 8 << 20).await
    });
    let c = client(2);
    let conn = c
        .connect(addr, &key(1).verifying_key(), alpn(ALPN_VERSION, "net"), T)
        .await
        .unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&(8u32 << 20).to_be_bytes()).await.unwrap();
    send.write_all(&[5; 3000]).await.unwrap();
    send.finish().unwrap();
    assert!(matches!(srv.await.unwrap(), Err(FrameError::Truncated)));
}

/// A server offering `versions` (newest first) on "net".
fn server_speaking(seed: u8, versions: &[u16]) -> (quinn::Endpoint, SocketAddr) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ep = server_endpoint(
        socket,
        &key(seed),
        Alpns::versions(versions, "net"),
        &TransportLimits::default(),
    )
    .unwrap();
    let addr = ep.local_addr().unwrap();
    (ep, addr)
}

/// Connects a client offering `offered` to a server offering `server`;
/// returns the version each side read from its handshake.
async fn negotiate(server: &[u16], offered: &[u16]) -> Result<(u16, u16), ConnectError> {
    let (ep, addr) = server_speaking(1, server);
    let accept = tokio::spawn(async move {
        let conn = ep.accept().await?.await.ok()?;
        negotiated_version(&conn)
    });
    let conn = client(2)
        .connect(
            addr,
            &key(1).verifying_key(),
            Alpns::versions(offered, "net"),
            T,
        )
        .await?;
    let ours = negotiated_version(&conn).expect("client sees the chosen ALPN");
    let theirs = accept.await.unwrap().expect("server sees the chosen ALPN");
    Ok((ours, theirs))
}

#[tokio::test]
async fn the_newest_version_both_sides_speak_is_chosen() {
    // An upgraded relay (2, 1) meets an old node (1) and a new one (2, 1).
    assert_eq!(negotiate(&[2, 1], &[1]).await.unwrap(), (1, 1));
    assert_eq!(negotiate(&[2, 1], &[2, 1]).await.unwrap(), (2, 2));
    // An old relay (1) meets an upgraded node (2, 1): they speak 1.
    assert_eq!(negotiate(&[1], &[2, 1]).await.unwrap(), (1, 1));
    // The relay's order decides, whatever order the node offers in.
    assert_eq!(negotiate(&[2, 1], &[1, 2]).await.unwrap(), (2, 2));
}

#[tokio::test]
async fn no_common_version_is_a_clear_refusal() {
    let err = negotiate(&[3], &[2, 1]).await.unwrap_err();
    assert!(matches!(err, ConnectError::AlpnMismatch), "{err}");
    assert!(err.to_string().contains("protocol versions"), "{err}");
}

#[test]
fn the_version_is_read_back_from_an_alpn() {
    assert_eq!(alpn_version(&alpn(7, "torino")), Some(7));
    assert_eq!(alpn_version(&alpn(1, "a/b")), Some(1));
    assert_eq!(alpn_version(b"accordo/x/net"), None);
    assert_eq!(alpn_version(b"h3"), None);
    assert_eq!(alpn_version(&[0xff, 0xfe]), None);
}
