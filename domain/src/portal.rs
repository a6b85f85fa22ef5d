//! What the public portal shows, decided without I/O: the published part of
//! the report's input (published projects not archived, published indicators
//! and their data, nothing else — a draft never reaches a public page or an
//! open-data file), the public form of a project (the office's internal
//! notes left out), and the zona omogenea each published project counts in.
//!
//! The portal's figures are [`crate::report::build`] over
//! [`public_input`], so they carry the report's stamp (`computed_from`):
//! the documents with the heads they were read at and the digest.

use crate::model::{Date, Project};
use crate::plan::PlanItem;
use crate::report::Input;
use std::collections::BTreeSet;

/// The public form of a project: internal notes are the office's.
pub fn public_project(mut p: Project) -> Project {
    p.notes = None;
    p
}

/// Whether a project may be shown in public.
pub fn is_public(p: &Project) -> bool {
    p.published && !p.archived
}

/// The part of `input` that is public: published projects not archived (in
/// their public form), published indicators of the catalog and only their
/// data. The documents and heads stay as they were read.
pub fn public_input(input: Input) -> Input {
    let catalog: Vec<_> = input.catalog.into_iter().filter(|d| d.published).collect();
    let codes: BTreeSet<&str> = catalog.iter().map(|d| d.code.as_str()).collect();
    let indicator_data = input
        .indicator_data
        .into_iter()
        .map(|(territory, mut data)| {
            data.retain(|code, _| codes.contains(code.as_str()));
            (territory, data)
        })
        .filter(|(_, data)| !data.is_empty())
        .collect();
    let comuni = input
        .comuni
        .into_iter()
        .map(|(c, projects)| {
            let public: Vec<Project> = projects
                .into_iter()
                .filter(is_public)
                .map(public_project)
                .collect();
            (c, public)
        })
        .filter(|(_, projects)| !projects.is_empty())
        .collect();
    Input {
        as_of: input.as_of,
        period: input.period,
        comuni,
        catalog,
        indicator_data,
        documents: input.documents,
    }
}

/// The zona omogenea a project counts in on `on`: the one it states for
/// itself, else the zone its comune belonged to that day (the first by code
/// when several), as the dashboard's aggregates count it.
pub fn zone_of(p: &Project, comune: &str, zones: &[PlanItem], on: Date) -> Option<String> {
    if let Some(z) = p.zone.as_deref().filter(|z| !z.is_empty()) {
        return Some(z.to_owned());
    }
    let mut codes: Vec<&PlanItem> = zones.iter().collect();
    codes.sort_by(|a, b| a.code.cmp(&b.code));
    codes.into_iter().find_map(|z| {
        let m = z.comuni.get(comune)?;
        let started = m.valid_from.is_none_or(|f| f <= on);
        let ongoing = m.valid_to.is_none_or(|t| on <= t);
        (started && ongoing).then(|| z.code.clone())
    })
}

/// The span of the plan's reporting periods (earliest start, latest end).
pub fn plan_span(periods: &[PlanItem]) -> Option<(Date, Date)> {
    let start = periods.iter().filter_map(|p| p.start).min()?;
    let end = periods.iter().filter_map(|p| p.end).max()?;
    (start <= end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::{IndicatorData, IndicatorDef};
    use crate::plan::Membership;
    use std::collections::BTreeMap;

    fn project(id: &str, published: bool, archived: bool) -> Project {
        Project {
            id: id.into(),
            title: id.into(),
            published,
            archived,
            notes: Some("interno".into()),
            ..Project::default()
        }
    }

    #[test]
    fn only_published_projects_and_indicators_are_public_and_notes_never() {
        let def = |code: &str, published| IndicatorDef {
            code: code.into(),
            published,
            ..IndicatorDef::default()
        };
        let data: BTreeMap<String, IndicatorData> = [("A", ()), ("B", ())]
            .into_iter()
            .map(|(c, ())| (c.to_owned(), IndicatorData::default()))
            .collect();
        let input = Input {
            as_of: Date::new(2026, 1, 1).unwrap(),
            period: None,
            comuni: vec![
                (
                    "092009".into(),
                    vec![
                        project("pub", true, false),
                        project("draft", false, false),
                        project("gone", true, true),
                    ],
                ),
                ("092051".into(), vec![project("draft2", false, false)]),
            ],
            catalog: vec![def("A", true), def("B", false)],
            indicator_data: vec![("metro".into(), data)],
            documents: vec![],
        };
        let public = public_input(input);
        assert_eq!(
            public.comuni.len(),
            1,
            "a comune with only drafts is not listed"
        );
        let ids: Vec<&str> = public.comuni[0].1.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["pub"]);
        assert_eq!(public.comuni[0].1[0].notes, None);
        assert_eq!(public.catalog.len(), 1);
        let codes: Vec<&String> = public.indicator_data[0].1.keys().collect();
        assert_eq!(codes, ["A"]);
    }

    #[test]
    fn a_project_counts_in_its_own_zone_else_its_comunes_on_the_day() {
        let mut zone = PlanItem {
            code: "Z2".into(),
            name: "Zona 2".into(),
            ..PlanItem::default()
        };
        zone.comuni.insert(
            "092009".into(),
            Membership {
                valid_from: Date::new(2025, 1, 1),
                ..Membership::default()
            },
        );
        let zones = vec![zone];
        let p = project("p", true, false);
        let before = Date::new(2024, 6, 1).unwrap();
        let after = Date::new(2025, 6, 1).unwrap();
        assert_eq!(zone_of(&p, "092009", &zones, before), None);
        assert_eq!(zone_of(&p, "092009", &zones, after).as_deref(), Some("Z2"));
        let own = Project {
            zone: Some("Z9".into()),
            ..p
        };
        assert_eq!(
            zone_of(&own, "092009", &zones, before).as_deref(),
            Some("Z9")
        );
    }
}
