//! QUIC transport shared by the node (client) and the relay (server).
//!
//! * **Identity.** Both sides authenticate with their ed25519 node keys as TLS
//!   1.3 raw public keys (RFC 7250): no certificates, no CA. The client pins
//!   the relay's key; the relay accepts any ed25519 client key and decides
//!   admission in the application's hello (a TLS client only learns of a
//!   refused certificate when it first uses a stream, so a hello/ack gives a
//!   clear answer instead).
//! * **ALPN** carries the protocol version and the network name, so nodes of
//!   another network fail the handshake. Each side offers one ALPN per
//!   protocol version it speaks ([`Alpns`]); the relay picks the newest one
//!   both speak (its own list is newest first) and either side reads the
//!   choice with [`negotiated_version`] — so a relay can be upgraded before
//!   its nodes and versions N and N-1 meet on N-1.
//! * **Frames.** A message is a u32 big-endian length then the body, on a
//!   bidirectional stream; a length above the cap is refused before reading,
//!   and the buffer grows as bytes arrive (a declared length costs nothing).
//! * **Timeouts.** Our own connect timeout (a dead host otherwise fails only
//!   at the idle timeout), idle timeout and keep-alive, and a jittered
//!   exponential [`Backoff`] without a retry limit.
//!
//! Only the `ring` crypto provider is used.

pub mod keyfile;
mod tls;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use tls::ED25519_SPKI_PREFIX;

/// Limits of a QUIC endpoint. Defaults are named constants with their reasons.
#[derive(Debug, Clone)]
pub struct TransportLimits {
    /// Concurrent request streams per connection (each is one request/response).
    pub max_concurrent_bidi_streams: u32,
    pub idle_timeout_ms: u64,
    pub keep_alive_ms: u64,
    pub stream_receive_window_bytes: u32,
    pub receive_window_bytes: u32,
    /// Handshakes the server holds at once before refusing new ones.
    pub max_concurrent_handshakes: u32,
}

/// A node runs a puller and a pusher; 16 leaves room for retries while
/// bounding what one peer can make the relay hold.
pub const MAX_CONCURRENT_BIDI_STREAMS: u32 = 16;
/// RESEARCH: 30–60 s idle timeout; 30 s frees dead peers sooner.
pub const IDLE_TIMEOUT_MS: u64 = 30_000;
/// RESEARCH: 10–15 s keep-alive, well inside the idle timeout.
pub const KEEP_ALIVE_MS: u64 = 10_000;
/// One full frame (8 MiB) per stream can be in flight.
pub const STREAM_RECEIVE_WINDOW_BYTES: u32 = 8 * 1024 * 1024;
/// Two full frames per connection.
pub const RECEIVE_WINDOW_BYTES: u32 = 16 * 1024 * 1024;
/// 312 comuni reconnecting at once after an outage fit; a handshake flood does not grow memory.
pub const MAX_CONCURRENT_HANDSHAKES: u32 = 512;

impl Default for TransportLimits {
    fn default() -> Self {
        TransportLimits {
            max_concurrent_bidi_streams: MAX_CONCURRENT_BIDI_STREAMS,
            idle_timeout_ms: IDLE_TIMEOUT_MS,
            keep_alive_ms: KEEP_ALIVE_MS,
            stream_receive_window_bytes: STREAM_RECEIVE_WINDOW_BYTES,
            receive_window_bytes: RECEIVE_WINDOW_BYTES,
            max_concurrent_handshakes: MAX_CONCURRENT_HANDSHAKES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the relay presented a different key than the pinned relay id")]
    RelayKeyMismatch,
    #[error("the relay serves another network, or speaks none of the protocol versions offered (ALPN mismatch)")]
    AlpnMismatch,
    #[error("connection failed: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("cannot start connecting: {0}")]
    Start(#[from] quinn::ConnectError),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("stream closed before a frame")]
    Closed,
    #[error("stream ended inside a frame")]
    Truncated,
    #[error("stream read: {0}")]
    Read(#[from] quinn::ReadError),
    #[error("stream write: {0}")]
    Write(#[from] quinn::WriteError),
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// ALPN of a protocol version on a network: `accordo/<version>/<network>`.
pub fn alpn(protocol_version: u16, network: &str) -> Vec<u8> {
    format!("accordo/{protocol_version}/{network}").into_bytes()
}

/// The ALPNs one side offers, in its order of preference (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alpns(pub Vec<Vec<u8>>);

impl Alpns {
    /// One ALPN per version of `versions` (newest first) on `network`.
    pub fn versions(versions: &[u16], network: &str) -> Alpns {
        Alpns(versions.iter().map(|v| alpn(*v, network)).collect())
    }
}

impl From<Vec<u8>> for Alpns {
    fn from(one: Vec<u8>) -> Alpns {
        Alpns(vec![one])
    }
}

/// The protocol version in an ALPN of [`alpn`]'s form.
pub fn alpn_version(alpn: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(alpn).ok()?;
    let rest = text.strip_prefix("accordo/")?;
    let (version, _network) = rest.split_once('/')?;
    version.parse().ok()
}

/// The protocol version the handshake of `conn` agreed on.
pub fn negotiated_version(conn: &quinn::Connection) -> Option<u16> {
    let data = conn.handshake_data()?;
    let data = data.downcast_ref::<quinn::crypto::rustls::HandshakeData>()?;
    alpn_version(data.protocol.as_deref()?)
}

fn transport_config(limits: &TransportLimits, keep_alive: bool) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(limits.max_concurrent_bidi_streams.into());
    // Requests use bidirectional streams only.
    t.max_concurrent_uni_streams(0u32.into());
    t.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(Duration::from_millis(limits.idle_timeout_ms))
            .unwrap_or_else(|_| quinn::VarInt::from_u32(30_000).into()),
    ));
    if keep_alive {
        t.keep_alive_interval(Some(Duration::from_millis(limits.keep_alive_ms)));
    }
    t.stream_receive_window(limits.stream_receive_window_bytes.into());
    t.receive_window(limits.receive_window_bytes.into());
    t
}

/// The relay's endpoint on an already bound socket.
pub fn server_endpoint(
    socket: std::net::UdpSocket,
    key: &ed25519_dalek::SigningKey,
    alpn: impl Into<Alpns>,
    limits: &TransportLimits,
) -> Result<quinn::Endpoint, TransportError> {
    let runtime = quinn::default_runtime()
        .ok_or_else(|| TransportError::Io(std::io::Error::other("no async runtime")))?;
    let socket = runtime.wrap_udp_socket(socket)?;
    server_endpoint_on(
        Io {
            socket,
            runtime,
            endpoint: quinn::EndpointConfig::default(),
        },
        key,
        alpn,
        limits,
    )
}

/// Where an endpoint sends its datagrams and reads its clock: a real UDP
/// socket and tokio, or a simulated network and clock (the deterministic
/// simulation drives the real QUIC stack through this).
pub struct Io {
    pub socket: Arc<dyn quinn::AsyncUdpSocket>,
    pub runtime: Arc<dyn quinn::Runtime>,
    /// The simulation seeds the QUIC stack's random choices here.
    pub endpoint: quinn::EndpointConfig,
}

/// The relay's endpoint on any [`Io`].
pub fn server_endpoint_on(
    io: Io,
    key: &ed25519_dalek::SigningKey,
    alpn: impl Into<Alpns>,
    limits: &TransportLimits,
) -> Result<quinn::Endpoint, TransportError> {
    let tls = tls::server_config(key, alpn.into())?;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| TransportError::Tls(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config(limits, false)));
    config.max_incoming(limits.max_concurrent_handshakes as usize);
    Ok(quinn::Endpoint::new_with_abstract_socket(
        io.endpoint,
        Some(config),
        io.socket,
        io.runtime,
    )?)
}

/// A node's QUIC client: an endpoint plus the identity it presents.
pub struct Client {
    endpoint: quinn::Endpoint,
    key: ed25519_dalek::SigningKey,
    limits: TransportLimits,
}

impl Client {
    pub fn new(
        bind: SocketAddr,
        key: &ed25519_dalek::SigningKey,
        limits: &TransportLimits,
    ) -> Result<Client, TransportError> {
        Ok(Client {
            endpoint: quinn::Endpoint::client(bind)?,
            key: key.clone(),
            limits: limits.clone(),
        })
    }

    /// A client on any [`Io`].
    pub fn on(
        io: Io,
        key: &ed25519_dalek::SigningKey,
        limits: &TransportLimits,
    ) -> Result<Client, TransportError> {
        Ok(Client {
            endpoint: quinn::Endpoint::new_with_abstract_socket(
                io.endpoint,
                None,
                io.socket,
                io.runtime,
            )?,
            key: key.clone(),
            limits: limits.clone(),
        })
    }

    /// Connects with our own `timeout`. The server's key must equal
    /// `relay_key` and it must serve one of `alpn`.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        relay_key: &ed25519_dalek::VerifyingKey,
        alpn: impl Into<Alpns>,
        timeout: Duration,
    ) -> Result<quinn::Connection, ConnectError> {
        let (tls, pinned) = tls::client_config(&self.key, relay_key, alpn.into())?;
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| TransportError::Tls(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::new(transport_config(&self.limits, true)));
        // The server name is not checked (the key is pinned) but must be a valid DNS name.
        let connecting = self.endpoint.connect_with(config, addr, "relay.accordo")?;
        match tokio::time::timeout(timeout, connecting).await {
            Err(_) => Err(ConnectError::Timeout(timeout)),
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(_)) if pinned.mismatch.load(Ordering::SeqCst) => {
                Err(ConnectError::RelayKeyMismatch)
            }
            Ok(Err(e)) if is_alpn_refusal(&e) => Err(ConnectError::AlpnMismatch),
            Ok(Err(e)) => Err(ConnectError::Connection(e)),
        }
    }

    /// Closes every connection and waits (bounded) for the close to be sent.
    pub async fn close(&self) {
        self.endpoint.close(0u32.into(), b"bye");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }
}

/// TLS alert 120 (no_application_protocol) as a QUIC crypto error.
fn is_alpn_refusal(e: &quinn::ConnectionError) -> bool {
    const NO_APPLICATION_PROTOCOL: u8 = 120;
    match e {
        quinn::ConnectionError::ConnectionClosed(close) => {
            close.error_code == quinn::TransportErrorCode::crypto(NO_APPLICATION_PROTOCOL)
        }
        quinn::ConnectionError::TransportError(t) => {
            t.code == quinn::TransportErrorCode::crypto(NO_APPLICATION_PROTOCOL)
        }
        _ => false,
    }
}

/// The ed25519 key the peer authenticated with during the handshake.
pub fn peer_key(conn: &quinn::Connection) -> Option<[u8; 32]> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast_ref::<Vec<rustls::pki_types::CertificateDer<'static>>>()?;
    tls::ed25519_from_spki(certs.first()?.as_ref())
}

/// Writes one frame: u32 big-endian length, then `body`.
pub async fn write_frame(send: &mut quinn::SendStream, body: &[u8]) -> Result<(), FrameError> {
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge {
        size: body.len(),
        max: u32::MAX as usize,
    })?;
    send.write_all(&len.to_be_bytes()).await?;
    send.write_all(body).await?;
    Ok(())
}

/// What a frame's buffer starts at, whatever length it declares: a peer that
/// announces 8 MiB and sends nothing costs 64 KiB, not 8 MiB. Most requests
/// and responses fit (a hello, an ack, a small push), so they take one
/// allocation.
pub const FRAME_INITIAL_CAPACITY_BYTES: usize = 64 * 1024;

/// Reads one frame, refusing a declared length above `max_bytes` before
/// reading it. The buffer grows with the bytes that arrive (doubling, never
/// beyond the declared length), so what a frame costs is what the peer sent.
pub async fn read_frame(
    recv: &mut quinn::RecvStream,
    max_bytes: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Err(FrameError::Closed),
        Err(quinn::ReadExactError::FinishedEarly(_)) => return Err(FrameError::Truncated),
        Err(quinn::ReadExactError::ReadError(e)) => return Err(e.into()),
    }
    let size = u32::from_be_bytes(len) as usize;
    if size > max_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_bytes,
        });
    }
    let mut body = Vec::with_capacity(size.min(FRAME_INITIAL_CAPACITY_BYTES));
    while body.len() < size {
        let Some(chunk) = recv.read_chunk(size - body.len(), true).await? else {
            return Err(FrameError::Truncated);
        };
        grow_for(&mut body, chunk.bytes.len(), size);
        body.extend_from_slice(&chunk.bytes);
    }
    debug_assert_eq!(body.len(), size, "read_chunk never returns more than asked");
    Ok(body)
}

/// Makes room for `more` bytes in `body`: at least double the capacity, but
/// never beyond `size`, the frame's declared length.
fn grow_for(body: &mut Vec<u8>, more: usize, size: usize) {
    let needed = body.len() + more;
    if needed > body.capacity() {
        let target = body.capacity().saturating_mul(2).max(needed).min(size);
        body.reserve_exact(target - body.len());
    }
}

/// One request/response exchange on a fresh bidirectional stream.
pub async fn request(
    conn: &quinn::Connection,
    body: &[u8],
    max_response_bytes: usize,
    timeout: Duration,
) -> Result<Vec<u8>, RequestError> {
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await?;
        write_frame(&mut send, body).await?;
        // Finishing only fails if the stream is already closed; the read below reports why.
        let _ = send.finish();
        Ok::<_, RequestError>(read_frame(&mut recv, max_response_bytes).await?)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| RequestError::Timeout(timeout))?
}

/// Jittered exponential backoff without a retry limit ("equal jitter": half
/// the current step plus a random part of the other half).
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            step: min,
        }
    }

    /// The next delay; `random` is any random u64 (passed in so tests are deterministic).
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let step_ms = self.step.as_millis().max(1) as u64;
        let half = step_ms / 2;
        let delay = Duration::from_millis(half + random % (step_ms - half + 1));
        self.step = (self.step * 2).min(self.max);
        delay.min(self.max)
    }

    pub fn reset(&mut self) {
        self.step = self.min;
    }
}

#[cfg(test)]
mod tests;
