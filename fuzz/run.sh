#!/usr/bin/env bash
# Runs the cargo-fuzz targets for a fixed time each, then prints one summary
# line per target. Exits 1 if any target crashed (or timed out / ran out of
# memory on an input), 2 on a setup or build failure.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, all targets)
#
# Needs the nightly toolchain (sanitizers); installs cargo-fuzz if missing.
# Seed corpora are copied from the shared wire fixtures
# ($FIXTURES, default: <dir above the repo>/shared/fixtures/wire) into
# fuzz/corpus/<target>/ at every run; the corpus also keeps what libFuzzer
# finds. Crashes land in fuzz/artifacts/<target>/, logs in fuzz/logs/.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
fixtures="${FIXTURES:-$(dirname "$repo")/shared/fixtures/wire}"
all_targets=(sse_framer openai_stream anthropic_stream gemini_stream request_decoders wire_scanners)

usage() {
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    echo "targets: ${all_targets[*]}" >&2
    exit 2
}

secs="${1:-60}"
[ $# -gt 0 ] && shift
case "$secs" in '' | *[!0-9]* | 0) usage ;; esac
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    case " ${all_targets[*]} " in *" $t "*) ;; *) echo "unknown target: $t" >&2 && usage ;; esac
done

cd "$here" || exit 2

# --- toolchain -------------------------------------------------------------
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz..." >&2
    cargo install cargo-fuzz --locked || exit 2
fi

# --- seed corpora ----------------------------------------------------------
shopt -s nullglob
# seed TARGET GLOB...: copies the fixtures matching each glob (relative to
# $fixtures) into corpus/TARGET, named after their path.
seed() {
    local target="$1" glob f name
    shift
    mkdir -p "corpus/$target"
    for glob in "$@"; do
        for f in "$fixtures"/$glob; do
            [ -f "$f" ] || continue
            name="seed_$(printf '%s' "${f#"$fixtures"/}" | tr '/' '_')"
            cp "$f" "corpus/$target/$name"
        done
    done
}
if [ -d "$fixtures" ]; then
    seed sse_framer '*/*.sse'
    seed openai_stream 'openai/*.sse' 'openai_compatible/*.sse'
    seed anthropic_stream 'anthropic/*.sse'
    seed wire_scanners 'openai/chat_response*.json' 'openai_compatible/*response*.json' 'openai/*.sse'
    seed gemini_stream 'gemini/*.sse'
    seed request_decoders 'openai/*request*.json' 'anthropic/*request*.json' 'anthropic/tool_choice_variants.json' \
        'openai_compatible/*request*.json' 'openai/chat_response*.json' 'anthropic/messages_response*.json' \
        'gemini/generate_content_response*.json' 'openai_compatible/*response*.json'
else
    echo "warning: no fixtures at $fixtures; starting from the existing corpora" >&2
fi

# --- build once, then run --------------------------------------------------
mkdir -p logs
echo "building fuzz targets (nightly, address sanitizer; log: fuzz/logs/build.log)..." >&2
if ! cargo +nightly fuzz build >logs/build.log 2>&1; then
    tail -n 40 logs/build.log >&2
    echo "build failed (full log: fuzz/logs/build.log)" >&2
    exit 2
fi

failed=0
summary=()
for t in "${targets[@]}"; do
    log="logs/$t.log"
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "fuzzing $t for ${secs}s (log: fuzz/$log)..." >&2
    start=$(date +%s)
    # -timeout: an input slower than 10 s is a failure (a hang), not a wait.
    # The outer timeout only guards against libFuzzer not stopping.
    timeout --kill-after=30 $((secs + 600)) \
        cargo +nightly fuzz run "$t" "$here/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    corpus=$(find "corpus/$t" -type f | wc -l | tr -d ' ')
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        status=ok
    else
        status=FAILED
        failed=1
    fi
    line=$(printf '%-17s %-6s %4ss  execs=%-10s exec/s=%-7s cov=%-6s corpus=%-5s' \
        "$t" "$status" "$took" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$corpus")
    if [ $rc -ne 0 ]; then
        line="$line exit=$rc ${artifact:+artifact=fuzz/${artifact#"$here"/}} (see fuzz/$log)"
    fi
    summary+=("$line")
done

echo
printf '%s\n' "${summary[@]}"
exit $failed
