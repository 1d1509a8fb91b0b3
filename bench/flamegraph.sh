#!/usr/bin/env bash
# Profiles the gateway under load and draws a flame graph (SVG): where its CPU
# time goes, user space and kernel. Complements bench/callgrind.sh (exact
# instruction counts, user space only) and bench/run.sh (wall-clock figures).
#
# usage: bench/flamegraph.sh [--no-build] [--out FILE.svg] [-- BENCH ARGS...]
#   default load: non-stream at concurrency 1 (where the added-latency
#   target is measured); e.g. `-- --concurrency 64 --stream` for another cell.
# Writes FILE.svg (default docs/benchmarks/flamegraph.svg) and prints the top
# frames by self time. Needs perf (linux-perf) and inferno
# (`cargo install inferno`; installed on first use). Loopback only; stops the
# processes it started.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT=flamegraph.sh
REPORT=benchmarks/flamegraph.svg
BENCH_ARGS=(--concurrency 1)
ARGS=()
while [[ $# -gt 0 ]]; do
    if [[ $1 == -- ]]; then shift; BENCH_ARGS=("$@"); break; fi
    ARGS+=("$1"); shift
done
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_setup "${ARGS[@]}"

command -v perf >/dev/null || die "perf is missing (apt-get install linux-perf)"
if ! command -v inferno-flamegraph >/dev/null; then
    log "installing inferno (cargo install inferno --locked)"
    cargo install inferno --locked >&2
fi

SIM_KNOBS='{"latency_ms":0,"ttft_ms":0,"tokens_per_sec":0,"answer_tokens":16}'
start_simulator
start_gateway "$ROOT/bench/gateway.yaml.in"

log "load: switchyard bench ${BENCH_ARGS[*]} for 12 s; perf samples the gateway for 8 s"
"${PIN_SIDE[@]}" "$BIN" bench --url "$GW_URL/v1/chat/completions" --api-key "$KEY" --duration 12 --warmup 1 \
    --quiet "${BENCH_ARGS[@]}" >"$WORK/bench.out" 2>"$WORK/bench.err" &
BENCH_PID=$!
sleep 2
perf record -F 2999 -e cpu-clock --call-graph dwarf,16384 -p "$GW_PID" -o "$WORK/perf.data" -- sleep 8 >&2 2>/dev/null
wait "$BENCH_PID" || { cat "$WORK/bench.err" >&2; die "bench failed"; }
BENCH_PID=""
cat "$WORK/bench.out" >&2

perf script -i "$WORK/perf.data" 2>/dev/null | inferno-collapse-perf >"$WORK/folded.txt"
mkdir -p "$(dirname "$OUT")"
inferno-flamegraph --minwidth 0.2 --title "switchyard gateway: bench ${BENCH_ARGS[*]}" <"$WORK/folded.txt" >"$OUT"
log "wrote $OUT"
python3 - "$WORK/folded.txt" <<'PY'
import sys
from collections import Counter
total, own = 0, Counter()
for line in open(sys.argv[1]):
    stack, n = line.rsplit(" ", 1)
    total += int(n)
    own[stack.split(";")[-1]] += int(n)
print("top frames by self time:")
for frame, n in own.most_common(15):
    print(f"{100 * n / total:5.1f}%  {frame[:120]}")
PY
