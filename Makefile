# Entry points. Each target is a thin wrapper over a script the project owns, so the
# same steps run by hand, in .ci/run and in the GitHub workflow.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help tools ci-bins test fuzz e2e soak main grade images bench-load bench-grade bench-class bench-cluster cluster-up cluster-down cluster-status kind-up kind-down lint

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

tools: ## install what the tests need (cargo-nextest) if it is missing
	@ci/tools.sh

test: tools ci-bins ## the offline suite: everything that needs no cluster
	cargo nextest run --workspace --profile ci

PROPTEST_CASES ?= 10000
fuzz: tools ## property tests of untrusted input (quantities, budgets, quota sizing, YAML), PROPTEST_CASES each
	PROPTEST_CASES=$(PROPTEST_CASES) cargo nextest run -p harness --profile ci -E 'binary(properties)'

# The CoreDNS build tests/ci_paths.rs runs the shared Corefile against (cached; minutes cold),
# and actionlint, which tests/workflows.rs runs on every workflow (cached; a minute cold).
ci-bins:
	@ci/localcluster/build.sh coredns >/dev/null
	@ci/actionlint/build.sh >/dev/null

lint: ## cargo fmt and clippy, warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

images: ## build the workload image archives (OCI, no Docker)
	@workloads/image/build.sh

bench-load: ## load generator throughput and rate error, beside wrk
	@workloads/bench/load.sh

bench-grade: ## offline grading time of the reference submission (release build)
	cargo bench -p harness --bench grade

bench-class: ## offline grading of a class: batch vs single runs, and a class of 100
	@ci/bench-class.sh

bench-pipeline: ## custom-metric pipeline delays on the running cluster: load -> metric served -> HPA scale-up (RUNS=n)
	@ci/bench-pipeline.sh

bench-cluster: ## local cluster: warm up time, idle RSS, down time
	@ci/localcluster/bench.sh

cluster-up: ## bring up the Docker-free local cluster (idempotent)
	@ci/tools.sh cluster
	@ci/cluster up

cluster-down: ## tear the local cluster down completely
	@ci/cluster down

cluster-status: ## what is running
	@ci/cluster status

kind-up: ## the kind path (machines with Docker): same CoreDNS, images, GPU pool, isolation
	@ci/kind/up.sh

kind-down: ## stop the kind path's kwok and delete the kind cluster
	@ci/kind/up.sh down

e2e: tools cluster-up ## the live suite against the local cluster (one retry, as in CI)
	@ci/steps.sh e2e

e2e-scaling: tools cluster-up ## the KEDA and VPA fixture tests, and the reference's single-criterion probes its live grade repeats (nextest profile e2e-scaling; not in CI: see .config/nextest.toml)
	@KUBECONFIG=$$(ci/cluster kubeconfig) cargo nextest run --workspace --profile e2e-scaling

N ?= 5
soak: tools cluster-up ## the live suite N times without retries, each test's pass count (make soak N=5 [FILTER='test(/^live_grade_reference/)'])
	@ci/soak.sh "$(N)" "$(FILTER)"

main: e2e ## the main job: local cluster + conformance suite, grading the reference submission live

SUBMISSION ?= fixtures/submissions/reference
grade: cluster-up ## grade a submission live (static + live probes): make grade SUBMISSION=dir
	KUBECONFIG=$$(ci/cluster kubeconfig) cargo run -q -- grade "$(SUBMISSION)" --out "target/grade/$$(basename "$(SUBMISSION)")"
