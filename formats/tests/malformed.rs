//! Malformed variants derived programmatically from the real files: each must fail with an
//! error whose Display names the field (when there is one) and the right line of the input
//! as given (armour lines counted).

use crate::common;

use common::{line_count, line_of, read, read_str};
use debcover_formats::{Buildinfo, ParseError};

const SIGNED: &str = "buildinfo/debrebuild__0xffff_0.8-1+b1_amd64.buildinfo";
const PLAIN: &str = "buildinfo/devscripts__sphinx_1.7.2-1_amd64.buildinfo";

fn fails(input: &[u8]) -> ParseError {
    match Buildinfo::parse(input) {
        Ok(b) => panic!("accepted: {b:?}"),
        Err(e) => e,
    }
}

/// Check the error's line and field, and that Display shows both.
fn check(err: &ParseError, field: Option<&str>, line: Option<usize>, message_part: &str) {
    let shown = err.to_string();
    assert_eq!(err.field.as_deref(), field, "{shown}");
    assert_eq!(err.line, line, "{shown}");
    if let Some(f) = field {
        assert!(shown.contains(&format!("field {f}:")), "{shown}");
    }
    if let Some(l) = line {
        assert!(shown.starts_with(&format!("line {l}: ")), "{shown}");
    }
    assert!(shown.contains(message_part), "{shown:?} lacks {message_part:?}");
}

/// Replace the first occurrence of `from` (which must exist).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in text");
    text.replacen(from, to, 1)
}

#[test]
fn truncated_armour() {
    let text = read_str(SIGNED);
    // Cut before the signature block: no BEGIN SIGNATURE line at all.
    let cut = &text[..text.find("-----BEGIN PGP SIGNATURE-----").unwrap()];
    check(&fails(cut.as_bytes()), None, Some(line_count(cut)), "no `-----BEGIN PGP SIGNATURE-----`");
    // Cut inside the signature block: no END line.
    let cut = &text[..text.find("-----END PGP SIGNATURE-----").unwrap()];
    check(&fails(cut.as_bytes()), None, Some(line_count(cut)), "no `-----END PGP SIGNATURE-----`");
    // Cut inside the armour header.
    let cut = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n";
    check(&fails(cut.as_bytes()), None, Some(2), "truncated");
}

#[test]
fn corrupt_ibd_entry_names_field_and_original_line() {
    for path in [SIGNED, PLAIN] {
        let text = read_str(path);
        let entry = if path == SIGNED { " bash (= 5.0-4)," } else { " bash (= 4.4.18-2)," };
        let line = line_of(&text, entry);
        for bad in [" bash (= 5.0-4,", " bash (>= 5.0-4),", " bash (= ),", " Bash (= 5.0-4),", " bash:AMD64 (= 1),", " bash (= 1.0 2),", " bash,"] {
            let broken = edit(&text, entry, bad);
            let err = fails(broken.as_bytes());
            check(&err, Some("Installed-Build-Depends"), Some(line), "");
        }
        let err = fails(edit(&text, entry, " bash (>= 5.0-4),").as_bytes());
        assert!(err.message.contains("operator must be `=`"), "{err}");
        let err = fails(edit(&text, entry, " bash (= 5.0-4,").as_bytes());
        assert!(err.message.contains("bash (= 5.0-4"), "{err}");
    }
}

#[test]
fn missing_source() {
    for path in [SIGNED, PLAIN] {
        let text = read_str(path);
        let source_line = text.lines().find(|l| l.starts_with("Source:")).unwrap();
        let broken = edit(&text, &format!("{source_line}\n"), "");
        check(&fails(broken.as_bytes()), Some("Source"), None, "missing required field");
    }
    let text = read_str(PLAIN);
    let broken = edit(&text, "Installed-Build-Depends:", "Installed-Build-Dependencies:");
    check(&fails(broken.as_bytes()), Some("Installed-Build-Depends"), None, "missing required field");
}

#[test]
fn duplicate_field() {
    for path in [SIGNED, PLAIN] {
        let text = read_str(path);
        let broken = edit(&text, "Build-Origin: Debian\n", "Build-Origin: Debian\nBuild-Origin: Debian\n");
        let line = line_of(&text, "Build-Origin: Debian") + 1;
        check(&fails(broken.as_bytes()), Some("Build-Origin"), Some(line), "duplicate field");
        // Case-insensitive, and for unknown fields too.
        let broken = edit(&text, "Build-Origin: Debian\n", "Build-Origin: Debian\nX-Foo: 1\nx-foo: 2\n");
        check(&fails(broken.as_bytes()), Some("x-foo"), Some(line + 1), "duplicate field");
        let broken = edit(&text, "Build-Origin: Debian\n", "Build-Origin: Debian\nVERSION: 1\n");
        check(&fails(broken.as_bytes()), Some("VERSION"), Some(line), "duplicate field");
    }
}

#[test]
fn bad_sha256() {
    let text = read_str(SIGNED);
    let good = "7076ffc1bd49e072091988677430542e05519e7ad55bd96d188ecef41a1d7d27";
    let line = line_of(&text, good);
    let bad_hex = good.replacen('7', "g", 1);
    check(&fails(edit(&text, good, &bad_hex).as_bytes()), Some("Checksums-Sha256"), Some(line), "64-digit hex");
    check(&fails(edit(&text, good, &good[1..]).as_bytes()), Some("Checksums-Sha256"), Some(line), "64-digit hex");
    // A size that disagrees with Checksums-Md5 for the same file.
    let broken = edit(&text, &format!("{good} 58844"), &format!("{good} 58845"));
    check(&fails(broken.as_bytes()), Some("Checksums-Sha256"), Some(line), "disagrees");
    // Upper-case hex is fine and lower-cased.
    let b = Buildinfo::parse(edit(&text, good, &good.to_uppercase()).as_bytes()).unwrap();
    assert!(b.checksums.iter().any(|f| f.sha256.as_deref() == Some(good)));
}

#[test]
fn non_utf8_byte() {
    for path in [SIGNED, PLAIN] {
        let mut bytes = read(path);
        let text = read_str(path);
        let line = line_of(&text, "Build-Date:");
        let pos = text.find("Build-Date:").unwrap() + 13;
        bytes[pos] = 0xff;
        check(&fails(&bytes), None, Some(line), "UTF-8");
    }
}

#[test]
fn text_after_signature() {
    let text = read_str(SIGNED);
    let broken = format!("{text}\n  \nsurprise\n");
    check(&fails(broken.as_bytes()), None, Some(line_count(&text) + 3), "after `-----END PGP SIGNATURE-----`");
    // Whitespace after the END line is fine.
    assert!(Buildinfo::parse(format!("{text}\n \n\t\n").as_bytes()).is_ok());
}

#[test]
fn two_paragraphs() {
    for path in [SIGNED, PLAIN] {
        let text = read_str(path);
        let broken = edit(&text, "\nBuild-Origin:", "\n\nBuild-Origin:");
        let line = line_of(&text, "Build-Origin:") + 1;
        check(&fails(broken.as_bytes()), None, Some(line), "exactly one paragraph");
    }
}

#[test]
fn syntax_error_line_in_signed_payload() {
    let text = read_str(SIGNED);
    // A continuation line without a field in front: after `Format: 1.0` insert a bogus line.
    let broken = edit(&text, "Format: 1.0\n", "Format: 1.0\nno colon here\n");
    let line = line_of(&text, "Format: 1.0") + 1;
    check(&fails(broken.as_bytes()), None, Some(line), "syntax error");
}

#[test]
fn bad_versions_and_names_elsewhere() {
    let text = read_str(SIGNED);
    let line = line_of(&text, "Version: 0.8-1+b1");
    for bad in ["Version: 0.8-1+b1 x", "Version: 0.8-", "Version: ", "Version: 1:"] {
        let err = fails(edit(&text, "Version: 0.8-1+b1", bad).as_bytes());
        check(&err, Some("Version"), Some(line), "invalid version");
    }
    let line = line_of(&text, "Source: 0xffff (0.8-1)");
    for bad in ["Source: 0xffff (0.8-1", "Source: 0XFFFF (0.8-1)", "Source: 0xffff (0.8-)"] {
        check(&fails(edit(&text, "Source: 0xffff (0.8-1)", bad).as_bytes()), Some("Source"), Some(line), "");
    }
    let line = line_of(&text, "Architecture: amd64");
    check(&fails(edit(&text, "Architecture: amd64", "Architecture: AMD64").as_bytes()), Some("Architecture"), Some(line), "");
}

#[test]
fn dash_escaping_is_undone_and_enforced() {
    let text = read_str(SIGNED);
    // A payload line starting with `-` must be escaped.
    let broken = edit(&text, "Format: 1.0\n", "Format: 1.0\n-Bogus: x\n");
    let line = line_of(&text, "Format: 1.0") + 1;
    check(&fails(broken.as_bytes()), None, Some(line), "dash-escaped");
    // Escaped field lines are unescaped.
    let escaped = edit(&text, "Format: 1.0\n", "- Format: 1.0\n");
    assert_eq!(Buildinfo::parse(escaped.as_bytes()).unwrap(), Buildinfo::parse(text.as_bytes()).unwrap());
}

#[test]
fn not_a_buildinfo() {
    check(&fails(b""), None, None, "empty");
    check(&fails(b"\n\n  \n"), None, None, "empty");
    check(&fails(b"-----BEGIN PGP MESSAGE-----\n"), None, Some(1), "not a clearsigned message");
    let big = vec![b'a'; debcover_formats::buildinfo::MAX_BUILDINFO_BYTES + 1];
    check(&fails(&big), None, None, "more than");
}
