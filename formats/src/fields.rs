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

/// Split one deb822 paragraph into fields with deb822-lossless.
///
/// `text` must hold exactly one paragraph; `line_offset` is added to line numbers (the number of
/// lines that precede `text` in the original file). Comment-only paragraphs are ignored.
pub(crate) fn split_paragraph(text: &str, line_offset: usize) -> Result<Vec<Field<'_>>, ParseError> {
    let line_at = |offset: usize| {
        line_offset.saturating_add(1).saturating_add(count_newlines(text.as_bytes().get(..offset).unwrap_or(text.as_bytes())))
    };
    // deb822-lossless takes a lone `\r` as a line break, which would put our line numbers off;
    // callers normalise `\r\n` to `\n`, so any `\r` left is stray.
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

    #[test]
    fn two_paragraphs_rejected_with_line() {
        let err = match split_paragraph("A: 1\n\nB: 2\n", 0) {
            Err(e) => e,
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(err.line, Some(3));
    }
}
