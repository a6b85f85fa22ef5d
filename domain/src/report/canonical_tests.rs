//! The canonical writer against the `Value` path it replaces.

use super::*;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The canonical text `stamp::write_canonical` gives for a value.
fn via_value<T: Serialize>(v: &T) -> String {
    let value = serde_json::to_value(v).unwrap();
    let mut out = String::new();
    super::super::stamp::write_canonical(&value, &mut out);
    out
}

#[derive(Serialize)]
struct Inner {
    z: i64,
    a: Option<String>,
    #[serde(rename = "override")]
    renamed: usize,
}

#[derive(Serialize)]
enum Kind {
    Unit,
    New(i8),
    Tuple(u8, String),
    Struct { y: bool, b: f64 },
}

#[derive(Serialize)]
struct Outer {
    name: String,
    #[serde(flatten)]
    inner: Inner,
    list: Vec<Kind>,
    map: BTreeMap<u32, Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u8>,
    unit: (),
    pair: (i32, char),
}

#[test]
fn writes_what_the_value_path_writes() {
    let v = Outer {
        name: "é \"quoted\"\n\u{1}".into(),
        inner: Inner {
            z: -3,
            a: None,
            renamed: 7,
        },
        list: vec![
            Kind::Unit,
            Kind::New(-1),
            Kind::Tuple(2, "x".into()),
            Kind::Struct {
                y: true,
                b: f64::NAN,
            },
            Kind::Struct { y: false, b: 0.1 },
        ],
        map: [(10, vec![1.0 / 3.0, -0.0, 1e300]), (9, vec![])]
            .into_iter()
            .collect(),
        skipped: None,
        unit: (),
        pair: (i32::MIN, 'ü'),
    };
    let text = String::from_utf8(to_vec(&v).unwrap()).unwrap();
    assert_eq!(text, via_value(&v));
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back["override"], json!(7));
}

mod random {
    use super::*;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-zA-Z_é\"\\\\]{0,4}", inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON value: the canonical writer prints what the `Value`
        /// path prints (keys in byte order, escapes, floats, nesting).
        #[test]
        fn any_value_is_written_as_the_value_path_writes_it(v in arb_json()) {
            let text = String::from_utf8(to_vec(&v).unwrap()).unwrap();
            prop_assert_eq!(text, via_value(&v));
        }
    }
}
