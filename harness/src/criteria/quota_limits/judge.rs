//! The judge of `quota-limits`: what admission answered to the probe's three
//! dry-run pods (defaults for a container without resources, a container over the
//! LimitRange's max, a pod over the quota), held against the submission's own
//! LimitRange and ResourceQuota. Pure: no cluster.

use super::ID;
use crate::submission::quantity::parse_quantity;
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
    /// A pod over the quota; `None` when the quota does not bound `requests.cpu`.
    pub over_quota: Option<OverQuota>,
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

/// A quantity at `pointer` in `value` (`"500m"`, `2`), in its base unit.
pub fn quantity(value: &Value, pointer: &str) -> Option<f64> {
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
        Some(over) => judge_over_quota(over, status, &mut problems, &mut values),
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
        problems.push("expected LimitRange defaults (default/defaultRequest) for containers; the LimitRange sets none".into());
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
            over_quota: Some(OverQuota {
                count: 3,
                cpu: "2000m".into(),
                quota_cpu: 4.0,
                tries: 1,
                retried_for_seconds: 5.0,
                refusal: Some("exceeded quota: q, requested: requests.cpu=6".into()),
                headroom: vec![("quota requests.cpu".into(), "4.00".into())],
            }),
            quota_namespace: Some("ml-platform".into()),
        }
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
        admission.over_quota.as_mut().unwrap().refusal = None;
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
    fn an_admitted_over_quota_pod_fails_with_its_tries() {
        let mut admission = enforced();
        admission.over_quota.as_mut().unwrap().refusal = None;
        admission.over_quota.as_mut().unwrap().tries = 21;
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
        admission.over_quota.as_mut().unwrap().refusal = Some("forbidden".into());
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
