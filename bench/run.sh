#!/usr/bin/env bash
# Measures the gateway against direct-to-simulator in the same run and writes
# docs/benchmarks.md.
#
# usage: bench/run.sh [--quick] [--no-build] [--out FILE]
#   --quick      2 s runs, 1 s warm-up; writes bench/out/benchmarks.md unless --out
#   --no-build   use the existing target/release/switchyard
#   --out FILE   where to write the report (default docs/benchmarks.md)
# env: BENCH_DURATION  measured seconds per run (default 10; 2 with --quick)
#      BENCH_WARMUP    warm-up seconds per run (default 2; 1 with --quick)
#      BENCH_BIN       switchyard binary to use (implies --no-build)
#
# Layout: the gateway alone on CPU 0; the simulator and the load generator
# share CPU 1. Every cell of {non-stream, stream} x {concurrency 1, 64} runs
# direct-to-sim, then through the gateway, with the same duration. Each run is
# a warm-up pass followed by a measured pass (bench --warmup 0), so the
# gateway's CPU time read from /proc around the measured pass covers exactly
# the requests in its report.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT=run.sh
REPORT=benchmarks.md
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_setup "$@"
CONCURRENCIES=(1 64)
MODES=(non-stream stream)
# The simulator's behaviour, set explicitly so the report can state it.
SIM_KNOBS='{"latency_ms":0,"ttft_ms":0,"tokens_per_sec":0,"answer_tokens":16}'

CLK_TCK=$(getconf CLK_TCK)
start_simulator
start_gateway "$ROOT/bench/gateway.yaml.in"

# overhead_stats: "SUM COUNT" of the gateway's own overhead histogram
# (time spent in the gateway, upstream waits excluded), from /metrics.
overhead_stats() {
    curl -s "$GW_URL/metrics" | awk '
        /^switchyard_gateway_overhead_seconds_sum\{operation="chat"\}/ { s = $2 }
        /^switchyard_gateway_overhead_seconds_count\{operation="chat"\}/ { c = $2 }
        END { printf "%s %s\n", (s == "" ? 0 : s), (c == "" ? 0 : c) }'
}

# --- runs ---------------------------------------------------------------------------
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
BENCH_CMDS=()


for mode in "${MODES[@]}"; do
    for conc in "${CONCURRENCIES[@]}"; do
        for target in direct gateway; do
            args=(--concurrency "$conc")
            if [[ $mode == stream ]]; then
                args+=(--stream)
            fi
            if [[ $target == direct ]]; then
                args=(--url "$SIM_URL/v1/chat/completions" "${args[@]}")
            else
                args=(--url "$GW_URL/v1/chat/completions" --api-key "$KEY" "${args[@]}")
            fi
            log "$mode, concurrency $conc, $target: ${WARMUP}s warm-up + ${DURATION}s"
            if awk "BEGIN { exit !($WARMUP > 0) }"; then
                bench_json "$WORK/warmup.json" "${args[@]}" --duration "$WARMUP" --warmup 0
            fi
            read -r osum0 ocount0 <<<"$(overhead_stats)"
            before=$(cpu_ticks "$GW_PID")
            bench_json "$WORK/run.json" "${args[@]}" --duration "$DURATION" --warmup 0
            after=$(cpu_ticks "$GW_PID")
            read -r osum1 ocount1 <<<"$(overhead_stats)"
            printf '{"mode":"%s","concurrency":%s,"target":"%s","gateway_cpu_ticks":%s,"overhead_sum_s":%s,"overhead_count":%s,"report":%s}\n' \
                "$mode" "$conc" "$target" "$((after - before))" \
                "$(awk "BEGIN { print $osum1 - $osum0 }")" "$(awk "BEGIN { print $ocount1 - $ocount0 }")" \
                "$(cat "$WORK/run.json")" >>"$RESULTS"
            if [[ $conc == 1 ]]; then
                BENCH_CMDS+=("switchyard bench ${args[*]/$KEY/\$KEY} --duration $DURATION --warmup 0 --json")
            fi
        done
    done
done

# --- loopback floor ---------------------------------------------------------------
# The direct runs above keep client and simulator on one CPU: no request
# crosses CPUs. Through the gateway every request crosses CPUs four times.
# A simulator on the gateway's CPU, measured at concurrency 1, shows what
# two of those crossings cost on this machine with no gateway at all.
start sim-floor "${PIN_GATEWAY[@]}" "$BIN" sim --listen 127.0.0.1:0
FLOOR_PID=$STARTED_PID
FLOOR_URL=$(listen_url sim-floor switchyard-sim "$FLOOR_PID")
http PUT "$FLOOR_URL/_sim/knobs" "" "$SIM_KNOBS" >/dev/null || die "could not set simulator knobs"
for mode in "${MODES[@]}"; do
    args=(--url "$FLOOR_URL/v1/chat/completions" --concurrency 1)
    [[ $mode == stream ]] && args+=(--stream)
    log "$mode, concurrency 1, direct to a simulator on the gateway's CPU"
    bench_json "$WORK/run.json" "${args[@]}" --duration "$DURATION" --warmup "$WARMUP"
    printf '{"mode":"%s","concurrency":1,"target":"cross-cpu","gateway_cpu_ticks":0,"report":%s}\n' \
        "$mode" "$(cat "$WORK/run.json")" >>"$RESULTS"
done
kill "$FLOOR_PID" 2>/dev/null || true

# --- report -------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "none (no commit yet)")
if [[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1)" ]]; then
    COMMIT="$COMMIT, with uncommitted changes"
fi
export BENCH_META_NPROC=$NPROC \
    BENCH_META_CPU="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)" \
    BENCH_META_KERNEL="$(uname -sr)" \
    BENCH_META_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" \
    BENCH_META_COMMIT="$COMMIT" \
    BENCH_META_RUSTC="$(rustc --version 2>/dev/null || echo unknown)" \
    BENCH_META_COMMAND="$CMDLINE" \
    BENCH_META_DURATION=$DURATION \
    BENCH_META_WARMUP=$WARMUP \
    BENCH_META_PINNING="$PINNING" \
    BENCH_META_KNOBS="$SIM_KNOBS" \
    BENCH_META_CLK_TCK=$CLK_TCK \
    BENCH_META_BENCH_CMDS="$(printf '%s\n' "${BENCH_CMDS[@]}")"
python3 "$ROOT/bench/render.py" "$RESULTS" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT"
python3 "$ROOT/bench/render.py" --check "$RESULTS"
