//! Shared pieces of the live tests (`live_*`, e2e profile): rstest fixtures for a
//! preflighted cluster and a per-test namespace, running a probe, asserting its verdict
//! and printing what it measured. Without a reachable, healthy cluster every live test
//! fails at once with the environment's one-line reason.
#![allow(dead_code)]

use harness::cluster::{Cluster, TestNamespace};
use harness::criteria::{Criterion, ProbeContext};
use harness::submission::Submission;
use harness::verdict::{Evidence, Verdict};
use rstest::fixture;
use std::path::PathBuf;
use std::time::Instant;

/// The test's name as libtest gives it to the test thread (`module::function`).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("live-test")
        .to_string()
}

/// A connected cluster that passed the preflight.
#[fixture]
pub async fn cluster() -> Cluster {
    match Cluster::connect().await {
        Ok(cluster) => cluster,
        Err(e) => panic!("environment error (verdict: error, not fail): {e}"),
    }
}

/// A fresh namespace named after the test; deleted when the test ends, also on panic.
#[fixture]
pub async fn namespace() -> TestNamespace {
    let cluster = cluster().await;
    match cluster.namespace(&test_name()).await {
        Ok(namespace) => namespace,
        Err(e) => panic!("environment error (verdict: error, not fail): {e}"),
    }
}

pub fn fixture_dir(relative: &str) -> PathBuf {
    // At run time (cargo and nextest set it for the test process): a test binary reused
    // from a shared target dir keeps the compile-time path of the checkout that built it.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("fixtures")
        .join(relative)
}

/// Loads a fixture directory with the grader's own submission loader.
pub fn load_fixture(relative: &str) -> harness::submission::Submission {
    let dir = fixture_dir(relative);
    let submission = harness::submission::load(&dir, &harness::submission::LoadOptions::default())
        .unwrap_or_else(|e| panic!("fixture {}: {e}", dir.display()));
    assert!(
        !submission.objects.is_empty(),
        "fixture {} has no objects",
        dir.display()
    );
    submission
}

/// How long a test queues for its probe's CPU behind other tests' and gradings' probes:
/// the longest of them (a whole live grade of the reference) runs about half an hour.
const LEDGER_WAIT: std::time::Duration = std::time::Duration::from_secs(45 * 60);

/// Runs `criterion`'s live probe on `submission` as the grader does (through the
/// registry's trait, once its CPU demand is reserved in the cluster's ledger, beside the
/// other tests' and gradings' probes), the test's name as the run, the timelines in the default place
/// (`$AUTOSCALE_CONFORMANCE_TIMELINES`, else `target/e2e-timelines`); one verdict per
/// criterion of the module, each printed.
pub async fn run_probe(
    criterion: &dyn Criterion,
    namespace: &mut TestNamespace,
    submission: &Submission,
) -> Vec<Verdict> {
    let timelines = harness::observe::default_timelines_dir();
    let run = test_name();
    let context = ProbeContext {
        submission,
        timelines: &timelines,
        run: &run,
    };
    let demand = criterion.cpu_demand(submission);
    let reservation = namespace
        .cluster
        .reserve_cpu(
            demand,
            &namespace.name,
            &run,
            tokio::time::Instant::now() + LEDGER_WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("environment error (verdict: error, not fail): {e}"));
    if let Some(reservation) = &reservation {
        eprintln!(
            "reserved {} of the cluster's CPU after {:.0}s in the ledger's queue",
            reservation.granted,
            reservation.waited.as_secs_f64()
        );
    }
    // A boxed future: the probe's state stays off the test thread's stack.
    let verdicts = criterion
        .probe(namespace, &context)
        .expect("the criterion has a live probe")
        .await;
    if let Some(reservation) = reservation {
        reservation.release().await;
    }
    let ids: Vec<&str> = criterion.about().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        verdicts.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        ids,
        "one verdict per criterion of the module, in its order"
    );
    verdicts.iter().for_each(show);
    verdicts
}

/// [`run_probe`] for a module of one criterion: its verdict.
pub async fn run_probe_once(
    criterion: &dyn Criterion,
    namespace: &mut TestNamespace,
    submission: &Submission,
) -> Verdict {
    let mut verdicts = run_probe(criterion, namespace, submission).await;
    verdicts.remove(0)
}

/// Prints a verdict the way the report would, for the test log.
pub fn show(verdict: &harness::verdict::Verdict) {
    eprintln!(
        "verdict {}: {} - {}",
        verdict.id, verdict.outcome, verdict.message
    );
    for evidence in &verdict.evidence {
        eprintln!("  {}", serde_json::to_string(evidence).unwrap_or_default());
    }
}

/// What a broken fixture's `expected.toml` says its verdict must be.
#[derive(serde::Deserialize)]
struct ExpectedVerdict {
    outcome: String,
    message_contains: String,
}

/// Asserts that `verdict` is the one `fixtures/<fixture>/expected.toml` expects:
/// the same outcome, and a message that contains the expected words.
pub fn assert_expected_verdict(verdict: &harness::verdict::Verdict, fixture: &str) {
    let path = fixture_dir(fixture).join("expected.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let expected: ExpectedVerdict =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        verdict.outcome.to_string(),
        expected.outcome,
        "{}",
        verdict.message
    );
    assert!(
        verdict.message.contains(&expected.message_contains),
        "expected {:?} in: {}",
        expected.message_contains,
        verdict.message
    );
}

/// Asserts that `verdict` points at its saved timeline JSON (Evidence::TimelineFile) and
/// that the file parses back; returns the timeline, to be judged again.
pub fn assert_timeline_saved(verdict: &harness::verdict::Verdict) -> harness::timeline::Timeline {
    let path = verdict
        .evidence
        .iter()
        .find_map(|e| match e {
            harness::verdict::Evidence::TimelineFile { path } => Some(path.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("verdict {} points at no saved timeline", verdict.id));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading timeline {path}: {e}"));
    let timeline: harness::timeline::Timeline =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("timeline {path}: {e}"));
    assert!(!timeline.samples.is_empty(), "timeline {path} is empty");
    eprintln!("timeline {path}: {} samples", timeline.samples.len());
    timeline
}

/// Prints the verdict's values whose name `shown` keeps, each after `label`: what a live
/// run measured (delays against their configured values), for the record, not asserted.
pub fn print_values(verdict: &Verdict, label: &str, shown: impl Fn(&str) -> bool) {
    for evidence in &verdict.evidence {
        if let Evidence::Values { values } = evidence {
            for (name, value) in values.iter().filter(|(name, _)| shown(name)) {
                eprintln!("{label}: {name}: {value}");
            }
        }
    }
}

/// Runs `criterion`'s probe once on the broken `fixture` and asserts the verdict its
/// `expected.toml` names. Prints the wall time and, through `print`, what the run
/// measured: before the assertion, so that a failing run shows it too.
pub async fn assert_broken_fixture_verdict(
    criterion: &dyn Criterion,
    namespace: TestNamespace,
    fixture: &str,
    print: impl FnOnce(&Verdict),
) {
    let mut namespace = namespace;
    let started = Instant::now();
    let submission = load_fixture(fixture);
    let verdict = run_probe_once(criterion, &mut namespace, &submission).await;
    eprintln!("wall time {:.0}s", started.elapsed().as_secs_f64());
    print(&verdict);
    assert_expected_verdict(&verdict, fixture);
}
