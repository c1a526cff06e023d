#!/bin/sh
# The main job on the embedded default (SQLite), end to end: start a coordinator, ingest the
# real buildinfos and bookworm archive excerpts from ../shared/testdata, and ask a question.
set -eu
cd "$(dirname "$0")"
cargo build --release -q -p debcover-cli
bin=target/release/debcover
data=$(mktemp -d)
port=${DEBCOVER_DEMO_PORT:-7439}
export DEBCOVER_SERVER="http://127.0.0.1:$port"
"$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 50); do "$bin" status >/dev/null 2>&1 && break; sleep 0.2; done
testdata=../shared/testdata
# Writes need a credential with a role: the admin (whose token serve wrote) makes one for
# ingestion, as automation would get; reads stay open.
DEBCOVER_ADMIN_TOKEN_FILE="$data/admin.token" "$bin" token add --name demo-feeder --role ingest >"$data/ingest.token" 2>/dev/null
export DEBCOVER_TOKEN_FILE="$data/ingest.token"
echo "== ingest the real buildinfos"
"$bin" ingest buildinfo "$testdata/buildinfo"
echo "== ingest bookworm archive excerpts"
"$bin" ingest archive --suite bookworm "$testdata/packages/bookworm_amd64_Packages.Static-Built-Using" "$testdata/packages/bookworm_Sources.go-and-rust-subset"
echo "== which builds had libc6 below 2.31-13?"
"$bin" built-with libc6 --before 2.31-13
echo "== what the coordinator holds"
"$bin" status
