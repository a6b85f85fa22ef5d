//! The report's canonical JSON (object keys in byte order, no spaces,
//! scalars as serde_json prints them) written straight from the typed
//! value, without building a `serde_json::Value` tree first: at metro size
//! (62,400 projects) the tree cost more time and memory than the report.
//!
//! It writes exactly what [`super::stamp::digest_of_json`] writes for
//! `serde_json::to_value` of the same value (tests hold the two equal), and
//! streams: before an object is written its keys are collected (a pass
//! that serialises no value); when they are already in order it is written
//! as it comes, else it is serialised once per key, writing only that
//! key's value each time. Nothing is buffered but a list of keys.

use serde::ser::{self, Serialize};
use serde_json::Error;
use std::io::Write;

/// What the digest feeds blake3 at a time: many of its 1 KiB chunks, so
/// that it hashes them in parallel lanes.
const HASH_BUFFER_BYTES: usize = 64 * 1024;

/// blake3 (hex) of `value`'s canonical JSON.
pub fn digest<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    let mut hasher = blake3::Hasher::new();
    // The writer makes many small writes; blake3 is fastest fed large ones.
    let mut buffered = std::io::BufWriter::with_capacity(HASH_BUFFER_BYTES, &mut hasher);
    write_value(value, &mut buffered)?;
    buffered.flush().map_err(io)?;
    drop(buffered);
    Ok(hasher.finalize().to_hex().to_string())
}

/// `value`'s canonical JSON as bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    write_value(value, &mut out)?;
    Ok(out)
}

fn io(e: std::io::Error) -> Error {
    Error::io(e)
}

/// Writes one value: an object in key order, anything else as it comes.
fn write_value<T: Serialize + ?Sized, W: Write>(v: &T, out: &mut W) -> Result<(), Error> {
    let Some(keys) = v.serialize(Keys)? else {
        return v.serialize(Canonical {
            out,
            mode: Mode::Stream,
        });
    };
    // Entry indices in key order; of equal keys the last (as `Value` keeps).
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys[a].cmp(&keys[b]).then(b.cmp(&a)));
    order.dedup_by(|later, first| keys[*later] == keys[*first]);
    if order.iter().enumerate().all(|(i, &at)| i == at) {
        return v.serialize(Canonical {
            out,
            mode: Mode::Stream,
        });
    }
    out.write_all(b"{").map_err(io)?;
    for (n, &at) in order.iter().enumerate() {
        if n > 0 {
            out.write_all(b",").map_err(io)?;
        }
        serde_json::to_writer(&mut *out, &keys[at])?;
        out.write_all(b":").map_err(io)?;
        v.serialize(Canonical {
            out: &mut *out,
            mode: Mode::Only(at),
        })?;
    }
    out.write_all(b"}").map_err(io)
}

#[derive(Clone, Copy)]
enum Mode {
    /// Write the value as it comes (an object's keys are in order).
    Stream,
    /// The value is an object: write only the value of its `n`-th entry.
    Only(usize),
}

struct Canonical<'a, W: Write> {
    out: &'a mut W,
    mode: Mode,
}

impl<W: Write> Canonical<'_, W> {
    fn raw(self, bytes: &[u8]) -> Result<(), Error> {
        self.out.write_all(bytes).map_err(io)
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
            self.out.write_all(b",").map_err(io)?;
        }
        self.first = false;
        write_value(v, self.out)
    }

    fn close(self) -> Result<(), Error> {
        self.out.write_all(self.close).map_err(io)
    }
}

/// An object's entries: written as they come (`Stream`, keys known to be
/// in order), or only the wanted one's value (`Only`).
struct Object<'a, W: Write> {
    out: &'a mut W,
    mode: Mode,
    index: usize,
    pending_key: Option<String>,
}

impl<W: Write> Object<'_, W> {
    fn entry<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) -> Result<(), Error> {
        let at = self.index;
        self.index += 1;
        match self.mode {
            Mode::Stream => {
                if at > 0 {
                    self.out.write_all(b",").map_err(io)?;
                }
                serde_json::to_writer(&mut *self.out, key)?;
                self.out.write_all(b":").map_err(io)?;
                write_value(v, self.out)
            }
            Mode::Only(n) if n == at => write_value(v, self.out),
            Mode::Only(_) => Ok(()),
        }
    }

    fn close(self) -> Result<(), Error> {
        match self.mode {
            Mode::Stream => self.out.write_all(b"}").map_err(io),
            Mode::Only(_) => Ok(()),
        }
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
    out.write_all(b"{").map_err(io)?;
    serde_json::to_writer(&mut *out, variant)?;
    out.write_all(b":").map_err(io)
}

/// Only `write_value` decides how an object is written.
fn not_an_object() -> Error {
    <Error as ser::Error>::custom("canonical JSON: an entry asked of a value that is no object")
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
    type SerializeStructVariant = VariantObject<'a, W>;

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
        write_value(v, self.out)?;
        self.out.write_all(b"}").map_err(io)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a, W>, Error> {
        self.out.write_all(b"[").map_err(io)?;
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
        self.out.write_all(b"[").map_err(io)?;
        Ok(Seq {
            out: self.out,
            first: true,
            close: b"]}",
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a, W>, Error> {
        if let Mode::Stream = self.mode {
            self.out.write_all(b"{").map_err(io)?;
        }
        Ok(Object {
            out: self.out,
            mode: self.mode,
            index: 0,
            pending_key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Object<'a, W>, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<VariantObject<'a, W>, Error> {
        open_variant(self.out, variant)?;
        Ok(VariantObject {
            out: self.out,
            entries: Vec::new(),
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
        // Only a streamed entry prints its key; `Only` needs none.
        self.pending_key = match self.mode {
            Mode::Stream => Some(key_text(key)?),
            Mode::Only(_) => Some(String::new()),
        };
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let key = self.pending_key.take().ok_or_else(not_an_object)?;
        self.entry(&key, v)
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
        self.entry(key, v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// A struct variant's fields (no report has one): buffered, then written
/// in key order.
struct VariantObject<'a, W: Write> {
    out: &'a mut W,
    entries: Vec<(&'static str, Vec<u8>)>,
}

impl<W: Write> ser::SerializeStructVariant for VariantObject<'_, W> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        let mut buf = Vec::new();
        write_value(v, &mut buf)?;
        self.entries.push((key, buf));
        Ok(())
    }
    fn end(mut self) -> Result<(), Error> {
        self.entries.sort_by(|a, b| a.0.cmp(b.0));
        self.out.write_all(b"{").map_err(io)?;
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",").map_err(io)?;
            }
            serde_json::to_writer(&mut *self.out, k)?;
            self.out.write_all(b":").map_err(io)?;
            self.out.write_all(v).map_err(io)?;
        }
        self.out.write_all(b"}}").map_err(io)
    }
}

/// Serialises no value: says whether a value is an object (a struct or a
/// map, flattened fields included) and lists its keys in the order given.
struct Keys;

/// The keys of an object being listed.
struct KeyList(Vec<String>);

type KeysOf = Result<Option<Vec<String>>, Error>;

impl ser::Serializer for Keys {
    type Ok = Option<Vec<String>>;
    type Error = Error;
    type SerializeSeq = NoKeys;
    type SerializeTuple = NoKeys;
    type SerializeTupleStruct = NoKeys;
    type SerializeTupleVariant = NoKeys;
    type SerializeMap = KeyList;
    type SerializeStruct = KeyList;
    type SerializeStructVariant = NoKeys;

    fn serialize_bool(self, _: bool) -> KeysOf {
        Ok(None)
    }
    fn serialize_i8(self, _: i8) -> KeysOf {
        Ok(None)
    }
    fn serialize_i16(self, _: i16) -> KeysOf {
        Ok(None)
    }
    fn serialize_i32(self, _: i32) -> KeysOf {
        Ok(None)
    }
    fn serialize_i64(self, _: i64) -> KeysOf {
        Ok(None)
    }
    fn serialize_u8(self, _: u8) -> KeysOf {
        Ok(None)
    }
    fn serialize_u16(self, _: u16) -> KeysOf {
        Ok(None)
    }
    fn serialize_u32(self, _: u32) -> KeysOf {
        Ok(None)
    }
    fn serialize_u64(self, _: u64) -> KeysOf {
        Ok(None)
    }
    fn serialize_f32(self, _: f32) -> KeysOf {
        Ok(None)
    }
    fn serialize_f64(self, _: f64) -> KeysOf {
        Ok(None)
    }
    fn serialize_char(self, _: char) -> KeysOf {
        Ok(None)
    }
    fn serialize_str(self, _: &str) -> KeysOf {
        Ok(None)
    }
    fn serialize_bytes(self, _: &[u8]) -> KeysOf {
        Ok(None)
    }
    fn serialize_none(self) -> KeysOf {
        Ok(None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> KeysOf {
        v.serialize(self)
    }
    fn serialize_unit(self) -> KeysOf {
        Ok(None)
    }
    fn serialize_unit_struct(self, _: &'static str) -> KeysOf {
        Ok(None)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> KeysOf {
        Ok(None)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> KeysOf {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> KeysOf {
        // One key: nothing to order at this level.
        Ok(None)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<NoKeys, Error> {
        Ok(NoKeys)
    }
    fn serialize_tuple(self, _: usize) -> Result<NoKeys, Error> {
        Ok(NoKeys)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<NoKeys, Error> {
        Ok(NoKeys)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<NoKeys, Error> {
        Ok(NoKeys)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<KeyList, Error> {
        Ok(KeyList(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<KeyList, Error> {
        Ok(KeyList(Vec::with_capacity(len)))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<NoKeys, Error> {
        Ok(NoKeys)
    }
}

/// Sequences and variants are no objects to order: their elements are
/// ordered when each is written.
struct NoKeys;

macro_rules! no_keys {
    ($($trait:ident :: $method:ident $(($key:ty))?),+) => {$(
        impl ser::$trait for NoKeys {
            type Ok = Option<Vec<String>>;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $key,)? _: &T) -> Result<(), Error> {
                Ok(())
            }
            fn end(self) -> KeysOf {
                Ok(None)
            }
        }
    )+};
}

no_keys!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
    SerializeStructVariant::serialize_field(&'static str)
);

impl ser::SerializeMap for KeyList {
    type Ok = Option<Vec<String>>;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.0.push(key_text(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), Error> {
        Ok(())
    }
    fn end(self) -> KeysOf {
        Ok(Some(self.0))
    }
}

impl ser::SerializeStruct for KeyList {
    type Ok = Option<Vec<String>>;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        self.0.push(key.to_owned());
        Ok(())
    }
    fn end(self) -> KeysOf {
        Ok(Some(self.0))
    }
}

#[cfg(test)]
#[path = "canonical_tests.rs"]
mod tests;
