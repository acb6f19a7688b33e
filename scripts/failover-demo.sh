#!/usr/bin/env bash
# Failover, shown in one command: start the three-node cluster (scripts/cluster.sh), run `warren perf` against all
# three nodes (quorum queues, persistent messages, publisher confirms, --republish) while nodes are killed and
# restarted on a schedule, then print the summary, how long publishing stalled, and the lost count.
#
#   scripts/failover-demo.sh                 # the schedule below, 120 s of publishing
#   scripts/failover-demo.sh --rate 2000     # more `warren perf` options; later ones override the defaults
#
# Schedule (seconds after perf starts; a step that comes late runs at once, so a slow restart shifts the rest, and
# a step that would fall in the last 10 s of publishing is skipped):
#   10 kill node 1 (SIGKILL)      20 start node 1      35 stop node 2 (clean)      45 start node 2
#   60 kill node 3 (SIGKILL)      70 start node 3
# The connections are spread over the three nodes (control on 1, consumers on 2 and 3, producers on 1 and 2 with
# the defaults) and each recovers to the next node when its own goes away.
#
# Env: WARREN_DEMO_SECONDS (publishing time, default 120: a restart takes 20-30 s, so the steps slip; keep it above
#      100),
#      WARREN_DEMO_REPUBLISH (1, the default: --republish; 0: unknown outcomes are only counted).
# Output: perf's live lines and summary on stderr, then on stdout the stall and recovery times and "lost N".
# Exit status: warren perf's (0: lost 0 and no unexplained duplicate), or 1 when the cluster cannot be started.
# The cluster is left running, with every node started again (scripts/cluster.sh stop stops it).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

SECONDS_OF_PUBLISHING=${WARREN_DEMO_SECONDS:-120}
REPUBLISH=${WARREN_DEMO_REPUBLISH:-1}

cd "$root"
log "building warren-cli (release)"
cargo build --release --quiet -p warren-cli
warren="${CARGO_TARGET_DIR:-$root/target}/release/warren"

log "starting the cluster (scripts/cluster.sh start)"
mapfile -t uris < <("$here/cluster.sh" start)
[ "${#uris[@]}" -eq 3 ] || die "scripts/cluster.sh start printed ${#uris[@]} URI(s), expected 3: ${uris[*]}"
uri_list=$(IFS=,; echo "${uris[*]}")
log "cluster: $uri_list"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
json=$work/perf.json

# --allow-nack: RabbitMQ 3.10 nacks every publish of a channel whose first publish to a quorum queue found the
# old leader's node down, until that node is back (tests/fault_cluster.rs documents it). A nack is not a loss: the
# broker said it did not take the message, and perf counts it ("nacked"); lost counts confirmed messages never consumed.
extra=(--allow-nack)
[ "$REPUBLISH" = 1 ] && extra+=(--republish)

"$warren" perf --uri "$uri_list" \
    --queue-args x-queue-type=quorum --persistent --confirm 1000 --prefetch 1000 \
    --producers 2 --consumers 2 --duration "$SECONDS_OF_PUBLISHING" --drain-timeout 120 \
    "${extra[@]}" --json "$@" > "$json" &
perf_pid=$!
start=$SECONDS

# at T CMD...: run CMD at T seconds after perf started (at once if that is past), unless perf has ended.
at() {
    local t=$1; shift
    local wait=$((start + t - SECONDS))
    [ "$wait" -le 0 ] || sleep "$wait"
    kill -0 "$perf_pid" 2>/dev/null || return 0
    # A step that slipped into the last 10 s of publishing is skipped: perf is about to drain and clean up (the
    # final `cluster.sh start` below brings every node back anyway).
    if [ $((SECONDS - start)) -gt $((SECONDS_OF_PUBLISHING - 10)) ]; then
        log "t=$((SECONDS - start))s: skipped (too late in the run): cluster.sh $*"
        return 0
    fi
    log "t=$((SECONDS - start))s: cluster.sh $*"
    "$here/cluster.sh" "$@" >&2 || log "cluster.sh $* failed (the demo goes on)"
}

at 10 kill 1
at 20 start-node 1
at 35 stop-node 2
at 45 start-node 2
at 60 kill 3
at 70 start-node 3

rc=0
wait "$perf_pid" || rc=$?
log "warren perf ended (exit $rc) at t=$((SECONDS - start))s; making sure every node runs again"
"$here/cluster.sh" start >/dev/null || log "scripts/cluster.sh start failed: see scripts/cluster.sh status"

# field NAME: a number from perf's JSON object.
field() { grep -o "\"$1\":[^,}]*" "$json" | head -n 1 | cut -d: -f2; }

if [ ! -s "$json" ]; then
    die "warren perf printed no JSON (exit $rc)"
fi
echo "failover demo: 3 nodes, quorum queue, confirms; node 1 killed, node 2 stopped, node 3 killed, each restarted"
echo "  stall: longest gap between two confirms of one publisher  $(field confirm_gap_max_seconds) s"
echo "  longest recovery of a connection                          $(field recovery_max_seconds) s"
echo "  published $(field published), confirmed $(field confirmed), nacked $(field nacked), unknown $(field unknown), republished $(field republished)"
echo "  consumed $(field consumed), duplicates $(field duplicates) (redelivered $(field duplicates_redelivered), unexplained $(field duplicates_unexplained)), recoveries $(field recoveries)"
echo "lost $(field lost)"
exit "$rc"
