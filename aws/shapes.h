/* shapes.h — typed AWS results parsed from response bodies, and request bodies.
 *
 * Parsing (shapes_parse_*): each function takes one whole response body,
 * parses it with aws/xml.h under xml_default_limits and fills *ret. Elements
 * are found by child name; the root's name and every namespace are ignored
 * (so both <GetAccessGrantResult> and <CreateAccessGrantResult> work with
 * shapes_parse_grant), unknown elements are skipped.
 *  - Returns 0, S3G_ETOOBIG (a limit of xml.h), or S3G_EPARSE (malformed XML,
 *    a required field missing, a bad timestamp or number). On failure *err
 *    (may be NULL) holds a short reason; *ret is written only on success.
 *  - Result structs own every string (NULL = element absent). Pass them to
 *    the matching *_clear(), which frees, zeroes and accepts NULL or a zeroed
 *    struct. Empty elements are "" except where a field says otherwise.
 *  - Timestamps are int64 milliseconds since the Unix epoch (UTC), like
 *    core/isotime.h and aws/creds.h; 0 = absent. ISO 8601 with or without a
 *    fraction, "Z" or an offset.
 *  - A NextToken / NextContinuationToken that is absent or empty is NULL:
 *    NULL means "last page".
 *  - Grantee type and permission stay the AWS strings ("IAM", "READWRITE"):
 *    core/grant.h (grant_make) owns their meaning, and a value AWS adds later
 *    must not make a whole page unparsable.
 *
 * Building (shapes_build_*): request bodies as botocore writes them (S3
 * Control XML in model member order, namespaced root, no XML declaration;
 * STS form bodies with RFC 3986 percent-encoding). Input strings must be
 * valid UTF-8 without control characters other than tab/LF/CR (S3G_EINVAL
 * otherwise, and for a missing required field). *ret_body is NUL-terminated
 * and freed by the caller with x_free; bodies are capped at SHAPES_MAX_BODY.
 *
 * Nothing here logs, and nothing keeps state between calls.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/xml.h"
#include "core/err.h"

#define SHAPES_S3CONTROL_NS "http://awss3control.amazonaws.com/doc/2018-08-20/"
#define SHAPES_MAX_BODY (256u * 1024)
#define SHAPES_MAX_TAGS 50u

/* ---- S3 Control: Access Grants ---------------------------------------- */

struct shapes_grant {
	char *id;                    /* AccessGrantId; required */
	char *arn;                   /* AccessGrantArn */
	int64_t created_at_ms;       /* CreatedAt */
	char *grantee_type;          /* Grantee/GranteeType: IAM | DIRECTORY_USER | DIRECTORY_GROUP */
	char *grantee_id;            /* Grantee/GranteeIdentifier */
	char *permission;            /* READ | WRITE | READWRITE */
	char *location_id;           /* AccessGrantsLocationId */
	char *sub_prefix;            /* AccessGrantsLocationConfiguration/S3SubPrefix; NULL when absent or empty */
	char *grant_scope;           /* GrantScope, as AWS computed it */
	char *application_arn;       /* ApplicationArn */
};

struct shapes_grant_list {
	struct shapes_grant *items;  /* AccessGrantsList/AccessGrant, in document order */
	size_t n;
	char *next_token;            /* NULL = last page */
};

struct shapes_location {
	char *id;                    /* AccessGrantsLocationId; required */
	char *arn;                   /* AccessGrantsLocationArn */
	int64_t created_at_ms;
	char *scope;                 /* LocationScope: s3:// | s3://bucket | s3://bucket/prefix */
	char *iam_role_arn;          /* IAMRoleArn */
};

struct shapes_location_list {
	struct shapes_location *items;   /* AccessGrantsLocationsList/AccessGrantsLocation */
	size_t n;
	char *next_token;
};

struct shapes_instance {
	char *id;                    /* AccessGrantsInstanceId ("default") */
	char *arn;                   /* AccessGrantsInstanceArn; id or arn is required */
	int64_t created_at_ms;
	char *identity_center_arn;             /* IdentityCenterArn (deprecated) */
	char *identity_center_instance_arn;    /* IdentityCenterInstanceArn */
	char *identity_center_application_arn; /* IdentityCenterApplicationArn */
};

struct shapes_instance_list {
	struct shapes_instance *items;   /* AccessGrantsInstancesList/AccessGrantsInstance */
	size_t n;
	char *next_token;
};

/* Create/GetAccessGrantResult. */
int shapes_parse_grant(const char *body, size_t len, struct shapes_grant *ret, struct xml_error *err) S3G_WUR;
/* ListAccessGrantsResult. */
int shapes_parse_grant_list(const char *body, size_t len, struct shapes_grant_list *ret,
			    struct xml_error *err) S3G_WUR;
/* Create/GetAccessGrantsLocationResult. */
int shapes_parse_location(const char *body, size_t len, struct shapes_location *ret,
			  struct xml_error *err) S3G_WUR;
/* ListAccessGrantsLocationsResult. */
int shapes_parse_location_list(const char *body, size_t len, struct shapes_location_list *ret,
			       struct xml_error *err) S3G_WUR;
/* Create/GetAccessGrantsInstanceResult and GetAccessGrantsInstanceForPrefixResult. */
int shapes_parse_instance(const char *body, size_t len, struct shapes_instance *ret,
			  struct xml_error *err) S3G_WUR;
/* ListAccessGrantsInstancesResult. */
int shapes_parse_instance_list(const char *body, size_t len, struct shapes_instance_list *ret,
			       struct xml_error *err) S3G_WUR;

void shapes_grant_clear(struct shapes_grant *g);
void shapes_grant_list_clear(struct shapes_grant_list *l);
void shapes_location_clear(struct shapes_location *l);
void shapes_location_list_clear(struct shapes_location_list *l);
void shapes_instance_clear(struct shapes_instance *i);
void shapes_instance_list_clear(struct shapes_instance_list *l);

/* ---- STS ----------------------------------------------------------------- */

struct shapes_caller_identity {
	char *arn;                   /* Arn; required */
	char *user_id;               /* UserId */
	char *account;               /* Account; required */
};

/* AssumeRole and AssumeRoleWithWebIdentity results. */
struct shapes_sts_creds {
	char *access_key_id;         /* Credentials/AccessKeyId; required */
	char *secret_access_key;     /* Credentials/SecretAccessKey; required; secret: never log */
	char *session_token;         /* Credentials/SessionToken; required; secret: never log; uncapped */
	int64_t expiration_ms;       /* Credentials/Expiration; required */
	char *assumed_role_arn;      /* AssumedRoleUser/Arn */
	char *assumed_role_id;       /* AssumedRoleUser/AssumedRoleId */
	char *source_identity;       /* SourceIdentity */
	char *subject;               /* SubjectFromWebIdentityToken (web identity only) */
};

/* GetCallerIdentityResponse/GetCallerIdentityResult. */
int shapes_parse_caller_identity(const char *body, size_t len, struct shapes_caller_identity *ret,
				 struct xml_error *err) S3G_WUR;
/* AssumeRoleResponse/AssumeRoleResult or
 * AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult. */
int shapes_parse_sts_creds(const char *body, size_t len, struct shapes_sts_creds *ret,
			   struct xml_error *err) S3G_WUR;

void shapes_caller_identity_clear(struct shapes_caller_identity *c);
/* Wipes the secret and the session token before freeing them. */
void shapes_sts_creds_clear(struct shapes_sts_creds *c);

/* ---- S3 ListObjectsV2 -------------------------------------------------- */

struct shapes_object {
	char *key;                   /* Key; required; url-decoded when EncodingType=url */
	int64_t size;                /* Size; -1 when absent */
	char *etag;                  /* ETag, quotes included as S3 sends them */
	int64_t last_modified_ms;    /* LastModified */
};

struct shapes_object_list {
	char *name;                  /* Name (bucket) */
	char *prefix;                /* Prefix (decoded) */
	char *delimiter;             /* Delimiter (decoded) */
	char *start_after;           /* StartAfter (decoded) */
	int64_t key_count;           /* KeyCount; -1 when absent */
	bool is_truncated;           /* IsTruncated */
	char *next_continuation_token;   /* NULL = last page */
	struct shapes_object *contents;  /* Contents*, in document order */
	size_t ncontents;
	char **common_prefixes;      /* CommonPrefixes/Prefix* (decoded) */
	size_t ncommon_prefixes;
};

/* ListBucketResult (ListObjectsV2). */
int shapes_parse_object_list(const char *body, size_t len, struct shapes_object_list *ret,
			     struct xml_error *err) S3G_WUR;
void shapes_object_list_clear(struct shapes_object_list *l);

/* ---- Errors (S3, S3 Control, STS) -------------------------------------- */

struct shapes_error {
	char *code;                  /* Code; required */
	char *message;               /* Message */
	char *request_id;            /* RequestId (inside Error or beside it in ErrorResponse) */
	char *host_id;               /* HostId */
	char *type;                  /* Type: Sender | Receiver (STS) */
	char *server_time;           /* ServerTime (RequestTimeTooSkewed), as sent */
	char *request_time;          /* RequestTime (RequestTimeTooSkewed), as sent */
	int64_t server_time_ms;      /* ServerTime parsed; 0 when absent or not ISO 8601 */
	char *region;                /* Region (AuthorizationHeaderMalformed) */
	char *endpoint;              /* Endpoint (PermanentRedirect) */
	char *bucket;                /* Bucket */
};

/* A bare <Error> (S3, S3 Control), <ErrorResponse><Error>…</Error><RequestId/>
 * (STS), <ErrorResponse><Errors><Error>… (moto) or <Response><Errors><Error>…
 * <RequestID/> (EC2 style). Code is trimmed of white space. S3G_EPARSE for
 * any other root or without a non-empty Code. */
int shapes_parse_error(const char *body, size_t len, struct shapes_error *ret, struct xml_error *err) S3G_WUR;
void shapes_error_clear(struct shapes_error *e);

/* ---- Request bodies ------------------------------------------------------ */

struct shapes_tag {
	const char *key;
	const char *value;
};

struct shapes_create_grant_req {
	const char *location_id;     /* required */
	const char *sub_prefix;      /* NULL or "" = no AccessGrantsLocationConfiguration */
	const char *grantee_type;    /* required: IAM | DIRECTORY_USER | DIRECTORY_GROUP */
	const char *grantee_id;      /* required */
	const char *permission;      /* required: READ | WRITE | READWRITE */
	const char *application_arn; /* optional */
	const char *s3_prefix_type;  /* optional: "Object" for a one-object grant */
	const struct shapes_tag *tags;   /* optional, up to SHAPES_MAX_TAGS */
	size_t ntags;
};

struct shapes_create_location_req {
	const char *scope;           /* required: LocationScope */
	const char *iam_role_arn;    /* required */
	const struct shapes_tag *tags;
	size_t ntags;
};

struct shapes_create_instance_req {
	const char *identity_center_arn; /* optional */
	const struct shapes_tag *tags;
	size_t ntags;
};

int shapes_build_create_grant(const struct shapes_create_grant_req *req, char **ret_body,
			      size_t *ret_len) S3G_WUR;
int shapes_build_create_location(const struct shapes_create_location_req *req, char **ret_body,
				 size_t *ret_len) S3G_WUR;
/* With no member set this is the empty namespaced root element
 * (<CreateAccessGrantsInstanceRequest xmlns="…"/>): the API reference calls
 * the root required, botocore sends an empty body; both are accepted. */
int shapes_build_create_instance(const struct shapes_create_instance_req *req, char **ret_body,
				 size_t *ret_len) S3G_WUR;

struct shapes_assume_role_req {
	const char *role_arn;        /* required */
	const char *session_name;    /* required: RoleSessionName */
	const char *external_id;     /* optional */
	unsigned duration_seconds;   /* 0 = omit (STS default 3600) */
	const char *source_identity; /* optional */
};

struct shapes_web_identity_req {
	const char *role_arn;        /* required */
	const char *session_name;    /* required */
	const char *token;           /* required: WebIdentityToken; secret */
	const char *provider_id;     /* optional: ProviderId (OAuth 2.0 only) */
	unsigned duration_seconds;   /* 0 = omit */
};

/* "Action=GetCallerIdentity&Version=2011-06-15". */
int shapes_build_get_caller_identity(char **ret_body, size_t *ret_len) S3G_WUR;
/* Parameters in the order botocore's credential code passes them. */
int shapes_build_assume_role(const struct shapes_assume_role_req *req, char **ret_body,
			     size_t *ret_len) S3G_WUR;
int shapes_build_assume_role_web_identity(const struct shapes_web_identity_req *req, char **ret_body,
					  size_t *ret_len) S3G_WUR;
