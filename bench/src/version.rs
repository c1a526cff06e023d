//! Debian version comparison (dpkg's algorithm) and derivation of plausible older versions.

use std::cmp::Ordering;

/// Splits `[epoch:]upstream[-revision]`.
pub fn split(v: &str) -> (Option<&str>, &str, Option<&str>) {
    let (epoch, rest) = match v.find(':') {
        Some(i) if v[..i].bytes().all(|b| b.is_ascii_digit()) && i > 0 => (Some(&v[..i]), &v[i + 1..]),
        _ => (None, v),
    };
    match rest.rfind('-') {
        Some(i) => (epoch, &rest[..i], Some(&rest[i + 1..])),
        None => (epoch, rest, None),
    }
}

/// The upstream part of a version (no epoch, no revision), as used in build paths.
pub fn upstream(v: &str) -> &str {
    split(v).1
}

/// The version without its epoch, as used in file names.
pub fn without_epoch(v: &str) -> &str {
    match split(v).0 {
        Some(e) => &v[e.len() + 1..],
        None => v,
    }
}

fn order(c: u8) -> i32 {
    match c {
        b'~' => -1,
        c if c.is_ascii_digit() => 0,
        c if c.is_ascii_alphabetic() => c as i32,
        c => c as i32 + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = if i < a.len() { order(a[i]) } else { 0 };
            let bc = if j < b.len() { order(b[j]) } else { 0 };
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = a[i] as i32 - b[j] as i32;
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

/// Compares two Debian versions the way dpkg does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    let ea: u64 = ea.and_then(|e| e.parse().ok()).unwrap_or(0);
    let eb: u64 = eb.and_then(|e| e.parse().ok()).unwrap_or(0);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra.unwrap_or(""), rb.unwrap_or("")))
}

/// Whether `v` is a syntactically valid Debian version (deb-version(7)).
pub fn is_valid(v: &str) -> bool {
    let (epoch, up, rev) = split(v);
    if let Some(e) = epoch
        && (e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit())) {
            return false;
        }
    let up_ok = up.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && up.bytes().all(|b| b.is_ascii_alphanumeric() || b".+~-:".contains(&b))
        && (epoch.is_some() || !up.contains(':'));
    let rev_ok = rev.is_none_or(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric() || b".+~".contains(&b)));
    up_ok && rev_ok
}

fn join(epoch: Option<&str>, up: &str, rev: Option<&str>) -> String {
    let mut s = String::with_capacity(up.len() + 12);
    if let Some(e) = epoch {
        s.push_str(e);
        s.push(':');
    }
    s.push_str(up);
    if let Some(r) = rev {
        s.push('-');
        s.push_str(r);
    }
    s
}

/// Decrements the last non-zero component of the leading dotted-numeric prefix of `up`
/// (`2.36.1` -> `2.36.0`, `1.10` -> `1.9`, `1.0` -> `0.9`).
fn older_upstream(up: &str) -> Option<String> {
    let prefix_len = up.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    let prefix = up[..prefix_len].trim_end_matches('.');
    let rest = &up[prefix.len()..];
    let mut parts: Vec<u64> = prefix.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let idx = parts.iter().rposition(|&p| p > 0)?;
    parts[idx] -= 1;
    let mut out: Vec<String> = parts[..=idx].iter().map(u64::to_string).collect();
    // Components after the decremented one become 9 (1.0 -> 0.9), keeping the shape.
    out.extend(parts[idx + 1..].iter().map(|_| "9".to_string()));
    Some(out.join(".") + rest)
}

/// A plausible version strictly lower than `v`, still a valid Debian version: drops a binNMU
/// or stable-update suffix, else decrements the Debian revision, else the upstream version
/// (resetting the revision to 1).
pub fn older(v: &str) -> String {
    let (epoch, up, rev) = split(v);
    let mut candidates: Vec<String> = Vec::with_capacity(3);
    if let Some(r) = rev {
        let lead_len = r.bytes().take_while(u8::is_ascii_digit).count();
        let lead: u64 = r[..lead_len].parse().unwrap_or(0);
        if lead_len > 0 && lead_len < r.len() {
            // 3+b1 -> 3, 2+deb12u1 -> 2, 1.1 -> 1, 0.8 -> 0
            candidates.push(join(epoch, up, Some(&r[..lead_len])));
        } else if lead > 1 {
            candidates.push(join(epoch, up, Some(&(lead - 1).to_string())));
        }
        if let Some(u) = older_upstream(up) {
            candidates.push(join(epoch, &u, Some("1")));
        }
        candidates.push(join(epoch, &format!("{up}~pre1"), Some(r)));
    } else {
        if let Some(u) = older_upstream(up) {
            candidates.push(join(epoch, &u, None));
        }
        candidates.push(join(epoch, &format!("{up}~pre1"), None));
    }
    candidates
        .into_iter()
        .find(|c| is_valid(c) && compare(c, v) == Ordering::Less)
        .unwrap_or_else(|| format!("{v}~"))
}

/// `older` applied `n` times.
pub fn older_n(v: &str, n: u32) -> String {
    let mut s = v.to_string();
    for _ in 0..n {
        s = older(&s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_ordering() {
        let chain = ["1.0~rc1-1", "1.0", "1.0-1", "1.0-1+b1", "1.0-1+b2", "1.0-1+b10", "1.0-1+deb12u1", "1.0-1.1", "5.1-2+b3", "1:0.9-1"];
        for w in chain.windows(2) {
            assert_eq!(compare(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn older_is_lower_and_valid() {
        for v in ["2.36-9+deb12u4", "1:0.7.0+dfsg-1", "0.3.0-1", "12.4+deb12u15", "0.0~git20211218.b94a6e3-1", "20", "1.0-1", "2:1.19~1", "0.2.2-1+b4", "5.1-0.8"] {
            let o = older(v);
            assert!(is_valid(&o), "{o}");
            assert_eq!(compare(&o, v), Ordering::Less, "{o} < {v}");
        }
        assert_eq!(older("0.2.2-1+b4"), "0.2.2-1");
        assert_eq!(older("0.3.0-3"), "0.3.0-2");
        assert_eq!(older("1.10-1"), "1.9-1");
    }
}
