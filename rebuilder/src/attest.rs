//! Signed attestations of a rebuild: in-toto link metadata (the `rebuild` step, as Debian's
//! rebuilders publish it and apt-transport-in-toto verifies it), signed with the node's
//! ed25519 key in the securesystemslib key format that the stock in-toto tools read.
//!
//! The link says: from these materials (the original .buildinfo and the source .dsc), this
//! node of this operator produced these products (every file, by SHA-256). The coordinator
//! checks the signature against the node's registered key and keeps the bytes unchanged.

use std::collections::BTreeMap;

use ed25519_dalek::Signer;
use serde_json::{Map, Value, json};

use crate::key::NodeKey;

/// The in-toto step name of a rebuild.
pub const STEP: &str = "rebuild";

pub use debcover_formats::intoto::{canonical, keyid, public_key_dict};

/// What one rebuild attests.
#[derive(Debug, Clone, Default)]
pub struct RebuildClaim {
    /// Inputs: file name → SHA-256 (the original .buildinfo, the .dsc).
    pub materials: BTreeMap<String, String>,
    /// Outputs: file name → SHA-256 (every file the build produced).
    pub products: BTreeMap<String, String>,
    /// Who and what: operator, node, job, backend, whether each product matched the buildinfo.
    pub environment: BTreeMap<String, String>,
    /// The build command.
    pub command: Vec<String>,
}

fn digests(m: &BTreeMap<String, String>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), json!({"sha256": v}))).collect::<Map<_, _>>())
}

/// The signed in-toto link (metablock JSON, pretty-printed as in-toto writes it).
pub fn sign(key: &NodeKey, claim: &RebuildClaim) -> Vec<u8> {
    let signed = json!({
        "_type": "link",
        "name": STEP,
        "materials": digests(&claim.materials),
        "products": digests(&claim.products),
        "byproducts": {},
        "command": claim.command,
        "environment": claim.environment,
    });
    let public_hex = hex::encode(key.signing_key().verifying_key().to_bytes());
    let sig = key.signing_key().sign(&canonical(&signed));
    let block = json!({
        "signatures": [{"keyid": keyid(&public_hex), "sig": hex::encode(sig.to_bytes())}],
        "signed": signed,
    });
    serde_json::to_vec_pretty(&block).unwrap_or_default()
}

/// The in-toto link file name for a key: `rebuild.KEYID8.link`.
pub fn link_file_name(key: &NodeKey) -> String {
    let public_hex = hex::encode(key.signing_key().verifying_key().to_bytes());
    format!("{STEP}.{}.link", &keyid(&public_hex)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_over_the_canonical_signed_part() {
        use ed25519_dalek::Verifier;
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::load_or_create(&dir.path().join("k.pem")).unwrap();
        let mut claim = RebuildClaim::default();
        claim.products.insert("a_1_amd64.deb".into(), "ab".repeat(32));
        let bytes = sign(&key, &claim);
        let block: Value = serde_json::from_slice(&bytes).unwrap();
        let sig = hex::decode(block["signatures"][0]["sig"].as_str().unwrap()).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        key.signing_key().verifying_key().verify(&canonical(&block["signed"]), &sig).unwrap();
        assert_eq!(block["signed"]["products"]["a_1_amd64.deb"]["sha256"], "ab".repeat(32));
    }
}
