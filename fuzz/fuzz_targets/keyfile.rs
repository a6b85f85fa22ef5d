//! Fuzz target: `accordo_net::keyfile::load` on any file content. It never
//! panics, and it accepts exactly the files `create` writes (64 hex digits,
//! surrounding blanks allowed), returning the key those digits spell; a
//! file that is not UTF-8 is an I/O error, anything else is `Malformed`.
#![no_main]
use accordo_net::keyfile;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

static PATH: OnceLock<PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    accordo_fuzz::init();
    let path = PATH.get_or_init(|| {
        // A file per process, in memory where the machine has a tmpfs.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("accordo-fuzz-keyfile-{}", std::process::id()))
    });
    std::fs::write(path, data).expect("the temp dir is writable");
    let loaded = keyfile::load(path);
    let _ = std::fs::remove_file(path);
    let text = std::str::from_utf8(data).map(str::trim);
    let well_formed = text
        .as_ref()
        .is_ok_and(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    match loaded {
        Ok(key) => {
            assert!(well_formed, "accepted a malformed key file: {:?}", text);
            let digits = text.expect("well formed").to_ascii_lowercase();
            let printed: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(printed, digits);
        }
        Err(keyfile::KeyFileError::Malformed(_)) => {
            assert!(!well_formed, "refused a well-formed key")
        }
        // `load` reads text: bytes that are not UTF-8 fail as an I/O error.
        Err(keyfile::KeyFileError::Io { .. }) if text.is_err() => {}
        Err(e) => panic!("unexpected error reading a written file: {e}"),
    }
});
