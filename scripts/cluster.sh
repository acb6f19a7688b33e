#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, for the failover tests and demo. It never touches the default node
# (rabbit@<host>, 5672), the TLS node (warren-tls, 5681/5682) or the fault node (warren-fault, 5692).
#
#   scripts/cluster.sh start [--fresh]     start what is not running, wait until all three nodes report the cluster
#                                          formed; prints the three AMQP URIs on stdout, one per line. Idempotent.
#                                          When the cluster cannot form from the existing data (stale or partial
#                                          data from an earlier session), it starts over with empty data.
#                                          --fresh: always start over with empty data.
#   scripts/cluster.sh stop                stop all three nodes cleanly (data stays)
#   scripts/cluster.sh status              one line per node, "NAME PORT STATE RUNNING_NODES", then
#                                          "cluster formed|partial N/3"; exit 0 only when formed.
#                                          STATE: running | booting (VM up, rabbit not running) | stopped;
#                                          RUNNING_NODES: the running cluster members this node sees, sorted,
#                                          comma-separated ("-" when the node is not running)
#   scripts/cluster.sh kill NODE           SIGKILL the node's beam.smp (no clean shutdown)
#   scripts/cluster.sh stop-node NODE      stop that node cleanly
#   scripts/cluster.sh start-node NODE     start it again with its data; it rejoins the cluster; waits until it has
#   scripts/cluster.sh restart NODE        stop-node then start-node
#   scripts/cluster.sh wait [NODE|all] [SECS]  wait until NODE is running and in the cluster (every running node
#                                          sees it and it sees them), or with "all" (the default) until the cluster
#                                          is formed; exit 1 on timeout. Prints the status lines at the end.
#   scripts/cluster.sh ctl NODE ARGS...    rabbitmqctl -n NODE ARGS...
# NODE: 1, 2, 3, c1, warren-c1 or warren-c1@localhost.
#
# Nodes   name                 AMQP   Erlang distribution
#         warren-c1@localhost  5701   25701
#         warren-c2@localhost  5702   25702
#         warren-c3@localhost  5703   25703
# guest/guest from loopback. All run as the rabbitmq user (the Debian wrapper), so they share its Erlang cookie
# (/var/lib/rabbitmq/.erlang.cookie). warren-c2 and warren-c3 joined warren-c1 when the cluster was built.
# Files: $WARREN_CLUSTER_DIR (default /tmp/warren-cluster)/cN/{rabbitmq.conf,enabled_plugins,mnesia/,log/,node.pid}
# Env:   WARREN_CLUSTER_TIMEOUT (seconds to wait for a node or the cluster, default 120).
# start/stop/kill/stop-node/start-node/restart hold a lock (flock on $WARREN_CLUSTER_DIR.lock).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

D=${WARREN_CLUSTER_DIR:-/tmp/warren-cluster}
WAIT=${WARREN_CLUSTER_TIMEOUT:-120}
ALL=(1 2 3)

name() { echo "warren-c$1@localhost"; }
port() { echo $((5700 + $1)); }
dir() { echo "$D/c$1"; }
uri() { echo "amqp://guest:guest@127.0.0.1:$(port "$1")"; }
nctl() { local i=$1; shift; timeout 60 rabbitmqctl -n "$(name "$i")" "$@"; }

# node_index NODE: 1, 2 or 3 from any accepted spelling of a node.
node_index() {
    case "${1:-}" in
        1 | c1 | warren-c1 | warren-c1@localhost) echo 1 ;;
        2 | c2 | warren-c2 | warren-c2@localhost) echo 2 ;;
        3 | c3 | warren-c3 | warren-c3@localhost) echo 3 ;;
        *) die "unknown node '${1:-}' (1|2|3, c1, warren-c1 or warren-c1@localhost)" ;;
    esac
}

# node_pid I: the pid of node I's beam.smp, if its pid file names a live beam.smp (not a pid reused since).
node_pid() {
    local pid
    pid=$(cat "$(dir "$1")/node.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = beam.smp ] && echo "$pid"
}

has_data() { [ -d "$(dir "$1")/mnesia/$(name "$1")" ]; }

# node_state I: "running MEMBERS", "booting -" or "stopped -" (MEMBERS: the running cluster nodes I sees).
node_state() {
    local out
    out=$(timeout 20 rabbitmqctl -n "$(name "$1")" -q eval 'case rabbit:is_running() of
        true -> string:join([atom_to_list(N) || N <- lists:sort(rabbit_nodes:all_running())], ",");
        false -> "booting" end.' 2>/dev/null | tr -d '"') || out=""
    if [ -z "$out" ]; then
        if node_pid "$1" >/dev/null; then echo "booting -"; else echo "stopped -"; fi
    elif [ "$out" = booting ] || ! port_open 127.0.0.1 "$(port "$1")"; then
        echo "booting -"
    else
        echo "running $out"
    fi
}

# snapshot: the state of the three nodes, queried in parallel, into STATE[i] and MEMBERS[i].
declare -a STATE MEMBERS
snapshot() {
    local i tmp
    tmp=$(mktemp -d)
    for i in "${ALL[@]}"; do node_state "$i" > "$tmp/$i" & done
    wait
    for i in "${ALL[@]}"; do read -r "STATE[$i]" "MEMBERS[$i]" < "$tmp/$i"; done
    rm -rf "$tmp"
}

formed() {
    local i want
    want="$(name 1),$(name 2),$(name 3)"
    for i in "${ALL[@]}"; do [ "${STATE[$i]}" = running ] && [ "${MEMBERS[$i]}" = "$want" ] || return 1; done
}

# in_cluster I: I runs, sees every running node, and every running node sees it.
in_cluster() {
    local j
    [ "${STATE[$1]}" = running ] || return 1
    for j in "${ALL[@]}"; do
        [ "${STATE[$j]}" = running ] || continue
        [[ ",${MEMBERS[$1]}," == *",$(name "$j"),"* ]] && [[ ",${MEMBERS[$j]}," == *",$(name "$1"),"* ]] || return 1
    done
}

print_status() {
    local i n=0
    for i in "${ALL[@]}"; do
        echo "$(name "$i") $(port "$i") ${STATE[$i]} ${MEMBERS[$i]}"
        [ "${STATE[$i]}" != running ] || n=$((n + 1))
    done
    if formed; then echo "cluster formed 3/3"; else echo "cluster partial $n/3"; fi
}

# wait_for SECONDS [I]: until node I is in the cluster, or (without I) the cluster is formed.
wait_for() {
    local deadline=$((SECONDS + $1))
    while snapshot; do
        if [ -n "${2:-}" ]; then in_cluster "$2" && return 0; else formed && return 0; fi
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 1
    done
}

fail() {
    local i logs=()
    for i in "${ALL[@]}"; do logs+=("$(dir "$i")/log/$(name "$i").log" "$(dir "$i")/log/startup.out"); done
    dump_logs "${logs[@]}"
    snapshot; print_status >&2
    die "$*"
}

launch() {
    local d
    d=$(dir "$1")
    mkdir -p "$d/mnesia" "$d/log"
    printf '# generated by scripts/cluster.sh\nlisteners.tcp.default = %s\nloopback_users.guest = true\n' \
        "$(port "$1")" > "$d/rabbitmq.conf"
    echo "[]." > "$d/enabled_plugins"
    as_root rm -f "$d/node.pid"
    log "starting $(name "$1") (amqp $(port "$1"), dist $((25700 + $1)), dir $d)"
    launch_node "$(name "$1")" "$d" $((25700 + $1)) RABBITMQ_NODE_PORT="$(port "$1")"
}

stop_node() {
    local pid deadline=$((SECONDS + 30))
    pid=$(node_pid "$1") || pid=""
    if nctl "$1" -q ping >/dev/null 2>&1; then
        log "stopping $(name "$1")"
        timeout 90 rabbitmqctl -n "$(name "$1")" -q shutdown >&2 || log "rabbitmqctl shutdown failed"
    elif [ -z "$pid" ]; then
        log "$(name "$1") not running"
    fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        log "$(name "$1") still alive (beam.smp $pid): sending TERM"
        as_root kill "$pid" 2>/dev/null || true
    fi
    while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || { log "pid $pid ignored TERM for 30 s: KILL"; as_root kill -KILL "$pid" || true; }
        sleep 0.2
    done
}

kill_node() {
    local pid deadline=$((SECONDS + 15))
    pid=$(node_pid "$1") || { log "$(name "$1") not running (no live beam.smp in its pid file)"; return 0; }
    log "SIGKILL $(name "$1") (beam.smp pid $pid)"
    as_root kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || die "$(name "$1") (pid $pid) survived SIGKILL"
        sleep 0.1
    done
}

install() { command -v rabbitmq-server >/dev/null 2>&1 || "$here/broker.sh" install >&2; }

start_node() {
    install
    snapshot
    if [ "${STATE[$1]}" = stopped ]; then
        has_data "$1" || die "$(name "$1") has no data to rejoin with; use '$0 start' (it rebuilds the cluster)"
        launch "$1"
    fi
    wait_for "$WAIT" "$1" || fail "$(name "$1") did not rejoin the cluster within ${WAIT}s"
    log "$(name "$1") is in the cluster: $(uri "$1")"
}

# fresh_start: kill whatever runs (the data goes anyway), wipe the data, start three empty nodes,
# join warren-c2 and warren-c3 to warren-c1, wait until the cluster is formed.
fresh_start() {
    local i
    for i in "${ALL[@]}"; do kill_node "$i"; stop_node "$i"; as_root rm -rf "$(dir "$i")"; done
    for i in "${ALL[@]}"; do launch "$i"; done
    for i in "${ALL[@]}"; do
        node_wait_ready "$WAIT" -n "$(name "$i")" || fail "$(name "$i") did not boot within ${WAIT}s"
    done
    for i in 2 3; do
        log "joining $(name "$i") to $(name 1)"
        { nctl "$i" -q stop_app && nctl "$i" -q join_cluster "$(name 1)" && nctl "$i" -q start_app; } >&2 ||
            fail "$(name "$i") could not join $(name 1)"
    done
    wait_for "$WAIT" || fail "the cluster did not form within ${WAIT}s"
}

start_cluster() {
    local i
    install
    snapshot
    if [ "${1:-}" = --fresh ]; then
        log "--fresh: building the cluster from scratch"
        fresh_start
    elif formed; then
        log "cluster already running"
    elif ! has_data 1 || ! has_data 2 || ! has_data 3; then
        log "some node has no data: building the cluster from scratch"
        fresh_start
    else
        for i in "${ALL[@]}"; do [ "${STATE[$i]}" != stopped ] || launch "$i"; done
        if ! wait_for "$WAIT"; then
            log "the cluster did not form from the existing data within ${WAIT}s (stale data?): starting over, empty"
            fresh_start
        fi
    fi
    log "cluster formed: $(name 1), $(name 2), $(name 3)"
    for i in "${ALL[@]}"; do uri "$i"; done
}

# Commands that start or stop nodes run under an exclusive flock; `flock -o` keeps the lock in the flock process
# only, so that the nodes started here do not inherit it.
cmd=${1:-status}
[ $# -gt 0 ] && shift
case "$cmd" in
    start | stop | kill | stop-node | start-node | restart)
        if [ "${WARREN_CLUSTER_LOCKED:-}" != 1 ]; then
            mkdir -p "$(dirname "$D")"
            WARREN_CLUSTER_LOCKED=1 exec flock -o -w 300 "$D.lock" "$0" "$cmd" "$@"
        fi ;;
esac
n=""
case "$cmd" in
    kill | stop-node | start-node | restart | ctl) n=$(node_index "${1:-}") || exit 2 ;;
    wait) [ "${1:-all}" = all ] || n=$(node_index "$1") || exit 2 ;;
esac
case "$cmd" in
    start) start_cluster "${1:-}" ;;
    stop) for i in 3 2 1; do stop_node "$i"; done; log "cluster stopped" ;;
    status) snapshot; print_status; formed ;;
    kill) kill_node "$n" ;;
    stop-node) stop_node "$n" ;;
    start-node) start_node "$n" ;;
    restart) stop_node "$n"; start_node "$n" ;;
    wait) ok=0; wait_for "${2:-$WAIT}" "$n" || ok=1; print_status; exit "$ok" ;;
    ctl) shift; nctl "$n" "$@" ;;
    *) echo "usage: $0 start [--fresh]|stop|status|kill NODE|stop-node NODE|start-node NODE|restart NODE|wait [NODE|all] [SECS]|ctl NODE ARGS..." >&2; exit 2 ;;
esac
