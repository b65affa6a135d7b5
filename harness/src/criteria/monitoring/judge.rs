//! Judge of `monitoring`: a pure function of what the probe saw ([`Observed`]) to a
//! verdict. Pass needs every loaded rule healthy in every round, every judged selector
//! matching a series, every latency/CPU alert the probe could wait for pending or firing
//! in time, and every judged panel query returning a series. Selectors on components
//! this cluster does not run (KEDA, VPA) are "not judged here", neither pass nor fail.

use super::ID;
use crate::verdict::{Evidence, Outcome, Verdict};
use std::time::Duration;

/// What one selector (or panel query) gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// This many series (or samples, for a panel query).
    Matched(usize),
    /// Nothing, for the whole time the probe looked.
    Nothing,
    /// Not asked: it needs a component this cluster does not run.
    NotJudged(String),
    /// Prometheus refused the query (the query's fault).
    Refused(String),
}

/// One vector selector, with the rules and panels that use it.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectorSeen {
    pub written: String,
    pub asked: String,
    /// `alert HPAAtMaxReplicas`, `record ml:x`, `panel "Request rate"`.
    pub used_by: Vec<String>,
    pub seen: Seen,
}

/// One rule's health over the rounds the probe read `/api/v1/rules`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleHealth {
    pub group: String,
    /// `alert X` or `record Y`.
    pub rule: String,
    /// Rounds in which Prometheus had evaluated it.
    pub rounds: usize,
    /// Rounds with health "err".
    pub errors: usize,
    pub last_health: String,
    pub last_error: Option<String>,
    /// Alerts only: the last state seen.
    pub state: Option<String>,
}

/// A latency or CPU alert under overload.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSeen {
    pub alert: String,
    pub for_: Duration,
    pub outcome: AlertOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlertOutcome {
    /// Pending or firing, this long after the overload began.
    Reached { state: String, after: Duration },
    /// Still inactive when `waited` (its `for` + 2 evaluation intervals + scrape lag) ran out.
    NotReached { waited: Duration },
    /// Its `for` is past what the probe waits (`cap`): not waited for; the expression's
    /// own answer under overload, as evidence.
    TooLong { cap: Duration, expression: String },
}

/// One dashboard panel query.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelSeen {
    pub panel: String,
    pub written: String,
    pub asked: String,
    pub seen: Seen,
}

/// Everything the probe saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Rule groups the submission has, and those Prometheus never loaded.
    pub groups: Vec<String>,
    pub groups_missing: Vec<String>,
    pub health: Vec<RuleHealth>,
    pub selectors: Vec<SelectorSeen>,
    pub alerts: Vec<AlertSeen>,
    pub panels: Vec<PanelSeen>,
    /// Why a ServiceMonitor or PodMonitor scrapes nothing, where the probe can tell.
    pub monitor_problems: Vec<String>,
    /// Metric values seen, for the evidence.
    pub values: Vec<(String, String)>,
    pub notes: Vec<String>,
}

fn seconds(d: Duration) -> String {
    format!("{:.0}s", d.as_secs_f64())
}

/// The verdict, with its evidence: the rule health table, the selectors that matched
/// nothing (and those not judged), the alerts, the panels and the values seen.
pub fn judge(observed: &Observed) -> Verdict {
    let (outcome, message) = decide(observed);
    Verdict::new(ID, outcome, message, evidence(observed))
}

fn decide(o: &Observed) -> (Outcome, String) {
    if o.groups.is_empty() && o.panels.is_empty() {
        return (
            Outcome::Fail,
            "expected Prometheus rule groups and a Grafana dashboard to judge live; the submission has neither".into(),
        );
    }
    if !o.groups_missing.is_empty() {
        // The cluster accepted the PrometheusRule: not loading it is the operator's doing.
        return (
            Outcome::Error,
            format!(
                "Prometheus never loaded rule group(s) {} from the PrometheusRule the probe applied (operator or config reloader not working)",
                o.groups_missing.join(", ")
            ),
        );
    }
    let mut problems = Vec::new();
    for rule in o.health.iter().filter(|r| r.errors > 0) {
        problems.push(format!(
            "{} (group {}) failed to evaluate in {} of {} rounds: {}",
            rule.rule,
            rule.group,
            rule.errors,
            rule.rounds,
            rule.last_error.as_deref().unwrap_or("no error text")
        ));
    }
    for s in &o.selectors {
        match &s.seen {
            Seen::Nothing => problems.push(format!(
                "selector `{}` ({}) matched no series",
                s.written,
                s.used_by.join(", ")
            )),
            Seen::Refused(why) => problems.push(format!(
                "selector `{}` ({}) was refused by Prometheus: {why}",
                s.written,
                s.used_by.join(", ")
            )),
            Seen::Matched(_) | Seen::NotJudged(_) => {}
        }
    }
    for a in &o.alerts {
        if let AlertOutcome::NotReached { waited } = &a.outcome {
            problems.push(format!(
                "alert {} stayed inactive under overload for {} (its `for` {} plus two evaluation intervals and the scrape lag)",
                a.alert,
                seconds(*waited),
                seconds(a.for_)
            ));
        }
    }
    for p in &o.panels {
        match &p.seen {
            Seen::Nothing => problems.push(format!(
                "panel \"{}\" returned no series for `{}`",
                p.panel, p.written
            )),
            Seen::Refused(why) => problems.push(format!(
                "panel \"{}\" query `{}` was refused by Prometheus: {why}",
                p.panel, p.written
            )),
            Seen::Matched(_) | Seen::NotJudged(_) => {}
        }
    }
    if problems.is_empty() {
        let matched = o
            .selectors
            .iter()
            .filter(|s| matches!(s.seen, Seen::Matched(_)))
            .count();
        let panels = o
            .panels
            .iter()
            .filter(|p| matches!(p.seen, Seen::Matched(_)))
            .count();
        let alerts = o
            .alerts
            .iter()
            .filter(|a| matches!(a.outcome, AlertOutcome::Reached { .. }))
            .count();
        return (
            Outcome::Pass,
            format!(
                "{} rule(s) in {} group(s) evaluated without error; {matched} selector(s) matched series; {alerts} latency/CPU alert(s) went pending or firing under overload; {panels} panel query(ies) returned series",
                o.health.len(),
                o.groups.len(),
            ),
        );
    }
    let mut message = format!(
        "{} monitoring problem(s) on the live cluster: {}",
        problems.len(),
        problems.join("; ")
    );
    if !o.monitor_problems.is_empty() {
        message.push_str(&format!(
            " (probable cause: {})",
            o.monitor_problems.join("; ")
        ));
    }
    message.push_str(
        ". Fix the metric names and labels to what the workloads export (check /api/v1/series), and the monitors' ports",
    );
    (Outcome::Fail, message)
}

fn evidence(o: &Observed) -> Vec<Evidence> {
    let mut evidence = Vec::new();
    let health: Vec<(String, String)> = o
        .health
        .iter()
        .map(|r| {
            let mut text = format!(
                "health {} ({} error round(s) of {})",
                r.last_health, r.errors, r.rounds
            );
            if let Some(state) = &r.state {
                text.push_str(&format!(", state {state}"));
            }
            if let Some(error) = r.last_error.as_deref().filter(|e| !e.is_empty()) {
                text.push_str(&format!(", last error: {error}"));
            }
            (format!("rule {} / {}", r.group, r.rule), text)
        })
        .collect();
    if !health.is_empty() {
        evidence.push(Evidence::Values { values: health });
    }
    let unmatched: Vec<String> = o
        .selectors
        .iter()
        .filter_map(|s| match &s.seen {
            Seen::Nothing => Some(format!(
                "matched nothing: `{}` (asked as `{}`) in {}",
                s.written,
                s.asked,
                s.used_by.join(", ")
            )),
            Seen::Refused(why) => Some(format!("refused: `{}`: {why}", s.asked)),
            Seen::NotJudged(why) => Some(format!(
                "not judged here ({why}): `{}` in {}",
                s.written,
                s.used_by.join(", ")
            )),
            Seen::Matched(_) => None,
        })
        .collect();
    if !unmatched.is_empty() {
        evidence.push(Evidence::Events { lines: unmatched });
    }
    let mut values: Vec<(String, String)> = o
        .selectors
        .iter()
        .filter_map(|s| match s.seen {
            Seen::Matched(n) => Some((format!("series of {}", s.asked), n.to_string())),
            _ => None,
        })
        .collect();
    for a in &o.alerts {
        let text = match &a.outcome {
            AlertOutcome::Reached { state, after } => {
                format!("{state} {} after the overload began", seconds(*after))
            }
            AlertOutcome::NotReached { waited } => {
                format!("inactive for the whole {} waited", seconds(*waited))
            }
            AlertOutcome::TooLong { cap, expression } => format!(
                "not waited for: its `for` is past the probe's cap of {}; its expression under overload: {expression}",
                seconds(*cap)
            ),
        };
        values.push((format!("alert {} (for {})", a.alert, seconds(a.for_)), text));
    }
    for p in &o.panels {
        let text = match &p.seen {
            Seen::Matched(n) => format!("{n} series"),
            Seen::Nothing => "no series".into(),
            Seen::NotJudged(why) => format!("not judged here ({why})"),
            Seen::Refused(why) => format!("refused: {why}"),
        };
        values.push((format!("panel \"{}\": {}", p.panel, p.asked), text));
    }
    values.extend(o.values.iter().cloned());
    if !values.is_empty() {
        evidence.push(Evidence::Values { values });
    }
    let mut notes = o.notes.clone();
    notes.extend(o.monitor_problems.iter().cloned());
    evidence.extend(Evidence::notes(&notes));
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Observed {
        Observed {
            groups: vec!["latency.rules".into()],
            health: vec![RuleHealth {
                group: "latency.rules".into(),
                rule: "alert HighLatency".into(),
                rounds: 3,
                errors: 0,
                last_health: "ok".into(),
                last_error: None,
                state: Some("firing".into()),
            }],
            selectors: vec![
                SelectorSeen {
                    written: r#"http_requests_total{namespace="ml-platform"}"#.into(),
                    asked: r#"http_requests_total{namespace="ac-1"}"#.into(),
                    used_by: vec!["record ml:rate".into()],
                    seen: Seen::Matched(2),
                },
                SelectorSeen {
                    written: "keda_scaler_errors_total".into(),
                    asked: "keda_scaler_errors_total".into(),
                    used_by: vec!["alert KEDAScalerErrors".into()],
                    seen: Seen::NotJudged("needs KEDA".into()),
                },
            ],
            alerts: vec![AlertSeen {
                alert: "HighLatency".into(),
                for_: Duration::from_secs(30),
                outcome: AlertOutcome::Reached {
                    state: "pending".into(),
                    after: Duration::from_secs(20),
                },
            }],
            panels: vec![PanelSeen {
                panel: "Rate".into(),
                written: "sum(rate(http_requests_total[1m]))".into(),
                asked: "sum(rate(http_requests_total[1m]))".into(),
                seen: Seen::Matched(1),
            }],
            ..Observed::default()
        }
    }

    #[test]
    fn all_healthy_and_matched_passes_with_keda_not_judged() {
        let verdict = judge(&healthy());
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
        let text = serde_json::to_string(&verdict.evidence).unwrap();
        assert!(text.contains("not judged here (needs KEDA)"), "{text}");
        assert!(text.contains("health ok"), "{text}");
    }

    #[test]
    fn a_selector_matching_nothing_fails_naming_it_and_its_rule() {
        let mut o = healthy();
        o.selectors[0].seen = Seen::Nothing;
        let verdict = judge(&o);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains(
                r#"selector `http_requests_total{namespace="ml-platform"}` (record ml:rate) matched no series"#
            ),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn a_rule_in_error_fails_with_its_error() {
        let mut o = healthy();
        o.health[0].errors = 2;
        o.health[0].last_health = "err".into();
        o.health[0].last_error = Some("many-to-many matching not allowed".into());
        let verdict = judge(&o);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict.message.contains("many-to-many"),
            "{}",
            verdict.message
        );
    }

    #[test]
    fn an_alert_that_never_went_pending_fails() {
        let mut o = healthy();
        o.alerts[0].outcome = AlertOutcome::NotReached {
            waited: Duration::from_secs(75),
        };
        let verdict = judge(&o);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .contains("alert HighLatency stayed inactive")
        );
    }

    #[test]
    fn a_long_for_is_a_note_not_a_failure() {
        let mut o = healthy();
        o.alerts[0].outcome = AlertOutcome::TooLong {
            cap: Duration::from_secs(300),
            expression: "2 series above the threshold".into(),
        };
        let verdict = judge(&o);
        assert_eq!(verdict.outcome, Outcome::Pass, "{}", verdict.message);
    }

    #[test]
    fn an_empty_panel_fails_naming_it_and_the_monitor_cause_is_said() {
        let mut o = healthy();
        o.panels[0].seen = Seen::Nothing;
        o.monitor_problems.push(
            "ServiceMonitor api: endpoint port `metrics` names no port of Service api".into(),
        );
        let verdict = judge(&o);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(
            verdict
                .message
                .contains("panel \"Rate\" returned no series")
        );
        assert!(verdict.message.contains("names no port of Service"));
    }

    #[test]
    fn groups_never_loaded_are_the_environment() {
        let mut o = healthy();
        o.groups_missing = vec!["latency.rules".into()];
        assert_eq!(judge(&o).outcome, Outcome::Error);
    }

    #[test]
    fn nothing_to_judge_fails() {
        assert_eq!(judge(&Observed::default()).outcome, Outcome::Fail);
    }
}
