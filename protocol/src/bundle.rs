//! Automerge bundles — many changes of a document in one columnar chunk, the
//! compact form wire v2 moves changes in — made safe to take from peers.
//!
//! A bundle of 100 small edits is 947 bytes where the same changes are 12,423
//! bytes raw (automerge 0.12, measured for issue 16), and it unbundles to the
//! exact raw changes, hashes included. But automerge parses a bundle by
//! decoding its columns whole, and a column's run-length encoding lets a few
//! bytes declare billions of rows: the fuzz target `envelope` found a
//! 105-byte bundle on which `Bundle::try_from` allocates 1 GiB and aborts the
//! process (`extract_id_ctr_values` collects a delta column), which
//! `catch_unwind` cannot stop. So [`check`] first walks the chunk's layout
//! itself and counts every column's rows run by run (hexane's run decoder,
//! the decoder automerge uses, without materialising a value), inflating a
//! DEFLATE column only up to a cap; a bundle whose rows or string bytes pass
//! the limits is refused before automerge sees it. [`unbundle`] is `check`,
//! then automerge under `catch_unwind`, then the limits again on what came
//! out.

use automerge::Change;
use std::io::Read;

/// Most rows any column of one bundle may decode to (a row is a change in
/// the change columns, an operation in the op columns). A sender splits
/// larger runs over several bundles; a single change larger than this
/// travels raw.
pub const MAX_BUNDLE_ROWS: u64 = 1_000_000;
/// Most bytes the repeated strings of one bundle may expand to (a run of `n`
/// copies of a key counts `n` times its length).
pub const MAX_BUNDLE_STRING_BYTES: u64 = 64 << 20;
/// Most bytes one DEFLATE column may inflate to.
pub const MAX_INFLATED_COLUMN_BYTES: u64 = 64 << 20;
/// Largest bundle chunk accepted.
pub const MAX_BUNDLE_BYTES: usize = crate::wire::MAX_BATCH_BYTES;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_TYPE_BUNDLE: u8 = 3;
const HASH_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle of {0} bytes exceeds the {MAX_BUNDLE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("not an automerge bundle chunk")]
    NotABundle,
    #[error("bundle layout: {0}")]
    Layout(&'static str),
    #[error("a bundle column decodes to more than {MAX_BUNDLE_ROWS} rows")]
    TooManyRows,
    #[error("a bundle's strings expand past {MAX_BUNDLE_STRING_BYTES} bytes")]
    StringsTooLarge,
    #[error("a bundle column inflates past {MAX_INFLATED_COLUMN_BYTES} bytes")]
    InflatesTooLarge,
    #[error("automerge refused the bundle: {0}")]
    Automerge(String),
    #[error("the automerge parser failed on this bundle")]
    ParserFailed,
}

/// What [`check`] counted: the rows of the change and op columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub changes: u64,
    pub ops: u64,
}

/// Walks the bundle's layout and counts its rows without letting automerge
/// near it; refuses it if anything would decode past the limits.
pub fn check(bytes: &[u8]) -> Result<Shape, BundleError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge(bytes.len()));
    }
    let mut r = Reader(bytes);
    if r.take(4)? != MAGIC {
        return Err(BundleError::NotABundle);
    }
    r.take(4)?; // checksum: automerge checks it
    if r.take(1)? != [CHUNK_TYPE_BUNDLE] {
        return Err(BundleError::NotABundle);
    }
    let len = r.uleb()?;
    if len != r.0.len() as u64 {
        return Err(BundleError::Layout("the chunk length is not the body's"));
    }
    let deps = r.count(HASH_BYTES)?;
    r.take(deps * HASH_BYTES)?;
    let actors = r.count(1)?;
    for _ in 0..actors {
        let n = r.count(1)?;
        r.take(n)?;
    }
    let mut strings = 0u64;
    let changes = r.columns(&mut strings)?;
    let ops = r.columns(&mut strings)?;
    if !r.0.is_empty() {
        return Err(BundleError::Layout("bytes after the op columns"));
    }
    Ok(Shape { changes, ops })
}

/// The changes of a bundle from a peer, checked by [`check`] first.
pub fn unbundle(bytes: &[u8]) -> Result<Vec<Change>, BundleError> {
    let shape = check(bytes)?;
    let parsed = std::panic::catch_unwind(|| {
        automerge::Bundle::try_from(bytes)
            .map_err(|e| BundleError::Automerge(e.to_string()))?
            .to_changes()
            .map_err(|e| BundleError::Automerge(e.to_string()))
    })
    .map_err(|_| BundleError::ParserFailed)??;
    if parsed.len() as u64 != shape.changes {
        return Err(BundleError::Layout(
            "the changes do not match the change columns",
        ));
    }
    // Each change is stored and sent on alone: it must parse alone, to the
    // same hash. Automerge's bundle reader does not check what the change
    // reader does (a key that is not UTF-8 passed one and not the other:
    // a fuzzer's input), and a stored change that does not parse would
    // stop its document from loading.
    for change in &parsed {
        match crate::envelope::parse_change(change.raw_bytes()) {
            Ok(again) if again.hash() == change.hash() => {}
            _ => {
                return Err(BundleError::Layout(
                    "a change of the bundle does not parse alone",
                ))
            }
        }
    }
    Ok(parsed)
}

/// A cursor over untrusted bytes; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BundleError> {
        if n > self.0.len() {
            return Err(BundleError::Layout("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn uleb(&mut self) -> Result<u64, BundleError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self
                .0
                .first()
                .ok_or(BundleError::Layout("truncated number"))?;
            self.0 = &self.0[1..];
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(BundleError::Layout("number overflows 64 bits"));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(BundleError::Layout("number overflows 64 bits"))
    }

    /// A count of items of at least `min_bytes` each, which must fit in what
    /// is left (so a declared count never drives a loop or an allocation).
    fn count(&mut self, min_bytes: usize) -> Result<usize, BundleError> {
        let n = self.uleb()?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_bytes) <= self.0.len() => Ok(n),
            _ => Err(BundleError::Layout("a count larger than the bytes left")),
        }
    }

    /// One column group (metadata, then the data of every column); returns
    /// the most rows any of its columns decodes to.
    fn columns(&mut self, strings: &mut u64) -> Result<u64, BundleError> {
        // Each column's metadata is at least two bytes (spec and length).
        let n = self.count(2)?;
        let mut specs = Vec::with_capacity(n);
        for _ in 0..n {
            let spec =
                u32::try_from(self.uleb()?).map_err(|_| BundleError::Layout("column spec"))?;
            let len =
                usize::try_from(self.uleb()?).map_err(|_| BundleError::Layout("column length"))?;
            specs.push((spec, len));
        }
        let mut most = 0;
        for (spec, len) in specs {
            let data = self.take(len)?;
            let rows = if spec & DEFLATE != 0 {
                column_rows(spec, &inflate(data)?, strings)?
            } else {
                column_rows(spec, data, strings)?
            };
            most = most.max(rows);
        }
        Ok(most)
    }
}

const DEFLATE: u32 = 0b1000;

// Columns inflated on this thread (the tests check the path is taken).
#[cfg(test)]
thread_local!(static INFLATES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });
/// Inflates a DEFLATE column, refusing it once it passes the cap.
fn inflate(data: &[u8]) -> Result<Vec<u8>, BundleError> {
    #[cfg(test)]
    INFLATES.with(|c| c.set(c.get() + 1));
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(data)
        .take(MAX_INFLATED_COLUMN_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|_| BundleError::Layout("a DEFLATE column does not inflate"))?;
    if out.len() as u64 > MAX_INFLATED_COLUMN_BYTES {
        return Err(BundleError::InflatesTooLarge);
    }
    Ok(out)
}

/// Rows a column decodes to, counted run by run (a run of a billion copies
/// costs one step), with the decoder automerge itself uses. Strings are
/// read as bytes (the string decoder trusts validated input) and their
/// expansion is added to `strings`.
fn column_rows(spec: u32, data: &[u8], strings: &mut u64) -> Result<u64, BundleError> {
    use hexane::RunDecoder;
    let counted = std::panic::catch_unwind(|| -> Result<(u64, u64), BundleError> {
        let mut rows = 0u64;
        let mut bytes = 0u64;
        // Every run takes at least one byte of the column: more runs than
        // bytes is a decoder going round on malformed input (it did, on a
        // fuzzer's input: a run of no rows, returned for ever).
        let mut runs_left = data.len();
        let mut add = |count: usize, len: usize| -> Result<(), BundleError> {
            if count == 0 || runs_left == 0 {
                return Err(BundleError::Layout("a column's runs do not decode"));
            }
            runs_left -= 1;
            rows = rows.saturating_add(count as u64);
            bytes = bytes.saturating_add((count as u64).saturating_mul(len as u64));
            if rows > MAX_BUNDLE_ROWS {
                return Err(BundleError::TooManyRows);
            }
            Ok(())
        };
        match spec & 0b111 {
            // Group, actor, integer, value metadata: run-length unsigned.
            0 | 1 | 2 | 6 => {
                let mut d = hexane::decoder::<Option<u64>>(data);
                while let Some(run) = d.next_run() {
                    add(run.count, 0)?;
                }
            }
            // Delta: run-length signed deltas.
            3 => {
                let mut d = hexane::decoder::<Option<i64>>(data);
                while let Some(run) = d.next_run() {
                    add(run.count, 0)?;
                }
            }
            // Boolean: alternating run lengths, read here rather than by
            // hexane's bool decoder, which goes round for ever on a
            // truncated count (a fuzzer's input): a zero-length first run
            // is how a column starting with `true` is written.
            4 => {
                let mut rest = data;
                let mut first = true;
                while !rest.is_empty() {
                    let count = leb128::read::unsigned(&mut rest).map_err(|_| {
                        BundleError::Layout("a boolean column's runs do not decode")
                    })?;
                    let count = usize::try_from(count).map_err(|_| BundleError::TooManyRows)?;
                    if !(first && count == 0) {
                        add(count, 0)?;
                    }
                    first = false;
                }
            }
            5 => {
                let mut d = hexane::decoder::<Option<Vec<u8>>>(data);
                while let Some(run) = d.next_run() {
                    add(run.count, run.value.map_or(0, <[u8]>::len))?;
                }
            }
            // Raw values: as many bytes as there are, no expansion.
            _ => {}
        }
        Ok((rows, bytes))
    });
    let (rows, bytes) = counted.map_err(|_| BundleError::Layout("a column does not decode"))??;
    *strings = strings.saturating_add(bytes);
    if *strings > MAX_BUNDLE_STRING_BYTES {
        return Err(BundleError::StringsTooLarge);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests;
