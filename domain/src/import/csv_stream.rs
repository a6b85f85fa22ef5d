//! CSV read as a stream, one record at a time, from any `Read + Seek`:
//! the bytes are checked as UTF-8 as they pass (a BOM is skipped) and, at
//! the first byte that is not, the caller starts again from the top as
//! Windows-1252 ([`Encoding`]); the separator is guessed from the header
//! line alone; each record is named by the line an editor shows (LF, CR LF
//! or a lone CR), as [`super::csv_text`] does with the text held whole.
//!
//! What is held at once is bounded: the csv crate's buffer, the current
//! record (at most [`MAX_RECORD_BYTES`]), and the line breaks read ahead of
//! it — never the file.

use super::csv_text::delimiter_of;
use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};

/// Bytes of the file scanned for the header line's separator: a header
/// longer than this is judged on its first MiB (real headers are < 10 KB).
const MAX_HEADER_SNIFF_BYTES: usize = 1 << 20;
/// Bytes a single record (or the header) may take, read-ahead included:
/// real records are a few KB; this stops a file with no line break (or an
/// unclosed quote) from being read whole into memory.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;
/// Bytes read from the file per call.
const CHUNK_BYTES: usize = 64 << 10;

/// The text encoding a file is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Windows1252,
}

impl Encoding {
    /// The name [`super::Outcome::encoding`] gives.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1252 => "windows-1252",
        }
    }
}

/// Why a stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the file is not UTF-8")]
    NotUtf8,
    #[error("a record is longer than {MAX_RECORD_BYTES} bytes (is a quote left open?)")]
    RecordTooLong,
    #[error("the file could not be read: {0}")]
    Read(io::Error),
    /// The csv reader's own error (an I/O error of the file included).
    #[error("{0}")]
    Csv(csv::Error),
}

/// Marker payloads of the `io::Error`s the adapters below raise, told
/// apart from the file's own read errors when they come back through csv.
#[derive(Debug, thiserror::Error)]
enum Marker {
    #[error("not UTF-8")]
    NotUtf8,
    #[error("record too long")]
    RecordTooLong,
}

fn marker(m: Marker) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m)
}

fn stream_error(e: csv::Error) -> StreamError {
    if let csv::ErrorKind::Io(io) = e.kind() {
        match io.get_ref().and_then(|i| i.downcast_ref::<Marker>()) {
            Some(Marker::NotUtf8) => return StreamError::NotUtf8,
            Some(Marker::RecordTooLong) => return StreamError::RecordTooLong,
            None => {}
        }
    }
    StreamError::Csv(e)
}

/// Reads until `buf` is full or the file ends, so that what the csv
/// reader sees does not depend on the sizes the file gives (its check for
/// a BOM looks at the first read only).
fn fill(inner: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match inner.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Passes bytes on only once they are known to be UTF-8; an incomplete
/// sequence at the end of a chunk waits for the next one.
struct Utf8Checked<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    valid_end: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> Read for Utf8Checked<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.start < self.valid_end {
                let n = out.len().min(self.valid_end - self.start);
                out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
                self.start += n;
                return Ok(n);
            }
            if self.eof {
                return match self.start < self.end {
                    true => Err(marker(Marker::NotUtf8)),
                    false => Ok(0),
                };
            }
            // At most 3 bytes of an incomplete sequence are left: keep them.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let n = fill(&mut self.inner, &mut self.buf[self.end..])?;
            self.eof = n == 0;
            self.end += n;
            self.valid_end = match std::str::from_utf8(&self.buf[..self.end]) {
                Ok(_) => self.end,
                Err(e) if e.error_len().is_some() => return Err(marker(Marker::NotUtf8)),
                Err(e) => e.valid_up_to(),
            };
        }
    }
}

/// Windows-1252 bytes turned into UTF-8 as they are read.
struct Windows1252<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    raw: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    text: Vec<u8>,
    text_start: usize,
    text_end: usize,
}

impl<R: Read> Read for Windows1252<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.text_start == self.text_end {
            if self.raw_start == self.raw_end {
                self.raw_end = fill(&mut self.inner, &mut self.raw)?;
                self.raw_start = 0;
                if self.raw_end == 0 {
                    return Ok(0);
                }
            }
            let (_, read, written, _) = self.decoder.decode_to_utf8(
                &self.raw[self.raw_start..self.raw_end],
                &mut self.text,
                false,
            );
            self.raw_start += read;
            self.text_start = 0;
            self.text_end = written;
        }
        let n = out.len().min(self.text_end - self.text_start);
        out[..n].copy_from_slice(&self.text[self.text_start..self.text_start + n]);
        self.text_start += n;
        Ok(n)
    }
}

/// Notes where the line breaks are in the bytes passing to the csv reader
/// (which reads ahead), so a record's byte offset becomes the line an editor
/// shows; breaks behind the last record are dropped as records advance.
struct LineBreaks<R> {
    inner: R,
    /// Bytes passed on so far.
    offset: u64,
    /// (offset, byte) of every `\r` or `\n` at or after `scanned`.
    breaks: VecDeque<(u64, u8)>,
    scanned: u64,
    line: usize,
}

impl<R: Read> Read for LineBreaks<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.offset - self.scanned > MAX_RECORD_BYTES {
            return Err(marker(Marker::RecordTooLong));
        }
        let n = self.inner.read(out)?;
        for (i, b) in out[..n].iter().enumerate() {
            if matches!(b, b'\r' | b'\n') {
                self.breaks.push_back((self.offset + i as u64, *b));
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> LineBreaks<R> {
    /// The 1-based line of the first byte at or after `offset` that is not
    /// a line break (see `csv_text::LineCounter`, which this mirrors).
    fn record_line(&mut self, offset: u64) -> usize {
        let mut end = offset.max(self.scanned);
        let mut counted = 0;
        while let Some(&(at, _)) = self.breaks.get(counted) {
            if at > end {
                break;
            }
            if at == end {
                end += 1;
            }
            counted += 1;
        }
        for i in 0..counted {
            let (at, b) = self.breaks[i];
            let lone_cr = b == b'\r' && self.breaks.get(i + 1) != Some(&(at + 1, b'\n'));
            if b == b'\n' || lone_cr {
                self.line += 1;
            }
        }
        self.breaks.drain(..counted);
        self.scanned = end;
        self.line
    }
}

/// A CSV file read record by record.
pub struct CsvStream<'a> {
    reader: csv::Reader<LineBreaks<Box<dyn Read + 'a>>>,
    record: csv::ByteRecord,
}

/// The separator of the header line and the length of a UTF-8 BOM, read
/// from the first bytes; the file is left at its start.
fn sniff<R: Read + Seek>(file: &mut R) -> io::Result<(u8, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    while head.len() < MAX_HEADER_SNIFF_BYTES && !head.iter().any(|b| matches!(b, b'\r' | b'\n')) {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    file.seek(SeekFrom::Start(0))?;
    let bom = if head.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let line = head[bom..].split(|b| matches!(b, b'\r' | b'\n')).next();
    Ok((delimiter_of(line.unwrap_or_default()), bom as u64))
}

impl<'a> CsvStream<'a> {
    /// Opens `file` from its start in `encoding`.
    pub fn open<R: Read + Seek + 'a>(mut file: R, encoding: Encoding) -> Result<Self, StreamError> {
        let (delimiter, bom) = sniff(&mut file).map_err(StreamError::Read)?;
        file.seek(SeekFrom::Start(bom)).map_err(StreamError::Read)?;
        let decoded: Box<dyn Read + 'a> = match encoding {
            Encoding::Utf8 => Box::new(Utf8Checked {
                inner: file,
                buf: vec![0; CHUNK_BYTES],
                start: 0,
                valid_end: 0,
                end: 0,
                eof: false,
            }),
            Encoding::Windows1252 => Box::new(Windows1252 {
                inner: file,
                decoder: encoding_rs::WINDOWS_1252.new_decoder_without_bom_handling(),
                raw: vec![0; CHUNK_BYTES],
                raw_start: 0,
                raw_end: 0,
                // Each byte becomes at most 3 bytes of UTF-8.
                text: vec![0; 3 * CHUNK_BYTES],
                text_start: 0,
                text_end: 0,
            }),
        };
        let breaks = LineBreaks {
            inner: decoded,
            offset: 0,
            breaks: VecDeque::new(),
            scanned: 0,
            line: 1,
        };
        let reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(breaks);
        Ok(CsvStream {
            reader,
            record: csv::ByteRecord::new(),
        })
    }

    /// The header line's cells, as written.
    pub fn headers(&mut self) -> Result<Vec<String>, StreamError> {
        let headers = self.reader.byte_headers().map_err(stream_error)?;
        Ok(headers
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect())
    }

    /// The next record and the line it starts on; `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<(usize, &csv::ByteRecord)>, StreamError> {
        if !self
            .reader
            .read_byte_record(&mut self.record)
            .map_err(stream_error)?
        {
            return Ok(None);
        }
        let offset = self.record.position().map_or(0, |p| p.byte());
        let line = self.reader.get_mut().record_line(offset);
        Ok(Some((line, &self.record)))
    }
}

/// Whether every cell of `record` is blank (`str::trim` empty), looking at
/// the bytes first: any ASCII byte that is not whitespace settles it.
pub fn is_blank(record: &csv::ByteRecord) -> bool {
    let settled = |b: &u8| b.is_ascii() && !matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ');
    if record.as_slice().iter().any(settled) {
        return false;
    }
    record
        .iter()
        .all(|c| String::from_utf8_lossy(c).trim().is_empty())
}
