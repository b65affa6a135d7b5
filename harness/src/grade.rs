//! Grading: the one entry the CLI, the tests and the benchmark use. It loads a
//! submission, runs the static checks of every criterion, probes the cluster if
//! asked to (each criterion module in a namespace of its own, walking
//! [`criteria::REGISTRY`]) and folds the verdicts into the rubric.
//!
//! The rubric is checked against the check catalogue and the criteria here too:
//! the report knows only verdicts and the rubric.

use crate::checks::Tools;
use crate::cluster::health::{EnvironmentWatch, Outage};
use crate::cluster::{Cluster, EnvironmentError, TestNamespace};
use crate::criteria::demand::CpuDemand;
use crate::criteria::{self, Criterion, CriterionId, CriterionInfo, ProbeContext};
use crate::report::{Report, Rubric, RubricError};
use crate::submission::{self, LoadOptions, Submission};
use crate::verdict::{Evidence, Outcome, Verdict};
use futures::future::{BoxFuture, join_all};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;

/// How to grade a submission.
#[derive(Debug, Clone)]
pub struct GradeOptions {
    /// The external checkers some static checks run.
    pub tools: Tools,
    /// Probe the cluster too; `None` grades offline (live points are "not run").
    pub live: Option<LiveOptions>,
    /// The most the whole grading may take ([`DEFAULT_DEADLINE`] unless told): probes
    /// still running then are stopped and get a verdict saying so.
    pub deadline: Duration,
}

/// The grading deadline when none is given. Live grading of the reference took 30 to 40
/// minutes beside the rest of the live suite on a 2-CPU machine (2013 s, 2239 s and
/// 2409 s, 2026-12-01: its probes queue in the CPU ledger behind the other tests', and
/// the largest run alone); each probe caps what a submission's own windows may ask (the HPA's
/// [`budget::MAX_PROBE`], the drain's [`pdb::judge::MAX_DRAIN`]) well inside this.
///
/// [`budget::MAX_PROBE`]: crate::criteria::hpa_cpu::budget::MAX_PROBE
/// [`pdb::judge::MAX_DRAIN`]: crate::criteria::pdb::judge::MAX_DRAIN
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(45 * 60);

/// When live grading must be over, and how long it was given (for the messages).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: tokio::time::Instant,
    pub length: Duration,
}

impl Deadline {
    /// `length` from now; a length past the clock's range means no deadline in practice.
    pub fn after(length: Duration) -> Deadline {
        let now = tokio::time::Instant::now();
        // Far enough to never come, near enough for the clock (no overflow panic).
        let never = now + Duration::from_secs(100 * 365 * 24 * 3600);
        Deadline {
            at: now.checked_add(length).map_or(never, |at| at.min(never)),
            length,
        }
    }
}

/// Live grading, against the cluster of KUBECONFIG.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Where the probes save their timelines (the CLI's `--out DIR/timelines`).
    pub timelines: PathBuf,
    /// Probe only the modules of these live criteria (`grade --only`); empty: all.
    /// The others are reported "not run" with that reason.
    pub only: Vec<CriterionId>,
}

impl LiveOptions {
    /// Every probe, timelines saved in `timelines`.
    pub fn all(timelines: PathBuf) -> LiveOptions {
        LiveOptions {
            timelines,
            only: Vec::new(),
        }
    }

    /// Whether `module`'s probe runs: one of its live criteria is selected.
    fn selects(&self, module: &dyn Criterion) -> bool {
        self.only.is_empty() || live_criteria(module).any(|c| self.only.contains(&c.id))
    }
}

/// The live criterion named `name` (for `grade --only`), or what the names are.
pub fn live_criterion(name: &str) -> Result<CriterionId, String> {
    probed().find(|id| id.as_str() == name).ok_or_else(|| {
        format!(
            "no live probe for `{name}`; the probed criteria are: {}",
            probed()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

#[derive(Debug, Error)]
pub enum GradeError {
    #[error(transparent)]
    Rubric(#[from] RubricError),
    #[error("cannot read the submission {path}: {source}")]
    Submission {
        path: String,
        source: std::io::Error,
    },
}

/// Names a grading run in the probes' timeline file names.
const RUN: &str = "grade";

/// Grades the submission in `dir`: loads it, runs every static check, runs the live
/// probes if `options.live` asks for them, and folds it all into the rubric. A
/// cluster that is unreachable or fails the preflight gives "error" verdicts for
/// the live criteria, never "fail".
pub async fn grade(dir: &Path, options: &GradeOptions) -> Result<Report, GradeError> {
    let started = Instant::now();
    let submission = load(dir)?;
    let checks = criteria::run_checks(&submission, &options.tools);
    grade_loaded(dir, &submission, checks, options, started).await
}

/// Loads the submission in `dir` (the loader's own guards against bad input apply).
pub fn load(dir: &Path) -> Result<Submission, GradeError> {
    submission::load(dir, &LoadOptions::default()).map_err(|source| GradeError::Submission {
        path: dir.display().to_string(),
        source,
    })
}

/// The rest of [`grade`] once the submission is loaded and its checks have run: the
/// live probes if asked for (each reserving its CPU in the cluster's ledger, so that the
/// submissions of a class, and other gradings, share one cluster), and the report.
pub async fn grade_loaded(
    dir: &Path,
    submission: &Submission,
    check_verdicts: Vec<Verdict>,
    options: &GradeOptions,
    started: Instant,
) -> Result<Report, GradeError> {
    let rubric = rubric()?;
    let live_verdicts = match &options.live {
        None => BTreeMap::new(),
        // Boxed: the probes' state is large for a test thread's stack.
        Some(live) => {
            let deadline = Deadline::after(options.deadline.saturating_sub(started.elapsed()));
            Box::pin(judge_live(submission, live, deadline)).await
        }
    };
    Ok(Report::build(
        &rubric,
        &dir.display().to_string(),
        check_verdicts,
        &live_verdicts,
        started.elapsed(),
    ))
}

/// [`grade`] offline, for callers without an async runtime.
pub fn grade_offline(dir: &Path, tools: &Tools) -> Result<Report, GradeError> {
    let options = GradeOptions {
        tools: tools.clone(),
        live: None,
        deadline: DEFAULT_DEADLINE,
    };
    // Offline grading waits on nothing: the future completes when first polled.
    futures::executor::block_on(grade(dir, &options))
}

/// The compiled-in rubric, checked against the check catalogue and the criteria.
pub fn rubric() -> Result<Rubric, RubricError> {
    let rubric = Rubric::builtin()?;
    validate_names(&rubric)?;
    Ok(rubric)
}

/// Every check and criterion the rubric names exists and sits on the line of its
/// criterion; every check is scored once or listed as unscored; the live lists
/// hold exactly the criteria that have a live part.
pub fn validate_names(rubric: &Rubric) -> Result<(), RubricError> {
    let invalid = |m: String| Err(RubricError::Invalid(m));
    let mut seen = HashSet::new();
    for line in &rubric.lines {
        for item in &line.static_items {
            let Some(check) = criteria::check_info(&item.check) else {
                return invalid(format!(
                    "line {} names unknown check {}",
                    line.id, item.check
                ));
            };
            if !seen.insert(item.check.clone()) {
                return invalid(format!("check {} is scored twice", item.check));
            }
            let owner = criteria::find(check.criterion.as_str()).map(|c| c.rubric_line);
            if owner != Some(line.id.as_str()) {
                return invalid(format!(
                    "check {} serves criterion {} of line {:?}, not {}",
                    item.check, check.criterion, owner, line.id
                ));
            }
        }
        for item in &line.live {
            let Some(criterion) = criteria::find(&item.criterion) else {
                return invalid(format!(
                    "line {} names unknown criterion {}",
                    line.id, item.criterion
                ));
            };
            if criterion.rubric_line != line.id {
                return invalid(format!(
                    "criterion {} belongs to line {}, not {}",
                    item.criterion, criterion.rubric_line, line.id
                ));
            }
        }
    }
    for check in &rubric.unscored.checks {
        if criteria::check_info(check).is_none() || !seen.insert(check.clone()) {
            return invalid(format!("unscored check {check} is unknown or also scored"));
        }
    }
    let live: HashSet<&str> = rubric.live_criteria().collect();
    for criterion in criteria::all() {
        let listed = live.contains(criterion.id.as_str());
        if criterion.has_live_part != listed {
            return invalid(format!(
                "criterion {} {} a live part but is {} in a live list",
                criterion.id,
                if criterion.has_live_part {
                    "has"
                } else {
                    "has no"
                },
                if listed { "" } else { "not" }
            ));
        }
    }
    if let Some(missing) = criteria::all_checks().find(|c| !seen.contains(c.id)) {
        return invalid(format!(
            "check {} is neither scored nor listed as unscored",
            missing.id
        ));
    }
    Ok(())
}

/// The criteria live grading probes, in registry order; the other live criteria
/// are reported "not run", with [`not_probed_reason`].
pub fn probed() -> impl Iterator<Item = CriterionId> {
    probed_modules().flat_map(|module| live_criteria(module).map(|c| c.id))
}

/// Why a live criterion is not probed (it is graded on its static checks only).
pub fn not_probed_reason(module: &dyn Criterion, criterion: CriterionId) -> String {
    format!(
        "live criterion {criterion}: not run: this suite has no live probe for it yet (it needs {}); its static checks are graded",
        module.not_probed_because().unwrap_or("a live probe")
    )
}

/// One verdict per live criterion of the registry: probed, "error" when the
/// cluster cannot be reached, or "not run" with the reason.
async fn judge_live(
    submission: &Submission,
    live: &LiveOptions,
    deadline: Deadline,
) -> BTreeMap<String, Verdict> {
    let context = ProbeContext {
        submission,
        timelines: &live.timelines,
        run: RUN,
    };
    let mut verdicts = match Cluster::connect().await {
        Ok(cluster) => run_probes_selected(&cluster, &context, deadline, live).await,
        Err(environment) => probed_modules()
            .filter(|module| live.selects(*module))
            .flat_map(live_criteria)
            .map(|c| (c.id.to_string(), environment_error(c.id, &environment)))
            .collect(),
    };
    for module in criteria::REGISTRY {
        for criterion in live_criteria(*module) {
            verdicts.entry(criterion.id.to_string()).or_insert_with(|| {
                let reason = if has_probe(*module) {
                    format!(
                        "live criterion {}: not run: not selected (grade --only {})",
                        criterion.id,
                        live.only
                            .iter()
                            .map(|id| id.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                } else {
                    not_probed_reason(*module, criterion.id)
                };
                Verdict::not_run(criterion.id.as_str(), reason)
            });
        }
    }
    verdicts
}

/// Runs the probe of every module that has one, each in its own namespace, until
/// `deadline`; returns one verdict per probed criterion.
pub async fn run_probes(
    cluster: &Cluster,
    context: &ProbeContext<'_>,
    deadline: Deadline,
) -> BTreeMap<String, Verdict> {
    let every = LiveOptions::all(context.timelines.to_path_buf());
    run_probes_selected(cluster, context, deadline, &every).await
}

/// [`run_probes`], only the modules `live` selects.
pub async fn run_probes_selected(
    cluster: &Cluster,
    context: &ProbeContext<'_>,
    deadline: Deadline,
    live: &LiveOptions,
) -> BTreeMap<String, Verdict> {
    // Smallest demand first: the probes that fit together start at once, and the largest,
    // which may have to run alone, queue behind them in the cluster's CPU ledger. Each probe's state is boxed: joined
    // on one stack, it overflowed a test thread's.
    let mut modules: Vec<(&'static dyn Criterion, CpuDemand)> = probed_modules()
        .filter(|module| live.selects(*module))
        .map(|module| (module, module.cpu_demand(context.submission)))
        .collect();
    modules.sort_by_key(|(_, demand)| *demand);
    let environment = EnvironmentWatch::start(cluster).await;
    let run = Run {
        cluster,
        context,
        deadline,
        environment: &environment,
    };
    let run = &run;
    join_all(
        modules
            .into_iter()
            .map(|(module, demand)| probe_with_second_attempt(run, module, demand)),
    )
    .await
    .into_iter()
    .flatten()
    .map(|verdict| (verdict.id.clone(), verdict))
    .collect()
}

/// What every probe of one grading shares.
#[derive(Clone, Copy)]
struct Run<'a> {
    cluster: &'a Cluster,
    context: &'a ProbeContext<'a>,
    deadline: Deadline,
    environment: &'a EnvironmentWatch,
}

/// The least time left before the deadline for a second attempt at a probe that ended
/// in "error": less, and the attempt would only be cut off (the first error stands).
const SECOND_ATTEMPT_MIN_TIME: Duration = Duration::from_secs(5 * 60);

/// How long a second attempt waits for an outage that outlasted the first to end: one
/// that lasts longer is not passing, and the first error stands, naming it.
const WHOLE_AGAIN_WITHIN: Duration = Duration::from_secs(120);

/// [`probe_in_namespace`], run once more in a fresh namespace when one of its verdicts
/// is an "error" (the environment failed it, not the submission) and the deadline leaves
/// room: one grading then survives a passing hiccup of the cluster instead of being run
/// again whole. Both attempts stay in the report (see [`merge_attempts`]).
fn probe_with_second_attempt<'a>(
    run: &'a Run<'a>,
    module: &'static dyn Criterion,
    demand: CpuDemand,
) -> BoxFuture<'a, Vec<Verdict>> {
    Box::pin(async move {
        let mut first = probe_in_namespace(run, module, demand).await;
        let room = || {
            run.deadline
                .at
                .saturating_duration_since(tokio::time::Instant::now())
        };
        if !first.iter().any(|v| v.outcome == Outcome::Error) || room() < SECOND_ATTEMPT_MIN_TIME {
            return first;
        }
        let wait = WHOLE_AGAIN_WITHIN.min(room().saturating_sub(SECOND_ATTEMPT_MIN_TIME));
        if let Err(down) = run.environment.whole_again(wait).await {
            let down = describe_outages(&down);
            for verdict in first.iter_mut().filter(|v| v.outcome == Outcome::Error) {
                verdict.evidence.push(Evidence::Note {
                    text: format!(
                        "not probed again: the environment was still down {} s later: {down}",
                        wait.as_secs()
                    ),
                });
            }
            return first;
        }
        let room = room();
        for verdict in first.iter().filter(|v| v.outcome == Outcome::Error) {
            eprintln!(
                "{}: error on the first attempt, probing again ({} s left): {}",
                verdict.id,
                room.as_secs(),
                verdict.message
            );
        }
        let second = probe_in_namespace(run, module, demand).await;
        merge_attempts(first, second)
    })
}

/// The verdicts of two attempts at one probe: the second's where it judged (pass or
/// fail), noting the first attempt's error; the first's where the second erred too (its
/// evidence is the fuller), noting the second's error. A verdict that was no error the
/// first time keeps the second attempt's (the probe ran whole again).
fn merge_attempts(first: Vec<Verdict>, second: Vec<Verdict>) -> Vec<Verdict> {
    let mut first: BTreeMap<String, Verdict> =
        first.into_iter().map(|v| (v.id.clone(), v)).collect();
    second
        .into_iter()
        .map(|again| match first.remove(&again.id) {
            Some(before) if before.outcome == Outcome::Error => {
                if again.outcome == Outcome::Error {
                    let mut kept = before;
                    kept.evidence.push(Evidence::Note {
                        text: format!("second attempt: error too: {}", again.message),
                    });
                    kept
                } else {
                    let mut kept = again;
                    kept.evidence.insert(
                        0,
                        Evidence::Note {
                            text: format!(
                                "first attempt: error (the environment's, probed again): {}",
                                before.message
                            ),
                        },
                    );
                    kept
                }
            }
            _ => again,
        })
        .collect()
}

/// One module's probe in a namespace of its own, `grade-<its first criterion>`, once its
/// CPU `demand` is reserved in the cluster's ledger (held until the namespace is gone),
/// stopped at `deadline`. A namespace that cannot be made is an environment error for
/// its criteria.
fn probe_in_namespace<'a>(
    run: &'a Run<'a>,
    module: &'static dyn Criterion,
    demand: CpuDemand,
) -> BoxFuture<'a, Vec<Verdict>> {
    let Run {
        cluster,
        context,
        deadline,
        environment,
    } = *run;
    Box::pin(async move {
        let ids = || live_criteria(module).map(|c| c.id);
        let first = module
            .about()
            .first()
            .map_or("criterion", |c| c.id.as_str());
        let mut namespace = match cluster.namespace(&format!("grade-{first}")).await {
            Ok(namespace) => namespace,
            Err(environment) => {
                return live_criteria(module)
                    .map(|c| environment_error(c.id, &environment))
                    .collect();
            }
        };
        let submission_name = context
            .submission
            .root
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let probe_name = format!("{submission_name}/{first}");
        let reserved = cluster
            .reserve_cpu(demand, &namespace.name, &probe_name, deadline.at)
            .await;
        let reservation = match reserved {
            Ok(reservation) => reservation,
            Err(_) if tokio::time::Instant::now() + Duration::from_secs(5) >= deadline.at => {
                let verdicts = ids().map(|id| past_deadline(id, deadline, false)).collect();
                return finish(namespace, verdicts).await;
            }
            Err(environment) => {
                let verdicts = ids()
                    .map(|id| environment_error(id, &environment))
                    .collect();
                return finish(namespace, verdicts).await;
            }
        };
        let started = tokio::time::Instant::now();
        let mut verdicts = match module.probe(&mut namespace, context) {
            Some(probe) => {
                crate::progress::probe_scope(probe_name, by_deadline(deadline, ids(), probe)).await
            }
            None => live_criteria(module)
                .map(|c| Verdict::not_run(c.id.as_str(), not_probed_reason(module, c.id)))
                .collect(),
        };
        if verdicts
            .iter()
            .any(|v| matches!(v.outcome, Outcome::Fail | Outcome::Error))
        {
            environment.confirm().await;
        }
        let mut outages = environment.outages_since(started);
        if let Some(deleted) = namespace.deleted_under_its_owner().await {
            outages.push(Outage {
                what: format!("the probe's namespace {}", namespace.name),
                detail: format!("deleted while the probe ran: {deleted}"),
                from: tokio::time::Instant::now(),
                to: None,
            });
        }
        blame_the_environment(&mut verdicts, &outages);
        let verdicts = finish(namespace, verdicts).await;
        if let Some(reservation) = reservation {
            reservation.release().await;
        }
        verdicts
    })
}

/// "the API server (did not answer within 5 s) for 12 s; …", for verdicts.
fn describe_outages(outages: &[Outage]) -> String {
    outages
        .iter()
        .map(Outage::describe)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A probe that failed while the environment was down (an outage that overlapped its run)
/// has not judged the submission: its "fail" becomes an "error" naming the outage. A pass
/// stands: what it needed worked.
fn blame_the_environment(verdicts: &mut [Verdict], outages: &[Outage]) {
    if outages.is_empty() {
        return;
    }
    let down = describe_outages(outages);
    // A probe's own error names what it saw; the outage may be why.
    for verdict in verdicts.iter_mut().filter(|v| v.outcome == Outcome::Error) {
        verdict.evidence.push(Evidence::Note {
            text: format!("the environment meanwhile: {down}"),
        });
    }
    for verdict in verdicts.iter_mut().filter(|v| v.outcome == Outcome::Fail) {
        verdict.outcome = Outcome::Error;
        verdict.message = format!(
            "the environment failed while the probe ran: {down}; so this failure is not the submission's (grade again once the cluster is whole). The probe said: {}",
            verdict.message
        );
    }
}

/// Deletes a probe's namespace (bounded; what finalizers hold back is printed, not
/// hidden) and hands back its verdicts.
async fn finish(namespace: TestNamespace, verdicts: Vec<Verdict>) -> Vec<Verdict> {
    let stuck = namespace.cleanup().await;
    if !stuck.is_empty() {
        eprintln!(
            "cleanup of {} incomplete:\n  {}",
            namespace.name,
            stuck.join("\n  ")
        );
    }
    verdicts
}

/// `probe`'s verdicts, or one per criterion of `ids` saying the probe was stopped at
/// the deadline (dropping the probe drops what it holds: its namespaces clean up).
async fn by_deadline(
    deadline: Deadline,
    ids: impl Iterator<Item = CriterionId>,
    probe: impl std::future::Future<Output = Vec<Verdict>>,
) -> Vec<Verdict> {
    match tokio::time::timeout_at(deadline.at, probe).await {
        Ok(verdicts) => verdicts,
        Err(_) => ids.map(|id| past_deadline(id, deadline, true)).collect(),
    }
}

/// A criterion the deadline cut off. Not the submission's fault: each probe refuses,
/// as a "fail" before waiting, a submission whose own windows exceed its cap, and the
/// caps fit inside [`DEFAULT_DEADLINE`]; what is left is a slow cluster or a deadline
/// set too short.
fn past_deadline(id: CriterionId, deadline: Deadline, started: bool) -> Verdict {
    let when = if started {
        "was still running at"
    } else {
        "could not start before"
    };
    Verdict {
        id: id.to_string(),
        outcome: Outcome::Error,
        message: format!(
            "environment error (not the submission's fault): the probe {when} the grading deadline of {} s (grade --deadline); the submission's own windows fit the probe's cap, so the time went to the cluster or the deadline is too short",
            deadline.length.as_secs()
        ),
        findings: Vec::new(),
        evidence: Vec::new(),
    }
}

fn environment_error(id: CriterionId, error: &EnvironmentError) -> Verdict {
    Verdict {
        id: id.to_string(),
        outcome: Outcome::Error,
        message: format!("environment error (not the submission's fault): {error}"),
        findings: Vec::new(),
        evidence: Vec::new(),
    }
}

/// The criteria of a module that are judged live.
fn live_criteria(module: &dyn Criterion) -> impl Iterator<Item = &'static CriterionInfo> {
    module.about().iter().filter(|c| c.has_live_part)
}

/// The modules with live criteria and a probe, in registry order.
fn probed_modules() -> impl Iterator<Item = &'static dyn Criterion> {
    criteria::REGISTRY
        .iter()
        .copied()
        .filter(|module| live_criteria(*module).next().is_some() && has_probe(*module))
}

/// Whether a module has a live probe, known before a namespace is made for it.
fn has_probe(module: &dyn Criterion) -> bool {
    module.not_probed_because().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_during_an_outage_is_the_environments_and_a_pass_stands() {
        let outage = Outage {
            what: "APIService v1beta1.metrics.k8s.io".into(),
            detail: "Available=False: MissingEndpoints".into(),
            from: tokio::time::Instant::now(),
            to: None,
        };
        let mut verdicts = vec![
            Verdict::new("hpa-cpu", Outcome::Fail, "no scale-up within 300 s", vec![]),
            Verdict::new("hpa-scale-down", Outcome::Pass, "back to 1", vec![]),
            Verdict::new("vpa", Outcome::Error, "no replacement pod", vec![]),
        ];
        blame_the_environment(&mut verdicts, &[outage]);
        assert!(
            matches!(&verdicts[2].evidence[..], [Evidence::Note { text }] if text.contains("v1beta1.metrics.k8s.io")),
            "{:?}",
            verdicts[2].evidence
        );
        assert!(verdicts[0].evidence.is_empty());
        assert_eq!(verdicts[0].outcome, Outcome::Error);
        assert!(
            verdicts[0]
                .message
                .contains("v1beta1.metrics.k8s.io (Available=False: MissingEndpoints)")
                && verdicts[0].message.ends_with("no scale-up within 300 s"),
            "{}",
            verdicts[0].message
        );
        assert_eq!(verdicts[1].outcome, Outcome::Pass);
        let mut untouched = vec![Verdict::new("pdb", Outcome::Fail, "drained", vec![])];
        blame_the_environment(&mut untouched, &[]);
        assert_eq!(untouched[0].outcome, Outcome::Fail);
    }

    #[test]
    fn a_second_attempt_judges_where_the_first_erred_and_both_are_told() {
        let erred = |id: &str, why: &str| Verdict::new(id, Outcome::Error, why, vec![]);
        let first = vec![
            erred("vpa-recommendations", "no replacement pod"),
            erred("vpa-modes", "API server timed out"),
            Verdict::new("hpa-cpu", Outcome::Pass, "scaled", vec![]),
        ];
        let second = vec![
            Verdict::new(
                "vpa-recommendations",
                Outcome::Fail,
                "no recommendation",
                vec![],
            ),
            erred("vpa-modes", "API server timed out again"),
            Verdict::new("hpa-cpu", Outcome::Fail, "no scale-up", vec![]),
        ];
        let merged = merge_attempts(first, second);
        assert_eq!(merged[0].outcome, Outcome::Fail);
        assert_eq!(merged[0].message, "no recommendation");
        assert!(
            matches!(&merged[0].evidence[0], Evidence::Note { text } if text.contains("first attempt: error") && text.contains("no replacement pod"))
        );
        assert_eq!(merged[1].outcome, Outcome::Error);
        assert_eq!(merged[1].message, "API server timed out");
        assert!(
            matches!(merged[1].evidence.last(), Some(Evidence::Note { text }) if text.contains("again"))
        );
        // The probe ran whole again: its other verdicts are the second attempt's.
        assert_eq!(merged[2].message, "no scale-up");
    }

    #[test]
    fn the_builtin_rubric_is_consistent_and_adds_up_to_100() {
        let rubric = rubric().unwrap();
        assert_eq!(rubric.lines.len(), 8);
        assert_eq!(rubric.schema, 1);
    }

    #[test]
    fn a_rubric_naming_an_unknown_check_is_refused() {
        let mut rubric = rubric().unwrap();
        rubric.lines[1].static_items[0].check = "no.such-check".into();
        assert!(validate_names(&rubric).is_err());
    }

    fn verdict(id: &str) -> Verdict {
        Verdict::new(id, Outcome::Pass, "done", Vec::new())
    }

    #[tokio::test]
    async fn a_probe_still_running_at_the_deadline_is_stopped_with_a_verdict_saying_so() {
        let deadline = Deadline::after(Duration::from_millis(50));
        let ids = [CriterionId("hpa-cpu"), CriterionId("hpa-scale-down")];
        let started = Instant::now();
        let stopped = by_deadline(deadline, ids.into_iter(), futures::future::pending()).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(stopped.len(), 2);
        for (verdict, id) in stopped.iter().zip(ids) {
            assert_eq!(verdict.id, id.as_str());
            assert_eq!(verdict.outcome, Outcome::Error);
            assert!(
                verdict.message.contains("grading deadline"),
                "{}",
                verdict.message
            );
        }
        // A probe done in time keeps its own verdicts.
        let deadline = Deadline::after(Duration::from_secs(60));
        let done = by_deadline(deadline, ids.into_iter(), async {
            vec![verdict("hpa-cpu")]
        });
        assert_eq!(done.await, vec![verdict("hpa-cpu")]);
    }

    #[test]
    fn a_deadline_past_the_clocks_range_does_not_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let deadline = runtime.block_on(async { Deadline::after(Duration::MAX) });
        assert!(deadline.at > tokio::time::Instant::now() + Duration::from_secs(3600));
    }

    #[test]
    fn every_live_criterion_is_probed_or_says_why_not() {
        let rubric = rubric().unwrap();
        let probed: Vec<CriterionId> = probed().collect();
        for criterion in rubric.live_criteria() {
            let module = criteria::REGISTRY
                .iter()
                .find(|m| m.about().iter().any(|c| c.id.as_str() == criterion))
                .unwrap_or_else(|| panic!("{criterion} is in no module of the registry"));
            let id = criteria::find(criterion).unwrap().id;
            let reason = not_probed_reason(*module, id);
            assert!(
                probed.contains(&id) || !reason.contains("needs a live probe"),
                "{criterion}: {reason}"
            );
        }
        let live = criteria::all().filter(|c| c.has_live_part);
        assert!(live.filter(|c| probed.contains(&c.id)).count() == probed.len());
    }
}
