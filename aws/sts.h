/* sts.h — STS GetCallerIdentity, AssumeRole, AssumeRoleWithWebIdentity
 * (WIRE.md c) over aws/client: form-encoded POST / on the client's regional
 * STS endpoint, signed as service "sts" (AssumeRoleWithWebIdentity unsigned:
 * the token in the body is the credential).
 *
 * The callback fires once, on a later loop pass. The shape is NULL unless
 * status is 0, owned by the call and cleared (secrets wiped) when the
 * callback returns: move it out to keep it. Requests are copied before the
 * start function returns.
 */
#pragma once
#include "aws/client.h"
#include "aws/shapes.h"

typedef void (*sts_identity_cb)(int status, const struct aws_result *res, struct shapes_caller_identity *id,
				void *user);
typedef void (*sts_creds_cb)(int status, const struct aws_result *res, struct shapes_sts_creds *creds,
			     void *user);

void sts_get_caller_identity(struct aws_client *cl, sts_identity_cb cb, void *user);
void sts_assume_role(struct aws_client *cl, const struct shapes_assume_role_req *req, sts_creds_cb cb,
		     void *user);
void sts_assume_role_web_identity(struct aws_client *cl, const struct shapes_web_identity_req *req,
				  sts_creds_cb cb, void *user);
