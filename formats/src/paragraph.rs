//! Streaming deb822 paragraph splitter for large files (archive indices, aggregated buildinfo
//! indices): yields one paragraph's text at a time with its starting line, so memory stays
//! bounded by the largest paragraph, not by the file. Each paragraph is then parsed on its own.
//!
//! Rules: blank or whitespace-only (spaces, tabs) lines separate paragraphs; lines starting with
//! `#` at column 0 are comments and dropped; `\r\n` is normalised to `\n`; a missing final
//! newline is added. After the first error the iterator ends.

use std::io::{BufRead, Read};

use crate::error::ParseError;

/// Largest single paragraph accepted (1 MiB; real Packages paragraphs are < 20 KiB).
pub const MAX_PARAGRAPH_BYTES: usize = 1024 * 1024;

/// One paragraph cut out of a larger file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawParagraph {
    /// 1-based line number of the paragraph's first line in the whole file.
    pub first_line: usize,
    /// The paragraph's text, each line ending in `\n`, no blank lines.
    pub text: String,
}

/// Iterator over the paragraphs of a deb822 stream (blank or whitespace-only lines separate
/// paragraphs; `#` comment lines are dropped).
pub struct Paragraphs<R> {
    reader: R,
    line: usize,
    /// Reused line buffer.
    buf: Vec<u8>,
    /// Set after EOF or an error: the iterator is fused.
    done: bool,
}

impl<R: BufRead> Paragraphs<R> {
    /// Wrap a reader.
    pub fn new(reader: R) -> Self {
        Paragraphs { reader, line: 0, buf: Vec::new(), done: false }
    }

    /// Number of lines read so far.
    pub fn lines_read(&self) -> usize {
        self.line
    }

    fn fail(&mut self, err: ParseError) -> Option<Result<RawParagraph, ParseError>> {
        self.done = true;
        Some(Err(err))
    }
}

impl<R: BufRead> Iterator for Paragraphs<R> {
    type Item = Result<RawParagraph, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut text = String::new();
        let mut first_line = 0;
        loop {
            self.buf.clear();
            // Never hold more than one paragraph's worth of a line in memory, even for a
            // newline-free input.
            let limit = (MAX_PARAGRAPH_BYTES - text.len()) as u64 + 2;
            let n = match (&mut self.reader).take(limit).read_until(b'\n', &mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    let at = self.line.saturating_add(1);
                    return self.fail(ParseError::new(format!("read error: {e}")).line(at));
                }
            };
            if n == 0 {
                self.done = true;
                break;
            }
            self.line = self.line.saturating_add(1);
            let mut content: &[u8] = &self.buf;
            if let Some(c) = content.strip_suffix(b"\n") {
                content = c;
                if let Some(c) = content.strip_suffix(b"\r") {
                    content = c;
                }
            }
            if content.iter().all(|b| *b == b' ' || *b == b'\t') {
                if text.is_empty() {
                    continue;
                }
                break;
            }
            if content.first() == Some(&b'#') {
                continue;
            }
            if text.len() + content.len() + 1 > MAX_PARAGRAPH_BYTES {
                let line = self.line;
                return self.fail(
                    ParseError::new(format!(
                        "paragraph larger than the limit of {MAX_PARAGRAPH_BYTES} bytes (1 MiB); is this really a buildinfo or index?"
                    ))
                    .line(line),
                );
            }
            let Ok(s) = std::str::from_utf8(content) else {
                let line = self.line;
                return self.fail(ParseError::new("invalid UTF-8").line(line));
            };
            if text.is_empty() {
                first_line = self.line;
            }
            text.push_str(s);
            text.push('\n');
        }
        if text.is_empty() {
            None
        } else {
            Some(Ok(RawParagraph { first_line, text }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8]) -> Vec<Result<RawParagraph, ParseError>> {
        Paragraphs::new(input).collect()
    }

    #[test]
    fn splits_and_numbers() {
        let got = split(b"\n# c\nA: 1\r\nB: 2\n \t\n\n#x\nC: 3\n # not a comment\nD: 4");
        let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], RawParagraph { first_line: 3, text: "A: 1\nB: 2\n".into() });
        assert_eq!(got[1], RawParagraph { first_line: 8, text: "C: 3\n # not a comment\nD: 4\n".into() });
    }

    #[test]
    fn bad_utf8_names_line() {
        let got = split(b"A: 1\n\nB: \xff\n");
        assert_eq!(got.len(), 2);
        let err = got[1].clone().unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.to_string().contains("UTF-8"));
    }

    #[test]
    fn size_cap() {
        let mut big = b"A: ".to_vec();
        big.extend(std::iter::repeat_n(b'x', MAX_PARAGRAPH_BYTES + 10));
        let got = split(&big);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].clone().unwrap_err().line, Some(1));
        // Many lines: the error names the line that crossed the cap.
        let line = format!("A: {}\n", "y".repeat(1000));
        let many = line.repeat(2000);
        let got = split(many.as_bytes());
        let err = got[0].clone().unwrap_err();
        assert_eq!(err.line, Some(MAX_PARAGRAPH_BYTES / line.len() + 1));
    }

    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }

    #[test]
    fn io_error_is_parse_error() {
        let got: Vec<_> = Paragraphs::new(std::io::BufReader::new(Failing)).collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].clone().unwrap_err().message.contains("disk on fire"));
    }
}
