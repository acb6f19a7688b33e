#!/usr/bin/env bash
# Install what the test suite needs besides the broker (idempotent, quick when all is there):
#   - the openssl CLI (certificates for the TLS node)
#   - python3 with pika (a reference AMQP client the interop tests and hand checks use)
#     and pamqp (a second, independent Python codec the wire interop tests compare with)
#   - headless Chromium (cli/tests/perf_report.rs opens `warren perf --report`'s page in it)
#   - amqp-tools (the C client's amqp-publish and amqp-consume) and garagemq (a second AMQP 0-9-1
#     broker), for tests/client_peers.rs; garagemq is started on a private port by scripts/garagemq.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

PIKA_VERSION=1.3.2
PAMQP_VERSION=4.0.1

if ! command -v openssl >/dev/null 2>&1; then
    apt_install openssl
fi

chromium_bin() {
    for c in chromium chromium-browser; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
    done
    return 1
}

if ! chromium_bin >/dev/null; then
    apt_install chromium
    chromium_bin >/dev/null || die "chromium installed but not on PATH"
fi

if ! command -v amqp-publish >/dev/null 2>&1 || ! command -v amqp-consume >/dev/null 2>&1; then
    apt_install amqp-tools
fi

# Installs garagemq when missing; prints its URI (the tests' default, 127.0.0.1:5740).
garagemq_uri=$("$here/garagemq.sh" start | tail -n 1)

if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-pip
fi

# py_ok MODULE VERSION: python3 imports MODULE and its installed distribution is VERSION.
py_ok() {
    python3 -c "import sys, importlib.metadata as m, $1; sys.exit(0 if m.version('$1') == '$2' else 1)" 2>/dev/null
}

for want in "pika==$PIKA_VERSION" "pamqp==$PAMQP_VERSION"; do
    module=${want%%==*}
    version=${want#*==}
    py_ok "$module" "$version" && continue
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip
    fi
    log "pip install $want"
    export PIP_ROOT_USER_ACTION=ignore
    pip_args=(install --quiet --disable-pip-version-check --no-input "$want")
    # Debian's system python refuses pip installs (PEP 668) unless told otherwise.
    timeout 300 python3 -m pip "${pip_args[@]}" >&2 ||
        timeout 300 python3 -m pip "${pip_args[@]}" --break-system-packages >&2 ||
        die "could not install $want with pip"
    py_ok "$module" "$version" || die "$want installed but 'import $module' in python3 does not see it"
done

echo "test deps ready: garagemq at ${garagemq_uri}, amqp-tools $(dpkg-query -W -f '${Version}' amqp-tools 2>/dev/null), $(openssl version | cut -d' ' -f1-2), python3 $(python3 -c 'import sys; print(sys.version.split()[0])') + pika $PIKA_VERSION + pamqp $PAMQP_VERSION, $("$(chromium_bin)" --version 2>/dev/null | head -1)"
