"""benchlib.py — helpers the bench scripts share."""
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time


def set_autogroup_nice(nice):
    """Set /proc/self/autogroup's nice; returns the previous value."""
    with open("/proc/self/autogroup") as f:
        old = int(f.read().split("nice")[1])
    with open("/proc/self/autogroup", "w") as f:
        f.write(str(nice))
    return old


class LatencyFront:
    """bench/latency_front in front of a server on 127.0.0.1:upstream_port:
    each answer is handed to the client latency_ms after its request reached
    the front (see latency_front.c). stop() returns the front's figures."""

    def __init__(self, binary, upstream_port, latency_ms):
        self.binary = binary
        self.upstream_port = upstream_port
        self.latency_ms = latency_ms
        self.proc = None
        self.port = None
        self.tmpdir = None

    def start(self, timeout=10):
        self.tmpdir = tempfile.mkdtemp(prefix="s3g-front-")
        port_file = os.path.join(self.tmpdir, "port")
        self.proc = subprocess.Popen([self.binary, str(self.upstream_port), str(self.latency_ms), port_file],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                raise RuntimeError("latency_front exited (%s)" % self.proc.returncode)
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("latency_front did not start within %ss" % timeout)
            time.sleep(0.01)
        with open(port_file) as f:
            self.port = int(f.read())
        return self

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def figures(self, timeout=10):
        """The front's figures since the last call (or its start), then afresh."""
        self.proc.send_signal(signal.SIGUSR1)
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise RuntimeError("latency_front printed no figures within %ss" % timeout)
        return json.loads(self.proc.stdout.readline())

    def no_latency(self):
        """Answers to requests from now on go out at once."""
        self.proc.send_signal(signal.SIGUSR2)

    def stop(self):
        """Stops the front; returns its figures (dict), or None."""
        stats = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
            out, _ = self.proc.communicate(timeout=10)
            lines = (out or "").strip().splitlines()
            stats = json.loads(lines[-1]) if lines else None
            self.proc = None
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        return stats

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Fronted:
    """A fake seen through a LatencyFront: .endpoint is the front's, .front the
    front, the rest the fake's."""

    def __init__(self, fake, front):
        self._fake = fake
        self.front = front
        self.endpoint = front.endpoint

    def __getattr__(self, name):
        return getattr(self._fake, name)


def front_fake(fake, build, latency_ms):
    """Start build/bench/latency_front before a running fake (which should
    then run at 0 ms); returns the Fronted view. Stop it with .front.stop()."""
    front = LatencyFront(os.path.join(build, "bench", "latency_front"), fake.port, latency_ms).start()
    return Fronted(fake, front)
