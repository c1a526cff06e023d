#!/bin/sh
# built-with latency at suite scale (issue 2), with the grep baseline in the same run.
# Loads the standard corpus (Buildinfo.xz, 35,000 builds) and its Packages index (suite
# bookworm) into a fresh SQLite coordinator, then measures the questions of BENCHMARKS.md with
# `debcover-measure query` (median of N calls after one warm-up; whole answer received).
# Usage: [MEASURE=path/to/debcover-measure] bench/query.sh [PORT] [N] [BIN]
# BIN: the debcover binary (default target/release/debcover); MEASURE: the client of the same
# build (default target/release/debcover-measure), so that two builds compare in one session.
set -eu
port=${1:-7530}
n=${2:-10}
bin=${3:-target/release/debcover}
measure=${MEASURE:-target/release/debcover-measure}
data=$(mktemp -d)
DEBCOVER_LOG=debcover_server=debug,debcover_core=debug "$bin" serve --listen "127.0.0.1:$port" --http-listen off --data-dir "$data" \
    2>"$data/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$data"' EXIT
export DEBCOVER_SERVER="http://127.0.0.1:$port"
export DEBCOVER_ADMIN_TOKEN_FILE="$data/admin.token"
for _ in $(seq 1 100); do "$bin" status >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" ingest buildinfo bench-data/corpus/Buildinfo.xz >/dev/null
"$bin" ingest archive --suite bookworm --arch amd64 bench-data/corpus/Packages >/dev/null
uptime
for q in "libc6-dev" "libgmp-dev" "golang-golang-x-sys-dev --before 0.3.0-1" \
         "golang-golang-x-sys-dev --before 0.3.0-1 --suite bookworm"; do
    # shellcheck disable=SC2086
    "$measure" query --server "$DEBCOVER_SERVER" -n "$n" --grep bench-data/corpus/buildinfo $q
done
"$measure" query --server "$DEBCOVER_SERVER" -n "$n" src:golang-golang-x-sys --before 0.3.0-1
uptime
grep -E "index|encoded" "$data/server.log" | tail -n 4
