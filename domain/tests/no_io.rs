//! The invariant "domain/ does no I/O" (ARCHITECTURE.md), checked on the
//! crate's own files: its normal dependencies include no runtime, network or
//! database crate, and its library code opens no file or socket. Test code
//! (`#[cfg(test)]` modules, which come last in a file, and `tests.rs`) may
//! read fixtures.

use std::path::Path;

/// Crates that would bring I/O (or the node, which does) into the domain.
const FORBIDDEN_DEPENDENCIES: &[&str] = &[
    "tokio",
    "tokio-util",
    "quinn",
    "rusqlite",
    "accordo-net",
    "accordo-store",
    "accordo-node",
    "accordo-relay",
    "anyhow",
];

/// Paths that reach the filesystem, the network or the process' streams.
const FORBIDDEN_PATHS: &[&str] = &["std::fs", "std::net", "std::process", "std::io::stdin"];

fn normal_dependencies(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut names = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
        } else if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            names.push(name.to_owned());
        }
    }
    names
}

#[test]
fn the_manifest_has_no_io_dependency() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let manifest = std::fs::read_to_string(Path::new(dir).join("Cargo.toml")).unwrap();
    let deps = normal_dependencies(&manifest);
    assert!(deps.iter().any(|d| d == "automerge"), "parsed: {deps:?}");
    for d in &deps {
        assert!(
            !FORBIDDEN_DEPENDENCIES.contains(&d.as_str()),
            "domain depends on {d}"
        );
    }
}

fn library_code(path: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(path).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            library_code(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            out.push((path.display().to_string(), code.to_owned()));
        }
    }
}

#[test]
fn the_library_opens_no_file_or_socket() {
    let mut files = Vec::new();
    library_code(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(
        files.iter().any(|(p, _)| p.ends_with("import.rs")),
        "found: {}",
        files.len()
    );
    for (path, code) in &files {
        for forbidden in FORBIDDEN_PATHS {
            assert!(!code.contains(forbidden), "{path} uses {forbidden}");
        }
    }
}
