//! The open-data catalogue of a metropolitan node in DCAT-AP_IT, the Italian
//! profile of DCAT-AP that the national catalogue (dati.gov.it) harvests:
//! a `dcatapit:Catalog`, one `dcatapit:Dataset` per open-data table, one
//! `dcatapit:Distribution` per format, the publisher and rights holder as a
//! `dcatapit:Agent` with its IPA code, a contact point, licence, themes (EU
//! data-theme vocabulary), update frequency, temporal and spatial coverage
//! (ISTAT codes of the comuni).
//!
//! [`catalog`] is pure: what the catalogue describes comes in as
//! [`CatalogInput`], the description comes out as a [`graph::Graph`],
//! written as JSON-LD or RDF/XML by the graph itself. Serving the files is
//! the node's.

pub mod graph;

use crate::model::Date;
use graph::{Graph, Node, Term};

/// EU vocabularies (publications.europa.eu authority tables) and the
/// Italian controlled vocabulary of licences.
const EU: &str = "http://publications.europa.eu/resource/authority/";
const CC_BY_40_IT: &str = "https://w3id.org/italia/controlled-vocabulary/licences/A21_CCBY40";

/// The licence of the open data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Licence {
    pub iri: String,
    pub name: String,
}

impl Default for Licence {
    /// CC BY 4.0, by its IRI in the Italian licences vocabulary.
    fn default() -> Self {
        Licence {
            iri: CC_BY_40_IT.to_owned(),
            name: "Creative Commons Attribuzione 4.0 Internazionale (CC BY 4.0)".to_owned(),
        }
    }
}

impl Licence {
    /// The licence named by a URL given on the command line: the default
    /// when it is CC BY 4.0 by any of its usual URLs.
    pub fn from_url(url: &str) -> Licence {
        let u = url.trim().trim_end_matches('/');
        let cc_by = [
            CC_BY_40_IT,
            "https://creativecommons.org/licenses/by/4.0",
            "http://creativecommons.org/licenses/by/4.0",
            "https://creativecommons.org/licenses/by/4.0/legalcode",
        ];
        if cc_by.contains(&u) {
            return Licence::default();
        }
        Licence {
            iri: url.trim().to_owned(),
            name: url.trim().to_owned(),
        }
    }
}

/// A file format of a distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Xlsx,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Csv, Format::Json, Format::Xlsx];

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Xlsx => "xlsx",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Json => "application/json",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// The format in the EU file-type vocabulary.
    fn file_type(self) -> String {
        let code = match self {
            Format::Csv => "CSV",
            Format::Json => "JSON",
            Format::Xlsx => "XLSX",
        };
        format!("{EU}file-type/{code}")
    }

    pub fn from_extension(ext: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.extension() == ext)
    }
}

/// One open-data table, published as one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetSpec {
    /// The file name without extension (`progetti`), stable.
    pub name: &'static str,
    pub title_it: &'static str,
    pub title_en: &'static str,
    pub description_it: &'static str,
    pub description_en: &'static str,
    /// Codes of the EU data-theme vocabulary (`GOVE`, `ECON`...).
    pub themes: &'static [&'static str],
    pub keywords: &'static [&'static str],
}

/// The open-data tables of the portal.
pub const DATASETS: &[DatasetSpec] = &[
    DatasetSpec {
        name: "progetti",
        title_it: "Progetti di investimento pubblico dei comuni",
        title_en: "Public investment projects of the comuni",
        description_it: "I progetti pubblicati dai comuni della città metropolitana: CUP, titolo, soggetto attuatore, localizzazione, misura PNRR, stato procedurale, importi finanziati, impegnati e pagati (una riga per progetto).",
        description_en: "The projects published by the comuni of the metropolitan city: CUP, title, implementing body, location, PNRR measure, procedural state, financed, committed and paid amounts (one row per project).",
        themes: &["GOVE", "ECON"],
        keywords: &["PNRR", "progetti", "investimenti pubblici", "CUP"],
    },
    DatasetSpec {
        name: "finanziamenti",
        title_it: "Fonti di finanziamento dei progetti",
        title_en: "Funding sources of the projects",
        description_it: "Le linee di finanziamento dei progetti pubblicati: fonte (PNRR, FSC, FESR, bilancio...), programma e importo (una riga per linea).",
        description_en: "The funding lines of the published projects: source (PNRR, FSC, ERDF, budget...), programme and amount (one row per line).",
        themes: &["GOVE", "ECON"],
        keywords: &["PNRR", "finanziamenti", "fondi europei"],
    },
    DatasetSpec {
        name: "milestone",
        title_it: "Milestone e target dei progetti",
        title_en: "Milestones and targets of the projects",
        description_it: "Le milestone dei progetti pubblicati con scadenza, data di raggiungimento e ritardo (una riga per milestone).",
        description_en: "The milestones of the published projects with due date, date achieved and delay (one row per milestone).",
        themes: &["GOVE"],
        keywords: &["PNRR", "milestone", "target", "cronoprogramma"],
    },
    DatasetSpec {
        name: "osservazioni",
        title_it: "Indicatori del Piano Strategico Metropolitano",
        title_en: "Indicators of the Strategic Metropolitan Plan",
        description_it: "Valori di partenza, obiettivi e osservazioni degli indicatori pubblicati del piano, per territorio (comune o città metropolitana) e periodo.",
        description_en: "Baselines, targets and observations of the plan's published indicators, by territory (comune or metropolitan city) and period.",
        themes: &["GOVE", "SOCI", "ENVI"],
        keywords: &["indicatori", "BES", "SDG", "piano strategico metropolitano"],
    },
];

/// Who publishes the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    /// The administration's code in the IPA index (e.g. `cmca`).
    pub ipa: String,
    pub name: String,
}

/// What the catalogue describes.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogInput {
    /// Where the portal is reached, without a trailing slash
    /// (`https://psm.example.it`).
    pub base_url: String,
    pub publisher: Publisher,
    pub licence: Licence,
    pub contact_email: Option<String>,
    /// When the data were last changed.
    pub modified: Date,
    /// The period the data cover (the plan's periods), if known.
    pub temporal: Option<(Date, Date)>,
    /// The comuni whose projects are published: ISTAT code and name.
    pub spatial: Vec<(String, String)>,
}

/// The URL of a table's file in a format.
pub fn download_url(base_url: &str, dataset: &DatasetSpec, format: Format) -> String {
    format!(
        "{base_url}/opendata/{}.{}",
        dataset.name,
        format.extension()
    )
}

fn date(d: Date) -> Term {
    Term::Typed(d.to_string(), "xsd:date")
}

/// The catalogue of [`DATASETS`] as an RDF graph.
pub fn catalog(input: &CatalogInput) -> Graph {
    let base = input.base_url.trim_end_matches('/');
    let id = |fragment: &str| format!("{base}/opendata/catalog#{fragment}");
    let publisher_iri = id("publisher");
    let licence_iri = input.licence.iri.clone();
    let contact_iri = id("contact");
    let mut catalog = Node::new(id("catalog"), &["dcatapit:Catalog", "dcat:Catalog"])
        .with(
            "dct:title",
            Term::Lang(format!("Dati aperti – {}", input.publisher.name), "it"),
        )
        .with(
            "dct:description",
            Term::Lang(
                format!(
                    "I dati aperti del Piano Strategico Metropolitano pubblicati da {}: progetti dei comuni, finanziamenti, milestone e indicatori.",
                    input.publisher.name
                ),
                "it",
            ),
        )
        .iri("dct:publisher", publisher_iri.clone())
        .with("dct:modified", date(input.modified))
        .iri("foaf:homepage", format!("{base}/pubblico/"))
        .iri("dct:language", format!("{EU}language/ITA"))
        .iri("dcat:themeTaxonomy", format!("{EU}data-theme"));
    let mut nodes = Vec::new();
    let spatial: Vec<Node> = input
        .spatial
        .iter()
        .map(|(istat, name)| {
            Node::new(id(&format!("comune-{istat}")), &["dct:Location"])
                .text("dcatapit:geographicalIdentifier", istat.clone())
                .with("locn:geographicalName", Term::Lang(name.clone(), "it"))
        })
        .collect();
    let temporal = input.temporal.map(|(start, end)| {
        Node::new(id("period"), &["dct:PeriodOfTime"])
            .with("dcat:startDate", date(start))
            .with("dcat:endDate", date(end))
            .with("schema:startDate", date(start))
            .with("schema:endDate", date(end))
    });
    for spec in DATASETS {
        catalog = catalog.iri("dcat:dataset", id(&format!("dataset-{}", spec.name)));
        let mut dataset = Node::new(
            id(&format!("dataset-{}", spec.name)),
            &["dcatapit:Dataset", "dcat:Dataset"],
        )
        .text(
            "dct:identifier",
            format!("{}:{}", input.publisher.ipa, spec.name),
        )
        .with("dct:title", Term::Lang(spec.title_it.into(), "it"))
        .with("dct:title", Term::Lang(spec.title_en.into(), "en"))
        .with(
            "dct:description",
            Term::Lang(spec.description_it.into(), "it"),
        )
        .with(
            "dct:description",
            Term::Lang(spec.description_en.into(), "en"),
        )
        .with("dct:modified", date(input.modified))
        .iri("dct:rightsHolder", publisher_iri.clone())
        .iri("dct:publisher", publisher_iri.clone())
        .iri("dcat:contactPoint", contact_iri.clone())
        .iri("dct:accrualPeriodicity", format!("{EU}frequency/IRREG"))
        .iri("dct:language", format!("{EU}language/ITA"));
        for theme in spec.themes {
            dataset = dataset.iri("dcat:theme", format!("{EU}data-theme/{theme}"));
        }
        for keyword in spec.keywords {
            dataset = dataset.with("dcat:keyword", Term::Lang((*keyword).into(), "it"));
        }
        if let Some(t) = &temporal {
            dataset = dataset.iri("dct:temporal", t.iri.clone());
        }
        for s in &spatial {
            dataset = dataset.iri("dct:spatial", s.iri.clone());
        }
        let mut distributions = Vec::new();
        for format in Format::ALL {
            let url = download_url(base, spec, format);
            let dist_iri = id(&format!(
                "distribution-{}-{}",
                spec.name,
                format.extension()
            ));
            dataset = dataset.iri("dcat:distribution", dist_iri.clone());
            distributions.push(
                Node::new(dist_iri, &["dcatapit:Distribution", "dcat:Distribution"])
                    .with(
                        "dct:title",
                        Term::Lang(
                            format!("{} ({})", spec.title_it, format.extension().to_uppercase()),
                            "it",
                        ),
                    )
                    .with(
                        "dct:description",
                        Term::Lang(
                            format!(
                                "{} in formato {}.",
                                spec.title_it,
                                format.extension().to_uppercase()
                            ),
                            "it",
                        ),
                    )
                    .iri("dcat:accessURL", url.clone())
                    .iri("dcat:downloadURL", url)
                    .iri("dct:format", format.file_type())
                    .text("dcat:mediaType", format.media_type())
                    .iri("dct:license", licence_iri.clone())
                    .with("dct:modified", date(input.modified)),
            );
        }
        nodes.push(dataset);
        nodes.extend(distributions);
    }
    let mut publisher = Node::new(publisher_iri, &["dcatapit:Agent", "foaf:Agent"])
        .text("dct:identifier", input.publisher.ipa.clone())
        .with("foaf:name", Term::Lang(input.publisher.name.clone(), "it"));
    publisher = publisher.iri("foaf:homepage", format!("{base}/pubblico/"));
    let mut contact = Node::new(
        contact_iri,
        &["dcatapit:Organization", "vcard:Organization"],
    )
    .text("vcard:fn", input.publisher.name.clone())
    .iri("vcard:hasURL", format!("{base}/pubblico/"));
    if let Some(email) = &input.contact_email {
        contact = contact.iri("vcard:hasEmail", format!("mailto:{}", email.trim()));
    }
    let mut licence = Node::new(
        licence_iri,
        &["dcatapit:LicenseDocument", "dct:LicenseDocument"],
    )
    .with("foaf:name", Term::Lang(input.licence.name.clone(), "it"));
    if input.licence.iri == CC_BY_40_IT {
        // Only for the licence whose kind is known (ADMS licence types).
        licence = licence.iri("dct:type", "http://purl.org/adms/licencetype/Attribution");
    }
    let mut out = vec![catalog];
    out.extend(nodes);
    out.push(publisher);
    out.push(contact);
    out.push(licence);
    out.extend(temporal);
    out.extend(spatial);
    Graph { nodes: out }
}

#[cfg(test)]
mod tests;
