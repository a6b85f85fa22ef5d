//! What a report was computed from, so that it can be verified later: every
//! document with its heads, and a digest of the report's content.
//!
//! The digest is blake3 over the report's *canonical* JSON (object keys
//! sorted, no spaces, numbers as serde_json prints them) with the digest
//! field itself blanked; [`digest_of_json`] is the one function both the
//! stamping and the verifying side use. Floats survive a print and a parse
//! unchanged (serde_json's `float_roundtrip`), so a report read back from
//! its file digests to the same value. Verifying means recomputing the
//! report at the stamped heads and listing the [`differences`] between the
//! file and the recomputation by JSON path.

use crate::model::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// One document the report was computed from, at these heads (hex, sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocHeads {
    pub doc: String,
    pub heads: Vec<String>,
}

/// The report's `computed_from`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub documents: Vec<DocHeads>,
    /// blake3 (hex) of the report's canonical JSON with this field blank.
    pub digest: String,
}

/// The field of a report JSON that holds the stamp.
pub const STAMP_FIELD: &str = "computed_from";

/// The digest of a report given as JSON: blake3 hex over its canonical form
/// with `computed_from.digest` blanked (whatever the JSON says it is).
pub fn digest_of_json(report: &Value) -> String {
    let mut blanked = report.clone();
    if let Some(stamp) = blanked.get_mut(STAMP_FIELD).and_then(Value::as_object_mut) {
        stamp.insert("digest".to_owned(), Value::String(String::new()));
    }
    let mut canonical = String::new();
    write_canonical(&blanked, &mut canonical);
    blake3::hash(canonical.as_bytes()).to_hex().to_string()
}

/// Compact JSON with object keys in byte order, whatever order the map
/// keeps them in (serde_json's `preserve_order` may be on in the build).
pub(super) fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// What a report file claims: the parameters it was built with and what it
/// was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub as_of: Date,
    pub period: Option<String>,
    pub stamp: Stamp,
}

/// Why a JSON value is not a stamped report.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StampError {
    #[error("not a report: the JSON is not an object")]
    NotAnObject,
    #[error("not a report: no `{0}` field")]
    Missing(&'static str),
    #[error("not a report: field `{field}`: {detail}")]
    Bad { field: &'static str, detail: String },
}

/// Reads the claim of a report JSON (`as_of`, `period`, `computed_from`).
pub fn parse_claim(report: &Value) -> Result<Claim, StampError> {
    let obj = report.as_object().ok_or(StampError::NotAnObject)?;
    let as_of = obj
        .get("as_of")
        .ok_or(StampError::Missing("as_of"))?
        .as_str()
        .ok_or_else(|| bad("as_of", "not a string"))?;
    let as_of = Date::parse_any("as_of", as_of).map_err(|e| bad("as_of", e))?;
    let period = match obj.get("period") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => return Err(bad("period", "neither a string nor null")),
    };
    let stamp = obj
        .get(STAMP_FIELD)
        .ok_or(StampError::Missing(STAMP_FIELD))?;
    let stamp: Stamp = serde_json::from_value(stamp.clone()).map_err(|e| bad(STAMP_FIELD, e))?;
    if stamp.digest.len() != 64 || !stamp.digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(STAMP_FIELD, "the digest is not 64 hex digits"));
    }
    Ok(Claim {
        as_of,
        period,
        stamp,
    })
}

fn bad(field: &'static str, detail: impl fmt::Display) -> StampError {
    StampError::Bad {
        field,
        detail: detail.to_string(),
    }
}

/// One place where a report file and its recomputation differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// JSON path, e.g. `by_comune[3].financed_cents`.
    pub path: String,
    /// The value in the file (compact JSON, shortened), or `absent`.
    pub file: String,
    pub recomputed: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: file {}, recomputed {}",
            self.path, self.file, self.recomputed
        )
    }
}

/// Every leaf where `file` and `recomputed` differ, by JSON path, in key
/// order; an array of another length is one difference (its length) plus
/// those of the entries both have.
pub fn differences(file: &Value, recomputed: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    diff_at(String::new(), Some(file), Some(recomputed), &mut out);
    out
}

fn diff_at(path: String, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Difference>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                diff_at(sub, x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            if x.len() != y.len() {
                out.push(Difference {
                    path: path.clone(),
                    file: format!("{} entries", x.len()),
                    recomputed: format!("{} entries", y.len()),
                });
            }
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                diff_at(format!("{path}[{i}]"), Some(u), Some(v), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Difference {
            path,
            file: shown(a),
            recomputed: shown(b),
        }),
    }
}

/// Longest value shown in a difference, in characters: enough for any
/// figure or code, short enough for one line.
const MAX_SHOWN_CHARS: usize = 60;

fn shown(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "absent".to_owned();
    };
    let s = v.to_string();
    if s.chars().count() <= MAX_SHOWN_CHARS {
        return s;
    }
    let cut: String = s.chars().take(MAX_SHOWN_CHARS).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Value {
        json!({
            "as_of": "2025-06-30",
            "period": null,
            "totals": {"projects": 2, "financed_cents": 1500},
            "by_comune": [
                {"comune": "092009", "financed_cents": 1000},
                {"comune": "092051", "financed_cents": 500}
            ],
            "indicators": [{"value": 0.1, "progress": 1.0 / 3.0}],
            "computed_from": {
                "documents": [{"doc": "comune/092009", "heads": ["ab"]}],
                "digest": ""
            }
        })
    }

    fn stamped() -> Value {
        let mut r = report();
        r["computed_from"]["digest"] = json!(digest_of_json(&r));
        r
    }

    #[test]
    fn the_digest_ignores_its_own_field_and_key_order_but_not_a_figure() {
        let r = stamped();
        let d = r["computed_from"]["digest"].as_str().unwrap().to_owned();
        assert_eq!(d.len(), 64);
        assert_eq!(digest_of_json(&r), d, "the digest field itself is blanked");
        assert_eq!(digest_of_json(&report()), d);
        // The same content printed in another key order digests the same.
        let text = r#"{"computed_from":{"digest":"x","documents":[{"heads":["ab"],"doc":"comune/092009"}]},
            "by_comune":[{"financed_cents":1000,"comune":"092009"},{"comune":"092051","financed_cents":500}],
            "totals":{"financed_cents":1500,"projects":2},"period":null,"as_of":"2025-06-30",
            "indicators":[{"progress":0.3333333333333333,"value":0.1}]}"#;
        let reordered: Value = serde_json::from_str(text).unwrap();
        assert_eq!(digest_of_json(&reordered), d);
        let mut altered = r.clone();
        altered["by_comune"][1]["financed_cents"] = json!(501);
        assert_ne!(digest_of_json(&altered), d);
        let mut other_heads = r.clone();
        other_heads["computed_from"]["documents"][0]["heads"][0] = json!("cd");
        assert_ne!(digest_of_json(&other_heads), d, "the heads are covered");
    }

    #[test]
    fn floats_survive_printing_and_parsing() {
        let mut r = report();
        for (i, x) in [0.1, 1.0 / 3.0, 2.0_f64.sqrt(), 1e-300, 123456.789e10]
            .iter()
            .enumerate()
        {
            r["indicators"][0][format!("v{i}")] = json!(x);
        }
        r["computed_from"]["digest"] = json!(digest_of_json(&r));
        let back: Value = serde_json::from_str(&serde_json::to_string_pretty(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert_eq!(digest_of_json(&back), r["computed_from"]["digest"]);
    }

    #[test]
    fn differences_name_the_paths() {
        let r = stamped();
        assert_eq!(differences(&r, &r), vec![]);
        let mut altered = r.clone();
        altered["by_comune"][1]["financed_cents"] = json!(501);
        let d = differences(&altered, &r);
        assert_eq!(
            d.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["by_comune[1].financed_cents: file 501, recomputed 500"]
        );
        let mut removed = r.clone();
        removed["by_comune"].as_array_mut().unwrap().remove(0);
        removed["totals"]
            .as_object_mut()
            .unwrap()
            .remove("projects");
        let d: Vec<String> = differences(&removed, &r)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(d[0], "by_comune: file 1 entries, recomputed 2 entries");
        assert!(d.contains(&"by_comune[0].comune: file \"092051\", recomputed \"092009\"".into()));
        assert!(d.contains(&"totals.projects: file absent, recomputed 2".into()));
    }

    #[test]
    fn a_claim_is_read_and_a_non_report_is_refused_by_field() {
        let c = parse_claim(&stamped()).unwrap();
        assert_eq!(c.as_of, Date::new(2025, 6, 30).unwrap());
        assert_eq!(c.period, None);
        assert_eq!(c.stamp.documents[0].doc, "comune/092009");
        assert_eq!(parse_claim(&json!([1])), Err(StampError::NotAnObject));
        let mut r = stamped();
        r.as_object_mut().unwrap().remove("computed_from");
        assert_eq!(parse_claim(&r), Err(StampError::Missing("computed_from")));
        let mut r = stamped();
        r["as_of"] = json!("yesterday");
        assert!(matches!(
            parse_claim(&r),
            Err(StampError::Bad { field: "as_of", .. })
        ));
        let mut r = stamped();
        r["computed_from"]["digest"] = json!("abc");
        let e = parse_claim(&r).unwrap_err().to_string();
        assert!(e.contains("not 64 hex digits"), "{e}");
    }
}
