//! The grading harness: submission → checks → verdicts → report, and
//! cluster → probes → timelines → verdicts; [`grade`] is the one entry that runs
//! both. See `ARCHITECTURE.md` for the layout and the data flow.

pub mod checks;
pub mod class;
pub mod cluster;
pub mod criteria;
pub mod grade;
pub mod observe;
pub mod progress;
pub mod report;
pub mod submission;
pub mod timeline;
pub mod verdict;
