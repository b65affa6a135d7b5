//! The cluster's one Cluster Autoscaler (`kube-system/cluster-autoscaler`, its kwok
//! cloud provider, `ci/addons/cluster-autoscaler.yaml`): at rest it has no replica; a
//! probe holding [`CLUSTER_AUTOSCALER_LOCK`] gives it the settings it judges, turns it
//! on, and turns it off again, with no node of its groups left behind. Its node groups
//! are simulated (kwok) from templates: every node it creates carries the provider's
//! taint [`KWOK_PROVIDER_TAINT`], so no pod but a probe's that tolerates it ever lands
//! on one, or makes it scale up.

use super::FIELD_MANAGER;
use super::error::EnvironmentError;
use super::lock::Singleton;
use super::wait::{deployment_available, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use std::time::Duration;

pub const NAMESPACE: &str = "kube-system";
pub const DEPLOYMENT: &str = "cluster-autoscaler";
/// The label whose value names a node's group (the kwok provider's `fromNodeLabelKey`).
pub const NODE_GROUP_LABEL: &str = "autoscale-conformance/node-group";
pub const GPU_GROUP: &str = "gpu-pool";
pub const CPU_GROUP: &str = "cpu-pool";
/// The kwok provider's taint on every node it creates (`skipTaint: false`).
pub const KWOK_PROVIDER_TAINT: (&str, &str) = ("kwok-provider", "true");
/// How often the autoscaler looks (its `--scan-interval`, set by the addon).
pub const SCAN_INTERVAL: Duration = Duration::from_secs(10);

/// One autoscaler per cluster: a probe that configures it and turns it on holds this.
pub const CLUSTER_AUTOSCALER_LOCK: Singleton = Singleton {
    namespace: NAMESPACE,
    lease: "autoscale-conformance-cluster-autoscaler",
    what: "the Cluster Autoscaler",
};

/// The templates of the node groups (`ci/addons/cluster-autoscaler.yaml`): their
/// `cluster-autoscaler.kwok.nodegroup/min-count` and `max-count` annotations size them.
pub const TEMPLATES: &str = "kwok-provider-templates";
const MIN_COUNT: &str = "cluster-autoscaler.kwok.nodegroup/min-count";
const MAX_COUNT: &str = "cluster-autoscaler.kwok.nodegroup/max-count";
/// The provider checks its desired count against min and max at start (absent, it is 0:
/// a min above 0 would stop it); it then counts the group's nodes every loop, so this
/// creates no node.
const DESIRED_COUNT: &str = "cluster-autoscaler.kwok.nodegroup/desired-count";
/// A group's size when a probe says nothing of it (the addon's).
pub const DEFAULT_SIZE: (u32, u32) = (0, 3);

/// The settings a probe gives the autoscaler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `--scale-down-unneeded-time`: how long a node stays unneeded before it goes.
    pub unneeded_time: Duration,
    /// Node groups sized otherwise than [`DEFAULT_SIZE`].
    pub sizes: Vec<GroupSize>,
}

/// A node group's min and max node count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSize {
    pub group: &'static str,
    pub min: u32,
    pub max: u32,
}

/// The templates' text (a v1 List of Nodes) with each group's min and max set: from
/// `sizes`, else [`DEFAULT_SIZE`]. JSON, which the provider's YAML reader reads too.
pub fn sized_templates(templates: &str, sizes: &[GroupSize]) -> Result<String, String> {
    let loaded = crate::submission::yaml::load(templates, Default::default());
    let mut list = loaded
        .documents
        .into_iter()
        .next()
        .map(|d| d.value)
        .ok_or_else(|| format!("no template List in {TEMPLATES}"))?;
    let items = list
        .get_mut("items")
        .and_then(serde_json::Value::as_array_mut)
        .ok_or_else(|| format!("{TEMPLATES} holds no items"))?;
    for node in items {
        let group = node
            .pointer(&format!(
                "/metadata/labels/{}",
                crate::submission::yaml::escape_pointer(NODE_GROUP_LABEL)
            ))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .unwrap_or_default();
        let (min, max) = sizes
            .iter()
            .find(|s| s.group == group)
            .map_or(DEFAULT_SIZE, |s| (s.min, s.max));
        let annotations = node
            .get_mut("metadata")
            .and_then(serde_json::Value::as_object_mut)
            .map(|m| m.entry("annotations").or_insert_with(|| json!({})))
            .and_then(serde_json::Value::as_object_mut)
            .ok_or_else(|| format!("a template of group {group:?} has no metadata object"))?;
        annotations.insert(MIN_COUNT.into(), json!(min.to_string()));
        annotations.insert(MAX_COUNT.into(), json!(max.to_string()));
        annotations.insert(DESIRED_COUNT.into(), json!(min.to_string()));
    }
    serde_json::to_string_pretty(&list).map_err(|e| e.to_string())
}

/// Writes the groups' sizes into the templates (read when the autoscaler starts).
async fn size_groups(client: &Client, sizes: &[GroupSize]) -> Result<(), EnvironmentError> {
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), NAMESPACE);
    let current = config_maps
        .get(TEMPLATES)
        .await
        .map_err(EnvironmentError::api(format!(
            "reading {NAMESPACE}/{TEMPLATES}"
        )))?;
    let text = current
        .data
        .as_ref()
        .and_then(|d| d.get("templates"))
        .cloned()
        .unwrap_or_default();
    let sized = sized_templates(&text, sizes).map_err(|detail| EnvironmentError::NotReady {
        what: format!("{NAMESPACE}/{TEMPLATES}"),
        detail,
    })?;
    if sized == text {
        return Ok(());
    }
    config_maps
        .patch(
            TEMPLATES,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(&json!({"data": {"templates": sized}})),
        )
        .await
        .map_err(EnvironmentError::api(format!(
            "sizing the node groups in {NAMESPACE}/{TEMPLATES}"
        )))?;
    Ok(())
}

/// `args` with `--flag=value` set (replaced where it was, else appended).
pub fn with_flag(args: &[String], flag: &str, value: &str) -> Vec<String> {
    let prefix = format!("{flag}=");
    let mut out: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with(&prefix) && a.as_str() != flag)
        .cloned()
        .collect();
    out.push(format!("{prefix}{value}"));
    out
}

/// Gives the autoscaler `settings`, turns it on and waits (within `budget`) until it runs.
pub async fn start(
    client: &Client,
    settings: Settings,
    budget: Duration,
) -> Result<(), EnvironmentError> {
    size_groups(client, &settings.sizes).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let current = deployments
        .get(DEPLOYMENT)
        .await
        .map_err(EnvironmentError::api(format!(
            "reading {NAMESPACE}/{DEPLOYMENT} (is ci/addons/cluster-autoscaler.yaml applied?)"
        )))?;
    let container = current
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .ok_or_else(|| EnvironmentError::NotReady {
            what: format!("{NAMESPACE}/{DEPLOYMENT}"),
            detail: "it has no container".into(),
        })?;
    let args = with_flag(
        container.args.as_deref().unwrap_or_default(),
        "--scale-down-unneeded-time",
        &format!("{}s", settings.unneeded_time.as_secs()),
    );
    let patch = json!({
        "spec": {
            "replicas": 1,
            "template": {"spec": {"containers": [{"name": container.name, "args": args}]}}
        }
    });
    deployments
        .patch(
            DEPLOYMENT,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Strategic(&patch),
        )
        .await
        .map_err(EnvironmentError::api(format!(
            "configuring and starting {NAMESPACE}/{DEPLOYMENT}"
        )))?;
    let waited = wait_for(
        &deployments,
        DEPLOYMENT,
        "the Cluster Autoscaler to run with the probe's settings",
        budget,
        |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                deployment_available(d)
                    && d.status.as_ref().is_some_and(|s| {
                        s.updated_replicas == Some(1)
                            && s.ready_replicas == Some(1)
                            && s.replicas == Some(1)
                            && s.observed_generation >= d.metadata.generation
                    })
            })
        },
        |d| format!("{:?}", d.and_then(|d| d.status.as_ref())),
    )
    .await;
    match waited {
        Ok(_) => Ok(()),
        // Its own last words say why (a provider that refuses its templates exits).
        Err(EnvironmentError::Timeout {
            what, last_seen, ..
        }) => {
            let last = match log_since(client, budget).await {
                Ok(log) => {
                    let lines: Vec<&str> = log.lines().collect();
                    lines[lines.len().saturating_sub(3)..].join(" | ")
                }
                Err(why) => why,
            };
            Err(EnvironmentError::Timeout {
                what,
                budget,
                last_seen: format!("{last_seen}; its log ends: {last}"),
            })
        }
        Err(other) => Err(other),
    }
}

/// Turns the autoscaler off and deletes the nodes its groups still have (best effort:
/// a failure only logs; the next probe's [`start`] finds it as it was left).
pub async fn stop(client: &Client) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let patch = json!({"spec": {"replicas": 0}});
    if let Err(e) = deployments
        .patch(
            DEPLOYMENT,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::warn!(%e, "could not turn the Cluster Autoscaler off");
    }
    let nodes: Api<Node> = Api::all(client.clone());
    for node in group_nodes(client, None).await {
        if let Some(name) = node.metadata.name {
            let _ = nodes.delete(&name, &DeleteParams::background()).await;
        }
    }
}

/// The autoscaler's own account of its node groups and last scale-ups and scale-downs
/// (`kube-system/cluster-autoscaler-status`, written while it runs), or why there is none.
pub async fn status(client: &Client) -> String {
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), NAMESPACE);
    match config_maps.get_opt("cluster-autoscaler-status").await {
        Ok(Some(map)) => map
            .data
            .and_then(|d| d.get("status").cloned())
            .unwrap_or_else(|| "(its status ConfigMap holds no status)".into()),
        Ok(None) => "(no status ConfigMap: the autoscaler has not written one)".into(),
        Err(e) => format!("(its status ConfigMap could not be read: {e})"),
    }
}

/// The autoscaler's log of the last `since` (its pod's, at `--v=2`: each scale-down
/// simulation says why a node can or cannot go), or why there is none.
pub async fn log_since(client: &Client, since: Duration) -> Result<String, String> {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let list = pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={DEPLOYMENT}")))
        .await
        .map_err(|e| format!("listing the autoscaler's pods: {e}"))?;
    let pod = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .find_map(|p| p.metadata.name.clone())
        .ok_or_else(|| "the autoscaler has no pod".to_string())?;
    let params = kube::api::LogParams {
        since_seconds: Some(i64::try_from(since.as_secs().max(1)).unwrap_or(i64::MAX)),
        ..Default::default()
    };
    pods.logs(&pod, &params)
        .await
        .map_err(|e| format!("reading the log of {NAMESPACE}/{pod}: {e}"))
}

/// What the autoscaler's log says of removing `node`: why it cannot (`Err`), or that it
/// found it removable (`Ok`), the line's message without klog's header; the latest wins.
pub fn removal_verdict(log: &str, node: &str) -> Option<Result<String, String>> {
    let blocked = format!("Node {node} cannot be removed: ");
    let removable = [
        format!("Node {node} may be removed"),
        format!("Node {node} is not suitable for removal"),
    ];
    log.lines().rev().find_map(|line| {
        if let Some(at) = line.find(&blocked) {
            return Some(Err(line[at..].trim().to_string()));
        }
        removable
            .iter()
            .find_map(|r| line.find(r.as_str()))
            .map(|at| Ok(line[at..].trim().to_string()))
    })
}

/// The label selector of the GPU pool's own nodes (`ci/addons/gpu-pool.yaml`), without
/// those the autoscaler adds to its `gpu-pool` group while a probe runs it.
pub fn static_gpu_pool_selector() -> String {
    format!(
        "{}={},!{NODE_GROUP_LABEL}",
        super::GPU_POOL_LABEL.0,
        super::GPU_POOL_LABEL.1
    )
}

/// The nodes of `group` (or of every group), as the autoscaler made them.
pub async fn group_nodes(client: &Client, group: Option<&str>) -> Vec<Node> {
    let selector = match group {
        Some(group) => format!("{NODE_GROUP_LABEL}={group}"),
        None => NODE_GROUP_LABEL.to_string(),
    };
    Api::<Node>::all(client.clone())
        .list(&ListParams::default().labels(&selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_addons_templates_are_sized_per_group_and_reset_to_the_default() {
        let addon = include_str!("../../../ci/addons/cluster-autoscaler.yaml");
        let loaded = crate::submission::yaml::load(addon, Default::default());
        let templates = loaded
            .documents
            .iter()
            .find(|d| d.value["metadata"]["name"] == TEMPLATES)
            .and_then(|d| d.value["data"]["templates"].as_str())
            .expect("the addon's templates")
            .to_string();
        let sized = sized_templates(
            &templates,
            &[GroupSize {
                group: GPU_GROUP,
                min: 1,
                max: 2,
            }],
        )
        .unwrap();
        let list: serde_json::Value = serde_json::from_str(&sized).unwrap();
        let count = |group: &str, key: &str| -> String {
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["metadata"]["name"] == group)
                .and_then(|n| n["metadata"]["annotations"][key].as_str())
                .unwrap()
                .to_string()
        };
        assert_eq!(count(GPU_GROUP, MIN_COUNT), "1");
        assert_eq!(count(GPU_GROUP, MAX_COUNT), "2");
        assert_eq!(count(GPU_GROUP, DESIRED_COUNT), "1");
        assert_eq!(count(CPU_GROUP, MIN_COUNT), "0");
        assert_eq!(count(CPU_GROUP, MAX_COUNT), "3");
        // Sized again with nothing said: the default again, whatever was there.
        let reset: serde_json::Value =
            serde_json::from_str(&sized_templates(&sized, &[]).unwrap()).unwrap();
        assert!(
            reset["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["metadata"]["annotations"][MIN_COUNT] == "0")
        );
        assert!(sized_templates("kind: List", &[]).is_err());
    }

    #[test]
    fn the_autoscalers_log_says_why_a_node_stays_or_that_it_may_go() {
        let log = "I1201 09:00:01.1 1 cluster.go:146] Simulating node gpu-pool-x removal\n\
            I1201 09:00:01.2 1 cluster.go:151] Node gpu-pool-x cannot be removed: pod annotated as not safe to evict present: protected-1\n\
            I1201 09:00:01.3 1 cluster.go:166] Node gpu-pool-y may be removed\n";
        assert_eq!(
            removal_verdict(log, "gpu-pool-x"),
            Some(Err("Node gpu-pool-x cannot be removed: pod annotated as not safe to evict present: protected-1".into()))
        );
        assert_eq!(
            removal_verdict(log, "gpu-pool-y"),
            Some(Ok("Node gpu-pool-y may be removed".into()))
        );
        assert_eq!(removal_verdict(log, "gpu-pool-z"), None);
    }

    #[test]
    fn a_flag_is_replaced_where_it_was_or_added() {
        let args: Vec<String> = [
            "--cloud-provider=kwok",
            "--scale-down-unneeded-time=1m",
            "--v=2",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            with_flag(&args, "--scale-down-unneeded-time", "90s"),
            [
                "--cloud-provider=kwok",
                "--v=2",
                "--scale-down-unneeded-time=90s"
            ]
        );
        assert_eq!(
            with_flag(&args[..1], "--scale-down-unneeded-time", "60s"),
            ["--cloud-provider=kwok", "--scale-down-unneeded-time=60s"]
        );
    }
}
