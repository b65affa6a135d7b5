//! Criterion `monitoring`: static checks (promtool on the rules, the dashboard's JSON,
//! PromQL and coverage), live probe and judge. Live, the submission's rules are loaded
//! into the cluster's Prometheus as PrometheusRule objects of the probe's namespace,
//! its serving workloads run under load, and the judge asks: do the rules evaluate
//! without error, does every selector of every rule and panel match a series, and does
//! overload make its latency or CPU alert pending or firing in time.

pub mod checks;
pub mod judge;
pub mod probe;
pub mod promql;

use super::{CriterionId, CriterionInfo};

pub const ID: CriterionId = CriterionId("monitoring");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "Monitoring dashboard shows autoscaling metrics",
    rubric_line: "monitoring-observability",
    cncf_ai_conformance: Some("ai_service_metrics"),
    has_live_part: true,
}];

pub struct Monitoring;

criterion_folder!(Monitoring);
