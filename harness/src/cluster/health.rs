//! What the environment did while the probes ran: outages of what the preflight found
//! working. A probe that fails while the metrics API is gone, the API server does not
//! answer or kube-controller-manager has stopped reconciling has not judged the
//! submission; grading turns such a "fail" into an "error" that names the outage.
//!
//! Watched every [`EVERY`]:
//! - each aggregated metrics API that was Available at the start (its APIService's
//!   `Available` condition: metrics-server, prometheus-adapter, KEDA);
//! - the API server itself (a request that errs or takes over [`ANSWER_WITHIN`]);
//! - kube-controller-manager, through a canary: a Deployment of 0 replicas in the watch's
//!   own namespace whose spec is changed every [`EVERY`]; the deployment controller
//!   records each change (`status.observedGeneration`), unless it has stopped. (Its leader
//!   Lease cannot tell: a single controller-manager may run without leader election.)

use super::{Cluster, TestNamespace};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How often each part is checked.
const EVERY: Duration = Duration::from_secs(3);
/// A request the API server has not answered by then counts as unanswered.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// kube-controller-manager reconciles a Deployment's spec change within a second when
/// it runs; this long without it is an outage.
const RECONCILE_WITHIN: Duration = Duration::from_secs(20);
/// The aggregated APIs a probe depends on.
const METRICS_APIS: [&str; 3] = [
    "v1beta1.metrics.k8s.io",
    "v1beta1.custom.metrics.k8s.io",
    "v1beta1.external.metrics.k8s.io",
];
const CANARY: &str = "autoscale-conformance-canary";

/// One outage: what was down, why (the last reason seen), and when.
#[derive(Debug, Clone)]
pub struct Outage {
    pub what: String,
    pub detail: String,
    pub from: Instant,
    /// `None`: still down.
    pub to: Option<Instant>,
}

impl Outage {
    /// Whether it overlaps the time since `since`.
    fn since(&self, since: Instant) -> bool {
        self.to.is_none_or(|to| to >= since)
    }

    /// "the API server (did not answer within 5 s) for 12 s", or "…, still down".
    pub fn describe(&self) -> String {
        match self.to {
            Some(to) => format!(
                "{} ({}) for {:.0} s",
                self.what,
                self.detail,
                (to - self.from).as_secs_f64()
            ),
            None => format!("{} ({}), still down", self.what, self.detail),
        }
    }
}

/// The outages seen so far, opened and closed as checks fail and pass.
#[derive(Debug, Default)]
struct Outages {
    open: BTreeMap<String, Outage>,
    closed: Vec<Outage>,
}

impl Outages {
    fn down(&mut self, what: &str, detail: String) {
        let now = Instant::now();
        self.open
            .entry(what.to_string())
            .and_modify(|o| o.detail.clone_from(&detail))
            .or_insert(Outage {
                what: what.to_string(),
                detail,
                from: now,
                to: None,
            });
    }

    fn up(&mut self, what: &str) {
        if let Some(mut outage) = self.open.remove(what) {
            outage.to = Some(Instant::now());
            self.closed.push(outage);
        }
    }

    /// The outages that have not ended.
    fn open(&self) -> Vec<Outage> {
        self.open.values().cloned().collect()
    }

    fn since(&self, since: Instant) -> Vec<Outage> {
        self.closed
            .iter()
            .chain(self.open.values())
            .filter(|o| o.since(since))
            .cloned()
            .collect()
    }
}

/// Watches the environment until dropped.
pub struct EnvironmentWatch {
    checks: Arc<Checks>,
    task: tokio::task::JoinHandle<()>,
}

impl EnvironmentWatch {
    /// Starts watching what works now. The canary's namespace is the watch's own; without
    /// it (the API server refused it), the controller-manager is not watched.
    pub async fn start(cluster: &Cluster) -> EnvironmentWatch {
        let checks = Arc::new(Checks {
            apis: available_metrics_apis(cluster).await,
            canary: tokio::sync::Mutex::new(Canary::create(cluster).await),
            cluster: cluster.clone(),
            outages: Mutex::new(Outages::default()),
            open: tokio::sync::watch::Sender::new(0),
        });
        let task = tokio::spawn(watch(checks.clone()));
        EnvironmentWatch { checks, task }
    }

    /// The outages that overlap the time since `since` (a probe's start).
    pub fn outages_since(&self, since: Instant) -> Vec<Outage> {
        self.checks
            .outages
            .lock()
            .map(|o| o.since(since))
            .unwrap_or_default()
    }

    /// Waits (at most `within`) until the watch sees nothing down: a probe tried again
    /// while its outage lasts would only err again. What is still down when `within`
    /// runs out is the error.
    pub async fn whole_again(&self, within: Duration) -> Result<(), Vec<Outage>> {
        let mut open = self.checks.open.subscribe();
        if let Ok(Ok(_)) = tokio::time::timeout(within, open.wait_for(|n| *n == 0)).await {
            return Ok(());
        }
        Err(self
            .checks
            .outages
            .lock()
            .map(|o| o.open())
            .unwrap_or_default())
    }

    /// Checks everything once more, now, giving kube-controller-manager up to
    /// [`RECONCILE_WITHIN`] to reconcile a fresh change: before a probe's "fail" stands.
    /// An outage that began just before the probe failed (its pods' ServiceAccount never
    /// made, a metrics API just gone) has not lasted long enough for the watch to see it.
    pub async fn confirm(&self) {
        self.checks.round(Round::Confirm).await;
    }
}

impl Drop for EnvironmentWatch {
    fn drop(&mut self) {
        // The canary's namespace goes with the last reference to the checks.
        self.task.abort();
    }
}

/// What is watched, and what was seen.
struct Checks {
    cluster: Cluster,
    /// The aggregated APIs that were Available at the start.
    apis: Vec<String>,
    canary: tokio::sync::Mutex<Option<Canary>>,
    outages: Mutex<Outages>,
    /// How many outages are open, sent on every check: what [`EnvironmentWatch::whole_again`] waits on.
    open: tokio::sync::watch::Sender<usize>,
}

/// A round of checks: a periodic one, or one that confirms the environment before a
/// failure is blamed on the submission.
#[derive(Clone, Copy)]
enum Round {
    Periodic,
    Confirm,
}

impl Checks {
    fn record(&self, what: &str, result: Result<(), String>) {
        if let Ok(mut outages) = self.outages.lock() {
            match result {
                Ok(()) => outages.up(what),
                Err(detail) => outages.down(what, detail),
            }
            self.open.send_replace(outages.open.len());
        }
    }

    async fn round(&self, round: Round) {
        let answered = answer(self.cluster.client.apiserver_version())
            .await
            .map(|_| ());
        let down = answered.is_err();
        self.record("the API server", answered);
        if down {
            return;
        }
        let services: Api<APIService> = Api::all(self.cluster.client.clone());
        for name in &self.apis {
            let result = match answer(services.get(name)).await {
                Ok(service) => availability(&service),
                Err(_) => continue,
            };
            self.record(&format!("APIService {name}"), result);
        }
        let mut canary = self.canary.lock().await;
        if let Some(canary) = canary.as_mut() {
            let result = match round {
                Round::Confirm => canary.reconciles_within(RECONCILE_WITHIN).await,
                Round::Periodic => canary.check().await,
            };
            self.record("kube-controller-manager", result);
        }
    }
}

async fn watch(checks: Arc<Checks>) {
    loop {
        tokio::time::sleep(EVERY).await;
        checks.round(Round::Periodic).await;
    }
}

async fn available_metrics_apis(cluster: &Cluster) -> Vec<String> {
    let api: Api<APIService> = Api::all(cluster.client.clone());
    let mut available = Vec::new();
    for name in METRICS_APIS {
        if let Ok(Ok(service)) = tokio::time::timeout(ANSWER_WITHIN, api.get(name)).await
            && availability(&service).is_ok()
        {
            available.push(name.to_string());
        }
    }
    available
}

/// `Ok` when the APIService's `Available` condition is True; else its reason and message.
fn availability(service: &APIService) -> Result<(), String> {
    let condition = service
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Available"));
    match condition {
        Some(c) if c.status == "True" => Ok(()),
        Some(c) => Err(format!(
            "Available={}: {} {}",
            c.status,
            c.reason.as_deref().unwrap_or_default(),
            c.message.as_deref().unwrap_or_default()
        )
        .trim()
        .to_string()),
        None => Err("no Available condition".into()),
    }
}

/// A Deployment of 0 replicas that only kube-controller-manager's deployment controller
/// touches, in a namespace of its own.
struct Canary {
    namespace: TestNamespace,
    /// When its spec last changed, and whether the controller has since caught up.
    changed: Instant,
}

impl Canary {
    async fn create(cluster: &Cluster) -> Option<Canary> {
        let namespace = cluster.namespace("health").await.ok()?;
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": CANARY},
            "spec": {
                "replicas": 0,
                "minReadySeconds": 0,
                "selector": {"matchLabels": {"app": CANARY}},
                "template": {
                    "metadata": {"labels": {"app": CANARY}},
                    "spec": {"containers": [{"name": "canary", "image": super::INFERENCE_IMAGE}]}
                }
            }
        }))
        .ok()?;
        namespace
            .api::<Deployment>()
            .create(&PostParams::default(), &deployment)
            .await
            .ok()?;
        Some(Canary {
            namespace,
            changed: Instant::now(),
        })
    }

    /// `Ok` while the controller keeps up with the canary's spec; changes it again once
    /// it has. Errs with how long it has not reconciled.
    async fn check(&mut self) -> Result<(), String> {
        let api = self.namespace.api::<Deployment>();
        let Ok(Ok(deployment)) = tokio::time::timeout(ANSWER_WITHIN, api.get(CANARY)).await else {
            // The API server's own outage is reported by its check.
            return Ok(());
        };
        let generation = deployment.metadata.generation.unwrap_or_default();
        let observed = deployment
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .unwrap_or_default();
        if observed >= generation {
            let next = deployment.spec.min_ready_seconds.unwrap_or(0) ^ 1;
            let patch = json!({"spec": {"minReadySeconds": next}});
            if api
                .patch(CANARY, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.changed = Instant::now();
            }
            return Ok(());
        }
        let waiting = self.changed.elapsed();
        if waiting > RECONCILE_WITHIN {
            return Err(format!(
                "did not reconcile a Deployment's spec change for {:.0} s",
                waiting.as_secs_f64()
            ));
        }
        Ok(())
    }

    /// Changes the canary's spec and waits up to `within` for the controller to record it.
    async fn reconciles_within(&mut self, within: Duration) -> Result<(), String> {
        let api = self.namespace.api::<Deployment>();
        let Ok(Ok(deployment)) = tokio::time::timeout(ANSWER_WITHIN, api.get(CANARY)).await else {
            return Ok(());
        };
        let next = deployment.spec.min_ready_seconds.unwrap_or(0) ^ 1;
        let patch = json!({"spec": {"minReadySeconds": next}});
        let Ok(changed) = api
            .patch(CANARY, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        else {
            return Ok(());
        };
        self.changed = Instant::now();
        let generation = changed.metadata.generation.unwrap_or_default();
        while self.changed.elapsed() < within {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Ok(Ok(d)) = tokio::time::timeout(ANSWER_WITHIN, api.get(CANARY)).await
                && d.status
                    .and_then(|s| s.observed_generation)
                    .unwrap_or_default()
                    >= generation
            {
                return Ok(());
            }
        }
        Err(format!(
            "did not reconcile a Deployment's spec change within {} s",
            within.as_secs()
        ))
    }
}

/// The API server's answer, or why there was none.
async fn answer<T>(request: impl Future<Output = Result<T, kube::Error>>) -> Result<T, String> {
    match tokio::time::timeout(ANSWER_WITHIN, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(kube::Error::Api(response))) => {
            Err(format!("{} {}", response.code, response.message))
        }
        Ok(Err(error)) => Err(format!("did not answer: {error}")),
        Err(_) => Err(format!(
            "did not answer within {} s",
            ANSWER_WITHIN.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_outage_counts_for_the_probes_it_overlaps_and_closes_when_it_ends() {
        let mut outages = Outages::default();
        let before = Instant::now();
        tokio::time::advance(Duration::from_secs(10)).await;
        outages.down(
            "APIService v1beta1.metrics.k8s.io",
            "Available=False: MissingEndpoints".into(),
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        outages.down(
            "APIService v1beta1.metrics.k8s.io",
            "Available=False: FailedDiscoveryCheck".into(),
        );
        assert_eq!(outages.since(before).len(), 1, "one outage, seen twice");
        assert!(
            outages.since(before)[0]
                .describe()
                .contains("FailedDiscoveryCheck")
        );
        assert!(
            outages.since(before)[0]
                .describe()
                .ends_with(", still down")
        );
        assert_eq!(outages.open().len(), 1, "still down");
        tokio::time::advance(Duration::from_secs(4)).await;
        outages.up("APIService v1beta1.metrics.k8s.io");
        assert!(outages.open().is_empty(), "ended");
        let closed = outages.since(before);
        assert_eq!(closed.len(), 1);
        assert!(
            closed[0].describe().contains("for 10 s"),
            "{}",
            closed[0].describe()
        );
        // A probe that started after it ended did not see it.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(outages.since(Instant::now()).is_empty());
        // Up without an outage is nothing.
        outages.up("the API server");
        assert_eq!(outages.since(before).len(), 1);
    }
}
