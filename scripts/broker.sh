#!/usr/bin/env bash
# Ensure the default local RabbitMQ node (rabbit@<hostname>, AMQP on 5672, guest/guest
# from loopback) is installed and running. Idempotent.
#
#   scripts/broker.sh [start]   install if missing, start if not answering, wait until ready
#   scripts/broker.sh stop      stop the default node (no-op if it is not running)
#   scripts/broker.sh status    exit 0 if the node answers and 5672 accepts TCP
#   scripts/broker.sh install   only install the rabbitmq-server package if missing
#
# Env: WARREN_BROKER_TIMEOUT (seconds to wait for startup, default 60).
# On success `start` prints exactly one line to stdout:  broker ready: amqp://127.0.0.1:5672 (node ...)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

PORT=5672
WAIT=${WARREN_BROKER_TIMEOUT:-60}
LOG_DIR=/var/log/rabbitmq

install_broker() {
    if command -v rabbitmq-server >/dev/null 2>&1 && command -v rabbitmqctl >/dev/null 2>&1; then
        return 0
    fi
    log "rabbitmq-server not found: installing it (the package's own service start may be denied; that is fine)"
    # policy-rc.d may deny the service start, which some apt versions report as a failure
    # of the postinst; the binaries are what we need, so check for them rather than trust the exit code.
    apt_install rabbitmq-server || log "apt-get install returned non-zero; checking what got installed"
    command -v rabbitmq-server >/dev/null 2>&1 || die "rabbitmq-server still missing after apt-get install"
}

node_answers() { ctl -q status >/dev/null 2>&1; }

start_broker() {
    install_broker
    if node_answers; then
        log "default node already running"
    elif ctl -q ping >/dev/null 2>&1; then
        log "default node is up but still booting; waiting"
    else
        log "starting default node: rabbitmq-server -detached"
        as_root rabbitmq-server -detached >&2 9>&- || log "rabbitmq-server -detached returned non-zero; waiting anyway"
    fi
    if ! node_wait_ready "$WAIT"; then
        dump_logs "$LOG_DIR"/rabbit@*.log "$LOG_DIR"/startup_log "$LOG_DIR"/startup_err
        die "default RabbitMQ node did not answer 'rabbitmqctl -q await_startup' within ${WAIT}s (logs above, in $LOG_DIR)"
    fi
    if ! node_listens "$PORT" || ! wait_port 127.0.0.1 "$PORT" 30; then
        dump_logs "$LOG_DIR"/rabbit@*.log
        printf 'listening on %s:\n%s\n' "$PORT" "$(who_listens "$PORT")" >&2
        die "default node is running but has no working AMQP listener on 127.0.0.1:$PORT (listeners.tcp changed, or the port taken by another process?)"
    fi
    local node
    node=$(ctl -q eval 'node().' 2>/dev/null | tr -d "'" || true)
    echo "broker ready: amqp://127.0.0.1:$PORT (node ${node:-rabbit@$(hostname -s)})"
}

stop_broker() {
    if ! command -v rabbitmqctl >/dev/null 2>&1; then
        log "rabbitmqctl not installed; nothing to stop"
        return 0
    fi
    if ! ctl -q ping >/dev/null 2>&1; then
        log "default node not running"
        return 0
    fi
    log "stopping default node"
    # shutdown waits for the OS process to exit
    timeout 90 rabbitmqctl -q shutdown >&2 || die "rabbitmqctl shutdown failed"
    log "default node stopped"
}

case "${1:-start}" in start|stop|restart|install|certs) lock_or_die /tmp/warren-broker.lock ;; esac

case "${1:-start}" in
    start) start_broker ;;
    stop) stop_broker ;;
    restart) stop_broker; start_broker ;;
    status)
        if node_answers && node_listens "$PORT" && port_open 127.0.0.1 "$PORT"; then
            echo "broker up: amqp://127.0.0.1:$PORT"
        else
            echo "broker down (or no AMQP listener on $PORT)"; exit 1
        fi ;;
    install) install_broker ;;
    *) echo "usage: $0 [start|stop|restart|status|install]" >&2; exit 2 ;;
esac
