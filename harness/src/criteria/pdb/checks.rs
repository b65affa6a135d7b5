//! Static checks of `pdb`: every serving workload has a PodDisruptionBudget that
//! selects its pods, is well formed, and still lets a node drain evict a pod.

use super::ID;
use crate::checks::{CheckInfo, Collector, Index, Input};
use crate::submission::{Object, Typed, selector};
use crate::verdict::Location;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const SELECTOR_UNMATCHED: CheckInfo = CheckInfo::error(
    "ref.pdb-selector-unmatched",
    ID,
    "every PodDisruptionBudget selects the pods of some workload",
    "copy the workload's pod template labels into the PDB's selector.matchLabels",
);

pub const MISSING: CheckInfo = CheckInfo::error(
    "pdb.missing",
    ID,
    "every serving workload is covered by a PodDisruptionBudget",
    "add a policy/v1 PodDisruptionBudget selecting the serving pods",
);

pub const MALFORMED: CheckInfo = CheckInfo::error(
    "pdb.malformed",
    ID,
    "each PDB sets exactly one of minAvailable/maxUnavailable, as a non-negative integer or a percentage",
    "keep only one of minAvailable or maxUnavailable, written as 1 or \"30%\"",
);

pub const BLOCKS_ALL_EVICTIONS: CheckInfo = CheckInfo::error(
    "pdb.blocks-all-evictions",
    ID,
    "at the workload's minimum replica count the PDB still allows one eviction",
    "lower minAvailable (or raise maxUnavailable) below the HPA's minReplicas",
);

pub const CATALOGUE: &[CheckInfo] = &[SELECTOR_UNMATCHED, MISSING, MALFORMED, BLOCKS_ALL_EVICTIONS];

pub fn check(input: &Input<'_>, out: &mut Collector) {
    let index = &input.index;
    let pdbs: Vec<(&Object, &PodDisruptionBudget)> = index
        .submission
        .objects
        .iter()
        .filter_map(|o| match &o.typed {
            Typed::PodDisruptionBudget(pdb) => Some((o, pdb.as_ref())),
            _ => None,
        })
        .collect();
    let serving: Vec<&Object> = index
        .workloads
        .iter()
        .copied()
        .filter(|w| index.is_serving(w) && w.is_scalable())
        .collect();
    if !pdbs.is_empty() {
        out.examined(&[SELECTOR_UNMATCHED, MALFORMED, BLOCKS_ALL_EVICTIONS]);
    }
    if !pdbs.is_empty() || !serving.is_empty() {
        out.examined(&[MISSING]);
    }
    for (object, pdb) in &pdbs {
        if selects_some_workload(index, object, pdb) {
            continue;
        }
        let refused = pod_selector(pdb)
            .and_then(|s| index.refused_workload_selected_by(object.namespace.as_deref(), s));
        if let Some(refused) = refused {
            out.fire_with_hint(
                &SELECTOR_UNMATCHED,
                object.locate("/spec/selector"),
                format!(
                    "{} selects the labels the selector of {} asks for, but that workload is refused by the API server (its selector does not match its template labels), so no pod carries them",
                    object.describe(),
                    refused.describe()
                ),
                format!(
                    "fix {} first (input.parse-error at {}): this budget's selector is not the cause",
                    refused.describe(),
                    refused.locate("/spec/selector")
                ),
            );
        } else {
            out.fire(
                &SELECTOR_UNMATCHED,
                object.locate("/spec/selector"),
                format!(
                    "{} selects no pods of any workload in the submission",
                    object.describe()
                ),
            );
        }
    }
    for workload in serving {
        serving_workload_covered(index, &pdbs, workload, out);
    }
    for (object, pdb) in &pdbs {
        let Some((field, budget)) = budget_well_formed(object, pdb, out) else {
            continue;
        };
        if let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) {
            budget_allows_eviction(index, object, selector, field, &budget, out);
        }
    }
}

fn pod_selector(pdb: &PodDisruptionBudget) -> Option<&LabelSelector> {
    pdb.spec.as_ref().and_then(|s| s.selector.as_ref())
}

/// The workloads in the budget's namespace whose pods `selector` selects.
fn selected_workloads<'a>(
    index: &'a Index<'_>,
    budget: &'a Object,
    selector: &'a LabelSelector,
) -> impl Iterator<Item = &'a Object> + 'a {
    index.workloads.iter().copied().filter(move |w| {
        w.same_namespace(budget.namespace.as_deref())
            && w.pod_template()
                .and_then(|t| t.labels)
                .is_some_and(|labels| selector::matches(selector, labels))
    })
}

fn selects_some_workload(index: &Index<'_>, object: &Object, pdb: &PodDisruptionBudget) -> bool {
    pod_selector(pdb).is_some_and(|s| selected_workloads(index, object, s).next().is_some())
}

fn serving_workload_covered(
    index: &Index<'_>,
    pdbs: &[(&Object, &PodDisruptionBudget)],
    workload: &Object,
    out: &mut Collector,
) {
    let in_namespace = || {
        pdbs.iter()
            .filter(|(p, _)| p.same_namespace(workload.namespace.as_deref()))
    };
    // A budget in the namespace that selects nothing was meant for some
    // workload: ref.pdb-selector-unmatched already reports it.
    if in_namespace().any(|(p, pdb)| !selects_some_workload(index, p, pdb)) {
        return;
    }
    let Some(labels) = workload.pod_template().and_then(|t| t.labels) else {
        return;
    };
    let covered = in_namespace()
        .any(|(_, pdb)| pod_selector(pdb).is_some_and(|s| selector::matches(s, labels)));
    if !covered {
        out.fire(
            &MISSING,
            workload.location(),
            format!(
                "serving workload {} has no PodDisruptionBudget",
                workload.describe()
            ),
        );
    }
}

/// The budget a PDB sets, (field, value), or `None` (reported) if it is malformed.
fn budget_well_formed(
    object: &Object,
    pdb: &PodDisruptionBudget,
    out: &mut Collector,
) -> Option<(&'static str, Budget)> {
    match read_budget(object, pdb) {
        Ok(budget) => Some(budget),
        Err((location, message)) => {
            out.fire(&MALFORMED, location, message);
            None
        }
    }
}

fn read_budget(
    object: &Object,
    pdb: &PodDisruptionBudget,
) -> Result<(&'static str, Budget), (Location, String)> {
    let Some(spec) = &pdb.spec else {
        return Err((
            object.location(),
            format!("{} has no spec", object.describe()),
        ));
    };
    let (field, value) = match (&spec.min_available, &spec.max_unavailable) {
        (Some(_), Some(_)) => {
            return Err((
                object.locate("/spec/maxUnavailable"),
                format!(
                    "{} sets both minAvailable and maxUnavailable; a PodDisruptionBudget may set only one",
                    object.describe()
                ),
            ));
        }
        (None, None) => {
            return Err((
                object.locate("/spec"),
                format!(
                    "{} sets neither minAvailable nor maxUnavailable",
                    object.describe()
                ),
            ));
        }
        (Some(value), None) => ("minAvailable", value),
        (None, Some(value)) => ("maxUnavailable", value),
    };
    parse_budget(value)
        .map(|budget| (field, budget))
        .map_err(|problem| {
            (
                object.locate(&format!("/spec/{field}")),
                format!("{} {field}: {problem}", object.describe()),
            )
        })
}

/// At each selected workload's minimum replica count, the budget allows at
/// least one disruption.
fn budget_allows_eviction(
    index: &Index<'_>,
    object: &Object,
    selector: &LabelSelector,
    field: &str,
    budget: &Budget,
    out: &mut Collector,
) {
    for workload in selected_workloads(index, object, selector) {
        let Some(replicas) = index
            .min_replicas(workload)
            .map(i64::from)
            .filter(|n| *n > 0)
        else {
            continue;
        };
        let allowed = if field == "minAvailable" {
            replicas - scaled(budget, replicas)
        } else {
            scaled(budget, replicas)
        };
        if allowed <= 0 {
            out.fire(
                &BLOCKS_ALL_EVICTIONS,
                object.locate(&format!("/spec/{field}")),
                format!(
                    "{} allows {allowed} disruption(s) when {} runs its minimum of {replicas} replica(s): node drains block",
                    object.describe(),
                    workload.describe()
                ),
            );
        }
    }
}

enum Budget {
    Count(i64),
    Percent(i64),
}

fn parse_budget(value: &IntOrString) -> Result<Budget, String> {
    match value {
        IntOrString::Int(n) if *n >= 0 => Ok(Budget::Count(i64::from(*n))),
        IntOrString::Int(n) => Err(format!("{n} is negative")),
        IntOrString::String(text) => {
            let Some(number) = text.trim().strip_suffix('%') else {
                return match text.trim().parse::<i64>() {
                    Ok(_) => Err(format!(
                        "\"{text}\" is a quoted number; write it unquoted or as a percentage"
                    )),
                    Err(_) => Err(format!("\"{text}\" is neither an integer nor a percentage")),
                };
            };
            match number.trim().parse::<i64>() {
                Ok(p) if (0..=100).contains(&p) => Ok(Budget::Percent(p)),
                _ => Err(format!(
                    "\"{text}\" is not a percentage between 0% and 100%"
                )),
            }
        }
    }
}

fn scaled(budget: &Budget, replicas: i64) -> i64 {
    match budget {
        Budget::Count(n) => *n,
        // PDB percentages round up for both fields.
        Budget::Percent(p) => (p * replicas + 99) / 100,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use rstest::rstest;
    use std::collections::BTreeMap;

    #[rstest]
    #[case(IntOrString::Int(1), true)]
    #[case(IntOrString::String("30%".into()), true)]
    #[case(IntOrString::Int(-1), false)]
    #[case(IntOrString::String("30".into()), false)]
    #[case(IntOrString::String("150%".into()), false)]
    #[case(IntOrString::String("half".into()), false)]
    fn pdb_budgets_are_counts_or_percentages(#[case] value: IntOrString, #[case] valid: bool) {
        assert_eq!(parse_budget(&value).is_ok(), valid);
    }

    #[rstest]
    #[case(Budget::Percent(30), 2, 1)]
    #[case(Budget::Percent(50), 3, 2)]
    #[case(Budget::Count(1), 5, 1)]
    #[case(Budget::Percent(0), 4, 0)]
    fn percentages_round_up(#[case] budget: Budget, #[case] replicas: i64, #[case] expected: i64) {
        assert_eq!(scaled(&budget, replicas), expected);
    }

    /// The budgets' selectors are matched by `submission::selector::matches`.
    #[test]
    fn selectors_follow_label_selector_semantics() {
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "a".to_string()),
            ("tier".to_string(), "serving".to_string()),
        ]
        .into();
        let mut selector = LabelSelector {
            match_labels: Some([("app".to_string(), "a".to_string())].into()),
            ..Default::default()
        };
        assert!(selector::matches(&selector, &labels));
        selector.match_expressions = Some(vec![LabelSelectorRequirement {
            key: "tier".into(),
            operator: "NotIn".into(),
            values: Some(vec!["serving".into()]),
        }]);
        assert!(!selector::matches(&selector, &labels));
        assert!(selector::matches(&LabelSelector::default(), &labels));
    }
}
