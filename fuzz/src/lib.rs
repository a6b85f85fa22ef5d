//! Shared pieces of the fuzz targets and of the seed writer: deterministic
//! signing authors (automerge changes committed at time 0, so a given fuzz
//! input always makes the same bytes), a fixed key pool, a relay's state
//! holding real changes, the length-prefixed splitting of one input into
//! several messages, and the panic hook every target installs (`init`).

use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{derive_actor, SignedChange, ACTOR_NONCE_BYTES};
use accordo_protocol::identity::NodeId;
use accordo_protocol::registry::Statement;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ReadDoc, ROOT};
use ed25519_dalek::SigningKey;

/// Comune of the fixtures (Cagliari).
pub const COMUNE: &str = "092009";
/// Network name of the fixtures.
pub const NETWORK: &str = "cagliari";

/// The fixture key with this seed (seed 0 is the pinned admin of the
/// registry targets).
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed.wrapping_add(1); 32])
}

pub fn id(seed: u8) -> NodeId {
    NodeId::from_signing_key(&key(seed))
}

pub fn comune_doc() -> DocId {
    DocId::Comune(COMUNE.parse().expect("COMUNE is six digits"))
}

/// A signing author: one key, one process nonce, one automerge document
/// whose actor is bound to both. Every commit is stamped at time 0.
#[derive(Clone)]
pub struct Author {
    pub key: SigningKey,
    pub nonce: [u8; ACTOR_NONCE_BYTES],
    pub doc: AutoCommit,
}

impl Author {
    pub fn new(seed: u8, generation: u8) -> Author {
        let key = key(seed);
        let nonce = [generation; ACTOR_NONCE_BYTES];
        let actor = derive_actor(&NodeId::from_signing_key(&key), &nonce);
        Author {
            key,
            nonce,
            doc: AutoCommit::new().with_actor(ActorId::from(&actor[..])),
        }
    }

    pub fn id(&self) -> NodeId {
        NodeId::from_signing_key(&self.key)
    }

    /// A process restart: same key and history, a fresh nonce and so a fresh actor.
    pub fn restart(&mut self, generation: u8) {
        self.nonce = [generation; ACTOR_NONCE_BYTES];
        let actor = derive_actor(&self.id(), &self.nonce);
        self.doc = self.doc.fork().with_actor(ActorId::from(&actor[..]));
    }

    /// One change putting `field = value`, signed for `doc`. The field must
    /// not hold `value` already (that would make no change).
    pub fn edit(&mut self, doc: DocId, field: &str, value: &str) -> SignedChange {
        self.try_edit(doc, field, value)
            .expect("the edit changes the document")
    }

    /// Like [`Author::edit`]; `None` if the field already holds `value`.
    pub fn try_edit(&mut self, doc: DocId, field: &str, value: &str) -> Option<SignedChange> {
        self.commit(doc, field, value, None)
    }

    /// One registry change carrying `statement` as its message.
    pub fn statement(&mut self, statement: &Statement) -> SignedChange {
        let message = statement.to_message();
        let field = format!("s{}", self.doc.length(ROOT));
        self.commit(DocId::Registry, &field, &message, Some(message.clone()))
            .expect("a statement goes in a new field")
    }

    /// Learns every change `other` made (a sync between the two); `false`
    /// if automerge refused the merge.
    pub fn learn(&mut self, other: &mut Author) -> bool {
        self.doc.merge(&mut other.doc).is_ok()
    }

    fn commit(
        &mut self,
        doc: DocId,
        field: &str,
        value: &str,
        message: Option<String>,
    ) -> Option<SignedChange> {
        self.doc
            .put(ROOT, field, value)
            .expect("putting a string at the root cannot fail");
        let mut opts = CommitOptions::default().with_time(0);
        if let Some(m) = message {
            opts = opts.with_message(m);
        }
        // No change when the field already held the value.
        self.doc.commit_with(opts)?;
        let change = self
            .doc
            .get_last_local_change()
            .expect("a change was just committed");
        Some(SignedChange::sign(doc, &self.key, self.nonce, &change))
    }
}

/// Splits `data` into messages, each a big-endian u16 length then that many
/// bytes (a short frame format, so one input can carry several messages).
pub fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let body = &data[2..];
        let take = len.min(body.len());
        let (msg, rest) = body.split_at(take);
        data = rest;
        Some(msg)
    })
}

/// The inverse of [`frames`], for the seed writer.
pub fn frame(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        let len = u16::try_from(m.len()).expect("seed messages are under 64 KiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// A relay's state for the relay target: members, a log holding a few real
/// changes of three documents, and changes it does not hold yet (one that
/// extends the log, one by a member of another comune, one by a comune key
/// on the plan).
pub struct RelayFixture {
    pub log: accordo_protocol::log::MemLog,
    pub members: std::collections::BTreeMap<NodeId, accordo_protocol::authority::Member>,
    pub fresh: Vec<SignedChange>,
}

pub fn relay_fixture() -> RelayFixture {
    use accordo_protocol::authority::Member;
    use accordo_protocol::identity::Role;
    use accordo_protocol::log::{admit, MemLog};
    let other_comune = DocId::Comune("092051".parse().expect("six digits"));
    let mut a = Author::new(1, 0);
    let mut metro = Author::new(2, 0);
    let mut b = Author::new(3, 0);
    let member = |author: &Author, comune: &str, role| Member {
        node: author.id(),
        comune: comune.parse().expect("six digits"),
        role,
    };
    let members = [
        member(&a, COMUNE, Role::Comune),
        member(&metro, "083048", Role::Metro),
        member(&b, "092051", Role::Comune),
    ]
    .into_iter()
    .map(|m| (m.node, m))
    .collect();
    let held = [
        a.edit(comune_doc(), "title", "Scuola"),
        metro.edit(DocId::Plan, "axis/1", "Mobilità"),
        a.edit(comune_doc(), "amount_cents", "120000"),
        b.edit(other_comune, "title", "Ponte"),
        metro.edit(DocId::Plan, "axis/2", "Scuole"),
        a.edit(comune_doc(), "state", "avviato"),
    ];
    let mut log = MemLog::default();
    for env in held {
        let v = env.verify().expect("a fixture change verifies");
        admit(&mut log, &v)
            .expect("MemLog is infallible")
            .expect("fixture changes are admitted in causal order");
    }
    let fresh = vec![
        a.edit(comune_doc(), "state", "concluso"),
        b.edit(comune_doc(), "title", "Not mine"),
        a.edit(DocId::Plan, "axis/3", "Not metro"),
    ];
    RelayFixture {
        log,
        members,
        fresh,
    }
}

/// Call first in every target. libfuzzer-sys's panic hook aborts on every
/// panic, even one the code under test catches on purpose (protocol's
/// `parse_change` contains panics of automerge's parser). This restores the
/// default hook: a caught panic is handled as the code intends (its message
/// is still printed), and an uncaught one still ends the run as a crash,
/// since libfuzzer-sys aborts when a panic leaves the target.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| drop(std::panic::take_hook()));
}
