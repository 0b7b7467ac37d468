#!/usr/bin/env bash
# The promotion board's cost: the page for N names × 3 channels, rendered
# server-side. See docs/benchmarks.md ("Promotion board").
#
#   bash bench/board.sh
#
# Builds target/release/forklift and the genrpms example, starts one server
# (SQLite, a temp data dir), uploads N generated RPMs (N names) into qa,
# promotes all of them to staging and half to prod (bulk promotions), holds
# a tenth, then GETs /ui/ REPS times with curl (time to the last byte, on one
# keep-alive connection after a warm-up request) and reports the median, the
# page's size (as is, and gzip-compressed as browsers get it), and the
# live-update request answered 304.
#
# Settings: N=1000 REPS=20 SKIP_BUILD=0 KEEP=0
set -euo pipefail
N=${N:-1000}
REPS=${REPS:-20}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [[ $SKIP_BUILD != 1 ]]; then
    cargo build --release --bin forklift
    cargo build --release --example genrpms
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/forklift-board-bench.XXXXXX")
PID=
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; [[ $KEEP == 1 ]] || rm -rf "$W"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
U="http://127.0.0.1:$PORT"
TOKEN="fkl_bench_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$W/auth"
target/release/examples/genrpms --count "$N" --out "$W/rpms" --size-kb 1 >&2
FORKLIFT_ADMIN_TOKEN=$TOKEN FORKLIFT_LOG=warn target/release/forklift serve --listen "127.0.0.1:$PORT" \
    --data-dir "$W/data" >"$W/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 1200); do curl -sf -o /dev/null "$U/healthz" && break; sleep 0.1; done
ls "$W/rpms" | xargs -P 4 -I{} curl -sS -f -o /dev/null -H @"$W/auth" -T "$W/rpms/{}" "$U/api/v1/packages/{}?channel=qa"
names() { ls "$W/rpms" | head -n "$1" | sed 's/.*/"&"/' | paste -sd, | sed 's/^/{"packages": [/; s/$/]}/'; }
names "$N" >"$W/all.json"
names $((N / 2)) >"$W/half.json"
curl -sS -f -o /dev/null -H @"$W/auth" --data-binary @"$W/all.json" "$U/api/v1/channels/staging/promote"
sleep 1.1
curl -sS -f -o /dev/null -H @"$W/auth" --data-binary @"$W/half.json" "$U/api/v1/channels/prod/promote"
for f in $(ls "$W/rpms" | awk -v n=$((N / 10)) 'NR <= n'); do
    curl -sS -f -o /dev/null -H @"$W/auth" -d '{"reason":"bench hold"}' "$U/api/v1/packages/$f/hold"
done
rows=$(curl -sf "$U/ui/" | grep -o '<tr>' | wc -l)
# One connection: the warm-up, then REPS timed requests (curl reuses it).
args=(-s -o /dev/null -w '%{time_total} %{size_download}\n' "$U/ui/")
for _ in $(seq 1 "$REPS"); do args+=(-o /dev/null -w '%{time_total} %{size_download}\n' "$U/ui/"); done
curl "${args[@]}" | tail -n "$REPS" >"$W/times"
med=$(awk '{ print $1 }' "$W/times" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
size=$(awk 'NR == 1 { print $2 }' "$W/times")
gz=$(curl -s -o /dev/null --compressed -w '%{size_download}' "$U/ui/")
etag=$(curl -s -D - -o /dev/null "$U/ui/board?name=&page=1" | awk 'tolower($1) == "etag:" { print $2 }' | tr -d '\r')
live=$(curl -s -o /dev/null -w '%{http_code} in %{time_total}s' -H "If-None-Match: $etag" "$U/ui/board?name=&page=1")
echo
echo "Code $(git rev-parse --short HEAD), $(nproc) cores, N=$N names × 3 channels ($rows table rows)"
echo
echo "| what | figure |"
echo "|---|---|"
echo "| GET /ui/ (whole board, server-rendered), median of $REPS | **$(awk -v t="$med" 'BEGIN { printf "%.1f", t * 1000 }') ms** |"
echo "| page size | **$(awk -v s="$size" 'BEGIN { printf "%.0f", s / 1024 }') KiB** ($size bytes, uncompressed) |"
echo "| page as sent to a browser (gzip) | **$(awk -v s="$gz" 'BEGIN { printf "%.0f", s / 1024 }') KiB** ($gz bytes) |"
echo "| live update while nothing changed (If-None-Match) | $live |"
