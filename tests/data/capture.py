#!/usr/bin/env python3
"""Record a real AMQP 0-9-1 session with RabbitMQ, both directions, to two files.

A TCP relay on 127.0.0.1 (ephemeral port) forwards to the broker and appends every byte
it forwards to `<out>.client.bin` (client -> server) or `<out>.server.bin` (server -> client).
A pika client then runs a short session through the relay: publisher confirms, a
mandatory publish that comes back with basic.return, a body split over several body
frames (frame_max 4096), headers with many field types, a consumer with ack / nack /
reject, basic.get and get-empty, qos, tx, a heartbeat or two, and orderly closes.

Usage: python3 capture.py [OUT_PREFIX] [BROKER_HOST] [BROKER_PORT]
   (defaults: rabbitmq-session 127.0.0.1 5672; needs `pip install pika`)
"""
import datetime
import decimal
import socket
import sys
import threading
import time

import pika

out = sys.argv[1] if len(sys.argv) > 1 else "rabbitmq-session"
host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
port = int(sys.argv[3]) if len(sys.argv) > 3 else 5672

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
threads = []


def accept():
    client, _ = listener.accept()
    upstream = socket.create_connection((host, port))
    for a, b, d in ((client, upstream, "client"), (upstream, client, "server")):
        t = threading.Thread(target=pump, args=(a, b, d), daemon=True)
        t.start()
        threads.append(t)


acceptor = threading.Thread(target=accept, daemon=True)
acceptor.start()

params = pika.ConnectionParameters(
    host="127.0.0.1",
    port=relay_port,
    credentials=pika.PlainCredentials("guest", "guest"),
    frame_max=4096,
    heartbeat=1,
    client_properties={"connection_name": "warren-capture", "product": "warren fixture"},
)
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.basic_qos(prefetch_count=10)
ch.confirm_delivery()
ch.exchange_declare("warren.capture", exchange_type="direct", auto_delete=True)
q = ch.queue_declare("", exclusive=True, arguments={"x-max-length": 100}).method.queue
ch.queue_bind(q, "warren.capture", routing_key="rk")

headers = {
    "str": "text",
    "int": 42,
    "neg": -7,
    "big": 2**40,
    "bool": True,
    "dec": decimal.Decimal("3.14"),
    "ts": datetime.datetime(2024, 1, 2, 3, 4, 5),
    "list": [1, "two", False],
    "nested": {"a": 1, "b": {"c": "deep"}},
    "none": None,
    "bytes": b"\x00\xff",
}
props = pika.BasicProperties(
    content_type="application/json",
    content_encoding="utf-8",
    headers=headers,
    delivery_mode=2,
    priority=5,
    correlation_id="corr-1",
    reply_to="replies",
    expiration="60000",
    message_id="msg-1",
    timestamp=1700000000,
    type="example",
    user_id="guest",
    app_id="warren-capture",
)
ch.basic_publish("warren.capture", "rk", b'{"hello":"world"}', props)
ch.basic_publish("warren.capture", "rk", b"", pika.BasicProperties(delivery_mode=1))
# 10000 bytes with frame_max 4096: three body frames.
ch.basic_publish("warren.capture", "rk", bytes(range(256)) * 39 + b"x" * 16,
                 pika.BasicProperties(content_type="application/octet-stream"))
try:
    ch.basic_publish("warren.capture", "nowhere", b"returned", mandatory=True)
except pika.exceptions.UnroutableError:
    pass

seen = []


def on_message(channel, method, properties, body):
    seen.append(method.delivery_tag)
    if len(seen) == 1:
        channel.basic_nack(method.delivery_tag, requeue=True)
    elif len(seen) == 2:
        channel.basic_reject(method.delivery_tag, requeue=False)
    else:
        channel.basic_ack(method.delivery_tag)


tag = ch.basic_consume(q, on_message, consumer_tag="warren-consumer")
deadline = time.time() + 5
while len(seen) < 4 and time.time() < deadline:
    conn.process_data_events(time_limit=0.2)
ch.basic_cancel(tag)

ch.basic_publish("warren.capture", "rk", b"for basic.get")
method, properties, body = ch.basic_get(q, auto_ack=False)
if method:
    ch.basic_ack(method.delivery_tag, multiple=True)
ch.basic_get(q, auto_ack=True)  # get-empty
ch.basic_recover(requeue=True)

# Let heartbeats flow both ways.
conn.sleep(2.5)

tx = conn.channel()
tx.tx_select()
tx.basic_publish("warren.capture", "rk", b"in a transaction")
tx.tx_rollback()
tx.tx_commit()
tx.close()

ch.queue_purge(q)
ch.queue_unbind(q, "warren.capture", routing_key="rk")
ch.queue_delete(q)
ch.exchange_delete("warren.capture")
ch.close()
conn.close()

for t in threads:
    t.join(timeout=5)
listener.close()
with lock:
    for direction, data in recorded.items():
        with open(f"{out}.{direction}.bin", "wb") as f:
            f.write(data)
        print(f"{out}.{direction}.bin: {len(data)} bytes")
