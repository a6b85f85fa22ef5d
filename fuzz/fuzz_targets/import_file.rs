//! Fuzz target: import files as they come (any bytes, any encoding, CSV or
//! XLSX, any of the three layouts) never panic: every outcome is projects of
//! the node's comune plus skipped rows, or located errors — never a part.
#![no_main]
use accordo_domain::import::{import, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let own = "092009".parse().expect("a valid ISTAT literal");
    let xlsx = data.starts_with(b"PK");
    for format in [Format::Auto, Format::Opencoesione, Format::Pnrr, Format::Accordo] {
        match import(data, xlsx, format, Some(data), &own) {
            Ok(o) => assert!(o.projects.len() + o.skipped.len() <= o.rows),
            Err(e) => assert!(!e.0.is_empty(), "an error names at least one problem"),
        }
    }
});
