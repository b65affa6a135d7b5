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

/// The settings a probe gives the autoscaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `--scale-down-unneeded-time`: how long a node stays unneeded before it goes.
    pub unneeded_time: Duration,
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
    wait_for(
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
    .await?;
    Ok(())
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
