//! Criterion `hpa-custom`: an HPA scales on a custom Prometheus metric that the
//! submission's prometheus-adapter rules expose. [`checks`] judges the manifests
//! statically; [`probe`] applies the workload and its HPA, hands the submission's
//! adapter rules ([`rules`]) to the cluster's adapter under a cluster-wide lock, drives
//! load sized by the HPA's own target, and [`judge`] judges the recorded timeline and
//! metric values against the budgets of [`budget`].

pub mod budget;
pub mod checks;
pub mod judge;
pub mod probe;
pub mod rules;

use super::{CriterionId, CriterionInfo};

pub const ID: CriterionId = CriterionId("hpa-custom");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "HPA configured with custom Prometheus metrics",
    rubric_line: "hpa-custom-metrics",
    cncf_ai_conformance: Some("pod_autoscaling"),
    has_live_part: true,
}];

pub struct HpaCustom;

criterion_folder!(HpaCustom);
