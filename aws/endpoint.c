#include "aws/endpoint.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xalloc.h"

const char *endpoint_getenv_process(const char *name, void *user)
{
	return getenv(name);
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_lower_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z');
}

int endpoint_valid_account(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++)
		if (!is_digit(s[n]))
			return 0;
	return n == 12;
}

int endpoint_valid_region(const char *s)
{
	size_t n;

	if (!s)
		return 0;
	n = strlen(s);
	if (n < 1 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/* Four dot-separated decimal numbers 0..255. */
static int is_ipv4(const char *s, size_t n)
{
	unsigned parts = 0, v = 0, digits = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (!digits || v > 255)
				return 0;
			parts++;
			v = digits = 0;
		} else if (is_digit(s[i])) {
			v = v * 10 + (unsigned)(s[i] - '0');
			if (++digits > 3)
				return 0;
		} else {
			return 0;
		}
	}
	return parts == 4;
}

int endpoint_valid_bucket(const char *s)
{
	size_t n;

	if (!s)
		return 0;
	n = strlen(s);
	if (n < 3 || n > 63 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_lower_alnum(s[i]) && s[i] != '-' && s[i] != '.')
			return 0;
		if (s[i] == '.' && (s[i + 1] == '.' || s[i + 1] == '-' || (i && s[i - 1] == '-')))
			return 0;
	}
	return !is_ipv4(s, n);
}

int endpoint_bucket_virtual_hostable(const char *s)
{
	return endpoint_valid_bucket(s) && !strchr(s, '.');
}

const char *endpoint_dns_suffix(const char *region)
{
	return strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
}

/* A parsed custom endpoint. */
struct url {
	const char *scheme;          /* "http" or "https" (static) */
	char *authority;             /* host[:port], default port dropped */
	char *path;                  /* "" or "/x/y" without trailing '/' */
	int ip;                      /* the host is an IP literal */
};

static void url_free(struct url *u)
{
	X_FREE(u->authority);
	X_FREE(u->path);
}

static int parse_url(const char *s, struct url *ret)
{
	const char *p, *a, *aend, *hend;
	struct url u = {0};
	size_t plen;
	unsigned long port = 0;
	int default_port = 0;

	if (strncasecmp(s, "https://", 8) == 0) {
		u.scheme = "https";
		a = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		u.scheme = "http";
		a = s + 7;
	} else {
		return S3G_EINVAL;
	}
	aend = a + strcspn(a, "/?#");
	if (*aend == '?' || *aend == '#' || strpbrk(aend, "?#") || aend == a)
		return S3G_EINVAL;
	for (p = a; p < aend; p++)
		if ((unsigned char)*p <= ' ' || *p == '@' || *p == '\\' || (unsigned char)*p >= 0x7f)
			return S3G_EINVAL;
	if (*a == '[') {
		hend = memchr(a, ']', (size_t)(aend - a));
		if (!hend || hend == a + 1)
			return S3G_EINVAL;
		hend++;
		u.ip = 1;
	} else {
		hend = memchr(a, ':', (size_t)(aend - a));
		if (!hend)
			hend = aend;
		if (hend == a)
			return S3G_EINVAL;
		u.ip = is_ipv4(a, (size_t)(hend - a));
	}
	if (hend < aend) {
		char *end;

		if (*hend != ':' || hend + 1 == aend)
			return S3G_EINVAL;
		port = strtoul(hend + 1, &end, 10);
		if (end != aend || port == 0 || port > 65535 || !is_digit(hend[1]))
			return S3G_EINVAL;
		default_port = (port == 443 && u.scheme[4] == 's') || (port == 80 && u.scheme[4] == '\0');
	}
	if (default_port)
		u.authority = x_asprintf("%.*s", (int)(hend - a), a);
	else
		u.authority = x_asprintf("%.*s", (int)(aend - a), a);
	/* lower-case the host part (DNS names are case-insensitive; SigV4 signs Host as sent) */
	for (char *q = u.authority; *q && *q != ':' && *q != ']'; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	plen = strlen(aend);
	while (plen && aend[plen - 1] == '/')
		plen--;
	u.path = x_asprintf("%.*s", (int)plen, aend);
	*ret = u;
	return 0;
}

static const char *env(const struct endpoint_cfg *cfg, const char *name)
{
	const char *v;

	if (!cfg->getenv)
		return NULL;
	v = cfg->getenv(name, cfg->getenv_user);
	return v && v[0] ? v : NULL;
}

/* The configured endpoint for a service, or NULL. */
static const char *custom_url(const struct endpoint_cfg *cfg, const char *configured, const char *env_name)
{
	const char *v, *ign;

	if (configured && configured[0])
		return configured;
	ign = env(cfg, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	if (ign && strcasecmp(ign, "true") == 0)
		return NULL;
	v = env(cfg, env_name);
	if (v)
		return v;
	return env(cfg, "AWS_ENDPOINT_URL");
}

static void fill(struct endpoint *e, const char *scheme, const char *authority, const char *path,
		 const char *region)
{
	e->base_url = x_asprintf("%s://%s%s", scheme, authority, path);
	e->host = x_strdup(authority);
	e->path_prefix = x_strdup(path);
	e->region = x_strdup(region);
}

int endpoint_s3control(const struct endpoint_cfg *cfg, const char *account_id, const char *region,
		       struct endpoint *ret)
{
	struct endpoint e = {0};
	struct url u = {0};
	const char *c;
	int r = 0;

	if (!endpoint_valid_account(account_id) || !endpoint_valid_region(region))
		return S3G_EINVAL;
	c = custom_url(cfg, cfg->s3control_url, "AWS_ENDPOINT_URL_S3_CONTROL");
	if (c) {
		r = parse_url(c, &u);
		if (r < 0)
			goto out;
		fill(&e, u.scheme, u.authority, u.path, region);
		e.custom = 1;
	} else {
		char *auth = x_asprintf("%s.s3-control.%s.%s", account_id, region, endpoint_dns_suffix(region));

		fill(&e, "https", auth, "", region);
		x_free(auth);
	}
	*ret = e;
out:
	url_free(&u);
	return r;
}

int endpoint_sts(const struct endpoint_cfg *cfg, const char *region, struct endpoint *ret)
{
	struct endpoint e = {0};
	struct url u = {0};
	const char *c;
	int global = region && strcmp(region, "aws-global") == 0;
	const char *sign = global ? "us-east-1" : region;
	int r = 0;

	if (!endpoint_valid_region(region))
		return S3G_EINVAL;
	c = custom_url(cfg, cfg->sts_url, "AWS_ENDPOINT_URL_STS");
	if (c) {
		r = parse_url(c, &u);
		if (r < 0)
			goto out;
		fill(&e, u.scheme, u.authority, u.path, sign);
		e.custom = 1;
	} else if (global) {
		fill(&e, "https", "sts.amazonaws.com", "", sign);
	} else {
		char *auth = x_asprintf("sts.%s.%s", region, endpoint_dns_suffix(region));

		fill(&e, "https", auth, "", region);
		x_free(auth);
	}
	*ret = e;
out:
	url_free(&u);
	return r;
}

int endpoint_s3(const struct endpoint_cfg *cfg, const char *bucket, const char *region, struct endpoint *ret)
{
	struct endpoint e = {0};
	struct url u = {0};
	const char *c;
	char *auth = NULL, *path = NULL;
	int r = 0;

	if (!endpoint_valid_bucket(bucket) || !endpoint_valid_region(region))
		return S3G_EINVAL;
	c = custom_url(cfg, cfg->s3_url, "AWS_ENDPOINT_URL_S3");
	if (c) {
		r = parse_url(c, &u);
		if (r < 0)
			goto out;
		e.custom = 1;
	} else {
		u.scheme = "https";
		u.authority = x_asprintf("s3.%s.%s", region, endpoint_dns_suffix(region));
		u.path = x_strdup("");
	}
	e.path_style = cfg->s3_force_path_style || !endpoint_bucket_virtual_hostable(bucket) || u.ip;
	if (e.path_style) {
		auth = x_strdup(u.authority);
		path = x_asprintf("%s/%s", u.path, bucket);
	} else {
		auth = x_asprintf("%s.%s", bucket, u.authority);
		path = x_strdup(u.path);
	}
	fill(&e, u.scheme, auth, path, region);
	*ret = e;
out:
	x_free(auth);
	x_free(path);
	url_free(&u);
	return r;
}

void endpoint_free(struct endpoint *e)
{
	if (!e)
		return;
	X_FREE(e->base_url);
	X_FREE(e->host);
	X_FREE(e->path_prefix);
	X_FREE(e->region);
}
