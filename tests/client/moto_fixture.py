"""moto with auth on, set up for tests/client/test_client_moto.c.

Runs moto's server in this process (ThreadedMotoServer on 127.0.0.1, port 0)
with INITIAL_NO_AUTH_ACTION_COUNT covering exactly the setup calls below; from
then on moto checks every SigV4 signature and enforces IAM policies. Setup
(boto3): an IAM user "daemon" with an inline policy (S3 on the bucket, KMS,
sts:AssumeRole on role "tenant" only) and access keys; role "tenant" whose trust
policy names the user and requires sts:ExternalId = "tenant-42" and whose
policy allows PutObject under tenant/ only; role "other"
the user may not assume; a KMS key; a bucket. Prints one JSON line, then
serves until SIGTERM or its parent exits.

Two corrections to moto (below). First, its signature verifier. moto rebuilds the URL it re-signs from
werkzeug's request.url, which percent-DEcodes the path and re-encodes it
keeping RFC 3986 sub-delimiters (+ = ! $ & ' ( ) * , ; :) literal. AWS S3
signs the path exactly as sent, and botocore (like aws/s3.c) sends every
byte but unreserved ones and '/' percent-encoded: a key "a+b" travels as
"a%2Bb". Stock moto therefore answers SignatureDoesNotMatch to boto3 itself
for any such key. The patch below makes moto re-sign the raw request path
(moto already keeps it as raw_path), which is what S3 does; the setup proves
it with a boto3 PutObject of such a key under the user's own keys.
"""
import json
import logging
import os
import signal
import threading
from urllib.parse import urlsplit

SETUP_CALLS = 8
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_CALLS)

import boto3  # noqa: E402
from moto.core.responses import BaseResponse  # noqa: E402
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402

_setup_class = BaseResponse.setup_class


def _setup_class_raw(self, request, full_url, headers, use_raw_body=False):
    _setup_class(self, request, full_url, headers, use_raw_body)
    environ = getattr(request, "environ", None)
    raw = environ.get("RAW_URI") if environ else None
    if raw:
        u = urlsplit(full_url)
        self.uri = "%s://%s%s" % (u.scheme, u.netloc, raw if raw.startswith("/") else "/" + raw)


BaseResponse.setup_class = _setup_class_raw

# Second correction: STS AssumeRoleWithWebIdentity and AssumeRoleWithSAML are
# unsigned calls (the token in the body is the credential; botocore sends
# them without Authorization). With auth on, moto indexes the Authorization
# header regardless and answers HTTP 500 with a Python traceback. Real STS
# serves them; so does the patched moto (the token itself is not verified).
_UNSIGNED_STS = ("AssumeRoleWithWebIdentity", "AssumeRoleWithSAML")
_authorize_normal = BaseResponse._authenticate_and_authorize_normal_action


def _authorize_normal_unsigned_sts(self, resource="*"):
    if "Authorization" not in self.headers and self._get_action() in _UNSIGNED_STS:
        return
    _authorize_normal(self, resource)


BaseResponse._authenticate_and_authorize_normal_action = _authorize_normal_unsigned_sts


def main():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())

    ep = "http://127.0.0.1:%d" % port
    kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
              aws_secret_access_key="setup")
    iam = boto3.client("iam", **kw)
    user = iam.create_user(UserName="daemon")["User"]                                     # 1
    bucket = "s3g-export-test"
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "tenant-42"}}}]}
    role = iam.create_role(RoleName="tenant", AssumeRolePolicyDocument=json.dumps(trust))["Role"]  # 2
    other = iam.create_role(RoleName="other", AssumeRolePolicyDocument=json.dumps(trust))["Role"]  # 3
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::%s" % bucket, "arn:aws:s3:::%s/*" % bucket]},
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt"], "Resource": "*"},
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role["Arn"]}]}
    iam.put_user_policy(UserName="daemon", PolicyName="daemon", PolicyDocument=json.dumps(policy))  # 4
    key = iam.create_access_key(UserName="daemon")["AccessKey"]                           # 5
    kms_key = boto3.client("kms", **kw).create_key(Description="export")["KeyMetadata"]  # 6
    boto3.client("s3", **kw).create_bucket(Bucket=bucket)                                 # 7
    role_policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject", "s3:ListBucket"],
         "Resource": ["arn:aws:s3:::%s" % bucket, "arn:aws:s3:::%s/tenant/*" % bucket]},
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Encrypt"], "Resource": "*"}]}
    iam.put_role_policy(RoleName="tenant", PolicyName="export",
                        PolicyDocument=json.dumps(role_policy))                           # 8

    # Auth is on from here. boto3's own encoding of a key with sub-delimiters
    # must verify (it does not with stock moto, see above).
    user_kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                   aws_secret_access_key=key["SecretAccessKey"])
    boto3.client("s3", **user_kw).put_object(Bucket=bucket, Key="probe/a b+c=d;e,f(g)!*'.json", Body=b"{}")

    print(json.dumps({
        "endpoint": ep, "akid": key["AccessKeyId"], "secret": key["SecretAccessKey"],
        "user_arn": user["Arn"], "role_arn": role["Arn"], "other_role_arn": other["Arn"],
        "kms_key_id": kms_key["KeyId"], "kms_key_arn": kms_key["Arn"], "bucket": bucket,
    }), flush=True)
    # Serve until told to stop (SIGTERM) or the test process goes away.
    parent = os.getppid()
    while not done.wait(1.0) and os.getppid() == parent:
        pass
    server.stop()


main()
