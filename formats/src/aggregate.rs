//! Aggregated buildinfo indices: many buildinfo paragraphs concatenated in one file (the
//! `Buildinfo.xz` proposed for the Debian archive), plain, `.gz` or `.xz`.
//!
//! Each paragraph is one build. Its identity is the SHA-256 of the paragraph text exactly as
//! yielded here (lines ending in `\n`, no separating blank line).

use std::io::BufRead;

use crate::buildinfo::Buildinfo;
use crate::error::ParseError;
use crate::paragraph::{Paragraphs, RawParagraph};

/// Does this (decompressed) text start like a buildinfo index rather than one buildinfo?
/// True when there is more than one paragraph whose first field is `Format:`.
///
/// Stops reading at the second such paragraph, so it is cheap on large indices. A clearsigned
/// single buildinfo has one such paragraph (the armour lines form paragraphs of their own) and
/// gives false; so does text that is not valid UTF-8 before the second `Format:` paragraph.
pub fn looks_like_index(text: &[u8]) -> bool {
    let mut count = 0;
    for p in Paragraphs::new(text) {
        let Ok(p) = p else {
            return false;
        };
        let is_format = p
            .text
            .split_once(':')
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case("Format") && !name.contains('\n'));
        if is_format {
            count += 1;
            if count > 1 {
                return true;
            }
        }
    }
    false
}

/// The identity of an entry: lower-case hex SHA-256 of its text exactly as yielded by
/// [`paragraphs`].
pub fn entry_id(entry: &Entry) -> String {
    crate::sha256_hex(entry.text.as_bytes())
}

/// Parse one entry as a buildinfo; error line numbers are lines of the whole index.
pub fn parse_entry(entry: &Entry) -> Result<Buildinfo, ParseError> {
    let offset = entry.first_line.saturating_sub(1);
    Buildinfo::parse(entry.text.as_bytes()).map_err(|e| e.offset_lines(offset))
}

/// Render buildinfos as an aggregated index: each [`Buildinfo::render`]ed paragraph, separated
/// by one blank line. The caller chooses the order (e.g. by source, version, architecture) and
/// compresses.
pub fn render_index<'a>(builds: impl IntoIterator<Item = &'a Buildinfo>) -> String {
    let mut out = String::new();
    for b in builds {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&b.render());
    }
    out
}

/// Iterate the buildinfo paragraphs of an (already decompressed) aggregated index.
pub fn paragraphs<R: BufRead>(reader: R) -> Paragraphs<R> {
    Paragraphs::new(reader)
}

/// Convenience alias for one entry of an index.
pub type Entry = RawParagraph;
