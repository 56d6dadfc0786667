"""Loopback server answering with broken or oversized bodies, for
tests/client/test_client_faults.c. Prints "PORT" on stdout, exits when
killed. Paths (any method):
  .../grant/malformed   200, truncated XML
  .../grant/notxml      200, plain text
  .../grant/huge        200, a 2 MiB well-formed body
  .../grant/badxmlerr   500-free 403 with an unreadable error body
anything else         404 with a bare S3 <Error> body.
"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        p = self.path.split("?")[0]
        code = 200
        if p.endswith("/malformed"):
            body = b"<GetAccessGrantResult><AccessGrantId>abc</AccessGrantId><Grantee><GranteeType>IAM"
        elif p.endswith("/notxml"):
            body = b"hello, this is not XML"
        elif p.endswith("/huge"):
            body = b"<GetAccessGrantResult><AccessGrantId>" + b"a" * (2 << 20) + b"</AccessGrantId></GetAccessGrantResult>"
        elif p.endswith("/badxmlerr"):
            code = 403
            body = b"<Error><Code>AccessDenied"
        else:
            code = 404
            body = b"<Error><Code>NoSuchThing</Code><Message>nothing here</Message><RequestId>R1</RequestId></Error>"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", "REQ-BAD")
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except OSError:
                pass  # the client stopped reading (response over its limit)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer

    def log_message(self, *a):
        pass


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
