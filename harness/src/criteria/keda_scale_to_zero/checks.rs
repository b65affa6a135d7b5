//! Static checks of `keda-scale-to-zero`: a ScaledObject or ScaledJob scales a workload
//! of the submission on complete Prometheus triggers, down to zero when event-driven,
//! without a hand-written HPA competing for the same workload.

use super::ID;
use crate::checks::{CheckInfo, Collector, Index, Input, trigger_setting};
use crate::submission::Object;
use crate::submission::crds::{KedaTrigger, ScaledObject};
use crate::verdict::Location;

pub const TARGET_MISSING: CheckInfo = CheckInfo::error(
    "ref.scaledobject-target-missing",
    ID,
    "every ScaledObject's scaleTargetRef names a workload in the submission",
    "make scaleTargetRef.name match the Deployment's metadata.name",
);

pub const MISSING: CheckInfo = CheckInfo::error(
    "keda.missing",
    ID,
    "a KEDA ScaledObject or ScaledJob (keda.sh/v1alpha1) is configured",
    "add a ScaledObject with a prometheus (queue) trigger",
)
.always_applicable();

pub const PROMETHEUS_TRIGGER_INCOMPLETE: CheckInfo = CheckInfo::error(
    "keda.prometheus-trigger-incomplete",
    ID,
    "every prometheus trigger has serverAddress, query and a numeric threshold",
    "set metadata.serverAddress, metadata.query and metadata.threshold (a quoted number)",
);

pub const SCALE_TO_ZERO_MISSING: CheckInfo = CheckInfo::error(
    "keda.scale-to-zero-missing",
    ID,
    "event-driven ScaledObjects can scale to zero (minReplicaCount 0)",
    "set minReplicaCount: 0 on the queue-driven ScaledObject",
);

pub const HPA_CONFLICT: CheckInfo = CheckInfo::error(
    "keda.hpa-conflict",
    ID,
    "no hand-written HPA targets a workload a ScaledObject already scales",
    "delete the HPA: KEDA creates and owns the HPA for a ScaledObject",
);

pub const CATALOGUE: &[CheckInfo] = &[
    TARGET_MISSING,
    MISSING,
    PROMETHEUS_TRIGGER_INCOMPLETE,
    SCALE_TO_ZERO_MISSING,
    HPA_CONFLICT,
];

pub fn check(input: &Input<'_>, out: &mut Collector) {
    let index = &input.index;
    mark_examined(index, out);
    if index.scaled_objects.is_empty() && index.scaled_jobs.is_empty() {
        out.fire(
            &MISSING,
            Location::file(""),
            "no KEDA ScaledObject or ScaledJob in the submission",
        );
    }
    for (object, triggers) in index.keda_triggers() {
        for (i, trigger) in triggers.iter().enumerate() {
            if trigger.type_ == "prometheus" {
                prometheus_trigger_complete(object, i, trigger, out);
            }
        }
    }
    for (object, scaled) in &index.scaled_objects {
        target_exists(index, object, scaled, out);
        scales_to_zero(object, scaled, out);
        no_hpa_on_target(index, object, scaled, out);
    }
}

fn mark_examined(index: &Index<'_>, out: &mut Collector) {
    if !index.scaled_objects.is_empty() {
        out.examined(&[TARGET_MISSING, HPA_CONFLICT]);
    }
    let triggers = index.keda_triggers();
    if triggers
        .iter()
        .flat_map(|(_, t)| t.iter())
        .any(|t| t.type_ == "prometheus")
    {
        out.examined(&[PROMETHEUS_TRIGGER_INCOMPLETE]);
    }
    if !index.scaled_jobs.is_empty()
        || index
            .scaled_objects
            .iter()
            .any(|(_, s)| s.spec.triggers.iter().any(event_driven))
    {
        out.examined(&[SCALE_TO_ZERO_MISSING]);
    }
}

/// Triggered by events (a queue, a metric), not by resource use or the clock.
fn event_driven(trigger: &KedaTrigger) -> bool {
    !matches!(trigger.type_.as_str(), "cpu" | "memory" | "cron")
}

fn target_exists(index: &Index<'_>, object: &Object, scaled: &ScaledObject, out: &mut Collector) {
    if index.scaled_object_target(object, scaled).is_some() {
        return;
    }
    let name = scaled
        .spec
        .scale_target_ref
        .as_ref()
        .map_or("", |t| t.name.as_str());
    out.fire(
        &TARGET_MISSING,
        object.locate("/spec/scaleTargetRef/name"),
        if name.is_empty() {
            format!(
                "{} has no scaleTargetRef name, so it scales nothing",
                object.describe()
            )
        } else {
            format!(
                "{} scales {name}, which is not a workload in the submission",
                object.describe()
            )
        },
    );
}

/// Trigger `i` of `object`, of type prometheus.
fn prometheus_trigger_complete(
    object: &Object,
    i: usize,
    trigger: &KedaTrigger,
    out: &mut Collector,
) {
    let mut missing: Vec<&str> = ["serverAddress", "query", "threshold"]
        .into_iter()
        .filter(|f| trigger_setting(trigger, f).is_none())
        .collect();
    if let Some(threshold) = trigger_setting(trigger, "threshold")
        && threshold.parse::<f64>().is_err()
    {
        missing.push("a numeric threshold");
    }
    if !missing.is_empty() {
        out.fire(
            &PROMETHEUS_TRIGGER_INCOMPLETE,
            object.locate(&format!("/spec/triggers/{i}/metadata")),
            format!(
                "{} prometheus trigger {i} lacks {}",
                object.describe(),
                missing.join(", ")
            ),
        );
    }
}

fn scales_to_zero(object: &Object, scaled: &ScaledObject, out: &mut Collector) {
    let min = scaled.spec.min_replica_count.unwrap_or(0);
    if min > 0 && scaled.spec.triggers.iter().any(event_driven) {
        out.fire(
            &SCALE_TO_ZERO_MISSING,
            object.locate("/spec/minReplicaCount"),
            format!("{} is event-driven but keeps minReplicaCount {min}, so the idle workload never scales to zero", object.describe()),
        );
    }
}

/// KEDA creates and owns the HPA of a ScaledObject: another HPA on the same
/// workload fights it.
fn no_hpa_on_target(
    index: &Index<'_>,
    object: &Object,
    scaled: &ScaledObject,
    out: &mut Collector,
) {
    let Some(target) = index.scaled_object_target(object, scaled) else {
        return;
    };
    for (hpa_object, _) in index.hpas_on(target) {
        out.fire(
            &HPA_CONFLICT,
            hpa_object.location(),
            format!(
                "{} targets {}, which {} (at {}) already scales through the HPA KEDA creates",
                hpa_object.describe(),
                target.describe(),
                object.describe(),
                object.location()
            ),
        );
    }
}
