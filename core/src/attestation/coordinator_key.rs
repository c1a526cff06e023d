//! The coordinator's ed25519 key: made on first start in the data directory as PKCS#8 PEM
//! (mode 0600, like a node's key), published with the node keys, and used to sign the in-toto
//! layouts that name which rebuilder keys a verifier trusts and how many must agree.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};

use debcover_formats::intoto;

/// File name of the key in the data directory.
pub const FILE_NAME: &str = "coordinator-key.pem";

/// A key file problem; names the file.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorKeyError {
    /// Reading or writing failed.
    #[error("coordinator key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not an ed25519 PKCS#8 PEM key.
    #[error("coordinator key {path} is not an ed25519 private key in PKCS#8 PEM form ({message})")]
    Format {
        /// The key file.
        path: PathBuf,
        /// The decoder's explanation.
        message: String,
    },
}

/// The coordinator's signing key.
pub struct CoordinatorKey {
    key: SigningKey,
    /// Where it is kept.
    pub path: PathBuf,
}

impl std::fmt::Debug for CoordinatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorKey").field("path", &self.path).field("public", &self.openssh_public()).finish()
    }
}

impl CoordinatorKey {
    /// Load `DATA_DIR/coordinator-key.pem`, or make and store a new key there.
    pub fn load_or_create(data_dir: &Path) -> Result<CoordinatorKey, CoordinatorKeyError> {
        let path = data_dir.join(FILE_NAME);
        let io = |source| CoordinatorKeyError::Io { path: path.clone(), source };
        match std::fs::read_to_string(&path) {
            Ok(pem) => {
                let key = SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|e| CoordinatorKeyError::Format { path: path.clone(), message: e.to_string() })?;
                Ok(CoordinatorKey { key, path })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // ThreadRng: a CSPRNG seeded from the operating system.
                let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| CoordinatorKeyError::Format { path: path.clone(), message: e.to_string() })?;
                std::fs::create_dir_all(data_dir).map_err(io)?;
                // create_new: two coordinators started on one directory never overwrite a key.
                let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io)?;
                f.write_all(pem.as_bytes()).map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok(CoordinatorKey { key, path })
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The key from a 32-byte seed (tests and benchmarks).
    pub fn from_seed(seed: [u8; 32]) -> CoordinatorKey {
        CoordinatorKey { key: SigningKey::from_bytes(&seed), path: PathBuf::new() }
    }

    /// The 32 public key bytes.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// OpenSSH form, as published.
    pub fn openssh_public(&self) -> String {
        intoto::openssh_public(&self.public_bytes(), "debcover-coordinator")
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_0600_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = CoordinatorKey::load_or_create(dir.path()).unwrap();
        let b = CoordinatorKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.openssh_public(), b.openssh_public());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join(FILE_NAME), "junk").unwrap();
        let e = CoordinatorKey::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(e.contains(FILE_NAME) && e.contains("PKCS#8"), "{e}");
    }
}
