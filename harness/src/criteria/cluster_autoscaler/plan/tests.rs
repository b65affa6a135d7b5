use super::*;

#[test]
fn the_unneeded_time_is_read_where_the_submission_sets_it() {
    for (text, seconds) in [
        ("--scale-down-unneeded-time=5m", 300),
        ("- --scale-down-unneeded-time=90s", 90),
        ("scale-down-unneeded-time: \"2m\"", 120),
        ("scale-down-unneeded-time: 1h", 3600),
    ] {
        let got = unneeded_in(text).expect(text).as_secs();
        assert_eq!(got, seconds, "{text}");
    }
    assert_eq!(
        unneeded_in("`--scale-down-unneeded-time` per node group"),
        None
    );
}

#[test]
fn a_guides_pool_sizes_are_told_apart_by_the_pool_they_sit_under() {
    // The exercise's own wording: nested list items under each pool.
    let exercise = "### Node Pools\n\
        - **CPU-only pool**: For serving, feature stores, general workloads\n\
        \x20 - Min: 2 nodes, Max: 20 nodes\n\
        \x20 - Instance: 4 vCPU, 16GB RAM\n\
        \n\
        - **GPU pool**: For training and GPU inference\n\
        \x20 - Min: 0 nodes, Max: 10 nodes (expensive!)\n";
    assert_eq!(
        prose_sizes(exercise),
        vec![(false, 2, 20, 3), (true, 0, 10, 7)]
    );
    // The reference's: a continuation line, "vCPU" is no CPU pool, NVIDIA is a GPU.
    let reference = "- **CPU pool** (`node-pool: cpu`): serving.\n\
        \x20 Min 2, max 20 nodes, 4 vCPU / 16 GB.\n\
        - **GPU pool** (`node-pool: gpu`):\n\
        \x20 training only. Min 0, max 10 nodes, 8 vCPU / 30 GB / 1x NVIDIA T4.\n";
    assert_eq!(
        prose_sizes(reference),
        vec![(false, 2, 20, 2), (true, 0, 10, 4)]
    );
    // A size with no pool named anywhere above it is nobody's.
    assert!(prose_sizes("# Sizing\nMin 1, max 5 nodes.\n").is_empty());
}

#[test]
fn the_reference_sizes_its_gpu_group_from_its_guide_capped() {
    let submission = crate::submission::load_fixture("submissions/reference");
    let plan = Plan::pick(&submission).expect("a plan");
    assert_eq!(plan.group, GPU_GROUP);
    // "Min 0, max 10 nodes": 0..3 once capped, and one node beyond the existing ones.
    assert_eq!((plan.size.min, plan.size.max), (0, MAX_GROUP_NODES));
    assert_eq!(plan.beyond_existing(), 1);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("docs/cluster-autoscaler-guide.md:19") && n.contains("capped")),
        "{:?}",
        plan.notes
    );
    assert_eq!(
        configured_size(&submission, CPU_GROUP).map(|s| (s.min, s.max)),
        Some((2, 20))
    );
    // Its training pods say safe-to-evict "false": they are the protected ones.
    let protection = plan.protection.expect("a protection");
    assert_eq!(protection.source.name, "large-training-job");
    assert!(protection.annotated);
    assert!(protection.misplaced_annotation.is_none());
    assert_eq!(
        plan.serving.map(|s| s.name.as_str()),
        Some("fraud-detector-api")
    );
}

#[test]
fn a_nodes_flag_sizes_a_group_and_a_min_above_zero_asks_for_one_node_more() {
    let submission = crate::checks::test_support::submission_of_files(&[(
        "manifests/ca.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ca, namespace: kube-system}\nspec:\n  selector: {matchLabels: {app: ca}}\n  template:\n    metadata: {labels: {app: ca}}\n    spec:\n      containers:\n      - name: ca\n        image: ca\n        args: [\"--nodes=1:5:gpu-nodes\", \"--nodes=2:4:cpu-nodes\"]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: train, namespace: ml}\nspec:\n  selector: {matchLabels: {app: train}}\n  template:\n    metadata: {labels: {app: train}}\n    spec:\n      containers:\n      - name: t\n        image: t\n        resources: {requests: {nvidia.com/gpu: 1}}\n",
    )]);
    let plan = Plan::pick(&submission).expect("a plan");
    assert_eq!((plan.size.min, plan.size.max), (1, 3));
    assert_eq!(plan.beyond_existing(), 2);
    assert_eq!(
        configured_size(&submission, CPU_GROUP).map(|s| (s.min, s.max)),
        Some((2, 4))
    );
}

#[test]
fn a_min_above_the_max_is_the_submissions_failure() {
    let submission = crate::checks::test_support::submission_of_files(&[
        ("docs/guide.md", "- GPU pool: Min 4, Max 2 nodes\n"),
        (
            "train.yaml",
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: train}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: t\n        image: t\n        resources: {requests: {nvidia.com/gpu: 1}}\n",
        ),
    ]);
    let error = Plan::pick(&submission).err().expect("refused");
    assert!(error.contains("min (4) is above its max (2)"), "{error}");
}

#[test]
fn an_annotation_on_the_workloads_own_metadata_is_found_misplaced() {
    let submission = crate::checks::test_support::submission_of_files(&[(
        "train.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: train\n  annotations:\n    cluster-autoscaler.kubernetes.io/safe-to-evict: \"false\"\nspec:\n  selector: {matchLabels: {app: train}}\n  template:\n    metadata: {labels: {app: train}}\n    spec:\n      containers:\n      - name: t\n        image: t\n        resources: {requests: {nvidia.com/gpu: 1}}\n",
    )]);
    let plan = Plan::pick(&submission).expect("a plan");
    let protection = plan.protection.expect("the misplaced one");
    assert!(!protection.annotated);
    let misplaced = protection.misplaced_annotation.expect("misplaced");
    assert!(
        misplaced.contains("on its own metadata") && misplaced.contains("train.yaml"),
        "{misplaced}"
    );
}

#[test]
fn a_budget_over_a_workload_protects_it_when_no_pod_is_annotated() {
    let submission = crate::checks::test_support::submission_of_files(&[(
        "train.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: train}\nspec:\n  selector: {matchLabels: {app: train}}\n  template:\n    metadata: {labels: {app: train}}\n    spec:\n      containers:\n      - name: t\n        image: t\n        resources: {requests: {nvidia.com/gpu: 1}}\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: train-pdb}\nspec:\n  minAvailable: 1\n  selector: {matchLabels: {app: train}}\n",
    )]);
    let plan = Plan::pick(&submission).expect("a plan");
    let protection = plan.protection.expect("by its budget");
    assert!(!protection.annotated);
    assert_eq!(protection.budgets.len(), 1);
    assert_eq!(protection.budgets[0].name, "train-pdb");
}

#[test]
fn the_cpu_trigger_fixture_sizes_its_pool_and_protects_by_its_budget() {
    let submission = crate::submission::load_fixture("cluster_autoscaler/cpu-trigger");
    let plan = Plan::pick(&submission).expect("a plan");
    assert_eq!(plan.group, CPU_GROUP);
    assert_eq!((plan.size.min, plan.size.max), (1, 3));
    assert_eq!(plan.beyond_existing(), 2);
    let protection = plan.protection.expect("by its budget");
    assert!(!protection.annotated);
    assert_eq!(protection.budgets[0].name, "large-training-pdb");
    assert!(plan.serving.is_none());
}

#[test]
fn the_exercises_own_guide_sizes_the_cpu_pool_two_to_three_once_capped() {
    // A submission that copies Task 6.1 verbatim: 4-CPU pods, "Min: 2 nodes, Max: 20".
    let submission = crate::submission::load_fixture("submissions/blind/nina-verbatim");
    let plan = Plan::pick(&submission).expect("a plan");
    assert_eq!(plan.group, CPU_GROUP);
    assert_eq!((plan.size.min, plan.size.max), (2, MAX_GROUP_NODES));
    // Three nodes, so that one can go while the min keeps two.
    assert_eq!(plan.beyond_existing(), 3);
}
