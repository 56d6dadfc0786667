"""The real s3grantd reconciles against the S3 Control fake: integration
create (location registered) → subscribe → grant exists; read → write made
before-break (the fake's ordered log); principal change; Identity Center user
→ DIRECTORY_USER; unsubscribe → deleted; data source delete; drift repaired at
the resync (deleted behind its back, added by hand; another location's grant
untouched); integration delete (grants, then the location).

S3G_NEEDS: pg
S3G_TIMEOUT: 240
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reconlib import ACCOUNT, Env, FakeTestCase, gkey, wait_until  # noqa: E402

ALICE = "arn:aws:iam::%s:user/alice" % ACCOUNT
BOB = "arn:aws:iam::%s:role/analyst-bob" % ACCOUNT
CAROL = "94482488-3041-7026-18f3-be45837cd0e4"


class ReconDaemon(FakeTestCase):
    def setUp(self):
        super().setUp()
        self.e = Env(self.fake)
        self.addCleanup(self.e.close)

    def grants(self):
        return sorted(gkey(g) for g in self.fake.grants())

    def wait_grants(self, want, timeout=30):
        want = sorted(want)
        return wait_until(lambda: self.grants() == want, timeout, "fake grants == %r (have %r)" % (want, self.grants()))

    def test_lifecycle_and_changes(self):
        e = self.e
        iid = e.create_integration()
        d = e.daemon()
        e.wait_status(iid, "enabled")
        locs = self.fake.state()["locations"]
        self.assertEqual([(l["scope"], l["id"]) for l in locs], [("s3://", "default")])
        vr = e.sql("SELECT validation_results->>'status' FROM s3grant.integrations WHERE id = %d" % iid).strip()
        self.assertEqual(vr, "passed")

        # subscribe → grant exists
        e.user("alice", ALICE)
        ds = e.datasource(iid, "research-data/demographics")
        e.subscribe("alice", ds, "read")
        self.wait_grants([(ALICE, "READ", "s3://research-data/demographics*")])
        d.wait_log("grant created")
        wait_until(lambda: e.sql("SELECT status FROM s3grant.subscriptions").strip() == "active", 20, "active")

        # read → write: the new grant before the old one goes
        self.fake.clear_log()
        e.subscribe("alice", ds, "write")
        self.wait_grants([(ALICE, "READWRITE", "s3://research-data/demographics*")])
        ops = [(x["op"], x.get("permission")) for x in self.fake.log() if x["status"] == 200]
        self.assertEqual(ops[0], ("CreateAccessGrant", "READWRITE"), ops)
        self.assertEqual(ops[1][0], "DeleteAccessGrant", ops)

        # principal change (IAM user → role) and an Identity Center user
        e.user("alice", BOB)
        self.wait_grants([(BOB, "READWRITE", "s3://research-data/demographics*")])
        e.user("carol", CAROL)
        ds2 = e.datasource(iid, "research-data/claims")
        e.subscribe("carol", ds2, "read")
        self.wait_grants([(BOB, "READWRITE", "s3://research-data/demographics*"),
                          (CAROL, "READ", "s3://research-data/claims*")])
        types = {g["grantee"]: g["grantee_type"] for g in self.fake.grants()}
        self.assertEqual(types[CAROL], "DIRECTORY_USER")

        # unsubscribe → deleted; data source delete takes its grants
        e.unsubscribe("carol", ds2)
        self.wait_grants([(BOB, "READWRITE", "s3://research-data/demographics*")])
        e.ctl("datasources", "delete", str(ds))
        self.wait_grants([])
        audit = e.sql("SELECT operation, count(*) FROM s3grant.audit_log GROUP BY 1 ORDER BY 1")
        self.assertIn("create|", audit)
        self.assertIn("delete|", audit)
        rid = e.sql("SELECT count(*) FROM s3grant.audit_log WHERE aws_request_id IS NULL").strip()
        self.assertEqual(rid, "0")

        # integration delete: grants first, then the location
        e.subscribe("alice", e.datasource(iid, "research-data/x"), "read")
        self.wait_grants([(BOB, "READ", "s3://research-data/x*")])
        self.fake.clear_log()
        e.ctl("integrations", "delete", str(iid))
        e.wait_status(iid, "deleted")
        ops = [x["op"] for x in self.fake.log() if x["status"] == 200]
        self.assertEqual(ops, ["DeleteAccessGrant", "DeleteAccessGrantsLocation"])
        self.assertEqual(self.fake.state()["locations"], [])

    def test_drift_repaired_at_resync(self):
        e = self.e
        other = self.fake.add_grant(ALICE, "READ", location_scope="s3://other-bucket", sub_prefix="x*")
        iid = e.create_integration()
        e.user("alice", ALICE)
        ds = e.datasource(iid, "research-data/demographics")
        e.subscribe("alice", ds, "read")
        d = e.daemon()
        e.wait_status(iid, "enabled")
        self.wait_grants([(ALICE, "READ", "s3://research-data/demographics*"),
                          (ALICE, "READ", "s3://other-bucket/x*")])
        mine = [g for g in self.fake.grants() if g["id"] != other["id"]][0]
        # behind the daemon's back: delete ours, add one by hand in the managed location
        from fakes import s3control_client
        s3c = s3control_client(self.fake)
        s3c.delete_access_grant(AccountId=ACCOUNT, AccessGrantId=mine["id"])
        self.fake.add_grant(BOB, "READWRITE", sub_prefix="secret-bucket/*")
        # the next resync (every start, then every resync_interval) repairs both
        d.stop()
        d2 = e.daemon()
        self.wait_grants([(ALICE, "READ", "s3://research-data/demographics*"),
                          (ALICE, "READ", "s3://other-bucket/x*")])
        d2.wait_log(lambda l: "grant created" in l and "repair" in l)
        d2.wait_log(lambda l: "grant deleted" in l and "repair" in l)
        ops = e.sql("SELECT operation FROM s3grant.audit_log WHERE operation LIKE 'repair%' ORDER BY 1")
        self.assertEqual(ops.split(), ["repair-create", "repair-delete"])
        self.assertIn(other["id"], [g["id"] for g in self.fake.grants()])


if __name__ == "__main__":
    unittest.main()
