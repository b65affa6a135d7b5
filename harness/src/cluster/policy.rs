//! What a submission may apply (pure, unit-tested): the allowlist of namespaced kinds,
//! the names reserved for the sandbox, the Services that would reach outside the test
//! namespace, and the one cluster-scoped kind the suite maps (PriorityClass).
//!
//! A refused object is the submission's fault: it becomes a "fail" with the reason,
//! never an "error", and nothing of that submission is applied.

use super::RESERVED_NAME_PREFIX;
use serde_json::Value;

/// The namespaced kinds a submission of the exercise needs, by API group. Anything else
/// is refused: RBAC (a RoleBinding would grant its pods API access), NetworkPolicy (an
/// allow-all policy would reopen what the sandbox closes), Endpoints and EndpointSlices
/// (a Service aimed at any address), Ingress, PersistentVolumeClaims (no storage here),
/// DaemonSets (pods on every node, the GPU pool's included), and the operator-managed
/// `Prometheus`/`Alertmanager`/`ScrapeConfig` (workloads and scrape targets of their own).
pub const ALLOWED_KINDS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "Pod",
            "Service",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "ResourceQuota",
            "LimitRange",
        ],
    ),
    ("apps", &["Deployment", "StatefulSet", "ReplicaSet"]),
    ("batch", &["Job", "CronJob"]),
    ("autoscaling", &["HorizontalPodAutoscaler"]),
    ("policy", &["PodDisruptionBudget"]),
    ("autoscaling.k8s.io", &["VerticalPodAutoscaler"]),
    (
        "keda.sh",
        &["ScaledObject", "ScaledJob", "TriggerAuthentication"],
    ),
    (
        "monitoring.coreos.com",
        &["ServiceMonitor", "PodMonitor", "PrometheusRule"],
    ),
];

/// What the sandbox does with one object of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Applied into the test namespace as the submission's.
    Apply,
    /// Not applied; the test namespace stands in for it (a `Namespace`).
    Replace,
    /// A PriorityClass: created by the suite under a per-namespace name, never a
    /// cluster default (see [`map_priority_class`]).
    MapPriorityClass,
    /// Refused, with the reason.
    Refuse(String),
}

/// One refused object of a submission, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// `Kind name`, as the submission wrote them.
    pub object: String,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.reason)
    }
}

/// Decides what happens to `object` (a submission's, before any rewrite).
pub fn admit(object: &Value) -> Admission {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let kind = text("/kind").unwrap_or_default();
    let api_version = text("/apiVersion").unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    let name = text("/metadata/name").unwrap_or_default();
    if name.starts_with(RESERVED_NAME_PREFIX) {
        return Admission::Refuse(format!(
            "the name prefix `{RESERVED_NAME_PREFIX}` is reserved for the grader's sandbox"
        ));
    }
    match (group, kind) {
        ("", "Namespace") => return Admission::Replace,
        ("scheduling.k8s.io", "PriorityClass") => return Admission::MapPriorityClass,
        _ => {}
    }
    let allowed = ALLOWED_KINDS
        .iter()
        .any(|(g, kinds)| *g == group && kinds.contains(&kind));
    if !allowed {
        let what = if api_version.is_empty() {
            kind.to_string()
        } else {
            format!("{api_version} {kind}")
        };
        return Admission::Refuse(format!(
            "{what} is not a kind a submission may apply here (allowed: the namespaced \
             workload, Service, config, autoscaling, disruption, quota and monitoring kinds)"
        ));
    }
    if kind == "Service"
        && let Some(reason) = service_reaches_outside(object)
    {
        return Admission::Refuse(reason);
    }
    Admission::Apply
}

/// Why a Service would reach outside the test namespace, if it would: a node port, a
/// load balancer, an external name, or external IPs that capture other traffic.
fn service_reaches_outside(service: &Value) -> Option<String> {
    let service_type = service
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if matches!(service_type, "NodePort" | "LoadBalancer" | "ExternalName") {
        return Some(format!(
            "Service type {service_type} is not allowed (only ClusterIP: a test's Services stay inside its namespace)"
        ));
    }
    let external_ips = service
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|ips| !ips.is_empty());
    external_ips.then(|| {
        "Service spec.externalIPs is not allowed (it would capture traffic to those addresses)"
            .to_string()
    })
}

/// The PriorityClass the suite creates for a submission's one: `renamed`, never the
/// cluster's default, with the student's value, preemption policy and description.
/// Returns it and the note for the report.
pub fn map_priority_class(object: &Value, renamed: &str) -> (Value, String) {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut mapped = serde_json::json!({
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": { "name": renamed },
        "value": object.get("value").cloned().unwrap_or(Value::from(0)),
        "globalDefault": false,
    });
    for field in ["preemptionPolicy", "description"] {
        if let Some(value) = object.get(field) {
            mapped[field] = value.clone();
        }
    }
    let mut note = format!("PriorityClass {name}: applied by the grader as {renamed}");
    if object.get("globalDefault").and_then(Value::as_bool) == Some(true) {
        note.push_str(" with globalDefault: false (a test may not change the cluster's default)");
    }
    (mapped, note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refusal(object: Value) -> String {
        match admit(&object) {
            Admission::Refuse(reason) => reason,
            other => panic!("expected a refusal of {object}, got {other:?}"),
        }
    }

    #[test]
    fn the_exercise_kinds_are_applied() {
        for (api_version, kind) in [
            ("apps/v1", "Deployment"),
            ("v1", "Service"),
            ("v1", "ResourceQuota"),
            ("v1", "LimitRange"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("policy/v1", "PodDisruptionBudget"),
            ("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"),
            ("keda.sh/v1alpha1", "ScaledObject"),
            ("monitoring.coreos.com/v1", "PrometheusRule"),
        ] {
            let object =
                json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}});
            assert_eq!(admit(&object), Admission::Apply, "{api_version} {kind}");
        }
    }

    #[test]
    fn reserved_names_are_refused_whatever_the_kind() {
        let reason = refusal(json!({"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "autoscale-conformance-sandbox"}, "spec": {"hard": {}}}));
        assert!(reason.contains("reserved"), "{reason}");
        let reason = refusal(
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "autoscale-conformance-sandbox-x"}, "value": 1}),
        );
        assert!(reason.contains("reserved"), "{reason}");
    }

    #[test]
    fn cluster_scoped_and_unlisted_kinds_are_refused() {
        for (api_version, kind) in [
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            (
                "admissionregistration.k8s.io/v1",
                "MutatingWebhookConfiguration",
            ),
            ("networking.k8s.io/v1", "NetworkPolicy"),
            ("v1", "Endpoints"),
            ("v1", "Node"),
            ("apps/v1", "DaemonSet"),
            ("keda.sh/v1alpha1", "ClusterTriggerAuthentication"),
            // The right kind in the wrong group is not that kind.
            ("evil.example.com/v1", "Deployment"),
        ] {
            let reason = refusal(
                json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}),
            );
            assert!(reason.contains(kind), "{reason}");
        }
    }

    #[test]
    fn services_that_reach_outside_are_refused() {
        for (spec, expected) in [
            (json!({"type": "NodePort"}), "NodePort"),
            (json!({"type": "LoadBalancer"}), "LoadBalancer"),
            (
                json!({"type": "ExternalName", "externalName": "kubernetes.default"}),
                "ExternalName",
            ),
            (json!({"externalIPs": ["10.0.0.1"]}), "externalIPs"),
        ] {
            let reason = refusal(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec}),
            );
            assert!(reason.contains(expected), "{reason}");
        }
        let cluster_ip = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"type": "ClusterIP", "externalIPs": []}});
        assert_eq!(admit(&cluster_ip), Admission::Apply);
    }

    #[test]
    fn a_priority_class_is_mapped_never_a_cluster_default() {
        let student = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": "high", "labels": {"x": "y"}, "annotations": {"a": "b"}},
            "value": 100000, "globalDefault": true, "preemptionPolicy": "Never"});
        assert_eq!(admit(&student), Admission::MapPriorityClass);
        let (mapped, note) = map_priority_class(&student, "ac-t-1-high");
        assert_eq!(
            mapped,
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": "ac-t-1-high"}, "value": 100000,
                "globalDefault": false, "preemptionPolicy": "Never"})
        );
        assert!(note.contains("globalDefault: false"), "{note}");
    }
}
