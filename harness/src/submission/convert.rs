//! Reading an object as the API server would store it, before typing: removed
//! API versions converted to their replacements (HPA `v2beta1` metrics, KEDA
//! `keda.k8s.io`), `autoscaling/v1` HPAs in the v2 shape, the HPA's default
//! metric, and wrong-typed scalars read as meant.

use super::yaml::escape_pointer;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, MetricSpec, MetricTarget, ResourceMetricSource,
};
use serde_json::Value;

/// A resolved apiVersion that the API server no longer serves, and what replaces it.
pub(super) struct Removal {
    pub replacement: &'static str,
    /// The object's shape is the same in the replacement (only apiVersion changes).
    convertible: bool,
}

impl Removal {
    /// Rewrites `value` (written as `api_version`) into the replacement version
    /// so the rest of the grading sees what the student meant, and returns that
    /// version; `None` when the shapes differ too much to convert.
    pub fn convert(&self, api_version: &str, value: &mut Value) -> Option<&'static str> {
        // KEDA's v1 differs in one field students write; the rest converts.
        let keda_v1 = api_version == "keda.k8s.io/v1alpha1";
        if !self.convertible && !keda_v1 {
            return None;
        }
        if api_version == "autoscaling/v2beta1" {
            convert_hpa_v2beta1(value);
        }
        if keda_v1
            && let Some(target) = value
                .pointer_mut("/spec/scaleTargetRef")
                .and_then(Value::as_object_mut)
            && let Some(name) = target.remove("deploymentName")
        {
            target.insert("name".into(), name);
        }
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "apiVersion".into(),
                Value::String(self.replacement.to_string()),
            );
        }
        Some(self.replacement)
    }
}

pub(super) fn removed_api(api_version: &str, kind: &str) -> Option<Removal> {
    let same = |replacement| {
        Some(Removal {
            replacement,
            convertible: true,
        })
    };
    let other = |replacement| {
        Some(Removal {
            replacement,
            convertible: false,
        })
    };
    match (api_version, kind) {
        ("autoscaling/v2beta1" | "autoscaling/v2beta2", "HorizontalPodAutoscaler") => {
            same("autoscaling/v2")
        }
        ("policy/v1beta1", "PodDisruptionBudget") => same("policy/v1"),
        ("policy/v1beta1", "PodSecurityPolicy") => {
            other("Pod Security Admission (namespace labels)")
        }
        ("batch/v1beta1" | "batch/v2alpha1", "CronJob") => same("batch/v1"),
        (
            "extensions/v1beta1" | "apps/v1beta1" | "apps/v1beta2",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet",
        ) => same("apps/v1"),
        ("extensions/v1beta1" | "networking.k8s.io/v1beta1", "Ingress" | "IngressClass") => {
            same("networking.k8s.io/v1")
        }
        ("extensions/v1beta1", "NetworkPolicy") => same("networking.k8s.io/v1"),
        ("scheduling.k8s.io/v1beta1" | "scheduling.k8s.io/v1alpha1", "PriorityClass") => {
            same("scheduling.k8s.io/v1")
        }
        ("rbac.authorization.k8s.io/v1beta1" | "rbac.authorization.k8s.io/v1alpha1", _) => {
            same("rbac.authorization.k8s.io/v1")
        }
        ("apiextensions.k8s.io/v1beta1", _) => other("apiextensions.k8s.io/v1"),
        ("apiregistration.k8s.io/v1beta1", _) => same("apiregistration.k8s.io/v1"),
        ("admissionregistration.k8s.io/v1beta1", _) => other("admissionregistration.k8s.io/v1"),
        ("storage.k8s.io/v1beta1", _) => same("storage.k8s.io/v1"),
        ("discovery.k8s.io/v1beta1", _) => same("discovery.k8s.io/v1"),
        ("events.k8s.io/v1beta1", _) => same("events.k8s.io/v1"),
        ("node.k8s.io/v1beta1", _) => same("node.k8s.io/v1"),
        ("certificates.k8s.io/v1beta1", _) => other("certificates.k8s.io/v1"),
        ("coordination.k8s.io/v1beta1", _) => same("coordination.k8s.io/v1"),
        (
            "flowcontrol.apiserver.k8s.io/v1alpha1"
            | "flowcontrol.apiserver.k8s.io/v1beta1"
            | "flowcontrol.apiserver.k8s.io/v1beta2"
            | "flowcontrol.apiserver.k8s.io/v1beta3",
            _,
        ) => same("flowcontrol.apiserver.k8s.io/v1"),
        ("autoscaling.k8s.io/v1beta1" | "autoscaling.k8s.io/v1beta2", "VerticalPodAutoscaler") => {
            same("autoscaling.k8s.io/v1")
        }
        ("keda.k8s.io/v1alpha1", _) => other("keda.sh/v1alpha1"),
        _ => None,
    }
}

/// How many wrong-typed scalars of one object are read as meant before giving up.
pub(super) const MAX_SCALAR_REPAIRS: usize = 8;

/// The JSON pointer of the field a deserialization error is about.
pub(super) fn error_pointer(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    error
        .path()
        .iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(format!("/{}", escape_pointer(key))),
            serde_path_to_error::Segment::Seq { index } => Some(format!("/{index}")),
            _ => None,
        })
        .collect()
}

/// Converts the scalar at `pointer` to the type a serde "invalid type" error
/// asks for (number or bool <-> string); false when that is not the problem.
pub(super) fn repair_scalar(value: &mut Value, pointer: &str, message: &str) -> bool {
    let Some(slot) = value.pointer_mut(pointer) else {
        return false;
    };
    if !message.starts_with("invalid type") {
        return false;
    }
    let wants_string = message.contains("expected a string") || message.contains("expected string");
    let replacement = match (&*slot, wants_string) {
        (Value::Number(n), true) => Value::String(n.to_string()),
        (Value::Bool(b), true) => Value::String(b.to_string()),
        (Value::String(text), false) if message.contains("expected a boolean") => {
            match text.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return false,
            }
        }
        (Value::String(text), false) => match text.trim().parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => match text.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Value::from(f),
                _ => return false,
            },
        },
        _ => return false,
    };
    *slot = replacement;
    true
}

/// The API server's HPA defaulting (autoscaling/v2 SetDefaults): no metrics
/// means 80 % average CPU utilization.
pub(super) fn with_default_metric(mut hpa: HorizontalPodAutoscaler) -> HorizontalPodAutoscaler {
    if hpa.spec.metrics.as_ref().is_none_or(Vec::is_empty) {
        hpa.spec.metrics = Some(vec![MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(80),
                    ..MetricTarget::default()
                },
            }),
            ..MetricSpec::default()
        }]);
    }
    hpa
}

/// An `autoscaling/v1` HPA in the v2 shape (the API server converts the same
/// way): `targetCPUUtilizationPercentage` becomes a cpu Utilization metric.
pub(super) fn hpa_v1_as_v2(value: &Value) -> Value {
    let mut converted = value.clone();
    if let Some(map) = converted.as_object_mut() {
        map.insert("apiVersion".into(), Value::String("autoscaling/v2".into()));
    }
    if let Some(spec) = converted.get_mut("spec").and_then(Value::as_object_mut)
        && let Some(target) = spec.remove("targetCPUUtilizationPercentage")
    {
        spec.insert(
            "metrics".into(),
            serde_json::json!([{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
            }]),
        );
    }
    converted
}

/// Rewrites an `autoscaling/v2beta1` HPA's metrics into the v2 shape so the
/// rest of the grading sees what the student meant (the removal is reported).
fn convert_hpa_v2beta1(value: &mut Value) {
    let Some(metrics) = value
        .pointer_mut("/spec/metrics")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for metric in metrics {
        let Some(metric_type) = metric
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
        else {
            continue;
        };
        let Some(source) = metric
            .get_mut(metric_type.as_str())
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let mut target = serde_json::Map::new();
        if let Some(v) = source.remove("targetAverageUtilization") {
            target.insert("type".into(), "Utilization".into());
            target.insert("averageUtilization".into(), v);
        } else if let Some(v) = source.remove("targetAverageValue") {
            target.insert("type".into(), "AverageValue".into());
            target.insert("averageValue".into(), v);
        } else if let Some(v) = source.remove("targetValue") {
            target.insert("type".into(), "Value".into());
            target.insert("value".into(), v);
        }
        if let Some(name) = source.remove("metricName") {
            let mut identifier = serde_json::Map::new();
            identifier.insert("name".into(), name);
            if let Some(selector) = source
                .remove("selector")
                .or_else(|| source.remove("metricSelector"))
            {
                identifier.insert("selector".into(), selector);
            }
            source.insert("metric".into(), Value::Object(identifier));
        }
        if let Some(target_object) = source.remove("target") {
            source.insert("describedObject".into(), target_object);
        }
        if !target.is_empty() {
            source.insert("target".into(), Value::Object(target));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::submission::test_files::write;
    use crate::submission::{LoadOptions, Typed, load};
    use std::collections::BTreeSet;

    #[test]
    fn hpas_are_graded_as_the_api_server_stores_them() {
        let dir = tempfile::tempdir().unwrap();
        let hpa = |name: &str, version: &str, spec: &str| {
            format!(
                "apiVersion: autoscaling/{version}\nkind: HorizontalPodAutoscaler\nmetadata: {{name: {name}}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: d}}\n  maxReplicas: 5\n{spec}---\n"
            )
        };
        write(
            dir.path(),
            "hpas.yaml",
            &[
                hpa("v1-target", "v1", "  targetCPUUtilizationPercentage: 55\n"),
                hpa("v1-default", "v1", ""),
                hpa("v2-default", "v2", ""),
                hpa("v2-empty", "v2", "  metrics: []\n"),
                hpa("v2-memory", "v2", "  metrics:\n    - type: Resource\n      resource: {name: memory, target: {type: Utilization, averageUtilization: 70}}\n"),
            ]
            .concat(),
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
        let cpu_target = |name: &str| {
            let object = submission.objects.iter().find(|o| o.name == name).unwrap();
            let Typed::HorizontalPodAutoscaler(hpa) = &object.typed else {
                panic!("{name} is {:?}", object.typed);
            };
            let metrics = hpa.spec.metrics.clone().unwrap_or_default();
            metrics
                .iter()
                .filter_map(|m| m.resource.as_ref())
                .find(|r| r.name == "cpu")
                .and_then(|r| r.target.average_utilization)
        };
        assert_eq!(cpu_target("v1-target"), Some(55));
        assert_eq!(cpu_target("v1-default"), Some(80));
        assert_eq!(cpu_target("v2-default"), Some(80));
        assert_eq!(cpu_target("v2-empty"), Some(80));
        assert_eq!(cpu_target("v2-memory"), None);
    }

    #[test]
    fn wrong_typed_scalars_cost_a_parse_error_but_the_object_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "keda.yaml",
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: so}\nspec:\n  scaleTargetRef: {name: d}\n  triggers:\n    - type: prometheus\n      metadata:\n        serverAddress: http://p\n        query: sum(q)\n        threshold: 10\n        ignoreNullValues: true\n",
        );
        write(
            dir.path(),
            "deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: \"3\"\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n    spec:\n      containers: [{name: c, image: i}]\n",
        );
        write(
            dir.path(),
            "broken.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: e}\nspec:\n  template:\n    spec:\n      containers: \"none\"\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        let errors: BTreeSet<(String, Option<u32>)> = submission
            .findings
            .iter()
            .map(|f| (f.location.file.clone(), f.location.line))
            .collect();
        assert_eq!(
            errors,
            BTreeSet::from([
                ("broken.yaml".to_string(), Some(7)),
                ("deploy.yaml".to_string(), Some(5)),
                ("keda.yaml".to_string(), Some(11)),
                ("keda.yaml".to_string(), Some(12)),
            ])
        );
        let typed = |name: &str| {
            &submission
                .objects
                .iter()
                .find(|o| o.name == name)
                .unwrap()
                .typed
        };
        assert!(matches!(typed("so"), Typed::ScaledObject(_)));
        let Typed::Deployment(deployment) = typed("d") else {
            panic!("d is not read as a Deployment");
        };
        assert_eq!(deployment.spec.replicas, Some(3));
        assert!(matches!(typed("e"), Typed::Invalid));
    }

    #[test]
    fn removed_versions_are_reported_and_converted() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "hpa.yaml",
            "apiVersion: autoscaling/v2beta1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  scaleTargetRef: {kind: Deployment, name: d}\n  maxReplicas: 3\n  metrics:\n  - type: Resource\n    resource: {name: cpu, targetAverageUtilization: 50}\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(submission.findings.len(), 1);
        assert_eq!(submission.findings[0].check, "api.removed-version");
        assert!(submission.findings[0].message.contains("autoscaling/v2"));
        let Typed::HorizontalPodAutoscaler(hpa) = &submission.objects[0].typed else {
            panic!("not converted")
        };
        let metric = &hpa.spec.metrics.as_ref().unwrap()[0];
        assert_eq!(
            metric.resource.as_ref().unwrap().target.average_utilization,
            Some(50)
        );
    }
}
