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

pub const CATALOGUE: &[CheckInfo] = &[VERIFICATION_MISSING];

static METRICS_SERVER_VERIFY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"kubectl\s+top\s|metrics\.k8s\.io|kubectl\s+wait\b[^\n]*metrics-server|kubectl\s+rollout\s+status\b[^\n]*metrics-server",
    )
});

pub fn check(input: &Input<'_>, out: &mut Collector) {
    let submission = input.submission;
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
