//! Bounded waits on the cluster: [`wait_for`] watches an object until a condition
//! holds and says what it last saw when time runs out, [`within`] bounds any future,
//! [`poll_until`] asks again and again where no watch is possible; the predicates
//! here are what the suite waits for, and [`describe_pod`] what it says of a pod.

use super::error::EnvironmentError;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::Api;
use std::future::Future;
use std::time::{Duration, Instant};

/// Waits until `condition` holds for the named object, at most `budget`. On timeout
/// the error says what was awaited and describes the object as last seen. A watch
/// that breaks (API server restart, expired resource version) is re-established
/// within the same budget.
pub async fn wait_for<K, C>(
    api: &Api<K>,
    name: &str,
    what: &str,
    budget: Duration,
    condition: C,
    describe: impl Fn(Option<&K>) -> String,
) -> Result<Option<K>, EnvironmentError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    C: kube::runtime::wait::Condition<K> + Clone,
{
    crate::progress::waiting(what, Some(budget));
    let deadline = tokio::time::Instant::now() + budget;
    loop {
        let attempt = tokio::time::timeout_at(
            deadline,
            kube::runtime::wait::await_condition(api.clone(), name, condition.clone()),
        )
        .await;
        match attempt {
            Ok(Ok(object)) => return Ok(object),
            Ok(Err(e)) => {
                tracing::warn!(%e, what, "watch broke while waiting; re-establishing it");
                eprintln!("watch broke while waiting for {what}: {e}; re-establishing it");
                // A short pause so that a refusing API server is not hammered.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(_) => {
                let last = api.get_opt(name).await.ok().flatten();
                return Err(EnvironmentError::Timeout {
                    what: what.into(),
                    budget,
                    last_seen: describe(last.as_ref()),
                });
            }
        }
    }
}

/// Runs `future` with a budget, naming what it was for if it runs out.
pub async fn within<T>(
    budget: Duration,
    what: &str,
    future: impl Future<Output = T>,
) -> Result<T, EnvironmentError> {
    crate::progress::waiting(what, Some(budget));
    tokio::time::timeout(budget, future)
        .await
        .map_err(|_| EnvironmentError::Timeout {
            what: what.into(),
            budget,
            last_seen: "-".into(),
        })
}

/// For APIs that cannot be watched (metrics.k8s.io): asks again every `every` until
/// `attempt` yields something or `budget` runs out.
pub async fn poll_until<T, F, Fut>(budget: Duration, every: Duration, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    // Checked: a budget past the clock's range means "no deadline", never a panic.
    let deadline = Instant::now().checked_add(budget);
    loop {
        if let Some(value) = attempt().await {
            return Some(value);
        }
        if deadline.is_some_and(|deadline| Instant::now() + every > deadline) {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

pub fn deployment_available(deployment: &Deployment) -> bool {
    deployment
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")
            })
        })
}

pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A pod as [`wait_for`] reports it last seen: phase, node and why containers wait.
pub fn describe_pod(pod: Option<&Pod>) -> String {
    let Some(pod) = pod else { return "gone".into() };
    let status = pod.status.as_ref();
    let waiting: Vec<String> = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c.state.as_ref().and_then(|s| s.waiting.as_ref()).map(|w| {
                format!(
                    "{}: {} {}",
                    c.name,
                    w.reason.clone().unwrap_or_default(),
                    w.message.clone().unwrap_or_default()
                )
            })
        })
        .collect();
    format!(
        "phase {} on {} {}",
        status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| "no node".into()),
        waiting.join("; ")
    )
}

/// Whether the aggregated API `name` (an APIService, `v1beta1.external.metrics.k8s.io`)
/// reports Available=True.
pub async fn apiservice_available(client: &kube::Client, name: &str) -> bool {
    let resource = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk("apiregistration.k8s.io", "v1", "APIService"),
        "apiservices",
    );
    let api: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &resource);
    api.get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|o| o.data.pointer("/status/conditions").cloned())
        .and_then(|c| c.as_array().cloned())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.get("type").and_then(serde_json::Value::as_str) == Some("Available")
                    && c.get("status").and_then(serde_json::Value::as_str) == Some("True")
            })
        })
}
