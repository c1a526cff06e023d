//! Helpers shared by the integration tests: locating the shared test data and reading it with
//! methods independent of the crate's parser (plain line scanning), so that expectations are
//! not computed by the code under test.
#![allow(dead_code)]

use std::path::PathBuf;

/// `/work/shared/testdata` (or `$DEBCOVER_TESTDATA`).
pub fn testdata() -> PathBuf {
    std::env::var_os("DEBCOVER_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata")))
}

pub fn read(rel: &str) -> Vec<u8> {
    let p = testdata().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

pub fn read_str(rel: &str) -> String {
    String::from_utf8(read(rel)).expect("test file is UTF-8")
}

/// All files of a testdata subdirectory, sorted, as (file name, bytes).
pub fn files_in(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(testdata().join(dir))
        .expect("testdata dir")
        .map(|e| {
            let p = e.expect("dir entry").path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The single-line value of `field` (first match at column 0, exact case).
pub fn value<'a>(text: &'a str, field: &str) -> Option<&'a str> {
    let prefix = format!("{field}:");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str()).map(str::trim))
}

/// The continuation lines of `field`, trimmed.
pub fn block<'a>(text: &'a str, field: &str) -> Vec<&'a str> {
    let prefix = format!("{field}:");
    let mut lines = text.lines().skip_while(|l| !l.starts_with(prefix.as_str()));
    if lines.next().is_none() {
        return Vec::new();
    }
    lines.take_while(|l| l.starts_with(' ')).map(str::trim).collect()
}

/// 1-based number of the first line of `text` that contains `needle`.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1).unwrap_or_else(|| panic!("{needle:?} not found"))
}

/// Number of lines of `text` (a last line without newline counts).
pub fn line_count(text: &str) -> usize {
    text.lines().count()
}
