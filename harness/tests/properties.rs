//! Property tests of what an untrusted submission controls (issue 12): quantities, the
//! HPA's and the drain's budgets, the quota probe's pod sizing and the YAML loader
//! never panic, stay bounded, and keep their promises for arbitrary input.
//!
//! Short in `make test` (64 cases each); `make fuzz` runs them with `PROPTEST_CASES`.

use harness::cluster::ClusterIntervals;
use harness::criteria::hpa_cpu::budget::{self, MAX_PROBE};
use harness::criteria::hpa_cpu::scaling::{
    Policy, PolicyKind, ScalingRules, ScalingSpec, SelectPolicy,
};
use harness::criteria::pdb::judge::{
    MAX_DRAIN, allowed_disruptions, drain_budget, drain_within_cap,
};
use harness::criteria::quota_limits::judge::{MAX_OVER_QUOTA_CONTAINERS, over_quota_sizing};
use harness::submission::quantity::{format_quantity, parse_quantity};
use harness::submission::yaml::{YamlLimits, load};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use proptest::prelude::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// 64 cases unless `PROPTEST_CASES` says otherwise; no regression files in the tree.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Wall-clock bound on one call: generous, as the machine is shared; a runaway loop
/// (the old 10,000-step walk with its growing event list) takes far longer.
const CALL_BOUND: Duration = Duration::from_secs(5);

fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(0.0),
        Just(f64::INFINITY),
        Just(f64::NAN),
        -1e3..1e3f64,
        (0u64..10_000_000).prop_map(|m| m as f64 / 1000.0),
    ]
}

fn rules() -> impl Strategy<Value = ScalingRules> {
    let policy =
        (any::<bool>(), any::<i32>(), any::<i32>()).prop_map(|(pods, value, period)| Policy {
            kind: if pods {
                PolicyKind::Pods
            } else {
                PolicyKind::Percent
            },
            value,
            period_seconds: period,
        });
    let select = prop_oneof![
        Just(SelectPolicy::Max),
        Just(SelectPolicy::Min),
        Just(SelectPolicy::Disabled)
    ];
    (any::<i32>(), select, prop::collection::vec(policy, 0..4)).prop_map(
        |(window, select_policy, policies)| ScalingRules {
            stabilization_window_seconds: window,
            select_policy,
            policies,
        },
    )
}

fn spec() -> impl Strategy<Value = ScalingSpec> {
    let replicas = prop_oneof![any::<i32>(), 0..20i32];
    (replicas.clone(), replicas, rules(), rules()).prop_map(|(min, max, up, down)| ScalingSpec {
        min_replicas: min,
        max_replicas: max,
        cpu_target_utilization: Some(50),
        scale_up: up,
        scale_down: down,
    })
}

/// Text with YAML's structure and many anchors and aliases (arbitrary bytes rarely
/// make an alias).
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "&a ",
        "&b ",
        "*a",
        "*b",
        "[",
        "]",
        "{",
        "}",
        ", ",
        ": ",
        "- ",
        "\n",
        "  ",
        "x",
        "1",
        "<<: ",
        "---\n",
        "k",
        "\"",
        "'",
        "#",
        "!!str ",
        "? ",
        "|\n",
        "%YAML 1.2\n",
    ]);
    prop::collection::vec(token, 0..120).prop_map(|tokens| tokens.concat())
}

/// Every node of a loaded value: what the alias budget counts at least.
fn nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(nodes).sum(),
        Value::Object(entries) => entries.values().map(nodes).sum(),
        _ => 0,
    }
}

fn assert_loads_within(text: &str, limits: YamlLimits) -> Result<(), TestCaseError> {
    let started = Instant::now();
    let loaded = load(text, limits);
    prop_assert!(started.elapsed() < CALL_BOUND);
    // The budget is per file: every document's nodes together.
    let total: usize = loaded.documents.iter().map(|d| nodes(&d.value)).sum();
    prop_assert!(
        total <= limits.max_nodes,
        "{total} nodes loaded over a budget of {}",
        limits.max_nodes
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn quantities_parse_without_panicking_and_finite(text in "\\PC{0,40}") {
        if let Ok(value) = parse_quantity(&text) {
            prop_assert!(value.is_finite(), "{text} -> {value}");
        }
    }

    #[test]
    fn quantity_shaped_text_parses_finite(
        sign in prop::sample::select(vec!["", "+", "-"]),
        digits in "[0-9]{1,400}(\\.[0-9]{0,20})?",
        suffix in prop::sample::select(vec![
            "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi",
            "Ei", "e3", "E-30", "e30", "e999",
        ]),
    ) {
        if let Ok(value) = parse_quantity(&format!("{sign}{digits}{suffix}")) {
            prop_assert!(value.is_finite());
        }
    }

    #[test]
    fn formatted_cpu_parses_back_to_the_millicore(millicores in 0u64..1_000_000_000) {
        let cores = millicores as f64 / 1000.0;
        let text = format_quantity("cpu", cores);
        let back = parse_quantity(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!((back - cores).abs() < 0.0005, "{cores} -> {text} -> {back}");
    }

    #[test]
    fn formatting_any_number_is_bounded_and_parses(
        value in any_f64(),
        resource in prop::sample::select(vec!["cpu", "memory", "requests.storage", "pods"]),
    ) {
        let text = format_quantity(resource, value);
        prop_assert!(text.len() <= 400, "{} chars", text.len());
        if value.is_finite() {
            prop_assert!(parse_quantity(&text).is_ok(), "{value} -> {text}");
        }
    }

    #[test]
    fn hpa_budgets_never_panic_and_stay_within_the_cap(spec in spec()) {
        let intervals = ClusterIntervals::default();
        let started = Instant::now();
        let fits = budget::within_cap(&intervals, &spec);
        let walk = budget::steps_duration(
            &intervals,
            &spec.scale_down,
            spec.max_replicas,
            spec.min_replicas,
        );
        let _ = budget::scale_down(&intervals, &spec, spec.max_replicas);
        prop_assert!(started.elapsed() < CALL_BOUND);
        // The walk is cut off just past the cap (one sync period at most).
        prop_assert!(walk <= MAX_PROBE + intervals.hpa_sync_period, "{walk:?}");
        match fits {
            Ok(total) => prop_assert!(total <= MAX_PROBE),
            Err(message) => prop_assert!(message.contains("cannot be observed")),
        }
    }

    #[test]
    fn quota_sizing_is_bounded_and_over_the_quota_within_the_max(
        quota in any_f64(),
        max in prop::option::of(any_f64()),
    ) {
        let Ok(sizing) = over_quota_sizing(quota, max) else {
            return Ok(());
        };
        prop_assert!(sizing.count >= 1);
        prop_assert!(sizing.count as u64 <= MAX_OVER_QUOTA_CONTAINERS);
        prop_assert!(sizing.millicores >= 1);
        let asked = sizing.count as u128 * u128::from(sizing.millicores);
        if quota.is_finite() && quota >= 0.0 {
            prop_assert!(asked as f64 > quota * 1000.0, "{sizing:?} vs {quota}");
        }
        if let Some(max) = max.filter(|m| m.is_finite() && *m >= 0.0) {
            prop_assert!(sizing.millicores as f64 <= max * 1000.0, "{sizing:?} vs max {max}");
        }
    }

    #[test]
    fn drain_budgets_never_panic_and_stay_within_the_cap(
        replicas in any::<i32>(),
        allowed in any::<i32>(),
        grace in prop_oneof![any::<u64>(), 0..600u64],
        pdb_value in prop_oneof![any::<i32>().prop_map(Value::from), "-?[0-9]{0,12}%".prop_map(Value::from)],
        min_not_max in any::<bool>(),
    ) {
        let intervals = ClusterIntervals::default();
        let grace = Duration::from_secs(grace);
        let _ = drain_budget(&intervals, replicas, allowed, grace);
        match drain_within_cap(&intervals, replicas, allowed, grace) {
            Ok(budget) => prop_assert!(budget <= MAX_DRAIN),
            Err(message) => prop_assert!(message.contains("cannot finish within")),
        }
        let field = if min_not_max { "minAvailable" } else { "maxUnavailable" };
        let pdb: PodDisruptionBudget =
            serde_json::from_value(serde_json::json!({"spec": {field: pdb_value}})).unwrap();
        prop_assert!(allowed_disruptions(&pdb, replicas) >= 0);
    }

    #[test]
    fn the_yaml_loader_takes_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        assert_loads_within(&String::from_utf8_lossy(&bytes), YamlLimits::default())?;
    }

    #[test]
    fn the_yaml_loader_keeps_its_alias_budget(text in yamlish(), max_nodes in 1usize..200) {
        assert_loads_within(&text, YamlLimits { max_nodes, max_depth: 16 })?;
    }
}
