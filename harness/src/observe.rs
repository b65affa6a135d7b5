//! The timeline recorder: watches on the test namespace (scale targets, HPAs, pods,
//! ResourceQuotas, events) feed a [`Timeline`]; the probe adds markers. No polling
//! loops: every sample is a watch event, stamped when it arrived. Also where a pod
//! stands with the scheduler ([`Placement`]), read from the API or from a timeline.

use crate::cluster::TestNamespace;
use crate::timeline::{
    ConditionState, ContainerRecommendation, ContainerResources, MetricReading, Observation,
    Timeline,
};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Pod, ResourceQuota};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::Api;
use kube::api::DynamicObject;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Records one test's timeline until [`Recorder::finish`].
pub struct Recorder {
    timeline: Arc<Mutex<Timeline>>,
    /// Signalled on every new sample, for [`Recorder::caught_up`].
    changed: Arc<tokio::sync::Notify>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Where [`Recorder::finish`] saves the timeline.
    timelines: PathBuf,
    /// Feeds the timeline: kept for watches a probe adds ([`Recorder::also_watch`]).
    sink: Sink,
}

impl Recorder {
    /// Starts watching `namespace`. Samples already present are recorded at t≈0; the
    /// timeline is saved as `timelines/<name>.json`.
    pub fn start(namespace: &TestNamespace, name: &str, timelines: &Path) -> Recorder {
        let timeline = Arc::new(Mutex::new(Timeline::new(
            name,
            chrono::Utc::now().to_rfc3339(),
        )));
        let started = Instant::now();
        let client = namespace.client();
        let ns = namespace.name.as_str();
        let changed = Arc::new(tokio::sync::Notify::new());
        let sink = Sink {
            timeline: timeline.clone(),
            changed: changed.clone(),
            started,
        };
        let tasks = vec![
            spawn_watch(
                Api::<Deployment>::namespaced(client.clone(), ns),
                sink.clone(),
                deployment_observation,
            ),
            spawn_watch(
                Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns),
                sink.clone(),
                hpa_observation,
            ),
            spawn_watch(
                Api::<Pod>::namespaced(client.clone(), ns),
                sink.clone(),
                pod_observation,
            ),
            spawn_watch(
                Api::<ResourceQuota>::namespaced(client.clone(), ns),
                sink.clone(),
                quota_observation,
            ),
            spawn_watch(
                Api::<Event>::namespaced(client, ns),
                sink.clone(),
                event_observation,
            ),
        ];
        Recorder {
            timeline,
            changed,
            started,
            tasks,
            timelines: timelines.to_path_buf(),
            sink,
        }
    }

    /// Adds a watch of the probe's own (pods' resources, VPAs) to the timeline, until
    /// [`Recorder::finish`]; repeats of an object's last observation are dropped.
    pub fn also_watch<K>(&mut self, api: Api<K>, observe: fn(&K) -> Option<(String, Observation)>)
    where
        K: kube::Resource
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        self.tasks
            .push(spawn_watch(api, self.sink.clone(), observe));
    }

    /// Seconds since the recorder started.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Adds a probe marker (`baseline`, `load-start`, `load-stop`) and returns its time.
    pub fn mark(&self, label: &str) -> f64 {
        crate::progress::stage(label);
        let t = self.now();
        push(
            &self.timeline,
            t,
            Observation::Marker {
                label: label.into(),
            },
        );
        t
    }

    /// Waits (at most `budget`) until the recorded timeline satisfies `seen`: a probe
    /// that saw a state through its own watch lets the recorder's watches catch up
    /// before it stops them. Returns whether it did.
    pub async fn caught_up(
        &self,
        budget: std::time::Duration,
        seen: impl Fn(&Timeline) -> bool,
    ) -> bool {
        crate::progress::waiting("the timeline's watches to catch up", Some(budget));
        let deadline = tokio::time::Instant::now() + budget;
        loop {
            let notified = self.changed.notified();
            if seen(&self.snapshot()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    pub fn snapshot(&self) -> Timeline {
        self.timeline.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Stops the watches and writes the timeline to `<timelines>/<name>.json` (its path
    /// is then in `saved_to`, for the verdict's evidence).
    pub fn finish(self) -> Timeline {
        for task in &self.tasks {
            task.abort();
        }
        let mut timeline = self.snapshot();
        timeline.samples.sort_by(|a, b| a.t.total_cmp(&b.t));
        match save_in(&self.timelines, &timeline) {
            Ok(path) => {
                eprintln!("timeline written to {}", path.display());
                timeline.saved_to = Some(path.display().to_string());
            }
            Err(e) => eprintln!("could not write the timeline: {e}"),
        }
        timeline
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Where timelines go unless the caller chose (the grader's `--out DIR/timelines`):
/// `$AUTOSCALE_CONFORMANCE_TIMELINES`, else `<target>/e2e-timelines` (`$CARGO_TARGET_DIR`,
/// else the crate's `target/`). The live tests save there.
pub fn default_timelines_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AUTOSCALE_CONFORMANCE_TIMELINES") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_MANIFEST_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join("target")
        });
    base.join("e2e-timelines")
}

/// Writes `timeline` to `dir/<name>.json` (the name made file-safe).
pub fn save_in(dir: &Path, timeline: &Timeline) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let file: String = timeline
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{file}.json"));
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(timeline).map_err(std::io::Error::other)?,
    )?;
    Ok(path)
}

fn push(timeline: &Mutex<Timeline>, t: f64, what: Observation) {
    if let Ok(mut timeline) = timeline.lock() {
        timeline.push(t, what);
    }
}

#[derive(Clone)]
struct Sink {
    timeline: Arc<Mutex<Timeline>>,
    changed: Arc<tokio::sync::Notify>,
    started: Instant,
}

/// One watch feeding the timeline; repeats of the last observation per object are dropped.
fn spawn_watch<K>(
    api: Api<K>,
    sink: Sink,
    observe: fn(&K) -> Option<(String, Observation)>,
) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    tokio::spawn(async move {
        let mut last: HashMap<String, Observation> = HashMap::new();
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(item) = stream.next().await {
            let Ok(object) = item else { continue };
            let Some((key, observation)) = observe(&object) else {
                continue;
            };
            if last.get(&key) == Some(&observation) {
                continue;
            }
            last.insert(key, observation.clone());
            push(
                &sink.timeline,
                sink.started.elapsed().as_secs_f64(),
                observation,
            );
            sink.changed.notify_waiters();
        }
    })
}

fn deployment_observation(deployment: &Deployment) -> Option<(String, Observation)> {
    let name = deployment.metadata.name.clone()?;
    let status = deployment.status.as_ref();
    Some((
        name.clone(),
        Observation::Scale {
            target: name,
            replicas: deployment.spec.replicas.unwrap_or(1),
            ready_replicas: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            manager: replicas_manager(
                deployment
                    .metadata
                    .managed_fields
                    .as_deref()
                    .unwrap_or_default(),
            ),
        },
    ))
}

/// The field manager that owns `spec.replicas`: the last writer of that field.
pub fn replicas_manager(entries: &[ManagedFieldsEntry]) -> Option<String> {
    entries
        .iter()
        .filter(|e| {
            e.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())
        })
        .max_by_key(|e| e.time.as_ref().map(|t| t.0))
        .and_then(|e| e.manager.clone())
}

fn hpa_observation(hpa: &HorizontalPodAutoscaler) -> Option<(String, Observation)> {
    let name = hpa.metadata.name.clone()?;
    let status = hpa.status.as_ref()?;
    let metrics = status
        .current_metrics
        .iter()
        .flatten()
        .filter_map(|m| {
            if let Some(resource) = &m.resource {
                return Some(MetricReading {
                    name: resource.name.clone(),
                    utilization: resource.current.average_utilization,
                    value: resource.current.average_value.as_ref().map(|q| q.0.clone()),
                });
            }
            let (name, current) = match (&m.pods, &m.object, &m.external) {
                (Some(p), _, _) => (p.metric.name.clone(), &p.current),
                (_, Some(o), _) => (o.metric.name.clone(), &o.current),
                (_, _, Some(e)) => (e.metric.name.clone(), &e.current),
                _ => return None,
            };
            let value = current
                .average_value
                .as_ref()
                .or(current.value.as_ref())
                .map(|q| q.0.clone());
            Some(MetricReading {
                name,
                utilization: current.average_utilization,
                value,
            })
        })
        .collect();
    let conditions = status
        .conditions
        .iter()
        .flatten()
        .map(|c| ConditionState {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
        })
        .collect();
    Some((
        name.clone(),
        Observation::Hpa {
            name,
            current_replicas: status.current_replicas.unwrap_or(0),
            desired_replicas: status.desired_replicas,
            metrics,
            conditions,
        },
    ))
}

fn pod_observation(pod: &Pod) -> Option<(String, Observation)> {
    let name = pod.metadata.name.clone()?;
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let phase = if pod.metadata.deletion_timestamp.is_some() {
        "Terminating".to_string()
    } else {
        status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into())
    };
    let not_scheduled = status.and_then(|s| s.conditions.as_ref()).and_then(|c| {
        c.iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    });
    let reason = not_scheduled.and_then(|c| c.reason.clone());
    let message = not_scheduled.and_then(|c| c.message.clone());
    Some((
        name.clone(),
        Observation::Pod {
            name,
            phase,
            ready,
            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            reason,
            message,
        },
    ))
}

/// A pod's containers' requests and limits, and the VPA admission controller's
/// `vpaUpdates` annotation (what it set, and from which VPA).
pub fn pod_resources_observation(pod: &Pod) -> Option<(String, Observation)> {
    let name = pod.metadata.name.clone()?;
    let quantities = |m: Option<&BTreeMap<String, Quantity>>| {
        m.into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect()
    };
    let containers = pod
        .spec
        .as_ref()?
        .containers
        .iter()
        .map(|c| ContainerResources {
            name: c.name.clone(),
            requests: quantities(c.resources.as_ref().and_then(|r| r.requests.as_ref())),
            limits: quantities(c.resources.as_ref().and_then(|r| r.limits.as_ref())),
        })
        .collect();
    let vpa_updates = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("vpaUpdates"))
        .cloned();
    Some((
        format!("{name}/resources"),
        Observation::PodResources {
            name,
            containers,
            vpa_updates,
        },
    ))
}

/// A VerticalPodAutoscaler's recommendation and conditions (its CRD's status, read
/// untyped: the submission's model of a VPA has no status).
pub fn vpa_observation(vpa: &DynamicObject) -> Option<(String, Observation)> {
    let name = vpa.metadata.name.clone()?;
    let status = vpa.data.get("status");
    let recommendation = status
        .and_then(|s| s.pointer("/recommendation/containerRecommendations"))
        .and_then(|r| serde_json::from_value::<Vec<ContainerRecommendation>>(r.clone()).ok())
        .unwrap_or_default();
    let conditions = status
        .and_then(|s| s.get("conditions"))
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| ConditionState {
            type_: c["type"].as_str().unwrap_or_default().to_string(),
            status: c["status"].as_str().unwrap_or_default().to_string(),
            reason: c["reason"].as_str().map(str::to_string),
        })
        .collect();
    Some((
        name.clone(),
        Observation::Vpa {
            name,
            recommendation,
            conditions,
        },
    ))
}

fn quota_observation(quota: &ResourceQuota) -> Option<(String, Observation)> {
    let name = quota.metadata.name.clone()?;
    let status = quota.status.as_ref();
    let quantities = |m: Option<&BTreeMap<String, Quantity>>| {
        m.into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect()
    };
    Some((
        name.clone(),
        Observation::Quota {
            name,
            hard: quantities(status.and_then(|s| s.hard.as_ref())),
            used: quantities(status.and_then(|s| s.used.as_ref())),
        },
    ))
}

fn event_observation(event: &Event) -> Option<(String, Observation)> {
    let key = format!(
        "{}/{}",
        event.metadata.uid.clone().unwrap_or_default(),
        event.count.unwrap_or(1)
    );
    let involved = &event.involved_object;
    Some((
        key,
        Observation::Event {
            object: format!(
                "{}/{}",
                involved.kind.clone().unwrap_or_default(),
                involved.name.clone().unwrap_or_default()
            ),
            reason: event.reason.clone().unwrap_or_default(),
            message: event.message.clone().unwrap_or_default(),
            type_: event.type_.clone().unwrap_or_default(),
        },
    ))
}

/// Where a pod stands with the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    Bound(String),
    Unschedulable(String),
    Waiting,
}

/// Where `pod` stands with the scheduler now: bound to its node, refused
/// (PodScheduled=False, Unschedulable, with the scheduler's message), or waiting.
pub fn placement(pod: &Pod) -> Placement {
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        return Placement::Bound(node);
    }
    let unschedulable = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| {
            c.iter().find(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
        });
    match unschedulable {
        Some(condition) => Placement::Unschedulable(condition.message.clone().unwrap_or_default()),
        None => Placement::Waiting,
    }
}

/// Where pod `name` stood with the scheduler at the end of `timeline`, and since when
/// (the first sample of that standing).
pub fn placement_in(timeline: &Timeline, name: &str) -> Option<(f64, Placement)> {
    let mut current: Option<(f64, Placement)> = None;
    for state in timeline.pod_states(name) {
        let place = match (state.node, state.reason) {
            (Some(node), _) => Placement::Bound(node.to_string()),
            (None, Some("Unschedulable")) => {
                Placement::Unschedulable(state.message.unwrap_or_default().to_string())
            }
            _ => Placement::Waiting,
        };
        let same_kind = current.as_ref().is_some_and(|(_, p)| match (p, &place) {
            (Placement::Unschedulable(_), Placement::Unschedulable(_)) => true,
            (a, b) => a == b,
        });
        if same_kind {
            // Keep the first time, but the scheduler's latest words.
            if let (Some((_, Placement::Unschedulable(m))), Placement::Unschedulable(latest)) =
                (current.as_mut(), &place)
            {
                *m = latest.clone();
            }
        } else {
            current = Some((state.t, place));
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_writer_of_spec_replicas_owns_them() {
        let entries: Vec<ManagedFieldsEntry> = serde_json::from_value(serde_json::json!([
            {"manager": "autoscale-conformance", "operation": "Apply", "time": "2026-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale", "time": "2026-01-01T00:01:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "time": "2026-01-01T00:02:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:replicas": {}}}}
        ]))
        .unwrap();
        assert_eq!(
            replicas_manager(&entries).as_deref(),
            Some("kube-controller-manager")
        );
        assert_eq!(
            replicas_manager(&entries[..1]).as_deref(),
            Some("autoscale-conformance")
        );
        assert_eq!(replicas_manager(&entries[2..]), None);
    }
}
