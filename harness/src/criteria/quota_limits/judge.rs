//! The judge of `quota-limits`: what admission answered to the probe's three
//! dry-run pods (defaults for a container without resources, a container over the
//! LimitRange's max, a pod over the quota), held against the submission's own
//! LimitRange and ResourceQuota. Pure: no cluster.

use super::ID;
use crate::submission::quantity::{format_quantity, parse_quantity, quantity_text};
use crate::submission::{Submission, Typed};
use crate::verdict::{Evidence, Outcome, Verdict};
use serde_json::Value;

/// What admission answered to the probe's dry-run pods.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    /// The quota's status as last recorded ("ResourceQuota q status at t=..: hard [..],
    /// used [..]"), cited by the messages.
    pub quota_status: String,
    /// The LimitRange's `type: Container` entry (`Null` when it has none).
    pub container_limits: Value,
    /// The resources admission gave a container that declared none, or the refusal.
    pub defaults: Result<Value, String>,
    /// A container over the LimitRange's max CPU; `None` when the LimitRange sets none.
    pub over_max: Option<OverMax>,
    /// A pod over the quota, or why no pod within the LimitRange can be ([`over_quota_sizing`]);
    /// `None` when the quota does not bound `requests.cpu`.
    pub over_quota: Option<Result<OverQuota, String>>,
    /// The namespace the submission's quota is written for.
    pub quota_namespace: Option<String>,
}

/// The container asking more CPU than the LimitRange's max.
#[derive(Debug, Clone, PartialEq)]
pub struct OverMax {
    pub max_cpu: f64,
    /// What it asked, as sent (`1100m`).
    pub asked: String,
    /// The API server's message; `None` when it was admitted.
    pub refusal: Option<String>,
}

/// The pod of `count` x `cpu` containers asking more CPU than the quota allows.
#[derive(Debug, Clone, PartialEq)]
pub struct OverQuota {
    pub count: usize,
    pub cpu: String,
    pub quota_cpu: f64,
    /// How often it was sent (admission's quota cache may lag a fresh quota).
    pub tries: u32,
    /// For how long it was sent again while admitted.
    pub retried_for_seconds: f64,
    /// The API server's message; `None` when every try was admitted.
    pub refusal: Option<String>,
    /// Quota headroom against the HPAs ([`quota_headroom`]).
    pub headroom: Vec<(String, String)>,
}

/// The most containers the over-quota pod may have. Its size follows the submission's
/// numbers (quota CPU / LimitRange max + 1), so without a bound `requests.cpu: 1E`
/// would ask for more containers than memory holds.
pub const MAX_OVER_QUOTA_CONTAINERS: u64 = 200;

/// The most CPU, in millicores, the over-quota pod may ask for in all: far past any
/// cluster, and inside the API server's int64 arithmetic.
const MAX_POD_MILLICORES: u64 = 1 << 62;

/// The over-quota pod: `count` containers of `millicores` CPU each, each within the
/// LimitRange's max and together over the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuotaSizing {
    pub count: usize,
    pub millicores: u64,
}

/// Sizes the over-quota pod from the quota's CPU and the LimitRange's max CPU per
/// container (cores), in whole millicores (the API server's resolution), or says why
/// no pod within the LimitRange can exceed the quota: that is the submission's limit,
/// a "fail" with this reason.
pub fn over_quota_sizing(quota_cpu: f64, max_cpu: Option<f64>) -> Result<OverQuotaSizing, String> {
    // `as` saturates: NaN and negatives give 0, what is past u64 gives u64::MAX.
    let quota = (quota_cpu * 1000.0).ceil() as u64;
    let max = max_cpu.map(|max| (max * 1000.0).floor() as u64);
    if max == Some(0) {
        return Err(format!(
            "the LimitRange's max CPU per container is {}: no container may request CPU, so no pod within it can exceed the quota",
            format_quantity("cpu", max_cpu.unwrap_or_default())
        ));
    }
    if quota_cpu.is_nan() || quota_cpu * 1000.0 >= MAX_POD_MILLICORES as f64 {
        return Err(format!(
            "the quota's requests.cpu {} is beyond what any pod can request: it bounds nothing",
            format_quantity("cpu", quota_cpu)
        ));
    }
    let millicores = max.unwrap_or(quota).min(quota).max(1);
    let count = (quota / millicores).saturating_add(1);
    if count > MAX_OVER_QUOTA_CONTAINERS {
        return Err(format!(
            "the quota's requests.cpu {} is more than {MAX_OVER_QUOTA_CONTAINERS} times the LimitRange's max CPU per container {}: a pod over the quota would need {count} containers; a quota no pod within the LimitRange can reach does not bound it",
            format_quantity("cpu", quota_cpu),
            format_quantity("cpu", max_cpu.unwrap_or_default()),
        ));
    }
    Ok(OverQuotaSizing {
        count: usize::try_from(count).unwrap_or(usize::MAX),
        millicores,
    })
}

/// A quantity at `pointer` in `value` (`"500m"`, `2`), in its base unit.
pub fn quantity(value: &Value, pointer: &str) -> Option<f64> {
    value
        .pointer(pointer)
        .and_then(quantity_text)
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

/// The verdict: LimitRange defaults applied, the over-max container refused, the
/// over-quota pod refused with the quota's reason. The first problem is the message.
pub fn judge_admission(admission: &Admission) -> Verdict {
    let status = &admission.quota_status;
    let mut problems = Vec::new();
    let mut values = vec![("quota status".to_string(), status.clone())];
    judge_defaults(admission, &mut problems, &mut values);
    match &admission.over_max {
        Some(over) => match &over.refusal {
            None => problems.push(format!("expected a container asking {} CPU (over the LimitRange max {}) to be refused; it was admitted", over.asked, over.max_cpu)),
            Some(message) => values.push(("over LimitRange max".into(), format!("refused: {message}"))),
        },
        None => problems.push("expected a max CPU per container in the LimitRange; none is set".into()),
    }
    match &admission.over_quota {
        Some(Ok(over)) => judge_over_quota(over, status, &mut problems, &mut values),
        Some(Err(unsizable)) => problems.push(unsizable.clone()),
        None => {
            problems.push("expected the ResourceQuota to bound requests.cpu; it does not".into())
        }
    }
    let note = format!(
        "quota from namespace {}",
        admission.quota_namespace.clone().unwrap_or_default()
    );
    let evidence = vec![Evidence::Values { values }, Evidence::Note { text: note }];
    match problems.as_slice() {
        [] => Verdict::new(
            ID,
            Outcome::Pass,
            format!(
                "LimitRange defaults applied, over-max container refused, over-quota pod refused with the quota's reason ({status})"
            ),
            evidence,
        ),
        [first, ..] => Verdict::new(ID, Outcome::Fail, first.clone(), evidence),
    }
}

/// The container without resources got the LimitRange's defaults (and it has some).
fn judge_defaults(
    admission: &Admission,
    problems: &mut Vec<String>,
    values: &mut Vec<(String, String)>,
) {
    let limits = &admission.container_limits;
    let resources = match &admission.defaults {
        Ok(resources) => resources,
        Err(message) => {
            problems.push(format!("expected LimitRange defaults to let a container without resources in; the pod was refused: {message} (with {})", admission.quota_status));
            return;
        }
    };
    for (field, limit_field) in [("requests", "defaultRequest"), ("limits", "default")] {
        for resource in ["cpu", "memory"] {
            let expected = quantity(limits, &format!("/{limit_field}/{resource}"));
            let got = quantity(resources, &format!("/{field}/{resource}"));
            values.push((
                format!("{field}.{resource}"),
                format!("expected {expected:?}, got {got:?}"),
            ));
            if expected.is_some() && expected != got {
                problems.push(format!("expected LimitRange defaults {field}.{resource}={expected:?} on a container without resources; got {got:?} (see the [admitted: defaults] marker)"));
            }
        }
    }
    if quantity(limits, "/defaultRequest/cpu").is_none()
        && quantity(limits, "/default/cpu").is_none()
    {
        // The API server then defaults `default` to `max` and `defaultRequest` to
        // `default`: such a container reserves the maximum, which is the harm to show.
        let max = ["cpu", "memory"]
            .iter()
            .filter_map(|r| {
                limits
                    .pointer(&format!("/max/{r}"))
                    .and_then(Value::as_str)
                    .map(|q| format!("{r}={q}"))
            })
            .collect::<Vec<_>>();
        let consequence = if max.is_empty() {
            String::new()
        } else {
            format!(
                " (Kubernetes then defaults requests and limits to its max, {}: every container without resources reserves the maximum)",
                max.join(", ")
            )
        };
        problems.push(format!("expected LimitRange defaults (default/defaultRequest) for containers; the LimitRange sets none{consequence}"));
    }
}

/// The over-quota pod was refused, with "exceeded quota".
fn judge_over_quota(
    over: &OverQuota,
    status: &str,
    problems: &mut Vec<String>,
    values: &mut Vec<(String, String)>,
) {
    let (count, cpu, tries) = (over.count, &over.cpu, over.tries);
    match &over.refusal {
        None => problems.push(format!("expected a pod requesting {count} x {cpu} CPU (over the quota's {}) to be refused; it was admitted on each of {tries} tries over {:.0} s ({status})", over.quota_cpu, over.retried_for_seconds)),
        Some(message) => {
            if !message.contains("exceeded quota") {
                problems.push(format!("expected the ResourceQuota to refuse {count} x {cpu} CPU with 'exceeded quota'; refused instead with: {message} ({status})"));
            }
            values.push((
                "over quota".into(),
                format!("refused (try {tries}): {message}"),
            ));
        }
    }
    values.extend(over.headroom.iter().cloned());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const STATUS: &str = "ResourceQuota q status at t=1.0 s: hard [requests.cpu=4], used []";

    fn enforced() -> Admission {
        Admission {
            quota_status: STATUS.into(),
            container_limits: json!({"default": {"cpu": "500m", "memory": "512Mi"}, "defaultRequest": {"cpu": "100m", "memory": "128Mi"}, "max": {"cpu": "2"}}),
            defaults: Ok(
                json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}),
            ),
            over_max: Some(OverMax {
                max_cpu: 2.0,
                asked: "3000m".into(),
                refusal: Some("maximum cpu usage per Container is 2, but limit is 3".into()),
            }),
            over_quota: Some(Ok(OverQuota {
                count: 3,
                cpu: "2000m".into(),
                quota_cpu: 4.0,
                tries: 1,
                retried_for_seconds: 5.0,
                refusal: Some("exceeded quota: q, requested: requests.cpu=6".into()),
                headroom: vec![("quota requests.cpu".into(), "4.00".into())],
            })),
            quota_namespace: Some("ml-platform".into()),
        }
    }

    fn over_quota(admission: &mut Admission) -> &mut OverQuota {
        match admission.over_quota.as_mut() {
            Some(Ok(over)) => over,
            other => panic!("no over-quota pod: {other:?}"),
        }
    }

    #[test]
    fn the_over_quota_pod_is_just_over_the_quota_within_the_max() {
        // 4 CPU, max 2: 3 x 2000m = 6 > 4; no max: 2 x 4000m.
        assert_eq!(
            over_quota_sizing(4.0, Some(2.0)),
            Ok(OverQuotaSizing {
                count: 3,
                millicores: 2000
            })
        );
        assert_eq!(
            over_quota_sizing(4.0, None),
            Ok(OverQuotaSizing {
                count: 2,
                millicores: 4000
            })
        );
        // A max above the quota: the quota's own size, twice.
        assert_eq!(
            over_quota_sizing(0.5, Some(8.0)),
            Ok(OverQuotaSizing {
                count: 2,
                millicores: 500
            })
        );
        // A quota of zero: one millicore exceeds it.
        assert_eq!(
            over_quota_sizing(0.0, Some(1.0)),
            Ok(OverQuotaSizing {
                count: 1,
                millicores: 1
            })
        );
    }

    /// Issue 12, point 2: `requests.cpu: 1E` aborted on allocating 10^19 containers,
    /// `max.cpu: "0"` overflowed (a panic in debug builds).
    #[test]
    fn extreme_quotas_and_maxima_give_a_reason_instead_of_a_crash() {
        let message = over_quota_sizing(1e18, None).unwrap_err();
        assert!(
            message.contains("beyond what any pod can request"),
            "{message}"
        );
        let message = over_quota_sizing(100.0, Some(0.1)).unwrap_err();
        assert!(message.contains("more than 200 times"), "{message}");
        assert!(message.contains("1001 containers"), "{message}");
        let message = over_quota_sizing(4.0, Some(0.0)).unwrap_err();
        assert!(message.contains("max CPU per container is 0"), "{message}");
        assert!(over_quota_sizing(f64::INFINITY, Some(f64::NAN)).is_err());
        assert!(over_quota_sizing(f64::NAN, Some(-1.0)).is_err());
    }

    #[test]
    fn an_unsizable_over_quota_pod_fails_with_its_reason() {
        let mut admission = enforced();
        admission.over_quota = Some(Err(over_quota_sizing(4.0, Some(0.0)).unwrap_err()));
        let verdict = judge_admission(&admission);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("no container may request CPU"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn enforced_defaults_max_and_quota_pass_citing_the_quota_status() {
        let verdict = judge_admission(&enforced());
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
        assert!(verdict.message.ends_with(&format!("({STATUS})")));
        let Some(Evidence::Values { values }) = verdict.evidence.first() else {
            panic!("values first: {:?}", verdict.evidence)
        };
        assert_eq!(values[0], ("quota status".into(), STATUS.into()));
        assert_eq!(values.last().unwrap().0, "quota requests.cpu");
        assert_eq!(
            verdict.evidence[1],
            Evidence::Note {
                text: "quota from namespace ml-platform".into()
            }
        );
    }

    #[test]
    fn missing_defaults_fail_before_anything_else() {
        let mut admission = enforced();
        admission.defaults = Ok(json!({}));
        over_quota(&mut admission).refusal = None;
        let verdict = judge_admission(&admission);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .starts_with("expected LimitRange defaults requests.cpu=Some(0.1)"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn a_limit_range_with_only_bounds_fails_saying_what_kubernetes_defaults_instead() {
        let mut admission = enforced();
        admission.container_limits =
            json!({"max": {"cpu": "4", "memory": "8Gi"}, "min": {"cpu": "100m"}});
        // What the API server really does: default = max, defaultRequest = default.
        admission.defaults = Ok(
            json!({"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}}),
        );
        let verdict = judge_admission(&admission);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains(
                "the LimitRange sets none (Kubernetes then defaults requests and limits to its max, cpu=4, memory=8Gi"
            ),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn an_admitted_over_quota_pod_fails_with_its_tries() {
        let mut admission = enforced();
        over_quota(&mut admission).refusal = None;
        over_quota(&mut admission).tries = 21;
        let verdict = judge_admission(&admission);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .contains("it was admitted on each of 21 tries over 5 s"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn a_refusal_without_the_quota_reason_fails() {
        let mut admission = enforced();
        over_quota(&mut admission).refusal = Some("forbidden".into());
        let verdict = judge_admission(&admission);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .contains("with 'exceeded quota'; refused instead with: forbidden")
        );
        admission.over_max = None;
        admission.over_quota = None;
        let verdict = judge_admission(&admission);
        assert_eq!(
            verdict.message,
            "expected a max CPU per container in the LimitRange; none is set"
        );
    }
}
