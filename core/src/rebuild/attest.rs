//! Checking a node's signed attestation before its result is accepted: in-toto link metadata
//! for the `rebuild` step, signed with the ed25519 key the node registered, about this lease
//! (job and fence in its environment), listing exactly the files reported. The bytes are then
//! kept unchanged, so that anyone can check them again with the stock in-toto tools.

use debcover_formats::intoto;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::Value;

use super::Artifact;

/// Largest attestation accepted.
pub const MAX_ATTESTATION_BYTES: u64 = 1 << 20;

/// Why an attestation is refused; each names what is wrong.
pub fn check(bytes: &[u8], node_key: &str, job_id: i64, fence: i64, artifacts: &[Artifact]) -> Result<(), String> {
    let key = intoto::openssh_ed25519(node_key)
        .ok_or("the node registered no ssh-ed25519 public key, so its attestation cannot be checked")?;
    let verifying = VerifyingKey::from_bytes(&key).map_err(|e| format!("the node's registered key is not valid: {e}"))?;
    let block: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let signed = block.get("signed").ok_or("no `signed` part")?;
    let want_keyid = intoto::keyid(&hex::encode(key));
    // Exactly one signature, the node's: a link carrying others could be attributed to them by
    // a reader that trusts the first `keyid` it sees.
    let sig = match block.get("signatures").and_then(Value::as_array).map(Vec::as_slice) {
        Some([one]) => one,
        Some([]) | None => {
            return Err(format!("no signature by the node's registered key (key id {want_keyid})"));
        }
        Some(many) => {
            return Err(format!("{} signatures: a link must carry exactly one, by the node's registered key", many.len()));
        }
    };
    if sig.get("keyid").and_then(Value::as_str) != Some(want_keyid.as_str()) {
        return Err(format!("no signature by the node's registered key (key id {want_keyid})"));
    }
    let sig_hex = sig.get("sig").and_then(Value::as_str).ok_or("signature without `sig`")?;
    let sig_bytes = hex::decode(sig_hex).map_err(|_| "`sig` is not hex")?;
    let signature = Signature::from_slice(&sig_bytes).map_err(|_| "`sig` is not an ed25519 signature")?;
    verifying
        .verify(&intoto::canonical(signed), &signature)
        .map_err(|_| "the signature does not verify with the node's registered key".to_owned())?;
    if signed.get("_type").and_then(Value::as_str) != Some("link") {
        return Err("`signed._type` is not \"link\"".into());
    }
    if signed.get("name").and_then(Value::as_str) != Some("rebuild") {
        return Err("`signed.name` is not \"rebuild\"".into());
    }
    let env = signed.get("environment");
    let field = |k: &str| env.and_then(|e| e.get(k)).and_then(Value::as_str).map(str::to_owned);
    if field("debcover_job") != Some(job_id.to_string()) || field("debcover_fence") != Some(fence.to_string()) {
        return Err(format!("it is not about this lease (job {job_id}, fence {fence})"));
    }
    let products = signed.get("products").and_then(Value::as_object).ok_or("no `signed.products`")?;
    let mut attested: Vec<(&str, &str)> = products
        .iter()
        .map(|(name, d)| (name.as_str(), d.get("sha256").and_then(Value::as_str).unwrap_or("")))
        .collect();
    attested.sort_unstable();
    let mut reported: Vec<(&str, &str)> = artifacts.iter().map(|a| (a.name.as_str(), a.sha256.as_str())).collect();
    reported.sort_unstable();
    if attested != reported {
        return Err("its products differ from the reported artifacts".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    fn openssh(key: &SigningKey) -> String {
        debcover_formats::intoto::openssh_public(key.verifying_key().as_bytes(), "")
    }

    fn link(key: &SigningKey, job: &str, products: Value) -> Vec<u8> {
        let signed = json!({"_type": "link", "name": "rebuild", "materials": {}, "products": products,
            "byproducts": {}, "command": [], "environment": {"debcover_job": job, "debcover_fence": "2"}});
        let keyid = intoto::keyid(&hex::encode(key.verifying_key().as_bytes()));
        let sig = key.sign(&intoto::canonical(&signed));
        serde_json::to_vec(&json!({"signatures": [{"keyid": keyid, "sig": hex::encode(sig.to_bytes())}], "signed": signed}))
            .unwrap()
    }

    #[test]
    fn accepts_only_the_nodes_signature_on_this_lease_and_these_files() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let arts = vec![Artifact { name: "a_1_amd64.deb".into(), size: 1, sha256: "ab".repeat(32) }];
        let products = json!({"a_1_amd64.deb": {"sha256": "ab".repeat(32)}});
        let good = link(&key, "5", products.clone());
        assert_eq!(check(&good, &openssh(&key), 5, 2, &arts), Ok(()));
        let e = check(&good, &openssh(&other), 5, 2, &arts).unwrap_err();
        assert!(e.contains("no signature by the node's registered key"), "{e}");
        let e = check(&good, &openssh(&key), 6, 2, &arts).unwrap_err();
        assert!(e.contains("not about this lease"), "{e}");
        let e = check(&link(&key, "5", json!({})), &openssh(&key), 5, 2, &arts).unwrap_err();
        assert!(e.contains("products differ"), "{e}");
        let mut tampered: Value = serde_json::from_slice(&good).unwrap();
        tampered["signed"]["products"]["a_1_amd64.deb"]["sha256"] = json!("cd".repeat(32));
        let e = check(&serde_json::to_vec(&tampered).unwrap(), &openssh(&key), 5, 2, &arts).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        assert!(check(b"{", &openssh(&key), 5, 2, &arts).unwrap_err().contains("not JSON"));
        assert!(check(&good, "", 5, 2, &arts).unwrap_err().contains("registered no ssh-ed25519"));
    }
}
