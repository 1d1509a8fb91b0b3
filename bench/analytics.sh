#!/usr/bin/env bash
# Analytics at scale: seeds usage records (default 10,000,000, one month)
# through the real write path — Store::write_usage, raw rows and hourly
# rollups in one transaction, in batches of the writer's default size — into
# SQLite and into PostgreSQL, then times typical analytics queries through
# the code GET /api/v1/analytics/cost runs. docs/analytics.md quotes a run.
#
# usage: bench/analytics.sh [--records N] [--sqlite-only | --postgres-only] [--no-build]
#
# The program is crates/store/examples/analytics_bench.rs (release build).
# PostgreSQL is a private server started by tests/services.sh (loopback, its
# own directory under target/services/, fsync off — durability is not what
# is measured — stopped by PID at exit); the SQLite file goes to a scratch
# directory, removed at exit. Needs ~7 GB of free disk for 10M records
# (2.7 GiB SQLite, 3.8 GiB PostgreSQL). Not part of CI (~10 minutes); the
# store tests (crates/store/src/tests/analytics.rs) run the same reads on
# ~23,000 records, checked against sums over the raw records.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RECORDS=10000000
SQLITE=1
POSTGRES=1
BUILD=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --records) RECORDS=${2:?--records needs a number}; shift ;;
        --sqlite-only) POSTGRES=0 ;;
        --postgres-only) SQLITE=0 ;;
        --no-build) BUILD=0 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "analytics.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

cd "$ROOT"
if [[ $BUILD == 1 ]]; then
    cargo build --release -p switchyard-store --example analytics_bench >&2
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-analytics.XXXXXX")
ARGS=(--records "$RECORDS")
[[ $SQLITE == 1 ]] && ARGS+=(--sqlite "$WORK/usage.db")
if [[ $POSTGRES == 1 ]]; then
    # shellcheck source=tests/services.sh
    source "$ROOT/tests/services.sh"
    ARGS+=(--postgres "$SWITCHYARD_TEST_POSTGRES_URL")
fi
# services.sh's EXIT trap stops the servers; this one also removes the scratch directory.
trap 'rm -rf "$WORK"; declare -F _sy_stop_services >/dev/null && _sy_stop_services' EXIT

echo "## Analytics at scale: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory."
echo "Command: bench/analytics.sh --records $RECORDS$([[ $SQLITE == 0 ]] && echo ' --postgres-only')$([[ $POSTGRES == 0 ]] && echo ' --sqlite-only')"
"$ROOT/target/release/examples/analytics_bench" "${ARGS[@]}"
