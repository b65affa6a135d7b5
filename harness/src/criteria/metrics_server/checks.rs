//! Static checks of `metrics-server`: a script verifies that metrics-server
//! serves metrics.

use super::ID;
use crate::checks::{CheckInfo, Collector, Input, regex};
use crate::verdict::Location;
use regex::Regex;
use std::sync::LazyLock;

pub const VERIFICATION_MISSING: CheckInfo = CheckInfo::error(
    "metrics-server.verification-missing",
    ID,
    "a script verifies metrics-server (kubectl top, metrics.k8s.io, or waiting for it to be ready)",
    "add a script step such as `kubectl top pods -A` or `kubectl wait ... deployment/metrics-server`",
)
.always_applicable();

pub const ARGS_REPLACED: CheckInfo = CheckInfo::error(
    "metrics-server.args-replaced",
    ID,
    "a patch of metrics-server adds its flags to the upstream args instead of replacing the list",
    "append instead: `kubectl patch deployment metrics-server -n kube-system --type=json -p='[{\"op\":\"add\",\"path\":\"/spec/template/spec/containers/0/args/-\",\"value\":\"--kubelet-insecure-tls\"}]'`",
);

pub const CATALOGUE: &[CheckInfo] = &[VERIFICATION_MISSING, ARGS_REPLACED];

/// A JSON patch operation that sets a container's whole `args` list (`add` or `replace`
/// on `.../args`, not `.../args/-`), with its value.
static JSON_PATCH_ARGS: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#""op"\s*:\s*"(?:replace|add)"\s*,\s*"path"\s*:\s*"/spec/template/spec/containers/\d+/args"\s*,\s*"value"\s*:\s*(\[[^\]]*\])"#,
    )
});

/// A merge or strategic-merge patch giving a container an `args` list: a list a
/// strategic merge replaces whole (container args have no merge key).
static MERGE_PATCH_ARGS: LazyLock<Regex> = LazyLock::new(|| regex(r#""args"\s*:\s*(\[[^\]]*\])"#));

static METRICS_SERVER_VERIFY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"kubectl\s+top\s|metrics\.k8s\.io|kubectl\s+wait\b[^\n]*metrics-server|kubectl\s+rollout\s+status\b[^\n]*metrics-server",
    )
});

pub fn check(input: &Input<'_>, out: &mut Collector) {
    let submission = input.submission;
    args_kept(submission, out);
    let verified = submission
        .script_texts()
        .any(|(_, text)| METRICS_SERVER_VERIFY.is_match(&text));
    if !verified {
        let location = submission
            .scripts
            .first()
            .map_or_else(|| Location::file(""), |s| Location::file(s.path.clone()));
        out.fire(
            &VERIFICATION_MISSING,
            location,
            "no script verifies metrics-server (kubectl top, the metrics.k8s.io API, or waiting for its rollout)",
        );
    }
}

/// `kubectl patch` of the metrics-server Deployment that sets its container's whole
/// `args` list: upstream's flags are gone with it. Without `--cert-dir=/tmp` metrics-server
/// writes its self-signed certificate under its working directory, on a read-only root
/// file system, and exits; the others (`--secure-port=10250`, the kubelet address types,
/// `--kubelet-use-node-status-port`, `--metric-resolution=15s`) go too.
fn args_kept(submission: &crate::submission::Submission, out: &mut Collector) {
    if submission.scripts.is_empty() {
        return;
    }
    out.examined(&[ARGS_REPLACED]);
    for script in &submission.scripts {
        for (line, command) in logical_lines(&script.text) {
            if command.trim_start().starts_with('#')
                || !command.contains("kubectl")
                || !command.contains(" patch ")
                || !command.contains("metrics-server")
            {
                continue;
            }
            let list = JSON_PATCH_ARGS
                .captures(&command)
                .or_else(|| MERGE_PATCH_ARGS.captures(&command))
                .map(|c| c[1].to_string());
            let Some(list) = list else { continue };
            if list.contains("--cert-dir") {
                continue;
            }
            out.fire(
                &ARGS_REPLACED,
                Location::line(script.path.clone(), line),
                format!(
                    "this patch sets metrics-server's whole args list to {list}, dropping upstream's --cert-dir=/tmp, --secure-port=10250, --kubelet-preferred-address-types, --kubelet-use-node-status-port and --metric-resolution=15s: without --cert-dir=/tmp it cannot write its certificate on its read-only root file system and never becomes ready"
                ),
            );
        }
    }
}

/// A shell script's commands with backslash continuations joined, each with the
/// 1-based line it starts on.
fn logical_lines(text: &str) -> Vec<(u32, String)> {
    let mut commands = Vec::new();
    let mut current: Option<(u32, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let (start, mut joined) = current.take().unwrap_or((i as u32 + 1, String::new()));
        let continued = line.trim_end().ends_with('\\');
        joined.push_str(line.trim_end().trim_end_matches('\\'));
        joined.push(' ');
        if continued {
            current = Some((start, joined));
        } else {
            commands.push((start, joined));
        }
    }
    commands.extend(current);
    commands
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn findings(script: &str) -> Vec<String> {
        let submission = crate::submission::Submission {
            scripts: vec![crate::submission::TextFile {
                path: "setup.sh".into(),
                text: script.into(),
            }],
            ..Default::default()
        };
        let mut out = Collector::default();
        args_kept(&submission, &mut out);
        out.findings
            .iter()
            .map(|f| format!("{}: {}", f.location, f.message))
            .collect()
    }

    #[rstest]
    #[case::json_replace(
        "#!/bin/bash\nkubectl apply -f ms.yaml\nkubectl patch deployment metrics-server -n kube-system --type='json' \\\n  -p='[{\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/args\", \"value\": [\"--kubelet-insecure-tls\"]}]'\n",
        "setup.sh:3"
    )]
    #[case::strategic(
        "kubectl -n kube-system patch deployment metrics-server -p '{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"metrics-server\",\"args\":[\"--kubelet-insecure-tls\"]}]}}}}'\n",
        "setup.sh:1"
    )]
    fn replacing_the_whole_args_list_is_found_at_its_line(#[case] script: &str, #[case] at: &str) {
        let found = findings(script);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(at), "{found:?}");
        assert!(found[0].contains("--cert-dir=/tmp"), "{found:?}");
    }

    #[rstest]
    #[case::appends(
        "kubectl patch deployment metrics-server -n kube-system --type=json -p='[{\"op\":\"add\",\"path\":\"/spec/template/spec/containers/0/args/-\",\"value\":\"--kubelet-insecure-tls\"}]'\n"
    )]
    #[case::keeps_upstream_flags(
        "kubectl patch deployment metrics-server -n kube-system --type=json -p='[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/args\",\"value\":[\"--cert-dir=/tmp\",\"--secure-port=10250\",\"--kubelet-insecure-tls\"]}]'\n"
    )]
    #[case::other_deployment(
        "kubectl patch deployment api -p '{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"api\",\"args\":[\"--x\"]}]}}}}'\n"
    )]
    #[case::commented_out(
        "# kubectl patch deployment metrics-server --type=json -p='[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/args\",\"value\":[\"--kubelet-insecure-tls\"]}]'\n"
    )]
    fn adding_a_flag_or_keeping_upstreams_is_fine(#[case] script: &str) {
        assert_eq!(findings(script), Vec::<String>::new());
    }
}
