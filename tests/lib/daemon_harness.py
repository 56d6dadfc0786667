"""Start the real s3grantd with an sd_notify listener and wait on what it says.

    with Daemon(config_text) as d:       # writes the config to a temp file
        d.start()
        d.wait_notify("READY=1")        # -> the message dict
        d.signal(signal.SIGHUP)
        d.wait_log("configuration reloaded")

Every wait has a timeout and raises TimeoutError with what was seen; nothing
sleeps to synchronise. NOTIFY_SOCKET is a Unix datagram socket bound to a
temp path (SO_PASSCRED on, so each message carries the sender's pid).
stderr is read by a thread into lines (logfmt); the binary is
$S3G_BUILD_DIR/daemon/s3grantd.
"""
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

SRC = os.environ.get("S3G_SOURCE_DIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("S3G_BUILD_DIR", os.path.join(SRC, "build"))
BINARY = os.path.join(BUILD, "daemon", "s3grantd")


class Notify:
    """A NOTIFY_SOCKET listener. Messages are dicts of KEY -> value, plus
    '_raw' (the datagram text), '_t' (monotonic arrival) and '_pid'."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        self.messages = []
        self.cv = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.closed:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:12])[0]
            text = data.decode("utf-8", "replace")
            msg = {"_raw": text, "_t": time.monotonic(), "_pid": pid}
            for line in text.split("\n"):
                k, sep, v = line.partition("=")
                if sep:
                    msg[k] = v
            with self.cv:
                self.messages.append(msg)
                self.cv.notify_all()

    def wait(self, pred, timeout, start=0):
        """First message at index >= start matching pred; returns (index, msg)."""
        deadline = time.monotonic() + timeout
        with self.cv:
            i = start
            while True:
                while i < len(self.messages):
                    if pred(self.messages[i]):
                        return i, self.messages[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching sd_notify message in %.1fs; seen: %r"
                                       % (timeout, [m["_raw"] for m in self.messages[start:]]))
                self.cv.wait(left)

    def close(self):
        self.closed = True
        self.sock.close()


def has(kv):
    """Predicate: the message contains KEY=VALUE (or KEY when no '=')."""
    k, sep, v = kv.partition("=")
    return lambda m: k in m and (not sep or m[k] == v)


class Daemon:
    def __init__(self, config_text=None, config_path=None, env=None, args=None):
        self.tmp = tempfile.mkdtemp(prefix="s3g-daemon-")
        self.config_path = config_path or os.path.join(self.tmp, "s3grantd.conf")
        if config_text is not None:
            self.write_config(config_text)
        self.extra_env = env or {}
        self.args = args or []
        self.notify = Notify(os.path.join(self.tmp, "notify.sock"))
        self.proc = None
        self.lines = []
        self.cv = threading.Condition()
        self.cursor = 0          # notify index after the last wait_notify

    def write_config(self, text):
        tmp = self.config_path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    def env(self):
        """The daemon's environment: ours without systemd's variables, with
        NOTIFY_SOCKET pointing at the capture and extra_env on top."""
        env = dict(os.environ)
        for k in ("JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS"):
            env.pop(k, None)
        env["NOTIFY_SOCKET"] = self.notify.path
        env.update(self.extra_env)
        return env

    def start(self, watchdog_usec=None):
        env = self.env()
        cmd = [BINARY, "--config", self.config_path] + self.args
        if watchdog_usec is not None:
            # sd_watchdog_enabled() answers only when WATCHDOG_PID is our own pid.
            env["WATCHDOG_USEC"] = str(watchdog_usec)
            cmd = ["/bin/sh", "-c", 'export WATCHDOG_PID=$$; exec "$@"', "sh"] + cmd
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()
        return self

    def _read_stderr(self):
        for raw in self.proc.stderr:
            with self.cv:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cv.notify_all()

    @property
    def stderr(self):
        with self.cv:
            return "\n".join(self.lines)

    def wait_log(self, needle, timeout=10):
        """First stderr line containing needle (str) or satisfying it (callable)."""
        pred = needle if callable(needle) else (lambda l: needle in l)
        deadline = time.monotonic() + timeout
        with self.cv:
            i = 0
            while True:
                while i < len(self.lines):
                    if pred(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no log line %r in %.1fs; stderr:\n%s"
                                       % (needle, timeout, "\n".join(self.lines)))
                self.cv.wait(left)

    def wait_notify(self, kv, timeout=10, since=None):
        """Next message (after the previous wait, or index `since`) with kv."""
        start = self.cursor if since is None else since
        i, m = self.notify.wait(has(kv) if isinstance(kv, str) else kv, timeout, start)
        self.cursor = i + 1
        return m

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=10):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self.proc:
            self.reader.join(timeout=5)
        self.notify.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def run_binary(args, timeout=30, env=None):
    """Run s3grantd with args; returns CompletedProcess (text)."""
    return subprocess.run([BINARY] + args, capture_output=True, text=True,
                          timeout=timeout, env=env)
