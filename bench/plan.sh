#!/bin/sh
# Campaign plan latency at suite scale (issue 3): the standard corpus (35,000 buildinfos) and its
# Packages index in a fresh SQLite coordinator, then `debcover campaign plan` for libraries from
# rare to universal, in four outputs: `--json` (every field of every item), `--json --items
# brief` (items without evidence, notes and upstream thresholds), the table (which asks for
# item summaries) and `--format wb` (which asks for no items). Reports, per output, the
# client-measured median of 7 runs (after one warm-up; process start, the whole gRPC round trip
# and the rendering included), and the median server-side analysis time from its log over all
# the library's runs.
# Usage: [BIN=path/to/debcover] bench/plan.sh [PORT]
# BIN: the binary to measure (server and client; default target/release/debcover), so that two
# builds can be compared in one session. A build without `--items` gets "-" in that column.
set -eu
port=${1:-7520}
bin=${BIN:-target/release/debcover}
data=$(mktemp -d)
DEBCOVER_LOG=debcover_core::campaign=debug,info "$bin" serve --listen "127.0.0.1:$port" \
    --http-listen off --data-dir "$data" 2>"$data/server.log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$data"' EXIT
export DEBCOVER_SERVER="http://127.0.0.1:$port"
export DEBCOVER_ADMIN_TOKEN_FILE="$data/admin.token"
for _ in $(seq 1 100); do "$bin" status >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" ingest buildinfo bench-data/corpus/Buildinfo.xz >/dev/null
"$bin" ingest archive --suite bookworm --arch amd64 bench-data/corpus/Packages >/dev/null
echo "binary $bin; load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$bin" "$data/server.log" <<'PY'
import json, re, statistics, subprocess, sys, time
bin, log = sys.argv[1], sys.argv[2]
shapes = b"--items" in subprocess.run([bin, "campaign", "plan", "--help"], capture_output=True).stdout
cases = [
    # (source, fixed): "every version affected" needs the right epoch (2:6.2.1 > 99).
    ("golang-golang-x-sys", "0.3.0-1"),   # most used Go library, a fix above some of its versions
    ("golang-golang-x-sys", "99"),        # ... above all of them
    ("golang-golang-x-net", "1:99"),
    ("libyaml", "99"),                    # libyaml-dev: in ~180 builds
    ("sqlite3", "99"),                    # ~960
    ("libxml2", "99"),                    # ~2,000
    ("openssl", "99"),                    # ~3,900
    ("pcre2", "99"),                      # ~8,000
    ("zlib", "1:99"),                     # ~15,000
    ("gmp", "2:99"),                      # libgmp-dev: in ~16,300 builds
    ("glibc", "99"),                      # libc6-dev: in every build
]
outputs = [("json", ["--json"]), ("json brief", ["--json", "--items", "brief"]), ("table", []),
           ("wb", ["--format", "wb"])]
def analysis_ms():
    return [int(m) for m in re.findall(r"impact analysis.*?\bms=(\d+)", open(log).read())]
print(f"{'library':<20} {'fixed':<8} {'items':>6} {'direct':>6} {'waves':>5} " +
      " ".join(f"{name + ' ms':>14}" for name, _ in outputs) + f" {'server ms':>10}")
for lib, fixed in cases:
    base = [bin, "campaign", "plan", "--library", lib, "--fixed", fixed, "--suite", "bookworm"]
    plan = json.loads(subprocess.run(base + ["--json"], capture_output=True, check=True).stdout)  # warm-up
    before = len(analysis_ms())
    cells = []
    for name, extra in outputs:
        if "--items" in extra and not shapes:
            cells.append(f"{'-':>14}")
            continue
        subprocess.run(base + extra, capture_output=True, check=True)  # warm-up
        times = []
        for _ in range(7):
            t = time.perf_counter()
            subprocess.run(base + extra, capture_output=True, check=True)
            times.append((time.perf_counter() - t) * 1000)
        cells.append(f"{statistics.median(times):>7.1f} ({max(times):>4.0f})")
    server = analysis_ms()[before:]
    direct = sum(1 for i in plan['items'] if any(e.get('through') is None for e in i['evidence']))
    print(f"{lib:<20} {fixed:<8} {len(plan['items']):>6} {direct:>6} {plan['waves']:>5} " + " ".join(cells) +
          f" {statistics.median(server) if server else float('nan'):>10}", flush=True)
print("cells: median (max) of 7 runs, ms")
PY
