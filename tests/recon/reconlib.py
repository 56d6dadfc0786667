"""Shared set-up for the reconciler's daemon tests: a fresh database, a
secrets key, the S3 Control fake, an integration with the fake's access key,
and the real s3grantd pointed at the fake.

Waits poll observable state (the fake's state, the database) with a
deadline; nothing sleeps to synchronise.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from daemon_harness import BUILD, Daemon  # noqa: E402
from fakes import ACCESS_KEY, ACCOUNT, SECRET_KEY, S3ControlFake  # noqa: E402,F401
from pgtmp import fresh_db, psql  # noqa: E402

CTL = os.path.join(BUILD, "ctl", "s3grantctl")
ROLE = "arn:aws:iam::%s:role/s3grantd-location" % ACCOUNT


class FakeTestCase(unittest.TestCase):
    """One S3 Control fake per test class (FAKE_ARGS: S3ControlFake's keyword
    arguments), reset before each test with the account's Access Grants
    instance in place."""
    FAKE_ARGS = {}

    @classmethod
    def setUpClass(cls):
        cls.fake = S3ControlFake(**cls.FAKE_ARGS)
        cls.fake.start()

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def setUp(self):
        self.fake.reset()
        self.fake.add_state(instances=[{}])


def wait_until(pred, timeout=30, what="condition", interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError("%s not reached in %ss (last: %r)" % (what, timeout, last))
        time.sleep(interval)


class Env:
    def __init__(self, fake, prefix="rc", conf_extra=""):
        self.fake = fake
        self.db = fresh_db(prefix)
        self.tmp = tempfile.mkdtemp(prefix="s3g-rc-")
        self.key = os.path.join(self.tmp, "secrets-key")
        with open(self.key, "w") as f:
            f.write("42" * 32 + "\n")
        self.env = dict(os.environ, S3GRANT_SECRETS_KEY_FILE=self.key)
        self.conf_extra = conf_extra
        self.daemons = []
        self.ctl("db", "migrate")

    def ctl(self, *args, stdin=None, code=0):
        r = subprocess.run([CTL, "--db", self.db] + list(args), input=stdin, capture_output=True, text=True,
                           env=self.env, timeout=120)
        if code is not None and r.returncode != code:
            raise AssertionError("s3grantctl %s: %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout

    def sql(self, q):
        return psql(self.db, q)

    def create_integration(self, name="demo", path="s3://"):
        doc = {"type": "Native S3",
               "config": {"name": name, "awsAccountId": ACCOUNT, "awsRegion": "us-east-1",
                          "awsLocationRole": ROLE, "awsLocationPath": path,
                          "authenticationType": "accessKey", "awsAccessKeyId": ACCESS_KEY,
                          "awsSecretAccessKey": SECRET_KEY}}
        self.ctl("integrations", "create", "-f", "-", stdin=json.dumps(doc))
        return int(self.sql("SELECT id FROM s3grant.integrations WHERE name = '%s' AND status <> 'deleted'"
                            % name).strip())

    def conf(self, extra=""):
        return ("[database]\nconninfo = %s\n[daemon]\nlog_level = info\nshutdown_timeout = 10s\n"
                "status_interval = 1s\n"
                "[aws]\nregion = us-east-1\nendpoint_url_s3_control = %s\nmax_in_flight = 64\n"
                "[reconcile]\nqueue_poll_interval = 1s\nrate_limit = 10000\nresync_interval = 1h\n"
                "resync_jitter = 0\n%s\n"
                "[export]\nsink_dir = %s\nstate_dir = %s\n"
                "[secrets]\nkey_file = %s\n"
                % (self.db, self.fake.endpoint, self.conf_extra + extra, os.path.join(self.tmp, "sink"),
                   self.tmp, self.key))

    def daemon(self, extra="", start=True):
        os.makedirs(os.path.join(self.tmp, "sink"), exist_ok=True)
        d = Daemon(self.conf(extra), env=self.env)
        self.daemons.append(d)
        if start:
            d.start()
            d.wait_notify("READY=1", timeout=30)
        return d

    def close(self):
        for d in self.daemons:
            d.stop()

    def status(self, iid):
        return self.sql("SELECT status FROM s3grant.integrations WHERE id = %d" % iid).strip()

    def wait_status(self, iid, want, timeout=30):
        return wait_until(lambda: self.status(iid) == want and want, timeout, "integration %d %s" % (iid, want))

    def user(self, name, principal=None):
        self.ctl("users", "set-principal", name, *([principal] if principal else []))

    def datasource(self, iid, prefix):
        self.ctl("datasources", "add", "--integration", str(iid), "--prefix", prefix)
        return int(self.sql("SELECT id FROM s3grant.data_sources WHERE integration_id = %d AND prefix = '%s'"
                            % (iid, prefix)).strip())

    def subscribe(self, user, ds, access="read"):
        self.ctl("subscriptions", "add", "--user", user, "--data-source", str(ds), "--access", access)

    def unsubscribe(self, user, ds):
        self.ctl("subscriptions", "remove", "--user", user, "--data-source", str(ds))


def fake_grants(fake, location_id=None):
    gs = fake.grants()
    if location_id is not None:
        gs = [g for g in gs if g.get("location_id", g.get("AccessGrantsLocationId")) == location_id]
    return gs


def gkey(g):
    """(grantee, permission, scope) of a grant in the fake's state."""
    return (g.get("grantee") or g.get("grantee_id"), g.get("permission"), g.get("scope") or g.get("grant_scope"))
