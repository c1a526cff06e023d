//! The in-toto / securesystemslib encodings debcover's attestations use: canonical JSON (what
//! in-toto signs) and ed25519 public keys with their key ids, as the stock in-toto tools write
//! them into layouts.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Canonical JSON as securesystemslib defines it: object keys sorted, no insignificant
/// whitespace, strings escaping only `\` and `"`, integers only.
pub fn canonical(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(v, &mut out);
    out
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        Value::Object(o) => {
            out.push(b'{');
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                if let Some(x) = o.get(k) {
                    write_canonical(x, out);
                }
            }
            out.push(b'}');
        }
    }
}

/// An ed25519 public key (64 hex digits) as securesystemslib writes it into a layout, without
/// its `keyid`.
pub fn public_key_dict(public_hex: &str) -> Value {
    json!({
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyid_hash_algorithms": ["sha256", "sha512"],
        "keyval": {"public": public_hex},
    })
}

/// The key id of an ed25519 public key: SHA-256 of the canonical JSON of [`public_key_dict`].
pub fn keyid(public_hex: &str) -> String {
    hex::encode(Sha256::digest(canonical(&public_key_dict(public_hex))))
}

/// The 32 bytes of an OpenSSH `ssh-ed25519 BASE64 [comment]` public key, if it is one.
pub fn openssh_ed25519(text: &str) -> Option<[u8; 32]> {
    let mut parts = text.split_whitespace();
    if parts.next()? != "ssh-ed25519" {
        return None;
    }
    let blob = base64_decode(parts.next()?)?;
    let (kind, rest) = ssh_string(&blob)?;
    if kind != b"ssh-ed25519" {
        return None;
    }
    let (key, rest) = ssh_string(rest)?;
    if !rest.is_empty() {
        return None;
    }
    key.try_into().ok()
}

fn ssh_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let body = b.get(4..4 + len)?;
    Some((body, &b[4 + len..]))
}

/// Standard base64 with padding (the only form OpenSSH writes).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Some(out)
}

/// The key id securesystemslib gives an ed25519 key read from a SubjectPublicKeyInfo PEM file
/// (`in-toto-verify --verification-keys FILE`): SHA-256 of the canonical JSON of
/// `{keytype, scheme, keyval}`, without `keyid_hash_algorithms`. A layout signature must carry
/// this id to be found by that tool.
pub fn verification_keyid(public_hex: &str) -> String {
    let v = json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": public_hex}});
    hex::encode(Sha256::digest(canonical(&v)))
}

/// DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// An ed25519 public key as SubjectPublicKeyInfo PEM (what openssl and in-toto read).
pub fn public_pem(key: &[u8; 32]) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(key);
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", base64_encode(&der))
}

/// The 32 bytes of an ed25519 SubjectPublicKeyInfo PEM public key, if it is one.
pub fn pem_ed25519(text: &str) -> Option<[u8; 32]> {
    let body = text.trim().strip_prefix("-----BEGIN PUBLIC KEY-----")?.strip_suffix("-----END PUBLIC KEY-----")?;
    let b64: String = body.split_whitespace().collect();
    let der = base64_decode(&b64)?;
    der.strip_prefix(ED25519_SPKI_PREFIX.as_slice())?.try_into().ok()
}

/// An ed25519 public key in OpenSSH form: `ssh-ed25519 BASE64 COMMENT`.
pub fn openssh_public(key: &[u8; 32], comment: &str) -> String {
    let mut blob = Vec::with_capacity(51);
    for part in [b"ssh-ed25519".as_slice(), key.as_slice()] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!("ssh-ed25519 {} {comment}", base64_encode(&blob)).trim_end().to_owned()
}

/// First line of a registration statement; the domain separator keeps a node's registration
/// signature from ever being valid as anything else (an in-toto link signs JSON, never this).
pub const REGISTER_DOMAIN: &str = "debcover-register-v1";

/// The statement a node signs with its ed25519 key when it registers, proving it holds the key
/// it declares: the domain separator, the SHA-256 (hex) of the bearer token it registers with
/// (the credential names the operator and node on the coordinator), the public key (64 hex
/// digits) and the unix time of signing, one per line.
pub fn registration_statement(token_sha256: &str, public_hex: &str, unix_time: i64) -> Vec<u8> {
    format!("{REGISTER_DOMAIN}\ncredential-sha256 {token_sha256}\npublic-key {public_hex}\ntime {unix_time}\n").into_bytes()
}

/// Standard base64 with padding.
fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form() {
        let v = json!({"b": [1, true, null], "a": "x\"y\\z", "c": {"z": 1, "a": "é"}});
        assert_eq!(String::from_utf8(canonical(&v)).unwrap(), r#"{"a":"x\"y\\z","b":[1,true,null],"c":{"a":"é","z":1}}"#);
    }

    #[test]
    fn openssh_keys() {
        // ssh-keygen -t ed25519 output form; the key bytes are 32 zero-padded test bytes.
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZzaHR0cHM6Ly9leGFtcGxlLm9yZy9rZXkwMDAwMDAw comment";
        let k = openssh_ed25519(key).unwrap();
        assert_eq!(&k[..8], b"fshttps:");
        assert!(openssh_ed25519("ssh-rsa AAAA").is_none());
        assert!(openssh_ed25519("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample").is_none());
        assert!(openssh_ed25519("ssh-ed25519 !!!!").is_none());
        let round = openssh_public(&k, "c");
        assert_eq!(openssh_ed25519(&round), Some(k));
    }

    #[test]
    fn pem_round_trip() {
        let k = [9u8; 32];
        let pem = public_pem(&k);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"), "{pem}");
        assert_eq!(pem_ed25519(&pem), Some(k));
        assert!(pem_ed25519("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_none());
        assert_ne!(verification_keyid(&hex::encode(k)), keyid(&hex::encode(k)));
    }
}
