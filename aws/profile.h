/* profile.h — AWS shared config and credentials files.
 *
 * Parses ~/.aws/config and ~/.aws/credentials text with the rules of the
 * AWS SDKs (aws-c-sdkutils aws_profile.c, botocore): `[default]`,
 * `[profile NAME]` (config file; `[profile default]` wins over `[default]`),
 * `[NAME]` (credentials file; `[profile NAME]` there is skipped), full-line
 * `#`/`;` comments, inline comments only after whitespace on property lines,
 * continuation lines, and nested `parent =` blocks stored as "parent.sub".
 * The same profile in both files is merged, the credentials file winning.
 *
 * profile_resolve() turns the selected profile into a credential chain: a
 * base source (static keys, environment, web identity, process, container,
 * IMDS) plus zero or more AssumeRole hops, following source_profile links
 * with loop detection. Nothing here reads the environment or the network;
 * profile_load_files() is the only function that touches the file system.
 *
 * A profile_set owns all its strings; profile_set_free(NULL) is a no-op.
 * Secret values are stored as given and must never be logged by callers.
 */
#pragma once
#include <stddef.h>

#include "core/err.h"

enum profile_file {
	PROFILE_FILE_CONFIG,
	PROFILE_FILE_CREDENTIALS,
};

struct profile_prop {
	char *name;                  /* as written; nested blocks as "parent.sub" */
	char *value;
	struct profile_prop *next;
};

struct profile {
	char *name;
	struct profile_prop *props;
	struct profile *next;
};

struct profile_set {
	struct profile *head;
};

/* Where parsing stopped, for a message like "config:12: bad section header". */
struct profile_error {
	int line;
	const char *reason;          /* static string */
};

#define PROFILE_MAX_TEXT (1u << 20)   /* a larger file is refused */

void profile_set_init(struct profile_set *set);
void profile_set_free(struct profile_set *set);

/* Merge one file's text into set. Later files override earlier ones key by key,
 * so parse the config file first, the credentials file second. */
int profile_parse(struct profile_set *set, enum profile_file kind, const char *text, size_t len,
		  struct profile_error *ret_err) S3G_WUR;

/* Read both files (a missing file is not an error); NULL paths skip that file. */
int profile_load_files(struct profile_set *set, const char *config_path, const char *credentials_path,
		       struct profile_error *ret_err) S3G_WUR;

const struct profile *profile_find(const struct profile_set *set, const char *name);
const char *profile_get(const struct profile *p, const char *key);

enum cred_source_kind {
	CRED_SOURCE_NONE,            /* the profile says nothing about credentials */
	CRED_SOURCE_STATIC,
	CRED_SOURCE_ENVIRONMENT,
	CRED_SOURCE_WEB_IDENTITY,
	CRED_SOURCE_PROCESS,
	CRED_SOURCE_CONTAINER,
	CRED_SOURCE_IMDS,
	CRED_SOURCE_MAX_
};
const char *cred_source_kind_name(enum cred_source_kind k);

#define PROFILE_MAX_HOPS 8

struct role_hop {
	const char *role_arn;
	const char *external_id;     /* NULL when unset */
	const char *session_name;    /* NULL: the caller picks one */
	int duration_seconds;        /* 0: the service default */
};

/* Borrowed pointers into the profile_set; valid while it lives. */
struct cred_chain {
	enum cred_source_kind base;
	const char *access_key_id;   /* STATIC */
	const char *secret_access_key;
	const char *session_token;
	const char *web_identity_token_file;   /* WEB_IDENTITY */
	const char *web_identity_role_arn;
	const char *web_identity_session_name;
	const char *process_command;           /* PROCESS */
	size_t nhops;                /* hops[0] is assumed first, with the base credentials */
	struct role_hop hops[PROFILE_MAX_HOPS];
};

/* Resolve the named profile. S3G_ENOTFOUND when there is no such profile;
 * S3G_ECONFIG with a reason for a broken one (partial keys, role_arn without a
 * source, both source_profile and credential_source, a source_profile loop,
 * more than PROFILE_MAX_HOPS roles). */
int profile_resolve(const struct profile_set *set, const char *name, struct cred_chain *ret_chain,
		    const char **ret_reason) S3G_WUR;
