//! The job state machine: one function, [`Policy::transition`], decides what every event does
//! to a verification job (queued → leased → queued, verified or parked), given the job's
//! stored facts. Both storage backends apply its answer inside the transaction that read the
//! facts; the SQL never decides a state itself.
//!
//! ```text
//!            enqueue            claim
//!   (none) ──────────► Queued ────────► Leased ──report──► Queued (retry, not before T)
//!                        ▲                │ │ ──report──► Verified (k operators reproduced)
//!                        └─ expire/revoke ┘ └──report──► Parked (a budget exhausted)
//!                           (heartbeat: Leased, later expiry)
//! ```

use super::{AttemptOutcome, AttemptReport, FailureCode, JobState, NODE_FAULT_NOTE, Policy, Refusal, UNATTESTED_NOTE, secs};

/// A job as its transitions see it: what is stored about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFacts {
    /// Its state.
    pub state: JobState,
    /// The fencing token of its current (or last) lease.
    pub fence: i64,
    /// The node holding its lease.
    pub holder: Option<i64>,
    /// When that lease ends.
    pub expires: Option<i64>,
    /// Failures charged so far.
    pub failures: u32,
    /// Unreproducible results so far.
    pub unreproducible: u32,
    /// Distinct operators that reproduced it with an accepted attestation.
    pub verified: u32,
    /// Failures the current attempt's operator has charged to this job so far (its share is
    /// [`Policy::operator_share`]).
    pub operator_failures: u32,
}

impl JobFacts {
    /// A job just queued.
    pub fn new() -> Self {
        JobFacts {
            state: JobState::Queued,
            fence: 0,
            holder: None,
            expires: None,
            failures: 0,
            unreproducible: 0,
            verified: 0,
            operator_failures: 0,
        }
    }

    /// Does `node_id` hold this job's lease with `fence` at `now`? The check of every
    /// lease-carrying call (heartbeat, report, hand-back).
    pub fn check_lease(&self, node_id: i64, fence: i64, now: i64) -> Result<(), Refusal> {
        if self.state != JobState::Leased || self.fence != fence {
            Err(Refusal::StaleFence { current: self.fence })
        } else if self.holder != Some(node_id) {
            Err(Refusal::NotYours)
        } else if self.expires.is_some_and(|e| e < now) {
            Err(Refusal::Expired)
        } else {
            Ok(())
        }
    }
}

impl Default for JobFacts {
    fn default() -> Self {
        Self::new()
    }
}

/// What happens to a job.
#[derive(Debug, Clone, Copy)]
pub enum JobEvent<'a> {
    /// It is queued (a new job for a build; its priority and tags are the queue's concern).
    Enqueue {
        /// When.
        now: i64,
    },
    /// A node leases it.
    Claim {
        /// The node.
        node_id: i64,
        /// When.
        now: i64,
    },
    /// The holder extends its lease.
    Heartbeat {
        /// The node.
        node_id: i64,
        /// The fencing token it holds.
        fence: i64,
        /// When.
        now: i64,
    },
    /// The holder reports how its attempt ended (a hand-back is a report with
    /// [`AttemptOutcome::HandedBack`]).
    Report {
        /// The node.
        node_id: i64,
        /// The fencing token it holds.
        fence: i64,
        /// When.
        now: i64,
        /// The report.
        report: &'a AttemptReport,
        /// The node's operator reproduced this job with an accepted attestation before.
        operator_already_verified: bool,
    },
    /// The lease ran out without a heartbeat: the attempt ends as `node-lost`.
    Expire {
        /// When.
        now: i64,
    },
    /// The holder's credential was revoked: its lease goes back, no budget charged.
    Revoke {
        /// When.
        now: i64,
    },
    /// An admin releases a parked job: queued again with fresh budgets.
    Release {
        /// When.
        now: i64,
    },
}

/// Whom the end of an attempt is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Charge {
    /// Nobody: a result, a hand-back, or a failure beyond its operator's share.
    #[default]
    Nobody,
    /// The job's failure budget (the package's fault, as far as anyone can tell).
    Job,
    /// The node that held the lease (its machine or network failed: `infrastructure`,
    /// `node-lost`); the job is retried at once by others.
    Node,
}

impl Charge {
    /// Stored name (`rebuild_attempts.charged`); None for [`Charge::Nobody`].
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Charge::Nobody => None,
            Charge::Job => Some("job"),
            Charge::Node => Some("node"),
        }
    }
}

/// A job after an event: its new facts, when it may be claimed again, and what the attempt
/// that ended (if one did) records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobAfter {
    /// New state.
    pub state: JobState,
    /// The lease's fencing token (grows with every claim).
    pub fence: i64,
    /// The lease holder (None unless leased).
    pub holder: Option<i64>,
    /// The lease's end (None unless leased).
    pub expires: Option<i64>,
    /// Retry-after time (for `Queued`).
    pub not_before: i64,
    /// New counters.
    pub failures: u32,
    /// New counter.
    pub unreproducible: u32,
    /// New counter.
    pub verified: u32,
    /// Why it was parked.
    pub parked_reason: Option<String>,
    /// What the attempt's history should say about it, when the outcome alone would mislead
    /// (a reproducible result that did not count).
    pub note: Option<String>,
    /// How the attempt that ended is recorded (None: no attempt ended).
    pub ended: Option<AttemptOutcome>,
    /// Whom the attempt's end is charged to.
    pub charge: Charge,
}

impl Policy {
    /// What `event` does to `job`, or why it is refused (a lease-carrying call from a node that
    /// does not hold the lease, a lease that has not expired, a job in another state).
    pub fn transition(&self, job: &JobFacts, event: JobEvent<'_>) -> Result<JobAfter, Refusal> {
        let same = |job: &JobFacts, not_before: i64| JobAfter {
            state: job.state,
            fence: job.fence,
            holder: job.holder,
            expires: job.expires,
            not_before,
            failures: job.failures,
            unreproducible: job.unreproducible,
            verified: job.verified,
            parked_reason: None,
            note: None,
            ended: None,
            charge: Charge::Nobody,
        };
        match event {
            JobEvent::Enqueue { now } => Ok(same(&JobFacts::new(), now)),
            JobEvent::Claim { node_id, now } => {
                if job.state != JobState::Queued {
                    return Err(Refusal::StaleFence { current: job.fence });
                }
                Ok(JobAfter {
                    state: JobState::Leased,
                    fence: job.fence + 1,
                    holder: Some(node_id),
                    expires: Some(now + secs(self.lease_ttl)),
                    ..same(job, now)
                })
            }
            JobEvent::Heartbeat { node_id, fence, now } => {
                job.check_lease(node_id, fence, now)?;
                Ok(JobAfter { expires: Some(now + secs(self.lease_ttl)), ..same(job, now) })
            }
            JobEvent::Report { node_id, fence, now, report, operator_already_verified } => {
                job.check_lease(node_id, fence, now)?;
                Ok(self.after_report(job, report, now, operator_already_verified))
            }
            JobEvent::Expire { now } => {
                if job.state != JobState::Leased || job.expires.is_none_or(|e| e >= now) {
                    return Err(Refusal::StaleFence { current: job.fence });
                }
                let lost = AttemptReport::bare(AttemptOutcome::Failed {
                    code: FailureCode::NodeLost,
                    message: "lease expired without a heartbeat".to_owned(),
                });
                Ok(self.after_report(job, &lost, now, false))
            }
            JobEvent::Revoke { now } => {
                if job.state != JobState::Leased {
                    return Err(Refusal::StaleFence { current: job.fence });
                }
                Ok(self.after_report(job, &AttemptReport::bare(AttemptOutcome::HandedBack), now, false))
            }
            JobEvent::Release { now } => {
                if job.state != JobState::Parked {
                    return Err(Refusal::StaleFence { current: job.fence });
                }
                Ok(JobAfter {
                    state: JobState::Queued,
                    failures: 0,
                    unreproducible: 0,
                    ..same(job, now)
                })
            }
        }
    }

    /// The end of an attempt: a built attempt (reproducible or not) counts, towards the k
    /// distinct operators or against the job's budget of unreproducible results, only if it
    /// carries an accepted attestation. One without is recorded (with [`UNATTESTED_NOTE`] in its
    /// history) and leaves the job's counters as they were; the job stays queued for others.
    fn after_report(&self, job: &JobFacts, report: &AttemptReport, now: i64, operator_already_verified: bool) -> JobAfter {
        let built = matches!(report.outcome, AttemptOutcome::Reproducible | AttemptOutcome::Unreproducible { .. });
        let charged_to_job = matches!(
            &report.outcome,
            AttemptOutcome::Failed { code, .. } if !code.blames_node()
        ) || matches!(report.outcome, AttemptOutcome::EnvironmentMismatch { .. });
        let mut retry_at = now;
        let (outcome, already, note, charge) = if built && report.attestation.is_none() {
            (&AttemptOutcome::HandedBack, true, Some(UNATTESTED_NOTE.to_owned()), Charge::Nobody)
        } else if let AttemptOutcome::Failed { code, .. } = &report.outcome
            && code.blames_node()
        {
            // The node's machine or network failed, not the package: the job is retried at once
            // by another node (the claim keeps it from this one for a while); the node is struck.
            (&AttemptOutcome::HandedBack, true, Some(NODE_FAULT_NOTE.to_owned()), Charge::Node)
        } else if charged_to_job && job.operator_failures >= self.operator_share() {
            // One operator alone cannot use up the job's budget: its further failures wait for
            // another operator's verdict.
            retry_at = now + secs(self.retry_delay(job.failures + 1));
            let note = format!(
                "not charged to the job: this operator has charged {} of its failures (its share of {}); \
                 another operator must confirm",
                job.operator_failures, self.max_failures
            );
            (&AttemptOutcome::HandedBack, true, Some(note), Charge::Nobody)
        } else {
            let charge = if charged_to_job { Charge::Job } else { Charge::Nobody };
            (&report.outcome, operator_already_verified, None, charge)
        };
        let mut next = self.after(outcome, now, job.failures, job.unreproducible, job.verified, already);
        next.fence = job.fence;
        next.note = note;
        next.ended = Some(report.outcome.clone());
        next.charge = charge;
        next.not_before = next.not_before.max(retry_at);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rebuild::Attestation;

    fn leased(node: i64, fence: i64, expires: i64) -> JobFacts {
        JobFacts { state: JobState::Leased, fence, holder: Some(node), expires: Some(expires), ..JobFacts::new() }
    }

    #[test]
    fn a_claim_leases_a_queued_job_with_a_new_token() {
        let p = Policy::default();
        let a = p.transition(&JobFacts::new(), JobEvent::Claim { node_id: 7, now: 100 }).unwrap();
        assert_eq!((a.state, a.fence, a.holder, a.expires), (JobState::Leased, 1, Some(7), Some(700)));
        assert!(p.transition(&leased(7, 1, 700), JobEvent::Claim { node_id: 8, now: 100 }).is_err());
    }

    #[test]
    fn lease_carrying_events_are_refused_unless_the_caller_holds_the_lease() {
        let p = Policy::default();
        let job = leased(7, 3, 700);
        let hb = |node_id, fence, now| p.transition(&job, JobEvent::Heartbeat { node_id, fence, now });
        assert_eq!(hb(7, 3, 650).unwrap().expires, Some(1250));
        assert_eq!(hb(7, 2, 650).unwrap_err(), Refusal::StaleFence { current: 3 });
        assert_eq!(hb(8, 3, 650).unwrap_err(), Refusal::NotYours);
        assert_eq!(hb(7, 3, 701).unwrap_err(), Refusal::Expired);
        let report = AttemptReport::bare(AttemptOutcome::Reproducible);
        let rep = |node_id| {
            p.transition(&job, JobEvent::Report { node_id, fence: 3, now: 650, report: &report, operator_already_verified: false })
        };
        assert_eq!(rep(8).unwrap_err(), Refusal::NotYours);
        let a = rep(7).unwrap();
        assert_eq!((a.state, a.holder, a.verified, a.note.as_deref()), (JobState::Queued, None, 0, Some(UNATTESTED_NOTE)));
    }

    #[test]
    fn attested_reproductions_verify_and_expiry_charges_node_lost() {
        let p = Policy::default();
        let attested = AttemptReport { attestation: Some(Attestation::new(b"{}".to_vec())), ..AttemptReport::bare(AttemptOutcome::Reproducible) };
        let job = JobFacts { verified: 1, ..leased(7, 3, 700) };
        let a = p
            .transition(&job, JobEvent::Report { node_id: 7, fence: 3, now: 650, report: &attested, operator_already_verified: false })
            .unwrap();
        assert_eq!((a.state, a.verified, a.ended), (JobState::Verified, 2, Some(AttemptOutcome::Reproducible)));
        assert!(p.transition(&job, JobEvent::Expire { now: 700 }).is_err(), "not expired yet");
        let a = p.transition(&job, JobEvent::Expire { now: 701 }).unwrap();
        assert_eq!((a.state, a.failures, a.not_before, a.charge), (JobState::Queued, 0, 701, Charge::Node), "node-lost: the node's");
        let a = p.transition(&job, JobEvent::Revoke { now: 650 }).unwrap();
        assert_eq!((a.state, a.failures, a.ended), (JobState::Queued, 0, Some(AttemptOutcome::HandedBack)));
    }

    #[test]
    fn failures_are_charged_fairly() {
        use crate::rebuild::{FailureCode, NodeStanding};
        let p = Policy { max_failures: 4, ..Policy::default() };
        let fail = |code| AttemptReport::bare(AttemptOutcome::Failed { code, message: "x".into() });
        let report = |job: &JobFacts, r: &AttemptReport| {
            p.transition(job, JobEvent::Report { node_id: 7, fence: 3, now: 650, report: r, operator_already_verified: false }).unwrap()
        };
        // Infrastructure: the node's, never the job's, however often.
        let job = JobFacts { failures: 3, ..leased(7, 3, 700) };
        let a = report(&job, &fail(FailureCode::Infrastructure));
        assert_eq!((a.state, a.failures, a.charge, a.not_before), (JobState::Queued, 3, Charge::Node, 650));
        // A package failure is the job's, up to the operator's share (half the budget).
        assert_eq!(p.operator_share(), 2);
        let a = report(&JobFacts { operator_failures: 1, ..leased(7, 3, 700) }, &fail(FailureCode::BuildFailed));
        assert_eq!((a.failures, a.charge), (1, Charge::Job));
        let job = JobFacts { failures: 3, operator_failures: 2, ..leased(7, 3, 700) };
        let a = report(&job, &fail(FailureCode::BuildFailed));
        assert_eq!((a.state, a.failures, a.charge), (JobState::Queued, 3, Charge::Nobody), "beyond its share: not parked");
        assert!(a.not_before > 650 && a.note.as_deref().is_some_and(|n| n.contains("another operator")), "{a:?}");
        // Another operator's failure parks it.
        let a = report(&JobFacts { failures: 3, operator_failures: 0, ..leased(7, 3, 700) }, &fail(FailureCode::BuildFailed));
        assert_eq!(a.state, JobState::Parked);
        // An admin releases it with fresh budgets.
        let parked = JobFacts { state: JobState::Parked, failures: 4, unreproducible: 1, ..JobFacts::new() };
        let r = p.transition(&parked, JobEvent::Release { now: 900 }).unwrap();
        assert_eq!((r.state, r.failures, r.unreproducible, r.not_before), (JobState::Queued, 0, 0, 900));
        assert!(p.transition(&JobFacts::new(), JobEvent::Release { now: 900 }).is_err(), "only parked jobs");
        // Three node faults in a row quarantine the node, for longer each time; work clears them.
        let node_fault = report(&leased(7, 3, 700), &fail(FailureCode::Infrastructure));
        let mut n = NodeStanding::default();
        n = n.after(&node_fault, 100).after(&node_fault, 101);
        assert_eq!((n.strikes, n.quarantined_until), (2, None));
        n = n.after(&node_fault, 102);
        assert_eq!((n.strikes, n.quarantines, n.quarantined_until), (0, 1, Some(162)));
        n = n.after(&node_fault, 200).after(&node_fault, 201).after(&node_fault, 202);
        assert_eq!(n.quarantined_until, Some(322), "doubled");
        let worked = report(&leased(7, 3, 700), &fail(FailureCode::BuildFailed));
        assert_eq!(n.after(&node_fault, 300).after(&worked, 301).strikes, 0);
        for _ in 0..40 {
            n = n.after(&node_fault, 1000);
        }
        assert!(n.quarantined_until.unwrap() - 1000 <= 6 * 3600, "{n:?}");
    }
}
