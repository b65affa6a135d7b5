//! Strict field validation, as `kubectl apply` does it: the fields of an object
//! that its kind does not have. Built-in kinds are checked against their
//! k8s-openapi model; our CRD models are partial, so custom resources are
//! checked against the upstream CRD schemas' field lists for the parts
//! students write.

use super::yaml::escape_pointer;
use serde_json::Value;

/// Which fields may appear where: a JSON pointer (`/*` for every item of a
/// list) and the keys allowed in the map there.
type FieldLists = &'static [(&'static str, &'static [&'static str])];

/// Keys present (and not null) in `original` but absent after a typed round
/// trip, as JSON pointers.
pub(super) fn unknown_fields(original: &Value, round_trip: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    collect_unknown_fields(original, round_trip, String::new(), &mut unknown);
    unknown
}

fn collect_unknown_fields(
    original: &Value,
    round_trip: &Value,
    pointer: String,
    out: &mut Vec<String>,
) {
    match (original, round_trip) {
        (Value::Object(original), Value::Object(kept)) => {
            for (key, value) in original {
                if value.is_null() {
                    continue;
                }
                let child = format!("{pointer}/{}", escape_pointer(key));
                match kept.get(key) {
                    None => out.push(child),
                    Some(kept_value) => collect_unknown_fields(value, kept_value, child, out),
                }
            }
        }
        (Value::Array(original), Value::Array(kept)) => {
            for (index, (value, kept_value)) in original.iter().zip(kept).enumerate() {
                collect_unknown_fields(value, kept_value, format!("{pointer}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// The fields of a custom resource of `kind` that its CRD's schema rejects,
/// each as its JSON pointer and key; empty for kinds without a field list.
pub(super) fn unknown_crd_fields(kind: &str, value: &Value) -> Vec<(String, String)> {
    let Some(schema) = crd_field_lists(kind) else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    for (pattern, allowed) in schema {
        let targets: Vec<String> = match pattern.strip_suffix("/*") {
            Some(list) => {
                let count = value
                    .pointer(list)
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                (0..count).map(|i| format!("{list}/{i}")).collect()
            }
            None => vec![pattern.to_string()],
        };
        for target in targets {
            let Some(map) = value.pointer(&target).and_then(Value::as_object) else {
                continue;
            };
            for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
                let pointer = format!("{target}/{}", escape_pointer(key));
                unknown.push((pointer, key.clone()));
            }
        }
    }
    unknown
}

/// The upstream CRD schemas' field lists for the parts students write.
fn crd_field_lists(kind: &str) -> Option<FieldLists> {
    let schema: FieldLists = match kind {
        "VerticalPodAutoscaler" => &[
            (
                "/spec",
                &[
                    "targetRef",
                    "updatePolicy",
                    "resourcePolicy",
                    "recommenders",
                ],
            ),
            (
                "/spec/updatePolicy",
                &["updateMode", "minReplicas", "evictionRequirements"],
            ),
            ("/spec/resourcePolicy", &["containerPolicies"]),
            (
                "/spec/resourcePolicy/containerPolicies/*",
                &[
                    "containerName",
                    "mode",
                    "minAllowed",
                    "maxAllowed",
                    "controlledResources",
                    "controlledValues",
                ],
            ),
        ],
        "ScaledObject" => &[
            (
                "/spec",
                &[
                    "scaleTargetRef",
                    "pollingInterval",
                    "initialCooldownPeriod",
                    "cooldownPeriod",
                    "idleReplicaCount",
                    "minReplicaCount",
                    "maxReplicaCount",
                    "advanced",
                    "triggers",
                    "fallback",
                ],
            ),
            (
                "/spec/scaleTargetRef",
                &["apiVersion", "kind", "name", "envSourceContainerName"],
            ),
            (
                "/spec/triggers/*",
                &[
                    "type",
                    "name",
                    "metadata",
                    "authenticationRef",
                    "metricType",
                    "useCachedMetrics",
                ],
            ),
        ],
        "ScaledJob" => &[
            (
                "/spec",
                &[
                    "jobTargetRef",
                    "pollingInterval",
                    "successfulJobsHistoryLimit",
                    "failedJobsHistoryLimit",
                    "historyLimit",
                    "envSourceContainerName",
                    "minReplicaCount",
                    "maxReplicaCount",
                    "rolloutStrategy",
                    "rollout",
                    "scalingStrategy",
                    "triggers",
                ],
            ),
            (
                "/spec/triggers/*",
                &[
                    "type",
                    "name",
                    "metadata",
                    "authenticationRef",
                    "metricType",
                    "useCachedMetrics",
                ],
            ),
        ],
        _ => return None,
    };
    Some(schema)
}

#[cfg(test)]
mod tests {
    use crate::submission::test_files::write;
    use crate::submission::{LoadOptions, load};

    #[test]
    fn unknown_fields_of_built_in_kinds_are_reported_at_the_key() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "hpa.yaml",
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h, annotations: {any/key: v}}\nspec:\n  scaleTargetRef: {kind: Deployment, name: d}\n  minReplica: 2\n  maxReplicas: 3\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(submission.findings.len(), 1, "{:?}", submission.findings);
        assert_eq!(submission.findings[0].check, "input.parse-error");
        assert!(submission.findings[0].message.contains("`minReplica`"));
        assert_eq!(submission.findings[0].location.to_string(), "hpa.yaml:6:3");
    }

    #[test]
    fn unknown_fields_of_custom_resources_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "vpa.yaml",
            "apiVersion: autoscaling.k8s.io/v1\nkind: VerticalPodAutoscaler\nmetadata: {name: v}\nspec:\n  targetRef: {kind: Deployment, name: d}\n  updatPolicy: {updateMode: \"Off\"}\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(submission.findings.len(), 1, "{:?}", submission.findings);
        assert!(submission.findings[0].message.contains("`updatPolicy`"));
        assert_eq!(submission.findings[0].location.line, Some(6));
    }
}
