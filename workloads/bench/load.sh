#!/usr/bin/env bash
# Load generator benchmark (prints numbers; not a test). Against the inference server on
# loopback with --cpu-ms 0, in one run:
#   1. maximum throughput of loadgen and of wrk, same server, same connection count, as a ratio;
#   2. loadgen's rate error at 1k and 5k rps, checked against the count the server saw.
# Server, client and anything else running share the machine's cores: absolute numbers are
# this machine's; the ratios are the point.
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=${BENCH_DURATION:-5s}
connections=${BENCH_CONNECTIONS:-64}
rates=${BENCH_RATES:-1000 5000}

if ! command -v wrk >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing wrk (Debian package) for the comparison" >&2
    apt-get install -y -qq wrk >/dev/null
  else
    echo "wrk is missing: apt-get install -y wrk" >&2
    exit 1
  fi
fi
command -v python3 >/dev/null || { echo "python3 is needed to read the JSON summaries" >&2; exit 1; }

cargo build --release --locked -p workloads --bins >&2
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/inference-server" --listen 127.0.0.1:0 --cpu-ms 0 --workers 2 --queue-capacity 4096 \
  >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
  [[ -s $work/server.out ]] && break
  sleep 0.05
done
base=$(sed -n 's/^listening on //p' "$work/server.out")
[[ -n $base ]] || { echo "the server did not start:" >&2; cat "$work/server.err" >&2; exit 1; }
url=$base/predict

served() { # /predict 200s the server has counted so far
  curl -sf "$base/metrics" | sed -n 's/^http_requests_total{route="\/predict",code="200"} //p' | sed 's/^$/0/;q' | awk '{print $1+0}'
}

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
LUA

# Warm-up: connections, caches, CPU frequency.
"$bin/loadgen" --url "$url" --rate 2000 --duration 1s --json >/dev/null

wrk -t2 -c"$connections" -d"$duration" --latency -s "$work/post.lua" "$url" >"$work/wrk.txt"
"$bin/loadgen" --url "$url" --rate 10000000 --duration "$duration" --max-requests 100000000 \
  --concurrency "$connections" --json >"$work/max.json"

for rate in $rates; do
  before=$(served)
  "$bin/loadgen" --url "$url" --rate "$rate" --duration "$duration" --concurrency 256 --json \
    >"$work/rate-$rate.json"
  after=$(served)
  echo "$((after - before))" >"$work/rate-$rate.served"
done

python3 - "$work" "$connections" "$duration" $rates <<'PY'
import json, re, sys
work, connections, duration, rates = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

def wrk_ms(text, label):
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

wrk = open(f"{work}/wrk.txt").read()
wrk_rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
wrk_errors = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
loadgen = json.load(open(f"{work}/max.json"))
lg_rps = loadgen["ok_throughput_rps"]

print(f"Load generator benchmark: loopback, inference-server --cpu-ms 0 --workers 2, {duration} per run")
print()
print(f"Maximum throughput ({connections} connections; server and client share the cores)")
print(f"  {'tool':<10}{'ok req/s':>12}{'p50 ms':>10}{'p99 ms':>10}  errors")
print(f"  {'wrk':<10}{wrk_rps:>12.0f}{wrk_ms(wrk, '50%'):>10.2f}{wrk_ms(wrk, '99%'):>10.2f}  "
      f"{wrk_errors.group(1) if wrk_errors else 0}")
lat = loadgen["latency_ms"]
errors = {k: v for k, v in loadgen["errors"].items() if k != "not_sent"}
print(f"  {'loadgen':<10}{lg_rps:>12.0f}{'-':>10}{'-':>10}  {errors or 0}")
print(f"  loadgen/wrk throughput ratio: {lg_rps / wrk_rps:.2f}")
print("  (loadgen's latency at saturation runs from the due time of an unbounded schedule, so it")
print("   is not comparable with wrk's closed-loop latency and is not shown)")
print()
print("Fixed rate (open loop, concurrency cap 256)")
print(f"  {'target':>7}{'achieved':>10}{'error':>9}{'server saw':>12}{'server rate':>13}"
      f"{'ok':>8}{'p50 ms':>8}{'p99 ms':>8}{'lag p99 ms':>11}{'of wrk max':>11}  errors")
for rate in rates:
    summary = json.load(open(f"{work}/rate-{rate}.json"))
    served = int(open(f"{work}/rate-{rate}.served").read())
    target = float(rate)
    achieved = summary["achieved_rate_rps"]
    server_rate = served / summary["send_seconds"]
    print(f"  {rate:>7}{achieved:>10.1f}{(achieved / target - 1) * 100:>+8.2f}%{served:>12}"
          f"{server_rate:>13.1f}{summary['ok']:>8}"
          f"{summary['latency_ms']['p50']:>8.2f}{summary['latency_ms']['p99']:>8.2f}"
          f"{summary['send_lag_ms']['p99']:>11.2f}{target / wrk_rps:>10.2f}x  {summary['errors'] or 0}")
PY
