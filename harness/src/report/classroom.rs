//! The report as a GitHub Classroom runner result: one test per rubric line.

use super::{RenderError, Report, points, round};
use crate::verdict::{Outcome, Severity};

impl Report {
    /// The result a GitHub Classroom runner hands to
    /// `classroom-resources/autograding-grading-reporter` (base64-encode it into
    /// the `<RUNNER-ID>_RESULTS` environment variable): one test per rubric line.
    pub fn to_classroom(&self) -> Result<String, RenderError> {
        let tests: Vec<serde_json::Value> = self
            .lines
            .iter()
            .map(|line| {
                let failed = line.items.iter().any(|i| i.outcome == Outcome::Fail);
                let errored = line.items.iter().any(|i| i.outcome == Outcome::Error);
                let status = if failed { "fail" } else if errored { "error" } else { "pass" };
                let first = line.items.iter().flat_map(|i| i.findings.iter()).find(|f| f.severity >= Severity::Warning);
                let mut message: Vec<String> = line
                    .items
                    .iter()
                    .filter(|i| matches!(i.outcome, Outcome::Fail | Outcome::Error))
                    .flat_map(|i| {
                        if i.findings.is_empty() {
                            vec![format!("{}: {}", i.id, i.message)]
                        } else {
                            i.findings.iter().map(|f| format!("{}: {} (fix: {})", f.location, f.message, f.hint)).collect()
                        }
                    })
                    .collect();
                let not_run: f64 = line.items.iter().filter(|i| i.outcome == Outcome::NotRun).map(|i| i.points).sum();
                if not_run > 0.0 {
                    message.push(format!("{} live point(s) not run", points(not_run)));
                }
                serde_json::json!({
                    "name": line.title,
                    "status": status,
                    "score": round(line.earned),
                    "message": message.join("\n"),
                    "test_code": line.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>().join(", "),
                    "filename": first.map(|f| f.location.file.clone()).unwrap_or_default(),
                    "line_no": first.and_then(|f| f.location.line).unwrap_or(0),
                    "execution_time": format!("{}ms", self.duration_ms),
                })
            })
            .collect();
        let any_fail = self
            .lines
            .iter()
            .flat_map(|l| &l.items)
            .any(|i| i.outcome == Outcome::Fail);
        let any_error = self
            .lines
            .iter()
            .flat_map(|l| &l.items)
            .any(|i| i.outcome == Outcome::Error);
        let result = serde_json::json!({
            "version": 1,
            "status": if any_fail { "fail" } else if any_error { "error" } else { "pass" },
            "max_score": round(self.score.total),
            "tests": tests,
        });
        serde_json::to_string_pretty(&result).map_err(|e| RenderError {
            format: "classroom",
            message: e.to_string(),
        })
    }
}
