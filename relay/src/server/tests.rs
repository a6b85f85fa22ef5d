//! The relay server in process: a fatal store error stops it.
use super::*;
use accordo_net::TransportLimits;

const NETWORK: &str = "fatal-test";

/// A relay on loopback over a fresh store, served with default limits.
fn start(
    dir: &std::path::Path,
) -> (
    Arc<Relay>,
    std::net::SocketAddr,
    ed25519_dalek::SigningKey,
    tokio::task::JoinHandle<Result<(), FatalError>>,
) {
    let store = crate::store::open(&dir.join("relay.db")).expect("store opens");
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let relay =
        Relay::new(NodeId::from_signing_key(&key), NETWORK.into(), store).expect("relay starts");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("loopback bind");
    let addr = socket.local_addr().expect("bound");
    let endpoint = accordo_net::server_endpoint(
        socket,
        &key,
        accordo_net::alpn(accordo_protocol::PROTOCOL_VERSION, NETWORK),
        &TransportLimits::default(),
    )
    .expect("endpoint");
    let task = tokio::spawn(serve(
        endpoint,
        Arc::clone(&relay),
        CancellationToken::new(),
    ));
    (relay, addr, key, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_store_stops_the_server_with_a_fatal_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (relay, addr, key, task) = start(dir.path());
    // A store call that panics (the bug this guards against) poisons the lock.
    let poisoner = Arc::clone(&relay);
    let panicked = std::thread::spawn(move || {
        let _store = poisoner.store.lock().expect("not yet poisoned");
        panic!("a store call panicked");
    })
    .join();
    assert!(panicked.is_err() && relay.store.is_poisoned());
    // Readiness says so at once, with the reason.
    let probe = crate::metrics::RelayProbe {
        relay: Arc::clone(&relay),
        db_path: dir.path().join("relay.db"),
    };
    let why = accordo_observe::Probe::ready(&probe).expect_err("not ready");
    assert!(why.contains("poisoned"), "{why}");

    // The next connection needs the store: the server stops instead of
    // answering "internal error" forever.
    let client = accordo_net::Client::new(
        "127.0.0.1:0".parse().expect("literal"),
        &ed25519_dalek::SigningKey::from_bytes(&[4; 32]),
        &TransportLimits::default(),
    )
    .expect("client");
    let conn = client
        .connect(
            addr,
            &key.verifying_key(),
            accordo_net::alpn(accordo_protocol::PROTOCOL_VERSION, NETWORK),
            Duration::from_secs(5),
        )
        .await
        .expect("the handshake needs no store");
    let served = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the server stops by itself")
        .expect("the server task does not panic");
    let err = served.expect_err("a fatal error is returned");
    assert!(err.to_string().contains("poisoned"), "{err}");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), conn.closed())
            .await
            .is_ok(),
        "its connections are closed"
    );
}
