//! Criterion `docs`: static checks only. A Markdown guide explains the
//! autoscaling set-up, with a decision matrix covering HPA, VPA, KEDA and the
//! Cluster Autoscaler, and a troubleshooting section.

use super::{CriterionId, CriterionInfo};
use crate::checks::{CheckInfo, Collector, Input};
use crate::submission::{Submission, TextFile};
use crate::verdict::Location;

pub const ID: CriterionId = CriterionId("docs");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "Documentation clearly explains when to use each autoscaler",
    rubric_line: "docs-decision-matrix",
    cncf_ai_conformance: None,
    has_live_part: false,
}];

pub const GUIDE_MISSING: CheckInfo = CheckInfo::error(
    "docs.guide-missing",
    ID,
    "a Markdown guide explains the autoscaling set-up",
    "add AUTOSCALING_GUIDE.md",
)
.always_applicable();

pub const DECISION_MATRIX_INCOMPLETE: CheckInfo = CheckInfo::error(
    "docs.decision-matrix-incomplete",
    ID,
    "a decision matrix (table) covers HPA, VPA, KEDA and the Cluster Autoscaler",
    "add a table with a column or row for each of HPA, VPA, KEDA and Cluster Autoscaler",
);

pub const TROUBLESHOOTING_MISSING: CheckInfo = CheckInfo::error(
    "docs.troubleshooting-missing",
    ID,
    "the guide has a troubleshooting section",
    "add a `## Troubleshooting` section with common failures and fixes",
);

pub const CATALOGUE: &[CheckInfo] = &[
    GUIDE_MISSING,
    DECISION_MATRIX_INCOMPLETE,
    TROUBLESHOOTING_MISSING,
];

pub struct Docs;

criterion_checks_only!(Docs);

pub fn check(input: &Input<'_>, out: &mut Collector) {
    docs(input.submission, out);
}

struct Table {
    file: String,
    line: usize,
    covered: Vec<&'static str>,
}

const AUTOSCALERS: &[(&str, &[&str])] = &[
    (
        "HPA",
        &[
            "hpa",
            "horizontal pod autoscaler",
            "horizontalpodautoscaler",
        ],
    ),
    (
        "VPA",
        &["vpa", "vertical pod autoscaler", "verticalpodautoscaler"],
    ),
    ("KEDA", &["keda"]),
    (
        "Cluster Autoscaler",
        &[
            "cluster autoscaler",
            "cluster-autoscaler",
            "clusterautoscaler",
            "karpenter",
        ],
    ),
];

fn tables(doc: &TextFile) -> Vec<Table> {
    let lines: Vec<&str> = doc.text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start().starts_with('|') {
            let start = i;
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                i += 1;
            }
            let is_table = i - start >= 2 && is_delimiter_row(lines[start + 1]);
            if is_table && !is_status_table(lines[start]) {
                let text = lines[start..i].join("\n").to_lowercase();
                // "CA" as a column or row name is the usual abbreviation.
                let abbreviated_ca = lines[start..i].iter().any(|row| {
                    row.split('|').any(|cell| {
                        cell.trim()
                            .trim_matches(['*', '_', '`'])
                            .eq_ignore_ascii_case("ca")
                    })
                });
                let covered = AUTOSCALERS
                    .iter()
                    .filter(|(name, words)| {
                        words.iter().any(|w| text.contains(w))
                            || (*name == "Cluster Autoscaler" && abbreviated_ca)
                    })
                    .map(|(name, _)| *name)
                    .collect();
                found.push(Table {
                    file: doc.path.clone(),
                    line: start + 1,
                    covered,
                });
            }
        } else {
            i += 1;
        }
    }
    found
}

/// A table that tracks work (a README's task list with a Status column), not
/// one that compares autoscalers, even when its rows name them.
fn is_status_table(header: &str) -> bool {
    header.split('|').any(|cell| {
        let cell = cell.trim().trim_matches(['*', '_', '`']).to_lowercase();
        cell.contains("status") || cell.contains("progress") || cell == "done" || cell == "state"
    })
}

/// A GFM table's delimiter row: cells of hyphens, optionally colon-aligned.
fn is_delimiter_row(line: &str) -> bool {
    let cells: Vec<&str> = line
        .trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect();
    !cells.is_empty()
        && cells.iter().all(|cell| {
            let dashes = cell.trim_start_matches(':').trim_end_matches(':');
            !dashes.is_empty() && dashes.chars().all(|c| c == '-')
        })
}

/// A Markdown heading that opens a troubleshooting section, by whatever name.
fn is_troubleshooting_heading(line: &str) -> bool {
    let lower = line.to_lowercase();
    line.trim_start().starts_with('#')
        && [
            "troubleshoot",
            "debugging",
            "common issues",
            "common problems",
            "common errors",
            "common failures",
            "known issues",
            "when things go wrong",
            "diagnos",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

fn is_markdown(doc: &TextFile) -> bool {
    let lower = doc.path.to_lowercase();
    lower.ends_with(".md") || lower.ends_with(".markdown")
}

fn docs(submission: &Submission, out: &mut Collector) {
    let markdown: Vec<&TextFile> = submission.docs.iter().filter(|d| is_markdown(d)).collect();
    let mentions = |doc: &TextFile| doc.text.to_lowercase().matches("autoscal").count();
    // A guide (by content, not by name): about autoscaling, and either headed as
    // a guide/decision/troubleshooting text or holding a table that compares at
    // least three autoscalers. A README listing files is not one.
    let is_guide = |doc: &TextFile| {
        let headed = doc.text.lines().any(|l| {
            let lower = l.to_lowercase();
            l.trim_start().starts_with('#')
                && ["guide", "decision", "troubleshoot", "when to use"]
                    .iter()
                    .any(|w| lower.contains(w))
        });
        mentions(doc) > 0 && (headed || tables(doc).iter().any(|t| t.covered.len() >= 3))
    };
    let guides: Vec<&TextFile> = markdown.iter().copied().filter(|d| is_guide(d)).collect();
    if guides.is_empty() {
        out.fire(
            &GUIDE_MISSING,
            Location::file(""),
            "no Markdown guide explaining the autoscalers (a decision matrix, or a guide or troubleshooting section)",
        );
        return;
    }
    out.examined(&[DECISION_MATRIX_INCOMPLETE, TROUBLESHOOTING_MISSING]);
    let all_tables: Vec<Table> = markdown.iter().flat_map(|d| tables(d)).collect();
    let best = all_tables
        .iter()
        .max_by_key(|t| (t.covered.len(), std::cmp::Reverse(t.line)));
    let main_guide = best
        .filter(|t| t.covered.len() >= 2)
        .map(|t| t.file.clone())
        .unwrap_or_else(|| {
            guides
                .iter()
                .max_by_key(|d| mentions(d))
                .map(|d| d.path.clone())
                .unwrap_or_default()
        });
    match best {
        Some(table) if table.covered.len() == AUTOSCALERS.len() => {}
        Some(table) if table.covered.len() >= 2 => {
            let missing: Vec<&str> = AUTOSCALERS
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| !table.covered.contains(name))
                .collect();
            out.fire(
                &DECISION_MATRIX_INCOMPLETE,
                Location::line(table.file.clone(), table.line as u32),
                format!("the decision matrix does not cover {}", missing.join(", ")),
            );
        }
        _ => out.fire(
            &DECISION_MATRIX_INCOMPLETE,
            Location::file(main_guide.clone()),
            "no decision matrix (a Markdown table comparing HPA, VPA, KEDA and Cluster Autoscaler)",
        ),
    }
    let has_troubleshooting = markdown
        .iter()
        .any(|d| d.text.lines().any(is_troubleshooting_heading));
    if !has_troubleshooting {
        out.fire(
            &TROUBLESHOOTING_MISSING,
            Location::file(main_guide),
            "no troubleshooting section (a heading such as \"Troubleshooting\", \"Debugging\" or \"Common issues\")",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("## Troubleshooting", true)]
    #[case("### 6. Debugging autoscaling", true)]
    #[case("## Common issues and fixes", true)]
    #[case("## Known Issues", true)]
    #[case("## Anti-Patterns to Avoid", false)]
    #[case("Troubleshooting is hard", false)]
    fn troubleshooting_sections_go_by_several_names(#[case] line: &str, #[case] is: bool) {
        assert_eq!(is_troubleshooting_heading(line), is, "{line}");
    }

    #[rstest]
    #[case(
        "| Workload | HPA | VPA | KEDA | CA |\n|---|---|---|---|---|\n| api | yes | off | no | yes |",
        4
    )]
    #[case(
        "| | HPA | VPA | KEDA | **CA** |\n|-|-|-|-|-|\n| x | y | y | y | y |",
        4
    )]
    #[case(
        "| Tool | Use |\n|---|---|\n| HPA | load |\n| VPA | size |\n| KEDA | events |\n| Karpenter | nodes |",
        4
    )]
    #[case(
        "| Workload | HPA | VPA | KEDA |\n|---|---|---|---|\n| api | yes | cache | no |",
        3
    )]
    fn decision_matrices_may_abbreviate(#[case] table: &str, #[case] covered: usize) {
        let doc = TextFile {
            path: "guide.md".into(),
            text: table.into(),
        };
        assert_eq!(tables(&doc)[0].covered.len(), covered, "{table}");
    }

    #[test]
    fn a_task_status_table_is_not_taken_for_a_decision_matrix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("README.md"),
            "# Autoscaling exercise\n\n| Task | Status |\n|---|---|\n| HPA on CPU | done |\n| VPA | done |\n| KEDA | done |\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("GUIDE.md"),
            "# Autoscaling guide\n\nUse the HPA for serving, KEDA for batch.\n\n## Troubleshooting\n\nCheck metrics-server.\n",
        )
        .unwrap();
        let submission =
            crate::submission::load(dir.path(), &crate::submission::LoadOptions::default())
                .unwrap();
        let mut out = Collector::default();
        docs(&submission, &mut out);
        let matrix: Vec<_> = out
            .findings
            .iter()
            .filter(|f| f.check == DECISION_MATRIX_INCOMPLETE.id)
            .collect();
        assert_eq!(matrix.len(), 1, "{:?}", out.findings);
        assert!(
            matrix[0].message.starts_with("no decision matrix"),
            "{}",
            matrix[0].message
        );
        assert_eq!(matrix[0].location.file, "GUIDE.md");
    }

    #[test]
    fn decision_matrix_tables_are_found_with_their_line() {
        let doc = TextFile {
            path: "G.md".into(),
            text: "# G\n\n| Workload | HPA | VPA | KEDA |\n|---|---|---|---|\n| api | yes | no | no |\n".into(),
        };
        let found = tables(&doc);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 3);
        assert_eq!(found[0].covered, vec!["HPA", "VPA", "KEDA"]);
    }
}
