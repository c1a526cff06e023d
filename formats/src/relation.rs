//! Relation fields that name source packages: `Built-Using`, `Static-Built-Using`,
//! `X-Cargo-Built-Using` (`src (= version), ...`), plus the strict version and name checks the
//! other parsers of this crate share.
//!
//! [`debversion`] parses leniently (`1.0-`, `1:` and `a b` are accepted or mangled), so versions
//! read from files go through [`parse_version`], which enforces the dpkg syntax and builds the
//! [`Version`] without a regex (this is on the hot path: a buildinfo carries hundreds of them).

use debversion::Version;

use crate::error::ParseError;

/// A source package at an exact version, as named by a `*Built-Using` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// Source package name.
    pub name: String,
    /// Source version with any binNMU suffix (`+bN`) removed: `0.3.2-1+b1` becomes `0.3.2-1`.
    pub version: Version,
}

/// Parse a `*Built-Using` value: comma-separated `name (= version)`; binNMU suffixes normalised.
///
/// Empty items (a trailing comma) are skipped. Any other malformed item is an error whose
/// message quotes the item; the caller attaches field and line.
pub fn parse_built_using(value: &str) -> Result<Vec<SourceRef>, ParseError> {
    let mut out = Vec::new();
    for item in value.split(',') {
        let item = item.trim_ascii();
        if item.is_empty() {
            continue;
        }
        let rel = parse_exact_relation(item).map_err(ParseError::new)?;
        if rel.arch.is_some() {
            return Err(ParseError::new(format!(
                "`{item}`: an architecture qualifier is not allowed here"
            )));
        }
        out.push(SourceRef { name: rel.name.to_owned(), version: strip_binnmu(&rel.version) });
    }
    Ok(out)
}

/// Remove a binNMU suffix (`+bN` at the very end of the Debian revision) from a version.
///
/// For a native version (no revision) the suffix is removed from the upstream version instead
/// (`1.0+b2` becomes `1.0`). A version that would become empty is returned unchanged.
pub fn strip_binnmu(version: &Version) -> Version {
    let mut v = version.clone();
    match &mut v.debian_revision {
        Some(rev) => {
            if let Some(stripped) = without_binnmu(rev) {
                let len = stripped.len();
                rev.truncate(len);
            }
        }
        None => {
            if let Some(stripped) = without_binnmu(&v.upstream_version) {
                let len = stripped.len();
                v.upstream_version.truncate(len);
            }
        }
    }
    v
}

/// `s` without a trailing `+bN` (N one or more digits), if it has one and something is left.
fn without_binnmu(s: &str) -> Option<&str> {
    let pos = s.rfind("+b")?;
    let (head, tail) = s.split_at(pos);
    let digits = tail.get(2..)?;
    if head.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(head)
}

/// Split `name (version)` (as in `Source:` fields) into its parts; `name` alone gives `None`.
///
/// The name must be a valid package name ([`is_valid_package_name`]) and the version valid
/// ([`parse_version`]).
pub fn parse_name_version(value: &str) -> Result<(String, Option<Version>), ParseError> {
    let value = value.trim_ascii();
    let (name, version) = match value.find('(') {
        None => (value, None),
        Some(open) => {
            let (name, rest) = value.split_at(open);
            let Some(inner) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) else {
                return Err(ParseError::new(format!(
                    "`{value}`: expected `name` or `name (version)`"
                )));
            };
            let version = parse_version(inner.trim_ascii())?;
            (name.trim_ascii(), Some(version))
        }
    };
    if !is_valid_package_name(name) {
        return Err(ParseError::new(format!("invalid package name `{name}`")));
    }
    Ok((name.to_owned(), version))
}

/// Check a package name against Debian policy (5.6.1/5.6.7): at least two characters, lower-case
/// letters, digits and `+ - .`, starting with a letter or digit.
pub fn is_valid_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.'))
}

/// Check an architecture name or qualifier: one or more of `[a-z0-9-]`.
pub fn is_valid_arch(arch: &str) -> bool {
    !arch.is_empty() && arch.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parse a version strictly (dpkg syntax, deb-version(7)) into a [`Version`].
///
/// Rejects: an empty version, characters outside `[A-Za-z0-9.+~:-]` (so any whitespace), an
/// epoch that is not a decimal number fitting in `u32`, an empty upstream part, an empty Debian
/// revision (`1.0-`), a revision holding `:`. An upstream part that does not start with a digit
/// is accepted (dpkg only warns about it).
pub fn parse_version(text: &str) -> Result<Version, ParseError> {
    parse_version_str(text).map_err(|why| ParseError::new(format!("invalid version `{text}`: {why}")))
}

/// [`parse_version`] with a bare reason as error, for callers that phrase their own message.
pub(crate) fn parse_version_str(text: &str) -> Result<Version, &'static str> {
    let (epoch, upstream, revision) = split_version_str(text)?;
    Ok(Version {
        epoch,
        upstream_version: upstream.to_owned(),
        debian_revision: revision.map(str::to_owned),
    })
}

/// Check a version strictly (see [`parse_version`]) and split it into epoch, upstream version
/// and Debian revision, borrowed.
fn split_version_str(text: &str) -> Result<(Option<u32>, &str, Option<&str>), &'static str> {
    if text.is_empty() {
        return Err("empty");
    }
    // One pass: check the alphabet and find the first `:` and the last `-`.
    let mut colon = None;
    let mut dash = None;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b':' => {
                if colon.is_none() {
                    colon = Some(i);
                }
            }
            b'-' => dash = Some(i),
            b'.' | b'+' | b'~' => {}
            _ if b.is_ascii_alphanumeric() => {}
            _ => return Err("only letters, digits and `.+~:-` are allowed"),
        }
    }
    let (epoch, rest_start) = match colon {
        None => (None, 0),
        Some(colon) => {
            let e = text.get(..colon).unwrap_or_default();
            if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                return Err("the epoch (before `:`) must be a decimal number");
            }
            let epoch: u32 = e.parse().map_err(|_| "the epoch is too large")?;
            (Some(epoch), colon + 1)
        }
    };
    let (upstream, revision) = match dash {
        Some(dash) if dash >= rest_start => {
            let r = text.get(dash + 1..).unwrap_or_default();
            if r.is_empty() {
                return Err("empty Debian revision after `-`");
            }
            if r.contains(':') {
                return Err("the Debian revision cannot contain `:`");
            }
            (text.get(rest_start..dash).unwrap_or_default(), Some(r))
        }
        _ => (text.get(rest_start..).unwrap_or_default(), None),
    };
    if upstream.is_empty() {
        return Err("empty upstream version");
    }
    Ok((epoch, upstream, revision))
}

/// One `name[:arch] (= version)` relation, borrowed from the input.
pub(crate) struct ExactRelation<'a> {
    pub(crate) name: &'a str,
    pub(crate) arch: Option<&'a str>,
    pub(crate) version: Version,
}

/// Parse one exact relation `name[:arch] (= version)`; the error is a user-facing message.
///
/// A single-pass byte scanner handles the canonical spelling (this runs hundreds of times per
/// buildinfo); anything it does not take goes through [`parse_exact_relation_slow`], which
/// accepts a little more whitespace and explains what is wrong.
pub(crate) fn parse_exact_relation(item: &str) -> Result<ExactRelation<'_>, String> {
    if let Some((name, arch, version)) = scan_exact_relation(item)
        && let Ok(version) = parse_version_str(version)
    {
        return Ok(ExactRelation { name, arch, version });
    }
    parse_exact_relation_slow(item)
}

/// Installed-Build-Depends entries already parsed, by their text as written, each with the
/// value the caller made of it (see [`crate::Buildinfo::parse_with_deps`]).
///
/// Meant to live for a series of parses (one ingestion batch): the buildinfos of one suite list
/// the same few thousand `name (= version)` entries over and over, and each distinct text is
/// then parsed and checked once; every further occurrence costs one hash lookup. Only valid
/// entries are remembered, so errors are found and explained every time.
#[derive(Debug)]
pub struct DepMemo<T> {
    items: foldhash::HashMap<Box<str>, T>,
}

impl<T> Default for DepMemo<T> {
    fn default() -> Self {
        DepMemo { items: foldhash::HashMap::default() }
    }
}

impl<T: Clone> DepMemo<T> {
    /// An empty memo.
    pub fn new() -> Self {
        DepMemo::default()
    }

    /// Number of distinct entry texts remembered.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is remembered yet.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The value of one exact relation `name[:arch] (= version)`: remembered, or parsed and
    /// made by `make(name, arch, canonical version text)`. The error is a user-facing message.
    pub(crate) fn entry(
        &mut self,
        item: &str,
        make: &mut impl FnMut(&str, Option<&str>, &str) -> T,
    ) -> Result<T, String> {
        if let Some(v) = self.items.get(item) {
            return Ok(v.clone());
        }
        let rel = parse_exact_relation(item)?;
        let v = make(rel.name, rel.arch, &rel.version.to_string());
        self.items.insert(item.into(), v.clone());
        Ok(v)
    }
}

/// Byte cursor over ASCII input; never panics.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n')) {
            self.i += 1;
        }
    }
    /// The run of bytes matching `pred` from here.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(&pred) {
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or_default()
    }
}

/// The single-pass scanner for the canonical spelling `name[:arch] (= version)`: name and
/// architecture checked, the version returned as written, unchecked. `None` for anything else.
fn scan_exact_relation(item: &str) -> Option<(&str, Option<&str>, &str)> {
    let mut c = Cursor { s: item, i: 0 };
    let name = c.take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.'));
    if name.len() < 2 || !name.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    let arch = if c.eat(b':') {
        let a = c.take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if a.is_empty() {
            return None;
        }
        Some(a)
    } else {
        None
    };
    c.skip_ws();
    if !c.eat(b'(') {
        return None;
    }
    c.skip_ws();
    if !c.eat(b'=') || matches!(c.peek(), Some(b'<' | b'>' | b'=')) {
        return None;
    }
    c.skip_ws();
    let version = c.take_while(|b| !matches!(b, b' ' | b'\t' | b'\n' | b')'));
    c.skip_ws();
    if !c.eat(b')') || c.i != item.len() {
        return None;
    }
    Some((name, arch, version))
}

/// The lenient, explaining relation parser (see [`parse_exact_relation`]).
fn parse_exact_relation_slow(item: &str) -> Result<ExactRelation<'_>, String> {
    let Some(open) = item.find('(') else {
        return Err(format!("`{item}`: missing version constraint `(= VERSION)`"));
    };
    let (head, rest) = item.split_at(open);
    let head = head.trim_ascii();
    let (name, arch) = match head.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (head, None),
    };
    if !is_valid_package_name(name) {
        return Err(format!("`{item}`: invalid package name `{name}`"));
    }
    if let Some(a) = arch
        && !is_valid_arch(a)
    {
        return Err(format!("`{item}`: invalid architecture qualifier `{a}`"));
    }
    let Some(inner) = rest.trim_ascii_end().strip_suffix(')') else {
        return Err(format!("`{item}`: missing closing parenthesis"));
    };
    let inner = inner.get(1..).unwrap_or("").trim_ascii_start();
    let op_len = inner.bytes().take_while(|b| matches!(b, b'<' | b'>' | b'=')).count();
    let (op, version) = inner.split_at(op_len);
    if op != "=" {
        let shown = if op.is_empty() { "nothing" } else { op };
        return Err(format!("`{item}`: the operator must be `=`, found {shown}"));
    }
    let version = version.trim_ascii();
    let version = parse_version_str(version)
        .map_err(|why| format!("`{item}`: invalid version `{version}`: {why}"))?;
    Ok(ExactRelation { name, arch, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        parse_version(s).unwrap()
    }

    #[test]
    fn strict_versions() {
        for ok in ["1.0", "1:1.0-1", "0.8-1+b1", "1.0~rc1", "2:1.2-3-4", "a1.0", "1.1yubos", "1:2:3"] {
            let parsed = v(ok);
            assert_eq!(parsed.to_string(), ok);
            assert_eq!(parsed, ok.parse::<Version>().unwrap(), "{ok}");
        }
        for bad in ["", "1.0-", "1:", ":1.0", "a:1.0", "1.0 1", "1.0\n", "1.0-1:2", "1.0_1", "-1", "99999999999:1"] {
            assert!(parse_version(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn binnmu_stripping() {
        assert_eq!(strip_binnmu(&v("0.3.2-1+b1")).to_string(), "0.3.2-1");
        assert_eq!(strip_binnmu(&v("1:0.3.2-1+b12")).to_string(), "1:0.3.2-1");
        assert_eq!(strip_binnmu(&v("1.0+b2")).to_string(), "1.0");
        assert_eq!(strip_binnmu(&v("1.0-1+bx")).to_string(), "1.0-1+bx");
        assert_eq!(strip_binnmu(&v("1.0-1+b")).to_string(), "1.0-1+b");
        assert_eq!(strip_binnmu(&v("1.0-+b1")).to_string(), "1.0-+b1");
        assert_eq!(strip_binnmu(&v("1.0-1+deb12u1")).to_string(), "1.0-1+deb12u1");
    }

    #[test]
    fn built_using() {
        let refs = parse_built_using("golang-1.19 (= 1.19.6-2), foo (=1.0-1+b3),\n bar (= 1:2) ,").unwrap();
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[1].name, "foo");
        assert_eq!(refs[1].version.to_string(), "1.0-1");
        assert_eq!(refs[2].version.to_string(), "1:2");
        for bad in ["foo", "foo (= 1.0", "foo (>= 1.0)", "Foo (= 1)", "foo:amd64 (= 1)", "foo (= )", "foo (= 1 2)"] {
            assert!(parse_built_using(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn name_version() {
        assert_eq!(parse_name_version("0xffff (0.8-1)").unwrap(), ("0xffff".into(), Some(v("0.8-1"))));
        assert_eq!(parse_name_version(" bash ").unwrap(), ("bash".into(), None));
        for bad in ["", "Bash", "bash (", "bash (1.0", "bash ()", "bash (1.0) x", "a"] {
            assert!(parse_name_version(bad).is_err(), "{bad:?} accepted");
        }
    }
}
