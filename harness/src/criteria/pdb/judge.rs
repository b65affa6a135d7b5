//! The judge of `pdb`: a drain read back from its timeline ([`drain_facts`]: the
//! probe's markers for every eviction, the workload's pods' readiness) and held against
//! what the budget's spec allows ([`DrainExpectation`], [`judge_drain`]). Pure: a saved
//! timeline is judged again to the same verdict.

pub mod facts;

use crate::cluster::ClusterIntervals;
use crate::verdict::Outcome;
use facts::{Attempt, DrainEnd, DrainFacts, Eviction};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a drain waits before retrying an eviction the budget refused. (`kubectl
/// drain` waits 5 s; the API server decides on the budget's current status either way.)
pub const EVICTION_RETRY: Duration = Duration::from_secs(1);

/// The most the drain may take on the submission's own numbers (its replicas, what its
/// budget allows at a time, its pods' `terminationGracePeriodSeconds`): a drain that
/// needs more fails before anything is applied instead of holding the grader.
pub const MAX_DRAIN: Duration = Duration::from_secs(10 * 60);

/// Disruptions a budget allows with `expected` pods, all healthy (the disruption
/// controller's arithmetic: percentages of minAvailable round up, of maxUnavailable round up too).
pub fn allowed_disruptions(pdb: &PodDisruptionBudget, expected: i32) -> i32 {
    let spec = pdb.spec.as_ref();
    let scaled = |value: &IntOrString| match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(text) => {
            let percent: f64 = text.trim_end_matches('%').parse().unwrap_or(0.0);
            (percent * f64::from(expected) / 100.0).ceil() as i32
        }
    };
    if let Some(min_available) = spec.and_then(|s| s.min_available.as_ref()) {
        expected.saturating_sub(scaled(min_available)).max(0)
    } else if let Some(max_unavailable) = spec.and_then(|s| s.max_unavailable.as_ref()) {
        scaled(max_unavailable).min(expected).max(0)
    } else {
        // Neither field set: the budget constrains nothing.
        expected
    }
}

/// "minAvailable 1", "maxUnavailable 30%": the budget as the student wrote it.
pub fn budget_text(pdb: &PodDisruptionBudget) -> String {
    let show = |value: &IntOrString| match value {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => s.clone(),
    };
    let spec = pdb.spec.as_ref();
    match (
        spec.and_then(|s| s.min_available.as_ref()),
        spec.and_then(|s| s.max_unavailable.as_ref()),
    ) {
        (Some(min), _) => format!("minAvailable {}", show(min)),
        (None, Some(max)) => format!("maxUnavailable {}", show(max)),
        (None, None) => "neither minAvailable nor maxUnavailable".into(),
    }
}

/// How long draining `pods` pods may take once replacements can start: one wave of
/// `allowed` evictions per replacement start-up (plus a retry and the observation slack),
/// and the last pods' termination grace period.
pub fn drain_budget(
    intervals: &ClusterIntervals,
    pods: i32,
    allowed: i32,
    termination_grace: Duration,
) -> Duration {
    // Checked: the pod count and the grace period are the submission's numbers.
    let per_wave = i64::from(allowed.max(1));
    let waves = (i64::from(pods.max(0)) + per_wave - 1) / per_wave;
    let waves = u32::try_from(waves.max(1)).unwrap_or(u32::MAX);
    (intervals.pod_ready + EVICTION_RETRY + intervals.observation_slack)
        .checked_mul(waves)
        .and_then(|waves| waves.checked_add(termination_grace))
        .unwrap_or(Duration::MAX)
}

/// The pods' `terminationGracePeriodSeconds` in a Deployment (Kubernetes' 30 s when
/// unset or negative).
pub fn termination_grace(deployment: &serde_json::Value) -> Duration {
    Duration::from_secs(
        deployment
            .pointer("/spec/template/spec/terminationGracePeriodSeconds")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(30),
    )
}

/// The drain's budget for `replicas` pods all on the drained node (the most there can
/// be), or why the submission's own numbers cannot drain within [`MAX_DRAIN`].
pub fn drain_within_cap(
    intervals: &ClusterIntervals,
    replicas: i32,
    allowed: i32,
    termination_grace: Duration,
) -> Result<Duration, String> {
    let budget = drain_budget(intervals, replicas, allowed, termination_grace);
    if budget <= MAX_DRAIN {
        return Ok(budget);
    }
    let needs = if budget == Duration::MAX {
        "more than the clock can count".to_string()
    } else {
        format!("up to {} s", budget.as_secs())
    };
    Err(format!(
        "the drain cannot finish within the probe's cap of {} s on the submission's own numbers: {replicas} replica(s), {} evicted at a time, terminationGracePeriodSeconds={} need {needs}",
        MAX_DRAIN.as_secs(),
        allowed.max(1),
        termination_grace.as_secs()
    ))
}

/// What the budget's spec and the cluster say the drain must look like.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainExpectation {
    /// `PodDisruptionBudget <name>` as the report names it.
    pub pdb: String,
    /// "minAvailable 1" …
    pub budget: String,
    pub selector: String,
    pub replicas: i32,
    /// Disruptions the spec allows with `replicas` healthy pods.
    pub allowed: i32,
    /// `status.expectedPods`: the pods the budget counts.
    pub counted_pods: i32,
    pub source: String,
    pub destination: String,
    /// Pods on the source when it was cordoned.
    pub pods_on_source: i32,
    /// From the uncordon of the destination to the end of the drain.
    pub drain_budget: Duration,
    /// A dip below the required count shorter than this may be watch delivery.
    pub slack: Duration,
}

impl DrainExpectation {
    /// Healthy pods the budget requires during the drain.
    pub fn required(&self) -> i32 {
        self.replicas - self.allowed
    }
}

pub fn seconds(t: f64) -> String {
    format!("{t:.1}s")
}

/// What a failed rule says, or the pass.
type Judged = (Outcome, String);

/// Where every failure message points.
const SEE_EVIDENCE: &str = "(see the eviction lines and the timeline)";

/// The verdict on a drain, from the timeline's facts and the spec (pure): the first
/// rule the drain broke, else the pass.
pub fn judge_drain(expect: &DrainExpectation, facts: &DrainFacts) -> Judged {
    let drain = Reading::of(expect, facts);
    drain
        .protects_something()
        .or_else(|| drain.first_phase_allowed_the_budget())
        .or_else(|| drain.refusals_cite_the_budget())
        .or_else(|| drain.kept_the_required_pods())
        .or_else(|| drain.completed_in_time())
        .unwrap_or_else(|| drain.pass())
}

/// A drain as the rules read it: its attempts split at the uncordon, and the numbers
/// the messages cite.
struct Reading<'a> {
    expect: &'a DrainExpectation,
    facts: &'a DrainFacts,
    required: i32,
    /// Attempts once replacements could start (after the uncordon).
    phase2: Vec<&'a Attempt>,
    /// Evictions allowed while nowhere for a replacement to start.
    allowed_first: i32,
    /// How many the spec allows then.
    expected_first: i32,
    /// The first refusal before the uncordon, as the messages cite it.
    first_refusal: Option<String>,
    /// "2 at 1.1s": the fewest healthy pods, and when.
    min_healthy: String,
    /// When the drain started counting: the uncordon, else the cordon.
    started: f64,
}

impl<'a> Reading<'a> {
    fn of(expect: &'a DrainExpectation, facts: &'a DrainFacts) -> Reading<'a> {
        let (phase1, phase2): (Vec<&Attempt>, Vec<&Attempt>) = facts
            .attempts
            .iter()
            .partition(|a| facts.uncordoned_at.is_none_or(|u| a.t < u));
        let allowed_first = phase1
            .iter()
            .filter(|a| a.eviction == Eviction::Allowed)
            .count() as i32;
        let first_refusal = phase1.iter().find_map(|a| match &a.eviction {
            Eviction::Refused { cause, message } => Some(format!(
                "{} at {}: 429 {}: {message}",
                a.pod,
                seconds(a.t),
                cause.as_deref().unwrap_or("(no cause)")
            )),
            _ => None,
        });
        let min_healthy = facts
            .min_healthy
            .map(|(t, n)| format!("{n} at {}", seconds(t)))
            .unwrap_or_else(|| "unknown".into());
        Reading {
            expect,
            facts,
            required: expect.required(),
            phase2,
            allowed_first,
            expected_first: expect.allowed.min(expect.pods_on_source),
            first_refusal,
            min_healthy,
            started: facts.uncordoned_at.or(facts.cordoned_at).unwrap_or(0.0),
        }
    }

    /// A budget that counts no pod protects nothing.
    fn protects_something(&self) -> Option<Judged> {
        let (expect, required, min_healthy) = (self.expect, self.required, &self.min_healthy);
        let allowed_first = self.allowed_first;
        (expect.counted_pods == 0).then(|| {
            (
                Outcome::Fail,
                format!(
                    "{} matches no pod (selector {}), so it protects nothing: with no node free for replacements, the drain of {} evicted {allowed_first} of {} pods at once; expected its {} to keep at least {required} of {} healthy, healthy pods fell to {min_healthy} {SEE_EVIDENCE}",
                    expect.pdb,
                    expect.selector,
                    expect.source,
                    expect.pods_on_source,
                    expect.budget,
                    expect.replicas
                ),
            )
        })
    }

    /// With nowhere for replacements to go, exactly the spec's disruptions were allowed.
    fn first_phase_allowed_the_budget(&self) -> Option<Judged> {
        let (expect, min_healthy) = (self.expect, &self.min_healthy);
        let (allowed_first, expected_first) = (self.allowed_first, self.expected_first);
        if allowed_first > expected_first {
            return Some((
                Outcome::Fail,
                format!(
                    "expected the drain of {} to evict at most {} pod(s) while no replacement could start ({} of {} pods); {allowed_first} evictions were allowed and healthy pods fell to {min_healthy} {SEE_EVIDENCE}",
                    expect.source, expect.allowed, expect.budget, expect.replicas
                ),
            ));
        }
        if allowed_first < expected_first {
            return Some((
                Outcome::Fail,
                format!(
                    "expected {} ({} of {} pods) to allow {expected_first} eviction(s) before refusing; only {allowed_first} were allowed, then {} {SEE_EVIDENCE}",
                    expect.pdb,
                    expect.budget,
                    expect.replicas,
                    self.first_refusal.as_deref().unwrap_or("no answer")
                ),
            ));
        }
        None
    }

    /// Every refusal carries the DisruptionBudget cause, and the eviction after the
    /// allowed ones was refused.
    fn refusals_cite_the_budget(&self) -> Option<Judged> {
        let not_budget: Vec<String> = self
            .facts
            .attempts
            .iter()
            .filter_map(|a| match &a.eviction {
                Eviction::Refused { cause, message }
                    if cause.as_deref() != Some("DisruptionBudget") =>
                {
                    Some(format!(
                        "{} at {}: {}: {message}",
                        a.pod,
                        seconds(a.t),
                        cause.as_deref().unwrap_or("no cause")
                    ))
                }
                _ => None,
            })
            .collect();
        if !not_budget.is_empty() {
            return Some((
                Outcome::Fail,
                format!(
                    "expected refused evictions to carry the DisruptionBudget cause; {} did not: {} {SEE_EVIDENCE}",
                    not_budget.len(),
                    not_budget.join("; ")
                ),
            ));
        }
        let expected_first = self.expected_first;
        if expected_first < self.expect.pods_on_source && self.first_refusal.is_none() {
            return Some((
                Outcome::Fail,
                format!(
                    "expected the eviction after the {expected_first} allowed one(s) to be refused with 429 DisruptionBudget; the drain saw no refusal {SEE_EVIDENCE}"
                ),
            ));
        }
        None
    }

    /// Never fewer healthy pods than required for longer than the observation slack.
    fn kept_the_required_pods(&self) -> Option<Judged> {
        let (expect, required) = (self.expect, self.required);
        let (from, to, lowest) = self.facts.longest_dip?;
        (to - from > expect.slack.as_secs_f64()).then(|| {
            (
                Outcome::Fail,
                format!(
                    "expected at least {required} healthy pod(s) throughout the drain ({} of {} pods); only {lowest} from {} to {} {SEE_EVIDENCE}",
                    expect.budget,
                    expect.replicas,
                    seconds(from),
                    seconds(to)
                ),
            )
        })
    }

    /// The last refusal's message, and how many pods stayed on the source (those whose
    /// last eviction attempt was refused).
    fn last_refusal_and_left(&self) -> (String, usize) {
        let attempts = &self.facts.attempts;
        let last_refusal = attempts
            .iter()
            .rev()
            .find_map(|a| match &a.eviction {
                Eviction::Refused { message, .. } => Some(message.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let mut last: BTreeMap<&str, &Eviction> = BTreeMap::new();
        for a in attempts {
            last.insert(&a.pod, &a.eviction);
        }
        let left_on_source = last
            .values()
            .filter(|e| matches!(e, Eviction::Refused { .. }))
            .count();
        (last_refusal, left_on_source)
    }

    /// The drain completed, within its budget from the uncordon.
    fn completed_in_time(&self) -> Option<Judged> {
        let expect = self.expect;
        let (last_refusal, left_on_source) = self.last_refusal_and_left();
        match self.facts.end {
            Some((_, DrainEnd::Stuck)) => {
                return Some((
                    Outcome::Fail,
                    format!(
                        "the drain of {} did not complete: {left_on_source} pod(s) stayed on it, every eviction refused with 429 DisruptionBudget ({last_refusal}) although all {} counted pods were healthy and {} had room; {} of {} pods allows {} disruption(s), so a node running these pods can never be drained {SEE_EVIDENCE}",
                        expect.source,
                        expect.counted_pods,
                        expect.destination,
                        expect.budget,
                        expect.replicas,
                        expect.allowed
                    ),
                ));
            }
            Some((t, DrainEnd::TimedOut)) => {
                return Some((
                    Outcome::Fail,
                    format!(
                        "expected the drain of {} to complete within {:.0}s of uncordoning {} (replacements' start-up per wave of {} eviction(s)); {left_on_source} pod(s) were still on it after {} (last refusal: {last_refusal}) {SEE_EVIDENCE}",
                        expect.source,
                        expect.drain_budget.as_secs_f64(),
                        expect.destination,
                        expect.allowed.max(1),
                        seconds(t - self.started)
                    ),
                ));
            }
            None => {
                return Some((
                    Outcome::Error,
                    format!(
                        "the drain of {} left no end marker in the timeline",
                        expect.source
                    ),
                ));
            }
            Some((_, DrainEnd::Complete)) => {}
        }
        let took = self.took();
        (took > expect.drain_budget.as_secs_f64()).then(|| {
            (
                Outcome::Fail,
                format!(
                    "expected the drain of {} to complete within {:.0}s of uncordoning {}; it took {} {SEE_EVIDENCE}",
                    expect.source,
                    expect.drain_budget.as_secs_f64(),
                    expect.destination,
                    seconds(took)
                ),
            )
        })
    }

    /// From the start to the end marker.
    fn took(&self) -> f64 {
        let (t_end, _) = self.facts.end.unwrap_or((self.started, DrainEnd::Complete));
        t_end - self.started
    }

    fn pass(&self) -> Judged {
        let expect = self.expect;
        let (required, min_healthy) = (self.required, &self.min_healthy);
        let allowed_first = self.allowed_first;
        let allowed_later = self
            .phase2
            .iter()
            .filter(|a| a.eviction == Eviction::Allowed)
            .count();
        let refused_later = self
            .phase2
            .iter()
            .filter(|a| matches!(a.eviction, Eviction::Refused { .. }))
            .count();
        let first = match &self.first_refusal {
            Some(_) => format!(
                "{allowed_first} eviction(s) allowed, the next refused with 429 DisruptionBudget"
            ),
            None => format!("all {allowed_first} evictions allowed"),
        };
        (
            Outcome::Pass,
            format!(
                "{} ({} of {} pods) gated the drain of {}: with no node free for replacements, {first}; after uncordoning {}, {allowed_later} more allowed as replacements became Ready ({refused_later} refused meanwhile); drained in {} (budget {:.0}s), never fewer than {required} healthy pods (lowest {min_healthy})",
                expect.pdb,
                expect.budget,
                expect.replicas,
                expect.source,
                expect.destination,
                seconds(self.took()),
                expect.drain_budget.as_secs_f64()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::facts::drain_facts;
    use super::facts::tests::{REFUSAL, good_drain, mark, pod, timeline};
    use super::*;
    use rstest::rstest;

    fn pdb(
        min_available: Option<IntOrString>,
        max_unavailable: Option<IntOrString>,
    ) -> PodDisruptionBudget {
        PodDisruptionBudget {
            spec: Some(k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec {
                min_available,
                max_unavailable,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[rstest]
    #[case(Some(IntOrString::Int(1)), None, 2, 1)]
    #[case(Some(IntOrString::Int(3)), None, 2, 0)]
    #[case(Some(IntOrString::String("50%".into())), None, 3, 1)]
    #[case(None, Some(IntOrString::String("30%".into())), 2, 1)]
    #[case(None, Some(IntOrString::Int(1)), 4, 1)]
    fn allowed_disruptions_follow_the_controller(
        #[case] min: Option<IntOrString>,
        #[case] max: Option<IntOrString>,
        #[case] pods: i32,
        #[case] allowed: i32,
    ) {
        assert_eq!(allowed_disruptions(&pdb(min, max), pods), allowed);
    }

    #[test]
    fn budget_text_names_the_field_the_student_set() {
        assert_eq!(
            budget_text(&pdb(Some(IntOrString::Int(1)), None)),
            "minAvailable 1"
        );
        assert_eq!(
            budget_text(&pdb(None, Some(IntOrString::String("30%".into())))),
            "maxUnavailable 30%"
        );
    }

    #[test]
    fn drain_budget_counts_one_start_up_per_wave_and_the_grace_period() {
        let intervals = ClusterIntervals::default();
        let wave = intervals.pod_ready + EVICTION_RETRY + intervals.observation_slack;
        let grace = Duration::from_secs(10);
        // 4 pods, 1 at a time: 4 waves; 2 at a time: 2; a blocking budget still gets one.
        assert_eq!(drain_budget(&intervals, 4, 1, grace), wave * 4 + grace);
        assert_eq!(drain_budget(&intervals, 4, 2, grace), wave * 2 + grace);
        assert_eq!(drain_budget(&intervals, 2, 0, grace), wave * 2 + grace);
        assert_eq!(drain_budget(&intervals, 0, 1, grace), wave + grace);
    }

    /// Issue 12, point 1: a huge `terminationGracePeriodSeconds` overflowed the
    /// budget's arithmetic or the drain's `Instant + budget` (a panic either way).
    #[test]
    fn a_drain_the_submissions_numbers_cannot_fit_fails_before_waiting() {
        let intervals = ClusterIntervals::default();
        let grace = Duration::from_secs(i64::MAX as u64);
        // The largest grace a JSON number gives: the sum no longer fits a Duration.
        let largest = Duration::from_secs(u64::MAX);
        assert_eq!(
            drain_budget(&intervals, i32::MAX, 1, largest),
            Duration::MAX
        );
        let message = drain_within_cap(&intervals, i32::MAX, 1, largest).unwrap_err();
        assert!(
            message.contains("more than the clock can count"),
            "{message}"
        );
        let message = drain_within_cap(&intervals, 2, 1, grace).unwrap_err();
        assert!(
            message.contains("terminationGracePeriodSeconds=9223372036854775807"),
            "{message}"
        );
        let message = drain_within_cap(&intervals, 1000, 1, Duration::from_secs(30)).unwrap_err();
        assert!(
            message.contains("1000 replica(s), 1 evicted at a time"),
            "{message}"
        );
        assert!(drain_within_cap(&intervals, 2, 1, Duration::from_secs(30)).is_ok());
    }

    #[test]
    fn allowed_disruptions_saturate_on_extreme_budgets() {
        let pdb: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
            "spec": {"minAvailable": i32::MIN}
        }))
        .unwrap();
        assert_eq!(allowed_disruptions(&pdb, i32::MAX), i32::MAX);
    }

    fn expectation(counted: i32, allowed: i32) -> DrainExpectation {
        DrainExpectation {
            pdb: "PodDisruptionBudget fraud-detector-pdb".into(),
            budget: "minAvailable 1".into(),
            selector: "app=api".into(),
            replicas: 2,
            allowed,
            counted_pods: counted,
            source: "a".into(),
            destination: "b".into(),
            pods_on_source: 2,
            drain_budget: Duration::from_secs(60),
            slack: Duration::from_secs(5),
        }
    }

    #[test]
    fn a_budget_that_gated_the_drain_passes() {
        let facts = drain_facts(&good_drain(), "api", 1);
        let (outcome, message) = judge_drain(&expectation(2, 1), &facts);
        assert_eq!(outcome, Outcome::Pass, "{message}");
        assert!(
            message.contains("1 eviction(s) allowed, the next refused"),
            "{message}"
        );
        assert!(message.contains("1 more allowed"), "{message}");
    }

    #[test]
    fn a_budget_that_counts_no_pod_fails_as_protecting_nothing() {
        let samples = serde_json::json!([
            pod(0.5, "api-x-1", "Running", true, "a"),
            pod(0.6, "api-x-2", "Running", true, "a"),
            mark(1.0, "cordon a"),
            mark(1.1, "eviction allowed api-x-1"),
            mark(1.2, "eviction allowed api-x-2"),
            mark(1.3, "uncordon b"),
            pod(2.0, "api-x-3", "Running", true, "b"),
            mark(2.1, "drain complete"),
        ]);
        let facts = drain_facts(&timeline(samples), "api", 1);
        assert_eq!(facts.min_healthy, Some((1.2, 0)));
        assert_eq!(facts.longest_dip, Some((1.2, 2.0, 0)));
        let (outcome, message) = judge_drain(&expectation(0, 1), &facts);
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("matches no pod"), "{message}");
        assert!(message.contains("evicted 2 of 2 pods at once"), "{message}");
        // Counted by the budget but not enforced: too many evictions at once.
        let (outcome, message) = judge_drain(&expectation(2, 1), &facts);
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("at most 1 pod(s)"), "{message}");
    }

    #[test]
    fn a_budget_that_allows_nothing_leaves_the_drain_stuck() {
        let samples = serde_json::json!([
            pod(0.5, "api-x-1", "Running", true, "a"),
            pod(0.6, "api-x-2", "Running", true, "a"),
            mark(1.0, "cordon a"),
            mark(
                1.1,
                "eviction refused api-x-1: 429 DisruptionBudget: needs 2 healthy pods and has 2 currently"
            ),
            mark(1.3, "uncordon b"),
            mark(
                1.4,
                "eviction refused api-x-1: 429 DisruptionBudget: needs 2 healthy pods and has 2 currently"
            ),
            mark(
                1.5,
                "eviction refused api-x-2: 429 DisruptionBudget: needs 2 healthy pods and has 2 currently"
            ),
            mark(2.6, "drain stuck"),
        ]);
        let facts = drain_facts(&timeline(samples), "api", 2);
        let (outcome, message) = judge_drain(&expectation(2, 0), &facts);
        assert_eq!(outcome, Outcome::Fail);
        assert!(
            message.contains("did not complete: 2 pod(s) stayed"),
            "{message}"
        );
        assert!(message.contains("allows 0 disruption(s)"), "{message}");
    }

    #[test]
    fn refusals_without_the_budget_cause_fail() {
        let samples = serde_json::json!([
            pod(0.5, "api-x-1", "Running", true, "a"),
            pod(0.6, "api-x-2", "Running", true, "a"),
            mark(1.0, "cordon a"),
            mark(1.1, "eviction allowed api-x-1"),
            mark(
                1.2,
                "eviction refused api-x-2: 429 no cause: too many requests"
            ),
            mark(1.3, "uncordon b"),
            mark(2.1, "drain complete"),
        ]);
        let facts = drain_facts(&timeline(samples), "api", 1);
        let (outcome, message) = judge_drain(&expectation(2, 1), &facts);
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("DisruptionBudget cause"), "{message}");
    }

    #[test]
    fn a_long_dip_below_the_budget_fails_and_a_slow_drain_too() {
        // The second eviction allowed while the replacement is not Ready yet, for 10 s.
        let samples = serde_json::json!([
            pod(0.5, "api-x-1", "Running", true, "a"),
            pod(0.6, "api-x-2", "Running", true, "a"),
            mark(1.0, "cordon a"),
            mark(1.1, "eviction allowed api-x-1"),
            mark(1.2, &format!("eviction refused api-x-2: 429 {REFUSAL}")),
            mark(1.3, "uncordon b"),
            mark(2.0, "eviction allowed api-x-2"),
            pod(12.0, "api-x-3", "Running", true, "b"),
            mark(12.5, "drain complete"),
        ]);
        let facts = drain_facts(&timeline(samples), "api", 1);
        assert_eq!(facts.longest_dip, Some((2.0, 12.0, 0)));
        let (outcome, message) = judge_drain(&expectation(2, 1), &facts);
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("only 0 from 2.0s to 12.0s"), "{message}");

        let mut slow = expectation(2, 1);
        slow.drain_budget = Duration::from_secs(1);
        let (outcome, message) = judge_drain(&slow, &drain_facts(&good_drain(), "api", 1));
        assert_eq!(outcome, Outcome::Fail);
        assert!(message.contains("complete within 1s"), "{message}");
    }
}
