//! Typed values in automerge maps, reconciled field by field.
//!
//! A typed record (a project, an indicator) is serialised with serde to a
//! JSON object, **flattened** to path keys (`funding/<line>/amount_cents`)
//! and written into the record's own automerge map: scalars as scalars,
//! arrays as lists. Flat keys matter for merging: a nested container created
//! concurrently by two offices would be two different objects, and one
//! office's entries would be lost; path keys in the record's one map merge
//! entry by entry, so concurrent additions to keyed collections (funding
//! lines, milestones, phases) all survive.
//!
//! [`reconcile`] writes only what changed between the value last read and the
//! new one, and deletes only keys the typed value knew: fields written by a
//! newer version of Accordo, which this code does not know, are preserved
//! when it edits.

use automerge::transaction::Transactable;
use automerge::{
    hydrate, AutoCommit, AutomergeError, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value as Json};

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("document edit failed: {0}")]
    Automerge(#[from] AutomergeError),
    #[error("{what} in the document does not read as expected: {detail}")]
    Shape { what: String, detail: String },
}

/// Separator of path keys; `/` inside a key is escaped as `%2F`.
const SEP: char = '/';

/// Appends `k` escaped to `out` (without the two `replace` allocations of
/// the general case when, as nearly always, `k` holds neither character:
/// flattening was a third of an import's time).
fn push_escaped(out: &mut String, k: &str) {
    if !k.contains(['%', '/']) {
        out.push_str(k);
        return;
    }
    for c in k.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            other => out.push(other),
        }
    }
}

fn unescape(k: &str) -> String {
    k.replace("%2F", "/").replace("%25", "%")
}

/// Flattens a JSON object to path keys; empty objects vanish.
pub fn flatten(value: &Map<String, Json>) -> Map<String, Json> {
    fn walk(prefix: &str, obj: &Map<String, Json>, out: &mut Map<String, Json>) {
        for (k, v) in obj {
            let mut key = String::with_capacity(prefix.len() + k.len() + 1);
            key.push_str(prefix);
            push_escaped(&mut key, k);
            match v {
                Json::Object(inner) => {
                    key.push(SEP);
                    walk(&key, inner, out);
                }
                Json::Null => {}
                other => {
                    out.insert(key, other.clone());
                }
            }
        }
    }
    let mut out = Map::new();
    walk("", value, &mut out);
    out
}

/// Rebuilds nested objects from path keys.
pub fn unflatten(flat: &Map<String, Json>) -> Map<String, Json> {
    let mut root = Map::new();
    for (key, value) in flat {
        let parts: Vec<String> = key.split(SEP).map(unescape).collect();
        let mut node = &mut root;
        for part in &parts[..parts.len() - 1] {
            let entry = node
                .entry(part.clone())
                .or_insert_with(|| Json::Object(Map::new()));
            if !entry.is_object() {
                // A scalar where a path continues: written by another
                // version; the path wins so the entry stays readable.
                *entry = Json::Object(Map::new());
            }
            let Json::Object(next) = entry else {
                unreachable!("just made an object")
            };
            node = next;
        }
        if let Some(last) = parts.last() {
            node.insert(last.clone(), value.clone());
        }
    }
    root
}

/// Reads map `obj` as its flat keys and values (lists as arrays), in one
/// pass over the map (a `get` per key seeks the op set again for each:
/// several times slower on a large document).
pub fn read_flat(doc: &AutoCommit, obj: &ObjId) -> Map<String, Json> {
    doc.map_range(obj, ..)
        .map(|item| {
            let id = item.id();
            let value = value_json(doc, item.value.into_value(), &id);
            (item.key.into_owned(), value)
        })
        .collect()
}

fn value_json(doc: &AutoCommit, value: Value<'_>, id: &ObjId) -> Json {
    match value {
        Value::Object(ObjType::Map) | Value::Object(ObjType::Table) => {
            Json::Object(unflatten(&read_flat(doc, id)))
        }
        Value::Object(_) => Json::Array(
            (0..doc.length(id))
                .filter_map(|i| doc.get(id, i).ok().flatten())
                .map(|(v, child)| value_json(doc, v, &child))
                .collect(),
        ),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Json::String(s.to_string()),
            ScalarValue::Int(i) => Json::from(*i),
            ScalarValue::Uint(u) => Json::from(*u),
            ScalarValue::F64(f) => {
                serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number)
            }
            ScalarValue::Boolean(b) => Json::Bool(*b),
            ScalarValue::Counter(c) => Json::from(i64::from(c)),
            ScalarValue::Timestamp(t) => Json::from(*t),
            _ => Json::Null,
        },
    }
}

/// Reads a typed record from map `obj`.
pub fn read_typed<T: DeserializeOwned>(
    doc: &AutoCommit,
    obj: &ObjId,
    what: &str,
) -> Result<T, CodecError> {
    let value = Json::Object(unflatten(&read_flat(doc, obj)));
    serde_json::from_value(value).map_err(|e| CodecError::Shape {
        what: what.to_owned(),
        detail: e.to_string(),
    })
}

/// The JSON object form of a typed record.
pub fn to_object<T: Serialize>(value: &T) -> Map<String, Json> {
    match serde_json::to_value(value) {
        Ok(Json::Object(m)) => m,
        // Invariant: records are structs, which serialise to objects.
        _ => unreachable!("typed records serialise to JSON objects"),
    }
}

/// Writes `new` into map `obj`, given `old` (what was read from it), both
/// as records: only changed path keys are written; path keys of `old`
/// missing from `new` are deleted; other keys are left alone.
pub fn reconcile(
    doc: &mut AutoCommit,
    obj: &ObjId,
    old: &Map<String, Json>,
    new: &Map<String, Json>,
) -> Result<(), CodecError> {
    let (old, new) = (flatten(old), flatten(new));
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        doc.delete(obj, key.as_str())?;
    }
    for (key, value) in &new {
        if old.get(key) == Some(value) {
            continue;
        }
        match value {
            Json::Array(items) => {
                let list = doc.put_object(obj, key.as_str(), ObjType::List)?;
                for (i, item) in items.iter().enumerate() {
                    doc.insert(&list, i, scalar(item))?;
                }
            }
            other => {
                doc.put(obj, key.as_str(), scalar(other))?;
            }
        }
    }
    Ok(())
}

/// Creates the map at root key `key` holding `record` (which it must not
/// hold yet) in one batch: automerge inserts all its operations in two
/// op-set splices, where a put per path key splices (and seeks) once per
/// key, at a cost growing with the document. The operations are those
/// [`reconcile`] from an empty record would make.
pub fn create_root_record(
    doc: &mut AutoCommit,
    key: &str,
    record: &Map<String, Json>,
) -> Result<ObjId, CodecError> {
    let entries: std::collections::HashMap<String, hydrate::Value> = flatten(record)
        .into_iter()
        .map(|(k, v)| {
            let value = match &v {
                Json::Array(items) => hydrate::Value::from(
                    items
                        .iter()
                        .map(|i| hydrate::Value::Scalar(scalar(i)))
                        .collect::<Vec<_>>(),
                ),
                other => hydrate::Value::Scalar(scalar(other)),
            };
            (k, value)
        })
        .collect();
    let value = hydrate::Value::Map(hydrate::Map::from(entries));
    Ok(doc.batch_create_object(ROOT, key, &value, false)?)
}

fn scalar(value: &Json) -> ScalarValue {
    match value {
        Json::String(s) => ScalarValue::Str(s.as_str().into()),
        Json::Bool(b) => ScalarValue::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => ScalarValue::Int(i),
            (None, Some(u)) => ScalarValue::Uint(u),
            _ => ScalarValue::F64(n.as_f64().unwrap_or(0.0)),
        },
        Json::Null => ScalarValue::Null,
        // Nested arrays/objects inside lists are written as JSON text.
        other => ScalarValue::Str(other.to_string().into()),
    }
}

/// The map at root key `key`, created if absent.
pub fn root_map(doc: &mut AutoCommit, key: &str) -> Result<ObjId, CodecError> {
    match doc.get(ROOT, key)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(id),
        _ => Ok(doc.put_object(ROOT, key, ObjType::Map)?),
    }
}

/// The map at root key `key`, if present.
pub fn find_root_map(doc: &AutoCommit, key: &str) -> Option<ObjId> {
    match doc.get(ROOT, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// Every root map whose key starts with `prefix`, as (rest of key, object).
pub fn root_maps_with_prefix(doc: &AutoCommit, prefix: &str) -> Vec<(String, ObjId)> {
    doc.map_range(ROOT, ..)
        .filter_map(|item| {
            let rest = item.key.strip_prefix(prefix)?.to_owned();
            match item.value {
                automerge::ValueRef::Object(ObjType::Map) => Some((rest, item.id())),
                _ => None,
            }
        })
        .collect()
}

/// Records the layout version the document was last written with.
pub fn stamp_schema(doc: &mut AutoCommit) -> Result<(), CodecError> {
    let current = match doc.get(ROOT, "schema_version")? {
        Some((Value::Scalar(s), _)) => s.as_i64(),
        _ => None,
    };
    if current.is_none_or(|v| v < super::model::SCHEMA_VERSION) {
        doc.put(ROOT, "schema_version", super::model::SCHEMA_VERSION)?;
    }
    Ok(())
}

/// The root keys of `doc` whose records a change touched: the key an op
/// writes at the root, or the root key above the object it writes in. `doc`
/// must hold the change (objects it creates are found there); ops on
/// objects `doc` does not know are ignored.
pub fn root_keys_touched(
    doc: &AutoCommit,
    change: &automerge::Change,
) -> std::collections::BTreeSet<String> {
    use automerge::legacy::{Key, ObjectId};
    let mut keys = std::collections::BTreeSet::new();
    let mut seen_objects = std::collections::HashMap::<String, Option<String>>::new();
    for op in change.decode().operations {
        match (&op.obj, &op.key) {
            (ObjectId::Root, Key::Map(k)) => {
                keys.insert(k.to_string());
            }
            (ObjectId::Root, _) => {}
            (ObjectId::Id(id), _) => {
                let id = id.to_string();
                let root_key = seen_objects
                    .entry(id.clone())
                    .or_insert_with(|| root_key_of(doc, &id))
                    .clone();
                if let Some(k) = root_key {
                    keys.insert(k);
                }
            }
        }
    }
    keys
}

/// The root key under which object `id` (`counter@actor`) lives.
fn root_key_of(doc: &AutoCommit, id: &str) -> Option<String> {
    let obj = doc.import_obj(id).ok()?;
    let parents = doc.parents(&obj).ok()?;
    match parents.last()?.prop {
        automerge::Prop::Map(k) => Some(k),
        automerge::Prop::Seq(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Json) -> Map<String, Json> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn only_changed_fields_are_written_and_unknown_ones_survive() {
        let mut doc = AutoCommit::new();
        let m = root_map(&mut doc, "p").unwrap();
        let v1 =
            obj(json!({"title": "A", "funding": {"f1": {"amount_cents": 5}}, "sdgs": [3, 11]}));
        reconcile(&mut doc, &m, &Map::new(), &v1).unwrap();
        // A newer version wrote a field this code does not know.
        doc.put(&m, "future_field", "keep me").unwrap();
        doc.commit();
        let before = doc.get_heads();
        let mut v2 = v1.clone();
        v2["funding"]["f1"]["amount_cents"] = json!(7);
        reconcile(&mut doc, &m, &v1, &v2).unwrap();
        doc.commit();
        let change = doc
            .get_changes(&before)
            .into_iter()
            .next()
            .unwrap()
            .decode();
        assert_eq!(change.operations.len(), 1, "one field changed, one op");
        let read = unflatten(&read_flat(&doc, &m));
        assert_eq!(read["future_field"], "keep me");
        assert_eq!(read["funding"]["f1"]["amount_cents"], 7);
        assert_eq!(read["sdgs"], json!([3, 11]));
    }

    /// A record created in one batch reads back as the same record, with
    /// the same flat keys, as one written key by key.
    #[test]
    fn a_record_created_in_one_batch_equals_one_reconciled_key_by_key() {
        let record = obj(json!({
            "title": "A", "funding": {"f1": {"amount_cents": 5}, "f/2": {"amount_cents": -3}},
            "sdgs": [3, 11], "archived": false, "none": null
        }));
        let mut by_key = AutoCommit::new();
        let m = root_map(&mut by_key, "p").unwrap();
        reconcile(&mut by_key, &m, &Map::new(), &record).unwrap();
        let mut batch = AutoCommit::new();
        let b = create_root_record(&mut batch, "p", &record).unwrap();
        assert_eq!(read_flat(&batch, &b), read_flat(&by_key, &m));
        assert_eq!(
            unflatten(&read_flat(&batch, &b)),
            obj(json!({
                "title": "A", "funding": {"f1": {"amount_cents": 5}, "f/2": {"amount_cents": -3}},
                "sdgs": [3, 11], "archived": false
            }))
        );
        // Both survive a save and load.
        let loaded = AutoCommit::load(&batch.save()).unwrap();
        let again = find_root_map(&loaded, "p").unwrap();
        assert_eq!(read_flat(&loaded, &again), read_flat(&by_key, &m));
    }

    #[test]
    fn concurrent_additions_to_a_keyed_collection_both_survive() {
        let mut a = AutoCommit::new();
        let m = root_map(&mut a, "p").unwrap();
        let base = obj(json!({"title": "t"}));
        reconcile(&mut a, &m, &Map::new(), &base).unwrap();
        let mut b = a.fork();
        let with = |k: &str| obj(json!({"title": "t", "funding": {k: {"amount_cents": 1}}}));
        reconcile(&mut a, &m, &base, &with("x")).unwrap();
        reconcile(&mut b, &m, &base, &with("y")).unwrap();
        a.merge(&mut b).unwrap();
        let funding = unflatten(&read_flat(&a, &m))["funding"]
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(funding.keys().collect::<Vec<_>>(), vec!["x", "y"]);
    }
}
