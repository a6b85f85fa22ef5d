//! A node's replica: its identity, settings and store, and the two things a
//! replica does with documents — materialise them from the verified log, and
//! make a local edit as one signed change.
//!
//! Every process that opens a replica draws a fresh actor nonce, so its
//! automerge actor (bound to the node key, see `accordo_protocol::envelope`)
//! is new: a directory restored from a backup, or copied to a second machine,
//! can never produce two different changes with the same (actor, seq).

use crate::doc_cache::DerivedFrom;
use crate::store::{self, NodeStore, NodeTx};
use crate::{snapshot, views};
use accordo_domain::portfolio::PortfolioError;
use accordo_net::keyfile;
use accordo_protocol::codes::Istat;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{derive_actor, ChangeHash, SignedChange, ACTOR_NONCE_BYTES};
use accordo_protocol::identity::{NodeId, RelayAddr, Role};
use accordo_protocol::log::{admit, Admitted, LogStore};
use accordo_protocol::registry::{judge, ChangeMeta, Statement, Verdict};
use accordo_protocol::wire::Scope;
use accordo_store::StoreError;
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Change};
use ed25519_dalek::SigningKey;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod chunks;

pub const KEY_FILE: &str = "node.key";
pub const DB_FILE: &str = "node.db";
/// The next key during a rotation; its presence blocks edits by the old key.
pub const NEXT_KEY_FILE: &str = "node.key.next";

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] keyfile::KeyFileError),
    #[error("{0} is not a node directory (no {KEY_FILE}); run `accordo init --dir {0} --comune ISTAT --relay RELAY_ID@HOST:PORT` first")]
    NotInitialised(String),
    #[error("{0} is already a node directory")]
    AlreadyInitialised(String),
    #[error("creating {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("node setting {0} is missing or invalid; the store may be damaged")]
    Setting(&'static str),
    #[error("stored change of {doc} does not load: {detail}")]
    Load { doc: DocId, detail: String },
    #[error("the operating system gave no randomness: {0}")]
    Random(String),
    #[error("{0}")]
    Edit(String),
    /// A project operation on a comune's document; its message is whole.
    #[error(transparent)]
    Portfolio(#[from] PortfolioError),
}

/// Settings fixed at `init` (the role may be corrected by the relay's hello).
#[derive(Debug, Clone)]
pub struct Settings {
    pub comune: Istat,
    pub role: Role,
    pub relay: RelayAddr,
    pub network: String,
    /// Admin keys pinned at init. Empty: the quick-start network without a
    /// registry, where the relay's allowlist decides. Otherwise every change
    /// is judged against the signed registry before it is shown.
    pub anchors: Vec<NodeId>,
}

pub struct Replica {
    pub dir: PathBuf,
    pub key: SigningKey,
    pub id: NodeId,
    pub settings: Settings,
    pub store: NodeStore,
    nonce: [u8; ACTOR_NONCE_BYTES],
    /// The last verdict on the log, with the log head it was computed at.
    verdict: Option<(u64, Arc<Verdict>)>,
    /// Documents kept loaded for the views' updates of pulled changes
    /// (`views::after_pull_cached`) and for local edits (`write_doc_planned`
    /// takes the document from it and puts it back edited); keeps nothing
    /// until `keep_documents`, so a short command pays nothing for it.
    pub doc_cache: crate::doc_cache::DocCache,
}

/// Network name when none is given: derived from the relay id, as the relay does.
pub fn default_network(relay: &NodeId) -> String {
    format!("relay-{}", &relay.to_string()[..16])
}

fn fresh_nonce() -> Result<[u8; ACTOR_NONCE_BYTES], ReplicaError> {
    let mut nonce = [0u8; ACTOR_NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|e| ReplicaError::Random(e.to_string()))?;
    Ok(nonce)
}

/// The cursors a member follows by default: its comune and the plan, or all.
pub fn default_scopes(comune: &Istat, role: Role) -> Vec<Scope> {
    match role {
        Role::Metro | Role::Admin => vec![Scope::All],
        Role::Comune => vec![
            Scope::Doc(DocId::Comune(comune.clone())),
            Scope::Doc(DocId::Plan),
            Scope::Doc(DocId::Registry),
        ],
    }
}

impl Replica {
    /// Creates a node directory: a new key, a store and the settings.
    pub fn init(dir: &Path, settings: Settings) -> Result<Replica, ReplicaError> {
        Replica::init_with_key(dir, settings, keyfile::generate()?)
    }

    /// Creates a node directory with a given key (an admin pins its own).
    pub fn init_with_key(
        dir: &Path,
        settings: Settings,
        key: SigningKey,
    ) -> Result<Replica, ReplicaError> {
        if dir.join(KEY_FILE).exists() {
            return Err(ReplicaError::AlreadyInitialised(dir.display().to_string()));
        }
        std::fs::create_dir_all(dir).map_err(|source| ReplicaError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
        let mut store = store::open(&dir.join(DB_FILE))?;
        store.write(|tx| {
            tx.set_meta("comune", settings.comune.as_str())?;
            tx.set_meta("role", settings.role.as_str())?;
            tx.set_meta("relay", &settings.relay.to_string())?;
            tx.set_meta("network", &settings.network)?;
            tx.set_meta("anchors", &join_ids(&settings.anchors))?;
            for scope in default_scopes(&settings.comune, settings.role) {
                tx.follow(&scope)?;
            }
            Ok::<_, StoreError>(())
        })?;
        // The key file is written last: its presence marks a complete directory.
        keyfile::create(&dir.join(KEY_FILE), &key)?;
        drop(store);
        Replica::open(dir)
    }

    /// Opens an existing node directory with a fresh actor nonce.
    pub fn open(dir: &Path) -> Result<Replica, ReplicaError> {
        Replica::open_with_nonce(dir, fresh_nonce()?)
    }

    /// Opens with a chosen actor nonce, so that a deterministic simulation
    /// replays byte for byte. The nonce must never repeat for a directory:
    /// two processes with the same one could sign different changes with the
    /// same (actor, seq), which every peer refuses as equivocation.
    pub fn open_with_nonce(
        dir: &Path,
        nonce: [u8; ACTOR_NONCE_BYTES],
    ) -> Result<Replica, ReplicaError> {
        let key_path = dir.join(KEY_FILE);
        // Only a key known to be absent means "not a node": one this user may
        // not see (a directory shared with a group it is not in) is reported
        // by `load` as the permission error it is.
        if matches!(key_path.try_exists(), Ok(false)) {
            return Err(ReplicaError::NotInitialised(dir.display().to_string()));
        }
        let key = keyfile::load(&key_path)?;
        let store = store::open(&dir.join(DB_FILE))?;
        let setting = |name: &'static str| -> Result<String, ReplicaError> {
            store.meta(name)?.ok_or(ReplicaError::Setting(name))
        };
        let settings = Settings {
            comune: setting("comune")?
                .parse()
                .map_err(|_| ReplicaError::Setting("comune"))?,
            role: setting("role")?
                .parse()
                .map_err(|_| ReplicaError::Setting("role"))?,
            relay: setting("relay")?
                .parse()
                .map_err(|_| ReplicaError::Setting("relay"))?,
            network: setting("network")?,
            anchors: split_ids(&store.meta("anchors")?.unwrap_or_default())
                .map_err(|_| ReplicaError::Setting("anchors"))?,
        };
        Ok(Replica {
            dir: dir.to_owned(),
            id: NodeId::from_signing_key(&key),
            key,
            settings,
            store,
            nonce,
            verdict: None,
            doc_cache: crate::doc_cache::DocCache::new(),
        })
    }

    /// Whether this node judges changes against a signed registry.
    pub fn governed(&self) -> bool {
        !self.settings.anchors.is_empty()
    }

    /// The verdict on every change held: the registry it contains and the
    /// changes that are invalid under it. Recomputed only when the log grew.
    pub fn verdict(&mut self) -> Result<Arc<Verdict>, ReplicaError> {
        let head = self.store.read(|tx| tx.log().head_seq())?;
        if let Some((at, v)) = &self.verdict {
            if *at == head {
                return Ok(Arc::clone(v));
            }
        }
        let anchors: BTreeSet<NodeId> = self.settings.anchors.iter().copied().collect();
        let metas = self.held_metas()?;
        let verdict = Arc::new(judge(&anchors, &metas));
        self.verdict = Some((head, Arc::clone(&verdict)));
        Ok(verdict)
    }

    /// Every held change's metadata, in log order per document.
    pub fn held_metas(&mut self) -> Result<Vec<ChangeMeta>, ReplicaError> {
        self.store.read(held_metas_in)
    }

    /// Hashes of held changes this node must not show (invalid under the
    /// registry, or building on an invalid change). Empty when ungoverned.
    fn invalid_hashes(&mut self) -> Result<HashSet<ChangeHash>, ReplicaError> {
        if !self.governed() {
            return Ok(HashSet::new());
        }
        Ok(self.verdict()?.invalid.keys().copied().collect())
    }

    /// This node's comune document.
    pub fn own_doc(&self) -> DocId {
        DocId::Comune(self.settings.comune.clone())
    }

    /// The document as the log holds it now (its snapshot plus the changes
    /// since).
    pub fn materialise(&mut self, doc: &DocId) -> Result<AutoCommit, ReplicaError> {
        let invalid = self.invalid_hashes()?;
        Ok(self.store.read(|tx| snapshot::load(tx, doc, &invalid))?.doc)
    }

    /// Brings the query store up to date with the log if it is behind (a
    /// log written by an older version, or appended to directly). Cheap
    /// when it is current: one read.
    pub fn catch_up_views(&mut self) -> Result<views::CaughtUp, ReplicaError> {
        if !self
            .store
            .read(|tx| Ok::<_, ReplicaError>(views::behind(tx)?))?
        {
            return Ok(views::CaughtUp::default());
        }
        let anchors = self.settings.anchors.clone();
        self.store.write(|tx| views::catch_up(tx, &anchors))
    }

    /// Reads the query store (caught up first if it is behind the log).
    pub fn query<T>(
        &mut self,
        f: impl FnOnce(&crate::store::NodeTx<'_>) -> Result<T, ReplicaError>,
    ) -> Result<T, ReplicaError> {
        self.catch_up_views()?;
        self.store.read(f)
    }

    /// Every document held, materialised (registry included).
    pub fn materialise_all(&mut self) -> Result<Vec<(DocId, AutoCommit)>, ReplicaError> {
        let docs = self.store.read(|tx| tx.log().docs())?;
        docs.into_iter()
            .map(|(doc, _)| {
                let am = self.materialise(&doc)?;
                Ok((doc, am))
            })
            .collect()
    }

    /// Applies `f` to `doc` and stores the result as one signed change plus an
    /// outbox entry, committed before this returns. `Ok((value, None))` when
    /// `f` changed nothing.
    pub fn edit<T>(
        &mut self,
        doc: &DocId,
        now_ms: i64,
        f: impl FnOnce(&mut AutoCommit) -> Result<T, ReplicaError>,
    ) -> Result<(T, Option<ChangeHash>), ReplicaError> {
        self.edit_as(doc, now_ms, None, f)
    }

    /// [`Replica::edit`] with a message signed inside the change: the
    /// person who made the edit (see [`crate::ops::Author`]).
    pub fn edit_as<T>(
        &mut self,
        doc: &DocId,
        now_ms: i64,
        message: Option<String>,
        f: impl FnOnce(&mut AutoCommit) -> Result<T, ReplicaError>,
    ) -> Result<(T, Option<ChangeHash>), ReplicaError> {
        self.reload_if_rotated()?;
        self.refuse_while_rotating()?;
        self.edit_with_message(doc, now_ms, message, f)
    }

    /// Takes up the key `accordo key rotate` installed from another process,
    /// with a fresh actor nonce. A long-running process (`run`) would
    /// otherwise go on signing and connecting with the retired key. Returns
    /// whether the key changed.
    pub fn reload_if_rotated(&mut self) -> Result<bool, ReplicaError> {
        let key = keyfile::load(&self.dir.join(KEY_FILE))?;
        let id = NodeId::from_signing_key(&key);
        if id == self.id {
            return Ok(false);
        }
        self.nonce = fresh_nonce()?;
        self.key = key;
        self.id = id;
        Ok(true)
    }

    /// Records one registry statement, signed by this node's key.
    pub fn state(
        &mut self,
        statement: &Statement,
        now_ms: i64,
    ) -> Result<ChangeHash, ReplicaError> {
        let message = statement.to_message();
        let key = format!("statement/{now_ms}/{}", hex::encode(fresh_nonce()?));
        let (_, hash) =
            self.edit_with_message(&DocId::Registry, now_ms, Some(message.clone()), |doc| {
                doc.put(automerge::ROOT, key, message)
                    .map_err(|e| ReplicaError::Edit(e.to_string()))
            })?;
        // Invariant: putting a new key always changes the document.
        Ok(hash.expect("a statement is a change"))
    }

    /// [`Replica::edit`] with a commit message (registry statements).
    pub fn edit_with_message<T>(
        &mut self,
        doc: &DocId,
        now_ms: i64,
        message: Option<String>,
        f: impl FnOnce(&mut AutoCommit) -> Result<T, ReplicaError>,
    ) -> Result<(T, Option<ChangeHash>), ReplicaError> {
        self.write_doc(doc, |tx, am, key, nonce| {
            let value = f(am)?;
            let mut options =
                automerge::transaction::CommitOptions::default().with_time(now_ms / 1000);
            if let Some(m) = message {
                options = options.with_message(m);
            }
            let hash = commit_signed(am, options, doc, key, nonce, tx)?;
            Ok((value, hash))
        })
    }

    /// Refuses edits by the old key while a rotation is being delivered: they
    /// would fall after the rotation's cut.
    fn refuse_while_rotating(&self) -> Result<(), ReplicaError> {
        if self.dir.join(NEXT_KEY_FILE).exists() {
            return Err(ReplicaError::Edit(
                "a key rotation is in progress: run `accordo key rotate` to finish it first".into(),
            ));
        }
        Ok(())
    }

    /// Runs `f` on `doc` as this process's actor (its valid changes loaded)
    /// inside one store write transaction.
    fn write_doc<T>(
        &mut self,
        doc: &DocId,
        f: impl FnOnce(
            &crate::store::NodeTx<'_>,
            &mut AutoCommit,
            &SigningKey,
            [u8; ACTOR_NONCE_BYTES],
        ) -> Result<T, ReplicaError>,
    ) -> Result<T, ReplicaError> {
        let out = self.write_doc_planned(
            doc,
            |_| Ok(Some(())),
            |ctx, am, ()| Ok((f(ctx.tx, am, ctx.key, ctx.nonce)?, None)),
        )?;
        // Invariant: the plan above always asks for the edit.
        Ok(out.expect("an unconditional plan always edits"))
    }

    /// [`Replica::write_doc`] preceded by `plan`, run in the same store write
    /// transaction before the document is loaded (it may read the query
    /// store, which is current there). When `plan` returns `None`, the
    /// document is not loaded and nothing is written. `f` may write the
    /// rows of the projects it writes itself, when [`views::rows_first`]
    /// allows it and they are all it writes, and return how many: the
    /// views are then not derived from the document.
    fn write_doc_planned<P, T>(
        &mut self,
        doc: &DocId,
        plan: impl FnOnce(&crate::store::NodeTx<'_>) -> Result<Option<P>, ReplicaError>,
        f: impl FnOnce(&EditCtx<'_, '_>, &mut AutoCommit, P) -> Result<(T, Option<usize>), ReplicaError>,
    ) -> Result<Option<T>, ReplicaError> {
        self.catch_up_views()?;
        let invalid = self.invalid_hashes()?;
        if !invalid.is_empty() {
            let actor = derive_actor(&self.id, &self.nonce);
            if self
                .store
                .read(|tx| last_own_change_invalid(tx, doc, &actor, &invalid))?
            {
                // The document loads without that change, so the next one
                // would take its sequence number again: an equivocation the
                // log refuses. A fresh actor starts its numbers anew.
                self.nonce = fresh_nonce()?;
            }
        }
        let actor = derive_actor(&self.id, &self.nonce);
        let (key, nonce) = (&self.key, self.nonce);
        let anchors = self.settings.anchors.clone();
        let cache = &mut self.doc_cache;
        // The document to keep loaded once the transaction has committed,
        // with what `doc_state` records of it (see `doc_cache`).
        let mut keep: Option<(snapshot::Loaded, DerivedFrom)> = None;
        let result = self.store.write(|tx| {
            let Some(planned) = plan(tx)? else {
                return Ok(None);
            };
            let keeping = cache.keeping();
            let resident = if keeping {
                views::take_resident(tx, doc, &invalid, cache)?
            } else {
                None
            };
            let mut loaded = match resident {
                Some(l) => l,
                None => snapshot::load(tx, doc, &invalid)?,
            };
            loaded.doc = loaded.doc.with_actor(ActorId::from(&actor[..]));
            let before = tx.log().doc_head_seq(doc)?;
            let ctx = EditCtx {
                tx,
                key,
                nonce,
                anchors: &anchors,
                invalid: &invalid,
                before_seq: before,
            };
            let (out, rows_written) = match f(&ctx, &mut loaded.doc, planned) {
                Ok(done) => done,
                Err(e) => {
                    if keeping {
                        // The transaction rolls back: nothing was recorded.
                        keep = unchanged(tx, doc, loaded).ok().flatten();
                    }
                    return Err(e);
                }
            };
            let after = tx.log().doc_head_seq(doc)?;
            if after != before {
                // The edit's changes: part of the tail the next snapshot covers.
                for (_, env) in tx.log().doc_changes_after(doc, before)? {
                    loaded.tail_changes += 1;
                    loaded.tail_bytes += env.change.len();
                }
                loaded.head_seq = after;
                let (_, derived) = match rows_written {
                    Some(records) => views::after_rows_written(tx, doc, loaded, &invalid, records)?,
                    None => views::after_edit(tx, &anchors, doc, loaded, &invalid)?,
                };
                keep = derived;
            } else if keeping {
                keep = unchanged(tx, doc, loaded)?;
            }
            Ok(Some(out))
        });
        // Kept even if the commit failed: `doc_state` then disagrees with
        // the entry, which is dropped at its next use.
        if let Some((loaded, from)) = keep {
            self.doc_cache.put(doc.clone(), loaded, from);
        }
        result
    }
}

/// What an edit's closure gets besides the document, inside the store
/// write transaction of [`Replica::write_doc_planned`].
pub(crate) struct EditCtx<'a, 't> {
    pub tx: &'a NodeTx<'t>,
    pub key: &'a SigningKey,
    pub nonce: [u8; ACTOR_NONCE_BYTES],
    /// What [`views::rows_first`] needs to tell whether the edit may write
    /// its projects' rows itself.
    pub anchors: &'a [NodeId],
    pub invalid: &'a HashSet<ChangeHash>,
    /// The document's log position before the edit.
    pub before_seq: u64,
}

/// `loaded` with its uncommitted operations rolled back, and what
/// `doc_state` records of `doc`, if that is exactly what the views were
/// derived from (the same heads): a document an edit refused, or did not
/// change, is kept loaded as it was.
fn unchanged(
    tx: &NodeTx<'_>,
    doc: &DocId,
    mut loaded: snapshot::Loaded,
) -> Result<Option<(snapshot::Loaded, DerivedFrom)>, ReplicaError> {
    let Some(from) = views::derived_from(tx, doc)? else {
        return Ok(None);
    };
    loaded.doc.rollback();
    if loaded.head_seq != from.view_seq || views::heads_text(&mut loaded.doc) != from.heads {
        return Ok(None);
    }
    Ok(Some((loaded, from)))
}

/// Whether the last change `actor` made to `doc` is invalid (revoked past
/// its cut, or built on a change that is): an actor's changes form a chain,
/// so then the document holds fewer of its changes than the log does.
fn last_own_change_invalid(
    tx: &NodeTx<'_>,
    doc: &DocId,
    actor: &[u8; accordo_protocol::envelope::ACTOR_ID_BYTES],
    invalid: &HashSet<ChangeHash>,
) -> Result<bool, ReplicaError> {
    use rusqlite::OptionalExtension;
    let last: Option<Vec<u8>> = tx
        .sql()
        .query_row(
            "SELECT hash FROM log WHERE doc = ?1 AND actor = ?2 ORDER BY actor_seq DESC LIMIT 1",
            rusqlite::params![doc.canonical(), &actor[..]],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::from)?;
    Ok(last.is_some_and(|h| {
        <[u8; 32]>::try_from(h.as_slice()).is_ok_and(|h| invalid.contains(&ChangeHash(h)))
    }))
}

/// Commits pending edits of `am` as one change, signs it, and stores it in
/// the log and the outbox (inside the caller's transaction).
fn commit_signed(
    am: &mut AutoCommit,
    options: automerge::transaction::CommitOptions,
    doc: &DocId,
    key: &SigningKey,
    nonce: [u8; ACTOR_NONCE_BYTES],
    tx: &crate::store::NodeTx<'_>,
) -> Result<Option<ChangeHash>, ReplicaError> {
    match commit_change(am, options) {
        Some(change) => store_signed(&change, doc, key, nonce, tx).map(Some),
        None => Ok(None),
    }
}

/// Commits pending edits of `am` as one change, returned (`None`: there
/// were none).
fn commit_change(
    am: &mut AutoCommit,
    options: automerge::transaction::CommitOptions,
) -> Option<Change> {
    am.commit_with(options)?;
    // Invariant: commit_with returned a hash, so a local change exists.
    Some(
        am.get_last_local_change()
            .expect("a change was just committed"),
    )
}

/// Signs `change` (this node's own, just committed) and stores it in the
/// log and the outbox (inside the caller's transaction).
fn store_signed(
    change: &Change,
    doc: &DocId,
    key: &SigningKey,
    nonce: [u8; ACTOR_NONCE_BYTES],
    tx: &crate::store::NodeTx<'_>,
) -> Result<ChangeHash, ReplicaError> {
    let envelope = SignedChange::sign(doc.clone(), key, nonce, change);
    let verified = envelope
        .verify()
        .map_err(|e| ReplicaError::Edit(format!("own change failed verification: {e}")))?;
    match admit(&mut tx.log(), &verified)? {
        Ok(Admitted::Stored(seq)) => tx.enqueue(seq, &verified.hash)?,
        Ok(Admitted::Duplicate(_)) => {}
        Err(reason) => {
            return Err(ReplicaError::Edit(format!(
                "own change refused by the log: {reason}"
            )))
        }
    }
    Ok(verified.hash)
}

/// Builds a document from its changes minus `invalid` (a set closed under
/// descendants, so what remains is causally closed).
pub fn load_valid(
    doc: &DocId,
    changes: &[SignedChange],
    invalid: &HashSet<ChangeHash>,
) -> Result<AutoCommit, ReplicaError> {
    if invalid.is_empty() {
        return load_doc(doc, changes);
    }
    let kept: Vec<SignedChange> = changes
        .iter()
        .filter(|c| {
            Change::try_from(c.change.as_slice())
                .map(|ch| !invalid.contains(&ChangeHash::from(ch.hash())))
                .unwrap_or(true)
        })
        .cloned()
        .collect();
    load_doc(doc, &kept)
}

/// Every held change's metadata inside `tx`, in log order per document.
pub fn held_metas_in(tx: &NodeTx<'_>) -> Result<Vec<ChangeMeta>, ReplicaError> {
    let log = tx.log();
    let mut metas = Vec::new();
    for (doc, _) in log.docs()? {
        for env in log.doc_changes(&doc)? {
            let meta = ChangeMeta::of_stored(&env).map_err(|e| ReplicaError::Load {
                doc: doc.clone(),
                detail: e.to_string(),
            })?;
            metas.push(meta);
        }
    }
    Ok(metas)
}

/// The relay address unit tests' replicas name (no relay runs there).
#[cfg(test)]
pub(crate) fn test_relay() -> RelayAddr {
    let relay = NodeId::from_signing_key(&SigningKey::from_bytes(&[7; 32]));
    format!("{relay}@127.0.0.1:4433")
        .parse()
        .expect("a valid relay address")
}

/// A comune node directory for unit tests (comune 092009, no registry).
#[cfg(test)]
pub(crate) fn test_replica(dir: &Path) -> Replica {
    test_replica_governed(dir, Vec::new())
}

/// A comune node directory for unit tests (comune 092009) governed by the
/// registry of these pinned admins (none: no registry).
#[cfg(test)]
pub(crate) fn test_replica_governed(dir: &Path, anchors: Vec<NodeId>) -> Replica {
    let settings = Settings {
        comune: "092009".parse().expect("a valid ISTAT code"),
        role: Role::Comune,
        relay: test_relay(),
        network: "test".into(),
        anchors,
    };
    Replica::init(dir, settings).expect("a fresh directory initialises")
}

pub fn join_ids(ids: &[NodeId]) -> String {
    ids.iter()
        .map(NodeId::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

pub fn split_ids(s: &str) -> Result<Vec<NodeId>, accordo_protocol::identity::IdError> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(str::parse)
        .collect()
}

/// Builds a document from its changes, applied in one batch in log order.
///
/// The bytes came from peers: verified and signed, but a member's key can
/// sign anything automerge parses, and automerge's `apply_changes` is not
/// proof against hostile changes (the `apply_changes` fuzz target). So the
/// bytes are parsed as the verifier does (`parse_change`, behind
/// `catch_unwind`), the batch is applied behind `catch_unwind` too, and a
/// change that makes automerge panic is left out (with every change built
/// on it), logged by name and reported by `verify`, instead of killing the
/// node or hiding the rest of the document.
pub fn load_doc(doc: &DocId, changes: &[SignedChange]) -> Result<AutoCommit, ReplicaError> {
    let (am, refused) = load_doc_reporting(doc, changes)?;
    for r in &refused {
        tracing::warn!(%doc, change = %r.change, author = %r.author, "change left out: {r}");
    }
    Ok(am)
}

/// A change left out of a document because automerge cannot apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedChange {
    pub change: ChangeHash,
    pub author: NodeId,
    /// `None`: it made automerge panic; `Some(h)`: it builds on the refused `h`.
    pub builds_on: Option<ChangeHash>,
}

impl std::fmt::Display for RefusedChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.builds_on {
            None => write!(f, "automerge cannot apply it (it panics); refused"),
            Some(h) => write!(f, "it builds on {h}, which automerge cannot apply; refused"),
        }
    }
}

/// [`load_doc`], returning the changes it left out.
pub fn load_doc_reporting(
    doc: &DocId,
    changes: &[SignedChange],
) -> Result<(AutoCommit, Vec<RefusedChange>), ReplicaError> {
    let load_err = |detail: String| ReplicaError::Load {
        doc: doc.clone(),
        detail,
    };
    let parsed = changes
        .iter()
        .map(|c| accordo_protocol::envelope::parse_change(&c.change))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| load_err(e.to_string()))?;
    let mut am = AutoCommit::new();
    let batch = parsed.clone();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| am.apply_changes(batch))) {
        Ok(Ok(())) => Ok((am, Vec::new())),
        Ok(Err(e)) => Err(load_err(e.to_string())),
        Err(_) => {
            let authored: Vec<(Change, NodeId)> = parsed
                .into_iter()
                .zip(changes.iter().map(|c| c.author))
                .collect();
            load_skipping(&authored).map_err(|e| load_err(e.to_string()))
        }
    }
}

/// After a panic: applies the changes one at a time (log order is causal),
/// leaving out each change that makes automerge panic and every change built
/// on one. A panic may leave the document half-updated, so each one restarts
/// from an empty document; there are at most as many restarts as changes.
fn load_skipping(
    changes: &[(Change, NodeId)],
) -> Result<(AutoCommit, Vec<RefusedChange>), automerge::AutomergeError> {
    let mut refused: Vec<RefusedChange> = Vec::new();
    loop {
        let mut left_out: HashSet<ChangeHash> = refused.iter().map(|r| r.change).collect();
        let mut am = AutoCommit::new();
        let mut panicked = None;
        for (change, author) in changes {
            let hash = ChangeHash::from(change.hash());
            if left_out.contains(&hash) {
                continue;
            }
            let dep = change
                .deps()
                .iter()
                .map(|d| ChangeHash::from(*d))
                .find(|d| left_out.contains(d));
            if let Some(dep) = dep {
                left_out.insert(hash);
                refused.push(RefusedChange {
                    change: hash,
                    author: *author,
                    builds_on: Some(dep),
                });
                continue;
            }
            let one = change.clone();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| am.apply_changes([one])))
            {
                Ok(result) => result?,
                Err(_) => {
                    panicked = Some(RefusedChange {
                        change: hash,
                        author: *author,
                        builds_on: None,
                    });
                    break;
                }
            }
        }
        match panicked {
            Some(r) => refused.push(r),
            None => return Ok((am, refused)),
        }
    }
}
