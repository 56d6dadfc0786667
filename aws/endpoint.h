/* endpoint.h — base URL, Host and signing region of S3 Control, STS and S3.
 *
 * AWS endpoints (WIRE.md a, c, d):
 *   S3 Control  https://{account}.s3-control.{region}.amazonaws.com
 *   STS         https://sts.{region}.amazonaws.com ("aws-global":
 *               https://sts.amazonaws.com, signed as us-east-1)
 *   S3          https://{bucket}.s3.{region}.amazonaws.com (virtual-hosted), or
 *               https://s3.{region}.amazonaws.com/{bucket} (path style: dotted
 *               or otherwise non-DNS-label bucket names, or forced)
 * Regions "cn-*" use the suffix amazonaws.com.cn.
 *
 * A custom endpoint replaces scheme://host[:port][/path]; precedence:
 * the daemon config value, then AWS_ENDPOINT_URL_S3_CONTROL /
 * AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL
 * (environment ignored when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true).
 * With a custom endpoint S3 Control gets NO account host prefix; S3 stays
 * virtual-hosted ({bucket}.{host}) unless the host is an IP address, the
 * bucket is not a DNS label, or path style is forced.
 *
 * The environment is read only through cfg->getenv (tests inject a table).
 * Results are heap strings owned by struct endpoint (endpoint_free).
 * Pure string work: no I/O, no logging.
 */
#pragma once
#include "core/err.h"

typedef const char *(*endpoint_getenv_cb)(const char *name, void *user);

struct endpoint_cfg {
	const char *s3control_url;   /* from the config file; NULL or "" = none */
	const char *sts_url;
	const char *s3_url;
	int s3_force_path_style;
	endpoint_getenv_cb getenv;   /* NULL: no environment */
	void *getenv_user;
};

struct endpoint {
	char *base_url;              /* "scheme://authority[/prefix]", no trailing '/'; append "/path" */
	char *host;                  /* Host header value: host[:port] (default ports omitted) */
	char *path_prefix;           /* the path part of base_url ("" or "/a/b"), for the canonical URI */
	char *region;                /* signing region */
	int custom;                  /* came from a configured endpoint */
	int path_style;              /* S3: bucket in the path */
};

/* getenv(3) wrapper for the daemon (user unused). */
const char *endpoint_getenv_process(const char *name, void *user);

int endpoint_s3control(const struct endpoint_cfg *cfg, const char *account_id, const char *region,
		       struct endpoint *ret) S3G_WUR;
int endpoint_sts(const struct endpoint_cfg *cfg, const char *region, struct endpoint *ret) S3G_WUR;
int endpoint_s3(const struct endpoint_cfg *cfg, const char *bucket, const char *region,
		struct endpoint *ret) S3G_WUR;
void endpoint_free(struct endpoint *e);

/* Exactly 12 ASCII digits. */
int endpoint_valid_account(const char *s);
/* A DNS label of [a-z0-9-], 1..63, no leading/trailing '-'. */
int endpoint_valid_region(const char *s);
/* S3 bucket naming rules: 3..63 of [a-z0-9.-], alnum at both ends, no "..", not an IPv4 address. */
int endpoint_valid_bucket(const char *s);
/* A valid bucket without dots (usable as one host label). */
int endpoint_bucket_virtual_hostable(const char *s);
/* "amazonaws.com.cn" for cn-* regions, else "amazonaws.com". */
const char *endpoint_dns_suffix(const char *region);
