#!/usr/bin/env bash
# `make bench-pipeline`: the custom-metric pipeline's delays on the running cluster (a
# benchmark, not a test): RUNS times (default 1) the hpa-custom fast fixture's live probe,
# printing from its verdict the delay from load start to the metric being served by
# custom.metrics.k8s.io, to the metric reflecting the load, and to the HPA's first
# scale-up, then the median of each. Asserts nothing; needs `make cluster-up` first.
# The configured intervals these delays come from: scrape 15 s, adapter relist 30 s, the
# rule's rate window 1m, HPA sync 15 s (ci/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-1}
KUBECONFIG=${KUBECONFIG:-$(ci/cluster kubeconfig)}
export KUBECONFIG
[ -s "$KUBECONFIG" ] || { echo "bench-pipeline: no cluster (run make cluster-up)" >&2; exit 1; }
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine delays every number)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for run in $(seq 1 "$runs"); do
  cargo nextest run --cargo-quiet --profile e2e --no-capture -E 'test(live_hpa_custom_fast_fixture)' 2>&1 \
    | grep -E '^(pipeline delay|wall time)' | sed "s/^/run $run: /" | tee -a "$log"
done
echo "median over $runs run(s):"
# "run N: pipeline delay: <name>: <seconds>s": group by name, median of the seconds.
grep -E 'pipeline delay: .*: [0-9.]+s' "$log" | sed -E 's/^run [0-9]+: pipeline delay: (.*): ([0-9.]+)s?.*$/\1\t\2/' \
  | sort -t$'\t' -k1,1 -k2,2n | awk -F'\t' '
    { v[$1] = v[$1] " " $2; n[$1]++ }
    END { for (k in v) { split(substr(v[k], 2), a, " "); printf "  %s: %s s\n", k, a[int((n[k] + 1) / 2)] } }'
