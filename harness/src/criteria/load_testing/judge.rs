//! The judge of `load-testing`: a pure function of the script's run (how it ended, its
//! output), the recorded timeline and the servers' request counts.
//!
//! It passes when the script exits 0 within its bound and, while it ran, an autoscaler
//! raised a target's replicas (the field manager of `spec.replicas` is the HPA
//! controller's: KEDA scales through its HPA too). A manual `kubectl scale`, a load
//! that never reached the Service, a script that fails or hangs: each fails, saying so.

use super::ID;
use crate::cluster::script_job::{ScriptEnd, ScriptRun};
use crate::criteria::hpa_cpu::judge::AUTOSCALER_MANAGERS;
use crate::timeline::{ReplicaStep, Timeline};
use crate::verdict::{Evidence, Outcome, Verdict};
use std::time::Duration;

/// Lines of the script's output quoted in a message; the evidence holds all that was kept.
const OUTPUT_LINES_IN_MESSAGE: usize = 8;

/// What the probe saw besides the timeline.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// The script, relative to the submission's root.
    pub script: &'a str,
    pub run: &'a ScriptRun,
    pub bound: Duration,
    /// (autoscaler, its scale target) the probe applied for the script.
    pub targets: &'a [(String, String)],
    /// Requests the targets' servers counted while the script ran, from their own
    /// counters; `None` where no server exposes one (an image other than the
    /// inference server).
    pub requests: Option<u64>,
}

/// The timeline's window of the script: its start and end markers.
pub const SCRIPT_START: &str = "script-start";
pub const SCRIPT_END: &str = "script-end";

pub fn judge(observed: &Observed<'_>, timeline: &Timeline) -> Verdict {
    let script = observed.script;
    let run = observed.run;
    let ran = run.ran_for.as_secs();
    let mut evidence = vec![Evidence::Events {
        lines: run.output.lines().map(str::to_string).collect(),
    }];
    let start = timeline.marker(SCRIPT_START).unwrap_or(0.0);
    let end = timeline.marker(SCRIPT_END).unwrap_or(f64::MAX);
    for (_, target) in observed.targets {
        let points = timeline.replica_excerpt(target, start, end);
        if !points.is_empty() {
            evidence.push(Evidence::Timeline { points });
        }
    }
    let requests = observed.requests.map_or(
        "no request counter exposed by the servers".to_string(),
        |n| format!("{n} requests counted by the servers"),
    );
    evidence.push(Evidence::Values {
        values: vec![
            ("script".into(), script.into()),
            ("ran for".into(), format!("{ran}s")),
            ("bound".into(), format!("{}s", observed.bound.as_secs())),
            ("load seen".into(), requests.clone()),
        ],
    });
    let fail = |message: String, evidence: Vec<Evidence>| {
        Verdict::new(ID.0, Outcome::Fail, message, evidence)
    };
    match run.end {
        ScriptEnd::OutOfTime => {
            return fail(
                format!(
                    "expected {script} to finish within {}s; it was still running at the bound and was stopped (a loop or a wait without a timeout?). Its last output: {}",
                    observed.bound.as_secs(),
                    tail(&run.output)
                ),
                evidence,
            );
        }
        ScriptEnd::Exited(code) if code != 0 => {
            let sandbox = if run.output.contains("Forbidden") || run.output.contains("forbidden") {
                " It was refused something: the grading sandbox lets a script act in its own namespace only (no nodes, no other namespaces)."
            } else {
                ""
            };
            return fail(
                format!(
                    "expected {script} to exit 0; it exited {code} after {ran}s.{sandbox} Its last output: {}",
                    tail(&run.output)
                ),
                evidence,
            );
        }
        ScriptEnd::Exited(_) => {}
    }
    let steps: Vec<(String, ReplicaStep)> = observed
        .targets
        .iter()
        .flat_map(|(hpa, target)| {
            timeline
                .steps(target, start)
                .into_iter()
                .filter(|s| s.t <= end)
                .map(move |s| (format!("{hpa} on {target}"), s))
        })
        .collect();
    let by_autoscaler = |step: &ReplicaStep| {
        step.manager
            .as_deref()
            .is_none_or(|m| AUTOSCALER_MANAGERS.contains(&m))
    };
    let scale_up = steps
        .iter()
        .find(|(_, s)| s.to > s.from && by_autoscaler(s));
    let by_hand: Vec<String> = steps
        .iter()
        .filter(|(_, s)| !by_autoscaler(s))
        .map(|(what, s)| {
            format!(
                "{what}: {} -> {} at {:.0}s into the script by field manager `{}`",
                s.from,
                s.to,
                s.t - start,
                s.manager.as_deref().unwrap_or("?")
            )
        })
        .collect();
    if let Some((what, step)) = scale_up {
        let down = steps
            .iter()
            .rev()
            .find(|(w, s)| w == what && s.t > step.t && s.to < s.from && by_autoscaler(s))
            .map(|(_, s)| format!(", and back down to {} at {:.0}s", s.to, s.t - start))
            .unwrap_or_default();
        let mut message = format!(
            "{script} exited 0 after {ran}s; while it ran, {what} scaled {} -> {} at {:.0}s into it (by the autoscaler){down}; {requests}",
            step.from,
            step.to,
            step.t - start
        );
        if !by_hand.is_empty() {
            message.push_str(&format!("; it also scaled by hand: {}", by_hand.join("; ")));
        }
        return Verdict::new(ID.0, Outcome::Pass, message, evidence);
    }
    if !by_hand.is_empty() {
        return fail(
            format!(
                "{script} changed the replicas itself, and no autoscaler scaled anything while it ran: {}. A manual `kubectl scale` proves nothing; generate load against the Service and let the HPA (or KEDA) scale",
                by_hand.join("; ")
            ),
            evidence,
        );
    }
    let names: Vec<&str> = observed.targets.iter().map(|(h, _)| h.as_str()).collect();
    let reached = match observed.requests {
        Some(0) => " Its load never reached the Service: the servers counted 0 requests while it ran (check the URL, the port and the Service's name).".to_string(),
        Some(n) => format!(" The servers counted {n} requests while it ran: not enough load, or for too short a time, to raise the CPU above the HPA's target."),
        None => String::new(),
    };
    fail(
        format!(
            "{script} exited 0 after {ran}s, but no autoscaler ({}) scaled up while it ran.{reached}",
            names.join(", ")
        ),
        evidence,
    )
}

/// The last lines of `output`, on one line.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = lines.len().saturating_sub(OUTPUT_LINES_IN_MESSAGE);
    let text = lines[from..].join(" | ");
    if text.is_empty() {
        "(none)".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Observation;

    fn timeline(steps: &[(f64, i32, Option<&str>)]) -> Timeline {
        let mut timeline = Timeline::new("t", "2026-12-01T00:00:00Z");
        timeline.push(0.0, scale(1, None));
        timeline.push(
            1.0,
            Observation::Marker {
                label: SCRIPT_START.into(),
            },
        );
        for (t, replicas, manager) in steps {
            timeline.push(*t, scale(*replicas, *manager));
        }
        timeline.push(
            200.0,
            Observation::Marker {
                label: SCRIPT_END.into(),
            },
        );
        timeline
    }

    fn scale(replicas: i32, manager: Option<&str>) -> Observation {
        Observation::Scale {
            target: "api".into(),
            replicas,
            ready_replicas: replicas,
            manager: manager.map(str::to_string),
        }
    }

    fn run(end: ScriptEnd) -> ScriptRun {
        ScriptRun {
            end,
            ran_for: Duration::from_secs(199),
            output: "=== Test 1\nreplicas 1\nPASS\n".into(),
        }
    }

    fn judged(
        end: ScriptEnd,
        steps: &[(f64, i32, Option<&str>)],
        requests: Option<u64>,
    ) -> Verdict {
        let targets = [("api-hpa".to_string(), "api".to_string())];
        let run = run(end);
        let observed = Observed {
            script: "scripts/test.sh",
            run: &run,
            bound: Duration::from_secs(600),
            targets: &targets,
            requests,
        };
        judge(&observed, &timeline(steps))
    }

    const HPA: Option<&str> = Some("kube-controller-manager");

    #[test]
    fn passes_when_the_hpa_scaled_up_while_the_script_ran() {
        let verdict = judged(
            ScriptEnd::Exited(0),
            &[(60.0, 3, HPA), (180.0, 1, HPA)],
            Some(5400),
        );
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
        assert!(
            verdict.message.contains("1 -> 3 at 59s into it"),
            "{}",
            verdict.message
        );
        assert!(
            verdict.message.contains("back down to 1"),
            "{}",
            verdict.message
        );
        assert!(
            verdict.message.contains("5400 requests"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn fails_a_script_that_scales_by_hand() {
        let verdict = judged(ScriptEnd::Exited(0), &[(30.0, 3, Some("kubectl"))], Some(0));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("field manager `kubectl`"),
            "{}",
            verdict.message
        );
        assert!(
            verdict.message.contains("kubectl scale"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn fails_when_the_load_never_reached_the_service() {
        let verdict = judged(ScriptEnd::Exited(0), &[], Some(0));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("never reached the Service"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn fails_too_little_load_naming_what_was_counted() {
        let verdict = judged(ScriptEnd::Exited(0), &[], Some(120));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("counted 120 requests"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn fails_a_script_that_hangs_past_its_bound_quoting_its_output() {
        let verdict = judged(ScriptEnd::OutOfTime, &[(60.0, 3, HPA)], Some(100));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("within 600s"),
            "{}",
            verdict.message
        );
        assert!(verdict.message.contains("PASS"), "{}", verdict.message);
    }

    #[test]
    fn fails_a_script_that_exits_non_zero_even_if_the_hpa_scaled() {
        let verdict = judged(ScriptEnd::Exited(1), &[(60.0, 3, HPA)], Some(100));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(verdict.message.contains("exited 1"), "{}", verdict.message);
    }

    #[test]
    fn a_scale_up_after_the_script_ended_does_not_count() {
        let verdict = judged(ScriptEnd::Exited(0), &[(250.0, 3, HPA)], Some(10));
        assert_eq!(verdict.outcome, Outcome::Fail, "{}", verdict.message);
    }
}
