//! The in-toto layout the coordinator signs: the `rebuild` step, performed by the given node
//! keys (functionaries) with a threshold of k, and the `verify-reprobuilds` inspection that
//! requires every `.deb` in the verifier's directory to match the rebuild step's products.
//! This is the layout apt-transport-in-toto verifies Debian's rebuilders with
//! (`../shared/testdata/intoto`), so stock `in-toto-verify --layout root.layout
//! --verification-keys COORDINATOR.pub` checks an export.

use debcover_formats::intoto;
use ed25519_dalek::Signer;
use serde_json::{Map, Value, json};

use super::coordinator_key::CoordinatorKey;

/// How long a layout signed for an export stays valid.
pub const LAYOUT_VALIDITY_SECS: i64 = 30 * 24 * 3600;

/// The layout's `signed` part: functionaries by their 32 key bytes, threshold `k`, expiring at
/// `expires` (unix seconds; in-toto's `YYYY-MM-DDTHH:MM:SSZ`).
pub fn layout(functionaries: &[[u8; 32]], threshold: u32, expires: i64) -> Value {
    let mut keys = Map::new();
    let mut ids = Vec::new();
    for k in functionaries {
        let public_hex = hex::encode(k);
        let id = intoto::keyid(&public_hex);
        let mut dict = intoto::public_key_dict(&public_hex);
        dict["keyid"] = json!(id);
        keys.insert(id.clone(), dict);
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let expires = chrono::DateTime::from_timestamp(expires, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    json!({
        "_type": "layout",
        "expires": expires,
        "readme": "debcover: k independent rebuilders reproduced these packages",
        "keys": keys,
        "steps": [{
            "_type": "step",
            "name": "rebuild",
            "pubkeys": ids,
            "threshold": threshold,
            "expected_command": [],
            "expected_materials": [],
            "expected_products": [["ALLOW", "*"]],
        }],
        "inspect": [{
            "_type": "inspection",
            "name": "verify-reprobuilds",
            "run": ["true"],
            "expected_materials": [["MATCH", "*.deb", "WITH", "PRODUCTS", "FROM", "rebuild"], ["DISALLOW", "*.deb"]],
            "expected_products": [],
        }],
    })
}

/// The layout signed by the coordinator key: metablock JSON, pretty-printed as in-toto writes
/// it, the signature's key id as in-toto-verify derives it from the PEM public key.
pub fn sign(key: &CoordinatorKey, functionaries: &[[u8; 32]], threshold: u32, expires: i64) -> Vec<u8> {
    let signed = layout(functionaries, threshold, expires);
    let sig = key.signing_key().sign(&intoto::canonical(&signed));
    let keyid = intoto::verification_keyid(&hex::encode(key.public_bytes()));
    let block = json!({"signatures": [{"keyid": keyid, "sig": hex::encode(sig.to_bytes())}], "signed": signed});
    serde_json::to_vec_pretty(&block).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    #[test]
    fn signed_layout_names_the_functionaries_and_verifies() {
        let key = CoordinatorKey::from_seed([3; 32]);
        let bytes = sign(&key, &[[1; 32], [2; 32]], 2, 1_700_000_000);
        let block: Value = serde_json::from_slice(&bytes).unwrap();
        let step = &block["signed"]["steps"][0];
        assert_eq!(step["threshold"], 2);
        assert_eq!(step["pubkeys"].as_array().unwrap().len(), 2);
        assert_eq!(block["signed"]["expires"], "2023-11-14T22:13:20Z");
        let sig = hex::decode(block["signatures"][0]["sig"].as_str().unwrap()).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        key.signing_key().verifying_key().verify(&intoto::canonical(&block["signed"]), &sig).unwrap();
    }
}
