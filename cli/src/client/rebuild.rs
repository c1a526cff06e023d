//! `debcover node|rebuild|verify|queue` and `build history`: the rebuilder network's admin
//! commands, over gRPC. Admin calls carry the admin token; answers are rendered as tables or
//! as `--json` (stable field names, only ever added to).

use std::path::Path;

use anyhow::{Context, Result, bail};
use debcover_proto::v1 as pb;
use debcover_proto::v1::rebuild_admin_client::RebuildAdminClient;
use serde_json::{Value, json};

use super::campaign::print_table;
use debcover_core::rebuild::corroborate;

/// An admin client.
pub type AdminClient = RebuildAdminClient<super::Conn>;

/// Connect to the admin service, with the admin token when given.
pub async fn connect(server: &str, token: Option<&str>) -> Result<AdminClient> {
    Ok(RebuildAdminClient::new(super::channel_as(server, token).await?)
        .max_decoding_message_size(debcover_wire::MAX_ADMIN_MESSAGE_BYTES)
        .max_encoding_message_size(debcover_wire::MAX_ADMIN_MESSAGE_BYTES))
}

/// The admin token: `DEBCOVER_ADMIN_TOKEN` when set, else the first line of `file`.
pub fn admin_token(env: Option<String>, file: &Path) -> Result<String> {
    if let Some(t) = env.filter(|t| !t.trim().is_empty()) {
        return Ok(t.trim().to_owned());
    }
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "cannot read the admin token from {} (set DEBCOVER_ADMIN_TOKEN, --admin-token-file or admin_token_file)",
            file.display()
        )
    })?;
    match text.lines().next().map(str::trim) {
        Some(t) if !t.is_empty() => Ok(t.to_owned()),
        _ => bail!("the admin token file {} is empty", file.display()),
    }
}

/// A unix time as the tables show it (`-` for none).
pub fn time(t: i64) -> String {
    if t == 0 {
        return "-".to_owned();
    }
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| t.to_string())
}

/// A node for `--json`.
pub fn node_json(n: &pb::Node) -> Value {
    json!({
        "operator": n.operator, "name": n.name, "created_at": n.created_at,
        "revoked_at": (n.revoked_at != 0).then_some(n.revoked_at),
        "architectures": n.architectures, "backends": n.backends, "tags": n.tags, "slots": n.slots,
        "registered_at": (n.registered_at != 0).then_some(n.registered_at),
        "last_seen": (n.last_seen != 0).then_some(n.last_seen),
        "active_leases": n.active_leases, "public_key": n.public_key,
        "software": (!n.software.is_empty()).then_some(&n.software),
        "strikes": n.strikes, "quarantines": n.quarantines,
        "quarantined_until": (n.quarantined_until != 0).then_some(n.quarantined_until),
    })
}

/// Print the node list.
pub fn print_nodes(r: &pb::ListNodesResponse) {
    if r.nodes.is_empty() {
        crate::outln!("No nodes yet. Issue a credential with `debcover node add --operator NAME --name NODE`.");
        return;
    }
    let rows: Vec<Vec<String>> = r
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.operator.clone(),
                n.name.clone(),
                if n.revoked_at != 0 {
                    format!("revoked {}", time(n.revoked_at))
                } else if n.quarantined_until > chrono::Utc::now().timestamp() {
                    format!("quarantined until {} (quarantine {})", time(n.quarantined_until), n.quarantines)
                } else if n.strikes > 0 {
                    format!("valid, {} strike(s)", n.strikes)
                } else {
                    "valid".into()
                },
                n.architectures.join(","),
                n.backends.join(","),
                n.tags.join(","),
                format!("{}/{}", n.active_leases, n.slots),
                time(n.last_seen),
                if n.software.is_empty() { "-".into() } else { n.software.clone() },
            ]
        })
        .collect();
    print_table(&["OPERATOR", "NODE", "CREDENTIAL", "ARCHES", "BACKENDS", "TAGS", "LEASES", "LAST SEEN", "SOFTWARE"], &rows);
}

/// A job for `--json`.
pub fn job_json(j: &pb::JobInfo) -> Value {
    json!({
        "id": j.id, "build_id": j.build_id, "source": j.source, "version": j.version,
        "architecture": j.architecture, "backend": j.backend, "tags": j.tags, "priority": j.priority,
        "origin": j.origin, "state": j.state, "not_before": j.not_before, "fence": j.fence,
        "lease_node": (!j.lease_node.is_empty()).then_some(&j.lease_node),
        "lease_expires_at": (j.lease_expires_at != 0).then_some(j.lease_expires_at),
        "failures": j.failures, "unreproducible": j.unreproducible, "verified": j.verified,
        "parked_reason": (!j.parked_reason.is_empty()).then_some(&j.parked_reason),
        "queued_at": j.queued_at,
    })
}

/// The queue for `--json`.
pub fn queue_json(r: &pb::QueueResponse) -> Value {
    json!({
        "counts": r.counts.iter().map(|c| json!({"state": c.state, "priority": c.priority, "jobs": c.jobs})).collect::<Vec<_>>(),
        "jobs": r.jobs.iter().map(job_json).collect::<Vec<_>>(),
    })
}

/// Print the queue: counts, then the listed jobs.
pub fn print_queue(r: &pb::QueueResponse) {
    if r.counts.is_empty() {
        crate::outln!("The queue is empty. Queue builds with `debcover rebuild request` or `debcover verify suite`.");
        return;
    }
    let rows: Vec<Vec<String>> =
        r.counts.iter().map(|c| vec![c.state.clone(), c.priority.clone(), c.jobs.to_string()]).collect();
    print_table(&["STATE", "PRIORITY", "JOBS"], &rows);
    if r.jobs.is_empty() {
        return;
    }
    crate::outln!();
    let rows: Vec<Vec<String>> = r
        .jobs
        .iter()
        .map(|j| {
            let mut notes = Vec::new();
            if !j.lease_node.is_empty() {
                notes.push(format!("{} until {}", j.lease_node, time(j.lease_expires_at)));
            }
            if !j.tags.is_empty() {
                notes.push(format!("tags {}", j.tags.join(",")));
            }
            if !j.backend.is_empty() {
                notes.push(format!("backend {}", j.backend));
            }
            if j.failures + j.unreproducible > 0 {
                notes.push(format!("{} failed, {} unreproducible, retry after {}", j.failures, j.unreproducible, time(j.not_before)));
            }
            if !j.parked_reason.is_empty() {
                notes.push(j.parked_reason.clone());
            }
            vec![
                j.id.to_string(),
                j.state.clone(),
                j.priority.clone(),
                format!("{} {} {}", j.source, j.version, j.architecture),
                format!("{}", j.verified),
                notes.join("; "),
            ]
        })
        .collect();
    print_table(&["JOB", "STATE", "PRIORITY", "BUILD", "VERIFIED", "NOTES"], &rows);
}

/// An enqueue result for `--json`.
pub fn enqueue_json(r: &pb::EnqueueResponse) -> Value {
    json!({"builds": r.builds, "queued": r.queued, "already_queued": r.already_queued, "already_done": r.already_done})
}

/// Print an enqueue result.
pub fn print_enqueue(r: &pb::EnqueueResponse) {
    crate::outln!(
        "{} builds: {} queued, {} already queued, {} already verified or parked",
        r.builds, r.queued, r.already_queued, r.already_done
    );
}

/// Job history for `--json`.
pub fn history_json(r: &pb::JobHistoryResponse) -> Value {
    Value::Array(
        r.jobs
            .iter()
            .map(|h| {
                let mut j = h.job.as_ref().map(job_json).unwrap_or(Value::Null);
                j["attempts"] = h
                    .attempts
                    .iter()
                    .map(|a| {
                        json!({
                            "fence": a.fence, "operator": a.operator, "node": a.node, "started_at": a.started_at,
                            "finished_at": (a.finished_at != 0).then_some(a.finished_at),
                            "outcome": (!a.outcome.is_empty()).then_some(&a.outcome),
                            "failure_code": (!a.failure_code.is_empty()).then_some(&a.failure_code),
                            "message": a.message,
                            "buildinfo_sha256": (!a.buildinfo_sha256.is_empty()).then_some(&a.buildinfo_sha256),
                            "log_sha256": (!a.log_sha256.is_empty()).then_some(&a.log_sha256),
                            "diffoscope_sha256": (!a.diffoscope_sha256.is_empty()).then_some(&a.diffoscope_sha256),
                            "differences": a.differences,
                            "attestation_sha256": (!a.attestation_sha256.is_empty()).then_some(&a.attestation_sha256),
                            "artifacts": a.artifacts.iter().map(|f| json!({"name": f.name, "size": f.size, "sha256": f.sha256})).collect::<Vec<_>>(),
                            "corroboration": a.corroboration.iter().map(|c| json!({
                                "deb": c.deb, "binary": c.binary, "subject": c.subject, "embedded": c.embedded,
                                "declared": c.declared, "verdict": c.verdict,
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                j["disagreements"] = json!(h.disagreements);
                j
            })
            .collect(),
    )
}

/// Print job history: each job, then its attempts.
pub fn print_history(r: &pb::JobHistoryResponse) {
    if r.jobs.is_empty() {
        crate::outln!("No rebuild jobs for this source.");
        return;
    }
    for h in &r.jobs {
        let Some(j) = &h.job else { continue };
        crate::outln!(
            "job {} {} {} {} [{}] {} (verified by {} operators){}",
            j.id,
            j.source,
            j.version,
            j.architecture,
            j.priority,
            j.state,
            j.verified,
            if j.parked_reason.is_empty() { String::new() } else { format!(": {}", j.parked_reason) }
        );
        let rows: Vec<Vec<String>> = h
            .attempts
            .iter()
            .map(|a| {
                vec![
                    a.fence.to_string(),
                    format!("{}/{}", a.operator, a.node),
                    time(a.started_at),
                    time(a.finished_at),
                    if a.outcome.is_empty() { "running".into() } else { a.outcome.clone() },
                    [a.failure_code.as_str(), a.message.as_str()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(": "),
                ]
            })
            .collect();
        if !rows.is_empty() {
            print_table(&["  FENCE", "NODE", "STARTED", "FINISHED", "OUTCOME", "DETAIL"], &rows);
        }
        for d in &h.disagreements {
            crate::outln!("  DISAGREEMENT: {d}");
        }
        // What the rebuilt binaries say against the original buildinfo: a count per attempt,
        // and a line per disagreement (reported only; the buildinfo decides).
        for a in h.attempts.iter().filter(|a| !a.corroboration.is_empty()) {
            let count = |v: &str| a.corroboration.iter().filter(|c| c.verdict == v).count();
            crate::outln!(
                "  attempt {} corroboration: {} agree, {} disagree, {} undeclared",
                a.fence,
                count("agrees"),
                count("disagrees"),
                count("undeclared")
            );
            for c in a.corroboration.iter().filter(|c| c.verdict == "disagrees") {
                crate::outln!("  CORROBORATION: {}", corroborate::line(&c.binary, &c.deb, &c.subject, &c.embedded, &c.declared));
            }
        }
        for a in h.attempts.iter().filter(|a| !a.differences.is_empty() || !a.diffoscope_sha256.is_empty()) {
            let what = if a.outcome == "environment-mismatch" { "environment differences" } else { "differing files" };
            if !a.differences.is_empty() {
                crate::outln!("  attempt {} {what}:", a.fence);
                for d in &a.differences {
                    crate::outln!("    {d}");
                }
            }
            if !a.diffoscope_sha256.is_empty() {
                crate::outln!("  attempt {} diffoscope report: {}", a.fence, a.diffoscope_sha256);
            }
        }
    }
}
