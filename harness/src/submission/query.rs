//! What checks and probes ask of the model: an object's fields as written, its
//! pod template and labels; a submission's workloads, the ones a reference or a
//! selector names, and the text of everything that runs shell commands.

use super::classify::runs_shell_commands;
use super::{Object, PodTemplate, Submission, Typed, selector};
use crate::verdict::Location;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;
use std::collections::BTreeMap;

impl Object {
    /// The label selector (`k=v,...`) of this workload's pods: its template's labels;
    /// empty when it has none.
    pub fn pod_selector(&self) -> String {
        self.pod_template()
            .and_then(|t| t.labels)
            .map(|labels| selector::to_query(&selector::of_labels(labels)))
            .unwrap_or_default()
    }

    /// Where, in this object, a plain scalar is a boolean to YAML 1.1 (kubectl) but a
    /// string to this loader: the pointer relative to the object, and the boolean.
    pub(super) fn yaml11_booleans(&self) -> impl Iterator<Item = (&str, bool)> {
        self.document
            .yaml11_booleans
            .iter()
            .filter_map(|(pointer, boolean)| {
                let relative = pointer.strip_prefix(self.pointer.as_str())?;
                (relative.is_empty() || relative.starts_with('/')).then_some((relative, *boolean))
            })
    }

    /// `value` (this object's, perhaps rewritten by a probe) as `kubectl apply` would send
    /// it: the plain `Off`, `yes` or `on` that this loader reads as strings (YAML 1.2)
    /// become the booleans kubectl reads (YAML 1.1), where the text is still the one
    /// written. The API server then takes or refuses them as it would the student's apply.
    pub fn as_kubectl_sends(&self, value: &Value) -> Value {
        let mut sent = value.clone();
        for (pointer, boolean) in self.yaml11_booleans() {
            if let Some(slot @ Value::String(_)) = sent.pointer_mut(pointer)
                && super::yaml::yaml11_boolean(slot.as_str().unwrap_or_default()) == Some(boolean)
            {
                *slot = Value::Bool(boolean);
            }
        }
        sent
    }

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

impl Submission {
    /// The PriorityClass of this submission that `workload`'s pods name, if any.
    pub fn priority_class_of(&self, workload: &Object) -> Option<&Object> {
        let class = workload
            .pod_template()?
            .spec
            .priority_class_name
            .as_deref()?;
        self.objects
            .iter()
            .find(|o| matches!(o.typed, Typed::PriorityClass(_)) && o.name == class)
    }

    /// `objects` (values of this submission's objects, perhaps rewritten by a probe) as
    /// `kubectl apply` would send them ([`Object::as_kubectl_sends`]), each matched to its
    /// object by kind and name.
    pub fn as_kubectl_sends(&self, objects: &[Value]) -> Vec<Value> {
        objects
            .iter()
            .map(|value| {
                let field = |p: &str| value.pointer(p).and_then(Value::as_str);
                self.objects
                    .iter()
                    .find(|o| {
                        Some(o.kind.as_str()) == field("/kind")
                            && Some(o.name.as_str()) == field("/metadata/name")
                    })
                    .map_or_else(|| value.clone(), |o| o.as_kubectl_sends(value))
            })
            .collect()
    }

    /// Objects whose typed form `filter` accepts (`|t| matches!(t, Typed::Pod(_))`).
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

    /// The workloads the submission's HPAs scale, in the order of the HPAs.
    pub fn hpa_targets(&self) -> Vec<&Object> {
        self.objects
            .iter()
            .filter_map(|o| match &o.typed {
                Typed::HorizontalPodAutoscaler(h) => {
                    let reference = &h.spec.scale_target_ref;
                    self.find_workload(
                        Some(&reference.kind),
                        &reference.name,
                        o.namespace.as_deref(),
                    )
                }
                _ => None,
            })
            .collect()
    }

    /// Workloads whose pod labels a selector matches (a pod template without
    /// labels has none, as the API server sees it).
    pub fn workloads_selected_by<'a>(
        &'a self,
        namespace: Option<&'a str>,
        label_selector: &'a LabelSelector,
    ) -> impl Iterator<Item = &'a Object> + 'a {
        let no_labels = BTreeMap::new();
        self.objects.iter().filter(move |o| {
            o.same_namespace(namespace)
                && o.pod_template().is_some_and(|t| {
                    selector::matches(label_selector, t.labels.unwrap_or(&no_labels))
                })
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
    use crate::submission::test_files::write;
    use crate::submission::{LoadOptions, load};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
    use std::collections::BTreeSet;

    #[test]
    fn objects_are_sent_as_kubectl_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "m.yaml",
            "apiVersion: autoscaling.k8s.io/v1\nkind: VerticalPodAutoscaler\nmetadata: {name: v}\nspec:\n  updatePolicy: {updateMode: Off}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: yes\n  containers: [{name: c, image: \"on\"}]\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        let mut values: Vec<serde_json::Value> = submission
            .objects
            .iter()
            .map(|o| o.value().clone())
            .collect();
        // A probe's rewrite of another field keeps the reading of the rest.
        values[0]["spec"]["targetRef"] = serde_json::json!({"kind": "Deployment", "name": "d"});
        let sent = submission.as_kubectl_sends(&values);
        assert_eq!(sent[0]["spec"]["updatePolicy"]["updateMode"], false);
        assert_eq!(sent[0]["spec"]["targetRef"]["name"], "d");
        assert_eq!(sent[1]["spec"]["hostNetwork"], true);
        assert_eq!(
            sent[1]["spec"]["containers"][0]["image"], "on",
            "quoted: a string"
        );
    }

    #[test]
    fn workloads_are_selected_by_labels_and_expressions_within_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let deployment = |name: &str, namespace: &str, labels: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  selector: {{matchLabels: {labels}}}\n  template:\n    metadata: {{labels: {labels}}}\n    spec:\n      containers: [{{name: c, image: i}}]\n---\n"
            )
        };
        write(
            dir.path(),
            "deployments.yaml",
            &[
                deployment("api", "ml", "{app: api, tier: serving}"),
                deployment("batch", "ml", "{app: batch, tier: jobs}"),
                deployment("other-api", "web", "{app: api, tier: serving}"),
            ]
            .concat(),
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        let selected = |namespace: Option<&str>, selector: &LabelSelector| {
            submission
                .workloads_selected_by(namespace, selector)
                .map(|o| o.name.clone())
                .collect::<BTreeSet<_>>()
        };
        let serving = LabelSelector {
            match_labels: Some([("app".to_string(), "api".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["serving".into()]),
            }]),
        };
        assert_eq!(
            selected(Some("ml"), &serving),
            BTreeSet::from(["api".to_string()])
        );
        assert_eq!(
            selected(None, &serving),
            BTreeSet::from(["api".to_string(), "other-api".to_string()])
        );
        assert_eq!(
            selected(Some("ml"), &LabelSelector::default()),
            BTreeSet::from(["api".to_string(), "batch".to_string()])
        );
    }
}
