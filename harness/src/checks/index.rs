//! The objects the checks look at, typed, with the autoscalers' targets resolved
//! once: the model every criterion's object checks share (which workload an
//! autoscaler scales, its replica bounds, whether it serves or trains).

use crate::submission::crds::{KedaTrigger, ScaledJob, ScaledObject, VerticalPodAutoscaler};
use crate::submission::{Object, Submission, Typed, selector};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// The objects checks look at, typed, with their targets resolved once.
pub struct Index<'a> {
    pub submission: &'a Submission,
    pub hpas: Vec<(&'a Object, &'a HorizontalPodAutoscaler)>,
    pub vpas: Vec<(&'a Object, &'a VerticalPodAutoscaler)>,
    pub scaled_objects: Vec<(&'a Object, &'a ScaledObject)>,
    pub scaled_jobs: Vec<(&'a Object, &'a ScaledJob)>,
    /// Objects with a pod template.
    pub workloads: Vec<&'a Object>,
}

impl<'a> Index<'a> {
    pub fn new(submission: &'a Submission) -> Self {
        let mut index = Index {
            submission,
            hpas: vec![],
            vpas: vec![],
            scaled_objects: vec![],
            scaled_jobs: vec![],
            workloads: vec![],
        };
        for object in &submission.objects {
            match &object.typed {
                Typed::HorizontalPodAutoscaler(h) => index.hpas.push((object, h)),
                Typed::VerticalPodAutoscaler(v) => index.vpas.push((object, v)),
                Typed::ScaledObject(s) => index.scaled_objects.push((object, s)),
                Typed::ScaledJob(j) => index.scaled_jobs.push((object, j)),
                _ => {}
            }
            if object.pod_template().is_some() {
                index.workloads.push(object);
            }
        }
        index
    }

    /// Objects of one kind, in submission order.
    pub fn objects_where(&self, kind: fn(&Typed) -> bool) -> Vec<&'a Object> {
        self.submission
            .objects
            .iter()
            .filter(|o| kind(&o.typed))
            .collect()
    }

    /// Serving: labelled or named as a server (see `looks_serving`), or a
    /// long-running workload that a Service sends traffic to and a
    /// hand-written HPA scales (not KEDA: batch, queue-driven), which does not
    /// train models. A cache behind a Service without an HPA is not one.
    pub fn is_serving(&self, workload: &Object) -> bool {
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
            o.same_namespace(workload.namespace.as_deref())
                && service_selector(service)
                    .is_some_and(|sel| selector::matches(&selector::of_labels(sel), labels))
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

    /// The workload an HPA's scaleTargetRef names, if it is in the submission.
    pub fn hpa_target(&self, object: &Object, hpa: &HorizontalPodAutoscaler) -> Option<&'a Object> {
        let target = &hpa.spec.scale_target_ref;
        self.target(object, Some(&target.kind), &target.name)
    }

    /// The workload a ScaledObject's scaleTargetRef names (a Deployment unless it
    /// says otherwise), if it is in the submission.
    pub fn scaled_object_target(
        &self,
        object: &Object,
        scaled: &ScaledObject,
    ) -> Option<&'a Object> {
        let target = scaled.spec.scale_target_ref.as_ref()?;
        self.target(
            object,
            Some(target.kind.as_deref().unwrap_or("Deployment")),
            &target.name,
        )
    }

    /// The workload a VPA's targetRef names, if it is in the submission.
    pub fn vpa_target(&self, object: &Object, vpa: &VerticalPodAutoscaler) -> Option<&'a Object> {
        let target = vpa.spec.target_ref.as_ref()?;
        self.target(object, target.kind.as_deref(), &target.name)
    }

    /// The HPAs that scale a workload.
    pub fn hpas_on(
        &self,
        workload: &Object,
    ) -> impl Iterator<Item = &(&'a Object, &'a HorizontalPodAutoscaler)> + '_ {
        let key = identity(workload);
        self.hpas
            .iter()
            .filter(move |(o, h)| self.hpa_target(o, h).map(identity) == Some(key.clone()))
    }

    /// The ScaledObjects that scale a workload.
    pub fn scaled_objects_on(
        &self,
        workload: &Object,
    ) -> impl Iterator<Item = &(&'a Object, &'a ScaledObject)> + '_ {
        let key = identity(workload);
        self.scaled_objects.iter().filter(move |(o, s)| {
            self.scaled_object_target(o, s).map(identity) == Some(key.clone())
        })
    }

    /// The workload in `namespace` that the API server refuses for a selector
    /// that does not match its own template labels, and whose selector asks for
    /// labels that `wanted` selects: a Service or PDB written against that
    /// selector selects nothing because of the workload, not because of itself.
    pub fn refused_workload_selected_by(
        &self,
        namespace: Option<&str>,
        wanted: &LabelSelector,
    ) -> Option<&'a Object> {
        self.workloads.iter().copied().find(|w| {
            w.same_namespace(namespace)
                && selector_mismatch(w).is_some_and(|own| {
                    own.match_labels
                        .as_ref()
                        .is_some_and(|promised| selector::matches(wanted, promised))
                })
        })
    }

    /// The triggers of every ScaledObject, then of every ScaledJob, with their object.
    pub fn keda_triggers(&self) -> Vec<(&'a Object, &'a [KedaTrigger])> {
        let scaled_objects = self
            .scaled_objects
            .iter()
            .map(|(o, s)| (*o, s.spec.triggers.as_slice()));
        let scaled_jobs = self
            .scaled_jobs
            .iter()
            .map(|(o, j)| (*o, j.spec.triggers.as_slice()));
        scaled_objects.chain(scaled_jobs).collect()
    }

    /// The fewest replicas a workload runs with (autoscaler minimum, or spec.replicas).
    pub fn min_replicas(&self, workload: &Object) -> Option<i32> {
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
    pub fn max_replicas(&self, workload: &Object) -> i64 {
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

/// The selector of a controller (Deployment, StatefulSet, ReplicaSet,
/// DaemonSet) that the API server refuses because it is empty or does not
/// select the controller's own pod template labels ("`selector` does not match
/// template `labels`"). `None` for a valid one and for other kinds.
pub fn selector_mismatch(workload: &Object) -> Option<&LabelSelector> {
    let own = match &workload.typed {
        Typed::Deployment(d) => &d.spec.selector,
        Typed::StatefulSet(s) => &s.spec.selector,
        Typed::ReplicaSet(r) => &r.spec.selector,
        Typed::DaemonSet(d) => &d.spec.selector,
        _ => return None,
    };
    let empty = BTreeMap::new();
    let labels = workload
        .pod_template()
        .and_then(|t| t.labels)
        .unwrap_or(&empty);
    (selector::is_empty(own) || !selector::matches(own, labels)).then_some(own)
}

/// A Service's pod selector, if it has a non-empty one (an empty one selects nothing).
pub fn service_selector(
    service: &k8s_openapi::api::core::v1::Service,
) -> Option<&BTreeMap<String, String>> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
}

/// What names an object: (kind, name, namespace).
pub fn identity(object: &Object) -> (String, String, Option<String>) {
    (
        object.kind.clone(),
        object.name.clone(),
        object.namespace.clone(),
    )
}

/// A map key as one JSON-pointer segment.
pub fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
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

/// Training by its labels or its name.
pub fn is_training(object: &Object) -> bool {
    label_values(object).iter().any(|v| v.contains("train")) || object.name.contains("train")
}

/// One Resource or ContainerResource metric of an HPA.
pub struct ResourceMetric {
    /// The resource (`cpu`, `memory`).
    pub name: String,
    /// The container a ContainerResource metric is computed from.
    pub container: Option<String>,
    /// `Utilization`, `AverageValue`, …
    pub target_type: String,
}

/// The Resource and ContainerResource metrics of an HPA, in spec order.
pub fn resource_metrics(hpa: &HorizontalPodAutoscaler) -> Vec<ResourceMetric> {
    hpa.spec
        .metrics
        .iter()
        .flatten()
        .filter_map(|metric| {
            if let Some(resource) = &metric.resource {
                Some(ResourceMetric {
                    name: resource.name.clone(),
                    container: None,
                    target_type: resource.target.type_.clone(),
                })
            } else {
                metric
                    .container_resource
                    .as_ref()
                    .map(|resource| ResourceMetric {
                        name: resource.name.clone(),
                        container: Some(resource.container.clone()),
                        target_type: resource.target.type_.clone(),
                    })
            }
        })
        .collect()
}

/// A KEDA trigger's metadata value, trimmed; `None` when absent or blank.
pub fn trigger_setting<'t>(trigger: &'t KedaTrigger, name: &str) -> Option<&'t str> {
    trigger
        .metadata
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}
