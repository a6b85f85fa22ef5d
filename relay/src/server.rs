//! The relay server: accepts QUIC connections, admits members with an
//! application-level hello, and serves sync requests against the store.
//!
//! One task per connection and one per stream, all owned by `JoinSet`s that
//! end on shutdown. SQLite work and signature verification run off the async
//! threads (`accordo_store::offload`). A sync request that finds nothing new
//! waits (long-poll) on the log head, so a connected node hears of new changes
//! within one round trip of their commit.
//!
//! Against hostile peers every read and write has a deadline, connections are
//! counted per source address and per key (`quota`), keys the relay does not
//! know get a short stay and a small budget, and frames before the hello are
//! capped small. A panic in a store call is fatal: `serve_with` returns a
//! [`FatalError`] and the binary exits non-zero to be restarted.

use crate::metrics::{ConnectedGuard, RelayMetrics};
use crate::presence::Presence;
use crate::quota::{KeySlot, Quotas};
use crate::store::RelayStore;
use accordo_protocol::authority::Member;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::SignedChange;
use accordo_protocol::identity::{NodeId, Role};
use accordo_protocol::log::{ingest_push, serve_pull, serve_sync};
use accordo_protocol::registry::{InviteError, RegistryChange, Statement};
use accordo_protocol::wire::{
    ErrorCode, Hello, HelloAck, LogEpoch, MemberList, PresenceList, RedeemAck, RedeemRequest,
    Request, Response, SyncRequest, SyncResponse, MAX_FRAME_BYTES, MAX_WAIT_MS,
};
use accordo_store::StoreError;
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{Notify, OnceCell};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, info_span, warn, Instrument};

/// QUIC application close code for a clean shutdown.
const CLOSE_SHUTDOWN: u32 = 0;
/// QUIC application close code after a refused hello.
const CLOSE_REFUSED: u32 = 1;
/// How long shutdown waits for connections to drain before giving up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// QUIC application close code for a peer that broke a deadline.
const CLOSE_TOO_SLOW: u32 = 2;
/// QUIC application close code for a connection over a per-key or
/// unknown-key quota.
const CLOSE_BUSY: u32 = 3;
/// QUIC application close code when the relay stops on a fatal error.
const CLOSE_FATAL: u32 = 4;

mod limits;

pub use limits::*;

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
    /// The identity of the log served (see `LogEpoch`).
    pub log_epoch: LogEpoch,
    store: Mutex<RelayStore>,
    head: Head,
    quotas: Arc<Quotas>,
    presence: Presence,
    /// Why the relay cannot go on, once it cannot; `failed` fires then.
    fatal: OnceLock<String>,
    failed: CancellationToken,
    metrics: RelayMetrics,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("relay store task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error(
        "the relay store lock is poisoned (a store call panicked), so the store's state is unknown"
    )]
    Poisoned,
}

impl ServeError {
    /// A panic in a store call (or the poisoned lock it leaves): no later
    /// request can be served safely, and the process must restart.
    fn is_fatal(&self) -> bool {
        match self {
            ServeError::Store(_) => false,
            ServeError::Join(j) => j.is_panic(),
            ServeError::Poisoned => true,
        }
    }
}

/// The relay stopped serving because it could not go on; the caller should
/// exit non-zero so that the service manager restarts it.
#[derive(Debug, thiserror::Error)]
#[error("relay stopped on a fatal error: {0}")]
pub struct FatalError(pub String);

impl Relay {
    pub fn new(id: NodeId, network: String, store: RelayStore) -> Result<Arc<Self>, StoreError> {
        let head = store.head_seq()?;
        // A store without an epoch (a test's, the simulation's) serves the
        // all-zero one, so that no randomness enters a replayed run.
        let log_epoch = store.log_epoch()?.unwrap_or(LogEpoch {
            epoch: [0; accordo_protocol::wire::LOG_EPOCH_BYTES],
        });
        let presence = Presence::loaded(store.presence()?);
        Ok(Arc::new(Relay {
            id,
            network,
            log_epoch,
            store: Mutex::new(store),
            head: Head {
                seq: AtomicU64::new(head),
                changed: Notify::new(),
            },
            quotas: Arc::new(Quotas::default()),
            presence,
            fatal: OnceLock::new(),
            failed: CancellationToken::new(),
            metrics: RelayMetrics::default(),
        }))
    }

    /// The relay's metric families (see [`crate::metrics`]).
    pub fn metrics(&self) -> &RelayMetrics {
        &self.metrics
    }

    /// Why the relay stopped serving, once a fatal error stopped it.
    pub fn fatal_error(&self) -> Option<&str> {
        self.fatal.get().map(String::as_str)
    }

    /// The log head read from the store, on the calling (blocking) thread.
    pub fn store_head_seq(&self) -> Result<u64, ServeError> {
        let store = self.store.lock().map_err(|_| ServeError::Poisoned)?;
        Ok(store.head_seq()?)
    }

    /// Connections currently held.
    pub fn connections(&self) -> usize {
        self.quotas.total()
    }

    /// Connections currently held by keys the relay did not know.
    pub fn unknown_connections(&self) -> usize {
        self.quotas.unknown()
    }

    /// Records a fatal error (the first one) and stops the server.
    fn fail(&self, e: &ServeError) {
        if self.fatal.set(e.to_string()).is_ok() {
            error!(error = %e, "fatal: the relay stops serving so that its service manager restarts it");
        }
        self.failed.cancel();
    }

    /// Runs `f` on the store, off the async threads (see [`accordo_store::offload`]).
    /// A panic inside a store call poisons the lock: that is fatal (see [`Relay::fail`]).
    async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut RelayStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ServeError> {
        let relay = Arc::clone(self);
        let out = accordo_store::offload(move || match relay.store.lock() {
            Ok(mut store) => f(&mut store).map_err(ServeError::Store),
            Err(_) => Err(ServeError::Poisoned),
        })
        .await
        .unwrap_or_else(|e| Err(ServeError::Join(e)));
        if let Err(e) = &out {
            if e.is_fatal() {
                self.fail(e);
            }
        }
        out
    }
}

/// Accepts connections on `endpoint` until `shutdown` fires, then closes them
/// and waits (bounded) for them to drain. Returns a [`FatalError`] if it
/// stopped because the relay cannot go on.
pub async fn serve(
    endpoint: quinn::Endpoint,
    relay: Arc<Relay>,
    shutdown: CancellationToken,
) -> Result<(), FatalError> {
    serve_with(endpoint, relay, shutdown, ServeLimits::default()).await
}

/// [`serve`] with explicit limits.
pub async fn serve_with(
    endpoint: quinn::Endpoint,
    relay: Arc<Relay>,
    shutdown: CancellationToken,
    limits: ServeLimits,
) -> Result<(), FatalError> {
    // Connections stop on shutdown or on a fatal error.
    let stop = shutdown.child_token();
    let mut conns = JoinSet::new();
    loop {
        // Biased, in a fixed order so that a simulation seed replays exactly:
        // shutdown, a fatal error, then reaping (finished tasks never pile up
        // under a flood), then new connections.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = relay.failed.cancelled() => break,
            Some(res) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = res { warn!(error = %e, "connection task failed"); }
            }
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let peer = incoming.remote_address();
                let slot = match relay.quotas.addr_slot(peer.ip(), &limits.quota()) {
                    Ok(slot) => slot,
                    Err(why) => {
                        warn!(%peer, reason = %why, "refused at the handshake");
                        incoming.refuse();
                        continue;
                    }
                };
                let relay = Arc::clone(&relay);
                let stop = stop.clone();
                let span = info_span!("conn", %peer, node = tracing::field::Empty);
                conns.spawn(async move {
                    let _slot = slot;
                    match incoming.await {
                        Ok(conn) => handle_connection(conn, relay, stop, limits).await,
                        Err(e) => debug!(error = %e, "handshake failed"),
                    }
                }.instrument(span));
            }
        }
    }
    stop.cancel();
    let fatal = relay.fatal.get().cloned();
    let (code, why) = match fatal {
        Some(_) => (CLOSE_FATAL, &b"relay failed"[..]),
        None => (CLOSE_SHUTDOWN, &b"relay shutting down"[..]),
    };
    info!("shutting down: closing connections");
    endpoint.close(code.into(), why);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        conns.abort_all();
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, endpoint.wait_idle()).await;
    fatal.map_or(Ok(()), |why| Err(FatalError(why)))
}

/// What every stream of one connection shares.
struct Session {
    conn: quinn::Connection,
    node: NodeId,
    relay: Arc<Relay>,
    admitted: OnceCell<Member>,
    /// Counts the connection in `connected_nodes` from its hello to its end.
    connected: OnceLock<ConnectedGuard>,
    stop: CancellationToken,
    limits: ServeLimits,
}

/// Takes the connection's per-key slot (and, for a key the relay does not
/// know, an unknown-key slot), or closes it. Returns the slot and whether the
/// key is known.
async fn key_slot(
    conn: &quinn::Connection,
    node: NodeId,
    relay: &Arc<Relay>,
    limits: &ServeLimits,
) -> Option<(KeySlot, bool)> {
    let known = match relay.with_store(move |s| s.knows(&node)).await {
        Ok(known) => known,
        Err(e) => {
            warn!(node = %node.short(), error = %e, "closed: cannot tell whether the key is known");
            conn.close(CLOSE_BUSY.into(), b"retry later");
            return None;
        }
    };
    match relay.quotas.key_slot(node, known, &limits.quota()) {
        Ok(slot) => Some((slot, known)),
        Err(why) => {
            warn!(node = %node.short(), known, reason = %why, "closed after the handshake");
            conn.close(CLOSE_BUSY.into(), b"too many connections");
            None
        }
    }
}

async fn handle_connection(
    conn: quinn::Connection,
    relay: Arc<Relay>,
    stop: CancellationToken,
    limits: ServeLimits,
) {
    let Some(key) = accordo_net::peer_key(&conn) else {
        warn!("peer presented no ed25519 key");
        conn.close(CLOSE_REFUSED.into(), b"no key");
        return;
    };
    let node = NodeId(key);
    tracing::Span::current().record("node", tracing::field::display(node.short()));
    let Some((_slot, known)) = key_slot(&conn, node, &relay, &limits).await else {
        return;
    };
    debug!(node = %node.short(), known, "connected");
    // A known key must say hello in time; an unknown one is closed at its
    // (shorter) deadline whatever it says.
    let close_by = tokio::time::Instant::now()
        + if known {
            limits.hello_deadline
        } else {
            limits.unknown_key_deadline
        };
    let session = Arc::new(Session {
        conn,
        node,
        relay,
        admitted: OnceCell::new(),
        connected: OnceLock::new(),
        stop,
        limits,
    });
    let mut streams = JoinSet::new();
    loop {
        // Biased like `serve_with`: stop, deadline, reaping, new streams.
        tokio::select! {
            biased;
            () = session.stop.cancelled() => {
                session.conn.close(CLOSE_SHUTDOWN.into(), b"relay shutting down");
                break;
            }
            () = tokio::time::sleep_until(close_by), if !known || !session.admitted.initialized() => {
                warn!(node = %node.short(), known, "closed: deadline passed without an admitted hello");
                session.conn.close(CLOSE_TOO_SLOW.into(), b"no hello");
                break;
            }
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            stream = session.conn.accept_bi() => {
                let (send, recv) = match stream {
                    Ok(s) => s,
                    Err(e) => { debug!(node = %node.short(), reason = %e, "connection closed"); break; }
                };
                let session = Arc::clone(&session);
                streams.spawn(async move { handle_stream(send, recv, &session).await }.in_current_span());
            }
        }
    }
    streams.abort_all();
    while streams.join_next().await.is_some() {}
}

/// Reads one request frame within the read timeout; `None` if the stream was
/// dropped (unreadable, too large, or too slow).
async fn read_request(recv: &mut quinn::RecvStream, session: &Session) -> Option<Vec<u8>> {
    let node = session.node;
    let read_timeout = session.limits.request_read_timeout;
    // Before the hello only a hello or a redemption may come: small frames.
    let max_bytes = if session.admitted.initialized() {
        MAX_FRAME_BYTES
    } else {
        MAX_UNADMITTED_FRAME_BYTES
    };
    match tokio::time::timeout(read_timeout, accordo_net::read_frame(recv, max_bytes)).await {
        Ok(Ok(body)) => Some(body),
        Ok(Err(e)) => {
            warn!(node = %node.short(), error = %e, "unreadable request");
            let _ = recv.stop(1u32.into());
            None
        }
        Err(_) => {
            warn!(node = %node.short(), timeout_ms = read_timeout.as_millis() as u64, "request not received in time; stream dropped");
            let _ = recv.stop(CLOSE_TOO_SLOW.into());
            None
        }
    }
}

async fn handle_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    session: &Session,
) {
    let node = session.node;
    let relay = &session.relay;
    let Some(body) = read_request(&mut recv, session).await else {
        let _ = send.reset(CLOSE_TOO_SLOW.into());
        return;
    };
    let metrics = relay.metrics();
    metrics.received_bytes.inc_by(frame_bytes(body.len()));
    let response = match Request::decode(&body) {
        Err(e) => {
            warn!(node = %node.short(), error = %e, "malformed request");
            Response::error(ErrorCode::BadRequest, e.to_string())
        }
        Ok(Request::Hello(hello)) => {
            let negotiated = accordo_net::negotiated_version(&session.conn);
            let response = handle_hello(hello, negotiated, node, relay, &session.admitted).await;
            if session.admitted.initialized() {
                let _ = session
                    .connected
                    .set(ConnectedGuard::new(Arc::clone(relay)));
            }
            response
        }
        Ok(Request::Sync(req)) => match session.admitted.get() {
            None => Response::error(ErrorCode::HelloRequired, "send a hello first"),
            Some(member) => handle_sync(req, member, relay, &session.stop).await,
        },
        Ok(Request::Redeem(req)) => handle_redeem(req, node, relay).await,
        Ok(Request::LogEpoch) => match session.admitted.get() {
            None => Response::error(ErrorCode::HelloRequired, "send a hello first"),
            Some(_) => Response::LogEpoch(relay.log_epoch),
        },
        Ok(Request::Members) => match session.admitted.get() {
            None => Response::error(ErrorCode::HelloRequired, "send a hello first"),
            Some(_) => match relay.with_store(|s| s.listed()).await {
                Ok(members) => Response::Members(MemberList { members }),
                Err(e) => internal(e),
            },
        },
        // When every key last synced is the metropolitan office's view of
        // the network; a comune's key does not learn the others'.
        Ok(Request::Presence) => match session.admitted.get() {
            None => Response::error(ErrorCode::HelloRequired, "send a hello first"),
            Some(m) if m.role == Role::Comune => Response::error(
                ErrorCode::Refused,
                "presence is answered to metro and admin keys only",
            ),
            Some(_) => Response::Presence(PresenceList {
                nodes: relay.presence.list(),
            }),
        },
    };
    drop(body);
    let refused = matches!(&response, Response::Error(e) if e.code == ErrorCode::NotAdmitted);
    let bytes = response.encode();
    if !write_response(&mut send, &bytes, session).await {
        return;
    }
    metrics.sent_bytes.inc_by(frame_bytes(bytes.len()));
    if refused {
        // Let the refusal reach the peer before closing.
        let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
        session.conn.close(CLOSE_REFUSED.into(), b"not admitted");
    }
}

/// Bytes of a frame on the wire: its body and the 4-byte length prefix.
fn frame_bytes(body: usize) -> u64 {
    u64::try_from(body).unwrap_or(u64::MAX).saturating_add(4)
}

/// Writes and finishes a response within the write timeout. A peer that does
/// not read in time loses the stream and the connection: it would otherwise
/// hold the response's buffers for as long as it liked. Returns whether the
/// response was handed to QUIC whole.
async fn write_response(send: &mut quinn::SendStream, bytes: &[u8], session: &Session) -> bool {
    let node = session.node;
    let timeout = session.limits.response_write_timeout;
    match tokio::time::timeout(timeout, accordo_net::write_frame(send, bytes)).await {
        Ok(Ok(())) => {
            let _ = send.finish();
            true
        }
        Ok(Err(e)) => {
            debug!(node = %node.short(), error = %e, "response not delivered");
            false
        }
        Err(_) => {
            warn!(node = %node.short(), timeout_ms = timeout.as_millis() as u64, bytes = bytes.len(), "response not read in time; stream and connection dropped");
            let _ = send.reset(CLOSE_TOO_SLOW.into());
            session
                .conn
                .close(CLOSE_TOO_SLOW.into(), b"response not read");
            false
        }
    }
}

async fn handle_hello(
    hello: Hello,
    negotiated: Option<u16>,
    node: NodeId,
    relay: &Arc<Relay>,
    admitted: &OnceCell<Member>,
) -> Response {
    // The hello names the version the handshake agreed on (ALPN), which is
    // one this relay speaks; a client that says otherwise is refused.
    let agreed = negotiated.is_none_or(|v| v == hello.protocol_version);
    if !accordo_protocol::speaks(hello.protocol_version) || !agreed {
        return Response::error(
            ErrorCode::VersionMismatch,
            format!(
                "relay speaks protocol {:?} (agreed at the handshake: {negotiated:?}), node {}",
                accordo_protocol::SUPPORTED_VERSIONS,
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
    member: &Member,
    relay: &Arc<Relay>,
    shutdown: &CancellationToken,
) -> Response {
    let node = member.node;
    let pushed = req.push.len();
    let wait = Duration::from_millis(u64::from(req.wait_ms.min(MAX_WAIT_MS)));
    let started = std::time::Instant::now();
    let first = {
        let req = req.clone();
        relay
            .with_store(move |s| {
                // A key revoked while connected loses access at its next request.
                if s.admitted(&node)?.is_none() {
                    return Ok(None);
                }
                let before = if req.push.is_empty() {
                    0
                } else {
                    s.head_seq()?
                };
                let verified = req.push.iter().cloned().map(SignedChange::verify).collect();
                let resp = s.with_log(|log, members| serve_sync(log, members, &req, verified))?;
                // Appends take consecutive positions under the store lock held here.
                let ingested = if req.push.is_empty() {
                    0
                } else {
                    s.head_seq()?.saturating_sub(before)
                };
                Ok(Some((resp, ingested)))
            })
            .await
    };
    let mut resp = match first {
        Ok(Some((resp, ingested))) => {
            let m = relay.metrics();
            m.pushed(ingested, &resp.rejects);
            m.synced(member, started.elapsed(), unix_ms() / 1000);
            resp
        }
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
    let now = unix_ms();
    if relay.presence.note(node, now, tokio::time::Instant::now()) {
        if let Err(e) = relay.with_store(move |s| s.set_presence(&node, now)).await {
            return internal(e);
        }
    }
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

#[cfg(test)]
mod tests;
