//! Checks over Kubernetes objects: references, HPA, VPA, KEDA, PDB, quota, GPU pool.

use super::Collector;
use crate::submission::crds::{KedaTrigger, ScaledObject, VerticalPodAutoscaler};
use crate::submission::quantity::{format_quantity, parse_quantity};
use crate::submission::{Object, PodTemplate, Submission, Typed};
use crate::verdict::{Evidence, Location};
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, MetricSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

pub(super) fn check(submission: &Submission, out: &mut Collector) {
    let index = Index::new(submission);
    mark_examined(&index, out);
    references(&index, out);
    hpa(&index, out);
    vpa(&index, out);
    keda(&index, out);
    pdb(&index, out);
    quota(&index, out);
    gpu(&index, out);
    quantities(&index, out);
}

/// Every resource quantity the API server would parse ("200m", "4Gi") must be
/// one: `256MB` or `1.5 cores` are rejected at apply time.
fn quantities(index: &Index<'_>, out: &mut Collector) {
    for object in &index.submission.objects {
        let value = object.value();
        let mut maps: Vec<String> = Vec::new();
        let mut scalars: Vec<String> = Vec::new();
        if let Some(template) = object.pod_template() {
            for list in ["containers", "initContainers"] {
                let count = value
                    .pointer(&format!("{}/{list}", template.pointer))
                    .and_then(|v| v.as_array())
                    .map_or(0, Vec::len);
                for i in 0..count {
                    for kind in ["requests", "limits"] {
                        maps.push(format!("{}/{list}/{i}/resources/{kind}", template.pointer));
                    }
                }
            }
        }
        match &object.typed {
            Typed::HorizontalPodAutoscaler(_) => {
                let count = value
                    .pointer("/spec/metrics")
                    .and_then(|v| v.as_array())
                    .map_or(0, Vec::len);
                for i in 0..count {
                    for source in [
                        "resource",
                        "containerResource",
                        "pods",
                        "object",
                        "external",
                    ] {
                        for field in ["value", "averageValue"] {
                            scalars.push(format!("/spec/metrics/{i}/{source}/target/{field}"));
                        }
                    }
                }
            }
            Typed::LimitRange(_) => {
                let count = value
                    .pointer("/spec/limits")
                    .and_then(|v| v.as_array())
                    .map_or(0, Vec::len);
                for i in 0..count {
                    for field in [
                        "default",
                        "defaultRequest",
                        "max",
                        "min",
                        "maxLimitRequestRatio",
                    ] {
                        maps.push(format!("/spec/limits/{i}/{field}"));
                    }
                }
            }
            Typed::ResourceQuota(_) => maps.push("/spec/hard".to_string()),
            Typed::VerticalPodAutoscaler(_) => {
                let count = value
                    .pointer("/spec/resourcePolicy/containerPolicies")
                    .and_then(|v| v.as_array())
                    .map_or(0, Vec::len);
                for i in 0..count {
                    for field in ["minAllowed", "maxAllowed"] {
                        maps.push(format!(
                            "/spec/resourcePolicy/containerPolicies/{i}/{field}"
                        ));
                    }
                }
            }
            _ => {}
        }
        for map in maps {
            if let Some(entries) = value.pointer(&map).and_then(|v| v.as_object()) {
                for key in entries.keys() {
                    scalars.push(format!("{map}/{}", pointer_escape(key)));
                }
            }
        }
        for pointer in scalars {
            let Some(text) = value.pointer(&pointer).and_then(|v| v.as_str()) else {
                continue;
            };
            if let Err(error) = parse_quantity(text) {
                out.fire_with_hint(
                    "input.parse-error",
                    object.locate(&pointer),
                    format!("{} at `{pointer}`: {error}", object.describe()),
                    "write Kubernetes quantities like 200m, 0.5, 256Mi, 4Gi (no MB/GB, no spaces)",
                );
            }
        }
    }
}

/// The objects checks look at, typed, with their targets resolved once.
struct Index<'a> {
    submission: &'a Submission,
    hpas: Vec<(&'a Object, &'a HorizontalPodAutoscaler)>,
    vpas: Vec<(&'a Object, &'a VerticalPodAutoscaler)>,
    scaled_objects: Vec<(&'a Object, &'a ScaledObject)>,
    workloads: Vec<&'a Object>,
}

impl<'a> Index<'a> {
    fn new(submission: &'a Submission) -> Self {
        let mut index = Index {
            submission,
            hpas: vec![],
            vpas: vec![],
            scaled_objects: vec![],
            workloads: vec![],
        };
        for object in &submission.objects {
            match &object.typed {
                Typed::HorizontalPodAutoscaler(h) => index.hpas.push((object, h)),
                Typed::VerticalPodAutoscaler(v) => index.vpas.push((object, v)),
                Typed::ScaledObject(s) => index.scaled_objects.push((object, s)),
                _ => {}
            }
            if object.pod_template().is_some() {
                index.workloads.push(object);
            }
        }
        index
    }

    /// Serving: labelled or named as a server (see `looks_serving`), or a
    /// long-running workload that a Service sends traffic to and a
    /// hand-written HPA scales (not KEDA: batch, queue-driven), which does not
    /// train models. A cache behind a Service without an HPA is not one.
    fn is_serving(&self, workload: &Object) -> bool {
        if looks_serving(workload) {
            return true;
        }
        let long_running = matches!(workload.typed, Typed::Deployment(_) | Typed::StatefulSet(_));
        let Some(labels) = workload.pod_template().and_then(|t| t.labels) else {
            return false;
        };
        let behind_service = self.submission.objects.iter().any(|o| {
            let Typed::Service(service) = &o.typed else {
                return false;
            };
            let selector = service.spec.as_ref().and_then(|s| s.selector.as_ref());
            o.same_namespace(workload.namespace.as_deref())
                && selector.is_some_and(|sel| {
                    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
        });
        long_running
            && behind_service
            && !is_training(workload)
            && self.hpas_on(workload).next().is_some()
            && self.scaled_objects_on(workload).next().is_none()
    }

    fn target(&self, owner: &Object, kind: Option<&str>, name: &str) -> Option<&'a Object> {
        self.submission
            .find_workload(kind, name, owner.namespace.as_deref())
    }

    fn hpa_target(&self, object: &Object, hpa: &HorizontalPodAutoscaler) -> Option<&'a Object> {
        let target = &hpa.spec.scale_target_ref;
        self.target(object, Some(&target.kind), &target.name)
    }

    fn scaled_object_target(&self, object: &Object, scaled: &ScaledObject) -> Option<&'a Object> {
        let target = scaled.spec.scale_target_ref.as_ref()?;
        self.target(
            object,
            Some(target.kind.as_deref().unwrap_or("Deployment")),
            &target.name,
        )
    }

    fn vpa_target(&self, object: &Object, vpa: &VerticalPodAutoscaler) -> Option<&'a Object> {
        let target = vpa.spec.target_ref.as_ref()?;
        self.target(object, target.kind.as_deref(), &target.name)
    }

    fn hpas_on(
        &self,
        workload: &Object,
    ) -> impl Iterator<Item = &(&'a Object, &'a HorizontalPodAutoscaler)> + '_ {
        let key = identity(workload);
        self.hpas
            .iter()
            .filter(move |(o, h)| self.hpa_target(o, h).map(identity) == Some(key.clone()))
    }

    fn scaled_objects_on(
        &self,
        workload: &Object,
    ) -> impl Iterator<Item = &(&'a Object, &'a ScaledObject)> + '_ {
        let key = identity(workload);
        self.scaled_objects.iter().filter(move |(o, s)| {
            self.scaled_object_target(o, s).map(identity) == Some(key.clone())
        })
    }

    /// The fewest replicas a workload runs with (autoscaler minimum, or spec.replicas).
    fn min_replicas(&self, workload: &Object) -> Option<i32> {
        let from_hpa = self
            .hpas_on(workload)
            .map(|(_, h)| h.spec.min_replicas.unwrap_or(1))
            .min();
        let from_keda = self
            .scaled_objects_on(workload)
            .map(|(_, s)| s.spec.min_replica_count.unwrap_or(0))
            .min();
        match (from_hpa, from_keda) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (Some(a), None) | (None, Some(a)) => Some(a),
            (None, None) => workload.spec_replicas(),
        }
    }

    /// The most replicas a workload can reach (autoscaler maximum, or what it runs).
    fn max_replicas(&self, workload: &Object) -> i64 {
        let from_hpa = self
            .hpas_on(workload)
            .map(|(_, h)| i64::from(h.spec.max_replicas))
            .max();
        let from_keda = self
            .scaled_objects_on(workload)
            .map(|(_, s)| i64::from(s.spec.max_replica_count.unwrap_or(100)))
            .max();
        if from_hpa.is_some() || from_keda.is_some() {
            return from_hpa.unwrap_or(0).max(from_keda.unwrap_or(0));
        }
        match &workload.typed {
            Typed::Job(job) => job
                .spec
                .as_ref()
                .and_then(|s| s.parallelism)
                .map_or(1, i64::from),
            Typed::CronJob(cron) => cron
                .spec
                .job_template
                .spec
                .as_ref()
                .and_then(|s| s.parallelism)
                .map_or(1, i64::from),
            Typed::DaemonSet(_) => 0,
            Typed::Pod(_) => 1,
            _ => i64::from(workload.spec_replicas().unwrap_or(1)),
        }
    }
}

fn identity(object: &Object) -> (String, String, Option<String>) {
    (
        object.kind.clone(),
        object.name.clone(),
        object.namespace.clone(),
    )
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Label selector semantics of `metav1.LabelSelector`.
pub(super) fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector
        .match_expressions
        .iter()
        .flatten()
        .all(|requirement| {
            let value = labels.get(&requirement.key);
            let values = requirement.values.clone().unwrap_or_default();
            match requirement.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
    by_labels && by_expressions
}

fn label_values(object: &Object) -> Vec<String> {
    let mut values: Vec<String> = object.labels().into_values().collect();
    if let Some(template) = object.pod_template() {
        values.extend(
            template
                .labels
                .into_iter()
                .flatten()
                .map(|(_, v)| v.clone()),
        );
    }
    values.into_iter().map(|v| v.to_lowercase()).collect()
}

/// Serving by its labels (tier/component) or its name (an API server).
fn looks_serving(object: &Object) -> bool {
    label_values(object).iter().any(|v| v.contains("serving"))
        || object.name.contains("serving")
        || object.name.ends_with("-api")
}

fn is_training(object: &Object) -> bool {
    label_values(object).iter().any(|v| v.contains("train")) || object.name.contains("train")
}

fn is_gpu_resource(name: &str) -> bool {
    name.ends_with("/gpu") || name.contains("nvidia.com/")
}

fn requests_gpu(spec: &PodSpec) -> bool {
    spec.containers.iter().any(|c| {
        c.resources.as_ref().is_some_and(|r| {
            r.requests
                .iter()
                .chain(r.limits.iter())
                .flatten()
                .any(|(name, _)| is_gpu_resource(name))
        })
    })
}

fn tolerates_gpu(spec: &PodSpec) -> bool {
    spec.tolerations.iter().flatten().any(|t| {
        let key = t.key.as_deref().unwrap_or("");
        let exists = t.operator.as_deref() == Some("Exists");
        (key.is_empty() && exists) || key == "nvidia.com/gpu" || key.contains("gpu")
    })
}

fn mentions_gpu(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower.contains("gpu") || lower.contains("accelerator")
}

fn selects_gpu_pool(spec: &PodSpec) -> bool {
    let by_selector = spec
        .node_selector
        .iter()
        .flatten()
        .any(|(k, v)| mentions_gpu(k) || mentions_gpu(v));
    let by_affinity = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|required| {
            required.node_selector_terms.iter().any(|term| {
                term.match_expressions.iter().flatten().any(|e| {
                    matches!(e.operator.as_str(), "In" | "Exists")
                        && (mentions_gpu(&e.key)
                            || e.values.iter().flatten().any(|v| mentions_gpu(v)))
                })
            })
        });
    by_selector || by_affinity
}

fn references(index: &Index<'_>, out: &mut Collector) {
    for (object, hpa) in &index.hpas {
        if index.hpa_target(object, hpa).is_none() {
            let target = &hpa.spec.scale_target_ref;
            out.fire(
                "ref.hpa-target-missing",
                object.locate("/spec/scaleTargetRef/name"),
                if target.name.is_empty() {
                    format!(
                        "{} has no scaleTargetRef name, so it scales nothing",
                        object.describe()
                    )
                } else {
                    format!(
                        "{} targets {} {}, which is not in the submission",
                        object.describe(),
                        target.kind,
                        target.name
                    )
                },
            );
        }
    }
    for (object, vpa) in &index.vpas {
        if index.vpa_target(object, vpa).is_none() {
            let (kind, name) = vpa
                .spec
                .target_ref
                .as_ref()
                .map_or(("(none)".to_string(), String::new()), |t| {
                    (t.kind.clone().unwrap_or_default(), t.name.clone())
                });
            out.fire(
                "ref.vpa-target-missing",
                object.locate("/spec/targetRef/name"),
                if name.is_empty() {
                    format!(
                        "{} has no targetRef name, so it recommends for nothing",
                        object.describe()
                    )
                } else {
                    format!(
                        "{} targets {kind} {name}, which is not in the submission",
                        object.describe()
                    )
                },
            );
        }
    }
    for (object, scaled) in &index.scaled_objects {
        if index.scaled_object_target(object, scaled).is_none() {
            let name = scaled
                .spec
                .scale_target_ref
                .as_ref()
                .map_or("", |t| t.name.as_str());
            out.fire(
                "ref.scaledobject-target-missing",
                object.locate("/spec/scaleTargetRef/name"),
                if name.is_empty() {
                    format!(
                        "{} has no scaleTargetRef name, so it scales nothing",
                        object.describe()
                    )
                } else {
                    format!(
                        "{} scales {name}, which is not a workload in the submission",
                        object.describe()
                    )
                },
            );
        }
    }
    for object in &index.submission.objects {
        match &object.typed {
            Typed::PodDisruptionBudget(pdb) => {
                let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
                let matched = selector.is_some_and(|selector| {
                    index.workloads.iter().any(|w| {
                        w.same_namespace(object.namespace.as_deref())
                            && w.pod_template()
                                .and_then(|t| t.labels)
                                .is_some_and(|labels| selector_matches(selector, labels))
                    })
                });
                if !matched {
                    out.fire(
                        "ref.pdb-selector-unmatched",
                        object.locate("/spec/selector"),
                        format!(
                            "{} selects no pods of any workload in the submission",
                            object.describe()
                        ),
                    );
                }
            }
            Typed::Service(service) => {
                let Some(selector) = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .filter(|s| !s.is_empty())
                else {
                    continue;
                };
                let matched = index.workloads.iter().any(|w| {
                    w.same_namespace(object.namespace.as_deref())
                        && w.pod_template()
                            .and_then(|t| t.labels)
                            .is_some_and(|labels| {
                                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                            })
                });
                if !matched {
                    let wanted: Vec<String> =
                        selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    out.fire(
                        "ref.service-selector-unmatched",
                        object.locate("/spec/selector"),
                        format!(
                            "{} selects {} but no pod template carries those labels",
                            object.describe(),
                            wanted.join(",")
                        ),
                    );
                }
            }
            _ => {}
        }
    }
}

/// (resource name, container for ContainerResource, target type, pointer)
fn resource_metrics(
    hpa: &HorizontalPodAutoscaler,
) -> Vec<(String, Option<String>, String, String)> {
    hpa.spec
        .metrics
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, metric)| {
            if let Some(resource) = &metric.resource {
                Some((
                    resource.name.clone(),
                    None,
                    resource.target.type_.clone(),
                    format!("/spec/metrics/{i}/resource"),
                ))
            } else {
                metric.container_resource.as_ref().map(|resource| {
                    (
                        resource.name.clone(),
                        Some(resource.container.clone()),
                        resource.target.type_.clone(),
                        format!("/spec/metrics/{i}/containerResource"),
                    )
                })
            }
        })
        .collect()
}

/// (metric name, external?, pointer of the name)
fn custom_metrics(metric: &MetricSpec, i: usize) -> Option<(String, bool, String)> {
    if let Some(pods) = &metric.pods {
        return Some((
            pods.metric.name.clone(),
            false,
            format!("/spec/metrics/{i}/pods/metric/name"),
        ));
    }
    if let Some(object) = &metric.object {
        return Some((
            object.metric.name.clone(),
            false,
            format!("/spec/metrics/{i}/object/metric/name"),
        ));
    }
    metric.external.as_ref().map(|e| {
        (
            e.metric.name.clone(),
            true,
            format!("/spec/metrics/{i}/external/metric/name"),
        )
    })
}

fn hpa(index: &Index<'_>, out: &mut Collector) {
    let first_hpa = index.hpas.first().map(|(o, _)| o.location());
    let anywhere = || Location::file("");
    if !index
        .hpas
        .iter()
        .any(|(_, h)| resource_metrics(h).iter().any(|(name, ..)| name == "cpu"))
    {
        out.fire(
            "hpa.cpu-missing",
            first_hpa.clone().unwrap_or_else(anywhere),
            "no HorizontalPodAutoscaler scales on CPU utilization",
        );
    }
    if !index.hpas.iter().any(|(_, h)| {
        h.spec
            .metrics
            .iter()
            .flatten()
            .enumerate()
            .any(|(i, m)| custom_metrics(m, i).is_some())
    }) {
        out.fire(
            "hpa.custom-missing",
            first_hpa.unwrap_or_else(anywhere),
            "no HorizontalPodAutoscaler scales on a custom (Pods/Object/External) metric",
        );
    }
    let exposure = Exposure::new(index.submission);
    for (object, hpa) in &index.hpas {
        let spec = &hpa.spec;
        let min = spec.min_replicas.unwrap_or(1);
        if min > spec.max_replicas || spec.max_replicas < 1 {
            out.fire(
                "hpa.min-exceeds-max",
                object.locate(if spec.min_replicas.is_some() {
                    "/spec/minReplicas"
                } else {
                    "/spec/maxReplicas"
                }),
                format!(
                    "{} has minReplicas {min} and maxReplicas {}",
                    object.describe(),
                    spec.max_replicas
                ),
            );
        } else if min < 1 {
            out.fire_with_hint(
                "hpa.min-exceeds-max",
                object.locate("/spec/minReplicas"),
                format!(
                    "{} has minReplicas {min}; the API server rejects it unless the alpha HPAScaleToZero feature gate is on",
                    object.describe()
                ),
                "keep minReplicas ≥ 1 on an HPA; scale to zero with a KEDA ScaledObject (minReplicaCount 0)",
            );
        }
        hpa_behavior_ranges(object, hpa, out);
        let scale_down = spec.behavior.as_ref().and_then(|b| b.scale_down.as_ref());
        if let Some(window) = scale_down.and_then(|s| s.stabilization_window_seconds)
            && window < 60
        {
            out.fire(
                    "hpa.scale-down-unstable",
                    object.locate("/spec/behavior/scaleDown/stabilizationWindowSeconds"),
                    format!("{} scales down after a {window} s stabilization window (at least 60 s, the exercise uses 300 s)", object.describe()),
                );
        }
        let select = scale_down
            .and_then(|s| s.select_policy.as_deref())
            .unwrap_or("Max");
        let policies = scale_down
            .and_then(|s| s.policies.as_ref())
            .filter(|p| !p.is_empty());
        let unbounded = match (select, policies) {
            ("Disabled", _) => None,
            (_, None) => Some("has no scaleDown policies, so the default (remove 100 % of surplus pods every 15 s) applies".to_string()),
            ("Min", Some(policies)) => {
                let bounded = policies.iter().any(|p| p.type_ != "Percent" || p.value < 100);
                (!bounded).then(|| "only has Percent scaleDown policies of 100 % or more".to_string())
            }
            (_, Some(policies)) => policies
                .iter()
                .find(|p| p.type_ == "Percent" && p.value >= 100)
                .map(|p| format!("has a scaleDown policy allowing {} % per {} s, which with selectPolicy {select} removes every surplus pod at once", p.value, p.period_seconds)),
        };
        if let Some(why) = unbounded {
            let pointer = if policies.is_some() {
                "/spec/behavior/scaleDown/policies"
            } else {
                "/spec/behavior"
            };
            if object.api_version == "autoscaling/v1" {
                out.fire_with_hint(
                    "hpa.scale-down-policy-unbounded",
                    object.locate(pointer),
                    format!("{} {why}", object.describe()),
                    "autoscaling/v1 has no behavior field: write the HPA as autoscaling/v2 and add behavior.scaleDown.policies, e.g. `type: Percent, value: 50, periodSeconds: 60`",
                );
            } else {
                out.fire(
                    "hpa.scale-down-policy-unbounded",
                    object.locate(pointer),
                    format!("{} {why}", object.describe()),
                );
            }
        }
        for (i, metric) in spec.metrics.iter().flatten().enumerate() {
            let Some((name, external, pointer)) = custom_metrics(metric, i) else {
                continue;
            };
            if let Some(problem) = exposure.problem(&name, external) {
                out.fire(
                    "hpa.custom-metric-unexposed",
                    object.locate(&pointer),
                    format!(
                        "{} scales on {} metric `{name}`, but {problem}",
                        object.describe(),
                        if external { "external" } else { "custom" }
                    ),
                );
            }
        }
        let Some(target) = index.hpa_target(object, hpa) else {
            continue;
        };
        if index.is_serving(target) && min < 2 {
            out.fire(
                "hpa.serving-min-replicas",
                object.locate("/spec/minReplicas"),
                format!(
                    "{} lets serving workload {} scale down to {min} replica(s)",
                    object.describe(),
                    target.describe()
                ),
            );
        }
        let Some(template) = target.pod_template() else {
            continue;
        };
        for (resource, container_name, target_type, _) in resource_metrics(hpa) {
            if target_type != "Utilization" {
                continue;
            }
            let defaults = namespace_defaults(index.submission, target.namespace.as_deref());
            for (c, container) in template.spec.containers.iter().enumerate() {
                if container_name
                    .as_ref()
                    .is_some_and(|n| n != &container.name)
                {
                    continue;
                }
                let location = target.locate(&format!("{}/containers/{c}", template.pointer));
                match request_source(container, &resource, &defaults) {
                    RequestSource::Manifest => {}
                    RequestSource::LimitRange(range, value) => out.note(
                        "hpa.requests-missing",
                        location,
                        format!(
                            "container `{}` of {} writes no {resource} request; {range} sets {} at admission, so {} can compute {resource} utilization",
                            container.name,
                            target.describe(),
                            format_quantity(&resource, value),
                            object.describe()
                        ),
                        "nothing to fix; writing the request in the manifest keeps it visible if the LimitRange changes",
                    ),
                    RequestSource::Missing => out.fire(
                        "hpa.requests-missing",
                        location,
                        format!(
                            "{} scales {} on {resource} utilization, but container `{}` sets no {resource} request and no LimitRange in its namespace defaults one",
                            object.describe(),
                            target.describe(),
                            container.name
                        ),
                    ),
                }
            }
        }
    }
}

/// autoscaling/v2 validation of `behavior` (ValidateHorizontalPodAutoscaler):
/// windows in 0..=3600 s, policy values > 0 and periods in 1..=1800 s.
fn hpa_behavior_ranges(object: &Object, hpa: &HorizontalPodAutoscaler, out: &mut Collector) {
    let Some(behavior) = hpa.spec.behavior.as_ref() else {
        return;
    };
    for (direction, rules) in [
        ("scaleUp", behavior.scale_up.as_ref()),
        ("scaleDown", behavior.scale_down.as_ref()),
    ] {
        let Some(rules) = rules else {
            continue;
        };
        let base = format!("/spec/behavior/{direction}");
        if let Some(select) = rules.select_policy.as_deref()
            && !matches!(select, "Max" | "Min" | "Disabled")
        {
            out.fire_with_hint(
                "input.parse-error",
                object.locate(&format!("{base}/selectPolicy")),
                format!(
                    "{} {direction}.selectPolicy is `{select}`; the API server accepts Max, Min or Disabled",
                    object.describe()
                ),
                "write selectPolicy as Max, Min or Disabled (case matters)",
            );
        }
        if let Some(window) = rules.stabilization_window_seconds
            && !(0..=3600).contains(&window)
        {
            out.fire_with_hint(
                "input.parse-error",
                object.locate(&format!("{base}/stabilizationWindowSeconds")),
                format!(
                    "{} {direction}.stabilizationWindowSeconds is {window}; the API server accepts 0 to 3600",
                    object.describe()
                ),
                "use at most 3600 s (the exercise uses 300 s for scale-down)",
            );
        }
        for (i, policy) in rules.policies.iter().flatten().enumerate() {
            let pointer = format!("{base}/policies/{i}");
            if policy.value <= 0 {
                out.fire_with_hint(
                    "input.parse-error",
                    object.locate(&format!("{pointer}/value")),
                    format!(
                        "{} {direction} policy {i} has value {}; the API server requires more than 0",
                        object.describe(),
                        policy.value
                    ),
                    "to stop scaling in one direction, use selectPolicy: Disabled",
                );
            }
            if !(1..=1800).contains(&policy.period_seconds) {
                out.fire_with_hint(
                    "input.parse-error",
                    object.locate(&format!("{pointer}/periodSeconds")),
                    format!(
                        "{} {direction} policy {i} has periodSeconds {}; the API server accepts 1 to 1800",
                        object.describe(),
                        policy.period_seconds
                    ),
                    "use a period between 1 and 1800 s, e.g. 60",
                );
            }
        }
    }
}

/// What the submission's prometheus-adapter rules expose.
struct Exposure {
    rules: Vec<(bool, SeriesName, Regex, String)>,
    any_config: bool,
}

enum SeriesName {
    Literal(String),
    Pattern(Regex),
    Unknown,
}

impl Exposure {
    fn new(submission: &Submission) -> Self {
        let literal = Regex::new(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)").expect("static regex");
        let name_pattern =
            Regex::new(r#"__name__\s*=~?\s*["']([^"']*)["']"#).expect("static regex");
        let rules = submission
            .adapter_rules
            .iter()
            .filter_map(|rule| {
                let series = if let Some(c) = literal.captures(&rule.series_query) {
                    SeriesName::Literal(c[1].to_string())
                } else if let Some(c) = name_pattern.captures(&rule.series_query) {
                    Regex::new(&format!("^(?:{})$", &c[1]))
                        .map_or(SeriesName::Unknown, SeriesName::Pattern)
                } else {
                    SeriesName::Unknown
                };
                let matches = rule
                    .name_matches
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| ".*".to_string());
                let regex = Regex::new(&matches).ok()?;
                let default_as = if regex.captures_len() > 1 { "$1" } else { "$0" };
                let name_as = rule
                    .name_as
                    .clone()
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| default_as.to_string());
                Some((rule.external, series, regex, name_as))
            })
            .collect();
        Exposure {
            rules,
            any_config: !submission.adapter_configs.is_empty(),
        }
    }

    fn exposes(&self, metric: &str, external: bool) -> bool {
        self.rules
            .iter()
            .filter(|(e, ..)| *e == external)
            .any(|(_, series, regex, name_as)| {
                let produces = |series_name: &str| {
                    regex.is_match(series_name)
                        && regex.replace(series_name, name_as.as_str()) == metric
                };
                match series {
                    SeriesName::Literal(name) => produces(name),
                    SeriesName::Pattern(pattern) => {
                        ["", "_total", "_seconds_total", "_bucket", "_count", "_sum"]
                            .iter()
                            .map(|suffix| format!("{metric}{suffix}"))
                            .any(|candidate| pattern.is_match(&candidate) && produces(&candidate))
                    }
                    SeriesName::Unknown => true,
                }
            })
    }

    fn problem(&self, metric: &str, external: bool) -> Option<String> {
        if !self.any_config {
            return Some("the submission has no prometheus-adapter rules exposing it".to_string());
        }
        if self.exposes(metric, external) {
            return None;
        }
        let exposed: Vec<String> = self
            .rules
            .iter()
            .filter(|(e, ..)| *e == external)
            .filter_map(|(_, series, regex, name_as)| match series {
                SeriesName::Literal(name) if regex.is_match(name) => {
                    Some(regex.replace(name, name_as.as_str()).to_string())
                }
                _ => None,
            })
            .collect();
        Some(if exposed.is_empty() {
            "no prometheus-adapter rule exposes it".to_string()
        } else {
            format!(
                "the prometheus-adapter rules expose only {}",
                exposed.join(", ")
            )
        })
    }
}

const VPA_MODES: &[&str] = &["Off", "Initial", "Recreate", "InPlaceOrRecreate", "Auto"];

fn vpa_controlled_resources(vpa: &VerticalPodAutoscaler) -> BTreeSet<String> {
    let policies = vpa
        .spec
        .resource_policy
        .as_ref()
        .map(|p| p.container_policies.as_slice())
        .unwrap_or_default();
    let active: Vec<_> = policies
        .iter()
        .filter(|p| p.mode.as_deref() != Some("Off"))
        .collect();
    let defaults = || {
        ["cpu".to_string(), "memory".to_string()]
            .into_iter()
            .collect::<BTreeSet<_>>()
    };
    if policies.is_empty()
        || active
            .iter()
            .any(|p| p.container_name.as_deref() == Some("*"))
            && active.iter().all(|p| p.controlled_resources.is_none())
    {
        return defaults();
    }
    if active.is_empty() {
        // Every named container is Off; others still get the defaults.
        return defaults();
    }
    let mut resources = BTreeSet::new();
    for policy in active {
        match &policy.controlled_resources {
            Some(list) => resources.extend(list.iter().cloned()),
            None => resources.extend(defaults()),
        }
    }
    resources
}

fn vpa(index: &Index<'_>, out: &mut Collector) {
    if index.vpas.is_empty() {
        out.fire(
            "vpa.missing",
            Location::file(""),
            "no VerticalPodAutoscaler in the submission",
        );
    }
    let mut by_target: BTreeMap<(String, String, Option<String>), &Object> = BTreeMap::new();
    for (object, vpa) in &index.vpas {
        let mode = vpa
            .spec
            .update_policy
            .as_ref()
            .and_then(|p| p.update_mode.clone());
        if let Some(mode) = &mode
            && !VPA_MODES.contains(&mode.as_str())
        {
            out.fire(
                "vpa.update-mode-invalid",
                object.locate("/spec/updatePolicy/updateMode"),
                format!(
                    "{} has updateMode \"{mode}\"; valid modes are {}",
                    object.describe(),
                    VPA_MODES.join(", ")
                ),
            );
        }
        let policies = vpa
            .spec
            .resource_policy
            .as_ref()
            .map(|p| p.container_policies.as_slice())
            .unwrap_or_default();
        for (i, policy) in policies.iter().enumerate() {
            let container = policy.container_name.as_deref().unwrap_or("*");
            let base = format!("/spec/resourcePolicy/containerPolicies/{i}");
            if let (Some(min), Some(max)) = (&policy.min_allowed, &policy.max_allowed) {
                for (resource, low) in min {
                    let Some(high) = max.get(resource) else {
                        continue;
                    };
                    match (parse_quantity(&low.0), parse_quantity(&high.0)) {
                        (Ok(l), Ok(h)) if l > h => out.fire(
                            "vpa.min-exceeds-max",
                            object.locate(&format!("{base}/minAllowed/{}", pointer_escape(resource))),
                            format!(
                                "{} container {container}: minAllowed {resource} {} is above maxAllowed {}",
                                object.describe(),
                                low.0,
                                high.0
                            ),
                        ),
                        // Unparsable quantities are input.parse-error (see `quantities`).
                        _ => {}
                    }
                }
            }
            for (j, resource) in policy.controlled_resources.iter().flatten().enumerate() {
                if resource != "cpu" && resource != "memory" {
                    out.fire(
                        "vpa.controlled-resources-invalid",
                        object.locate(&format!("{base}/controlledResources/{j}")),
                        format!("{} container {container} lists `{resource}` in controlledResources; VPA controls only cpu and memory", object.describe()),
                    );
                }
            }
            if let Some(values) = &policy.controlled_values
                && values != "RequestsAndLimits"
                && values != "RequestsOnly"
            {
                out.fire(
                        "vpa.controlled-resources-invalid",
                        object.locate(&format!("{base}/controlledValues")),
                        format!("{} container {container} has controlledValues \"{values}\" (RequestsAndLimits or RequestsOnly)", object.describe()),
                    );
            }
            if let Some(container_mode) = &policy.mode
                && container_mode != "Auto"
                && container_mode != "Off"
            {
                out.fire(
                    "vpa.controlled-resources-invalid",
                    object.locate(&format!("{base}/mode")),
                    format!(
                        "{} container {container} has mode \"{container_mode}\" (Auto or Off)",
                        object.describe()
                    ),
                );
            }
        }
        let Some(target) = index.vpa_target(object, vpa) else {
            continue;
        };
        if let Some(first) = by_target.get(&identity(target)) {
            out.fire(
                "vpa.duplicate-target",
                object.locate("/spec/targetRef"),
                format!(
                    "{} and {} (at {}) both target {}",
                    object.describe(),
                    first.describe(),
                    first.location(),
                    target.describe()
                ),
            );
        } else {
            by_target.insert(identity(target), object);
        }
        let effective_mode = mode.unwrap_or_else(|| "Auto".to_string());
        if effective_mode == "Off" || !VPA_MODES.contains(&effective_mode.as_str()) {
            continue;
        }
        let controlled = vpa_controlled_resources(vpa);
        for (hpa_object, hpa) in index.hpas_on(target) {
            let shared: BTreeSet<String> = resource_metrics(hpa)
                .into_iter()
                .map(|(name, ..)| name)
                .filter(|name| controlled.contains(name))
                .collect();
            if !shared.is_empty() {
                out.fire(
                    "vpa.hpa-conflict",
                    object.locate("/spec/updatePolicy/updateMode"),
                    format!(
                        "{} ({effective_mode}) changes {} requests of {} while {} scales it on {} utilization: the two fight",
                        object.describe(),
                        shared.iter().cloned().collect::<Vec<_>>().join("/"),
                        target.describe(),
                        hpa_object.describe(),
                        shared.iter().cloned().collect::<Vec<_>>().join("/"),
                    ),
                );
            }
        }
    }
}

fn keda_event_driven(trigger: &KedaTrigger) -> bool {
    !matches!(trigger.type_.as_str(), "cpu" | "memory" | "cron")
}

fn cron_problem(expression: &str) -> Option<String> {
    super::cron::parse(expression)
        .err()
        .map(|e| format!("`{expression}` {e}"))
}

fn keda(index: &Index<'_>, out: &mut Collector) {
    let scaled_jobs = index
        .submission
        .objects
        .iter()
        .filter(|o| matches!(o.typed, Typed::ScaledJob(_)))
        .count();
    if index.scaled_objects.is_empty() && scaled_jobs == 0 {
        out.fire(
            "keda.missing",
            Location::file(""),
            "no KEDA ScaledObject or ScaledJob in the submission",
        );
    }
    let mut trigger_sets: Vec<(&Object, &[KedaTrigger])> = index
        .scaled_objects
        .iter()
        .map(|(o, s)| (*o, s.spec.triggers.as_slice()))
        .collect();
    for object in &index.submission.objects {
        if let Typed::ScaledJob(job) = &object.typed {
            trigger_sets.push((object, job.spec.triggers.as_slice()));
        }
    }
    for (object, triggers) in trigger_sets {
        for (i, trigger) in triggers.iter().enumerate() {
            let base = format!("/spec/triggers/{i}");
            let field = |name: &str| {
                trigger
                    .metadata
                    .get(name)
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty())
            };
            match trigger.type_.as_str() {
                "prometheus" => {
                    let mut missing: Vec<&str> = ["serverAddress", "query", "threshold"]
                        .into_iter()
                        .filter(|f| field(f).is_none())
                        .collect();
                    if let Some(threshold) = field("threshold")
                        && threshold.parse::<f64>().is_err()
                    {
                        missing.push("a numeric threshold");
                    }
                    if !missing.is_empty() {
                        out.fire(
                            "keda.prometheus-trigger-incomplete",
                            object.locate(&format!("{base}/metadata")),
                            format!(
                                "{} prometheus trigger {i} lacks {}",
                                object.describe(),
                                missing.join(", ")
                            ),
                        );
                    }
                }
                "cron" => {
                    let mut problems = Vec::new();
                    match field("timezone") {
                        None => problems.push(("timezone", "has no timezone".to_string())),
                        Some(zone) if chrono_tz::Tz::from_str(zone).is_err() => problems.push((
                            "timezone",
                            format!("timezone `{zone}` is not an IANA time zone name"),
                        )),
                        _ => {}
                    }
                    for key in ["start", "end"] {
                        match field(key) {
                            None => problems.push((key, format!("has no {key} expression"))),
                            Some(expression) => {
                                if let Some(problem) = cron_problem(expression) {
                                    problems.push((key, format!("{key}: {problem}")));
                                }
                            }
                        }
                    }
                    // KEDA's cronMetadata.Validate refuses identical start and end.
                    if let (Some(start), Some(end)) = (field("start"), field("end"))
                        && start == end
                    {
                        problems.push((
                            "end",
                            format!("start and end are both `{start}`, so the window is empty (KEDA rejects it)"),
                        ));
                    }
                    // KEDA reads desiredReplicas as an integer and refuses 0
                    // ("no desiredReplicas specified"): outside the window the
                    // workload returns to minReplicaCount anyway.
                    match field("desiredReplicas") {
                        None => {
                            problems.push(("desiredReplicas", "has no desiredReplicas".to_string()))
                        }
                        Some(n) => match n.parse::<i64>() {
                            Ok(count) if count >= 1 => {}
                            Ok(count) => problems.push((
                                "desiredReplicas",
                                format!("desiredReplicas is {count}; KEDA requires at least 1 (to scale to zero outside a window, set minReplicaCount 0 and let the window end)"),
                            )),
                            Err(_) => problems.push((
                                "desiredReplicas",
                                format!("desiredReplicas `{n}` is not an integer"),
                            )),
                        },
                    }
                    for (key, problem) in problems {
                        out.fire(
                            "keda.cron-invalid",
                            object.locate(&format!("{base}/metadata/{key}")),
                            format!("{} cron trigger {i} {problem}", object.describe()),
                        );
                    }
                }
                _ => {}
            }
        }
    }
    for (object, scaled) in &index.scaled_objects {
        let min = scaled.spec.min_replica_count.unwrap_or(0);
        if min > 0 && scaled.spec.triggers.iter().any(keda_event_driven) {
            out.fire(
                "keda.scale-to-zero-missing",
                object.locate("/spec/minReplicaCount"),
                format!("{} is event-driven but keeps minReplicaCount {min}, so the idle workload never scales to zero", object.describe()),
            );
        }
        let Some(target) = index.scaled_object_target(object, scaled) else {
            continue;
        };
        for (hpa_object, _) in index.hpas_on(target) {
            out.fire(
                "keda.hpa-conflict",
                hpa_object.location(),
                format!(
                    "{} targets {}, which {} (at {}) already scales through the HPA KEDA creates",
                    hpa_object.describe(),
                    target.describe(),
                    object.describe(),
                    object.location()
                ),
            );
        }
    }
}

enum Budget {
    Count(i64),
    Percent(i64),
}

fn parse_budget(value: &IntOrString) -> Result<Budget, String> {
    match value {
        IntOrString::Int(n) if *n >= 0 => Ok(Budget::Count(i64::from(*n))),
        IntOrString::Int(n) => Err(format!("{n} is negative")),
        IntOrString::String(text) => {
            let Some(number) = text.trim().strip_suffix('%') else {
                return match text.trim().parse::<i64>() {
                    Ok(_) => Err(format!(
                        "\"{text}\" is a quoted number; write it unquoted or as a percentage"
                    )),
                    Err(_) => Err(format!("\"{text}\" is neither an integer nor a percentage")),
                };
            };
            match number.trim().parse::<i64>() {
                Ok(p) if (0..=100).contains(&p) => Ok(Budget::Percent(p)),
                _ => Err(format!(
                    "\"{text}\" is not a percentage between 0% and 100%"
                )),
            }
        }
    }
}

fn scaled(budget: &Budget, replicas: i64) -> i64 {
    match budget {
        Budget::Count(n) => *n,
        // PDB percentages round up for both fields.
        Budget::Percent(p) => (p * replicas + 99) / 100,
    }
}

fn pdb(index: &Index<'_>, out: &mut Collector) {
    let pdbs: Vec<&Object> = index
        .submission
        .objects
        .iter()
        .filter(|o| matches!(o.typed, Typed::PodDisruptionBudget(_)))
        .collect();
    let selects_something = |p: &Object| {
        let Typed::PodDisruptionBudget(pdb) = &p.typed else {
            return false;
        };
        let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            return false;
        };
        index.workloads.iter().any(|w| {
            w.same_namespace(p.namespace.as_deref())
                && w.pod_template()
                    .and_then(|t| t.labels)
                    .is_some_and(|labels| selector_matches(selector, labels))
        })
    };
    for workload in &index.workloads {
        if !index.is_serving(workload) || !workload.is_scalable() {
            continue;
        }
        // A budget in the namespace that selects nothing was meant for some
        // workload: ref.pdb-selector-unmatched already reports it.
        if pdbs
            .iter()
            .any(|p| p.same_namespace(workload.namespace.as_deref()) && !selects_something(p))
        {
            continue;
        }
        let Some(labels) = workload.pod_template().and_then(|t| t.labels) else {
            continue;
        };
        let covered = pdbs.iter().any(|p| {
            let Typed::PodDisruptionBudget(pdb) = &p.typed else {
                return false;
            };
            p.same_namespace(workload.namespace.as_deref())
                && pdb
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|s| selector_matches(s, labels))
        });
        if !covered {
            out.fire(
                "pdb.missing",
                workload.location(),
                format!(
                    "serving workload {} has no PodDisruptionBudget",
                    workload.describe()
                ),
            );
        }
    }
    for object in pdbs {
        let Typed::PodDisruptionBudget(pdb) = &object.typed else {
            continue;
        };
        let Some(spec) = &pdb.spec else {
            out.fire(
                "pdb.malformed",
                object.location(),
                format!("{} has no spec", object.describe()),
            );
            continue;
        };
        let budget = match (&spec.min_available, &spec.max_unavailable) {
            (Some(_), Some(_)) => {
                out.fire(
                    "pdb.malformed",
                    object.locate("/spec/maxUnavailable"),
                    format!("{} sets both minAvailable and maxUnavailable; a PodDisruptionBudget may set only one", object.describe()),
                );
                None
            }
            (None, None) => {
                out.fire(
                    "pdb.malformed",
                    object.locate("/spec"),
                    format!(
                        "{} sets neither minAvailable nor maxUnavailable",
                        object.describe()
                    ),
                );
                None
            }
            (Some(value), None) => Some(("minAvailable", value)),
            (None, Some(value)) => Some(("maxUnavailable", value)),
        };
        let Some((field, value)) = budget else {
            continue;
        };
        let budget = match parse_budget(value) {
            Ok(budget) => budget,
            Err(problem) => {
                out.fire(
                    "pdb.malformed",
                    object.locate(&format!("/spec/{field}")),
                    format!("{} {field}: {problem}", object.describe()),
                );
                continue;
            }
        };
        let Some(selector) = &spec.selector else {
            continue;
        };
        for workload in &index.workloads {
            if !workload.same_namespace(object.namespace.as_deref()) {
                continue;
            }
            let Some(labels) = workload.pod_template().and_then(|t| t.labels) else {
                continue;
            };
            if !selector_matches(selector, labels) {
                continue;
            }
            let Some(replicas) = index
                .min_replicas(workload)
                .map(i64::from)
                .filter(|n| *n > 0)
            else {
                continue;
            };
            let allowed = if field == "minAvailable" {
                replicas - scaled(&budget, replicas)
            } else {
                scaled(&budget, replicas)
            };
            if allowed <= 0 {
                out.fire(
                    "pdb.blocks-all-evictions",
                    object.locate(&format!("/spec/{field}")),
                    format!(
                        "{} allows {allowed} disruption(s) when {} runs its minimum of {replicas} replica(s): node drains block",
                        object.describe(),
                        workload.describe()
                    ),
                );
            }
        }
    }
}

/// Per-pod requests and limits as the API server and LimitRanger leave them.
fn pod_resources(
    spec: &PodSpec,
    defaults: &Defaults,
) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let container_values = |container: &Container| {
        let mut requests: BTreeMap<String, f64> = BTreeMap::new();
        let mut limits: BTreeMap<String, f64> = BTreeMap::new();
        let resources = container.resources.as_ref();
        for (name, q) in resources
            .and_then(|r| r.limits.as_ref())
            .into_iter()
            .flatten()
        {
            if let Ok(v) = parse_quantity(&q.0) {
                limits.insert(name.clone(), v);
            }
        }
        for (name, q) in resources
            .and_then(|r| r.requests.as_ref())
            .into_iter()
            .flatten()
        {
            if let Ok(v) = parse_quantity(&q.0) {
                requests.insert(name.clone(), v);
            }
        }
        // API defaulting first: a limit without a request becomes the request.
        for (name, v) in &limits {
            requests.entry(name.clone()).or_insert(*v);
        }
        // Then LimitRanger fills what is still missing, per resource.
        for (name, v) in &defaults.limit {
            limits.entry(name.clone()).or_insert(*v);
        }
        for (name, v) in &defaults.request {
            requests.entry(name.clone()).or_insert(*v);
        }
        (requests, limits)
    };
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    for container in &spec.containers {
        let (r, l) = container_values(container);
        for (k, v) in r {
            *requests.entry(k).or_insert(0.0) += v;
        }
        for (k, v) in l {
            *limits.entry(k).or_insert(0.0) += v;
        }
    }
    for container in spec.init_containers.iter().flatten() {
        let (r, l) = container_values(container);
        for (k, v) in r {
            let entry = requests.entry(k).or_insert(0.0);
            *entry = entry.max(v);
        }
        for (k, v) in l {
            let entry = limits.entry(k).or_insert(0.0);
            *entry = entry.max(v);
        }
    }
    (requests, limits)
}

/// What LimitRanger fills into a container of a namespace at admission.
#[derive(Default)]
struct Defaults {
    request: BTreeMap<String, f64>,
    limit: BTreeMap<String, f64>,
    /// Resource -> the LimitRange that provides its default request.
    request_source: BTreeMap<String, String>,
}

/// The effective container defaults of a namespace's LimitRanges, after the
/// API server's LimitRangeItem defaulting (SetDefaults_LimitRangeItem): a
/// missing `default` is `max`; a missing `defaultRequest` is `default`, else `min`.
fn namespace_defaults(submission: &Submission, namespace: Option<&str>) -> Defaults {
    let mut defaults = Defaults::default();
    let parsed = |list: Option<&BTreeMap<String, Quantity>>| {
        list.into_iter()
            .flatten()
            .filter_map(|(name, q)| parse_quantity(&q.0).ok().map(|v| (name.clone(), v)))
            .collect::<BTreeMap<String, f64>>()
    };
    for object in &submission.objects {
        let Typed::LimitRange(range) = &object.typed else {
            continue;
        };
        if !object.same_namespace(namespace) {
            continue;
        }
        for item in range
            .spec
            .iter()
            .flat_map(|s| s.limits.iter())
            .filter(|i| i.type_ == "Container")
        {
            let mut limit = parsed(item.default.as_ref());
            for (name, v) in parsed(item.max.as_ref()) {
                limit.entry(name).or_insert(v);
            }
            let mut request = parsed(item.default_request.as_ref());
            for (name, v) in limit
                .iter()
                .map(|(n, v)| (n.clone(), *v))
                .chain(parsed(item.min.as_ref()))
            {
                request.entry(name).or_insert(v);
            }
            for (name, v) in limit {
                defaults.limit.entry(name).or_insert(v);
            }
            for (name, v) in request {
                if !defaults.request.contains_key(&name) {
                    defaults
                        .request_source
                        .insert(name.clone(), object.describe());
                    defaults.request.insert(name, v);
                }
            }
        }
    }
    defaults
}

/// Where a container's request for a resource comes from, if anywhere.
enum RequestSource {
    /// Written in the manifest (`requests`, or a `limits` entry the API server copies).
    Manifest,
    /// Filled in at admission by a LimitRange: (its description, the value).
    LimitRange(String, f64),
    Missing,
}

fn request_source(container: &Container, resource: &str, defaults: &Defaults) -> RequestSource {
    let resources = container.resources.as_ref();
    let written =
        |list: Option<&BTreeMap<String, Quantity>>| list.is_some_and(|l| l.contains_key(resource));
    if written(resources.and_then(|r| r.requests.as_ref()))
        || written(resources.and_then(|r| r.limits.as_ref()))
    {
        return RequestSource::Manifest;
    }
    match (
        defaults.request.get(resource),
        defaults.request_source.get(resource),
    ) {
        (Some(value), Some(source)) => RequestSource::LimitRange(source.clone(), *value),
        _ => RequestSource::Missing,
    }
}

fn quota(index: &Index<'_>, out: &mut Collector) {
    let submission = index.submission;
    let quotas: Vec<&Object> = submission
        .objects
        .iter()
        .filter(|o| matches!(o.typed, Typed::ResourceQuota(_)))
        .collect();
    let ranges: Vec<&Object> = submission
        .objects
        .iter()
        .filter(|o| matches!(o.typed, Typed::LimitRange(_)))
        .collect();
    if quotas.is_empty() {
        out.fire(
            "quota.missing",
            Location::file(""),
            "no ResourceQuota in the submission",
        );
    }
    if ranges.is_empty() {
        out.fire(
            "quota.missing",
            Location::file(""),
            "no LimitRange in the submission",
        );
    }
    for object in &ranges {
        let Typed::LimitRange(range) = &object.typed else {
            continue;
        };
        for (i, item) in range.spec.iter().flat_map(|s| s.limits.iter()).enumerate() {
            let value = |map: &Option<
                BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
            >,
                         r: &str| {
                map.as_ref()
                    .and_then(|m| m.get(r))
                    .and_then(|q| parse_quantity(&q.0).ok())
            };
            let mut resources: BTreeSet<&String> = BTreeSet::new();
            resources.extend(item.default.iter().flatten().map(|(k, _)| k));
            resources.extend(item.default_request.iter().flatten().map(|(k, _)| k));
            for resource in resources {
                let (min, max) = (value(&item.min, resource), value(&item.max, resource));
                for (field, v) in [
                    ("default", value(&item.default, resource)),
                    ("defaultRequest", value(&item.default_request, resource)),
                ] {
                    let Some(v) = v else { continue };
                    let pointer = format!("/spec/limits/{i}/{field}/{}", pointer_escape(resource));
                    if let Some(min) = min.filter(|m| v < *m) {
                        out.fire(
                            "quota.limitrange-default-out-of-range",
                            object.locate(&pointer),
                            format!(
                                "{} {field} {resource} {} is below its min {}",
                                object.describe(),
                                format_quantity(resource, v),
                                format_quantity(resource, min)
                            ),
                        );
                    }
                    if let Some(max) = max.filter(|m| v > *m) {
                        out.fire(
                            "quota.limitrange-default-out-of-range",
                            object.locate(&pointer),
                            format!(
                                "{} {field} {resource} {} is above its max {}",
                                object.describe(),
                                format_quantity(resource, v),
                                format_quantity(resource, max)
                            ),
                        );
                    }
                }
                if let (Some(request), Some(limit)) = (
                    value(&item.default_request, resource),
                    value(&item.default, resource),
                ) && request > limit
                {
                    out.fire(
                        "quota.limitrange-default-out-of-range",
                        object.locate(&format!(
                            "/spec/limits/{i}/defaultRequest/{}",
                            pointer_escape(resource)
                        )),
                        format!(
                            "{} defaultRequest {resource} is above default (limit) {resource}",
                            object.describe()
                        ),
                    );
                }
            }
        }
    }
    for object in &quotas {
        let Typed::ResourceQuota(quota) = &object.typed else {
            continue;
        };
        let Some(hard) = quota.spec.as_ref().and_then(|s| s.hard.as_ref()) else {
            continue;
        };
        let defaults = namespace_defaults(submission, object.namespace.as_deref());
        let mut used: BTreeMap<String, f64> = BTreeMap::new();
        let mut contributions: Vec<String> = Vec::new();
        let mut add_pods = |who: String, count: i64, spec: &PodSpec| {
            if count <= 0 {
                return;
            }
            let (requests, limits) = pod_resources(spec, &defaults);
            *used.entry("pods".into()).or_insert(0.0) += count as f64;
            for (name, v) in requests {
                *used.entry(format!("requests.{name}")).or_insert(0.0) += v * count as f64;
            }
            for (name, v) in limits {
                *used.entry(format!("limits.{name}")).or_insert(0.0) += v * count as f64;
            }
            contributions.push(format!("{who} × {count}"));
        };
        for workload in &index.workloads {
            if !workload.same_namespace(object.namespace.as_deref()) {
                continue;
            }
            let Some(PodTemplate { spec, .. }) = workload.pod_template() else {
                continue;
            };
            add_pods(workload.describe(), index.max_replicas(workload), spec);
        }
        for scaled_job in &submission.objects {
            let Typed::ScaledJob(job) = &scaled_job.typed else {
                continue;
            };
            if !scaled_job.same_namespace(object.namespace.as_deref()) {
                continue;
            }
            let template = job
                .spec
                .job_target_ref
                .as_ref()
                .and_then(|j| j.get("template"))
                .and_then(|t| serde_json::from_value::<PodTemplateSpec>(t.clone()).ok());
            if let Some(spec) = template.and_then(|t| t.spec) {
                add_pods(
                    scaled_job.describe(),
                    i64::from(job.spec.max_replica_count.unwrap_or(100)),
                    &spec,
                );
            }
        }
        let mut headroom = Vec::new();
        for (key, limit) in hard {
            let Ok(limit_value) = parse_quantity(&limit.0) else {
                continue;
            };
            let used_key = match key.as_str() {
                "cpu" | "memory" | "ephemeral-storage" => format!("requests.{key}"),
                other => other.to_string(),
            };
            if !(used_key == "pods"
                || used_key.starts_with("requests.")
                || used_key.starts_with("limits."))
            {
                continue;
            }
            let needed = used.get(&used_key).copied().unwrap_or(0.0);
            let resource = used_key
                .trim_start_matches("requests.")
                .trim_start_matches("limits.");
            headroom.push((
                format!("{} {key}", object.describe()),
                format!(
                    "{} of {} at full scale (headroom {})",
                    format_quantity(resource, needed),
                    format_quantity(resource, limit_value),
                    format_quantity(resource, limit_value - needed)
                ),
            ));
            if needed > limit_value * (1.0 + 1e-9) {
                out.fire(
                    "quota.headroom-exceeded",
                    object.locate(&format!("/spec/hard/{}", pointer_escape(key))),
                    format!(
                        "at full scale the workloads of {} need {key} {} but {} allows {} (short by {})",
                        object.namespace.as_deref().unwrap_or("the namespace"),
                        format_quantity(resource, needed),
                        object.describe(),
                        format_quantity(resource, limit_value),
                        format_quantity(resource, needed - limit_value)
                    ),
                );
            }
        }
        quota_admission(index, object, hard, &defaults, out);
        headroom.push((
            format!("{} counts", object.describe()),
            contributions.join(", "),
        ));
        out.evidence.push((
            "quota.headroom-exceeded".into(),
            Evidence::Values { values: headroom },
        ));
    }
}

/// ResourceQuota admission: when a quota tracks cpu or memory requests or
/// limits, the API server rejects a pod any of whose containers has no value
/// for it after defaulting (its own request or limit, then the LimitRange).
fn quota_admission(
    index: &Index<'_>,
    quota: &Object,
    hard: &BTreeMap<String, Quantity>,
    defaults: &Defaults,
    out: &mut Collector,
) {
    let tracked: Vec<(&str, &str, bool)> = hard
        .keys()
        .filter_map(|key| match key.as_str() {
            "cpu" | "requests.cpu" => Some((key.as_str(), "cpu", false)),
            "memory" | "requests.memory" => Some((key.as_str(), "memory", false)),
            "limits.cpu" => Some((key.as_str(), "cpu", true)),
            "limits.memory" => Some((key.as_str(), "memory", true)),
            _ => None,
        })
        .collect();
    for workload in &index.workloads {
        if !workload.same_namespace(quota.namespace.as_deref()) {
            continue;
        }
        let Some(template) = workload.pod_template() else {
            continue;
        };
        let containers = template
            .spec
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("{}/containers/{i}", template.pointer), c))
            .chain(
                template
                    .spec
                    .init_containers
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(|(i, c)| (format!("{}/initContainers/{i}", template.pointer), c)),
            );
        for (pointer, container) in containers {
            let resources = container.resources.as_ref();
            let has = |list: Option<&BTreeMap<String, Quantity>>, resource: &str| {
                list.is_some_and(|l| l.contains_key(resource))
            };
            let limits = resources.and_then(|r| r.limits.as_ref());
            let requests = resources.and_then(|r| r.requests.as_ref());
            let missing: Vec<&str> = tracked
                .iter()
                .filter(|(_, resource, is_limit)| {
                    let written = if *is_limit {
                        has(limits, resource)
                    } else {
                        has(requests, resource) || has(limits, resource)
                    };
                    let defaulted = if *is_limit {
                        defaults.limit.contains_key(*resource)
                    } else {
                        defaults.request.contains_key(*resource)
                    };
                    !written && !defaulted
                })
                .map(|(key, ..)| *key)
                .collect();
            if !missing.is_empty() {
                out.fire_with_hint(
                    "quota.headroom-exceeded",
                    workload.locate(&pointer),
                    format!(
                        "{} tracks {}, so the API server rejects the pods of {}: container `{}` sets no value for {} and no LimitRange default fills one in",
                        quota.describe(),
                        missing.join(", "),
                        workload.describe(),
                        container.name,
                        if missing.len() == 1 { "it" } else { "them" }
                    ),
                    "set the container's resources.requests and resources.limits, or give the namespace a LimitRange with defaults for them",
                );
            }
        }
    }
}

fn gpu(index: &Index<'_>, out: &mut Collector) {
    for workload in &index.workloads {
        let Some(template) = workload.pod_template() else {
            continue;
        };
        let spec = template.spec;
        let (needs_gpu, tolerates, selects) = (
            requests_gpu(spec),
            tolerates_gpu(spec),
            selects_gpu_pool(spec),
        );
        let gpu_training = needs_gpu || (is_training(workload) && (tolerates || selects));
        if gpu_training && !(tolerates && selects) {
            let mut missing = Vec::new();
            if !tolerates {
                missing.push("does not tolerate the nvidia.com/gpu taint");
            }
            if !selects {
                missing
                    .push("does not select the GPU pool (nodeSelector or required node affinity)");
            }
            let pointer = if tolerates {
                "/affinity"
            } else {
                "/tolerations"
            };
            out.fire(
                "gpu.training-not-on-pool",
                workload.locate(&format!("{}{pointer}", template.pointer)),
                format!(
                    "GPU training workload {} {}",
                    workload.describe(),
                    missing.join(" and ")
                ),
            );
        }
        if index.is_serving(workload)
            && !needs_gpu
            && !is_training(workload)
            && (tolerates || selects)
        {
            let pointer = if selects {
                "/nodeSelector"
            } else {
                "/tolerations"
            };
            let location = workload.locate(&format!("{}{pointer}", template.pointer));
            let location = if location.line.is_some() {
                location
            } else {
                workload.locate(template.pointer)
            };
            out.fire(
                "gpu.serving-on-pool",
                location,
                format!(
                    "serving workload {} requests no GPU but is placed on the GPU pool",
                    workload.describe()
                ),
            );
        }
    }
}

/// Which object checks had something to look at (see `Collector::examined`).
fn mark_examined(index: &Index<'_>, out: &mut Collector) {
    let objects = &index.submission.objects;
    let any = |f: &dyn Fn(&Typed) -> bool| objects.iter().any(|o| f(&o.typed));
    if !objects.is_empty() {
        out.examined(&["api.removed-version", "input.parse-error"]);
    }
    if !index.hpas.is_empty() {
        out.examined(&[
            "ref.hpa-target-missing",
            "hpa.requests-missing",
            "hpa.min-exceeds-max",
            "hpa.serving-min-replicas",
            "hpa.scale-down-unstable",
            "hpa.scale-down-policy-unbounded",
        ]);
    }
    if index.hpas.iter().any(|(_, h)| {
        h.spec
            .metrics
            .iter()
            .flatten()
            .enumerate()
            .any(|(i, m)| custom_metrics(m, i).is_some())
    }) {
        out.examined(&["hpa.custom-metric-unexposed"]);
    }
    if any(
        &|t| matches!(t, Typed::Service(s) if s.spec.as_ref().and_then(|s| s.selector.as_ref()).is_some_and(|s| !s.is_empty())),
    ) {
        out.examined(&["ref.service-selector-unmatched"]);
    }
    let has_pdb = any(&|t| matches!(t, Typed::PodDisruptionBudget(_)));
    if has_pdb {
        out.examined(&[
            "ref.pdb-selector-unmatched",
            "pdb.malformed",
            "pdb.blocks-all-evictions",
        ]);
    }
    if has_pdb
        || index
            .workloads
            .iter()
            .any(|w| index.is_serving(w) && w.is_scalable())
    {
        out.examined(&["pdb.missing"]);
    }
    if !index.vpas.is_empty() {
        out.examined(&[
            "ref.vpa-target-missing",
            "vpa.update-mode-invalid",
            "vpa.min-exceeds-max",
            "vpa.controlled-resources-invalid",
            "vpa.hpa-conflict",
            "vpa.duplicate-target",
        ]);
    }
    let scaled_jobs: Vec<&crate::submission::crds::ScaledJob> = objects
        .iter()
        .filter_map(|o| match &o.typed {
            Typed::ScaledJob(j) => Some(j.as_ref()),
            _ => None,
        })
        .collect();
    let triggers: Vec<&KedaTrigger> = index
        .scaled_objects
        .iter()
        .flat_map(|(_, s)| s.spec.triggers.iter())
        .chain(scaled_jobs.iter().flat_map(|j| j.spec.triggers.iter()))
        .collect();
    if !index.scaled_objects.is_empty() {
        out.examined(&["ref.scaledobject-target-missing", "keda.hpa-conflict"]);
    }
    if triggers.iter().any(|t| t.type_ == "prometheus") {
        out.examined(&["keda.prometheus-trigger-incomplete"]);
    }
    if triggers.iter().any(|t| t.type_ == "cron") {
        out.examined(&["keda.cron-invalid"]);
    }
    if !scaled_jobs.is_empty()
        || index
            .scaled_objects
            .iter()
            .any(|(_, s)| s.spec.triggers.iter().any(keda_event_driven))
    {
        out.examined(&["keda.scale-to-zero-missing"]);
    }
    if any(&|t| matches!(t, Typed::LimitRange(_))) {
        out.examined(&["quota.limitrange-default-out-of-range"]);
    }
    if any(&|t| matches!(t, Typed::ResourceQuota(_))) {
        out.examined(&["quota.headroom-exceeded"]);
    }
    if index
        .workloads
        .iter()
        .any(|w| is_training(w) || w.pod_template().is_some_and(|t| requests_gpu(t.spec)))
    {
        out.examined(&["gpu.training-not-on-pool"]);
    }
    if index.workloads.iter().any(|w| index.is_serving(w)) {
        out.examined(&["gpu.serving-on-pool"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use rstest::rstest;

    fn exposure_of(config: &str) -> Exposure {
        let submission = submission_of("adapter.yaml", config);
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
        Exposure::new(&submission)
    }

    #[test]
    fn adapter_rules_expose_the_names_their_name_as_produces() {
        let exposure = exposure_of(
            "rules:\n- seriesQuery: 'http_requests_total{pod!=\"\"}'\n  name: {matches: \"^(.*)_total$\", as: \"${1}_per_second\"}\n  metricsQuery: x\n- seriesQuery: 'queue_depth{pod!=\"\"}'\n  metricsQuery: y\n",
        );
        assert!(exposure.exposes("http_requests_per_second", false));
        assert!(!exposure.exposes("http_requests_total", false));
        assert!(exposure.exposes("queue_depth", false));
        assert!(
            !exposure.exposes("queue_depth", true),
            "custom rules do not expose external metrics"
        );
        let problem = exposure.problem("http_request_per_second", false).unwrap();
        assert!(problem.contains("http_requests_per_second"), "{problem}");
    }

    #[test]
    fn adapter_rules_with_name_patterns_and_helm_values_shape() {
        let exposure = exposure_of(
            "rules:\n  default: false\n  custom:\n  - seriesQuery: '{__name__=~\"^inference_.*_total$\",pod!=\"\"}'\n    name: {matches: \"^(.*)_total$\", as: \"${1}\"}\n    metricsQuery: x\n  external:\n  - seriesQuery: 'queue_length'\n    metricsQuery: y\n",
        );
        assert!(exposure.exposes("inference_requests", false));
        assert!(!exposure.exposes("training_requests", false));
        assert!(exposure.exposes("queue_length", true));
    }

    #[test]
    fn without_adapter_rules_every_custom_metric_is_unexposed() {
        let exposure = exposure_of("kind: nothing\n");
        assert!(
            exposure
                .problem("anything", false)
                .unwrap()
                .contains("no prometheus-adapter rules")
        );
    }

    #[test]
    fn malformed_quantities_are_parse_errors_at_the_field() {
        let submission = submission_of(
            "d.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n      - name: c\n        resources:\n          requests: {cpu: 200m, memory: 256MB}\n",
        );
        let mut out = Collector::default();
        check(&submission, &mut out);
        let errors: Vec<_> = out
            .findings
            .iter()
            .filter(|f| f.check == "input.parse-error")
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("256MB"));
        assert_eq!(errors[0].location.line, Some(12));
    }

    #[rstest]
    #[case("0 9 * * 1-5", true)]
    #[case("0 22 * * *", true)]
    #[case("@daily", false)]
    #[case("0 0 9 * * 1-5", false)]
    #[case("61 9 * * *", false)]
    #[case("0 9 * *", false)]
    fn cron_expressions_are_five_field(#[case] expression: &str, #[case] valid: bool) {
        assert_eq!(
            cron_problem(expression).is_none(),
            valid,
            "{expression}: {:?}",
            cron_problem(expression)
        );
    }

    #[rstest]
    #[case(IntOrString::Int(1), true)]
    #[case(IntOrString::String("30%".into()), true)]
    #[case(IntOrString::Int(-1), false)]
    #[case(IntOrString::String("30".into()), false)]
    #[case(IntOrString::String("150%".into()), false)]
    #[case(IntOrString::String("half".into()), false)]
    fn pdb_budgets_are_counts_or_percentages(#[case] value: IntOrString, #[case] valid: bool) {
        assert_eq!(parse_budget(&value).is_ok(), valid);
    }

    #[rstest]
    #[case(Budget::Percent(30), 2, 1)]
    #[case(Budget::Percent(50), 3, 2)]
    #[case(Budget::Count(1), 5, 1)]
    #[case(Budget::Percent(0), 4, 0)]
    fn percentages_round_up(#[case] budget: Budget, #[case] replicas: i64, #[case] expected: i64) {
        assert_eq!(scaled(&budget, replicas), expected);
    }

    /// A submission of one file with `text`, loaded as the grader loads it.
    fn submission_of(file: &str, text: &str) -> Submission {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file), text).unwrap();
        crate::submission::load(dir.path(), &crate::submission::LoadOptions::default()).unwrap()
    }

    fn limit_range_submission(item: &str) -> Submission {
        submission_of(
            "lr.yaml",
            &format!(
                "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: lr\n  namespace: ml\nspec:\n  limits:\n    - type: Container\n{item}"
            ),
        )
    }

    /// SetDefaults_LimitRangeItem: default <- max; defaultRequest <- default, else min.
    #[rstest]
    #[case(
        "      defaultRequest: {cpu: 200m}\n      default: {cpu: 500m}\n",
        Some(0.2),
        Some(0.5)
    )]
    #[case("      default: {cpu: 500m}\n", Some(0.5), Some(0.5))]
    #[case("      max: {cpu: \"2\"}\n", Some(2.0), Some(2.0))]
    #[case("      min: {cpu: 100m}\n", Some(0.1), None)]
    #[case("      min: {memory: 128Mi}\n      max: {memory: 1Gi}\n", None, None)]
    fn limit_range_defaults_follow_the_api_server(
        #[case] item: &str,
        #[case] request: Option<f64>,
        #[case] limit: Option<f64>,
    ) {
        let submission = limit_range_submission(item);
        let defaults = namespace_defaults(&submission, Some("ml"));
        assert_eq!(defaults.request.get("cpu").copied(), request, "{item}");
        assert_eq!(defaults.limit.get("cpu").copied(), limit, "{item}");
        let other_namespace = namespace_defaults(&submission, Some("elsewhere"));
        assert!(other_namespace.request.is_empty());
    }

    #[rstest]
    #[case(r#"{}"#, "min: {cpu: 100m}", "limitrange")]
    #[case(r#"{}"#, "min: {memory: 128Mi}", "missing")]
    #[case(r#"{"limits": {"cpu": "300m"}}"#, "min: {memory: 128Mi}", "manifest")]
    #[case(
        r#"{"requests": {"memory": "64Mi"}}"#,
        "defaultRequest: {cpu: 50m}",
        "limitrange"
    )]
    #[case(r#"{"requests": {"cpu": "10m"}}"#, "min: {memory: 128Mi}", "manifest")]
    fn a_request_comes_from_the_manifest_or_a_limit_range(
        #[case] resources: &str,
        #[case] item: &str,
        #[case] source: &str,
    ) {
        let submission = limit_range_submission(&format!("      {item}\n"));
        let defaults = namespace_defaults(&submission, Some("ml"));
        let container: Container =
            serde_json::from_str(&format!(r#"{{"name": "c", "resources": {resources}}}"#)).unwrap();
        let found = match request_source(&container, "cpu", &defaults) {
            RequestSource::Manifest => "manifest",
            RequestSource::LimitRange(range, _) => {
                assert_eq!(range, "LimitRange ml/lr");
                "limitrange"
            }
            RequestSource::Missing => "missing",
        };
        assert_eq!(found, source, "{resources} with {item}");
    }

    #[rstest]
    #[case(
        "minReplicas: 0\n  maxReplicas: 3\n",
        "hpa.min-exceeds-max",
        "HPAScaleToZero"
    )]
    #[case(
        "maxReplicas: 3\n  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 4000\n",
        "input.parse-error",
        "0 to 3600"
    )]
    #[case(
        "maxReplicas: 3\n  behavior:\n    scaleUp:\n      policies: [{type: Pods, value: 0, periodSeconds: 60}]\n",
        "input.parse-error",
        "more than 0"
    )]
    #[case(
        "maxReplicas: 3\n  behavior:\n    scaleDown:\n      policies: [{type: Percent, value: 10, periodSeconds: 3600}]\n",
        "input.parse-error",
        "1 to 1800"
    )]
    #[case(
        "maxReplicas: 3\n  behavior:\n    scaleDown:\n      selectPolicy: max\n",
        "input.parse-error",
        "Max, Min or Disabled"
    )]
    fn hpa_values_the_api_server_rejects_are_reported(
        #[case] spec: &str,
        #[case] check_id: &str,
        #[case] says: &str,
    ) {
        let submission = submission_of(
            "hpa.yaml",
            &format!(
                "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: h}}\nspec:\n  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: d}}\n  {spec}"
            ),
        );
        let mut out = Collector::default();
        check(&submission, &mut out);
        assert!(
            out.findings
                .iter()
                .any(|f| f.check == check_id && f.message.contains(says)),
            "{spec}: {:?}",
            out.findings
        );
    }

    /// Quota tracks requests.cpu and limits.memory; the LimitRange (if any) defaults memory.
    #[rstest]
    #[case("{}", true, &[])]
    #[case("{}", false, &["limits.memory", "requests.cpu"])]
    #[case("{limits: {cpu: 100m}}", true, &[])]
    // the LimitRange's min cpu becomes the default cpu request
    #[case("{requests: {memory: 64Mi}}", true, &[])]
    #[case("{requests: {memory: 64Mi}}", false, &["limits.memory", "requests.cpu"])]
    #[case("{limits: {memory: 1Gi}}", false, &["requests.cpu"])]
    #[case("{requests: {cpu: 100m}, limits: {memory: 1Gi}}", false, &[])]
    fn a_quota_rejects_pods_with_nothing_for_what_it_tracks(
        #[case] resources: &str,
        #[case] with_limit_range: bool,
        #[case] rejected_for: &[&str],
    ) {
        let limit_range = if with_limit_range {
            "apiVersion: v1\nkind: LimitRange\nmetadata: {name: lr, namespace: ml}\nspec:\n  limits:\n    - type: Container\n      default: {memory: 512Mi}\n      min: {cpu: 50m}\n---\n"
        } else {
            ""
        };
        let submission = submission_of(
            "all.yaml",
            &format!(
                "{limit_range}apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: q, namespace: ml}}\nspec:\n  hard: {{requests.cpu: \"20\", limits.memory: 40Gi, pods: \"50\"}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d, namespace: ml}}\nspec:\n  selector: {{matchLabels: {{app: d}}}}\n  template:\n    metadata: {{labels: {{app: d}}}}\n    spec:\n      containers: [{{name: c, image: i, resources: {resources}}}]\n"
            ),
        );
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
        let mut out = Collector::default();
        check(&submission, &mut out);
        let rejections: Vec<&String> = out
            .findings
            .iter()
            .filter(|f| f.check == "quota.headroom-exceeded")
            .map(|f| &f.message)
            .collect();
        if rejected_for.is_empty() {
            assert!(rejections.is_empty(), "{resources}: {rejections:?}");
        } else {
            assert_eq!(rejections.len(), 1, "{resources}: {rejections:?}");
            assert!(
                rejections[0].contains(&format!("tracks {}, so", rejected_for.join(", "))),
                "{resources}: {rejections:?}"
            );
        }
    }

    #[test]
    fn a_service_backed_hpa_scaled_deployment_is_serving_whatever_its_name() {
        let deployment = |name: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: ml}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: c, image: i, resources: {{requests: {{cpu: 100m}}}}}}]\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: ml}}\nspec:\n  selector: {{app: {name}}}\n  ports: [{{port: 80}}]\n---\n"
            )
        };
        let hpa = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: fraud, namespace: ml}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: fraud-detector}\n  minReplicas: 1\n  maxReplicas: 4\n";
        let submission = submission_of(
            "all.yaml",
            &[
                deployment("fraud-detector"),
                deployment("feature-cache"),
                hpa.to_string(),
            ]
            .concat(),
        );
        let mut out = Collector::default();
        check(&submission, &mut out);
        let about = |check_id: &str| -> Vec<String> {
            out.findings
                .iter()
                .filter(|f| f.check == check_id)
                .map(|f| f.message.clone())
                .collect()
        };
        assert_eq!(
            about("hpa.serving-min-replicas").len(),
            1,
            "{:?}",
            out.findings
        );
        let pdb = about("pdb.missing");
        assert!(
            pdb.len() == 1 && pdb[0].contains("fraud-detector"),
            "only the HPA-scaled one is serving: {pdb:?}"
        );
    }

    #[test]
    fn selectors_follow_label_selector_semantics() {
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "a".to_string()),
            ("tier".to_string(), "serving".to_string()),
        ]
        .into();
        let mut selector = LabelSelector {
            match_labels: Some([("app".to_string(), "a".to_string())].into()),
            ..Default::default()
        };
        assert!(selector_matches(&selector, &labels));
        selector.match_expressions = Some(vec![LabelSelectorRequirement {
            key: "tier".into(),
            operator: "NotIn".into(),
            values: Some(vec!["serving".into()]),
        }]);
        assert!(!selector_matches(&selector, &labels));
        assert!(selector_matches(&LabelSelector::default(), &labels));
    }
}
