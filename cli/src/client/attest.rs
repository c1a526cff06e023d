//! `debcover keys`, `debcover attestations SOURCE VERSION [--export DIR]` (through the open
//! `Attestations` service) and `debcover verify DIR --threshold K` (offline: no server; the
//! checking itself is [`debcover_core::attestation::verify`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use debcover_proto::v1 as pb;
use debcover_proto::v1::attestations_client::AttestationsClient;
use serde_json::json;

use super::output;
use debcover_core::attestation::PublishedKey;
use debcover_core::attestation::export::{self, FORMAT, Manifest, ManifestKey, ManifestLink};
use debcover_core::attestation::verify::Trust;
use debcover_core::attestation::verify::{LinkStatus, Report};
use debcover_wire::convert::key_from_wire;

/// Arguments of `debcover attestations`.
#[derive(Args, Debug)]
pub struct AttestationsArgs {
    /// Source package.
    pub source: String,
    /// Version (binary or source).
    pub version: String,
    /// Only this host architecture.
    #[arg(long = "arch", value_name = "ARCH")]
    pub arch: Option<String>,
    /// Write the links, keys, the coordinator-signed root.layout and debcover-export.json
    /// into DIR (created; must be empty). Needs one build: name --arch when there are several.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// Threshold the coordinator writes into the layout [default: the coordinator's k].
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub threshold: u32,
}

/// Arguments of the offline `debcover verify DIR`.
#[derive(Args, Debug, Clone)]
pub struct VerifyDirArgs {
    /// At least this many distinct operators must agree (never fewer than the signed layout's
    /// threshold).
    #[arg(long, value_name = "K")]
    pub threshold: Option<u32>,
    /// The coordinator key you trust, as a PEM public key file (e.g. from `debcover keys`, or
    /// from the coordinator's operator out of band). Nothing in the export is believed unless
    /// signed by it.
    #[arg(long, value_name = "PEM", env = "DEBCOVER_TRUST_KEY", conflicts_with = "trust_fingerprint")]
    pub trust_key: Option<std::path::PathBuf>,
    /// The trusted coordinator key's in-toto key id (64 hex digits, as `debcover keys` shows),
    /// instead of the key file.
    #[arg(long, value_name = "KEYID", env = "DEBCOVER_TRUST_FINGERPRINT")]
    pub trust_fingerprint: Option<String>,
}

async fn connect(server: &str) -> Result<AttestationsClient<super::Conn>> {
    Ok(AttestationsClient::new(super::channel(server).await?).max_decoding_message_size(debcover_wire::MAX_MESSAGE_BYTES))
}

fn time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_else(|| t.to_string())
}

fn key_json(k: &pb::PublishedKey) -> serde_json::Value {
    json!({
        "role": k.role, "operator": k.operator, "node": k.node, "keyid": k.keyid, "openssh": k.openssh, "pem": k.pem,
        "valid_from": k.valid_from, "valid_until": (k.valid_until != 0).then_some(k.valid_until),
    })
}

/// `debcover keys`; with `coordinator_pem`, only the current coordinator key as PEM (the file
/// `debcover verify --trust-key` takes: fetch it once, over a channel you trust, and keep it).
pub async fn keys(server: &str, json: bool, coordinator_pem: bool) -> Result<()> {
    let r =
        connect(server).await?.list_keys(pb::ListKeysRequest {}).await.map_err(|s| super::status_error("keys", s))?.into_inner();
    if coordinator_pem {
        let current = r.keys.iter().filter(|k| k.role == "coordinator" && k.valid_until == 0).max_by_key(|k| k.valid_from);
        let k = current.context("the coordinator lists no current key of its own")?;
        crate::out!("{}", k.pem);
        return Ok(());
    }
    if json {
        output::print_json(&r.keys.iter().map(key_json).collect::<Vec<_>>())?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<12} {:<24} {:<16} {:<24} {:<24} OPENSSH", "ROLE", "NODE", "KEY ID", "VALID FROM", "VALID UNTIL")?;
    for k in &r.keys {
        let who = if k.role == "node" { format!("{}/{}", k.operator, k.node) } else { "-".into() };
        let until = if k.valid_until == 0 { "current".to_owned() } else { time(k.valid_until) };
        writeln!(
            out,
            "{:<12} {:<24} {:<16} {:<24} {:<24} {}",
            k.role,
            who,
            debcover_formats::prefix(&k.keyid, 16),
            time(k.valid_from),
            until,
            k.openssh
        )?;
    }
    Ok(())
}

/// `debcover attestations`.
pub async fn attestations(server: &str, a: &AttestationsArgs, json: bool) -> Result<()> {
    let r = connect(server)
        .await?
        .build_attestations(pb::BuildAttestationsRequest {
            source: a.source.clone(),
            version: a.version.clone(),
            architecture: a.arch.clone().unwrap_or_default(),
            threshold: a.threshold,
        })
        .await
        .map_err(|s| super::status_error("attestations", s))?
        .into_inner();
    if let Some(dir) = &a.export {
        let [build] = r.builds.as_slice() else {
            bail!(
                "--export writes one build; {} {} has {} with jobs{}",
                a.source,
                a.version,
                r.builds.len(),
                if r.builds.len() > 1 { ": name one with --arch" } else { "" }
            );
        };
        let manifest = write_export(dir, build)?;
        if json {
            output::print_json(&manifest)?;
        } else {
            crate::outln!("{} link(s), {} key(s) and {} written to {}", manifest.links.len(), manifest.keys.len(), export::LAYOUT, dir.display());
        }
        return Ok(());
    }
    if json {
        let v: Vec<_> = r
            .builds
            .iter()
            .map(|b| {
                json!({
                    "build": b.build_id, "source": b.source, "version": b.version, "architecture": b.architecture,
                    "attestations": b.attestations.iter().map(|s| json!({
                        "operator": s.operator, "node": s.node, "keyid": s.keyid, "outcome": s.outcome,
                        "time": s.finished_at, "job": s.job_id, "fence": s.fence, "attestation_sha256": s.attestation_sha256,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        output::print_json(&v)?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for b in &r.builds {
        writeln!(out, "{} {} {} (build {})", b.source, b.version, b.architecture, debcover_formats::prefix(&b.build_id, 16))?;
        if b.attestations.is_empty() {
            writeln!(out, "  no attestations")?;
        }
        for s in &b.attestations {
            writeln!(
                out,
                "  {:<24} {:<16} {:<16} {}",
                format!("{}/{}", s.operator, s.node),
                debcover_formats::prefix(&s.keyid, 16),
                s.outcome,
                time(s.finished_at)
            )?;
        }
    }
    Ok(())
}

/// Write a build's export into `dir` (created; must not hold files already) and return its
/// manifest.
pub fn write_export(dir: &Path, b: &pb::AttestedBuild) -> Result<Manifest> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.next().is_some() {
        bail!("{}: not empty; export into a new directory", dir.display());
    }
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        std::fs::write(dir.join(name), bytes).with_context(|| format!("writing {}", dir.join(name).display()))
    };
    let mut keys = Vec::new();
    let coordinator = b.coordinator_key.as_ref().context("the answer has no coordinator key")?;
    for k in std::iter::once(coordinator).chain(&b.keys) {
        let p: PublishedKey = key_from_wire(k).map_err(anyhow::Error::msg)?;
        if k.pem.is_empty() {
            bail!("key {} of {}/{} is not an ed25519 key", k.keyid, k.operator, k.node);
        }
        let file = export::key_file(p.role, &k.keyid);
        write(&file, k.pem.as_bytes())?;
        keys.push(ManifestKey {
            file,
            keyid: k.keyid.clone(),
            role: p.role,
            operator: p.operator,
            node: p.node,
            valid_from: p.valid_from,
            valid_until: p.valid_until,
        });
    }
    let mut links = Vec::new();
    for s in &b.attestations {
        let file = export::link_file(&s.keyid);
        // The node's bytes, unchanged.
        write(&file, &s.link)?;
        links.push(ManifestLink {
            file,
            keyid: s.keyid.clone(),
            operator: s.operator.clone(),
            node: s.node.clone(),
            outcome: s.outcome.clone(),
            time: s.finished_at,
        });
    }
    write(export::LAYOUT, &b.layout)?;
    if b.manifest.is_empty() {
        bail!("the coordinator sent no signed manifest (a version before signed exports): upgrade it");
    }
    // The coordinator's signed manifest, byte for byte; what this client wrote must be what it
    // lists.
    let block: serde_json::Value = serde_json::from_slice(&b.manifest).context("the coordinator's manifest is not JSON")?;
    let manifest: Manifest =
        serde_json::from_value(block.get("signed").cloned().unwrap_or_default()).context("the coordinator's manifest")?;
    let written: BTreeMap<&str, ()> =
        keys.iter().map(|k| (k.file.as_str(), ())).chain(links.iter().map(|l| (l.file.as_str(), ()))).collect();
    if let Some(missing) = manifest
        .keys
        .iter()
        .map(|k| &k.file)
        .chain(manifest.links.iter().map(|l| &l.file))
        .find(|f| !written.contains_key(f.as_str()))
    {
        bail!("the coordinator's manifest lists {missing}, which its answer did not carry");
    }
    write(export::MANIFEST, &b.manifest)?;
    let _ = FORMAT;
    Ok(manifest)
}

/// The trust root of `verify DIR`, from `--trust-key` or `--trust-fingerprint`.
fn trust(a: &VerifyDirArgs) -> Result<Trust> {
    if let Some(path) = &a.trust_key {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the trusted key {}", path.display()))?;
        let key = debcover_formats::intoto::pem_ed25519(&text)
            .or_else(|| debcover_formats::intoto::openssh_ed25519(text.trim()))
            .with_context(|| format!("{}: not an ed25519 public key (PEM or ssh-ed25519)", path.display()))?;
        return Ok(Trust::Key(key));
    }
    if let Some(id) = &a.trust_fingerprint {
        let id = id.trim().to_ascii_lowercase();
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("--trust-fingerprint {id:?}: not a key id (64 hex digits, as `debcover keys` shows)");
        }
        return Ok(Trust::KeyId(id));
    }
    bail!(
        "`debcover verify DIR` needs the coordinator key you trust: --trust-key PEM or --trust-fingerprint KEYID \
         (get it from the coordinator's operator, or once from `debcover keys`, and keep it); the export's own files \
         cannot vouch for themselves"
    )
}

/// `debcover verify DIR`: true when verified.
pub fn verify_dir(dir: &Path, a: &VerifyDirArgs, json: bool) -> Result<bool> {
    let trust = trust(a)?;
    let path = dir.join(export::MANIFEST);
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let read = |name: &str| -> Result<Vec<u8>, String> {
        if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(format!("{name:?}: not a plain file name"));
        }
        std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    let (manifest, report) =
        debcover_core::attestation::verify::verify(&text, &trust, a.threshold, debcover_core::store::now_unix(), &read);
    print_report(manifest.as_ref(), &report, json)?;
    Ok(report.verified)
}

fn print_report(m: Option<&Manifest>, r: &Report, json: bool) -> Result<()> {
    if json {
        output::print_json(&json!({
            "build": m.map(|m| &m.build), "source": m.map(|m| &m.source), "version": m.map(|m| &m.version),
            "architecture": m.map(|m| &m.architecture), "report": r,
        }))?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if let Some(m) = m {
        writeln!(out, "{} {} {} (build {})", m.source, m.version, m.architecture, debcover_formats::prefix(&m.build, 16))?;
    }
    for l in &r.links {
        let who = format!("{}/{}", l.operator, l.node);
        match &l.status {
            LinkStatus::Agrees => writeln!(out, "  agrees     {:<24} {}", who, l.file)?,
            LinkStatus::Disagrees { differing } => {
                writeln!(out, "  DISAGREES  {:<24} {}", who, l.file)?;
                for d in differing {
                    writeln!(out, "             {d}")?;
                }
            }
            LinkStatus::Invalid { reason } => writeln!(out, "  INVALID    {:<24} {}: {reason}", who, l.file)?,
        }
    }
    for p in &r.problems {
        writeln!(out, "  problem: {p}")?;
    }
    writeln!(
        out,
        "{}: {} of {} required operator(s) agree ({})",
        if r.verified { "verified" } else { "NOT verified" },
        r.agreeing_operators.len(),
        r.threshold,
        r.agreeing_operators.join(", ")
    )?;
    Ok(())
}

