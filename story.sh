#!/bin/sh
# The whole story on the embedded default (SQLite), on the static-library scenario of the
# campaign fixture (tests/fixtures/campaign): a fix in libstat (2.0-1 vulnerable, 2.1-1 fixed),
# a static library that app-b links in without declaring it (no Static-Built-Using).
#
#   1. start a coordinator and two rebuilder nodes of two operators (alice, bob);
#   2. ingest what the archive had before the fix: buildinfos, Packages, Sources;
#   3. open a campaign for the fix: app-b is affected;
#   4. the "buildd" rebuilds app-b against the fixed library (the fixture's binNMU
#      1.0-1+b1) and the archive ships it: ingest its buildinfo and the new Packages;
#   5. the item becomes fixed-unverified and its build is queued for verification; both nodes
#      rebuild it with dpkg-buildpackage and sign in-toto attestations: the item is covered;
#   6. export the attestations and verify them offline, with debcover and with the stock
#      in-toto-verify (when it is installed).
#
# Must run as root: the fixture is built with dpkg-buildpackage, and the nodes' build
# environment needs the fixed libstat-dev installed (it is purged again on exit).
#
# Usage: sh story.sh                    builds the release binaries first (cargo build --release)
# Environment:
#   DEBCOVER_BIN=DIR          use the binaries in DIR (the integration test, tests/story.rs)
#   DEBCOVER_STORY_DIR=DIR    keep everything (database, logs, exports) in DIR; default: a
#                             temporary directory, removed at the end
#   DEBCOVER_STORY_PORT=N     gRPC port (default 7441); the web pages are on N+1
#   DEBCOVER_STORY_TIMEOUT=S  how long the nodes may take (default 900 s)
#   DEBCOVER_FIXTURE=DIR      where the fixture is built (default target/debcover-fixtures/campaign)
# Needs once, as root: sh tests/fixtures/setup-debian-build.sh hello
set -eu
cd "$(dirname "$0")"
root=$(pwd)
if [ -z "${DEBCOVER_BIN:-}" ]; then
    echo "== building the release binaries (a few minutes the first time)"
    cargo build --release -q -p debcover-cli -p debcover-rebuilder
    DEBCOVER_BIN=$root/target/release
fi
bin=$DEBCOVER_BIN
port=${DEBCOVER_STORY_PORT:-7441}
http=$((port + 1))
fixture=${DEBCOVER_FIXTURE:-$root/target/debcover-fixtures/campaign}
if [ -n "${DEBCOVER_STORY_DIR:-}" ]; then
    work=$DEBCOVER_STORY_DIR
    mkdir -p "$work"
    keep=1
else
    work=$(mktemp -d)
    # The nodes build as an unprivileged user (nobody, when run as root), who must pass through.
    chmod 711 "$work"
    keep=0
fi
[ "$(id -u)" = 0 ] || { echo "story.sh: must run as root (it installs the fixed libstat-dev for the nodes' builds)" >&2; exit 1; }
export DEBCOVER_SERVER="http://127.0.0.1:$port"
export DEBCOVER_ADMIN_TOKEN_FILE="$work/data/admin.token"
pids=""
installed=""
cleanup() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    if [ -n "$installed" ]; then dpkg --purge libstat-dev >/dev/null 2>&1 || true; fi
    if [ "$keep" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { printf '\n== %s\n' "$*"; }
# json FILE EXPR: a value out of a JSON file (EXPR is Python over `d`).
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

say "the campaign fixture: real packages built with dpkg-buildpackage (about two minutes the first time)"
sh tests/fixtures/campaign/build.sh "$fixture"

say "1. a coordinator (SQLite in $work/data, web pages on http://127.0.0.1:$http/) and two rebuilder nodes"
mkdir -p "$work/data" "$work/nodes"
DEBCOVER_LOG=${DEBCOVER_LOG:-info} "$bin/debcover" serve --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$http" \
    --data-dir "$work/data" --archive-mirror "file://$fixture" --retry-delays 1s >"$work/coordinator.log" 2>&1 &
pids="$pids $!"
for _ in $(seq 1 100); do "$bin/debcover" status >/dev/null 2>&1 && break; sleep 0.1; done
"$bin/debcover" status >/dev/null || { echo "the coordinator did not start; see $work/coordinator.log" >&2; exit 1; }
for n in alice:a1 bob:b1; do
    op=${n%%:*}
    node=${n#*:}
    "$bin/debcover" node add --operator "$op" --name "$node" --json >"$work/nodes/$node.json"
    json "$work/nodes/$node.json" 'd["token"]' >"$work/nodes/$node.token"
    "$bin/debcover-rebuilder" run --server "$DEBCOVER_SERVER" --token-file "$work/nodes/$node.token" \
        --work-dir "$work/nodes/$node" --slots 1 --build-timeout 20m >"$work/nodes/$node.log" 2>&1 &
    pids="$pids $!"
    echo "node $node of operator $op started (log: $work/nodes/$node.log)"
done

# Each party gets a credential with its role: the archive feed (ingest) and the security team
# (campaign). The admin token stays with whoever runs the coordinator.
"$bin/debcover" token add --name archive-feed --role ingest >"$work/ingest.token"
"$bin/debcover" token add --name security-team --role campaign >"$work/campaign.token"

say "2. the archive before the fix: buildinfos, Packages, Sources"
"$bin/debcover" ingest buildinfo --token-file "$work/ingest.token" "$fixture"/stage1/*.buildinfo
"$bin/debcover" ingest archive --token-file "$work/ingest.token" --suite fixture "$fixture/stage1/Packages" "$fixture/pool/Sources"

say "3. a campaign for the libstat fix"
"$bin/debcover" campaign create --token-file "$work/campaign.token" --library libstat --fixed 2.1-1 --suite fixture \
    --title "libstat: out-of-bounds read" --advisory CVE-2026-0002 --json >"$work/campaign.json"
id=$(json "$work/campaign.json" 'd["campaign"]["id"]')
"$bin/debcover" campaign status "$id"

say "4. the buildd rebuilds app-b against libstat 2.1-1 (binNMU 1.0-1+b1); the archive ships it"
# The fixed library reaches the build environments: the buildd's (the fixture's binNMU was built
# with it) and the nodes' (here, this machine's; purged again on exit).
dpkg -i "$fixture"/stage2/libstat-dev_2.1-1_*.deb >/dev/null
installed=1
"$bin/debcover" ingest buildinfo --token-file "$work/ingest.token" "$fixture"/stage2/*.buildinfo
"$bin/debcover" ingest archive --token-file "$work/ingest.token" --suite fixture "$fixture/stage2/Packages"
"$bin/debcover" campaign status "$id"
"$bin/debcover" queue

say "5. both nodes verify the rebuild"
deadline=$(($(date +%s) + ${DEBCOVER_STORY_TIMEOUT:-900}))
last=""
while :; do
    "$bin/debcover" campaign status "$id" --json >"$work/status.json"
    now=$(json "$work/status.json" '" ".join("%s: %s/%s" % (i["source"], i["state"], i["coverage"]) for i in d["items"])')
    if [ "$now" != "$last" ]; then
        echo "$(date +%T) $now"
        last=$now
    fi
    if [ "$(json "$work/status.json" 'all(i["coverage"] == "covered" for i in d["items"]) and len(d["items"]) > 0')" = True ]; then
        break
    fi
    if [ "$(date +%s)" -gt "$deadline" ]; then
        echo "not covered within ${DEBCOVER_STORY_TIMEOUT:-900} s; logs in $work (run with DEBCOVER_STORY_DIR to keep them)" >&2
        "$bin/debcover" queue >&2 || true
        tail -n 20 "$work"/nodes/*.log >&2 || true
        exit 1
    fi
    sleep 2
done
"$bin/debcover" campaign status "$id"
"$bin/debcover" build history app-b
"$bin/debcover" build history app-b --json >"$work/history.json"
echo "the campaign page: http://127.0.0.1:$http/campaigns/$id"
if command -v curl >/dev/null 2>&1; then
    curl -fsS "http://127.0.0.1:$http/metrics" >"$work/metrics.txt"
    grep -E '^debcover_(campaign_covered_seconds|rebuild_results)' "$work/metrics.txt" || true
fi

say "6. export the attestations of app-b 1.0-1+b1 and verify them offline"
"$bin/debcover" attestations app-b 1.0-1+b1 --export "$work/export"
ls "$work/export"
# The verifier's trust root is the coordinator's key, fetched once and kept (never taken from the
# export itself).
"$bin/debcover" keys --coordinator-pem >"$work/coordinator.pem"
"$bin/debcover" verify "$work/export" --trust-key "$work/coordinator.pem" --threshold 2
if command -v in-toto-verify >/dev/null 2>&1; then
    # in-toto-verify checks the files of its working directory: there, only the shipped .deb.
    mkdir -p "$work/shipped"
    cp "$fixture"/stage2/app-b_1.0-1+b1_*.deb "$work/shipped/"
    (cd "$work/shipped" && in-toto-verify --layout ../export/root.layout \
        --verification-keys ../export/coordinator.*.pub --link-dir ../export)
    echo "in-toto-verify: the coordinator-signed layout passes with both nodes' links and the shipped .deb"
else
    echo "(in-toto-verify is not installed: python3 -m pip install in-toto==3.1.0 to check with the stock tool too)"
fi
say "done: app-b is covered; everything is in $work"
