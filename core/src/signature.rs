//! OpenPGP signatures of clearsigned buildinfos: who signed a build's record, checked against
//! the keyrings the coordinator is configured with, and the policy that decides what is
//! accepted. rPGP (`pgp`, pure Rust): no `gpg` process, no agent, no home directory to guard.
//!
//! A signature is checked over the text as signed (RFC 9580 cleartext framework). What it
//! proves is kept with the build (`signer`): the key's fingerprint and first user id.

use std::fmt;
use std::path::Path;

use pgp::composed::{CleartextSignedMessage, PublicOrSecret, SignedPublicKey};
use pgp::types::KeyDetails;

/// Largest keyring file read.
pub const MAX_KEYRING_BYTES: u64 = 64 * 1024 * 1024;

/// What the signature of one buildinfo says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Not clearsigned.
    Unsigned,
    /// Signed by a key of the keyrings, and the signature verifies.
    By {
        /// The signing key's (primary) fingerprint, upper-case hex.
        fingerprint: String,
        /// Its first user id.
        user_id: String,
    },
    /// Signed by a key not in the keyrings (its issuer, as the signature names it).
    UnknownSigner {
        /// Issuer fingerprint or key id, upper-case hex.
        issuer: String,
    },
    /// Signed, but the signature block cannot be read (its algorithm is not supported, or it
    /// is malformed).
    Unreadable {
        /// Why.
        reason: String,
    },
    /// A key of the keyrings made no valid signature over this text: altered, or forged.
    Bad {
        /// What failed.
        reason: String,
    },
}

impl Check {
    /// The `signer` recorded with the build: `FINGERPRINT (user id)` when verified.
    pub fn signer(&self) -> Option<String> {
        match self {
            Check::By { fingerprint, user_id } => Some(format!("{fingerprint} ({user_id})")),
            _ => None,
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Unsigned => f.write_str("not signed"),
            Check::By { fingerprint, user_id } => write!(f, "signed by {fingerprint} ({user_id})"),
            Check::UnknownSigner { issuer } => write!(f, "signed by {issuer}, a key in none of the configured keyrings"),
            Check::Unreadable { reason } => write!(f, "its signature cannot be read: {reason}"),
            Check::Bad { reason } => write!(f, "its signature does not verify: {reason}"),
        }
    }
}

/// Which buildinfos are accepted, by their signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Every one (the signer is recorded when known); a bad signature is still refused.
    #[default]
    Any,
    /// Only signed ones (by any key; a known key's signature must verify).
    Signed,
    /// Only ones whose signature verifies with a key of the keyrings.
    Known,
}

impl Policy {
    /// The name `--signature-policy` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Any => "any",
            Policy::Signed => "signed",
            Policy::Known => "known",
        }
    }

    /// Accept a buildinfo whose signature check says `c`? `Err` says why not.
    pub fn judge(self, c: &Check) -> Result<(), String> {
        match (self, c) {
            (_, Check::Bad { .. }) => Err(c.to_string()),
            (Policy::Any, _) | (_, Check::By { .. }) => Ok(()),
            (Policy::Signed, Check::UnknownSigner { .. } | Check::Unreadable { .. }) => Ok(()),
            (Policy::Signed, Check::Unsigned) => Err("not signed (the signature policy is `signed`)".into()),
            (Policy::Known, _) => Err(format!("{c} (the signature policy is `known`: only keys of the configured keyrings)")),
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "any" => Ok(Policy::Any),
            "signed" => Ok(Policy::Signed),
            "known" => Ok(Policy::Known),
            other => Err(format!("signature policy {other:?}: use any, signed or known")),
        }
    }
}

/// The public keys buildinfo signatures are checked against.
#[derive(Debug, Default, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// Upper-case hex.
fn upper(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

impl Keyring {
    /// No keys: every signature is by an unknown signer.
    pub fn empty() -> Self {
        Keyring::default()
    }

    /// Read every public key of these files (armored or binary keyrings, as `gpg --export`
    /// and Debian's keyring packages write them). The error names the file.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Self, String> {
        let mut keys = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let bytes = read_capped(path)?;
            let (found, _) = PublicOrSecret::from_reader_many(&bytes[..])
                .map_err(|e| format!("keyring {}: not OpenPGP key material: {e}", path.display()))?;
            let before = keys.len();
            for k in found {
                match k {
                    Ok(PublicOrSecret::Public(k)) => keys.push(k),
                    Ok(PublicOrSecret::Secret(_)) => {
                        return Err(format!("keyring {}: holds a secret key; give public keys only", path.display()));
                    }
                    Err(e) => return Err(format!("keyring {}: {e}", path.display())),
                }
            }
            if keys.len() == before {
                return Err(format!("keyring {}: no public key in it", path.display()));
            }
        }
        Ok(Keyring { keys })
    }

    /// How many primary keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Check the signature of a buildinfo's raw bytes.
    pub fn check(&self, raw: &[u8]) -> Check {
        let Some(start) = find(raw, b"-----BEGIN PGP SIGNED MESSAGE-----") else {
            return Check::Unsigned;
        };
        let Ok(text) = std::str::from_utf8(&raw[start..]) else {
            return Check::Unreadable { reason: "the signed text is not UTF-8".into() };
        };
        // First the signature block alone (a few hundred bytes): when it names no key of ours,
        // that is the answer, without parsing and normalising the whole text (the common case
        // of a keyring that knows some signers; measured in BENCHMARKS.md).
        match self.named_issuers(text) {
            Err(reason) => return Check::Unreadable { reason },
            Ok((issuer, false)) => return Check::UnknownSigner { issuer },
            Ok((_, true)) => {}
        }
        let msg = match CleartextSignedMessage::from_string(text) {
            Ok((m, _)) => m,
            Err(e) => return Check::Unreadable { reason: e.to_string() },
        };
        // The normalised text (a copy of the whole file) only when a key of ours is named.
        let mut signed: Option<String> = None;
        let mut issuer = None;
        for sig in msg.signatures() {
            let fingerprints: Vec<Vec<u8>> = sig.issuer_fingerprint().iter().map(|f| f.as_bytes().to_vec()).collect();
            let ids: Vec<Vec<u8>> = sig.issuer_key_id().iter().map(|k| k.as_ref().to_vec()).collect();
            issuer.get_or_insert_with(|| {
                fingerprints.first().or(ids.first()).map(|b| upper(b)).unwrap_or_else(|| "an unnamed key".into())
            });
            for key in &self.keys {
                let names = |fp: &[u8], id: &[u8]| {
                    fingerprints.iter().any(|f| f == fp) || ids.iter().any(|i| i == id)
                };
                let primary = &key.primary_key;
                let primary_named = names(primary.fingerprint().as_bytes(), primary.legacy_key_id().as_ref());
                let subkey = key
                    .public_subkeys
                    .iter()
                    .find(|s| names(s.key.fingerprint().as_bytes(), s.key.legacy_key_id().as_ref()));
                if !primary_named && subkey.is_none() {
                    continue;
                }
                let text = signed.get_or_insert_with(|| msg.signed_text());
                let verified = match subkey {
                    _ if primary_named => sig.verify(key, text.as_bytes()),
                    Some(sub) => sig.verify(sub, text.as_bytes()),
                    None => continue,
                };
                return match verified {
                    Ok(()) => Check::By {
                        fingerprint: upper(primary.fingerprint().as_bytes()),
                        user_id: key
                            .details
                            .users
                            .first()
                            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
                            .unwrap_or_default(),
                    },
                    Err(e) => Check::Bad { reason: format!("key {}: {e}", upper(primary.fingerprint().as_bytes())) },
                };
            }
        }
        match issuer {
            Some(issuer) => Check::UnknownSigner { issuer },
            None => Check::Unreadable { reason: "no signature in the signature block".into() },
        }
    }
}

impl Keyring {
    /// The issuers the clearsigned `text`'s signature block names: the first (for messages)
    /// and whether any is a key of ours; why not, when the block cannot be read.
    fn named_issuers(&self, text: &str) -> Result<(String, bool), String> {
        use pgp::composed::{Deserializable, DetachedSignature};
        let begin = text.find("-----BEGIN PGP SIGNATURE-----").ok_or("no signature block")?;
        let (found, _) = DetachedSignature::from_string_many(&text[begin..]).map_err(|e| e.to_string())?;
        let mut first = None;
        let mut ours = false;
        for sig in found {
            let sig = sig.map_err(|e| e.to_string())?.signature;
            let fingerprints: Vec<&[u8]> = sig.issuer_fingerprint().into_iter().map(|f| f.as_bytes()).collect();
            let ids: Vec<&[u8]> = sig.issuer_key_id().into_iter().map(|k| k.as_ref()).collect();
            first.get_or_insert_with(|| fingerprints.first().or(ids.first()).map(|b| upper(b)).unwrap_or_default());
            ours |= self.keys.iter().any(|k| {
                std::iter::once((k.primary_key.fingerprint(), k.primary_key.legacy_key_id()))
                    .chain(k.public_subkeys.iter().map(|s| (s.key.fingerprint(), s.key.legacy_key_id())))
                    .any(|(fp, id)| fingerprints.contains(&fp.as_bytes()) || ids.contains(&id.as_ref()))
            });
        }
        let first = first.filter(|f| !f.is_empty()).ok_or("the signature names no issuer")?;
        Ok((first, ours))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("keyring {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_KEYRING_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("keyring {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_KEYRING_BYTES {
        return Err(format!("keyring {}: larger than {MAX_KEYRING_BYTES} bytes", path.display()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        let by = Check::By { fingerprint: "AB".into(), user_id: "x".into() };
        let unknown = Check::UnknownSigner { issuer: "CD".into() };
        let bad = Check::Bad { reason: "r".into() };
        for p in [Policy::Any, Policy::Signed, Policy::Known] {
            assert!(p.judge(&by).is_ok());
            assert!(p.judge(&bad).is_err(), "a bad signature is never accepted");
            assert_eq!(p.as_str().parse::<Policy>().unwrap(), p);
        }
        assert!(Policy::Any.judge(&Check::Unsigned).is_ok());
        assert!(Policy::Signed.judge(&Check::Unsigned).is_err() && Policy::Signed.judge(&unknown).is_ok());
        assert!(Policy::Known.judge(&unknown).is_err() && Policy::Known.judge(&Check::Unsigned).is_err());
    }

    #[test]
    fn real_signed_buildinfos_name_their_issuer_and_junk_never_panics() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/buildinfo");
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        let ring = Keyring::empty();
        let mut signed = 0;
        for e in entries.flatten() {
            let raw = std::fs::read(e.path()).unwrap();
            match ring.check(&raw) {
                Check::UnknownSigner { issuer } => {
                    signed += 1;
                    assert!(issuer.len() == 16 || issuer.len() == 40 || issuer.len() == 64, "{issuer}");
                }
                Check::Unsigned | Check::Unreadable { .. } => {}
                other => panic!("{}: {other:?}", e.path().display()),
            }
        }
        assert!(signed >= 3, "{signed}");
        for junk in [&b"-----BEGIN PGP SIGNED MESSAGE-----\n"[..], b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nx\n-----BEGIN PGP SIGNATURE-----\n\n!!\n-----END PGP SIGNATURE-----\n", b"\xff\xfe-----BEGIN PGP SIGNED MESSAGE-----\xff"] {
            let _ = ring.check(junk);
        }
    }
}
