#!/usr/bin/env bash
# Measures what wire-format translation costs: an OpenAI client streaming
# through the gateway to an OpenAI-compatible upstream (pass-through), to an
# Anthropic upstream and to a Gemini upstream, all three on one simulator, in
# the same run. Writes docs/benchmarks-translation.md.
#
# usage: bench/translate.sh [--quick] [--no-build] [--out FILE]
#   --quick      2 s runs, 1 s warm-up; writes bench/out/benchmarks-translation.md unless --out
#   --no-build   use the existing target/release/switchyard
#   --out FILE   where to write the report (default docs/benchmarks-translation.md)
# env: BENCH_DURATION  measured seconds per run (default 10; 2 with --quick)
#      BENCH_WARMUP    warm-up seconds per run (default 2; 1 with --quick)
#      BENCH_BIN       switchyard binary to use (implies --no-build)
#
# Layout as in bench/run.sh: the gateway alone on CPU 0; the simulator and the
# load generator share CPU 1. Every cell of {stream, non-stream} x
# {concurrency 1, 64} runs the three routes one after the other, each a
# warm-up pass then a measured pass, with the gateway's CPU time read from
# /proc around the measured pass. Loopback only; stops by itself.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT=translate.sh
REPORT=benchmarks-translation.md
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
bench_setup "$@"
ROUTES=(pass-through via-anthropic via-gemini)
CONCURRENCIES=(1 64)
MODES=(stream non-stream)
SIM_KNOBS='{"latency_ms":0,"ttft_ms":0,"tokens_per_sec":0,"answer_tokens":16}'

# --- simulator and gateway ----------------------------------------------------
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
start_simulator
start_gateway "$ROOT/bench/translate.yaml.in"

# --- sanity: each route answers with content and reaches the upstream format it should
http DELETE "$SIM_URL/_sim/requests" "" "" >/dev/null
for route in "${ROUTES[@]}"; do
    for stream in false true; do
        http POST "$GW_URL/v1/chat/completions" "$KEY" \
            "{\"model\":\"$route\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}],\"max_tokens\":16,\"stream\":$stream}" \
            >"$WORK/check-$route-$stream" || die "$route (stream $stream) failed"
    done
done
http GET "$SIM_URL/_sim/requests" "" "" | python3 -c '
import json, sys
got = [(r["format"], r["stream"], r["status"]) for r in json.load(sys.stdin)]
want = [(f, s, 200) for f in ("openai", "anthropic", "gemini") for s in (False, True)]
sys.exit(0 if got == want else f"simulator saw {got}, expected {want}")
' || die "routes do not reach the expected upstream formats"
for route in "${ROUTES[@]}"; do
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["choices"][0]["message"]["content"], "empty answer"
text = "".join(json.loads(l[6:])["choices"][0]["delta"].get("content") or ""
               for l in open(sys.argv[2]) if l.startswith("data: {") and json.loads(l[6:])["choices"])
assert text == d["choices"][0]["message"]["content"], (text, d)
assert open(sys.argv[2]).read().rstrip().endswith("data: [DONE]"), "no [DONE]"
' "$WORK/check-$route-false" "$WORK/check-$route-true" || die "$route: unexpected answer"
done
http DELETE "$SIM_URL/_sim/requests" "" "" >/dev/null
log "routes checked: pass-through → openai, via-anthropic → anthropic, via-gemini → gemini"

# --- runs -------------------------------------------------------------------------
RESULTS=$WORK/results.jsonl
: >"$RESULTS"


for mode in "${MODES[@]}"; do
    for conc in "${CONCURRENCIES[@]}"; do
        for route in "${ROUTES[@]}"; do
            args=(--url "$GW_URL/v1/chat/completions" --api-key "$KEY" --model "$route" --concurrency "$conc")
            [[ $mode == stream ]] && args+=(--stream)
            log "$mode, concurrency $conc, $route: ${WARMUP}s warm-up + ${DURATION}s"
            if awk "BEGIN { exit !($WARMUP > 0) }"; then
                bench_json "$WORK/warmup.json" "${args[@]}" --duration "$WARMUP" --warmup 0
            fi
            read -r busy0 steal0 <<<"$(cpu0_ticks)"
            before=$(cpu_ticks "$GW_PID")
            bench_json "$WORK/run.json" "${args[@]}" --duration "$DURATION" --warmup 0
            after=$(cpu_ticks "$GW_PID")
            read -r busy1 steal1 <<<"$(cpu0_ticks)"
            printf '{"mode":"%s","concurrency":%s,"route":"%s","gateway_cpu_ticks":%s,"cpu0_other_ticks":%s,"cpu0_steal_ticks":%s,"report":%s}\n' \
                "$mode" "$conc" "$route" "$((after - before))" "$((busy1 - busy0 - (after - before)))" \
                "$((steal1 - steal0))" "$(cat "$WORK/run.json")" >>"$RESULTS"
        done
    done
done

# --- report -------------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "none (no commit yet)")
if [[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1)" ]]; then
    COMMIT="$COMMIT, with uncommitted changes"
fi
export M_CPU="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)" \
    M_NPROC=$NPROC M_KERNEL="$(uname -sr)" M_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" \
    M_COMMIT="$COMMIT" M_LOAD="$LOAD_AT_START" M_RUSTC="$(rustc --version 2>/dev/null || echo unknown)" \
    M_COMMAND="$CMDLINE" M_DURATION=$DURATION M_WARMUP=$WARMUP M_PINNING="$PINNING" \
    M_KNOBS="$SIM_KNOBS" M_CLK_TCK="$(getconf CLK_TCK)" \
    M_BENCH="switchyard bench --url $GW_URL/v1/chat/completions --api-key \$KEY --model ROUTE --concurrency 1 --stream --duration $DURATION --warmup 0 --json"
python3 - "$RESULTS" >"$OUT.tmp" <<'PY'
import json, os, sys
E = os.environ
rows = [json.loads(l) for l in open(sys.argv[1])]
R = {(r["mode"], r["concurrency"], r["route"]): r for r in rows}
ROUTES = ["pass-through", "via-anthropic", "via-gemini"]
UPSTREAM = {"pass-through": "`openai_compatible` (`/v1/chat/completions`)",
            "via-anthropic": "`anthropic` (`/v1/messages`)",
            "via-gemini": "`gemini` (`:streamGenerateContent?alt=sse` / `:generateContent`)"}
TARGET_MS = 1.0

def cpu_us(r):
    n = r["report"]["requests"]
    return r["gateway_cpu_ticks"] * 1e6 / int(E["M_CLK_TCK"]) / n if n else float("nan")

def f3(x): return f"{x:.3f}"
def sgn(x): return f"{x:+.3f}"
out = []
p = out.append
p("# Benchmarks: translation\n")
p("What translating between wire formats costs: an OpenAI client (`POST /v1/chat/completions`)")
p("through the gateway to an OpenAI-compatible upstream (no translation), to an Anthropic upstream")
p("and to a Gemini upstream, all three on the same simulator, measured in the same run.")
p("Generated by `bench/translate.sh`; do not edit by hand — re-run the command below.\n")
p("## Machine\n")
p(f"- CPU: {E['M_CPU']}; nproc: {E['M_NPROC']}")
p(f"- Kernel: {E['M_KERNEL']}")
p(f"- Date: {E['M_DATE']}")
p(f"- Commit: {E['M_COMMIT']}")
p(f"- Toolchain: {E['M_RUSTC']}")
p(f"- Load average when the run started (1, 5, 15 min): {E['M_LOAD']}\n")
p("## Command\n")
p(f"```sh\n{E['M_COMMAND']}\n```\n")
p(f"- Placement: {E['M_PINNING']}.")
p(f"- Each run: {E['M_WARMUP']} s warm-up pass, then a {E['M_DURATION']} s measured pass; closed loop,")
p("  one HTTP/1.1 keep-alive connection and one request in flight per worker. The three routes")
p("  run one after the other in each cell (stream first, then non-stream; concurrency 1, then 64).")
p(f"- Simulator knobs (`PUT /_sim/knobs`): `{E['M_KNOBS']}`.")
p("- Request: `{\"model\":ROUTE,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}],\"max_tokens\":16}` (plus `\"stream\":true`).")
p("- Gateway config (`bench/translate.yaml.in`): three providers on the one simulator, one deployment and one route each:")
for rt in ROUTES:
    p(f"  `{rt}` → {UPSTREAM[rt]}.")
p("- Before measuring, the script checks that each route reaches the upstream format it should and")
p("  that its answer (stream and non-stream) has the same content.")
p("- Load generator invocation (the other runs differ in `--model`, `--concurrency`, `--stream`):\n")
p(f"```sh\n{E['M_BENCH']}\n```\n")

p("## Streaming\n")
p("| route | c=1 TTFT p50 ms | c=1 TTFT p99 ms | c=1 latency p50 ms | c=1 latency p99 ms | ΔTTFT p50 ms | ΔTTFT p99 ms | within 1 ms | c=1 CPU µs/req | c=64 RPS | c=64 CPU µs/req | CPU ÷ pass-through (c=64) | errors |")
p("|---|---:|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|---:|")
base1, base64 = R[("stream", 1, "pass-through")], R[("stream", 64, "pass-through")]
verdict = []
for rt in ROUTES:
    a, b = R[("stream", 1, rt)], R[("stream", 64, rt)]
    t, l = a["report"]["ttft_ms"], a["report"]["latency_ms"]
    err = a["report"]["errors"] + b["report"]["errors"]
    if rt == "pass-through":
        d = ["", "", "", ""]
        ratio = ""
    else:
        d50 = t["p50"] - base1["report"]["ttft_ms"]["p50"]
        d99 = t["p99"] - base1["report"]["ttft_ms"]["p99"]
        ok = d50 <= TARGET_MS and d99 <= TARGET_MS
        verdict.append((rt, d50, d99, ok))
        d = [sgn(d50), sgn(d99), "yes" if ok else "**no**", ""]
        ratio = f"{cpu_us(b) / cpu_us(base64):.2f}"
    p(f"| {rt} | {f3(t['p50'])} | {f3(t['p99'])} | {f3(l['p50'])} | {f3(l['p99'])} | {d[0]} | {d[1]} | {d[2]} "
      f"| {cpu_us(a):.0f} | {b['report']['rps']:.0f} | {cpu_us(b):.0f} | {ratio} | {err} |")
p("")
for rt, d50, d99, ok in verdict:
    p(f"- `{rt}`: TTFT {sgn(d50)} ms at p50 and {sgn(d99)} ms at p99 against pass-through — "
      + ("within" if ok else "**outside**")
      + f" the 1 ms target (margin {TARGET_MS - max(d50, d99):.3f} ms on the worse of the two).")
p("")

p("## Non-streaming\n")
p("| route | c=1 latency p50 ms | c=1 latency p99 ms | Δ p50 ms | c=1 CPU µs/req | c=64 RPS | c=64 latency p50 ms | c=64 latency p99 ms | c=64 CPU µs/req | CPU ÷ pass-through (c=64) | errors |")
p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
nb1, nb64 = R[("non-stream", 1, "pass-through")], R[("non-stream", 64, "pass-through")]
for rt in ROUTES:
    a, b = R[("non-stream", 1, rt)], R[("non-stream", 64, rt)]
    l1, l64 = a["report"]["latency_ms"], b["report"]["latency_ms"]
    err = a["report"]["errors"] + b["report"]["errors"]
    first = rt == "pass-through"
    dp50 = "" if first else sgn(l1["p50"] - nb1["report"]["latency_ms"]["p50"])
    ratio = "" if first else f"{cpu_us(b) / cpu_us(nb64):.2f}"
    p(f"| {rt} | {f3(l1['p50'])} | {f3(l1['p99'])} | {dp50} | {cpu_us(a):.0f} | {b['report']['rps']:.0f} "
      f"| {f3(l64['p50'])} | {f3(l64['p99'])} | {cpu_us(b):.0f} | {ratio} | {err} |")
p("")

p("## Interference on the gateway's CPU\n")
p("CPU 0 time (user+nice+system, `/proc/stat`) during each measured pass that was not the gateway's,")
p("and time the hypervisor took from CPU 0 (steal), as a share of the pass. Near 0 means the gateway")
p("had its CPU to itself; more means other work on the machine may have moved the numbers above.\n")
p("| mode | concurrency | route | other on CPU 0 | steal on CPU 0 |")
p("|---|---:|---|---:|---:|")
tck = int(E["M_CLK_TCK"])
for r in rows:
    d = r["report"]["duration_s"] * tck
    p(f"| {r['mode']} | {r['concurrency']} | {r['route']} | {max(r['cpu0_other_ticks'], 0) / d:.0%} | {r['cpu0_steal_ticks'] / d:.0%} |")
p("")

p("## How to read this\n")
p("- Latencies are client-side, from sending the request to the end of the response (for streams,")
p("  the end of the stream). **TTFT** is the time to the first `data:` line carrying content.")
p("  Percentiles are nearest-rank over every measured request.")
p("- **ΔTTFT** is the route's TTFT minus the pass-through route's, at the same percentile, in this run.")
p("  The target is that a translated stream's TTFT stays within 1 ms of pass-through (Δ ≤ 1 ms).")
p("- **CPU µs/req** is the gateway process's user+system CPU time (`/proc/PID/stat`, "
  f"{E['M_CLK_TCK']} ticks/s) during the measured pass divided by the requests in it;")
p("  **CPU ÷ pass-through** is that figure over the pass-through route's at concurrency 64.")
p("- The difference between routes is not only translation: the upstream formats differ on the wire")
p("  (for 16 words the simulator sends an OpenAI chunk per word plus role and finish chunks and")
p("  `[DONE]`, an Anthropic event per word plus six framing events, and a Gemini chunk per four")
p("  words), so the gateway parses different amounts of upstream data, and the simulator, which")
p("  shares CPU 1 with the load generator, spends different amounts of time producing it.")
p("- The simulator answers at once (`ttft_ms` 0, unpaced): every figure here is gateway and")
p("  loopback cost, not model time. Each figure comes from one pass; p99 at concurrency 1 rests on")
p("  the slowest 1 % of requests and is the first to move when anything else runs on the machine.")
sys.stdout.write("\n".join(out) + "\n")
PY
mv "$OUT.tmp" "$OUT"
log "wrote $OUT"
awk '/^## Streaming/,/^## How to read/' "$OUT" | sed '$d'
[[ $(python3 -c 'import json,sys; print(sum(json.loads(l)["report"]["errors"] for l in open(sys.argv[1])))' "$RESULTS") == 0 ]] ||
    die "some requests failed: see the errors column"
