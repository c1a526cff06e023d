#!/bin/sh
# Ingest throughput of the standard corpus into a fresh coordinator, and its peak memory.
# Usage: [BIN=path/to/debcover] bench/ingest.sh sqlite|postgres INPUT [PORT]
# INPUT: bench-data/corpus/buildinfo (directory) or bench-data/corpus/Buildinfo.xz (index).
# PACKAGES_FIRST=PATH: apply that Packages index (suite "bench") before the buildinfos, as in
# production where the archive is known before buildinfos stream in.
# postgres: uses $DEBCOVER_BENCH_PG (default postgres://postgres@127.0.0.1:5432/debcover_bench,
# dropped and recreated).
set -eu
backend=$1
input=$2
port=${3:-7501}
bin=${BIN:-target/release/debcover}
data=$(mktemp -d)
case "$backend" in
    sqlite) db="sqlite://$data/bench.sqlite" ;;
    postgres)
        db=${DEBCOVER_BENCH_PG:-postgres://postgres@127.0.0.1:5432/debcover_bench}
        admin=${db%/*}/postgres
        name=${db##*/}
        psql "$admin" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name"
        ;;
esac
/usr/bin/time -v -o "$data/time.txt" "$bin" serve --listen "127.0.0.1:$port" --db "$db" --data-dir "$data" --http-listen off 2>"$data/server.log" &
tpid=$!
export DEBCOVER_SERVER="http://127.0.0.1:$port"
export DEBCOVER_ADMIN_TOKEN_FILE="$data/admin.token"
for _ in $(seq 1 100); do "$bin" status >/dev/null 2>&1 && break; sleep 0.1; done
if [ -n "${PACKAGES_FIRST:-}" ]; then
    "$bin" ingest archive --suite bench --arch amd64 "$PACKAGES_FIRST"
fi
start=$(date +%s.%N)
"$bin" ingest buildinfo --json ${BATCH:+--batch-size $BATCH} "$input" > "$data/summary.json"
end=$(date +%s.%N)
"$bin" status
kill -TERM "$(pgrep -P $tpid)"
wait $tpid || true
python3 - "$data/summary.json" "$start" "$end" "$data/time.txt" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); t = float(sys.argv[3]) - float(sys.argv[2])
rss = [l for l in open(sys.argv[4]) if "Maximum resident" in l][0].split(":")[1].strip()
print(f"ingested {s['ingested']} (known {s['already_known']}, rejected {len(s['rejected'])}) in {t:.1f} s: "
      f"{s['ingested']/t:.0f} buildinfos/s; coordinator peak RSS {int(rss)/1024:.0f} MiB")
PY
du -sh "$data"/*.sqlite* 2>/dev/null || true
rm -rf "$data"
