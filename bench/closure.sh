#!/usr/bin/env bash
# Promotion with the dependency closure gate on and off, at N packages. See
# docs/benchmarks.md ("Dependency closure gate") for results.
#
#   bash bench/closure.sh            # N=10000, REPS=5
#
# What it does, on loopback in one temporary directory:
#   1. builds target/release/forklift and the genrpms example (separately, like
#      bench/ingest.sh); generates N + 2×REPS RPMs (each requires bash >= 4.0
#      and /bin/sh, which the server is told the base system has);
#   2. starts Forklift (SQLite) with `[policies.staging] check_dependencies =
#      true`, stores every file without ?channel, bulk-promotes all of them into
#      qa in one request;
#   3. times (curl's time_total, the request alone: it returns once the revision
#      is committed):
#        - (b) the first N promoted from qa into the empty staging channel in one
#          bulk request, the gate judging all N;
#        - (a) REPS single promotions of one more build into the N-package
#          staging channel, gate on (median);
#        - (b off) the same N from staging into the empty prod channel, whose
#          policy does not check: the same publication without the gate;
#        - (a off) the same single promotions with `PUT /channels/staging/policy
#          {}` (gate off), in turn with the gated ones;
#        - (r) one refused promotion: a build whose requirement nothing meets
#          (uploaded for the purpose), 422 dependencies_unsatisfied.
#      Between promotions it waits 1.1 s, so a channel's one-revision-per-second
#      rule never makes one wait.
# Prints a markdown table. Everything is removed on exit unless KEEP=1.
#
# Settings (environment): N=10000, REPS=5, PORT=random, WORK=/tmp.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10000}
REPS=${REPS:-5}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
W=$(mktemp -d "${WORK:-/tmp}/forklift-closure.XXXXXX")
BASE="http://127.0.0.1:$PORT"
TOKEN="fkl_bench_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
AUTH_HDR="$W/auth.hdr"
printf 'Authorization: Bearer %s\n' "$TOKEN" >"$AUTH_HDR"
SERVER_PID=

cleanup() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null || true
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$W"
}
trap cleanup EXIT

cargo build --release --bin forklift >&2
cargo build --release --example genrpms >&2
target/release/examples/genrpms --count "$((N + 2 * REPS))" --out "$W/rpms" >&2

cat >"$W/forklift.toml" <<EOF
scheduler_tick = "0s"
external_capabilities = ["bash", "/bin/sh"]

[policies.staging]
check_dependencies = true
EOF

env FORKLIFT_ADMIN_TOKEN="$TOKEN" target/release/forklift serve --config "$W/forklift.toml" \
    --listen "127.0.0.1:$PORT" --data-dir "$W/data" >>"$W/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 1200); do
    curl -sf -o /dev/null "$BASE/healthz" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$W/server.log" >&2; exit 1; }
    sleep 0.1
done

ls "$W/rpms" | sort >"$W/names"
export BASE AUTH_HDR W
tr '\n' '\0' <"$W/names" | xargs -0 -r -P 4 -n 50 bash -c '
    args=()
    for f; do args+=(-T "$W/rpms/$f" -o /dev/null "$BASE/api/v1/packages/$f"); done
    exec curl -sS --max-time 600 -H "@$AUTH_HDR" "${args[@]}"
' _

body() { # FILE NAMES... : a bulk promotion body
    local f=$1
    shift
    printf '%s\n' "$@" | python3 -c 'import json, sys; print(json.dumps({"packages": sys.stdin.read().split()}))' >"$f"
}
post() { # PATH BODY_FILE -> "status seconds"
    curl -sS -o "$W/last.json" -w '%{http_code} %{time_total}\n' -H "@$AUTH_HDR" \
        -H 'Content-Type: application/json' --data-binary "@$2" "$BASE$1"
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

mapfile -t ALL <"$W/names"
FIRST=("${ALL[@]:0:N}")
EXTRA=("${ALL[@]:N}")
body "$W/all.json" "${ALL[@]}"
read -r code _ < <(post /api/v1/channels/qa/promote "$W/all.json")
[[ $code == 200 ]] || { cat "$W/last.json" >&2; exit 1; }
sleep 1.1

body "$W/first.json" "${FIRST[@]}"
read -r code b < <(post /api/v1/channels/staging/promote "$W/first.json")
[[ $code == 200 ]] || { cat "$W/last.json" >&2; exit 1; }

one() { # NAME -> seconds
    sleep 1.1
    printf '{"to":"staging"}' >"$W/one.json"
    local code s
    read -r code s < <(post "/api/v1/packages/$1/promote" "$W/one.json")
    [[ $code == 200 ]] || { cat "$W/last.json" >&2; exit 1; }
    echo "$s"
}
# The same N builds from staging into prod, whose policy does not check: (b off).
sleep 1.1
read -r code boff < <(post /api/v1/channels/prod/promote "$W/first.json")
[[ $code == 200 ]] || { cat "$W/last.json" >&2; exit 1; }

policy() { # BODY: replaces staging's policy
    printf '%s' "$1" >"$W/policy.json"
    curl -sS -o /dev/null -X PUT -H "@$AUTH_HDR" --data-binary "@$W/policy.json" \
        "$BASE/api/v1/channels/staging/policy"
}
# On and off in turn, so drifting load on the machine hits both alike.
on=()
off=()
for i in $(seq 0 $((REPS - 1))); do
    policy '{"check_dependencies":true}'
    on+=("$(one "${EXTRA[$((2 * i))]}")")
    policy '{}'
    off+=("$(one "${EXTRA[$((2 * i + 1))]}")")
done

# A refused promotion: gate on again, a build requiring what nothing provides.
policy '{"check_dependencies":true}'
refused="–"
if [[ -f fixtures/rpms/forklift-demo-1.1-1.x86_64.rpm ]]; then
    curl -sS -o /dev/null -H "@$AUTH_HDR" -T fixtures/rpms/forklift-demo-1.1-1.x86_64.rpm \
        "$BASE/api/v1/packages/forklift-demo-1.1-1.x86_64.rpm?channel=qa"
    sleep 1.1
    printf '{"to":"staging"}' >"$W/one.json"
    read -r code refused < <(post /api/v1/packages/forklift-demo-1.1-1.x86_64.rpm/promote "$W/one.json")
    [[ $code == 422 ]] || { echo "expected 422, got $code" >&2; cat "$W/last.json" >&2; exit 1; }
fi

echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| step (N = $N RPMs in staging) | seconds |"
echo "|---|---|"
echo "| (b) bulk promotion of $N builds into empty staging, gate on | $b |"
echo "| (b off) the same $N from staging into empty prod, gate off | $boff |"
echo "| (a) one build into the $N-build channel, gate on, median of $REPS (all: ${on[*]}) | $(printf '%s\n' "${on[@]}" | median) |"
echo "| (a off) the same, gate off, median of $REPS (all: ${off[*]}) | $(printf '%s\n' "${off[@]}" | median) |"
echo "| (r) a refused promotion (422 dependencies_unsatisfied) | $refused |"
