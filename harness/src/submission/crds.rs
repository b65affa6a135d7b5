//! Typed custom resources the exercise uses: VPA, KEDA and Prometheus Operator.
//!
//! Only the fields the checks read are modelled; unknown fields are ignored (as
//! the API server would prune them). Values the checks judge themselves (VPA
//! update modes, controlled resources) stay strings so a wrong value is reported
//! by its check with a hint instead of failing deserialization.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `autoscaling.k8s.io/v1` VerticalPodAutoscaler.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "autoscaling.k8s.io",
    version = "v1",
    kind = "VerticalPodAutoscaler",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscalerSpec {
    pub target_ref: Option<TargetRef>,
    pub update_policy: Option<VpaUpdatePolicy>,
    pub resource_policy: Option<VpaResourcePolicy>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VpaUpdatePolicy {
    pub update_mode: Option<String>,
    pub min_replicas: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VpaResourcePolicy {
    #[serde(default)]
    pub container_policies: Vec<VpaContainerPolicy>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VpaContainerPolicy {
    pub container_name: Option<String>,
    pub mode: Option<String>,
    pub min_allowed: Option<BTreeMap<String, Quantity>>,
    pub max_allowed: Option<BTreeMap<String, Quantity>>,
    pub controlled_resources: Option<Vec<String>>,
    pub controlled_values: Option<String>,
}

/// `keda.sh/v1alpha1` ScaledObject.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ScaledObject",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectSpec {
    pub scale_target_ref: Option<TargetRef>,
    pub polling_interval: Option<i32>,
    pub cooldown_period: Option<i32>,
    pub idle_replica_count: Option<i32>,
    pub min_replica_count: Option<i32>,
    pub max_replica_count: Option<i32>,
    pub advanced: Option<Value>,
    #[serde(default)]
    pub triggers: Vec<KedaTrigger>,
}

/// One KEDA trigger. KEDA's CRD types `metadata` as a string map, so an
/// unquoted number there is rejected by the API server and here alike.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KedaTrigger {
    #[serde(rename = "type", default)]
    pub type_: String,
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub metric_type: Option<String>,
    pub authentication_ref: Option<Value>,
}

/// `keda.sh/v1alpha1` ScaledJob.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ScaledJob",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ScaledJobSpec {
    pub job_target_ref: Option<Value>,
    pub polling_interval: Option<i32>,
    pub min_replica_count: Option<i32>,
    pub max_replica_count: Option<i32>,
    #[serde(default)]
    pub triggers: Vec<KedaTrigger>,
}

/// `keda.sh/v1alpha1` TriggerAuthentication.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "TriggerAuthentication",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct TriggerAuthenticationSpec {
    pub secret_target_ref: Option<Vec<Value>>,
    pub env: Option<Vec<Value>>,
    pub pod_identity: Option<Value>,
}

/// `monitoring.coreos.com/v1` ServiceMonitor.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "ServiceMonitor",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    #[serde(default)]
    pub selector: LabelSelector,
    #[serde(default)]
    pub endpoints: Vec<ScrapeEndpoint>,
    pub namespace_selector: Option<Value>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeEndpoint {
    pub port: Option<String>,
    pub target_port: Option<Value>,
    pub path: Option<String>,
    pub interval: Option<String>,
}

/// `monitoring.coreos.com/v1` PodMonitor.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PodMonitor",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    #[serde(default)]
    pub selector: LabelSelector,
    #[serde(default)]
    pub pod_metrics_endpoints: Vec<ScrapeEndpoint>,
}

/// `monitoring.coreos.com/v1` PrometheusRule: the rule groups are kept as JSON
/// and checked by `promtool`, which knows the format best.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PrometheusRule",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRuleSpec {
    #[serde(default)]
    pub groups: Vec<Value>,
}
