#!/usr/bin/env bash
# apt publication benchmark: Forklift against aptly on the same .debs. See
# docs/benchmarks.md ("apt publication: Forklift vs aptly") for results.
#
#   bash bench/apt.sh
#
# What it does, all on loopback and in one temporary directory:
#   1. installs aptly with apt-get if it is missing (through sudo when not root),
#      builds target/release/forklift and the gendebs example (separately, like
#      bench/ingest.sh);
#   2. generates N+1 small distinct .debs (examples/gendebs.rs); spot-checks the
#      first and the last with dpkg-deb;
#   3. Forklift: starts a fresh server (default SQLite; the first start generates
#      the RSA-4096 signing key, before any timing; a random throwaway admin token
#      in FORKLIFT_ADMIN_TOKEN, sent as "Authorization: Bearer" on every write,
#      from a header file so it is on no command line), uploads the first N files
#      without ?channel (stored only; CONCURRENCY curl processes, BATCH files
#      each over one keep-alive connection), then
#        - "bulk add": POST /api/v1/channels/qa/promote {"packages":[N file
#          names]} (one revision), timed from the request until GET
#          /deb/dists/qa/InRelease returns a new signed InRelease (polled, bounded);
#        - "add one": PUT the extra .deb with ?channel=qa, timed the same way;
#      checks that the served Packages lists N, then N+1 stanzas and that InRelease
#      verifies with gpgv against /keys/forklift.asc; reads the server's CPU time
#      and peak RSS (VmHWM) from /proc;
#   4. aptly on the same files, in its own rootDir (aptly.conf written here,
#      passed with -config=) and a throwaway RSA-4096 GPG key in a temporary
#      GNUPGHOME (no passphrase): `aptly repo create`, then timed
#      `aptly repo add` of the N files and `aptly publish repo -distribution=qa`
#      (the full publish), then `aptly repo add` of the extra file and
#      `aptly publish update qa`. Every publication is signed (InRelease +
#      Release.gpg). This is done for two publications of the same repo:
#        - "defaults": aptly's defaults (Packages, .gz, .bz2 and Contents indexes);
#        - "lean" (prefix lean/): -skip-contents -skip-bz2 -acquire-by-hash, the
#          closest to what Forklift writes (Packages, .gz, by-hash; Forklift wrote
#          a Packages.xz too before e4e1b2c);
#      each aptly command's wall time, CPU and max RSS come from /usr/bin/time.
# Prints a markdown table at the end. Everything is removed on exit unless KEEP=1.
#
# Needs curl, gpg, gpgv, dpkg-deb, /usr/bin/time and apt-get (for aptly); about
# 1 GiB free in WORK for N=10000. Takes about 65 s after the build for N=10000
# on 2 cores, plus removing ~90,000 files at exit (13 s to minutes on ext4
# without a journal). Other load on the machine moves the numbers: the "load
# before" column shows the 1-minute load average.
#
# Settings (environment):
#   N=10000              packages in the full publication (N+1 are generated)
#   CONCURRENCY=4        parallel curl processes for the Forklift uploads
#   BATCH=50             files per curl process (one connection, sequential PUTs)
#   SIZE_KB=8            size of each package's /usr/bin file (incompressible)
#   MAX_JSON=60000       bytes per bulk-add request body if the server refuses
#                        the single request; the fallback is reported. Since
#                        c085235 the bulk endpoint accepts 8 MiB of JSON, so the
#                        single request is accepted (it used to be refused above
#                        64 KiB, i.e. for N > ~1,900)
#   APTLY_LEAN=1         0 skips the "lean" aptly publication
#   PORT=random          loopback port for the server
#   WORK=                parent directory for the temporary tree [default: $TMPDIR or /tmp]
#   KEEP=0               1 keeps the temporary tree (logs, data dirs) for inspection
#   SKIP_BUILD=0         1 uses the existing target/release binaries
set -euo pipefail

N=${N:-10000}
CONCURRENCY=${CONCURRENCY:-4}
BATCH=${BATCH:-50}
SIZE_KB=${SIZE_KB:-8}
MAX_JSON=${MAX_JSON:-60000}
APTLY_LEAN=${APTLY_LEAN:-1}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
KEEP=${KEEP:-0}
SKIP_BUILD=${SKIP_BUILD:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if ! command -v aptly >/dev/null; then
    log "installing aptly with apt-get"
    SUDO=
    (( $(id -u) == 0 )) || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq aptly >&2
fi
for tool in curl gpg gpgv dpkg-deb aptly /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "apt.sh: $tool is required" >&2; exit 2; }
done

W=$(mktemp -d "${WORK:-${TMPDIR:-/tmp}}/forklift-apt-bench.XXXXXX")
SERVER_PID=
BASE="http://127.0.0.1:$PORT"
export GNUPGHOME="$W/gnupg"
# Every write needs a token: a throwaway admin token for this server only, sent
# from a header file so that it is on no command line.
TOKEN="bench-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
AUTH_HDR="$W/auth.header"
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$AUTH_HDR"
chmod 600 "$AUTH_HDR"

cleanup() {
    stop_server || true
    if [[ -d $GNUPGHOME ]]; then
        gpgconf --kill gpg-agent >/dev/null 2>&1 || true
    fi
    if [[ $KEEP == 1 ]]; then
        echo "kept $W" >&2
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
# Arithmetic with decimals, printed with $1 decimals.
calc() { local p=$1; shift; awk "BEGIN { printf \"%.${p}f\", $* }"; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# Server CPU seconds (user + system) so far, 2 decimals.
cpu_secs() {
    local tck; tck=$(getconf CLK_TCK)
    awk -v t="$tck" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"
}

start_server() { # DATA_DIR LOG
    mkdir -p "$1"
    FORKLIFT_ADMIN_TOKEN=$TOKEN target/release/forklift serve \
        --listen "127.0.0.1:$PORT" --data-dir "$1" >"$2" 2>&1 &
    SERVER_PID=$!
    local i
    # The first start generates an RSA-4096 key: allow up to 60 s.
    for i in $(seq 1 600); do
        if curl -sf -o /dev/null "$BASE/healthz"; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$2" >&2; echo "server died" >&2; exit 1; }
        sleep 0.1
    done
    echo "server did not answer /healthz within 60s" >&2
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

# Polls the suite's InRelease until it differs from the file PREV (a new
# publication) and saves it to OUT. Bounded: 3000 × 20 ms = 60 s at most.
wait_inrelease() { # PREV OUT
    local i
    for i in $(seq 1 3000); do
        if curl -sf -o "$2" "$BASE/deb/dists/qa/InRelease" && ! cmp -s "$1" "$2"; then
            return 0
        fi
        sleep 0.02
    done
    echo "no new InRelease within 60 s" >&2
    return 1
}

inrelease_date() { sed -n 's/^Date: //p' "$1"; }

# Checks that the served suite lists $1 packages and that InRelease verifies
# against the server's public key.
check_suite() { # EXPECTED_N INRELEASE WHAT
    local got
    got=$(curl -sf "$BASE/deb/dists/qa/main/binary-amd64/Packages" | grep -c '^Package: ' || true)
    [[ $got == "$1" ]] || { echo "$3: served Packages lists $got packages, expected $1" >&2; exit 1; }
    gpgv --keyring "$W/forklift.gpg" "$2" 2>"$W/gpgv.out" ||
        { cat "$W/gpgv.out" >&2; echo "$3: InRelease does not verify" >&2; exit 1; }
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
        PROBLEMS+=("$2: $bad non-2xx responses in the access log: $(grep -E 'HTTP/1.1" [45][0-9][0-9] ' "$1" | sed 's/\x1b\[[0-9;]*m//g; s/^.*127.0.0.1 //' | sort | uniq -c | sort -rn | head -3 | tr -s ' ' | paste -sd ';')")
    fi
}

ROWS=()
PROBLEMS=()
NOTES=()
row() { ROWS+=("| $(IFS='|'; echo "$*" | sed 's/|/ | /g') |"); }

# ---------------------------------------------------------------------------
log "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2/1048576 }' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load $(loadavg)"
log "work dir $W, port $PORT, N=$N, concurrency $CONCURRENCY × batch $BATCH, $(aptly version)"

if [[ $SKIP_BUILD != 1 ]]; then
    log "building (release)"
    cargo build --release --bin forklift
    cargo build --release --example gendebs
fi
GEN=target/release/examples/gendebs

TOTAL=$((N + 1))
log "generating $TOTAL packages of ~${SIZE_KB} KiB"
t0=$(now)
"$GEN" --count "$TOTAL" --out "$W/debs" --size-kb "$SIZE_KB"
log "generated in $(calc 1 "$(now) - $t0")s, $(du -sh "$W/debs" | cut -f1)"
debname() { printf 'bench-deb-%05d_1.0-1_amd64.deb' "$1"; }
EXTRA="$W/extra/$(debname "$TOTAL")"
mkdir -p "$W/set" "$W/extra"
mv "$W/debs/$(debname "$TOTAL")" "$EXTRA"
find "$W/debs" -maxdepth 1 -name '*.deb' -print0 | xargs -0 -r ln -t "$W/set"
dpkg-deb --info "$W/set/$(debname 1)" control >/dev/null
dpkg-deb --contents "$EXTRA" >/dev/null
[[ $(find "$W/set" -name '*.deb' | wc -l) == "$N" ]] || { echo "expected $N files in $W/set" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Forklift
DATA="$W/forklift-data"
SLOG="$W/server.log"
log "forklift: starting (first start generates the signing key)"
t0=$(now)
start_server "$DATA" "$SLOG"
log "forklift: up in $(calc 1 "$(now) - $t0")s"
F_CPU0=$(cpu_secs "$SERVER_PID")
curl -sf "$BASE/keys/forklift.asc" | gpg --dearmor >"$W/forklift.gpg"
curl -sf -o "$W/inrelease-0" "$BASE/deb/dists/qa/InRelease"

# Upload the N files (no channel: stored only).
load=$(loadavg)
cpu0=$(cpu_secs "$SERVER_PID")
log "forklift: uploading $N .debs (load $load)"
export BASE AUTH_HDR
t0=$(now)
find "$W/set" -maxdepth 1 -name '*.deb' -print0 |
    xargs -0 -r -P "$CONCURRENCY" -n "$BATCH" bash -c '
        args=()
        for f; do args+=(-T "$f" -o /dev/null "$BASE/api/v1/packages/${f##*/}"); done
        exec curl -sS --max-time 600 -H "@$AUTH_HDR" -w "%{http_code}\n" "${args[@]}"
    ' _ >"$W/codes" 2>>"$W/curl.err"
secs=$(calc 3 "$(now) - $t0")
ok=$(grep -c '^201$' "$W/codes" || true)
[[ $ok == "$N" ]] || { echo "upload: expected $N × 201, got:" >&2; sort "$W/codes" | uniq -c >&2; exit 1; }
cpu1=$(cpu_secs "$SERVER_PID")
hwm_up=$(status_kib "$SERVER_PID" VmHWM)
row "Forklift" "upload $N .debs (PUT, no channel; $CONCURRENCY×$BATCH curl)" 0 "$secs" \
    "$(calc 2 "$cpu1 - $cpu0")" "$(calc 1 "$hwm_up / 1024")" "$load"
F_UP=$secs
log "forklift: uploaded in ${secs}s ($(calc 0 "$N / $secs")/s)"

# Bulk add: one request listing every file name; if the server refuses a body
# that large, fall back to requests of at most MAX_JSON bytes (several revisions).
find "$W/set" -maxdepth 1 -name '*.deb' -printf '%f\n' | sort >"$W/names"
awk 'BEGIN { printf "{\"packages\":[" } NR > 1 { printf "," } { printf "\"%s\"", $0 } END { printf "]}" }' \
    "$W/names" >"$W/bulk.json"
load=$(loadavg)
cpu0=$(cpu_secs "$SERVER_PID")
log "forklift: bulk add of $N into qa ($(stat -c %s "$W/bulk.json") bytes of JSON, load $load)"
REQUESTS=1
t0=$(now)
code=$(curl -sS --max-time 600 -o "$W/bulk.out" -w '%{http_code}' \
    -H "@$AUTH_HDR" -H 'Content-Type: application/json' --data-binary "@$W/bulk.json" \
    "$BASE/api/v1/channels/qa/promote")
if [[ $code != 200 ]]; then
    t_fail=$(calc 3 "$(now) - $t0")
    PROBLEMS+=("bulk add of $N names in one request ($(stat -c %s "$W/bulk.json") bytes of JSON): HTTP $code after ${t_fail}s: $(head -c 200 "$W/bulk.out"); fell back to requests of ≤ $MAX_JSON bytes")
    log "forklift: single bulk request refused (HTTP $code: $(head -c 200 "$W/bulk.out")); splitting"
    rm -f "$W"/chunk-*
    awk -v max="$MAX_JSON" -v dir="$W" '
        function flush() { if (n) { printf "]}" > f; close(f) } }
        {
            item = "\"" $0 "\""
            if (n == 0 || size + length(item) + 3 > max) {
                flush(); k++; f = sprintf("%s/chunk-%04d.json", dir, k)
                printf "{\"packages\":[%s", item > f; size = 14 + length(item); n = 1
            } else { printf ",%s", item > f; size += length(item) + 1; n++ }
        }
        END { flush() }' "$W/names"
    REQUESTS=0
    t0=$(now)
    for chunk in "$W"/chunk-*.json; do
        code=$(curl -sS --max-time 600 -o "$W/bulk.out" -w '%{http_code}' \
            -H "@$AUTH_HDR" -H 'Content-Type: application/json' --data-binary "@$chunk" \
            "$BASE/api/v1/channels/qa/promote")
        [[ $code == 200 ]] || { echo "bulk add chunk ${chunk##*/}: HTTP $code: $(head -c 500 "$W/bulk.out")" >&2; exit 1; }
        REQUESTS=$((REQUESTS + 1))
    done
fi
wait_inrelease "$W/inrelease-0" "$W/inrelease-1"
secs=$(calc 3 "$(now) - $t0")
cpu1=$(cpu_secs "$SERVER_PID")
hwm_bulk=$(status_kib "$SERVER_PID" VmHWM)
check_suite "$N" "$W/inrelease-1" "bulk add"
what="bulk add $N into qa → new signed InRelease"
(( REQUESTS > 1 )) && what="$what (**$REQUESTS requests/revisions**: the single request was refused)"
row "Forklift" "$what" "$N" "**$secs**" "$(calc 2 "$cpu1 - $cpu0")" "$(calc 1 "$hwm_bulk / 1024")" "$load"
F_BULK=$secs
log "forklift: bulk add in ${secs}s ($REQUESTS request(s)), InRelease Date $(inrelease_date "$W/inrelease-1")"

# One more package, uploaded straight into qa.
load=$(loadavg)
cpu0=$(cpu_secs "$SERVER_PID")
log "forklift: adding one package (load $load)"
t0=$(now)
code=$(curl -sS --max-time 600 -o "$W/one.out" -w '%{http_code}' -H "@$AUTH_HDR" -T "$EXTRA" \
    "$BASE/api/v1/packages/${EXTRA##*/}?channel=qa")
[[ $code == 201 ]] || { echo "add one: HTTP $code: $(head -c 500 "$W/one.out")" >&2; exit 1; }
wait_inrelease "$W/inrelease-1" "$W/inrelease-2"
secs=$(calc 3 "$(now) - $t0")
cpu1=$(cpu_secs "$SERVER_PID")
hwm=$(status_kib "$SERVER_PID" VmHWM)
check_suite "$TOTAL" "$W/inrelease-2" "add one"
row "Forklift" "upload 1 .deb with ?channel=qa → new signed InRelease" "$TOTAL" "**$secs**" \
    "$(calc 2 "$cpu1 - $cpu0")" "$(calc 1 "$hwm / 1024")" "$load"
F_ONE=$secs
log "forklift: one package in ${secs}s, InRelease Date $(inrelease_date "$W/inrelease-2")"
# Sizes of what was served, for the report: the indexes that Release lists
# (Packages.xz only before e4e1b2c).
for f in Packages Packages.gz Packages.xz; do
    if grep -q " main/binary-amd64/$f\$" "$W/inrelease-2"; then
        curl -sf -o "$W/index.$f" "$BASE/deb/dists/qa/main/binary-amd64/$f"
        NOTES+=("Forklift $f for $TOTAL packages: $(calc 2 "$(stat -c %s "$W/index.$f") / 1048576") MiB")
    else
        NOTES+=("Forklift's Release lists no $f")
    fi
done
F_HWM=$(calc 1 "$hwm / 1024")
F_CPU=$(calc 2 "$(cpu_secs "$SERVER_PID") - $F_CPU0")
stop_server
log_problems "$SLOG" "forklift"

# ---------------------------------------------------------------------------
# aptly
log "aptly: generating a throwaway RSA-4096 GPG key"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'Aptly Bench <aptly-bench@example.invalid>' rsa4096 sign never 2>"$W/gpg.err"
KEYID=$(gpg --batch --with-colons --list-secret-keys 2>>"$W/gpg.err" | awk -F: '$1 == "fpr" { print $10; exit }')
gpg --batch --export "$KEYID" >"$W/aptly.gpg"
cat >"$W/aptly.conf" <<EOF
{
  "rootDir": "$W/aptly",
  "architectures": ["amd64"],
  "gpgProvider": "gpg",
  "downloadConcurrency": 4
}
EOF
A=(aptly "-config=$W/aptly.conf")
SIGN=("-gpg-key=$KEYID" -batch)

# Runs an aptly command under /usr/bin/time; adds a table row.
# Prints nothing; sets LAST_SECS.
aptly_step() { # LABEL SUITE_N ARGS...
    local label=$1 n=$2 load out
    shift 2
    load=$(loadavg)
    out="$W/time.$RANDOM"
    log "aptly: $label (load $load)"
    if ! /usr/bin/time -f '%e %U %S %M' -o "$out" "${A[@]}" "$@" >"$W/aptly.log" 2>&1; then
        tail -20 "$W/aptly.log" >&2
        echo "aptly $label failed" >&2
        exit 1
    fi
    read -r LAST_SECS u s m <"$out"
    row "aptly" "$label" "$n" "**$LAST_SECS**" "$(calc 2 "$u + $s")" "$(calc 1 "$m / 1024")" "$load"
    log "aptly: $label: ${LAST_SECS}s"
}

check_aptly() { # PREFIX_DIR EXPECTED_N WHAT
    local d="$W/aptly/public/$1/dists/qa" got
    got=$(grep -c '^Package: ' "$d/main/binary-amd64/Packages" || true)
    [[ $got == "$2" ]] || { echo "$3: aptly Packages lists $got packages, expected $2" >&2; exit 1; }
    gpgv --keyring "$W/aptly.gpg" "$d/InRelease" 2>"$W/gpgv.out" ||
        { cat "$W/gpgv.out" >&2; echo "$3: aptly InRelease does not verify" >&2; exit 1; }
}

"${A[@]}" repo create -distribution=qa -component=main bench >/dev/null
aptly_step "repo add $N .debs" 0 repo add bench "$W/set"
A_ADD=$LAST_SECS
aptly_step "publish repo -distribution=qa (defaults: +bz2, +Contents)" "$N" \
    publish repo -distribution=qa -architectures=amd64 "${SIGN[@]}" bench
A_PUB=$LAST_SECS
check_aptly . "$N" "aptly publish"
A_PUB_LEAN=
if [[ $APTLY_LEAN == 1 ]]; then
    aptly_step "publish repo … -skip-contents -skip-bz2 -acquire-by-hash (lean/)" "$N" \
        publish repo -distribution=qa -architectures=amd64 -skip-contents -skip-bz2 \
        -acquire-by-hash "${SIGN[@]}" bench lean
    A_PUB_LEAN=$LAST_SECS
    check_aptly lean "$N" "aptly publish (lean)"
fi
aptly_step "repo add 1 .deb" "$N" repo add bench "$EXTRA"
A_ADD1=$LAST_SECS
aptly_step "publish update qa (defaults)" "$TOTAL" publish update "${SIGN[@]}" qa
A_UPD=$LAST_SECS
check_aptly . "$TOTAL" "aptly publish update"
A_UPD_LEAN=
if [[ $APTLY_LEAN == 1 ]]; then
    aptly_step "publish update qa lean" "$TOTAL" publish update -skip-contents -skip-bz2 "${SIGN[@]}" qa lean
    A_UPD_LEAN=$LAST_SECS
    check_aptly lean "$TOTAL" "aptly publish update (lean)"
fi
for f in Packages Packages.gz Packages.bz2; do
    p="$W/aptly/public/dists/qa/main/binary-amd64/$f"
    [[ -f $p ]] && NOTES+=("aptly $f for $TOTAL packages: $(calc 2 "$(stat -c %s "$p") / 1048576") MiB")
done

# ---------------------------------------------------------------------------
ratio() { calc 2 "$1 / $2"; }
echo
echo "## apt publication, N=$N ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(aptly version))"
echo
echo "| system | step | packages in suite after | seconds | CPU s | peak RSS, MiB | load before |"
echo "|---|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Forklift server: $F_CPU s CPU after start-up (key generation excluded), peak RSS (VmHWM) $F_HWM MiB."
echo
echo "| comparison | Forklift | aptly (defaults) | aptly (lean) |"
echo "|---|---:|---:|---:|"
echo "| full publish of $N (Forklift bulk add vs aptly publish repo) | $F_BULK | $A_PUB ($(ratio "$F_BULK" "$A_PUB")×) | ${A_PUB_LEAN:-–}${A_PUB_LEAN:+ ($(ratio "$F_BULK" "$A_PUB_LEAN")×)} |"
fl_total=$(calc 3 "$F_UP + $F_BULK")
ap_total=$(calc 3 "$A_ADD + $A_PUB")
ap_total_lean=${A_PUB_LEAN:+$(calc 3 "$A_ADD + $A_PUB_LEAN")}
echo "| files → signed suite (upload + bulk add vs repo add + publish) | $fl_total | $ap_total ($(ratio "$fl_total" "$ap_total")×) | ${ap_total_lean:-–}${ap_total_lean:+ ($(ratio "$fl_total" "$ap_total_lean")×)} |"
echo "| one-package update (Forklift upload ?channel=qa vs aptly publish update alone) | $F_ONE | $A_UPD ($(ratio "$F_ONE" "$A_UPD")×) | ${A_UPD_LEAN:-–}${A_UPD_LEAN:+ ($(ratio "$F_ONE" "$A_UPD_LEAN")×)} |"
up1=$(calc 3 "$A_ADD1 + $A_UPD")
up1_lean=${A_UPD_LEAN:+$(calc 3 "$A_ADD1 + $A_UPD_LEAN")}
echo "| one-package update (Forklift upload ?channel=qa vs repo add 1 + publish update) | $F_ONE | $up1 ($(ratio "$F_ONE" "$up1")×) | ${up1_lean:-–}${up1_lean:+ ($(ratio "$F_ONE" "$up1_lean")×)} |"
echo
echo "(×: Forklift's time divided by aptly's; below 1 means Forklift is faster.)"
echo
printf -- '- %s\n' "${NOTES[@]}"
echo
if (( ${#PROBLEMS[@]} )); then
    echo "## Problems seen"
    echo
    printf -- '- %s\n' "${PROBLEMS[@]}"
else
    echo "No WARN/ERROR lines and no non-2xx responses in the server log."
fi
