//! Live probe of `quota-limits`: the namespace's LimitRange gives defaults to a
//! container without resources, refuses a container over its max, and the
//! ResourceQuota refuses what would exceed it. All through server-side dry-run:
//! admission runs for real, nothing is created. A [`Recorder`] keeps the quota's
//! status (hard/used) and a marker per admission outcome (`admitted: ..`, `refused: ..`);
//! [`judge_admission`] reaches the verdict from what admission answered.

use super::ID;
use super::judge::{
    Admission, OverMax, OverQuota, judge_admission, over_quota_sizing, quantity, quota_headroom,
};
use crate::cluster::{FIELD_MANAGER, TestNamespace};
use crate::criteria::ProbeContext;
use crate::criteria::demand::CpuDemand;
use crate::observe::Recorder;
use crate::submission::{Object, Submission, Typed};
use crate::timeline::Observation;
use crate::verdict::{Evidence, Outcome, Verdict};
use backon::{ConstantBuilder, Retryable};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

pub async fn run(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Vec<Verdict> {
    let submission = context.submission;
    let recorder = Recorder::start(
        namespace,
        &format!("{ID}-{}", namespace.name),
        context.timelines,
    );
    let quota = submission
        .objects
        .iter()
        .find(|o| matches!(o.typed, Typed::ResourceQuota(_)))
        .map(|o| o.name.clone());
    // Boxed: the probe's state stays off the caller's stack (the grader joins probes).
    let mut verdict = Box::pin(admission(namespace, submission, &recorder)).await;
    let timeline = recorder.finish();
    // The probe's admission outcomes and the submission's quota as the controller wrote
    // its status (not the namespace's other quotas).
    let points = timeline.excerpt(|o| match o {
        Observation::Quota { name, hard, .. } => Some(name) == quota.as_ref() && !hard.is_empty(),
        Observation::Marker { .. } | Observation::Event { .. } => true,
        _ => false,
    });
    if !points.is_empty() {
        verdict.evidence.push(Evidence::Timeline { points });
    }
    verdict.evidence.extend(timeline.file_evidence());
    vec![verdict]
}

/// Its pods only go through admission as dry runs: none is ever scheduled.
pub fn cpu_demand(_: &Submission) -> CpuDemand {
    CpuDemand::NONE
}

fn pod(name: &str, containers: Vec<Value>) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"containers": containers}}))
        .expect("static pod")
}

fn container(name: &str, resources: Value) -> Value {
    json!({"name": name, "image": crate::cluster::INFERENCE_IMAGE, "imagePullPolicy": "IfNotPresent", "resources": resources})
}

/// The quota's status as last recorded, for messages: "hard [..] used [..] at t=..".
fn quota_status(recorder: &Recorder, name: &str) -> String {
    let timeline = recorder.snapshot();
    match timeline.quota(name) {
        Some(state) => {
            let pairs = |m: &std::collections::BTreeMap<String, String>| {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            format!(
                "ResourceQuota {name} status at t={:.1} s: hard [{}], used [{}]",
                state.t,
                pairs(state.hard),
                pairs(state.used)
            )
        }
        None => format!("no status of ResourceQuota {name} was recorded"),
    }
}

/// Where the dry-run pods go: the test namespace, through admission, never created.
struct DryRun<'a> {
    pods: Api<Pod>,
    params: PostParams,
    recorder: &'a Recorder,
}

/// Applies the LimitRange and ResourceQuota and sends the three dry-run pods through
/// admission, marking each outcome on the timeline (`admitted: ..`, `refused: ..`).
async fn admission(
    namespace: &mut TestNamespace,
    submission: &Submission,
    recorder: &Recorder,
) -> Verdict {
    let limit_range = submission
        .objects
        .iter()
        .find(|o| matches!(o.typed, Typed::LimitRange(_)));
    let quota = submission
        .objects
        .iter()
        .find(|o| matches!(o.typed, Typed::ResourceQuota(_)));
    let (Some(limit_range), Some(quota)) = (limit_range, quota) else {
        return Verdict::new(
            ID,
            Outcome::Fail,
            "expected a LimitRange and a ResourceQuota in the submission; found none or only one",
            Vec::new(),
        );
    };
    let objects = vec![limit_range.value().clone(), quota.value().clone()];
    if let Err(e) = namespace
        .apply(&submission.as_kubectl_sends(&objects))
        .await
    {
        recorder.mark(&format!("refused: LimitRange/ResourceQuota: {e}"));
        return Verdict::new(
            ID,
            crate::criteria::refusal_outcome(&e),
            crate::criteria::refusal(submission, &e),
            Vec::new(),
        );
    }
    recorder.mark(&format!(
        "applied: LimitRange {}, ResourceQuota {}",
        limit_range.name, quota.name
    ));
    let container_limits = limit_range
        .value()
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter()
                .find(|l| l.get("type").and_then(Value::as_str) == Some("Container"))
        })
        .cloned()
        .unwrap_or(Value::Null);
    let dry_run = DryRun {
        pods: namespace.api(),
        params: PostParams {
            dry_run: true,
            field_manager: Some(FIELD_MANAGER.into()),
        },
        recorder,
    };
    // The quota controller must have computed the quota's status before admission
    // enforces it; a dry-run create before that is refused with "status unknown".
    // The recorder watches the quota: wait until its timeline has that status.
    let quota_name = quota.name.clone();
    let has_status = recorder
        .caught_up(std::time::Duration::from_secs(30), |t| {
            t.quota(&quota_name).is_some_and(|q| !q.hard.is_empty())
        })
        .await;
    if !has_status {
        recorder.mark("quota-status-missing");
    }
    // As it stood before the dry-runs: the messages cite it.
    let quota_status = quota_status(recorder, &quota.name);
    let defaults = ask_defaults(&dry_run).await;
    let over_max = ask_over_max(&dry_run, &container_limits).await;
    let slack = namespace.cluster.intervals.observation_slack;
    let over_quota = ask_over_quota(&dry_run, submission, quota, &container_limits, slack).await;
    judge_admission(&Admission {
        quota_status,
        container_limits,
        defaults,
        over_max,
        over_quota,
        quota_namespace: quota.namespace.clone(),
    })
}

/// First: a container that declares nothing; the resources admission gives it.
async fn ask_defaults(dry_run: &DryRun<'_>) -> Result<Value, String> {
    let asked = pod("defaults", vec![container("c", json!({}))]);
    match dry_run.pods.create(&dry_run.params, &asked).await {
        Ok(created) => {
            let resources =
                serde_json::to_value(created.spec.as_ref().map(|s| &s.containers[0].resources))
                    .unwrap_or_default();
            dry_run
                .recorder
                .mark(&format!("admitted: defaults, resources {resources}"));
            Ok(resources)
        }
        Err(e) => {
            let message = api_message(&e);
            dry_run
                .recorder
                .mark(&format!("refused: defaults: {message}"));
            Err(message)
        }
    }
}

/// Second: a container over the LimitRange's max CPU (when it sets one) is refused.
async fn ask_over_max(dry_run: &DryRun<'_>, container_limits: &Value) -> Option<OverMax> {
    let max_cpu = quantity(container_limits, "/max/cpu")?;
    let over = format!("{}m", ((max_cpu + 1.0) * 1000.0).round() as i64);
    let resources = json!({"requests": {"cpu": over, "memory": "256Mi"}, "limits": {"cpu": over, "memory": "256Mi"}});
    let asked = pod("over-max", vec![container("c", resources)]);
    let refusal = match dry_run.pods.create(&dry_run.params, &asked).await {
        Ok(_) => {
            dry_run
                .recorder
                .mark(&format!("admitted: over-max ({over} CPU)"));
            None
        }
        Err(e) => {
            let message = api_message(&e);
            dry_run
                .recorder
                .mark(&format!("refused: over-max ({over} CPU): {message}"));
            Some(message)
        }
    };
    Some(OverMax {
        max_cpu,
        asked: over,
        refusal,
    })
}

/// Third: what would exceed the quota's `requests.cpu` (when it bounds it) is refused,
/// with the quota's reason. A quota no bounded pod within the LimitRange can exceed is
/// the submission's fault, said without asking ([`over_quota_sizing`]).
async fn ask_over_quota(
    dry_run: &DryRun<'_>,
    submission: &Submission,
    quota: &Object,
    container_limits: &Value,
    slack: std::time::Duration,
) -> Option<Result<OverQuota, String>> {
    let quota_cpu = quantity(quota.value(), "/spec/hard/requests.cpu")
        .or_else(|| quantity(quota.value(), "/spec/hard/cpu"))?;
    let recorder = dry_run.recorder;
    let sizing = match over_quota_sizing(quota_cpu, quantity(container_limits, "/max/cpu")) {
        Ok(sizing) => sizing,
        Err(reason) => {
            recorder.mark(&format!("not asked: over-quota: {reason}"));
            return Some(Err(reason));
        }
    };
    let count = sizing.count;
    let cpu = format!("{}m", sizing.millicores);
    let containers = (0..count)
        .map(|i| container(&format!("c{i}"), json!({"requests": {"cpu": cpu, "memory": "256Mi"}, "limits": {"cpu": cpu, "memory": "256Mi"}})))
        .collect();
    // The API server's quota admission reads quotas from its own cache: a quota
    // created a moment ago may not be enforced yet although its status is written
    // (the namespace's other quota keeps admission from looking it up live). Ask
    // again for a few seconds while the pod is admitted; a refusal ends it.
    let over_quota = pod("over-quota", containers);
    let tries = std::sync::atomic::AtomicU32::new(0);
    let asked_at = recorder.now();
    let attempt = || async {
        tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match dry_run.pods.create(&dry_run.params, &over_quota).await {
            Ok(_) => Err(()),
            Err(e) => Ok(api_message(&e)),
        }
    };
    let every = std::time::Duration::from_millis(250);
    let refused = attempt
        .retry(
            ConstantBuilder::default()
                .with_delay(every)
                .with_max_times((slack.as_millis() / every.as_millis()) as usize),
        )
        .await;
    let tries = tries.into_inner();
    match &refused {
        Err(()) => recorder.mark(&format!(
            "admitted: over-quota ({count} x {cpu} CPU), {tries} tries over {:.1} s",
            recorder.now() - asked_at
        )),
        Ok(message) => recorder.mark(&format!(
            "refused: over-quota ({count} x {cpu} CPU, try {tries}): {message}"
        )),
    };
    Some(Ok(OverQuota {
        count,
        cpu,
        quota_cpu,
        tries,
        retried_for_seconds: slack.as_secs_f64(),
        refusal: refused.ok(),
        headroom: quota_headroom(submission, quota.namespace.as_deref(), quota_cpu),
    }))
}

fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
