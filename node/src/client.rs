//! The sync engine: connects to the relay, says hello, and exchanges signed
//! changes with it — once (`accordo sync`) or continuously (`accordo run`).
//!
//! The protocol rules live in `accordo_protocol::sync`; this module adds the
//! I/O: QUIC through `accordo-net`, the store through `accordo_store::offload`, a
//! connect timeout, and reconnection with jittered exponential backoff.
//! Every request is idempotent, so after a broken connection the same
//! exchange is simply sent again.

use crate::clock::now_ms;
use crate::placement::{admit_pulled, AdmitError, Placer};
use crate::presence;
use crate::replica::Replica;
use accordo_net::{Backoff, TransportLimits};
use accordo_protocol::authority::Member;
use accordo_protocol::envelope::ChangeHash;
use accordo_protocol::identity::Role;
use accordo_protocol::sync::{SyncError, SyncSession};
use accordo_protocol::wire::{
    ErrorCode, Hello, Request, Response, SyncResponse, MAX_BATCH_BYTES, MAX_FRAME_BYTES,
    MAX_PUSH_CHANGES, MAX_WAIT_MS,
};
use accordo_protocol::PROTOCOL_VERSION;
use accordo_store::StoreError;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

/// How long one connection attempt may take before it counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra time a request may take beyond its long-poll wait.
const REQUEST_SLACK: Duration = Duration::from_secs(30);
/// How often `run` looks for edits made by other processes on the same store.
const OUTBOX_POLL: Duration = Duration::from_millis(200);
/// Node setting: when this node last stored a response of the relay (UNIX ms).
pub const LAST_CONTACT_META: &str = "last_contact_ms";
/// Backoff bounds between reconnection attempts (RESEARCH: 10 ms to ~16 s).
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(16);

/// Why a sync did not complete. Each variant prints as one clear line.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    #[error("relay {addr} unreachable: {detail}")]
    Unreachable { addr: String, detail: String },
    #[error("relay refused this node: {0}")]
    NotAdmitted(String),
    #[error("relay refused the hello: {0}")]
    Refused(String),
    #[error("relay refused the redemption: {0}")]
    RedeemRefused(String),
    #[error("relay rejected {} local change(s); first: {} ({})", .0.len(), .0[0].0, .0[0].1)]
    Rejected(Vec<(ChangeHash, String)>),
    #[error("relay misbehaved: {0}")]
    RelayFault(String),
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    #[error("local task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("this node's key was rotated by `accordo key rotate`; reconnecting with the new key")]
    KeyRotated,
    #[error("local key file: {0}")]
    Replica(String),
}

impl SyncFailure {
    /// Failures worth retrying on a new connection.
    fn is_transient(&self) -> bool {
        matches!(
            self,
            SyncFailure::Unreachable { .. } | SyncFailure::KeyRotated
        )
    }
}

mod redeem;

pub use redeem::redeem;

/// The replica shared between the async engine and the store work.
pub type SharedReplica = Arc<Mutex<Replica>>;

/// Runs `f` on the replica's store, off the async threads (see [`accordo_store::offload`]).
pub(crate) async fn with_replica<T: Send + 'static>(
    replica: &SharedReplica,
    f: impl FnOnce(&mut Replica) -> Result<T, SyncFailure> + Send + 'static,
) -> Result<T, SyncFailure> {
    let replica = Arc::clone(replica);
    accordo_store::offload(move || {
        // Invariant: poisoned only if a store call panicked, which is a bug.
        let mut r = replica.lock().expect("replica mutex poisoned");
        f(&mut r)
    })
    .await?
}

/// An admitted connection to the relay.
pub struct Link {
    conn: quinn::Connection,
    pub member: Member,
    addr: SocketAddr,
    /// The relay's log had a new epoch: the stored cursors were reset.
    pub cursors_reset: bool,
    /// The daemon's links ask the relay for presence ([`crate::presence`]):
    /// when they last asked (by the runtime's clock, so a simulation
    /// replays), `None` until the first time. One-shot syncs do not ask.
    presence: Option<std::sync::Mutex<Option<tokio::time::Instant>>>,
}

/// What one exchange did.
#[derive(Debug, Default, Clone)]
pub struct Exchange {
    pub pushed: usize,
    pub acked: usize,
    pub received: usize,
    pub rejected: Vec<(ChangeHash, String)>,
    /// Bytes sent and received, frames included.
    pub wire_bytes: usize,
    /// Bytes of automerge changes pushed and pulled.
    pub change_bytes: usize,
}

/// Figures of a completed one-shot sync.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    pub pushed: usize,
    pub received: usize,
    pub round_trips: usize,
    pub wire_bytes: usize,
    pub change_bytes: usize,
    pub elapsed: Duration,
}

fn unreachable(addr: &str, detail: impl std::fmt::Display) -> SyncFailure {
    SyncFailure::Unreachable {
        addr: addr.to_owned(),
        detail: detail.to_string(),
    }
}

async fn resolve(host_port: &str) -> Result<SocketAddr, SyncFailure> {
    tokio::net::lookup_host(host_port)
        .await
        .map_err(|e| unreachable(host_port, format!("cannot resolve: {e}")))?
        .next()
        .ok_or_else(|| unreachable(host_port, "resolves to no address"))
}

/// A QUIC client for this node, bound to an ephemeral port of the right family.
pub fn endpoint(replica: &Replica, relay: SocketAddr) -> Result<accordo_net::Client, SyncFailure> {
    let bind: SocketAddr = if relay.is_ipv6() {
        "[::]:0".parse().expect("literal address")
    } else {
        "0.0.0.0:0".parse().expect("literal address")
    };
    accordo_net::Client::new(bind, &replica.key, &TransportLimits::default())
        .map_err(|e| unreachable(&relay.to_string(), e))
}

impl Link {
    /// Connects and says hello.
    pub async fn connect(
        endpoint: &accordo_net::Client,
        replica: &SharedReplica,
    ) -> Result<Link, SyncFailure> {
        let (link, network) = Link::dial(endpoint, replica).await?;
        // The newest version both sides speak, as the handshake chose it.
        let version = accordo_net::negotiated_version(&link.conn).unwrap_or(PROTOCOL_VERSION);
        let hello = Request::Hello(Hello {
            protocol_version: version,
            network,
            software: format!("accordo {}", env!("CARGO_PKG_VERSION")),
        });
        match link.call(&hello, Duration::ZERO).await? {
            (Response::HelloAck(ack), _) => {
                let mut link = Link {
                    member: ack.member,
                    ..link
                };
                link.cursors_reset = crate::relay_epoch::check(&link, replica).await?;
                Ok(link)
            }
            (Response::Error(e), _) if e.code == ErrorCode::NotAdmitted => {
                Err(SyncFailure::NotAdmitted(e.message))
            }
            (Response::Error(e), _) => {
                Err(SyncFailure::Refused(format!("{:?}: {}", e.code, e.message)))
            }
            (other, _) => Err(SyncFailure::RelayFault(format!(
                "unexpected answer to hello: {other:?}"
            ))),
        }
    }

    /// Connects and authenticates both ways (the relay by its pinned key),
    /// without a hello. Returns the link and the network name.
    async fn dial(
        endpoint: &accordo_net::Client,
        replica: &SharedReplica,
    ) -> Result<(Link, String), SyncFailure> {
        let (relay, network) = {
            let r = replica.lock().expect("replica mutex poisoned");
            (r.settings.relay.clone(), r.settings.network.clone())
        };
        let addr = resolve(&relay.host_port).await?;
        let relay_key = relay
            .id
            .verifying_key()
            .ok_or_else(|| SyncFailure::Refused("pinned relay id is not a valid key".into()))?;
        let alpn = accordo_net::Alpns::versions(accordo_protocol::SUPPORTED_VERSIONS, &network);
        let conn = endpoint
            .connect(addr, &relay_key, alpn, CONNECT_TIMEOUT)
            .await
            .map_err(|e| unreachable(&relay.host_port, e))?;
        let link = Link {
            conn,
            member: placeholder_member(replica),
            addr,
            cursors_reset: false,
            presence: None,
        };
        Ok((link, network))
    }

    /// One request/response on a fresh stream. Returns the response and the
    /// bytes both ways (frame bodies plus 4-byte length prefixes).
    pub(crate) async fn call(
        &self,
        req: &Request,
        wait: Duration,
    ) -> Result<(Response, usize), SyncFailure> {
        let body = req.encode();
        let reply = accordo_net::request(&self.conn, &body, MAX_FRAME_BYTES, wait + REQUEST_SLACK)
            .await
            .map_err(|e| unreachable(&self.addr.to_string(), e))?;
        let resp = Response::decode(&reply)
            .map_err(|e| SyncFailure::RelayFault(format!("undecodable response: {e}")))?;
        Ok((resp, body.len() + reply.len() + 8))
    }

    /// Closes the connection politely.
    pub fn close(&self) {
        self.conn.close(0u32.into(), b"bye");
    }
}

fn placeholder_member(replica: &SharedReplica) -> Member {
    let r = replica.lock().expect("replica mutex poisoned");
    Member {
        node: r.id,
        comune: r.settings.comune.clone(),
        role: r.settings.role,
    }
}

/// Records what the relay says this node is; a role change adjusts what it
/// follows. A node governed by a registry takes no such word from the relay.
async fn adopt_membership(replica: &SharedReplica, member: &Member) -> Result<(), SyncFailure> {
    let member = member.clone();
    with_replica(replica, move |r| {
        let differs = r.settings.role != member.role || r.settings.comune != member.comune;
        if differs && r.governed() {
            warn!(relay_says = %member.role, comune = %member.comune, "relay describes this node differently; a governed node keeps its own settings");
            return Ok(());
        }
        if differs {
            warn!(relay_says = %member.role, comune = %member.comune, "relay knows this node with a different role or comune; following the relay");
            r.settings.role = member.role;
            r.settings.comune = member.comune.clone();
            r.store.write(|tx| {
                tx.set_meta("role", member.role.as_str())?;
                tx.set_meta("comune", member.comune.as_str())?;
                for scope in crate::replica::default_scopes(&member.comune, member.role) {
                    tx.follow(&scope)?;
                }
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(())
    })
    .await
}

/// One push/pull exchange: sends up to a batch of the outbox with every
/// cursor, stores what comes back, and advances the session.
pub async fn exchange(
    link: &Link,
    replica: &SharedReplica,
    session: &mut SyncSession,
    wait_ms: u32,
    push: bool,
) -> Result<Exchange, SyncFailure> {
    let outbox = if push {
        with_replica(replica, |r| {
            Ok(r.store
                .read(|tx| tx.outbox(MAX_BATCH_BYTES, MAX_PUSH_CHANGES))?)
        })
        .await?
    } else {
        Vec::new()
    };
    let pushed_hashes: Vec<ChangeHash> = outbox.iter().map(|e| e.hash).collect();
    let req = session.request(
        outbox.into_iter().map(|e| e.change).collect(),
        MAX_BATCH_BYTES as u32,
        wait_ms.min(MAX_WAIT_MS),
    );
    let pushed = req.push.len();
    let pushed_bytes: usize = req.push.iter().map(|c| c.change.len()).sum();
    let started = std::time::Instant::now();
    let (resp, wire_bytes) = link
        .call(
            &Request::Sync(req),
            Duration::from_millis(u64::from(wait_ms)),
        )
        .await?;
    let resp = match resp {
        Response::Sync(resp) => resp,
        Response::Error(e) if e.code == ErrorCode::NotAdmitted => {
            return Err(SyncFailure::NotAdmitted(e.message))
        }
        Response::Error(e) => {
            return Err(SyncFailure::RelayFault(format!(
                "{:?}: {}",
                e.code, e.message
            )))
        }
        other => {
            return Err(SyncFailure::RelayFault(format!(
                "unexpected answer: {other:?}"
            )))
        }
    };
    if let Err(e) = session.check_response(&resp) {
        return Err(handle_session_error(replica, session, e).await);
    }
    let mut out = Exchange {
        pushed,
        acked: resp.acks.len(),
        wire_bytes,
        change_bytes: pushed_bytes
            + resp
                .entries
                .iter()
                .map(|e| e.change.change.len())
                .sum::<usize>(),
        ..Exchange::default()
    };
    refresh_allowlist_if_needed(link, replica, &resp).await?;
    refresh_presence_if_due(link, replica, !resp.entries.is_empty()).await?;
    let (received, rejected) = store_response(replica, resp.clone(), pushed_hashes).await?;
    session.commit_progress(&resp.progress);
    crate::metrics::engine().exchanged(
        wait_ms > 0,
        started.elapsed(),
        out.acked,
        received,
        rejected.len(),
    );
    out.received = received;
    out.rejected = rejected;
    Ok(out)
}

/// The daemons of metro and admin nodes ask the relay when each node last
/// synced (once a minute, or every 2 s while other nodes' changes arrive) ([`crate::presence`]). An older relay that does not
/// know the request answers with an error: the node goes on without it.
async fn refresh_presence_if_due(
    link: &Link,
    replica: &SharedReplica,
    news: bool,
) -> Result<(), SyncFailure> {
    let Some(asked) = &link.presence else {
        return Ok(());
    };
    let role = replica
        .lock()
        .expect("replica mutex poisoned")
        .settings
        .role;
    let now = tokio::time::Instant::now();
    {
        let mut asked = asked.lock().expect("presence mutex poisoned");
        if !presence::due(role, *asked, news, now) {
            return Ok(());
        }
        *asked = Some(now);
    }
    let answer = link.call(&Request::Presence, Duration::ZERO).await?.0;
    let now = now_ms();
    with_replica(replica, move |r| {
        match answer {
            Response::Presence(list) => presence::keep(&r.store, &list.nodes, now)?,
            other => debug!(answer = ?other, "the relay does not report presence"),
        }
        Ok(())
    })
    .await
}

/// Without an admin the relay's allowlist decides who may write: fetch it
/// again when a response holds a change of an author (or for a document)
/// the list this node holds does not admit.
async fn refresh_allowlist_if_needed(
    link: &Link,
    replica: &SharedReplica,
    resp: &SyncResponse,
) -> Result<(), SyncFailure> {
    if resp.entries.is_empty() {
        return Ok(());
    }
    let wanted: Vec<_> = resp
        .entries
        .iter()
        .map(|e| (e.change.author, e.change.doc.clone()))
        .collect();
    let stale = with_replica(replica, move |r| {
        if r.governed() {
            return Ok(false);
        }
        let placer = r
            .store
            .read(|tx| Placer::load(tx, &[]).map_err(SyncFailure::Store))?;
        Ok(wanted.iter().any(|(a, d)| !placer.places_author(a, d)))
    })
    .await?;
    if !stale {
        return Ok(());
    }
    let list = match link.call(&Request::Members, Duration::ZERO).await?.0 {
        Response::Members(list) => list,
        Response::Error(e) => {
            return Err(SyncFailure::RelayFault(format!(
                "allowlist refused: {:?}: {}",
                e.code, e.message
            )))
        }
        other => {
            return Err(SyncFailure::RelayFault(format!(
                "unexpected answer to the allowlist request: {other:?}"
            )))
        }
    };
    with_replica(replica, move |r| {
        Ok(r.store.write(|tx| tx.set_relay_members(&list.members))?)
    })
    .await
}

/// The relay's head went behind our cursor: it lost data (restored from an
/// old backup). Pull everything again; our own changes it lost are re-pushed
/// because they are still in our log (re-enqueue is the trust issue's work).
async fn handle_session_error(
    replica: &SharedReplica,
    session: &mut SyncSession,
    e: SyncError,
) -> SyncFailure {
    if let SyncError::RelayRegressed { .. } = e {
        warn!(error = %e, "resetting cursors");
        session.reset_cursors();
        let reset = with_replica(replica, |r| Ok(r.store.write(|tx| tx.reset_cursors())?)).await;
        if let Err(err) = reset {
            return err;
        }
    }
    SyncFailure::RelayFault(e.to_string())
}

/// Stores one response in one transaction: verified entries (changes of
/// authors this node cannot place go to its quarantine), acks, rejects and
/// the cursors they cover. Returns (changes stored, rejections).
async fn store_response(
    replica: &SharedReplica,
    resp: SyncResponse,
    pushed: Vec<ChangeHash>,
) -> Result<(usize, Vec<(ChangeHash, String)>), SyncFailure> {
    with_replica(replica, move |r| {
        let anchors = r.settings.anchors.clone();
        let cache = &mut r.doc_cache;
        r.store.write(|tx| {
            let admitted = match admit_pulled(tx, &anchors, resp.entries) {
                Ok(a) => a,
                // Nothing is committed: cursors stay, the entries are pulled again.
                Err(AdmitError::Store(e)) => return Err(SyncFailure::Store(e)),
                Err(e) => return Err(SyncFailure::RelayFault(e.to_string())),
            };
            // The query store commits with the changes it derives from.
            crate::views::after_pull_cached(tx, &anchors, &admitted.docs, cache)
                .map_err(|e| SyncFailure::Replica(format!("updating the query store: {e}")))?;
            if admitted.quarantined > 0 {
                warn!(
                    count = admitted.quarantined,
                    "changes of authors this node cannot place held in quarantine"
                );
            }
            tx.acknowledge(&resp.acks)?;
            let mut rejected = Vec::new();
            for rej in &resp.rejects {
                let hash = rej.hash.or_else(|| pushed.get(rej.index as usize).copied());
                if let Some(hash) = hash {
                    tx.mark_rejected(&hash, &rej.reason.to_string())?;
                    rejected.push((hash, rej.reason.to_string()));
                }
            }
            for p in &resp.progress {
                tx.advance_cursor(&p.scope, p.reached)?;
            }
            tx.set_meta(LAST_CONTACT_META, &now_unix_ms().to_string())?;
            Ok((admitted.stored, rejected))
        })
    })
    .await
}

async fn load_session(replica: &SharedReplica) -> Result<SyncSession, SyncFailure> {
    let cursors = with_replica(replica, |r| Ok(r.store.read(|tx| tx.cursors())?)).await?;
    Ok(SyncSession::new(cursors))
}

async fn pending(replica: &SharedReplica) -> Result<u64, SyncFailure> {
    with_replica(replica, |r| Ok(r.store.read(|tx| tx.outbox_counts())?.0)).await
}

/// `accordo sync`: push everything, pull everything the relay held when the
/// sync began, and return only when both are done — or fail within `timeout`.
pub async fn sync_once(
    replica: SharedReplica,
    timeout: Duration,
) -> Result<SyncReport, SyncFailure> {
    let addr = {
        let r = replica.lock().expect("replica mutex poisoned");
        r.settings.relay.host_port.clone()
    };
    let relay_addr = resolve(&addr).await?;
    let endpoint = {
        let r = replica.lock().expect("replica mutex poisoned");
        endpoint(&r, relay_addr)?
    };
    let result = sync_on(&endpoint, replica, timeout, &mut random_u64).await;
    endpoint.close().await;
    result
}

/// [`sync_once`] on a given endpoint, with the backoff's jitter drawn from
/// `jitter`. Time is tokio's, so a simulated clock drives the deadline too.
pub async fn sync_on(
    endpoint: &accordo_net::Client,
    replica: SharedReplica,
    timeout: Duration,
    jitter: &mut (dyn FnMut() -> u64 + Send),
) -> Result<SyncReport, SyncFailure> {
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let addr = {
        let r = replica.lock().expect("replica mutex poisoned");
        r.settings.relay.host_port.clone()
    };
    let mut report = SyncReport::default();
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    let mut session: Option<SyncSession> = None;
    let mut rejected = Vec::new();
    let result = loop {
        let attempt = async {
            let link = Link::connect(endpoint, &replica).await?;
            adopt_membership(&replica, &link.member).await?;
            if link.cursors_reset {
                session = None;
            }
            let session = match &mut session {
                Some(s) => s,
                None => session.insert(load_session(&replica).await?),
            };
            loop {
                let ex = exchange(&link, &replica, session, 0, true).await?;
                report.round_trips += 1;
                report.pushed += ex.acked;
                report.received += ex.received;
                report.wire_bytes += ex.wire_bytes;
                report.change_bytes += ex.change_bytes;
                rejected.extend(ex.rejected);
                if session.caught_up() && pending(&replica).await? == 0 {
                    link.close();
                    return Ok::<_, SyncFailure>(());
                }
            }
        };
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(remaining, attempt).await {
            Ok(Ok(())) => break Ok(()),
            Ok(Err(e)) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                let delay = backoff.next_delay(jitter());
                debug!(error = %e, ?delay, "retrying");
                tokio::time::sleep_until((tokio::time::Instant::now() + delay).min(deadline)).await;
            }
            Ok(Err(e)) => break Err(e),
            Err(_) => {
                break Err(unreachable(
                    &addr,
                    format!("sync did not complete within {timeout:?}"),
                ))
            }
        }
    };
    report.elapsed = started.elapsed();
    result?;
    if !rejected.is_empty() {
        return Err(SyncFailure::Rejected(rejected));
    }
    Ok(report)
}

/// Wall-clock time for the last-contact record (display only: no protocol
/// decision depends on it).
fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Jitter only: a failure to get randomness just means no jitter.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

/// `accordo run`: stay connected, push local edits as they appear (from this
/// or any other process on the same directory) and long-poll for news.
/// Reconnects with jittered backoff forever; ends on `shutdown`.
pub async fn run_forever(
    replica: SharedReplica,
    shutdown: CancellationToken,
) -> Result<(), SyncFailure> {
    run_with(replica, shutdown, &mut endpoint, &mut random_u64).await
}

/// [`run_forever`] with the endpoint of each connection attempt made by
/// `make_endpoint` and the backoff's jitter drawn from `jitter` (the
/// deterministic simulation gives both).
pub async fn run_with(
    replica: SharedReplica,
    shutdown: CancellationToken,
    make_endpoint: &mut (dyn FnMut(&Replica, SocketAddr) -> Result<accordo_net::Client, SyncFailure>
              + Send),
    jitter: &mut (dyn FnMut() -> u64 + Send),
) -> Result<(), SyncFailure> {
    let host_port = {
        let mut r = replica.lock().expect("replica mutex poisoned");
        // A long-running process: pulled changes are applied to documents
        // kept loaded (`doc_cache`), not to documents loaded each time.
        r.doc_cache.keep_documents();
        r.settings.relay.host_port.clone()
    };
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    let metrics = crate::metrics::engine();
    metrics.mark_started();
    loop {
        let attempt = async {
            take_up_rotated_key(&replica).await?;
            let relay_addr = resolve(&host_port).await?;
            let endpoint = {
                let r = replica.lock().expect("replica mutex poisoned");
                make_endpoint(&r, relay_addr)?
            };
            let link = Link {
                presence: Some(std::sync::Mutex::new(None)),
                ..Link::connect(&endpoint, &replica).await?
            };
            adopt_membership(&replica, &link.member).await?;
            info!(relay = %relay_addr, "connected");
            backoff.reset();
            metrics.connected.set(1);
            let result = connected(&link, &replica).await;
            metrics.connected.set(0);
            endpoint.close().await;
            result
        };
        // Biased (shutdown first) here and below: a fixed polling order lets
        // a simulation seed replay exactly.
        let result = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            r = attempt.instrument(info_span!("link", relay = %host_port)) => r,
        };
        match result {
            Err(SyncFailure::Store(e)) => return Err(SyncFailure::Store(e)),
            Err(e) => warn!(error = %e, "sync link down"),
            Ok(()) => {}
        }
        let delay = backoff.next_delay(jitter());
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// While connected: a puller long-polls, a pusher pushes whenever the outbox
/// has entries. Either failing ends both (the caller reconnects).
async fn connected(link: &Link, replica: &SharedReplica) -> Result<(), SyncFailure> {
    let puller = async {
        loop {
            let mut session = load_session(replica).await?;
            let ex = exchange(link, replica, &mut session, MAX_WAIT_MS, false).await?;
            if ex.received > 0 {
                info!(received = ex.received, "pulled");
            }
        }
    };
    let pusher = async {
        loop {
            if pending(replica).await? > 0 {
                let mut session = load_session(replica).await?;
                let ex = exchange(link, replica, &mut session, 0, true).await?;
                info!(
                    pushed = ex.pushed,
                    acked = ex.acked,
                    received = ex.received,
                    "pushed"
                );
                for (hash, why) in &ex.rejected {
                    warn!(%hash, reason = %why, "change rejected by the relay");
                }
                if ex.acked > 0 || !ex.rejected.is_empty() {
                    continue;
                }
            }
            tokio::time::sleep(OUTBOX_POLL).await;
            if take_up_rotated_key(replica).await? {
                return Err(SyncFailure::KeyRotated);
            }
        }
    };
    tokio::select! {
        biased;
        r = puller => r,
        r = pusher => r,
    }
}

/// Reloads the key if another process rotated it; whether it did.
async fn take_up_rotated_key(replica: &SharedReplica) -> Result<bool, SyncFailure> {
    with_replica(replica, |r| {
        let rotated = r
            .reload_if_rotated()
            .map_err(|e| SyncFailure::Replica(e.to_string()))?;
        if rotated {
            info!(node = %r.id, "key rotated: continuing with the new key");
        }
        Ok(rotated)
    })
    .await
}

/// Whether a role follows every document.
pub fn follows_all(role: Role) -> bool {
    matches!(role, Role::Metro | Role::Admin)
}
