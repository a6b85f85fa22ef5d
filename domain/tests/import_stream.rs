//! The streaming CSV import against the whole-file parse it replaces: the
//! same outcome on every fixture (whatever the read sizes), the header
//! judged before the body is read, rows of other comuni counted without
//! being held (memory measured by a counting allocator on this thread),
//! Windows-1252 found late, and the bounded error list.

use accordo_domain::import::{
    decode_text, import_csv, import_table, parse_csv, Format, ImportErrors, Outcome,
    MAX_LISTED_ERRORS, MAX_LISTED_SKIPS,
};
use accordo_protocol::codes::Istat;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Cursor, Read, Seek, SeekFrom};

/// Counts the bytes allocated by the current thread, and their peak.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the peak bytes it had allocated
/// at once on this thread (above what was live before).
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, (PEAK.with(Cell::get) - base).max(0) as usize)
}

fn cagliari() -> Istat {
    "092009".parse().unwrap()
}

fn fixtures_dir() -> String {
    format!("{}/tests/fixtures/import", env!("CARGO_MANIFEST_DIR"))
}

/// The parse as it was before streaming: the text decoded whole, a table
/// of every row, then the rows mapped.
fn whole_file(bytes: &[u8], format: Format, loc: Option<&[u8]>) -> Result<Outcome, ImportErrors> {
    let (text, encoding) = decode_text(bytes);
    import_table(&parse_csv(&text)?, encoding, format, loc, &cagliari())
}

/// A reader that gives at most `step` bytes per read, to cross every
/// buffer boundary (a BOM, a UTF-8 sequence, a CR LF split in two).
struct Trickle {
    inner: Cursor<Vec<u8>>,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step);
        self.inner.read(&mut buf[..n])
    }
}

impl Seek for Trickle {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// A Windows-1252 copy of `text` and lines that make it CR LF / CR.
fn variants(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![("as is".to_owned(), bytes.to_vec())];
    if let Ok(text) = std::str::from_utf8(bytes) {
        let lf = text.replace("\r\n", "\n");
        out.push(("CR LF".into(), lf.replace('\n', "\r\n").into_bytes()));
        out.push(("CR".into(), lf.replace('\n', "\r").into_bytes()));
        let bom = [b"\xEF\xBB\xBF".as_slice(), lf.as_bytes()].concat();
        out.push(("BOM".into(), bom));
        let (cp1252, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&lf);
        if !unmappable && std::str::from_utf8(&cp1252).is_err() {
            out.push(("Windows-1252".into(), cp1252.into_owned()));
        }
    }
    out
}

/// Every fixture (and its CR LF, CR, BOM and Windows-1252 variants), in
/// every format: the streaming parse, read in any sizes, gives what the
/// whole-file parse gives.
#[test]
fn streaming_gives_the_whole_file_outcome_on_every_fixture() {
    let dir = fixtures_dir();
    let loc = std::fs::read(format!("{dir}/pnrr_localizzazione.csv")).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .chain(std::fs::read_dir(format!("{dir}/fuzz")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let (mut ok, mut refused) = (0, 0);
    for path in &files {
        for (variant, bytes) in variants(&std::fs::read(path).unwrap()) {
            for format in [
                Format::Auto,
                Format::Opencoesione,
                Format::Pnrr,
                Format::Accordo,
            ] {
                let what = format!("{} ({variant}) as {format:?}", path.display());
                let expected = whole_file(&bytes, format, Some(&loc));
                let streamed = import_csv(Cursor::new(&bytes), format, Some(&loc), &cagliari());
                assert_eq!(streamed, expected, "{what}");
                for step in [1, 3, 7] {
                    let trickle = Trickle {
                        inner: Cursor::new(bytes.clone()),
                        step,
                    };
                    let streamed = import_csv(trickle, format, Some(&loc), &cagliari());
                    assert_eq!(streamed, expected, "{what}, {step} bytes per read");
                }
                match expected {
                    Ok(o) if !o.projects.is_empty() => ok += 1,
                    Ok(_) => {}
                    Err(_) => refused += 1,
                }
            }
        }
    }
    // The comparison covered files that import and files that do not.
    assert!(
        ok >= 20 && refused >= 20,
        "{ok} imported, {refused} refused"
    );
}

/// A reader that fails the test if asked for more than `limit` bytes.
struct Fenced {
    inner: Cursor<Vec<u8>>,
    limit: u64,
}

impl Read for Fenced {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        assert!(
            self.inner.position() <= self.limit,
            "read up to byte {} of a file whose header is unknown",
            self.inner.position()
        );
        Ok(n)
    }
}

impl Seek for Fenced {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// An unknown layout (or a layout missing a column) is refused on the
/// header, without reading the body of a 20 MB file.
#[test]
fn an_unknown_header_fails_before_the_body_is_read() {
    let mut file = b"PROGETTO;IMPORTO;COMUNE\n".to_vec();
    while file.len() < 20 << 20 {
        file.extend_from_slice(b"Scuola elementare;1.250.000,00;020092009\n");
    }
    for (format, expected) in [
        (Format::Auto, "unknown file layout: expected Accordo, OpenCoesione progetti_esteso or PNRR_Progetti headers; headers seen: progetto, importo, comune"),
        (Format::Opencoesione, "not a OpenCoesione progetti_esteso file: missing column(s) cod_locale_progetto, oc_titolo_progetto, cod_comune; headers seen: progetto, importo, comune"),
    ] {
        let fenced = Fenced {
            inner: Cursor::new(file.clone()),
            limit: 256 << 10,
        };
        let e = import_csv(fenced, format, None, &cagliari()).unwrap_err();
        assert_eq!(e.total(), 1);
        assert_eq!(e.0[0].problem, expected);
    }
}

/// A national extract made up as it is read: `rows` rows, of which those
/// at multiples of 1,000 below 20,000 are Cagliari's (20 at most), the
/// others spread over the comuni of Lombardia.
struct NationalExtract {
    rows: usize,
    next: usize,
    pending: Vec<u8>,
    at: usize,
    position: u64,
}

impl NationalExtract {
    fn new(rows: usize) -> Self {
        let header = b"COD_LOCALE_PROGETTO;CUP;OC_TITOLO_PROGETTO;OC_SINTESI_PROGETTO;COD_COMUNE;DEN_COMUNE;FINANZ_TOTALE_PUBBLICO\n";
        NationalExtract {
            rows,
            next: 0,
            pending: header.to_vec(),
            at: 0,
            position: 0,
        }
    }

    fn own(i: usize) -> bool {
        i < 20_000 && i.is_multiple_of(1_000)
    }

    fn fill(&mut self) {
        self.pending.clear();
        self.at = 0;
        while self.pending.len() < 16 << 10 && self.next < self.rows {
            let i = self.next;
            self.next += 1;
            let comune = match Self::own(i) {
                true => "020092009".to_owned(),
                false => format!("003{:06}", 15_001 + i % 1_500),
            };
            let row = format!(
                "{i:08}LO;F21B21{i:09};INTERVENTO N. {i};\"Lavori; impianti\";{comune};COMUNE;{},50\n",
                i % 900_000
            );
            self.pending.extend_from_slice(row.as_bytes());
        }
    }
}

impl Read for NationalExtract {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.pending.len() {
            self.fill();
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for NationalExtract {
    /// Only back to the start (which the importer needs) or where it is.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match pos {
            SeekFrom::Start(0) => *self = NationalExtract::new(self.rows),
            SeekFrom::Current(0) => {}
            SeekFrom::Start(n) if n == self.position => {}
            SeekFrom::Start(n) if n < self.pending.len() as u64 && self.next == 0 => {
                *self = NationalExtract::new(self.rows);
                self.at = n as usize;
                self.position = n;
            }
            other => return Err(io::Error::other(format!("cannot seek to {other:?}"))),
        }
        Ok(self.position)
    }
}

/// Rows of other comuni are counted, listed up to a bound, and not held:
/// ten times as many of them take no more memory.
#[test]
fn rows_of_other_comuni_are_counted_not_kept_and_cost_no_memory() {
    let mut peaks = Vec::new();
    for rows in [20_000, 200_000] {
        let (outcome, peak) =
            peak_bytes(|| import_csv(NationalExtract::new(rows), Format::Auto, None, &cagliari()));
        let o = outcome.unwrap();
        assert_eq!(o.rows, rows);
        let own: Vec<String> = (0..rows)
            .filter(|i| NationalExtract::own(*i))
            .map(|i| format!("oc:{i:08}LO"))
            .collect();
        let kept: Vec<String> = o.projects.iter().map(|p| p.key.clone()).collect();
        assert_eq!(kept, own);
        assert!(o
            .projects
            .iter()
            .all(|p| p.project.locations.contains_key("092009")));
        assert_eq!(o.skipped_rows, rows - own.len());
        assert_eq!(o.skipped.len(), MAX_LISTED_SKIPS);
        assert_eq!(
            o.skipped[0],
            (3, "belongs to comune 015002, not 092009".into())
        );
        peaks.push(peak);
    }
    // 200,000 rows are about 17 MB of CSV.
    let (small, large) = (peaks[0], peaks[1]);
    assert!(large < 4 << 20, "peak {large} bytes for 200,000 rows");
    assert!(
        large <= small + small / 10 + (64 << 10),
        "peak {large} bytes for 200,000 rows, {small} for 20,000"
    );
}

/// A Windows-1252 byte far into a file (after the first reads were
/// taken as UTF-8) makes the whole file read again as Windows-1252, with
/// the same line numbers.
#[test]
fn windows_1252_found_late_is_read_again_from_the_top() {
    for eol in ["\n", "\r\n", "\r"] {
        let mut text = String::from(
            "COD_LOCALE_PROGETTO;CUP;OC_TITOLO_PROGETTO;OC_SINTESI_PROGETTO;COD_COMUNE",
        );
        text.push_str(eol);
        for i in 0..20_000 {
            text.push_str(&format!("A{i};;Scuola {i};Semplice;020092009{eol}"));
        }
        text.push_str(&format!("B1;;Caffè;Perché sì;020092009{eol}"));
        let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
        let bytes = cp1252.into_owned();
        let utf8_prefix = bytes.iter().position(|b| *b >= 0x80).unwrap();
        assert!(
            utf8_prefix > 500_000,
            "the first non-ASCII byte is at {utf8_prefix}"
        );
        let o = import_csv(Cursor::new(&bytes), Format::Auto, None, &cagliari()).unwrap();
        assert_eq!(o.encoding, "windows-1252");
        assert_eq!(o.projects.len(), 20_001);
        let last = o.projects.last().unwrap();
        assert_eq!((last.line, last.project.title.as_str()), (20_002, "Caffè"));
        assert_eq!(last.project.summary.as_deref(), Some("Perché sì"));
        assert_eq!(Ok(o), whole_file(&bytes, Format::Auto, None), "{eol:?}");
        // A bad CUP after the accented row is named by its line.
        let mut bad = bytes.clone();
        bad.extend_from_slice(format!("C1;F27H2100123;Parco;Breve;020092009{eol}").as_bytes());
        let e = import_csv(Cursor::new(&bad), Format::Auto, None, &cagliari()).unwrap_err();
        let located: Vec<_> = e.0.iter().map(|r| (r.line, r.column.as_str())).collect();
        assert_eq!(located, vec![(20_003, "cup")], "{eol:?}");
    }
}

/// Errors beyond [`MAX_LISTED_ERRORS`] are counted, not listed; the
/// message gives the total.
#[test]
fn errors_beyond_those_listed_are_counted() {
    let mut text = String::from("COD_LOCALE_PROGETTO;CUP;OC_TITOLO_PROGETTO;COD_COMUNE\n");
    for i in 0..3_000 {
        text.push_str(&format!("A{i};F27H2100123;Parco {i};020092009\n"));
    }
    let e = import_csv(
        Cursor::new(text.as_bytes()),
        Format::Auto,
        None,
        &cagliari(),
    )
    .unwrap_err();
    assert_eq!(
        (e.0.len(), e.1, e.total()),
        (MAX_LISTED_ERRORS, 2_000, 3_000)
    );
    assert_eq!(e.0[0].line, 2);
    assert_eq!(e.0[MAX_LISTED_ERRORS - 1].line, MAX_LISTED_ERRORS + 1);
    assert!(
        e.to_string()
            .starts_with("3000 error(s), nothing imported; first: line 2, column cup"),
        "{e}"
    );
}
