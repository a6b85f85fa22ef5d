//! `accordo report --verify FILE`: recomputes a JSON report at the heads it
//! was stamped with (not at today's heads), from this node's own log, and
//! says whether the file matches — naming the first figures that differ, or
//! the heads this node does not hold.
//!
//! A document at given heads is built from exactly the changes those heads
//! cover (the heads and all their ancestors in the log), so the
//! recomputation does not depend on what the node received since, nor on
//! the verdict it holds today: a change revoked after the report was made
//! is still part of what the report was computed from (the outcome counts
//! such changes so the caller can say so).

use crate::replica::{load_doc, Replica, ReplicaError};
use crate::store::NodeTx;
use accordo_domain::report::{self, Claim, Difference, DocHeads, Input, StampError};
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{ChangeHash, SignedChange};
use accordo_protocol::registry::ChangeMeta;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Why a file could not be verified at all (as opposed to a report that
/// does not match).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not JSON: {source}")]
    NotJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {source}")]
    NotAReport { path: PathBuf, source: StampError },
    #[error("{path}: not a report: `{doc}` in computed_from is not a document id: {detail}")]
    BadDoc {
        path: PathBuf,
        doc: String,
        detail: String,
    },
    #[error("{path}: not a report: head `{head}` of {doc} in computed_from is not a change hash")]
    BadHead {
        path: PathBuf,
        doc: String,
        head: String,
    },
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

impl From<accordo_store::StoreError> for VerifyError {
    fn from(e: accordo_store::StoreError) -> Self {
        VerifyError::Replica(e.into())
    }
}

/// What verifying a report found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file is the report of those documents at those heads.
    Verified {
        documents: usize,
        digest: String,
        /// Changes under the stamped heads that the registry this node holds
        /// now rules invalid (a revocation since the report was made).
        now_invalid: usize,
    },
    /// Heads (document, hash) the file names that this node's log lacks.
    HeadsNotHeld(Vec<(String, String)>),
    /// The recomputed report differs from the file.
    Mismatch {
        /// Differing JSON paths, the stamp's digest field last.
        differences: Vec<Difference>,
        /// Whether the digest in the file is not that of the file's content
        /// (the file was altered after it was stamped).
        digest_of_content_differs: bool,
    },
}

/// Verifies the JSON report in `path` against this node's log.
pub fn verify_file(replica: &mut Replica, path: &Path) -> Result<Outcome, VerifyError> {
    let bytes = std::fs::read(path).map_err(|source| VerifyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: Value = serde_json::from_slice(&bytes).map_err(|source| VerifyError::NotJson {
        path: path.to_owned(),
        source,
    })?;
    verify_json(replica, path, &file)
}

/// Verifies a report already parsed (`path` names it in errors).
pub fn verify_json(
    replica: &mut Replica,
    path: &Path,
    file: &Value,
) -> Result<Outcome, VerifyError> {
    let claim = report::parse_claim(file).map_err(|source| VerifyError::NotAReport {
        path: path.to_owned(),
        source,
    })?;
    let wanted = parse_heads(path, &claim)?;
    let governed = replica.governed();
    let invalid_now: HashSet<ChangeHash> = if governed {
        replica.verdict()?.invalid.keys().copied().collect()
    } else {
        HashSet::new()
    };
    let at_heads = replica
        .store
        .read(|tx| input_at(tx, &claim, &wanted, &invalid_now, governed))?;
    let (input, now_invalid) = match at_heads {
        AtHeads::Missing(missing) => return Ok(Outcome::HeadsNotHeld(missing)),
        AtHeads::Loaded { input, now_invalid } => (input, now_invalid),
    };
    Ok(compare(file, &claim, &input, now_invalid))
}

/// The recomputed report against the file.
fn compare(file: &Value, claim: &Claim, input: &Input, now_invalid: usize) -> Outcome {
    let recomputed = report::build(input);
    // Invariant: a report always serialises (see `report::build`).
    let recomputed = serde_json::to_value(&recomputed).expect("a report serialises to JSON");
    let content_digest = report::digest_of_json(file);
    let digest_of_content_differs = content_digest != claim.stamp.digest;
    let (mut differences, digest): (Vec<Difference>, Vec<Difference>) =
        report::differences(file, &recomputed)
            .into_iter()
            .partition(|d| d.path != "computed_from.digest");
    differences.extend(digest);
    if differences.is_empty() && !digest_of_content_differs {
        return Outcome::Verified {
            documents: claim.stamp.documents.len(),
            digest: claim.stamp.digest.clone(),
            now_invalid,
        };
    }
    Outcome::Mismatch {
        differences,
        digest_of_content_differs,
    }
}

/// The stamped documents, parsed, in the order the report lists documents
/// (the query store's: by canonical id), each with its heads.
fn parse_heads(path: &Path, claim: &Claim) -> Result<Vec<(DocId, Vec<ChangeHash>)>, VerifyError> {
    let mut out = Vec::new();
    for DocHeads { doc, heads } in &claim.stamp.documents {
        let id: DocId = doc
            .parse()
            .map_err(|e: accordo_protocol::doc::DocIdError| VerifyError::BadDoc {
                path: path.to_owned(),
                doc: doc.clone(),
                detail: e.to_string(),
            })?;
        let hashes = heads
            .iter()
            .map(|h| {
                h.parse::<automerge::ChangeHash>()
                    .map(ChangeHash::from)
                    .map_err(|_| VerifyError::BadHead {
                        path: path.to_owned(),
                        doc: doc.clone(),
                        head: h.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push((id, hashes));
    }
    out.sort_by_key(|(id, _)| id.canonical());
    // A document counted twice would be recomputed twice, and its doubled
    // figures would match: the query store lists each document once.
    if let Some(w) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(VerifyError::BadDoc {
            path: path.to_owned(),
            doc: w[0].0.canonical(),
            detail: "listed twice".into(),
        });
    }
    Ok(out)
}

enum AtHeads {
    Missing(Vec<(String, String)>),
    Loaded { input: Input, now_invalid: usize },
}

/// The report's input from every wanted document at its heads, read from
/// the log in one transaction, one document loaded at a time (a metro
/// node's hundreds of documents are never all in memory); or every head the
/// log lacks.
fn input_at(
    tx: &NodeTx<'_>,
    claim: &Claim,
    wanted: &[(DocId, Vec<ChangeHash>)],
    invalid_now: &HashSet<ChangeHash>,
    governed: bool,
) -> Result<AtHeads, ReplicaError> {
    let mut missing = Vec::new();
    let mut input = report::input(claim.as_of, claim.period.clone(), &mut []);
    let mut now_invalid = 0;
    for (doc, heads) in wanted {
        let changes = tx.log().doc_changes(doc)?;
        let Some(covered) = covered_by(doc, &changes, heads, &mut missing)? else {
            continue;
        };
        if !missing.is_empty() {
            // Only the missing heads are reported: nothing to load.
            continue;
        }
        if governed {
            now_invalid += covered
                .iter()
                .filter(|(_, h)| invalid_now.contains(h))
                .count();
        }
        let selected: Vec<SignedChange> =
            covered.iter().map(|(i, _)| changes[*i].clone()).collect();
        let mut one = [(doc.clone(), load_doc(doc, &selected)?)];
        input.merge(report::input(claim.as_of, claim.period.clone(), &mut one));
    }
    if !missing.is_empty() {
        return Ok(AtHeads::Missing(missing));
    }
    Ok(AtHeads::Loaded { input, now_invalid })
}

/// Log positions (indices into `changes`, ascending: a valid apply order)
/// and hashes of the heads and all their ancestors; `None` when a head is
/// not held, after adding it to `missing`.
fn covered_by(
    doc: &DocId,
    changes: &[SignedChange],
    heads: &[ChangeHash],
    missing: &mut Vec<(String, String)>,
) -> Result<Option<Vec<(usize, ChangeHash)>>, ReplicaError> {
    let mut index: HashMap<ChangeHash, (usize, Vec<ChangeHash>)> = HashMap::new();
    for (i, env) in changes.iter().enumerate() {
        let meta = ChangeMeta::of_stored(env).map_err(|e| ReplicaError::Load {
            doc: doc.clone(),
            detail: e.to_string(),
        })?;
        index.insert(meta.hash, (i, meta.deps));
    }
    let absent: Vec<&ChangeHash> = heads.iter().filter(|h| !index.contains_key(h)).collect();
    if !absent.is_empty() {
        missing.extend(absent.into_iter().map(|h| (doc.canonical(), h.to_string())));
        return Ok(None);
    }
    let mut seen: HashSet<ChangeHash> = HashSet::new();
    let mut stack: Vec<ChangeHash> = heads.to_vec();
    let mut out = Vec::new();
    while let Some(h) = stack.pop() {
        if !seen.insert(h) {
            continue;
        }
        // The log is causally closed, so every dependency of a held change
        // is held; a store that says otherwise is damaged.
        let (i, deps) = index.get(&h).ok_or_else(|| ReplicaError::Load {
            doc: doc.clone(),
            detail: format!("the log lacks {h}, a dependency of a change it holds"),
        })?;
        out.push((*i, h));
        stack.extend(deps.iter().copied());
    }
    out.sort_unstable();
    Ok(Some(out))
}
