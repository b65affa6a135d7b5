//! A namespace per test, always cleaned up: a unique name, the sandbox quota that
//! caps what a submission may create in it, an expiry its owner renews while it lives
//! (so that a killed run's namespaces are swept, and a live one's never), and deletion
//! with a bounded wait that reports what finalizers still hold; on drop too, also while
//! unwinding from a panic.

use super::apply::{self, Applied, ApplyError};
use super::client::Cluster;
use super::error::EnvironmentError;
use super::identity;
use super::{
    EXPIRES_ANNOTATION, FIELD_MANAGER, RESERVED_NAME_PREFIX, SANDBOX_FIELD_MANAGER, SUITE_LABEL,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a namespace outlives its owner's last renewal before any run may sweep it.
pub const NAMESPACE_LEASE: Duration = Duration::from_secs(15 * 60);
/// How often the owner renews it: a probe may wait far longer than the lease in the
/// CPU ledger (a grade's last probes start some 30 minutes in).
const LEASE_RENEWAL: Duration = Duration::from_secs(4 * 60);

impl Cluster {
    /// A fresh namespace for one test, named after it and unique; removed on drop.
    pub async fn namespace(&self, test: &str) -> Result<TestNamespace, EnvironmentError> {
        self.sweep_expired().await;
        let name = unique_namespace_name(test);
        let namespace: Namespace = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "labels": {
                    SUITE_LABEL: "true",
                    "autoscale-conformance/test": label_value(test),
                    // A submission is untrusted: no privileged pods, host namespaces or
                    // hostPath volumes (Pod Security "baseline"), whatever it asks for.
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "baseline",
                },
                "annotations": { EXPIRES_ANNOTATION: lease_expiry() },
            }
        }))
        .expect("static namespace object");
        Api::<Namespace>::all(self.client.clone())
            .create(
                &PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                },
                &namespace,
            )
            .await
            .map_err(EnvironmentError::api(format!("creating namespace {name}")))?;
        let mut namespace = TestNamespace {
            cluster: self.clone(),
            applier: self.client.clone(),
            serves: None,
            cluster_scoped: Vec::new(),
            after_namespace: Vec::new(),
            cleanup_budget: Duration::from_secs(45),
            lease: Some(tokio::spawn(renew_lease_forever(
                self.client.clone(),
                name.clone(),
            ))),
            name,
        };
        // From here on, a failure drops `namespace`, which deletes it.
        namespace.applier = identity::grant_applier(
            &self.client,
            &self.config,
            &namespace.name,
            Duration::from_secs(20),
        )
        .await?;
        apply::apply_as_is(
            &namespace.cluster.client,
            &namespace.name,
            SANDBOX_FIELD_MANAGER,
            &sandbox_quota(),
        )
        .await?;
        Ok(namespace)
    }

    /// Deletes test namespaces whose owner stopped renewing them (a run killed by a
    /// timeout cannot clean up after itself). Best effort: failures only log.
    async fn sweep_expired(&self) {
        let api = Api::<Namespace>::all(self.client.clone());
        let Ok(list) = api
            .list(&ListParams::default().labels(&format!("{SUITE_LABEL}=true")))
            .await
        else {
            return;
        };
        let now = chrono::Utc::now();
        for namespace in list.items {
            let expired = namespace
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(EXPIRES_ANNOTATION))
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t < now);
            if expired && namespace.metadata.deletion_timestamp.is_none() {
                let name = namespace.metadata.name.unwrap_or_default();
                tracing::warn!(namespace = %name, "sweeping an expired test namespace left by an earlier run");
                let _ = api.delete(&name, &DeleteParams::background()).await;
            }
        }
    }
}

/// Caps what a submission can create in its namespace. Object counts only: a compute
/// quota would refuse every pod without requests, which is what some criteria test.
/// Generous for any HPA of the exercise (maxReplicas 10-20), tight for a runaway.
pub fn sandbox_quota() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": { "name": format!("{RESERVED_NAME_PREFIX}-quota") },
        "spec": { "hard": {
            "pods": "40",
            "services": "10",
            "services.nodeports": "0",
            "services.loadbalancers": "0",
            "persistentvolumeclaims": "0",
            "count/jobs.batch": "10",
            "count/deployments.apps": "10",
            "count/statefulsets.apps": "5",
            "configmaps": "20",
            "secrets": "20",
        }}
    })
}

static NAMESPACE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// `ac-<test>-<pid><counter><time>`: a DNS label, unique across parallel processes.
pub fn unique_namespace_name(test: &str) -> String {
    let test = label_value(test.rsplit("::").next().unwrap_or(test))
        .replace('_', "-")
        .to_lowercase();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let suffix = format!(
        "{:x}{:x}{:x}",
        std::process::id(),
        NAMESPACE_COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos & 0xfff
    );
    let room = 63 - "ac--".len() - suffix.len();
    let test: String = test.chars().take(room).collect();
    format!("ac-{}-{suffix}", test.trim_matches('-'))
}

/// A label value: at most 63 characters of `[A-Za-z0-9_.-]`.
fn label_value(text: &str) -> String {
    let value: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    value
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// A namespace owned by one test. Dropping it deletes it (also while unwinding from a
/// panic), waits a bounded time and reports anything held by finalizers.
pub struct TestNamespace {
    pub cluster: Cluster,
    /// Impersonates the namespace's applier ([`identity`]): a submission's objects are
    /// applied as it, never as admin.
    applier: Client,
    pub name: String,
    /// The probe's namespace this one works for (a load generator's beside it): its pods
    /// are counted as that probe's in the CPU ledger.
    pub serves: Option<String>,
    /// Cluster-scoped objects the test created (renamed PriorityClasses): deleted too.
    cluster_scoped: Vec<(ApiResource, String)>,
    /// Cluster-scoped objects deleted only once the namespace is gone (test nodes:
    /// their pods must go first, or they would be left on a node that no longer exists).
    after_namespace: Vec<(ApiResource, String)>,
    pub cleanup_budget: Duration,
    /// Renews the namespace's expiry until the namespace is deleted.
    lease: Option<tokio::task::JoinHandle<()>>,
}

/// The expiry annotation's value for a lease renewed now.
fn lease_expiry() -> String {
    let lease = chrono::Duration::from_std(NAMESPACE_LEASE).unwrap_or(chrono::Duration::MAX);
    (chrono::Utc::now() + lease).to_rfc3339()
}

/// Pushes `name`'s expiry forward every [`LEASE_RENEWAL`], until aborted. A missed
/// renewal is retried at the next one: the lease is several renewals long.
async fn renew_lease_forever(client: Client, name: String) {
    loop {
        tokio::time::sleep(LEASE_RENEWAL).await;
        if let Err(error) = renew_lease(&client, &name).await {
            tracing::debug!(namespace = %name, %error, "renewing the namespace's expiry");
        }
    }
}

async fn renew_lease(client: &Client, name: &str) -> Result<(), kube::Error> {
    let patch = json!({"metadata": {"annotations": {EXPIRES_ANNOTATION: lease_expiry()}}});
    Api::<Namespace>::all(client.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
}

impl TestNamespace {
    /// Renews the namespace's expiry now (its owner does every few minutes).
    pub async fn renew_lease(&self) -> Result<(), EnvironmentError> {
        renew_lease(&self.cluster.client, &self.name)
            .await
            .map_err(EnvironmentError::api(format!(
                "renewing the expiry of namespace {}",
                self.name
            )))
    }

    /// When the namespace began to be deleted, if it did before its owner deleted it (a
    /// sweep that took it for a killed run's, a person): everything in it went, so a
    /// probe's verdict in it judged nothing of the submission.
    pub async fn deleted_under_its_owner(&self) -> Option<String> {
        let namespace = Api::<Namespace>::all(self.cluster.client.clone())
            .get_opt(&self.name)
            .await
            .ok()?;
        match namespace {
            None => Some("already gone".into()),
            Some(namespace) => namespace
                .metadata
                .deletion_timestamp
                .map(|at| format!("deletion started at {}", at.0)),
        }
    }

    /// Stops renewing the expiry: the namespace is being deleted.
    fn end_lease(&self) {
        if let Some(lease) = &self.lease {
            lease.abort();
        }
    }

    /// A namespace of its own for the suite's load generator beside this one: the
    /// submission's LimitRange and ResourceQuota govern the student's pods, not the
    /// suite's instrument.
    pub async fn load_namespace(&self) -> Result<TestNamespace, EnvironmentError> {
        let mut load = self
            .cluster
            .namespace(&format!("{}-load", self.name))
            .await?;
        load.serves = Some(self.name.clone());
        Ok(load)
    }

    pub fn client(&self) -> Client {
        self.cluster.client.clone()
    }

    /// The client a submission's objects are applied with: the namespace's applier,
    /// allowed the allowlisted kinds in this namespace only.
    pub fn applier_client(&self) -> Client {
        self.applier.clone()
    }

    /// Registers a cluster-scoped object (a test node) for deletion once the namespace
    /// is gone. Register before creating it: a panic in between then leaves nothing.
    pub fn delete_after_namespace(&mut self, resource: ApiResource, name: impl Into<String>) {
        self.after_namespace.push((resource, name.into()));
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client(), &self.name)
    }

    /// Server-side apply of a submission's objects into this namespace.
    pub async fn apply(&mut self, objects: &[Value]) -> Result<Applied, ApplyError> {
        apply::apply_submission(
            &self.cluster.client,
            &self.applier,
            &self.name,
            &self.cluster.facts.node_images,
            &mut self.cluster_scoped,
            objects,
        )
        .await
    }

    /// Server-side apply of one object of the suite's own (no rewriting) into this namespace.
    pub async fn apply_raw(&self, object: &Value) -> Result<(), EnvironmentError> {
        apply::apply_as_is(&self.cluster.client, &self.name, FIELD_MANAGER, object).await
    }

    /// Deletes the namespace and waits (bounded) until it is gone. Returns what was
    /// still there when the budget ran out: objects held by finalizers, as the
    /// namespace controller reports them.
    pub async fn cleanup(&self) -> Vec<String> {
        self.end_lease();
        let mut stuck = cleanup(
            &self.cluster.client,
            &self.name,
            &self.cluster_scoped,
            self.cleanup_budget,
        )
        .await;
        stuck.extend(
            delete_and_wait(
                &self.cluster.client,
                &self.after_namespace,
                self.cleanup_budget,
            )
            .await,
        );
        stuck
    }
}

async fn cleanup(
    client: &Client,
    name: &str,
    cluster_scoped: &[(ApiResource, String)],
    budget: Duration,
) -> Vec<String> {
    for (resource, object) in cluster_scoped {
        let _ = Api::<DynamicObject>::all_with(client.clone(), resource)
            .delete(object, &DeleteParams::default())
            .await;
    }
    let api = Api::<Namespace>::all(client.clone());
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Vec::new(),
        Err(e) => return vec![format!("could not delete namespace {name}: {e}")],
    }
    let started = Instant::now();
    let gone = tokio::time::timeout(
        budget,
        kube::runtime::wait::await_condition(api.clone(), name, |ns: Option<&Namespace>| {
            ns.is_none()
        }),
    )
    .await;
    if matches!(gone, Ok(Ok(_))) {
        tracing::debug!(
            namespace = name,
            seconds = started.elapsed().as_secs_f64(),
            "namespace deleted"
        );
        return Vec::new();
    }
    let mut stuck = vec![format!(
        "namespace {name} still terminating after {}s",
        budget.as_secs()
    )];
    if let Ok(Some(namespace)) = api.get_opt(name).await {
        for condition in namespace
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
        {
            if condition.status == "True"
                && matches!(
                    condition.type_.as_str(),
                    "NamespaceFinalizersRemaining"
                        | "NamespaceContentRemaining"
                        | "NamespaceDeletionContentFailure"
                )
            {
                stuck.push(format!(
                    "{}: {}",
                    condition.type_,
                    condition.message.unwrap_or_default()
                ));
            }
        }
    }
    stuck
}

/// Deletes cluster-scoped objects and waits (bounded) until each is gone; returns
/// what could not be deleted or was still there when the budget ran out.
async fn delete_and_wait(
    client: &Client,
    objects: &[(ApiResource, String)],
    budget: Duration,
) -> Vec<String> {
    let mut stuck = Vec::new();
    for (resource, name) in objects {
        let api = Api::<DynamicObject>::all_with(client.clone(), resource);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(e) => {
                stuck.push(format!("could not delete {} {name}: {e}", resource.kind));
                continue;
            }
        }
        let gone = tokio::time::timeout(
            budget,
            kube::runtime::wait::await_condition(api, name, |o: Option<&DynamicObject>| {
                o.is_none()
            }),
        )
        .await;
        if !matches!(gone, Ok(Ok(_))) {
            stuck.push(format!(
                "{} {name} still there after {}s",
                resource.kind,
                budget.as_secs()
            ));
        }
    }
    stuck
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        self.end_lease();
        if std::env::var_os("AUTOSCALE_CONFORMANCE_KEEP_NAMESPACES").is_some() {
            eprintln!(
                "keeping namespace {} (AUTOSCALE_CONFORMANCE_KEEP_NAMESPACES is set)",
                self.name
            );
            return;
        }
        // Drop may run inside the test's runtime (possibly single-threaded and busy
        // unwinding): clean up on a thread of our own with its own runtime and client.
        let config = self.cluster.config.clone();
        let name = self.name.clone();
        let cluster_scoped = std::mem::take(&mut self.cluster_scoped);
        let after_namespace = std::mem::take(&mut self.after_namespace);
        let budget = self.cleanup_budget;
        let worker = std::thread::spawn(move || -> Vec<String> {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return vec![format!("no runtime to delete namespace {name}")];
            };
            runtime.block_on(async move {
                match Client::try_from(config) {
                    Ok(client) => {
                        let mut stuck = cleanup(&client, &name, &cluster_scoped, budget).await;
                        stuck.extend(delete_and_wait(&client, &after_namespace, budget).await);
                        stuck
                    }
                    Err(e) => vec![format!("no client to delete namespace {name}: {e}")],
                }
            })
        });
        match worker.join() {
            Ok(stuck) if stuck.is_empty() => {}
            Ok(stuck) => eprintln!(
                "cleanup of {} incomplete:\n  {}",
                self.name,
                stuck.join("\n  ")
            ),
            Err(_) => eprintln!("cleanup of {} panicked", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_unique_dns_labels() {
        let a = unique_namespace_name(
            "hpa_cpu::live_hpa_cpu_reference_scales_up_and_down_stably_within_the_budget_of_its_windows",
        );
        let b = unique_namespace_name(
            "hpa_cpu::live_hpa_cpu_reference_scales_up_and_down_stably_within_the_budget_of_its_windows",
        );
        assert_ne!(a, b);
        for name in [&a, &b] {
            assert!(name.len() <= 63, "{name}");
            assert!(name.starts_with("ac-live-hpa-cpu"), "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(!name.ends_with('-'));
        }
    }
}
