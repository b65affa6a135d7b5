//! Static checks of `keda-scale-to-zero`: a ScaledObject or ScaledJob scales a workload
//! of the submission on complete Prometheus triggers, down to zero when event-driven,
//! without a hand-written HPA competing for the same workload.

use super::ID;
use crate::checks::{CheckInfo, Collector, Index, Input, trigger_setting};
use crate::submission::Object;
use crate::submission::crds::{KedaTrigger, ScaledObject};
use crate::verdict::Location;
use std::collections::BTreeSet;

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
    "event-driven ScaledObjects can scale to zero (minReplicaCount 0, with a trigger that is not cpu/memory to wake them)",
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
    if min == 0 && only_resource_triggers(scaled) {
        zero_without_a_waking_trigger(object, scaled, out);
    }
}

/// Every trigger measures the pods' own CPU or memory (and there is at least one).
fn only_resource_triggers(scaled: &ScaledObject) -> bool {
    !scaled.spec.triggers.is_empty()
        && scaled
            .spec
            .triggers
            .iter()
            .all(|t| matches!(t.type_.as_str(), "cpu" | "memory"))
}

/// minReplicaCount 0 (written or KEDA's default) with only cpu/memory triggers: at zero
/// replicas there is no pod to measure, so nothing would ever scale the workload up
/// again. KEDA's admission webhook (verifyCPUMemoryScalers) refuses such a
/// ScaledObject when it scales a Deployment or StatefulSet.
fn zero_without_a_waking_trigger(object: &Object, scaled: &ScaledObject, out: &mut Collector) {
    let types: BTreeSet<&str> = scaled
        .spec
        .triggers
        .iter()
        .map(|t| t.type_.as_str())
        .collect();
    let min = if scaled.spec.min_replica_count.is_some() {
        "minReplicaCount 0"
    } else {
        "no minReplicaCount (KEDA's default is 0)"
    };
    let target_kind = scaled
        .spec
        .scale_target_ref
        .as_ref()
        .and_then(|t| t.kind.as_deref())
        .unwrap_or("Deployment");
    let consequence = if matches!(target_kind, "Deployment" | "StatefulSet") {
        "KEDA's admission webhook refuses it: \"scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)\""
    } else {
        "scale to zero cannot work: at zero replicas there is no pod whose CPU or memory could scale it up again"
    };
    out.fire_with_hint(
        &SCALE_TO_ZERO_MISSING,
        object.locate("/spec/minReplicaCount"),
        format!(
            "{} has {min} but only {} trigger{}; {consequence}",
            object.describe(),
            types.into_iter().collect::<Vec<_>>().join(" and "),
            if scaled.spec.triggers.len() == 1 { "" } else { "s" }
        ),
        "to scale to zero, add a trigger on the work itself (a prometheus trigger on the queue length, with serverAddress, query and threshold) so KEDA can wake the workload from zero; if CPU is all it scales on, set minReplicaCount: 1",
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Tools;
    use crate::checks::test_support::submission_of;
    use rstest::rstest;

    /// The scale-to-zero findings (location and message) for a ScaledObject with `spec`.
    fn scale_to_zero_findings(spec: &str) -> Vec<String> {
        let submission = submission_of(
            "so.yaml",
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: worker}}\nspec:\n  selector: {{matchLabels: {{app: w}}}}\n  template:\n    metadata: {{labels: {{app: w}}}}\n    spec:\n      containers: [{{name: c, image: i, resources: {{requests: {{cpu: 100m}}}}}}]\n---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: so}}\nspec:\n  scaleTargetRef: {{name: worker}}\n{spec}"
            ),
        );
        let mut out = Collector::default();
        check(&Input::new(&submission, &Tools::none()), &mut out);
        out.findings
            .iter()
            .filter(|f| f.check == SCALE_TO_ZERO_MISSING.id)
            .map(|f| format!("{}: {}", f.location, f.message))
            .collect()
    }

    const CPU: &str = "  - type: cpu\n    metricType: Utilization\n    metadata: {value: \"60\"}\n";
    const MEMORY: &str =
        "  - type: memory\n    metricType: Utilization\n    metadata: {value: \"70\"}\n";
    const QUEUE: &str = "  - type: prometheus\n    metadata: {serverAddress: \"http://p:9090\", query: q, threshold: \"5\"}\n";
    const CRON: &str = "  - type: cron\n    metadata: {timezone: UTC, start: 0 9 * * *, end: 0 17 * * *, desiredReplicas: \"2\"}\n";

    #[rstest]
    #[case::cpu_at_zero("  minReplicaCount: 0\n", &[CPU], "so.yaml:16")]
    #[case::cpu_and_memory_at_zero("  minReplicaCount: 0\n", &[CPU, MEMORY], "so.yaml:16")]
    #[case::zero_by_default("", &[MEMORY], "so.yaml:")]
    fn only_cpu_or_memory_triggers_cannot_wake_a_workload_from_zero(
        #[case] min: &str,
        #[case] triggers: &[&str],
        #[case] at: &str,
    ) {
        let found = scale_to_zero_findings(&format!("{min}  triggers:\n{}", triggers.concat()));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with(at), "{found:?}");
        assert!(
            found[0].contains("admission webhook refuses it")
                && found[0].contains("scale to zero doesn't work in this case"),
            "{found:?}"
        );
    }

    #[rstest]
    #[case::queue_beside_cpu("  minReplicaCount: 0\n", &[QUEUE, CPU])]
    #[case::queue_only("  minReplicaCount: 0\n", &[QUEUE])]
    #[case::cron_at_zero("  minReplicaCount: 0\n", &[CRON])]
    #[case::cpu_kept_at_one("  minReplicaCount: 1\n", &[CPU])]
    fn a_waking_trigger_or_a_floor_above_zero_is_fine(
        #[case] min: &str,
        #[case] triggers: &[&str],
    ) {
        let found = scale_to_zero_findings(&format!("{min}  triggers:\n{}", triggers.concat()));
        assert_eq!(found, Vec::<String>::new());
    }

    #[test]
    fn a_custom_resource_target_is_not_refused_but_still_cannot_scale_from_zero() {
        let submission = submission_of(
            "so.yaml",
            &format!(
                "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: so}}\nspec:\n  scaleTargetRef: {{apiVersion: example.com/v1, kind: Worker, name: w}}\n  minReplicaCount: 0\n  triggers:\n{CPU}"
            ),
        );
        let mut out = Collector::default();
        check(&Input::new(&submission, &Tools::none()), &mut out);
        let found: Vec<&str> = out
            .findings
            .iter()
            .filter(|f| f.check == SCALE_TO_ZERO_MISSING.id)
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("no pod whose CPU"), "{found:?}");
    }
}
