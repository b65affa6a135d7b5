//! Label selectors as the API server reads them (`metav1.LabelSelector`): the one
//! matcher every check and probe uses, `matchLabels` and `matchExpressions` alike.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// Whether `selector` selects an object with `labels`. Every `matchLabels` pair and
/// every `matchExpressions` requirement must hold; an empty selector (`{}`) selects
/// everything, as the API server's `LabelSelectorAsSelector` does. An unknown
/// operator selects nothing (the API server would refuse the object).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector
        .match_expressions
        .iter()
        .flatten()
        .all(|requirement| {
            let value = labels.get(&requirement.key);
            let values = requirement.values.as_deref().unwrap_or_default();
            match requirement.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
    by_labels && by_expressions
}

/// Whether `selector` has no requirement at all (it then selects every object).
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

/// The selector in the API's query syntax (`app=a,tier in (x,y),!legacy`), for a
/// list or watch call's `labelSelector` parameter.
pub fn to_query(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for requirement in selector.match_expressions.iter().flatten() {
        let key = &requirement.key;
        let values = requirement.values.as_deref().unwrap_or_default().join(",");
        parts.push(match requirement.operator.as_str() {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other} ({values})"),
        });
    }
    parts.join(",")
}

/// A selector of exactly these labels (a pod template's labels, as a Deployment
/// whose selector equals them would have).
pub fn of_labels(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.clone()),
        match_expressions: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use rstest::rstest;

    fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[rstest]
    #[case::match_labels_equal(&[("app", "a")], vec![], &[("app", "a"), ("x", "y")], true)]
    #[case::match_labels_differ(&[("app", "a")], vec![], &[("app", "b")], false)]
    #[case::in_holds(&[], vec![requirement("tier", "In", &["x", "y"])], &[("tier", "y")], true)]
    #[case::in_missing_key(&[], vec![requirement("tier", "In", &["x"])], &[], false)]
    #[case::not_in_missing_key(&[], vec![requirement("tier", "NotIn", &["x"])], &[], true)]
    #[case::not_in_listed(&[], vec![requirement("tier", "NotIn", &["x"])], &[("tier", "x")], false)]
    #[case::exists(&[], vec![requirement("gpu", "Exists", &[])], &[("gpu", "")], true)]
    #[case::does_not_exist(&[], vec![requirement("gpu", "DoesNotExist", &[])], &[("gpu", "1")], false)]
    #[case::unknown_operator(&[], vec![requirement("gpu", "Gt", &["1"])], &[("gpu", "2")], false)]
    #[case::both_must_hold(&[("app", "a")], vec![requirement("tier", "In", &["x"])], &[("app", "a")], false)]
    #[case::empty_selects_all(&[], vec![], &[("any", "thing")], true)]
    fn selectors_follow_the_api_servers_semantics(
        #[case] match_labels: &[(&str, &str)],
        #[case] expressions: Vec<LabelSelectorRequirement>,
        #[case] object_labels: &[(&str, &str)],
        #[case] selected: bool,
    ) {
        let selector = LabelSelector {
            match_labels: (!match_labels.is_empty()).then(|| labels(match_labels)),
            match_expressions: (!expressions.is_empty()).then_some(expressions),
        };
        assert_eq!(matches(&selector, &labels(object_labels)), selected);
    }

    #[test]
    fn query_syntax_covers_every_operator() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("app", "a")])),
            match_expressions: Some(vec![
                requirement("tier", "In", &["x", "y"]),
                requirement("zone", "NotIn", &["z"]),
                requirement("gpu", "Exists", &[]),
                requirement("legacy", "DoesNotExist", &[]),
            ]),
        };
        assert_eq!(
            to_query(&selector),
            "app=a,tier in (x,y),zone notin (z),gpu,!legacy"
        );
        assert!(is_empty(&LabelSelector::default()));
        assert!(!is_empty(&of_labels(&labels(&[("app", "a")]))));
    }
}
