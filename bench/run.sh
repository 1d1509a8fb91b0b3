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
CMDLINE="bench/run.sh${*:+ $*}"
[[ -n "${BENCH_DURATION:-}" ]] && CMDLINE="BENCH_DURATION=$BENCH_DURATION $CMDLINE"
[[ -n "${BENCH_WARMUP:-}" ]] && CMDLINE="BENCH_WARMUP=$BENCH_WARMUP $CMDLINE"

QUICK=0
BUILD=1
OUT=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --no-build) BUILD=0 ;;
        --out) OUT=${2:?--out needs a file}; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "run.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [[ $QUICK == 1 ]]; then
    DURATION=${BENCH_DURATION:-2}
    WARMUP=${BENCH_WARMUP:-1}
    OUT=${OUT:-$ROOT/bench/out/benchmarks.md}
else
    DURATION=${BENCH_DURATION:-10}
    WARMUP=${BENCH_WARMUP:-2}
    OUT=${OUT:-$ROOT/docs/benchmarks.md}
fi
CONCURRENCIES=(1 64)
MODES=(non-stream stream)
# The simulator's behaviour, set explicitly so the report can state it.
SIM_KNOBS='{"latency_ms":0,"ttft_ms":0,"tokens_per_sec":0,"answer_tokens":16}'

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "run.sh: $*" >&2; }

# --- processes we start, and only those, are stopped on exit -----------------
PIDS=()
BENCH_PID=""  # the load generator while it runs (not in PIDS: its PID may be reused after)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX")
cleanup() {
    local pid
    for pid in $BENCH_PID "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $BENCH_PID "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- binary -------------------------------------------------------------------
if [[ -n "${BENCH_BIN:-}" ]]; then
    BIN=$BENCH_BIN
elif [[ $BUILD == 1 ]]; then
    log "building release binary"
    (cd "$ROOT" && cargo build --release --bin switchyard) >&2
    BIN=$ROOT/target/release/switchyard
else
    BIN=$ROOT/target/release/switchyard
fi
[[ -x "$BIN" ]] || die "no executable at $BIN"

# --- CPU pinning ----------------------------------------------------------------
NPROC=$(nproc)
if command -v taskset >/dev/null && [[ $NPROC -ge 2 ]]; then
    PIN_GATEWAY=(taskset -c 0)
    PIN_SIDE=(taskset -c 1)
    PINNING="gateway on CPU 0 (\`taskset -c 0\`); simulator and load generator share CPU 1 (\`taskset -c 1\`)"
else
    PIN_GATEWAY=()
    PIN_SIDE=()
    PINNING="NOT pinned (needs taskset and 2 CPUs; this machine has $NPROC): all processes share all CPUs"
    log "warning: $PINNING"
fi

# Starts "$@" in the background with stdout/stderr in $WORK/$name.{out,err};
# sets STARTED_PID. taskset execs its command, so the PID is the program's.
start() {
    local name=$1; shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# Waits for "<prefix>: listening on URL" on the process's stdout; prints URL.
listen_url() {
    local name=$1 prefix=$2 pid=$3 line
    for _ in $(seq 300); do
        line=$(grep -m1 "^$prefix: listening on " "$WORK/$name.out" || true)
        if [[ -n "$line" ]]; then
            echo "${line##* }"
            return
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.err" >&2; die "$name exited before listening"; }
        sleep 0.1
    done
    cat "$WORK/$name.err" >&2
    die "$name did not print its listening line within 30 s"
}

# http METHOD URL BEARER BODY: prints the response body; fails on non-2xx.
http() {
    python3 - "$@" <<'PY'
import sys, urllib.request, urllib.error
method, url, token, body = sys.argv[1:5]
req = urllib.request.Request(url, data=body.encode(), method=method,
                             headers={"content-type": "application/json"})
if token:
    req.add_header("authorization", "Bearer " + token)
try:
    with urllib.request.urlopen(req, timeout=10) as resp:
        sys.stdout.write(resp.read().decode())
except urllib.error.HTTPError as e:
    sys.exit(f"{method} {url}: {e.code} {e.read().decode(errors='replace')}")
except OSError as e:
    sys.exit(f"{method} {url}: {e}")
PY
}

# utime+stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat,
# counted after the ")" that ends the command name).
cpu_ticks() {
    local stat
    [[ -r /proc/$1/stat ]] || { tail -n 20 "$WORK/gateway.err" >&2; die "gateway (pid $1) is gone"; }
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    read -r -a f <<<"$stat"
    echo $(( f[11] + f[12] ))
}

# --- simulator ------------------------------------------------------------------
start sim "${PIN_SIDE[@]}" "$BIN" sim --listen 127.0.0.1:0
SIM_PID=$STARTED_PID
SIM_URL=$(listen_url sim switchyard-sim "$SIM_PID")
http PUT "$SIM_URL/_sim/knobs" "" "$SIM_KNOBS" >/dev/null || die "could not set simulator knobs"
log "simulator at $SIM_URL (pid $SIM_PID)"

# --- gateway ----------------------------------------------------------------------
sed -e "s#@WORK@#$WORK#" -e "s#@SIM@#$SIM_URL#" "$ROOT/bench/gateway.yaml.in" >"$WORK/gateway.yaml"
start gateway "${PIN_GATEWAY[@]}" "$BIN" serve --config "$WORK/gateway.yaml"
GW_PID=$STARTED_PID
GW_URL=$(listen_url gateway switchyard "$GW_PID")
KEY=$(http POST "$GW_URL/api/v1/keys" bench-admin '{"name":"bench"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])') || die "could not create an API key"
log "gateway at $GW_URL (pid $GW_PID)"

# overhead_stats: "SUM COUNT" of the gateway's own overhead histogram
# (time spent in the gateway, upstream waits excluded), from /metrics.
overhead_stats() {
    curl -s "$GW_URL/metrics" | awk '
        /^switchyard_gateway_overhead_seconds_sum\{operation="chat"\}/ { s = $2 }
        /^switchyard_gateway_overhead_seconds_count\{operation="chat"\}/ { c = $2 }
        END { printf "%s %s\n", (s == "" ? 0 : s), (c == "" ? 0 : c) }'
}

# --- runs ---------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
BENCH_CMDS=()

# bench_json OUTFILE ARGS...: runs the load generator, keeps its JSON line.
# It runs in the background so that a signal to this script is handled at once.
bench_json() {
    local out=$1 rc=0; shift
    "${PIN_SIDE[@]}" "$BIN" bench "$@" --json >"$WORK/bench.out" 2>"$WORK/bench.err" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    [[ $rc == 0 ]] || { cat "$WORK/bench.err" >&2; die "bench failed (exit $rc): $*"; }
    grep '^{.*"latency_ms"' "$WORK/bench.out" | tail -n 1 >"$out"
    [[ -s "$out" ]] || die "bench printed no JSON report: $*"
}

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
