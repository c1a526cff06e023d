//! Field access shared by the parsers: one deb822 paragraph is parsed once with
//! deb822-lossless, then each field is handled as a borrowed slice of the input (`raw`, the text
//! after the colon up to the end of the field, continuation lines included) together with the
//! line number of its name in the original file. No per-field allocation happens here.

use std::borrow::Cow;

use deb822_lossless::Deb822;

use crate::error::ParseError;

/// One field of a paragraph, borrowed from the paragraph text.
pub(crate) struct Field<'a> {
    /// The field name as written.
    pub(crate) name: &'a str,
    /// Everything after the colon up to the end of the field (continuation lines included,
    /// each still carrying its leading whitespace and trailing `\n`).
    pub(crate) raw: &'a str,
    /// 1-based line of the field name in the original file.
    pub(crate) line: usize,
}

/// Number of `\n` in `s`.
///
/// Line arithmetic in this crate saturates: a caller may pass any `first_line`.
pub(crate) fn count_newlines(s: &[u8]) -> usize {
    s.iter().filter(|b| **b == b'\n').count()
}

/// Split one deb822 paragraph into fields.
///
/// `text` must hold exactly one paragraph; `line_offset` is added to line numbers (the number of
/// lines that precede `text` in the original file). Comment-only paragraphs are ignored.
///
/// The common layout (field lines and indented continuation lines, nothing else) is split by
/// [`split_paragraph_fast`]; anything else goes through deb822-lossless
/// ([`split_paragraph_lossless`]), which also explains what is wrong. Both give the same fields
/// wherever the fast path answers (property-tested).
pub(crate) fn split_paragraph(text: &str, line_offset: usize) -> Result<Vec<Field<'_>>, ParseError> {
    // deb822-lossless takes a lone `\r` as a line break, which would put our line numbers off;
    // callers normalise `\r\n` to `\n`, so any `\r` left is stray.
    if let Some(cr) = memchr::memchr(b'\r', text.as_bytes()) {
        let line = line_offset.saturating_add(1).saturating_add(count_newlines(text.as_bytes().get(..cr).unwrap_or_default()));
        return Err(ParseError::new("stray carriage return (only \\n or \\r\\n line endings are allowed)").line(line));
    }
    match split_paragraph_fast(text, line_offset) {
        Some(fields) => Ok(fields),
        None => split_paragraph_lossless(text, line_offset),
    }
}

/// May `b` start a field name? deb822-lossless takes printable ASCII except space, `:`, and `-`
/// (and `#` starts a comment).
fn is_initial_key_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b':' | b'-' | b'#')
}

/// The fast path of [`split_paragraph`]: one pass over the lines, accepting only
/// - optional blank lines (`\n` alone) before the paragraph,
/// - field lines `Name:value`, the name made of printable ASCII with no space (not starting with
///   `-` or `#`) and followed directly by the colon,
/// - continuation lines starting with a space or tab and holding something besides blanks,
/// - optional blank lines after the paragraph.
///
/// Returns `None` for anything else (comments, stray indentation, a second paragraph, a name
/// followed by blanks before its colon, blank continuation lines, no field at all, `\r`): the
/// caller then asks deb822-lossless, which either accepts the odd but valid spelling or explains
/// the error. Where this returns fields, they are exactly deb822-lossless's.
pub(crate) fn split_paragraph_fast(text: &str, line_offset: usize) -> Option<Vec<Field<'_>>> {
    let bytes = text.as_bytes();
    let mut fields: Vec<Field<'_>> = Vec::with_capacity(32);
    let mut pos = 0usize;
    let mut line = line_offset.saturating_add(1);
    // The field being read: its name and where its raw value starts.
    let mut open: Option<(&str, usize, usize)> = None;
    let mut end_of_paragraph = bytes.len();
    while pos < bytes.len() {
        let line_end = match memchr::memchr(b'\n', bytes.get(pos..)?) {
            Some(i) => pos + i + 1,
            None => bytes.len(),
        };
        let content = bytes.get(pos..line_end)?;
        match content.first().copied()? {
            b'\n' => {
                if open.is_some() {
                    // End of the paragraph: only blank lines may follow.
                    if !bytes.get(pos..)?.iter().all(|b| *b == b'\n') {
                        return None;
                    }
                    end_of_paragraph = pos;
                    break;
                }
                // A blank line before the paragraph.
            }
            b' ' | b'\t' => {
                open?;
                if content.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
                    return None;
                }
            }
            first if is_initial_key_byte(first) => {
                let name_len = content.iter().position(|b| !b.is_ascii_graphic() || *b == b':')?;
                if content.get(name_len) != Some(&b':') {
                    return None;
                }
                if let Some((name, raw_start, field_line)) = open.take() {
                    fields.push(Field { name, raw: text.get(raw_start..pos)?, line: field_line });
                }
                let name = text.get(pos..pos + name_len)?;
                open = Some((name, pos + name_len + 1, line));
            }
            _ => return None,
        }
        pos = line_end;
        line = line.saturating_add(1);
    }
    let (name, raw_start, field_line) = open?;
    fields.push(Field { name, raw: text.get(raw_start..end_of_paragraph)?, line: field_line });
    Some(fields)
}

/// [`split_paragraph`] with deb822-lossless: accepts every spelling deb822 allows and explains
/// every error. `text` holds no `\r` (checked by the caller).
pub(crate) fn split_paragraph_lossless(text: &str, line_offset: usize) -> Result<Vec<Field<'_>>, ParseError> {
    let line_at = |offset: usize| {
        line_offset.saturating_add(1).saturating_add(count_newlines(text.as_bytes().get(..offset).unwrap_or(text.as_bytes())))
    };
    if let Some(cr) = text.find('\r') {
        return Err(ParseError::new("stray carriage return (only \\n or \\r\\n line endings are allowed)")
            .line(line_at(cr)));
    }
    let parsed = Deb822::parse(text);
    if let Some(e) = parsed.positioned_errors().first() {
        return Err(ParseError::new(format!("deb822 syntax error: {}", e.message))
            .line(line_at(usize::from(e.range.start()))));
    }
    if let Some(msg) = parsed.errors().first() {
        return Err(ParseError::new(format!("deb822 syntax error: {msg}")));
    }
    let tree = parsed.tree();
    let mut fields = Vec::with_capacity(32);
    let mut paragraphs = 0usize;
    // Running line count: entries come in text order, so counting newlines between successive
    // entry starts visits each byte once.
    let mut pos = 0usize;
    let mut line = line_offset.saturating_add(1);
    for para in tree.paragraphs() {
        let mut entries = para.entries().peekable();
        if entries.peek().is_none() {
            continue;
        }
        paragraphs += 1;
        if paragraphs > 1 {
            let start = usize::from(para.text_range().start());
            return Err(ParseError::new(
                "expected exactly one paragraph, found another one (is there a blank line inside?)",
            )
            .line(line_at(start)));
        }
        for entry in entries {
            let range = entry.text_range();
            let start = usize::from(range.start());
            let end = usize::from(range.end());
            line = line.saturating_add(count_newlines(text.as_bytes().get(pos..start).unwrap_or_default()));
            pos = start.max(pos);
            let (Some(key), Some(colon)) = (entry.key_range(), entry.colon_range()) else {
                return Err(ParseError::new("field without name or colon").line(line));
            };
            let name = text.get(key.start().into()..key.end().into()).unwrap_or_default();
            let raw = text.get(usize::from(colon.end())..end).unwrap_or_default();
            fields.push(Field { name, raw, line });
        }
    }
    if paragraphs == 0 {
        return Err(ParseError::new("no deb822 paragraph found (empty input?)").line(line_offset.saturating_add(1)));
    }
    Ok(fields)
}

impl<'a> Field<'a> {
    /// An error about this field, at its first line.
    pub(crate) fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError::new(message).field(self.name).line(self.line)
    }

    /// Locate an error from a helper (which knows neither field nor line) at this field.
    pub(crate) fn locate(&self, e: ParseError) -> ParseError {
        let line = e.line.unwrap_or(self.line);
        ParseError { field: Some(self.name.to_owned()), line: Some(line), ..e }
    }

    /// The value on the field's own line, trimmed.
    pub(crate) fn first(&self) -> &'a str {
        let end = self.raw.find('\n').unwrap_or(self.raw.len());
        self.raw.get(..end).unwrap_or_default().trim_ascii()
    }

    /// The continuation lines (after the field's own line), raw.
    fn rest(&self) -> &'a str {
        match self.raw.find('\n') {
            Some(nl) => self.raw.get(nl + 1..).unwrap_or_default(),
            None => "",
        }
    }

    /// Continuation lines as `(line, content)`, `content` with its line ending and exactly one
    /// leading space or tab removed; comment lines skipped.
    fn continuation_lines(&self) -> impl Iterator<Item = (usize, &'a str)> + 'a {
        let first_line = self.line;
        self.rest()
            .split_inclusive('\n')
            .enumerate()
            .filter(|(_, l)| !l.starts_with('#'))
            .map(move |(i, l)| {
                let l = l.strip_suffix('\n').unwrap_or(l);
                let l = l.strip_prefix([' ', '\t']).unwrap_or(l);
                (first_line.saturating_add(1).saturating_add(i), l)
            })
    }

    /// The value, which must fit on the field's line.
    pub(crate) fn single(&self) -> Result<&'a str, ParseError> {
        if self.continuation_lines().next().is_some() {
            return Err(self.err("the value must fit on one line"));
        }
        Ok(self.first())
    }

    /// Every logical line, `(line, content)`: the field's own line (trimmed) when not empty, then
    /// the continuation lines ([`Self::continuation_lines`]).
    pub(crate) fn lines(&self) -> impl Iterator<Item = (usize, &'a str)> + 'a {
        let first = self.first();
        let own = (!first.is_empty()).then_some((self.line, first));
        own.into_iter().chain(self.continuation_lines())
    }

    /// Whitespace-separated tokens over all lines, with their line.
    pub(crate) fn tokens(&self) -> impl Iterator<Item = (usize, &'a str)> + 'a {
        self.lines().flat_map(|(n, l)| l.split_ascii_whitespace().map(move |t| (n, t)))
    }

    /// Comma-separated items over all lines (items may span lines), trimmed, empty ones
    /// skipped, each with the line where it starts.
    pub(crate) fn for_each_item(
        &self,
        mut f: impl FnMut(usize, &str) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let text = self.without_comments();
        let bytes = text.as_bytes();
        let mut line = self.line;
        // One pass: `start` is the first non-blank byte of the current item (None while in
        // leading blanks), `end` one past its last non-blank byte, `start_line` its line.
        let mut start: Option<usize> = None;
        let mut end = 0;
        let mut start_line = line;
        for (i, b) in bytes.iter().enumerate() {
            match b {
                b',' => {
                    if let Some(s) = start.take() {
                        f(start_line, text.get(s..end).unwrap_or_default())?;
                    }
                }
                b'\n' => line = line.saturating_add(1),
                b' ' | b'\t' | b'\r' => {}
                _ => {
                    if start.is_none() {
                        start = Some(i);
                        start_line = line;
                    }
                    end = i + 1;
                }
            }
        }
        if let Some(s) = start {
            f(start_line, text.get(s..end).unwrap_or_default())?;
        }
        Ok(())
    }

    /// `raw` with comment lines blanked (their line endings kept, so line counts stay right).
    fn without_comments(&self) -> Cow<'a, str> {
        if !self.raw.contains("\n#") {
            return Cow::Borrowed(self.raw);
        }
        let mut out = String::with_capacity(self.raw.len());
        for (i, l) in self.raw.split_inclusive('\n').enumerate() {
            if i > 0 && l.starts_with('#') {
                if l.ends_with('\n') {
                    out.push('\n');
                }
            } else {
                out.push_str(l);
            }
        }
        Cow::Owned(out)
    }

    /// The value with continuation lines unfolded: the field's own line (if not empty), then
    /// each continuation line without its one leading space, ` .` becoming an empty line,
    /// joined with `\n` (no trailing newline).
    pub(crate) fn unfolded(&self) -> String {
        let mut out = String::with_capacity(self.raw.len());
        let first = self.first();
        out.push_str(first);
        let mut started = !first.is_empty();
        for (_, l) in self.continuation_lines() {
            if started {
                out.push('\n');
            }
            started = true;
            if l != "." {
                out.push_str(l);
            }
        }
        out
    }

    /// All tokens joined by single spaces (for relation fields kept as text).
    pub(crate) fn normalized(&self) -> String {
        let mut out = String::with_capacity(self.raw.len());
        for (_, t) in self.tokens() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(t);
        }
        out
    }
}

/// Is `s` a hex digest of exactly `len` characters?
pub(crate) fn is_hex_of_len(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parse a decimal size (digits only: no sign, no spaces).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fields_and_lines() {
        let text = "A: 1\nB:\n x,\n#c, d\n y (z),\n\n  w\nC: 3\n";
        // "\n\n" would be a paragraph break; use a valid one instead.
        let text = text.replace("\n\n", "\n");
        let fields = split_paragraph(&text, 10).unwrap();
        assert_eq!(fields.len(), 3);
        assert_eq!((fields[0].name, fields[0].line, fields[0].first()), ("A", 11, "1"));
        assert_eq!((fields[1].name, fields[1].line), ("B", 12));
        assert_eq!((fields[2].name, fields[2].line), ("C", 17));
        let mut items = Vec::new();
        fields[1].for_each_item(|l, i| {
            items.push((l, i.to_owned()));
            Ok(())
        })
        .unwrap();
        assert_eq!(items, vec![(13, "x".to_owned()), (15, "y (z)".to_owned()), (16, "w".to_owned())]);
        assert_eq!(fields[1].normalized(), "x, y (z), w");
    }

    /// `(name, raw, line)` of each field, for comparing the two splitters.
    fn triples<'a>(fields: &[Field<'a>]) -> Vec<(&'a str, &'a str, usize)> {
        fields.iter().map(|f| (f.name, f.raw, f.line)).collect()
    }

    /// One line of deb822-like text: mostly well-formed field and continuation lines, plus the
    /// odd spellings the fast path must hand over to deb822-lossless.
    fn deb822_line() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => ("[A-Za-z0-9][A-Za-z0-9-]{0,6}", "[ \t]{0,2}[ -~]{0,10}").prop_map(|(k, v)| format!("{k}:{v}")),
            4 => "[ \t]{1,2}[ -~]{0,10}",
            1 => "",
            1 => "[ \t]{1,3}",
            1 => "#[ -~]{0,6}",
            1 => "[-#:\t ][ -~]{0,6}",
            1 => "[!-~]{0,4}[ \t]?:[ -~]{0,4}",
            1 => "[A-Za-z]{1,3}[é\u{1}][A-Za-z]{0,2}:[ -~]{0,4}",
            1 => "[ -~]{0,3}[é\u{0}\u{7f}][ -~]{0,3}",
        ]
    }

    fn deb822_text() -> impl Strategy<Value = String> {
        ("\n{0,2}", proptest::collection::vec(deb822_line(), 0..14), "\n{0,3}")
            .prop_map(|(lead, lines, trail)| format!("{lead}{}{trail}", lines.join("\n")))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        /// Wherever the fast splitter answers, deb822-lossless accepts the text and finds the
        /// same fields, values and lines.
        #[test]
        fn fast_path_agrees_with_lossless(text in deb822_text(), offset in 0usize..5) {
            if let Some(fast) = split_paragraph_fast(&text, offset) {
                let slow = split_paragraph_lossless(&text, offset);
                prop_assert!(slow.is_ok(), "fast path accepted {text:?}, lossless says {:?}", slow.err());
                let slow = slow.unwrap_or_default();
                prop_assert_eq!(triples(&fast), triples(&slow), "{:?}", text);
            }
        }

        /// Well-formed paragraphs take the fast path.
        #[test]
        fn plain_paragraphs_take_the_fast_path(
            fields in proptest::collection::vec(("[A-Z][A-Za-z-]{0,8}", "[ ]?[!-~][ -~]{0,8}", proptest::collection::vec("[ \t][!-~]{1,8}", 0..3)), 1..8),
        ) {
            let mut text = String::new();
            for (k, v, cont) in &fields {
                text.push_str(&format!("{k}:{v}\n"));
                for c in cont {
                    text.push_str(c);
                    text.push('\n');
                }
            }
            let fast = split_paragraph_fast(&text, 0);
            prop_assert!(fast.is_some(), "{:?}", text);
            let slow = split_paragraph_lossless(&text, 0).unwrap_or_default();
            prop_assert_eq!(triples(&fast.unwrap_or_default()), triples(&slow));
        }
    }

    #[test]
    fn fast_path_declines_what_it_does_not_model() {
        for text in ["", "\n\n", " x\nA: 1\n", "A: 1\n#c\n", "A : 1\n", "A: 1\n \n", "A: 1\n\nB: 2\n", "-A: 1\n", "A\n"] {
            assert!(split_paragraph_fast(text, 0).is_none(), "{text:?}");
        }
        let fields = split_paragraph_fast("\nA:1\nB:\n x\n y\n\n\n", 3).unwrap();
        assert_eq!(triples(&fields), vec![("A", "1\n", 5), ("B", "\n x\n y\n", 6)]);
    }

    #[test]
    fn two_paragraphs_rejected_with_line() {
        let err = match split_paragraph("A: 1\n\nB: 2\n", 0) {
            Err(e) => e,
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(err.line, Some(3));
    }
}
