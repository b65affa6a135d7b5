//! Criterion `keda-cron`: a ScaledObject's cron trigger scales its workload inside its
//! window and back after it. [`checks`] parses the expressions as KEDA does; [`probe`]
//! applies the workload and the ScaledObject with the trigger's window moved to open
//! about a minute from now in the submission's own time zone, and [`judge`] judges the
//! recorded replicas against the window and the submission's own settings.

pub mod checks;
pub mod judge;
pub mod probe;

use super::{CriterionId, CriterionInfo};

pub const ID: CriterionId = CriterionId("keda-cron");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "KEDA scaling based on schedule",
    rubric_line: "keda-event-driven",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub struct KedaCron;

criterion_folder!(KedaCron);
