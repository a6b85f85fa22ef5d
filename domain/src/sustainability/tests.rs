//! Deviations computed by hand for a small plan.

use super::*;
use crate::indicator::{IndicatorDef, Observation, Reference};
use crate::model::{Date, Project};

fn data(baseline: (&str, f64), observations: &[(&str, f64)]) -> IndicatorData {
    IndicatorData {
        baseline: Some(Reference {
            period: baseline.0.into(),
            value: baseline.1,
        }),
        target: None,
        observations: observations
            .iter()
            .map(|(p, v)| {
                (
                    (*p).to_owned(),
                    Observation {
                        value: *v,
                        flag: None,
                    },
                )
            })
            .collect(),
    }
}

fn def(code: &str, polarity: i8, dimension: Option<Dimension>, sdg: Option<u8>) -> IndicatorDef {
    IndicatorDef {
        code: code.into(),
        name_it: code.into(),
        unit: "%".into(),
        polarity,
        dimension,
        sdg,
        ..IndicatorDef::default()
    }
}

fn item(code: &str, name: &str, parent: Option<&str>) -> PlanItem {
    PlanItem {
        code: code.into(),
        name: name.into(),
        parent: parent.map(str::to_owned),
        ..PlanItem::default()
    }
}

#[test]
fn deviations_are_judged_by_polarity_within_the_years_asked() {
    let metro: BTreeMap<String, IndicatorData> = [
        // Lower is better: 40 → 33.25 (2025; 2027 is after --to): -6.75, positive.
        (
            "A",
            data(
                ("2023", 40.0),
                &[
                    ("2023", 41.0),
                    ("2024", 36.5),
                    ("2025", 33.25),
                    ("2027", 10.0),
                ],
            ),
        ),
        // Higher is better: 12 → 10.5: -1.5, negative.
        ("B", data(("2022", 12.0), &[("2024-Q3", 10.5)])),
        // Context: 3 → 5, neutral.
        ("C", data(("2023", 3.0), &[("2026-06", 5.0)])),
        // No value in 2024..2026: unknown.
        ("D", data(("2023", 5.0), &[("2023", 6.0)])),
        // Unchanged: stable.
        ("E", data(("2023", 7.0), &[("2026", 7.0)])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let linked = |id: &str, link: &str, archived: bool| Project {
        id: id.into(),
        title: id.into(),
        psm_links: [link.to_owned()].into(),
        sdgs: [11].into(),
        archived,
        ..Project::default()
    };
    let input = Input {
        as_of: Date::new(2026, 12, 31).unwrap(),
        period: None,
        comuni: vec![(
            "092009".into(),
            vec![
                linked("p1", "A1.1.a", false),
                linked("p2", "B9", false),
                linked("p3", "A1.1", true),
            ],
        )],
        catalog: vec![
            def("A", -1, Some(Dimension::Environmental), Some(11)),
            def("B", 1, Some(Dimension::Social), Some(3)),
            def("C", 0, Some(Dimension::Economic), None),
            def("D", 1, None, None),
            def("E", 1, Some(Dimension::Governance), Some(16)),
        ],
        indicator_data: vec![("metro".into(), metro)],
        documents: vec![],
    };
    let objectives = [item("A1.1", "Coste accessibili", Some("A1"))];
    let actions = [item("A1.1.a", "Passerelle", Some("A1.1"))];
    let texts = [
        item("environmental", "L'ambiente migliora.", None),
        item("intro", "Tre anni di piano.", None),
    ];
    let plan = Plan {
        objectives: &objectives,
        actions: &actions,
        texts: &texts,
    };
    let r = build(&input, &plan, 2024, 2026);
    let find = |code: &str| -> &Deviation {
        r.dimensions
            .iter()
            .flat_map(|d| &d.indicators)
            .find(|i| i.code == code)
            .unwrap()
    };
    let a = find("A");
    assert_eq!(
        a.latest.as_ref().map(|l| (l.period.as_str(), l.value)),
        Some(("2025", 33.25))
    );
    assert_eq!(a.deviation, Some(-6.75));
    assert_eq!(a.judgement, Judgement::Positive);
    assert_eq!(find("B").deviation, Some(-1.5));
    assert_eq!(find("B").judgement, Judgement::Negative);
    assert_eq!(
        (find("C").deviation, find("C").judgement),
        (Some(2.0), Judgement::Neutral)
    );
    assert_eq!(
        (find("D").deviation, find("D").judgement),
        (None, Judgement::Unknown)
    );
    assert_eq!(find("E").judgement, Judgement::Stable);
    let env = r
        .dimensions
        .iter()
        .find(|d| d.dimension == "environmental")
        .unwrap();
    assert_eq!(env.text.as_deref(), Some("L'ambiente migliora."));
    assert_eq!(r.intro.as_deref(), Some("Tre anni di piano."));
    assert_eq!(
        r.dimensions
            .iter()
            .find(|d| d.dimension == "none")
            .unwrap()
            .indicators
            .len(),
        1
    );
    // The objective's projects: through its action, not archived ones.
    let ids: Vec<&str> = r.objectives[0]
        .projects
        .iter()
        .map(|p| p.project_id.as_str())
        .collect();
    assert_eq!(ids, ["p1"]);
    let sdg11 = r.sdgs.iter().find(|s| s.sdg == 11).unwrap();
    assert_eq!(
        (sdg11.indicators.clone(), sdg11.projects),
        (vec!["A".to_owned()], 2)
    );
    assert_eq!(r.computed_from.digest.len(), 64);
}
