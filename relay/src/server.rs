//! The relay server: accepts QUIC connections, admits members with an
//! application-level hello, and serves sync requests against the store.
//!
//! One task per connection and one per stream, all owned by `JoinSet`s that
//! end on shutdown. SQLite work and signature verification run off the async
//! threads (`accordo_store::offload`). A sync request that finds nothing new
//! waits (long-poll) on the log head, so a connected node hears of new changes
//! within one round trip of their commit.

use crate::store::RelayStore;
use accordo_protocol::authority::Member;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::SignedChange;
use accordo_protocol::identity::NodeId;
use accordo_protocol::log::{ingest_push, serve_pull, serve_sync};
use accordo_protocol::registry::{InviteError, RegistryChange, Statement};
use accordo_protocol::wire::{
    ErrorCode, Hello, HelloAck, MemberList, RedeemAck, RedeemRequest, Request, Response,
    SyncRequest, SyncResponse, MAX_FRAME_BYTES, MAX_WAIT_MS,
};
use accordo_protocol::PROTOCOL_VERSION;
use accordo_store::StoreError;
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OnceCell};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

/// QUIC application close code for a clean shutdown.
const CLOSE_SHUTDOWN: u32 = 0;
/// QUIC application close code after a refused hello.
const CLOSE_REFUSED: u32 = 1;
/// How long shutdown waits for connections to drain before giving up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// QUIC application close code for a peer that broke a deadline.
const CLOSE_TOO_SLOW: u32 = 2;

/// Limits that protect the relay from slow or hostile peers.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// A request must arrive whole within this time after its stream opens
    /// (slowloris: a peer that opens streams and sends nothing).
    pub request_read_timeout: Duration,
    /// A connection must be admitted by a hello within this time.
    pub hello_deadline: Duration,
    /// Connections held at once; more are refused at the handshake.
    pub max_connections: usize,
}

/// 10 s covers a full 8 MiB frame on a slow municipal link (≈ 7 Mbit/s).
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A node says hello right after the handshake; 10 s is generous.
pub const HELLO_DEADLINE: Duration = Duration::from_secs(10);
/// Torino's 312 comuni with several offices each fit with room to spare.
pub const MAX_CONNECTIONS: usize = 4_096;

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            request_read_timeout: REQUEST_READ_TIMEOUT,
            hello_deadline: HELLO_DEADLINE,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// The log head and the long-polls waiting for it to move. (Not
/// `tokio::sync::watch`: it spreads waiters over randomly chosen queues, so
/// the order in which long-polls wake, and so a simulation run, would differ
/// between runs of one seed.)
struct Head {
    seq: AtomicU64,
    changed: Notify,
}

impl Head {
    fn get(&self) -> u64 {
        self.seq.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Moves the head forward to `to` (never back) and wakes the waiters.
    fn advance(&self, to: u64) {
        if self.seq.fetch_max(to, std::sync::atomic::Ordering::SeqCst) < to {
            self.changed.notify_waiters();
        }
    }

    /// Returns once the head is beyond `seq`.
    async fn wait_beyond(&self, seq: u64) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so an advance in between is not missed.
            notified.as_mut().enable();
            if self.get() > seq {
                return;
            }
            notified.await;
        }
    }
}

/// Shared state of a running relay.
pub struct Relay {
    pub id: NodeId,
    pub network: String,
    store: Mutex<RelayStore>,
    head: Head,
    connections: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("relay store task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl Relay {
    pub fn new(id: NodeId, network: String, store: RelayStore) -> Result<Arc<Self>, StoreError> {
        let head = store.head_seq()?;
        Ok(Arc::new(Relay {
            id,
            network,
            store: Mutex::new(store),
            head: Head {
                seq: AtomicU64::new(head),
                changed: Notify::new(),
            },
            connections: std::sync::atomic::AtomicUsize::new(0),
        }))
    }

    /// Connections currently held.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` on the store, off the async threads (see [`accordo_store::offload`]).
    async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut RelayStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ServeError> {
        let relay = Arc::clone(self);
        let out = accordo_store::offload(move || {
            // Invariant: the store mutex is only poisoned if a store call panicked,
            // which is a bug; continuing would risk acknowledging unsaved data.
            let mut store = relay.store.lock().expect("relay store mutex poisoned");
            f(&mut store)
        })
        .await??;
        Ok(out)
    }
}

/// Accepts connections on `endpoint` until `shutdown` fires, then closes them
/// and waits (bounded) for them to drain.
pub async fn serve(endpoint: quinn::Endpoint, relay: Arc<Relay>, shutdown: CancellationToken) {
    serve_with(endpoint, relay, shutdown, ServeLimits::default()).await
}

/// Decrements the connection count when a connection task ends.
struct Held(Arc<Relay>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0
            .connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// [`serve`] with explicit limits.
pub async fn serve_with(
    endpoint: quinn::Endpoint,
    relay: Arc<Relay>,
    shutdown: CancellationToken,
    limits: ServeLimits,
) {
    let mut conns = JoinSet::new();
    loop {
        // Biased, in a fixed order so that a simulation seed replays exactly:
        // shutdown, then reaping (finished tasks never pile up under a flood),
        // then new connections.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(res) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = res { warn!(error = %e, "connection task failed"); }
            }
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                if relay.connections() >= limits.max_connections {
                    warn!(peer = %incoming.remote_address(), limit = limits.max_connections, "refused: connection limit reached");
                    incoming.refuse();
                    continue;
                }
                relay.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let held = Held(Arc::clone(&relay));
                let relay = Arc::clone(&relay);
                let shutdown = shutdown.clone();
                let span = info_span!("conn", peer = %incoming.remote_address(), node = tracing::field::Empty);
                conns.spawn(async move {
                    let _held = held;
                    match incoming.await {
                        Ok(conn) => handle_connection(conn, relay, shutdown, limits).await,
                        Err(e) => debug!(error = %e, "handshake failed"),
                    }
                }.instrument(span));
            }
        }
    }
    info!("shutting down: closing connections");
    endpoint.close(CLOSE_SHUTDOWN.into(), b"relay shutting down");
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        conns.abort_all();
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, endpoint.wait_idle()).await;
}

async fn handle_connection(
    conn: quinn::Connection,
    relay: Arc<Relay>,
    shutdown: CancellationToken,
    limits: ServeLimits,
) {
    let Some(key) = accordo_net::peer_key(&conn) else {
        warn!("peer presented no ed25519 key");
        conn.close(CLOSE_REFUSED.into(), b"no key");
        return;
    };
    let node = NodeId(key);
    tracing::Span::current().record("node", tracing::field::display(node.short()));
    debug!(node = %node.short(), "connected");
    let admitted: Arc<OnceCell<Member>> = Arc::new(OnceCell::new());
    let mut streams = JoinSet::new();
    let hello_by = tokio::time::Instant::now() + limits.hello_deadline;
    loop {
        // Biased like `serve_with`: shutdown, deadline, reaping, new streams.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                conn.close(CLOSE_SHUTDOWN.into(), b"relay shutting down");
                break;
            }
            () = tokio::time::sleep_until(hello_by), if !admitted.initialized() => {
                warn!(node = %node.short(), "closed: no hello within the deadline");
                conn.close(CLOSE_TOO_SLOW.into(), b"no hello");
                break;
            }
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            stream = conn.accept_bi() => {
                let (send, recv) = match stream {
                    Ok(s) => s,
                    Err(e) => { debug!(node = %node.short(), reason = %e, "connection closed"); break; }
                };
                let relay = Arc::clone(&relay);
                let admitted = Arc::clone(&admitted);
                let conn = conn.clone();
                let shutdown = shutdown.clone();
                let read_timeout = limits.request_read_timeout;
                streams.spawn(async move {
                    handle_stream(send, recv, conn, node, relay, admitted, shutdown, read_timeout).await;
                }.in_current_span());
            }
        }
    }
    streams.abort_all();
    while streams.join_next().await.is_some() {}
}

#[allow(clippy::too_many_arguments)]
async fn handle_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    conn: quinn::Connection,
    node: NodeId,
    relay: Arc<Relay>,
    admitted: Arc<OnceCell<Member>>,
    shutdown: CancellationToken,
    read_timeout: Duration,
) {
    let read = tokio::time::timeout(
        read_timeout,
        accordo_net::read_frame(&mut recv, MAX_FRAME_BYTES),
    );
    let body = match read.await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            warn!(node = %node.short(), error = %e, "unreadable request");
            let _ = recv.stop(1u32.into());
            return;
        }
        Err(_) => {
            warn!(node = %node.short(), timeout_ms = read_timeout.as_millis() as u64, "request not received in time; stream dropped");
            let _ = recv.stop(CLOSE_TOO_SLOW.into());
            let _ = send.reset(CLOSE_TOO_SLOW.into());
            return;
        }
    };
    let response = match Request::decode(&body) {
        Err(e) => {
            warn!(node = %node.short(), error = %e, "malformed request");
            Response::error(ErrorCode::BadRequest, e.to_string())
        }
        Ok(Request::Hello(hello)) => handle_hello(hello, node, &relay, &admitted).await,
        Ok(Request::Sync(req)) => match admitted.get() {
            None => Response::error(ErrorCode::HelloRequired, "send a hello first"),
            Some(_) => handle_sync(req, node, &relay, &shutdown).await,
        },
        Ok(Request::Redeem(req)) => handle_redeem(req, node, &relay).await,
        Ok(Request::Members) => match admitted.get() {
            None => Response::error(ErrorCode::HelloRequired, "send a hello first"),
            Some(_) => match relay.with_store(|s| s.listed()).await {
                Ok(members) => Response::Members(MemberList { members }),
                Err(e) => internal(e),
            },
        },
    };
    let refused = matches!(&response, Response::Error(e) if e.code == ErrorCode::NotAdmitted);
    if let Err(e) = accordo_net::write_frame(&mut send, &response.encode()).await {
        debug!(node = %node.short(), error = %e, "response not delivered");
        return;
    }
    let _ = send.finish();
    if refused {
        // Let the refusal reach the peer before closing.
        let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
        conn.close(CLOSE_REFUSED.into(), b"not admitted");
    }
}

async fn handle_hello(
    hello: Hello,
    node: NodeId,
    relay: &Arc<Relay>,
    admitted: &OnceCell<Member>,
) -> Response {
    if hello.protocol_version != PROTOCOL_VERSION {
        return Response::error(
            ErrorCode::VersionMismatch,
            format!(
                "relay speaks protocol {PROTOCOL_VERSION}, node {}",
                hello.protocol_version
            ),
        );
    }
    if hello.network != relay.network {
        return Response::error(
            ErrorCode::NetworkMismatch,
            format!(
                "relay serves network {:?}, node asked for {:?}",
                relay.network, hello.network
            ),
        );
    }
    let member = match relay.with_store(move |s| s.admitted(&node)).await {
        Ok(Some(member)) => member,
        Ok(None) => {
            warn!(node = %node, "refused: key not admitted");
            return Response::error(
                ErrorCode::NotAdmitted,
                format!("node {node} is not admitted by this relay"),
            );
        }
        Err(e) => return internal(e),
    };
    info!(node = %node.short(), comune = %member.comune, role = %member.role, software = %hello.software, "admitted");
    let _ = admitted.set(member.clone());
    Response::HelloAck(HelloAck {
        relay: relay.id,
        member,
        head_seq: relay.head.get(),
    })
}

/// Stores an invitation's redemption sent by a key not yet enrolled. The
/// registry judges it (admin signature, single use, network); the relay adds
/// the one check that needs a clock: the invitation has not expired.
async fn handle_redeem(req: RedeemRequest, node: NodeId, relay: &Arc<Relay>) -> Response {
    let refused = |why: String| {
        warn!(node = %node.short(), reason = %why, "redemption refused");
        Response::error(ErrorCode::Refused, why)
    };
    if req.network != relay.network {
        return refused(format!(
            "relay serves network {:?}, the invitation is for {:?}",
            relay.network, req.network
        ));
    }
    if req.change.author != node || req.change.doc != DocId::Registry {
        return refused(
            "a redemption must be a registry change signed by the connecting key".into(),
        );
    }
    let verified = match req.change.clone().verify() {
        Ok(v) => v,
        Err(e) => return refused(format!("invalid envelope: {e}")),
    };
    let invite = match RegistryChange::from_verified(&verified).statement {
        Ok(Statement::Redeem { invite }) => invite,
        Ok(_) => return refused("the change is not a redemption".into()),
        Err(e) => return refused(e),
    };
    let now_ms = unix_ms();
    if invite.expires_ms < now_ms {
        return refused(
            InviteError::Expired {
                expires_ms: invite.expires_ms,
                now_ms,
            }
            .to_string(),
        );
    }
    let hash = verified.hash;
    let outcome = relay
        .with_store(move |s| {
            let out = s.with_log(|log, members| ingest_push(log, members, vec![Ok(verified)]))?;
            Ok((out, s.head_seq()?))
        })
        .await;
    match outcome {
        Ok(((_, rejects), _)) if !rejects.is_empty() => refused(rejects[0].reason.to_string()),
        Ok((_, head)) => {
            info!(node = %node.short(), comune = %invite.comune, role = %invite.role, "invitation redeemed");
            relay.head.advance(head);
            Response::Redeemed(RedeemAck { hash })
        }
        Err(e) => internal(e),
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn internal(e: ServeError) -> Response {
    warn!(error = %e, "internal error");
    Response::error(ErrorCode::Internal, "relay internal error; retry later")
}

async fn handle_sync(
    req: SyncRequest,
    node: NodeId,
    relay: &Arc<Relay>,
    shutdown: &CancellationToken,
) -> Response {
    let pushed = req.push.len();
    let wait = Duration::from_millis(u64::from(req.wait_ms.min(MAX_WAIT_MS)));
    let first = {
        let req = req.clone();
        relay
            .with_store(move |s| {
                // A key revoked while connected loses access at its next request.
                if s.admitted(&node)?.is_none() {
                    return Ok(None);
                }
                let verified = req.push.iter().cloned().map(SignedChange::verify).collect();
                s.with_log(|log, members| serve_sync(log, members, &req, verified))
                    .map(Some)
            })
            .await
    };
    let mut resp = match first {
        Ok(Some(resp)) => resp,
        Ok(None) => {
            warn!(node = %node.short(), "refused: key no longer admitted");
            return Response::error(
                ErrorCode::NotAdmitted,
                format!("node {node} is no longer admitted (revoked or rotated)"),
            );
        }
        Err(e) => return internal(e),
    };
    relay.head.advance(resp.head_seq);
    if pushed > 0 {
        info!(node = %node.short(), pushed, acked = resp.acks.len(), rejected = resp.rejects.len(), "ingested");
        for r in &resp.rejects {
            warn!(node = %node.short(), index = r.index, reason = %r.reason, "change rejected");
        }
    }
    if is_quiet(&resp) && !wait.is_zero() {
        let woke = tokio::select! {
            biased;
            () = shutdown.cancelled() => false,
            r = tokio::time::timeout(wait, relay.head.wait_beyond(resp.head_seq)) => r.is_ok(),
        };
        if woke {
            match pull_again(relay, req).await {
                Ok((head_seq, progress, entries)) => {
                    resp.head_seq = head_seq;
                    resp.progress = progress;
                    resp.entries = entries;
                }
                Err(e) => return internal(e),
            }
        }
    }
    Response::Sync(resp)
}

fn is_quiet(resp: &SyncResponse) -> bool {
    resp.acks.is_empty() && resp.rejects.is_empty() && resp.entries.is_empty()
}

async fn pull_again(
    relay: &Arc<Relay>,
    req: SyncRequest,
) -> Result<
    (
        u64,
        Vec<accordo_protocol::wire::CursorProgress>,
        Vec<accordo_protocol::wire::LogEntry>,
    ),
    ServeError,
> {
    relay
        .with_store(move |s| s.read_log(|log| serve_pull(log, &req, &HashSet::new())))
        .await
}
