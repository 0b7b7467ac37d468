#!/usr/bin/env bash
# Publication benchmark: one change vs the whole store. Forklift against
# createrepo_c (RPM) and aptly (.deb) on the same generated files, and Forklift's
# file serving against nginx. See docs/benchmarks.md ("Publication: one change vs
# the whole store") for results.
#
#   bash bench/publish.sh
#
# What it does, all on loopback and in one temporary directory:
#   1. installs wrk and nginx-light (and aptly) with apt-get if missing (through
#      sudo when not root); builds target/release/forklift and the genrpms/gendebs
#      examples in separate cargo invocations (like bench/ingest.sh);
#   2. generates max(RPM_N_LIST)+REPS+1 RPMs and max(DEB_N_LIST)+REPS+1 .debs; the
#      first N of them are "the N packages", the last REPS+1 are the extra ones;
#   3. for each kind (rpm, deb) and each N, Forklift (a fresh server and data dir
#      per N, SQLite, the RSA-4096 signing key generated once and reused):
#        - uploads the N packages and the REPS+1 extra ones WITHOUT ?channel
#          (stored only; CONCURRENCY curl processes × BATCH files per connection);
#        - (b) first publication: one `POST /api/v1/channels/qa/promote
#          {"packages":[N file names]}` (one revision), timed from sending the
#          request until GET /rpm/qa/repodata/repomd.xml (rpm) or
#          /deb/dists/qa/InRelease (deb) returns the new file (polled every 5 ms,
#          bounded; bench/publish_helper.py keeps the clock in one process and
#          makes every request on a new connection, like a separate client);
#        - (a) one-package change, REPS times: `POST /api/v1/channels/qa/promote
#          {"packages":["<one extra file name>"]}` (bulk promotion of ONE build into
#          qa: one new revision), timed the same way; the median is reported.
#          Before each timed step the script waits until the wall clock has passed
#          the previous revision's time, so the server's "at most one revision per
#          second ahead of the clock" rule never makes a promotion wait;
#        - (b') the same N+REPS builds promoted from qa into the empty staging
#          channel in one request: a first publication whose per-package metadata
#          is already compressed and cached in the server process;
#        - (a') restart of the server (the per-process cache of compressed metadata
#          is empty again) and one more one-package change: the cost of the first
#          publication after a restart;
#        - after each step: server CPU seconds (/proc/PID/stat), peak RSS (VmHWM)
#          and RSS (VmRSS) from /proc/PID/status, the 1-minute load average;
#          and checks of what is served (bench/publish_helper.py: repomd.xml.asc /
#          InRelease verified with gpgv, every file matches its checksum, the
#          package count is right; a full XML parse after the first publication
#          and after the last change);
#   4. createrepo_c (rpm) on a directory of hardlinks to the same N files: a full
#      run, then REPS times: link one extra file in, `createrepo_c --update`
#      (median reported), and `gpg --detach-sign --armor repomd.xml` with a
#      throwaway RSA-4096 key (timed separately: createrepo_c does not sign);
#   5. aptly (deb), set up as in bench/apt.sh (own rootDir, throwaway RSA-4096 GPG
#      key): `repo add` of the N files, `publish repo` (defaults, and "lean":
#      -skip-contents -skip-bz2 -acquire-by-hash), then REPS times: `repo add` of
#      one extra file + `publish update` of both publications (medians reported);
#      each aptly command's wall/CPU/max RSS from /usr/bin/time;
#   6. serving (once, on the rpm server with SERVE_N packages in qa): wrk
#      ($WRK_ARGS) against Forklift and against nginx-light (an unprivileged
#      standalone nginx, own config in the temp dir, `daemon off`, serving a
#      directory laid out like Forklift's URLs whose package files are hardlinks
#      to the same generated files, and a copy of the served repomd.xml):
#        - one package file (the same URL on both);
#        - SERVE_FILES package files, rotated by a wrk Lua script (same paths);
#        - repomd.xml;
#        - (diagnostic) the rotated files with "Connection: close", i.e. a new
#          connection for every request;
#        - (diagnostic, NODELAY_DIAG=1) Forklift again, restarted with an
#          LD_PRELOAD shim that sets TCP_NODELAY on every accepted connection.
# Prints markdown tables at the end. Everything is removed on exit unless KEEP=1.
#
# Needs curl, python3, gpg, gpgv, createrepo_c, aptly, wrk, nginx, /usr/bin/time.
# Disk: about 8 GiB with the default N_LIST (the 50,000-package runs dominate).
# Time on 2 cores with the default N_LIST: about 12 minutes after the build (4
# minutes), plus removing ~0.7 million files at exit. Other load on the machine
# moves the numbers: every row has the 1-minute load average taken just before
# the step.
#
# Settings (environment):
#   N_LIST="1000 10000 50000"  channel sizes (both kinds)
#   RPM_N_LIST=$N_LIST         channel sizes for RPMs ("" skips RPMs)
#   DEB_N_LIST=$N_LIST         channel sizes for .debs ("" skips .debs)
#   REPS=5                     one-package changes per N (median reported)
#   CONCURRENCY=4              parallel curl processes for the uploads
#   BATCH=50                   files per curl process (one connection)
#   SIZE_KB=8                  size of each package's /usr/bin file (incompressible)
#   CREATEREPO_ARGS=           extra arguments for every createrepo_c run
#   APTLY_LEAN=1               0 skips the "lean" aptly publication
#   RESTART=1                  0 skips the cold-cache change after a restart (a')
#   STAGING=1                  0 skips the warm-cache first publication (b')
#   FULL_VERIFY=1              0 skips the full XML parses (counts/checksums stay)
#   BULK_CHUNK=25000           builds per request when a single bulk promotion is
#                              refused (reported; SQLite refuses more than 32,766
#                              bound variables in one statement, so N > 32,766
#                              fails in one request as of 892a472)
#   SERVE=1                    0 skips the wrk comparison with nginx
#   SERVE_N=                   rpm channel size at which serving is measured
#                              [default: the largest in RPM_N_LIST]
#   SERVE_FILES=1000           files rotated by the Lua script
#   NODELAY_DIAG=1             also serve with an LD_PRELOAD shim (compiled with cc
#                              into the temp dir) that sets TCP_NODELAY on accepted
#                              sockets: what the missing setting costs (0 skips)
#   WRK_ARGS="-t2 -c32 -d10s"  wrk options
#   PORT=random, NGINX_PORT=random   loopback ports
#   WORK=                      parent of the temporary tree [default: $TMPDIR or /tmp]
#   KEEP=0                     1 keeps the temporary tree (logs, data dirs)
#   SKIP_BUILD=0               1 uses the existing target/release binaries
set -euo pipefail

N_LIST=${N_LIST:-"1000 10000 50000"}
RPM_N_LIST=${RPM_N_LIST-$N_LIST}
DEB_N_LIST=${DEB_N_LIST-$N_LIST}
REPS=${REPS:-5}
CONCURRENCY=${CONCURRENCY:-4}
BATCH=${BATCH:-50}
SIZE_KB=${SIZE_KB:-8}
CREATEREPO_ARGS=${CREATEREPO_ARGS:-}
APTLY_LEAN=${APTLY_LEAN:-1}
RESTART=${RESTART:-1}
STAGING=${STAGING:-1}
FULL_VERIFY=${FULL_VERIFY:-1}
SERVE=${SERVE:-1}
SERVE_N=${SERVE_N:-}
SERVE_FILES=${SERVE_FILES:-1000}
NODELAY_DIAG=${NODELAY_DIAG:-1}
BULK_CHUNK=${BULK_CHUNK:-25000}
WRK_ARGS=${WRK_ARGS:-"-t2 -c32 -d10s"}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
NGINX_PORT=${NGINX_PORT:-$((40000 + RANDOM % 20000))}
KEEP=${KEEP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
HELPER=("python3" "$ROOT/bench/publish_helper.py")

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

SUDO=
(( $(id -u) == 0 )) || SUDO=sudo
need_pkgs=()
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need_pkgs+=(nginx-light)
[[ -n $DEB_N_LIST ]] && ! command -v aptly >/dev/null && need_pkgs+=(aptly)
[[ -n $RPM_N_LIST ]] && ! command -v createrepo_c >/dev/null && need_pkgs+=(createrepo-c)
if (( ${#need_pkgs[@]} )); then
    log "installing ${need_pkgs[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >&2
    # The Debian nginx package starts a system nginx on port 80: not ours to run.
    if [[ " ${need_pkgs[*]} " == *" nginx-light "* ]] && command -v systemctl >/dev/null; then
        $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
    fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in curl python3 gpg gpgv wrk /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "publish.sh: $tool is required" >&2; exit 2; }
done

W=$(mktemp -d "${WORK:-${TMPDIR:-/tmp}}/forklift-publish-bench.XXXXXX")
SERVER_PID=
NGINX_PID=
BASE="http://127.0.0.1:$PORT"
export GNUPGHOME="$W/gnupg"
# A throwaway admin token: every write needs one. Sent from a header file so it
# is not on any command line.
TOKEN="bench-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
AUTH_HDR="$W/auth.header"
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$AUTH_HDR"
chmod 600 "$AUTH_HDR"

cleanup() {
    stop_server || true
    stop_nginx || true
    if [[ -d $GNUPGHOME ]]; then
        gpgconf --kill gpg-agent >/dev/null 2>&1 || true
    fi
    if [[ $KEEP == 1 ]]; then
        echo "kept $W" >&2
    else
        log "removing $W"
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wall clock in seconds with microseconds, without a process.
now() { echo "$EPOCHREALTIME"; }
calc() { local p=$1; shift; awk "BEGIN { printf \"%.${p}f\", $* }"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mib() { calc 1 "$1 / 1024"; }
cpu_secs() {
    local tck; tck=$(getconf CLK_TCK)
    awk -v t="$tck" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "–"; exit } if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
minmax() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }'; }

start_server() { # DATA_DIR LOG
    mkdir -p "$1"
    env FORKLIFT_ADMIN_TOKEN="$TOKEN" ${PRELOAD:+LD_PRELOAD="$PRELOAD"} target/release/forklift serve \
        --listen "127.0.0.1:$PORT" --data-dir "$1" >>"$2" 2>&1 &
    SERVER_PID=$!
    local i
    # The very first start generates an RSA-4096 key: allow up to 120 s.
    for i in $(seq 1 1200); do
        if curl -sf -o /dev/null "$BASE/healthz"; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$2" >&2; echo "server died" >&2; exit 1; }
        sleep 0.1
    done
    echo "server did not answer /healthz within 120s" >&2
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

stop_nginx() {
    [[ -n $NGINX_PID ]] || return 0
    kill "$NGINX_PID" 2>/dev/null || true  # SIGTERM: fast shutdown of master and workers
    local i
    for i in $(seq 1 50); do
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
}

# The signed file whose change shows that a new revision of CHANNEL is served.
marker_url() { # KIND CHANNEL
    if [[ $1 == rpm ]]; then echo "$BASE/rpm/$2/repodata/repomd.xml"; else echo "$BASE/deb/dists/$2/InRelease"; fi
}

# The revision time a marker file carries (repomd <revision>, InRelease Date).
marker_time() { # KIND FILE
    if [[ $1 == rpm ]]; then
        sed -n 's:.*<revision>\([0-9]*\)</revision>.*:\1:p' "$2" | head -1
    else
        date -d "$(sed -n 's/^Date: //p' "$2")" +%s
    fi
}

# Waits (at most 10 s) until the clock is past the revision time in FILE, so the
# next publication is not held back by the one-revision-per-second rule.
settle() { # KIND FILE
    local t i
    t=$(marker_time "$1" "$2")
    [[ -n $t ]] || return 0
    for i in $(seq 1 100); do
        (( EPOCHSECONDS > t )) && return 0
        sleep 0.1
    done
}

# Checks what the server serves for CHANNEL. Failures become PROBLEMS (the run
# goes on so the report shows them).
verify_forklift() { # KIND CHANNEL EXPECTED WHAT [--full]
    local kind=$1 ch=$2 n=$3 what=$4 out= out2= full=()
    [[ ${5:-} == --full && $FULL_VERIFY == 1 ]] && full=(--full)
    if [[ $kind == rpm ]]; then
        if out=$("${HELPER[@]}" yum "$BASE/rpm/$ch" "$n" --keyring "$W/forklift.gpg" "${full[@]}" 2>&1) &&
            out2=$("${HELPER[@]}" yum "$BASE/rpm/$ch/latest" "$n" --keyring "$W/forklift.gpg" 2>&1); then
            log "  verified $what: $out; latest/ view: ${out2%%,*}, lists $n"
        else
            PROBLEMS+=("Forklift $what ($kind, $ch, expected $n): ${out:-} ${out2:-}")
            log "  VERIFY FAILED $what: ${out:-} ${out2:-}"
        fi
    else
        if out=$("${HELPER[@]}" apt "$BASE/deb" "$ch" "$n" --keyring "$W/forklift.gpg" "${full[@]}" 2>&1); then
            log "  verified $what: $out"
        else
            PROBLEMS+=("Forklift $what ($kind, $ch, expected $n): $out")
            log "  VERIFY FAILED $what: $out"
        fi
    fi

}

log_problems() { # LOG LABEL
    local bad
    bad=$(grep -E 'WARN|ERROR' "$1" | grep -vc 'HTTP/1.1" [23][0-9][0-9] ' || true)
    if [[ $bad != 0 ]]; then
        PROBLEMS+=("$2: $bad WARN/ERROR log lines, first: $(grep -E 'WARN|ERROR' "$1" | head -1 | sed 's/\x1b\[[0-9;]*m//g')")
    fi
    bad=$(grep -cE 'HTTP/1.1" [45][0-9][0-9] ' "$1" || true)
    if [[ $bad != 0 ]]; then
        PROBLEMS+=("$2: $bad non-2xx responses in the access log: $(grep -E 'HTTP/1.1" [45][0-9][0-9] ' "$1" | sed 's/\x1b\[[0-9;]*m//g; s/^.*127.0.0.1 //; s/ [0-9.]*ms$//' | sort | uniq -c | sort -rn | head -3 | tr -s ' ' | paste -sd ';')")
    fi
}

ROWS=()       # detail rows: | kind | N | system | step | seconds | CPU s | peak RSS | RSS | load |
SUMMARY=()    # per kind and N
SERVE_ROWS=()
PROBLEMS=()
NOTES=()
row() { ROWS+=("| $(IFS='|'; echo "$*" | sed 's/|/ | /g') |"); }

# ---------------------------------------------------------------------------
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
log "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2/1048576 }' /proc/meminfo), $CPU_MODEL, load $(loadavg)"
log "work dir $W, port $PORT (nginx $NGINX_PORT), RPM N: ${RPM_N_LIST:-none}, deb N: ${DEB_N_LIST:-none}, REPS=$REPS"
if [[ $SKIP_BUILD != 1 ]]; then
    log "building (release)"
    cargo build --release --bin forklift
    cargo build --release --example genrpms
    cargo build --release --example gendebs
fi
CODE="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
dirty=$( (git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null || true) | wc -l)
(( dirty == 0 )) || CODE="$CODE + uncommitted changes in $dirty file(s) under src/"
log "code: $CODE; binary built $(date -r target/release/forklift '+%F %T')"

maxof() { local m=0 n; for n in "$@"; do (( n > m )) && m=$n; done; echo "$m"; }
rpmname() { printf 'bench-pkg-%05d-1.0-1.x86_64.rpm' "$1"; }
debname() { printf 'bench-deb-%05d_1.0-1_amd64.deb' "$1"; }
# shellcheck disable=SC2086
RPM_MAX=$(maxof $RPM_N_LIST)
# shellcheck disable=SC2086
DEB_MAX=$(maxof $DEB_N_LIST)
EXTRAS=$((REPS + 1))

if (( RPM_MAX > 0 )); then
    log "generating $((RPM_MAX + EXTRAS)) RPMs"
    t0=$(now)
    target/release/examples/genrpms --count "$((RPM_MAX + EXTRAS))" --out "$W/rpms" --size-kb "$SIZE_KB" >&2
    log "generated in $(calc 1 "$(now) - $t0")s, $(du -sh "$W/rpms" | cut -f1)"
    if command -v rpm >/dev/null; then
        rpm -K --nosignature "$W/rpms/$(rpmname 1)" "$W/rpms/$(rpmname $((RPM_MAX + EXTRAS)))" >&2
    fi
fi
if (( DEB_MAX > 0 )); then
    log "generating $((DEB_MAX + EXTRAS)) .debs"
    t0=$(now)
    target/release/examples/gendebs --count "$((DEB_MAX + EXTRAS))" --out "$W/debs" --size-kb "$SIZE_KB" >&2
    log "generated in $(calc 1 "$(now) - $t0")s, $(du -sh "$W/debs" | cut -f1)"
    if command -v dpkg-deb >/dev/null; then
        dpkg-deb --info "$W/debs/$(debname 1)" control >/dev/null
        dpkg-deb --contents "$W/debs/$(debname $((DEB_MAX + EXTRAS)))" >/dev/null
    fi
fi

# File names: the first N of a kind, and extra number I (1-based).
names_first() { # KIND N
    local i
    for ((i = 1; i <= $2; i++)); do
        if [[ $1 == rpm ]]; then rpmname "$i"; else debname "$i"; fi
        echo
    done
}
extra_name() { # KIND I
    if [[ $1 == rpm ]]; then rpmname $((RPM_MAX + $2)); else debname $((DEB_MAX + $2)); fi
}
kind_dir() { if [[ $1 == rpm ]]; then echo "$W/rpms"; else echo "$W/debs"; fi; }

# ---------------------------------------------------------------------------
# The Forklift server's signing key: generated by the first start, reused after.
KEY_FILE=
KEYRING_READY=0

upload_files() { # KIND NAMES_FILE CODES -> prints seconds
    local dir t0
    dir=$(kind_dir "$1")
    export BASE AUTH_HDR dir
    t0=$(now)
    sed "s:^:$dir/:" "$2" | tr '\n' '\0' |
        xargs -0 -r -P "$CONCURRENCY" -n "$BATCH" bash -c '
            args=()
            for f; do args+=(-T "$f" -o /dev/null "$BASE/api/v1/packages/${f##*/}"); done
            exec curl -sS --max-time 600 -H "@$AUTH_HDR" -w "%{http_code}\n" "${args[@]}"
        ' _ >"$3" 2>>"$W/curl.err"
    calc 3 "$(now) - $t0"
}

# One timed publication: POST each BODY to the promote endpoint of CHANNEL, then
# poll the marker until it changes (bench/publish_helper.py promote: the clock
# runs in one process, every request on a new connection). Sets STEP_SECS,
# STEP_REQ (the requests alone), STEP_CPU, STEP_HWM, STEP_RSS, STEP_LOAD; on a
# refused request returns 1 with STEP_FAIL set.
timed_publish() { # KIND CHANNEL PREV_MARKER NEW_MARKER BODY_FILE...
    local kind=$1 ch=$2 prev=$3 new=$4 res cpu0
    shift 4
    settle "$kind" "$prev"
    STEP_LOAD=$(loadavg)
    cpu0=$(cpu_secs "$SERVER_PID")
    STEP_FAIL=
    if ! res=$("${HELPER[@]}" promote "$BASE/api/v1/channels/$ch/promote" "$AUTH_HDR" \
        "$(marker_url "$kind" "$ch")" "$prev" "$new" "$@"); then
        STEP_FAIL="HTTP ${res##* } after $(calc 3 "$(echo "$res" | cut -d' ' -f2)")s: $(head -c 300 "$new.response")"
        return 1
    fi
    read -r STEP_SECS STEP_REQ _ <<<"$res"
    STEP_SECS=$(calc 3 "$STEP_SECS")
    STEP_REQ=$(calc 3 "$STEP_REQ")
    STEP_CPU=$(calc 2 "$(cpu_secs "$SERVER_PID") - $cpu0")
    STEP_HWM=$(status_kib "$SERVER_PID" VmHWM)
    STEP_RSS=$(status_kib "$SERVER_PID" VmRSS)
    grep -q '"revision":[0-9]' "$new.response" ||
        PROBLEMS+=("promote into $ch answered without a new revision: $(head -c 300 "$new.response")")
}

# A bulk promotion of every name in NAMES_FILE in one request; if the server
# refuses it, the refusal is reported and the names are sent in requests of at
# most BULK_CHUNK names (several revisions), timed from the first request to the
# marker after the last. Sets BULK_REQUESTS besides timed_publish's variables.
bulk_publish() { # KIND CHANNEL NAMES_FILE PREV NEW
    local kind=$1 ch=$2 names=$3 prev=$4 new=$5 chunks=() c
    json_names "$names" "$names.json"
    BULK_REQUESTS=1
    if timed_publish "$kind" "$ch" "$prev" "$new" "$names.json"; then
        return 0
    fi
    PROBLEMS+=("bulk promotion of $(wc -l <"$names") builds into $ch in one request ($(stat -c %s "$names.json") bytes): $STEP_FAIL; sent in requests of ≤ $BULK_CHUNK builds instead")
    log "  single bulk request refused ($STEP_FAIL); splitting into requests of ≤ $BULK_CHUNK"
    split -l "$BULK_CHUNK" -d -a 3 "$names" "$names.part-"
    for c in "$names".part-[0-9][0-9][0-9]; do
        json_names "$c" "$c.json"
        chunks+=("$c.json")
    done
    BULK_REQUESTS=${#chunks[@]}
    timed_publish "$kind" "$ch" "$prev" "$new" "${chunks[@]}" ||
        { echo "bulk promotion into $ch in ${#chunks[@]} requests: $STEP_FAIL" >&2; exit 1; }
}

json_names() { # NAMES_FILE OUT
    awk 'BEGIN { printf "{\"packages\":[" } NR > 1 { printf "," } { printf "\"%s\"", $0 } END { printf "]}" }' "$1" >"$2"
}

forklift_run() { # KIND N
    local kind=$1 n=$2 data slog tag secs i one_secs=() one_req=() one_cpu=() one_load=() hwm_after_one
    tag="$kind-$n"
    data="$W/forklift-$tag"
    slog="$W/server-$tag.log"
    if [[ -n $KEY_FILE ]]; then
        mkdir -p "$data/keys"
        cp "$KEY_FILE" "$data/keys/signing-key.asc"
        chmod 600 "$data/keys/signing-key.asc"
    fi
    log "forklift $tag: starting"
    start_server "$data" "$slog"
    if [[ -z $KEY_FILE ]]; then
        KEY_FILE="$W/signing-key.asc"
        cp "$data/keys/signing-key.asc" "$KEY_FILE"
    fi
    if [[ $KEYRING_READY == 0 ]]; then
        mkdir -p -m 700 "$GNUPGHOME"
        curl -sf "$BASE/keys/forklift.asc" | gpg --batch --dearmor >"$W/forklift.gpg"
        KEYRING_READY=1
    fi
    local rss_start; rss_start=$(status_kib "$SERVER_PID" VmRSS)

    # Upload the N packages and the extra ones, no channel.
    names_first "$kind" "$n" >"$W/names-$tag"
    { cat "$W/names-$tag"; for ((i = 1; i <= EXTRAS; i++)); do extra_name "$kind" "$i"; echo; done; } >"$W/upload-$tag"
    local load cpu0 ok total=$((n + EXTRAS))
    load=$(loadavg)
    cpu0=$(cpu_secs "$SERVER_PID")
    log "forklift $tag: uploading $total files, no channel (load $load)"
    secs=$(upload_files "$kind" "$W/upload-$tag" "$W/codes-$tag")
    ok=$(grep -c '^201$' "$W/codes-$tag" || true)
    [[ $ok == "$total" ]] || { echo "upload: expected $total × 201, got:" >&2; sort "$W/codes-$tag" | uniq -c >&2; tail -3 "$W/curl.err" >&2; exit 1; }
    row "$kind" "$n" "Forklift" "upload $total files, no channel ($CONCURRENCY×$BATCH curl; $(calc 0 "$total / $secs")/s)" \
        "$secs" "$(calc 2 "$(cpu_secs "$SERVER_PID") - $cpu0")" "$(mib "$(status_kib "$SERVER_PID" VmHWM)")" \
        "$(mib "$(status_kib "$SERVER_PID" VmRSS)")" "$load"
    log "forklift $tag: uploaded in ${secs}s"

    # (b) first publication of N into the empty qa.
    local mk="$W/marker-$tag"
    curl -sf -o "$mk-0" "$(marker_url "$kind" qa)"
    log "forklift $tag: (b) bulk promotion of $n into qa"
    bulk_publish "$kind" qa "$W/names-$tag" "$mk-0" "$mk-1"
    local first_secs=$STEP_SECS first_hwm=$STEP_HWM first_note=
    (( BULK_REQUESTS > 1 )) && first_note=" **in $BULK_REQUESTS requests/revisions** (one was refused)"
    F_FIRST_REQS[$tag]=$BULK_REQUESTS
    row "$kind" "$n" "Forklift" "(b) first publication: bulk promote $n into empty qa$first_note → new signed metadata served (requests alone ${STEP_REQ}s)" \
        "**$STEP_SECS**" "$STEP_CPU" "$(mib "$STEP_HWM")" "$(mib "$STEP_RSS")" "$STEP_LOAD"
    log "forklift $tag: (b) ${STEP_SECS}s (request ${STEP_REQ}s), CPU ${STEP_CPU}s, VmHWM $(mib "$STEP_HWM") MiB"
    verify_forklift "$kind" qa "$n" "first publication of $n" --full

    # (a) REPS one-package changes.
    local prev="$mk-1" cur
    for ((i = 1; i <= REPS; i++)); do
        printf '{"packages":["%s"]}' "$(extra_name "$kind" "$i")" >"$W/one.json"
        cur="$mk-one-$i"
        timed_publish "$kind" qa "$prev" "$cur" "$W/one.json" ||
            { echo "one-package change $i: $STEP_FAIL" >&2; exit 1; }
        one_secs+=("$STEP_SECS"); one_req+=("$STEP_REQ"); one_cpu+=("$STEP_CPU"); one_load+=("$STEP_LOAD")
        log "forklift $tag: (a) change $i: ${STEP_SECS}s (request ${STEP_REQ}s), CPU ${STEP_CPU}s, load $STEP_LOAD"
        if (( i == REPS )); then
            verify_forklift "$kind" qa "$((n + i))" "after one-package change $i" --full
        else
            verify_forklift "$kind" qa "$((n + i))" "after one-package change $i"
        fi
        prev=$cur
    done
    hwm_after_one=$STEP_HWM
    local med_one med_req med_cpu
    med_one=$(printf '%s\n' "${one_secs[@]}" | median)
    med_req=$(printf '%s\n' "${one_req[@]}" | median)
    med_cpu=$(printf '%s\n' "${one_cpu[@]}" | median)
    row "$kind" "$n" "Forklift" "(a) one-package change: bulk promote 1 into qa ($n → $((n + REPS))), median of $REPS (all: $(printf '%s ' "${one_secs[@]}"| sed 's/ $//'); request alone: median ${med_req}s)" \
        "**$med_one**" "$med_cpu" "$(mib "$STEP_HWM")" "$(mib "$STEP_RSS")" "$(printf '%s\n' "${one_load[@]}" | minmax)"

    # (b') warm-cache first publication into staging.
    local staging_secs=–
    if [[ $STAGING == 1 ]]; then
        { cat "$W/names-$tag"; for ((i = 1; i <= REPS; i++)); do extra_name "$kind" "$i"; echo; done; } >"$W/names-staging-$tag"
        curl -sf -o "$mk-s0" "$(marker_url "$kind" staging)"
        log "forklift $tag: (b') bulk promotion of $((n + REPS)) from qa into staging (cached pieces)"
        bulk_publish "$kind" staging "$W/names-staging-$tag" "$mk-s0" "$mk-s1"
        staging_secs=$STEP_SECS
        local snote=
        (( BULK_REQUESTS > 1 )) && snote=" **in $BULK_REQUESTS requests/revisions**"
        row "$kind" "$n" "Forklift" "(b') first publication with cached pieces: bulk promote $((n + REPS)) qa → empty staging$snote (requests alone ${STEP_REQ}s)" \
            "$STEP_SECS" "$STEP_CPU" "$(mib "$STEP_HWM")" "$(mib "$STEP_RSS")" "$STEP_LOAD"
        log "forklift $tag: (b') ${STEP_SECS}s, CPU ${STEP_CPU}s"
        verify_forklift "$kind" staging "$((n + REPS))" "staging first publication"
    fi
    local rss_end hwm_end
    rss_end=$(status_kib "$SERVER_PID" VmRSS)
    hwm_end=$(status_kib "$SERVER_PID" VmHWM)
    NOTES+=("Forklift $tag: RSS at start $(mib "$rss_start") MiB; after the runs VmRSS $(mib "$rss_end") MiB, VmHWM $(mib "$hwm_end") MiB (after (b) $(mib "$first_hwm"), after (a) $(mib "$hwm_after_one"))")

    # Serving, measured on this server's qa channel.
    if [[ $SERVE == 1 && $kind == rpm && $n == "${SERVE_N:-$RPM_MAX}" ]]; then
        serve_compare "$n" "$mk-one-$REPS"
    fi

    # (a') restart: the cache of compressed pieces is per process.
    local cold_secs=–
    if [[ $RESTART == 1 ]]; then
        stop_server
        start_server "$data" "$slog"
        local rss0; rss0=$(status_kib "$SERVER_PID" VmRSS)
        printf '{"packages":["%s"]}' "$(extra_name "$kind" "$EXTRAS")" >"$W/one.json"
        curl -sf -o "$prev-r" "$(marker_url "$kind" qa)"
        log "forklift $tag: (a') restarted (RSS $(mib "$rss0") MiB); one-package change with an empty cache"
        timed_publish "$kind" qa "$prev-r" "$mk-cold" "$W/one.json" ||
            { echo "one-package change after the restart: $STEP_FAIL" >&2; exit 1; }
        cold_secs=$STEP_SECS
        row "$kind" "$n" "Forklift" "(a') one-package change right after a restart (empty cache), $((n + REPS)) → $((n + EXTRAS)) (request alone ${STEP_REQ}s)" \
            "$STEP_SECS" "$STEP_CPU" "$(mib "$STEP_HWM")" "$(mib "$STEP_RSS")" "$STEP_LOAD"
        log "forklift $tag: (a') ${STEP_SECS}s, CPU ${STEP_CPU}s, VmHWM $(mib "$STEP_HWM") MiB"
        verify_forklift "$kind" qa "$((n + EXTRAS))" "after the restart change"
        NOTES+=("Forklift $tag after a restart: RSS at start $(mib "$rss0") MiB, after one change VmRSS $(mib "$STEP_RSS") MiB, VmHWM $(mib "$STEP_HWM") MiB")
    fi
    stop_server
    log_problems "$slog" "forklift $tag"
    F_FIRST[$tag]=$first_secs
    F_ONE[$tag]=$med_one
    F_ONE_REQ[$tag]=$med_req
    F_STAGING[$tag]=$staging_secs
    F_COLD[$tag]=$cold_secs
    F_HWM[$tag]=$(mib "$hwm_end")
    F_RSS[$tag]=$(mib "$rss_end")
}
declare -A F_FIRST_REQS F_FIRST F_ONE F_ONE_REQ F_STAGING F_COLD F_HWM F_RSS C_FULL C_UPD C_SIGN A_ADD A_PUB A_PUBL A_UPD A_UPDL A_ADD1

# ---------------------------------------------------------------------------
# Throwaway RSA-4096 GPG key for createrepo_c's repomd.xml signature and aptly.
GPG_READY=0
gpg_key() {
    [[ $GPG_READY == 1 ]] && return 0
    mkdir -p -m 700 "$GNUPGHOME"
    log "generating a throwaway RSA-4096 GPG key"
    gpg --batch --quiet --passphrase '' --quick-gen-key 'Bench <bench@example.invalid>' rsa4096 sign never 2>"$W/gpg.err"
    KEYID=$(gpg --batch --with-colons --list-secret-keys 2>>"$W/gpg.err" | awk -F: '$1 == "fpr" { print $10; exit }')
    gpg --batch --export "$KEYID" >"$W/bench.gpg"
    GPG_READY=1
}

# Runs a command under /usr/bin/time. Sets T_SECS, T_CPU, T_RSS_MIB, T_LOAD.
timed() { # LOGFILE CMD...
    local out="$W/time.out" logf=$1
    shift
    T_LOAD=$(loadavg)
    if ! /usr/bin/time -f '%e %U %S %M' -o "$out" "$@" >"$logf" 2>&1; then
        tail -20 "$logf" >&2
        echo "failed: $*" >&2
        exit 1
    fi
    local u s m
    read -r T_SECS u s m <"$out"
    T_CPU=$(calc 2 "$u + $s")
    T_RSS_MIB=$(mib "$m")
}

createrepo_run() { # N
    local n=$1 dir="$W/createrepo-$1" i secs=() cpus=() signs=() loads=() out
    mkdir -p "$dir"
    sed "s:^:$W/rpms/:" "$W/names-rpm-$n" | xargs -r -d '\n' ln -t "$dir"
    gpg_key
    # shellcheck disable=SC2086
    timed "$W/createrepo.log" createrepo_c -q $CREATEREPO_ARGS "$dir"
    C_FULL[$n]=$T_SECS
    row rpm "$n" "createrepo_c" "full run on $n files${CREATEREPO_ARGS:+ ($CREATEREPO_ARGS)}" "**$T_SECS**" "$T_CPU" "$T_RSS_MIB" "" "$T_LOAD"
    log "createrepo_c N=$n: full ${T_SECS}s"
    out=$("${HELPER[@]}" yum "$dir" "$n" 2>&1) || PROBLEMS+=("createrepo_c full N=$n: $out")
    local peak=0
    for ((i = 1; i <= REPS; i++)); do
        ln "$W/rpms/$(extra_name rpm "$i")" "$dir/"
        # shellcheck disable=SC2086
        timed "$W/createrepo.log" createrepo_c -q --update $CREATEREPO_ARGS "$dir"
        secs+=("$T_SECS"); cpus+=("$T_CPU"); loads+=("$T_LOAD")
        awk -v a="$T_RSS_MIB" -v b="$peak" 'BEGIN { exit !(a > b) }' && peak=$T_RSS_MIB
        local t0; t0=$(now)
        gpg --batch --yes --quiet -u "$KEYID" --detach-sign --armor -o "$dir/repodata/repomd.xml.asc" "$dir/repodata/repomd.xml"
        signs+=("$(calc 3 "$(now) - $t0")")
        out=$("${HELPER[@]}" yum "$dir" "$((n + i))" --keyring "$W/bench.gpg" 2>&1) || PROBLEMS+=("createrepo_c --update N=$n+$i: $out")
        log "createrepo_c N=$n: --update $i: ${T_SECS}s, gpg sign ${signs[-1]}s"
    done
    C_UPD[$n]=$(printf '%s\n' "${secs[@]}" | median)
    C_SIGN[$n]=$(printf '%s\n' "${signs[@]}" | median)
    row rpm "$n" "createrepo_c" "--update after adding 1 file ($n → $((n + REPS))), median of $REPS (all: $(printf '%s ' "${secs[@]}" | sed 's/ $//')); + gpg --detach-sign repomd.xml: median ${C_SIGN[$n]}s" \
        "**${C_UPD[$n]}**" "$(printf '%s\n' "${cpus[@]}" | median)" "$peak" "" "$(printf '%s\n' "${loads[@]}" | minmax)"
}

aptly_run() { # N
    local n=$1 i out
    gpg_key
    local ar="$W/aptly-$n"
    mkdir -p "$ar" "$W/debset-$n"
    sed "s:^:$W/debs/:" "$W/names-deb-$n" | xargs -r -d '\n' ln -t "$W/debset-$n"
    cat >"$ar.conf" <<EOF
{
  "rootDir": "$ar",
  "architectures": ["amd64"],
  "gpgProvider": "gpg",
  "downloadConcurrency": 4
}
EOF
    local A=(aptly "-config=$ar.conf") SIGN=("-gpg-key=$KEYID" -batch)
    "${A[@]}" repo create -distribution=qa -component=main bench >/dev/null
    timed "$W/aptly.log" "${A[@]}" repo add bench "$W/debset-$n"
    A_ADD[$n]=$T_SECS
    row deb "$n" "aptly" "repo add $n .debs" "$T_SECS" "$T_CPU" "$T_RSS_MIB" "" "$T_LOAD"
    timed "$W/aptly.log" "${A[@]}" publish repo -distribution=qa -architectures=amd64 "${SIGN[@]}" bench
    A_PUB[$n]=$T_SECS
    row deb "$n" "aptly" "publish repo (defaults: +bz2, +Contents)" "**$T_SECS**" "$T_CPU" "$T_RSS_MIB" "" "$T_LOAD"
    log "aptly N=$n: repo add ${A_ADD[$n]}s, publish ${A_PUB[$n]}s"
    out=$("${HELPER[@]}" apt "$ar/public" qa "$n" --keyring "$W/bench.gpg" 2>&1) || PROBLEMS+=("aptly publish N=$n: $out")
    A_PUBL[$n]=–
    if [[ $APTLY_LEAN == 1 ]]; then
        timed "$W/aptly.log" "${A[@]}" publish repo -distribution=qa -architectures=amd64 -skip-contents -skip-bz2 \
            -acquire-by-hash "${SIGN[@]}" bench lean
        A_PUBL[$n]=$T_SECS
        row deb "$n" "aptly" "publish repo lean (-skip-contents -skip-bz2 -acquire-by-hash)" "**$T_SECS**" "$T_CPU" "$T_RSS_MIB" "" "$T_LOAD"
        out=$("${HELPER[@]}" apt "$ar/public/lean" qa "$n" --keyring "$W/bench.gpg" 2>&1) || PROBLEMS+=("aptly publish lean N=$n: $out")
    fi
    local adds=() upds=() updls=() ucpu=() ulcpu=() loads=() urss=0 ulrss=0
    for ((i = 1; i <= REPS; i++)); do
        timed "$W/aptly.log" "${A[@]}" repo add bench "$W/debs/$(extra_name deb "$i")"
        adds+=("$T_SECS"); loads+=("$T_LOAD")
        timed "$W/aptly.log" "${A[@]}" publish update "${SIGN[@]}" qa
        upds+=("$T_SECS"); ucpu+=("$T_CPU")
        awk -v a="$T_RSS_MIB" -v b="$urss" 'BEGIN { exit !(a > b) }' && urss=$T_RSS_MIB
        out=$("${HELPER[@]}" apt "$ar/public" qa "$((n + i))" --keyring "$W/bench.gpg" 2>&1) || PROBLEMS+=("aptly update N=$n+$i: $out")
        if [[ $APTLY_LEAN == 1 ]]; then
            timed "$W/aptly.log" "${A[@]}" publish update -skip-contents -skip-bz2 "${SIGN[@]}" qa lean
            updls+=("$T_SECS"); ulcpu+=("$T_CPU")
            awk -v a="$T_RSS_MIB" -v b="$ulrss" 'BEGIN { exit !(a > b) }' && ulrss=$T_RSS_MIB
            out=$("${HELPER[@]}" apt "$ar/public/lean" qa "$((n + i))" --keyring "$W/bench.gpg" 2>&1) || PROBLEMS+=("aptly update lean N=$n+$i: $out")
        fi
        log "aptly N=$n: change $i: repo add ${adds[-1]}s, publish update ${upds[-1]}s${updls:+, lean ${updls[-1]}s}"
    done
    A_ADD1[$n]=$(printf '%s\n' "${adds[@]}" | median)
    A_UPD[$n]=$(printf '%s\n' "${upds[@]}" | median)
    row deb "$n" "aptly" "repo add 1 .deb, median of $REPS" "${A_ADD1[$n]}" "" "" "" "$(printf '%s\n' "${loads[@]}" | minmax)"
    row deb "$n" "aptly" "publish update (defaults) ($n → $((n + REPS))), median of $REPS (all: $(printf '%s ' "${upds[@]}" | sed 's/ $//'))" \
        "**${A_UPD[$n]}**" "$(printf '%s\n' "${ucpu[@]}" | median)" "$urss" "" ""
    A_UPDL[$n]=–
    if [[ $APTLY_LEAN == 1 ]]; then
        A_UPDL[$n]=$(printf '%s\n' "${updls[@]}" | median)
        row deb "$n" "aptly" "publish update lean, median of $REPS (all: $(printf '%s ' "${updls[@]}" | sed 's/ $//'))" \
            "**${A_UPDL[$n]}**" "$(printf '%s\n' "${ulcpu[@]}" | median)" "$ulrss" "" ""
    fi
}

# ---------------------------------------------------------------------------
# Serving: Forklift vs nginx with wrk, same files on both sides.
wrk_run() { # LABEL URL [LUA] [EXTRA WRK ARGS...]
    local label=$1 url=$2 lua=${3:-} out load rps tput lat50 lat99 errs non2xx
    shift 2; shift || true
    load=$(loadavg)
    out="$W/wrk-$RANDOM.out"
    # shellcheck disable=SC2086
    wrk $WRK_ARGS --latency ${lua:+-s "$lua"} "$@" "$url" >"$out" 2>&1 || { cat "$out" >&2; echo "wrk failed" >&2; exit 1; }
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    tput=$(awk '/^Transfer\/sec:/ { print $2 }' "$out")
    lat50=$(awk '$1 == "50%" { print $2 }' "$out")
    lat99=$(awk '$1 == "99%" { print $2 }' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    errs=$(awk '/Socket errors:/ { sub(/^ *Socket errors: */, ""); print }' "$out")
    [[ -z $non2xx && -z $errs ]] || PROBLEMS+=("wrk $label: non-2xx ${non2xx:-0}, socket errors: ${errs:-none}")
    SERVE_ROWS+=("| $label | $rps | $tput | $lat50 | $lat99 | ${non2xx:-0} | $load |")
    log "wrk $label: $rps req/s, $tput/s, p50 $lat50, p99 $lat99"
    WRK_RPS=$rps
}

serve_compare() { # N REPOMD_FILE
    local n=$1 repomd=$2 ng="$W/nginx" root i sha f path
    root="$ng/root"
    mkdir -p "$ng/logs" "$ng/tmp" "$root/rpm/qa/repodata"
    # The same repomd.xml bytes Forklift serves now.
    curl -sf -o "$root/rpm/qa/repodata/repomd.xml" "$BASE/rpm/qa/repodata/repomd.xml"
    # SERVE_FILES package files spread over the channel, same paths on both sides.
    local count=$SERVE_FILES step
    (( count > n )) && count=$n
    step=$((n / count))
    : >"$W/paths"
    for ((i = 1; i <= count; i++)); do
        f=$(rpmname $(((i - 1) * step + 1)))
        sha=$(sha256sum "$W/rpms/$f" | cut -d' ' -f1)
        path="rpm/qa/Packages/$sha/$f"
        mkdir -p "$root/rpm/qa/Packages/$sha"
        ln "$W/rpms/$f" "$root/$path"
        echo "/$path" >>"$W/paths"
    done
    local one; one=$(head -1 "$W/paths")
    # The API's download URL for that build is the same path.
    curl -sf "$BASE/api/v1/packages/${one##*/}" | grep -q "\"qa\":\"$BASE$one\"" ||
        PROBLEMS+=("the API's download URL for ${one##*/} is not $BASE$one")
    cat >"$W/rotate.lua" <<EOF
local paths = {}
for line in io.lines("$W/paths") do paths[#paths + 1] = line end
local i = 0
request = function()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end
EOF
    cat >"$ng/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $ng/nginx.pid;
error_log $ng/logs/error.log warn;
events { worker_connections 1024; }
http {
    types { application/x-rpm rpm; text/xml xml; application/pgp-signature asc; }
    default_type application/octet-stream;
    access_log $ng/logs/access.log;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $ng/tmp/body;
    proxy_temp_path $ng/tmp/proxy;
    fastcgi_temp_path $ng/tmp/fastcgi;
    uwsgi_temp_path $ng/tmp/uwsgi;
    scgi_temp_path $ng/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $root;
    }
}
EOF
    local run_as=()
    if (( $(id -u) == 0 )); then
        # Unprivileged: nginx runs as nobody, so the tree must be readable by it.
        chmod 755 "$W"
        chmod -R a+rX "$root"
        chown -R nobody "$ng/logs" "$ng/tmp"
        chmod 777 "$ng"
        run_as=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
    fi
    "${run_as[@]}" "$NGINX" -p "$ng" -c "$ng/nginx.conf" -e "$ng/logs/error.log" >"$ng/logs/stdout" 2>&1 &
    NGINX_PID=$!
    for i in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT$one" && break
        kill -0 "$NGINX_PID" 2>/dev/null || { cat "$ng/logs/"* >&2; echo "nginx died" >&2; exit 1; }
        sleep 0.1
    done
    # Same bytes on both sides.
    for path in "$one" "$(tail -1 "$W/paths")" /rpm/qa/repodata/repomd.xml; do
        cmp -s <(curl -sf "$BASE$path") <(curl -sf "http://127.0.0.1:$NGINX_PORT$path") ||
            PROBLEMS+=("Forklift and nginx serve different bytes for $path")
    done
    local size; size=$(stat -c %s "$W/rpms/${one##*/}")
    local cpu0 hwm f_one n_one f_many n_many
    log "serving: wrk $WRK_ARGS, one file of $size bytes, $count files rotated"
    cpu0=$(cpu_secs "$SERVER_PID")
    wrk_run "Forklift: one package file (${size} B)" "$BASE$one"; f_one=$WRK_RPS
    wrk_run "nginx: one package file" "http://127.0.0.1:$NGINX_PORT$one"; n_one=$WRK_RPS
    wrk_run "Forklift: $count package files rotated (Lua)" "$BASE" "$W/rotate.lua"; f_many=$WRK_RPS
    wrk_run "nginx: $count package files rotated (Lua)" "http://127.0.0.1:$NGINX_PORT" "$W/rotate.lua"; n_many=$WRK_RPS
    wrk_run "Forklift: repomd.xml ($n-package channel)" "$BASE/rpm/qa/repodata/repomd.xml"; local f_md=$WRK_RPS
    wrk_run "nginx: repomd.xml (same bytes)" "http://127.0.0.1:$NGINX_PORT/rpm/qa/repodata/repomd.xml"; local n_md=$WRK_RPS
    # Diagnostic: a new connection per request (no keep-alive), same files.
    wrk_run "Forklift: $count package files rotated, Connection: close" "$BASE" "$W/rotate.lua" -H "Connection: close"; local f_close=$WRK_RPS
    wrk_run "nginx: $count package files rotated, Connection: close" "http://127.0.0.1:$NGINX_PORT" "$W/rotate.lua" -H "Connection: close"; local n_close=$WRK_RPS
    hwm=$(status_kib "$SERVER_PID" VmHWM)
    local cpu_serv; cpu_serv=$(calc 1 "$(cpu_secs "$SERVER_PID") - $cpu0")
    stop_nginx
    # Diagnostic: the same Forklift runs with TCP_NODELAY set on every accepted
    # socket by an LD_PRELOAD shim (the server code is not changed).
    if [[ $NODELAY_DIAG == 1 ]] && command -v cc >/dev/null; then
        cat >"$W/nodelay.c" <<'EOF_C'
/* LD_PRELOAD diagnostic for bench/publish.sh: TCP_NODELAY on every accepted socket. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int s = real(fd, addr, len, flags);
    if (s >= 0) { int one = 1; setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
    return s;
}
EOF_C
        cc -O2 -shared -fPIC -o "$W/nodelay.so" "$W/nodelay.c" -ldl
        stop_server
        PRELOAD="$W/nodelay.so" start_server "$data" "$slog"
        log "serving: Forklift restarted with the TCP_NODELAY shim"
        wrk_run "Forklift + TCP_NODELAY shim: one package file" "$BASE$one"; local d_one=$WRK_RPS
        wrk_run "Forklift + TCP_NODELAY shim: $count package files rotated (Lua)" "$BASE" "$W/rotate.lua"; local d_many=$WRK_RPS
        wrk_run "Forklift + TCP_NODELAY shim: repomd.xml" "$BASE/rpm/qa/repodata/repomd.xml"; local d_md=$WRK_RPS
        NODELAY_SUMMARY=("| one package file, Forklift with TCP_NODELAY (diagnostic) | $d_one | $n_one | $(calc 0 "100 * $d_one / $n_one")% |"
            "| $count package files rotated, Forklift with TCP_NODELAY (diagnostic) | $d_many | $n_many | $(calc 0 "100 * $d_many / $n_many")% |"
            "| repomd.xml, Forklift with TCP_NODELAY (diagnostic) | $d_md | $n_md | $(calc 0 "100 * $d_md / $n_md")% |")
    fi
    SERVE_SUMMARY=("| one package file | $f_one | $n_one | $(calc 0 "100 * $f_one / $n_one")% |"
        "| $count package files rotated | $f_many | $n_many | $(calc 0 "100 * $f_many / $n_many")% |"
        "| repomd.xml | $f_md | $n_md | $(calc 0 "100 * $f_md / $n_md")% |"
        "| $count package files rotated, new connection per request (diagnostic) | $f_close | $n_close | $(calc 0 "100 * $f_close / $n_close")% |")
    NOTES+=("Serving: Forklift used $cpu_serv s of CPU during the wrk runs against it without the shim (it idles during nginx's); Forklift VmHWM after serving $(mib "$hwm") MiB; nginx $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), worker_processes auto ($(nproc)), sendfile on, access log on; Forklift's access log on (stderr to a file)")
}

# ---------------------------------------------------------------------------
SERVE_SUMMARY=()
NODELAY_SUMMARY=()
STEP_FAIL=
PRELOAD=
for n in $RPM_N_LIST; do
    forklift_run rpm "$n"
    createrepo_run "$n"
    SUMMARY+=("| RPM | $n | ${F_ONE[rpm-$n]} (request ${F_ONE_REQ[rpm-$n]}) | createrepo_c --update ${C_UPD[$n]} (+ sign ${C_SIGN[$n]}) | $(calc 3 "${F_ONE[rpm-$n]} / ${C_UPD[$n]}") | ${F_COLD[rpm-$n]} | ${F_FIRST[rpm-$n]}$( (( ${F_FIRST_REQS[rpm-$n]} > 1 )) && echo " (${F_FIRST_REQS[rpm-$n]} requests)" || true) | createrepo_c ${C_FULL[$n]} | $(calc 2 "${F_FIRST[rpm-$n]} / ${C_FULL[$n]}") | ${F_STAGING[rpm-$n]} | ${F_HWM[rpm-$n]} / ${F_RSS[rpm-$n]} |")
done
for n in $DEB_N_LIST; do
    forklift_run deb "$n"
    aptly_run "$n"
    SUMMARY+=("| .deb | $n | ${F_ONE[deb-$n]} (request ${F_ONE_REQ[deb-$n]}) | aptly repo add 1 + publish update ${A_ADD1[$n]} + ${A_UPD[$n]} (lean ${A_UPDL[$n]}) | $(calc 3 "${F_ONE[deb-$n]} / (${A_ADD1[$n]} + ${A_UPD[$n]})") | ${F_COLD[deb-$n]} | ${F_FIRST[deb-$n]}$( (( ${F_FIRST_REQS[deb-$n]} > 1 )) && echo " (${F_FIRST_REQS[deb-$n]} requests)" || true) | aptly publish repo ${A_PUB[$n]} (lean ${A_PUBL[$n]}) | $(calc 2 "${F_FIRST[deb-$n]} / ${A_PUB[$n]}") | ${F_STAGING[deb-$n]} | ${F_HWM[deb-$n]} / ${F_RSS[deb-$n]} |")
done

# ---------------------------------------------------------------------------
echo
echo "## Publication: one change vs the whole store ($(nproc) cores, $CPU_MODEL)"
echo
echo "Code: $CODE. createrepo_c $(createrepo_c --version 2>/dev/null | head -1 | sed 's/^Version: //'); $(command -v aptly >/dev/null && aptly version); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2). REPS=$REPS, CONCURRENCY=$CONCURRENCY×$BATCH, ${SIZE_KB} KiB payloads."
echo
echo "| kind | N | one change: Forklift s (median) | reference s (median) | Forklift/reference | Forklift one change after restart | first publication: Forklift s | reference s | Forklift/reference | Forklift first publication, cached pieces | Forklift VmHWM / VmRSS after, MiB |"
echo "|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|"
printf '%s\n' "${SUMMARY[@]}"
echo
echo "| kind | N | system | step | seconds | CPU s | peak RSS, MiB | RSS after, MiB | load before |"
echo "|---|---:|---|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
if (( ${#SERVE_ROWS[@]} )); then
    echo
    echo "### Serving (wrk $WRK_ARGS, loopback)"
    echo
    echo "| target | requests/s | transfer/s | p50 latency | p99 latency | non-2xx | load before |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${SERVE_ROWS[@]}"
    echo
    echo "| what | Forklift req/s | nginx req/s | Forklift / nginx |"
    echo "|---|---:|---:|---:|"
    printf '%s\n' "${SERVE_SUMMARY[@]}"
    (( ${#NODELAY_SUMMARY[@]} )) && printf '%s\n' "${NODELAY_SUMMARY[@]}"
fi
echo
(( ${#NOTES[@]} )) && printf -- '- %s\n' "${NOTES[@]}"
echo
if (( ${#PROBLEMS[@]} )); then
    echo "### Problems seen"
    echo
    printf -- '- %s\n' "${PROBLEMS[@]}"
else
    echo "All served metadata verified; no WARN/ERROR lines and no non-2xx responses in the server logs; wrk saw no errors."
fi
