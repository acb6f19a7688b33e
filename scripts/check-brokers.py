#!/usr/bin/env python3
"""Smoke-check the test brokers with pika (a reference client), independent of warren.

    python3 scripts/check-brokers.py [CERT_DIR]

CERT_DIR defaults to $WARREN_TLS_DIR or /tmp/warren-tls-node/certs. Checks:
  1. default node, amqp://guest:guest@127.0.0.1:5672, PLAIN
  2. TLS node, plain TCP 5682, PLAIN
  3. TLS node, TLS 5681 verified against ca.pem (hostname localhost), PLAIN guest/guest
  4. TLS node, TLS 5681 + client.pem/client.key, SASL EXTERNAL (user = CN guest)
  5. TLS 5681 verified against untrusted-ca.pem must FAIL (client rejects the server)
  6. TLS 5681 + untrusted-client.pem (signed by untrusted-ca) must FAIL (server rejects the client)
Exits non-zero if any check does not behave as expected.
"""
import os
import ssl
import sys

import pika
from pika.credentials import ExternalCredentials

TLS_PORT = int(os.environ.get("WARREN_TLS_PORT", "5681"))
certs = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("WARREN_TLS_DIR", "/tmp/warren-tls-node/certs")


def path(name):
    return os.path.join(certs, name)


def tls_context(cafile, client=None):
    ctx = ssl.create_default_context(cafile=cafile)  # verifies the chain and the hostname
    if client:
        ctx.load_cert_chain(path(client + ".pem"), path(client + ".key"))
    return ctx


def roundtrip(params):
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"ping")
        method, _props, body = ch.basic_get(q, auto_ack=True)
        assert body == b"ping", body
        return conn._impl.server_properties.get(b"version", conn._impl.server_properties.get("version"))
    finally:
        conn.close()


def params(port, credentials=None, ssl_options=None):
    kw = dict(host="localhost" if ssl_options else "127.0.0.1", port=port, connection_attempts=1,
              socket_timeout=5, blocked_connection_timeout=5)
    if credentials is not None:
        kw["credentials"] = credentials
    if ssl_options is not None:
        kw["ssl_options"] = ssl_options
    return pika.ConnectionParameters(**kw)


guest = pika.PlainCredentials("guest", "guest")
checks = [
    ("default node 5672 PLAIN", True, lambda: roundtrip(params(5672, guest))),
    ("tls node 5682 PLAIN (no TLS)", True, lambda: roundtrip(params(5682, guest))),
    ("tls node %d TLS + PLAIN" % TLS_PORT, True,
     lambda: roundtrip(params(TLS_PORT, guest, pika.SSLOptions(tls_context(path("ca.pem")), "localhost")))),
    ("tls node %d TLS + client cert + EXTERNAL" % TLS_PORT, True,
     lambda: roundtrip(params(TLS_PORT, ExternalCredentials(),
                              pika.SSLOptions(tls_context(path("ca.pem"), "client"), "localhost")))),
    ("untrusted CA must be rejected by the client", False,
     lambda: roundtrip(params(TLS_PORT, guest, pika.SSLOptions(tls_context(path("untrusted-ca.pem")), "localhost")))),
    ("client cert from untrusted CA must be rejected by the server", False,
     lambda: roundtrip(params(TLS_PORT, ExternalCredentials(),
                              pika.SSLOptions(tls_context(path("ca.pem"), "untrusted-client"), "localhost")))),
]

failed = 0
for name, should_work, fn in checks:
    try:
        version = fn()
        ok, detail = should_work, "connected (server %s)" % version
    except Exception as e:  # noqa: BLE001 - we report whatever went wrong
        ok, detail = not should_work, "%s: %s" % (type(e).__name__, e)
    failed += not ok
    print("%-4s %s -- %s" % ("ok" if ok else "FAIL", name, detail))

print("%d passed, %d failed" % (len(checks) - failed, failed))
sys.exit(1 if failed else 0)
