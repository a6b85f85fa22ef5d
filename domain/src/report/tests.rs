//! Unit tests of the report: figures, procedural states, convergence of
//! concurrent edits.

use super::*;
use crate::model::ProceduralState;

mod figures {
    use super::*;
    use crate::indicator::{Observation, Reference};
    use crate::model::{FundingLine, FundingSource, Milestone, Phase, PhaseDates};

    fn project(id: &str, financed: i64, paid: i64, source: FundingSource) -> Project {
        let mut p = Project {
            id: id.into(),
            title: format!("Progetto {id}"),
            financed_cents: Some(financed),
            committed_cents: Some(paid * 2),
            paid_cents: Some(paid),
            ..Project::default()
        };
        p.funding.insert(
            "f".into(),
            FundingLine {
                source,
                programme: None,
                amount_cents: financed,
            },
        );
        p
    }

    #[test]
    fn totals_sources_states_late_milestones_and_indicators() {
        let mut a = project("a", 10000, 1000, FundingSource::Pnrr);
        a.milestones.insert(
            "m1".into(),
            Milestone {
                code: "T1".into(),
                description: "Aggiudicazione".into(),
                unit: None,
                baseline: None,
                target: None,
                due: Date::new(2024, 3, 31).unwrap(),
                achieved_date: None,
                achieved_value: None,
            },
        );
        a.phases.insert(
            Phase::Esecuzione,
            PhaseDates {
                actual_start: Date::new(2024, 1, 1),
                ..PhaseDates::default()
            },
        );
        let b = project("b", 5000, 0, FundingSource::Fsc);
        let mut archived = project("c", 100000, 0, FundingSource::Pnrr);
        archived.archived = true;
        let mut data = BTreeMap::new();
        let mut d = IndicatorData {
            baseline: Some(Reference {
                period: "2020".into(),
                value: 30.0,
            }),
            target: Some(Reference {
                period: "2026".into(),
                value: 20.0,
            }),
            ..IndicatorData::default()
        };
        d.observations.insert(
            "2023".into(),
            Observation {
                value: 25.0,
                flag: None,
            },
        );
        d.observations.insert(
            "2025".into(),
            Observation {
                value: 22.0,
                flag: None,
            },
        );
        data.insert("10AMB016".to_owned(), d);
        let input = Input {
            as_of: Date::new(2024, 6, 30).unwrap(),
            period: Some("2024".into()),
            comuni: vec![
                ("092009".into(), vec![a, archived]),
                ("092051".into(), vec![b]),
            ],
            catalog: vec![IndicatorDef {
                code: "10AMB016".into(),
                name_it: "Rifiuti".into(),
                unit: "%".into(),
                polarity: -1,
                ..IndicatorDef::default()
            }],
            indicator_data: vec![("092009".into(), data)],
            documents: vec![],
        };
        let r = build(&input);
        assert_eq!(
            r.totals,
            Money {
                projects: 2,
                financed_cents: 15000,
                committed_cents: 2000,
                paid_cents: 1000
            }
        );
        assert_eq!(
            r.by_source
                .iter()
                .map(|s| (s.source.as_str(), s.amount_cents))
                .collect::<Vec<_>>(),
            vec![("FSC", 5000), ("PNRR", 10000)]
        );
        assert_eq!(
            r.by_state
                .iter()
                .map(|s| (s.state.as_str(), s.projects))
                .collect::<Vec<_>>(),
            vec![("Non avviato", 1), ("In esecuzione", 1)]
        );
        assert!(r.by_state.iter().all(|s| s.derived == s.projects));
        assert_eq!(r.late_milestones.len(), 1);
        let i = &r.indicators[0];
        assert_eq!(
            i.latest.as_ref().unwrap().period,
            "2023",
            "2025 is after the period"
        );
        assert_eq!(i.progress, Some(0.5));
        let page = html(&r);
        assert!(
            page.contains("<svg") && page.contains("lang=\"it\"") && !page.contains("http://")
                || page.contains("xmlns=\"http://www.w3.org/2000/svg\"")
        );
        assert!(
            !page.contains("<script") && !page.contains("src="),
            "self-contained"
        );
        let md = markdown(&r);
        assert!(md.contains("| Cagliari (092009) | 1 | 100,00 |"), "{md}");
        assert!(md.contains("- Cagliari (092009) · "), "{md}");
        assert!(
            page.contains("<td>Quartu Sant'Elena (092051)</td>"),
            "{page}"
        );
        assert_eq!(
            r.by_comune[1].comune_name.as_deref(),
            Some("Quartu Sant'Elena")
        );
        assert_eq!(r.indicators[0].territory_name.as_deref(), Some("Cagliari"));
    }
}

mod states {
    use super::*;

    fn input(projects: Vec<Project>) -> Input {
        Input {
            as_of: Date::new(2025, 1, 1).unwrap(),
            period: None,
            comuni: vec![("092009".into(), projects)],
            catalog: vec![],
            indicator_data: vec![],
            documents: vec![],
        }
    }

    /// The breakdown counts a stated state as stated even without phase
    /// dates, and says per project whether it was stated, derived or set.
    #[test]
    fn the_breakdown_and_each_project_say_stated_derived_or_override() {
        let p = |id: &str, stated, forced| Project {
            id: id.into(),
            title: format!("P {id}"),
            stated_state: stated,
            state_override: forced,
            ..Project::default()
        };
        let r = build(&input(vec![
            p("a", Some(ProceduralState::Esecuzione), None),
            p("b", None, None),
            p("c", Some(ProceduralState::Esecuzione), None),
            p(
                "d",
                Some(ProceduralState::NonAvviato),
                Some(ProceduralState::Esecuzione),
            ),
        ]));
        let rows: Vec<(&str, usize, usize, usize, usize)> = r
            .by_state
            .iter()
            .map(|s| {
                (
                    s.state.as_str(),
                    s.projects,
                    s.stated,
                    s.derived,
                    s.set_by_hand,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![("Non avviato", 1, 0, 1, 0), ("In esecuzione", 3, 2, 0, 1)]
        );
        let bases: Vec<(&str, &str)> = r
            .project_states
            .iter()
            .map(|s| (s.project_id.as_str(), s.basis.as_str()))
            .collect();
        assert_eq!(
            bases,
            vec![
                ("a", "stated"),
                ("b", "derived"),
                ("c", "stated"),
                ("d", "override")
            ]
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["by_state"][1]["override"], 1);
        let md = markdown(&r);
        assert!(md.contains("| In esecuzione | 3 | 2 | 0 | 1 |"), "{md}");
        assert!(
            md.contains("| 092009 | - | P a | In esecuzione | dichiarato dalla fonte |"),
            "{md}"
        );
        assert!(html(&r).contains("<td>P b</td><td>Non avviato</td><td>derivato dalle date</td>"));
    }
}

mod convergence {
    use super::*;
    use crate::model::{FundingLine, FundingSource};
    use crate::portfolio;
    use automerge::AutoCommit;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Edit {
        Add(u8),
        Finance(u8, i64),
        Fund(u8, u8, i64),
        Unfund(u8),
        Archive(u8),
    }

    fn arb_edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (0u8..4).prop_map(Edit::Add),
            (0u8..4, 0i64..1_000_000).prop_map(|(p, v)| Edit::Finance(p, v)),
            (0u8..4, 0u8..3, 0i64..1_000_000).prop_map(|(p, s, v)| Edit::Fund(p, s, v)),
            (0u8..4).prop_map(Edit::Unfund),
            (0u8..4).prop_map(Edit::Archive),
        ]
    }

    fn apply(doc: &mut AutoCommit, edit: &Edit, actor: u8) {
        let pid = |p: u8| format!("p{p}");
        let existing = |doc: &AutoCommit, p: u8| portfolio::get(doc, &pid(p)).ok();
        match edit {
            Edit::Add(p) if existing(doc, *p).is_none() => {
                let new = Project {
                    id: pid(*p),
                    title: format!("P{p}"),
                    ..Project::default()
                };
                portfolio::save(doc, None, &new).unwrap();
            }
            Edit::Finance(p, _) | Edit::Fund(p, _, _) | Edit::Unfund(p) | Edit::Archive(p)
                if existing(doc, *p).is_some() =>
            {
                let old = existing(doc, *p).unwrap();
                let mut new = old.clone();
                match edit {
                    Edit::Finance(_, v) => new.financed_cents = Some(*v),
                    Edit::Fund(_, s, v) => {
                        let source = FundingSource::ALL[*s as usize];
                        new.funding.insert(
                            format!("{actor}-{s}"),
                            FundingLine {
                                source,
                                programme: None,
                                amount_cents: *v,
                            },
                        );
                    }
                    Edit::Unfund(_) => {
                        let first = new.funding.keys().next().cloned();
                        if let Some(k) = first {
                            new.funding.remove(&k);
                        }
                    }
                    _ => new.archived = !new.archived,
                }
                portfolio::save(doc, Some(&old), &new).unwrap();
            }
            _ => {}
        }
        doc.commit();
    }

    fn report_of(doc: &AutoCommit) -> Report {
        build(&Input {
            as_of: Date::new(2025, 1, 1).unwrap(),
            period: None,
            comuni: vec![("092009".into(), portfolio::list(doc))],
            catalog: vec![],
            indicator_data: vec![],
            documents: vec![],
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Two offices editing the same portfolio concurrently, then merging,
        /// produce the same report on both sides.
        #[test]
        fn concurrent_edits_converge_to_the_same_report(
            shared in proptest::collection::vec(arb_edit(), 0..6),
            left in proptest::collection::vec(arb_edit(), 0..8),
            right in proptest::collection::vec(arb_edit(), 0..8),
        ) {
            let mut a = AutoCommit::new();
            for e in &shared { apply(&mut a, e, 0); }
            let mut b = a.fork();
            for e in &left { apply(&mut a, e, 1); }
            for e in &right { apply(&mut b, e, 2); }
            a.merge(&mut b).unwrap();
            b.merge(&mut a).unwrap();
            prop_assert_eq!(portfolio::list(&a), portfolio::list(&b));
            prop_assert_eq!(report_of(&a), report_of(&b));
        }
    }
}

mod stamped {
    use super::*;
    use crate::portfolio;
    use accordo_protocol::doc::DocId;
    use automerge::AutoCommit;
    use calamine::Reader as _;

    fn report() -> Report {
        let mut doc = AutoCommit::new();
        let p = Project {
            id: "p1".into(),
            title: "Scuola".into(),
            financed_cents: Some(123_456),
            ..Project::default()
        };
        portfolio::save(&mut doc, None, &p).unwrap();
        doc.commit();
        let mut docs = vec![(DocId::Comune("092009".parse().unwrap()), doc)];
        let heads = docs[0].1.get_heads();
        let input = build::input(Date::new(2025, 1, 1).unwrap(), None, &mut docs);
        assert_eq!(
            input.documents,
            vec![DocHeads {
                doc: "comune/092009".into(),
                heads: heads.iter().map(ToString::to_string).collect()
            }],
            "the input records each document with its heads"
        );
        build(&input)
    }

    /// `input` over documents one at a time, merged, equals `input` over
    /// all of them (report verification loads one document at a time).
    #[test]
    fn inputs_merged_one_document_at_a_time_equal_the_input_of_all() {
        let as_of = Date::new(2025, 1, 1).unwrap();
        let mut plan = AutoCommit::new();
        crate::indicator::save_definition(
            &mut plan,
            &crate::indicator::IndicatorDef {
                code: "10AMB016".into(),
                name_it: "Rifiuti".into(),
                unit: "%".into(),
                ..Default::default()
            },
        )
        .unwrap();
        plan.commit();
        let mut docs = vec![(DocId::Plan, plan)];
        for (code, cents) in [("092009", 100), ("092051", 250)] {
            let mut doc = AutoCommit::new();
            let p = Project {
                id: format!("p{code}"),
                title: "P".into(),
                financed_cents: Some(cents),
                ..Project::default()
            };
            portfolio::save(&mut doc, None, &p).unwrap();
            doc.commit();
            docs.push((DocId::Comune(code.parse().unwrap()), doc));
        }
        let all = build(&build::input(as_of, None, &mut docs));
        let mut merged = build::input(as_of, None, &mut []);
        for d in docs {
            merged.merge(build::input(as_of, None, &mut [d]));
        }
        assert_eq!(build(&merged), all);
        assert_eq!(all.totals.financed_cents, 350);
        assert_eq!(all.computed_from.documents.len(), 3);
    }

    #[test]
    fn a_built_report_carries_its_documents_and_the_digest_of_its_json() {
        let r = report();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(r.computed_from.digest, digest_of_json(&json));
        let printed = serde_json::to_string_pretty(&r).unwrap();
        let back: serde_json::Value = serde_json::from_str(&printed).unwrap();
        assert_eq!(back, json, "the printed report reads back the same");
        let claim = parse_claim(&back).unwrap();
        assert_eq!(claim.stamp, r.computed_from);
        assert_eq!(differences(&back, &json), vec![]);
    }

    #[test]
    fn markdown_html_and_xlsx_print_the_stamp() {
        let r = report();
        let head = &r.computed_from.documents[0].heads[0];
        let md = markdown(&r);
        assert!(
            md.contains(&format!(
                "Calcolato da 1 documenti · impronta blake3 {}",
                r.computed_from.digest
            )),
            "{md}"
        );
        assert!(md.contains(&format!("- `comune/092009`: `{head}`")), "{md}");
        assert!(md.contains("accordo report --verify"), "{md}");
        let page = html(&r);
        assert!(page.contains(&format!(
            "<li><code>comune/092009</code>: <code>{head}</code></li>"
        )));
        assert!(page.contains(&r.computed_from.digest));
        let bytes = crate::export::report_xlsx(&r).unwrap();
        let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let sheet = book.worksheet_range("Verifica").unwrap();
        let cell = |y: u32, x: u32| sheet.get_value((y, x)).map(|c| c.to_string());
        assert_eq!(cell(0, 1), Some(r.computed_from.digest.clone()));
        assert_eq!(cell(1, 1), Some("1".into()));
        assert_eq!(cell(5, 0), Some("comune/092009".into()));
        assert_eq!(cell(5, 1), Some(head.clone()));
    }
}
