//! Connecting to the cluster, and the preflight that tells a broken environment from
//! a failing student: what must work before any probe runs, and the facts
//! ([`ClusterFacts`]) the probes then rely on.

use super::error::EnvironmentError;
use super::images::normalize_image;
use super::wait::{deployment_available, node_ready};
use super::{GPU_POOL_LABEL, KWOK_LABEL};
use crate::cluster::ClusterIntervals;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::{Client, Config};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// A connected, preflighted cluster.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    /// Kept to build fresh clients on other runtimes (cleanup in `Drop`).
    pub config: Config,
    pub intervals: ClusterIntervals,
    pub facts: ClusterFacts,
}

/// What the preflight saw.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClusterFacts {
    pub server_version: String,
    /// Ready nodes that run pods (not kwok).
    pub real_nodes: Vec<String>,
    /// Ready nodes of the GPU pool.
    pub gpu_nodes: Vec<String>,
    /// metrics-server's reported window on node metrics.
    pub metrics_window: Option<String>,
    /// Images present on the real nodes (normalized, see [`normalize_image`]): nothing
    /// else can run, since the cluster never pulls.
    pub node_images: BTreeSet<String>,
}

/// The Ready nodes as the preflight sorts them, for [`ClusterFacts`].
struct ReadyNodes {
    real_nodes: Vec<String>,
    gpu_nodes: Vec<String>,
    node_images: BTreeSet<String>,
}

/// How long connecting may take before we call the cluster unreachable.
const CONNECT_BUDGET: Duration = Duration::from_secs(10);

impl Cluster {
    /// Client from KUBECONFIG / ~/.kube/config / in-cluster, then the preflight.
    pub async fn connect() -> Result<Cluster, EnvironmentError> {
        let config = Config::infer()
            .await
            .map_err(|e| EnvironmentError::NoConfig(e.to_string()))?;
        let server = config.cluster_url.to_string();
        let client =
            Client::try_from(config.clone()).map_err(|e| EnvironmentError::Unreachable {
                server: server.clone(),
                detail: e.to_string(),
            })?;
        let version = match tokio::time::timeout(CONNECT_BUDGET, client.apiserver_version()).await {
            Ok(Ok(info)) => info.git_version,
            Ok(Err(e)) => {
                return Err(EnvironmentError::Unreachable {
                    server,
                    detail: e.to_string(),
                });
            }
            Err(_) => {
                return Err(EnvironmentError::Unreachable {
                    server,
                    detail: format!("no answer within {}s", CONNECT_BUDGET.as_secs()),
                });
            }
        };
        let mut cluster = Cluster {
            client,
            config,
            intervals: ClusterIntervals::default(),
            facts: ClusterFacts {
                server_version: version,
                ..ClusterFacts::default()
            },
        };
        cluster.preflight().await?;
        Ok(cluster)
    }

    /// The environment every live criterion needs: the metrics API Available, node
    /// metrics for every real node, metrics-server and CoreDNS Deployments Available.
    pub async fn preflight(&mut self) -> Result<(), EnvironmentError> {
        self.require_metrics_api().await?;
        self.require_system_deployments().await?;
        let ReadyNodes {
            real_nodes,
            gpu_nodes,
            node_images,
        } = self.ready_nodes().await?;
        let window = self.node_metrics_window(&real_nodes).await?;
        if let Some(seconds) = window.as_deref().and_then(parse_go_seconds) {
            // The window is the span of the two samples behind a rate: about one resolution.
            self.intervals.metrics_resolution =
                Duration::from_secs_f64(seconds.clamp(5.0, 60.0).ceil());
        }
        if let Some(sync) = std::env::var("AUTOSCALE_CONFORMANCE_HPA_SYNC_SECONDS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        {
            self.intervals.hpa_sync_period = Duration::from_secs(sync);
        }
        self.facts.real_nodes = real_nodes;
        self.facts.gpu_nodes = gpu_nodes;
        self.facts.node_images = node_images;
        self.facts.metrics_window = window;
        Ok(())
    }

    /// The metrics API is registered and Available (metrics-server serves it).
    async fn require_metrics_api(&self) -> Result<(), EnvironmentError> {
        let api_services: Api<APIService> = Api::all(self.client.clone());
        let metrics_api = api_services
            .get_opt("v1beta1.metrics.k8s.io")
            .await
            .map_err(EnvironmentError::api(
                "reading APIService v1beta1.metrics.k8s.io",
            ))?
            .ok_or_else(|| EnvironmentError::NotReady {
                what: "APIService v1beta1.metrics.k8s.io".into(),
                detail: "not registered: metrics-server is not installed".into(),
            })?;
        let available = metrics_api
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Available"));
        if available.map(|c| c.status.as_str()) != Some("True") {
            return Err(EnvironmentError::NotReady {
                what: "APIService v1beta1.metrics.k8s.io".into(),
                detail: match available {
                    Some(c) => format!(
                        "Available={} ({}: {})",
                        c.status,
                        c.reason.as_deref().unwrap_or("-"),
                        c.message.as_deref().unwrap_or("-")
                    ),
                    None => "no Available condition yet".into(),
                },
            });
        }
        Ok(())
    }

    /// metrics-server and CoreDNS run: their Deployments are Available.
    async fn require_system_deployments(&self) -> Result<(), EnvironmentError> {
        for (namespace, name) in [
            ("kube-system", "metrics-server"),
            ("kube-system", "coredns"),
        ] {
            let deployment = Api::<Deployment>::namespaced(self.client.clone(), namespace)
                .get_opt(name)
                .await
                .map_err(EnvironmentError::api(format!(
                    "reading Deployment {namespace}/{name}"
                )))?
                .ok_or_else(|| EnvironmentError::NotReady {
                    what: format!("Deployment {namespace}/{name}"),
                    detail: "not found".into(),
                })?;
            if !deployment_available(&deployment) {
                return Err(EnvironmentError::NotReady {
                    what: format!("Deployment {namespace}/{name}"),
                    detail: "not Available".into(),
                });
            }
        }
        Ok(())
    }

    /// The CPU (cores) of the real nodes' allocatable that no running or pending pod
    /// requests, now; `None` when the API server cannot tell.
    pub async fn unrequested_cpu(&self) -> Option<f64> {
        let nodes = self.node_cpu().await.ok()?;
        let requested = nodes
            .pods
            .iter()
            .map(|(_, millis)| *millis)
            .fold(0, u32::saturating_add);
        Some(f64::from(nodes.allocatable.saturating_sub(requested)) / 1000.0)
    }

    /// The Ready nodes, sorted as [`ClusterFacts`] keeps them; at least one must run pods.
    async fn ready_nodes(&self) -> Result<ReadyNodes, EnvironmentError> {
        let nodes = Api::<Node>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(EnvironmentError::api("listing nodes"))?;
        let mut real_nodes = Vec::new();
        let mut gpu_nodes = Vec::new();
        let mut node_images = BTreeSet::new();
        for node in &nodes.items {
            if !node_ready(node) {
                continue;
            }
            let name = node.metadata.name.clone().unwrap_or_default();
            let labels = node.metadata.labels.clone().unwrap_or_default();
            // The pool's own nodes, not those a Cluster Autoscaler probe adds meanwhile.
            if labels.get(GPU_POOL_LABEL.0).map(String::as_str) == Some(GPU_POOL_LABEL.1)
                && !labels.contains_key(super::autoscaler::NODE_GROUP_LABEL)
            {
                gpu_nodes.push(name.clone());
            }
            if labels.get(KWOK_LABEL.0).map(String::as_str) != Some(KWOK_LABEL.1) {
                real_nodes.push(name);
                let images = node.status.as_ref().and_then(|s| s.images.as_ref());
                for image in images.into_iter().flatten() {
                    for image_name in image.names.iter().flatten() {
                        node_images.insert(normalize_image(image_name));
                    }
                }
            }
        }
        if real_nodes.is_empty() {
            return Err(EnvironmentError::NotReady {
                what: "nodes".into(),
                detail: format!(
                    "no Ready node that runs pods among {} nodes",
                    nodes.items.len()
                ),
            });
        }
        Ok(ReadyNodes {
            real_nodes,
            gpu_nodes,
            node_images,
        })
    }

    /// Checks that every real node has NodeMetrics (metrics-server has scraped it) and
    /// returns metrics-server's window as it reports it.
    async fn node_metrics_window(
        &self,
        real_nodes: &[String],
    ) -> Result<Option<String>, EnvironmentError> {
        let node_metrics = self.metrics_api("NodeMetrics", "nodes");
        let listed = Api::<DynamicObject>::all_with(self.client.clone(), &node_metrics)
            .list(&ListParams::default())
            .await
            .map_err(EnvironmentError::api(
                "listing NodeMetrics (metrics.k8s.io)",
            ))?;
        let with_metrics: Vec<String> = listed
            .items
            .iter()
            .filter_map(|m| m.metadata.name.clone())
            .collect();
        let missing: Vec<&String> = real_nodes
            .iter()
            .filter(|n| !with_metrics.contains(n))
            .collect();
        if !missing.is_empty() {
            return Err(EnvironmentError::NotReady {
                what: "node metrics".into(),
                detail: format!(
                    "no NodeMetrics for {missing:?} (metrics-server has not scraped them)"
                ),
            });
        }
        let window = listed
            .items
            .first()
            .and_then(|m| m.data.get("window"))
            .and_then(Value::as_str)
            .map(String::from);
        Ok(window)
    }

    /// `metrics.k8s.io/v1beta1` resources (no typed API in k8s-openapi).
    pub fn metrics_api(&self, kind: &str, plural: &str) -> ApiResource {
        ApiResource {
            group: "metrics.k8s.io".into(),
            version: "v1beta1".into(),
            api_version: "metrics.k8s.io/v1beta1".into(),
            kind: kind.into(),
            plural: plural.into(),
        }
    }
}

/// "15.2s", "1m0s", "500ms" → seconds.
fn parse_go_seconds(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                0.001
            }
            ('h', _) => 3600.0,
            ('m', _) => 60.0,
            ('s', _) => 1.0,
            _ => return None,
        };
        total += value * unit;
    }
    if !number.is_empty() {
        return None;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("15s", Some(15.0))]
    #[case("15.045s", Some(15.045))]
    #[case("1m0s", Some(60.0))]
    #[case("500ms", Some(0.5))]
    #[case("abc", None)]
    #[case("15", None)]
    fn parses_go_durations(#[case] text: &str, #[case] seconds: Option<f64>) {
        assert_eq!(parse_go_seconds(text), seconds);
    }
}
