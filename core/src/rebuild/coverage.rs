//! What the attempts of a build add up to, for coverage: whether the build is verified on
//! attestations, and where independent rebuilders disagree with each other.
//!
//! The scheduler counts a job `verified` when k distinct operators' *attested* attempts were
//! judged reproducible ([`super::Policy::transition`]). This module reads the recorded
//! attempts of a build back and answers the questions a campaign item asks: do at least k
//! operators' signed results carry every shipped binary's bytes, and do any two operators'
//! reproduced files differ from each other? A disagreement is reported with both sides; it is
//! never averaged away by counting votes.
//!
//! # Invariants
//! - Pure functions over stored records: no SQL, no protobuf, no clock.
//! - Only ended attempts that built something (`reproducible`, `unreproducible`) are compared;
//!   failures, environment mismatches and hand-backs say nothing about the bytes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{AttemptOutcome, AttemptRecord, JobState};

/// One rebuilder's side of a disagreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    /// `operator/node`.
    pub node: String,
    /// Job and fencing token of the attempt.
    pub job_id: i64,
    /// The attempt's fencing token.
    pub fence: i64,
    /// `reproducible` or `unreproducible`.
    pub outcome: String,
    /// The SHA-256 it produced for the file; `None` when it did not produce it.
    pub sha256: Option<String>,
}

/// Two or more operators produced different bytes for the same binary of the same build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disagreement {
    /// The binary's file name.
    pub file: String,
    /// Every operator's result for it (one per built attempt).
    pub sides: Vec<Side>,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sides: Vec<String> = self
            .sides
            .iter()
            .map(|s| {
                let got = s.sha256.as_deref().map_or("nothing".to_owned(), |h| debcover_formats::prefix(&h, 16).to_owned());
                format!("{} (job {} fence {}, {}) got {got}", s.node, s.job_id, s.fence, s.outcome)
            })
            .collect();
        write!(f, "disagreement on {}: {}", self.file, sides.join(" vs "))
    }
}

fn is_binary(name: &str) -> bool {
    name.ends_with(".deb") || name.ends_with(".udeb") || name.ends_with(".ddeb")
}

/// A built attempt whose result is evidence: it carries an accepted attestation. Unsigned
/// results are kept and shown, never used to judge a build.
fn built(a: &AttemptRecord) -> bool {
    matches!(a.outcome.as_deref(), Some(AttemptOutcome::REPRODUCIBLE | AttemptOutcome::UNREPRODUCIBLE))
        && a.attestation_sha256.is_some()
}

/// Where distinct operators' attested built attempts (of one build, possibly over several
/// jobs) produced different bytes for the same binary, or one produced it and another did not.
/// Attempts of one operator never disagree with each other here (the scheduler gives a build
/// to one node per operator).
pub fn disagreements(attempts: &[AttemptRecord]) -> Vec<Disagreement> {
    let built: Vec<&AttemptRecord> = attempts.iter().filter(|a| built(a)).collect();
    let mut files: Vec<&str> =
        built.iter().flat_map(|a| a.artifacts.iter().map(|f| f.name.as_str())).filter(|n| is_binary(n)).collect();
    files.sort_unstable();
    files.dedup();
    let mut out = Vec::new();
    for file in files {
        let sides: Vec<Side> = built
            .iter()
            .map(|a| Side {
                node: format!("{}/{}", a.operator, a.node),
                job_id: a.job_id,
                fence: a.fence,
                outcome: a.outcome.clone().unwrap_or_default(),
                sha256: a.artifacts.iter().find(|f| f.name == file).map(|f| f.sha256.clone()),
            })
            .collect();
        let mut by_operator: BTreeMap<&str, Vec<&Option<String>>> = BTreeMap::new();
        for (a, s) in built.iter().zip(&sides) {
            by_operator.entry(a.operator.as_str()).or_default().push(&s.sha256);
        }
        let mut distinct: Vec<&Option<String>> = sides.iter().map(|s| &s.sha256).collect();
        distinct.sort();
        distinct.dedup();
        if by_operator.len() > 1 && distinct.len() > 1 {
            out.push(Disagreement { file: file.to_owned(), sides });
        }
    }
    out
}

/// An attested reproduction that counts for coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attestor {
    /// `operator/node`.
    pub node: String,
    /// The operator alone.
    pub operator: String,
    /// SHA-256 of the signed in-toto link (its key in the store).
    pub attestation_sha256: String,
}

/// What a build's recorded attempts say for coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "check")]
pub enum BuildCheck {
    /// Verified: at least k distinct operators' attested attempts reproduced it, each with
    /// every shipped binary's bytes, and no operator produced other bytes.
    Verified {
        /// One per operator (the first attested attempt of each).
        attestors: Vec<Attestor>,
    },
    /// Too few attested reproductions (the words say how many of how many).
    Unverified {
        /// Why, in words.
        why: String,
    },
    /// Rebuilders got other bytes than the official ones and none reproduced them.
    Unreproducible {
        /// Why, in words (the differing files).
        why: String,
    },
    /// Operators produced different bytes from each other.
    Disagreement {
        /// Both sides of each differing file.
        disagreements: Vec<Disagreement>,
    },
}

/// Judge one build for coverage from its jobs' states and attempts: `jobs` are the build's
/// verification jobs (`(job id, state)`), `attempts` theirs, `shipped` the SHA-256 of every
/// binary the archive ships from it, `k` the number of distinct operators required.
pub fn check_build(jobs: &[(i64, JobState)], attempts: &[AttemptRecord], shipped: &[String], k: u32) -> BuildCheck {
    let found = disagreements(attempts);
    if !found.is_empty() {
        return BuildCheck::Disagreement { disagreements: found };
    }
    let mut attestors: Vec<Attestor> = Vec::new();
    for a in attempts.iter().filter(|a| a.outcome.as_deref() == Some(AttemptOutcome::REPRODUCIBLE)) {
        let Some(att) = &a.attestation_sha256 else {
            continue;
        };
        if attestors.iter().any(|x| x.operator == a.operator) {
            continue;
        }
        if shipped.iter().all(|s| a.artifacts.iter().any(|f| &f.sha256 == s)) {
            attestors.push(Attestor {
                node: format!("{}/{}", a.operator, a.node),
                operator: a.operator.clone(),
                attestation_sha256: att.clone(),
            });
        }
    }
    let verified_job = jobs.iter().any(|(_, s)| *s == JobState::Verified);
    let k = k.max(1) as usize;
    if verified_job && attestors.len() >= k {
        return BuildCheck::Verified { attestors };
    }
    // Only signed results judge a build: an unsigned "unreproducible" is shown, never a verdict.
    let unrepro: Vec<&AttemptRecord> = attempts
        .iter()
        .filter(|a| a.outcome.as_deref() == Some(AttemptOutcome::UNREPRODUCIBLE) && a.attestation_sha256.is_some())
        .collect();
    if attestors.is_empty() && !unrepro.is_empty() {
        let mut differing: Vec<&str> = unrepro.iter().flat_map(|a| a.differences.iter().map(String::as_str)).collect();
        differing.sort_unstable();
        differing.dedup();
        let nodes: Vec<String> = unrepro.iter().map(|a| format!("{}/{}", a.operator, a.node)).collect();
        return BuildCheck::Unreproducible {
            why: format!("rebuilt by {} with other bytes: {}", nodes.join(", "), differing.join(" ")),
        };
    }
    let unattested = attempts
        .iter()
        .filter(|a| a.outcome.as_deref() == Some(AttemptOutcome::REPRODUCIBLE) && a.attestation_sha256.is_none())
        .count();
    // Queuing a job changes nothing here (the words stay the same until a result arrives), so
    // that the audit trail records results, not queue movements.
    let mut why = if verified_job {
        format!("only {} of {k} attested reproductions carry every shipped binary's bytes", attestors.len())
    } else {
        format!("{} attested reproduction(s) by distinct operators so far, not verified yet", attestors.len())
    };
    if unattested > 0 {
        why.push_str(&format!("; {unattested} reproducible without an attestation (not counted)"));
    }
    BuildCheck::Unverified { why }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rebuild::Artifact;

    fn attempt(op: &str, fence: i64, outcome: &str, deb: Option<&str>, attested: bool) -> AttemptRecord {
        AttemptRecord {
            job_id: 1,
            fence,
            operator: op.into(),
            node: format!("{op}1"),
            started_at: 0,
            finished_at: Some(1),
            outcome: Some(outcome.into()),
            failure_code: None,
            message: String::new(),
            buildinfo_sha256: None,
            log_sha256: None,
            artifacts: deb
                .map(|h| vec![Artifact { name: "a_1_amd64.deb".into(), size: 1, sha256: h.into() }])
                .unwrap_or_default(),
            diffoscope_sha256: None,
            differences: if outcome == "unreproducible" { vec!["a_1_amd64.deb".into()] } else { vec![] },
            attestation_sha256: attested.then(|| format!("{fence:064}")),
        }
    }

    #[test]
    fn verified_needs_k_attested_operators_with_the_shipped_bytes() {
        let aa = "aa".repeat(32);
        let shipped = vec![aa.clone()];
        let verified = [(1, JobState::Verified)];
        let two = [attempt("alice", 1, "reproducible", Some(&aa), true), attempt("bob", 2, "reproducible", Some(&aa), true)];
        let BuildCheck::Verified { attestors } = check_build(&verified, &two, &shipped, 2) else { panic!() };
        assert_eq!(attestors.iter().map(|a| a.node.as_str()).collect::<Vec<_>>(), ["alice/alice1", "bob/bob1"]);
        // An unsigned reproduction is recorded but does not count.
        let one_unsigned =
            [attempt("alice", 1, "reproducible", Some(&aa), true), attempt("bob", 2, "reproducible", Some(&aa), false)];
        let BuildCheck::Unverified { why } = check_build(&[(1, JobState::Queued)], &one_unsigned, &shipped, 2) else {
            panic!()
        };
        assert!(why.starts_with("1 attested reproduction(s)") && why.contains("1 reproducible without an attestation"), "{why}");
        // The archive now ships other bytes than were reproduced.
        let other = vec!["cc".repeat(32)];
        assert!(matches!(check_build(&verified, &two, &other, 2), BuildCheck::Unverified { why } if why.starts_with("only 0 of 2")));
        assert!(matches!(check_build(&[], &[], &shipped, 2), BuildCheck::Unverified { why } if why.starts_with("0 attested")));
    }

    #[test]
    fn disagreements_are_flagged_with_both_sides() {
        let (aa, bb) = ("aa".repeat(32), "bb".repeat(32));
        let split = [attempt("alice", 1, "reproducible", Some(&aa), true), attempt("bob", 2, "unreproducible", Some(&bb), true)];
        let d = disagreements(&split);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].sides.len(), 2);
        let text = d[0].to_string();
        assert!(text.contains("alice/alice1") && text.contains("bob/bob1") && text.contains(&aa[..16]) && text.contains(&bb[..16]), "{text}");
        assert!(matches!(check_build(&[(1, JobState::Queued)], &split, std::slice::from_ref(&aa), 2), BuildCheck::Disagreement { .. }));
        // A missing binary on one side disagrees too.
        let missing = [attempt("alice", 1, "reproducible", Some(&aa), true), attempt("bob", 2, "unreproducible", None, true)];
        assert_eq!(disagreements(&missing)[0].sides[1].sha256, None);
        // Rebuilders that agree with each other but not with the archive do not disagree:
        // the build is unreproducible.
        let both = [attempt("alice", 1, "unreproducible", Some(&bb), true), attempt("bob", 2, "unreproducible", Some(&bb), true)];
        assert!(disagreements(&both).is_empty());
        assert!(
            matches!(check_build(&[(1, JobState::Parked)], &both, &[aa.clone()], 2), BuildCheck::Unreproducible { why } if why.contains("a_1_amd64.deb"))
        );
        // Failures say nothing about bytes.
        let failed = [attempt("alice", 1, "reproducible", Some(&bb), true), attempt("bob", 2, "failed", None, false)];
        assert!(disagreements(&failed).is_empty());
        // An unsigned report is kept and shown, never evidence: no disagreement from it.
        let unsigned = [attempt("alice", 1, "reproducible", Some(&aa), true), attempt("bob", 2, "unreproducible", None, false)];
        assert!(disagreements(&unsigned).is_empty());
        assert!(!matches!(
            check_build(&[(1, JobState::Queued)], &unsigned, std::slice::from_ref(&aa), 2),
            BuildCheck::Disagreement { .. }
        ));
    }
}
