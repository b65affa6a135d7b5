//! Live probe of `keda-cron`: the submission's cron trigger with its start and end moved
//! to a window that opens about a minute from now, in the submission's own time zone
//! (the rewrite is in the verdict's notes), alone on its ScaledObject (other triggers
//! would move the count too). Apply the workload and the ScaledObject (KEDA's webhook
//! judges it), record the replicas through the window and after it, and let
//! [`super::judge`] judge them against the window and the submission's own settings.

use super::ID;
use super::judge::{self, Budgets, CronSpec};
use crate::checks::trigger_setting;
use crate::cluster::keda::{self, KedaRecording, ScaledObjectState};
use crate::cluster::{ClusterIntervals, TestNamespace, wait_for};
use crate::criteria::demand::{self, CpuDemand};
use crate::criteria::hpa_cpu::budget::MAX_PROBE;
use crate::criteria::hpa_cpu::probe::objects_around;
use crate::criteria::{ProbeContext, Stop, stop_verdict_for, verdict_of_run};
use crate::observe::Recorder;
use crate::submission::{Object, Submission, Typed};
use crate::verdict::{Outcome, Verdict};
use chrono::{DateTime, Duration as Span, Timelike, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often KEDA's status is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// The window opens at the first whole minute at least this far ahead.
const LEAD: Duration = Duration::from_secs(30);

pub async fn run(namespace: &mut TestNamespace, context: &ProbeContext<'_>) -> Vec<Verdict> {
    let stop = |stop: Stop, notes: &[String]| {
        vec![stop_verdict_for(
            ID,
            stop,
            notes,
            &KedaRecording::default(),
            None,
        )]
    };
    let subject = match UnderTest::pick(context.submission) {
        Ok(subject) => subject,
        Err(s) => return stop(s, &[]),
    };
    let intervals = namespace.cluster.intervals;
    if let Err(message) = subject.within_cap(&intervals) {
        return stop(Stop::fail(message), &[]);
    }
    if let Err(message) = keda::installed(&namespace.client()).await {
        return vec![Verdict::new(ID, Outcome::Error, message, Vec::new())];
    }
    let name = namespace.name.clone();
    let recorder = Recorder::start(namespace, &name, context.timelines);
    let started_at = DateTime::parse_from_rfc3339(&recorder.snapshot().started_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now());
    let recording = Arc::new(Mutex::new(KedaRecording {
        scaled_object: subject.scaled_object.clone(),
        ..Default::default()
    }));
    let sampling = tokio::spawn(sample(
        namespace.client(),
        name.clone(),
        subject.scaled_object.clone(),
        recording.clone(),
        started_at,
    ));
    let mut notes = Vec::new();
    let driven = drive(
        namespace,
        context.submission,
        &subject,
        &recorder,
        started_at,
        &mut notes,
    )
    .await;
    sampling.abort();
    let timeline = recorder.finish();
    let recording = recording.lock().map(|r| r.clone()).unwrap_or_default();
    let saved = recording.save(context.timelines, &name);
    let judged = driven.map(|spec| {
        let budgets = Budgets::new(&spec, &intervals);
        judge::judge(&spec, &budgets, &timeline, &recording)
    });
    let saved = saved.map(|path| format!("KEDA's status saved to {path}"));
    vec![verdict_of_run(judged, &notes, &timeline, saved, |stop| {
        stop_verdict_for(ID, stop, &notes, &recording, Some(&timeline))
    })]
}

/// The window the probe schedules: cron expressions in the submission's zone (UTC when
/// it names none KEDA could load, so that KEDA's own refusal is the evidence).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start: String,
    pub end: String,
    pub opens: DateTime<Utc>,
    pub closes: DateTime<Utc>,
}

/// A window of `minutes` opening at the first whole minute at least [`LEAD`] after
/// `now`, written as `M H * * *` in `zone`; `empty` keeps the submission's empty window
/// empty (start = end).
pub fn window(
    now: DateTime<Utc>,
    zone: Option<chrono_tz::Tz>,
    minutes: i64,
    empty: bool,
) -> Window {
    let ahead = now + Span::from_std(LEAD).unwrap_or_default();
    let opens = ahead
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(ahead)
        + Span::minutes(1);
    let closes = opens + Span::minutes(minutes);
    let cron = |at: DateTime<Utc>| match zone {
        Some(zone) => {
            let local = at.with_timezone(&zone);
            format!("{} {} * * *", local.minute(), local.hour())
        }
        None => format!("{} {} * * *", at.minute(), at.hour()),
    };
    let start = cron(opens);
    let end = if empty { start.clone() } else { cron(closes) };
    Window {
        start,
        end,
        opens,
        closes,
    }
}

#[derive(Debug)]
struct UnderTest {
    scaled_object: String,
    target: String,
    /// The objects to apply, the ScaledObject last (its triggers replaced per run).
    objects: Vec<Value>,
    trigger: Value,
    timezone: Option<String>,
    empty_window: bool,
    desired: i32,
    min_replicas: i32,
    polling: Duration,
    cooldown: Duration,
    stabilization: Duration,
    others: usize,
}

fn seconds(scaled: &Value, pointer: &str, default: u64) -> Result<Duration, String> {
    match scaled.pointer(pointer) {
        None | Some(Value::Null) => Ok(Duration::from_secs(default)),
        Some(v) => v
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{pointer} `{v}` is not a whole number of seconds")),
    }
}

/// What the probe's pods request at its peak: the target at the trigger's
/// desiredReplicas inside the window.
pub fn cpu_demand(submission: &Submission) -> CpuDemand {
    UnderTest::pick(submission).map_or(CpuDemand::NONE, |subject| {
        demand::target_pods(submission, &subject.target, i64::from(subject.desired))
    })
}

impl UnderTest {
    fn pick(submission: &Submission) -> Result<UnderTest, Stop> {
        // Every (object, trigger index, desiredReplicas) of a cron trigger.
        let mut candidates: Vec<(&Object, usize, Option<i64>)> = Vec::new();
        for object in &submission.objects {
            if let Typed::ScaledObject(scaled) = &object.typed {
                for (i, trigger) in scaled.spec.triggers.iter().enumerate() {
                    if trigger.type_ == "cron" {
                        let desired = trigger_setting(trigger, "desiredReplicas")
                            .and_then(|d| d.parse::<i64>().ok());
                        candidates.push((object, i, desired));
                    }
                }
            }
        }
        let min_of = |o: &Object| {
            o.value()
                .pointer("/spec/minReplicaCount")
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        // The smallest window that moves the count (the node's CPU is shared).
        let chosen = candidates
            .iter()
            .filter(|(o, _, d)| d.is_some_and(|d| d > min_of(o)))
            .min_by_key(|(_, _, d)| d.unwrap_or(i64::MAX))
            .or(candidates.first());
        let Some(&(object, index, desired)) = chosen else {
            return Err(Stop::fail(
                "expected a KEDA ScaledObject with a cron trigger; found none".into(),
            ));
        };
        let Typed::ScaledObject(scaled) = &object.typed else {
            return Err(Stop::error("not a ScaledObject".into()));
        };
        let describe = object.describe();
        let trigger = &scaled.spec.triggers[index];
        let value = object.value();
        let min = min_of(object);
        let Some(desired) = desired.filter(|d| *d > min) else {
            return Err(Stop::fail(format!(
                "{describe}'s cron trigger {index} asks for desiredReplicas {}, which does not lift the workload above minReplicaCount {min}: the schedule changes nothing",
                trigger_setting(trigger, "desiredReplicas").unwrap_or("(none)")
            )));
        };
        let max = value
            .pointer("/spec/maxReplicaCount")
            .and_then(Value::as_i64)
            .unwrap_or(100);
        let reference = scaled.spec.scale_target_ref.as_ref();
        let (objects, target) = objects_around(
            submission,
            object,
            reference.and_then(|r| r.kind.as_deref()),
            reference.map_or("", |r| r.name.as_str()),
        )
        .map_err(Stop::fail)?;
        let start = trigger_setting(trigger, "start");
        let polling = seconds(value, "/spec/pollingInterval", 30).map_err(Stop::fail)?;
        let cooldown = seconds(value, "/spec/cooldownPeriod", 300).map_err(Stop::fail)?;
        let stabilization = seconds(
            value,
            "/spec/advanced/horizontalPodAutoscalerConfig/behavior/scaleDown/stabilizationWindowSeconds",
            300,
        )
        .map_err(Stop::fail)?;
        Ok(UnderTest {
            scaled_object: object.name.clone(),
            target,
            objects,
            trigger: value
                .pointer(&format!("/spec/triggers/{index}"))
                .cloned()
                .unwrap_or_else(|| json!({})),
            timezone: trigger_setting(trigger, "timezone").map(str::to_string),
            empty_window: start.is_some() && start == trigger_setting(trigger, "end"),
            desired: i32::try_from(desired.min(max)).unwrap_or(i32::MAX),
            min_replicas: i32::try_from(min).unwrap_or(0),
            polling,
            cooldown,
            stabilization,
            others: scaled.spec.triggers.len() - 1,
        })
    }

    /// The window's length: the rise's budget and half a minute to see it held.
    fn minutes(&self, intervals: &ClusterIntervals) -> i64 {
        let rise =
            self.polling + intervals.hpa_sync_period * 2 + judge::MARGIN + Duration::from_secs(30);
        i64::try_from(rise.as_secs().div_ceil(60))
            .unwrap_or(i64::MAX)
            .max(2)
    }

    fn spec(&self, window: &Window, started_at: DateTime<Utc>) -> CronSpec {
        let on_timeline = |at: DateTime<Utc>| (at - started_at).as_seconds_f64();
        CronSpec {
            scaled_object: self.scaled_object.clone(),
            target: self.target.clone(),
            timezone: self.timezone.clone(),
            start: window.start.clone(),
            end: window.end.clone(),
            empty_window: self.empty_window,
            desired: self.desired,
            min_replicas: self.min_replicas,
            polling: self.polling,
            cooldown: self.cooldown,
            stabilization: self.stabilization,
            opens: on_timeline(window.opens),
            closes: on_timeline(window.closes),
        }
    }

    /// Lead, window and way down must end inside the grader's deadline.
    fn within_cap(&self, intervals: &ClusterIntervals) -> Result<(), String> {
        let now = Utc::now();
        let w = window(now, None, self.minutes(intervals), false);
        let spec = self.spec(&w, now);
        let budgets = Budgets::new(&spec, intervals);
        let total =
            Duration::from_secs_f64(spec.closes.max(0.0)) + budgets.fall + Duration::from_secs(60);
        if total <= MAX_PROBE {
            return Ok(());
        }
        Err(format!(
            "with cooldownPeriod {}s (and a scale-down stabilization of {}s) the way down after the window takes up to {}s, and the run {}s, more than the grader's {}s for a probe",
            self.cooldown.as_secs(),
            self.stabilization.as_secs(),
            budgets.fall.as_secs(),
            total.as_secs(),
            MAX_PROBE.as_secs()
        ))
    }
}

async fn drive(
    namespace: &mut TestNamespace,
    submission: &Submission,
    subject: &UnderTest,
    recorder: &Recorder,
    started_at: DateTime<Utc>,
    notes: &mut Vec<String>,
) -> Result<CronSpec, Stop> {
    let intervals = namespace.cluster.intervals;
    let zone = subject
        .timezone
        .as_deref()
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok());
    let w = window(
        Utc::now(),
        zone,
        subject.minutes(&intervals),
        subject.empty_window,
    );
    let mut objects = subject.objects.clone();
    let mut trigger = subject.trigger.clone();
    if let Some(metadata) = trigger.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("start".into(), Value::String(w.start.clone()));
        metadata.insert("end".into(), Value::String(w.end.clone()));
    }
    if let Some(scaled) = objects.last_mut() {
        scaled["spec"]["triggers"] = json!([trigger]);
    }
    notes.push(format!(
        "the cron trigger's window moved to start `{}` end `{}` in {} (opens {}, closes {}){}{}",
        w.start,
        w.end,
        match (&subject.timezone, zone) {
            (Some(z), Some(_)) => format!("its timezone {z}"),
            (Some(z), None) => format!("UTC: its timezone `{z}` is not one KEDA can load"),
            (None, _) => "UTC: it names no timezone".into(),
        },
        w.opens.to_rfc3339(),
        w.closes.to_rfc3339(),
        if subject.empty_window { "; kept empty (start = end), as written" } else { "" },
        if subject.others > 0 {
            format!("; the ScaledObject's {} other trigger(s) left out, so that only this window moves the count", subject.others)
        } else {
            String::new()
        }
    ));
    let spec = subject.spec(&w, started_at);
    let budgets = Budgets::new(&spec, &intervals);
    let applied = namespace
        .apply(&submission.as_kubectl_sends(&objects))
        .await
        .map_err(|e| Stop::refused(submission, &e))?;
    notes.extend(applied.notes.iter().cloned());
    recorder.mark("applied");
    let deployments: Api<Deployment> = namespace.api();
    let until = |t: f64, extra: Duration| {
        Duration::from_secs_f64((t - recorder.now()).max(0.0)) + extra + Duration::from_secs(30)
    };
    // KEDA first brings the workload to minReplicaCount (a Deployment is created with one).
    let min = spec.min_replicas;
    let _ = wait_for(
        &deployments,
        &subject.target,
        &format!("the workload at minReplicaCount {min} before the window"),
        until(spec.opens, Duration::ZERO),
        move |d: Option<&Deployment>| d.is_some_and(|d| d.spec.replicas.unwrap_or(1) <= min),
        |d| format!("replicas {:?}", d.and_then(|d| d.spec.replicas)),
    )
    .await;
    let desired = spec.desired;
    let rose = wait_for(
        &deployments,
        &subject.target,
        &format!("desiredReplicas {desired} inside the window"),
        until(spec.opens, budgets.rise),
        move |d: Option<&Deployment>| d.is_some_and(|d| d.spec.replicas.unwrap_or(0) >= desired),
        |d| format!("replicas {:?}", d.and_then(|d| d.spec.replicas)),
    )
    .await;
    if rose.is_ok() {
        // Through the window (no change expected), then the way down.
        let _ = wait_for(
            &deployments,
            &subject.target,
            &format!("the way back to minReplicaCount {min} after the window"),
            until(spec.closes, budgets.fall),
            move |d: Option<&Deployment>| d.is_some_and(|d| d.spec.replicas.unwrap_or(0) <= min),
            |d| format!("replicas {:?}", d.and_then(|d| d.spec.replicas)),
        )
        .await;
        let target = subject.target.clone();
        let _ = recorder
            .caught_up(judge::MARGIN, move |t| {
                t.replicas(&target)
                    .last()
                    .is_some_and(|(_, r, _)| *r <= min)
            })
            .await;
    }
    Ok(spec)
}

/// KEDA's status of the ScaledObject every [`SAMPLE_EVERY`].
async fn sample(
    client: kube::Client,
    namespace: String,
    name: String,
    recording: Arc<Mutex<KedaRecording>>,
    started_at: DateTime<Utc>,
) {
    loop {
        let t = (Utc::now() - started_at).as_seconds_f64();
        if let Ok(Some(object)) = keda::scaled_object(&client, &namespace, &name).await
            && let Ok(mut recording) = recording.lock()
        {
            recording
                .states
                .push(ScaledObjectState::from_object(t, &object, started_at));
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::load_fixture;

    #[test]
    fn the_window_is_written_in_the_submissions_zone() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:53:40Z")
            .unwrap()
            .with_timezone(&Utc);
        let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
        let w = window(now, Some(ny), 2, false);
        // 10:54:10 → opens 10:55 UTC = 05:55 in New York (EST, UTC-5).
        assert_eq!(w.start, "55 5 * * *");
        assert_eq!(w.end, "57 5 * * *");
        assert_eq!((w.opens - now).num_seconds(), 80);
        let utc = window(now, None, 2, true);
        assert_eq!(utc.start, "55 10 * * *");
        assert_eq!(utc.end, utc.start, "an empty window stays empty");
    }

    #[test]
    fn the_reference_picks_its_smallest_window_and_fits_the_cap() {
        let subject = UnderTest::pick(&load_fixture("submissions/reference")).unwrap();
        assert_eq!(subject.target, "model-training-job");
        assert_eq!(
            subject.desired, 1,
            "the nightly window (1), not business hours (3)"
        );
        assert_eq!(subject.others, 1);
        assert_eq!(subject.timezone.as_deref(), Some("America/New_York"));
        assert!(subject.within_cap(&ClusterIntervals::default()).is_ok());
    }
}
