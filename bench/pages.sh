#!/bin/sh
# Page latency at suite scale (issue 5): the standard corpus (35,000 buildinfos) and its Packages
# index in a fresh SQLite coordinator, every shipped build queued for verification, and a
# campaign with thousands of items; then each page timed with curl over loopback (median and
# maximum of 15 requests after one warm-up). Loopback adds well under a millisecond, so the
# figures are the server's time plus a connection.
# Usage: [BIN=path/to/debcover] [PG=postgres://USER@HOST:PORT] [PROCESSED=1] bench/pages.sh [GRPC_PORT] [HTTP_PORT] [LIBRARY] [FIXED]
# BIN: the binary to measure (default target/release/debcover), so that two builds can be
# compared in one run. PG: measure on PostgreSQL instead, in a fresh database created (and
# dropped at the end) on that server with psql. PROCESSED=1: before timing, simulated nodes
# (debcover-measure sched, next to BIN) rebuild every queued build, as after the rebuilder
# network went through the suite.
set -eu
port=${1:-7530}
http=${2:-7531}
library=${3:-libxml2}
fixed=${4:-99}
bin=${BIN:-target/release/debcover}
data=$(mktemp -d)
pg=${PG:-}
if [ -n "$pg" ]; then
    name=debcover_pages_$$
    psql -q "$pg/postgres" -c "CREATE DATABASE $name"
    db="$pg/$name"
else
    db="sqlite://$data/debcover.sqlite"
fi
DEBCOVER_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$http" \
    --data-dir "$data" --db "$db" 2>"$data/server.log" &
pid=$!
cleanup() {
    kill $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    if [ -n "$pg" ]; then psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)"; fi
    rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
export DEBCOVER_SERVER="http://127.0.0.1:$port"
export DEBCOVER_ADMIN_TOKEN_FILE="$data/admin.token"
for _ in $(seq 1 100); do "$bin" status >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" ingest buildinfo bench-data/corpus/Buildinfo.xz >/dev/null
"$bin" ingest archive --suite bookworm --arch amd64 bench-data/corpus/Packages >/dev/null
"$bin" verify suite bookworm --admin-token-file "$data/admin.token" >/dev/null
if [ -n "${PROCESSED:-}" ]; then
    # The suite after the rebuilder network went through it: simulated nodes of 4 operators
    # claim and report every job until the queue is empty (each build verified by 2 operators).
    # Before the campaign exists, so that the results do not also re-judge its items.
    "$(dirname "$bin")/debcover-measure" sched --server "$DEBCOVER_SERVER" --nodes 16 \
        --admin-token-file "$data/admin.token" --prefix processed >&2
    sleep 3   # let the last change settle (see web::suites::SummaryCache)
fi
id=$("$bin" campaign create --library "$library" --fixed "$fixed" --suite bookworm --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["campaign"]["id"])')
base="http://127.0.0.1:$http"
printf '%-44s %8s %10s %10s %8s\n' page bytes "first ms" "median ms" "max ms"
# measure LABEL PATH [HEADER]: one warm-up (timed apart: the first request after a change),
# then 15 timed requests.
measure() {
    set -- "$1" "$2" "${3:-X-Bench: 1}"
    first=$(curl -fsS -o /dev/null -H "$3" -w '%{time_total}' "$base$2")
    times=$(for _ in $(seq 1 15); do curl -fsS -o /dev/null -H "$3" -w '%{time_total}\n' "$base$2"; done | sort -n)
    bytes=$(curl -fsS -H "$3" "$base$2" | wc -c)
    median=$(echo "$times" | sed -n 8p)
    max=$(echo "$times" | tail -n 1)
    printf '%-44s %8s %10.1f %10.1f %8.1f\n' "$1" "$bytes" "$(echo "$first * 1000" | bc -l)" \
        "$(echo "$median * 1000" | bc -l)" "$(echo "$max * 1000" | bc -l)"
}
for path in "/campaigns/$id" "/campaigns/$id?page=50" "/api/campaigns/$id" "/campaigns" \
    "/suites/bookworm" "/suites/bookworm?page=300" "/api/suites/bookworm" "/api/suites/bookworm/status" \
    "/source/$library" "/nodes" "/metrics"; do
    measure "$path" "$path"
done
# A poller of the status list that is up to date: 304, no body.
modified=$(curl -fsS -D - -o /dev/null "$base/api/suites/bookworm/status" | sed -n 's/^[Ll]ast-[Mm]odified: *//p' | tr -d '\r')
measure "/api/suites/bookworm/status (304)" "/api/suites/bookworm/status" "If-Modified-Since: $modified"
