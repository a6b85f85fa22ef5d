//! Shared by the relay's in-process tests: a relay on loopback with its own
//! store, and a peer speaking the wire protocol over real QUIC.
#![allow(dead_code)]

use accordo_net::{Client, TransportLimits};
use accordo_protocol::envelope::SignedChange;
use accordo_protocol::testkit::TestAuthor;
use accordo_protocol::wire::{
    Hello, Request, Response, SyncRequest, SyncResponse, MAX_FRAME_BYTES,
};
use accordo_protocol::PROTOCOL_VERSION;
use accordo_relay::server::{serve_with, Relay, ServeLimits};
use accordo_relay::store;
use anyhow::{bail, Result};
use ed25519_dalek::SigningKey;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const NETWORK: &str = "test-net";

pub struct TestRelay {
    pub addr: SocketAddr,
    pub key: SigningKey,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), accordo_relay::server::FatalError>>,
    pub relay: Arc<Relay>,
    pub _dir: tempfile::TempDir,
}

pub async fn start_relay(admin: &TestAuthor) -> Result<TestRelay> {
    start_relay_with(admin, ServeLimits::default()).await
}

pub async fn start_relay_with(admin: &TestAuthor, limits: ServeLimits) -> Result<TestRelay> {
    let dir = tempfile::tempdir()?;
    let mut store = store::open(&dir.path().join("relay.db"))?;
    store.allow_admin(&admin.id(), 0)?;
    let key = SigningKey::from_bytes(&[7; 32]);
    let id = accordo_protocol::identity::NodeId::from_signing_key(&key);
    let relay = Relay::new(id, NETWORK.into(), store)?;
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let addr = socket.local_addr()?;
    let endpoint = accordo_net::server_endpoint(
        socket,
        &key,
        accordo_net::alpn(PROTOCOL_VERSION, NETWORK),
        &TransportLimits::default(),
    )?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_with(
        endpoint,
        Arc::clone(&relay),
        shutdown.clone(),
        limits,
    ));
    Ok(TestRelay {
        addr,
        key,
        shutdown,
        task,
        relay,
        _dir: dir,
    })
}

pub struct Peer {
    pub conn: quinn::Connection,
    pub _client: Client,
}

impl Peer {
    pub async fn connect(relay: &TestRelay, author: &TestAuthor) -> Result<Peer> {
        Peer::connect_with(relay, author, "127.0.0.1", &TransportLimits::default()).await
    }

    /// Connects from another loopback address (Linux routes all of
    /// 127.0.0.0/8 to lo), so one test can play several hosts, with its own
    /// transport limits (a small receive window makes a peer that reads slowly).
    pub async fn connect_with(
        relay: &TestRelay,
        author: &TestAuthor,
        host: &str,
        limits: &TransportLimits,
    ) -> Result<Peer> {
        let client = Client::new(format!("{host}:0").parse()?, &author.key, limits)?;
        let conn = client
            .connect(
                relay.addr,
                &relay.key.verifying_key(),
                accordo_net::alpn(PROTOCOL_VERSION, NETWORK),
                Duration::from_secs(5),
            )
            .await?;
        Ok(Peer {
            conn,
            _client: client,
        })
    }

    pub async fn raw(&self, body: &[u8]) -> Result<Response> {
        let reply =
            accordo_net::request(&self.conn, body, MAX_FRAME_BYTES, Duration::from_secs(10))
                .await?;
        Ok(Response::decode(&reply)?)
    }

    pub async fn call(&self, req: &Request) -> Result<Response> {
        self.raw(&req.encode()).await
    }

    pub async fn hello(&self) -> Result<Response> {
        self.call(&Request::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            network: NETWORK.into(),
            software: "test".into(),
        }))
        .await
    }

    pub async fn push(&self, push: Vec<SignedChange>) -> Result<SyncResponse> {
        let req = Request::Sync(SyncRequest {
            push,
            cursors: vec![],
            max_response_bytes: 1 << 20,
            wait_ms: 0,
        });
        match self.call(&req).await? {
            Response::Sync(r) => Ok(r),
            other => bail!("unexpected response {other:?}"),
        }
    }
}
