//! The catalogue's shape: every dataset with its distributions, the
//! publisher's IPA code, the licence; JSON-LD and RDF/XML from one graph.

use super::*;

fn input() -> CatalogInput {
    CatalogInput {
        base_url: "https://psm.example.it/".into(),
        publisher: Publisher {
            ipa: "cmca".into(),
            name: "Città metropolitana di Cagliari".into(),
        },
        licence: Licence::default(),
        contact_email: Some("opendata@example.it".into()),
        modified: Date::new(2026, 3, 31).unwrap(),
        temporal: Some((
            Date::new(2024, 1, 1).unwrap(),
            Date::new(2026, 12, 31).unwrap(),
        )),
        spatial: vec![("092009".into(), "Cagliari".into())],
    }
}

#[test]
fn every_dataset_has_a_distribution_per_format_under_the_portal_url() {
    let g = catalog(&input());
    let ld = g.to_json_ld();
    let nodes = ld["@graph"].as_array().unwrap();
    let of_type = |t: &str| {
        nodes
            .iter()
            .filter(|n| n["@type"].as_array().unwrap().iter().any(|x| x == t))
            .count()
    };
    assert_eq!(of_type("dcat:Catalog"), 1);
    assert_eq!(of_type("dcat:Dataset"), DATASETS.len());
    assert_eq!(of_type("dcat:Distribution"), DATASETS.len() * 3);
    let urls: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n["dcat:downloadURL"]["@id"].as_str())
        .collect();
    assert!(urls.contains(&"https://psm.example.it/opendata/progetti.csv"));
    assert!(urls.contains(&"https://psm.example.it/opendata/osservazioni.xlsx"));
    let dataset = nodes
        .iter()
        .find(|n| n["dct:identifier"] == "cmca:progetti")
        .expect("the projects dataset, identified by IPA code and name");
    assert_eq!(
        dataset["dct:rightsHolder"]["@id"],
        "https://psm.example.it/opendata/catalog#publisher"
    );
    let agent = nodes
        .iter()
        .find(|n| n["@id"] == "https://psm.example.it/opendata/catalog#publisher")
        .unwrap();
    assert_eq!(agent["dct:identifier"], "cmca");
}

#[test]
fn a_licence_url_for_cc_by_is_the_default_and_another_is_kept() {
    assert_eq!(
        Licence::from_url("https://creativecommons.org/licenses/by/4.0/"),
        Licence::default()
    );
    let other = Licence::from_url("https://www.dati.gov.it/iodl/2.0/");
    assert_eq!(other.iri, "https://www.dati.gov.it/iodl/2.0/");
    let mut i = input();
    i.licence = other;
    let xml = String::from_utf8(catalog(&i).to_rdf_xml().unwrap()).unwrap();
    assert!(xml.contains(r#"<dct:license rdf:resource="https://www.dati.gov.it/iodl/2.0/"/>"#));
    assert!(
        !xml.contains("licencetype/Attribution"),
        "kind unknown: not claimed"
    );
}

#[test]
fn json_ld_and_rdf_xml_describe_the_same_resources() {
    let g = catalog(&input());
    let xml = String::from_utf8(g.to_rdf_xml().unwrap()).unwrap();
    for node in &g.nodes {
        assert!(
            xml.contains(&format!(r#"rdf:about="{}""#, node.iri)),
            "{}",
            node.iri
        );
    }
    assert_eq!(
        xml.matches("<rdf:Description ").count(),
        g.to_json_ld()["@graph"].as_array().unwrap().len()
    );
}
