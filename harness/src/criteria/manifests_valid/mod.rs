//! Criterion `manifests-valid`: static checks only. The loader reports what does
//! not parse (`input.*`, `api.removed-version`); the rules here add the values the
//! API server would still refuse: malformed quantities, HPA behavior out of range,
//! selectors that miss their own template, and the field rules of `api_rules`.

mod api_rules;

use super::{CriterionId, CriterionInfo};
use crate::checks::{CheckInfo, Collector, Input, pointer_escape, selector_mismatch};
use crate::submission::quantity::parse_quantity;
use crate::submission::selector;
use crate::submission::{Object, Typed};
use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscaler};

pub const ID: CriterionId = CriterionId("manifests-valid");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "The submission's manifests load and use served API versions",
    rubric_line: "hpa-cpu-configuration",
    cncf_ai_conformance: None,
    has_live_part: false,
}];

pub const REMOVED_API_VERSION: CheckInfo = CheckInfo::error(
    "api.removed-version",
    ID,
    "manifests use API versions the cluster still serves",
    "change apiVersion to the named replacement and adjust fields that changed",
);

pub const PARSE_ERROR: CheckInfo = CheckInfo::error(
    "input.parse-error",
    ID,
    "every manifest parses and matches its kind's schema",
    "fix the syntax or field at the reported position",
);

pub const TOO_LARGE: CheckInfo = CheckInfo::error(
    "input.too-large",
    ID,
    "files are under the size limit",
    "remove generated or vendored content",
)
.always_applicable();

pub const BINARY: CheckInfo = CheckInfo::error(
    "input.binary",
    ID,
    "text files contain text",
    "remove binary artifacts from the submission",
)
.always_applicable();

pub const NOT_UTF8: CheckInfo = CheckInfo::error(
    "input.not-utf8",
    ID,
    "text files are UTF-8",
    "save the file as UTF-8",
)
.always_applicable();

pub const SYMLINK_OUTSIDE: CheckInfo = CheckInfo::error(
    "input.symlink-outside",
    ID,
    "no symbolic link points outside the submission",
    "commit the file instead of a link",
)
.always_applicable();

pub const DUPLICATE_OBJECT: CheckInfo = CheckInfo::error(
    "input.duplicate-object",
    ID,
    "each object (kind, namespace, name) is defined once",
    "remove the duplicate definition",
)
.always_applicable();

pub const ALIAS_BOMB: CheckInfo = CheckInfo::error(
    "input.alias-bomb",
    ID,
    "YAML aliases expand to a bounded size",
    "write the values out instead of nesting aliases",
)
.always_applicable();

pub const UNKNOWN_KIND: CheckInfo = CheckInfo::info(
    "input.unknown-kind",
    ID,
    "every object is of a kind the grader reads",
    "nothing to do if the kind is intended",
)
.always_applicable();

pub const HELM_TEMPLATE: CheckInfo = CheckInfo::info(
    "input.helm-template",
    ID,
    "Helm chart templates are recognised (not rendered, not graded) instead of failing to parse",
    "commit the rendered manifests as well so that they are graded",
)
.always_applicable();

pub const KUSTOMIZE_PATCH: CheckInfo = CheckInfo::info(
    "input.kustomize-patch",
    ID,
    "files a kustomization applies as patches are read as patches, not as whole objects",
    "nothing to fix",
)
.always_applicable();

pub const CATALOGUE: &[CheckInfo] = &[
    REMOVED_API_VERSION,
    PARSE_ERROR,
    TOO_LARGE,
    BINARY,
    NOT_UTF8,
    SYMLINK_OUTSIDE,
    DUPLICATE_OBJECT,
    ALIAS_BOMB,
    UNKNOWN_KIND,
    HELM_TEMPLATE,
    KUSTOMIZE_PATCH,
];

pub struct ManifestsValid;

criterion_checks_only!(ManifestsValid);

/// Runs the rules of `manifests-valid` (the loader's findings are already in `out`).
pub fn check(input: &Input<'_>, out: &mut Collector) {
    if !input.submission.objects.is_empty() {
        out.examined(&[REMOVED_API_VERSION, PARSE_ERROR]);
    }
    for (object, hpa) in &input.index.hpas {
        hpa_behavior_in_range(object, hpa, out);
    }
    quantities_parse(input, out);
    selectors_match_templates(input, out);
    for object in &input.submission.objects {
        api_rules::check(object, out);
    }
}

/// apps/v1 validation (ValidateDeploymentSpec and its siblings): the selector
/// must select the controller's own pod template, or the API server refuses
/// the object. Services and PDBs written against that selector then select
/// nothing; their checks point here instead of blaming themselves.
fn selectors_match_templates(input: &Input<'_>, out: &mut Collector) {
    for workload in &input.index.workloads {
        let Some(own) = selector_mismatch(workload) else {
            continue;
        };
        let labels: Vec<String> = workload
            .pod_template()
            .and_then(|t| t.labels)
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let refusal = if selector::is_empty(own) {
            "spec.selector: Invalid value: empty selector is invalid for this kind".to_string()
        } else {
            // Go's %#v of the label map, as the API server prints it.
            let go_map: Vec<String> = workload
                .pod_template()
                .and_then(|t| t.labels)
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k:?}:{v:?}"))
                .collect();
            format!(
                "spec.template.metadata.labels: Invalid value: map[string]string{{{}}}: `selector` does not match template `labels`",
                go_map.join(", ")
            )
        };
        out.fire_with_hint(
            &PARSE_ERROR,
            workload.locate("/spec/selector"),
            format!(
                "{} selects pods by {} but its pod template is labelled {}; the API server refuses it: {refusal}",
                workload.describe(),
                if selector::is_empty(own) { "nothing".to_string() } else { selector::to_query(own) },
                if labels.is_empty() { "with nothing".to_string() } else { labels.join(",") }
            ),
            "make spec.selector select spec.template.metadata.labels (use the same key=value pairs in both); Services and PDBs select the template's labels too",
        );
    }
}

/// autoscaling/v2 validation of `behavior` (ValidateHorizontalPodAutoscaler):
/// windows in 0..=3600 s, policy values > 0 and periods in 1..=1800 s.
fn hpa_behavior_in_range(object: &Object, hpa: &HorizontalPodAutoscaler, out: &mut Collector) {
    let Some(behavior) = hpa.spec.behavior.as_ref() else {
        return;
    };
    for (direction, rules) in [
        ("scaleUp", behavior.scale_up.as_ref()),
        ("scaleDown", behavior.scale_down.as_ref()),
    ] {
        if let Some(rules) = rules {
            scaling_rules_in_range(object, direction, rules, out);
        }
    }
}

fn scaling_rules_in_range(
    object: &Object,
    direction: &str,
    rules: &HPAScalingRules,
    out: &mut Collector,
) {
    let base = format!("/spec/behavior/{direction}");
    if let Some(select) = rules.select_policy.as_deref()
        && !matches!(select, "Max" | "Min" | "Disabled")
    {
        out.fire_with_hint(
            &PARSE_ERROR,
            object.locate(&format!("{base}/selectPolicy")),
            format!(
                "{} {direction}.selectPolicy is `{select}`; the API server accepts Max, Min or Disabled",
                object.describe()
            ),
            "write selectPolicy as Max, Min or Disabled (case matters)",
        );
    }
    if let Some(window) = rules.stabilization_window_seconds
        && !(0..=3600).contains(&window)
    {
        out.fire_with_hint(
            &PARSE_ERROR,
            object.locate(&format!("{base}/stabilizationWindowSeconds")),
            format!(
                "{} {direction}.stabilizationWindowSeconds is {window}; the API server accepts 0 to 3600",
                object.describe()
            ),
            "use at most 3600 s (the exercise uses 300 s for scale-down)",
        );
    }
    for (i, policy) in rules.policies.iter().flatten().enumerate() {
        let pointer = format!("{base}/policies/{i}");
        if policy.value <= 0 {
            out.fire_with_hint(
                &PARSE_ERROR,
                object.locate(&format!("{pointer}/value")),
                format!(
                    "{} {direction} policy {i} has value {}; the API server requires more than 0",
                    object.describe(),
                    policy.value
                ),
                "to stop scaling in one direction, use selectPolicy: Disabled",
            );
        }
        if !(1..=1800).contains(&policy.period_seconds) {
            out.fire_with_hint(
                &PARSE_ERROR,
                object.locate(&format!("{pointer}/periodSeconds")),
                format!(
                    "{} {direction} policy {i} has periodSeconds {}; the API server accepts 1 to 1800",
                    object.describe(),
                    policy.period_seconds
                ),
                "use a period between 1 and 1800 s, e.g. 60",
            );
        }
    }
}

/// Every resource quantity the API server would parse ("200m", "4Gi") must be
/// one: `256MB` or `1.5 cores` are rejected at apply time.
fn quantities_parse(input: &Input<'_>, out: &mut Collector) {
    for object in &input.submission.objects {
        let value = object.value();
        for pointer in quantity_pointers(object) {
            let Some(text) = value.pointer(&pointer).and_then(|v| v.as_str()) else {
                continue;
            };
            if let Err(error) = parse_quantity(text) {
                out.fire_with_hint(
                    &PARSE_ERROR,
                    object.locate(&pointer),
                    format!("{} at `{pointer}`: {error}", object.describe()),
                    "write Kubernetes quantities like 200m, 0.5, 256Mi, 4Gi (no MB/GB, no spaces)",
                );
            }
        }
    }
}

/// The pointers of an object's fields that hold a resource quantity: container
/// requests and limits, HPA metric targets, LimitRange and ResourceQuota values,
/// VPA container policy bounds.
fn quantity_pointers(object: &Object) -> Vec<String> {
    let value = object.value();
    let length = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(|v| v.as_array())
            .map_or(0, Vec::len)
    };
    let mut maps: Vec<String> = Vec::new();
    let mut scalars: Vec<String> = Vec::new();
    if let Some(template) = object.pod_template() {
        for list in ["containers", "initContainers"] {
            for i in 0..length(&format!("{}/{list}", template.pointer)) {
                for kind in ["requests", "limits"] {
                    maps.push(format!("{}/{list}/{i}/resources/{kind}", template.pointer));
                }
            }
        }
    }
    match &object.typed {
        Typed::HorizontalPodAutoscaler(_) => {
            for i in 0..length("/spec/metrics") {
                for source in [
                    "resource",
                    "containerResource",
                    "pods",
                    "object",
                    "external",
                ] {
                    for field in ["value", "averageValue"] {
                        scalars.push(format!("/spec/metrics/{i}/{source}/target/{field}"));
                    }
                }
            }
        }
        Typed::LimitRange(_) => {
            for i in 0..length("/spec/limits") {
                for field in [
                    "default",
                    "defaultRequest",
                    "max",
                    "min",
                    "maxLimitRequestRatio",
                ] {
                    maps.push(format!("/spec/limits/{i}/{field}"));
                }
            }
        }
        Typed::ResourceQuota(_) => maps.push("/spec/hard".to_string()),
        Typed::VerticalPodAutoscaler(_) => {
            for i in 0..length("/spec/resourcePolicy/containerPolicies") {
                for field in ["minAllowed", "maxAllowed"] {
                    maps.push(format!(
                        "/spec/resourcePolicy/containerPolicies/{i}/{field}"
                    ));
                }
            }
        }
        _ => {}
    }
    for map in maps {
        if let Some(entries) = value.pointer(&map).and_then(|v| v.as_object()) {
            for key in entries.keys() {
                scalars.push(format!("{map}/{}", pointer_escape(key)));
            }
        }
    }
    scalars
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Tools;
    use crate::checks::test_support::submission_of;

    #[test]
    fn malformed_quantities_are_parse_errors_at_the_field() {
        let submission = submission_of(
            "d.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n      - name: c\n        image: x\n        resources:\n          requests: {cpu: 200m, memory: 256MB}\n",
        );
        let mut out = Collector::default();
        check(&Input::new(&submission, &Tools::none()), &mut out);
        let errors: Vec<_> = out
            .findings
            .iter()
            .filter(|f| f.check == "input.parse-error")
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("256MB"));
        assert_eq!(errors[0].location.line, Some(13));
    }
}
