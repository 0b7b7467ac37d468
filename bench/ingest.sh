#!/usr/bin/env bash
# Forklift ingest benchmark. See docs/benchmarks.md for results and discussion.
#
#   bash bench/ingest.sh
#
# What it does, all on loopback and in one temporary directory:
#   1. builds target/release/forklift and the genrpms example (separately, so the
#      server binary is the normal one, not one built with dev-dependency features);
#   2. generates max(N_LIST, QA_N) small distinct RPMs (examples/genrpms.rs);
#   3. for each N in N_LIST: starts a fresh server (fresh SQLite + blob store),
#      uploads the first N files with PUT /api/v1/packages/{file} (no ?channel:
#      pure ingest), CONCURRENCY curl processes each sending BATCH files over one
#      keep-alive connection; reports packages/s and the server's peak RSS (VmHWM);
#      then times createrepo_c --workers 2 and createrepo_c (default workers) on
#      the same N files;
#   4. the same upload with ?channel=qa for QA_N packages (every upload republishes
#      the qa channel);
#   5. generates one ~BIG_GIB GiB RPM, uploads it to a fresh server, reports VmHWM
#      before and after (the growth is what the upload cost in memory).
# Every server gets a random throwaway admin token (FORKLIFT_ADMIN_TOKEN); every
# upload sends it as "Authorization: Bearer" from a header file, so it is on no
# command line. Reads stay anonymous.
# Prints a markdown table at the end. Everything is removed on exit unless KEEP=1.
#
# Needs curl and createrepo_c; about 5 GiB free in WORK (10,000 small packages
# ≈ 160 MiB plus what the servers store, and the big package twice) and, for the
# big package, about 2.2 GiB of free RAM while it is generated (the rpm crate
# builds the payload in memory; the server itself is what is being measured).
# Takes 2-3 minutes after the build on 2 cores. Other load on the machine moves
# the numbers a lot: the "load before" column shows the 1-minute load average.
#
# Settings (environment):
#   N_LIST="1000 10000"  package counts for the pure-ingest runs
#   QA_N=100             packages for the ?channel=qa run (0 skips it)
#   CONCURRENCY=8        parallel curl processes
#   BATCH=50             files per curl process (one connection, sequential PUTs)
#   SIZE_KB=8            size of each package's /usr/bin file (incompressible)
#   BIG_GIB=2            bound for the big package's size (0 skips the big test);
#                        the server's default upload limit is exactly 2 GiB
#   PORT=random          loopback port for the server
#   WORK=                parent directory for the temporary tree [default: $TMPDIR or /tmp]
#   KEEP=0               1 keeps the temporary tree (logs, data dirs) for inspection
#   SKIP_BUILD=0         1 uses the existing target/release binaries
set -euo pipefail

N_LIST=${N_LIST:-"1000 10000"}
QA_N=${QA_N:-100}
CONCURRENCY=${CONCURRENCY:-8}
BATCH=${BATCH:-50}
SIZE_KB=${SIZE_KB:-8}
BIG_GIB=${BIG_GIB:-2}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
KEEP=${KEEP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
for tool in curl createrepo_c; do
    command -v "$tool" >/dev/null || { echo "ingest.sh: $tool is required" >&2; exit 2; }
done

W=$(mktemp -d "${WORK:-${TMPDIR:-/tmp}}/forklift-bench.XXXXXX")
SERVER_PID=
BASE="http://127.0.0.1:$PORT"
TOKEN="bench-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
AUTH_HDR="$W/auth.header"
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$AUTH_HDR"
chmod 600 "$AUTH_HDR"

cleanup() {
    stop_server || true
    if [[ $KEEP == 1 ]]; then
        echo "kept $W" >&2
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
now() { date +%s.%N; }
# Arithmetic with decimals, printed with $1 decimals.
calc() { local p=$1; shift; awk "BEGIN { printf \"%.${p}f\", $* }"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# Server CPU seconds (user + system) so far.
cpu_secs() {
    local tck; tck=$(getconf CLK_TCK)
    awk -v t="$tck" '{ sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / t }' "/proc/$1/stat"
}

start_server() { # DATA_DIR LOG
    mkdir -p "$1"
    FORKLIFT_ADMIN_TOKEN=$TOKEN target/release/forklift serve \
        --listen "127.0.0.1:$PORT" --data-dir "$1" >"$2" 2>&1 &
    SERVER_PID=$!
    local i
    for i in $(seq 1 300); do
        if curl -sf -o /dev/null "$BASE/healthz"; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$2" >&2; echo "server died" >&2; exit 1; }
        sleep 0.1
    done
    echo "server did not answer /healthz within 30s" >&2
    exit 1
}

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill "$SERVER_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# Uploads every *.rpm in DIR; QUERY is appended to each URL. Writes one HTTP
# status per file to CODES. Prints "seconds client_cpu_seconds".
upload_dir() { # DIR QUERY CODES
    local dir=$1 query=$2 codes=$3 t0 t1
    : >"$codes"
    export BASE query AUTH_HDR
    t0=$(now)
    local TIMEFORMAT='%U %S'
    local cpu
    cpu=$( { time find "$dir" -maxdepth 1 -name '*.rpm' -print0 |
        xargs -0 -r -P "$CONCURRENCY" -n "$BATCH" bash -c '
            args=()
            for f; do args+=(-T "$f" -o /dev/null "$BASE/api/v1/packages/${f##*/}$query"); done
            exec curl -sS --max-time 600 -H "@$AUTH_HDR" -w "%{http_code}\n" "${args[@]}"
        ' _ >>"$codes" 2>>"$W/curl.err"; } 2>&1 )
    t1=$(now)
    echo "$(calc 3 "$t1 - $t0") $(calc 1 "${cpu% *} + ${cpu#* }")"
}

check_codes() { # CODES EXPECTED_N WHAT
    local ok
    ok=$(grep -c '^201$' "$1" || true)
    if [[ $ok != "$2" ]]; then
        echo "$3: expected $2 × 201, got:" >&2
        sort "$1" | uniq -c >&2
        [[ -s $W/curl.err ]] && tail -5 "$W/curl.err" >&2
        return 1
    fi
}

count_packages() {
    curl -sf "$BASE/api/v1/packages?limit=10000" | grep -o '"kind":"rpm"' | wc -l
}

# Non-2xx responses and WARN/ERROR lines in a server log, for the report.
log_problems() { # LOG LABEL
    local bad
    bad=$(grep -E 'WARN|ERROR' "$1" | grep -vc 'HTTP/1.1" [23][0-9][0-9] ' || true)
    if [[ $bad != 0 ]]; then
        PROBLEMS+=("$2: $bad WARN/ERROR log lines, first: $(grep -E 'WARN|ERROR' "$1" | head -1 | sed 's/\x1b\[[0-9;]*m//g')")
    fi
    bad=$(grep -cE 'HTTP/1.1" [45][0-9][0-9] ' "$1" || true)
    if [[ $bad != 0 ]]; then
        PROBLEMS+=("$2: $bad non-2xx responses in the access log")
    fi
}

ROWS=()
PROBLEMS=()
row() { ROWS+=("| $(IFS='|'; echo "$*" | sed 's/|/ | /g') |"); }

# ---------------------------------------------------------------------------
log "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2/1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load $(loadavg)"
log "work dir $W, port $PORT, concurrency $CONCURRENCY × batch $BATCH"

if [[ $SKIP_BUILD != 1 ]]; then
    log "building (release)"
    cargo build --release --bin forklift
    cargo build --release --example genrpms
fi
GEN=target/release/examples/genrpms

MAX_N=0
for n in $N_LIST $QA_N; do (( n > MAX_N )) && MAX_N=$n; done
log "generating $MAX_N packages of ~${SIZE_KB} KiB"
t0=$(now)
"$GEN" --count "$MAX_N" --out "$W/rpms" --size-kb "$SIZE_KB"
log "generated in $(calc 1 "$(now) - $t0")s, $(du -sh "$W/rpms" | cut -f1)"
if command -v rpm >/dev/null; then
    # Spot check: the first and the last package pass rpm's digest checks.
    rpm -K --nosignature "$W/rpms/$(printf 'bench-pkg-%05d' 1)-1.0-1.x86_64.rpm" \
        "$W/rpms/$(printf 'bench-pkg-%05d' "$MAX_N")-1.0-1.x86_64.rpm" >&2
fi

# The first N files (by name) as their own directory, for createrepo_c.
subset() { # N -> prints dir
    local d="$W/set-$1"
    if [[ ! -d $d ]]; then
        mkdir -p "$d"
        find "$W/rpms" -maxdepth 1 -name '*.rpm' | sort | head -n "$1" |
            xargs -r -d '\n' ln -t "$d"
    fi
    echo "$d"
}

createrepo_run() { # DIR N LABEL ARGS...
    local dir=$1 n=$2 label=$3 t0 secs
    shift 3
    rm -rf "$dir/repodata" "$dir/.repodata"
    local load; load=$(loadavg)
    t0=$(now)
    createrepo_c -q "$@" "$dir"
    secs=$(calc 3 "$(now) - $t0")
    rm -rf "$dir/repodata"
    row "$label" "$n" "$secs" "$(calc 0 "$n / $secs")" "" "" "$load"
    log "$label N=$n: ${secs}s"
}

ingest_run() { # N QUERY LABEL
    local n=$1 query=$2 label=$3 dir data slog codes res secs load hwm rss0 cpu ccpu stored
    dir=$(subset "$n")
    data="$W/data-$n${query:+-qa}"
    slog="$W/server-$n${query:+-qa}.log"
    codes="$W/codes-$n${query:+-qa}"
    start_server "$data" "$slog"
    rss0=$(status_kib "$SERVER_PID" VmRSS)
    load=$(loadavg)
    log "$label N=$n: uploading (load $load)"
    res=$(upload_dir "$dir" "$query" "$codes")
    secs=${res% *}
    ccpu=${res#* }
    check_codes "$codes" "$n" "$label N=$n"
    stored=$(count_packages)
    [[ $stored == "$n" ]] || { echo "$label N=$n: server lists $stored packages" >&2; exit 1; }
    hwm=$(status_kib "$SERVER_PID" VmHWM)
    cpu=$(cpu_secs "$SERVER_PID")
    stop_server
    log_problems "$slog" "$label N=$n"
    row "$label" "$n" "$secs" "$(calc 0 "$n / $secs")" \
        "$(calc 1 "$hwm / 1024") (start $(calc 1 "$rss0 / 1024"))" \
        "server $cpu s, curl $ccpu s" "$load"
    log "$label N=$n: ${secs}s, VmHWM $((hwm / 1024)) MiB, server CPU ${cpu}s, curl CPU ${ccpu}s, data $(du -sh "$data" | cut -f1)"
    # The data dir stays until exit: on ext4 without a journal, inodes freed in
    # the last minutes make new-inode allocation slow (ext4 recently_deleted()),
    # which would penalise the next run's temp files.
}

for n in $N_LIST; do
    ingest_run "$n" "" "forklift PUT (no channel)"
    createrepo_run "$(subset "$n")" "$n" "createrepo_c --workers 2" --workers 2
    createrepo_run "$(subset "$n")" "$n" "createrepo_c (default workers)"
done

if (( QA_N > 0 )); then
    ingest_run "$QA_N" "?channel=qa" "forklift PUT ?channel=qa"
fi

BIG_ROW=
if [[ $BIG_GIB != 0 ]]; then
    log "generating one ~${BIG_GIB} GiB RPM"
    mkdir -p "$W/big"
    "$GEN" --big-file "$W/big/bench-big-1.0-1.x86_64.rpm" --big-size-gib "$BIG_GIB"
    big="$W/big/bench-big-1.0-1.x86_64.rpm"
    size=$(stat -c %s "$big")
    start_server "$W/data-big" "$W/server-big.log"
    rss0=$(status_kib "$SERVER_PID" VmRSS)
    hwm0=$(status_kib "$SERVER_PID" VmHWM)
    load=$(loadavg)
    log "uploading $size bytes (load $load)"
    t0=$(now)
    code=$(curl -sS --max-time 1200 -o "$W/big.json" -w '%{http_code}' -H "@$AUTH_HDR" -T "$big" \
        "$BASE/api/v1/packages/${big##*/}")
    secs=$(calc 3 "$(now) - $t0")
    rss1=$(status_kib "$SERVER_PID" VmRSS)
    hwm1=$(status_kib "$SERVER_PID" VmHWM)
    cpu=$(cpu_secs "$SERVER_PID")
    stop_server
    log_problems "$W/server-big.log" "big upload"
    [[ $code == 201 ]] || { echo "big upload: HTTP $code: $(head -c 500 "$W/big.json")" >&2; exit 1; }
    growth=$(calc 1 "($hwm1 - $hwm0) / 1024")
    BIG_ROW="| $(calc 2 "$size / 1073741824") GiB RPM | HTTP $code in ${secs}s ($(calc 0 "$size / 1048576 / $secs") MiB/s, server CPU ${cpu}s) | $(calc 1 "$rss0 / 1024") MiB | $(calc 1 "$hwm0 / 1024") MiB | $(calc 1 "$hwm1 / 1024") MiB | **$growth MiB** | $(calc 1 "$rss1 / 1024") MiB | $load |"
    log "big: ${secs}s, VmHWM $hwm0 → $hwm1 KiB (growth $growth MiB)"
fi

# ---------------------------------------------------------------------------
echo
echo "## Ingest ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), concurrency $CONCURRENCY × batch $BATCH, ${SIZE_KB} KiB payloads)"
echo
echo "| what | N | seconds | packages/s | server peak RSS, MiB | CPU | load before |"
echo "|---|---:|---:|---:|---|---|---:|"
printf '%s\n' "${ROWS[@]}"
if [[ -n $BIG_ROW ]]; then
    echo
    echo "## Big upload (memory)"
    echo
    echo "| file | result | VmRSS before | VmHWM before | VmHWM after | growth | VmRSS after | load before |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    echo "$BIG_ROW"
fi
echo
if (( ${#PROBLEMS[@]} )); then
    echo "## Problems seen in server logs"
    echo
    printf -- '- %s\n' "${PROBLEMS[@]}"
else
    echo "No WARN/ERROR lines and no non-2xx responses in the server logs."
fi
