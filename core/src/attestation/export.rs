//! The export directory (`debcover attestations ... --export DIR`): one build's links as
//! in-toto names them (`rebuild.KEYID8.link`), every public key involved as SubjectPublicKeyInfo
//! PEM (what `in-toto-verify --verification-keys` and openssl read; node keys are also inside
//! the layout, as in-toto wants functionary keys), the coordinator-signed `root.layout`, and
//! `debcover-export.json`, the manifest described here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::KeyRole;

/// Name of the manifest file.
pub const MANIFEST: &str = "debcover-export.json";
/// Name of the layout file.
pub const LAYOUT: &str = "root.layout";
/// The manifest's format tag: the manifest as the `signed` part of a metablock signed by the
/// coordinator key (v1 manifests were unsigned and are refused).
pub const FORMAT: &str = "debcover-export-v2";

/// What an export holds and what it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// SHA-256 of the original buildinfo (the build's identity).
    pub build: String,
    /// Source package.
    pub source: String,
    /// Version.
    pub version: String,
    /// Host architecture.
    pub architecture: String,
    /// The binary packages the original buildinfo lists, name → SHA-256: what the rebuilds must
    /// have produced.
    pub artifacts: BTreeMap<String, String>,
    /// The layout's file name ([`LAYOUT`]), if the export has one.
    pub layout: Option<String>,
    /// The threshold the layout was signed with.
    pub layout_threshold: u32,
    /// Every public key in the export (node keys and the coordinator's).
    pub keys: Vec<ManifestKey>,
    /// Every link in the export.
    pub links: Vec<ManifestLink>,
}

/// A public key file of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestKey {
    /// File name (PEM).
    pub file: String,
    /// in-toto key id.
    pub keyid: String,
    /// Node or coordinator.
    pub role: KeyRole,
    /// Operator of a node key.
    pub operator: String,
    /// Node name of a node key.
    pub node: String,
    /// Unix seconds.
    pub valid_from: i64,
    /// Unix seconds; absent while current.
    pub valid_until: Option<i64>,
}

/// A link file of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestLink {
    /// File name (`rebuild.KEYID8.link`).
    pub file: String,
    /// Key id of the signing node key.
    pub keyid: String,
    /// Operator of the node, as the coordinator recorded it.
    pub operator: String,
    /// Node name.
    pub node: String,
    /// The coordinator's verdict on that rebuild.
    pub outcome: String,
    /// When the coordinator accepted it (unix seconds): the key must have been valid then.
    pub time: i64,
}

/// The manifest signed by the coordinator: `{"signatures": [{"keyid", "sig"}], "signed":
/// MANIFEST}`, the signature over the canonical JSON of `signed`, as in-toto metablocks are.
pub fn sign_manifest(key: &super::coordinator_key::CoordinatorKey, manifest: &Manifest) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let signed = serde_json::to_value(manifest).unwrap_or_default();
    let sig = key.signing_key().sign(&debcover_formats::intoto::canonical(&signed));
    let keyid = debcover_formats::intoto::verification_keyid(&hex::encode(key.public_bytes()));
    let block = serde_json::json!({"signatures": [{"keyid": keyid, "sig": hex::encode(sig.to_bytes())}], "signed": signed});
    serde_json::to_vec_pretty(&block).unwrap_or_default()
}

/// The in-toto file name of a `rebuild` link signed by `keyid`.
pub fn link_file(keyid: &str) -> String {
    format!("rebuild.{}.link", keyid.get(..8).unwrap_or(keyid))
}

/// The file name of a public key.
pub fn key_file(role: KeyRole, keyid: &str) -> String {
    format!("{}.{}.pub", role.as_str(), keyid.get(..8).unwrap_or(keyid))
}
