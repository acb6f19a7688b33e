#!/usr/bin/env bash
# Side-by-side benchmark of warren against lapin and amqprs on the local RabbitMQ.
#
#   scripts/peer-bench.sh                      # N=100000 REPS=5, every scenario (about 10 min on 2 cores)
#   N=20000 REPS=3 scripts/peer-bench.sh       # quicker
#   CLIENTS="amqprs warren" CONSUME_EXTRA= scripts/peer-bench.sh
#
# The harness (shared/peer-bench, read-only) is copied to target/peer-bench; our adapter
# benches/peer/warren_client.rs is dropped into the copy, registered in its client list
# (amqprs first, so that the report's ratio columns read "x amqprs") and in its Cargo.toml
# as a path dependency on this repository. Then the copy's run.sh runs with our knobs;
# every env var of run.sh passes through (N, SIZE, WINDOW, REPS, CODEC_REPS, CLIENTS,
# CONSUME_EXTRA, RUNTIME, RESULTS_MD). The report lands in target/peer-bench/RESULTS.md,
# raw JSON lines in target/peer-bench/results/.
#
# Env: PEER_BENCH_SRC (default: ../shared/peer-bench beside the repository).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

src=${PEER_BENCH_SRC:-$root/../shared/peer-bench}
dst=$root/target/peer-bench
[ -f "$src/run.sh" ] && [ -f "$src/src/clients/mod.rs" ] || die "peer-bench harness not found at $src (set PEER_BENCH_SRC)"

"$here/broker.sh" start >&2

# --- fresh copy of the harness (keeping the copy's target/ and results/ between runs) ----
log "copying $src to $dst"
mkdir -p "$dst"
rm -rf "$dst/src"
tar -C "$src" --exclude=./target --exclude=./results -cf - . | tar -C "$dst" -xf -
chmod -R u+w "$dst"

# --- our adapter -----------------------------------------------------------------------
cp "$root/benches/peer/warren_client.rs" "$dst/src/clients/warren_client.rs"
mod="$dst/src/clients/mod.rs"
grep -q '^mod lapin_client;$' "$mod" || die "unexpected $mod: no 'mod lapin_client;' line"
grep -q '^pub const NAMES' "$mod" || die "unexpected $mod: no NAMES list"
grep -q '"amqprs" => ' "$mod" || die "unexpected $mod: no amqprs match arm"
sed -i \
    -e 's/^mod lapin_client;$/mod lapin_client;\nmod warren_client;/' \
    -e 's/^pub const NAMES: &\[&str\] = .*$/pub const NAMES: \&[\&str] = \&["amqprs", "lapin", "warren", "lapin-chack"];/' \
    -e 's/^\( *\)"amqprs" => \(.*\)$/\1"amqprs" => \2\n\1"warren" => Box::new(warren_client::WarrenClient::connect(args).await?),/' \
    "$mod"
grep -q 'warren_client::WarrenClient' "$mod" || die "failed to register warren in $mod"

toml="$dst/Cargo.toml"
grep -q '^amqprs = ' "$toml" || die "unexpected $toml: no amqprs dependency line"
sed -i "s|^amqprs = \(.*\)$|amqprs = \1\nwarren = { path = \"$root\", default-features = false }|" "$toml"

# --- run ---------------------------------------------------------------------------------
export CLIENTS=${CLIENTS:-"lapin amqprs warren"}
log "running $dst/run.sh with N=${N:-100000} REPS=${REPS:-5} CLIENTS='$CLIENTS'"
cd "$dst"
./run.sh
log "report: $dst/${RESULTS_MD:-RESULTS.md}"
