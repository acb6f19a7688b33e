#!/usr/bin/env bash
# A private garagemq broker (an AMQP 0-9-1 broker written in Go, packaged by Debian) for the
# interop tests (tests/client_peers.rs). The RabbitMQ nodes are left alone.
#
#   scripts/garagemq.sh [start]   install it if missing, start it if it is not answering, wait until
#                                 it accepts TCP, print its URI as the only line on stdout
#   scripts/garagemq.sh stop      stop it (the one this script started: its pid file)
#   scripts/garagemq.sh status    exit 0 (and print the URI) if it accepts TCP
#
# Ports:  AMQP 5740, its admin HTTP server 15740, both on 127.0.0.1 (env WARREN_GARAGEMQ_PORT and
#         WARREN_GARAGEMQ_ADMIN_PORT change them).
# User:   guest / guest. Files under $WARREN_GARAGEMQ_DIR
#         (default /tmp/warren-garagemq): config.yaml, db/, garagemq.log, garagemq.pid.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

PORT=${WARREN_GARAGEMQ_PORT:-5740}
ADMIN_PORT=${WARREN_GARAGEMQ_ADMIN_PORT:-15740}
D=${WARREN_GARAGEMQ_DIR:-/tmp/warren-garagemq}
WAIT=${WARREN_BROKER_TIMEOUT:-60}
URI="amqp://guest:guest@127.0.0.1:$PORT/%2f"

case $PORT in
    5672 | 5681 | 5682 | 5692 | 5701 | 5702 | 5703) die "port $PORT belongs to a RabbitMQ node" ;;
esac

start() {
    if ! command -v garagemq >/dev/null 2>&1; then
        apt_install garagemq
        command -v garagemq >/dev/null 2>&1 || die "garagemq installed but not on PATH"
    fi
    if port_open 127.0.0.1 "$PORT"; then
        if [ -f "$D/garagemq.pid" ] && kill -0 "$(cat "$D/garagemq.pid")" 2>/dev/null; then
            echo "$URI"
            return 0
        fi
        die "something else listens on 127.0.0.1:$PORT:
$(who_listens "$PORT")"
    fi
    mkdir -p "$D"
    rm -rf "$D/db"
    # As Debian's /etc/garagemq/config.yaml, on private ports and a private data directory.
    # The password is md5("guest"), as in Debian's file.
    cat > "$D/config.yaml" <<EOF
proto: amqp-rabbit
users:
  - username: guest
    password: 084e0343a0486ff05530df6c705c8bb4
tcp:
  ip: 127.0.0.1
  port: $PORT
  nodelay: true
  readBufSize: 196608
  writeBufSize: 196608
admin:
  ip: 127.0.0.1
  port: $ADMIN_PORT
queue:
  shardSize: 8192
  maxMessagesInRam: 131072
db:
  defaultPath: $D/db
  engine: badger
vhost:
  defaultPath: /
security:
  passwordCheck: md5
connection:
  channelsMax: 4096
  frameMaxSize: 131072
EOF
    log "starting garagemq on 127.0.0.1:$PORT (admin $ADMIN_PORT), files in $D"
    # setsid + 9>&-: it outlives this script and holds none of its file descriptors.
    # In a background job of this (non-interactive) shell, setsid execs garagemq in place: $! is its pid.
    cd "$D"
    setsid garagemq --config "$D/config.yaml" --log-level warning --log-file "$D/garagemq.log" \
        </dev/null >"$D/startup.out" 2>&1 9>&- &
    echo $! >"$D/garagemq.pid"
    if ! wait_port 127.0.0.1 "$PORT" "$WAIT"; then
        dump_logs "$D/startup.out" "$D/garagemq.log"
        die "garagemq did not accept TCP on 127.0.0.1:$PORT within ${WAIT}s"
    fi
    echo "$URI"
}

stop() {
    [ -f "$D/garagemq.pid" ] || { log "not started by this script (no $D/garagemq.pid)"; return 0; }
    local pid
    pid=$(cat "$D/garagemq.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$D/garagemq.pid"
}

case ${1:-start} in
    start) lock_or_die "/tmp/warren-garagemq.lock"; start ;;
    stop) lock_or_die "/tmp/warren-garagemq.lock"; stop ;;
    status) port_open 127.0.0.1 "$PORT" && echo "$URI" ;;
    *) die "usage: $0 [start|stop|status]" ;;
esac
