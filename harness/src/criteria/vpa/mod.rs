//! Criterion `vpa`: static checks, live probe and judge.
//!
//! The probe applies every VPA of the submission with its target, under steady load,
//! and records the pods' creations, requests and evictions next to the VPAs'
//! recommendations; [`judge`] holds each VPA to what its update mode promises.

pub mod checks;
pub mod judge;
pub mod probe;

use super::{CriterionId, CriterionInfo};

pub const ID: CriterionId = CriterionId("vpa");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "VPA provides resource recommendations",
    rubric_line: "vpa-recommendations",
    cncf_ai_conformance: None,
    has_live_part: true,
}];

pub struct Vpa;

criterion_folder!(Vpa);
