//! The node's identity: an ed25519 key made on first start and kept in the work directory as
//! PKCS#8 PEM (mode 0600), which openssl and in-toto read as they are. The public half goes to
//! the coordinator at registration, in OpenSSH form, so that attestations can be checked later.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};

/// A key file problem.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("node key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an ed25519 PKCS#8 PEM key.
    #[error("node key {path} is not an ed25519 private key in PKCS#8 PEM form ({message}); move it away to make a new one")]
    Format {
        /// The key file.
        path: PathBuf,
        /// The decoder's explanation.
        message: String,
    },
    /// No randomness.
    #[error("cannot get random bytes for a new key: {0}")]
    Random(String),
}

/// The node's key pair.
pub struct NodeKey {
    key: SigningKey,
    /// Where it is kept.
    pub path: PathBuf,
    /// Whether this start created it.
    pub created: bool,
}

impl NodeKey {
    /// Load the key at `path`, or make and store a new one if there is no file.
    pub fn load_or_create(path: &Path) -> Result<NodeKey, KeyError> {
        let io = |source| KeyError::Io { path: path.to_owned(), source };
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                let key = SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|e| KeyError::Format { path: path.to_owned(), message: e.to_string() })?;
                Ok(NodeKey { key, path: path.to_owned(), created: false })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
                let key = SigningKey::from_bytes(&seed);
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| KeyError::Format { path: path.to_owned(), message: e.to_string() })?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                // create_new: two nodes started on one work directory do not overwrite each
                // other's key; the loser fails and says so.
                let mut f =
                    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
                f.write_all(pem.as_bytes()).map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok(NodeKey { key, path: path.to_owned(), created: true })
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The public key in OpenSSH form: `ssh-ed25519 AAAA... debcover-node`.
    pub fn openssh_public(&self) -> String {
        let public = self.key.verifying_key().to_bytes();
        let mut blob = Vec::with_capacity(51);
        for part in [b"ssh-ed25519".as_slice(), public.as_slice()] {
            blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
            blob.extend_from_slice(part);
        }
        format!("ssh-ed25519 {} debcover-node", base64::engine::general_purpose::STANDARD.encode(blob))
    }

    /// The public key as SubjectPublicKeyInfo PEM (what openssl and in-toto read).
    pub fn public_pem(&self) -> String {
        self.key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// Proof of possession for registering with the bearer token `token` at `unix_time`: the
    /// signature over [`debcover_formats::intoto::registration_statement`].
    pub fn registration_signature(&self, token: &str, unix_time: i64) -> Vec<u8> {
        use ed25519_dalek::Signer;
        let public_hex = hex::encode(self.key.verifying_key().to_bytes());
        let statement = debcover_formats::intoto::registration_statement(
            &debcover_formats::sha256_hex(token.as_bytes()),
            &public_hex,
            unix_time,
        );
        self.key.sign(&statement).to_bytes().to_vec()
    }

    /// The signing key, for attestations.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/node-key.pem");
        let a = NodeKey::load_or_create(&p).unwrap();
        assert!(a.created);
        let b = NodeKey::load_or_create(&p).unwrap();
        assert!(!b.created);
        assert_eq!(a.openssh_public(), b.openssh_public());
        assert!(a.openssh_public().starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn garbage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        std::fs::write(&p, "not a key").unwrap();
        let e = NodeKey::load_or_create(&p).err().unwrap().to_string();
        assert!(e.contains("k.pem") && e.contains("PKCS#8"), "{e}");
    }
}
