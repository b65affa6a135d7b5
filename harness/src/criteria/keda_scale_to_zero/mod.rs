//! Criterion `keda-scale-to-zero`: a ScaledObject scales its workload from zero on a
//! Prometheus trigger and back to zero. [`checks`] judges the manifests statically;
//! [`probe`] applies the workload and its ScaledObject into the sandbox with KEDA's own
//! admission, lets it idle at zero, fills a queue whose depth the trigger's query reads,
//! empties it, and [`judge`] judges the recorded timeline and query values against the
//! submission's own pollingInterval and cooldownPeriod.

pub mod checks;
pub mod judge;
pub mod probe;

use super::{CriterionId, CriterionInfo};

pub const ID: CriterionId = CriterionId("keda-scale-to-zero");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "KEDA installed and scaling based on events",
    rubric_line: "keda-event-driven",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub struct KedaScaleToZero;

criterion_folder!(KedaScaleToZero);
