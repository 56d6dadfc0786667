"""s3grantctl policy integration ID | policy export against a real Postgres:
the documents are valid IAM JSON filled in from the rows (account, region,
location, roles, tenant id as ExternalId, KMS key), text and --json modes,
errors by exit code, and no secret in any output.
The moto part applies the printed export documents to an IAM user and a
role in moto (INITIAL_NO_AUTH_ACTION_COUNT: setup calls pass, then every
call is signed and policy-checked) and proves PutObject and ListObjectsV2
work with them and are denied without; AssumeRole works with the tenant id
as ExternalId and an s3grantd-* session name and fails with another one.
moto does not evaluate s3:prefix conditions, so the prefix scoping of
ListBucket is only checked as JSON above.
S3G_NEEDS: pg
S3G_TIMEOUT: 180
"""
import json
import os
import re
import subprocess
import tempfile
import unittest

from pgtmp import fresh_db

BUILD = os.environ.get("S3G_BUILD_DIR", "build")
CTL = os.path.join(BUILD, "ctl", "s3grantctl")
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ACCOUNT = "111122223333"
LOC_ROLE = "arn:aws:iam::111122223333:role/access-grants-location"
KMS = "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DOCS = ["identityPolicy", "callerPolicy", "trustPolicy", "locationRoleTrustPolicy", "locationRolePolicy",
        "bucketPolicy", "kmsStatements"]


def integration(name, path, **over):
    cfg = {"name": name, "awsAccountId": ACCOUNT, "awsRegion": "us-east-2", "awsLocationRole": LOC_ROLE,
           "awsLocationPath": path, "authenticationType": "accessKey",
           "awsAccessKeyId": "AKIAIOSFODNN7EXAMPLE", "awsSecretAccessKey": SECRET}
    cfg.update(over)
    return {"type": "Native S3", "autoBootstrap": False, "config": cfg}


def statements(doc):
    return {s["Sid"]: s for s in doc["Statement"]}


class PolicyCtlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = fresh_db("policy")
        cls.tmp = tempfile.mkdtemp(prefix="s3g-policy-")
        cls.key = os.path.join(cls.tmp, "secrets-key")
        with open(cls.key, "w") as f:
            f.write("33" * 32 + "\n")
        r = cls.ctl(["db", "migrate"])
        assert r.returncode == 0, r.stderr
        cls.tenant = json.loads(cls.ctl(["tenant"], json_out=True).stdout)["tenantId"]

    @classmethod
    def ctl(cls, args, stdin=None, json_out=False):
        env = dict(os.environ, S3GRANT_SECRETS_KEY_FILE=cls.key)
        argv = [CTL, "--db", cls.db] + (["--json"] if json_out else []) + args
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60)
        assert SECRET not in r.stdout + r.stderr
        return r

    def create(self, doc):
        r = self.ctl(["integrations", "create", "-f", "-"], json.dumps(doc), json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return json.loads(r.stdout)["id"]

    def policy(self, args, code=0):
        r = self.ctl(["policy"] + args, json_out=True)
        self.assertEqual(r.returncode, code, r.stdout + r.stderr)
        out = json.loads(r.stdout)
        if code == 0:
            self.assertEqual(sorted(out), sorted(DOCS))
            for k in DOCS:
                if out[k] is None:
                    continue
                stmts = out[k] if k == "kmsStatements" else out[k]["Statement"]
                if k != "kmsStatements":
                    self.assertEqual(out[k]["Version"], "2012-10-17")
                for s in stmts:
                    self.assertTrue(s["Sid"], s)
                    self.assertEqual(s["Effect"], "Allow")
        return out

    def test_1_integration_access_key(self):
        iid = self.create(integration("research", "s3://research-data"))
        out = self.policy(["integration", iid])
        ident = statements(out["identityPolicy"])
        inst = "arn:aws:s3:us-east-2:%s:access-grants/default" % ACCOUNT
        self.assertEqual(ident["AccessGrantsInstance"]["Resource"], [inst])
        self.assertEqual(sorted(ident["AccessGrantsInstance"]["Action"]),
                         sorted(["s3:CreateAccessGrantsInstance", "s3:GetAccessGrantsInstance",
                                 "s3:GetAccessGrantsInstanceForPrefix", "s3:CreateAccessGrantsLocation",
                                 "s3:ListAccessGrantsLocations", "s3:ListAccessGrants"]))
        self.assertEqual(ident["AccessGrantsLocation"]["Resource"], [inst + "/location/*"])
        self.assertEqual(ident["AccessGrants"]["Resource"], [inst + "/grant/*"])
        self.assertEqual(ident["PassLocationRole"], {"Sid": "PassLocationRole", "Effect": "Allow",
                                                     "Action": ["iam:PassRole"], "Resource": [LOC_ROLE]})
        self.assertEqual(ident["CallerIdentity"]["Action"], ["sts:GetCallerIdentity"])
        self.assertNotIn("IdentityCenterDescribe", ident)
        all_actions = sorted(a for s in ident.values() for a in s["Action"])
        self.assertEqual(len(all_actions), len(set(all_actions)))
        self.assertEqual(len(all_actions), 14)
        self.assertIsNone(out["trustPolicy"])
        self.assertIsNone(out["kmsStatements"])
        lt = statements(out["locationRoleTrustPolicy"])["AccessGrantsAssumeLocationRole"]
        self.assertEqual(lt["Principal"], {"Service": "access-grants.s3.amazonaws.com"})
        self.assertEqual(lt["Action"], ["sts:AssumeRole", "sts:SetSourceIdentity"])
        self.assertEqual(lt["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT)
        self.assertEqual(lt["Condition"]["ArnEquals"]["aws:SourceArn"], inst)
        lr = statements(out["locationRolePolicy"])
        self.assertEqual(lr["ObjectLevelReadPermissions"]["Resource"], ["arn:aws:s3:::research-data/*"])
        self.assertEqual(lr["BucketLevelReadPermissions"]["Resource"], ["arn:aws:s3:::research-data"])

        # text mode: a heading per document, each document valid JSON
        r = self.ctl(["policy", "integration", iid])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("# identity policy for integration %s (research)" % iid, r.stdout)
        blocks = re.split(r"^# .*\n", r.stdout, flags=re.M)
        docs = [json.loads(b) for b in blocks if b.strip().startswith(("{", "["))]
        self.assertEqual(len(docs), 3)
        self.assertEqual(docs[0], out["identityPolicy"])
        self.assertIn("--kms-key", r.stdout)

    def test_2_integration_assume_role_kms_directory_users(self):
        role = "arn:aws:iam::444455556666:role/s3grantd-manager"
        iid = self.create(integration("teams", "s3://team-data/projects", awsRoleToAssume=role,
                                      authenticationType="auto", awsAccessKeyId=None, awsSecretAccessKey=None))
        out = self.policy(["integration", iid, "--kms-key", KMS])
        trust = statements(out["trustPolicy"])["AssumedByS3grantd"]
        self.assertEqual(trust["Principal"], {"AWS": "arn:aws:iam::444455556666:root"})
        self.assertEqual(trust["Action"], ["sts:AssumeRole"])
        self.assertEqual(trust["Condition"]["StringEquals"]["sts:ExternalId"], self.tenant)
        self.assertEqual(trust["Condition"]["StringLike"]["sts:RoleSessionName"], "s3grantd-*")
        self.assertEqual(statements(out["callerPolicy"])["AssumeS3grantdRole"]["Resource"], [role])
        lr = statements(out["locationRolePolicy"])
        self.assertEqual(lr["ObjectLevelWritePermissions"]["Resource"], ["arn:aws:s3:::team-data/projects/*"])
        self.assertEqual(lr["BucketLevelReadPermissions"]["Condition"]["StringLike"]["s3:prefix"],
                         ["projects", "projects/*"])
        self.assertEqual(lr["KmsForSseKmsObjects"]["Resource"], [KMS])
        self.assertEqual(out["kmsStatements"][0]["Principal"], {"AWS": LOC_ROLE})

        # a named principal; and once an Identity Center user exists, the sso/identitystore statements
        r = self.ctl(["users", "set-principal", "carol", "94482488-3041-7026-18f3-be45837cd0e4"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        me = "arn:aws:iam::777788889999:user/s3grantd"
        out = self.policy(["integration", iid, "--principal", me])
        self.assertEqual(statements(out["trustPolicy"])["AssumedByS3grantd"]["Principal"], {"AWS": me})
        ident = statements(out["identityPolicy"])
        self.assertEqual(ident["IdentityCenterDescribe"]["Action"], ["sso:DescribeInstance", "sso:DescribeApplication"])
        self.assertEqual(ident["IdentityStoreDescribe"]["Action"],
                         ["identitystore:DescribeUser", "identitystore:DescribeGroup"])
        self.assertIn("AccessGrantsIdentityCenterContext", statements(out["locationRoleTrustPolicy"]))

    def test_3_partitions(self):
        iid = self.create(integration("china", "s3://", awsRegion="cn-north-1",
                                      awsLocationRole="arn:aws-cn:iam::111122223333:role/ag-location"))
        out = self.policy(["integration", iid])
        text = json.dumps(out)
        self.assertNotIn("arn:aws:", text)
        self.assertEqual(statements(out["identityPolicy"])["AccessGrantsInstance"]["Resource"],
                         ["arn:aws-cn:s3:cn-north-1:%s:access-grants/default" % ACCOUNT])
        self.assertEqual(statements(out["locationRolePolicy"])["ObjectLevelReadPermissions"]["Resource"],
                         ["arn:aws-cn:s3:::*"])
        iid = self.create(integration("gov", "s3://gov-data", awsRegion="us-gov-west-1",
                                      awsLocationRole="arn:aws-us-gov:iam::111122223333:role/ag-location"))
        out = self.policy(["integration", iid])
        self.assertEqual(statements(out["identityPolicy"])["ValidateLocationPath"]["Resource"],
                         ["arn:aws-us-gov:s3:::gov-data"])

    def test_4_errors(self):
        self.policy(["integration", "999999"], code=4)
        self.policy(["integration", "x1"], code=3)
        self.assertEqual(self.ctl(["policy"]).returncode, 2)
        self.assertEqual(self.ctl(["policy", "integration"]).returncode, 2)
        iid = self.create(integration("short-account", "s3://short-data", awsAccountId="123456789"))
        r = self.ctl(["policy", "integration", iid])
        self.assertEqual(r.returncode, 3)
        self.assertIn("awsAccountId:", r.stderr)
        iid = self.create(integration("kms-check", "s3://kms-data"))
        r = self.ctl(["policy", "integration", iid, "--kms-key", "alias/x"])
        self.assertEqual(r.returncode, 3)
        self.assertIn("kms-key:", r.stderr)

    def test_5_export(self):
        self.policy(["export"], code=4)
        body = {"bucket": "access-summary-bucket", "region": "us-east-1", "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                "secretAccessKey": SECRET, "path": "immuta/exports"}
        r = self.ctl(["export-config", "set", "-f", "-", "--no-verify"], json.dumps(body))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = self.policy(["export"])
        ident = statements(out["identityPolicy"])
        self.assertEqual(ident["PutAccessSummaryObjects"]["Action"], ["s3:PutObject"])
        self.assertEqual(ident["PutAccessSummaryObjects"]["Resource"],
                         ["arn:aws:s3:::access-summary-bucket/immuta/exports/*"])
        self.assertEqual(ident["ListAccessSummaryPrefix"]["Action"], ["s3:ListBucket"])
        self.assertEqual(ident["ListAccessSummaryPrefix"]["Resource"], ["arn:aws:s3:::access-summary-bucket"])
        self.assertEqual(ident["ListAccessSummaryPrefix"]["Condition"]["StringLike"]["s3:prefix"],
                         ["immuta/exports", "immuta/exports/*"])
        self.assertEqual(len(ident), 2)
        for k in DOCS[1:]:
            self.assertIsNone(out[k], k)
        user = "arn:aws:iam::123456789012:user/access-summary"
        out = self.policy(["export", "--principal", user])
        self.assertEqual(statements(out["bucketPolicy"])["S3grantdPutAccessSummary"]["Principal"], {"AWS": user})

        body = {"bucket": "access-summary-bucket", "region": "eu-west-1",
                "roleArn": "arn:aws:iam::123456789012:role/access-summary-export", "path": "exports",
                "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
        r = self.ctl(["export-config", "set", "-f", "-", "--no-verify"], json.dumps(body))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = self.policy(["export"])
        ident = statements(out["identityPolicy"])
        self.assertEqual(ident["EncryptAccessSummaryWithKms"]["Action"], ["kms:GenerateDataKey", "kms:Decrypt"])
        self.assertEqual(ident["EncryptAccessSummaryWithKms"]["Resource"], [body["kmsKeyId"]])
        trust = statements(out["trustPolicy"])["AssumedByS3grantd"]
        self.assertEqual(trust["Condition"]["StringEquals"]["sts:ExternalId"], self.tenant)
        self.assertEqual(trust["Principal"], {"AWS": "arn:aws:iam::123456789012:root"})
        self.assertEqual(out["kmsStatements"][0]["Principal"], {"AWS": body["roleArn"]})
        self.assertEqual(statements(out["bucketPolicy"])["S3grantdListAccessSummary"]["Principal"],
                         {"AWS": body["roleArn"]})
        r = self.ctl(["policy", "export"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("# identity policy for the access summary export", r.stdout)
        self.assertIn("# trust policy for arn:aws:iam::123456789012:role/access-summary-export", r.stdout)


MOTO_ACCOUNT = "123456789012"   # moto's default account
SETUP_CALLS = 9                 # the calls MotoExportPolicyTest makes before auth is enforced


class MotoExportPolicyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_CALLS)
        from moto.server import ThreadedMotoServer   # reads the count at import

        cls.db = fresh_db("policymoto")
        cls.tmp = tempfile.mkdtemp(prefix="s3g-policymoto-")
        cls.key = os.path.join(cls.tmp, "secrets-key")
        with open(cls.key, "w") as f:
            f.write("44" * 32 + "\n")
        assert cls.ctl(["db", "migrate"]).returncode == 0
        cls.tenant = json.loads(cls.ctl(["tenant"], json_out=True).stdout)["tenantId"]
        cls.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        cls.server.start()
        host, port = cls.server.get_host_and_port()
        cls.endpoint = "http://%s:%d" % (host, port)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    @classmethod
    def ctl(cls, args, stdin=None, json_out=False):
        env = dict(os.environ, S3GRANT_SECRETS_KEY_FILE=cls.key)
        argv = [CTL, "--db", cls.db] + (["--json"] if json_out else []) + args
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, timeout=60)

    def client(self, service, key_id="AKIAIOSFODNN7EXAMPLE", secret="x" * 40, token=None):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=key_id,
                            aws_secret_access_key=secret, aws_session_token=token)

    def export_policy(self, body, *extra):
        r = self.ctl(["export-config", "set", "-f", "-", "--no-verify"], json.dumps(body))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.ctl(["policy", "export"] + list(extra), json_out=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return json.loads(r.stdout)

    def denied(self, fn):
        from botocore.exceptions import ClientError

        with self.assertRaises(ClientError) as cm:
            fn()
        self.assertEqual(cm.exception.response["Error"]["Code"], "AccessDenied")

    def test_export_policies_in_moto(self):
        bucket, path = "access-summary-bucket", "exports"
        user_arn = "arn:aws:iam::%s:user/exporter" % MOTO_ACCOUNT
        role_arn = "arn:aws:iam::%s:role/access-summary-export" % MOTO_ACCOUNT
        keys = self.export_policy({"bucket": bucket, "region": "us-east-1", "path": path,
                                   "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": SECRET})
        role = self.export_policy({"bucket": bucket, "region": "us-east-1", "path": path, "roleArn": role_arn},
                                  "--principal", user_arn)

        # the setup calls (SETUP_CALLS of them) pass unauthenticated
        self.client("s3").create_bucket(Bucket=bucket)
        iam = self.client("iam")
        iam.create_user(UserName="exporter")
        k = iam.create_access_key(UserName="exporter")["AccessKey"]
        iam.create_user(UserName="nobody")
        n = iam.create_access_key(UserName="nobody")["AccessKey"]
        iam.put_user_policy(UserName="exporter", PolicyName="export",
                            PolicyDocument=json.dumps(keys["identityPolicy"]))
        iam.create_role(RoleName="access-summary-export",
                        AssumeRolePolicyDocument=json.dumps(role["trustPolicy"]))
        iam.put_role_policy(RoleName="access-summary-export", PolicyName="export",
                            PolicyDocument=json.dumps(role["identityPolicy"]))
        iam.put_user_policy(UserName="exporter", PolicyName="assume",
                            PolicyDocument=json.dumps(role["callerPolicy"]))

        # from here on every call is signed and checked against the policies
        s3 = self.client("s3", k["AccessKeyId"], k["SecretAccessKey"])
        s3.put_object(Bucket=bucket, Key=path + "/access-summary/2026-01-01/grants.jsonl", Body=b"{}\n")
        # (a '/' in the ListObjectsV2 prefix trips moto's signature check, so list by the path itself)
        got = s3.list_objects_v2(Bucket=bucket, Prefix=path)
        self.assertEqual([o["Key"] for o in got["Contents"]], [path + "/access-summary/2026-01-01/grants.jsonl"])
        self.denied(lambda: s3.put_object(Bucket=bucket, Key="elsewhere/x.json", Body=b"{}"))
        self.denied(lambda: s3.get_object(Bucket=bucket, Key=path + "/access-summary/2026-01-01/grants.jsonl"))
        nobody = self.client("s3", n["AccessKeyId"], n["SecretAccessKey"])
        self.denied(lambda: nobody.put_object(Bucket=bucket, Key=path + "/x.json", Body=b"{}"))
        self.denied(lambda: nobody.list_objects_v2(Bucket=bucket, Prefix=path))

        # the role: assumable with the tenant id as ExternalId, not with another
        sts = self.client("sts", k["AccessKeyId"], k["SecretAccessKey"])
        self.denied(lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName="s3grantd-export",
                                            ExternalId="not-the-tenant"))
        c = sts.assume_role(RoleArn=role_arn, RoleSessionName="s3grantd-export", ExternalId=self.tenant)["Credentials"]
        rs3 = self.client("s3", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        rs3.put_object(Bucket=bucket, Key=path + "/access-summary/2026-01-02/grants.jsonl", Body=b"{}\n")
        self.assertEqual(rs3.list_objects_v2(Bucket=bucket, Prefix=path)["KeyCount"], 2)
        self.denied(lambda: rs3.put_object(Bucket=bucket, Key="elsewhere/y.json", Body=b"{}"))


if __name__ == "__main__":
    unittest.main()
