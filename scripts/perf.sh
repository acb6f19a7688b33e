#!/usr/bin/env bash
# The main job: make sure a local RabbitMQ runs, then run `warren perf` against it.
#
#   scripts/perf.sh                          # 100 000 messages, 2 producers, 2 consumers, confirms, acks
#   scripts/perf.sh --count 1000000 --json   # any `warren perf` option; later ones override the defaults
#   scripts/perf.sh --rate 1000:10s,10000:10s --report perf.html   # latency at two loads, as a page
#   scripts/perf.sh --scenario fanout        # one of RabbitMQ's standard scenarios (--help lists them)
#   scripts/perf.sh --help                   # every option
#
# Defaults: --count 100000 --producers 2 --consumers 2 --confirm 1000 --prefetch 1000
# (a --scenario replaces them, and options after it override the scenario).
# AMQP_URL selects another broker (then scripts/broker.sh is not run). Exit status is
# warren perf's: 0 ok, 1 a check failed (lost messages, unexplained duplicates...), 2 usage, 3 the run failed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

case " $* " in
    *" -h "* | *" --help "*) ;;
    *)
        if [ -z "${AMQP_URL:-}" ]; then
            # broker.sh prints its one "broker ready" line on stdout: keep our stdout for perf's JSON.
            "$here/broker.sh" start >&2
        fi
        ;;
esac

cd "$root"
log "building warren-cli (release)"
cargo build --release --quiet -p warren-cli
exec "${CARGO_TARGET_DIR:-$root/target}/release/warren" perf \
    --count 100000 --producers 2 --consumers 2 --confirm 1000 --prefetch 1000 \
    "$@"
