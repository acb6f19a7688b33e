#!/usr/bin/env python3
"""Record a short real RabbitMQ session, both directions, for `warren decode`'s tests.

A TCP relay on 127.0.0.1 (ephemeral port) forwards to the broker and records every byte
it forwards: server -> client into `rabbitmq-server-stream.bin`, client -> server into
`rabbitmq-client-stream.bin` (in the directory given, default: this file's directory).
A pika client connects through the relay and:

1. declares an exclusive, auto-delete queue `warren-decode-capture`;
2. enables publisher confirms and publishes 3 messages to it through the default
   exchange, each with properties and a headers table of many field types (waiting for
   each basic.ack);
3. consumes the 3 messages (prefetch 10), acks each one, cancels the consumer;
4. closes the channel and the connection.

Usage: python3 capture.py [OUT_DIR] [BROKER_HOST] [BROKER_PORT]   (needs `pip install pika`)
"""
import datetime
import decimal
import os
import socket
import sys
import threading

import pika

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
port = int(sys.argv[3]) if len(sys.argv) > 3 else 5672

QUEUE = "warren-decode-capture"
recorded = {"client": bytearray(), "server": bytearray()}
lock = threading.Lock()


def pump(src, dst, direction):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            with lock:
                recorded[direction] += data
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
relay_port = listener.getsockname()[1]
pumps = []


def accept():
    client, _ = listener.accept()
    server = socket.create_connection((host, port))
    for args in ((client, server, "client"), (server, client, "server")):
        t = threading.Thread(target=pump, args=args, daemon=True)
        t.start()
        pumps.append(t)


acceptor = threading.Thread(target=accept, daemon=True)
acceptor.start()

# Bodies: text, JSON text, and bytes that are not UTF-8 (printed as hex by the decoder).
BODIES = [b"hello from pika 1", b'{"n":2,"text":"caf\xc3\xa9 \\"quoted\\""}', bytes([0xff, 0x00, 0xfe, 0x01, 0x80])]

params = pika.ConnectionParameters(
    host="127.0.0.1",
    port=relay_port,
    credentials=pika.PlainCredentials("guest", "guest"),
    heartbeat=0,
    client_properties={"connection_name": "warren-decode-capture"},
)
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.queue_declare(QUEUE, exclusive=True, auto_delete=True)
ch.confirm_delivery()
for i, body in enumerate(BODIES, start=1):
    props = pika.BasicProperties(
        content_type="text/plain" if i != 3 else "application/octet-stream",
        content_encoding="utf-8" if i != 3 else None,
        delivery_mode=2,
        priority=i,
        correlation_id=f"corr-{i}",
        reply_to="warren-capture-replies" if i == 1 else None,
        expiration="60000",
        message_id=f"msg-{i}",
        timestamp=1700000000 + i,
        type="capture.test",
        user_id="guest",
        app_id="warren-capture",
        headers={
            "x-seq": i,
            "x-source": "pika",
            "x-flag": i % 2 == 1,
            "x-big": 2**40 + i,
            "x-price": decimal.Decimal("12.34"),
            "x-when": datetime.datetime(2024, 1, 2, 3, 4, 5),
            "x-nested": {"k": "v", "n": -i},
            "x-list": [1, "two", None],
            "x-raw": b"\x00\x01",
        },
    )
    ch.basic_publish("", QUEUE, body, props, mandatory=True)

ch.basic_qos(prefetch_count=10)
got = []


def on_message(chan, method, props, body):
    got.append(body)
    chan.basic_ack(method.delivery_tag)
    if len(got) == len(BODIES):
        chan.stop_consuming()


ch.basic_consume(QUEUE, on_message, consumer_tag="warren-capture-ctag")
ch.start_consuming()
ch.close()
conn.close()
for t in pumps:
    t.join(timeout=5)
assert got == BODIES, got

for direction in ("server", "client"):
    path = os.path.join(out_dir, f"rabbitmq-{direction}-stream.bin")
    with open(path, "wb") as f:
        f.write(recorded[direction])
    print(f"{path}: {len(recorded[direction])} bytes")
