#!/usr/bin/env bash
# Install what the test suite needs besides the broker (idempotent, quick when all is there):
#   - the openssl CLI (certificates for the TLS node)
#   - python3 with pika (a reference AMQP client the interop tests and hand checks use)
#   - headless Chromium (cli/tests/perf_report.rs opens `warren perf --report`'s page in it)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

PIKA_VERSION=1.3.2

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

if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-pip
fi

pika_ok() {
    python3 -c "import sys, pika; sys.exit(0 if pika.__version__ == '$PIKA_VERSION' else 1)" 2>/dev/null
}

if ! pika_ok; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip
    fi
    log "pip install pika==$PIKA_VERSION"
    export PIP_ROOT_USER_ACTION=ignore
    pip_args=(install --quiet --disable-pip-version-check --no-input "pika==$PIKA_VERSION")
    # Debian's system python refuses pip installs (PEP 668) unless told otherwise.
    timeout 300 python3 -m pip "${pip_args[@]}" >&2 ||
        timeout 300 python3 -m pip "${pip_args[@]}" --break-system-packages >&2 ||
        die "could not install pika==$PIKA_VERSION with pip"
    pika_ok || die "pika==$PIKA_VERSION installed but 'import pika' in python3 does not see it"
fi

echo "test deps ready: $(openssl version | cut -d' ' -f1-2), python3 $(python3 -c 'import sys; print(sys.version.split()[0])') + pika $PIKA_VERSION, $("$(chromium_bin)" --version 2>/dev/null | head -1)"
