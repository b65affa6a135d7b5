//! The success criteria of the exercise, one module each. A criterion's module
//! holds everything about it: its typed ID, its static checks, its live probe and
//! its judge. [`REGISTRY`] lists them; grading walks that list, so adding a
//! criterion is one module plus one line here (see `ARCHITECTURE.md`).
//!
//! Dependencies point one way: criteria use `checks` (the static-check engine),
//! `cluster`, `observe`, `submission`, `timeline` and `verdict`; nothing below
//! them knows the criteria.

/// The [`Criterion`] impl of a criterion folder (`mod.rs`, `checks.rs`, `probe.rs`,
/// `judge.rs`): its `ABOUT`, `checks::{CATALOGUE, check}`, `probe::run` and
/// `probe::cpu_demand`, the same delegation in every folder.
macro_rules! criterion_folder {
    ($criterion:ident) => {
        impl $crate::criteria::Criterion for $criterion {
            fn about(&self) -> &'static [$crate::criteria::CriterionInfo] {
                ABOUT
            }

            fn catalogue(&self) -> &'static [$crate::checks::CheckInfo] {
                checks::CATALOGUE
            }

            fn check(
                &self,
                input: &$crate::checks::Input<'_>,
                out: &mut $crate::checks::Collector,
            ) {
                checks::check(input, out);
            }

            fn not_probed_because(&self) -> Option<&'static str> {
                None
            }

            fn probe<'a>(
                &'a self,
                namespace: &'a mut $crate::cluster::TestNamespace,
                context: &'a $crate::criteria::ProbeContext<'a>,
            ) -> Option<futures::future::BoxFuture<'a, Vec<$crate::verdict::Verdict>>> {
                Some(Box::pin(probe::run(namespace, context)))
            }

            fn cpu_demand(
                &self,
                submission: &$crate::submission::Submission,
            ) -> $crate::criteria::demand::CpuDemand {
                probe::cpu_demand(submission)
            }
        }
    };
}

/// The [`Criterion`] impl of a criterion judged by its static checks alone (one file:
/// its `ABOUT`, `CATALOGUE` and `check`), with what a live probe of it would need when
/// it has a live part that is not probed yet.
macro_rules! criterion_checks_only {
    ($criterion:ident $(, not_probed_because: $why:literal)?) => {
        impl $crate::criteria::Criterion for $criterion {
            fn about(&self) -> &'static [$crate::criteria::CriterionInfo] {
                ABOUT
            }

            fn catalogue(&self) -> &'static [$crate::checks::CheckInfo] {
                CATALOGUE
            }

            fn check(&self, input: &$crate::checks::Input<'_>, out: &mut $crate::checks::Collector) {
                check(input, out);
            }

            $(fn not_probed_because(&self) -> Option<&'static str> {
                Some($why)
            })?
        }
    };
}

pub mod cluster_autoscaler;
pub mod demand;
pub mod docs;
pub mod gpu_pool;
pub mod hpa_cpu;
pub mod hpa_custom;
pub mod keda_cron;
pub mod keda_scale_to_zero;
pub mod load_testing;
pub mod manifests_valid;
pub mod metrics_server;
pub mod monitoring;
pub mod pdb;
pub mod quota_limits;
pub mod vpa;
pub mod workloads;

mod static_checks;

/// Defined with the checks, which name their criterion without knowing this module.
pub use crate::checks::CriterionId;
pub use static_checks::{all_checks, check_info, run_checks};

use crate::checks::{CheckInfo, Collector, Input};
use crate::cluster::TestNamespace;
use crate::cluster::keda::KedaRecording;
use crate::submission::Submission;
use crate::timeline::Timeline;
use crate::verdict::{Evidence, Verdict};
use futures::future::BoxFuture;
use serde::Serialize;
use std::path::Path;

/// What the exercise says of one success criterion.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CriterionInfo {
    pub id: CriterionId,
    /// The success criterion as the exercise words it (or the task it comes from).
    pub title: &'static str,
    /// The rubric line (ID in `rubric.toml`) whose points it earns.
    pub rubric_line: &'static str,
    /// CNCF Kubernetes AI Conformance requirement ID, where one applies.
    pub cncf_ai_conformance: Option<&'static str>,
    /// Whether its behaviour can only be judged on a cluster (live probe).
    pub has_live_part: bool,
}

/// What a live probe is given besides its namespace.
pub struct ProbeContext<'a> {
    pub submission: &'a Submission,
    /// Where the probe saves its timeline JSON (the grader's `--out DIR/timelines`,
    /// or the e2e profile's `target/e2e-timelines`).
    pub timelines: &'a Path,
    /// Names this run in timeline file names (the test's name, or "grade").
    pub run: &'a str,
}

/// One criterion module (a few judge two criteria from one run: the HPA's scale-up
/// and scale-down come from the same load).
pub trait Criterion: Sync {
    /// The criteria this module judges, in rubric order.
    fn about(&self) -> &'static [CriterionInfo];

    /// Its static checks' catalogue entries.
    fn catalogue(&self) -> &'static [CheckInfo] {
        &[]
    }

    /// Runs its static checks over the submission.
    fn check(&self, _input: &Input<'_>, _out: &mut Collector) {}

    /// Its live probe, if it has one: one verdict per criterion of [`Criterion::about`]
    /// that has a live part. `None`: graded on its static checks only, and reported
    /// "not run" live with [`Criterion::not_probed_because`].
    fn probe<'a>(
        &'a self,
        _namespace: &'a mut TestNamespace,
        _context: &'a ProbeContext<'a>,
    ) -> Option<BoxFuture<'a, Vec<Verdict>>> {
        None
    }

    /// `None` when it has a live probe; else what a probe of it would need, said in
    /// its "not run" verdict. Known before a namespace is made for the probe.
    fn not_probed_because(&self) -> Option<&'static str> {
        Some("a live probe")
    }

    /// The CPU its probe's pods request at once, at most, for `submission`: what the
    /// cluster's CPU ledger reserves before the probe starts (see [`demand`]).
    fn cpu_demand(&self, _submission: &Submission) -> demand::CpuDemand {
        demand::CpuDemand::NONE
    }
}

/// Why a probe stopped before there was a run to judge: the submission's failure or
/// the environment's error, said once. Each probe turns it into its verdict with the
/// evidence it has gathered so far.
#[derive(Debug)]
pub(crate) struct Stop {
    pub outcome: crate::verdict::Outcome,
    pub message: String,
}

impl Stop {
    /// The submission's failure.
    pub fn fail(message: String) -> Stop {
        Stop {
            outcome: crate::verdict::Outcome::Fail,
            message,
        }
    }

    /// The cluster did not take the submission's objects: its failure with the API
    /// server's reasons, unless the sandbox itself failed (the environment's error).
    pub fn refused(submission: &Submission, error: &crate::cluster::ApplyError) -> Stop {
        Stop {
            outcome: refusal_outcome(error),
            message: refusal(submission, error),
        }
    }

    /// The environment's, not the submission's.
    pub fn error(message: String) -> Stop {
        Stop {
            outcome: crate::verdict::Outcome::Error,
            message,
        }
    }
}

/// A refusal's outcome: the submission's failure, or the environment's error when the
/// sandbox itself failed.
pub(crate) fn refusal_outcome(error: &crate::cluster::ApplyError) -> crate::verdict::Outcome {
    if error.is_sandbox_failure() {
        crate::verdict::Outcome::Error
    } else {
        crate::verdict::Outcome::Fail
    }
}

/// Why the cluster did not take a probe's objects, in one sentence for its verdict: the
/// API server's own message (validation, an admission webhook, quota) or the sandbox's
/// reason, naming each object with the file and line the submission wrote it at, so that
/// the student fixes the object the cluster refused.
pub(crate) fn refusal(submission: &Submission, error: &crate::cluster::ApplyError) -> String {
    if error.is_sandbox_failure() {
        return format!("the grader's sandbox lost its grant: {error}");
    }
    use crate::cluster::ApplyError;
    // "Kind name" as the apply names it; the submission's object of that kind and name.
    let located = |object: &str| {
        let (kind, name) = object.split_once(' ').unwrap_or((object, ""));
        match submission
            .objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
        {
            Some(found) => format!("{object} ({})", found.location()),
            None => object.to_string(),
        }
    };
    match error {
        ApplyError::Rejected { rejections } => format!(
            "the API server refused {}",
            rejections
                .iter()
                .map(|r| format!("{}: {}", located(&r.object), r.api_message()))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        ApplyError::Refused { refusals } => format!(
            "the grader's sandbox refused {}",
            refusals
                .iter()
                .map(|r| format!("{}: {}", located(&r.object), r.reason))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        ApplyError::Discovery { .. } => error.to_string(),
    }
}

/// The verdict of a KEDA probe (keda-scale-to-zero, keda-cron) that stopped early: its
/// reason, the notes, KEDA's view and the Warning events seen (KEDA's among them).
pub(crate) fn stop_verdict_for(
    id: CriterionId,
    stop: Stop,
    notes: &[String],
    recording: &KedaRecording,
    timeline: Option<&Timeline>,
) -> Verdict {
    let mut evidence = Vec::new();
    evidence.extend(Evidence::notes(notes));
    if let Some(reason) = recording.not_ready() {
        evidence.push(Evidence::Values {
            values: vec![("KEDA: ScaledObject Ready=False".into(), reason)],
        });
    }
    if let Some(timeline) = timeline {
        evidence.extend(timeline.stop_evidence());
    }
    Verdict::new(id, stop.outcome, stop.message, evidence)
}

/// A probe's one verdict once its run is over: the judge's when the run went to the end,
/// with the run's notes (if any) and the timeline's file as evidence; else `stopped`'s,
/// which turns the stop into a verdict with the evidence the probe gathered. Either way
/// `saved` (where the probe saved its own recording) is its last note.
pub(crate) fn verdict_of_run(
    judged: Result<Verdict, Stop>,
    notes: &[String],
    timeline: &Timeline,
    saved: Option<String>,
    stopped: impl FnOnce(Stop) -> Verdict,
) -> Verdict {
    let mut verdict = match judged {
        Ok(mut verdict) => {
            verdict.evidence.extend(Evidence::notes(notes));
            verdict.evidence.extend(timeline.file_evidence());
            verdict
        }
        Err(stop) => stopped(stop),
    };
    if let Some(text) = saved {
        verdict.evidence.push(Evidence::Note { text });
    }
    verdict
}

/// Every criterion module, in rubric order. Grading walks this list.
pub const REGISTRY: &[&dyn Criterion] = &[
    &metrics_server::MetricsServer,
    &quota_limits::QuotaLimits,
    &hpa_cpu::HpaCpu,
    &hpa_custom::HpaCustom,
    &vpa::Vpa,
    &keda_scale_to_zero::KedaScaleToZero,
    &keda_cron::KedaCron,
    &pdb::Pdb,
    &gpu_pool::GpuPool,
    &cluster_autoscaler::ClusterAutoscaler,
    &load_testing::LoadTesting::GRADING,
    &docs::Docs,
    &monitoring::Monitoring,
    &manifests_valid::ManifestsValid,
    &workloads::Workloads,
];

/// Every criterion, in registry order. IDs are stable: `rubric.toml`, checks and
/// live tests name them.
pub fn all() -> impl Iterator<Item = &'static CriterionInfo> {
    REGISTRY.iter().flat_map(|c| c.about().iter())
}

/// Looks a criterion up by its ID.
pub fn find(id: &str) -> Option<&'static CriterionInfo> {
    all().find(|c| c.id.as_str() == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_objects_file_and_line_and_keeps_the_api_servers_words() {
        use crate::cluster::{ApplyError, Refusal, Rejection};
        let submission = crate::checks::test_support::submission_of(
            "manifests/api.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: other\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n",
        );
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "code": 422,
            "reason": "Invalid",
            "message": "Deployment.apps \"api\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`",
        }))
        .unwrap();
        let rejected = ApplyError::Rejected {
            rejections: vec![Rejection {
                object: "Deployment api".into(),
                source: kube::Error::Api(Box::new(status)),
            }],
        };
        assert_eq!(
            refusal(&submission, &rejected),
            "the API server refused Deployment api (manifests/api.yaml:6:1): Deployment.apps \"api\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`"
        );
        let refused = ApplyError::Refused {
            refusals: vec![Refusal {
                object: "Service other".into(),
                reason: "type LoadBalancer is not allowed".into(),
            }],
        };
        assert_eq!(
            refusal(&submission, &refused),
            "the grader's sandbox refused Service other (manifests/api.yaml:1:1): type LoadBalancer is not allowed"
        );
    }

    #[test]
    fn the_sandbox_losing_its_grant_is_an_error_and_the_submissions_own_403s_fail() {
        use crate::cluster::{ApplyError, Rejection};
        use crate::verdict::Outcome;
        let submission = crate::checks::test_support::submission_of(
            "manifests/quota.yaml",
            "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: q\n",
        );
        let forbidden = |message: &str| ApplyError::Rejected {
            rejections: vec![Rejection {
                object: "ResourceQuota q".into(),
                source: kube::Error::Api(Box::new(
                    serde_json::from_value(serde_json::json!({
                        "code": 403, "reason": "Forbidden", "message": message,
                    }))
                    .unwrap(),
                )),
            }],
        };
        // The namespace was swept while its probe waited: RBAC went with it.
        let revoked = forbidden(
            "resourcequotas \"q\" is forbidden: User \"system:serviceaccount:ac-t-1:autoscale-conformance-sandbox-applier\" cannot patch resource \"resourcequotas\" in API group \"\" in the namespace \"ac-t-1\"",
        );
        assert_eq!(refusal_outcome(&revoked), Outcome::Error);
        let stop = Stop::refused(&submission, &revoked);
        assert_eq!(stop.outcome, Outcome::Error);
        assert!(
            stop.message
                .starts_with("the grader's sandbox lost its grant: ")
        );
        for own in [
            "pods \"p\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1",
            "pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": privileged",
            "admission webhook \"vpod.kb.io\" denied the request: no",
        ] {
            let error = forbidden(own);
            assert_eq!(refusal_outcome(&error), Outcome::Fail, "{own}");
            assert!(refusal(&submission, &error).starts_with(
                "the API server refused ResourceQuota q (manifests/quota.yaml:1:1): "
            ));
        }
    }

    #[test]
    fn criterion_ids_are_unique() {
        let mut ids: Vec<_> = all().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len());
        assert!(find("hpa-cpu").is_some_and(|c| c.cncf_ai_conformance == Some("pod_autoscaling")));
        assert!(find("nope").is_none());
    }

    #[test]
    fn verdict_of_run_adds_notes_and_timeline_file_to_a_judged_run_and_the_saved_note_to_both() {
        use crate::verdict::Outcome;
        let mut timeline = Timeline::new("run", "2026-01-01T00:00:00Z");
        timeline.saved_to = Some("run.json".into());
        let note = |text: &str| Evidence::Note { text: text.into() };
        let judged = Verdict::new("c", Outcome::Pass, "scaled", Vec::new());
        let notes = ["one".to_string(), "two".to_string()];
        let saved = Some("saved to x".to_string());
        let unused = |_: Stop| -> Verdict { unreachable!("the run went to the end") };
        let verdict = verdict_of_run(Ok(judged.clone()), &notes, &timeline, saved.clone(), unused);
        assert_eq!(verdict.outcome, Outcome::Pass);
        assert_eq!(
            verdict.evidence,
            [
                note("one\ntwo"),
                Evidence::TimelineFile {
                    path: "run.json".into()
                },
                note("saved to x"),
            ]
        );
        let verdict = verdict_of_run(Ok(judged), &[], &timeline, None, unused);
        assert_eq!(
            verdict.evidence,
            [Evidence::TimelineFile {
                path: "run.json".into()
            }]
        );
        let stopped = verdict_of_run(
            Err(Stop::error("gone".into())),
            &notes,
            &timeline,
            saved,
            |stop| Verdict::new("c", stop.outcome, stop.message, Vec::new()),
        );
        assert_eq!(
            (stopped.outcome, stopped.message.as_str()),
            (Outcome::Error, "gone")
        );
        assert_eq!(stopped.evidence, [note("saved to x")]);
    }
}
