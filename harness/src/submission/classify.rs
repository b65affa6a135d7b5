//! What a file is, from its path and text: a doc, a shell script, a CI
//! workflow, a Helm chart template, YAML or JSON to load, media to skip, or
//! other text kept whole.

use std::path::Path;

/// Extensions of files a submission may legitimately carry that are not text
/// (architecture diagrams, screenshots): skipped without a finding.
const MEDIA_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "ico", "bmp", "pdf", "svgz", "mp4", "mov", "webm", "woff",
    "woff2", "ttf", "otf", "zip", "gz", "tgz", "xz", "zst",
];

/// What a readable text file is, and so where the loader puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileKind {
    /// Markdown, reStructuredText or plain text.
    Doc,
    /// A shell script, by extension or shebang.
    Script,
    /// A CI pipeline: YAML to load whose steps are also shell commands.
    CiWorkflow,
    /// A Helm chart template: not rendered here, so not loaded.
    HelmTemplate,
    /// YAML or JSON to load (`json` when the extension says JSON).
    Structured { json: bool },
    /// Any other text (a k6 or locust script, a Dockerfile).
    OtherText,
}

/// A file to skip without a finding (an image, an archive, a font).
pub(super) fn is_media(extension: &str) -> bool {
    MEDIA_EXTENSIONS.contains(&extension)
}

/// What a text file is, by its lower-case `extension`, its path relative to the
/// submission `root` and its text.
pub(super) fn classify(root: &Path, rel: &str, extension: &str, text: &str) -> FileKind {
    match extension {
        "md" | "markdown" | "txt" | "rst" => FileKind::Doc,
        "sh" | "bash" => FileKind::Script,
        "yaml" | "yml" if is_ci_workflow(rel) => FileKind::CiWorkflow,
        "yaml" | "yml" | "json" if is_helm_template(root, rel, text) => FileKind::HelmTemplate,
        "yaml" | "yml" | "json" => FileKind::Structured {
            json: extension == "json",
        },
        _ if has_shell_shebang(text) => FileKind::Script,
        _ => FileKind::OtherText,
    }
}

/// A first line such as `#!/bin/bash` or `#!/usr/bin/env sh`.
fn has_shell_shebang(text: &str) -> bool {
    let shebang = text.lines().next().filter(|l| l.starts_with("#!"));
    shebang.is_some_and(|s| {
        ["sh", "bash", "zsh", "ksh", "dash"]
            .iter()
            .any(|shell| s.split(['/', ' ']).any(|w| w == *shell))
    })
}

/// A CI pipeline definition, whose steps run shell commands.
fn is_ci_workflow(rel: &str) -> bool {
    rel.starts_with(".github/workflows/") || rel == ".gitlab-ci.yml" || rel == ".gitlab-ci.yaml"
}

/// Files whose recipes or steps are shell commands run by a tool (make, CI).
pub(super) fn runs_shell_commands(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    matches!(
        name,
        "Makefile" | "makefile" | "GNUmakefile" | "justfile" | "Justfile"
    ) || name.ends_with(".mk")
        || is_ci_workflow(rel)
}

/// A file Helm renders before anything reads it: under a chart's `templates/`
/// (a directory next to a Chart.yaml), or YAML that uses Helm's template objects.
fn is_helm_template(root: &Path, rel: &str, text: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let in_chart = parts.iter().enumerate().any(|(i, part)| {
        *part == "templates"
            && i + 1 < parts.len()
            && root.join(parts[..i].join("/")).join("Chart.yaml").is_file()
    });
    let uses_helm_objects = text.contains("{{")
        && [".Values", ".Release", ".Chart", "include \"", "toYaml"]
            .iter()
            .any(|object| text.contains(object));
    in_chart || uses_helm_objects
}

#[cfg(test)]
mod tests {
    use crate::submission::test_files::write;
    use crate::submission::{LoadOptions, load};
    use crate::verdict::Severity;
    use std::collections::BTreeSet;

    #[test]
    fn helm_chart_templates_are_recognised_not_parsed() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "chart/Chart.yaml",
            "apiVersion: v2\nname: c\nversion: 0.1.0\n",
        );
        write(
            dir.path(),
            "chart/templates/hpa.yaml",
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  maxReplicas: {{ .Values.max }}\n",
        );
        write(dir.path(), "chart/templates/NOTES.yaml", "plain: text\n");
        write(
            dir.path(),
            "loose/dep.yaml",
            "kind: Deployment\nmetadata:\n  labels:\n    {{- include \"x.labels\" . | nindent 4 }}\n",
        );
        write(
            dir.path(),
            "rules.yaml",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations: {summary: \"{{ $labels.pod }} down\"}\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        let templates: BTreeSet<&str> = submission
            .findings
            .iter()
            .filter(|f| f.check == "input.helm-template")
            .map(|f| f.location.file.as_str())
            .collect();
        assert_eq!(
            templates,
            BTreeSet::from([
                "chart/templates/hpa.yaml",
                "chart/templates/NOTES.yaml",
                "loose/dep.yaml"
            ])
        );
        assert!(
            submission
                .findings
                .iter()
                .all(|f| f.severity == Severity::Info)
        );
        assert_eq!(
            submission.rule_sources.len(),
            1,
            "a Prometheus template is not Helm"
        );
    }

    #[test]
    fn make_recipes_and_ci_steps_are_script_text() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Makefile", "verify:\n\tkubectl top nodes\n");
        write(dir.path(), "mk/load.mk", "load:\n\they -z 60s http://svc\n");
        write(
            dir.path(),
            ".github/workflows/e2e.yml",
            "on: push\njobs:\n  e2e:\n    runs-on: ubuntu-latest\n    steps:\n      - run: kubectl top pods -A\n",
        );
        write(
            dir.path(),
            "notes/Dockerfile",
            "FROM busybox\nRUN kubectl top nodes\n",
        );
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        let files: BTreeSet<String> = submission
            .script_texts()
            .map(|(location, _)| location.file)
            .collect();
        assert_eq!(
            files,
            BTreeSet::from([
                ".github/workflows/e2e.yml".to_string(),
                "Makefile".to_string(),
                "mk/load.mk".to_string()
            ])
        );
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
    }
}
