//! Text helpers: RFC 2822 dates, fake-but-well-formed OpenPGP clearsignatures, hashes.

use sha2::{Digest, Sha256};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Formats a Unix timestamp as an RFC 2822 date in UTC, as dpkg does (`Sun, 25 Jul 2021 18:48:36 +0000`).
pub fn rfc2822(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// SHA-256 over the parts, separated by NUL bytes (domain-separated deterministic bytes).
pub fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0u8]);
    }
    h.finalize().into()
}

/// Deterministic pseudo-random hex strings standing in for the md5, sha1 and sha256 of a file.
pub fn fake_hashes(seed: u64, file: &str) -> (String, String, String) {
    let s = seed.to_le_bytes();
    let md5 = digest(&[&s, b"md5", file.as_bytes()]);
    let sha1 = digest(&[&s, b"sha1", file.as_bytes()]);
    let sha256 = digest(&[&s, b"sha256", file.as_bytes()]);
    (hex::encode(&md5[..16]), hex::encode(&sha1[..20]), hex::encode(sha256))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// OpenPGP ASCII-armour checksum (RFC 4880 section 6.1).
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

/// Wraps `payload` in an OpenPGP clearsignature whose signature block is syntactically well
/// formed (a v4 RSA/SHA512 signature packet header, 4096-bit-sized body, valid CRC24) but
/// cryptographically meaningless. Lines starting with `-` are dash-escaped.
pub fn clearsign(payload: &str, seed: u64, key: &str) -> String {
    let mut out = String::with_capacity(payload.len() + 1024);
    out.push_str("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n");
    for line in payload.lines() {
        if line.starts_with('-') {
            out.push_str("- ");
        }
        out.push_str(line);
        out.push('\n');
    }
    // Old-format signature packet (tag 2), two-byte length 563, then v4, sig type 0x01
    // (canonical text), RSA, SHA512, and filler standing in for subpackets and MPIs.
    let mut sig = vec![0x89, 0x02, 0x33, 0x04, 0x01, 0x01, 0x0a, 0x00, 0x1d];
    let mut counter = 0u32;
    while sig.len() < 566 {
        let block = digest(&[&seed.to_le_bytes(), b"sig", key.as_bytes(), &counter.to_le_bytes()]);
        sig.extend_from_slice(&block);
        counter += 1;
    }
    sig.truncate(566);
    let b64 = base64(&sig);
    out.push_str("\n-----BEGIN PGP SIGNATURE-----\n\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        out.push('\n');
    }
    let crc = crc24(&sig);
    out.push('=');
    out.push_str(&base64(&[(crc >> 16) as u8, (crc >> 8) as u8, crc as u8]));
    out.push_str("\n-----END PGP SIGNATURE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_real_buildinfo() {
        // From package-rebuilder__bash_5.1-3+b1_amd64.buildinfo: SOURCE_DATE_EPOCH 1627238600.
        assert_eq!(rfc2822(1_627_238_600), "Sun, 25 Jul 2021 18:43:20 +0000");
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    }

    #[test]
    fn armour_checksum_and_base64() {
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(crc24(b""), 0xB704CE);
    }
}
