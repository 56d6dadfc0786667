#!/usr/bin/env python3
"""bench/latency_front (the benches' exact-latency relay) on loopback.

An upstream HTTP/1.1 server in this process answers at once (or late, or
with Connection: close, or 2 MB); a client talks to it through the front and
checks that each answer arrives no earlier than the latency after its request
was sent and not much later, byte for byte, on kept-alive connections; that a
late upstream is not delayed twice; that SIGUSR1 prints the figures, SIGUSR2
drops the latency, and SIGTERM prints them and exits 0.
"""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

BUILD = os.environ.get("S3G_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
FRONT = os.path.join(BUILD, "bench", "latency_front")
LATENCY_MS = 40
# Generous: CI machines run other tests beside this one.
SLACK_S = 0.5


class Upstream:
    """Answers GET /echo (the request back as the body), /slow?ms=N,
    /close (then closes), /big?n=N."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        buf = b""
        with c:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                req = head + b"\r\n\r\n"
                path = head.split(b" ")[1].decode()
                close = False
                if path.startswith("/slow"):
                    threading.Event().wait(int(path.split("=")[1]) / 1000.0)   # the server is slow
                    body = b"slow"
                elif path.startswith("/big"):
                    n = int(path.split("=")[1])
                    body = bytes((i * 7) & 0xFF for i in range(256)) * (n // 256)
                elif path == "/close":
                    body, close = b"bye", True
                else:
                    body = req
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" %
                          (len(body), b"Connection: close\r\n" if close else b"") + body)
                if close:
                    return

    def stop(self):
        self.sock.close()


def read_answer(s):
    """One HTTP/1.1 answer with Content-Length; returns (body, header text)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the answer's head")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    while len(body) < n:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    return body, head.decode()


@unittest.skipUnless(os.access(FRONT, os.X_OK), "bench/latency_front not built in %s" % BUILD)
class LatencyFrontTest(unittest.TestCase):
    def setUp(self):
        self.up = Upstream()
        self.tmp = tempfile.mkdtemp(prefix="s3g-front-test-")
        pf = os.path.join(self.tmp, "port")
        self.front = subprocess.Popen([FRONT, str(self.up.port), str(LATENCY_MS), pf],
                                      stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(pf):
            self.assertIsNone(self.front.poll(), "front exited")
            self.assertLess(time.monotonic(), deadline, "no port file")
            select.select([], [], [], 0.01)
        with open(pf) as f:
            self.port = int(f.read())

    def tearDown(self):
        if self.front.poll() is None:
            self.front.kill()
        self.front.wait()
        self.front.stdout.close()
        self.up.stop()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def timed(self, s, path, extra=b""):
        req = b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path.encode(), extra)
        t0 = time.monotonic()
        s.sendall(req)
        body, head = read_answer(s)
        return time.monotonic() - t0, req, body, head

    def figures(self, sig=signal.SIGUSR1):
        self.front.send_signal(sig)
        r, _, _ = select.select([self.front.stdout], [], [], 10)
        self.assertTrue(r, "no figures printed")
        return json.loads(self.front.stdout.readline())

    def test_held_for_the_latency_byte_for_byte_on_kept_alive_connections(self):
        s = self.connect()
        for i in range(3):
            dt, req, body, _ = self.timed(s, "/echo", b"X-N: %d\r\n" % i)
            self.assertEqual(body, req)
            self.assertGreaterEqual(dt, LATENCY_MS / 1000.0)
            self.assertLess(dt, LATENCY_MS / 1000.0 + SLACK_S)
        s.close()
        self.assertEqual(self.up.conns, 1)
        f = self.figures()
        self.assertEqual(f["requests"], 3)
        self.assertEqual(f["answers"], 3)
        self.assertEqual(f["turnarounds"], 2)
        self.assertGreaterEqual(f["hold_ms"], LATENCY_MS)
        self.assertEqual(f["upstream_late"], 0)
        # afresh after SIGUSR1
        self.assertEqual(self.figures()["requests"], 0)

    def test_many_connections_at_once(self):
        socks = [self.connect() for _ in range(32)]
        t0 = time.monotonic()
        for i, s in enumerate(socks):
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-I: %d\r\n\r\n" % i)
        for i, s in enumerate(socks):
            body, _ = read_answer(s)
            self.assertIn(b"X-I: %d\r\n" % i, body)
        self.assertGreaterEqual(time.monotonic() - t0, LATENCY_MS / 1000.0)
        for s in socks:
            s.close()

    def test_a_late_upstream_is_not_held_again(self):
        s = self.connect()
        dt, _, body, _ = self.timed(s, "/slow?ms=%d" % (3 * LATENCY_MS))
        self.assertEqual(body, b"slow")
        self.assertGreaterEqual(dt, 3 * LATENCY_MS / 1000.0)
        self.assertLess(dt, 4 * LATENCY_MS / 1000.0 + SLACK_S)
        self.assertEqual(self.figures()["upstream_late"], 1)
        s.close()

    def test_big_answer_intact(self):
        s = self.connect()
        n = 2 * 1024 * 1024
        dt, _, body, _ = self.timed(s, "/big?n=%d" % n)
        self.assertEqual(body, bytes((i * 7) & 0xFF for i in range(256)) * (n // 256))
        self.assertGreaterEqual(dt, LATENCY_MS / 1000.0)
        s.close()

    def test_connection_close_answer_still_delivered_then_eof(self):
        s = self.connect()
        dt, _, body, head = self.timed(s, "/close")
        self.assertEqual(body, b"bye")
        self.assertIn("Connection: close", head)
        self.assertGreaterEqual(dt, LATENCY_MS / 1000.0)
        self.assertEqual(s.recv(1), b"")       # the front closed it after the answer
        s.close()

    def test_client_gone_while_held_then_new_connection_works(self):
        s = self.connect()
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()
        s = self.connect()
        dt, req, body, _ = self.timed(s, "/echo")
        self.assertEqual(body, req)
        s.close()

    def test_sigusr2_drops_the_latency_and_sigterm_prints_and_exits(self):
        s = self.connect()
        self.front.send_signal(signal.SIGUSR2)
        # the signal is handled before the next request is read: this
        # connection's first answer may still be held, the next not
        self.timed(s, "/echo")
        dt, req, body, _ = self.timed(s, "/echo")
        self.assertEqual(body, req)
        self.assertLess(dt, LATENCY_MS / 1000.0)
        s.close()
        f = self.figures(signal.SIGTERM)
        self.assertEqual(f["requests"], 2)
        self.assertEqual(self.front.wait(timeout=10), 0)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
