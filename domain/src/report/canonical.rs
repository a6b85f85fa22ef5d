//! The report's canonical JSON (object keys in byte order, no spaces,
//! scalars as serde_json prints them) written straight from the typed
//! value, without building a `serde_json::Value` tree first: at metro size
//! (62,400 projects) the tree cost more time and memory than the report.
//!
//! It writes exactly what [`super::stamp::digest_of_json`] writes for
//! `serde_json::to_value` of the same value (a property test holds the two
//! equal): arrays stream; each object's entries are serialised into their
//! own buffers, then written in key order.

use serde::ser::{self, Serialize};
use serde_json::Error;
use std::io::Write;

/// blake3 (hex) of `value`'s canonical JSON.
pub fn digest<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut hasher = blake3::Hasher::new();
    value.serialize(Canonical { out: &mut hasher })?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// `value`'s canonical JSON as bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    value.serialize(Canonical { out: &mut out })?;
    Ok(out)
}

struct Canonical<'a, W: Write> {
    out: &'a mut W,
}

impl<W: Write> Canonical<'_, W> {
    fn raw(self, bytes: &[u8]) -> Result<(), Error> {
        self.out.write_all(bytes).map_err(Error::io)
    }

    /// A scalar printed as serde_json prints it (and as `Value` prints it).
    fn scalar<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, v)
    }
}

/// An array: elements written as they come.
struct Seq<'a, W: Write> {
    out: &'a mut W,
    first: bool,
    /// Closing text: `]`, or `]}` for a variant's array.
    close: &'static [u8],
}

impl<W: Write> Seq<'_, W> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        if !self.first {
            self.out.write_all(b",").map_err(Error::io)?;
        }
        self.first = false;
        v.serialize(Canonical {
            out: &mut *self.out,
        })
    }

    fn close(self) -> Result<(), Error> {
        self.out.write_all(self.close).map_err(Error::io)
    }
}

/// An object: entries buffered, written in key order at the end.
struct Object<'a, W: Write> {
    out: &'a mut W,
    entries: Vec<(String, Vec<u8>)>,
    pending_key: Option<String>,
    /// Closing text: `}`, or `}}` for a variant's object.
    close: &'static [u8],
}

impl<W: Write> Object<'_, W> {
    fn entry<T: Serialize + ?Sized>(&mut self, key: String, v: &T) -> Result<(), Error> {
        let mut buf = Vec::new();
        v.serialize(Canonical { out: &mut buf })?;
        self.entries.push((key, buf));
        Ok(())
    }

    fn close(mut self) -> Result<(), Error> {
        // `Value`'s map keeps the last of equal keys; sort_by is stable, so
        // keeping the last of each run does the same.
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<&(String, Vec<u8>)> = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            match kept.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => kept.push(e),
            }
        }
        self.out.write_all(b"{").map_err(Error::io)?;
        for (i, (k, v)) in kept.into_iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",").map_err(Error::io)?;
            }
            serde_json::to_writer(&mut *self.out, k)?;
            self.out.write_all(b":").map_err(Error::io)?;
            self.out.write_all(v).map_err(Error::io)?;
        }
        self.out.write_all(self.close).map_err(Error::io)
    }
}

/// A map key as `serde_json::to_value` makes it: a string as is, any other
/// scalar printed.
fn key_text<T: Serialize + ?Sized>(key: &T) -> Result<String, Error> {
    Ok(match serde_json::to_value(key)? {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// Opens `{"variant":` for a variant holding data.
fn open_variant<W: Write>(out: &mut W, variant: &str) -> Result<(), Error> {
    out.write_all(b"{").map_err(Error::io)?;
    serde_json::to_writer(&mut *out, variant)?;
    out.write_all(b":").map_err(Error::io)
}

impl<'a, W: Write> ser::Serializer for Canonical<'a, W> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a, W>;
    type SerializeTuple = Seq<'a, W>;
    type SerializeTupleStruct = Seq<'a, W>;
    type SerializeTupleVariant = Seq<'a, W>;
    type SerializeMap = Object<'a, W>;
    type SerializeStruct = Object<'a, W>;
    type SerializeStructVariant = Object<'a, W>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        // `Value` holds every float as an f64.
        self.scalar(&f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        // Non-finite: `null`, as `Value` holds it.
        self.scalar(&v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.scalar(&v)
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.raw(b"null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.raw(b"null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.raw(b"null")
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<(), Error> {
        self.scalar(v)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        open_variant(self.out, variant)?;
        v.serialize(Canonical {
            out: &mut *self.out,
        })?;
        self.out.write_all(b"}").map_err(Error::io)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a, W>, Error> {
        self.out.write_all(b"[").map_err(Error::io)?;
        Ok(Seq {
            out: self.out,
            first: true,
            close: b"]",
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a, W>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a, W>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'a, W>, Error> {
        open_variant(self.out, variant)?;
        self.out.write_all(b"[").map_err(Error::io)?;
        Ok(Seq {
            out: self.out,
            first: true,
            close: b"]}",
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a, W>, Error> {
        Ok(Object {
            out: self.out,
            entries: Vec::new(),
            pending_key: None,
            close: b"}",
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Object<'a, W>, Error> {
        let mut o = self.serialize_map(Some(len))?;
        o.entries.reserve(len);
        Ok(o)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Object<'a, W>, Error> {
        open_variant(self.out, variant)?;
        Ok(Object {
            out: self.out,
            entries: Vec::new(),
            pending_key: None,
            close: b"}}",
        })
    }
}

impl<W: Write> ser::SerializeSeq for Seq<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<W: Write> ser::SerializeTuple for Seq<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<W: Write> ser::SerializeTupleStruct for Seq<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<W: Write> ser::SerializeTupleVariant for Seq<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<W: Write> ser::SerializeMap for Object<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.pending_key = Some(key_text(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| <Error as ser::Error>::custom("a map value without its key"))?;
        self.entry(key, v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<W: Write> ser::SerializeStruct for Object<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.entry(key.to_owned(), v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl<W: Write> ser::SerializeStructVariant for Object<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.entry(key.to_owned(), v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
