# Shared by the benchmark scripts (bench/run.sh, bench/translate.sh); sourced,
# not run. The script sets SCRIPT (its name, for messages), ROOT (the checkout)
# and REPORT (the report's file name under docs/), then calls
# `bench_setup "$@"`, which parses the common options and prepares:
#   QUICK BUILD OUT DURATION WARMUP CMDLINE   from the options and env
#   WORK                                       a scratch directory, removed on exit
#   BIN                                        the switchyard binary (built unless --no-build)
#   PIN_GATEWAY PIN_SIDE PINNING               CPU placement (taskset), and its description
# Processes started with `start` (and the load generator in `bench_json`) are
# stopped on exit, by PID; nothing else is.
#
# Common options: [--quick] [--no-build] [--out FILE]
#   --quick      2 s runs, 1 s warm-up; writes bench/out/$REPORT unless --out
#   --no-build   use the existing target/release/switchyard
#   --out FILE   where to write the report (default docs/$REPORT)
# env: BENCH_DURATION, BENCH_WARMUP (seconds per run), BENCH_BIN (binary; implies --no-build)

die() { echo "$SCRIPT: $*" >&2; exit 1; }
log() { echo "$SCRIPT: $*" >&2; }

bench_setup() {
    CMDLINE="bench/$SCRIPT${*:+ $*}"
    [[ -n "${BENCH_DURATION:-}" ]] && CMDLINE="BENCH_DURATION=$BENCH_DURATION $CMDLINE"
    [[ -n "${BENCH_WARMUP:-}" ]] && CMDLINE="BENCH_WARMUP=$BENCH_WARMUP $CMDLINE"
    [[ -n "${BENCH_BIN:-}" ]] && CMDLINE="BENCH_BIN=$BENCH_BIN $CMDLINE"
    QUICK=0
    BUILD=1
    OUT=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --quick) QUICK=1 ;;
            --no-build) BUILD=0 ;;
            --out) OUT=${2:?--out needs a file}; shift ;;
            -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$ROOT/bench/$SCRIPT"; exit 0 ;;
            *) echo "$SCRIPT: unknown argument: $1 (try --help)" >&2; exit 2 ;;
        esac
        shift
    done
    if [[ $QUICK == 1 ]]; then
        DURATION=${BENCH_DURATION:-2}
        WARMUP=${BENCH_WARMUP:-1}
        OUT=${OUT:-$ROOT/bench/out/$REPORT}
    else
        DURATION=${BENCH_DURATION:-10}
        WARMUP=${BENCH_WARMUP:-2}
        OUT=${OUT:-$ROOT/docs/$REPORT}
    fi

    PIDS=()
    BENCH_PID=""  # the load generator while it runs (not in PIDS: its PID may be reused after)
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-${SCRIPT%.sh}.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM

    if [[ -n "${BENCH_BIN:-}" ]]; then
        BIN=$BENCH_BIN
    else
        if [[ $BUILD == 1 ]]; then
            log "building release binary"
            (cd "$ROOT" && cargo build --release --bin switchyard) >&2
        fi
        BIN=$ROOT/target/release/switchyard
    fi
    [[ -x "$BIN" ]] || die "no executable at $BIN"

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
}

bench_cleanup() {
    local pid
    for pid in $BENCH_PID "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in $BENCH_PID "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}

# start NAME CMD...: runs CMD in the background, output in $WORK/NAME.{out,err};
# sets STARTED_PID (taskset execs its command, so it is the program's PID).
start() {
    local name=$1; shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# listen_url NAME PREFIX PID: waits for "PREFIX: listening on URL"; prints URL.
listen_url() {
    local name=$1 prefix=$2 pid=$3 line
    for _ in $(seq 300); do
        line=$(grep -m1 "^$prefix: listening on " "$WORK/$name.out" || true)
        if [[ -n "$line" ]]; then echo "${line##* }"; return; fi
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
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
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

# cpu_ticks PID: utime+stime in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the ")" that ends the command name).
cpu_ticks() {
    local stat
    [[ -r /proc/$1/stat ]] || { tail -n 20 "$WORK/gateway.err" >&2; die "gateway (pid $1) is gone"; }
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    read -r -a f <<<"$stat"
    echo $(( f[11] + f[12] ))
}

# cpu0_ticks: "BUSY STEAL" of CPU 0 in clock ticks from /proc/stat, BUSY being
# user+nice+system (the gateway's own time is part of it; irq time is left out).
cpu0_ticks() {
    local _name user nice system _idle _iowait _irq _softirq steal _rest
    read -r _name user nice system _idle _iowait _irq _softirq steal _rest < <(grep '^cpu0 ' /proc/stat)
    echo "$((user + nice + system)) $steal"
}

# start_simulator: the simulator on the side CPU with SIM_KNOBS; sets SIM_PID, SIM_URL.
start_simulator() {
    start sim "${PIN_SIDE[@]}" "$BIN" sim --listen 127.0.0.1:0
    SIM_PID=$STARTED_PID
    SIM_URL=$(listen_url sim switchyard-sim "$SIM_PID")
    http PUT "$SIM_URL/_sim/knobs" "" "$SIM_KNOBS" >/dev/null || die "could not set simulator knobs"
    log "simulator at $SIM_URL (pid $SIM_PID)"
}

# start_gateway TEMPLATE: the gateway on CPU 0 with the config TEMPLATE
# (@WORK@ and @SIM@ filled in) and an API key; sets GW_PID, GW_URL, KEY.
start_gateway() {
    sed -e "s#@WORK@#$WORK#" -e "s#@SIM@#$SIM_URL#" "$1" >"$WORK/gateway.yaml"
    start gateway "${PIN_GATEWAY[@]}" "$BIN" serve --config "$WORK/gateway.yaml"
    GW_PID=$STARTED_PID
    GW_URL=$(listen_url gateway switchyard "$GW_PID")
    KEY=$(http POST "$GW_URL/api/v1/keys" bench-admin '{"name":"bench"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])') || die "could not create an API key"
    log "gateway at $GW_URL (pid $GW_PID)"
}

# bench_json OUTFILE ARGS...: runs the load generator, keeps its JSON line.
# It runs in the background so that a signal to the script is handled at once.
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
