//! The one error type of this crate: what was wrong, where.

use std::fmt;

/// A parse failure, located as precisely as the input allows.
///
/// Display renders as `FILE:LINE: field FIELD: MESSAGE`, leaving out the parts that are unknown,
/// so that a user can go straight to the offending line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The file (or URL, or `name#paragraph`) the input came from, when the caller knows it.
    pub file: Option<String>,
    /// The field at fault (`Installed-Build-Depends`), if the problem is inside one field.
    pub field: Option<String>,
    /// 1-based line number within the file, if known.
    pub line: Option<usize>,
    /// What is wrong, phrased for the user.
    pub message: String,
}

impl ParseError {
    /// A new error with a message and no location yet.
    pub fn new(message: impl Into<String>) -> Self {
        ParseError { file: None, field: None, line: None, message: message.into() }
    }
    /// Attach the field at fault.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    /// Attach the 1-based line number.
    pub fn line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }
    /// Shift the line number by `offset` lines (for paragraphs cut out of a larger file).
    pub fn offset_lines(mut self, offset: usize) -> Self {
        self.line = self.line.map(|l| l.saturating_add(offset));
        self
    }
    /// Attach the file name (keeps an existing one).
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        if self.file.is_none() {
            self.file = Some(file.into());
        }
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
            if let Some(line) = self.line {
                write!(f, "{line}:")?;
            }
            write!(f, " ")?;
        } else if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field {field}: ")?;
        }
        f.write_str(&self.message)
    }
}
