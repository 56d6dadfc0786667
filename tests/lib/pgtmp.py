"""Throwaway PostgreSQL for Python tests.

shared_env()   -> the environment of the CTest 'pg' fixture (PGHOST/PGPORT/PGUSER)
fresh_db(name) -> creates an empty database on the shared server, returns a conninfo
PgTmp()        -> a private server (for tests that stop/start Postgres themselves)
"""
import os
import subprocess
import tempfile
import uuid

SRC = os.environ.get("S3G_SOURCE_DIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
PG_TMP = os.path.join(SRC, "scripts", "pg-tmp")


def psql(conninfo, sql, check=True):
    """Run SQL with psql; returns stdout (tuples only, unaligned, '|' separated)."""
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError("psql failed: %s" % r.stderr.strip())
    return r.stdout


def shared_conninfo(dbname="postgres"):
    host = os.environ["PGHOST"]
    port = os.environ.get("PGPORT", "5432")
    return "host=%s port=%s user=postgres dbname=%s" % (host, port, dbname)


def fresh_db(prefix="t"):
    """A new empty database on the shared fixture server; returns its conninfo."""
    name = "%s_%s" % (prefix, uuid.uuid4().hex[:12])
    psql(shared_conninfo(), "CREATE DATABASE %s" % name)
    return shared_conninfo(name)


class PgTmp:
    """A private throwaway server: PgTmp().start() ... .stop()."""

    def __init__(self, tcp=False):
        self.dir = tempfile.mkdtemp(prefix="s3g-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.tcp = tcp
        self.host = os.path.join(self.dir, "sock")
        self.port = None

    def start(self):
        args = [PG_TMP, "start", self.dir] + (["tcp"] if self.tcp else [])
        subprocess.run(args, check=True, timeout=120)
        env = open(os.path.join(self.dir, "env")).read()
        for tok in env.replace("export", "").split():
            k, _, v = tok.partition("=")
            if k == "PGPORT":
                self.port = v
        return self

    def conninfo(self, dbname="postgres"):
        return "host=%s port=%s user=postgres dbname=%s" % (self.host, self.port or "5432", dbname)

    def stop(self):
        subprocess.run([PG_TMP, "stop", self.dir], timeout=60)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
