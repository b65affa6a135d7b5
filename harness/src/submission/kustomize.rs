//! What kustomizations do to the files they include, read before anything else
//! is loaded: the patch files they name (partial objects, not objects) and the
//! labels and namespace their transformers add to each included file's objects.

use super::{LoadOptions, relative, yaml};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// File names kustomize reads as a kustomization.
const KUSTOMIZATION_FILES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// What the submission's kustomizations say about its other files.
#[derive(Debug, Default)]
pub(super) struct Kustomizations {
    /// Files a kustomization names as patches, each with that kustomization.
    pub patch_files: BTreeMap<String, String>,
    /// Labels kustomizations add to the objects of a file (commonLabels, labels).
    pub file_labels: BTreeMap<String, KustomizeLabels>,
}

impl Kustomizations {
    /// Reads every kustomization among `files` first, so that the patch files
    /// it names are not graded as (incomplete, duplicate) objects when their
    /// turn comes.
    pub fn read(root: &Path, files: &[PathBuf], options: &LoadOptions) -> Kustomizations {
        let mut patch_files = BTreeMap::new();
        let mut kustomizations: BTreeMap<String, Value> = BTreeMap::new();
        for path in files {
            let is_kustomization = path
                .file_name()
                .is_some_and(|n| KUSTOMIZATION_FILES.iter().any(|k| n == *k));
            let small =
                std::fs::symlink_metadata(path).is_ok_and(|m| m.len() <= options.max_file_bytes);
            if !is_kustomization || !small {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let rel = relative(root, path);
            for document in yaml::load(&text, options.yaml).documents {
                patch_files.extend(kustomization_patches(&rel, &document.value));
                kustomizations.insert(rel.clone(), document.value);
            }
        }
        Kustomizations {
            patch_files,
            file_labels: labels_by_file(files, root, &kustomizations),
        }
    }
}

/// Labels a kustomization adds: to metadata only, also to pod templates, or
/// also to selectors (`commonLabels`, `labels` with includeSelectors).
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct KustomizeLabels {
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
    pub fn apply(&self, object: &mut Value) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::test_files::write;
    use crate::submission::{LoadOptions, load};
    use crate::verdict::Severity;
    use std::collections::BTreeSet;

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
    fn kustomization_paths_stay_inside_the_submission() {
        assert_eq!(
            join_relative("a/b", "../c.yaml").as_deref(),
            Some("a/c.yaml")
        );
        assert_eq!(join_relative("", "./p.yaml").as_deref(), Some("p.yaml"));
        assert_eq!(join_relative("a", "../../etc/passwd"), None);
    }
}
