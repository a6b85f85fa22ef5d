//! The aggregates equal the same sums computed in Rust from the listed
//! projects (`views::projects`) and the plan's zones (`plan::zone_of` on the
//! materialised plan), for every combination of filters over a portfolio
//! of three comuni whose zone memberships change on a date.

use super::*;
use crate::replica::Replica;
use crate::views::{projects, Listed};
use accordo_domain::model::{FundingLine, PnrrMeasure, Project};
use accordo_domain::plan::{self, Kind, Membership, PlanItem};
use accordo_domain::portfolio;
use accordo_protocol::doc::DocId;
use automerge::AutoCommit;
use std::collections::{BTreeMap, BTreeSet};

const COMUNI: [&str; 3] = ["001272", "001090", "001156"];
const SOURCES: [FundingSource; 3] = [
    FundingSource::Pnrr,
    FundingSource::Fesr,
    FundingSource::Comune,
];

fn date(s: &str) -> Date {
    Date::parse_any("date", s).unwrap()
}

/// A varied project: with or without a measure, a zone of its own, funding
/// lines, stated money; some archived.
fn project(c: usize, i: usize) -> Project {
    let mut p = Project {
        id: format!("c{c}p{i:03}"),
        cup: Some(format!("F{:02}B{:011}", 10 + c, i)),
        title: format!("Opera {i}"),
        archived: i % 7 == 3,
        pnrr_measure: match i % 4 {
            0 => None,
            1 => Some("M1C1I1.1".parse::<PnrrMeasure>().unwrap()),
            _ => Some("M5C2I2.2".parse::<PnrrMeasure>().unwrap()),
        },
        zone: (i % 5 == 4).then(|| "Z3".to_owned()),
        financed_cents: (!i.is_multiple_of(3)).then_some(1_000_000 + (i as i64) * 12_345),
        committed_cents: i.is_multiple_of(2).then_some(500_000 + (i as i64) * 777),
        paid_cents: (i % 3 == 1).then_some(100_000 + c as i64),
        created_ms: 1,
        ..Project::default()
    };
    for l in 0..(i % 3) {
        p.funding.insert(
            format!("l{l}"),
            FundingLine {
                source: SOURCES[(i + l) % SOURCES.len()],
                programme: None,
                amount_cents: 10_000 * (l as i64 + 1) + i as i64,
            },
        );
    }
    p
}

/// Z1 holds the first comune, and the second until 2025-12-31; Z2 holds the
/// second from 2026-01-01; the third is in no zone. Z3 is stated by some
/// projects only.
fn zones() -> Vec<PlanItem> {
    let member = |from: Option<&str>, to: Option<&str>| Membership {
        valid_from: from.map(date),
        valid_to: to.map(date),
        member: true,
    };
    let z1 = PlanItem {
        code: "Z1".into(),
        name: "Zona 1".into(),
        comuni: [
            (COMUNI[0].to_owned(), member(None, None)),
            (COMUNI[1].to_owned(), member(None, Some("2025-12-31"))),
        ]
        .into_iter()
        .collect(),
        ..PlanItem::default()
    };
    let z2 = PlanItem {
        code: "Z2".into(),
        name: "Zona 2".into(),
        comuni: [(COMUNI[1].to_owned(), member(Some("2026-01-01"), None))]
            .into_iter()
            .collect(),
        ..PlanItem::default()
    };
    vec![z1, z2]
}

fn seeded(dir: &std::path::Path) -> Replica {
    let mut r = crate::replica::test_replica(dir);
    for (c, istat) in COMUNI.iter().enumerate() {
        let doc = DocId::Comune(istat.parse().unwrap());
        r.edit(&doc, 1_000, |am| {
            for i in 0..30 {
                portfolio::save(am, None, &project(c, i))?;
            }
            Ok(())
        })
        .unwrap();
    }
    r.edit(&DocId::Plan, 1_000, |am| {
        for z in zones() {
            plan::save(am, Kind::Zone, &z).map_err(|e| ReplicaError::Edit(e.to_string()))?;
        }
        Ok(())
    })
    .unwrap();
    r
}

fn selected<'a>(
    listed: &'a [Listed],
    plan_doc: &AutoCommit,
    f: &AggregateFilter,
) -> Vec<(Option<String>, &'a Project)> {
    listed
        .iter()
        .filter_map(|(doc, p)| {
            let DocId::Comune(c) = doc else { return None };
            let zone = p
                .zone
                .clone()
                .or_else(|| plan::zone_of(plan_doc, c.as_str(), f.as_of));
            let keep = (f.include_archived || !p.archived)
                && f.comune.as_ref().is_none_or(|fc| fc == c)
                && f.zone.as_ref().is_none_or(|z| zone.as_ref() == Some(z))
                && f.mission.as_ref().is_none_or(|m| {
                    p.pnrr_measure.as_ref().map(|pm| &pm.as_str()[..2]) == Some(m.as_str())
                });
            keep.then_some((zone, p))
        })
        .collect()
}

fn expected_by_zone_and_mission(
    listed: &[Listed],
    plan_doc: &AutoCommit,
    f: &AggregateFilter,
) -> Vec<ZoneMissionTotals> {
    let mut groups: BTreeMap<(Option<String>, Option<String>), ZoneMissionTotals> = BTreeMap::new();
    for (zone, p) in selected(listed, plan_doc, f) {
        if let Some(s) = f.source {
            if !p.funding.values().any(|l| l.source == s) {
                continue;
            }
        }
        let mission = p.pnrr_measure.as_ref().map(|m| m.as_str()[..2].to_owned());
        let g = groups
            .entry((zone.clone(), mission.clone()))
            .or_insert_with(|| ZoneMissionTotals {
                zone,
                mission,
                ..ZoneMissionTotals::default()
            });
        g.projects += 1;
        g.financed_cents += p.financed_cents.unwrap_or_else(|| p.funding_total_cents());
        g.committed_cents += p.committed_cents.unwrap_or(0);
        g.paid_cents += p.paid_cents.unwrap_or(0);
    }
    groups.into_values().collect()
}

fn expected_by_source(
    listed: &[Listed],
    plan_doc: &AutoCommit,
    f: &AggregateFilter,
) -> Vec<FundingSourceTotals> {
    let mut groups: BTreeMap<String, (BTreeSet<String>, FundingSourceTotals)> = BTreeMap::new();
    for (_, p) in selected(listed, plan_doc, f) {
        for line in p.funding.values() {
            if f.source.is_some_and(|s| s != line.source) {
                continue;
            }
            let code = line.source.code().to_owned();
            let (ids, g) = groups.entry(code.clone()).or_insert_with(|| {
                (
                    BTreeSet::new(),
                    FundingSourceTotals {
                        source: code,
                        ..FundingSourceTotals::default()
                    },
                )
            });
            ids.insert(format!("{}/{}", p.cup.clone().unwrap_or_default(), p.id));
            g.projects = ids.len() as u64;
            g.lines += 1;
            g.amount_cents += line.amount_cents;
        }
    }
    groups.into_values().map(|(_, g)| g).collect()
}

fn filters() -> Vec<AggregateFilter> {
    let mut out = Vec::new();
    for as_of in ["2025-06-30", "2026-06-30"] {
        for zone in [None, Some("Z1"), Some("Z2"), Some("Z3")] {
            for mission in [None, Some("M1"), Some("m5")] {
                for source in [None, Some(FundingSource::Pnrr), Some(FundingSource::Fesr)] {
                    for comune in [None, Some(COMUNI[1])] {
                        for include_archived in [false, true] {
                            out.push(AggregateFilter {
                                as_of: date(as_of),
                                zone: zone.map(str::to_owned),
                                mission: mission.map(|m| m.parse().unwrap()),
                                source,
                                comune: comune.map(|c| c.parse().unwrap()),
                                include_archived,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn aggregates_equal_the_sums_of_the_listed_projects_for_every_filter() {
    let d = tempfile::tempdir().unwrap();
    let mut r = seeded(d.path());
    let plan_doc = r.materialise(&DocId::Plan).unwrap();
    let listed = r.query(|tx| projects(tx, None, true)).unwrap();
    assert_eq!(listed.len(), 90);
    let mut nonempty = 0;
    for f in filters() {
        let (by_zone, by_source) = r
            .query(|tx| {
                Ok((
                    totals_by_zone_and_mission(tx, &f).unwrap(),
                    totals_by_funding_source(tx, &f).unwrap(),
                ))
            })
            .unwrap();
        assert_eq!(
            by_zone,
            expected_by_zone_and_mission(&listed, &plan_doc, &f),
            "by zone and mission, {f:?}"
        );
        assert_eq!(
            by_source,
            expected_by_source(&listed, &plan_doc, &f),
            "by funding source, {f:?}"
        );
        nonempty += usize::from(!by_zone.is_empty());
    }
    // The filters select something in most combinations, not nothing.
    assert!(nonempty > filters().len() / 2, "{nonempty} non-empty");
}

#[test]
fn a_membership_change_moves_a_comunes_money_between_zones() {
    let d = tempfile::tempdir().unwrap();
    let mut r = seeded(d.path());
    let in_zone = |r: &mut Replica, zone: &str, as_of: &str| -> u64 {
        let f = AggregateFilter {
            zone: Some(zone.to_owned()),
            comune: Some(COMUNI[1].parse().unwrap()),
            ..AggregateFilter::as_of(date(as_of))
        };
        r.query(|tx| Ok(totals_by_zone_and_mission(tx, &f).unwrap()))
            .unwrap()
            .iter()
            .map(|g| g.projects)
            .sum()
    };
    let before = (
        in_zone(&mut r, "Z1", "2025-12-31"),
        in_zone(&mut r, "Z2", "2025-12-31"),
    );
    let after = (
        in_zone(&mut r, "Z1", "2026-01-01"),
        in_zone(&mut r, "Z2", "2026-01-01"),
    );
    assert!(before.0 > 0 && before.1 == 0, "{before:?}");
    assert_eq!(after, (0, before.0), "the same projects, now in Z2");
}

#[test]
fn a_bad_mission_or_an_unknown_zone_is_refused_naming_it() {
    let err = "M9".parse::<Mission>().unwrap_err();
    assert!(err.to_string().contains("\"M9\""), "{err}");
    assert!("M10".parse::<Mission>().is_err());
    let d = tempfile::tempdir().unwrap();
    let mut r = seeded(d.path());
    let f = AggregateFilter {
        zone: Some("Z9".into()),
        ..AggregateFilter::as_of(date("2026-01-01"))
    };
    let err = r
        .query(|tx| Ok(totals_by_zone_and_mission(tx, &f).unwrap_err()))
        .unwrap();
    assert!(
        matches!(&err, AggregateError::UnknownZone(z) if z == "Z9"),
        "{err}"
    );
    assert!(err.to_string().contains("\"Z9\""));
}

#[test]
fn views_derived_before_the_zone_column_are_derived_again_on_open() {
    let d = tempfile::tempdir().unwrap();
    let mut r = seeded(d.path());
    let f = AggregateFilter {
        zone: Some("Z3".into()),
        ..AggregateFilter::as_of(date("2026-01-01"))
    };
    let stated = r
        .query(|tx| Ok(totals_by_zone_and_mission(tx, &f).unwrap()))
        .unwrap();
    assert!(!stated.is_empty(), "some projects state zone Z3");
    // What migration 4 leaves: rows without the column's values, empty
    // summary tables, and every document's views marked as covering nothing.
    r.store
        .write(|tx| {
            tx.sql()
                .execute_batch(
                    "UPDATE view_projects SET zone = NULL;
                     DELETE FROM view_totals;
                     DELETE FROM view_source_totals;
                     UPDATE doc_state SET view_seq = 0;",
                )
                .map_err(StoreError::from)
        })
        .unwrap();
    drop(r);
    let mut r = Replica::open(d.path()).unwrap();
    let again = r
        .query(|tx| Ok(totals_by_zone_and_mission(tx, &f).unwrap()))
        .unwrap();
    assert_eq!(again, stated);
}
