//! Cluster-wide locks on the singletons that probes reconfigure or fill: the
//! custom-metrics adapter's configuration, the GPU pool's devices. A lock is a Lease,
//! held by the probe's namespace, renewed while held, taken over from a stale holder once
//! it expired, released on [`ClusterLock::release`] (or, if the process dies, left to
//! expire). Gradings and tests in other processes queue on it instead of clobbering each
//! other. The Lease protocol is `kube-lease-manager`'s (server-side apply with conflict
//! detection).

use super::FIELD_MANAGER;
use super::error::EnvironmentError;
use kube::Client;
use kube::api::Api;
use std::time::{Duration, Instant};

/// A singleton of the cluster and the Lease that locks it.
#[derive(Debug, Clone, Copy)]
pub struct Singleton {
    pub namespace: &'static str,
    pub lease: &'static str,
    /// For messages: "the custom-metrics adapter".
    pub what: &'static str,
}

/// The Lease's validity after each renewal: a holder that died frees it this long after.
pub const LOCK_DURATION: Duration = Duration::from_secs(60);
/// The holder renews this long before its Lease would expire.
const LOCK_GRACE: Duration = Duration::from_secs(20);
const CALL_BUDGET: Duration = Duration::from_secs(20);

/// A cluster-wide lock, while held.
pub struct ClusterLock {
    channel: Option<tokio::sync::watch::Receiver<bool>>,
    task: Option<
        tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
    >,
    pub singleton: Singleton,
    pub holder: String,
    /// How long acquiring it took (queued behind other gradings).
    pub waited: Duration,
}

impl ClusterLock {
    /// Acquires `singleton`'s Lease as `holder` (the probe's namespace), waiting at most
    /// `budget` for the current holder to release it or for its Lease to expire. On
    /// timeout: an environment error naming the holder (another grading, not the student).
    pub async fn acquire(
        client: &Client,
        singleton: Singleton,
        holder: &str,
        budget: Duration,
    ) -> Result<ClusterLock, EnvironmentError> {
        let started = Instant::now();
        let Singleton {
            namespace, lease, ..
        } = singleton;
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), lease)
            .with_namespace(namespace)
            .with_identity(holder)
            .with_duration(LOCK_DURATION.as_secs())
            .with_grace(LOCK_GRACE.as_secs())
            .with_field_manager(format!("{FIELD_MANAGER}-{holder}"))
            .build()
            .await
            .map_err(|e| EnvironmentError::NotReady {
                what: format!("Lease {namespace}/{lease}"),
                detail: e.to_string(),
            })?;
        let (mut channel, task) = manager.watch().await;
        let acquired = tokio::time::timeout(budget, async {
            loop {
                if *channel.borrow_and_update() {
                    return true;
                }
                if channel.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        let mut lock = ClusterLock {
            channel: Some(channel),
            task: Some(task),
            singleton,
            holder: holder.to_string(),
            waited: started.elapsed(),
        };
        match acquired {
            Ok(true) => Ok(lock),
            other => {
                let current = current_holder(client, singleton).await;
                lock.release().await;
                Err(EnvironmentError::Timeout {
                    what: format!(
                        "the cluster-wide lock on {} (Lease {namespace}/{lease}){}",
                        singleton.what,
                        if matches!(other, Ok(false)) {
                            ": the lease manager stopped"
                        } else {
                            ""
                        }
                    ),
                    budget,
                    last_seen: format!("held by {current}"),
                })
            }
        }
    }

    /// Whether it is still held (renewals succeed).
    pub fn held(&self) -> bool {
        self.channel.as_ref().is_some_and(|c| *c.borrow())
    }

    /// Releases the Lease (bounded); a release that cannot reach the API server leaves
    /// the Lease to expire after [`LOCK_DURATION`].
    pub async fn release(&mut self) {
        drop(self.channel.take());
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(CALL_BUDGET, task).await;
        }
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        // Dropping the channel makes the manager's task release the Lease, as long as
        // the runtime lives; otherwise the Lease expires after LOCK_DURATION.
        drop(self.channel.take());
    }
}

/// Who holds `singleton`'s Lease now, for messages.
pub async fn current_holder(client: &Client, singleton: Singleton) -> String {
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), singleton.namespace);
    match leases.get_opt(singleton.lease).await {
        Ok(Some(lease)) => lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_else(|| "nobody".into()),
        Ok(None) => "nobody (no Lease)".into(),
        Err(e) => format!("unknown ({e})"),
    }
}
