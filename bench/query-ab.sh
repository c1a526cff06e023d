#!/bin/sh
# Server-side A/B of the built-with answer (issue 2): one database holding the standard corpus
# and its Packages index is made once, then each given `debcover` binary serves a copy of it in
# turn (give the binaries twice, alternated, on a noisy machine) and answers N calls of
# `debcover-measure query libc6-dev`; printed per binary: the client's medians and, from the
# server's debug log, the median compact encoding and index steps (first call left out).
# Usage: bench/query-ab.sh PORT N DEBCOVER_BINARY...
set -eu
port=$1
n=$2
shift 2
measure=target/release/debcover-measure
base=$(mktemp -d)
trap 'rm -rf "$base"' EXIT
# The database, made by the first binary.
"$1" serve --listen "127.0.0.1:$port" --http-listen off --data-dir "$base" 2>/dev/null &
pid=$!
export DEBCOVER_SERVER="http://127.0.0.1:$port"
export DEBCOVER_ADMIN_TOKEN_FILE="$base/admin.token"
for _ in $(seq 1 100); do "$1" status >/dev/null 2>&1 && break; sleep 0.1; done
"$1" ingest buildinfo bench-data/corpus/Buildinfo.xz >/dev/null
"$1" ingest archive --suite bookworm --arch amd64 bench-data/corpus/Packages >/dev/null
kill $pid
wait $pid 2>/dev/null || true
uptime
for bin in "$@"; do
    d=$(mktemp -d)
    cp -r "$base/." "$d/"
    DEBCOVER_LOG=debcover_server=debug,debcover_core=debug "$bin" serve --listen "127.0.0.1:$port" --http-listen off --data-dir "$d" \
        >"$d/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do "$bin" status >/dev/null 2>&1 && break; sleep 0.1; done
    echo "== $bin"
    "$measure" query --server "$DEBCOVER_SERVER" -n "$n" libc6-dev 2>&1 | grep -E "Compact, received" | sed 's/.*\[/  [/'
    python3 - "$d/server.log" <<'PY'
import re, statistics, sys
lines = open(sys.argv[1]).read().splitlines()
enc = [int(re.search(r"encode_us=(\d+)", l).group(1)) for l in lines if "shape=Compact" in l][1:]
idx = [l for l in lines if "answered from the index" in l][1:]
def med(key):
    return statistics.median(int(re.search(key + r"=(\d+)", l).group(1)) for l in idx)
print(f"  server: compact encoding median {statistics.median(enc) / 1000:.1f} ms (min {min(enc) / 1000:.1f}, {len(enc)} calls); "
      + "index " + ", ".join(f"{k} {med(k + '_us') / 1000:.2f}" for k in ("generation", "postings", "records", "order", "matches")) + " ms")
PY
    kill $pid
    wait $pid 2>/dev/null || true
    rm -rf "$d"
done
