"""Helpers for the change-queue watcher tests: a migrated database with one
integration, a daemon config, and parsing of the daemon's debug lines
("claimed changes", "acked changes", "released changes")."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from daemon_harness import BUILD, Daemon  # noqa: E402
from pgtmp import fresh_db, psql  # noqa: E402

CTL = os.path.join(BUILD, "ctl", "s3grantctl")


def migrated_db(prefix="watch"):
    """A fresh migrated database holding integration 1; its queue is empty."""
    db = fresh_db(prefix)
    r = subprocess.run([CTL, "--db", db, "db", "migrate"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("db migrate failed: %s" % (r.stdout + r.stderr))
    psql(db, "INSERT INTO s3grant.integrations (name, aws_account_id, aws_region, location_role_arn,"
             " location_path) VALUES ('one', '123456789012', 'us-east-1',"
             " 'arn:aws:iam::123456789012:role/loc', 's3://research-data');"
             "DELETE FROM s3grant.change_queue")
    return db


def conf(conninfo, poll="1h", extra_reconcile="", extra=""):
    return ("[database]\nconninfo = %s\nreconnect_max_backoff = 1s\nstatement_timeout = 10s\n"
            "[daemon]\nlog_level = debug\nshutdown_timeout = 5s\n"
            "[reconcile]\nqueue_poll_interval = %s\n%s%s"
            % (conninfo, poll, extra_reconcile, extra))


def add_sources(db, first, count, sql_suffix=""):
    """Insert data sources p<first>..p<first+count-1> in one statement; returns
    their queue keys."""
    rows = psql(db, "INSERT INTO s3grant.data_sources (integration_id, prefix)"
                    " SELECT 1, 'p' || g FROM generate_series(%d, %d) g RETURNING id"
                    % (first, first + count - 1) + sql_suffix)
    return ["d:1:%s" % i for i in rows.split()]


def field(line, name):
    m = re.search(r'(?:^| )%s=("(?:[^"\\]|\\.)*"|\S*)' % re.escape(name), line)
    if not m:
        return None
    v = m.group(1)
    return v[1:-1] if v.startswith('"') else v


def keys_of(lines, msg):
    """Every key named in the debug lines with msg="<msg>" (in order)."""
    out = []
    for l in lines:
        if 'msg="%s"' % msg in l:
            k = field(l, "keys")
            if k:
                out.extend(k.split(","))
    return out


def claimed(d):
    with d.cv:
        return keys_of(list(d.lines), "claimed changes")


def acked(d):
    with d.cv:
        return keys_of(list(d.lines), "acked changes")


def wait_keys(d, msg, keys, timeout=10):
    """Wait until every key of `keys` appeared in a msg line."""
    want = set(keys)
    return d.wait_log(lambda l: want <= set(keys_of(d.lines, msg)), timeout=timeout)


def wait_daemons(daemons, pred, timeout=30):
    """Wait until pred() holds over the output of several daemons: re-checked
    whenever any of them logs (condition waits, bounded slices so a line
    from another daemon is noticed)."""
    import time
    deadline = time.monotonic() + timeout
    seen = None
    while True:
        if pred():
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("condition not met in %.1fs" % timeout)
        d = daemons[0]
        with d.cv:
            n = len(d.lines)
            if seen == n:
                d.cv.wait(min(left, 0.05))
            seen = len(d.lines)


def queue_keys(db):
    return set(psql(db, "SELECT key FROM s3grant.change_queue").split())


__all__ = ["Daemon", "migrated_db", "conf", "add_sources", "field", "keys_of", "claimed",
           "acked", "wait_keys", "wait_daemons", "queue_keys", "psql"]
