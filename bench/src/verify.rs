//! Attestation verification rate (`debcover-measure verify`): signatures checked per second by
//! the coordinator's acceptance check (`rebuild::attest::check`: parse, canonicalise, verify,
//! compare products with the report) and by the offline `debcover verify` logic
//! (`attestation::verify::verify` over an export of many links and the coordinator-signed
//! layout), with bare ed25519 verification of the same canonical bytes as the floor.
//!
//! Links look like the node's: ~1.5 KiB, `products` files, the node's environment fields. One
//! thread; the keys and links are made once, before timing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use debcover_core::attestation::coordinator_key::CoordinatorKey;
use debcover_core::attestation::export::{FORMAT, Manifest, ManifestKey, ManifestLink, key_file, link_file};
use debcover_core::attestation::{KeyRole, layout, verify};
use debcover_core::rebuild::{Artifact, attest};
use debcover_formats::intoto;
use ed25519_dalek::{Signer, SigningKey, Verifier};
use serde_json::{Value, json};

/// Rates measured.
#[derive(Debug, Clone)]
pub struct Rates {
    /// Links (signatures) per export in the offline check.
    pub links: usize,
    /// Bare ed25519 verifications per second.
    pub bare: f64,
    /// Coordinator acceptance checks per second.
    pub coordinator: f64,
    /// Offline `debcover verify`: signatures (links + layout) per second.
    pub offline: f64,
}

fn link(key: &SigningKey, operator: &str, job: i64, products: &BTreeMap<String, String>) -> Vec<u8> {
    let signed = json!({
        "_type": "link", "name": "rebuild", "byproducts": {},
        "command": ["dpkg-buildpackage", "-b", "-us", "-uc"],
        "materials": {"src_1.0-1_amd64.buildinfo": {"sha256": "11".repeat(32)}, "src_1.0-1.dsc": {"sha256": "22".repeat(32)}},
        "products": products.iter().map(|(n, s)| (n.clone(), json!({"sha256": s}))).collect::<serde_json::Map<_, _>>(),
        "environment": {"debcover_operator": operator, "debcover_node": "n1", "debcover_job": job.to_string(),
            "debcover_fence": "1", "debcover_build_id": "b".repeat(64), "debcover_software": "debcover-rebuilder 0.1.0",
            "debcover_backend": "local", "debcover_result": "built"},
    });
    let id = intoto::keyid(&hex::encode(key.verifying_key().as_bytes()));
    let sig = key.sign(&intoto::canonical(&signed));
    serde_json::to_vec_pretty(&json!({"signatures": [{"keyid": id, "sig": hex::encode(sig.to_bytes())}], "signed": signed}))
        .unwrap_or_default()
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Time each check for about `seconds` seconds; `links` links per export.
pub fn run(links: usize, seconds: f64) -> Result<Rates> {
    ensure!(links >= 1, "--links must be at least 1");
    let products: BTreeMap<String, String> =
        (0..8).map(|i| (format!("libfoo{i}_1.0-1_amd64.deb"), format!("{:064x}", i + 1))).collect();
    let artifacts: Vec<Artifact> =
        products.iter().map(|(n, s)| Artifact { name: n.clone(), size: 1, sha256: s.clone() }).collect();
    let keys: Vec<SigningKey> = (0..links).map(|i| SigningKey::from_bytes(&[(i % 250) as u8 + 1; 32])).collect();
    let signed: Vec<Vec<u8>> = keys.iter().enumerate().map(|(i, k)| link(k, &format!("op{i}"), 7, &products)).collect();
    let budget = Duration::from_secs_f64(seconds);

    // Floor: ed25519 alone over the canonical bytes.
    let block: Value = serde_json::from_slice(&signed[0])?;
    let canonical = intoto::canonical(&block["signed"]);
    let sig = ed25519_dalek::Signature::from_slice(&hex::decode(block["signatures"][0]["sig"].as_str().unwrap_or(""))?)?;
    let vk = keys[0].verifying_key();
    let (mut n, start) = (0usize, Instant::now());
    while start.elapsed() < budget {
        for _ in 0..100 {
            vk.verify(&canonical, &sig)?;
        }
        n += 100;
    }
    let bare = rate(n, start.elapsed());

    // The coordinator's acceptance check of a report's link.
    let ssh: Vec<String> = keys.iter().map(|k| intoto::openssh_public(&k.verifying_key().to_bytes(), "n")).collect();
    let (mut n, start) = (0usize, Instant::now());
    while start.elapsed() < budget {
        for (l, k) in signed.iter().zip(&ssh) {
            attest::check(l, k, 7, 1, &artifacts).map_err(anyhow::Error::msg)?;
        }
        n += signed.len();
    }
    let coordinator = rate(n, start.elapsed());

    // `debcover verify` over an export of every link and the coordinator's layout.
    let now = 1_700_000_000;
    let mut files = BTreeMap::new();
    let mut mkeys = Vec::new();
    let mut mlinks = Vec::new();
    for (i, (k, l)) in keys.iter().zip(&signed).enumerate() {
        let public = k.verifying_key().to_bytes();
        let id = intoto::keyid(&hex::encode(public));
        files.insert(key_file(KeyRole::Node, &id), intoto::public_pem(&public).into_bytes());
        files.insert(link_file(&id), l.clone());
        mkeys.push(ManifestKey { file: key_file(KeyRole::Node, &id), keyid: id.clone(), role: KeyRole::Node,
            operator: format!("op{i}"), node: "n1".into(), valid_from: 0, valid_until: None });
        mlinks.push(ManifestLink { file: link_file(&id), keyid: id, operator: format!("op{i}"), node: "n1".into(),
            outcome: "reproducible".into(), time: now - 10 });
    }
    let ck = CoordinatorKey::from_seed([255; 32]);
    let cid = intoto::verification_keyid(&hex::encode(ck.public_bytes()));
    files.insert(key_file(KeyRole::Coordinator, &cid), intoto::public_pem(&ck.public_bytes()).into_bytes());
    mkeys.push(ManifestKey { file: key_file(KeyRole::Coordinator, &cid), keyid: cid, role: KeyRole::Coordinator,
        operator: String::new(), node: String::new(), valid_from: 0, valid_until: None });
    let functionaries: Vec<[u8; 32]> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
    let k = links.min(2) as u32;
    files.insert("root.layout".into(), layout::sign(&ck, &functionaries, k, now + 3600));
    let manifest = Manifest {
        format: FORMAT.into(),
        build: "b".repeat(64),
        source: "src".into(),
        version: "1.0-1".into(),
        architecture: "amd64".into(),
        artifacts: products.clone(),
        layout: Some("root.layout".into()),
        layout_threshold: k,
        keys: mkeys,
        links: mlinks,
    };
    let signed_manifest = debcover_core::attestation::export::sign_manifest(&ck, &manifest);
    let trust = verify::Trust::Key(ck.public_bytes());
    let read = |name: &str| files.get(name).cloned().ok_or_else(|| format!("{name}: missing"));
    let (_, report) = verify::verify(&signed_manifest, &trust, Some(k), now, &read);
    ensure!(report.verified, "the generated export does not verify: {report:?}");
    let (mut n, start) = (0usize, Instant::now());
    while start.elapsed() < budget {
        let (_, r) = verify::verify(&signed_manifest, &trust, Some(k), now, &read);
        ensure!(r.verified);
        n += links + 1;
    }
    let offline = rate(n, start.elapsed());
    Ok(Rates { links, bare, coordinator, offline })
}
