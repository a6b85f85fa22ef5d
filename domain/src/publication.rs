//! Who decides what is public. A comune publishes its own projects (the
//! `published` flag in its portfolio, which only it may write); the
//! metropolitan office may decide in its place, in the plan document, which
//! only it writes: a decision per project at root key
//! `publication/<ISTAT>/<project id>`. A project is public when the
//! metropolitan office published it, or when it left the choice to the
//! comune (no decision, or a decision put back to the comune) and the
//! comune published it. Both are signed changes like every other edit, so
//! a relay cannot make a draft public.
//!
//! A decision is a map holding a string, never deleted: putting the choice
//! back to the comune writes `comune`, so two offices' concurrent decisions
//! are an ordinary concurrent write of one key (one wins everywhere alike).

use super::codec::{self, CodecError};
use automerge::AutoCommit;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Root-key prefix of decisions in the plan document.
pub const PREFIX: &str = "publication/";

/// The metropolitan office's decision on one project.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Public whatever the comune's flag says.
    Published,
    /// Never public, whatever the comune's flag says.
    Draft,
    /// The comune's own flag decides (as with no decision at all).
    #[default]
    Comune,
}

impl Decision {
    pub const ALL: [Decision; 3] = [Decision::Published, Decision::Draft, Decision::Comune];

    pub fn code(self) -> &'static str {
        match self {
            Decision::Published => "published",
            Decision::Draft => "draft",
            Decision::Comune => "comune",
        }
    }

    /// Whether a project whose comune's flag is `own` is public under this
    /// decision.
    pub fn effective(self, own: bool) -> bool {
        match self {
            Decision::Published => true,
            Decision::Draft => false,
            Decision::Comune => own,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decision::ALL
            .into_iter()
            .find(|d| d.code() == s.trim())
            .ok_or_else(|| {
                format!("{s:?} is not a publication decision (published, draft, comune)")
            })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
struct Record {
    decision: Decision,
}

/// The root key of the decision on project `id` of comune `istat`.
pub fn key(istat: &str, id: &str) -> String {
    format!("{PREFIX}{istat}/{id}")
}

/// Every decision in the plan document, by (ISTAT code, project id).
/// Entries this version cannot read are left out (the comune's flag then
/// decides, the safe reading: nothing becomes public by it).
pub fn decisions(doc: &AutoCommit) -> BTreeMap<(String, String), Decision> {
    codec::root_maps_with_prefix(doc, PREFIX)
        .into_iter()
        .filter_map(|(rest, obj)| {
            let (istat, id) = rest.split_once('/')?;
            let r: Record = codec::read_typed(doc, &obj, &rest).ok()?;
            Some(((istat.to_owned(), id.to_owned()), r.decision))
        })
        .collect()
}

/// The decision on project `id` of comune `istat` (`Comune` when none).
pub fn decision(doc: &AutoCommit, istat: &str, id: &str) -> Decision {
    codec::find_root_map(doc, &key(istat, id))
        .and_then(|obj| codec::read_typed::<Record>(doc, &obj, id).ok())
        .map(|r| r.decision)
        .unwrap_or_default()
}

/// Records `decision` on project `id` of comune `istat`; returns whether
/// anything changed (deciding what is already decided writes nothing).
pub fn decide(
    doc: &mut AutoCommit,
    istat: &str,
    id: &str,
    decision: Decision,
) -> Result<bool, CodecError> {
    let k = key(istat, id);
    let old = codec::find_root_map(doc, &k)
        .and_then(|obj| codec::read_typed::<Record>(doc, &obj, id).ok());
    if old.as_ref().map(|r| r.decision) == Some(decision)
        || (old.is_none() && decision == Decision::Comune)
    {
        return Ok(false);
    }
    codec::stamp_schema(doc)?;
    let obj = codec::root_map(doc, &k)?;
    let before = old.as_ref().map(codec::to_object).unwrap_or_default();
    codec::reconcile(doc, &obj, &before, &codec::to_object(&Record { decision }))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metro_decision_wins_and_comune_defers_to_the_flag() {
        for own in [false, true] {
            assert!(Decision::Published.effective(own));
            assert!(!Decision::Draft.effective(own));
            assert_eq!(Decision::Comune.effective(own), own);
        }
    }

    #[test]
    fn decisions_round_trip_and_a_repeat_writes_nothing() {
        let mut doc = AutoCommit::new();
        assert_eq!(decision(&doc, "092009", "p1"), Decision::Comune);
        assert!(!decide(&mut doc, "092009", "p1", Decision::Comune).unwrap());
        assert!(
            doc.get_heads().is_empty(),
            "nothing written for no decision"
        );
        assert!(decide(&mut doc, "092009", "p1", Decision::Published).unwrap());
        assert!(!decide(&mut doc, "092009", "p1", Decision::Published).unwrap());
        assert!(decide(&mut doc, "092051", "p2", Decision::Draft).unwrap());
        assert_eq!(decision(&doc, "092009", "p1"), Decision::Published);
        let all = decisions(&doc);
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[&("092051".to_owned(), "p2".to_owned())],
            Decision::Draft
        );
        assert!(decide(&mut doc, "092009", "p1", Decision::Comune).unwrap());
        assert_eq!(decision(&doc, "092009", "p1"), Decision::Comune);
        assert_eq!(
            decisions(&doc).len(),
            2,
            "a decision put back stays recorded"
        );
    }

    #[test]
    fn concurrent_decisions_settle_alike_on_both_sides() {
        let mut a = AutoCommit::new();
        decide(&mut a, "092009", "p1", Decision::Draft).unwrap();
        let mut b = a.fork();
        decide(&mut a, "092009", "p1", Decision::Published).unwrap();
        decide(&mut b, "092009", "p1", Decision::Comune).unwrap();
        a.merge(&mut b).unwrap();
        b.merge(&mut a.clone()).unwrap();
        assert_eq!(decision(&a, "092009", "p1"), decision(&b, "092009", "p1"));
        assert_ne!(decision(&a, "092009", "p1"), Decision::Draft);
    }

    #[test]
    fn parsing_names_the_choices() {
        assert_eq!("published".parse::<Decision>(), Ok(Decision::Published));
        let e = "yes".parse::<Decision>().unwrap_err();
        assert!(e.contains("published, draft, comune"), "{e}");
    }
}
