#!/usr/bin/env bash
# The project's test command. Works alone on a fresh machine (installs and starts what it needs).
#
#   scripts/test.sh [EXTRA_ARGS...]    EXTRA_ARGS go to the main test runner (nextest filters, or cargo test args)
#
# 1. ensures the default broker (scripts/broker.sh), the TLS node (scripts/tls-node.sh), the fault node
#    (scripts/fault-node.sh), the three-node cluster of the failover suite (scripts/cluster.sh, 5701-5703;
#    tests/fault_cluster.rs fails without it) and the test dependencies (scripts/test-deps.sh)
# 2. exports AMQP_URL (kept if already set), WARREN_TLS_DIR, WARREN_TLS_PORT=5681, WARREN_REQUIRE_BROKER=1
# 3. cargo nextest run --workspace --locked   (+ cargo test --workspace --doc --locked, nextest skips doctests)
#    or, without cargo-nextest, cargo test --workspace --locked
# 4. fuzz smoke: every target of `cargo fuzz list` (in fuzz/) for WARREN_FUZZ_SECONDS (default 30; 0 = skip)
#    seconds each; needs cargo-fuzz, which is installed when CI=true and it is missing.
#
# Time bounds (seconds, env): WARREN_TEST_TIMEOUT (default 2400) for each cargo test/nextest run,
# WARREN_FUZZ_BUILD_TIMEOUT (default 900) added to the fuzz time for each fuzz target.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
cd "$root"

TEST_TIMEOUT=${WARREN_TEST_TIMEOUT:-2400}
FUZZ_SECONDS=${WARREN_FUZZ_SECONDS:-30}
FUZZ_BUILD_TIMEOUT=${WARREN_FUZZ_BUILD_TIMEOUT:-900}

# bounded CMD...: run CMD under `timeout` (kills the whole process group, test binaries included).
# From an interactive terminal use --foreground so that Ctrl-C still reaches the command.
bounded() {
    local secs=$1; shift
    local fg=()
    [ -t 0 ] && fg=(--foreground)
    local rc=0
    timeout "${fg[@]}" -k 30 "$secs" "$@" || rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        log "TIMED OUT after ${secs}s: $*"
    fi
    return "$rc"
}

section "broker (default node, 5672)"
"$here/broker.sh" start

section "TLS node (warren-tls@localhost, 5681/5682)"
tls_dir=$("$here/tls-node.sh" start | tail -n 1)
[ -s "$tls_dir/ca.pem" ] || die "scripts/tls-node.sh printed '$tls_dir', which holds no ca.pem"
echo "certificates: $tls_dir"

section "fault node (warren-fault@localhost, 5692)"
# Started here, before any test process exists, so that a cold node starts with fresh data; the tests
# themselves never wipe it (one of them kills the node and counts on its data surviving).
"$here/fault-node.sh" start --fresh

section "three-node cluster (warren-c1..c3@localhost, 5701-5703)"
# For tests/fault_cluster.rs, which kills and restarts its nodes and leaves all three up.
"$here/cluster.sh" start

section "test dependencies"
"$here/test-deps.sh"

export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
export WARREN_TLS_DIR=$tls_dir
export WARREN_TLS_PORT=5681
export WARREN_REQUIRE_BROKER=1
echo "AMQP_URL=$AMQP_URL WARREN_TLS_DIR=$WARREN_TLS_DIR WARREN_TLS_PORT=$WARREN_TLS_PORT WARREN_REQUIRE_BROKER=1"

[ -f Cargo.lock ] || die "Cargo.lock is missing; the tests run with --locked: generate it (cargo generate-lockfile) and commit it"

failed=()
if cargo nextest --version >/dev/null 2>&1; then
    section "cargo nextest run --workspace --locked"
    bounded "$TEST_TIMEOUT" cargo nextest run --workspace --locked --no-fail-fast "$@" || failed+=("cargo nextest run (exit $?)")
    section "cargo test --workspace --doc --locked (doctests; nextest does not run them)"
    bounded "$TEST_TIMEOUT" cargo test --workspace --doc --locked --no-fail-fast || failed+=("doctests (exit $?)")
else
    section "cargo test --workspace --locked (cargo-nextest not installed)"
    bounded "$TEST_TIMEOUT" cargo test --workspace --locked --no-fail-fast "$@" || failed+=("cargo test (exit $?)")
fi
if [ "${#failed[@]}" -gt 0 ]; then
    section "FAILED"
    printf '  %s\n' "${failed[@]}"
    exit 1
fi

section "fuzz smoke (${FUZZ_SECONDS}s per target)"
if [ "$FUZZ_SECONDS" = 0 ]; then
    echo "skipped: WARREN_FUZZ_SECONDS=0"
elif [ ! -f fuzz/Cargo.toml ]; then
    echo "skipped: no fuzz/Cargo.toml"
else
    if ! cargo fuzz --help >/dev/null 2>&1 && [ "${CI:-}" = true ]; then
        echo "installing cargo-fuzz (CI=true)"
        bounded 1200 cargo install cargo-fuzz --locked
    fi
    if ! cargo fuzz --help >/dev/null 2>&1; then
        [ "${CI:-}" != true ] || die "cargo-fuzz still not usable after cargo install cargo-fuzz"
        echo "skipped: cargo-fuzz not installed (cargo install cargo-fuzz --locked)"
    else
        mapfile -t targets < <(cd fuzz && cargo fuzz list)
        [ "${#targets[@]}" -gt 0 ] || die "cargo fuzz list (in fuzz/) found no fuzz targets"
        for t in "${targets[@]}"; do
            echo "--- fuzz target $t (${FUZZ_SECONDS}s)"
            # RUSTC_BOOTSTRAP=1: cargo-fuzz needs nightly flags (-Zsanitizer); this lets the stable toolchain take them
            (cd fuzz && bounded $((FUZZ_SECONDS + FUZZ_BUILD_TIMEOUT)) \
                env RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" -- -max_total_time="$FUZZ_SECONDS")
        done
        echo "fuzz smoke: ${#targets[@]} target(s) ran ${FUZZ_SECONDS}s each without a crash"
    fi
fi

section "all tests passed"
