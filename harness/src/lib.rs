//! The grading harness: submission → checks → verdicts → report, and
//! cluster → probes → timelines → verdicts. See `ARCHITECTURE.md` for the data flow.
