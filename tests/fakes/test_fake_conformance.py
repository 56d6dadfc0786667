"""Conformance of the S3 Control Access Grants fake with the real wire format.

Every operation of tests/fakes/s3control/server.js is driven by the official SDK client
(boto3 s3control), so request serialisation, signing and response/error parsing are
botocore's own. Raw requests signed with botocore's S3SigV4Auth cover what the SDK will
not send (host prefix, missing/wrong checksums, unsigned headers), and the golden
requests of shared/aws/golden are replayed byte for byte with the fake's clock set to
their signing time.

S3G_TIMEOUT: 180
"""
import base64
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import botocore.exceptions  # noqa: E402
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from fakes import (ACCESS_KEY, ACCOUNT, FAKE_DIR, REGION, SECRET_KEY,  # noqa: E402
                   S3ControlFake, s3control_client)

ROLE = "arn:aws:iam::111122223333:role/location-role"
NS = "http://awss3control.amazonaws.com/doc/2018-08-20/"
SHARED = os.environ.get("S3G_SHARED_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared"))


def principal(name):
    return "arn:aws:iam::111122223333:role/%s" % name


def grantee(name):
    return {"GranteeType": "IAM", "GranteeIdentifier": principal(name)}


class FakeTestCase(unittest.TestCase):
    fake = None

    @classmethod
    def setUpClass(cls):
        cls.fake = S3ControlFake().start()

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def setUp(self):
        self.fake.reset()
        self.c = s3control_client(self.fake)

    def assertCode(self, code, fn, *args, status=None, **kwargs):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            fn(*args, **kwargs)
        err = cm.exception.response["Error"]
        self.assertEqual(err["Code"], code, cm.exception.response)
        if status is not None:
            self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], status)
        self.assertTrue(cm.exception.response["ResponseMetadata"].get("RequestId"))
        return cm.exception.response

    def setup_default(self):
        self.c.create_access_grants_instance(AccountId=ACCOUNT)
        self.c.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://", IAMRoleArn=ROLE)

    def grant(self, name, sub="bucket/%s/*", perm="READ", loc="default", **kw):
        args = dict(AccountId=ACCOUNT, AccessGrantsLocationId=loc, Grantee=grantee(name), Permission=perm, **kw)
        if sub is not None:
            args["AccessGrantsLocationConfiguration"] = {"S3SubPrefix": sub % name if "%s" in sub else sub}
        return self.c.create_access_grant(**args)

    # raw requests signed by botocore's S3 signer ------------------------------------
    def raw(self, method, path, body=b"", host=None, headers=None, checksum="md5", secret=SECRET_KEY,
            account_header=ACCOUNT, mutate=None, send_body=None):
        host = host or "127.0.0.1:%d" % self.fake.port
        hdrs = dict(headers or {})
        if account_header is not None:
            hdrs["x-amz-account-id"] = account_header
        if checksum == "md5":
            hdrs["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
        req = AWSRequest(method=method, url="http://%s%s" % (host, path), data=body, headers=hdrs)
        S3SigV4Auth(Credentials(ACCESS_KEY, secret), "s3", REGION).add_auth(req)
        prepared = req.prepare()
        out = dict(prepared.headers.items())
        if mutate:
            mutate(out)
        if send_body is not None:  # a body other than the signed one
            body = send_body
        conn = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            out.setdefault("Host", host)
            if not any(k.lower() == "content-length" for k in out):
                out["Content-Length"] = str(len(body))
            for k, v in out.items():
                conn.putheader(k, v)
            conn.endheaders(body)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read().decode()
        finally:
            conn.close()


class TestInstances(FakeTestCase):
    def test_instance_lifecycle(self):
        self.assertCode("AccessGrantsInstanceNotExistsError", self.c.get_access_grants_instance,
                        AccountId=ACCOUNT, status=404)
        self.assertEqual(self.c.list_access_grants_instances(AccountId=ACCOUNT).get("AccessGrantsInstancesList"), [])
        r = self.c.create_access_grants_instance(AccountId=ACCOUNT, Tags=[{"Key": "owner", "Value": "s3grantd"}])
        self.assertEqual(r["AccessGrantsInstanceId"], "default")
        self.assertEqual(r["AccessGrantsInstanceArn"], "arn:aws:s3:us-east-1:111122223333:access-grants/default")
        self.assertIsInstance(r["CreatedAt"], datetime)
        self.assertCode("AccessGrantsInstanceAlreadyExists", self.c.create_access_grants_instance,
                        AccountId=ACCOUNT, status=409)
        g = self.c.get_access_grants_instance(AccountId=ACCOUNT)
        self.assertEqual(g["AccessGrantsInstanceArn"], r["AccessGrantsInstanceArn"])
        lst = self.c.list_access_grants_instances(AccountId=ACCOUNT, MaxResults=10)["AccessGrantsInstancesList"]
        self.assertEqual([x["AccessGrantsInstanceId"] for x in lst], ["default"])
        # another region is another instance
        other = s3control_client(self.fake, region="eu-west-1")
        self.assertCode("AccessGrantsInstanceNotExistsError", other.get_access_grants_instance, AccountId=ACCOUNT)

    def test_instance_for_prefix(self):
        self.assertCode("AccessGrantsInstanceNotExistsError", self.c.get_access_grants_instance_for_prefix,
                        AccountId=ACCOUNT, S3Prefix="s3://bucket/x/")
        self.c.create_access_grants_instance(AccountId=ACCOUNT)
        self.c.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://bucket-a", IAMRoleArn=ROLE)
        r = self.c.get_access_grants_instance_for_prefix(AccountId=ACCOUNT, S3Prefix="s3://bucket-a/team/")
        self.assertEqual(r["AccessGrantsInstanceId"], "default")
        self.assertTrue(r["AccessGrantsInstanceArn"].endswith(":access-grants/default"))
        self.assertCode("AccessGrantsInstanceNotExistsError", self.c.get_access_grants_instance_for_prefix,
                        AccountId=ACCOUNT, S3Prefix="s3://other-bucket/")
        self.assertCode("InvalidRequest", self.c.get_access_grants_instance_for_prefix,
                        AccountId=ACCOUNT, S3Prefix="bucket-a/x")

    def test_identity_center_instance(self):
        r = self.c.create_access_grants_instance(
            AccountId=ACCOUNT, IdentityCenterArn="arn:aws:sso:::instance/ssoins-1234567890abcdef")
        self.assertEqual(r["IdentityCenterInstanceArn"], "arn:aws:sso:::instance/ssoins-1234567890abcdef")
        self.assertIn(":application/", r["IdentityCenterApplicationArn"])


class TestLocations(FakeTestCase):
    def test_location_lifecycle(self):
        self.assertCode("AccessGrantsInstanceNotExistsError", self.c.create_access_grants_location,
                        AccountId=ACCOUNT, LocationScope="s3://", IAMRoleArn=ROLE, status=404)
        self.c.create_access_grants_instance(AccountId=ACCOUNT)
        d = self.c.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://", IAMRoleArn=ROLE)
        self.assertEqual(d["AccessGrantsLocationId"], "default")
        self.assertEqual(d["AccessGrantsLocationArn"],
                         "arn:aws:s3:us-east-1:111122223333:access-grants/default/location/default")
        b = self.c.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://bucket-b/data",
                                                 IAMRoleArn=ROLE, Tags=[{"Key": "k", "Value": "v"}])
        self.assertRegex(b["AccessGrantsLocationId"], r"^[a-zA-Z0-9-]{1,64}$")
        self.assertNotEqual(b["AccessGrantsLocationId"], "default")
        self.assertEqual(b["LocationScope"], "s3://bucket-b/data")
        self.assertEqual(b["IAMRoleArn"], ROLE)
        self.assertCode("AccessGrantsLocationAlreadyExistsError", self.c.create_access_grants_location,
                        AccountId=ACCOUNT, LocationScope="s3://bucket-b/data", IAMRoleArn=ROLE, status=409)
        g = self.c.get_access_grants_location(AccountId=ACCOUNT, AccessGrantsLocationId=b["AccessGrantsLocationId"])
        self.assertEqual(g["LocationScope"], "s3://bucket-b/data")
        self.assertCode("NoSuchAccessGrantsLocationError", self.c.get_access_grants_location,
                        AccountId=ACCOUNT, AccessGrantsLocationId="nope", status=404)
        # list: all, filtered, paginated
        lst = self.c.list_access_grants_locations(AccountId=ACCOUNT)["AccessGrantsLocationsList"]
        self.assertEqual(sorted(x["LocationScope"] for x in lst), ["s3://", "s3://bucket-b/data"])
        f = self.c.list_access_grants_locations(AccountId=ACCOUNT, LocationScope="s3://")
        self.assertEqual([x["AccessGrantsLocationId"] for x in f["AccessGrantsLocationsList"]], ["default"])
        p1 = self.c.list_access_grants_locations(AccountId=ACCOUNT, MaxResults=1)
        self.assertEqual(len(p1["AccessGrantsLocationsList"]), 1)
        p2 = self.c.list_access_grants_locations(AccountId=ACCOUNT, MaxResults=1, NextToken=p1["NextToken"])
        self.assertEqual(len(p2["AccessGrantsLocationsList"]), 1)
        self.assertFalse(p2.get("NextToken"))
        self.assertNotEqual(p1["AccessGrantsLocationsList"], p2["AccessGrantsLocationsList"])
        # a location with grants cannot go
        self.grant("r1", sub="x/*", loc=b["AccessGrantsLocationId"])
        self.assertCode("AccessGrantsLocationNotEmptyError", self.c.delete_access_grants_location,
                        AccountId=ACCOUNT, AccessGrantsLocationId=b["AccessGrantsLocationId"], status=400)
        for gr in self.c.list_access_grants(AccountId=ACCOUNT)["AccessGrantsList"]:
            self.c.delete_access_grant(AccountId=ACCOUNT, AccessGrantId=gr["AccessGrantId"])
        self.c.delete_access_grants_location(AccountId=ACCOUNT, AccessGrantsLocationId=b["AccessGrantsLocationId"])
        self.assertCode("NoSuchAccessGrantsLocationError", self.c.delete_access_grants_location,
                        AccountId=ACCOUNT, AccessGrantsLocationId=b["AccessGrantsLocationId"], status=404)

    def test_location_quota_and_validation(self):
        self.fake.config(location_quota=2)
        self.c.create_access_grants_instance(AccountId=ACCOUNT)
        self.c.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://bk1", IAMRoleArn=ROLE)
        self.c.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://bk2", IAMRoleArn=ROLE)
        r = self.assertCode("AccessGrantsLocationsQuotaExceededError", self.c.create_access_grants_location,
                            AccountId=ACCOUNT, LocationScope="s3://bk3", IAMRoleArn=ROLE, status=409)
        self.assertIn("2", r["Error"]["Message"])
        self.assertCode("InvalidAccessGrantsLocation", self.c.create_access_grants_location,
                        AccountId=ACCOUNT, LocationScope="bucket", IAMRoleArn=ROLE)
        self.assertCode("InvalidIamRole", self.c.create_access_grants_location,
                        AccountId=ACCOUNT, LocationScope="s3://bk4", IAMRoleArn="arn:aws:iam::111122223333:user/u")
        self.assertCode("InvalidTag", self.c.create_access_grants_location, AccountId=ACCOUNT,
                        LocationScope="s3://bk5", IAMRoleArn=ROLE, Tags=[{"Key": "aws:x", "Value": "v"}])


class TestGrants(FakeTestCase):
    def test_grant_lifecycle(self):
        self.c.create_access_grants_instance(AccountId=ACCOUNT)
        self.assertCode("NoSuchAccessGrantsLocationError", self.grant, "r1", status=404)
        self.c.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://", IAMRoleArn=ROLE)
        g = self.grant("r1", sub="bucket/team-a/*", perm="READWRITE", Tags=[{"Key": "owner", "Value": "d"}])
        self.assertEqual(g["GrantScope"], "s3://bucket/team-a/*")
        self.assertEqual(g["Grantee"], grantee("r1"))
        self.assertEqual(g["Permission"], "READWRITE")
        self.assertEqual(g["AccessGrantsLocationId"], "default")
        self.assertEqual(g["AccessGrantsLocationConfiguration"], {"S3SubPrefix": "bucket/team-a/*"})
        self.assertEqual(g["AccessGrantArn"],
                         "arn:aws:s3:us-east-1:111122223333:access-grants/default/grant/" + g["AccessGrantId"])
        self.assertCode("AccessGrantAlreadyExists", self.grant, "r1", sub="bucket/team-a/*", perm="READWRITE",
                        status=409)
        # differing in one element is another grant
        self.grant("r1", sub="bucket/team-a/*", perm="READ")
        got = self.c.get_access_grant(AccountId=ACCOUNT, AccessGrantId=g["AccessGrantId"])
        for k in ("AccessGrantId", "AccessGrantArn", "Grantee", "Permission", "GrantScope", "CreatedAt"):
            self.assertEqual(got[k], g[k])
        self.assertCode("NoSuchAccessGrantError", self.c.get_access_grant, AccountId=ACCOUNT,
                        AccessGrantId="00000000-0000-0000-0000-000000000000", status=404)
        self.c.delete_access_grant(AccountId=ACCOUNT, AccessGrantId=g["AccessGrantId"])
        self.assertCode("NoSuchAccessGrantError", self.c.delete_access_grant, AccountId=ACCOUNT,
                        AccessGrantId=g["AccessGrantId"], status=404)
        self.assertCode("NoSuchAccessGrantError", self.c.get_access_grant, AccountId=ACCOUNT,
                        AccessGrantId=g["AccessGrantId"])

    def test_default_location_needs_sub_prefix(self):
        self.setup_default()
        r = self.assertCode("InvalidRequest", self.grant, "r1", sub=None, status=400)
        self.assertIn("S3SubPrefix", r["Error"]["Message"])

    def test_location_wide_grant_returns_empty_sub_prefix(self):
        self.c.create_access_grants_instance(AccountId=ACCOUNT)
        loc = self.c.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://bucket-c",
                                                   IAMRoleArn=ROLE)["AccessGrantsLocationId"]
        g = self.grant("r2", sub=None, loc=loc)
        self.assertEqual(g["AccessGrantsLocationConfiguration"], {"S3SubPrefix": ""})
        self.assertEqual(g["GrantScope"], "s3://bucket-c/*")
        g2 = self.grant("r2", sub="team/*", loc=loc)
        self.assertEqual(g2["GrantScope"], "s3://bucket-c/team/*")
        obj = self.grant("r3", sub="team/report.csv", loc=loc, S3PrefixType="Object")
        self.assertEqual(obj["GrantScope"], "s3://bucket-c/team/report.csv")

    def test_grant_validation(self):
        self.setup_default()
        r = self.assertCode("InvalidRequest", self.c.create_access_grant, AccountId=ACCOUNT,
                            AccessGrantsLocationId="default",
                            AccessGrantsLocationConfiguration={"S3SubPrefix": "b/*"},
                            Grantee={"GranteeType": "IAM", "GranteeIdentifier": "not-an-arn"}, Permission="READ")
        self.assertEqual(r["Error"]["Message"], "Invalid Grantee in the request")
        self.assertCode("InvalidRequest", self.grant, "r1", perm="ALL")
        self.assertCode("TooManyTags", self.grant, "r1", Tags=[{"Key": "k%d" % i, "Value": "v"} for i in range(51)])
        d = self.c.create_access_grant(
            AccountId=ACCOUNT, AccessGrantsLocationId="default",
            AccessGrantsLocationConfiguration={"S3SubPrefix": "b/*"},
            Grantee={"GranteeType": "DIRECTORY_USER", "GranteeIdentifier": "83d43802-00b1-7054-db02-f1d683aacba5"},
            Permission="READ", ApplicationArn="arn:aws:sso::111122223333:application/ssoins-1/apl-1")
        self.assertEqual(d["ApplicationArn"], "arn:aws:sso::111122223333:application/ssoins-1/apl-1")

    def test_grant_quota(self):
        self.setup_default()
        self.fake.config(grant_quota=3)
        for i in range(3):
            self.grant("q%d" % i)
        r = self.assertCode("AccessGrantsQuotaExceededError", self.grant, "q3", status=409)
        self.assertIn("3", r["Error"]["Message"])


class TestListGrants(FakeTestCase):
    def setUp(self):
        super().setUp()
        self.setup_default()
        self.ids = {}
        for i in range(25):
            perm = ("READ", "WRITE", "READWRITE")[i % 3]
            g = self.grant("p%d" % (i % 5), sub="bucket/g%d/*" % i, perm=perm)
            self.ids[g["AccessGrantId"]] = g

    def pages(self, **kw):
        out, tokens, token = [], [], None
        for _ in range(100):
            args = dict(AccountId=ACCOUNT, **kw)
            if token:
                args["NextToken"] = token
            r = self.c.list_access_grants(**args)
            out += r.get("AccessGrantsList", [])
            token = r.get("NextToken")
            if not token:
                return out, tokens
            tokens.append(token)
        self.fail("pagination does not end")

    def test_pagination(self):
        got, tokens = self.pages(MaxResults=7)
        self.assertEqual(len(tokens), 3)
        self.assertEqual(len(got), 25)
        self.assertEqual({g["AccessGrantId"] for g in got}, set(self.ids))
        for t in tokens:  # opaque and needs percent-encoding
            for ch in "+/=":
                self.assertIn(ch, t)
        # maxResults absent: everything in one page; 0 behaves like absent
        self.assertEqual(len(self.c.list_access_grants(AccountId=ACCOUNT)["AccessGrantsList"]), 25)
        self.assertEqual(len(self.c.list_access_grants(AccountId=ACCOUNT, MaxResults=0)["AccessGrantsList"]), 25)
        r = self.c.list_access_grants(AccountId=ACCOUNT, MaxResults=25)
        self.assertFalse(r.get("NextToken"))

    def test_bad_max_results_and_token(self):
        self.assertCode("InvalidRequest", self.c.list_access_grants, AccountId=ACCOUNT, MaxResults=1001, status=400)
        self.assertCode("InvalidRequest", self.c.list_access_grants, AccountId=ACCOUNT, NextToken="garbage")
        tok = self.c.list_access_grants(AccountId=ACCOUNT, MaxResults=2)["NextToken"]
        # a token is bound to its filters
        self.assertCode("InvalidRequest", self.c.list_access_grants, AccountId=ACCOUNT, NextToken=tok,
                        Permission="READ")

    def test_filters(self):
        def ids(**kw):
            return {g["AccessGrantId"] for g in self.pages(MaxResults=4, **kw)[0]}

        def expect(pred):
            return {k for k, g in self.ids.items() if pred(g)}

        self.assertEqual(ids(Permission="WRITE"), expect(lambda g: g["Permission"] == "WRITE"))
        self.assertEqual(ids(GranteeType="IAM", GranteeIdentifier=principal("p2")),
                         expect(lambda g: g["Grantee"]["GranteeIdentifier"] == principal("p2")))
        self.assertEqual(ids(GrantScope="s3://bucket/g7/*"), expect(lambda g: g["GrantScope"] == "s3://bucket/g7/*"))
        self.assertEqual(len(ids(GrantScope="s3://bucket/g7/*")), 1)
        self.assertEqual(ids(GranteeType="DIRECTORY_USER"), set())
        self.assertEqual(ids(ApplicationArn="arn:aws:sso::111122223333:application/x/y"), set())
        self.assertEqual(ids(Permission="READ", GranteeIdentifier=principal("p0")),
                         expect(lambda g: g["Permission"] == "READ"
                                and g["Grantee"]["GranteeIdentifier"] == principal("p0")))
        self.assertCode("InvalidRequest", self.c.list_access_grants, AccountId=ACCOUNT, Permission="ALL")

    def test_deletes_during_pagination(self):
        r = self.c.list_access_grants(AccountId=ACCOUNT, MaxResults=10)
        first = [g["AccessGrantId"] for g in r["AccessGrantsList"]]
        for gid in first[:3]:
            self.c.delete_access_grant(AccountId=ACCOUNT, AccessGrantId=gid)
        rest, _ = self.pages(MaxResults=10)
        r2 = self.c.list_access_grants(AccountId=ACCOUNT, MaxResults=10, NextToken=r["NextToken"])
        self.assertEqual(len(r2["AccessGrantsList"]), 10)
        self.assertEqual(len(rest), 22)


class TestAuth(FakeTestCase):
    def test_wrong_secret(self):
        bad = s3control_client(self.fake, secret_key="wrong" + SECRET_KEY)
        r = self.assertCode("SignatureDoesNotMatch", bad.get_access_grants_instance, AccountId=ACCOUNT, status=403)
        self.assertIn("CanonicalRequest", r["Error"])
        self.assertIn("x-amz-account-id:111122223333", r["Error"]["CanonicalRequest"])

    def test_unknown_key(self):
        bad = s3control_client(self.fake, access_key="AKIDUNKNOWN")
        self.assertCode("InvalidAccessKeyId", bad.get_access_grants_instance, AccountId=ACCOUNT, status=403)

    def test_clock_skew(self):
        self.fake.config(clock_offset_ms=20 * 60 * 1000)
        r = self.assertCode("RequestTimeTooSkewed", self.c.get_access_grants_instance, AccountId=ACCOUNT,
                            status=403)
        server = datetime.strptime(r["Error"]["ServerTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        self.assertGreater((server - datetime.now(timezone.utc)).total_seconds(), 15 * 60)
        self.fake.config(clock_offset_ms=-16 * 60 * 1000)
        self.assertCode("RequestTimeTooSkewed", self.c.get_access_grants_instance, AccountId=ACCOUNT)
        self.fake.config(clock_offset_ms=10 * 60 * 1000)  # within 15 minutes
        self.assertCode("AccessGrantsInstanceNotExistsError", self.c.get_access_grants_instance, AccountId=ACCOUNT)

    def test_session_tokens(self):
        self.fake.add_credentials("ASIATEMP", "tempsecret", session_token="tok+/=1")
        ok = s3control_client(self.fake, access_key="ASIATEMP", secret_key="tempsecret", session_token="tok+/=1")
        ok.create_access_grants_instance(AccountId=ACCOUNT)
        wrong = s3control_client(self.fake, access_key="ASIATEMP", secret_key="tempsecret", session_token="other")
        self.assertCode("InvalidToken", wrong.get_access_grants_instance, AccountId=ACCOUNT, status=400)
        self.fake.config(expired_tokens=["tok+/=1"])
        self.assertCode("ExpiredToken", ok.get_access_grants_instance, AccountId=ACCOUNT, status=400)

    def test_credential_account(self):
        self.fake.add_credentials("AKIDOTHER", "othersecret", account="444455556666")
        other = s3control_client(self.fake, access_key="AKIDOTHER", secret_key="othersecret")
        self.assertCode("AccessDenied", other.get_access_grants_instance, AccountId=ACCOUNT, status=403)
        self.assertCode("AccessGrantsInstanceNotExistsError", other.get_access_grants_instance,
                        AccountId="444455556666")

    def test_region_knob(self):
        self.fake.config(region="eu-central-1")
        r = self.assertCode("AuthorizationHeaderMalformed", self.c.get_access_grants_instance, AccountId=ACCOUNT)
        self.assertEqual(r["Error"]["Region"], "eu-central-1")


class TestRawWire(FakeTestCase):
    """Requests the SDK would not make, signed by botocore's S3SigV4Auth."""

    def setUp(self):
        super().setUp()
        self.setup_default()

    def test_host_prefix(self):
        status, hdrs, body = self.raw("GET", "/v20180820/accessgrantsinstance",
                                      host=self.fake.prefixed_host())
        self.assertEqual(status, 200, body)
        self.assertIn("<AccessGrantsInstanceId>default</AccessGrantsInstanceId>", body)
        self.assertIn('xmlns="%s"' % NS, body)
        self.assertTrue(hdrs.get("x-amz-request-id"))
        status, _, body = self.raw("GET", "/v20180820/accessgrantsinstance",
                                   host="999988887777.localhost:%d" % self.fake.port)
        self.assertEqual(status, 400, body)
        self.assertIn("<Code>InvalidRequest</Code>", body)

    def test_error_wrapper(self):
        status, hdrs, body = self.raw("GET", "/v20180820/accessgrantsinstance/grant/nope")
        self.assertEqual(status, 404)
        self.assertRegex(body, r"<ErrorResponse><Error><Code>NoSuchAccessGrantError</Code><Message>[^<]+</Message>"
                               r"</Error><RequestId>([0-9A-F]+)</RequestId><HostId>[^<]+</HostId></ErrorResponse>")
        self.assertIn("<RequestId>%s</RequestId>" % hdrs["x-amz-request-id"], body)
        self.assertEqual(hdrs["Content-Type"], "application/xml")

    def test_checksums(self):
        path = "/v20180820/accessgrantsinstance/grant"
        body = ("<CreateAccessGrantRequest xmlns=\"%s\"><AccessGrantsLocationId>default</AccessGrantsLocationId>"
                "<AccessGrantsLocationConfiguration><S3SubPrefix>b/&amp;x/*</S3SubPrefix>"
                "</AccessGrantsLocationConfiguration><Grantee><GranteeType>IAM</GranteeType>"
                "<GranteeIdentifier>%s</GranteeIdentifier></Grantee><Permission>READ</Permission>"
                "</CreateAccessGrantRequest>" % (NS, principal("raw"))).encode()
        status, _, resp = self.raw("POST", path, body, checksum=None)
        self.assertEqual(status, 400)
        self.assertIn("<Code>InvalidRequest</Code>", resp)
        status, _, resp = self.raw("POST", path, body, checksum=None,
                                   headers={"Content-MD5": base64.b64encode(hashlib.md5(b"x").digest()).decode()})
        self.assertIn("<Code>BadDigest</Code>", resp)
        status, _, resp = self.raw("POST", path, body, checksum=None, headers={"x-amz-checksum-crc32": "AAAAAA=="})
        self.assertIn("<Code>BadDigest</Code>", resp)
        status, _, resp = self.raw("POST", path, body)  # Content-MD5, as the golden requests do
        self.assertEqual(status, 200, resp)
        self.assertIn("<GrantScope>s3://b/&amp;x/*</GrantScope>", resp)

    def test_payload_hash_and_headers(self):
        path = "/v20180820/accessgrantsinstance/location"
        body = ("<CreateAccessGrantsLocationRequest xmlns=\"%s\"><LocationScope>s3://raw-b</LocationScope>"
                "<IAMRoleArn>%s</IAMRoleArn></CreateAccessGrantsLocationRequest>" % (NS, ROLE)).encode()
        # body changed after signing: hash no longer matches
        status, _, resp = self.raw("POST", path, body, mutate=lambda h: h.update(
            {"X-Amz-Content-SHA256": hashlib.sha256(b"other").hexdigest()}))
        self.assertIn("<Code>", resp)
        self.assertEqual(status, 400 if "XAmzContentSHA256Mismatch" in resp else 403, resp)
        status, _, resp = self.raw("POST", path, body, send_body=body.replace(b"raw-b", b"raw-c"))
        self.assertEqual(status, 400)
        self.assertIn("<Code>XAmzContentSHA256Mismatch</Code>", resp)
        status, _, resp = self.raw("POST", path, body, mutate=lambda h: h.pop("X-Amz-Content-SHA256"))
        self.assertEqual(status, 400)
        status, _, resp = self.raw("POST", path, body, mutate=lambda h: h.update({"x-amz-extra": "1"}))
        self.assertIn("<Code>AccessDenied</Code>", resp)
        self.assertIn("x-amz-extra", resp)
        status, _, resp = self.raw("POST", path, body, account_header=None)
        self.assertIn("x-amz-account-id", resp)
        self.assertEqual(status, 400)
        status, _, resp = self.raw("POST", path, b"<CreateAccessGrantsLocationRequest><oops>")
        self.assertIn("<Code>MalformedXML</Code>", resp)
        status, _, resp = self.raw("POST", path, body, mutate=lambda h: h.pop("Authorization"))
        self.assertEqual(status, 403)
        self.assertIn("<Code>AccessDenied</Code>", resp)
        status, _, resp = self.raw("POST", path, body)
        self.assertEqual(status, 200, resp)

    def test_golden_requests_verify(self):
        """The botocore-signed golden requests pass the fake's verifier exactly."""
        with open(os.path.join(SHARED, "aws", "golden", "signed-requests.json")) as f:
            golden = json.load(f)
        self.fake.reset()
        clock = datetime.strptime(golden["clock"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        self.fake.config(clock_offset_ms=int((clock.timestamp() - time.time()) * 1000))
        order = ["CreateAccessGrantsInstance", "CreateAccessGrantsLocation", "CreateAccessGrant",
                 "ListAccessGrants", "GetAccessGrantsInstanceForPrefix", "DeleteAccessGrant",
                 "ListAccessGrantsLocations", "GetAccessGrantsLocation"]
        examples = {e["operation"]: e for e in golden["examples"] if e["service"] == "s3control"}
        self.assertEqual(set(examples), set(order))
        outcomes = {}
        for op in order:
            e = examples[op]
            s = e["signing"]
            self.fake.add_credentials(s["access_key_id"], s["secret_access_key"],
                                      session_token=s.get("session_token"), replace=True)
            url = e["request"]["url"]
            host, _, path = url.split("://", 1)[1].partition("/")
            conn = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=30)
            body = (e["request"].get("body") or "").encode()
            conn.putrequest(e["request"]["method"], "/" + path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host)
            for k, v in e["request"]["headers"].items():
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            text = r.read().decode()
            conn.close()
            outcomes[op] = (r.status, text)
            for code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "RequestTimeTooSkewed", "BadDigest",
                         "XAmzContentSHA256Mismatch", "AccessDenied", "AuthorizationHeaderMalformed"):
                self.assertNotIn("<Code>%s</Code>" % code, text, op)
        self.assertEqual(outcomes["CreateAccessGrantsInstance"][0], 200)
        self.assertEqual(outcomes["CreateAccessGrant"][0], 200, outcomes["CreateAccessGrant"])
        self.assertEqual(outcomes["ListAccessGrants"][0], 200)
        self.assertIn("NoSuchAccessGrantError", outcomes["DeleteAccessGrant"][1])
        # a one-byte change of the body breaks it
        e = examples["CreateAccessGrantsLocation"]
        self.fake.add_credentials(ACCESS_KEY, SECRET_KEY, replace=True)
        conn = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=30)
        body = e["request"]["body"].replace("s3://", "s3:/").encode()
        conn.putrequest("POST", "/v20180820/accessgrantsinstance/location", skip_host=True)
        conn.putheader("Host", "111122223333.s3-control.us-east-1.amazonaws.com")
        for k, v in e["request"]["headers"].items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        text = conn.getresponse().read().decode()
        conn.close()
        self.assertIn("<Code>XAmzContentSHA256Mismatch</Code>", text)


class TestFaults(FakeTestCase):
    def setUp(self):
        super().setUp()
        self.setup_default()

    def test_latency(self):
        self.fake.config(latency_ms=300)
        t = time.monotonic()
        self.c.get_access_grants_instance(AccountId=ACCOUNT)
        self.assertGreaterEqual(time.monotonic() - t, 0.29)

    def test_throttle_503_and_429(self):
        self.fake.config(throttle_next=1, retry_after_ms=1500)
        r = self.assertCode("SlowDown", self.c.get_access_grants_instance, AccountId=ACCOUNT, status=503)
        self.assertEqual(r["ResponseMetadata"]["HTTPHeaders"]["x-amz-retry-after"], "1500")
        self.c.get_access_grants_instance(AccountId=ACCOUNT)
        self.fake.config(throttle_next=1, throttle_status=429, retry_after_ms=None)
        r = self.assertCode("TooManyRequestsException", self.c.get_access_grants_instance, AccountId=ACCOUNT,
                            status=429)
        self.assertNotIn("x-amz-retry-after", r["ResponseMetadata"]["HTTPHeaders"])
        self.fake.config(throttle_rate=1.0, throttle_status=503, fault_ops=["CreateAccessGrant"])
        self.c.get_access_grants_instance(AccountId=ACCOUNT)  # not a listed op
        self.assertCode("SlowDown", self.grant, "t1")
        self.assertEqual(self.fake.stats()["faults"]["throttle"], 3)

    def test_internal_error(self):
        self.fake.config(error_next=1)
        self.assertCode("InternalError", self.grant, "e1", status=500)
        self.grant("e1")
        log = self.fake.log()
        self.assertEqual([(e["op"], e["status"], e["code"]) for e in log[-2:]],
                         [("CreateAccessGrant", 500, "InternalError"), ("CreateAccessGrant", 200, None)])

    def test_connection_reset(self):
        self.fake.config(reset_next=1)
        with self.assertRaises(botocore.exceptions.HTTPClientError):
            self.grant("c1")
        self.assertEqual(self.fake.log()[-1]["status"], 0)
        self.grant("c1")
        self.fake.config(reset_rate=1.0)
        with self.assertRaises(botocore.exceptions.HTTPClientError):
            self.c.get_access_grants_instance(AccountId=ACCOUNT)

    def test_retries_by_sdk(self):
        """The SDK's standard retry mode rides over throttling and 500s."""
        self.fake.config(throttle_next=1, error_next=1)
        c = s3control_client(self.fake, max_attempts=3)
        g = c.create_access_grant(AccountId=ACCOUNT, AccessGrantsLocationId="default",
                                  AccessGrantsLocationConfiguration={"S3SubPrefix": "bucket/retry/*"},
                                  Grantee=grantee("retry"), Permission="READ")
        self.assertEqual(g["ResponseMetadata"]["RetryAttempts"], 2)
        self.assertEqual([e["status"] for e in self.fake.log()[-3:]], [503, 500, 200])

    def test_seeded_draws_repeat(self):
        def pattern():
            self.fake.config(seed=1234, error_rate=0.5)
            out = []
            for _ in range(16):
                try:
                    self.c.get_access_grants_instance(AccountId=ACCOUNT)
                    out.append(1)
                except botocore.exceptions.ClientError:
                    out.append(0)
            return out
        a = pattern()
        b = pattern()
        self.assertEqual(a, b)
        self.assertIn(0, a)
        self.assertIn(1, a)

    def test_invalid_grantee_window(self):
        self.fake.config(invalid_grantee_seconds=30)
        r = self.assertCode("InvalidRequest", self.grant, "new-role", status=400)
        self.assertEqual(r["Error"]["Message"], "Invalid Grantee in the request")
        self.assertCode("InvalidRequest", self.grant, "new-role")
        # the server clock moves past the window (no sleeping)
        self.fake.config(clock_offset_ms=31000)
        self.grant("new-role")
        self.fake.config(clock_offset_ms=0, invalid_grantee_principals=[principal("only-this")])
        self.grant("other-role")
        self.assertCode("InvalidRequest", self.grant, "only-this")

    def test_invalid_iam_role_window(self):
        self.fake.config(invalid_iam_role_seconds=60)
        role = "arn:aws:iam::111122223333:role/fresh"
        self.assertCode("InvalidIamRole", self.c.create_access_grants_location, AccountId=ACCOUNT,
                        LocationScope="s3://fresh-b", IAMRoleArn=role, status=400)
        self.fake.config(clock_offset_ms=61000)
        self.c.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://fresh-b", IAMRoleArn=role)

    def test_list_lag(self):
        self.fake.config(list_lag_ms=60000)
        g = self.grant("lag")
        ids = [x["AccessGrantId"] for x in self.c.list_access_grants(AccountId=ACCOUNT)["AccessGrantsList"]]
        self.assertNotIn(g["AccessGrantId"], ids)
        self.c.get_access_grant(AccountId=ACCOUNT, AccessGrantId=g["AccessGrantId"])  # Get is consistent
        self.fake.config(clock_offset_ms=61000)
        ids = [x["AccessGrantId"] for x in self.c.list_access_grants(AccountId=ACCOUNT)["AccessGrantsList"]]
        self.assertIn(g["AccessGrantId"], ids)

    def test_delete_lag(self):
        self.c.create_access_grants_location(AccountId=ACCOUNT, LocationScope="s3://dl-bucket", IAMRoleArn=ROLE)
        loc = self.c.list_access_grants_locations(AccountId=ACCOUNT, LocationScope="s3://dl-bucket")[
            "AccessGrantsLocationsList"][0]["AccessGrantsLocationId"]
        self.fake.config(delete_lag_ms=60000)
        g = self.grant("dl", sub="x/*", loc=loc)
        self.c.delete_access_grant(AccountId=ACCOUNT, AccessGrantId=g["AccessGrantId"])
        ids = [x["AccessGrantId"] for x in self.c.list_access_grants(AccountId=ACCOUNT)["AccessGrantsList"]]
        self.assertIn(g["AccessGrantId"], ids)
        self.assertCode("AccessGrantsLocationNotEmptyError", self.c.delete_access_grants_location,
                        AccountId=ACCOUNT, AccessGrantsLocationId=loc)
        self.fake.config(clock_offset_ms=61000)
        ids = [x["AccessGrantId"] for x in self.c.list_access_grants(AccountId=ACCOUNT)["AccessGrantsList"]]
        self.assertNotIn(g["AccessGrantId"], ids)
        self.c.delete_access_grants_location(AccountId=ACCOUNT, AccessGrantsLocationId=loc)


class TestObservability(FakeTestCase):
    def test_log_state_drift_reset(self):
        self.setup_default()
        g = self.grant("obs", sub="bucket/obs/*", perm="WRITE")
        self.assertCode("AccessGrantAlreadyExists", self.grant, "obs", sub="bucket/obs/*", perm="WRITE")
        self.c.delete_access_grant(AccountId=ACCOUNT, AccessGrantId=g["AccessGrantId"])
        self.c.get_access_grants_instance(AccountId=ACCOUNT)  # not mutating: not logged
        log = self.fake.log()
        self.assertEqual([(e["op"], e["status"]) for e in log], [
            ("CreateAccessGrantsInstance", 200), ("CreateAccessGrantsLocation", 200),
            ("CreateAccessGrant", 200), ("CreateAccessGrant", 409), ("DeleteAccessGrant", 200)])
        c = log[2]
        self.assertEqual((c["grant_id"], c["grantee"], c["permission"], c["scope"]),
                         (g["AccessGrantId"], principal("obs"), "WRITE", "s3://bucket/obs/*"))
        self.assertEqual(log[3]["code"], "AccessGrantAlreadyExists")
        self.assertEqual(log[4]["grant_id"], g["AccessGrantId"])
        self.assertEqual(log[4]["scope"], "s3://bucket/obs/*")
        self.assertEqual([e["seq"] for e in log], list(range(5)))
        self.assertEqual(len(self.fake.log(since=3)), 2)
        # drift: a grant made behind the daemon's back is seen by the API
        d = self.fake.add_grant(principal("drift"), "READ", sub_prefix="bucket/drift/*")
        self.assertEqual(d["scope"], "s3://bucket/drift/*")
        got = self.c.get_access_grant(AccountId=ACCOUNT, AccessGrantId=d["id"])
        self.assertEqual(got["Grantee"], grantee("drift"))
        st = self.fake.state()
        self.assertEqual([x["id"] for x in st["grants"]], [d["id"]])
        self.assertEqual([x["id"] for x in st["locations"]], ["default"])
        self.assertEqual(len(st["instances"]), 1)
        self.assertEqual(len(self.fake.log()), 5)  # by-hand changes are not API calls
        stats = self.fake.stats()
        self.assertEqual(stats["by_op"]["CreateAccessGrant"], 2)
        self.assertEqual(stats["by_status"]["409"], 1)
        self.assertEqual(stats["by_code"]["AccessGrantAlreadyExists"], 1)
        self.fake.reset()
        self.assertEqual(self.fake.state(), {"instances": [], "locations": [], "grants": []})
        self.assertEqual(self.fake.log(), [])

    def test_add_grant_creates_instance_and_other_location(self):
        d = self.fake.add_grant(principal("x"), "READ", sub_prefix="team/*", location_scope="s3://bkt")
        self.assertEqual(d["scope"], "s3://bkt/team/*")
        r = self.c.list_access_grants(AccountId=ACCOUNT, GrantScope="s3://bkt/team/*")["AccessGrantsList"]
        self.assertEqual([x["AccessGrantId"] for x in r], [d["id"]])

    def test_reset_restores_startup_knobs(self):
        self.fake.config(latency_ms=5, throttle_rate=0.1)
        self.fake.reset(keep_config=True)
        self.assertEqual(self.fake.get_config()["knobs"]["latency_ms"], 5)
        self.fake.reset()
        self.assertEqual(self.fake.get_config()["knobs"]["latency_ms"], 0)
        with self.assertRaises(Exception):
            self.fake.config(no_such_knob=1)


class TestStartup(unittest.TestCase):
    def test_cli_knobs_credentials_and_tls(self):
        d = tempfile.mkdtemp(prefix="s3g-fake-tls-")
        cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        creds = [{"access_key": "AKIDCLI", "secret_key": "clisecret"}]
        with S3ControlFake(credentials=creds, default_credentials=False, tls_cert=cert, tls_key=key,
                           grant_quota=7) as fake:
            self.assertTrue(fake.endpoint.startswith("https://"))
            self.assertEqual(fake.get_config()["knobs"]["grant_quota"], 7)
            c = s3control_client(fake, access_key="AKIDCLI", secret_key="clisecret", verify=cert)
            c.create_access_grants_instance(AccountId=ACCOUNT)
            c2 = s3control_client(fake, verify=cert)  # default key not loaded
            with self.assertRaises(botocore.exceptions.ClientError) as cm:
                c2.get_access_grants_instance(AccountId=ACCOUNT)
            self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidAccessKeyId")

    def test_cli_flags(self):
        with tempfile.TemporaryDirectory() as d:
            pf = os.path.join(d, "port")
            p = subprocess.Popen(["node", os.path.join(FAKE_DIR, "server.js"), "--port", "0", "--port-file", pf,
                                  "--latency-ms", "3", "--expired-token", "a,b", "--fault-ops", "GetAccessGrant",
                                  "--throttle-status", "429", "--seed", "7"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                line = p.stdout.readline()
                info = json.loads(line)
                with open(pf) as f:
                    self.assertEqual(int(f.read()), info["port"])
                conn = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=10)
                conn.request("GET", "/__fake/config")
                k = json.loads(conn.getresponse().read())["knobs"]
                conn.close()
                self.assertEqual((k["latency_ms"], k["expired_tokens"], k["fault_ops"], k["throttle_status"],
                                  k["seed"]), (3, ["a", "b"], ["GetAccessGrant"], 429, 7))
            finally:
                p.terminate()
                p.wait(timeout=10)
            bad = subprocess.run(["node", os.path.join(FAKE_DIR, "server.js"), "--bogus", "1"],
                                 capture_output=True, timeout=30)
            self.assertEqual(bad.returncode, 2)


class TestLoadScript(FakeTestCase):
    def test_load_script_runs(self):
        r = subprocess.run(["node", os.path.join(FAKE_DIR, "loadtest.js"), "--port", str(self.fake.port),
                            "--concurrency", "8", "--seconds", "0.5", "--mode", "create"],
                           capture_output=True, text=True, timeout=120, cwd=FAKE_DIR)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertGreater(out["requests"], 0)
        self.assertEqual(list(out["statuses"]), ["200"])
        self.assertLessEqual(out["max_inflight"], 8)


if __name__ == "__main__":
    unittest.main(verbosity=2)
