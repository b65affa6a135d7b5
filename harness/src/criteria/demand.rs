//! The CPU a probe's pods request at once, at most: what the cluster's CPU ledger
//! ([`crate::cluster::capacity`]) reserves for the probe on the cluster's real nodes.
//! Probes whose demands fit together run together; one that needs more than is free
//! waits, so that no probe's pod is left Pending for want of CPU that another probe
//! holds, which would read as the submission's failure. Each criterion's probe module
//! says what it applies and how far it scales it (`probe::cpu_demand`); this module
//! counts the pods as the API server admits them.

use crate::checks::{Defaults, namespace_defaults, pod_resources};
use crate::submission::{Object, Submission};
use k8s_openapi::api::core::v1::PodSpec;
use std::iter::Sum;
use std::ops::Add;

/// Requests of CPU, in millicores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct CpuDemand(u32);

impl CpuDemand {
    pub const NONE: CpuDemand = CpuDemand(0);

    pub const fn millis(millis: u32) -> CpuDemand {
        CpuDemand(millis)
    }

    pub const fn as_millis(self) -> u32 {
        self.0
    }

    /// `cores` of CPU, rounded up to the millicore; saturating, so that a student's
    /// `1E` is simply more than any cluster has.
    pub fn cores(cores: f64) -> CpuDemand {
        // 0.1 cores is 100.00000000000001 millicores in floating point: not 101.
        let millis = cores * 1000.0;
        let millis = if (millis - millis.round()).abs() < 1e-6 {
            millis.round()
        } else {
            millis.ceil()
        };
        CpuDemand(if millis.is_nan() || millis <= 0.0 {
            0
        } else if millis >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            millis as u32
        })
    }
}

impl Add for CpuDemand {
    type Output = CpuDemand;

    fn add(self, other: CpuDemand) -> CpuDemand {
        CpuDemand(self.0.saturating_add(other.0))
    }
}

impl Sum for CpuDemand {
    fn sum<I: Iterator<Item = CpuDemand>>(iter: I) -> CpuDemand {
        iter.fold(CpuDemand::NONE, Add::add)
    }
}

impl std::fmt::Display for CpuDemand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}m CPU", self.0)
    }
}

/// The load generator's pod (`cluster::load_generator`): 50m.
pub const LOAD_GENERATOR: CpuDemand = CpuDemand::millis(50);

/// `replicas` pods of `workload`, with the requests the API server and the LimitRanges of
/// its namespace give them. A pod that asks for a GPU is scheduled onto the GPU pool's
/// simulated nodes and takes none of the real nodes' CPU.
pub fn pods_of(submission: &Submission, workload: &Object, replicas: i64) -> CpuDemand {
    let Some(template) = workload.pod_template() else {
        return CpuDemand::NONE;
    };
    let defaults = namespace_defaults(submission, workload.namespace.as_deref());
    pods(template.spec, &defaults, replicas)
}

/// `replicas` pods of the workload named `name` (the target an autoscaler's probe picked).
pub fn target_pods(submission: &Submission, name: &str, replicas: i64) -> CpuDemand {
    submission
        .objects
        .iter()
        .find(|o| o.name == name && o.pod_template().is_some())
        .map_or(CpuDemand::NONE, |target| {
            pods_of(submission, target, replicas)
        })
}

/// `replicas` pods of `spec`, LimitRanger filling in `defaults`; see [`pods_of`].
pub fn pods(spec: &PodSpec, defaults: &Defaults, replicas: i64) -> CpuDemand {
    let (requests, _) = pod_resources(spec, defaults);
    if requests.keys().any(|name| name.ends_with("/gpu")) {
        return CpuDemand::NONE;
    }
    let per_pod = requests.get("cpu").copied().unwrap_or(0.0);
    CpuDemand::cores(per_pod * replicas.max(0) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_support::submission_of;
    use rstest::rstest;

    fn deployment(resources: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d, namespace: ml}}\nspec:\n  selector: {{matchLabels: {{app: d}}}}\n  template:\n    metadata: {{labels: {{app: d}}}}\n    spec:\n      containers: [{{name: c, image: i, resources: {resources}}}, {{name: s, image: i, resources: {{requests: {{cpu: 50m}}}}}}]\n"
        )
    }

    #[rstest]
    #[case::requests_of_every_container("{requests: {cpu: 200m}}", "", 3, 750)]
    #[case::a_limit_alone_is_the_request("{limits: {cpu: \"1\"}}", "", 2, 2100)]
    #[case::limit_range_default_request(
        "{}",
        "apiVersion: v1\nkind: LimitRange\nmetadata: {name: lr, namespace: ml}\nspec:\n  limits: [{type: Container, defaultRequest: {cpu: 100m}}]\n---\n",
        4,
        600
    )]
    #[case::a_gpu_pod_lands_on_the_simulated_pool(
        "{limits: {nvidia.com/gpu: 1, cpu: \"4\"}}",
        "",
        2,
        0
    )]
    #[case::no_replicas_no_demand("{requests: {cpu: 200m}}", "", 0, 0)]
    fn pods_are_counted_as_the_api_server_admits_them(
        #[case] resources: &str,
        #[case] limit_range: &str,
        #[case] replicas: i64,
        #[case] millis: u32,
    ) {
        let submission = submission_of(
            "all.yaml",
            &format!("{limit_range}{}", deployment(resources)),
        );
        let workload = submission
            .objects
            .iter()
            .find(|o| o.kind == "Deployment")
            .unwrap();
        assert_eq!(
            pods_of(&submission, workload, replicas),
            CpuDemand::millis(millis)
        );
    }

    #[test]
    fn huge_and_odd_amounts_saturate_instead_of_wrapping() {
        assert_eq!(CpuDemand::cores(1e18), CpuDemand::millis(u32::MAX));
        assert_eq!(CpuDemand::cores(f64::NAN), CpuDemand::NONE);
        assert_eq!(CpuDemand::cores(-1.0), CpuDemand::NONE);
        assert_eq!(
            CpuDemand::millis(u32::MAX) + LOAD_GENERATOR,
            CpuDemand::millis(u32::MAX)
        );
        assert_eq!(CpuDemand::cores(0.0001), CpuDemand::millis(1));
    }
}

/// What the reference's probes reserve, from its manifests: the gate's inputs for the
/// submission every live grade is measured on.
#[cfg(test)]
mod reference {
    use super::CpuDemand;
    use crate::criteria::REGISTRY;
    use crate::submission::load_fixture;

    #[test]
    fn each_probe_demands_what_the_references_manifests_request() {
        let reference = load_fixture("submissions/reference");
        let demand = |id: &str| {
            REGISTRY
                .iter()
                .find(|m| m.about().iter().any(|c| c.id.as_str() == id))
                .map(|m| m.cpu_demand(&reference).as_millis())
                .unwrap()
        };
        // fraud-detector: 200m × maxReplicas 10, and the load generator's 50m.
        assert_eq!(demand("hpa-cpu"), 2050);
        // recommendation-api: 200m × (minReplicas 2 + 1 the load calls for + 1 overshoot).
        assert_eq!(demand("hpa-custom"), 850);
        // batch-inference-processor: 200m × 3, and the queue's 100m.
        assert_eq!(demand("keda-scale-to-zero"), 700);
        // model-training-job: 500m × desiredReplicas 1 of the shortest window.
        assert_eq!(demand("keda-cron"), 500);
        // One fresh pod / one serving replica of fraud-detector.
        assert_eq!(demand("metrics-server"), 200);
        assert_eq!(demand("gpu-pool"), 200);
        // Dry runs, and pods pinned to the test's simulated nodes.
        assert_eq!(demand("quota-limits"), 0);
        assert_eq!(demand("pdb"), 0);
        // The three VPA targets (1.2 cores) under a load generator each.
        assert_eq!(demand("vpa"), 1350);
        // The test script's HPA (fraud-detector at maxReplicas 10), its runner and its load pods.
        assert_eq!(demand("load-testing"), 2300);
        assert!(demand("monitoring") > CpuDemand::cores(1.35).as_millis());
    }
}
