//! Nodes of a test's own, for probes that must disrupt a node (a drain) without touching
//! anyone else's: simulated by kwok (the local cluster's `ci/localcluster/cluster.sh` and
//! kind's `ci/kind/up.sh` both run it), named after the test namespace, labelled and
//! tainted with that namespace so that only the test's own pods land on them, and
//! deleted after the namespace: registered with [`TestNamespace::delete_after_namespace`],
//! and owned by the Namespace object, so that the garbage collector removes them even
//! when the test process was killed and an expired namespace is swept later.

use super::error::EnvironmentError;
use super::namespace::TestNamespace;
use super::wait::{node_ready, wait_for};
use super::{FIELD_MANAGER, KWOK_LABEL, SUITE_LABEL};
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use std::time::Duration;

/// kwok manages the nodes that carry this annotation (`--manage-nodes-with-annotation-selector`).
pub const KWOK_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");
/// Label and `NoSchedule` taint key of a test's nodes; the value is the test namespace.
pub const TEST_NODE_KEY: &str = "autoscale-conformance/test-node";

/// A test's own simulated nodes, in the order they were asked for.
#[derive(Debug, Clone)]
pub struct TestNodes {
    /// The test namespace: the value of the nodes' label and taint.
    pub namespace: String,
    pub names: Vec<String>,
}

/// `<namespace>-<role>`, e.g. `ac-live-pdb-...-drain-a`.
pub fn test_node_name(namespace: &str, role: &str) -> String {
    format!("{namespace}-{role}")
}

/// `kubernetes.io/hostname` must be a label value (at most 63 characters) while a node
/// name may be longer: a long name is cut and made unique again with a hash of the whole.
pub fn hostname_label(name: &str) -> String {
    if name.len() <= 63 {
        return name.to_string();
    }
    // FNV-1a: stable across runs and Rust versions, unlike `DefaultHasher`.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let head: String = name.chars().take(63 - 17).collect();
    format!("{}-{hash:016x}", head.trim_end_matches('-'))
}

/// The Node object of one test node: the shape of the local cluster's kwok nodes
/// (8 CPU, 30 GiB, 110 pods, `type=kwok` so that metrics-server and the preflight skip it),
/// the test's label and `NoSchedule` taint, owned by the test's Namespace.
pub fn node_manifest(name: &str, namespace: &str, namespace_uid: &str, cordoned: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                KWOK_ANNOTATION.0: KWOK_ANNOTATION.1,
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                KWOK_LABEL.0: KWOK_LABEL.1,
                SUITE_LABEL: "true",
                TEST_NODE_KEY: namespace,
                "kubernetes.io/hostname": hostname_label(name),
                "kubernetes.io/os": "linux",
            },
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Namespace",
                "name": namespace,
                "uid": namespace_uid,
            }],
        },
        "spec": {
            "unschedulable": cordoned,
            "taints": [{"key": TEST_NODE_KEY, "value": namespace, "effect": "NoSchedule"}],
        },
        "status": {
            "allocatable": {"cpu": "8", "memory": "30Gi", "pods": "110"},
            "capacity": {"cpu": "8", "memory": "30Gi", "pods": "110"},
        },
    })
}

/// Pins a pod spec to the test's nodes: their nodeSelector (replacing the pod's own)
/// and a toleration of their taint; a required node affinity, which could exclude them,
/// goes, and hard per-node spreading is softened. Returns one note per rewrite, for the verdict.
pub fn pin_pod_spec(pod_spec: &mut Value, namespace: &str) -> Vec<String> {
    let mut notes = Vec::new();
    let Some(spec) = pod_spec.as_object_mut() else {
        return notes;
    };
    if let Some(own) = spec.get("nodeSelector").filter(|s| !s.is_null()) {
        notes.push(format!("its nodeSelector {own} was replaced"));
    }
    spec.insert("nodeSelector".into(), json!({ TEST_NODE_KEY: namespace }));
    if let Some(affinity) = spec.get_mut("affinity").and_then(Value::as_object_mut) {
        if affinity.remove("nodeAffinity").is_some() {
            notes.push("its node affinity was dropped".into());
        }
        // Two test nodes cannot hold N replicas one per node: hard spreading would keep
        // pods Pending and judge the nodes' count instead of the budget.
        if let Some(anti) = affinity
            .get_mut("podAntiAffinity")
            .and_then(Value::as_object_mut)
            && anti
                .remove("requiredDuringSchedulingIgnoredDuringExecution")
                .is_some()
        {
            notes.push("its required pod anti-affinity was dropped (preferred kept)".into());
        }
    }
    if let Some(constraints) = spec
        .get_mut("topologySpreadConstraints")
        .and_then(Value::as_array_mut)
    {
        let mut softened = 0;
        for constraint in constraints {
            if constraint.get("whenUnsatisfiable").and_then(Value::as_str) != Some("ScheduleAnyway")
            {
                constraint["whenUnsatisfiable"] = json!("ScheduleAnyway");
                softened += 1;
            }
        }
        if softened > 0 {
            notes.push(format!(
                "{softened} topology spread constraint(s) set to ScheduleAnyway"
            ));
        }
    }
    let toleration = json!({"key": TEST_NODE_KEY, "operator": "Equal", "value": namespace, "effect": "NoSchedule"});
    match spec.get_mut("tolerations").and_then(Value::as_array_mut) {
        Some(tolerations) => tolerations.push(toleration),
        None => {
            spec.insert("tolerations".into(), json!([toleration]));
        }
    }
    notes.push(format!(
        "nodeSelector {TEST_NODE_KEY}={namespace} and a toleration of its NoSchedule taint were added"
    ));
    notes
}

impl TestNodes {
    /// Creates one node per `(role, cordoned)`. Each is registered for deletion after the
    /// namespace before it is created.
    pub async fn create(
        namespace: &mut TestNamespace,
        roles: &[(&str, bool)],
    ) -> Result<TestNodes, EnvironmentError> {
        let client = namespace.client();
        let owner = Api::<Namespace>::all(client.clone())
            .get(&namespace.name)
            .await
            .map_err(EnvironmentError::api(format!(
                "reading namespace {}",
                namespace.name
            )))?;
        let uid = owner.uid().unwrap_or_default();
        let nodes = Api::<Node>::all(client);
        let mut names = Vec::new();
        for (role, cordoned) in roles {
            let name = test_node_name(&namespace.name, role);
            namespace.delete_after_namespace(ApiResource::erase::<Node>(&()), name.clone());
            let node: Node =
                serde_json::from_value(node_manifest(&name, &namespace.name, &uid, *cordoned))
                    .map_err(|e| EnvironmentError::NotReady {
                        what: format!("node {name}"),
                        detail: format!("the suite's node manifest does not parse: {e}"),
                    })?;
            nodes
                .create(
                    &PostParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    },
                    &node,
                )
                .await
                .map_err(EnvironmentError::api(format!("creating test node {name}")))?;
            names.push(name);
        }
        Ok(TestNodes {
            namespace: namespace.name.clone(),
            names,
        })
    }

    /// Waits until kwok reports every node Ready (watch-based, bounded).
    pub async fn wait_ready(
        &self,
        client: &Client,
        budget: Duration,
    ) -> Result<(), EnvironmentError> {
        let nodes = Api::<Node>::all(client.clone());
        for name in &self.names {
            wait_for(
                &nodes,
                name,
                &format!(
                    "test node {name} to be Ready (kwok must manage nodes annotated {}={})",
                    KWOK_ANNOTATION.0, KWOK_ANNOTATION.1
                ),
                budget,
                |n: Option<&Node>| n.is_some_and(node_ready),
                |n| {
                    format!(
                        "{:?}",
                        n.and_then(|n| n.status.as_ref())
                            .and_then(|s| s.conditions.as_ref())
                    )
                },
            )
            .await?;
        }
        Ok(())
    }

    /// The test nodes that still exist (for a leftover check).
    pub async fn remaining(client: &Client, namespace: &str) -> Result<Vec<String>, kube::Error> {
        let listed = Api::<Node>::all(client.clone())
            .list(&ListParams::default().labels(&format!("{TEST_NODE_KEY}={namespace}")))
            .await?;
        Ok(listed.items.iter().map(|n| n.name_any()).collect())
    }
}

/// Cordons (`true`) or uncordons a node, as `kubectl cordon`/`uncordon` do.
pub async fn set_unschedulable(
    client: &Client,
    node: &str,
    unschedulable: bool,
) -> Result<(), EnvironmentError> {
    Api::<Node>::all(client.clone())
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": unschedulable}})),
        )
        .await
        .map_err(EnvironmentError::api(format!(
            "{} node {node}",
            if unschedulable {
                "cordoning"
            } else {
                "uncordoning"
            }
        )))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_manifests_are_kwok_nodes_of_the_test_only() {
        let node = node_manifest("ac-x-1-drain-a", "ac-x-1", "uid-1", true);
        let parsed: Node = serde_json::from_value(node.clone()).expect("a Node");
        let labels = parsed.metadata.labels.unwrap();
        assert_eq!(
            labels["type"], "kwok",
            "metrics-server and the preflight skip it"
        );
        assert_eq!(labels[TEST_NODE_KEY], "ac-x-1");
        assert_eq!(
            parsed.metadata.annotations.unwrap()["kwok.x-k8s.io/node"],
            "fake"
        );
        let owner = &parsed.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Namespace", "ac-x-1", "uid-1")
        );
        let spec = parsed.spec.unwrap();
        assert_eq!(spec.unschedulable, Some(true));
        let taint = &spec.taints.unwrap()[0];
        assert_eq!(
            (
                taint.key.as_str(),
                taint.value.as_deref(),
                taint.effect.as_str()
            ),
            (TEST_NODE_KEY, Some("ac-x-1"), "NoSchedule")
        );
        assert_eq!(node["status"]["allocatable"]["pods"], "110");
    }

    #[test]
    fn hostname_labels_stay_label_values_and_unique() {
        let short = "ac-short-drain-a";
        assert_eq!(hostname_label(short), short);
        let namespace = format!("ac-{}", "x".repeat(58));
        let a = hostname_label(&test_node_name(&namespace, "drain-a"));
        let b = hostname_label(&test_node_name(&namespace, "drain-b"));
        assert_ne!(a, b);
        for label in [&a, &b] {
            assert!(label.len() <= 63, "{label}");
            assert!(!label.ends_with('-') && !label.starts_with('-'));
        }
    }

    #[test]
    fn pinning_replaces_the_selector_drops_node_affinity_and_adds_a_toleration() {
        let mut pod = json!({
            "nodeSelector": {"node-pool": "cpu"},
            "affinity": {"nodeAffinity": {"x": 1}, "podAntiAffinity": {"y": 2}},
            "tolerations": [{"key": "other", "operator": "Exists"}],
            "containers": [],
        });
        let notes = pin_pod_spec(&mut pod, "ac-ns");
        assert_eq!(pod["nodeSelector"], json!({TEST_NODE_KEY: "ac-ns"}));
        assert!(pod["affinity"].get("nodeAffinity").is_none());
        assert_eq!(pod["affinity"]["podAntiAffinity"]["y"], 2, "kept");
        assert_eq!(pod["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(pod["tolerations"][1]["value"], "ac-ns");
        assert_eq!(notes.len(), 3, "{notes:?}");

        let mut spread = json!({
            "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname"}],
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1}],
            }},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"}],
        });
        let notes = pin_pod_spec(&mut spread, "ac-ns");
        let anti = &spread["affinity"]["podAntiAffinity"];
        assert!(
            anti.get("requiredDuringSchedulingIgnoredDuringExecution")
                .is_none()
        );
        assert!(
            anti.get("preferredDuringSchedulingIgnoredDuringExecution")
                .is_some()
        );
        assert_eq!(
            spread["topologySpreadConstraints"][0]["whenUnsatisfiable"],
            "ScheduleAnyway"
        );
        assert_eq!(notes.len(), 3, "{notes:?}");

        let mut bare = json!({"containers": []});
        let notes = pin_pod_spec(&mut bare, "ac-ns");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(bare["tolerations"][0]["key"], TEST_NODE_KEY);
    }
}
