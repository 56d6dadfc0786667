"""Scoped passes: on an integration holding many grants, a change of a few
subscriptions or principals plans only the grantees it can affect (the log
says "scoped pass: ..."), and the outcome is what the whole pass gives:
subscribe; read → write made before-break (the fake's ordered log);
unsubscribe; two users resolving to one IAM user, unsubscribe one → the
grant stays, then the other → deleted; the principals of two users sharing a
grant change one after the other; a principal change (each old grant
deleted after its new one exists); an Identity Center user; a deleted user
(no scope: the whole pass); a new data source without subscriptions plans
nothing, a data source change (d: key) with subscriptions takes the whole
pass. After each step the fake holds exactly the grants the database asks
for.

S3G_NEEDS: pg
S3G_TIMEOUT: 300
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reconlib import ACCOUNT, Env, FakeTestCase, gkey, wait_until  # noqa: E402

USERS = 40
SOURCES = 25
IDC = "94482488-3041-7026-18f3-be45837cd0e4"
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def arn(name):
    return "arn:aws:iam::%s:user/%s" % (ACCOUNT, name)


def fields(line):
    return {k: v.strip('"') for k, v in FIELD.findall(line)}


class ReconScoped(FakeTestCase):
    def setUp(self):
        super().setUp()
        self.e = Env(self.fake, prefix="rs")
        self.addCleanup(self.e.close)

    # -- helpers ---------------------------------------------------------

    def want(self):
        """The grants the database asks for: (grantee, permission, scope)."""
        rows = self.e.sql(
            "SELECT coalesce(u.principal, 'arn:aws:iam::%s:user/' || u.username),"
            " CASE s.access WHEN 'write' THEN 'READWRITE' ELSE 'READ' END, 's3://' || d.prefix || '*'"
            " FROM s3grant.subscriptions s JOIN s3grant.users u ON u.id = s.user_id"
            " JOIN s3grant.data_sources d ON d.id = s.data_source_id" % ACCOUNT)
        return sorted(set(tuple(r.split("|")) for r in rows.splitlines() if r))

    def have(self):
        return sorted(gkey(g) for g in self.fake.grants())

    def settle(self, timeout=60):
        """The fake holds exactly the wanted grants, every subscription is
        active and every change is done (the queue is empty)."""
        wait_until(lambda: self.e.sql("SELECT count(*) FROM s3grant.change_queue").strip() == "0", timeout,
                   "change queue empty")
        wait_until(lambda: self.have() == self.want(), timeout, "fake grants == database")
        wait_until(lambda: self.e.sql("SELECT count(*) FROM s3grant.subscriptions WHERE status <> 'active'")
                   .strip() == "0", timeout, "every subscription active")

    def mark(self):
        return len(self.d.lines)

    def line_after(self, mark, needle, timeout=30):
        def find():
            for l in self.d.lines[mark:]:
                if needle in l:
                    return l
            return None
        return fields(wait_until(find, timeout, "log line %r" % needle))

    def lines_after(self, mark, needle):
        return [fields(l) for l in self.d.lines[mark:] if needle in l]

    # -- the test --------------------------------------------------------

    def test_scoped_passes(self):
        e = self.e
        iid = e.create_integration()
        e.sql("INSERT INTO s3grant.users (username, principal) SELECT 'u' || i, 'arn:aws:iam::%s:user/u' || i"
              " FROM generate_series(0, %d) i" % (ACCOUNT, USERS - 1))
        e.sql("INSERT INTO s3grant.data_sources (integration_id, prefix) SELECT %d, 'bucket-s/d' || i"
              " FROM generate_series(0, %d) i" % (iid, SOURCES - 1))
        e.sql("INSERT INTO s3grant.subscriptions (user_id, data_source_id, access) SELECT u.id, d.id, 'read'"
              " FROM s3grant.users u CROSS JOIN s3grant.data_sources d")
        total = USERS * SOURCES
        self.d = d = e.daemon()
        e.wait_status(iid, "enabled", timeout=60)
        wait_until(lambda: len(self.fake.grants()) == total, 120, "%d grants" % total)
        self.settle()
        # keys of the seeding claimed after the first (whole) pass plan nothing more
        for f in self.lines_after(0, "scoped pass:"):
            self.assertEqual((f["create"], f["delete"]), ("0", "0"), f)

        # a new data source nobody subscribes to yet: nothing to plan, no whole pass
        m = self.mark()
        extra = e.datasource(iid, "bucket-s/extra")
        f = self.line_after(m, "scoped pass:")
        self.assertEqual((f["users"], f["grantees"], f["create"], f["delete"]), ("0", "0", "0", "0"), f)
        self.settle()

        # subscribe: one user, one create
        m = self.mark()
        e.subscribe("u0", extra, "read")
        f = self.line_after(m, "scoped pass:")
        self.assertEqual((f["users"], f["grantees"], f["create"], f["delete"]), ("1", "1", "1", "0"), f)
        self.assertEqual(f["desired"], str(SOURCES + 1), f)
        self.settle()
        self.assertEqual(len(self.fake.grants()), total + 1)
        self.assertEqual(self.line_after(m, "reconciling 1 grant change")["pass"], "scoped")

        # read -> write: the new grant first, then the old one goes
        self.fake.clear_log()
        m = self.mark()
        e.subscribe("u0", extra, "write")
        f = self.line_after(m, "scoped pass:")
        self.assertEqual((f["create"], f["delete"]), ("1", "1"), f)
        self.settle()
        ops = [(x["op"], x.get("permission")) for x in self.fake.log() if x["status"] == 200]
        self.assertEqual(ops, [("CreateAccessGrant", "READWRITE"), ("DeleteAccessGrant", "READ")])
        audit = e.sql("SELECT operation || ':' || reason FROM s3grant.audit_log ORDER BY id DESC LIMIT 2")
        self.assertIn("delete:replaced", audit)
        self.assertIn("create:replace", audit)

        # unsubscribe
        m = self.mark()
        e.unsubscribe("u0", extra)
        f = self.line_after(m, "scoped pass:")
        self.assertEqual((f["create"], f["delete"]), ("0", "1"), f)
        self.settle()
        self.assertEqual(len(self.fake.grants()), total)

        # two users resolving to one IAM user: "shared" (principal unset) and
        # "alias" (its ARN); one grant serves both subscriptions
        e.user("shared")
        e.user("alias", arn("shared"))
        m = self.mark()
        e.sql("INSERT INTO s3grant.subscriptions (user_id, data_source_id, access)"
              " SELECT id, %d, 'read' FROM s3grant.users WHERE username IN ('shared', 'alias')" % extra)
        self.line_after(m, "scoped pass:")
        self.settle()
        shared = [g for g in self.fake.grants() if g["grantee"] == arn("shared")]
        self.assertEqual(len(shared), 1, shared)
        m = self.mark()
        e.unsubscribe("shared", extra)
        f = self.line_after(m, "scoped pass:")
        self.assertEqual((f["users"], f["create"], f["delete"]), ("1", "0", "0"), f)
        self.settle()
        self.assertEqual([g["id"] for g in self.fake.grants() if g["grantee"] == arn("shared")], [shared[0]["id"]])
        m = self.mark()
        e.unsubscribe("alias", extra)
        f = self.line_after(m, "scoped pass:")
        self.assertEqual((f["create"], f["delete"]), ("0", "1"), f)
        self.settle()
        self.assertEqual([g for g in self.fake.grants() if g["grantee"] == arn("shared")], [])

        # the principals of two users sharing a grant change one after the
        # other: the grant stays while one of them still resolves to it
        e.user("pa")
        e.user("pb", arn("pa"))
        e.subscribe("pa", extra, "read")
        e.subscribe("pb", extra, "read")
        self.settle()
        shared = [g["id"] for g in self.fake.grants() if g["grantee"] == arn("pa")]
        self.assertEqual(len(shared), 1)
        m = self.mark()
        e.user("pb", arn("pb2"))
        f = self.line_after(m, "scoped pass:")
        self.assertEqual((f["create"], f["delete"]), ("1", "0"), f)
        self.settle()
        self.assertEqual([g["id"] for g in self.fake.grants() if g["grantee"] == arn("pa")], shared)
        m = self.mark()
        e.user("pa", arn("pa2"))
        f = self.line_after(m, "scoped pass:")
        self.assertEqual((f["grantees"], f["create"], f["delete"]), ("2", "1", "1"), f)
        self.settle()
        self.assertEqual([g for g in self.fake.grants() if g["grantee"] == arn("pa")], [])
        e.sql("DELETE FROM s3grant.subscriptions WHERE data_source_id = %d" % extra)
        self.settle()

        # principal change: u1's grants move to a role, each new one before its old one goes
        role = "arn:aws:iam::%s:role/u1-role" % ACCOUNT
        old = {g["id"]: g["sub_prefix"] for g in self.fake.grants() if g["grantee"] == arn("u1")}
        self.assertEqual(len(old), SOURCES)
        self.fake.clear_log()
        m = self.mark()
        e.user("u1", role)
        f = self.line_after(m, "scoped pass:")
        self.assertEqual((f["users"], f["grantees"], f["create"], f["delete"]),
                         ("1", "2", str(SOURCES), str(SOURCES)), f)
        self.settle()
        log = [x for x in self.fake.log() if x["status"] == 200]
        created = {x["sub_prefix"]: x["seq"] for x in log if x["op"] == "CreateAccessGrant" and x["grantee"] == role}
        deleted = {x["grant_id"]: x["seq"] for x in log if x["op"] == "DeleteAccessGrant"}
        self.assertEqual(set(deleted), set(old))
        for gid, seq in deleted.items():
            self.assertLess(created[old[gid]], seq, "grant %s deleted before its replacement" % gid)

        # an Identity Center user
        e.user("carol", IDC)
        m = self.mark()
        e.subscribe("carol", extra, "read")
        self.line_after(m, "scoped pass:")
        self.settle()
        types = {g["grantee"]: g["grantee_type"] for g in self.fake.grants()}
        self.assertEqual(types[IDC], "DIRECTORY_USER")

        # a deleted user: its old grants are not found through it, so no scope
        m = self.mark()
        e.sql("DELETE FROM s3grant.users WHERE username = 'u2'")
        f = self.line_after(m, "no scoped pass")
        self.assertEqual(f["reason"], "a changed user no longer exists")
        self.assertEqual(self.line_after(m, "reconciling %d grant changes" % SOURCES)["pass"], "whole")
        self.settle()

        # a data source change (d: key) takes the whole pass
        ds0 = int(e.sql("SELECT id FROM s3grant.data_sources WHERE prefix = 'bucket-s/d0'").strip())
        m = self.mark()
        e.ctl("datasources", "delete", str(ds0))
        f = self.line_after(m, "reconciling %d grant changes" % (USERS - 1))
        self.assertEqual(f["pass"], "whole", f)
        self.settle()
        self.assertEqual(self.lines_after(m, "scoped pass:"), [])
        # the whole pass set the health counts the scoped ones left alone
        n = len(self.want())
        wait_until(lambda: e.sql("SELECT desired_count, actual_count FROM s3grant.integration_health"
                                 " WHERE integration_id = %d" % iid).strip() == "%d|%d" % (n, n),
                   30, "health counts %d" % n)


if __name__ == "__main__":
    unittest.main()
