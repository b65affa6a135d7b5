//! A student's submission: every file found by content, loaded into typed
//! objects that remember where they were written.
//!
//! Loading never panics and never stops at a bad file: each problem becomes an
//! `input.*` finding with its path, and the other files are still loaded.

pub mod crds;
pub mod quantity;
pub mod selector;
pub mod yaml;

use crate::verdict::{Finding, Location, Severity};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, Pod, PodSpec, ResourceQuota, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use yaml::{Document, Position, YamlLimits, YamlProblemKind};

/// What loading may cost.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub max_file_bytes: u64,
    pub max_files: usize,
    pub max_dir_depth: usize,
    pub yaml: YamlLimits,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_file_bytes: 2 * 1024 * 1024,
            max_files: 5_000,
            max_dir_depth: 32,
            yaml: YamlLimits::default(),
        }
    }
}

/// A text file kept whole (scripts, docs, other source such as a k6 script).
#[derive(Debug, Clone)]
pub struct TextFile {
    /// Relative to the submission root, `/`-separated.
    pub path: String,
    pub text: String,
}

/// A Kubernetes object and where it was written.
#[derive(Debug, Clone)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub file: String,
    pub typed: Typed,
    document: Arc<Document>,
    /// Where this object sits inside its document (non-empty for `List` items).
    pointer: String,
}

impl Object {
    /// The object as loaded (apiVersion as written, before any conversion).
    pub fn value(&self) -> &Value {
        self.document
            .value
            .pointer(&self.pointer)
            .unwrap_or(&Value::Null)
    }

    /// Where a field (JSON pointer relative to the object) is written, or the
    /// nearest written ancestor.
    pub fn locate(&self, pointer: &str) -> Location {
        let position = self.document.locate(&format!("{}{pointer}", self.pointer));
        Location::at(self.file.clone(), position.line, position.column)
    }

    pub fn location(&self) -> Location {
        self.locate("")
    }

    /// `Kind/namespace/name` for messages.
    pub fn describe(&self) -> String {
        let name = if self.name.is_empty() {
            "(unnamed)"
        } else {
            self.name.as_str()
        };
        match &self.namespace {
            Some(namespace) => format!("{} {namespace}/{name}", self.kind),
            None => format!("{} {name}", self.kind),
        }
    }

    /// Namespaces match when equal, or when either is unset (a kustomization or
    /// `kubectl -n` supplies it).
    pub fn same_namespace(&self, other: Option<&str>) -> bool {
        match (self.namespace.as_deref(), other) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// The deadline after which Kubernetes stops this object's pods for good:
    /// a Job's (or CronJob job template's) `activeDeadlineSeconds`, or a run-once
    /// pod's own. A Deployment's pods are replaced, so they have none.
    pub fn run_deadline_seconds(&self) -> Option<i64> {
        let pod_deadline = self
            .pod_template()
            .and_then(|t| t.spec.active_deadline_seconds);
        match &self.typed {
            Typed::Job(job) => job
                .spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds)
                .or(pod_deadline),
            Typed::CronJob(cron) => cron
                .spec
                .job_template
                .spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds)
                .or(pod_deadline),
            Typed::Pod(_) => pod_deadline,
            _ => None,
        }
    }

    /// The pod spec and pod labels of a workload, with the pointer to the pod spec.
    pub fn pod_template(&self) -> Option<PodTemplate<'_>> {
        let (spec, labels, pointer) = match &self.typed {
            Typed::Deployment(d) => {
                let t = &d.spec.template;
                (
                    t.spec.as_ref()?,
                    t.metadata.as_ref().and_then(|m| m.labels.as_ref()),
                    "/spec/template/spec",
                )
            }
            Typed::StatefulSet(d) => {
                let t = &d.spec.template;
                (
                    t.spec.as_ref()?,
                    t.metadata.as_ref().and_then(|m| m.labels.as_ref()),
                    "/spec/template/spec",
                )
            }
            Typed::ReplicaSet(d) => {
                let t = d.spec.template.as_ref()?;
                (
                    t.spec.as_ref()?,
                    t.metadata.as_ref().and_then(|m| m.labels.as_ref()),
                    "/spec/template/spec",
                )
            }
            Typed::DaemonSet(d) => {
                let t = &d.spec.template;
                (
                    t.spec.as_ref()?,
                    t.metadata.as_ref().and_then(|m| m.labels.as_ref()),
                    "/spec/template/spec",
                )
            }
            Typed::Job(d) => {
                let t = &d.spec.as_ref()?.template;
                (
                    t.spec.as_ref()?,
                    t.metadata.as_ref().and_then(|m| m.labels.as_ref()),
                    "/spec/template/spec",
                )
            }
            Typed::CronJob(d) => {
                let t = &d.spec.job_template.spec.as_ref()?.template;
                (
                    t.spec.as_ref()?,
                    t.metadata.as_ref().and_then(|m| m.labels.as_ref()),
                    "/spec/jobTemplate/spec/template/spec",
                )
            }
            Typed::Pod(d) => (d.spec.as_ref()?, d.metadata.labels.as_ref(), "/spec"),
            _ => return None,
        };
        Some(PodTemplate {
            spec,
            labels,
            pointer,
        })
    }

    /// Labels on the object's own metadata.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.value()
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Desired replicas written in the spec (Deployment, StatefulSet, ReplicaSet).
    pub fn spec_replicas(&self) -> Option<i32> {
        match &self.typed {
            Typed::Deployment(d) => Some(d.spec.replicas.unwrap_or(1)),
            Typed::StatefulSet(d) => Some(d.spec.replicas.unwrap_or(1)),
            Typed::ReplicaSet(d) => Some(d.spec.replicas.unwrap_or(1)),
            _ => None,
        }
    }

    /// Kinds an HPA, VPA or ScaledObject can scale.
    pub fn is_scalable(&self) -> bool {
        matches!(
            self.typed,
            Typed::Deployment(_) | Typed::StatefulSet(_) | Typed::ReplicaSet(_)
        )
    }
}

/// A pod spec inside a workload.
#[derive(Debug, Clone, Copy)]
pub struct PodTemplate<'a> {
    pub spec: &'a PodSpec,
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// JSON pointer of the pod spec inside the object, for locations.
    pub pointer: &'static str,
}

/// The typed form of an object. Boxed: the k8s-openapi types are large.
#[derive(Debug, Clone)]
pub enum Typed {
    Namespace(Box<Namespace>),
    ResourceQuota(Box<ResourceQuota>),
    LimitRange(Box<LimitRange>),
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    ReplicaSet(Box<ReplicaSet>),
    DaemonSet(Box<DaemonSet>),
    Job(Box<Job>),
    CronJob(Box<CronJob>),
    Pod(Box<Pod>),
    Service(Box<Service>),
    HorizontalPodAutoscaler(Box<HorizontalPodAutoscaler>),
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    PriorityClass(Box<PriorityClass>),
    ConfigMap(Box<ConfigMap>),
    VerticalPodAutoscaler(Box<crds::VerticalPodAutoscaler>),
    ScaledObject(Box<crds::ScaledObject>),
    ScaledJob(Box<crds::ScaledJob>),
    TriggerAuthentication(Box<crds::TriggerAuthentication>),
    ServiceMonitor(Box<crds::ServiceMonitor>),
    PodMonitor(Box<crds::PodMonitor>),
    PrometheusRule(Box<crds::PrometheusRule>),
    /// A standard kind this grader does not need to read (RBAC, ServiceAccount, …).
    Other,
    /// A kind nobody here knows (reported as information).
    Unknown,
    /// Failed to deserialize (reported as `input.parse-error`).
    Invalid,
}

/// Prometheus rule groups, raw in a file or embedded in a ConfigMap or PrometheusRule.
#[derive(Debug, Clone)]
pub struct RuleSource {
    pub location: Location,
    /// The raw file to hand to promtool, when the groups are the whole file.
    pub raw_file: Option<String>,
    /// `{"groups": [...]}` as loaded.
    pub content: Value,
    /// What wraps it, for messages ("PrometheusRule ml-platform/autoscaling").
    pub origin: String,
}

/// One panel query of a dashboard.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub panel: String,
    pub expr: String,
    pub location: Location,
}

/// A Grafana dashboard, raw or embedded, or the text that was meant to be one.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub location: Location,
    pub title: String,
    pub origin: String,
    pub panel_count: usize,
    pub queries: Vec<PanelQuery>,
    /// The JSON did not parse: message and where.
    pub invalid: Option<(String, Location)>,
}

/// One prometheus-adapter discovery rule.
#[derive(Debug, Clone)]
pub struct AdapterRule {
    /// `rules`/`custom` or `externalRules`/`external` or `resourceRules`.
    pub external: bool,
    pub series_query: String,
    pub name_matches: Option<String>,
    pub name_as: Option<String>,
    pub location: Location,
}

/// Everything found in a submission directory.
#[derive(Debug, Default)]
pub struct Submission {
    pub root: PathBuf,
    pub objects: Vec<Object>,
    pub scripts: Vec<TextFile>,
    pub docs: Vec<TextFile>,
    /// Text files of other kinds (a k6 or locust script, a Dockerfile).
    pub other_text: Vec<TextFile>,
    pub rule_sources: Vec<RuleSource>,
    pub dashboards: Vec<Dashboard>,
    pub adapter_rules: Vec<AdapterRule>,
    /// Where adapter configurations were found (even with no rules).
    pub adapter_configs: Vec<Location>,
    /// Problems found while loading (`input.*`, `api.removed-version`).
    pub findings: Vec<Finding>,
    pub files_read: usize,
}

/// Extensions of files a submission may legitimately carry that are not text
/// (architecture diagrams, screenshots): skipped without a finding.
const MEDIA_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "ico", "bmp", "pdf", "svgz", "mp4", "mov", "webm", "woff",
    "woff2", "ttf", "otf", "zip", "gz", "tgz", "xz", "zst",
];

fn input_finding(check: &str, location: Location, message: String, hint: &str) -> Finding {
    let severity = if matches!(
        check,
        "input.unknown-kind" | "input.kustomize-patch" | "input.helm-template"
    ) {
        Severity::Info
    } else {
        Severity::Error
    };
    Finding {
        check: check.to_string(),
        severity,
        location,
        message,
        hint: hint.to_string(),
        evidence: Vec::new(),
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn relative(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A resolved apiVersion that the API server no longer serves, and what replaces it.
struct Removal {
    replacement: &'static str,
    /// The object's shape is the same in the replacement (only apiVersion changes).
    convertible: bool,
}

fn removed_api(api_version: &str, kind: &str) -> Option<Removal> {
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
const MAX_SCALAR_REPAIRS: usize = 8;

fn error_pointer(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    error
        .path()
        .iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => {
                Some(format!("/{}", key.replace('~', "~0").replace('/', "~1")))
            }
            serde_path_to_error::Segment::Seq { index } => Some(format!("/{index}")),
            _ => None,
        })
        .collect()
}

/// Converts the scalar at `pointer` to the type a serde "invalid type" error
/// asks for (number or bool <-> string); false when that is not the problem.
fn repair_scalar(value: &mut Value, pointer: &str, message: &str) -> bool {
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
fn with_default_metric(
    mut hpa: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
) -> k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler {
    use k8s_openapi::api::autoscaling::v2::{MetricSpec, MetricTarget, ResourceMetricSource};
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
fn hpa_v1_as_v2(value: &Value) -> Value {
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

struct Loader<'a> {
    options: &'a LoadOptions,
    submission: Submission,
    /// Files a kustomization names as patches: partial objects, not objects.
    patch_files: BTreeMap<String, String>,
    /// Labels kustomizations add to the objects of a file (commonLabels, labels).
    file_labels: BTreeMap<String, KustomizeLabels>,
}

/// Labels a kustomization adds: to metadata only, also to pod templates, or
/// also to selectors (`commonLabels`, `labels` with includeSelectors).
#[derive(Debug, Default, Clone, PartialEq)]
struct KustomizeLabels {
    metadata: BTreeMap<String, String>,
    templates: BTreeMap<String, String>,
    selectors: BTreeMap<String, String>,
    /// The kustomization's `namespace:`, set on every namespaced object.
    namespace: Option<String>,
}

impl KustomizeLabels {
    fn is_empty(&self) -> bool {
        self.metadata.is_empty()
            && self.templates.is_empty()
            && self.selectors.is_empty()
            && self.namespace.is_none()
    }

    fn merge(&mut self, other: &KustomizeLabels) {
        self.metadata.extend(other.metadata.clone());
        self.templates.extend(other.templates.clone());
        self.selectors.extend(other.selectors.clone());
        // Kustomizations that include the file in turn: keep the first namespace.
        if self.namespace.is_none() {
            self.namespace.clone_from(&other.namespace);
        }
    }

    /// The labels of a kustomization document.
    fn of(kustomization: &Value) -> KustomizeLabels {
        let pairs = |value: Option<&Value>| -> BTreeMap<String, String> {
            value
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), v)
                })
                .collect()
        };
        let mut labels = KustomizeLabels {
            selectors: pairs(kustomization.get("commonLabels")),
            namespace: kustomization
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            ..KustomizeLabels::default()
        };
        for entry in kustomization
            .get("labels")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let flag = |key: &str| entry.get(key).and_then(Value::as_bool).unwrap_or(false);
            let entry_pairs = pairs(entry.get("pairs"));
            if flag("includeSelectors") {
                labels.selectors.extend(entry_pairs);
            } else if flag("includeTemplates") {
                labels.templates.extend(entry_pairs);
            } else {
                labels.metadata.extend(entry_pairs);
            }
        }
        labels
    }

    /// Adds the labels where kustomize's label transformer puts them.
    fn apply(&self, object: &mut Value) {
        let Some(kind) = object
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return;
        };
        if let Some(namespace) = &self.namespace
            && !is_cluster_scoped(&kind)
            && let Some(metadata) = object
                .as_object_mut()
                .and_then(|o| o.get_mut("metadata"))
                .and_then(Value::as_object_mut)
        {
            metadata.insert("namespace".into(), Value::String(namespace.clone()));
        }
        let mut everywhere = self.metadata.clone();
        everywhere.extend(self.templates.clone());
        everywhere.extend(self.selectors.clone());
        merge_labels(object, &["metadata", "labels"], &everywhere, true);
        let mut template = self.templates.clone();
        template.extend(self.selectors.clone());
        let template_path: &[&str] = match kind.as_str() {
            "Deployment"
            | "ReplicaSet"
            | "DaemonSet"
            | "StatefulSet"
            | "Job"
            | "ReplicationController" => &["spec", "template", "metadata", "labels"],
            "CronJob" => &[
                "spec",
                "jobTemplate",
                "spec",
                "template",
                "metadata",
                "labels",
            ],
            _ => &[],
        };
        if !template_path.is_empty() {
            merge_labels(object, template_path, &template, true);
        }
        match kind.as_str() {
            "Service" | "ReplicationController" => {
                merge_labels(object, &["spec", "selector"], &self.selectors, true)
            }
            "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" | "PodDisruptionBudget" => {
                merge_labels(
                    object,
                    &["spec", "selector", "matchLabels"],
                    &self.selectors,
                    true,
                )
            }
            "Job" => merge_labels(
                object,
                &["spec", "selector", "matchLabels"],
                &self.selectors,
                false,
            ),
            _ => {}
        }
    }
}

/// Kinds without a namespace (kustomize's namespace transformer skips them).
fn is_cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "PriorityClass"
            | "StorageClass"
            | "CustomResourceDefinition"
            | "PersistentVolume"
            | "APIService"
            | "IngressClass"
            | "RuntimeClass"
            | "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
            | "Node"
            | "ClusterTriggerAuthentication"
    )
}

/// Merges labels into the map at `path`, creating it when `create` (and the
/// objects on the way are maps). Existing keys are overwritten, as kustomize does.
fn merge_labels(value: &mut Value, path: &[&str], labels: &BTreeMap<String, String>, create: bool) {
    if labels.is_empty() {
        return;
    }
    let mut at = value;
    for key in path {
        let Some(map) = at.as_object_mut() else {
            return;
        };
        if !map.contains_key(*key) {
            if !create {
                return;
            }
            map.insert((*key).to_string(), Value::Object(Default::default()));
        }
        at = map.get_mut(*key).expect("just inserted");
        if at.is_null() && create {
            *at = Value::Object(Default::default());
        }
    }
    if let Some(map) = at.as_object_mut() {
        for (k, v) in labels {
            map.insert(k.clone(), Value::String(v.clone()));
        }
    }
}

/// A CI pipeline definition, whose steps run shell commands.
fn is_ci_workflow(rel: &str) -> bool {
    rel.starts_with(".github/workflows/") || rel == ".gitlab-ci.yml" || rel == ".gitlab-ci.yaml"
}

/// Files whose recipes or steps are shell commands run by a tool (make, CI).
fn runs_shell_commands(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    matches!(
        name,
        "Makefile" | "makefile" | "GNUmakefile" | "justfile" | "Justfile"
    ) || name.ends_with(".mk")
        || is_ci_workflow(rel)
}

/// A file Helm renders before anything reads it: under a chart's `templates/`
/// (a directory next to a Chart.yaml), or YAML that uses Helm's template objects.
fn is_helm_template(root: &Path, rel: &str, text: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let in_chart = parts.iter().enumerate().any(|(i, part)| {
        *part == "templates"
            && i + 1 < parts.len()
            && root.join(parts[..i].join("/")).join("Chart.yaml").is_file()
    });
    let uses_helm_objects = text.contains("{{")
        && [".Values", ".Release", ".Chart", "include \"", "toYaml"]
            .iter()
            .any(|object| text.contains(object));
    in_chart || uses_helm_objects
}

/// File names kustomize reads as a kustomization.
const KUSTOMIZATION_FILES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Joins a kustomization-relative path onto its directory and normalises
/// `.`/`..` lexically; `None` when it leaves the submission.
fn join_relative(dir: &str, path: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// The labels each file's objects receive from the kustomizations that
/// include it, directly or through directories (`resources`, `components`).
fn labels_by_file(
    files: &[PathBuf],
    root: &Path,
    kustomizations: &BTreeMap<String, Value>,
) -> BTreeMap<String, KustomizeLabels> {
    let known: BTreeSet<String> = files.iter().map(|p| relative(root, p)).collect();
    let dir_of = |rel: &str| {
        rel.rsplit_once('/')
            .map_or(String::new(), |(d, _)| d.to_string())
    };
    let by_dir: BTreeMap<String, &Value> = kustomizations
        .iter()
        .map(|(rel, value)| (dir_of(rel), value))
        .collect();
    // Files reachable from a kustomization directory; depth-bounded against cycles.
    fn reach(
        dir: &str,
        by_dir: &BTreeMap<String, &Value>,
        known: &BTreeSet<String>,
        depth: usize,
        out: &mut BTreeSet<String>,
    ) {
        let Some(kustomization) = by_dir.get(dir) else {
            return;
        };
        if depth > 16 {
            return;
        }
        for key in ["resources", "components", "bases"] {
            for entry in kustomization
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let Some(path) = join_relative(dir, entry.trim()) else {
                    continue;
                };
                if known.contains(&path) {
                    out.insert(path);
                } else {
                    reach(&path, by_dir, known, depth + 1, out);
                }
            }
        }
    }
    let mut result: BTreeMap<String, KustomizeLabels> = BTreeMap::new();
    for (dir, kustomization) in &by_dir {
        let labels = KustomizeLabels::of(kustomization);
        if labels.is_empty() {
            continue;
        }
        let mut reached = BTreeSet::new();
        reach(dir, &by_dir, &known, 0, &mut reached);
        for file in reached {
            result.entry(file).or_default().merge(&labels);
        }
    }
    result
}

/// The patch files a kustomization names (`patches[].path`,
/// `patchesStrategicMerge[]`, `patchesJson6902[].path`), relative to the
/// submission root, each with the kustomization that names it.
fn kustomization_patches(rel: &str, value: &Value) -> Vec<(String, String)> {
    let dir = rel.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut paths = Vec::new();
    for key in ["patches", "patchesJson6902"] {
        for entry in value
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(path) = entry.get("path").and_then(Value::as_str) {
                paths.push(path);
            }
        }
    }
    for entry in value
        .get("patchesStrategicMerge")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // An entry is a file path, or an inline patch (which has a newline or a colon).
        if let Some(path) = entry
            .as_str()
            .filter(|p| !p.contains('\n') && !p.contains(": "))
        {
            paths.push(path);
        }
    }
    paths
        .into_iter()
        .filter_map(|path| join_relative(dir, path.trim()))
        .map(|path| (path, rel.to_string()))
        .collect()
}

/// Loads a submission directory. Problems with individual files are findings;
/// only an unreadable root is an error.
pub fn load(root: &Path, options: &LoadOptions) -> std::io::Result<Submission> {
    let root = root.canonicalize()?;
    if !root.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", root.display()),
        ));
    }
    let mut loader = Loader {
        options,
        submission: Submission {
            root: root.clone(),
            ..Submission::default()
        },
        patch_files: BTreeMap::new(),
        file_labels: BTreeMap::new(),
    };
    let mut files = Vec::new();
    loader.walk(&root, 0, &mut files);
    loader.find_patch_files(&files);
    for path in files {
        loader.load_file(&path);
    }
    loader.report_duplicates();
    Ok(loader.submission)
}

impl Loader<'_> {
    /// Reads every kustomization first, so that the patch files it names are
    /// not graded as (incomplete, duplicate) objects when their turn comes.
    fn find_patch_files(&mut self, files: &[PathBuf]) {
        let mut kustomizations: BTreeMap<String, Value> = BTreeMap::new();
        for path in files {
            let is_kustomization = path
                .file_name()
                .is_some_and(|n| KUSTOMIZATION_FILES.iter().any(|k| n == *k));
            let small = std::fs::symlink_metadata(path)
                .is_ok_and(|m| m.len() <= self.options.max_file_bytes);
            if !is_kustomization || !small {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let rel = relative(&self.submission.root, path);
            for document in yaml::load(&text, self.options.yaml).documents {
                self.patch_files
                    .extend(kustomization_patches(&rel, &document.value));
                kustomizations.insert(rel.clone(), document.value);
            }
        }
        self.file_labels = labels_by_file(files, &self.submission.root, &kustomizations);
    }

    fn finding(&mut self, check: &str, location: Location, message: String, hint: &str) {
        self.submission
            .findings
            .push(input_finding(check, location, message, hint));
    }

    /// Collects regular files, sorted, without following symlinks.
    fn walk(&mut self, dir: &Path, depth: usize, files: &mut Vec<PathBuf>) {
        let root = self.submission.root.clone();
        if depth > self.options.max_dir_depth {
            self.finding(
                "input.too-large",
                Location::file(relative(&root, dir)),
                format!(
                    "directory nesting deeper than {} levels; not read",
                    self.options.max_dir_depth
                ),
                "flatten the repository layout",
            );
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if matches!(name.as_str(), ".git" | "node_modules" | "target") {
                continue;
            }
            let Ok(metadata) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if metadata.file_type().is_symlink() {
                // Never followed. One that leaves the submission is worth telling.
                let target = std::fs::read_link(&path).unwrap_or_default();
                let resolved = if target.is_absolute() {
                    target.clone()
                } else {
                    path.parent().unwrap_or(dir).join(&target)
                };
                let inside = resolved
                    .canonicalize()
                    .map(|p| p.starts_with(&root))
                    .unwrap_or_else(|_| {
                        // Dangling: judge lexically.
                        !target.is_absolute()
                            && !target
                                .components()
                                .any(|c| c == std::path::Component::ParentDir)
                    });
                if !inside {
                    self.finding(
                        "input.symlink-outside",
                        Location::file(relative(&root, &path)),
                        format!(
                            "symbolic link points outside the submission ({}); not read",
                            target.display()
                        ),
                        "commit the file itself instead of a link to a path outside the repository",
                    );
                }
                continue;
            }
            if metadata.is_dir() {
                self.walk(&path, depth + 1, files);
            } else if metadata.is_file() {
                if files.len() >= self.options.max_files {
                    self.finding(
                        "input.too-large",
                        Location::file(relative(&root, &path)),
                        format!(
                            "more than {} files; the rest are not read",
                            self.options.max_files
                        ),
                        "remove generated or vendored files from the submission",
                    );
                    return;
                }
                files.push(path);
            }
        }
    }

    fn load_file(&mut self, path: &Path) {
        let rel = relative(&self.submission.root, path);
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if MEDIA_EXTENSIONS.contains(&extension.as_str()) {
            return;
        }
        let size = std::fs::symlink_metadata(path)
            .map(|m| m.len())
            .unwrap_or(0);
        if size > self.options.max_file_bytes {
            self.finding(
                "input.too-large",
                Location::file(rel),
                format!(
                    "{size} bytes is over the {} byte limit per file; not read",
                    self.options.max_file_bytes
                ),
                "split the file or remove generated content",
            );
            return;
        }
        let Ok(bytes) = std::fs::read(path) else {
            self.finding(
                "input.parse-error",
                Location::file(rel),
                "cannot read the file".to_string(),
                "check file permissions",
            );
            return;
        };
        self.submission.files_read += 1;
        if bytes.contains(&0) {
            self.finding(
                "input.binary",
                Location::file(rel),
                "binary content (NUL bytes) where text was expected; not read".to_string(),
                "commit manifests, scripts and docs as text; remove build artifacts",
            );
            return;
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => {
                let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
                let line = u32::try_from(valid.iter().filter(|&&b| b == b'\n').count() + 1)
                    .unwrap_or(u32::MAX);
                let column =
                    u32::try_from(valid.iter().rev().take_while(|&&b| b != b'\n').count() + 1)
                        .unwrap_or(u32::MAX);
                self.finding(
                    "input.not-utf8",
                    Location::at(rel, line, column),
                    "not valid UTF-8; not read".to_string(),
                    "save the file as UTF-8",
                );
                return;
            }
        };
        let text = text
            .strip_prefix('\u{feff}')
            .map(str::to_string)
            .unwrap_or(text);
        let shebang = text
            .lines()
            .next()
            .filter(|l| l.starts_with("#!"))
            .map(str::to_string);
        let is_shell_shebang = shebang.as_deref().is_some_and(|s| {
            ["sh", "bash", "zsh", "ksh", "dash"]
                .iter()
                .any(|shell| s.split(['/', ' ']).any(|w| w == *shell))
        });
        match extension.as_str() {
            "md" | "markdown" | "txt" | "rst" => {
                self.submission.docs.push(TextFile { path: rel, text })
            }
            "sh" | "bash" => self.submission.scripts.push(TextFile { path: rel, text }),
            "yaml" | "yml" if is_ci_workflow(&rel) => {
                // CI steps are shell commands; keep the text for the script checks.
                self.submission.other_text.push(TextFile {
                    path: rel.clone(),
                    text: text.clone(),
                });
                self.load_structured(&rel, &text, false)
            }
            "yaml" | "yml" | "json" if is_helm_template(&self.submission.root, &rel, &text) => {
                self.finding(
                    "input.helm-template",
                    Location::file(rel),
                    "a Helm chart template: it is not rendered here, so the objects it defines are not graded".to_string(),
                    "commit the rendered manifests as well (`helm template <release> <chart> > rendered.yaml`) so that they are graded",
                )
            }
            "yaml" | "yml" | "json" => self.load_structured(&rel, &text, extension == "json"),
            _ if is_shell_shebang => self.submission.scripts.push(TextFile { path: rel, text }),
            _ => self
                .submission
                .other_text
                .push(TextFile { path: rel, text }),
        }
    }

    fn load_structured(&mut self, rel: &str, text: &str, is_json: bool) {
        // kubectl decodes a document that starts with `{` as JSON, and so do we:
        // YAML would accept JSON mistakes such as a trailing comma.
        let as_json = is_json || text.trim_start().starts_with('{');
        let (documents, problems) = if as_json {
            match serde_json::from_str::<Value>(text) {
                Err(error) => {
                    let location = Location::at(rel, error.line() as u32, error.column() as u32);
                    if text.contains("\"panels\"") {
                        self.submission.dashboards.push(Dashboard {
                            location: Location::file(rel),
                            title: String::new(),
                            origin: rel.to_string(),
                            panel_count: 0,
                            queries: Vec::new(),
                            invalid: Some((
                                format!("dashboard JSON does not parse: {error}"),
                                location,
                            )),
                        });
                    } else {
                        self.finding(
                            "input.parse-error",
                            location,
                            format!("not valid JSON: {error}"),
                            "fix the JSON syntax (`jq . <file>` shows the same error)",
                        );
                    }
                    return;
                }
                Ok(value) => {
                    // Positions come from the YAML reading of the same text when it agrees.
                    let loaded = yaml::load(text, self.options.yaml);
                    if loaded.problems.is_empty()
                        && loaded.documents.len() == 1
                        && loaded.documents[0].value == value
                    {
                        (loaded.documents, Vec::new())
                    } else {
                        let start = Position { line: 1, column: 1 };
                        (
                            vec![Document {
                                value,
                                start,
                                positions: Default::default(),
                            }],
                            Vec::new(),
                        )
                    }
                }
            }
        } else {
            let loaded = yaml::load(text, self.options.yaml);
            (loaded.documents, loaded.problems)
        };
        for problem in problems {
            let location = Location::at(rel, problem.position.line, problem.position.column);
            match problem.kind {
                YamlProblemKind::AliasBomb => self.finding(
                    "input.alias-bomb",
                    location,
                    format!("{}; the rest of the file is not read", problem.message),
                    "write the values out; do not nest aliases of aliases",
                ),
                _ => self.finding(
                    "input.parse-error",
                    location,
                    if problem.fatal {
                        format!("{}; the rest of the file is not read", problem.message)
                    } else {
                        problem.message
                    },
                    "fix the YAML syntax (`kubectl apply --dry-run=client -f <file>` shows the same error)",
                ),
            }
        }
        if let Some(kustomization) = self.patch_files.get(rel).cloned() {
            // Syntax problems above still count: `kustomize build` fails on them.
            let location = documents.first().map_or_else(
                || Location::file(rel),
                |d| Location::at(rel, d.start.line, d.start.column),
            );
            self.finding(
                "input.kustomize-patch",
                location,
                format!("{kustomization} applies this file as a patch; it is read as a patch, not graded as an object"),
                "nothing to fix",
            );
            return;
        }
        let labels = self.file_labels.get(rel).cloned();
        for mut document in documents {
            if let Some(labels) = &labels {
                match document
                    .value
                    .get_mut("items")
                    .and_then(Value::as_array_mut)
                {
                    Some(items) => items.iter_mut().for_each(|item| labels.apply(item)),
                    None => labels.apply(&mut document.value),
                }
            }
            let document = Arc::new(document);
            self.classify_document(rel, &document, "");
        }
    }

    fn classify_document(&mut self, rel: &str, document: &Arc<Document>, pointer: &str) {
        let Some(value) = document.value.pointer(pointer) else {
            return;
        };
        let api_version = value.get("apiVersion").and_then(Value::as_str);
        let kind = value.get("kind").and_then(Value::as_str);
        if let (Some(api_version), Some(kind)) = (api_version, kind) {
            if kind == "List"
                || (kind.ends_with("List") && value.get("items").is_some_and(Value::is_array))
            {
                let count = value["items"].as_array().map_or(0, Vec::len);
                for index in 0..count {
                    self.classify_document(rel, document, &format!("{pointer}/items/{index}"));
                }
                return;
            }
            let (api_version, kind) = (api_version.to_string(), kind.to_string());
            self.load_object(rel, document, pointer, api_version, kind);
            return;
        }
        let position = document.locate(pointer);
        let location = Location::at(rel, position.line, position.column);
        let matched = self.classify_data(value, location, rel, Some(rel.to_string()), |p| {
            document.locate(&format!("{pointer}{p}"))
        });
        if !matched {
            self.classify_nested(rel, document, pointer, 6);
        }
    }

    /// Monitoring and adapter content that is not a Kubernetes object.
    fn classify_data(
        &mut self,
        value: &Value,
        location: Location,
        origin: &str,
        raw_file: Option<String>,
        locate: impl Fn(&str) -> Position,
    ) -> bool {
        let file = location.file.clone();
        let at = |pointer: &str| {
            let p = locate(pointer);
            Location::at(file.clone(), p.line, p.column)
        };
        if let Some(groups) = value.get("groups").and_then(Value::as_array)
            && groups.iter().any(|g| g.get("rules").is_some())
        {
            self.submission.rule_sources.push(RuleSource {
                location,
                raw_file,
                content: value.clone(),
                origin: origin.to_string(),
            });
            return true;
        }
        let dashboard = if value.get("panels").is_some_and(Value::is_array)
            || value.get("rows").is_some_and(Value::is_array)
        {
            Some((value, ""))
        } else {
            value
                .get("dashboard")
                .filter(|d| d.get("panels").is_some_and(Value::is_array))
                .map(|d| (d, "/dashboard"))
        };
        if let Some((dashboard, prefix)) = dashboard {
            let title = dashboard
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let mut queries = Vec::new();
            let mut panel_count = 0;
            collect_panels(dashboard, prefix, &at, &mut queries, &mut panel_count);
            self.submission.dashboards.push(Dashboard {
                location,
                title,
                origin: origin.to_string(),
                panel_count,
                queries,
                invalid: None,
            });
            return true;
        }
        let mut adapter_rules = Vec::new();
        let mut found_adapter = false;
        for (key, external) in [
            ("rules", false),
            ("externalRules", true),
            ("resourceRules", false),
        ] {
            let Some(rules) = value.get(key) else {
                continue;
            };
            // Helm values shape: rules: {custom: [...], external: [...]}
            let lists: Vec<(&Value, String, bool)> = match rules {
                Value::Array(_) => vec![(rules, format!("/{key}"), external)],
                Value::Object(map) => map
                    .iter()
                    .filter(|(_, v)| v.is_array())
                    .map(|(k, v)| (v, format!("/{key}/{k}"), k == "external"))
                    .collect(),
                _ => Vec::new(),
            };
            for (list, pointer, external) in lists {
                for (index, rule) in list.as_array().into_iter().flatten().enumerate() {
                    let Some(series_query) = rule.get("seriesQuery").and_then(Value::as_str) else {
                        continue;
                    };
                    if rule.get("metricsQuery").is_none() && key != "resourceRules" {
                        continue;
                    }
                    found_adapter = true;
                    adapter_rules.push(AdapterRule {
                        external,
                        series_query: series_query.to_string(),
                        name_matches: rule
                            .pointer("/name/matches")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        name_as: rule
                            .pointer("/name/as")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        location: at(&format!("{pointer}/{index}")),
                    });
                }
            }
        }
        if found_adapter {
            self.submission.adapter_configs.push(location);
            self.submission.adapter_rules.extend(adapter_rules);
        }
        found_adapter
    }

    /// Helm values and similar data files nest monitoring content
    /// (`serverFiles.alerting_rules.yml.groups`, `grafana.dashboards.*.json`,
    /// `prometheus-adapter.rules`): look a few levels down.
    fn classify_nested(
        &mut self,
        rel: &str,
        document: &Arc<Document>,
        pointer: &str,
        depth: usize,
    ) {
        let Some(value) = document.value.pointer(pointer) else {
            return;
        };
        let children: Vec<(String, &Value)> = match value {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (format!("{pointer}/{}", escape(k)), v))
                .collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{pointer}/{i}"), v))
                .collect(),
            _ => return,
        };
        for (child_pointer, child) in children {
            let position = document.locate(&child_pointer);
            let location = Location::at(rel, position.line, position.column);
            let origin = format!("{rel} at {child_pointer}");
            match child {
                Value::Object(_) => {
                    let matched = self.classify_data(child, location, &origin, None, |p| {
                        document.locate(&format!("{child_pointer}{p}"))
                    });
                    if !matched && depth > 0 {
                        self.classify_nested(rel, document, &child_pointer, depth - 1);
                    }
                }
                Value::Array(_) if depth > 0 => {
                    self.classify_nested(rel, document, &child_pointer, depth - 1)
                }
                Value::String(text)
                    if text.trim_start().starts_with('{') && text.contains("\"panels\"") =>
                {
                    match serde_json::from_str::<Value>(text) {
                        Ok(embedded) => {
                            let line = position.line;
                            self.classify_data(&embedded, location, &origin, None, |_| Position {
                                line,
                                column: 1,
                            });
                        }
                        Err(error) => self.submission.dashboards.push(Dashboard {
                            location: location.clone(),
                            title: String::new(),
                            origin,
                            panel_count: 0,
                            queries: Vec::new(),
                            invalid: Some((
                                format!("dashboard JSON does not parse: {error}"),
                                Location::at(
                                    rel,
                                    position.line + error.line() as u32,
                                    error.column() as u32,
                                ),
                            )),
                        }),
                    }
                }
                _ => {}
            }
        }
    }

    fn load_object(
        &mut self,
        rel: &str,
        document: &Arc<Document>,
        pointer: &str,
        api_version: String,
        kind: String,
    ) {
        let value = document
            .value
            .pointer(pointer)
            .cloned()
            .unwrap_or(Value::Null);
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let namespace = value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut object = Object {
            api_version: api_version.clone(),
            kind: kind.clone(),
            name,
            namespace,
            file: rel.to_string(),
            typed: Typed::Unknown,
            document: Arc::clone(document),
            pointer: pointer.to_string(),
        };
        let mut effective = value;
        let mut effective_version = api_version.clone();
        if let Some(removal) = removed_api(&api_version, &kind) {
            self.submission.findings.push(Finding {
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
            });
            if removal.convertible || api_version == "keda.k8s.io/v1alpha1" {
                effective_version = removal.replacement.to_string();
                if api_version == "autoscaling/v2beta1" {
                    convert_hpa_v2beta1(&mut effective);
                }
                if api_version == "keda.k8s.io/v1alpha1" {
                    effective_version = "keda.sh/v1alpha1".into();
                    if let Some(target) = effective
                        .pointer_mut("/spec/scaleTargetRef")
                        .and_then(Value::as_object_mut)
                        && let Some(name) = target.remove("deploymentName")
                    {
                        target.insert("name".into(), name);
                    }
                }
                if let Some(map) = effective.as_object_mut() {
                    map.insert(
                        "apiVersion".into(),
                        Value::String(effective_version.clone()),
                    );
                }
            } else {
                object.typed = Typed::Other;
                self.submission.objects.push(object);
                return;
            }
        }
        let group = effective_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("");
        let typed = match (group, kind.as_str()) {
            ("", "Namespace") => self.typed(&object, &effective, |v| Typed::Namespace(Box::new(v))),
            ("", "ResourceQuota") => {
                self.typed(&object, &effective, |v| Typed::ResourceQuota(Box::new(v)))
            }
            ("", "LimitRange") => {
                self.typed(&object, &effective, |v| Typed::LimitRange(Box::new(v)))
            }
            ("", "Service") => self.typed(&object, &effective, |v| Typed::Service(Box::new(v))),
            ("", "ConfigMap") => self.typed(&object, &effective, |v| Typed::ConfigMap(Box::new(v))),
            ("", "Pod") => self.typed(&object, &effective, |v| Typed::Pod(Box::new(v))),
            ("apps", "Deployment") => {
                self.typed(&object, &effective, |v| Typed::Deployment(Box::new(v)))
            }
            ("apps", "StatefulSet") => {
                self.typed(&object, &effective, |v| Typed::StatefulSet(Box::new(v)))
            }
            ("apps", "ReplicaSet") => {
                self.typed(&object, &effective, |v| Typed::ReplicaSet(Box::new(v)))
            }
            ("apps", "DaemonSet") => {
                self.typed(&object, &effective, |v| Typed::DaemonSet(Box::new(v)))
            }
            ("batch", "Job") => self.typed(&object, &effective, |v| Typed::Job(Box::new(v))),
            ("batch", "CronJob") => {
                self.typed(&object, &effective, |v| Typed::CronJob(Box::new(v)))
            }
            ("autoscaling", "HorizontalPodAutoscaler") if effective_version == "autoscaling/v2" => {
                self.typed(&object, &effective, |v| {
                    Typed::HorizontalPodAutoscaler(Box::new(with_default_metric(v)))
                })
            }
            // Still served: validated strictly as v1, graded as the v2 object
            // the API server stores.
            ("autoscaling", "HorizontalPodAutoscaler") if effective_version == "autoscaling/v1" => {
                match self.typed(
                    &object,
                    &effective,
                    |_: k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler| Typed::Other,
                ) {
                    Typed::Other => {
                        let converted = hpa_v1_as_v2(&effective);
                        self.typed(&object, &converted, |v| {
                            Typed::HorizontalPodAutoscaler(Box::new(with_default_metric(v)))
                        })
                    }
                    invalid => invalid,
                }
            }
            ("policy", "PodDisruptionBudget") => self.typed(&object, &effective, |v| {
                Typed::PodDisruptionBudget(Box::new(v))
            }),
            ("scheduling.k8s.io", "PriorityClass") => {
                self.typed(&object, &effective, |v| Typed::PriorityClass(Box::new(v)))
            }
            ("autoscaling.k8s.io", "VerticalPodAutoscaler") => {
                self.typed(&object, &effective, |v| {
                    Typed::VerticalPodAutoscaler(Box::new(v))
                })
            }
            ("keda.sh", "ScaledObject") => {
                self.typed(&object, &effective, |v| Typed::ScaledObject(Box::new(v)))
            }
            ("keda.sh", "ScaledJob") => {
                self.typed(&object, &effective, |v| Typed::ScaledJob(Box::new(v)))
            }
            ("keda.sh", "TriggerAuthentication") => self.typed(&object, &effective, |v| {
                Typed::TriggerAuthentication(Box::new(v))
            }),
            ("monitoring.coreos.com", "ServiceMonitor") => {
                self.typed(&object, &effective, |v| Typed::ServiceMonitor(Box::new(v)))
            }
            ("monitoring.coreos.com", "PodMonitor") => {
                self.typed(&object, &effective, |v| Typed::PodMonitor(Box::new(v)))
            }
            ("monitoring.coreos.com", "PrometheusRule") => {
                self.typed(&object, &effective, |v| Typed::PrometheusRule(Box::new(v)))
            }
            _ if is_known_untyped(&effective_version, &kind) => Typed::Other,
            _ => {
                self.finding(
                    "input.unknown-kind",
                    object.location(),
                    format!(
                        "{} ({api_version}) is not a kind this grader models; kept, and only searched for embedded rules or dashboards",
                        object.describe()
                    ),
                    "nothing to do if the kind is intended",
                );
                Typed::Unknown
            }
        };
        object.typed = typed;
        if matches!(object.typed, Typed::Unknown) {
            // Other operators' CRs (GrafanaDashboard spec.json, VMRule spec.groups).
            if let Some(spec) = object.value().get("spec") {
                let position = document.locate(&format!("{pointer}/spec"));
                let matched = self.classify_data(
                    &spec.clone(),
                    Location::at(rel, position.line, position.column),
                    &object.describe(),
                    None,
                    |p| document.locate(&format!("{pointer}/spec{p}")),
                );
                if !matched {
                    self.classify_nested(rel, document, &format!("{pointer}/spec"), 2);
                }
            }
        }
        // Monitoring content wrapped in objects.
        match &object.typed {
            Typed::ConfigMap(config_map) => {
                for (key, text) in config_map.data.iter().flatten() {
                    self.load_embedded(&object, key, text);
                }
            }
            Typed::PrometheusRule(_) => {
                let spec = object.value().get("spec").cloned().unwrap_or(Value::Null);
                self.submission.rule_sources.push(RuleSource {
                    location: object.location(),
                    raw_file: None,
                    content: spec,
                    origin: object.describe(),
                });
            }
            _ => {}
        }
        self.submission.objects.push(object);
    }

    fn typed<T: DeserializeOwned + serde::Serialize>(
        &mut self,
        object: &Object,
        value: &Value,
        wrap: impl FnOnce(T) -> Typed,
    ) -> Typed {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(typed) => {
                // Built-in kinds are fully modelled by k8s-openapi: a field it
                // drops is one `kubectl apply` (strict validation) rejects, such
                // as a typo'd `minReplica`. Our CRD models are partial: skip them.
                let group = value
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .and_then(|v| v.rsplit_once('/'))
                    .map_or("", |(g, _)| g);
                if matches!(
                    group,
                    "" | "apps" | "batch" | "autoscaling" | "policy" | "scheduling.k8s.io"
                ) && let Ok(round_trip) = serde_json::to_value(&typed)
                {
                    let mut unknown = Vec::new();
                    unknown_fields(value, &round_trip, String::new(), &mut unknown);
                    for pointer in unknown.into_iter().take(5) {
                        let field = pointer
                            .rsplit('/')
                            .next()
                            .unwrap_or("")
                            .replace("~1", "/")
                            .replace("~0", "~");
                        self.finding(
                            "input.parse-error",
                            object.locate(&pointer),
                            format!(
                                "{} has an unknown field `{field}` at `{pointer}` (kubectl's strict validation rejects it)",
                                object.describe()
                            ),
                            "check the spelling against the API reference (`kubectl explain <kind>.<field>`)",
                        );
                    }
                }
                self.check_crd_fields(object, value);
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
                    self.finding(
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
                    );
                    if !repair_scalar(&mut repaired, &pointer, &error.inner().to_string()) {
                        return Typed::Invalid;
                    }
                    match serde_path_to_error::deserialize::<_, T>(&repaired) {
                        // Once more through the front door, for the unknown-field checks.
                        Ok(_) => return self.typed(object, &repaired, wrap),
                        Err(next) => error = next,
                    }
                }
                Typed::Invalid
            }
        }
    }

    /// Our CRD models are partial, so unknown fields are checked against the
    /// upstream CRD schemas' field lists for the parts students write.
    fn check_crd_fields(&mut self, object: &Object, value: &Value) {
        let schema: &[(&str, &[&str])] = match object.kind.as_str() {
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
            _ => return,
        };
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
                    let pointer = format!("{target}/{}", escape(key));
                    self.finding(
                        "input.parse-error",
                        object.locate(&pointer),
                        format!("{} has an unknown field `{key}` at `{pointer}` (the CRD's schema rejects it)", object.describe()),
                        "check the spelling against the CRD's documentation",
                    );
                }
            }
        }
    }

    /// A ConfigMap value holding a dashboard, rule file or adapter config.
    fn load_embedded(&mut self, object: &Object, key: &str, text: &str) {
        let key_pointer = format!("/data/{}", key.replace('~', "~0").replace('/', "~1"));
        let key_location = object.locate(&key_pointer);
        let origin = format!("{} key {key}", object.describe());
        let looks_structured = key.ends_with(".json")
            || key.ends_with(".yaml")
            || key.ends_with(".yml")
            || key.ends_with(".rules")
            || text.trim_start().starts_with('{');
        if !looks_structured {
            return;
        }
        let loaded = yaml::load(text, self.options.yaml);
        let fatal = loaded.problems.iter().find(|p| p.fatal).cloned();
        // Block scalars start on the line after the key.
        let base_line = key_location.line.unwrap_or(1);
        let file = object.file.clone();
        let shift = move |p: Position| Location::at(file.clone(), base_line + p.line, p.column);
        if let Some(problem) = fatal {
            let parsed_json = serde_json::from_str::<Value>(text);
            match parsed_json {
                Ok(value) => {
                    let location = key_location.clone();
                    let locate = |_: &str| Position {
                        line: base_line,
                        column: 1,
                    };
                    self.classify_data(&value, location, &origin, None, locate);
                }
                Err(error) => {
                    let location = Location::at(
                        object.file.clone(),
                        base_line + error.line() as u32,
                        error.column() as u32,
                    );
                    if text.contains("\"panels\"") {
                        self.submission.dashboards.push(Dashboard {
                            location: key_location,
                            title: String::new(),
                            origin,
                            panel_count: 0,
                            queries: Vec::new(),
                            invalid: Some((
                                format!("dashboard JSON does not parse: {error}"),
                                location,
                            )),
                        });
                    } else {
                        let kind = if problem.kind == YamlProblemKind::AliasBomb {
                            "input.alias-bomb"
                        } else {
                            "input.parse-error"
                        };
                        self.finding(
                            kind,
                            shift(problem.position),
                            format!("{origin}: {}", problem.message),
                            "fix the embedded file's syntax",
                        );
                    }
                }
            }
            return;
        }
        for document in loaded.documents {
            let start = shift(document.start);
            let positions = document.positions.clone();
            let document_start = document.start;
            let locate = move |pointer: &str| {
                let mut current = pointer;
                loop {
                    if let Some(p) = positions.get(current) {
                        return Position {
                            line: base_line + p.line,
                            column: p.column,
                        };
                    }
                    match current.rfind('/') {
                        Some(cut) => current = &current[..cut],
                        None => {
                            return Position {
                                line: base_line + document_start.line,
                                column: document_start.column,
                            };
                        }
                    }
                }
            };
            self.classify_data(&document.value, start, &origin, None, locate);
        }
    }

    fn report_duplicates(&mut self) {
        let mut seen: BTreeMap<(String, String, String, String), Location> = BTreeMap::new();
        let mut findings = Vec::new();
        for object in &self.submission.objects {
            if object.name.is_empty() {
                continue;
            }
            let group = object
                .api_version
                .rsplit_once('/')
                .map(|(g, _)| g)
                .unwrap_or("")
                .to_string();
            let key = (
                group,
                object.kind.clone(),
                object.namespace.clone().unwrap_or_default(),
                object.name.clone(),
            );
            if let Some(first) = seen.get(&key) {
                findings.push(input_finding(
                    "input.duplicate-object",
                    object.location(),
                    format!(
                        "{} is defined twice; the first definition is at {first}",
                        object.describe()
                    ),
                    "keep one definition (the later one silently replaces the earlier on apply)",
                ));
            } else {
                seen.insert(key, object.location());
            }
        }
        self.submission.findings.extend(findings);
    }
}

/// Keys present (and not null) in `original` but absent after a typed round trip.
fn unknown_fields(original: &Value, round_trip: &Value, pointer: String, out: &mut Vec<String>) {
    match (original, round_trip) {
        (Value::Object(original), Value::Object(kept)) => {
            for (key, value) in original {
                if value.is_null() {
                    continue;
                }
                let child = format!("{pointer}/{}", escape(key));
                match kept.get(key) {
                    None => out.push(child),
                    Some(kept_value) => unknown_fields(value, kept_value, child, out),
                }
            }
        }
        (Value::Array(original), Value::Array(kept)) => {
            for (index, (value, kept_value)) in original.iter().zip(kept).enumerate() {
                unknown_fields(value, kept_value, format!("{pointer}/{index}"), out);
            }
        }
        _ => {}
    }
}

fn collect_panels(
    container: &Value,
    pointer: &str,
    at: &dyn Fn(&str) -> Location,
    queries: &mut Vec<PanelQuery>,
    panel_count: &mut usize,
) {
    for list_key in ["panels", "rows"] {
        let Some(panels) = container.get(list_key).and_then(Value::as_array) else {
            continue;
        };
        for (index, panel) in panels.iter().enumerate() {
            let panel_pointer = format!("{pointer}/{list_key}/{index}");
            if list_key == "panels" {
                *panel_count += 1;
            }
            let title = panel
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("(untitled)")
                .to_string();
            for (target_index, target) in panel
                .get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(expr) = target.get("expr").and_then(Value::as_str) {
                    queries.push(PanelQuery {
                        panel: title.clone(),
                        expr: expr.to_string(),
                        location: at(&format!("{panel_pointer}/targets/{target_index}/expr")),
                    });
                }
            }
            // Row panels nest their panels.
            collect_panels(panel, &panel_pointer, at, queries, panel_count);
        }
    }
}

impl Submission {
    pub fn objects_of<'a>(
        &'a self,
        filter: impl Fn(&Typed) -> bool + 'a,
    ) -> impl Iterator<Item = &'a Object> + 'a {
        self.objects.iter().filter(move |o| filter(&o.typed))
    }

    /// The scalable workload an HPA/VPA/ScaledObject reference names.
    pub fn find_workload(
        &self,
        kind: Option<&str>,
        name: &str,
        namespace: Option<&str>,
    ) -> Option<&Object> {
        let kind = kind.unwrap_or("Deployment");
        self.objects.iter().find(|o| {
            o.kind == kind
                && o.name == name
                && o.same_namespace(namespace)
                && o.pod_template().is_some()
        })
    }

    /// Workloads whose pod labels a selector matches.
    pub fn workloads_selected_by<'a>(
        &'a self,
        namespace: Option<&'a str>,
        selector: &'a dyn Fn(&BTreeMap<String, String>) -> bool,
    ) -> impl Iterator<Item = &'a Object> + 'a {
        self.objects.iter().filter(move |o| {
            o.same_namespace(namespace)
                && o.pod_template()
                    .is_some_and(|t| t.labels.is_some_and(selector))
        })
    }

    /// Every text of a shell script or a container command, for content searches.
    pub fn script_texts(&self) -> impl Iterator<Item = (Location, String)> + '_ {
        let scripts = self
            .scripts
            .iter()
            .map(|s| (Location::file(s.path.clone()), s.text.clone()));
        let containers = self
            .objects
            .iter()
            .filter_map(|o| o.pod_template().map(|t| (o, t)))
            .flat_map(|(object, template)| {
                template
                    .spec
                    .containers
                    .iter()
                    .chain(template.spec.init_containers.iter().flatten())
                    .enumerate()
                    .map(move |(index, container)| {
                        let mut text = container.command.clone().unwrap_or_default().join(" ");
                        text.push(' ');
                        text.push_str(&container.args.clone().unwrap_or_default().join(" "));
                        (
                            object.locate(&format!("{}/containers/{index}", template.pointer)),
                            text,
                        )
                    })
            });
        let recipes = self
            .other_text
            .iter()
            .filter(|f| runs_shell_commands(&f.path))
            .map(|f| (Location::file(f.path.clone()), f.text.clone()));
        scripts.chain(recipes).chain(containers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::fs;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn kustomize_patch_files_are_patches_not_objects() {
        let dir = tempfile::tempdir().unwrap();
        let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\n  namespace: ml\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}\n  minReplicas: 2\n  maxReplicas: 5\n";
        write(dir.path(), "base/hpa.yaml", hpa);
        write(
            dir.path(),
            "base/kustomization.yaml",
            "resources: [hpa.yaml]\n",
        );
        write(
            dir.path(),
            "overlays/prod/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../base]\npatches:\n  - path: max.yaml\n  - target: {kind: HorizontalPodAutoscaler}\n    patch: |-\n      - op: replace\n        path: /spec/maxReplicas\n        value: 9\npatchesStrategicMerge:\n  - ./legacy/min.yaml\n  - |-\n    apiVersion: autoscaling/v2\n    kind: HorizontalPodAutoscaler\n    metadata: {name: h, namespace: ml}\n    spec: {minReplicas: 3}\npatchesJson6902:\n  - target: {kind: HorizontalPodAutoscaler, name: h}\n    path: ../../ops.yaml\n",
        );
        let partial = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\n  namespace: ml\nspec:\n  maxReplicas: 8\n";
        write(dir.path(), "overlays/prod/max.yaml", partial);
        write(dir.path(), "overlays/prod/legacy/min.yaml", partial);
        write(
            dir.path(),
            "ops.yaml",
            "- op: remove\n  path: /spec/behavior\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        let hpas: Vec<_> = submission
            .objects
            .iter()
            .filter(|o| o.kind == "HorizontalPodAutoscaler")
            .collect();
        assert_eq!(hpas.len(), 1, "{hpas:?}");
        assert_eq!(hpas[0].location().file, "base/hpa.yaml");
        let patched: BTreeSet<&str> = submission
            .findings
            .iter()
            .filter(|f| f.check == "input.kustomize-patch")
            .map(|f| f.location.file.as_str())
            .collect();
        assert_eq!(
            patched,
            BTreeSet::from([
                "overlays/prod/max.yaml",
                "overlays/prod/legacy/min.yaml",
                "ops.yaml"
            ])
        );
        assert!(
            submission
                .findings
                .iter()
                .all(|f| f.severity == Severity::Info),
            "{:?}",
            submission.findings
        );
    }

    #[test]
    fn helm_chart_templates_are_recognised_not_parsed() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "chart/Chart.yaml",
            "apiVersion: v2\nname: c\nversion: 0.1.0\n",
        );
        write(
            dir.path(),
            "chart/templates/hpa.yaml",
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  maxReplicas: {{ .Values.max }}\n",
        );
        write(dir.path(), "chart/templates/NOTES.yaml", "plain: text\n");
        write(
            dir.path(),
            "loose/dep.yaml",
            "kind: Deployment\nmetadata:\n  labels:\n    {{- include \"x.labels\" . | nindent 4 }}\n",
        );
        write(
            dir.path(),
            "rules.yaml",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations: {summary: \"{{ $labels.pod }} down\"}\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        let templates: BTreeSet<&str> = submission
            .findings
            .iter()
            .filter(|f| f.check == "input.helm-template")
            .map(|f| f.location.file.as_str())
            .collect();
        assert_eq!(
            templates,
            BTreeSet::from([
                "chart/templates/hpa.yaml",
                "chart/templates/NOTES.yaml",
                "loose/dep.yaml"
            ])
        );
        assert!(
            submission
                .findings
                .iter()
                .all(|f| f.severity == Severity::Info)
        );
        assert_eq!(
            submission.rule_sources.len(),
            1,
            "a Prometheus template is not Helm"
        );
    }

    #[test]
    fn make_recipes_and_ci_steps_are_script_text() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Makefile", "verify:\n\tkubectl top nodes\n");
        write(dir.path(), "mk/load.mk", "load:\n\they -z 60s http://svc\n");
        write(
            dir.path(),
            ".github/workflows/e2e.yml",
            "on: push\njobs:\n  e2e:\n    runs-on: ubuntu-latest\n    steps:\n      - run: kubectl top pods -A\n",
        );
        write(
            dir.path(),
            "notes/Dockerfile",
            "FROM busybox\nRUN kubectl top nodes\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        let files: BTreeSet<String> = submission
            .script_texts()
            .map(|(location, _)| location.file)
            .collect();
        assert_eq!(
            files,
            BTreeSet::from([
                ".github/workflows/e2e.yml".to_string(),
                "Makefile".to_string(),
                "mk/load.mk".to_string()
            ])
        );
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
    }

    #[test]
    fn kustomize_labels_reach_selectors_and_templates_as_kustomize_puts_them() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "base/app.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec:\n  ports: [{port: 80}]\n",
        );
        write(
            dir.path(),
            "base/kustomization.yaml",
            "resources: [app.yaml]\ncommonLabels:\n  app: api\nlabels:\n  - pairs: {team: ml}\n  - pairs: {tier: serving}\n    includeTemplates: true\n",
        );
        write(
            dir.path(),
            "overlays/prod/kustomization.yaml",
            "namespace: ml-prod\nresources: [../../base, pdb.yaml, pc.yaml]\nlabels:\n  - pairs: {env: prod}\n    includeSelectors: true\n",
        );
        write(
            dir.path(),
            "overlays/prod/pc.yaml",
            "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n",
        );
        write(
            dir.path(),
            "overlays/prod/pdb.yaml",
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: api}\nspec:\n  maxUnavailable: 1\n  selector:\n    matchLabels: {app: api}\n",
        );
        write(
            dir.path(),
            "unrelated.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec:\n  selector: {app: other}\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        let value = |kind: &str, name: &str, pointer: &str| {
            let object = submission
                .objects
                .iter()
                .find(|o| o.kind == kind && o.name == name)
                .unwrap();
            object.value().pointer(pointer).cloned().unwrap_or_default()
        };
        let map = |pairs: &[(&str, &str)]| {
            Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::from(*v)))
                    .collect(),
            )
        };
        assert_eq!(
            value("Deployment", "api", "/spec/selector/matchLabels"),
            map(&[("app", "api"), ("env", "prod")])
        );
        assert_eq!(
            value("Deployment", "api", "/spec/template/metadata/labels"),
            map(&[("app", "api"), ("env", "prod"), ("tier", "serving")])
        );
        assert_eq!(
            value("Deployment", "api", "/metadata/labels"),
            map(&[
                ("app", "api"),
                ("env", "prod"),
                ("team", "ml"),
                ("tier", "serving")
            ])
        );
        assert_eq!(
            value("Service", "api", "/spec/selector"),
            map(&[("app", "api"), ("env", "prod")])
        );
        assert_eq!(
            value("PodDisruptionBudget", "api", "/spec/selector/matchLabels"),
            map(&[("app", "api"), ("env", "prod")])
        );
        assert_eq!(
            value("Service", "other", "/spec/selector"),
            map(&[("app", "other")])
        );
        let namespace = |kind: &str| {
            submission
                .objects
                .iter()
                .find(|o| o.kind == kind)
                .and_then(|o| o.namespace.clone())
        };
        assert_eq!(namespace("Deployment").as_deref(), Some("ml-prod"));
        assert_eq!(namespace("PodDisruptionBudget").as_deref(), Some("ml-prod"));
        assert_eq!(namespace("PriorityClass"), None);
    }

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
    fn kustomization_paths_stay_inside_the_submission() {
        assert_eq!(
            join_relative("a/b", "../c.yaml").as_deref(),
            Some("a/c.yaml")
        );
        assert_eq!(join_relative("", "./p.yaml").as_deref(), Some("p.yaml"));
        assert_eq!(join_relative("a", "../../etc/passwd"), None);
    }

    #[test]
    fn loads_objects_with_locations_and_classifies_by_content() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "k8s/all.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ml\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\n  namespace: ml\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}\n  minReplicas: 2\n  maxReplicas: 5\n",
        );
        write(
            dir.path(),
            "alerts.yml",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n",
        );
        write(
            dir.path(),
            "dash.json",
            "{\"title\": \"D\", \"panels\": [{\"title\": \"p\", \"targets\": [{\"expr\": \"up\"}]}]}",
        );
        write(dir.path(), "run-tests", "#!/usr/bin/env bash\necho hi\n");
        write(dir.path(), "GUIDE.md", "# Guide\n");
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
        assert_eq!(submission.objects.len(), 2);
        let hpa = &submission.objects[1];
        assert!(matches!(hpa.typed, Typed::HorizontalPodAutoscaler(_)));
        assert_eq!(hpa.location().to_string(), "k8s/all.yaml:6:1");
        assert_eq!(
            hpa.locate("/spec/minReplicas").to_string(),
            "k8s/all.yaml:13:3"
        );
        assert_eq!(submission.rule_sources.len(), 1);
        assert_eq!(submission.dashboards.len(), 1);
        assert_eq!(submission.dashboards[0].queries[0].expr, "up");
        assert_eq!(submission.scripts.len(), 1);
        assert_eq!(submission.docs.len(), 1);
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

    #[test]
    fn other_operators_resources_are_searched_for_dashboards() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "gd.yaml",
            "apiVersion: grafana.integreatly.org/v1beta1\nkind: GrafanaDashboard\nmetadata: {name: d}\nspec:\n  json: |\n    {\"panels\": [{\"targets\": [{\"expr\": \"up\"}]}]}\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert_eq!(submission.findings.len(), 1, "{:?}", submission.findings);
        assert_eq!(submission.findings[0].check, "input.unknown-kind");
        assert_eq!(submission.findings[0].severity, Severity::Info);
        assert_eq!(submission.dashboards.len(), 1);
    }

    #[test]
    fn helm_values_nesting_rules_and_dashboards_are_found() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "values.yaml",
            "serverFiles:\n  alerting_rules.yml:\n    groups:\n    - name: g\n      rules:\n      - alert: A\n        expr: up == 0\ngrafana:\n  dashboards:\n    default:\n      autoscaling:\n        json: |\n          {\"panels\": [{\"targets\": [{\"expr\": \"up\"}]}]}\nworkflow:\n  jobs: [build]\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
        assert_eq!(submission.rule_sources.len(), 1);
        assert_eq!(submission.rule_sources[0].location.line, Some(2));
        assert!(submission.rule_sources[0].raw_file.is_none());
        assert_eq!(submission.dashboards.len(), 1);
        assert_eq!(submission.dashboards[0].queries[0].expr, "up");
    }

    #[test]
    fn embedded_dashboards_rules_and_adapter_config_are_found() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  dashboard.json: |\n    {\"panels\": [{\"targets\": [{\"expr\": \"rate(x[5m])\"}]}]}\n  config.yaml: |\n    rules:\n    - seriesQuery: 'http_requests_total{pod!=\"\"}'\n      name: {matches: \"^(.*)_total$\", as: \"${1}_per_second\"}\n      metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
        assert_eq!(submission.dashboards.len(), 1);
        assert_eq!(submission.dashboards[0].queries[0].location.line, Some(6));
        assert_eq!(submission.adapter_rules.len(), 1);
        assert_eq!(submission.adapter_rules[0].location.line, Some(9));
    }
}
