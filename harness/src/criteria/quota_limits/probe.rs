//! Live probe of `quota-limits`: the namespace's LimitRange gives defaults to a
//! container without resources, refuses a container over its max, and the
//! ResourceQuota refuses what would exceed it. All through server-side dry-run:
//! admission runs for real, nothing is created. A [`Recorder`] keeps the quota's
//! status (hard/used) and a marker per admission outcome (`admitted: ..`, `refused: ..`).

use crate::cluster::{FIELD_MANAGER, TestNamespace};
use crate::observe::Recorder;
use crate::submission::quantity::parse_quantity;
use crate::submission::{Submission, Typed};
use crate::timeline::Observation;
use crate::verdict::{Evidence, Outcome, Verdict};
use backon::{ConstantBuilder, Retryable};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

pub const QUOTA_LIMITS: &str = "quota-limits";

fn pod(name: &str, containers: Vec<Value>) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"containers": containers}}))
        .expect("static pod")
}

fn container(name: &str, resources: Value) -> Value {
    json!({"name": name, "image": crate::cluster::INFERENCE_IMAGE, "imagePullPolicy": "IfNotPresent", "resources": resources})
}

fn quantity(value: &Value, pointer: &str) -> Option<f64> {
    value
        .pointer(pointer)
        .and_then(|q| {
            q.as_str()
                .map(str::to_string)
                .or_else(|| q.as_f64().map(|f| f.to_string()))
        })
        .and_then(|q| parse_quantity(&q).ok())
}

/// Quota headroom against the HPAs: Σ maxReplicas × per-pod CPU request vs the quota.
pub fn quota_headroom(
    submission: &Submission,
    namespace: Option<&str>,
    quota_cpu: f64,
) -> Vec<(String, String)> {
    let mut needed = 0.0;
    let mut lines = Vec::new();
    for object in &submission.objects {
        let Typed::HorizontalPodAutoscaler(hpa) = &object.typed else {
            continue;
        };
        if !object.same_namespace(namespace) {
            continue;
        }
        let reference = &hpa.spec.scale_target_ref;
        let Some(target) = submission.find_workload(
            Some(&reference.kind),
            &reference.name,
            object.namespace.as_deref(),
        ) else {
            continue;
        };
        let per_pod: f64 = target
            .value()
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| quantity(c, "/resources/requests/cpu"))
            .sum();
        let at_max = per_pod * f64::from(hpa.spec.max_replicas);
        needed += at_max;
        lines.push((
            format!("{} at maxReplicas={}", object.name, hpa.spec.max_replicas),
            format!("{at_max:.2} CPU requested"),
        ));
    }
    lines.push(("quota requests.cpu".into(), format!("{quota_cpu:.2}")));
    lines.push((
        "headroom at every HPA's maxReplicas".into(),
        format!("{:.2} CPU", quota_cpu - needed),
    ));
    lines
}

fn verdict(outcome: Outcome, message: String, evidence: Vec<Evidence>) -> Verdict {
    Verdict {
        id: QUOTA_LIMITS.into(),
        outcome,
        message,
        findings: Vec::new(),
        evidence,
    }
}

pub async fn probe(namespace: &mut TestNamespace, submission: &Submission) -> Verdict {
    let recorder = Recorder::start(namespace, &format!("{QUOTA_LIMITS}-{}", namespace.name));
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
    verdict
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
        return verdict(
            Outcome::Fail,
            "expected a LimitRange and a ResourceQuota in the submission; found none or only one"
                .into(),
            Vec::new(),
        );
    };
    let quota_namespace = quota.namespace.clone();
    let objects = vec![limit_range.value().clone(), quota.value().clone()];
    if let Err(e) = namespace.apply(&objects).await {
        recorder.mark(&format!("refused: LimitRange/ResourceQuota: {e}"));
        return verdict(
            Outcome::Fail,
            format!("the cluster refused the LimitRange/ResourceQuota: {e}"),
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
    let mut problems = Vec::new();
    let mut values = Vec::new();
    let pods: Api<Pod> = namespace.api();
    let dry_run = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.into()),
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
    let status = quota_status(recorder, &quota.name);
    values.push(("quota status".into(), status.clone()));

    // 1. Defaults for a container that declares nothing.
    match pods
        .create(&dry_run, &pod("defaults", vec![container("c", json!({}))]))
        .await
    {
        Ok(created) => {
            let resources =
                serde_json::to_value(created.spec.as_ref().map(|s| &s.containers[0].resources))
                    .unwrap_or_default();
            recorder.mark(&format!("admitted: defaults, resources {resources}"));
            for (field, limit_field) in [("requests", "defaultRequest"), ("limits", "default")] {
                for resource in ["cpu", "memory"] {
                    let expected =
                        quantity(&container_limits, &format!("/{limit_field}/{resource}"));
                    let got = quantity(&resources, &format!("/{field}/{resource}"));
                    values.push((
                        format!("{field}.{resource}"),
                        format!("expected {expected:?}, got {got:?}"),
                    ));
                    if expected.is_some() && expected != got {
                        problems.push(format!("expected LimitRange defaults {field}.{resource}={expected:?} on a container without resources; got {got:?} (see the [admitted: defaults] marker)"));
                    }
                }
            }
            if quantity(&container_limits, "/defaultRequest/cpu").is_none()
                && quantity(&container_limits, "/default/cpu").is_none()
            {
                problems.push("expected LimitRange defaults (default/defaultRequest) for containers; the LimitRange sets none".into());
            }
        }
        Err(e) => {
            let message = api_message(&e);
            recorder.mark(&format!("refused: defaults: {message}"));
            problems.push(format!("expected LimitRange defaults to let a container without resources in; the pod was refused: {message} (with {status})"));
        }
    }

    // 2. A container over the LimitRange max is refused.
    if let Some(max_cpu) = quantity(&container_limits, "/max/cpu") {
        let over = format!("{}m", ((max_cpu + 1.0) * 1000.0).round() as i64);
        let resources = json!({"requests": {"cpu": over, "memory": "256Mi"}, "limits": {"cpu": over, "memory": "256Mi"}});
        match pods
            .create(&dry_run, &pod("over-max", vec![container("c", resources)]))
            .await
        {
            Ok(_) => {
                recorder.mark(&format!("admitted: over-max ({over} CPU)"));
                problems.push(format!("expected a container asking {over} CPU (over the LimitRange max {max_cpu}) to be refused; it was admitted"));
            }
            Err(e) => {
                let message = api_message(&e);
                recorder.mark(&format!("refused: over-max ({over} CPU): {message}"));
                values.push(("over LimitRange max".into(), format!("refused: {message}")));
            }
        }
    } else {
        problems.push("expected a max CPU per container in the LimitRange; none is set".into());
    }

    // 3. What would exceed the quota is refused, with the quota's reason.
    let quota_cpu = quantity(quota.value(), "/spec/hard/requests.cpu")
        .or_else(|| quantity(quota.value(), "/spec/hard/cpu"));
    if let Some(quota_cpu) = quota_cpu {
        let per_container = quantity(&container_limits, "/max/cpu")
            .unwrap_or(quota_cpu)
            .min(quota_cpu);
        let count = (quota_cpu / per_container).floor() as usize + 1;
        let cpu = format!("{}m", (per_container * 1000.0).round() as i64);
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
            match pods.create(&dry_run, &over_quota).await {
                Ok(_) => Err(()),
                Err(e) => Ok(api_message(&e)),
            }
        };
        let slack = namespace.cluster.intervals.observation_slack;
        let every = std::time::Duration::from_millis(250);
        let refused = attempt
            .retry(
                ConstantBuilder::default()
                    .with_delay(every)
                    .with_max_times((slack.as_millis() / every.as_millis()) as usize),
            )
            .await;
        let tries = tries.into_inner();
        match refused {
            Err(()) => {
                recorder.mark(&format!(
                    "admitted: over-quota ({count} x {cpu} CPU), {tries} tries over {:.1} s",
                    recorder.now() - asked_at
                ));
                problems.push(format!("expected a pod requesting {count} x {cpu} CPU (over the quota's {quota_cpu}) to be refused; it was admitted on each of {tries} tries over {:.0} s ({status})", slack.as_secs_f64()));
            }
            Ok(message) => {
                recorder.mark(&format!(
                    "refused: over-quota ({count} x {cpu} CPU, try {tries}): {message}"
                ));
                if !message.contains("exceeded quota") {
                    problems.push(format!("expected the ResourceQuota to refuse {count} x {cpu} CPU with 'exceeded quota'; refused instead with: {message} ({status})"));
                }
                values.push((
                    "over quota".into(),
                    format!("refused (try {tries}): {message}"),
                ));
            }
        }
        values.extend(quota_headroom(
            submission,
            quota_namespace.as_deref(),
            quota_cpu,
        ));
    } else {
        problems.push("expected the ResourceQuota to bound requests.cpu; it does not".into());
    }
    let note = format!(
        "quota from namespace {}",
        quota_namespace.unwrap_or_default()
    );
    let evidence = vec![Evidence::Values { values }, Evidence::Note { text: note }];
    match problems.as_slice() {
        [] => verdict(
            Outcome::Pass,
            format!(
                "LimitRange defaults applied, over-max container refused, over-quota pod refused with the quota's reason ({status})"
            ),
            evidence,
        ),
        [first, ..] => verdict(Outcome::Fail, first.clone(), evidence),
    }
}

fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
