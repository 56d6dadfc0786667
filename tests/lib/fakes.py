"""Fakes for AWS used by the tests.

S3ControlFake -- the project's signature-verifying fake of the S3 Control Access Grants
API (tests/fakes/s3control/server.js, Node). Use as a context manager:

    with S3ControlFake(latency_ms=5) as fake:
        fake.endpoint            # "http://127.0.0.1:PORT"
        fake.config(throttle_next=2, retry_after_ms=50)
        fake.add_grant("arn:aws:iam::111122223333:role/r", "READ", sub_prefix="b/x/*")
        fake.log(); fake.state(); fake.stats(); fake.reset()

Knobs (keyword arguments of the constructor and of config()) are those of the server:
latency_ms, latency_jitter_ms, throttle_rate, throttle_next, throttle_status (503|429),
retry_after_ms, error_rate, error_next, reset_rate, reset_next, fault_ops,
clock_offset_ms, max_skew_ms, expired_tokens, invalid_grantee_seconds,
invalid_grantee_principals, invalid_iam_role_seconds, list_lag_ms, delete_lag_ms,
grant_quota, location_quota, region, seed, log_limit.

The first start runs `npm ci` when node_modules is missing (serialised with a lock file,
so parallel tests do not race). Nothing here sleeps to synchronise: start-up waits on
the server's stdout line with a deadline.
"""
import atexit
import fcntl
import hashlib
import json
import os
import select
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

SRC = os.environ.get("S3G_SOURCE_DIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
FAKE_DIR = os.path.join(SRC, "tests", "fakes", "s3control")

ACCOUNT = "111122223333"
REGION = "us-east-1"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def ensure_node_modules(fake_dir=FAKE_DIR, timeout=300):
    """Run `npm ci` once if the fake's dependencies are not installed."""
    marker = os.path.join(fake_dir, "node_modules", "@smithy", "signature-v4", "package.json")
    if os.path.exists(marker):
        return
    if shutil.which("npm") is None:
        raise RuntimeError("npm not found: install Node.js 20 and npm")
    lock = os.path.join(tempfile.gettempdir(),
                        "s3g-npm-ci-%s.lock" % hashlib.sha1(fake_dir.encode()).hexdigest()[:12])
    with open(lock, "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        try:
            if os.path.exists(marker):
                return
            r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=fake_dir,
                               capture_output=True, text=True, timeout=timeout)
            if r.returncode != 0 or not os.path.exists(marker):
                raise RuntimeError("npm ci failed in %s:\n%s%s" % (fake_dir, r.stdout, r.stderr))
        finally:
            fcntl.flock(lf, fcntl.LOCK_UN)


class FakeError(RuntimeError):
    pass


_RUNNING = set()


@atexit.register
def _stop_all():
    """A test that forgot stop() (or died in setUpClass) leaves no fake behind."""
    for fake in list(_RUNNING):
        fake.stop()


class S3ControlFake:
    """A running tests/fakes/s3control/server.js on 127.0.0.1, port chosen by the kernel."""

    def __init__(self, credentials=None, default_credentials=True, tls_cert=None, tls_key=None,
                 tls_ca=None, start_timeout=30, verbose=False, **knobs):
        self.credentials = list(credentials or [])
        self.default_credentials = default_credentials
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.tls_ca = tls_ca  # CA to trust for the control API (default: the certificate itself)
        self.start_timeout = start_timeout
        self.verbose = verbose
        self.knobs = knobs
        self.proc = None
        self.port = None
        self.pid = None
        self.tmpdir = None
        self.stderr_path = None
        self._drain = None
        self.scheme = "https" if tls_cert else "http"

    # -- life cycle ---------------------------------------------------------------

    def args(self):
        a = ["node", os.path.join(FAKE_DIR, "server.js"), "--port", "0",
             "--port-file", os.path.join(self.tmpdir, "port")]
        if self.tls_cert:
            a += ["--tls-cert", self.tls_cert, "--tls-key", self.tls_key]
        if not self.default_credentials:
            a.append("--no-default-credentials")
        for c in self.credentials:
            a += ["--credential", ":".join(
                [c["access_key"], c["secret_key"], c.get("session_token") or "", c.get("account") or ""])]
        if self.verbose:
            a.append("--verbose")
        return a

    def start(self):
        ensure_node_modules()
        self.tmpdir = tempfile.mkdtemp(prefix="s3g-fake-")
        self.stderr_path = os.path.join(self.tmpdir, "stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.args(), stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=FAKE_DIR)
        _RUNNING.add(self)
        try:
            return self._started()
        except BaseException:
            self.stop()
            raise

    def _started(self):
        line = self._read_line(self.start_timeout)
        info = json.loads(line)
        port_file = os.path.join(self.tmpdir, "port")
        with open(port_file) as f:
            self.port = int(f.read().strip())
        if self.port != info["port"]:
            raise FakeError("port file and stdout disagree")
        self.pid = info["pid"]
        self.scheme = info["scheme"]
        # The server prints nothing more on stdout; keep the pipe drained anyway.
        self._drain = threading.Thread(target=self.proc.stdout.read, daemon=True)
        self._drain.start()
        if self.knobs:
            self.config(**self.knobs)
        return self

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise FakeError("fake did not start within %ss: %s" % (timeout, self.stderr()))
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                code = self.proc.wait(timeout=5)
                raise FakeError("fake exited (%s) before listening: %s" % (code, self.stderr()))
            buf += chunk
        return buf.split(b"\n", 1)[0].decode()

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None
        _RUNNING.discard(self)
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- addresses ----------------------------------------------------------------

    @property
    def endpoint(self):
        """Base URL without the account host prefix."""
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    def prefixed_host(self, account=ACCOUNT):
        """Host header value with the account prefix (the name does not resolve: connect
        to 127.0.0.1 and send this as Host, e.g. with CURLOPT_CONNECT_TO)."""
        return "%s.localhost:%d" % (account, self.port)

    # -- control API --------------------------------------------------------------

    def _call(self, method, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        opener = _OPENER
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.tls_ca or self.tls_cert)
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                 urllib.request.HTTPSHandler(context=ctx))
        req = urllib.request.Request(self.endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with opener.open(req, timeout=timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise FakeError("%s %s: %s %s" % (method, path, e.code, e.read().decode(errors="replace")))

    def config(self, **knobs):
        """Set fault/behaviour knobs; returns the full knob set."""
        return self._call("POST", "/__fake/config", knobs)["knobs"]

    def get_config(self):
        return self._call("GET", "/__fake/config")

    def add_credentials(self, access_key, secret_key, session_token=None, account=None, replace=False):
        c = {"access_key": access_key, "secret_key": secret_key}
        if session_token:
            c["session_token"] = session_token
        if account:
            c["account"] = account
        return self._call("POST", "/__fake/credentials", {"credentials": [c], "replace": replace})

    def log(self, since=0):
        """Mutating API calls in order: dicts with seq, time, op, status, code, grant_id,
        grantee, permission, scope, ... (status 0 = connection reset)."""
        return self._call("GET", "/__fake/log?since=%d" % since)["entries"]

    def clear_log(self):
        return self._call("POST", "/__fake/log/clear", {})

    def state(self, account=None, region=None):
        q = "&".join("%s=%s" % (k, v) for k, v in (("account", account), ("region", region)) if v)
        return self._call("GET", "/__fake/state" + ("?" + q if q else ""))

    def grants(self, account=None, region=None):
        return self.state(account, region)["grants"]

    def add_state(self, instances=None, locations=None, grants=None):
        return self._call("POST", "/__fake/state", {
            "instances": instances or [], "locations": locations or [], "grants": grants or []})

    def add_grant(self, grantee, permission, sub_prefix="", location_id=None, location_scope=None,
                  grantee_type="IAM", application_arn=None, account=ACCOUNT, region=None, **extra):
        """Create a grant behind the daemon's back (drift); creates the instance and the
        location (default: s3://) when missing. Returns the grant as JSON."""
        g = {"grantee": grantee, "permission": permission, "sub_prefix": sub_prefix,
             "grantee_type": grantee_type, "account": account}
        for k, v in (("location_id", location_id), ("location_scope", location_scope),
                     ("application_arn", application_arn), ("region", region)):
            if v is not None:
                g[k] = v
        g.update(extra)
        return self.add_state(grants=[g])["grants"][0]

    def stats(self):
        return self._call("GET", "/__fake/stats")

    def clear_stats(self):
        return self._call("POST", "/__fake/stats/clear", {})

    def reset(self, keep_config=False):
        """Forget all state, the log and counters; knobs and credentials go back to the
        start-up values unless keep_config."""
        return self._call("POST", "/__fake/reset", {"keep_config": keep_config})


def s3control_client(fake, access_key=ACCESS_KEY, secret_key=SECRET_KEY, session_token=None,
                     region=REGION, max_attempts=1, verify=None, **config):
    """A boto3 s3control client aimed at the fake. botocore prefixes the account id to
    the host even with a custom endpoint; a before-sign handler strips it (TESTING.md)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3control", region_name=region, endpoint_url=fake.endpoint,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        aws_session_token=session_token, verify=verify,
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}, **config))

    def strip_prefix(request, **kwargs):
        scheme, rest = request.url.split("://", 1)
        host, _, path = rest.partition("/")
        label, dot, tail = host.partition(".")
        if dot and label.isdigit() and len(label) == 12:
            request.url = "%s://%s/%s" % (scheme, tail, path)

    client.meta.events.register("before-sign.s3-control.*", strip_prefix)
    return client
