#!/usr/bin/env bash
# The benchmark suite: the gateway against its baselines, measured in one run
# on this machine, and docs/benchmarks.md (+ plots in docs/benchmarks/) from it.
#
# usage: bench/run.sh [--quick] [--no-build] [--out FILE]
#   --quick      2 s runs, 1 s warm-up, 1,000-stream hold tests;
#                writes bench/out/benchmarks.md unless --out
#   --no-build   use the existing target/release/switchyard
#   --out FILE   where to write the report (default docs/benchmarks.md); the
#                plots go to the directory named like it without .md
# env: BENCH_DURATION       measured seconds per run (default 10; 2 with --quick)
#      BENCH_WARMUP         warm-up seconds per run (default 2; 1 with --quick)
#      BENCH_BIN            switchyard binary to use (implies --no-build)
#      BENCH_CONCURRENCIES  default "1 64 512"
#      BENCH_HOLD_STREAMS   streams of each hold test (default 10000; 1000 with --quick)
#      BENCH_HOLD_SECONDS   how long a hold test keeps them open (default 20; 5 with --quick)
#      BENCH_KEEP           set: keep the work directory (logs, results, the database) at exit
#      BENCH_NO_NGINX=1     skip the nginx baseline
#
# Three targets per cell: `direct` (load generator -> simulator), `nginx` (a
# plain reverse proxy with a keep-alive upstream pool, bench/nginx.conf.in;
# installed with apt-get if missing) and `gateway` (Switchyard with its
# policy chain: key auth, usage records in SQLite, metrics). Cells:
# {non-stream, stream} x {concurrency 1, 64, 512}; each run is a warm-up pass,
# then a measured pass (bench --warmup 0), with the proxy's CPU time and RSS
# read from /proc around the measured pass. Then the hold test, twice:
# thousands of slow streams through the gateway at once, its RSS sampled every
# second, with the gateway's upstream over HTTP/2 (one shared connection,
# bench/gateway-h2.yaml.in) and then over HTTP/1.1 (a connection per stream).
#
# Layout: the gateway and nginx on CPU 0 (one at a time under load), the
# simulator and the load generator on CPU 1. Loopback only; every process is
# started by this script and stopped by PID when it ends.
set -euo pipefail
SUITE_T0=$SECONDS

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT=run.sh
REPORT=benchmarks.md
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_setup "$@"
BUILD_S=$((SECONDS - SUITE_T0))
[[ -n "${BENCH_CONCURRENCIES:-}" ]] && CMDLINE="BENCH_CONCURRENCIES=\"$BENCH_CONCURRENCIES\" $CMDLINE"
[[ -n "${BENCH_HOLD_STREAMS:-}" ]] && CMDLINE="BENCH_HOLD_STREAMS=$BENCH_HOLD_STREAMS $CMDLINE"
[[ -n "${BENCH_HOLD_SECONDS:-}" ]] && CMDLINE="BENCH_HOLD_SECONDS=$BENCH_HOLD_SECONDS $CMDLINE"
[[ -n "${BENCH_NO_NGINX:-}" ]] && CMDLINE="BENCH_NO_NGINX=$BENCH_NO_NGINX $CMDLINE"
read -r -a CONCURRENCIES <<<"${BENCH_CONCURRENCIES:-1 64 512}"
MODES=(non-stream stream)
if [[ $QUICK == 1 ]]; then
    HOLD_REQUESTED=${BENCH_HOLD_STREAMS:-1000}
    HOLD_SECONDS=${BENCH_HOLD_SECONDS:-5}
else
    HOLD_REQUESTED=${BENCH_HOLD_STREAMS:-10000}
    HOLD_SECONDS=${BENCH_HOLD_SECONDS:-20}
fi
# The simulator's behaviour, set explicitly so the report can state it.
SIM_KNOBS='{"latency_ms":0,"ttft_ms":0,"tokens_per_sec":0,"answer_tokens":16}'
# Hold test: one word a second from the first, for longer than the measured
# window, so every stream is still open when the load generator stops
# starting new ones.
HOLD_TOKENS=$((HOLD_SECONDS + 10))
HOLD_KNOBS="{\"latency_ms\":0,\"ttft_ms\":0,\"tokens_per_sec\":1,\"answer_tokens\":$HOLD_TOKENS}"
CLK_TCK=$(getconf CLK_TCK)
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

# --- limits -------------------------------------------------------------------------
# The gateway holds two sockets per open stream with its upstream over
# HTTP/1.1 (client and upstream), one over HTTP/2 (the upstream connection is
# shared); the load generator one each, the simulator one per upstream
# connection. Processes inherit the limit (each has its own; see hold_test).
raise_nofile
[[ $NOFILE_HARD -ge 4096 ]] ||
    die "the hard open-files limit (ulimit -Hn) is $NOFILE_HARD; concurrency 512 alone needs ~1,100 in the gateway and the HTTP/1.1 hold test 2 per stream: raise it (e.g. in /etc/security/limits.conf) and run again"
SOMAXCONN=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo unknown)
SYN_BACKLOG=$(cat /proc/sys/net/ipv4/tcp_max_syn_backlog 2>/dev/null || echo unknown)

# --- processes ----------------------------------------------------------------------
start_simulator
start_gateway "$ROOT/bench/gateway.yaml.in"
sleep 1
IDLE_RSS=$(proc_kib "$GW_PID" VmRSS)
IDLE_HWM=$(proc_kib "$GW_PID" VmHWM)
IDLE_FDS=$(find "/proc/$GW_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
GW_BACKLOG=$(listen_backlog "$GW_URL")
SIM_BACKLOG=$(listen_backlog "$SIM_URL")
log "gateway idle: VmRSS $IDLE_RSS KiB, $IDLE_FDS open files"

# The policy chain is on: a request without the key is refused, one with it
# is served (usage rows are counted at the end).
NOKEY_STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    -d '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}' "$GW_URL/v1/chat/completions")
[[ $NOKEY_STATUS == 401 ]] || die "gateway answered $NOKEY_STATUS without an API key (expected 401): key auth is not on"
for stream in false true; do
    http POST "$GW_URL/v1/chat/completions" "$KEY" \
        "{\"model\":\"bench-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":$stream}" >/dev/null ||
        die "gateway request (stream $stream) failed"
done

NGINX_PID=""
NGINX_VERSION=""
if [[ -n "${BENCH_NO_NGINX:-}" ]]; then
    NGINX_NOTE="nginx baseline skipped (BENCH_NO_NGINX is set)"
else
    ensure_nginx
    if [[ -n $NGINX ]]; then
        NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
        start_nginx "$ROOT/bench/nginx.conf.in" "$([[ $GW_BACKLOG =~ ^[0-9]+$ ]] && echo "$GW_BACKLOG" || echo 511)"
        for stream in false true; do
            http POST "$NGINX_URL/v1/chat/completions" "" \
                "{\"model\":\"bench-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":$stream}" >/dev/null ||
                die "request through nginx (stream $stream) failed"
        done
    fi
fi
if [[ -n $NGINX_NOTE ]]; then
    log "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    log "!!! NO NGINX BASELINE: $NGINX_NOTE"
    log "!!! the run continues without the nginx column; targets against nginx are not measured"
    log "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    TARGETS=(direct gateway)
else
    TARGETS=(direct nginx gateway)
fi

# overhead_stats: "SUM COUNT" of the gateway's own overhead histogram
# (time spent in the gateway, upstream waits excluded), from /metrics.
overhead_stats() {
    curl -s "$GW_URL/metrics" | awk '
        /^switchyard_gateway_overhead_seconds_sum\{operation="chat"\}/ { s = $2 }
        /^switchyard_gateway_overhead_seconds_count\{operation="chat"\}/ { c = $2 }
        END { printf "%s %s\n", (s == "" ? 0 : s), (c == "" ? 0 : c) }'
}

# in_flight: the gateway's switchyard_requests_in_flight, all operations.
in_flight() {
    curl -s --max-time 5 "$GW_URL/metrics" | awk '/^switchyard_requests_in_flight[{ ]/ { n += $NF } END { print n + 0 }'
}

# alive: dies if the gateway or nginx has exited (their CPU figures would be 0).
alive() {
    kill -0 "$GW_PID" 2>/dev/null || { tail -n 20 "$WORK/gateway.err" >&2; die "the gateway (pid $GW_PID) exited"; }
    if [[ -n $NGINX_PID ]]; then
        kill -0 "$NGINX_WORKER" 2>/dev/null || { cat "$WORK/nginx/error.log" >&2; die "nginx (worker $NGINX_WORKER) exited"; }
    fi
}

# proxy_ticks: "GATEWAY_UTIME GATEWAY_STIME NGINX_UTIME NGINX_STIME" (nginx:
# master + worker), the processes on CPU 0.
proxy_ticks() {
    local gu gs nu=0 ns=0 mu=0 ms=0
    read -r gu gs <<<"$(cpu_ticks_split "$GW_PID" gateway)"
    if [[ -n $NGINX_PID ]]; then
        read -r nu ns <<<"$(cpu_ticks_split "$NGINX_WORKER" nginx)"
        read -r mu ms <<<"$(cpu_ticks_split "$NGINX_PID" nginx)"
    fi
    echo "$gu $gs $((nu + mu)) $((ns + ms))"
}

# --- cells --------------------------------------------------------------------------
for mode in "${MODES[@]}"; do
    for conc in "${CONCURRENCIES[@]}"; do
        for target in "${TARGETS[@]}"; do
            args=(--concurrency "$conc")
            [[ $mode == stream ]] && args+=(--stream)
            case $target in
                direct) args=(--url "$SIM_URL/v1/chat/completions" "${args[@]}") ;;
                nginx) args=(--url "$NGINX_URL/v1/chat/completions" "${args[@]}") ;;
                gateway) args=(--url "$GW_URL/v1/chat/completions" --api-key "$KEY" "${args[@]}") ;;
            esac
            log "$mode, concurrency $conc, $target: ${WARMUP}s warm-up + ${DURATION}s"
            if awk "BEGIN { exit !($WARMUP > 0) }"; then
                bench_json "$WORK/warmup.json" "${args[@]}" --duration "$WARMUP" --warmup 0
            fi
            read -r osum0 ocount0 <<<"$(overhead_stats)"
            thr0=$(thread_ticks "$GW_PID")
            read -r gu0 gs0 nu0 ns0 <<<"$(proxy_ticks)"
            read -r busy0 steal0 <<<"$(cpu_busy_ticks 0)"
            bench_json "$WORK/run.json" "${args[@]}" --duration "$DURATION" --warmup 0
            read -r busy1 steal1 <<<"$(cpu_busy_ticks 0)"
            alive
            read -r gu1 gs1 nu1 ns1 <<<"$(proxy_ticks)"
            thr1=$(thread_ticks "$GW_PID")
            read -r osum1 ocount1 <<<"$(overhead_stats)"
            nginx_rss=0
            nginx_hwm=0
            if [[ -n $NGINX_PID ]]; then
                nginx_rss=$(proc_kib "$NGINX_WORKER" VmRSS)
                nginx_hwm=$(proc_kib "$NGINX_WORKER" VmHWM)
            fi
            python3 - "$WORK/run.json" >>"$RESULTS" <<PY
import json, sys
t0, t1 = json.loads('$thr0'), json.loads('$thr1')
print(json.dumps({
    "kind": "cell", "mode": "$mode", "concurrency": $conc, "target": "$target",
    "gateway_utime": $((gu1 - gu0)), "gateway_stime": $((gs1 - gs0)),
    "gateway_threads": {k: t1[k] - t0.get(k, 0) for k in t1 if t1[k] - t0.get(k, 0)},
    "gateway_rss_kib": $(proc_kib "$GW_PID" VmRSS), "gateway_hwm_kib": $(proc_kib "$GW_PID" VmHWM),
    "nginx_utime": $((nu1 - nu0)), "nginx_stime": $((ns1 - ns0)),
    "nginx_rss_kib": $nginx_rss, "nginx_hwm_kib": $nginx_hwm,
    "cpu0_busy_ticks": $((busy1 - busy0)), "cpu0_steal_ticks": $((steal1 - steal0)),
    "overhead_sum_s": $osum1 - $osum0, "overhead_count": $ocount1 - $ocount0,
    "report": json.load(open(sys.argv[1])),
}))
PY
            if [[ $conc == "${CONCURRENCIES[0]}" ]]; then
                BENCH_CMDS+=("switchyard bench ${args[*]/$KEY/\$KEY} --duration $DURATION --warmup 0 --json")
            fi
        done
    done
done
NGINX_HWM=0
if [[ -n $NGINX_PID ]]; then
    NGINX_HWM=$(proc_kib "$NGINX_WORKER" VmHWM)
    stop "$NGINX_PID"
fi

# --- loopback floor -----------------------------------------------------------------
# The direct runs keep client and simulator on one CPU: no request crosses
# CPUs. Through a proxy every request crosses CPUs four times. A simulator on
# the proxy's CPU, measured at concurrency 1, shows what two of those
# crossings cost on this machine with no proxy at all.
start sim-floor "${PIN_GATEWAY[@]}" "$BIN" sim --listen 127.0.0.1:0
FLOOR_PID=$STARTED_PID
FLOOR_URL=$(listen_url sim-floor switchyard-sim "$FLOOR_PID")
http PUT "$FLOOR_URL/_sim/knobs" "" "$SIM_KNOBS" >/dev/null || die "could not set simulator knobs"
for mode in "${MODES[@]}"; do
    args=(--url "$FLOOR_URL/v1/chat/completions" --concurrency 1)
    [[ $mode == stream ]] && args+=(--stream)
    log "$mode, concurrency 1, direct to a simulator on CPU 0"
    bench_json "$WORK/run.json" "${args[@]}" --duration "$DURATION" --warmup "$WARMUP"
    printf '{"kind":"floor","mode":"%s","concurrency":1,"target":"cross-cpu","report":%s}\n' \
        "$mode" "$(cat "$WORK/run.json")" >>"$RESULTS"
done
stop "$FLOOR_PID"

# --- hold test ----------------------------------------------------------------------
# Twice, each on a fresh gateway (so its open files are the few it starts with
# and its memory is its own): N slow streams at once, the gateway's RSS and
# in-flight count sampled every second while they are open. First with the
# upstream over HTTP/2 (bench/gateway-h2.yaml.in: every stream on one shared
# connection, the shape cloud providers have over TLS), then over HTTP/1.1
# (bench/gateway.yaml.in: one upstream connection per stream).
HOLD_FD_RESERVE=32
declare -A HOLD_HWM=()

# hold_test UPSTREAM CONFIG: one hold test on a fresh gateway started with
# CONFIG; UPSTREAM (http2 or http1) is how it reaches the simulator. Appends a
# "hold" record to RESULTS and sets HOLD_HWM[UPSTREAM].
hold_test() {
    local upstream=$1 config=$2 label per_stream
    case $upstream in
        http2) label="HTTP/2"; per_stream=1 ;;  # the client's socket; the upstream connection is shared
        http1) label="HTTP/1.1"; per_stream=2 ;;  # the client's socket and its own upstream connection
        *) die "hold_test: unknown upstream $upstream" ;;
    esac
    stop "$GW_PID"
    start_gateway "$config"
    sleep 1
    local idle_rss idle_fds gw_nofile gen_nofile sim_nofile sim_fds
    idle_rss=$(proc_kib "$GW_PID" VmRSS)
    idle_fds=$(open_files "$GW_PID")
    GW_BACKLOG=$(listen_backlog "$GW_URL")
    SIM_BACKLOG=$(listen_backlog "$SIM_URL")
    # Each process has its own open-files limit: the gateway needs per_stream
    # per stream, the load generator (started below; it inherits this
    # shell's soft limit) one, the simulator one per upstream connection.
    gw_nofile=$(proc_nofile "$GW_PID")
    gen_nofile=$(ulimit -Sn)
    [[ $gen_nofile == unlimited ]] && gen_nofile=1048576
    sim_nofile=$(proc_nofile "$SIM_PID")
    sim_fds=$(open_files "$SIM_PID")
    local -A max=(
        [gateway]=$(( (gw_nofile - idle_fds - HOLD_FD_RESERVE) / per_stream ))
        [load generator]=$(( gen_nofile - HOLD_FD_RESERVE ))
    )
    local -A need=(
        [gateway]=$(( per_stream * HOLD_REQUESTED + idle_fds + HOLD_FD_RESERVE ))
        [load generator]=$(( HOLD_REQUESTED + HOLD_FD_RESERVE ))
    )
    local -A why=(
        [gateway]="$per_stream per stream (the client's socket$([[ $per_stream == 2 ]] && echo " and its own upstream connection")) plus the $idle_fds it opens at start"
        [load generator]="1 per stream (its own process, with the limit it inherits from this script)"
    )
    if [[ $upstream == http1 ]]; then
        max[simulator]=$(( sim_nofile - sim_fds - HOLD_FD_RESERVE ))
        need[simulator]=$(( HOLD_REQUESTED + sim_fds + HOLD_FD_RESERVE ))
        why[simulator]="1 per stream (one upstream connection each) plus the $sim_fds it has open"
    fi
    local streams=$HOLD_REQUESTED limited_by="" needed=0 p
    for p in gateway "load generator" simulator; do
        [[ -n ${max[$p]:-} ]] || continue
        [[ ${need[$p]} -gt $needed ]] && needed=${need[$p]}
        if [[ ${max[$p]} -lt $streams ]]; then
            streams=${max[$p]}
            limited_by=$p
        fi
    done
    [[ $streams -ge 1 ]] || die "hold test (upstream $label): the open-files limits leave room for no stream"
    if [[ -n $limited_by ]]; then
        local lim
        case $limited_by in
            gateway) lim=$gw_nofile ;;
            simulator) lim=$sim_nofile ;;
            *) lim=$gen_nofile ;;
        esac
        log "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        log "!!! HOLD TEST, UPSTREAM $label, CANNOT RUN AT $HOLD_REQUESTED STREAMS: the $limited_by may open"
        log "!!! $lim files (the hard limit, ulimit -Hn, is $NOFILE_HARD and this process cannot raise it);"
        log "!!! it needs ${why[$limited_by]} (+$HOLD_FD_RESERVE spare)."
        log "!!! Running $streams streams instead; the report marks the $HOLD_REQUESTED-stream target NOT MEASURED."
        log "!!! To run it, raise the hard limit to at least $needed (limits.conf, or ulimit -Hn as a privileged user)."
        log "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    fi
    http PUT "$SIM_URL/_sim/knobs" "" "$HOLD_KNOBS" >/dev/null || die "could not set simulator knobs"
    local args=(--url "$GW_URL/v1/chat/completions" --api-key "$KEY" --stream --concurrency "$streams"
        --max-tokens "$HOLD_TOKENS" --duration "$HOLD_SECONDS" --warmup 0 --timeout 120)
    log "hold test, upstream $label: $streams streams at 1 word/s for ~${HOLD_TOKENS}s (window ${HOLD_SECONDS}s)"
    local ovf0 drop0 syn0 ovf1 drop1 syn1 busy0 steal0 busy1 steal1 g0 g1 t0 sim_idle_rss gen_nofile_seen samples
    read -r ovf0 drop0 syn0 <<<"$(tcp_counters)"
    read -r busy0 steal0 <<<"$(cpu_busy_ticks 0)"
    g0=$(cpu_ticks "$GW_PID")
    sim_idle_rss=$(proc_kib "$SIM_PID" VmRSS)
    samples=$WORK/hold-samples-$upstream.txt
    : >"$samples"
    t0=$(date +%s.%N)
    bench_start "${args[@]}"
    gen_nofile_seen=$(proc_nofile "$BENCH_PID")
    while kill -0 "$BENCH_PID" 2>/dev/null; do
        # t, gateway RSS, in flight, gateway open files, simulator RSS, load
        # generator RSS, load generator open files
        printf '%s %s %s %s %s %s %s\n' "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" \
            "$(proc_kib "$GW_PID" VmRSS)" "$(in_flight)" "$(open_files "$GW_PID")" \
            "$(proc_kib "$SIM_PID" VmRSS)" "$(proc_kib "$BENCH_PID" VmRSS)" "$(open_files "$BENCH_PID")" >>"$samples"
        sleep 1
    done
    bench_finish "$WORK/hold-$upstream.json" "${args[@]}"
    g1=$(cpu_ticks "$GW_PID")
    read -r busy1 steal1 <<<"$(cpu_busy_ticks 0)"
    read -r ovf1 drop1 syn1 <<<"$(tcp_counters)"
    HOLD_HWM[$upstream]=$(proc_kib "$GW_PID" VmHWM)
    sleep 2
    local rss_after
    rss_after=$(proc_kib "$GW_PID" VmRSS)
    python3 - "$samples" "$WORK/hold-$upstream.json" >>"$RESULTS" <<PY
import json, sys
samples = [[float(x) for x in l.split()] for l in open(sys.argv[1]) if len(l.split()) == 7]
print(json.dumps({
    "kind": "hold", "upstream": "$upstream", "fds_per_stream": $per_stream, "config": "bench/$(basename "$config")",
    "streams": $streams, "requested": $HOLD_REQUESTED, "limited_by_fds": bool("$limited_by"), "limited_by": "$limited_by" or None,
    "nofile_hard": $NOFILE_HARD, "nofile_needed": $needed, "idle_fds": $idle_fds, "generator_nofile": $gen_nofile_seen,
    "simulator_nofile": $sim_nofile, "seconds": $HOLD_SECONDS, "tokens": $HOLD_TOKENS,
    "knobs": json.loads('$HOLD_KNOBS'), "samples": samples, "hwm_kib": ${HOLD_HWM[$upstream]}, "rss_after_kib": $rss_after,
    "rss_before_kib": $idle_rss, "sim_rss_before_kib": $sim_idle_rss, "gateway_cpu_ticks": $((g1 - g0)), "cpu0_busy_ticks": $((busy1 - busy0)),
    "cpu0_steal_ticks": $((steal1 - steal0)), "listen_overflows": $((ovf1 - ovf0)), "listen_drops": $((drop1 - drop0)),
    "syn_retrans": $((syn1 - syn0)), "report": json.load(open(sys.argv[2])),
}))
PY
    BENCH_CMDS+=("switchyard bench ${args[*]/$KEY/\$KEY} --json   # hold test, upstream $label")
}

MAIN_HWM=$(proc_kib "$GW_PID" VmHWM)
MAIN_RSS=$(proc_kib "$GW_PID" VmRSS)
hold_test http2 "$ROOT/bench/gateway-h2.yaml.in"
hold_test http1 "$ROOT/bench/gateway.yaml.in"
HOLD_HWM_MAX=$(( HOLD_HWM[http2] > HOLD_HWM[http1] ? HOLD_HWM[http2] : HOLD_HWM[http1] ))

# --- memory and usage rows -----------------------------------------------------------
sleep 1  # the usage writer flushes every 500 ms
USAGE_ROWS=$(python3 -c '
import sqlite3, sys
print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("SELECT count(*) FROM usage_records").fetchone()[0])
' "$WORK/bench.db" 2>/dev/null || echo unknown)
# hold_hwm_kib: the larger of the two hold tests' gateways; each in hold_hwm_kib_by_upstream.
printf '{"kind":"memory","idle_rss_kib":%s,"idle_hwm_kib":%s,"cells_hwm_kib":%s,"cells_final_rss_kib":%s,"hold_hwm_kib":%s,"hold_hwm_kib_by_upstream":{"http2":%s,"http1":%s},"suite_hwm_kib":%s,"nginx_hwm_kib":%s}\n' \
    "$IDLE_RSS" "$IDLE_HWM" "$MAIN_HWM" "$MAIN_RSS" "$HOLD_HWM_MAX" "${HOLD_HWM[http2]}" "${HOLD_HWM[http1]}" \
    "$(( MAIN_HWM > HOLD_HWM_MAX ? MAIN_HWM : HOLD_HWM_MAX ))" "$NGINX_HWM" >>"$RESULTS"

# --- report -------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
PLOTS=${OUT%.md}
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "none (no commit yet)")
# (this report's own files, left changed by the previous run, do not count)
if [[ -n "$(git -C "$ROOT" status --porcelain -- . ':!docs/benchmarks.md' ':!docs/benchmarks' 2>/dev/null | head -n 1)" ]]; then
    COMMIT="$COMMIT, with uncommitted changes"
fi
export BENCH_META_NPROC=$NPROC \
    BENCH_META_CPU="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)" \
    BENCH_META_MEM="$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)" \
    BENCH_META_OS="$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME" || echo unknown)" \
    BENCH_META_KERNEL="$(uname -sr)" \
    BENCH_META_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" \
    BENCH_META_COMMIT="$COMMIT" \
    BENCH_META_RUSTC="$(rustc --version 2>/dev/null || echo unknown)" \
    BENCH_META_COMMAND="$CMDLINE" \
    BENCH_META_DURATION=$DURATION \
    BENCH_META_WARMUP=$WARMUP \
    BENCH_META_PINNING="$PINNING" \
    BENCH_META_KNOBS="$SIM_KNOBS" \
    BENCH_META_HOLD_KNOBS="$HOLD_KNOBS" \
    BENCH_META_CLK_TCK=$CLK_TCK \
    BENCH_META_LOAD="$LOAD_AT_START" \
    BENCH_META_NGINX="$NGINX_VERSION" \
    BENCH_META_NGINX_NOTE="$NGINX_NOTE" \
    BENCH_META_NOFILE_HARD="$NOFILE_HARD" \
    BENCH_META_SOMAXCONN="$SOMAXCONN" \
    BENCH_META_SYN_BACKLOG="$SYN_BACKLOG" \
    BENCH_META_GW_BACKLOG="$GW_BACKLOG" \
    BENCH_META_SIM_BACKLOG="$SIM_BACKLOG" \
    BENCH_META_USAGE_ROWS="$USAGE_ROWS" \
    BENCH_META_PLOTS="$(basename "$PLOTS")" \
    BENCH_META_BUILD_S=$BUILD_S \
    BENCH_META_BUILT=$BUILD \
    BENCH_META_WALL_S=$((SECONDS - SUITE_T0)) \
    BENCH_META_BENCH_CMDS="$(printf '%s\n' "${BENCH_CMDS[@]}")"
mkdir -p "$ROOT/bench/out"
cp "$RESULTS" "$ROOT/bench/out/${REPORT%.md}.results.jsonl"
declare -px | grep ' BENCH_META_' >"$ROOT/bench/out/${REPORT%.md}.meta.sh"
python3 "$ROOT/bench/render.py" --check "$RESULTS" || { cp "$RESULTS" "$OUT.results.jsonl"; die "malformed results (kept in $OUT.results.jsonl)"; }
mkdir -p "$PLOTS"
python3 "$ROOT/bench/plot.py" "$RESULTS" "$PLOTS" >&2
python3 "$ROOT/bench/render.py" "$RESULTS" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT and the plots in $PLOTS/ (suite wall time $((SECONDS - SUITE_T0)) s, build included: $BUILD_S s)"
python3 "$ROOT/bench/render.py" --summary "$RESULTS"
