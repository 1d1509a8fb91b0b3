#!/usr/bin/env bash
# A quick A/B of the gateway's CPU per request: one cell of bench/run.sh
# (same placement, config, key and simulator), repeated, without the
# baselines. Passes of one run sit within ~2% of each other, so two
# binaries run back to back compare well; across runs the VM drifts more
# (ADR 0005).
#
# usage: [BENCH_BIN=PATH] [C=64] [D=5] [N=3] [MODE=--stream] bench/probe.sh
#   C concurrency, D seconds per pass, N passes (after a 2 s warm-up pass).
# Prints, per pass: RPS, the gateway's CPU µs per request (/proc), p50 and
# p99 ms, and the gateway's CPU ticks by thread. Uses the existing release
# binary (build it first). Loopback only; stops the processes it started.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT=probe.sh
REPORT=probe.md
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
BENCH_BIN=${BENCH_BIN:-$ROOT/target/release/switchyard} bench_setup
C=${C:-64}
D=${D:-5}
N=${N:-3}
read -r -a MODE_ARGS <<<"${MODE:-}"
SIM_KNOBS='{"latency_ms":0,"ttft_ms":0,"tokens_per_sec":0,"answer_tokens":16}'
start_simulator
start_gateway "$ROOT/bench/gateway.yaml.in"
ARGS=(--url "$GW_URL/v1/chat/completions" --api-key "$KEY" --concurrency "$C" --warmup 0 "${MODE_ARGS[@]}")

threads() { # PID: "name ticks" per thread
    local t
    for t in /proc/"$1"/task/*; do echo "$(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done
}

bench_json "$WORK/warm.json" "${ARGS[@]}" --duration 2
for i in $(seq "$N"); do
    t0=$(cpu_ticks "$GW_PID")
    threads "$GW_PID" >"$WORK/th0"
    bench_json "$WORK/pass.json" "${ARGS[@]}" --duration "$D"
    t1=$(cpu_ticks "$GW_PID")
    threads "$GW_PID" >"$WORK/th1"
    split=$(paste "$WORK/th0" "$WORK/th1" |
        awk '{d[$1] += $4 - $2} END {for (k in d) if (d[k] > 0) printf "%s=%d ", k, d[k]}')
    python3 - "$t0" "$t1" "$WORK/pass.json" "$split" <<'PY'
import json, os, sys
t0, t1, path, split = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
r = json.load(open(path))
n = r.get("requests") or r.get("ok")
cpu = (t1 - t0) / os.sysconf("SC_CLK_TCK") / n * 1e6
lat = r["latency_ms"]
print(f"RPS {r['rps']:,.0f}  CPU {cpu:.1f} µs/req  p50 {lat['p50']:.3f} ms  p99 {lat['p99']:.3f} ms  ticks by thread: {split}")
PY
done
