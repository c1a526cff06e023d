//! Keys and attestations as published: the public keys of nodes and coordinators with their
//! validity periods, the coordinator's own signing key, the in-toto layout it signs for a set
//! of rebuilders, the export format (`debcover attestations --export DIR`) and its offline
//! check (`debcover verify DIR`).
//!
//! # Invariants
//! - No SQL, no protobuf, no network: storage reads keys through
//!   [`crate::store::KeyStore`]; the service converts at its boundary.
//! - A node's link is never re-encoded: exports write the stored bytes.
//! - [`verify`] is pure (the caller reads the files and gives the time).

pub mod coordinator_key;
pub mod export;
pub mod layout;
pub mod registration;
pub mod verify;

use debcover_formats::intoto;

/// Whose key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRole {
    /// A rebuilder node's: signs in-toto links.
    Node,
    /// A coordinator's: signs in-toto layouts.
    Coordinator,
}

impl KeyRole {
    /// The wire and file name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Node => "node",
            KeyRole::Coordinator => "coordinator",
        }
    }
}

impl std::str::FromStr for KeyRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "node" => Ok(KeyRole::Node),
            "coordinator" => Ok(KeyRole::Coordinator),
            other => Err(format!("{other:?} is not node or coordinator")),
        }
    }
}

/// A published public key and the period it was in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    /// Node or coordinator.
    pub role: KeyRole,
    /// The node's operator (empty for a coordinator).
    pub operator: String,
    /// The node's name (empty for a coordinator).
    pub node: String,
    /// OpenSSH form, as registered.
    pub public_key: String,
    /// Unix seconds.
    pub valid_from: i64,
    /// Unix seconds; `None` while current.
    pub valid_until: Option<i64>,
}

impl PublishedKey {
    /// The 32 key bytes, if the registered text is an ssh-ed25519 key.
    pub fn key_bytes(&self) -> Option<[u8; 32]> {
        intoto::openssh_ed25519(&self.public_key)
    }

    /// The in-toto key id: for a node key as its links' signatures name it, for a coordinator
    /// key as `in-toto-verify --verification-keys` computes it from the PEM file. Empty when
    /// the text is no ed25519 key.
    pub fn keyid(&self) -> String {
        match (self.key_bytes(), self.role) {
            (Some(k), KeyRole::Node) => intoto::keyid(&hex::encode(k)),
            (Some(k), KeyRole::Coordinator) => intoto::verification_keyid(&hex::encode(k)),
            (None, _) => String::new(),
        }
    }

    /// SubjectPublicKeyInfo PEM; empty when the text is no ed25519 key.
    pub fn pem(&self) -> String {
        self.key_bytes().map(|k| intoto::public_pem(&k)).unwrap_or_default()
    }

    /// Whether the key was in use at `t` (both ends included: a result accepted in the second
    /// its node re-registered was checked with the key then current).
    pub fn valid_at(&self, t: i64) -> bool {
        valid_at(self.valid_from, self.valid_until, t)
    }
}

/// Whether `[from, until]` (open-ended when `until` is `None`) contains `t`.
pub fn valid_at(from: i64, until: Option<i64>, t: i64) -> bool {
    from <= t && until.is_none_or(|u| t <= u)
}
