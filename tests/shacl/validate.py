"""Validates a DCAT-AP_IT catalogue (JSON-LD or RDF/XML) against the shapes
beside this file with pyshacl, and checks that the JSON-LD and the RDF/XML
forms hold the same graph. Prints the report; exits 0 only when the
catalogue conforms with no result at all (warnings included) and, given
both files, the graphs are isomorphic.

Usage: python3 validate.py CATALOG.jsonld [CATALOG.rdf]
"""
import sys
from pathlib import Path

import pyshacl
from rdflib import Graph
from rdflib.compare import isomorphic
from rdflib.namespace import SH

SHAPES = Path(__file__).with_name("dcat-ap_it.ttl")


def load(path):
    fmt = "json-ld" if path.endswith(".jsonld") else "xml"
    g = Graph()
    g.parse(path, format=fmt)
    return g


def main(argv):
    data = load(argv[1])
    shapes = Graph().parse(SHAPES, format="turtle")
    conforms, report, text = pyshacl.validate(
        data, shacl_graph=shapes, inference="none", allow_warnings=False
    )
    results = list(report.subjects(predicate=SH.resultSeverity))
    print(text)
    print(f"triples={len(data)} results={len(results)} conforms={conforms}")
    ok = conforms and not results
    if len(argv) > 2:
        same = isomorphic(data, load(argv[2]))
        print(f"isomorphic={same}")
        ok = ok and same
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
