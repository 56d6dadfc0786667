/* creds.h — AWS credentials: the value type and the parsers of the places
 * credentials come from (environment, credential_process output, container
 * endpoint and IMDS JSON).
 *
 * struct aws_creds owns its strings; aws_creds_clear() wipes the secret and
 * session token before freeing them and accepts a zeroed or half-filled
 * struct. Nothing here logs; reasons are static strings naming the field.
 * The asynchronous provider (refresh, single-flight, STS) is in credprov.h.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct aws_creds {
	char *access_key_id;
	char *secret_access_key;     /* secret: never log */
	char *session_token;         /* secret: never log; NULL for long-term keys */
	int64_t expiration_ms;       /* wall clock, ms since epoch; 0 = does not expire */
};

typedef const char *(*creds_getenv_cb)(const char *name, void *user);

/* The wall clock in Unix ms (CLOCK_REALTIME), shaped as the injectable clock
 * callbacks of aws/client.h and aws/credprov.h; user is ignored. */
int64_t aws_wall_clock_ms(void *user);

void aws_creds_clear(struct aws_creds *c);
void aws_creds_copy(struct aws_creds *dst, const struct aws_creds *src);
int aws_creds_set(struct aws_creds *c, const char *akid, const char *secret, const char *token,
		  int64_t expiration_ms) S3G_WUR;

/* AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (or the legacy
 * AWS_SECURITY_TOKEN) / AWS_CREDENTIAL_EXPIRATION. S3G_ENOTFOUND when neither
 * key is set; S3G_ECONFIG with a reason when only one is, or the expiration
 * is not ISO 8601. */
int creds_from_env(creds_getenv_cb getenv_cb, void *user, struct aws_creds *ret,
		   const char **ret_reason) S3G_WUR;

enum creds_json_kind {
	CREDS_JSON_PROCESS,          /* credential_process: {"Version":1,...} */
	CREDS_JSON_CONTAINER,        /* ECS/EKS: {"AccessKeyId","SecretAccessKey","Token","Expiration"} */
	CREDS_JSON_IMDS,             /* EC2: {"Code":"Success",...,"Token","Expiration"} */
	CREDS_JSON_MAX_
};

#define CREDS_JSON_MAX (64u * 1024)

/* Parse one credentials document. S3G_EPARSE with a reason naming the field. */
int creds_parse_json(enum creds_json_kind kind, const char *body, size_t len, struct aws_creds *ret,
		     const char **ret_reason) S3G_WUR;
