//! Server-side apply of a submission's objects into a test namespace: the pure
//! rewrite for that namespace ([`plan_apply`]: the namespace itself, renamed
//! PriorityClasses, images the cluster can run) and the API calls that apply it.
//! [`TestNamespace::apply`](super::TestNamespace::apply) and
//! [`apply_raw`](super::TestNamespace::apply_raw) are the entry points.

use super::error::EnvironmentError;
use super::images::{substitute_placeholders, substitute_unavailable};
use super::policy::{self, Admission, Refusal};
use super::{FIELD_MANAGER, SUBMISSION_FIELD_MANAGER};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Applies a submission's objects into `namespace`, rewritten by [`plan_apply`] and,
/// where the nodes' images are known, by [`substitute_unavailable`]. Refuses the whole
/// submission, applying nothing, when the sandbox refuses any of its objects. The
/// PriorityClasses the suite creates for it are recorded in `cluster_scoped`, before
/// they are applied, for cleanup. `client` (admin) discovers kinds and creates those
/// PriorityClasses; `applier` (the namespace's own identity) applies everything else.
pub(super) async fn apply_submission(
    client: &Client,
    applier: &Client,
    namespace: &str,
    node_images: &BTreeSet<String>,
    cluster_scoped: &mut Vec<(ApiResource, String)>,
    objects: &[Value],
) -> Result<Applied, ApplyError> {
    let mut plan = plan_apply(objects, namespace);
    if !plan.refusals.is_empty() {
        return Err(ApplyError::Refused {
            refusals: plan.refusals,
        });
    }
    if !node_images.is_empty() {
        for object in &mut plan.objects {
            let (kind, name) = kind_and_name(object);
            for pointer in pod_spec_pointers(&kind) {
                if let Some(pod_spec) = object.pointer_mut(pointer) {
                    for note in substitute_unavailable(pod_spec, node_images) {
                        plan.notes.push(format!("{kind} {name}: {note}"));
                    }
                }
            }
        }
    }
    let mut applied = Applied {
        objects: Vec::new(),
        notes: plan.notes.clone(),
    };
    for class in &plan.priority_classes {
        let (resource, _) = discover(client, class).await?;
        let (kind, name) = kind_and_name(class);
        cluster_scoped.push((resource.clone(), name.clone()));
        // The suite's own object: its field manager, not the submission's.
        Api::<DynamicObject>::all_with(client.clone(), &resource)
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(class),
            )
            .await
            .map_err(|source| ApplyError::rejected(format!("{kind} {name}"), source))?;
        applied.objects.push(format!("{kind}/{name}"));
    }
    // Every object through the API server's validation and admission (the VPA's and
    // KEDA's webhooks among them) as a dry run first: the student hears of every object
    // the cluster refuses at once, and a refused submission leaves nothing half-applied
    // for a probe to wait on.
    let mut targets = Vec::with_capacity(plan.objects.len());
    for object in &plan.objects {
        let (kind, name) = kind_and_name(object);
        let (resource, capabilities) = discover(client, object).await?;
        if capabilities.scope == Scope::Cluster {
            // An allowlisted kind that this cluster serves cluster-scoped: never as admin.
            return Err(ApplyError::Refused {
                refusals: vec![Refusal {
                    object: format!("{kind} {name}"),
                    reason: "cluster-scoped here; a submission may apply namespaced objects only"
                        .into(),
                }],
            });
        }
        targets.push((
            Api::<DynamicObject>::namespaced_with(applier.clone(), namespace, &resource),
            kind,
            name,
        ));
    }
    let params = PatchParams::apply(SUBMISSION_FIELD_MANAGER).force();
    let dry_run = params.clone().dry_run();
    let mut rejections = Vec::new();
    for ((api, kind, name), object) in targets.iter().zip(&plan.objects) {
        if let Err(source) = api.patch(name, &dry_run, &Patch::Apply(object)).await
            && !awaits_an_earlier_object(&source, &plan.objects)
        {
            rejections.push(Rejection {
                object: format!("{kind} {name}"),
                source,
            });
        }
    }
    if !rejections.is_empty() {
        return Err(ApplyError::Rejected { rejections });
    }
    for ((api, kind, name), object) in targets.iter().zip(&plan.objects) {
        api.patch(name, &params, &Patch::Apply(object))
            .await
            .map_err(|source| ApplyError::rejected(format!("{kind} {name}"), source))?;
        applied.objects.push(format!("{kind}/{name}"));
    }
    Ok(applied)
}

/// A dry run's refusal that only says another object of the same apply does not exist yet
/// (a Pod's ServiceAccount, say: a dry run creates nothing). The real apply, in order,
/// judges that object.
fn awaits_an_earlier_object(error: &kube::Error, objects: &[Value]) -> bool {
    let kube::Error::Api(status) = error else {
        return false;
    };
    objects.iter().any(|object| {
        let (kind, name) = kind_and_name(object);
        !name.is_empty()
            && status.message.contains(&format!(
                "{} \"{name}\" not found",
                kind.to_ascii_lowercase()
            ))
    })
}

/// The API resource of `object`'s kind, as the cluster serves it.
async fn discover(
    client: &Client,
    object: &Value,
) -> Result<(ApiResource, kube::discovery::ApiCapabilities), ApplyError> {
    let (kind, _) = kind_and_name(object);
    let api_version = object
        .pointer("/apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, &kind);
    kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|source| ApplyError::Discovery {
            kind: format!("{api_version} {kind}"),
            source,
        })
}

/// Applies one object of the suite's own into `namespace`, as it is, under `field_manager`.
pub(super) async fn apply_as_is(
    client: &Client,
    namespace: &str,
    field_manager: &str,
    object: &Value,
) -> Result<(), EnvironmentError> {
    let (kind, name) = kind_and_name(object);
    let api_version = object
        .pointer("/apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (resource, _) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, &kind))
            .await
            .map_err(EnvironmentError::api(format!(
                "discovering {api_version} {kind}"
            )))?;
    Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource)
        .patch(
            &name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(EnvironmentError::api(format!("applying {kind} {name}")))?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the cluster does not serve {kind}: {source}")]
    Discovery {
        kind: String,
        #[source]
        source: kube::Error,
    },
    /// Every object the API server refused (validation, admission webhooks, quota).
    #[error("the API server refused {}", rejections.iter().map(Rejection::to_string).collect::<Vec<_>>().join("; "))]
    Rejected { rejections: Vec<Rejection> },
    #[error("the grader's sandbox refused {}", refusals.iter().map(Refusal::to_string).collect::<Vec<_>>().join("; "))]
    Refused { refusals: Vec<Refusal> },
}

/// One object the API server refused, and its answer.
#[derive(Debug, thiserror::Error)]
#[error("{object}: {}", api_message(source))]
pub struct Rejection {
    /// "Kind name", as the submission wrote them.
    pub object: String,
    #[source]
    pub source: kube::Error,
}

impl Rejection {
    /// The API server's own words for this object.
    pub fn api_message(&self) -> String {
        api_message(&self.source)
    }
}

impl ApplyError {
    fn rejected(object: String, source: kube::Error) -> ApplyError {
        ApplyError::Rejected {
            rejections: vec![Rejection { object, source }],
        }
    }

    /// Whether the API server's authorizer refused the sandbox's own applier: its grant
    /// covers every kind the sandbox lets through, in its namespace, so this is the
    /// environment's fault (the namespace swept while in use, RBAC lost), never the
    /// submission's. A submission's own 403s (quota, Pod Security, webhooks) name no user.
    pub fn is_sandbox_failure(&self) -> bool {
        let applier = format!(":{}\" cannot ", super::identity::applier_name());
        matches!(self, ApplyError::Rejected { rejections } if rejections.iter().any(|r| {
            matches!(&r.source, kube::Error::Api(status)
                if status.code == 403 && status.message.contains(&applier))
        }))
    }

    /// The API server's own message (admission, validation, quota), for verdicts.
    pub fn api_message(&self) -> String {
        match self {
            ApplyError::Discovery { source, .. } => api_message(source),
            ApplyError::Rejected { rejections } => rejections
                .iter()
                .map(Rejection::api_message)
                .collect::<Vec<_>>()
                .join("; "),
            ApplyError::Refused { .. } => self.to_string(),
        }
    }
}

/// The API server's own words where it answered, else the error.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// What an apply did: the objects and every rewrite the report must mention.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Applied {
    pub objects: Vec<String>,
    pub notes: Vec<String>,
}

/// Objects rewritten for one test namespace, ready to apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyPlan {
    /// The submission's namespaced objects, applied under its own field manager.
    pub objects: Vec<Value>,
    /// PriorityClasses the suite creates for the submission (see [`policy::map_priority_class`]).
    pub priority_classes: Vec<Value>,
    /// Objects the sandbox refuses: when any, nothing is applied.
    pub refusals: Vec<Refusal>,
    pub notes: Vec<String>,
}

/// Rewrites a submission's objects for a test namespace (pure, unit-tested):
/// - each object is first admitted by [`policy::admit`]: refused ones are listed in
///   `refusals` (and the caller applies nothing);
/// - `Namespace` objects are skipped: the test namespace stands in for them;
/// - namespaced objects get the test namespace;
/// - cluster-scoped PriorityClasses are mapped to `<namespace>-<name>` (parallel tests must
///   not fight over one name, and none may become the cluster's default) and pod specs
///   that use them follow;
/// - the seed's placeholder images become the inference workload (see [`substitute_placeholders`]);
/// - server-populated fields (status, uid, resourceVersion, managedFields) are dropped.
pub fn plan_apply(objects: &[Value], namespace: &str) -> ApplyPlan {
    let mut plan = ApplyPlan::default();
    let admissions: Vec<Admission> = objects.iter().map(policy::admit).collect();
    let mut priority_renames: BTreeMap<String, String> = BTreeMap::new();
    for (object, admission) in objects.iter().zip(&admissions) {
        if *admission == Admission::MapPriorityClass {
            let (_, name) = kind_and_name(object);
            priority_renames.insert(name.clone(), format!("{namespace}-{name}"));
        }
    }
    for (object, admission) in objects.iter().zip(admissions) {
        let (kind, name) = kind_and_name(object);
        let kind = kind.as_str();
        match admission {
            Admission::Refuse(reason) => {
                plan.refusals.push(Refusal {
                    object: format!("{kind} {name}"),
                    reason,
                });
                continue;
            }
            Admission::Replace => {
                plan.notes.push(format!(
                    "{kind} {name}: replaced by the test namespace {namespace}"
                ));
                continue;
            }
            Admission::MapPriorityClass => {
                let renamed = format!("{namespace}-{name}");
                let (mapped, note) = policy::map_priority_class(object, &renamed);
                plan.notes.push(note);
                plan.priority_classes.push(mapped);
                continue;
            }
            Admission::Apply => {}
        }
        let mut object = object.clone();
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in [
                "uid",
                "resourceVersion",
                "managedFields",
                "creationTimestamp",
                "generation",
                "selfLink",
            ] {
                metadata.remove(field);
            }
            metadata.insert("namespace".into(), Value::String(namespace.to_string()));
        }
        for pointer in pod_spec_pointers(kind) {
            if let Some(pod_spec) = object.pointer_mut(pointer) {
                if let Some(class) = pod_spec.get("priorityClassName").and_then(Value::as_str)
                    && let Some(renamed) = priority_renames.get(class)
                {
                    pod_spec["priorityClassName"] = Value::String(renamed.clone());
                }
                for note in substitute_placeholders(pod_spec) {
                    plan.notes.push(format!("{kind} {name}: {note}"));
                }
            }
        }
        plan.objects.push(object);
    }
    plan
}

fn pod_spec_pointers(kind: &str) -> &'static [&'static str] {
    match kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" | "DaemonSet" | "Job" => {
            &["/spec/template/spec"]
        }
        "CronJob" => &["/spec/jobTemplate/spec/template/spec"],
        "Pod" => &["/spec"],
        _ => &[],
    }
}

/// An object's kind and name ("" where missing).
fn kind_and_name(object: &Value) -> (String, String) {
    let field = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (field("/kind"), field("/metadata/name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::INFERENCE_IMAGE;
    use serde_json::json;

    fn seed_deployment() -> Value {
        serde_json::from_str(
            r#"{"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "fraud-detector-api", "namespace": "ml-platform", "labels": {"app": "fraud-detector"}, "uid": "x"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "fraud-detector"}},
                  "template": {"metadata": {"labels": {"app": "fraud-detector"}},
                    "spec": {"priorityClassName": "high-priority-training", "containers": [{
                      "name": "api", "image": "hashicorp/http-echo:latest", "args": ["-text=hi"],
                      "ports": [{"containerPort": 5678, "name": "http"}],
                      "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "500m"}},
                      "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
                      "livenessProbe": {"exec": {"command": ["cat", "/tmp/ok"]}},
                      "lifecycle": {"postStart": {"exec": {"command": ["/bin/sh", "-c", "dd"]}}}}]}}},
                "status": {"replicas": 2}}"#,
        )
        .unwrap()
    }

    #[test]
    fn plans_rewrite_namespaces_images_and_priority_classes() {
        let objects = vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml-platform"}}),
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high-priority-training"}, "value": 1000}),
            seed_deployment(),
        ];
        let plan = plan_apply(&objects, "ac-test-1");
        assert!(plan.refusals.is_empty(), "{:?}", plan.refusals);
        assert_eq!(
            plan.objects.len(),
            1,
            "the Namespace is replaced and the PriorityClass mapped, neither applied as is"
        );
        let priority = &plan.priority_classes[0];
        assert_eq!(
            priority["metadata"]["name"],
            "ac-test-1-high-priority-training"
        );
        assert!(priority["metadata"].get("namespace").is_none());
        assert_eq!(priority["globalDefault"], false);
        let deployment = &plan.objects[0];
        assert_eq!(deployment["metadata"]["namespace"], "ac-test-1");
        assert!(deployment.get("status").is_none() && deployment["metadata"].get("uid").is_none());
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["priorityClassName"], "ac-test-1-high-priority-training");
        let container = &pod["containers"][0];
        assert_eq!(container["image"], INFERENCE_IMAGE);
        assert_eq!(container["imagePullPolicy"], "IfNotPresent");
        // Kept: resources, ports, HTTP probe, labels. Dropped: what needs a shell.
        assert_eq!(container["resources"]["requests"]["cpu"], "200m");
        assert_eq!(container["ports"][0]["containerPort"], 5678);
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(
            deployment["spec"]["template"]["metadata"]["labels"]["app"],
            "fraud-detector"
        );
        for gone in ["args", "lifecycle", "livenessProbe"] {
            assert!(container.get(gone).is_none(), "{gone} should be dropped");
        }
        assert_eq!(
            container["env"][0],
            json!({"name": "LISTEN", "value": "0.0.0.0:5678"})
        );
        let notes = plan.notes.join("\n");
        assert!(
            notes.contains("image hashicorp/http-echo:latest replaced by"),
            "{notes}"
        );
        assert!(
            notes.contains("exec lifecycle hooks") && notes.contains("exec livenessProbe"),
            "{notes}"
        );
        assert!(
            notes.contains("Namespace ml-platform: replaced by the test namespace ac-test-1"),
            "{notes}"
        );
    }

    #[test]
    fn plans_with_a_refused_object_list_every_refusal() {
        let objects = vec![
            seed_deployment(),
            json!({"apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": {"name": "autoscale-conformance-sandbox-quota"}, "spec": {"hard": {"pods": "1000"}}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "take-over"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "open"}, "spec": {"type": "NodePort"}}),
        ];
        let plan = plan_apply(&objects, "ac-test-1");
        let refused: Vec<&str> = plan.refusals.iter().map(|r| r.object.as_str()).collect();
        assert_eq!(
            refused,
            [
                "ResourceQuota autoscale-conformance-sandbox-quota",
                "ClusterRoleBinding take-over",
                "Service open"
            ]
        );
        let error = ApplyError::Refused {
            refusals: plan.refusals,
        };
        let message = error.api_message();
        assert!(
            message.contains("reserved") && message.contains("NodePort"),
            "{message}"
        );
    }

    #[test]
    fn a_dry_run_missing_an_object_of_the_same_apply_is_not_a_refusal() {
        let status = |message: &str| {
            kube::Error::Api(Box::new(
                serde_json::from_value(
                    json!({"code": 403, "reason": "Forbidden", "message": message}),
                )
                .unwrap(),
            ))
        };
        let objects = vec![
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner"}}),
            seed_deployment(),
        ];
        let missing_runner = status(
            "pods \"p\" is forbidden: error looking up service account ac-1/runner: serviceaccount \"runner\" not found",
        );
        assert!(awaits_an_earlier_object(&missing_runner, &objects));
        let missing_other = status(
            "pods \"p\" is forbidden: error looking up service account ac-1/other: serviceaccount \"other\" not found",
        );
        assert!(!awaits_an_earlier_object(&missing_other, &objects));
        let invalid = status(
            "Deployment.apps \"fraud-detector-api\" is invalid: spec.replicas: Invalid value: -1",
        );
        assert!(!awaits_an_earlier_object(&invalid, &objects));
    }
}
