//! The Strategic Metropolitan Plan's structure, in the plan document:
//! axes (policy areas), objectives, actions, strategic projects, zone
//! omogenee (with their comuni and validity dates) and reporting periods. Each item is a map at root key
//! `<kind>/<code>`, so concurrent additions never collide.

use super::codec::{self, CodecError};
use super::model::Date;
use automerge::AutoCommit;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The kinds of plan items, with their root-key prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Axis,
    Objective,
    Action,
    /// A strategic project of the plan, under an action.
    Strategic,
    Zone,
    Period,
    /// A text of the sustainability report, keyed by a dimension, an
    /// objective's code or `intro`; its `name` is the text.
    Text,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Kind::Axis,
        Kind::Objective,
        Kind::Action,
        Kind::Strategic,
        Kind::Zone,
        Kind::Period,
        Kind::Text,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Axis => "axis/",
            Kind::Objective => "objective/",
            Kind::Action => "action/",
            Kind::Strategic => "strategic/",
            Kind::Zone => "zone/",
            Kind::Period => "period/",
            Kind::Text => "text/",
        }
    }

    /// The kind an item's `parent` refers to, if any.
    pub fn parent(self) -> Option<Kind> {
        match self {
            Kind::Objective => Some(Kind::Axis),
            Kind::Action => Some(Kind::Objective),
            Kind::Strategic => Some(Kind::Action),
            _ => None,
        }
    }
}

/// A comune's membership of a zone, with validity dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Membership {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Date>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Date>,
    /// Always `true`: an undated membership would otherwise be an empty
    /// map, which the flat codec does not store, and the comune would be lost.
    pub member: bool,
}

impl Default for Membership {
    fn default() -> Self {
        Membership {
            valid_from: None,
            valid_to: None,
            member: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanItem {
    #[serde(skip)]
    pub code: String,
    pub name: String,
    /// Axis of an objective, objective of an action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Zone members: ISTAT code -> validity.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub comuni: BTreeMap<String, Membership>,
    /// Reporting period bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<Date>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<Date>,
}

pub fn items(doc: &AutoCommit, kind: Kind) -> Vec<PlanItem> {
    codec::root_maps_with_prefix(doc, kind.prefix())
        .into_iter()
        .filter_map(|(code, obj)| {
            let mut item: PlanItem = codec::read_typed(doc, &obj, &code).ok()?;
            item.code = code;
            Some(item)
        })
        .collect()
}

pub fn save(doc: &mut AutoCommit, kind: Kind, item: &PlanItem) -> Result<(), CodecError> {
    let old = items(doc, kind).into_iter().find(|i| i.code == item.code);
    codec::stamp_schema(doc)?;
    let obj = codec::root_map(doc, &format!("{}{}", kind.prefix(), item.code))?;
    let before = old.as_ref().map(codec::to_object).unwrap_or_default();
    codec::reconcile(doc, &obj, &before, &codec::to_object(item))
}

/// The zone a comune belonged to on `on`, if any.
pub fn zone_of(doc: &AutoCommit, comune: &str, on: Date) -> Option<String> {
    items(doc, Kind::Zone).into_iter().find_map(|z| {
        let m = z.comuni.get(comune)?;
        let started = m.valid_from.is_none_or(|f| f <= on);
        let ongoing = m.valid_to.is_none_or(|t| on <= t);
        (started && ongoing).then_some(z.code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_membership_respects_validity_dates() {
        let mut doc = AutoCommit::new();
        let mut zone = PlanItem {
            code: "Z1".into(),
            name: "Area vasta".into(),
            ..PlanItem::default()
        };
        zone.comuni.insert(
            "092009".into(),
            Membership {
                valid_from: Date::new(2020, 1, 1),
                valid_to: Date::new(2025, 12, 31),
                ..Membership::default()
            },
        );
        save(&mut doc, Kind::Zone, &zone).unwrap();
        assert_eq!(
            zone_of(&doc, "092009", Date::new(2024, 6, 1).unwrap()).as_deref(),
            Some("Z1")
        );
        assert_eq!(
            zone_of(&doc, "092009", Date::new(2026, 1, 1).unwrap()),
            None
        );
        assert_eq!(items(&doc, Kind::Zone)[0], zone);
    }

    #[test]
    fn a_zone_keeps_its_undated_comuni() {
        let mut doc = AutoCommit::new();
        let mut zone = PlanItem {
            code: "Z2".into(),
            name: "Levante".into(),
            ..PlanItem::default()
        };
        for c in ["010025", "010001"] {
            zone.comuni.insert(c.into(), Membership::default());
        }
        save(&mut doc, Kind::Zone, &zone).unwrap();
        assert_eq!(items(&doc, Kind::Zone)[0].comuni.len(), 2);
        assert_eq!(
            zone_of(&doc, "010001", Date::new(2024, 6, 1).unwrap()).as_deref(),
            Some("Z2")
        );
    }
}
