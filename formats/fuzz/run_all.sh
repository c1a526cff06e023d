#!/bin/sh
# Run every target for $1 seconds (default 240), one after the other, logging to logs/.
set -u
here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-240}
logs=${LOGDIR:-/tmp/debcover-fuzz-logs}; mkdir -p "$logs"
cd "$here"
for t in buildinfo packages sources aggregate; do
    RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -seed=1 -max_len=65536 -rss_limit_mb=2048 > "$logs/$t.log" 2>&1
    echo "$t exit=$?" >> "$logs/summary"
done
