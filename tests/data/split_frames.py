#!/usr/bin/env python3
"""Split a recorded AMQP byte stream into frames.

Usage: split_frames.py STREAM.bin [OUT_DIR PREFIX]
Prints one line per frame (type, channel, size, class.method for method frames). With
OUT_DIR, also writes each frame to OUT_DIR/PREFIX-NNN.bin (the 8-byte protocol header
that opens the client stream becomes its own file).
"""
import os
import struct
import sys

data = open(sys.argv[1], "rb").read()
out_dir = sys.argv[2] if len(sys.argv) > 2 else None
prefix = sys.argv[3] if len(sys.argv) > 3 else "frame"
pos = 0
n = 0
frames = []
if data.startswith(b"AMQP"):
    frames.append(("protocol-header", data[:8]))
    pos = 8
while pos < len(data):
    if len(data) - pos < 7:
        sys.exit(f"trailing {len(data) - pos} bytes at {pos}")
    ftype, channel, size = struct.unpack(">BHI", data[pos:pos + 7])
    frame = data[pos:pos + 8 + size]
    if frame[-1] != 0xCE:
        sys.exit(f"bad frame end at {pos}")
    desc = f"type={ftype} ch={channel} size={size}"
    if ftype == 1:
        desc += " method=%d.%d" % struct.unpack(">HH", frame[7:11])
    frames.append((desc, frame))
    pos += 8 + size
for i, (desc, frame) in enumerate(frames):
    print(f"{i:3} {desc}")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, f"{prefix}-{i:03}"), "wb") as f:
            f.write(frame)
