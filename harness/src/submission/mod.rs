//! A student's submission: every file found by content, loaded into typed
//! objects that remember where they were written.
//!
//! Loading never panics and never stops at a bad file: each problem becomes an
//! `input.*` finding with its path, and the other files are still loaded.
//!
//! This module holds the model (what a loaded submission is) and re-exports
//! [`load`]. Its parts, by concern:
//! - `loader`: the walk, the file guards (size, binary, UTF-8, symlinks), YAML
//!   and JSON parsing, and the order of loading;
//! - `classify`: what a file is (doc, script, CI workflow, Helm template, media);
//! - `kustomize`: what kustomizations do to the files they include;
//! - `objects`: a document into a typed [`Object`], with its schema errors;
//! - `convert`: removed API versions and other repairs before typing;
//! - `validate`: strict field validation (unknown fields);
//! - `monitoring`: rule groups, dashboards and adapter rules, raw or embedded;
//! - `query`: what checks and probes ask of the model.
//!
//! Dependencies between them point one way: `loader` uses `classify`,
//! `kustomize`, `objects` and `monitoring`; `objects` uses `convert`,
//! `validate` and `monitoring`; `query` uses `classify` and `selector`; all of
//! them use `yaml` and the model here.

mod classify;
mod convert;
pub mod crds;
mod kustomize;
mod loader;
mod monitoring;
mod objects;
pub mod quantity;
mod query;
pub mod selector;
mod validate;
pub mod yaml;

pub use loader::load;

use crate::verdict::{Finding, Location, Severity};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, Pod, PodSpec, ResourceQuota, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use yaml::{Document, YamlLimits};

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
    /// The rule as written (`metricsQuery`, `resources`, `seriesFilters`...): the live
    /// probe hands it to the cluster's adapter.
    pub raw: serde_json::Value,
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

/// A file's path as the model names it: relative to the submission root,
/// `/`-separated.
fn relative(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A problem with the input itself (`input.*`): informational for what is
/// kept on purpose (a patch, a Helm template, another operator's kind), an
/// error otherwise.
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

/// `fixtures/<relative>` of the workspace, for tests. The path is read at run time (cargo
/// and nextest set `CARGO_MANIFEST_DIR` for the test process): cargo reuses a test binary
/// from a shared target dir that another checkout built, and the compile-time path would
/// then name that checkout, which may be gone.
#[cfg(test)]
pub(crate) fn fixture_dir(relative: &str) -> std::path::PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || env!("CARGO_MANIFEST_DIR").into(),
        std::path::PathBuf::from,
    );
    manifest_dir.join("../fixtures").join(relative)
}

/// The submission in [`fixture_dir`]`(relative)`, loaded as the grader loads one.
#[cfg(test)]
pub(crate) fn load_fixture(relative: &str) -> Submission {
    let dir = fixture_dir(relative);
    load(&dir, &LoadOptions::default()).unwrap_or_else(|e| panic!("fixture {}: {e}", dir.display()))
}

#[cfg(test)]
mod test_files {
    use std::fs;
    use std::path::Path;

    /// Writes a submission file, creating its directories.
    pub fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}
