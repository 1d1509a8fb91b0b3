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
    [[ -n ${BENCH_KEEP:-} ]] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}

# start NAME CMD...: runs CMD in the background, output in $WORK/NAME.{out,err};
# sets STARTED_PID (taskset execs its command, so it is the program's PID).
start() {
    local name=$1; shift
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# stop PID: stops a process started with `start` (SIGTERM, then waits) and
# forgets it, so the cleanup on exit does not signal a reused PID.
stop() {
    local pid=$1 keep=() p
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
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

# cpu_ticks PID [NAME]: utime+stime in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the ")" that ends the command name). NAME
# (default gateway) is the process, for the message if it is gone.
cpu_ticks() {
    local split
    split=$(cpu_ticks_split "$@") || return 1
    echo $(( ${split% *} + ${split#* } ))
}

# cpu_ticks_split PID [NAME]: "UTIME STIME" in clock ticks: user-space time
# and time in the kernel (for a proxy mostly the socket work).
cpu_ticks_split() {
    local stat name=${2:-gateway}
    [[ -r /proc/$1/stat ]] || { tail -n 20 "$WORK/$name.err" >&2; die "$name (pid $1) is gone"; }
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    read -r -a f <<<"$stat"
    echo "${f[11]} ${f[12]}"
}

# thread_ticks PID: a JSON object {thread name: utime+stime ticks} summed over
# the process's threads by name (tokio's workers, sqlx's SQLite thread, ...):
# a coarse profile of where the process spends its CPU.
thread_ticks() {
    local t stat comm sep="" out="{"
    declare -A by=()
    for t in /proc/"$1"/task/*; do
        read -r stat <"$t/stat" 2>/dev/null || continue
        comm=${stat#*(}; comm=${comm%)*}
        stat=${stat##*) }
        read -r -a f <<<"$stat"
        by[$comm]=$(( ${by[$comm]:-0} + f[11] + f[12] ))
    done
    for comm in "${!by[@]}"; do out+="$sep\"${comm//\"/}\":${by[$comm]}"; sep=","; done
    echo "$out}"
}

# proc_kib PID FIELD: a /proc/PID/status figure in KiB (VmRSS, VmHWM), 0 if gone.
proc_kib() {
    local status
    status=$(cat "/proc/$1/status" 2>/dev/null) || { echo 0; return; }
    awk -v f="$2:" '$1 == f { print $2; found = 1 } END { if (!found) print 0 }' <<<"$status"
}

# open_files PID: how many files (sockets included) the process has open, 0 if gone.
open_files() {
    find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# proc_nofile PID: the process's own soft open-files limit (what it can open;
# each process has its own, inherited when it was started), 0 if gone.
proc_nofile() {
    local limits
    limits=$(cat "/proc/$1/limits" 2>/dev/null) || { echo 0; return; }
    awk '/^Max open files/ { print ($4 == "unlimited" ? 1048576 : $4); found = 1 } END { if (!found) print 0 }' <<<"$limits"
}

# raise_nofile: the soft open-files limit up to the hard one (inherited by
# every process started after); sets NOFILE_HARD.
raise_nofile() {
    NOFILE_HARD=$(ulimit -Hn)
    [[ $NOFILE_HARD == unlimited ]] && NOFILE_HARD=1048576
    ulimit -Sn "$NOFILE_HARD" || die "could not raise the open-files limit to $NOFILE_HARD"
}

# tcp_counters: "LISTEN_OVERFLOWS LISTEN_DROPS SYN_RETRANS" from the kernel's
# TcpExt counters (/proc/net/netstat, this network namespace, all listeners):
# connects that found an accept queue full, and SYNs sent again because of it.
tcp_counters() {
    awk '$1 == "TcpExt:" { if (!h) { for (i = 2; i <= NF; i++) k[i] = $i; h = 1 } else { for (i = 2; i <= NF; i++) v[k[i]] = $i } }
         END { printf "%d %d %d\n", v["ListenOverflows"], v["ListenDrops"], v["TCPSynRetrans"] }' /proc/net/netstat
}

# listen_backlog URL: the accept backlog of the socket listening at URL's port
# (the Send-Q column `ss` shows for listeners), "unknown" without ss.
listen_backlog() {
    local port=${1##*:}
    port=${port%%/*}
    ss -ltnH "sport = :$port" 2>/dev/null | awk 'NR == 1 { print $3; found = 1 } END { if (!found) print "unknown" }'
}

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ensure_nginx: sets NGINX to the nginx binary, installing Debian's
# nginx-light with apt-get (non-interactive, services not started) if it is
# missing; NGINX stays empty and NGINX_NOTE says why if that fails.
ensure_nginx() {
    NGINX=$(command -v nginx || true)
    [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
    NGINX_NOTE=""
    [[ -n $NGINX ]] && return 0
    if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
        NGINX_NOTE="nginx is not installed and cannot be installed here (needs root and apt-get)"
        return 0
    fi
    log "nginx not found: installing Debian's nginx-light (apt-get; log in $WORK/apt.log)"
    local policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        # Keep the package from starting a system nginx; removed right after.
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    fi
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold nginx-light)
    if ! "${apt[@]}" >"$WORK/apt.log" 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$WORK/apt.log" 2>&1 || true
        "${apt[@]}" >>"$WORK/apt.log" 2>&1 || true
    fi
    [[ -n $policy ]] && rm -f "$policy"
    NGINX=$(command -v nginx || true)
    [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
    if [[ -z $NGINX ]]; then
        tail -n 5 "$WORK/apt.log" >&2
        NGINX_NOTE="nginx could not be installed (\`apt-get install nginx-light\` failed: $(tail -n 1 "$WORK/apt.log"))"
    fi
}

# start_nginx TEMPLATE [BACKLOG]: nginx on the gateway's CPU in front of the
# simulator, with the config TEMPLATE (@WORK@, @PORT@, @UPSTREAM@ and
# @BACKLOG@, default 511, nginx's own, filled in); sets
# NGINX_PID (the master), NGINX_WORKER (its one worker), NGINX_URL.
start_nginx() {
    local port
    port=$(free_port)
    mkdir -p "$WORK/nginx"
    sed -e "s#@WORK@#$WORK#g" -e "s#@PORT@#$port#g" -e "s#@UPSTREAM@#${SIM_URL#http://}#g" \
        -e "s#@BACKLOG@#${2:-511}#g" "$1" >"$WORK/nginx/nginx.conf"
    "$NGINX" -t -q -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>"$WORK/nginx.err" ||
        { cat "$WORK/nginx.err" >&2; die "nginx rejected $WORK/nginx/nginx.conf"; }
    start nginx "${PIN_GATEWAY[@]}" "$NGINX" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
    NGINX_PID=$STARTED_PID
    NGINX_URL=http://127.0.0.1:$port
    NGINX_WORKER=""
    for _ in $(seq 100); do
        kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/nginx.err" "$WORK/nginx/error.log" >&2 2>/dev/null; die "nginx exited"; }
        NGINX_WORKER=$(cat "/proc/$NGINX_PID/task/$NGINX_PID/children" 2>/dev/null | awk '{ print $1 }')
        if [[ -n $NGINX_WORKER ]] && curl -s -o /dev/null "$NGINX_URL/v1/models"; then break; fi
        sleep 0.1
    done
    [[ -n $NGINX_WORKER ]] || die "nginx started no worker"
    log "nginx at $NGINX_URL (master $NGINX_PID, worker $NGINX_WORKER)"
}

# cpu0_ticks: "BUSY STEAL" of CPU 0 in clock ticks from /proc/stat, BUSY being
# user+nice+system (the gateway's own time is part of it; irq time is left out).
cpu0_ticks() {
    local _name user nice system _idle _iowait _irq _softirq steal _rest
    read -r _name user nice system _idle _iowait _irq _softirq steal _rest < <(grep '^cpu0 ' /proc/stat)
    echo "$((user + nice + system)) $steal"
}

# cpu_busy_ticks CPU: "BUSY STEAL" of that CPU in clock ticks from /proc/stat,
# BUSY being user+nice+system+irq+softirq: all time it was not idle. (A
# process's stime may include softirq ticks, so this is the figure to set
# against the processes' own times.)
cpu_busy_ticks() {
    awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat
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
# The benchmark key (bench/key.json) runs the whole policy chain: its
# limits (requests and tokens per minute, concurrency) are checked and
# charged on every request, set high enough never to refuse one.
BENCH_KEY_BODY=$(cat "$(dirname "${BASH_SOURCE[0]}")/key.json")

start_gateway() {
    sed -e "s#@WORK@#$WORK#" -e "s#@SIM@#$SIM_URL#" "$1" >"$WORK/gateway.yaml"
    start gateway "${PIN_GATEWAY[@]}" "$BIN" serve --config "$WORK/gateway.yaml"
    GW_PID=$STARTED_PID
    GW_URL=$(listen_url gateway switchyard "$GW_PID")
    # Key names are unique per tenant and the database outlives a restart.
    KEY=$(http POST "$GW_URL/api/v1/keys" bench-admin "${BENCH_KEY_BODY/\"bench\"/\"bench-$GW_PID\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])') || die "could not create an API key"
    log "gateway at $GW_URL (pid $GW_PID)"
}

# bench_json OUTFILE ARGS...: runs the load generator, keeps its JSON line.
# It runs in the background so that a signal to the script is handled at once.
bench_json() {
    local out=$1; shift
    bench_start "$@"
    bench_finish "$out" "$@"
}

# bench_start ARGS...: starts the load generator on the side CPU and returns
# at once (BENCH_PID); bench_finish OUTFILE ARGS... waits for it and keeps its
# JSON line. Between the two the caller may sample the processes under load.
bench_start() {
    "${PIN_SIDE[@]}" "$BIN" bench "$@" --json >"$WORK/bench.out" 2>"$WORK/bench.err" &
    BENCH_PID=$!
}

bench_finish() {
    local out=$1 rc=0; shift
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    [[ $rc == 0 ]] || { cat "$WORK/bench.err" >&2; die "bench failed (exit $rc): $*"; }
    grep '^{.*"latency_ms"' "$WORK/bench.out" | tail -n 1 >"$out"
    [[ -s "$out" ]] || die "bench printed no JSON report: $*"
}
