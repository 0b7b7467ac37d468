#!/usr/bin/env bash
# Object storage and several instances: one promotion into a big channel with
# blobs on local disk vs in an S3-compatible bucket, and uploads/s and
# downloads/s with 1 vs 2 instances behind one nginx (deploy/nginx.conf).
# See docs/benchmarks.md ("Object storage and several instances").
#
#   bash bench/cluster.sh
#
# What it does, all on loopback and in one temporary directory:
#   1. installs wrk and nginx-light with apt-get, and moto[server] into a
#      virtualenv, when missing; builds target/release/forklift and the
#      genrpms example;
#   2. starts an S3-compatible server on loopback with one bucket: s3s-fs
#      (S3_SERVER=s3s-fs, the default: Rust, files on disk; `cargo install`ed
#      when missing) or moto_server (S3_SERVER=moto, the one the tests use:
#      Python, objects in memory, much slower); PostgreSQL clusters are made
#      with initdb/postgres (as the postgres user when root), one per database;
#   3. promotion, for storage = file and storage = s3 (both on PostgreSQL, one
#      instance, a fresh database each): uploads N RPMs without a channel, one
#      bulk promotion of all N into qa, then REPS times one bulk promotion of
#      one more build into qa, each timed by curl from request to answer (the
#      answer comes after the new revision is committed and served); the
#      median is reported, with the instance's peak RSS; then one ~BIG_GIB GiB
#      RPM uploaded into the bucket: the instance's peak RSS before and after;
#   4. scale-out, for 1 and 2 instances on s3 behind nginx (deploy/nginx.conf
#      with its upstream and port rewritten), a fresh database and bucket
#      prefix each: UPLOADS RPMs uploaded without a channel (stored only),
#      then UPLOADS more into qa, through nginx by CONCURRENCY curl processes
#      (one file per request) → uploads/s of each; then wrk ($WRK_ARGS)
#      through nginx on the uploaded package files, rotated by a Lua script
#      (streamed from the bucket through Forklift; redirects off) → downloads/s;
#      peak RSS of every instance.
# Prints a markdown table at the end. Everything is removed on exit unless KEEP=1.
#
# Settings (environment): N=10000 REPS=5 UPLOADS=1000 CONCURRENCY=8 SIZE_KB=8
# BIG_GIB=2 (0 skips) S3_SERVER=s3s-fs|moto WRK_ARGS="-t2 -c32 -d10s" KEEP=0 SKIP_BUILD=0 WORK=$TMPDIR
set -euo pipefail

N=${N:-10000}
REPS=${REPS:-5}
UPLOADS=${UPLOADS:-1000}
CONCURRENCY=${CONCURRENCY:-8}
SIZE_KB=${SIZE_KB:-8}
WRK_ARGS=${WRK_ARGS:-"-t2 -c32 -d10s"}
KEEP=${KEEP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
BIG_GIB=${BIG_GIB:-2}
S3_SERVER=${S3_SERVER:-s3s-fs}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
calc() { local p=$1; shift; awk "BEGIN { printf \"%.${p}f\", $* }"; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.4f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
peak_mib() { awk '$1 == "VmHWM:" { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

SUDO=
(( $(id -u) == 0 )) || SUDO=sudo
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
if (( ${#need[@]} )); then
    log "installing ${need[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
    command -v systemctl >/dev/null && $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [[ $S3_SERVER == s3s-fs ]] && ! command -v s3s-fs >/dev/null; then
    # 0.14 is the newest that builds with Rust 1.95.
    log "installing s3s-fs with cargo"
    cargo install --locked s3s-fs@0.14.1 --features binary
fi
venv="${FORKLIFT_TEST_VENV:-$HOME/.cache/forklift-test-venv}"
[[ -x $venv/bin/moto_server ]] && export PATH="$venv/bin:$PATH"
if ! command -v moto_server >/dev/null; then
    log "installing moto[server] into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
    export PATH="$venv/bin:$PATH"
fi
PGBIN=$(dirname "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")

W=$(mktemp -d "${WORK:-${TMPDIR:-/tmp}}/forklift-cluster-bench.XXXXXX")
chmod 755 "$W"
PIDS=()
cleanup() {
    [[ -f $W/pg.pids ]] && mapfile -t -O "${#PIDS[@]}" PIDS <"$W/pg.pids"
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    if [[ $KEEP == 1 ]]; then echo "kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TOKEN="fkl_bench_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
AUTH="$W/auth.header"
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$AUTH"

if [[ $SKIP_BUILD != 1 ]]; then
    log "building (release)"
    cargo build --release --bin forklift
    cargo build --release --example genrpms
fi
CODE="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
log "machine: $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); code $CODE"

# --- PostgreSQL and the S3 server -------------------------------------------
# A fresh cluster for every database (initdb and postgres are all a server
# install is sure to have; no psql needed).
as_pg=()
(( $(id -u) == 0 )) && as_pg=(runuser -u postgres --)
fresh_db() { # -> URL
    local d p
    d=$(mktemp -d "$W/pg.XXXXXX")
    p=$(port)
    (( $(id -u) == 0 )) && chown postgres: "$d"
    "${as_pg[@]}" "$PGBIN/initdb" -D "$d/data" -U forklift --auth=trust -E UTF8 --no-sync >/dev/null
    "${as_pg[@]}" "$PGBIN/postgres" -D "$d/data" -p "$p" -c listen_addresses=127.0.0.1 \
        -c unix_socket_directories="$d" -c fsync=off -c max_connections=200 >"$d.log" 2>&1 &
    # Called in $(…): the pid goes to a file cleanup reads.
    echo $! >>"$W/pg.pids"
    for _ in $(seq 1 100); do
        [[ -S $d/.s.PGSQL.$p ]] && break
        sleep 0.1
    done
    sleep 0.5
    echo "postgres://forklift@127.0.0.1:$p/postgres"
}
S3PORT=$(port)
if [[ $S3_SERVER == s3s-fs ]]; then
    # A bucket is a directory of its root.
    mkdir -p "$W/s3s/bench"
    s3s-fs --host 127.0.0.1 --port "$S3PORT" --access-key bench --secret-key bench-secret "$W/s3s" >"$W/s3s.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 300); do
        curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" && break
        sleep 0.2
    done
    S3_VERSION="s3s-fs $(s3s-fs --version | awk '{ print $2 }')"
else
    moto_server -H 127.0.0.1 -p "$S3PORT" >"$W/moto.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null "http://127.0.0.1:$S3PORT/" && break
        sleep 0.2
    done
    curl -sf -X PUT -o /dev/null "http://127.0.0.1:$S3PORT/bench"
    S3_VERSION="moto $("$(dirname "$(command -v moto_server)")/python" -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?')"
fi

log "generating $((N + REPS + 2 * UPLOADS)) RPMs"
target/release/examples/genrpms --count "$((N + REPS + 2 * UPLOADS))" --out "$W/rpms" --size-kb "$SIZE_KB" >&2
rpmname() { printf 'bench-pkg-%05d-1.0-1.x86_64.rpm' "$1"; }

# One instance: STORAGE DB PORT NAME; sets LAST_PID.
start_instance() {
    local storage=$1 db=$2 p=$3 name=$4 s3=
    [[ $storage == s3://* ]] && s3=$S3_ENV
    mkdir -p "$W/$name"
    # shellcheck disable=SC2086
    env FORKLIFT_ADMIN_TOKEN="$TOKEN" FORKLIFT_LOG=warn \
        FORKLIFT_STORAGE="$storage" $s3 \
        ${KEY:+FORKLIFT_SIGNING_KEY=$KEY} \
        target/release/forklift serve --listen "127.0.0.1:$p" --data-dir "$W/$name" \
        --database-url "$db" >>"$W/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    for _ in $(seq 1 1200); do
        curl -sf -o /dev/null "http://127.0.0.1:$p/healthz" && return 0
        kill -0 "$LAST_PID" 2>/dev/null || { tail -5 "$W/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    exit 1
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

# The signing key every instance shares: generated by a first start.
KEY=
S3_ENV=
start_instance file "$(fresh_db)" "$(port)" keygen
stop "$LAST_PID"
KEY="$W/keygen/keys/signing-key.asc"
[[ -f $KEY ]] || { echo "no key generated at $KEY" >&2; exit 1; }
S3_ENV="FORKLIFT_S3_ENDPOINT=http://127.0.0.1:$S3PORT FORKLIFT_S3_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret"

upload() { # BASE FIRST LAST QUERY -> seconds
    local base=$1 t0 t1
    t0=$EPOCHREALTIME
    seq "$2" "$3" | xargs -P "$CONCURRENCY" -I{} sh -c \
        'f=$(printf "bench-pkg-%05d-1.0-1.x86_64.rpm" {}); curl -sS -f -o /dev/null -H @'"$AUTH"' -T '"$W"'/rpms/$f "'"$base"'/api/v1/packages/$f'"$4"'"'
    t1=$EPOCHREALTIME
    calc 3 "$t1 - $t0"
}
promote() { # BASE JSON-LIST -> seconds
    printf '{"packages": %s}' "$2" >"$W/promote.json"
    curl -sS -f -o "$W/promote.out" -w '%{time_total}\n' -H @"$AUTH" -H 'Content-Type: application/json' \
        --data-binary @"$W/promote.json" "$1/api/v1/channels/qa/promote"
}

ROWS=()
# --- 3. one promotion into an N-package channel: file vs s3 -------------------
for storage in file s3://bench/promote; do
    p=$(port); base="http://127.0.0.1:$p"
    start_instance "$storage" "$(fresh_db)" "$p" "promote-${storage%%:*}"
    pid=$LAST_PID
    secs=$(upload "$base" 1 "$((N + REPS))" "")
    log "$storage: uploaded $((N + REPS)) in ${secs}s"
    all=$(seq 1 "$N" | while read -r i; do printf '"%s"\n' "$(rpmname "$i")"; done | paste -sd, | sed 's/^/[/; s/$/]/')
    first=$(promote "$base" "$all")
    one=()
    for r in $(seq 1 "$REPS"); do
        sleep 1.1 # past the previous revision's second
        one+=("$(promote "$base" "[\"$(rpmname $((N + r)))\"]")")
    done
    med=$(printf '%s\n' "${one[@]}" | median)
    ROWS+=("| promotion | ${storage%%:*} | first publication of $N into qa: ${first}s; one more build into qa ($N → $((N + REPS))), median of $REPS: **$(calc 3 "$med * 1000") ms** (all: $(printf '%s ' "${one[@]}")) | peak RSS $(peak_mib "$pid") MiB |")
    stop "$pid"
done

# --- 3b. one big upload into the bucket: memory ------------------------------
if [[ $BIG_GIB != 0 ]]; then
    log "generating one ~${BIG_GIB} GiB RPM"
    big="$W/big/bench-big-1.0-1.x86_64.rpm"
    mkdir -p "$W/big"
    target/release/examples/genrpms --big-file "$big" --big-size-gib "$BIG_GIB" >&2
    size=$(stat -c %s "$big")
    p=$(port); base="http://127.0.0.1:$p"
    start_instance s3://bench/big "$(fresh_db)" "$p" big
    pid=$LAST_PID
    hwm0=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
    t0=$EPOCHREALTIME
    code=$(curl -sS --max-time 1800 -o "$W/big.json" -w '%{http_code}' -H @"$AUTH" -T "$big" "$base/api/v1/packages/${big##*/}?channel=qa")
    t1=$EPOCHREALTIME
    hwm1=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
    [[ $code == 201 ]] || { echo "big upload: HTTP $code $(head -c 300 "$W/big.json")" >&2; exit 1; }
    # The object in the bucket has the whole size.
    got=$(curl -sI "$base/rpm/qa/Packages/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$W/big.json")/${big##*/}" | awk 'tolower($1) == "content-length:" { print $2 }' | tr -d '\r')
    ROWS+=("| big upload | s3 | $(calc 2 "$size / 1073741824") GiB RPM: HTTP $code in $(calc 1 "$t1 - $t0")s, served back with Content-Length $got (file: $size) | VmHWM $(calc 1 "$hwm0 / 1024") → $(calc 1 "$hwm1 / 1024") MiB: **growth $(calc 1 "($hwm1 - $hwm0) / 1024") MiB** |")
    stop "$pid"
    rm -f "$big"
fi

# --- 4. 1 vs 2 instances behind nginx ----------------------------------------
cat >"$W/rotate.lua" <<'EOF'
local paths = {}
for line in io.lines(os.getenv("PATHS_FILE")) do paths[#paths + 1] = line end
local i = 0
request = function()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end
EOF
first=$((N + REPS + 1))
for n in 1 2; do
    db=$(fresh_db)
    ports=(); pids=()
    for k in $(seq 1 "$n"); do
        p=$(port); ports+=("$p")
        start_instance "s3://bench/scale$n" "$db" "$p" "scale$n-$k"
        pids+=("$LAST_PID")
    done
    np=$(port)
    upstream=$(for p in "${ports[@]}"; do printf '    server 127.0.0.1:%s max_fails=1 fail_timeout=5s;\\n' "$p"; done)
    mkdir -p "$W/nginx$n"
    {
        echo "pid $W/nginx$n/nginx.pid; error_log $W/nginx$n/error.log; worker_processes 2; daemon off;"
        echo "events { worker_connections 1024; }"
        echo "http { access_log off; client_body_temp_path $W/nginx$n; proxy_temp_path $W/nginx$n;"
        awk -v up="$upstream" -v port="$np" '
            /server 127\.0\.0\.1:808[12]/ { if (!done) { printf "%s", up; done = 1 } next }
            /listen 80;/ { print "    listen 127.0.0.1:" port ";"; next }
            { print }' deploy/nginx.conf
        echo "}"
    } >"$W/nginx$n/nginx.conf"
    "$NGINX" -c "$W/nginx$n/nginx.conf" -p "$W/nginx$n" >"$W/nginx$n/out.log" 2>&1 &
    ngx=$!; PIDS+=("$ngx")
    for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$np/healthz" && break; sleep 0.1; done
    base="http://127.0.0.1:$np"
    stored_secs=$(upload "$base" "$((first + UPLOADS))" "$((first + 2 * UPLOADS - 1))" "")
    stored=$(calc 1 "$UPLOADS / $stored_secs")
    secs=$(upload "$base" "$first" "$((first + UPLOADS - 1))" "?channel=qa")
    ups=$(calc 1 "$UPLOADS / $secs")
    curl -sf "$base/api/v1/packages?channel=qa&limit=10000" | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    print("/rpm/qa/Packages/%s/%s" % (p["id"], p["filename"]))' >"$W/paths$n"
    # shellcheck disable=SC2086
    wrk_out=$(PATHS_FILE="$W/paths$n" wrk $WRK_ARGS -s "$W/rotate.lua" "$base" 2>&1)
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$wrk_out")
    errs=$(grep -E 'Non-2xx|Socket errors' <<<"$wrk_out" | paste -sd';' || true)
    rss=$(for pid in "${pids[@]}"; do printf '%s ' "$(peak_mib "$pid")"; done)
    ROWS+=("| scale-out | $n instance(s), s3, nginx | $UPLOADS uploads stored only (no channel): **$stored uploads/s**; $UPLOADS uploads into qa ($CONCURRENCY clients): ${secs}s = **$ups uploads/s**; wrk $WRK_ARGS over $(wc -l <"$W/paths$n") package files: **$rps downloads/s** ${errs:+($errs)} | peak RSS ${rss}MiB |")
    stop "$ngx"
    for pid in "${pids[@]}"; do stop "$pid"; done
done

echo
echo "Code $CODE, $(nproc) cores, N=$N, SIZE_KB=$SIZE_KB, S3 server: $S3_VERSION"
echo
echo "| part | setup | figures | memory |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
