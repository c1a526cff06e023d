#!/bin/sh
# Scheduler throughput (issue 4): simulated rebuilder nodes doing zero-time builds against a
# real coordinator over loopback gRPC.
# Usage: [BIN_DIR=target/release] bench/sched.sh sqlite|postgres [NODES...]   (default nodes: 1 8 32 128)
# Each node count gets a fresh coordinator and database: the first $JOBS (default 10000)
# buildinfos of the corpus and its Packages index (suite "bench") are ingested, then
# `debcover verify suite bench` queues every shipped build, and `debcover-measure sched` runs
# the nodes (spread over 4 operators, one verification needed per build) until the queue drains.
# postgres: $DEBCOVER_BENCH_PG (default postgres://postgres@127.0.0.1:5432/wtr_sched), dropped
# and recreated for each run. PORT (default 7710).
set -eu
backend=$1
shift
nodes=${*:-1 8 32 128}
port=${PORT:-7710}
jobs=${JOBS:-10000}
corpus=${CORPUS:-bench-data/corpus}
bin=${BIN_DIR:-target/release}
work=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
mkdir "$work/in"
find "$corpus/buildinfo" -name '*.buildinfo' | sort | head -n "$jobs" | while read -r f; do
    cp "$f" "$work/in/"
done
export DEBCOVER_SERVER="http://127.0.0.1:$port"
run=0
for n in $nodes; do
    run=$((run + 1))
    data="$work/data-$run-$n"
    mkdir "$data"
    export DEBCOVER_ADMIN_TOKEN_FILE="$data/admin.token"
    case "$backend" in
        sqlite) db="sqlite://$data/bench.sqlite" ;;
        postgres)
            db=${DEBCOVER_BENCH_PG:-postgres://postgres@127.0.0.1:5432/wtr_sched}
            psql "${db%/*}/postgres" -qc "DROP DATABASE IF EXISTS ${db##*/} WITH (FORCE)" -c "CREATE DATABASE ${db##*/}"
            ;;
    esac
    DEBCOVER_VERIFIERS=1 DEBCOVER_LOG=warn "$bin/debcover" serve --listen "127.0.0.1:$port" --db "$db" \
        --data-dir "$data" --http-listen off >/dev/null 2>"$data/server.log" &
    pid=$!
    for _ in $(seq 1 100); do "$bin/debcover" status >/dev/null 2>&1 && break; sleep 0.1; done
    "$bin/debcover" ingest buildinfo --json "$work/in" >/dev/null
    "$bin/debcover" ingest archive --suite bench --arch amd64 "$corpus/Packages" >/dev/null
    "$bin/debcover" verify suite bench --admin-token-file "$data/admin.token"
    echo "backend=$backend load: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$bin/debcover-measure" sched --server "$DEBCOVER_SERVER" --nodes "$n" --admin-token-file "$data/admin.token" --prefix "run$n"
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
done
