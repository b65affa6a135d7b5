//! A Kubernetes object in a document, read into the typed [`Object`] the checks
//! see: its removed API version reported and converted, its schema and field
//! errors reported where they are written, and the monitoring content it wraps
//! (ConfigMap values, PrometheusRules, other operators' resources) collected.

use super::convert::{
    MAX_SCALAR_REPAIRS, Removal, error_pointer, hpa_v1_as_v2, removed_api, repair_scalar,
    with_default_metric,
};
use super::validate::{unknown_crd_fields, unknown_fields};
use super::yaml::{Document, YamlLimits};
use super::{Object, RuleSource, Submission, Typed, input_finding, monitoring};
use crate::verdict::{Finding, Location, Severity};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

/// Loads the object at `pointer` of `document` (from the file `rel`) into the
/// submission, with what it wraps.
pub(super) fn load_object(
    submission: &mut Submission,
    limits: YamlLimits,
    rel: &str,
    document: &Arc<Document>,
    pointer: &str,
    api_version: &str,
    kind: &str,
) {
    let mut object = untyped_object(rel, document, pointer, api_version, kind);
    let mut served = object.value().clone();
    let mut served_version = api_version;
    if let Some(removal) = removed_api(api_version, kind) {
        submission
            .findings
            .push(removed_version_finding(&object, &removal));
        match removal.convert(api_version, &mut served) {
            Some(replacement) => served_version = replacement,
            None => {
                object.typed = Typed::Other;
                submission.objects.push(object);
                return;
            }
        }
    }
    object.typed = type_object(submission, &object, &served, served_version);
    if matches!(object.typed, Typed::Unknown) {
        collect_from_unknown_spec(submission, &object, document, pointer);
    }
    collect_wrapped_monitoring(submission, limits, &object);
    submission.objects.push(object);
}

/// The object with its identity and place, not yet typed.
fn untyped_object(
    rel: &str,
    document: &Arc<Document>,
    pointer: &str,
    api_version: &str,
    kind: &str,
) -> Object {
    let value = document.value.pointer(pointer).unwrap_or(&Value::Null);
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let namespace = value
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    Object {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name,
        namespace,
        file: rel.to_string(),
        typed: Typed::Unknown,
        document: Arc::clone(document),
        pointer: pointer.to_string(),
    }
}

fn removed_version_finding(object: &Object, removal: &Removal) -> Finding {
    let api_version = &object.api_version;
    Finding {
        check: "api.removed-version".into(),
        severity: Severity::Error,
        location: object.locate("/apiVersion"),
        message: format!(
            "{} uses {api_version}, which Kubernetes no longer serves; use {}",
            object.describe(),
            removal.replacement
        ),
        hint: format!(
            "change `apiVersion: {api_version}` to `{}` and adjust the fields that changed",
            removal.replacement
        ),
        evidence: Vec::new(),
    }
}

/// The typed form of `value`, the object as served in `version`, with its
/// problems reported.
fn type_object(
    submission: &mut Submission,
    object: &Object,
    value: &Value,
    version: &str,
) -> Typed {
    let group = version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    match (group, object.kind.as_str()) {
        ("", "Namespace") => typed(submission, object, value, |v| Typed::Namespace(Box::new(v))),
        ("", "ResourceQuota") => typed(submission, object, value, |v| {
            Typed::ResourceQuota(Box::new(v))
        }),
        ("", "LimitRange") => typed(submission, object, value, |v| {
            Typed::LimitRange(Box::new(v))
        }),
        ("", "Service") => typed(submission, object, value, |v| Typed::Service(Box::new(v))),
        ("", "ConfigMap") => typed(submission, object, value, |v| Typed::ConfigMap(Box::new(v))),
        ("", "Pod") => typed(submission, object, value, |v| Typed::Pod(Box::new(v))),
        ("apps", "Deployment") => typed(submission, object, value, |v| {
            Typed::Deployment(Box::new(v))
        }),
        ("apps", "StatefulSet") => typed(submission, object, value, |v| {
            Typed::StatefulSet(Box::new(v))
        }),
        ("apps", "ReplicaSet") => typed(submission, object, value, |v| {
            Typed::ReplicaSet(Box::new(v))
        }),
        ("apps", "DaemonSet") => {
            typed(submission, object, value, |v| Typed::DaemonSet(Box::new(v)))
        }
        ("batch", "Job") => typed(submission, object, value, |v| Typed::Job(Box::new(v))),
        ("batch", "CronJob") => typed(submission, object, value, |v| Typed::CronJob(Box::new(v))),
        ("autoscaling", "HorizontalPodAutoscaler") if version == "autoscaling/v2" => {
            typed(submission, object, value, |v| {
                Typed::HorizontalPodAutoscaler(Box::new(with_default_metric(v)))
            })
        }
        // Still served: validated strictly as v1, graded as the v2 object
        // the API server stores.
        ("autoscaling", "HorizontalPodAutoscaler") if version == "autoscaling/v1" => {
            match typed(
                submission,
                object,
                value,
                |_: k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler| Typed::Other,
            ) {
                Typed::Other => {
                    let converted = hpa_v1_as_v2(value);
                    typed(submission, object, &converted, |v| {
                        Typed::HorizontalPodAutoscaler(Box::new(with_default_metric(v)))
                    })
                }
                invalid => invalid,
            }
        }
        ("policy", "PodDisruptionBudget") => typed(submission, object, value, |v| {
            Typed::PodDisruptionBudget(Box::new(v))
        }),
        ("scheduling.k8s.io", "PriorityClass") => typed(submission, object, value, |v| {
            Typed::PriorityClass(Box::new(v))
        }),
        ("autoscaling.k8s.io", "VerticalPodAutoscaler") => typed(submission, object, value, |v| {
            Typed::VerticalPodAutoscaler(Box::new(v))
        }),
        ("keda.sh", "ScaledObject") => typed(submission, object, value, |v| {
            Typed::ScaledObject(Box::new(v))
        }),
        ("keda.sh", "ScaledJob") => {
            typed(submission, object, value, |v| Typed::ScaledJob(Box::new(v)))
        }
        ("keda.sh", "TriggerAuthentication") => typed(submission, object, value, |v| {
            Typed::TriggerAuthentication(Box::new(v))
        }),
        ("monitoring.coreos.com", "ServiceMonitor") => typed(submission, object, value, |v| {
            Typed::ServiceMonitor(Box::new(v))
        }),
        ("monitoring.coreos.com", "PodMonitor") => typed(submission, object, value, |v| {
            Typed::PodMonitor(Box::new(v))
        }),
        ("monitoring.coreos.com", "PrometheusRule") => typed(submission, object, value, |v| {
            Typed::PrometheusRule(Box::new(v))
        }),
        _ if is_known_untyped(version, &object.kind) => Typed::Other,
        _ => {
            submission.findings.push(input_finding(
                "input.unknown-kind",
                object.location(),
                format!(
                    "{} ({}) is not a kind this grader models; kept, and only searched for embedded rules or dashboards",
                    object.describe(),
                    object.api_version
                ),
                "nothing to do if the kind is intended",
            ));
            Typed::Unknown
        }
    }
}

/// Other operators' resources (GrafanaDashboard `spec.json`, VMRule
/// `spec.groups`) can hold monitoring content in their spec.
fn collect_from_unknown_spec(
    submission: &mut Submission,
    object: &Object,
    document: &Arc<Document>,
    pointer: &str,
) {
    let Some(spec) = object.value().get("spec") else {
        return;
    };
    let rel = object.file.as_str();
    let position = document.locate(&format!("{pointer}/spec"));
    let matched = monitoring::collect(
        submission,
        spec,
        Location::at(rel, position.line, position.column),
        &object.describe(),
        None,
        |p| document.locate(&format!("{pointer}/spec{p}")),
    );
    if !matched {
        monitoring::collect_nested(submission, rel, document, &format!("{pointer}/spec"), 2);
    }
}

/// Monitoring content wrapped in objects: ConfigMap values and PrometheusRules.
fn collect_wrapped_monitoring(submission: &mut Submission, limits: YamlLimits, object: &Object) {
    match &object.typed {
        Typed::ConfigMap(config_map) => {
            for (key, text) in config_map.data.iter().flatten() {
                monitoring::collect_embedded(submission, limits, object, key, text);
            }
        }
        Typed::PrometheusRule(_) => {
            let spec = object.value().get("spec").cloned().unwrap_or(Value::Null);
            submission.rule_sources.push(RuleSource {
                location: object.location(),
                raw_file: None,
                content: spec,
                origin: object.describe(),
            });
        }
        _ => {}
    }
}

/// Deserializes `value` as `T`, reporting fields strict validation rejects;
/// a schema error is reported, then the object is read as the student meant
/// it where a scalar only has the wrong type.
fn typed<T: DeserializeOwned + serde::Serialize>(
    submission: &mut Submission,
    object: &Object,
    value: &Value,
    wrap: impl FnOnce(T) -> Typed,
) -> Typed {
    let kubectl_reading = booleans_where_wanted::<T>(object, value);
    let value = kubectl_reading.as_ref().unwrap_or(value);
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(typed) => {
            report_unknown_fields(submission, object, value, &typed);
            report_unknown_crd_fields(submission, object, value);
            report_yaml11_booleans::<T>(submission, object, value);
            wrap(typed)
        }
        Err(first) => {
            // Report the error, then try to read the object as the student
            // meant it: a scalar of the wrong type (an unquoted `threshold:
            // 10` where the schema wants a string) costs the parse-error
            // points, not every check of the object as well.
            let mut error = first;
            let mut repaired = value.clone();
            for _ in 0..MAX_SCALAR_REPAIRS {
                let pointer = error_pointer(&error);
                submission.findings.push(input_finding(
                    "input.parse-error",
                    object.locate(&pointer),
                    format!(
                        "{} does not match the {} schema at `{}`: {}",
                        object.describe(),
                        object.kind,
                        error.path(),
                        error.inner()
                    ),
                    "compare the field with the API reference (`kubectl explain <kind>.<field>`); quote numbers where a string is expected",
                ));
                if !repair_scalar(&mut repaired, &pointer, &error.inner().to_string()) {
                    return Typed::Invalid;
                }
                match serde_path_to_error::deserialize::<_, T>(&repaired) {
                    // Once more through the front door, for the unknown-field checks.
                    Ok(_) => return typed(submission, object, &repaired, wrap),
                    Err(next) => error = next,
                }
            }
            Typed::Invalid
        }
    }
}

/// `value` with the plain `yes`, `on`, `off` (and the like) that the schema wants as
/// booleans read as kubectl reads them (YAML 1.1), where this loader (YAML 1.2) read
/// strings: `hostNetwork: yes` is `true` to the API server. `None` when there are none.
fn booleans_where_wanted<T: DeserializeOwned>(object: &Object, value: &Value) -> Option<Value> {
    let mut reading: Option<Value> = None;
    for _ in 0..object.yaml11_booleans().count() {
        let current = reading.as_ref().unwrap_or(value);
        let Err(error) = serde_path_to_error::deserialize::<_, T>(current) else {
            break;
        };
        let at = error_pointer(&error);
        let Some((_, boolean)) = object.yaml11_booleans().find(|(pointer, _)| *pointer == at)
        else {
            break;
        };
        let mut next = current.clone();
        match next.pointer_mut(&at) {
            Some(slot @ Value::String(_)) => *slot = Value::Bool(boolean),
            _ => break,
        }
        reading = Some(next);
    }
    reading
}

/// A plain `Off`, `yes` or `on` where the schema wants a string: this loader reads the
/// string the student meant (YAML 1.2), but kubectl reads YAML 1.1, sends a boolean, and
/// the API server refuses the object. The schema decides: where a boolean is wanted
/// (`hostNetwork: yes`), kubectl's reading is fine.
fn report_yaml11_booleans<T: DeserializeOwned>(
    submission: &mut Submission,
    object: &Object,
    value: &Value,
) {
    for (relative, boolean) in object.yaml11_booleans() {
        let mut as_kubectl_reads_it = value.clone();
        let Some(Value::String(text)) = as_kubectl_reads_it
            .pointer_mut(relative)
            .map(|v| std::mem::replace(v, Value::Bool(boolean)))
        else {
            continue;
        };
        if serde_json::from_value::<T>(as_kubectl_reads_it).is_ok() {
            continue;
        }
        submission.findings.push(input_finding(
            "input.parse-error",
            object.locate(relative),
            format!(
                "{} writes `{text}` unquoted at `{relative}`: kubectl reads YAML 1.1, where that is the boolean {boolean}, and `kubectl apply` fails on the object, since {} wants a string there",
                object.describe(),
                object.kind
            ),
            &format!("quote it: \"{text}\""),
        ));
    }
}

/// Built-in kinds are fully modelled by k8s-openapi: a field it drops is one
/// `kubectl apply` (strict validation) rejects, such as a typo'd `minReplica`.
/// Our CRD models are partial: they are left to [`report_unknown_crd_fields`].
fn report_unknown_fields<T: serde::Serialize>(
    submission: &mut Submission,
    object: &Object,
    value: &Value,
    typed: &T,
) {
    let group = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.rsplit_once('/'))
        .map_or("", |(g, _)| g);
    let built_in = matches!(
        group,
        "" | "apps" | "batch" | "autoscaling" | "policy" | "scheduling.k8s.io"
    );
    if !built_in {
        return;
    }
    let Ok(round_trip) = serde_json::to_value(typed) else {
        return;
    };
    for pointer in unknown_fields(value, &round_trip).into_iter().take(5) {
        let field = pointer
            .rsplit('/')
            .next()
            .unwrap_or("")
            .replace("~1", "/")
            .replace("~0", "~");
        submission.findings.push(input_finding(
            "input.parse-error",
            object.locate(&pointer),
            format!(
                "{} has an unknown field `{field}` at `{pointer}` (kubectl's strict validation rejects it)",
                object.describe()
            ),
            "check the spelling against the API reference (`kubectl explain <kind>.<field>`)",
        ));
    }
}

fn report_unknown_crd_fields(submission: &mut Submission, object: &Object, value: &Value) {
    for (pointer, key) in unknown_crd_fields(&object.kind, value) {
        submission.findings.push(input_finding(
            "input.parse-error",
            object.locate(&pointer),
            format!(
                "{} has an unknown field `{key}` at `{pointer}` (the CRD's schema rejects it)",
                object.describe()
            ),
            "check the spelling against the CRD's documentation",
        ));
    }
}

/// Standard kinds (and operator kinds) this grader has no need to read.
fn is_known_untyped(api_version: &str, kind: &str) -> bool {
    let group = api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or("");
    matches!(
        kind,
        "ServiceAccount"
            | "Secret"
            | "Role"
            | "RoleBinding"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "APIService"
            | "CustomResourceDefinition"
            | "Ingress"
            | "IngressClass"
            | "NetworkPolicy"
            | "PersistentVolumeClaim"
            | "PersistentVolume"
            | "StorageClass"
            | "Endpoints"
            | "EndpointSlice"
            | "PodTemplate"
            | "RuntimeClass"
            | "Lease"
            | "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
            | "PodSecurityPolicy"
            | "Node"
    ) || matches!(group, "kustomize.config.k8s.io")
        || (group == "keda.sh" && matches!(kind, "ClusterTriggerAuthentication"))
        || (group == "monitoring.coreos.com"
            && matches!(
                kind,
                "Prometheus"
                    | "Alertmanager"
                    | "AlertmanagerConfig"
                    | "Probe"
                    | "ScrapeConfig"
                    | "PrometheusAgent"
            ))
}

#[cfg(test)]
mod tests {
    use crate::submission::test_files::write;
    use crate::submission::{LoadOptions, Typed, load};

    #[test]
    fn an_unquoted_off_is_refused_where_a_string_is_wanted_as_kubectl_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "v.yaml",
            "apiVersion: autoscaling.k8s.io/v1\nkind: VerticalPodAutoscaler\nmetadata: {name: v}\nspec:\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: d}\n  updatePolicy:\n    updateMode: Off\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {canary: yes}\nspec:\n  hostNetwork: yes\n  containers: [{name: c, image: x}]\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        let found: Vec<(Option<u32>, &str)> = submission
            .findings
            .iter()
            .map(|f| (f.location.line, f.message.as_str()))
            .collect();
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[0].0, Some(7));
        assert!(
            found[0]
                .1
                .contains("writes `Off` unquoted at `/spec/updatePolicy/updateMode`")
                && found[0].1.contains("the boolean false"),
            "{found:#?}"
        );
        // The label must be a string; hostNetwork is a boolean, so `yes` is fine there.
        assert_eq!(found[1].0, Some(13), "{found:#?}");
        assert!(
            found[1]
                .1
                .contains("`yes` unquoted at `/metadata/labels/canary`")
        );
        // Other checks judge what the student meant: the string "Off".
        let Typed::VerticalPodAutoscaler(vpa) = &submission.objects[0].typed else {
            panic!("the VPA is read")
        };
        assert_eq!(
            vpa.spec
                .update_policy
                .as_ref()
                .and_then(|p| p.update_mode.as_deref()),
            Some("Off")
        );
    }

    #[test]
    fn schema_errors_point_at_the_field() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "d.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: two\n  selector: {}\n  template: {}\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(submission.findings.len(), 1, "{:?}", submission.findings);
        assert_eq!(submission.findings[0].check, "input.parse-error");
        assert_eq!(submission.findings[0].location.line, Some(5));
        assert!(matches!(submission.objects[0].typed, Typed::Invalid));
    }
}
