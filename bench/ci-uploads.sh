#!/usr/bin/env bash
# The CI step as pipelines run it: one `curl -T file "$U/api/v1/packages/?channel=qa"`
# after another, each a new process and connection, each waiting for its
# answer (the build is in qa, published and signed, when curl returns).
# Compared, in the same run, with the same uploads without ?channel= (stored
# only, no publication). See docs/benchmarks.md for results.
#
#   bash bench/ci-uploads.sh
#
# Settings (environment):
#   N=300          packages uploaded in each run
#   SIZE_KB=8      size of each package's /usr/bin file
#   PORT=random    loopback port for the server
#   KEEP=0         1 keeps the temporary tree
#   SKIP_BUILD=0   1 uses the existing target/release binaries
set -euo pipefail

N=${N:-300}
SIZE_KB=${SIZE_KB:-8}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
KEEP=${KEEP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
command -v curl >/dev/null || { echo "ci-uploads.sh: curl is required" >&2; exit 2; }

W=$(mktemp -d "${TMPDIR:-/tmp}/forklift-ci-uploads.XXXXXX")
SERVER_PID=
BASE="http://127.0.0.1:$PORT"
TOKEN="bench-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
AUTH_HDR="$W/auth.header"
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$AUTH_HDR"
chmod 600 "$AUTH_HDR"

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}
cleanup() {
    stop_server
    if [[ $KEEP == 1 ]]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
now() { date +%s.%N; }
calc() { local p=$1; shift; awk "BEGIN { printf \"%.${p}f\", $* }"; }

start_server() { # DATA_DIR
    mkdir -p "$1"
    FORKLIFT_LOG=warn FORKLIFT_ADMIN_TOKEN=$TOKEN target/release/forklift serve \
        --listen "127.0.0.1:$PORT" --data-dir "$1" >"$1.log" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 300); do
        curl -sf -o /dev/null "$BASE/healthz" && return 0
        sleep 0.1
    done
    echo "server did not start" >&2
    exit 1
}

# One curl per file, one after another; prints the seconds taken.
sequential() { # QUERY
    local t0 f code
    t0=$(now)
    for f in "$W"/rpms/*.rpm; do
        code=$(curl -sS -o /dev/null -w '%{http_code}' -H "@$AUTH_HDR" -T "$f" \
            "$BASE/api/v1/packages/$1")
        [[ $code == 201 ]] || { echo "upload of $f answered $code" >&2; exit 1; }
    done
    calc 2 "$(now) - $t0"
}

log "machine: $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
if [[ $SKIP_BUILD != 1 ]]; then
    cargo build --release --bin forklift
    cargo build --release --example genrpms
fi
target/release/examples/genrpms --count "$N" --out "$W/rpms" --size-kb "$SIZE_KB" >/dev/null

start_server "$W/plain"
plain=$(sequential "")
stop_server
start_server "$W/qa"
qa=$(sequential "?channel=qa")
revisions=$(curl -sf "$BASE/api/v1/channels/qa" | grep -o '"number":[0-9]*' | head -1 | cut -d: -f2)
stop_server

echo
echo "| $N sequential \`curl -T\` uploads | seconds | uploads/s |"
echo "|---|---|---|"
echo "| without \`?channel=\` (stored only) | $plain | $(calc 1 "$N / $plain") |"
echo "| with \`?channel=qa\` (published, signed, before the answer) | $qa | $(calc 1 "$N / $qa") |"
echo
echo "ratio qa / plain: $(calc 2 "$plain / $qa"); qa head revision after the run: $revisions"
