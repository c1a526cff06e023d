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

use debcover_core::attestation::export::{self, FORMAT, Manifest, ManifestKey, ManifestLink};
use debcover_core::attestation::verify::{LinkStatus, Report};
use debcover_core::attestation::PublishedKey;
use debcover_wire::convert::key_from_wire;
use super::output;

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
    /// At least this many distinct operators must agree.
    #[arg(long, value_name = "K")]
    pub threshold: Option<u32>,
}

async fn connect(server: &str) -> Result<AttestationsClient<tonic::transport::Channel>> {
    Ok(AttestationsClient::new(super::channel(server).await?)
        .max_decoding_message_size(debcover_wire::MAX_MESSAGE_BYTES))
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

/// `debcover keys`.
pub async fn keys(server: &str, json: bool) -> Result<()> {
    let r = connect(server)
        .await?
        .list_keys(pb::ListKeysRequest {})
        .await
        .map_err(|s| super::status_error("keys", s))?
        .into_inner();
    if json {
        output::print_json(&r.keys.iter().map(key_json).collect::<Vec<_>>())?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<12} {:<24} {:<16} {:<24} {:<24} OPENSSH", "ROLE", "NODE", "KEY ID", "VALID FROM", "VALID UNTIL")?;
    for k in &r.keys {
        let who = if k.role == "node" { format!("{}/{}", k.operator, k.node) } else { "-".into() };
        let until = if k.valid_until == 0 { "current".to_owned() } else { time(k.valid_until) };
        writeln!(out, "{:<12} {:<24} {:<16} {:<24} {:<24} {}", k.role, who, &k.keyid[..k.keyid.len().min(16)], time(k.valid_from), until, k.openssh)?;
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
        writeln!(out, "{} {} {} (build {})", b.source, b.version, b.architecture, &b.build_id[..b.build_id.len().min(16)])?;
        if b.attestations.is_empty() {
            writeln!(out, "  no attestations")?;
        }
        for s in &b.attestations {
            writeln!(out, "  {:<24} {:<16} {:<16} {}", format!("{}/{}", s.operator, s.node), &s.keyid[..s.keyid.len().min(16)], s.outcome, time(s.finished_at))?;
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
    let manifest = Manifest {
        format: FORMAT.into(),
        build: b.build_id.clone(),
        source: b.source.clone(),
        version: b.version.clone(),
        architecture: b.architecture.clone(),
        artifacts: b.files.iter().map(|f| (f.name.clone(), f.sha256.clone())).collect::<BTreeMap<_, _>>(),
        layout: Some(export::LAYOUT.into()),
        layout_threshold: b.threshold,
        keys,
        links,
    };
    write(export::MANIFEST, &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(manifest)
}

/// `debcover verify DIR`: true when verified.
pub fn verify_dir(dir: &Path, a: &VerifyDirArgs, json: bool) -> Result<bool> {
    let path = dir.join(export::MANIFEST);
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text).with_context(|| format!("{}: not a debcover export manifest", path.display()))?;
    let threshold = a.threshold.unwrap_or(manifest.layout_threshold);
    let read = |name: &str| -> Result<Vec<u8>, String> {
        if name.contains('/') || name.starts_with('.') {
            return Err(format!("{name}: not a plain file name"));
        }
        std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    let report = debcover_core::attestation::verify::verify(&manifest, threshold, debcover_core::store::now_unix(), &read);
    print_report(&manifest, &report, json)?;
    Ok(report.verified)
}

fn print_report(m: &Manifest, r: &Report, json: bool) -> Result<()> {
    if json {
        output::print_json(&json!({
            "build": m.build, "source": m.source, "version": m.version, "architecture": m.architecture, "report": r,
        }))?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{} {} {} (build {})", m.source, m.version, m.architecture, &m.build[..m.build.len().min(16)])?;
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

