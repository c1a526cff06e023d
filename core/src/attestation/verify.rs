//! The offline check of an export (`debcover verify DIR --trust-key PEM`), with no server.
//!
//! The trust root is the user's: a pinned coordinator key (or its key id). Nothing in the
//! export is believed until it is signed by that key: the manifest (what was built, the
//! expected SHA-256 of every binary package, which key belonged to which operator when) and
//! the layout (the functionaries and the threshold) must both carry its signature. Then every
//! link's signature is checked against its functionary key (valid when the link was accepted),
//! and at least K links from distinct operators must agree with every expected SHA-256, K the
//! layout's threshold or more if the user asks. Links that disagree are listed, never averaged
//! away.
//!
//! Pure: the caller reads the files (through `read`) and gives the time. Never panics on any
//! input (fuzzed: `core/fuzz`).

use std::collections::{BTreeMap, BTreeSet};

use debcover_formats::intoto;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::Serialize;
use serde_json::Value;

use super::KeyRole;
use super::export::{FORMAT, Manifest, ManifestKey};

/// What became of one link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum LinkStatus {
    /// Signed by a key valid at its time; every artifact matches.
    Agrees,
    /// Signed correctly, but these artifacts are missing or differ.
    Disagrees {
        /// `name: expected SHA-256, attested SHA-256 (or "missing")`.
        differing: Vec<String>,
    },
    /// Not acceptable evidence: why.
    Invalid {
        /// What failed.
        reason: String,
    },
}

/// One link's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkVerdict {
    /// File name.
    pub file: String,
    /// Operator (as the link's signed environment says, else the manifest).
    pub operator: String,
    /// Node.
    pub node: String,
    /// Signing key id.
    pub keyid: String,
    /// The verdict.
    #[serde(flatten)]
    pub status: LinkStatus,
}

/// The whole check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// At least `threshold` distinct operators agree, and nothing in the export is invalid
    /// that must be valid (manifest, layout).
    pub verified: bool,
    /// K.
    pub threshold: u32,
    /// Distinct operators whose links agree.
    pub agreeing_operators: Vec<String>,
    /// Every link.
    pub links: Vec<LinkVerdict>,
    /// Problems with the export as a whole (layout signature, manifest).
    pub problems: Vec<String>,
}

fn key_of<'a>(manifest: &'a Manifest, keyid: &str, role: KeyRole) -> Option<&'a ManifestKey> {
    manifest.keys.iter().find(|k| k.keyid == keyid && k.role == role)
}

/// Read a key file and check it is the key its manifest entry claims.
fn load_key(k: &ManifestKey, read: &dyn Fn(&str) -> Result<Vec<u8>, String>) -> Result<VerifyingKey, String> {
    let text = read(&k.file)?;
    let bytes = intoto::pem_ed25519(&String::from_utf8_lossy(&text))
        .ok_or_else(|| format!("{}: not an ed25519 public key in PEM form", k.file))?;
    let public_hex = hex::encode(bytes);
    let id = match k.role {
        KeyRole::Node => intoto::keyid(&public_hex),
        KeyRole::Coordinator => intoto::verification_keyid(&public_hex),
    };
    if id != k.keyid {
        return Err(format!("{}: its key id is {id}, the manifest says {}", k.file, k.keyid));
    }
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("{}: {e}", k.file))
}

/// Check the metablock's signature by `keyid` over its canonical `signed` part.
fn check_signature(block: &Value, keyid: &str, key: &VerifyingKey) -> Result<(), String> {
    let signed = block.get("signed").ok_or("no `signed` part")?;
    let sig = block
        .get("signatures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|s| s.get("keyid").and_then(Value::as_str) == Some(keyid))
        .ok_or_else(|| format!("no signature by key {keyid}"))?;
    let sig = sig.get("sig").and_then(Value::as_str).ok_or("signature without `sig`")?;
    let sig = hex::decode(sig).map_err(|_| "`sig` is not hex")?;
    let sig = Signature::from_slice(&sig).map_err(|_| "`sig` is not an ed25519 signature")?;
    key.verify(&intoto::canonical(signed), &sig).map_err(|_| format!("the signature by key {keyid} does not verify"))
}

/// What the user trusts: the coordinator's public key, or its in-toto key id (the export's
/// coordinator key file must then have that id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The key's 32 ed25519 bytes.
    Key([u8; 32]),
    /// The key id (`in-toto-verify`'s, lower-case hex SHA-256).
    KeyId(String),
}

/// The manifest file of an export, opened: its signature checked against the trusted key.
/// Returns the manifest and the trusted coordinator key with its id.
pub fn open_manifest(
    bytes: &[u8],
    trust: &Trust,
    read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
) -> Result<(Manifest, VerifyingKey, String), String> {
    let block: Value = serde_json::from_slice(bytes).map_err(|e| format!("manifest: not JSON: {e}"))?;
    let Some(signed) = block.get("signed") else {
        return Err("manifest: unsigned (an export made before manifests were signed, or altered): export it again".into());
    };
    let manifest: Manifest =
        serde_json::from_value(signed.clone()).map_err(|e| format!("manifest: not a debcover export manifest: {e}"))?;
    if manifest.format != FORMAT {
        return Err(format!("manifest: format {:?} is not {FORMAT:?}", manifest.format));
    }
    let (key, keyid) = match trust {
        Trust::Key(bytes) => {
            let key = VerifyingKey::from_bytes(bytes).map_err(|e| format!("the trusted key is not an ed25519 key: {e}"))?;
            (key, intoto::verification_keyid(&hex::encode(bytes)))
        }
        Trust::KeyId(id) => {
            let k = key_of(&manifest, id, KeyRole::Coordinator)
                .ok_or_else(|| format!("the export has no coordinator key with the trusted id {id}"))?;
            (load_key(k, read)?, id.clone())
        }
    };
    check_signature(&block, &keyid, &key)
        .map_err(|e| format!("manifest: {e} (is this export from the coordinator you trust?)"))?;
    Ok((manifest, key, keyid))
}

/// Check an export. `manifest` is the manifest file's bytes; `threshold` what the user asks
/// for on top of the layout's; `read` gives a file's bytes by its name in the export; `now`
/// (unix seconds) is the time the layout must not have expired at.
pub fn verify(
    manifest: &[u8],
    trust: &Trust,
    threshold: Option<u32>,
    now: i64,
    read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
) -> (Option<Manifest>, Report) {
    let refused = |problem: String| Report {
        verified: false,
        threshold: threshold.unwrap_or(0),
        agreeing_operators: vec![],
        links: vec![],
        problems: vec![problem],
    };
    let (manifest, key, keyid) = match open_manifest(manifest, trust, read) {
        Ok(m) => m,
        Err(e) => return (None, refused(e)),
    };
    let mut problems = Vec::new();
    if manifest.artifacts.is_empty() {
        problems.push("manifest: the buildinfo lists no binary package to compare".into());
    }
    let Some((functionaries, layout_threshold)) = check_layout(&manifest, &key, &keyid, now, read, &mut problems) else {
        let mut r = refused(problems.join("; "));
        r.problems = problems;
        return (Some(manifest), r);
    };
    // The layout's rule, or a stricter one the user asks for; never weaker.
    let threshold = threshold.unwrap_or(0).max(layout_threshold);
    if threshold == 0 {
        problems.push("threshold: the layout's is 0; at least 1 is needed".into());
    }
    let mut links = Vec::new();
    for l in &manifest.links {
        let (status, operator, node) = match check_link(&manifest, l, &functionaries, read) {
            Ok((differing, operator, node)) if differing.is_empty() => (LinkStatus::Agrees, operator, node),
            Ok((differing, operator, node)) => (LinkStatus::Disagrees { differing }, operator, node),
            Err(reason) => (LinkStatus::Invalid { reason }, l.operator.clone(), l.node.clone()),
        };
        links.push(LinkVerdict { file: l.file.clone(), operator, node, keyid: l.keyid.clone(), status });
    }
    let agreeing: BTreeSet<String> =
        links.iter().filter(|l| l.status == LinkStatus::Agrees).map(|l| l.operator.clone()).collect();
    let agreeing_operators: Vec<String> = agreeing.into_iter().collect();
    let verified = problems.is_empty() && threshold > 0 && agreeing_operators.len() >= threshold as usize;
    (Some(manifest), Report { verified, threshold, agreeing_operators, links, problems })
}

/// The layout (required): signed by the trusted coordinator key, unexpired. Returns the key
/// ids of its `rebuild` step's functionaries and the step's threshold.
fn check_layout(
    manifest: &Manifest,
    key: &VerifyingKey,
    keyid: &str,
    now: i64,
    read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
    problems: &mut Vec<String>,
) -> Option<(BTreeSet<String>, u32)> {
    let Some(file) = manifest.layout.as_ref() else {
        problems.push("the export has no layout: the functionaries and the threshold are unknown".into());
        return None;
    };
    let result = (|| -> Result<(BTreeSet<String>, u32), String> {
        let block: Value = serde_json::from_slice(&read(file)?).map_err(|e| format!("not JSON: {e}"))?;
        check_signature(&block, keyid, key)?;
        let signed = &block["signed"];
        let expires = signed.get("expires").and_then(Value::as_str).ok_or("no `expires`")?;
        let expires = chrono::DateTime::parse_from_rfc3339(expires).map_err(|e| format!("`expires` {expires:?}: {e}"))?;
        if expires.timestamp() < now {
            return Err(format!("expired at {expires}"));
        }
        let step = signed
            .get("steps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|s| s.get("name").and_then(Value::as_str) == Some("rebuild"))
            .ok_or("no `rebuild` step")?;
        let threshold = step.get("threshold").and_then(Value::as_u64).ok_or("the `rebuild` step has no threshold")?;
        let threshold = u32::try_from(threshold).map_err(|_| format!("threshold {threshold} is out of range"))?;
        let ids = step
            .get("pubkeys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        Ok((ids, threshold))
    })();
    match result {
        Ok(ids) => Some(ids),
        Err(e) => {
            problems.push(format!("{file}: {e}"));
            None
        }
    }
}

/// One link: `(differing artifacts, operator, node)` when its signature holds.
fn check_link(
    manifest: &Manifest,
    l: &super::export::ManifestLink,
    functionaries: &BTreeSet<String>,
    read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
) -> Result<(Vec<String>, String, String), String> {
    let k = key_of(manifest, &l.keyid, KeyRole::Node).ok_or_else(|| format!("the export has no node key {}", l.keyid))?;
    if !super::valid_at(k.valid_from, k.valid_until, l.time) {
        return Err(format!(
            "key {} was not valid at the link's time {} (valid from {} until {})",
            debcover_formats::prefix(&l.keyid, 8),
            l.time,
            k.valid_from,
            k.valid_until.map_or("now".to_owned(), |u| u.to_string())
        ));
    }
    if !functionaries.contains(&l.keyid) {
        return Err(format!("key {} is not a functionary of the layout's rebuild step", l.keyid));
    }
    let key = load_key(k, read)?;
    let block: Value = serde_json::from_slice(&read(&l.file)?).map_err(|e| format!("not JSON: {e}"))?;
    check_signature(&block, &l.keyid, &key)?;
    let signed = &block["signed"];
    if signed.get("_type").and_then(Value::as_str) != Some("link") || signed.get("name").and_then(Value::as_str) != Some("rebuild") {
        return Err("not a link of the `rebuild` step".into());
    }
    let env = |f: &str| signed.get("environment").and_then(|e| e.get(f)).and_then(Value::as_str).map(str::to_owned);
    let operator = env("debcover_operator").unwrap_or_else(|| l.operator.clone());
    if operator != l.operator {
        return Err(format!("signed by operator {operator:?}, the manifest says {:?}", l.operator));
    }
    if let Some(b) = env("debcover_build_id").filter(|b| *b != manifest.build) {
        return Err(format!("about build {b}, not {}", manifest.build));
    }
    let products: BTreeMap<&str, &str> = signed
        .get("products")
        .and_then(Value::as_object)
        .ok_or("no `products`")?
        .iter()
        .map(|(n, d)| (n.as_str(), d.get("sha256").and_then(Value::as_str).unwrap_or("")))
        .collect();
    let differing = manifest
        .artifacts
        .iter()
        .filter_map(|(name, want)| match products.get(name.as_str()) {
            Some(got) if got == want => None,
            Some(got) => Some(format!("{name}: buildinfo {want}, attested {got}")),
            None => Some(format!("{name}: buildinfo {want}, not attested")),
        })
        .collect();
    Ok((differing, operator, env("debcover_node").unwrap_or_else(|| l.node.clone())))
}

#[cfg(test)]
mod tests {
    use super::super::coordinator_key::CoordinatorKey;
    use super::super::export::{ManifestLink, key_file, link_file};
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    struct Export {
        manifest: Manifest,
        files: BTreeMap<String, Vec<u8>>,
        coordinator: CoordinatorKey,
    }

    impl Export {
        fn read(&self) -> impl Fn(&str) -> Result<Vec<u8>, String> + '_ {
            |name| self.files.get(name).cloned().ok_or_else(|| format!("{name}: no such file"))
        }
        fn signed(&self) -> Vec<u8> {
            super::super::export::sign_manifest(&self.coordinator, &self.manifest)
        }
        fn trust(&self) -> Trust {
            Trust::Key(self.coordinator.public_bytes())
        }
        fn check_at(&self, k: u32, now: i64) -> Report {
            verify(&self.signed(), &self.trust(), Some(k), now, &self.read()).1
        }
        fn check(&self, k: u32) -> Report {
            self.check_at(k, NOW)
        }
    }

    fn link(key: &SigningKey, operator: &str, deb_sha: &str) -> Vec<u8> {
        let signed = json!({"_type": "link", "name": "rebuild", "materials": {}, "byproducts": {}, "command": [],
            "products": {"a_1_amd64.deb": {"sha256": deb_sha}},
            "environment": {"debcover_operator": operator, "debcover_node": "n", "debcover_build_id": "b".repeat(64)}});
        let id = intoto::keyid(&hex::encode(key.verifying_key().as_bytes()));
        let sig = key.sign(&intoto::canonical(&signed));
        serde_json::to_vec_pretty(&json!({"signatures": [{"keyid": id, "sig": hex::encode(sig.to_bytes())}], "signed": signed}))
            .unwrap()
    }

    /// Three operators (seeds 1, 2, 3) attesting the right hash, with a coordinator layout.
    fn export(operators: &[(&str, u8)]) -> Export {
        let good = "ab".repeat(32);
        let mut files = BTreeMap::new();
        let mut keys = Vec::new();
        let mut links = Vec::new();
        let mut functionaries = Vec::new();
        for (op, seed) in operators {
            let sk = SigningKey::from_bytes(&[*seed; 32]);
            let public = sk.verifying_key().to_bytes();
            let id = intoto::keyid(&hex::encode(public));
            functionaries.push(public);
            let kf = key_file(KeyRole::Node, &id);
            files.insert(kf.clone(), intoto::public_pem(&public).into_bytes());
            keys.push(ManifestKey { file: kf, keyid: id.clone(), role: KeyRole::Node, operator: op.to_string(),
                node: "n".into(), valid_from: NOW - 1000, valid_until: None });
            let lf = link_file(&id);
            files.insert(lf.clone(), link(&sk, op, &good));
            links.push(ManifestLink { file: lf, keyid: id, operator: op.to_string(), node: "n".into(),
                outcome: "reproducible".into(), time: NOW - 10 });
        }
        let ck = CoordinatorKey::from_seed([9; 32]);
        let cid = intoto::verification_keyid(&hex::encode(ck.public_bytes()));
        let cf = key_file(KeyRole::Coordinator, &cid);
        files.insert(cf.clone(), intoto::public_pem(&ck.public_bytes()).into_bytes());
        keys.push(ManifestKey {
            file: cf,
            keyid: cid,
            role: KeyRole::Coordinator,
            operator: String::new(),
            node: String::new(),
            valid_from: NOW - 1000,
            valid_until: None,
        });
        files.insert("root.layout".into(), super::super::layout::sign(&ck, &functionaries, 1, NOW + 100));
        let manifest = Manifest {
            format: FORMAT.into(),
            build: "b".repeat(64),
            source: "a".into(),
            version: "1".into(),
            architecture: "amd64".into(),
            artifacts: [("a_1_amd64.deb".to_owned(), good)].into(),
            layout: Some("root.layout".into()),
            layout_threshold: 1,
            keys,
            links,
        };
        Export { manifest, files, coordinator: ck }
    }

    #[test]
    fn distinct_operators_agreeing_verify_up_to_their_number() {
        let e = export(&[("alice", 1), ("bob", 2)]);
        let r = e.check(2);
        assert!(r.verified, "{r:#?}");
        assert_eq!(r.agreeing_operators, ["alice", "bob"]);
        assert!(!e.check(3).verified);
    }

    #[test]
    fn tampered_signature_is_invalid() {
        let mut e = export(&[("alice", 1), ("bob", 2)]);
        let f = e.manifest.links[0].file.clone();
        let mut block: Value = serde_json::from_slice(&e.files[&f]).unwrap();
        let sig = block["signatures"][0]["sig"].as_str().unwrap().to_owned();
        let flipped = format!("{}{}", if sig.starts_with('0') { "1" } else { "0" }, &sig[1..]);
        block["signatures"][0]["sig"] = json!(flipped);
        e.files.insert(f, serde_json::to_vec(&block).unwrap());
        let r = e.check(2);
        assert!(!r.verified);
        assert!(matches!(&r.links[0].status, LinkStatus::Invalid { reason } if reason.contains("does not verify")), "{r:#?}");
        assert!(e.check(1).verified);
    }

    #[test]
    fn tampered_product_breaks_the_signature_and_a_wrong_hash_disagrees() {
        let mut e = export(&[("alice", 1), ("bob", 2)]);
        let f = e.manifest.links[1].file.clone();
        let mut block: Value = serde_json::from_slice(&e.files[&f]).unwrap();
        block["signed"]["products"]["a_1_amd64.deb"]["sha256"] = json!("cd".repeat(32));
        e.files.insert(f, serde_json::to_vec(&block).unwrap());
        let r = e.check(2);
        assert!(!r.verified);
        assert!(matches!(&r.links[1].status, LinkStatus::Invalid { .. }), "{r:#?}");

        // A correctly signed link that attests other bytes: flagged as disagreeing.
        let mut e = export(&[("alice", 1), ("bob", 2)]);
        let sk = SigningKey::from_bytes(&[2; 32]);
        e.files.insert(e.manifest.links[1].file.clone(), link(&sk, "bob", &"cd".repeat(32)));
        let r = e.check(2);
        assert!(!r.verified);
        assert!(matches!(&r.links[1].status, LinkStatus::Disagrees { differing } if differing[0].contains("attested cdcd")), "{r:#?}");
        assert_eq!(r.links[0].status, LinkStatus::Agrees);
    }

    #[test]
    fn same_operator_twice_counts_once() {
        let e = export(&[("alice", 1), ("alice", 2)]);
        let r = e.check(2);
        assert!(!r.verified, "{r:#?}");
        assert_eq!(r.agreeing_operators, ["alice"]);
        assert!(e.check(1).verified);
    }

    #[test]
    fn key_not_valid_at_the_links_time_is_invalid() {
        let mut e = export(&[("alice", 1), ("bob", 2)]);
        e.manifest.keys[1].valid_until = Some(NOW - 20);
        let r = e.check(2);
        assert!(!r.verified);
        assert!(matches!(&r.links[1].status, LinkStatus::Invalid { reason } if reason.contains("not valid at")), "{r:#?}");
        let mut e = export(&[("alice", 1), ("bob", 2)]);
        e.manifest.keys[0].valid_from = NOW;
        assert!(!e.check(2).verified);
    }

    #[test]
    fn layout_must_be_the_coordinators_and_unexpired() {
        let mut e = export(&[("alice", 1), ("bob", 2)]);
        let r = e.check_at(2, NOW + 200);
        assert!(!r.verified && r.problems[0].contains("expired"), "{r:#?}");
        let other = CoordinatorKey::from_seed([8; 32]);
        e.files.insert("root.layout".into(), super::super::layout::sign(&other, &[], 2, NOW + 100));
        let r = e.check(2);
        assert!(!r.verified && r.problems[0].contains("no signature by key"), "{r:#?}");
    }

    #[test]
    fn the_trust_root_is_the_users_not_the_exports() {
        let e = export(&[("alice", 1), ("bob", 2)]);
        // Pinned by key id: the export's key file with that id is used.
        let id = intoto::verification_keyid(&hex::encode(e.coordinator.public_bytes()));
        let (_, r) = verify(&e.signed(), &Trust::KeyId(id), Some(2), NOW, &e.read());
        assert!(r.verified, "{r:#?}");
        // Another coordinator's key, pinned: nothing is believed.
        let other = CoordinatorKey::from_seed([8; 32]);
        let (m, r) = verify(&e.signed(), &Trust::Key(other.public_bytes()), Some(1), NOW, &e.read());
        assert!(m.is_none() && !r.verified && r.problems[0].contains("manifest"), "{r:#?}");
        // An export re-signed by an attacker's key with its own key file: refused under the pin.
        let forged = Export { manifest: e.manifest.clone(), files: e.files.clone(), coordinator: other };
        assert!(!verify(&forged.signed(), &e.trust(), Some(1), NOW, &e.read()).1.verified);
        // An unsigned (v1-style) manifest is refused.
        let plain = serde_json::to_vec(&e.manifest).unwrap();
        let (_, r) = verify(&plain, &e.trust(), Some(1), NOW, &e.read());
        assert!(!r.verified && r.problems[0].contains("unsigned"), "{r:#?}");
        // Without a layout: refused, whatever the links say.
        let mut no_layout = export(&[("alice", 1), ("bob", 2)]);
        no_layout.manifest.layout = None;
        let r = no_layout.check(1);
        assert!(!r.verified && r.problems[0].contains("no layout"), "{r:#?}");
        // The layout's threshold is a floor: asking for less does not lower it.
        let mut strict = export(&[("alice", 1)]);
        let functionary = SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes();
        strict.files.insert("root.layout".into(), super::super::layout::sign(&strict.coordinator, &[functionary], 2, NOW + 100));
        let r = strict.check(1);
        assert!(!r.verified && r.threshold == 2, "{r:#?}");
        // A key swapped in the export (same file, another key): its key id no longer matches.
        let mut swapped = export(&[("alice", 1), ("bob", 2)]);
        let mallory = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
        let f = swapped.manifest.keys[0].file.clone();
        swapped.files.insert(f, intoto::public_pem(&mallory).into_bytes());
        assert!(!swapped.check(2).verified);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let e = export(&[("alice", 1)]);
        for bytes in
            [&b""[..], b"{}", b"[]", b"{\"signed\": 5}", b"{\"signed\": {}, \"signatures\": [{\"keyid\": \"\\u00e9\\u00e9\"}]}"]
        {
            let _ = verify(bytes, &e.trust(), Some(1), NOW, &e.read());
            let _ = verify(bytes, &Trust::KeyId("\u{e9}".repeat(20)), None, NOW, &e.read());
        }
        let mut weird = export(&[("\u{e9}\u{e9}", 1)]);
        weird.manifest.links[0].keyid = "\u{e9}".repeat(9);
        weird.manifest.build = "\u{e9}".repeat(9);
        let _ = weird.check(1);
    }
}
