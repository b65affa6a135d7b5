//! The grading harness: submission → checks → verdicts → report, and
//! cluster → probes → timelines → verdicts. See `ARCHITECTURE.md` for the data flow.

pub mod budget;
pub mod checks;
pub mod cluster;
pub mod criteria;
pub mod live;
pub mod load;
pub mod nodes;
pub mod observe;
pub mod report;
pub mod submission;
pub mod timeline;
pub mod verdict;
