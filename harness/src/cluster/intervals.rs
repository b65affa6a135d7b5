//! The cluster's timing, which every probe's waits and every judge's budgets derive
//! from (never a fixed number of minutes). The HPA's own budgets, which also depend on
//! its behaviour, are in `criteria::hpa_cpu::budget`.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The cluster's timing, measured where it can be (metrics-server's window,
/// how long a pod takes to become Ready) and defaulted where it cannot (the
/// controller manager's HPA sync period is a flag nobody can read through the API).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClusterIntervals {
    /// metrics-server `--metric-resolution`: how often it scrapes kubelets.
    pub metrics_resolution: Duration,
    /// kube-controller-manager `--horizontal-pod-autoscaler-sync-period`.
    pub hpa_sync_period: Duration,
    /// From pod creation to Ready for the inference workload on this cluster.
    pub pod_ready: Duration,
    /// Watch delivery and clock skew between our observation and the controller's decision.
    pub observation_slack: Duration,
}

impl Default for ClusterIntervals {
    /// Upstream defaults (metrics-server 15 s, HPA sync 15 s) and a cautious pod start.
    fn default() -> Self {
        ClusterIntervals {
            metrics_resolution: Duration::from_secs(15),
            hpa_sync_period: Duration::from_secs(15),
            pod_ready: Duration::from_secs(30),
            observation_slack: Duration::from_secs(5),
        }
    }
}

impl ClusterIntervals {
    /// The longest a change in load takes to reach an HPA decision: the kubelet's
    /// cAdvisor window and metrics-server's scrape (one resolution each), then the next HPA sync.
    pub fn metric_lag(&self) -> Duration {
        self.metrics_resolution * 2 + self.hpa_sync_period
    }

    /// From a fresh pod's creation until metrics-server serves PodMetrics for it.
    pub fn first_pod_metrics(&self) -> Duration {
        self.pod_ready + self.metrics_resolution * 2 + self.observation_slack
    }
}
