#!/usr/bin/env bash
# Side-by-side codec benchmark: warren vs amq-protocol (lapin's codec) vs amqprs (its
# serde wire format), in one run of the peer-bench harness.
#
#   scripts/peer-codec.sh [extra amqp-bench codec args...]
#
# 1. copies the peer-bench harness ($PEER_BENCH, default /work/shared/peer-bench) into
#    target/peer-bench (never into tracked files; target/peer-bench/target is kept
#    between runs so rebuilds are incremental);
# 2. drops in benches/peer/warren_codec.rs and registers its codecs "warren" (Frame::parse),
#    "warren-in-place" (FrameRef::parse) and "floor" (no codec: the bytes written, or
#    stepped over frame by frame; the memory traffic every codec pays) in the copy's
#    src/codec/mod.rs (module, CODECS, make);
# 3. adds `warren = { path = "<repo>", default-features = false }` to the copy's Cargo.toml;
# 4. builds it in release and runs `amqp-bench codec --n N --reps R --breakdown`.
#
# Env: PEER_BENCH, N (default 100000), REPS (default 7), OUT (JSON lines file, default
# target/peer-bench/codec.jsonl), ROUNDS (default 1: run the whole comparison that many
# times, back to back, and summarise all reps together: steadier on a busy machine),
# CALLGRIND=1 (also count instructions per message of each codec's encode and decode
# under valgrind --tool=callgrind: deterministic, unaffected by machine load).
# Prints the raw JSON lines, then a summary table of medians and ratios (warren vs each
# peer) to stdout.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

repo=$(cd "$here/.." && pwd)
src=${PEER_BENCH:-/work/shared/peer-bench}
dst="$repo/target/peer-bench"
n=${N:-100000}
reps=${REPS:-7}
out=${OUT:-$dst/codec.jsonl}

[ -f "$src/Cargo.toml" ] && [ -f "$src/src/codec/mod.rs" ] || die "no peer-bench at $src (set PEER_BENCH)"
command -v python3 >/dev/null 2>&1 || die "python3 is needed for the summary table"

log "copying $src -> $dst"
mkdir -p "$dst"
# Refresh everything but the build directory and what runs left (scripts/peer-bench.sh's raw
# results and reports share this copy).
find "$dst" -mindepth 1 -maxdepth 1 ! -name target ! -name results ! -name 'RESULTS*.md' \
    ! -name "$(basename "$out")" -exec rm -rf {} +
(cd "$src" && tar --exclude=./target --exclude=./results -cf - .) | (cd "$dst" && tar -xf -)
chmod -R u+w "$dst"

log "adding the warren codec adapter"
cp "$repo/benches/peer/warren_codec.rs" "$dst/src/codec/warren_codec.rs"
mod="$dst/src/codec/mod.rs"
grep -q '^pub mod amqprs_codec;$' "$mod" || die "unexpected $mod layout: no 'pub mod amqprs_codec;'"
sed -i 's/^pub mod amqprs_codec;$/pub mod amqprs_codec;\npub mod warren_codec;/' "$mod"
grep -q '^pub const CODECS: &\[&str\] = &\[' "$mod" || die "unexpected $mod layout: no CODECS"
sed -i 's/^\(pub const CODECS: &\[&str\] = &\[.*\)\];$/\1, "warren", "warren-in-place", "floor"];/' "$mod"
grep -q '"amqprs-serde" => Box::new(' "$mod" || die "unexpected $mod layout: no make() arm for amqprs-serde"
sed -i 's/^\(\s*\)\("amqprs-serde" => Box::new(.*\)$/\1\2\n\1"warren" => Box::new(warren_codec::WarrenCodec::from_reference(\&reference)?),\n\1"warren-in-place" => Box::new(warren_codec::WarrenInPlaceCodec::from_reference(\&reference)?),\n\1"floor" => Box::new(warren_codec::FloorCodec::from_reference(\&reference)?),/' "$mod"
grep -q '"warren", "warren-in-place", "floor"\]' "$mod" && grep -q 'warren_codec::FloorCodec' "$mod" || die "registering the codec in $mod failed"

log "adding the warren dependency"
toml="$dst/Cargo.toml"
grep -q '^\[dependencies\]$' "$toml" || die "no [dependencies] in $toml"
sed -i "s|^\[dependencies\]$|[dependencies]\nwarren = { path = \"$repo\", default-features = false }|" "$toml"

log "building amqp-bench (release)"
(cd "$dst" && cargo build --release --bin amqp-bench >&2)

: >"$out"
for round in $(seq 1 "${ROUNDS:-1}"); do
    log "round $round: amqp-bench codec --n $n --reps $reps --breakdown $*"
    "$dst/target/release/amqp-bench" codec --n "$n" --reps "$reps" --breakdown "$@" | tee -a "$out"
done

python3 - "$out" <<'PY'
import json, statistics, sys
from collections import defaultdict

recs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = defaultdict(list)
for r in recs:
    if r.get("kind") == "codec":
        by[(r["op"], r["codec"])].append(r["ns_per_message"])
ops = sorted({op for op, _ in by}, key=lambda o: (o.split(" ")[0] != "decode", len(o) > 6, o))
codecs = ["warren", "warren-in-place", "amq-protocol", "amqprs-serde", "floor"]
print()
print("ns per message (per frame for [.. only]); median (min) of the reps; ratio = peer median / warren median")
print("(warren: Frame::parse, the client's decoder, with the copy into its read buffer; warren-in-place: FrameRef::parse;")
print(" floor: no codec, the bytes written or the frames stepped over; 'work' ratios take the floor's median off both")
print(" sides, '-' where either is within 5 % of the floor; warren's decode also copies its input, the floor's does not)")
print(f"| op | {' | '.join(codecs)} | amq-protocol / warren | amqprs / warren | amq-protocol / in place | amqprs / in place "
      "| amqprs / warren, work | amqprs / in place, work |")
print("|---|" + "---|" * (len(codecs) + 6))
for op in ops:
    cells, med = [], {}
    for c in codecs:
        v = by.get((op, c))
        if v:
            med[c] = statistics.median(v)
            cells.append(f"{med[c]:.1f} ({min(v):.1f})")
        else:
            cells.append("-")
    ratio = lambda p, w="warren": f"{med[p] / med[w]:.2f}x" if w in med and p in med else "-"

    def work(p, w):
        # Only where both stand clear of the floor (5 % of their time): near it the
        # difference is noise and the ratio means nothing.
        if not all(c in med for c in (p, w, "floor")):
            return "-"
        above = lambda c: med[c] - med["floor"] > 0.05 * med[c]
        if not (above(p) and above(w)):
            return "-"
        return f"{(med[p] - med['floor']) / (med[w] - med['floor']):.2f}x"

    print(f"| {op} | {' | '.join(cells)} | {ratio('amq-protocol')} | {ratio('amqprs-serde')} "
          f"| {ratio('amq-protocol', 'warren-in-place')} | {ratio('amqprs-serde', 'warren-in-place')} "
          f"| {work('amqprs-serde', 'warren')} | {work('amqprs-serde', 'warren-in-place')} |")
PY

if [ "${CALLGRIND:-0}" = 1 ]; then
    command -v valgrind >/dev/null 2>&1 || die "CALLGRIND=1 needs valgrind (apt-get install valgrind)"
    # Each codec alone, n messages, 1 rep: encode and decode each run twice (warm-up and
    # rep); the built-in cross-check adds 100 encoded and 200 decoded messages for the
    # two peers. Only the codec's own encode/decode is collected (--toggle-collect).
    cn=${CALLGRIND_N:-20000}
    echo
    echo "instructions per message (callgrind Ir, n = $cn; includes warren's copy of the input into its read buffer)"
    echo "| codec | encode | decode |"
    echo "|---|---|---|"
    for pair in warren:WarrenCodec amq-protocol:AmqProtocolCodec amqprs-serde:AmqprsCodec floor:FloorCodec; do
        codec=${pair%%:*} ty=${pair##*:} row="| $codec |"
        for op in encode decode; do
            case "$codec/$op" in
                warren/* | floor/*) msgs=$((2 * cn)) ;;
                */encode) msgs=$((2 * cn + 100)) ;;
                *) msgs=$((2 * cn + 200)) ;;
            esac
            ir=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "--toggle-collect=*$ty as *Codec>::$op" \
                "$dst/target/release/amqp-bench" codec --codec "$codec" --n "$cn" --reps 1 2>&1 >/dev/null |
                sed -n 's/.*refs: *//p' | tr -d ,)
            row="$row $((ir / msgs)) |"
        done
        echo "$row"
    done
fi
