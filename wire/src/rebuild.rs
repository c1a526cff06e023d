//! The rebuild services' messages as domain values and back: jobs handed to nodes, what a
//! node reports (checked field by field), and the queue, history and node listings.

use debcover_core::rebuild::{self, Artifact, AttemptRecord, FailureCode, FileVerdict, JobRecord, JobState, NodeRecord};
use debcover_proto::v1 as pb;
use tonic::Status;

/// Most environment differences in one report.
pub const MAX_DIFFERENCES: usize = 10_000;
/// Longest environment difference line.
pub const MAX_DIFFERENCE_BYTES: usize = 1024;

/// A job on the wire.
pub fn job_info(j: &JobRecord) -> pb::JobInfo {
    pb::JobInfo {
        id: j.id,
        build_id: j.build_sha256.clone(),
        source: j.source.clone(),
        version: j.version.clone(),
        architecture: j.arch.clone(),
        backend: j.backend.clone(),
        tags: j.tags.clone(),
        priority: j.priority.as_str().to_owned(),
        origin: j.origin.clone(),
        state: j.state.as_str().to_owned(),
        not_before: j.not_before,
        fence: j.fence,
        lease_node: j.lease_node.clone().unwrap_or_default(),
        lease_expires_at: j.lease_expires.unwrap_or_default(),
        failures: j.failures,
        unreproducible: j.unreproducible,
        verified: j.verified,
        parked_reason: j.parked_reason.clone().unwrap_or_default(),
        queued_at: j.queued_at,
    }
}

/// A produced file on the wire.
pub fn artifact_wire(a: &Artifact) -> pb::Artifact {
    pb::Artifact { name: a.name.clone(), size: a.size, sha256: a.sha256.clone() }
}

/// An attempt on the wire, with its corroboration findings.
pub fn attempt_info(a: &AttemptRecord, corroboration: Vec<pb::CorroborationFinding>) -> pb::AttemptInfo {
    pb::AttemptInfo {
        corroboration,
        fence: a.fence,
        operator: a.operator.clone(),
        node: a.node.clone(),
        started_at: a.started_at,
        finished_at: a.finished_at.unwrap_or_default(),
        outcome: a.outcome.clone().unwrap_or_default(),
        failure_code: a.failure_code.clone().unwrap_or_default(),
        message: a.message.clone(),
        buildinfo_sha256: a.buildinfo_sha256.clone().unwrap_or_default(),
        log_sha256: a.log_sha256.clone().unwrap_or_default(),
        artifacts: a.artifacts.iter().map(artifact_wire).collect(),
        diffoscope_sha256: a.diffoscope_sha256.clone().unwrap_or_default(),
        attestation_sha256: a.attestation_sha256.clone().unwrap_or_default(),
        differences: a.differences.clone(),
    }
}

/// A node on the wire (never its token).
pub fn node_wire(n: &NodeRecord) -> pb::Node {
    pb::Node {
        operator: n.operator.clone(),
        name: n.name.clone(),
        created_at: n.created_at,
        revoked_at: n.revoked_at.unwrap_or_default(),
        architectures: n.caps.arches.clone(),
        backends: n.caps.backends.clone(),
        tags: n.caps.tags.clone(),
        slots: n.caps.slots,
        registered_at: n.registered_at.unwrap_or_default(),
        last_seen: n.last_seen.unwrap_or_default(),
        active_leases: n.active_leases,
        public_key: n.caps.public_key.clone(),
        software: n.caps.software.clone(),
        strikes: n.standing.strikes,
        quarantined_until: n.standing.quarantined_until.unwrap_or_default(),
        quarantines: n.standing.quarantines,
    }
}

/// One file's verdict on the wire.
pub fn verdict_wire(v: &FileVerdict) -> pb::ArtifactVerdict {
    pb::ArtifactVerdict {
        name: v.name.clone(),
        rebuilt_sha256: v.rebuilt.clone().unwrap_or_default(),
        buildinfo_sha256: v.buildinfo.clone().unwrap_or_default(),
        // Several differing archive hashes are rare (one file name shipped with other bytes in
        // another suite); the one that differs from the rebuild is the one to show.
        archive_sha256: v
            .archive
            .iter()
            .find(|a| v.rebuilt.as_ref() != Some(*a))
            .or(v.archive.first())
            .cloned()
            .unwrap_or_default(),
        matches: v.matches,
    }
}

/// A lease on the wire: with a mirror, the URLs of the .dsc and of the archive's files;
/// without one, empty URLs (the node uses its own apt), hashes still given.
pub fn lease_to_job(l: rebuild::Lease, mirror: Option<&str>) -> pb::Job {
    let url = |path: &str| mirror.map(|m| rebuild::mirror_url(m, path)).unwrap_or_default();
    let (dsc_url, dsc_sha256) = match (&l.dsc, l.source_version.parse::<debversion::Version>()) {
        (Some(d), Ok(v)) => {
            (url(&format!("{}/{}", d.directory.trim_end_matches('/'), rebuild::dsc_name(&l.source, &v))), d.sha256.clone())
        }
        _ => (String::new(), None),
    };
    pb::Job {
        dsc_url,
        dsc_sha256: dsc_sha256.unwrap_or_default(),
        originals: l
            .originals
            .iter()
            .map(|o| pb::OriginalFile { name: o.name.clone(), sha256: o.sha256.clone(), url: url(&o.filename) })
            .collect(),
        job_id: l.job_id,
        fence: l.fence,
        lease_expires_at: l.expires_at,
        build_id: l.build_sha256,
        source: l.source,
        version: l.version,
        architecture: l.arch,
        backend: l.backend,
        buildinfo: l.buildinfo,
    }
}

/// What a report header says happened.
#[derive(Debug)]
pub enum Reported {
    /// Built: the coordinator judges the artifacts.
    Built,
    /// Failed with this code.
    Failed(FailureCode),
    /// The node could not set up the recorded environment: these differences.
    EnvironmentMismatch(Vec<String>),
}

/// The header's result, checked: every problem names its field.
pub fn result_of(header: &pb::ReportHeader) -> Result<Reported, Status> {
    match header.result.as_str() {
        "built" => Ok(Reported::Built),
        "failed" => {
            let code: FailureCode = header.failure_code.parse().map_err(|e| Status::invalid_argument(format!("failure_code: {e}")))?;
            if code == FailureCode::NodeLost {
                return Err(Status::invalid_argument("failure_code: node-lost is decided by the coordinator"));
            }
            Ok(Reported::Failed(code))
        }
        "environment-mismatch" => {
            let d = &header.environment_differences;
            if d.is_empty() {
                return Err(Status::invalid_argument(
                    "environment_differences: an environment-mismatch result names at least one difference",
                ));
            }
            if d.len() > MAX_DIFFERENCES {
                return Err(Status::invalid_argument(format!("environment_differences: more than {MAX_DIFFERENCES}")));
            }
            for line in d {
                if line.trim().is_empty() || line.len() > MAX_DIFFERENCE_BYTES || line.contains(['\n', '\r']) {
                    return Err(Status::invalid_argument(format!(
                        "environment_differences: {:?} must be one non-empty line of at most {MAX_DIFFERENCE_BYTES} bytes",
                        line.chars().take(80).collect::<String>()
                    )));
                }
            }
            Ok(Reported::EnvironmentMismatch(d.iter().map(|l| l.trim().to_owned()).collect()))
        }
        other => Err(Status::invalid_argument(format!(
            "result: {other:?} is not built, failed or environment-mismatch"
        ))),
    }
}

/// Job states named on the wire; an unknown name is refused.
pub fn states_from_wire(states: &[String]) -> Result<Vec<JobState>, Status> {
    states.iter().map(|s| s.parse().map_err(Status::invalid_argument)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_headers_name_the_bad_field() {
        let h = |result: &str, code: &str, diffs: &[&str]| pb::ReportHeader {
            result: result.into(),
            failure_code: code.into(),
            environment_differences: diffs.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        assert!(matches!(result_of(&h("built", "", &[])), Ok(Reported::Built)));
        assert!(matches!(result_of(&h("failed", "timeout", &[])), Ok(Reported::Failed(FailureCode::Timeout))));
        match result_of(&h("environment-mismatch", "", &[" libc6: 2.36-9 installed, 2.36-8 recorded "])) {
            Ok(Reported::EnvironmentMismatch(d)) => {
                assert_eq!(d, ["libc6: 2.36-9 installed, 2.36-8 recorded"])
            }
            other => panic!("{other:?}"),
        }
        for (header, field) in [
            (h("environment-mismatch", "", &[]), "environment_differences:"),
            (h("environment-mismatch", "", &["a\nb"]), "environment_differences:"),
            (h("failed", "oops", &[]), "failure_code:"),
            (h("failed", "node-lost", &[]), "failure_code:"),
            (h("done", "", &[]), "result:"),
        ] {
            let e = result_of(&header).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().starts_with(field), "{}", e.message());
        }
    }

    #[test]
    fn jobs_point_to_the_mirror_when_there_is_one() {
        let lease = rebuild::Lease {
            job_id: 1,
            fence: 2,
            expires_at: 3,
            build_id: 4,
            build_sha256: "b".repeat(64),
            source: "hello".into(),
            version: "2.10-3+b1".into(),
            arch: "amd64".into(),
            backend: String::new(),
            buildinfo: b"Format: 1.0\n".to_vec(),
            source_version: "1:2.10-3".into(),
            dsc: Some(rebuild::SourceDsc { directory: "pool/main/h/hello/".into(), sha256: Some("d".repeat(64)) }),
            originals: vec![rebuild::ArchiveFile {
                name: "hello_2.10-3+b1_amd64.deb".into(),
                sha256: "a".repeat(64),
                filename: "pool/main/h/hello/hello_2.10-3+b1_amd64.deb".into(),
            }],
            checksums: vec![("hello_2.10-3+b1_amd64.deb".into(), Some("a".repeat(64)))],
        };
        let j = lease_to_job(lease.clone(), Some("file:///srv/mirror"));
        assert_eq!(j.dsc_url, "file:///srv/mirror/pool/main/h/hello/hello_2.10-3.dsc", "no epoch in file names");
        assert_eq!(j.dsc_sha256, "d".repeat(64));
        assert_eq!(j.originals[0].url, "file:///srv/mirror/pool/main/h/hello/hello_2.10-3+b1_amd64.deb");
        assert_eq!((j.job_id, j.fence, j.buildinfo.as_slice()), (1, 2, &b"Format: 1.0\n"[..]));
        // Without a mirror: the node falls back to apt; the hashes are still given.
        let j = lease_to_job(lease.clone(), None);
        assert_eq!((j.dsc_url.as_str(), j.dsc_sha256.len()), ("", 64));
        assert_eq!((j.originals[0].url.as_str(), j.originals[0].sha256.len()), ("", 64));
        // Without a Sources entry: no source URL even with a mirror.
        let j = lease_to_job(rebuild::Lease { dsc: None, ..lease }, Some("http://deb.debian.org/debian"));
        assert_eq!((j.dsc_url.as_str(), j.dsc_sha256.as_str()), ("", ""));
        assert_eq!(j.originals[0].url, "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3+b1_amd64.deb");
    }

    #[test]
    fn verdict_shows_the_differing_archive_hash() {
        let v = FileVerdict {
            name: "a.deb".into(),
            rebuilt: Some("aa".into()),
            buildinfo: Some("aa".into()),
            archive: vec!["aa".into(), "bb".into()],
            matches: false,
        };
        let w = verdict_wire(&v);
        assert_eq!((w.archive_sha256.as_str(), w.buildinfo_sha256.as_str(), w.matches), ("bb", "aa", false));
    }
}
