#!/usr/bin/env python3
"""Write seed corpora for the fuzz targets from the recorded RabbitMQ session.

Reads tests/data/rabbitmq-session.{client,server}.bin (see tests/data/README.md) and
writes fuzz/corpus/<target>/seed-* (only files named seed-* are kept in git):
  frame, roundtrip: every frame alone, each whole stream, and a few multi-frame runs
  method:           every method frame's payload (class id, method id, arguments)
  field_table:      every field table found in those frames (peer properties, the
                    arguments of declares and binds, message headers), plus a few made here
Run from anywhere: python3 fuzz/make_seeds.py
"""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "tests", "data")
corpus = os.path.join(here, "corpus")


def frames(stream):
    pos = 0
    if stream.startswith(b"AMQP"):
        pos = 8
    while pos < len(stream):
        ftype, channel, size = struct.unpack(">BHI", stream[pos:pos + 7])
        yield stream[pos:pos + 8 + size]
        pos += 8 + size


def shortstr(b, i):
    return i + 1 + b[i]


def table_at(b, i):
    (n,) = struct.unpack(">I", b[i:i + 4])
    return b[i:i + 4 + n], i + 4 + n


# Where the tables sit in the arguments of the methods the session used:
# (class, method) -> function(payload) -> list of tables
def method_tables(p):
    cm = struct.unpack(">HH", p[:4])
    i = 4
    if cm == (10, 10):  # start: 2 octets, server-properties
        return [table_at(p, 6)[0]]
    if cm == (10, 11):  # start-ok: client-properties
        return [table_at(p, 4)[0]]
    if cm in ((40, 10),):  # exchange.declare: short, exchange, type, bits, arguments
        i = shortstr(p, shortstr(p, i + 2)) + 1
        return [table_at(p, i)[0]]
    if cm == (50, 10):  # queue.declare: short, queue, bits, arguments
        i = shortstr(p, i + 2) + 1
        return [table_at(p, i)[0]]
    if cm in ((50, 20), (40, 30), (40, 40)):  # binds: short, 3 shortstrs, bits, arguments
        i = shortstr(p, shortstr(p, shortstr(p, i + 2))) + 1
        return [table_at(p, i)[0]]
    if cm == (50, 50):  # queue.unbind: short, 3 shortstrs, arguments
        i = shortstr(p, shortstr(p, shortstr(p, i + 2)))
        return [table_at(p, i)[0]]
    if cm == (60, 20):  # basic.consume: short, 2 shortstrs, bits, arguments
        i = shortstr(p, shortstr(p, i + 2)) + 1
        return [table_at(p, i)[0]]
    return []


def header_tables(p):
    (flags,) = struct.unpack(">H", p[12:14])
    i = 14
    if flags & 0x8000:
        i = shortstr(p, i)
    if flags & 0x4000:
        i = shortstr(p, i)
    if flags & 0x2000:
        return [table_at(p, i)[0]]
    return []


def write(target, name, blob, seen):
    if blob in seen[target]:
        return
    seen[target].add(blob)
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"seed-{name}"), "wb") as f:
        f.write(blob)


seen = {t: set() for t in ("frame", "roundtrip", "method", "field_table")}
for side in ("server", "client"):
    stream = open(os.path.join(data, f"rabbitmq-session.{side}.bin"), "rb").read()
    body = stream[8:] if stream.startswith(b"AMQP") else stream
    fs = list(frames(stream))
    for target in ("frame", "roundtrip"):
        write(target, f"{side}-whole", body, seen)
        for n in range(0, len(fs), 8):
            write(target, f"{side}-run-{n:03}", b"".join(fs[n:n + 8]), seen)
    for n, fr in enumerate(fs):
        payload = fr[7:-1]
        for target in ("frame", "roundtrip"):
            write(target, f"{side}-{n:03}", fr, seen)
        if fr[0] == 1:
            write("method", f"{side}-{n:03}", payload, seen)
            for k, t in enumerate(method_tables(payload)):
                write("field_table", f"{side}-{n:03}-{k}", t, seen)
        elif fr[0] == 2:
            for k, t in enumerate(header_tables(payload)):
                write("field_table", f"{side}-{n:03}-{k}", t, seen)

# Hand-made tables: every value type, a float NaN, nesting near the limit.
every = (b"\x01tt\x01" b"\x01bb\x80" b"\x01BB\xff" b"\x01ss\xff\xfe" b"\x01uu\xff\xfe"
         b"\x01II\xff\xff\xff\xfd" b"\x01ii\xff\xff\xff\xfd" b"\x01ll" + b"\xff" * 8 +
         b"\x01ff\x7f\xc0\x00\x01" b"\x01dd\x7f\xf8\x00\x00\x00\x00\x00\x01" b"\x01DD\x02\x00\x00\x01\x3a"
         b"\x01SS\x00\x00\x00\x02hi" b"\x01AA\x00\x00\x00\x03B\x07V" b"\x01TT\x00\x00\x00\x00\x65\x53\xf1\x00"
         b"\x01FF\x00\x00\x00\x00" b"\x01VV" b"\x01xx\x00\x00\x00\x01\x00")
write("field_table", "every-type", struct.pack(">I", len(every)) + every, seen)
nested = b"\x00\x00\x00\x00"
for _ in range(31):
    nested = struct.pack(">I", len(nested) + 2) + b"\x00F" + nested
write("field_table", "nested-32", nested, seen)
# Regression inputs found by fuzzing (see README.md).
write("frame", "regression-empty-method-payload", b"\x01\x00\x01\x00\x00\x00\x00\xce", seen)

for t, s in seen.items():
    print(f"{t}: {len(s)} seeds")
