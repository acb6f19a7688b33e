# shellcheck shell=bash
# Helpers shared by the scripts in this directory. Source it; do not run it.

# Messages go to stderr so that a script's stdout can carry one machine-readable line.
log() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "${0##*/}" "$*" >&2; exit 1; }
section() { printf '\n==================== %s ====================\n' "$*"; }

# as_root CMD...: run CMD as root (directly, or through sudo when we are not root).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root for: $*"
    fi
}

# apt_install PKG...: install Debian packages (runs apt-get update once per script run).
_apt_updated=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: $*"
    if [ "$_apt_updated" -eq 0 ]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        _apt_updated=1
    fi
    log "apt-get install -y $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# port_open HOST PORT: true if a TCP connection to HOST:PORT succeeds within 2 s.
port_open() {
    # shellcheck disable=SC2016 # $1/$2 expand in the inner shell
    timeout 2 bash -c ': >"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_port HOST PORT SECONDS: wait until HOST:PORT accepts TCP; false on timeout.
wait_port() {
    local host=$1 port=$2 deadline=$((SECONDS + $3))
    until port_open "$host" "$port"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 1
    done
}

# ctl ARGS...: rabbitmqctl, bounded in time so that a wedged node cannot hang us.
ctl() { timeout 30 rabbitmqctl "$@"; }

# node_wait_ready SECONDS CTL_ARGS...: wait until `rabbitmqctl CTL_ARGS await_startup` answers
# (node reachable and the rabbit application fully booted); false on timeout.
node_wait_ready() {
    local deadline=$((SECONDS + $1)); shift
    until timeout 15 rabbitmqctl "$@" -q await_startup >/dev/null 2>&1 &&
          timeout 15 rabbitmqctl "$@" -q status >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 1
    done
}

# dump_logs FILE...: print the tail of each existing FILE to stderr (for loud failures).
dump_logs() {
    local f
    for f in "$@"; do
        [ -f "$f" ] || continue
        printf '\n----- tail -n 60 %s -----\n' "$f" >&2
        tail -n 60 "$f" >&2 || true
    done
}

# node_listens PORT CTL_ARGS...: the node itself has a listener on PORT (not just "something accepts TCP").
node_listens() {
    local port=$1; shift
    timeout 30 rabbitmq-diagnostics "$@" -q check_port_listener "$port" >/dev/null 2>&1
}

# who_listens PORT: describe the processes listening on PORT (for error messages).
who_listens() {
    { ss -ltnpH "sport = :$1" 2>/dev/null || true; } | sed 's/^/    /'
}

# lock_or_die FILE [SECONDS]: take an exclusive flock on FILE for the rest of this script (fd 9), so that
# two callers cannot start/stop the same node at once. Waits up to SECONDS (default 180).
lock_or_die() {
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>>"$1"
    flock -w "${2:-180}" 9 || die "could not lock $1 within ${2:-180}s (another start/stop still running?)"
}

# launch_node NODE DIR DIST_PORT [VAR=VALUE...]: starts a private RabbitMQ node, detached, with its
# files under DIR (rabbitmq.conf, advanced.config, enabled_plugins, mnesia/, log/, node.pid); the
# extra variables go to its environment. It does not wait for the node to answer.
launch_node() {
    local node=$1 dir=$2 dist_port=$3
    shift 3
    # The Debian wrapper runs the node as the rabbitmq user: everything must be readable/writable by it,
    # or the node exits silently without a log.
    as_root chown -R rabbitmq:rabbitmq "$dir"
    # 9>&-: a lock held on fd 9 by the caller must not live on in the node.
    as_root env \
        RABBITMQ_NODENAME="$node" \
        RABBITMQ_DIST_PORT="$dist_port" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" \
        RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_PID_FILE="$dir/node.pid" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        "$@" \
        rabbitmq-server -detached > "$dir/log/startup.out" 2>&1 9>&- ||
        log "rabbitmq-server -detached returned non-zero; waiting anyway"
}
