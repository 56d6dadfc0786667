"""Loopback HTTP(S) fixture for tests/aws/test_http_loop.c.

Usage: httpd_fixture.py [--tls DIR]
Binds 127.0.0.1 port 0 and prints one line "PORT CAFILE" (CAFILE "-" without
TLS; with --tls a throwaway self-signed certificate for localhost/127.0.0.1
is written to DIR). Exits when stdin closes (the test process went away).

Paths:
  /ok                 200, small body, x-amz-request-id, x-amz-id-2
  /slow?ms=N          wait N ms, then 200
  /big?n=N            200 with an N-byte body (Content-Length)
  /chunked?n=N        200 with an N-byte chunked body
  /reset              abortive close (TCP RST) without a response
  /status?code=C      answer C with x-amz-retry-after: 1500
  /echo               200, body = "METHOD\\n" + request headers + "\\n" + body
  /stats              JSON: connections, requests, max_concurrent (not counted)
  /zero               zero the counters
"""
import datetime
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

lock = threading.Lock()
stats = {"connections": 0, "requests": 0, "concurrent": 0, "max_concurrent": 0}


def make_cert(d):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cpath = os.path.join(d, "cert.pem")
    kpath = os.path.join(d, "key.pem")
    with open(cpath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kpath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cpath, kpath


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        with lock:
            stats["connections"] += 1

    def send_body(self, code, body, extra=()):
        self.send_response(code)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", "REQ123")
        self.send_header("x-amz-id-2", "HOST456")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if u.path == "/stats":
            with lock:
                s = json.dumps(stats).encode()
            return self.send_body(200, s)
        if u.path == "/zero":
            with lock:
                for k in stats:
                    stats[k] = 0
            return self.send_body(200, b"")
        with lock:
            stats["requests"] += 1
            stats["concurrent"] += 1
            stats["max_concurrent"] = max(stats["max_concurrent"], stats["concurrent"])
        try:
            if u.path == "/ok":
                self.send_body(200, b"<ok/>")
            elif u.path == "/slow":
                time.sleep(int(q.get("ms", "100")) / 1000.0)
                self.send_body(200, b"slow")
            elif u.path == "/big":
                self.send_body(200, b"x" * int(q["n"]))
            elif u.path == "/chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                left = int(q["n"])
                while left:
                    c = min(left, 16384)
                    self.wfile.write(b"%x\r\n" % c + b"y" * c + b"\r\n")
                    left -= c
                self.wfile.write(b"0\r\n\r\n")
            elif u.path == "/reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
            elif u.path == "/status":
                self.send_body(int(q["code"]), b"<Error><Code>SlowDown</Code></Error>",
                               [("x-amz-retry-after", "1500")])
            elif u.path.startswith("/raw/"):
                self.send_body(200, self.path.encode())
            elif u.path == "/echo":
                hdrs = "".join("%s: %s\n" % (k, v) for k, v in self.headers.items())
                self.send_body(200, ("%s\n%s\n" % (self.command, hdrs)).encode() + body)
            else:
                self.send_body(404, b"<Error><Code>NoSuchKey</Code></Error>")
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            with lock:
                stats["concurrent"] -= 1

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    cafile = "-"
    if len(sys.argv) >= 3 and sys.argv[1] == "--tls":
        cafile, key = make_cert(sys.argv[2])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cafile, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdout.write("%d %s\n" % (srv.server_address[1], cafile))
    sys.stdout.flush()
    sys.stdin.read()      # until the test closes the pipe or exits
    os._exit(0)


if __name__ == "__main__":
    main()
