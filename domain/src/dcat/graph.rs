//! A small RDF graph (nodes with types and properties) and its two
//! serialisations, JSON-LD (serde_json) and RDF/XML (quick-xml). The
//! catalogue is described once as a [`Graph`]; both files are written from
//! it, so they always say the same thing.
//!
//! Predicates and types are compact IRIs (`dct:title`) over the prefixes of
//! [`PREFIXES`]; a compact IRI with an unknown prefix is a bug of the
//! caller, caught by a debug assertion.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde_json::{json, Map, Value};

/// The vocabularies the catalogue uses: prefix and namespace.
pub const PREFIXES: &[(&str, &str)] = &[
    ("adms", "http://www.w3.org/ns/adms#"),
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dcatapit", "http://dati.gov.it/onto/dcatapit#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("locn", "http://www.w3.org/ns/locn#"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("schema", "http://schema.org/"),
    ("vcard", "http://www.w3.org/2006/vcard/ns#"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
];

/// The value of a property.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// Another resource, by absolute IRI (a node of the graph or not).
    Iri(String),
    /// A plain string.
    Text(String),
    /// A string in a language (`it`, `en`).
    Lang(String, &'static str),
    /// A typed literal (`xsd:date`, `xsd:dateTime`, `xsd:decimal`).
    Typed(String, &'static str),
}

/// One resource: its IRI, its types (compact) and properties (compact
/// predicate, value), in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub iri: String,
    pub types: Vec<&'static str>,
    pub props: Vec<(&'static str, Term)>,
}

impl Node {
    pub fn new(iri: impl Into<String>, types: &[&'static str]) -> Node {
        Node {
            iri: iri.into(),
            types: types.to_vec(),
            props: Vec::new(),
        }
    }

    pub fn with(mut self, predicate: &'static str, value: Term) -> Node {
        self.props.push((predicate, value));
        self
    }

    pub fn text(self, predicate: &'static str, value: impl Into<String>) -> Node {
        self.with(predicate, Term::Text(value.into()))
    }

    pub fn iri(self, predicate: &'static str, value: impl Into<String>) -> Node {
        self.with(predicate, Term::Iri(value.into()))
    }
}

/// A set of resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    pub nodes: Vec<Node>,
}

fn namespace(prefix: &str) -> Option<&'static str> {
    PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, ns)| *ns)
}

/// `dct:title` as a full IRI.
pub fn expand(compact: &str) -> String {
    let (prefix, local) = compact.split_once(':').unwrap_or(("", compact));
    let ns = namespace(prefix);
    debug_assert!(ns.is_some(), "unknown prefix in {compact}");
    format!("{}{local}", ns.unwrap_or_default())
}

impl Graph {
    /// The graph as JSON-LD: a `@context` with the prefixes, and a
    /// `@graph` of node objects with compact keys.
    pub fn to_json_ld(&self) -> Value {
        let context: Map<String, Value> = PREFIXES
            .iter()
            .map(|(p, ns)| ((*p).to_owned(), Value::String((*ns).to_owned())))
            .collect();
        let nodes: Vec<Value> = self.nodes.iter().map(node_json).collect();
        json!({ "@context": context, "@graph": nodes })
    }

    /// The graph as RDF/XML: one `rdf:Description` per node, its types as
    /// `rdf:type` and its properties as child elements.
    pub fn to_rdf_xml(&self) -> Result<Vec<u8>, std::io::Error> {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let mut root = BytesStart::new("rdf:RDF");
        for (p, ns) in PREFIXES {
            root.push_attribute((format!("xmlns:{p}").as_str(), *ns));
        }
        w.write_event(Event::Start(root))?;
        for node in &self.nodes {
            let mut desc = BytesStart::new("rdf:Description");
            desc.push_attribute(("rdf:about", node.iri.as_str()));
            w.write_event(Event::Start(desc))?;
            for t in &node.types {
                let mut e = BytesStart::new("rdf:type");
                e.push_attribute(("rdf:resource", expand(t).as_str()));
                w.write_event(Event::Empty(e))?;
            }
            for (predicate, term) in &node.props {
                write_property(&mut w, predicate, term)?;
            }
            w.write_event(Event::End(BytesEnd::new("rdf:Description")))?;
        }
        w.write_event(Event::End(BytesEnd::new("rdf:RDF")))?;
        let mut out = w.into_inner();
        out.push(b'\n');
        Ok(out)
    }
}

fn term_json(term: &Term) -> Value {
    match term {
        Term::Iri(iri) => json!({ "@id": iri }),
        Term::Text(s) => Value::String(s.clone()),
        Term::Lang(s, lang) => json!({ "@value": s, "@language": lang }),
        Term::Typed(s, datatype) => json!({ "@value": s, "@type": expand(datatype) }),
    }
}

fn node_json(node: &Node) -> Value {
    let mut obj = Map::new();
    obj.insert("@id".into(), Value::String(node.iri.clone()));
    obj.insert(
        "@type".into(),
        Value::Array(node.types.iter().map(|t| json!(t)).collect()),
    );
    for (predicate, term) in &node.props {
        let value = term_json(term);
        match obj.get_mut(*predicate) {
            Some(Value::Array(items)) => items.push(value),
            Some(single) => {
                let first = single.take();
                *single = Value::Array(vec![first, value]);
            }
            None => {
                obj.insert((*predicate).to_owned(), value);
            }
        }
    }
    Value::Object(obj)
}

fn write_property(
    w: &mut Writer<Vec<u8>>,
    predicate: &str,
    term: &Term,
) -> Result<(), std::io::Error> {
    let mut e = BytesStart::new(predicate);
    let text = match term {
        Term::Iri(iri) => {
            e.push_attribute(("rdf:resource", iri.as_str()));
            return w.write_event(Event::Empty(e));
        }
        Term::Text(s) => s,
        Term::Lang(s, lang) => {
            e.push_attribute(("xml:lang", *lang));
            s
        }
        Term::Typed(s, datatype) => {
            e.push_attribute(("rdf:datatype", expand(datatype).as_str()));
            s
        }
    };
    w.write_event(Event::Start(e))?;
    w.write_event(Event::Text(BytesText::new(text)))?;
    w.write_event(Event::End(BytesEnd::new(predicate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Graph {
        Graph {
            nodes: vec![Node::new("https://x.example/c", &["dcat:Catalog"])
                .with(
                    "dct:title",
                    Term::Lang("Dati <aperti> & altro".into(), "it"),
                )
                .with("dct:modified", Term::Typed("2026-01-31".into(), "xsd:date"))
                .iri("dcat:dataset", "https://x.example/d1")
                .iri("dcat:dataset", "https://x.example/d2")],
        }
    }

    #[test]
    fn json_ld_repeats_a_predicate_as_an_array_and_types_literals() {
        let v = sample().to_json_ld();
        let node = &v["@graph"][0];
        assert_eq!(node["@type"], json!(["dcat:Catalog"]));
        assert_eq!(
            node["dcat:dataset"],
            json!([{"@id": "https://x.example/d1"}, {"@id": "https://x.example/d2"}])
        );
        assert_eq!(
            node["dct:modified"]["@type"],
            "http://www.w3.org/2001/XMLSchema#date"
        );
        assert_eq!(v["@context"]["dct"], "http://purl.org/dc/terms/");
    }

    #[test]
    fn rdf_xml_escapes_text_and_names_resources() {
        let xml = String::from_utf8(sample().to_rdf_xml().unwrap()).unwrap();
        assert!(xml.contains(r#"<rdf:Description rdf:about="https://x.example/c">"#));
        assert!(xml.contains(r#"<rdf:type rdf:resource="http://www.w3.org/ns/dcat#Catalog"/>"#));
        assert!(
            xml.contains(r#"<dct:title xml:lang="it">Dati &lt;aperti&gt; &amp; altro</dct:title>"#)
        );
        assert!(xml.contains(r#"<dcat:dataset rdf:resource="https://x.example/d2"/>"#));
    }
}
