//! A node's replica: its identity, settings and store, and the two things a
//! replica does with documents — materialise them from the verified log, and
//! make a local edit as one signed change.
//!
//! Every process that opens a replica draws a fresh actor nonce, so its
//! automerge actor (bound to the node key, see `accordo_protocol::envelope`)
//! is new: a directory restored from a backup, or copied to a second machine,
//! can never produce two different changes with the same (actor, seq).

use crate::store::{self, NodeStore};
use accordo_net::keyfile;
use accordo_protocol::codes::Istat;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{derive_actor, ChangeHash, SignedChange, ACTOR_NONCE_BYTES};
use accordo_protocol::identity::{NodeId, RelayAddr, Role};
use accordo_protocol::log::{admit, Admitted};
use accordo_protocol::wire::Scope;
use accordo_store::StoreError;
use automerge::{ActorId, AutoCommit, Change};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};

pub const KEY_FILE: &str = "node.key";
pub const DB_FILE: &str = "node.db";

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
}

/// Settings fixed at `init` (the role may be corrected by the relay's hello).
#[derive(Debug, Clone)]
pub struct Settings {
    pub comune: Istat,
    pub role: Role,
    pub relay: RelayAddr,
    pub network: String,
}

pub struct Replica {
    pub dir: PathBuf,
    pub key: SigningKey,
    pub id: NodeId,
    pub settings: Settings,
    pub store: NodeStore,
    nonce: [u8; ACTOR_NONCE_BYTES],
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
            for scope in default_scopes(&settings.comune, settings.role) {
                tx.follow(&scope)?;
            }
            Ok::<_, StoreError>(())
        })?;
        // The key file is written last: its presence marks a complete directory.
        let key = keyfile::generate()?;
        keyfile::create(&dir.join(KEY_FILE), &key)?;
        drop(store);
        Replica::open(dir)
    }

    /// Opens an existing node directory with a fresh actor nonce.
    pub fn open(dir: &Path) -> Result<Replica, ReplicaError> {
        let key_path = dir.join(KEY_FILE);
        if !key_path.exists() {
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
        };
        Ok(Replica {
            dir: dir.to_owned(),
            id: NodeId::from_signing_key(&key),
            key,
            settings,
            store,
            nonce: fresh_nonce()?,
        })
    }

    /// This node's comune document.
    pub fn own_doc(&self) -> DocId {
        DocId::Comune(self.settings.comune.clone())
    }

    /// The document as the log holds it now.
    pub fn materialise(&mut self, doc: &DocId) -> Result<AutoCommit, ReplicaError> {
        let changes = self.store.read(|tx| tx.log().doc_changes(doc))?;
        load_doc(doc, &changes)
    }

    /// Every document held, materialised.
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
        let actor = derive_actor(&self.id, &self.nonce);
        let (key, nonce) = (&self.key, self.nonce);
        self.store.write(|tx| {
            let mut log = tx.log();
            let mut am =
                load_doc(doc, &log.doc_changes(doc)?)?.with_actor(ActorId::from(&actor[..]));
            let value = f(&mut am)?;
            let options = automerge::transaction::CommitOptions::default().with_time(now_ms / 1000);
            if am.commit_with(options).is_none() {
                return Ok((value, None));
            }
            // Invariant: commit_with returned a hash, so a local change exists.
            let change = am
                .get_last_local_change()
                .expect("a change was just committed");
            let envelope = SignedChange::sign(doc.clone(), key, nonce, &change);
            let verified = envelope
                .verify()
                .map_err(|e| ReplicaError::Edit(format!("own change failed verification: {e}")))?;
            match admit(&mut log, &verified)? {
                Ok(Admitted::Stored(seq)) => tx.enqueue(seq, &verified.hash)?,
                Ok(Admitted::Duplicate(_)) => {}
                Err(reason) => {
                    return Err(ReplicaError::Edit(format!(
                        "own change refused by the log: {reason}"
                    )))
                }
            }
            Ok((value, Some(verified.hash)))
        })
    }
}

/// Builds a document from its changes, applied in one batch in log order.
pub fn load_doc(doc: &DocId, changes: &[SignedChange]) -> Result<AutoCommit, ReplicaError> {
    let parsed = changes
        .iter()
        .map(|c| Change::try_from(c.change.as_slice()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ReplicaError::Load {
            doc: doc.clone(),
            detail: e.to_string(),
        })?;
    let mut am = AutoCommit::new();
    am.apply_changes(parsed).map_err(|e| ReplicaError::Load {
        doc: doc.clone(),
        detail: e.to_string(),
    })?;
    Ok(am)
}
