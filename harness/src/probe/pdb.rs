//! Live probe of `pdb`: evictions through the Eviction API are allowed exactly as far
//! as the submission's PodDisruptionBudget allows, and refused beyond it with
//! 429 and the DisruptionBudget cause. Replacement pods are held back by a quota
//! during the evictions, so only the budget decides (see `freeze_pod_count`).

use crate::cluster::{TestNamespace, deployment_available, wait_for};
use crate::submission::{Object, Submission, Typed};
use crate::verdict::{Evidence, Outcome, Verdict};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams, PostParams};
use std::time::Duration;

pub const PDB: &str = "pdb";

/// Disruptions a budget allows with `expected` pods, all healthy (the disruption
/// controller's arithmetic: percentages of minAvailable round up, of maxUnavailable round up too).
pub fn allowed_disruptions(pdb: &PodDisruptionBudget, expected: i32) -> i32 {
    let spec = pdb.spec.as_ref();
    let scaled = |value: &IntOrString| match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(text) => {
            let percent: f64 = text.trim_end_matches('%').parse().unwrap_or(0.0);
            (percent * f64::from(expected) / 100.0).ceil() as i32
        }
    };
    if let Some(min_available) = spec.and_then(|s| s.min_available.as_ref()) {
        (expected - scaled(min_available)).max(0)
    } else if let Some(max_unavailable) = spec.and_then(|s| s.max_unavailable.as_ref()) {
        scaled(max_unavailable).min(expected).max(0)
    } else {
        // Neither field set: the budget constrains nothing.
        expected
    }
}

fn verdict(outcome: Outcome, message: String, evidence: Vec<Evidence>) -> Verdict {
    Verdict {
        id: PDB.into(),
        outcome,
        message,
        findings: Vec::new(),
        evidence,
    }
}

/// The workloads a PDB's selector picks among the submission's objects.
fn protected_workload<'a>(submission: &'a Submission, pdb: &Object) -> Option<&'a Object> {
    let Typed::PodDisruptionBudget(typed) = &pdb.typed else {
        return None;
    };
    let selector = typed
        .spec
        .as_ref()?
        .selector
        .as_ref()?
        .match_labels
        .clone()
        .unwrap_or_default();
    submission.objects.iter().find(|o| {
        matches!(o.typed, Typed::Deployment(_))
            && o.same_namespace(pdb.namespace.as_deref())
            && o.pod_template()
                .and_then(|t| t.labels)
                .is_some_and(|labels| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
    })
}

/// Probes the first PDB; `workload` names the Deployment it is meant to protect when
/// the selector matches none (a broken budget), so the eviction is still tried.
pub async fn probe(
    namespace: &mut TestNamespace,
    submission: &Submission,
    pdb_name: &str,
    workload: &str,
) -> Verdict {
    let Some(pdb_object) = submission
        .objects
        .iter()
        .find(|o| matches!(o.typed, Typed::PodDisruptionBudget(_)) && o.name == pdb_name)
    else {
        return verdict(
            Outcome::Fail,
            format!("expected a PodDisruptionBudget {pdb_name}; none found"),
            Vec::new(),
        );
    };
    let Some(target) = protected_workload(submission, pdb_object).or_else(|| {
        submission
            .objects
            .iter()
            .find(|o| matches!(o.typed, Typed::Deployment(_)) && o.name == workload)
    }) else {
        return verdict(
            Outcome::Fail,
            format!("no Deployment for {} to protect", pdb_object.describe()),
            Vec::new(),
        );
    };
    // An HPA-managed target may leave spec.replicas to the HPA: then its minReplicas
    // is what runs when nothing is under load.
    let hpa_min = submission.objects.iter().find_map(|o| match &o.typed {
        Typed::HorizontalPodAutoscaler(h)
            if h.spec.scale_target_ref.name == target.name
                && o.same_namespace(target.namespace.as_deref()) =>
        {
            h.spec.min_replicas
        }
        _ => None,
    });
    let written = target
        .value()
        .pointer("/spec/replicas")
        .and_then(serde_json::Value::as_i64)
        .map(|r| r as i32);
    let replicas = written.or(hpa_min).unwrap_or(1);
    let mut target_value = target.value().clone();
    target_value["spec"]["replicas"] = serde_json::json!(replicas);
    if let Err(e) = namespace
        .apply(&[target_value, pdb_object.value().clone()])
        .await
    {
        return verdict(
            Outcome::Fail,
            format!("the cluster refused the objects: {e}"),
            Vec::new(),
        );
    }
    let deployments: Api<Deployment> = namespace.api();
    if let Err(e) = wait_for(
        &deployments,
        &target.name,
        "the protected Deployment to be Available with all replicas ready",
        namespace.cluster.intervals.pod_ready * 4,
        move |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                deployment_available(d)
                    && d.status.as_ref().and_then(|s| s.ready_replicas) == Some(replicas)
            })
        },
        |d| format!("{:?}", d.and_then(|d| d.status.as_ref())),
    )
    .await
    {
        return verdict(
            Outcome::Error,
            format!("the workload never became ready: {e}"),
            Vec::new(),
        );
    }
    // The disruption controller must have counted the pods before evictions are judged.
    let pdbs: Api<PodDisruptionBudget> = namespace.api();
    let observed = wait_for(
        &pdbs,
        &pdb_object.name,
        "the disruption controller to count the budget's pods",
        Duration::from_secs(60),
        |p: Option<&PodDisruptionBudget>| {
            p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
                s.observed_generation.is_some() && s.current_healthy == s.expected_pods
            })
        },
        |p| format!("{:?}", p.and_then(|p| p.status.as_ref())),
    )
    .await;
    let status = match observed {
        Ok(Some(pdb)) => pdb.status.unwrap_or_default(),
        Ok(None) | Err(_) => pdbs
            .get_opt(&pdb_object.name)
            .await
            .ok()
            .flatten()
            .and_then(|p| p.status)
            .unwrap_or_default(),
    };
    let Typed::PodDisruptionBudget(spec) = &pdb_object.typed else {
        unreachable!("a PDB")
    };
    let expected_allowed = allowed_disruptions(spec, replicas);
    let selector = spec
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .and_then(|s| s.match_labels.as_ref())
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let mut values = vec![
        ("replicas".to_string(), replicas.to_string()),
        (
            "budget".to_string(),
            format!(
                "{:?}",
                spec.spec
                    .as_ref()
                    .map(|s| (&s.min_available, &s.max_unavailable))
            ),
        ),
        ("selector".into(), selector.clone()),
        (
            "pods the budget counts (expectedPods)".into(),
            status.expected_pods.unwrap_or(0).to_string(),
        ),
        (
            "disruptions allowed by the spec".into(),
            expected_allowed.to_string(),
        ),
        (
            "PDB status before evicting".into(),
            format!(
                "currentHealthy={:?} desiredHealthy={:?} disruptionsAllowed={:?}",
                status.current_healthy, status.desired_healthy, status.disruptions_allowed
            ),
        ),
    ];

    // Evict every pod of the workload, back to back, as a drain would.
    let pods: Api<Pod> = namespace.api();
    let labels = target
        .pod_template()
        .and_then(|t| t.labels)
        .cloned()
        .unwrap_or_default();
    let label_selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let listed = match pods
        .list(&ListParams::default().labels(&label_selector))
        .await
    {
        Ok(list) => list.items,
        Err(e) => return verdict(Outcome::Error, format!("listing pods: {e}"), Vec::new()),
    };
    let mut allowed = 0;
    let mut refusals = Vec::new();
    // Hold back replacements: a fast-starting replacement could become healthy between
    // two evictions and legitimately allow the next one; the probe would then measure
    // the workload's start-up time instead of the budget.
    if let Err(e) = freeze_pod_count(namespace).await {
        return verdict(
            Outcome::Error,
            format!("could not hold back replacement pods: {e}"),
            Vec::new(),
        );
    }
    // kube's default client retries 429 with backoff for minutes: an eviction refused
    // by the budget must come back as the refusal, at once.
    let mut config = namespace.cluster.config.clone();
    config.default_retry = false;
    let evictions: Api<Pod> = match kube::Client::try_from(config) {
        Ok(client) => Api::namespaced(client, &namespace.name),
        Err(e) => {
            return verdict(
                Outcome::Error,
                format!("no client for evictions: {e}"),
                Vec::new(),
            );
        }
    };
    let names: Vec<String> = listed
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect();
    let mut results = Vec::new();
    for name in &names {
        results.push(evict(&evictions, name).await);
    }
    for (name, result) in names.iter().zip(results) {
        match result {
            Ok(_) => allowed += 1,
            Err(kube::Error::Api(status)) if status.code == 429 => {
                refusals.push(format!(
                    "{name}: 429 {} ({})",
                    status.message, status.reason
                ));
            }
            Err(e) => {
                return verdict(
                    Outcome::Error,
                    format!("eviction of {name} failed unexpectedly: {e}"),
                    Vec::new(),
                );
            }
        }
    }
    values.push((
        "evictions allowed".into(),
        format!("{allowed} of {}", listed.len()),
    ));
    let mut evidence = vec![Evidence::Values { values }];
    if !refusals.is_empty() {
        evidence.push(Evidence::Events {
            lines: refusals.clone(),
        });
    }
    let budget_cause = refusals.iter().any(|r| r.contains("disruption budget"));
    if status.expected_pods.unwrap_or(0) == 0 {
        return verdict(
            Outcome::Fail,
            format!(
                "{} matches no pod (selector {selector}), so it protects nothing: {allowed} of {} evictions were allowed; expected at most {expected_allowed}",
                pdb_object.describe(),
                listed.len()
            ),
            evidence,
        );
    }
    if allowed > expected_allowed {
        return verdict(
            Outcome::Fail,
            format!(
                "expected at most {expected_allowed} eviction(s) allowed by {}; {allowed} were allowed",
                pdb_object.describe()
            ),
            evidence,
        );
    }
    if allowed < expected_allowed.min(listed.len() as i32) {
        return verdict(
            Outcome::Fail,
            format!(
                "expected {expected_allowed} eviction(s) to be allowed by {}; only {allowed} were (refusals: {})",
                pdb_object.describe(),
                refusals.join("; ")
            ),
            evidence,
        );
    }
    if (listed.len() as i32) > allowed && !budget_cause {
        return verdict(
            Outcome::Fail,
            format!(
                "evictions were refused, but not for the disruption budget: {}",
                refusals.join("; ")
            ),
            evidence,
        );
    }
    verdict(
        Outcome::Pass,
        format!(
            "{}: {allowed} of {} back-to-back evictions allowed (the budget allows {expected_allowed}), the rest refused with 429 DisruptionBudget",
            pdb_object.describe(),
            listed.len()
        ),
        evidence,
    )
}

/// Holds back replacement pods: a LimitRange whose per-pod CPU maximum no pod meets
/// refuses every new pod at admission, while running pods are untouched (admission
/// never revisits them). A ResourceQuota cannot do this: a terminating pod stops
/// counting against it at once, and a zero-pod quota stalled the eviction API.
async fn freeze_pod_count(
    namespace: &TestNamespace,
) -> Result<(), crate::cluster::EnvironmentError> {
    let limit_range = serde_json::json!({
        "apiVersion": "v1", "kind": "LimitRange",
        "metadata": {"name": "autoscale-conformance-freeze"},
        "spec": {"limits": [{"type": "Pod", "max": {"cpu": "1m"}}]}
    });
    namespace.apply_raw(&limit_range).await
}

/// A policy/v1 Eviction with its type and namespace spelled out.
async fn evict(pods: &Api<Pod>, name: &str) -> Result<kube::core::Status, kube::Error> {
    let namespace = pods.namespace().unwrap_or_default();
    let body = serde_json::json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    });
    pods.create_subresource("eviction", name, &PostParams::default(), &body)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn pdb(
        min_available: Option<IntOrString>,
        max_unavailable: Option<IntOrString>,
    ) -> PodDisruptionBudget {
        PodDisruptionBudget {
            spec: Some(k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec {
                min_available,
                max_unavailable,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[rstest]
    #[case(Some(IntOrString::Int(1)), None, 2, 1)]
    #[case(Some(IntOrString::Int(3)), None, 2, 0)]
    #[case(Some(IntOrString::String("50%".into())), None, 3, 1)]
    #[case(None, Some(IntOrString::String("30%".into())), 2, 1)]
    #[case(None, Some(IntOrString::Int(1)), 4, 1)]
    fn allowed_disruptions_follow_the_controller(
        #[case] min: Option<IntOrString>,
        #[case] max: Option<IntOrString>,
        #[case] pods: i32,
        #[case] allowed: i32,
    ) {
        assert_eq!(allowed_disruptions(&pdb(min, max), pods), allowed);
    }
}
