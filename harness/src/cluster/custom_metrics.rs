//! The cluster's `custom.metrics.k8s.io` (prometheus-adapter, `monitoring/prometheus-adapter`):
//! reading it ([`CustomMetrics`]: the discovery list, a Pods metric for the pods of a
//! selector) and reconfiguring it ([`AdapterLock`], [`Adapter::configure`]).
//!
//! The adapter's APIService is one per cluster, so a probe that writes the adapter's
//! rules holds a cluster-wide lock first ([`ADAPTER_LOCK`], a [`super::lock`]): the Lease
//! `monitoring/autoscale-conformance-custom-metrics`, held by the grading namespace.
//! The adapter does not hot-reload: [`Adapter::configure`] writes its ConfigMap,
//! restarts it through a pod-template annotation (the config's hash) and waits for the
//! rollout and the APIService; a new pod that crashes on the config is reported with the
//! adapter's own log line ([`ConfigureError::Rejected`]).

use super::FIELD_MANAGER;
use super::error::EnvironmentError;
use super::lock::{ClusterLock, Singleton};
use super::wait::poll_until;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Client;
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const ADAPTER_NAMESPACE: &str = "monitoring";
pub const ADAPTER_DEPLOYMENT: &str = "prometheus-adapter";
pub const ADAPTER_CONFIGMAP: &str = "prometheus-adapter";
pub const ADAPTER_CONFIG_KEY: &str = "config.yaml";
pub const APISERVICE: &str = "v1beta1.custom.metrics.k8s.io";
/// The pod-template annotation whose change restarts the adapter on a new config.
pub const CONFIG_HASH_ANNOTATION: &str = "autoscale-conformance/config-hash";
/// The cluster-wide lock on the adapter's configuration.
pub const LOCK_LEASE: &str = "autoscale-conformance-custom-metrics";
const CALL_BUDGET: Duration = Duration::from_secs(20);
const BASE: &str = "/apis/custom.metrics.k8s.io/v1beta1";

/// One value of a Pods metric, as the adapter serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodValue {
    pub pod: String,
    /// The quantity as served (`1500m`), and its number.
    pub quantity: String,
    pub value: f64,
}

/// What the adapter answered for a Pods metric of some pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PodsAnswer {
    Values(Vec<PodValue>),
    /// The adapter answered, without values (404 "the server could not find the metric"
    /// or an empty list): its message.
    NoValue(String),
}

/// `custom.metrics.k8s.io` through the API server.
#[derive(Clone)]
pub struct CustomMetrics {
    client: Client,
}

impl CustomMetrics {
    pub fn new(client: Client) -> CustomMetrics {
        CustomMetrics { client }
    }

    /// The discovery list: every `resource/metric` the adapter serves (`pods/x`,
    /// `namespaces/x`), sorted.
    pub async fn discovery(&self) -> Result<Vec<String>, EnvironmentError> {
        let value = self.get(BASE).await?;
        let mut names: Vec<String> = value
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// A Pods metric for the pods of `namespace` matching `selector` (`app=x`).
    pub async fn pods_metric(
        &self,
        namespace: &str,
        metric: &str,
        selector: &str,
    ) -> Result<PodsAnswer, EnvironmentError> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("labelSelector", selector)
            .finish();
        let path = format!("{BASE}/namespaces/{namespace}/pods/*/{metric}?{query}");
        match self.get(&path).await {
            Ok(value) => {
                let values = parse_metric_values(&value);
                if values.is_empty() {
                    Ok(PodsAnswer::NoValue("an empty MetricValueList".into()))
                } else {
                    Ok(PodsAnswer::Values(values))
                }
            }
            Err(EnvironmentError::Api {
                source: kube::Error::Api(status),
                ..
            }) if matches!(status.code, 400 | 404 | 500) => Ok(PodsAnswer::NoValue(format!(
                "{} {}",
                status.code, status.message
            ))),
            Err(e) => Err(e),
        }
    }

    async fn get(&self, path: &str) -> Result<Value, EnvironmentError> {
        let request =
            http::Request::get(path)
                .body(Vec::new())
                .map_err(|e| EnvironmentError::NotReady {
                    what: "custom.metrics.k8s.io".into(),
                    detail: e.to_string(),
                })?;
        match tokio::time::timeout(CALL_BUDGET, self.client.request::<Value>(request)).await {
            Ok(result) => result.map_err(EnvironmentError::api(format!("GET {path}"))),
            Err(_) => Err(EnvironmentError::Timeout {
                what: format!("custom.metrics.k8s.io to answer GET {path}"),
                budget: CALL_BUDGET,
                last_seen: "no answer".into(),
            }),
        }
    }
}

/// The items of a `MetricValueList`.
pub fn parse_metric_values(list: &Value) -> Vec<PodValue> {
    list.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let pod = item.pointer("/describedObject/name")?.as_str()?.to_string();
            let quantity = item.get("value")?.as_str()?.to_string();
            let value = crate::submission::quantity::parse_quantity(&quantity).ok()?;
            Some(PodValue {
                pod,
                quantity,
                value,
            })
        })
        .collect()
}

/// The cluster-wide lock on the adapter's configuration.
pub const ADAPTER_LOCK: Singleton = Singleton {
    namespace: ADAPTER_NAMESPACE,
    lease: LOCK_LEASE,
    what: "the custom-metrics adapter",
};

/// The cluster-wide lock on the adapter's configuration, while held.
pub type AdapterLock = ClusterLock;

/// Why the adapter did not take a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    /// The adapter refused the rules: its pod on the new config crashed; the adapter's
    /// own message. The submission's fault.
    #[error("prometheus-adapter rejected the rules: {message}")]
    Rejected { message: String },
    #[error(transparent)]
    Environment(#[from] EnvironmentError),
}

/// The cluster's prometheus-adapter, its configuration and its rollout.
pub struct Adapter {
    client: Client,
}

impl Adapter {
    pub fn new(client: Client) -> Adapter {
        Adapter { client }
    }

    /// The adapter's `config.yaml` now.
    pub async fn config(&self) -> Result<String, EnvironmentError> {
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), ADAPTER_NAMESPACE);
        let map = maps
            .get(ADAPTER_CONFIGMAP)
            .await
            .map_err(EnvironmentError::api(format!(
                "reading ConfigMap {ADAPTER_NAMESPACE}/{ADAPTER_CONFIGMAP}"
            )))?;
        Ok(map
            .data
            .and_then(|d| d.get(ADAPTER_CONFIG_KEY).cloned())
            .unwrap_or_default())
    }

    /// Writes `config` and restarts the adapter on it (only while holding the lock);
    /// waits at most `budget` for the rollout and the APIService to be Available.
    pub async fn configure(
        &self,
        _lock: &AdapterLock,
        config: &str,
        budget: Duration,
    ) -> Result<(), ConfigureError> {
        let hash = config_hash(config);
        self.write(config, &hash).await?;
        let deadline = Instant::now() + budget;
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ADAPTER_NAMESPACE);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ADAPTER_NAMESPACE);
        let selector = deployments
            .get(ADAPTER_DEPLOYMENT)
            .await
            .map_err(EnvironmentError::api("reading the adapter Deployment"))?
            .spec
            .selector
            .match_labels
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        loop {
            if let Some(message) = self.crashed_on(&pods, &selector, &hash).await {
                return Err(ConfigureError::Rejected { message });
            }
            let deployment = deployments.get(ADAPTER_DEPLOYMENT).await.ok();
            if deployment.as_ref().is_some_and(rolled_out) && self.apiservice_available().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(EnvironmentError::Timeout {
                    what: "prometheus-adapter to roll out on the new config and its APIService to be Available".into(),
                    budget,
                    last_seen: format!(
                        "{:?}",
                        deployment.and_then(|d| d.status)
                    ),
                }
                .into());
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Writes `config` back and restarts the adapter on it, without waiting (cleanup).
    pub async fn restore(&self, config: &str) -> Result<(), EnvironmentError> {
        self.write(config, &config_hash(config)).await
    }

    async fn write(&self, config: &str, hash: &str) -> Result<(), EnvironmentError> {
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), ADAPTER_NAMESPACE);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        maps.patch(
            ADAPTER_CONFIGMAP,
            &params,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ADAPTER_CONFIGMAP},
                "data": {ADAPTER_CONFIG_KEY: config},
            })),
        )
        .await
        .map_err(EnvironmentError::api("writing the adapter's ConfigMap"))?;
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ADAPTER_NAMESPACE);
        deployments
            .patch(
                ADAPTER_DEPLOYMENT,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {
                    CONFIG_HASH_ANNOTATION: hash
                }}}}})),
            )
            .await
            .map_err(EnvironmentError::api("restarting the adapter"))?;
        Ok(())
    }

    /// The log of an adapter pod on config `hash` that crashed, if one did.
    async fn crashed_on(&self, pods: &Api<Pod>, selector: &str, hash: &str) -> Option<String> {
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .ok()?;
        for pod in list.items {
            let on_hash = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CONFIG_HASH_ANNOTATION))
                .is_some_and(|h| h == hash);
            let crashed = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten()
                .any(|c| {
                    c.restart_count > 0
                        || c.state
                            .as_ref()
                            .and_then(|s| s.terminated.as_ref())
                            .is_some()
                });
            if on_hash && crashed {
                return Some(self.crash_reason(pods, &pod).await);
            }
        }
        None
    }

    /// Why an adapter container stopped: its termination message (the log's tail, by
    /// `terminationMessagePolicy: FallbackToLogsOnError`), else its logs, current then
    /// previous. The kubelet answers for a log it no longer has with a line of its own
    /// ("unable to retrieve container logs"), which is not the adapter's reason.
    async fn crash_reason(&self, pods: &Api<Pod>, pod: &Pod) -> String {
        let terminated = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|c| {
                [
                    c.state.as_ref().and_then(|s| s.terminated.as_ref()),
                    c.last_state.as_ref().and_then(|s| s.terminated.as_ref()),
                ]
            })
            .flatten()
            .find_map(|t| t.message.clone().filter(|m| !m.trim().is_empty()));
        if let Some(message) = terminated {
            return adapter_error(&message);
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut log = String::new();
        for previous in [false, true] {
            let params = LogParams {
                previous,
                tail_lines: Some(20),
                ..Default::default()
            };
            if let Ok(text) = pods.logs(&name, &params).await {
                log.extend(
                    text.lines()
                        .filter(|l| !l.contains("unable to retrieve container logs"))
                        .map(|l| format!("{l}\n")),
                );
            }
        }
        adapter_error(&log)
    }

    /// APIService `v1beta1.custom.metrics.k8s.io` Available=True.
    pub async fn apiservice_available(&self) -> bool {
        super::wait::apiservice_available(&self.client, APISERVICE).await
    }

    /// Whether the adapter is installed at all (Deployment and APIService).
    pub async fn installed(&self) -> bool {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ADAPTER_NAMESPACE);
        matches!(deployments.get_opt(ADAPTER_DEPLOYMENT).await, Ok(Some(_)))
            && self.apiservice_available().await
    }
}

/// The rollout is complete: the newest generation observed, every replica updated and
/// available, none left over.
fn rolled_out(deployment: &Deployment) -> bool {
    let wanted = deployment.spec.replicas.unwrap_or(1);
    let Some(status) = deployment.status.as_ref() else {
        return false;
    };
    status.observed_generation >= deployment.metadata.generation
        && status.updated_replicas.unwrap_or(0) == wanted
        && status.available_replicas.unwrap_or(0) == wanted
        && status.replicas.unwrap_or(0) == wanted
}

/// The adapter's reason from its log: the last line that says error/failed/unable, else
/// the last line.
pub fn adapter_error(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| {
            let lower = l.to_lowercase();
            lower.contains("error") || lower.contains("fail") || lower.contains("unable")
        })
        .or(lines.last())
        .map_or_else(
            || "the adapter crashed without a log".to_string(),
            |l| l.trim().to_string(),
        )
}

/// A stable hash of a config (FNV-1a, 64 bits, hex): the restart annotation's value.
pub fn config_hash(config: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in config.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Polls discovery until it lists every metric of `wanted` (`pods/x`), at most `budget`;
/// returns the last list seen and whether all were there.
pub async fn await_discovery(
    metrics: &CustomMetrics,
    wanted: &[String],
    budget: Duration,
) -> (Vec<String>, bool) {
    let last = std::sync::Mutex::new(Vec::new());
    let found = poll_until(budget, Duration::from_secs(5), || async {
        let list = metrics.discovery().await.ok()?;
        let all = wanted.iter().all(|w| list.contains(w));
        if let Ok(mut last) = last.lock() {
            *last = list;
        }
        all.then_some(())
    })
    .await
    .is_some();
    let list = last.into_inner().unwrap_or_default();
    (list, found)
}

/// Labels to a selector string (`a=b,c=d`).
pub fn selector_string(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_are_read_with_their_quantities() {
        let list = json!({"kind": "MetricValueList", "items": [
            {"describedObject": {"kind": "Pod", "name": "api-1"}, "metricName": "rps", "value": "1500m"},
            {"describedObject": {"kind": "Pod", "name": "api-2"}, "metricName": "rps", "value": "3"},
            {"describedObject": {"kind": "Pod"}, "value": "3"}
        ]});
        let values = parse_metric_values(&list);
        assert_eq!(values.len(), 2);
        assert_eq!(values[0].pod, "api-1");
        assert!((values[0].value - 1.5).abs() < 1e-9);
        assert!((values[1].value - 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_adapters_own_error_line_is_kept() {
        let log = "I0101 starting\nE0101 unable to load metrics discovery config: unable to parse metrics query template: template: metrics-query:1: unexpected \"}\"\nI0101 exiting\n";
        assert!(adapter_error(log).contains("unable to parse metrics query template"));
        assert_eq!(adapter_error(""), "the adapter crashed without a log");
    }

    #[test]
    fn config_hashes_are_stable_and_differ() {
        assert_eq!(config_hash("rules: []"), config_hash("rules: []"));
        assert_ne!(config_hash("rules: []"), config_hash("rules: [ ]"));
        assert_eq!(config_hash("").len(), 16);
    }
}
