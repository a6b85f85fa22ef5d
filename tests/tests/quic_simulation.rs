//! Deterministic simulation through the real QUIC stack: the real relay
//! (`accordo_relay::server::serve_with` over its SQLite store) and N real
//! node replicas (`accordo_node` stores, `sync_on`), talking quinn + rustls
//! with pinned ed25519 keys over a simulated UDP network (`simnet`) on a
//! paused tokio clock.
//!
//! Per seed: random edits (with conflicting writes to shared keys), syncs,
//! 0–20 % datagram loss, 1–150 ms latency with reordering, partitions and
//! heals, node crashes (socket killed, tasks dropped, store reopened later
//! with a new actor nonce) and relay crashes (same store, same address), and
//! a forger pushing badly signed changes, another comune's changes and
//! unknown keys. Checked: after every relay restart, every change a node holds
//! as acknowledged is in the relay's store; after the network heals and
//! everyone syncs, every node holds the same heads and the same data as the
//! relay for every document it follows, every change it holds verifies and
//! was allowed, nothing forged is anywhere, every change ever made reached
//! the relay, and nothing panicked. A failing seed is printed and replays
//! identically with `ACCORDO_QSIM_SEED=<seed>` (the replay test below checks
//! that two runs of a seed make the same decisions, byte for byte).
//!
//! Knobs: `ACCORDO_QSIM_SEEDS` (default 200), `ACCORDO_QSIM_NODES` (default
//! 50; 312 for Torino), `ACCORDO_QSIM_STEPS` (default 120),
//! `ACCORDO_QSIM_SEED` (one seed), `ACCORDO_QSIM_FIRST` (first seed).

use accordo_net::TransportLimits;
use accordo_node::client::{run_with, sync_on, SharedReplica, SyncFailure};
use accordo_node::replica::{load_doc, Replica, Settings};
use accordo_protocol::authority::Member;
use accordo_protocol::codes::Istat;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{derive_actor, ChangeHash, SignedChange};
use accordo_protocol::identity::{NodeId, RelayAddr, Role};
use accordo_protocol::log::RejectReason;
use accordo_protocol::wire::{ErrorCode, Hello, Request, Response, SyncRequest, MAX_FRAME_BYTES};
use accordo_protocol::PROTOCOL_VERSION;
use accordo_relay::server::{serve_with, Relay, ServeLimits};
use accordo_tests::simnet::{SimNet, SimRng};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ReadDoc, ROOT};
use ed25519_dalek::SigningKey;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const NETWORK: &str = "sim";
const RELAY_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4433);
/// A sync gives up after this much simulated time.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// Comuni of the simulated area: several offices share one.
const COMUNI: usize = 17;

fn node_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, (i / 250) as u8, (i % 250) as u8 + 1))
}

fn comune(i: usize) -> Istat {
    format!("092{:03}", 1 + i % COMUNI)
        .parse()
        .expect("valid ISTAT code")
}

fn key_of(seed: u64, who: u64) -> SigningKey {
    SigningKey::from_bytes(&SimRng::new(seed ^ who.wrapping_mul(0x1000_0001)).bytes::<32>())
}

/// What one seed does and what it saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Outcome {
    trace: u64,
    relay_log: Vec<ChangeHash>,
    edits: usize,
    syncs_ok: usize,
    syncs_failed: usize,
    node_crashes: usize,
    relay_crashes: usize,
    partitions: usize,
    relay_partitions: usize,
    forgeries_refused: usize,
    datagrams: u64,
    datagrams_lost: u64,
    /// Changes the nodes held as acknowledged at the final check.
    acknowledged: u64,
    /// Of those, how many the relay's store lacked (asserted zero).
    acknowledged_lost: u64,
}

struct Live {
    replica: SharedReplica,
    /// The endpoint of a node that syncs on demand (`accordo sync`); an
    /// always-on node makes one per connection attempt.
    client: Option<Arc<accordo_net::Client>>,
    /// The on-demand sync in flight.
    task: Option<JoinHandle<Result<(), SyncFailure>>>,
    /// Stays connected (`accordo run`).
    run: Option<(CancellationToken, JoinHandle<Result<(), SyncFailure>>)>,
}

struct SimNode {
    index: usize,
    dir: PathBuf,
    member: Member,
    doc: DocId,
    /// Runs `accordo run` rather than occasional `accordo sync`.
    always_on: bool,
    starts: u64,
    /// Ports used so far: every endpoint binds a fresh one, as after a restart.
    ports: Arc<AtomicU16>,
    live: Option<Live>,
    down_until: usize,
    cut_until: Option<usize>,
    edits: u64,
}

struct RunningRelay {
    relay: Arc<Relay>,
    task: JoinHandle<Result<(), accordo_relay::server::FatalError>>,
    _shutdown: CancellationToken,
}

struct World {
    seed: u64,
    net: Arc<SimNet>,
    rng: SimRng,
    dir: PathBuf,
    relay_key: SigningKey,
    relay: Option<RunningRelay>,
    relay_starts: u64,
    relay_down_until: usize,
    /// The relay's link is down (the relay runs on) until this step.
    relay_cut_until: Option<usize>,
    nodes: Vec<SimNode>,
    members: BTreeMap<NodeId, Member>,
    forged: BTreeSet<ChangeHash>,
    outcome: Outcome,
}

impl World {
    fn relay_db(&self) -> PathBuf {
        self.dir.join("relay").join("relay.db")
    }

    fn start_relay(&mut self) {
        self.relay_starts += 1;
        let store = accordo_relay::store::open(&self.relay_db()).expect("relay store opens");
        if self.relay_starts == 1 {
            for m in self.members.values() {
                store.allow(m, 0).expect("allowlist");
            }
        }
        let id = NodeId::from_signing_key(&self.relay_key);
        let relay = Relay::new(id, NETWORK.into(), store).expect("relay");
        let io = self.net.io(RELAY_ADDR, self.seed ^ self.relay_starts << 40);
        let endpoint = accordo_net::server_endpoint_on(
            io,
            &self.relay_key,
            accordo_net::alpn(PROTOCOL_VERSION, NETWORK),
            &TransportLimits::default(),
        )
        .expect("relay endpoint");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve_with(
            endpoint,
            Arc::clone(&relay),
            shutdown.clone(),
            ServeLimits::default(),
        ));
        self.relay = Some(RunningRelay {
            relay,
            task,
            _shutdown: shutdown,
        });
    }

    /// `kill -9`: the socket goes silent and every task of the relay is dropped.
    async fn crash_relay(&mut self) {
        let Some(running) = self.relay.take() else {
            return;
        };
        self.net.kill(RELAY_ADDR);
        running.task.abort();
        let joined = running.task.await;
        assert!(
            joined.as_ref().err().is_none_or(|e| e.is_cancelled()),
            "relay task panicked: {joined:?}"
        );
        drop(running.relay);
        self.outcome.relay_crashes += 1;
    }

    fn start_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.starts += 1;
        let nonce_seed = self.seed ^ ((i as u64) << 20) ^ (node.starts << 48);
        let replica = Replica::open_with_nonce(&node.dir, SimRng::new(nonce_seed).bytes())
            .expect("node store opens after a crash");
        let ip = node_ip(i);
        let ports = Arc::clone(&node.ports);
        let net = Arc::clone(&self.net);
        let bind = move |key: &SigningKey| {
            let n = ports.fetch_add(1, Ordering::Relaxed);
            let addr = SocketAddr::new(ip, 1024 + n % 60_000);
            accordo_net::Client::on(
                net.io(addr, nonce_seed ^ u64::from(n) << 32),
                key,
                &TransportLimits::default(),
            )
        };
        let client = if node.always_on {
            None
        } else {
            Some(Arc::new(bind(&replica.key).expect("client endpoint")))
        };
        let replica = Arc::new(Mutex::new(replica));
        let run = node.always_on.then(|| {
            let shutdown = CancellationToken::new();
            let replica = Arc::clone(&replica);
            let stop = shutdown.clone();
            let task = tokio::spawn(async move {
                let mut rng = SimRng::new(nonce_seed ^ 0x1177);
                let mut jitter = move || rng.next_u64();
                let mut make = move |r: &Replica, _relay: SocketAddr| {
                    bind(&r.key).map_err(|e| SyncFailure::Unreachable {
                        addr: RELAY_ADDR.to_string(),
                        detail: e.to_string(),
                    })
                };
                run_with(replica, stop, &mut make, &mut jitter).await
            });
            (shutdown, task)
        });
        node.live = Some(Live {
            replica,
            client,
            task: None,
            run,
        });
    }

    async fn crash_node(&mut self, i: usize, step: usize, down_for: usize) {
        let Some(mut live) = self.nodes[i].live.take() else {
            return;
        };
        self.net.kill_ip(node_ip(i));
        if let Some((_, task)) = live.run.take() {
            task.abort();
            let joined = task.await;
            assert!(
                joined.as_ref().err().is_none_or(|e| e.is_cancelled()),
                "node {i} run task panicked"
            );
        }
        if let Some(task) = live.task.take() {
            task.abort();
            let joined = task.await;
            assert!(
                joined.as_ref().err().is_none_or(|e| e.is_cancelled()),
                "node {i} sync task panicked"
            );
        }
        drop(live);
        self.nodes[i].down_until = step + down_for;
        self.outcome.node_crashes += 1;
    }

    fn edit(&mut self, i: usize) {
        let shared = self.rng.chance(300);
        let value = self.rng.next_u64();
        let node = &mut self.nodes[i];
        let Some(live) = &node.live else { return };
        node.edits += 1;
        let key = if shared {
            // Concurrent writers of one key: the CRDT must pick the same winner everywhere.
            format!("shared/{}", value % 3)
        } else {
            format!("k/{}/{}", node.index, node.edits)
        };
        let mut r = live.replica.lock().expect("replica lock");
        let (_, hash) = r
            .edit(&node.doc, 1_700_000_000_000, |am| {
                am.put(ROOT, key, format!("{}:{value:x}", node.index))
                    .map_err(|e| accordo_node::replica::ReplicaError::Edit(e.to_string()))
            })
            .expect("a local edit commits");
        assert!(hash.is_some(), "a put changes the document");
        self.outcome.edits += 1;
    }

    fn start_sync(&mut self, i: usize) {
        let jitter_seed = self.rng.next_u64();
        let Some(live) = &mut self.nodes[i].live else {
            return;
        };
        let Some(client) = live.client.clone() else {
            return;
        };
        if live.task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let replica = Arc::clone(&live.replica);
        live.task = Some(tokio::spawn(async move {
            let mut rng = SimRng::new(jitter_seed);
            let mut jitter = move || rng.next_u64();
            sync_on(&client, replica, SYNC_TIMEOUT, &mut jitter)
                .await
                .map(|_| ())
        }));
    }

    /// Collects finished syncs; a failure is fine while the network is bad,
    /// except one that says the relay or a peer misbehaved.
    async fn reap(&mut self, must_succeed: bool) {
        for i in 0..self.nodes.len() {
            let Some(live) = &mut self.nodes[i].live else {
                continue;
            };
            if let Some((_, run)) = &live.run {
                assert!(!run.is_finished(), "node {i}: `run` ended by itself");
            }
            let done = live
                .task
                .as_ref()
                .is_some_and(|t| t.is_finished() || must_succeed);
            if !done {
                continue;
            }
            // Invariant: `done` implies a task.
            let task = live.task.take().expect("task present");
            let result = task
                .await
                .unwrap_or_else(|e| panic!("node {i} sync panicked: {e}"));
            match result {
                Ok(()) => {
                    self.outcome.syncs_ok += 1;
                    self.net.record(&[i as u64, 1]);
                }
                Err(e) => {
                    assert!(
                        !must_succeed,
                        "node {i}: sync failed on a healed network: {e}"
                    );
                    assert!(
                        matches!(e, SyncFailure::Unreachable { .. }),
                        "node {i}: sync failed for a reason other than the network: {e}"
                    );
                    self.outcome.syncs_failed += 1;
                    self.net.record(&[i as u64, 2]);
                }
            }
        }
    }

    /// A peer that should never get anything stored: an unknown key, a
    /// member writing another comune's document, and a bad signature.
    async fn forge(&mut self, attempt: u64) {
        let who = self.rng.below(self.nodes.len() as u64) as usize;
        // Another comune: `comune` wraps at COMUNI, and 1..COMUNI-1 steps never land on ours.
        let other = who + 1 + self.rng.below(COMUNI as u64 - 1) as usize;
        let kind = self.rng.below(3);
        let member_key = key_of(self.seed, who as u64);
        let key = if kind == 0 {
            key_of(self.seed ^ 0xbad, attempt)
        } else {
            member_key
        };
        let doc = if kind == 1 {
            DocId::Comune(comune(other))
        } else {
            self.nodes[who].doc.clone()
        };
        let node = NodeId::from_signing_key(&key);
        let nonce = SimRng::new(self.seed ^ attempt << 8).bytes();
        let mut am = AutoCommit::new().with_actor(ActorId::from(&derive_actor(&node, &nonce)[..]));
        am.put(ROOT, "forged", attempt as i64).expect("put");
        am.commit();
        let change = am.get_last_local_change().expect("a change");
        let mut signed = SignedChange::sign(doc, &key, nonce, &change);
        if kind == 2 {
            let mut sig = signed.signature.to_bytes();
            sig[7] ^= 0x40;
            signed.signature = ed25519_dalek::Signature::from_bytes(&sig);
        }
        let hash = ChangeHash(change.hash().0);
        self.forged.insert(hash);
        let addr = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)),
            30_000 + attempt as u16,
        );
        let client = accordo_net::Client::on(
            self.net.io(addr, self.seed ^ attempt << 24),
            &key,
            &TransportLimits::default(),
        )
        .expect("forger endpoint");
        let refused = async {
            let conn = client
                .connect(
                    RELAY_ADDR,
                    &self.relay_key.verifying_key(),
                    accordo_net::alpn(PROTOCOL_VERSION, NETWORK),
                    Duration::from_secs(5),
                )
                .await
                .ok()?;
            let call = |req: Request| {
                let conn = conn.clone();
                async move {
                    let reply = accordo_net::request(
                        &conn,
                        &req.encode(),
                        MAX_FRAME_BYTES,
                        Duration::from_secs(10),
                    )
                    .await
                    .ok()?;
                    Response::decode(&reply).ok()
                }
            };
            let hello = call(Request::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                network: NETWORK.into(),
                software: "forger".into(),
            }))
            .await?;
            if kind == 0 {
                assert!(
                    matches!(&hello, Response::Error(e) if e.code == ErrorCode::NotAdmitted),
                    "an unknown key was admitted: {hello:?}"
                );
                return Some(true);
            }
            let resp = call(Request::Sync(SyncRequest {
                push: vec![signed],
                cursors: vec![],
                max_response_bytes: 1 << 16,
                wait_ms: 0,
            }))
            .await?;
            match resp {
                Response::Sync(s) => {
                    assert!(s.acks.is_empty(), "a forged change was acknowledged");
                    assert_eq!(s.rejects.len(), 1, "the forged change is rejected");
                    let typed = match kind {
                        1 => matches!(s.rejects[0].reason, RejectReason::Unauthorized(_)),
                        _ => matches!(s.rejects[0].reason, RejectReason::Envelope(_)),
                    };
                    assert!(
                        typed,
                        "forgery {kind} refused for {:?}",
                        s.rejects[0].reason
                    );
                    Some(true)
                }
                other => panic!("unexpected answer to a forged push: {other:?}"),
            }
        }
        .await;
        if refused == Some(true) {
            self.outcome.forgeries_refused += 1;
        }
        drop(client);
        self.net.kill(addr);
    }

    /// Documents node `i` follows, among those the relay holds or it writes.
    fn followed(&self, i: usize, relay_docs: &BTreeMap<DocId, Snapshot>) -> Vec<DocId> {
        let member = &self.nodes[i].member;
        if member.role == Role::Metro {
            relay_docs.keys().cloned().collect()
        } else {
            vec![DocId::Plan, DocId::Comune(member.comune.clone())]
        }
    }

    fn replica(&self, i: usize) -> std::sync::MutexGuard<'_, Replica> {
        let live = self.nodes[i].live.as_ref().expect("node is running");
        live.replica.lock().expect("replica lock")
    }

    fn pending(&self, i: usize) -> u64 {
        self.replica(i)
            .store
            .read(|tx| tx.outbox_counts())
            .expect("outbox counts")
            .0
    }

    fn heads(&self, i: usize, doc: &DocId) -> Vec<automerge::ChangeHash> {
        let mut am = self.replica(i).materialise(doc).expect("materialise");
        snapshot(&mut am).0
    }

    /// Waits (at most two simulated minutes, polling twice a second) until
    /// `done` holds for every always-on node.
    async fn wait_for_always_on(&self, what: &str, done: impl Fn(&World, usize) -> bool) {
        for _ in 0..240 {
            if (0..self.nodes.len()).all(|i| !self.nodes[i].always_on || done(self, i)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("always-on nodes have not {what} two minutes after the network healed");
    }

    /// Every change a node holds as acknowledged (its own, out of the
    /// outbox) must be in the relay's store. Records how many there are and
    /// how many the relay lacks, then fails if any is missing.
    fn check_acknowledged(&mut self) {
        let relay: BTreeSet<ChangeHash> = log_of(&self.relay_db())
            .into_iter()
            .map(|(h, _)| h)
            .collect();
        let (mut held, mut missing) = (0, Vec::new());
        for node in &self.nodes {
            for hash in acknowledged(&node.dir.join("node.db"), &node.member.node) {
                held += 1;
                if !relay.contains(&hash) {
                    missing.push((node.index, hash));
                }
            }
        }
        self.outcome.acknowledged = held;
        self.outcome.acknowledged_lost = missing.len() as u64;
        assert!(
            missing.is_empty(),
            "{} of {held} acknowledged change(s) are not at the relay (node, change): {missing:?}",
            missing.len()
        );
    }
}

/// A store's log in order (the relay's and a node's share the schema), read
/// straight from its file.
fn log_of(db: &Path) -> Vec<(ChangeHash, SignedChange)> {
    let conn = rusqlite::Connection::open(db).expect("store file opens");
    let mut stmt = conn
        .prepare("SELECT hash, envelope FROM log ORDER BY seq")
        .expect("query");
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .expect("rows");
    rows.map(|row| {
        let (hash, env) = row.expect("row");
        (
            accordo_store::hash_column(hash).expect("hash"),
            accordo_store::decode_envelope(&env).expect("envelope"),
        )
    })
    .collect()
}

/// A node's own changes that left its outbox (the relay acknowledged them).
fn acknowledged(db: &Path, author: &NodeId) -> Vec<ChangeHash> {
    let conn = rusqlite::Connection::open(db).expect("node db");
    let mut stmt = conn
        .prepare("SELECT hash FROM log WHERE author = ?1 AND seq NOT IN (SELECT seq FROM outbox)")
        .expect("query");
    let rows = stmt
        .query_map([&author.0[..]], |r| r.get::<_, Vec<u8>>(0))
        .expect("rows");
    rows.map(|h| accordo_store::hash_column(h.expect("row")).expect("hash"))
        .collect()
}

/// Heads and every root value of a document, in a comparable form.
fn snapshot(am: &mut AutoCommit) -> Snapshot {
    let mut heads = am.get_heads();
    heads.sort();
    let data = am
        .keys(ROOT)
        .map(|k| {
            let v = am.get(ROOT, &k).expect("read").map(|(v, _)| v.to_string());
            (k, v.unwrap_or_default())
        })
        .collect();
    (heads, data)
}

thread_local! {
    /// Panics on this thread, caught or not. Tokio catches a panicking task's
    /// unwind (the relay logs a failed connection task and carries on), so a
    /// panic hook is what sees every one; a seed's tasks all run on its thread.
    static PANICS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            previous(info);
        }));
    });
}

fn run_seed(seed: u64, nodes_n: usize, steps: usize) -> Outcome {
    count_panics();
    PANICS.with(|p| p.set(0));
    let outcome = run_seed_inner(seed, nodes_n, steps);
    let panics = PANICS.with(std::cell::Cell::get);
    assert_eq!(panics, 0, "{panics} task(s) panicked in seed {seed}");
    outcome
}

fn run_seed_inner(seed: u64, nodes_n: usize, steps: usize) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    // Stores survive crashes of the simulated processes, not of the machine
    // (the crash loops with real binaries cover that), so a RAM-backed
    // directory is as faithful and skips the fsyncs.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let outcome = rt.block_on(simulate(seed, nodes_n, steps, dir.path()));
    // Tasks still held are dropped here, on this thread, inside the count.
    drop(rt);
    outcome
}

async fn simulate(seed: u64, nodes_n: usize, steps: usize, dir: &Path) -> Outcome {
    let net = SimNet::new(seed);
    tokio::spawn(Arc::clone(&net).run());
    let relay_key = key_of(seed, u64::MAX);
    let relay_id = NodeId::from_signing_key(&relay_key);
    let mut nodes = Vec::new();
    let mut members = BTreeMap::new();
    for i in 0..nodes_n {
        let key = key_of(seed, i as u64);
        let role = if i % 25 == 0 {
            Role::Metro
        } else {
            Role::Comune
        };
        let member = Member {
            node: NodeId::from_signing_key(&key),
            comune: comune(i),
            role,
        };
        let node_dir = dir.join(format!("node{i}"));
        let settings = Settings {
            comune: member.comune.clone(),
            role,
            relay: RelayAddr {
                id: relay_id,
                host_port: RELAY_ADDR.to_string(),
            },
            network: NETWORK.into(),
            anchors: vec![],
        };
        drop(Replica::init_with_key(&node_dir, settings, key).expect("node init"));
        members.insert(member.node, member.clone());
        nodes.push(SimNode {
            index: i,
            dir: node_dir,
            doc: if role == Role::Metro {
                DocId::Plan
            } else {
                DocId::Comune(member.comune.clone())
            },
            member,
            always_on: i % 5 == 0,
            starts: 0,
            ports: Arc::new(AtomicU16::new(0)),
            live: None,
            down_until: 0,
            cut_until: None,
            edits: 0,
        });
    }
    std::fs::create_dir_all(dir.join("relay")).expect("relay dir");
    let mut w = World {
        seed,
        net: Arc::clone(&net),
        rng: SimRng::new(seed),
        dir: dir.to_owned(),
        relay_key,
        relay: None,
        relay_starts: 0,
        relay_down_until: 0,
        relay_cut_until: None,
        nodes,
        members,
        forged: BTreeSet::new(),
        outcome: Outcome::default(),
    };
    w.start_relay();
    for i in 0..nodes_n {
        w.start_node(i);
    }
    let mut forgeries = 0u64;
    for step in 0..steps {
        // Restarts and heals that are due.
        if w.relay_cut_until.is_some_and(|until| step >= until) {
            w.relay_cut_until = None;
            net.heal(RELAY_ADDR.ip());
        }
        if w.relay.is_none() && step >= w.relay_down_until {
            w.start_relay();
            w.check_acknowledged();
        }
        for i in 0..nodes_n {
            if w.nodes[i].live.is_none() && step >= w.nodes[i].down_until {
                w.start_node(i);
            }
            if w.nodes[i].cut_until.is_some_and(|until| step >= until) {
                w.nodes[i].cut_until = None;
                net.heal(node_ip(i));
            }
        }
        // A burst of activity: edits and syncs on random nodes.
        for _ in 0..1 + w.rng.below(nodes_n as u64 / 4 + 1) {
            let i = w.rng.below(nodes_n as u64) as usize;
            if w.rng.chance(550) {
                w.edit(i);
            } else {
                w.start_sync(i);
            }
        }
        // Faults.
        let roll = w.rng.below(1000);
        match roll {
            0..=59 => {
                let i = w.rng.below(nodes_n as u64) as usize;
                let down_for = 1 + w.rng.below(8) as usize;
                w.crash_node(i, step, down_for).await;
                net.record(&[10, i as u64]);
            }
            60..=119 => {
                let i = w.rng.below(nodes_n as u64) as usize;
                if w.nodes[i].cut_until.is_none() {
                    w.nodes[i].cut_until = Some(step + 1 + w.rng.below(10) as usize);
                    net.cut(node_ip(i));
                    w.outcome.partitions += 1;
                    net.record(&[11, i as u64]);
                }
            }
            120..=139 => {
                w.crash_relay().await;
                w.relay_down_until = step + 1 + w.rng.below(5) as usize;
                net.record(&[12]);
            }
            140..=199 => {
                let loss = w.rng.below(201);
                let min = Duration::from_millis(1 + w.rng.below(20));
                let max = min + Duration::from_millis(w.rng.below(130));
                net.set_loss(loss);
                net.set_latency(min, max);
                net.record(&[13, loss]);
            }
            200..=219 if w.relay.is_some() => {
                forgeries += 1;
                w.forge(forgeries).await;
            }
            220..=234 if w.relay_cut_until.is_none() => {
                // The metropolitan office's link goes down: every node is cut
                // off while the relay keeps its connections and long-polls.
                w.relay_cut_until = Some(step + 1 + w.rng.below(6) as usize);
                net.cut(RELAY_ADDR.ip());
                w.outcome.relay_partitions += 1;
                net.record(&[14]);
            }
            _ => {}
        }
        // Let the network run for a while, then collect finished syncs.
        tokio::time::sleep(Duration::from_millis(w.rng.below(1500))).await;
        w.reap(false).await;
    }

    // Heal everything. Always-on nodes push what they hold by themselves;
    // then every other node syncs twice (the second round pulls what others
    // pushed during the first); then the always-on nodes must have pulled
    // everything by long-polling. Each wait is bounded in simulated time.
    net.heal_all();
    w.relay_cut_until = None;
    net.set_loss(0);
    net.set_latency(Duration::from_millis(1), Duration::from_millis(20));
    if w.relay.is_none() {
        w.start_relay();
    }
    w.check_acknowledged();
    for i in 0..nodes_n {
        w.nodes[i].cut_until = None;
        if w.nodes[i].live.is_none() {
            w.start_node(i);
        }
    }
    w.wait_for_always_on("pushed everything", |w, i| w.pending(i) == 0)
        .await;
    for _round in 0..2 {
        // Wait out syncs still running from the faulty phase (they may fail).
        for node in &mut w.nodes {
            if let Some(task) = node.live.as_mut().and_then(|l| l.task.take()) {
                let result = task.await.expect("sync task did not panic");
                if let Err(e) = result {
                    assert!(matches!(e, SyncFailure::Unreachable { .. }), "{e}");
                }
            }
        }
        for i in 0..nodes_n {
            w.start_sync(i);
        }
        w.reap(true).await;
    }
    let relay_docs = relay_snapshots(&log_of(&w.relay_db()));
    w.wait_for_always_on("pulled everything", |w, i| {
        w.followed(i, &relay_docs).iter().all(|doc| {
            w.heads(i, doc) == relay_docs.get(doc).map(|s| s.0.clone()).unwrap_or_default()
        })
    })
    .await;
    w.check_acknowledged();
    w.outcome.relay_log = check_converged(&w);
    let stats = net.stats();
    w.outcome.trace = net.trace();
    if let Some(prefix) = std::env::var_os("ACCORDO_SIM_EVENTS") {
        let path = format!("{}-{seed}-{}", prefix.to_string_lossy(), w.outcome.trace);
        std::fs::write(path, net.events().join("\n")).expect("write events");
    }
    w.outcome.datagrams = stats.sent;
    w.outcome.datagrams_lost = stats.lost;
    for node in &mut w.nodes {
        if let Some((stop, task)) = node.live.as_mut().and_then(|l| l.run.take()) {
            stop.cancel();
            let ended = task.await.expect("run task did not panic");
            assert!(
                ended.is_ok(),
                "node {}: run ended with {ended:?}",
                node.index
            );
        }
    }
    w.outcome.clone()
}

type Snapshot = (Vec<automerge::ChangeHash>, BTreeMap<String, String>);

/// Every document at the relay, as the relay's log materialises it.
fn relay_snapshots(log: &[(ChangeHash, SignedChange)]) -> BTreeMap<DocId, Snapshot> {
    let mut by_doc: BTreeMap<DocId, Vec<SignedChange>> = BTreeMap::new();
    for (_, change) in log {
        by_doc
            .entry(change.doc.clone())
            .or_default()
            .push(change.clone());
    }
    by_doc
        .iter()
        .map(|(doc, changes)| {
            (
                doc.clone(),
                snapshot(&mut load_doc(doc, changes).expect("relay doc loads")),
            )
        })
        .collect()
}

/// Checks the end state; returns the relay's log, in order.
fn check_converged(w: &World) -> Vec<ChangeHash> {
    let relay = log_of(&w.relay_db());
    for (hash, change) in &relay {
        assert!(
            !w.forged.contains(hash),
            "a forged change reached the relay"
        );
        let verified = change
            .clone()
            .verify()
            .expect("every relay change verifies");
        assert_eq!(verified.hash, *hash, "stored hash is the change's");
    }
    let relay_docs = relay_snapshots(&relay);
    let relay_hashes: BTreeSet<ChangeHash> = relay.iter().map(|(h, _)| *h).collect();
    for node in &w.nodes {
        let live = node.live.as_ref().expect("every node runs at the end");
        let mut r = live.replica.lock().expect("replica lock");
        // Everything this node ever wrote reached the relay and was acknowledged.
        let pending = r
            .store
            .read(|tx| tx.outbox_counts())
            .expect("outbox counts");
        assert_eq!(
            pending,
            (0, 0),
            "node {}: outbox not empty at the end",
            node.index
        );
        for (hash, change) in log_of(&node.dir.join("node.db")) {
            assert!(
                !w.forged.contains(&hash),
                "node {} holds a forged change",
                node.index
            );
            assert!(
                relay_hashes.contains(&hash),
                "node {} holds {hash} the relay lacks",
                node.index
            );
            let verified = change.verify().expect("every held change verifies");
            assert_eq!(verified.hash, hash, "stored hash is the change's");
            let author = w
                .members
                .get(&verified.envelope.author)
                .expect("author is a member");
            match &verified.envelope.doc {
                DocId::Plan => assert_eq!(author.role, Role::Metro),
                DocId::Comune(c) => assert_eq!(c, &author.comune),
                DocId::Registry => panic!("no registry in this network"),
            }
        }
        for doc in w.followed(node.index, &relay_docs) {
            let mine = snapshot(&mut r.materialise(&doc).expect("materialise"));
            let theirs = relay_docs.get(&doc).cloned().unwrap_or_default();
            assert_eq!(
                mine, theirs,
                "node {} differs from the relay on {doc}",
                node.index
            );
        }
    }
    relay.into_iter().map(|(h, _)| h).collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// Runs `seeds` on every core. A seed still running after
/// `ACCORDO_QSIM_SEED_LIMIT_S` real seconds (default 600) is a hang: its seed is
/// printed and the process exits, so no run can stall CI silently.
fn run_seeds(seeds: Vec<u64>, nodes: usize, steps: usize) -> Vec<Outcome> {
    let limit = Duration::from_secs(env_u64("ACCORDO_QSIM_SEED_LIMIT_S", 600));
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(seeds.len().max(1));
    let queue = Mutex::new(seeds.into_iter());
    let results = Mutex::new(Vec::new());
    let running: Mutex<BTreeMap<u64, std::time::Instant>> = Mutex::new(BTreeMap::new());
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let running_ref = &running;
        s.spawn(move || {
            let running = running_ref;
            // Ends when every worker has dropped its sender.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                done_rx.recv_timeout(Duration::from_secs(1))
            {
                let running = running.lock().expect("running");
                if let Some((seed, _)) = running.iter().find(|(_, t)| t.elapsed() > limit) {
                    eprintln!("quic simulation HUNG at seed {seed} (over {limit:?}); replay with ACCORDO_QSIM_SEED={seed} ACCORDO_QSIM_NODES={nodes} ACCORDO_QSIM_STEPS={steps}");
                    std::process::exit(1);
                }
            }
        });
        for _ in 0..workers {
            let done = done_tx.clone();
            let (queue, results, running) = (&queue, &results, &running);
            s.spawn(move || {
                let _done = done;
                loop {
                    let Some(seed) = queue.lock().expect("queue").next() else {
                        break;
                    };
                    running
                        .lock()
                        .expect("running")
                        .insert(seed, std::time::Instant::now());
                    let run = std::panic::catch_unwind(|| run_seed(seed, nodes, steps));
                    running.lock().expect("running").remove(&seed);
                    match run {
                        Ok(o) => results.lock().expect("results").push((seed, o)),
                        Err(p) => {
                            eprintln!("quic simulation FAILED at seed {seed}; replay with ACCORDO_QSIM_SEED={seed} ACCORDO_QSIM_NODES={nodes} ACCORDO_QSIM_STEPS={steps}");
                            std::panic::resume_unwind(p);
                        }
                    }
                }
            });
        }
        drop(done_tx);
    });
    let mut out = results.into_inner().expect("results");
    out.sort_by_key(|(seed, _)| *seed);
    out.into_iter().map(|(_, o)| o).collect()
}

#[test]
fn the_network_converges_through_real_quic_under_faults() {
    let nodes = env_u64("ACCORDO_QSIM_NODES", 50) as usize;
    let steps = env_u64("ACCORDO_QSIM_STEPS", 120) as usize;
    let seeds: Vec<u64> = match std::env::var("ACCORDO_QSIM_SEED") {
        Ok(s) => vec![s.parse().expect("ACCORDO_QSIM_SEED is a number")],
        Err(_) => {
            let first = env_u64("ACCORDO_QSIM_FIRST", 1);
            (first..first + env_u64("ACCORDO_QSIM_SEEDS", 200)).collect()
        }
    };
    let started = std::time::Instant::now();
    let n = seeds.len();
    let outcomes = run_seeds(seeds, nodes, steps);
    let sum = |f: fn(&Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    eprintln!(
        "quic simulation: {n} seeds × {nodes} nodes × {steps} steps in {:.1} s: {} edits, {} syncs ok, {} failed under faults, {} node crashes, {} relay crashes, {} partitions of a node and {} of the relay, {} forgeries refused, {} datagrams ({} lost); {} acknowledged writes at the end, {} of them lost",
        started.elapsed().as_secs_f64(),
        sum(|o| o.edits as u64),
        sum(|o| o.syncs_ok as u64),
        sum(|o| o.syncs_failed as u64),
        sum(|o| o.node_crashes as u64),
        sum(|o| o.relay_crashes as u64),
        sum(|o| o.partitions as u64),
        sum(|o| o.relay_partitions as u64),
        sum(|o| o.forgeries_refused as u64),
        sum(|o| o.datagrams),
        sum(|o| o.datagrams_lost),
        sum(|o| o.acknowledged),
        sum(|o| o.acknowledged_lost),
    );
    assert_eq!(sum(|o| o.acknowledged_lost), 0, "acknowledged writes lost");
    assert!(sum(|o| o.acknowledged) > 0, "nothing was acknowledged");
    // The faults really happened (a quiet generator would prove nothing).
    if n >= 20 {
        assert!(sum(|o| o.relay_crashes as u64) > 0);
        assert!(sum(|o| o.relay_partitions as u64) > 0);
        assert!(sum(|o| o.node_crashes as u64) > 0);
        assert!(sum(|o| o.datagrams_lost) > 0);
        assert!(sum(|o| o.syncs_failed as u64) > 0);
        assert!(sum(|o| o.forgeries_refused as u64) > 0);
    }
}

/// Two runs of a seed make the same decisions: the same datagrams at the
/// same simulated times, the same losses, crashes and sync outcomes (the trace
/// digest), and the same relay log, change for change.
/// `ACCORDO_QSIM_REPLAY_SEEDS` checks more seeds (default 3).
#[test]
fn a_seed_replays_identically() {
    let n = env_u64("ACCORDO_QSIM_REPLAY_SEEDS", 3);
    let seeds: Vec<u64> = (0..n).map(|i| 7 + 1000 * i).collect();
    let first = run_seeds(seeds.clone(), 50, 120);
    let second = run_seeds(seeds.clone(), 50, 120);
    for ((seed, a), b) in seeds.iter().zip(&first).zip(&second) {
        assert_eq!(a, b, "seed {seed} did not replay identically");
        assert!(!a.relay_log.is_empty());
    }
    eprintln!("quic simulation: {n} seeds × 50 nodes replayed identically");
}
