#include "core/validate.h"

#include <string.h>

static const char *const principal_names[VALIDATE_PRINCIPAL_MAX_] = {
	[VALIDATE_IAM_USER] = "iam_user",
	[VALIDATE_IAM_ROLE] = "iam_role",
	[VALIDATE_DIRECTORY_USER] = "directory_user",
};

const char *validate_principal_name(enum validate_principal k)
{
	return (unsigned)k < VALIDATE_PRINCIPAL_MAX_ ? principal_names[k] : "?";
}

static int fail(const char **ret_why, const char *why)
{
	if (ret_why)
		*ret_why = why;
	return S3G_EINVAL;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static int is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* IAM name characters: [\w+=,.@-] */
static int is_iam_char(char c)
{
	return is_digit(c) || is_lower(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '+' || c == '=' ||
	       c == ',' || c == '.' || c == '@' || c == '-';
}

static int starts(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	return n >= l && memcmp(s, lit, l) == 0;
}

static int ends(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	return n >= l && memcmp(s + n - l, lit, l) == 0;
}

int validate_account(const char *s, size_t n, const char **ret_why)
{
	if (n != 12)
		return fail(ret_why, "account: not a 12-digit AWS account id");
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return fail(ret_why, "account: not a 12-digit AWS account id");
	return 0;
}

int validate_iam_name(const char *s, size_t n, const char **ret_why)
{
	if (n == 0 || n > VALIDATE_IAM_NAME_MAX)
		return fail(ret_why, "principal: IAM name must be 1 to 64 characters");
	for (size_t i = 0; i < n; i++)
		if (!is_iam_char(s[i]))
			return fail(ret_why, "principal: IAM name has a character outside [A-Za-z0-9+=,.@_-]");
	return 0;
}

int validate_iam_arn(const char *s, size_t n, enum validate_principal *ret_kind, const char **ret_why)
{
	static const char not_arn[] = "principal: not an IAM user or role ARN";
	enum validate_principal kind;
	size_t i = 4, seg, last;

	if (n > VALIDATE_ARN_MAX)
		return fail(ret_why, "principal: ARN longer than 2048 characters");
	if (!starts(s, n, "arn:aws"))
		return fail(ret_why, not_arn);
	/* partition: aws(-[a-z]+)* */
	i = 7;
	while (i < n && s[i] == '-') {
		size_t j = ++i;

		while (i < n && is_lower(s[i]))
			i++;
		if (i == j)
			return fail(ret_why, "principal: bad partition in ARN");
	}
	if (!starts(s + i, n - i, ":iam::"))
		return fail(ret_why, not_arn);
	i += 6;
	if (n - i < 13 || validate_account(s + i, 12, NULL) < 0 || s[i + 12] != ':')
		return fail(ret_why, "principal: ARN account is not 12 digits");
	i += 13;
	if (starts(s + i, n - i, "user/")) {
		kind = VALIDATE_IAM_USER;
		i += 4;
	} else if (starts(s + i, n - i, "role/")) {
		kind = VALIDATE_IAM_ROLE;
		i += 4;
	} else {
		return fail(ret_why, "principal: ARN resource is not user/ or role/");
	}
	/* s[i] == '/': path segments then the name after the last '/' */
	last = i;
	for (size_t j = i; j < n; j++)
		if (s[j] == '/')
			last = j;
	if (last - i + 1 > VALIDATE_IAM_PATH_MAX)
		return fail(ret_why, "principal: IAM path longer than 512 characters");
	seg = i + 1;
	for (size_t j = i + 1; j <= last; j++) {
		if (s[j] == '/') {
			if (j == seg)
				return fail(ret_why, "principal: empty IAM path segment");
			seg = j + 1;
		} else if (!is_iam_char(s[j])) {
			return fail(ret_why, "principal: IAM path has a character outside [A-Za-z0-9+=,.@_-]");
		}
	}
	if (validate_iam_name(s + last + 1, n - last - 1, ret_why) < 0)
		return S3G_EINVAL;
	if (ret_kind)
		*ret_kind = kind;
	return 0;
}

int validate_identity_center_id(const char *s, size_t n, const char **ret_why)
{
	static const char bad[] = "principal: not an Identity Center user id";
	static const size_t groups[] = {8, 4, 4, 4, 12};
	size_t i = 0;

	if (n == 47) {
		for (; i < 10; i++)
			if (!is_hex(s[i]))
				return fail(ret_why, bad);
		if (s[i++] != '-')
			return fail(ret_why, bad);
	} else if (n != 36) {
		return fail(ret_why, bad);
	}
	for (size_t g = 0; g < 5; g++) {
		for (size_t k = 0; k < groups[g]; k++, i++)
			if (!is_hex(s[i]))
				return fail(ret_why, bad);
		if (g < 4 && s[i++] != '-')
			return fail(ret_why, bad);
	}
	return 0;
}

int validate_principal(const char *s, size_t n, enum validate_principal *ret_kind, const char **ret_why)
{
	const char *why;
	int r;

	if (n == 0)
		return fail(ret_why, "principal: empty");
	if (starts(s, n, "arn:"))
		return validate_iam_arn(s, n, ret_kind, ret_why);
	r = validate_identity_center_id(s, n, &why);
	if (r < 0)
		return fail(ret_why, "principal: not an IAM user or role ARN or an Identity Center user id");
	if (ret_kind)
		*ret_kind = VALIDATE_DIRECTORY_USER;
	return 0;
}

int validate_bucket(const char *s, size_t n, const char **ret_why)
{
	int dots = 0, all_num = 1;

	if (n < 3 || n > 63)
		return fail(ret_why, "bucket: must be 3 to 63 characters");
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!(is_lower(c) || is_digit(c) || c == '.' || c == '-'))
			return fail(ret_why, "bucket: only a-z, 0-9, '.' and '-' are allowed");
		if (c == '.') {
			dots++;
			if (i + 1 < n && s[i + 1] == '.')
				return fail(ret_why, "bucket: has \"..\"");
		} else if (!is_digit(c)) {
			all_num = 0;
		}
	}
	if (!(is_lower(s[0]) || is_digit(s[0])) || !(is_lower(s[n - 1]) || is_digit(s[n - 1])))
		return fail(ret_why, "bucket: must start and end with a letter or digit");
	if (dots == 3 && all_num)
		return fail(ret_why, "bucket: must not be formatted as an IP address");
	if (starts(s, n, "xn--") || starts(s, n, "sthree-") || starts(s, n, "amzn-s3-demo-"))
		return fail(ret_why, "bucket: reserved prefix");
	if (ends(s, n, "-s3alias") || ends(s, n, "--ol-s3") || ends(s, n, ".mrap") || ends(s, n, "--x-s3"))
		return fail(ret_why, "bucket: reserved suffix");
	return 0;
}

/* Length of a valid UTF-8 sequence at s (≤ n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min, cp;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		min = 0x80;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		min = 0x800;
		cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		min = 0x10000;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Check a relative path (already stripped of one leading/trailing '/'). */
static int check_path(const char *field_bad[], const char *s, size_t n, const char **ret_why)
{
	size_t seg = 0;

	if (n > VALIDATE_PREFIX_MAX)
		return fail(ret_why, field_bad[0]);
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t l;

		if (c < 0x20 || c == 0x7f)
			return fail(ret_why, field_bad[1]);
		if (c == '*')
			return fail(ret_why, field_bad[2]);
		l = utf8_len((const unsigned char *)s + i, n - i);
		if (!l)
			return fail(ret_why, field_bad[3]);
		i += l;
		if (c == '/' || i == n) {
			size_t end = c == '/' ? i - 1 : i;
			size_t sl = end - seg;

			if (sl == 0)
				return fail(ret_why, field_bad[4]);
			if ((sl == 1 && s[seg] == '.') || (sl == 2 && s[seg] == '.' && s[seg + 1] == '.'))
				return fail(ret_why, field_bad[5]);
			if (c == '/' && i == n)
				return fail(ret_why, field_bad[4]);
			seg = i;
		}
	}
	return 0;
}

static const char *prefix_bad[] = {
	"prefix: longer than 2000 characters",
	"prefix: contains a control character",
	"prefix: contains '*' (grants add the wildcard themselves)",
	"prefix: not valid UTF-8",
	"prefix: has an empty path segment",
	"prefix: has a \".\" or \"..\" segment",
};

static const char *scope_bad[] = {
	"location_scope: longer than 2000 characters",
	"location_scope: contains a control character",
	"location_scope: contains '*'",
	"location_scope: not valid UTF-8",
	"location_scope: has an empty path segment",
	"location_scope: has a \".\" or \"..\" segment",
};

int validate_location_scope(const char *s, size_t n, size_t *ret_bucket_len, const char **ret_why)
{
	size_t b;
	const char *why;

	if (!starts(s, n, "s3://"))
		return fail(ret_why, "location_scope: must start with s3://");
	s += 5;
	n -= 5;
	if (n + 5 > VALIDATE_PREFIX_MAX)
		return fail(ret_why, scope_bad[0]);
	if (n == 0) {
		if (ret_bucket_len)
			*ret_bucket_len = 0;
		return 0;
	}
	if (check_path(scope_bad, s, n, ret_why) < 0)
		return S3G_EINVAL;
	for (b = 0; b < n && s[b] != '/'; b++)
		;
	if (validate_bucket(s, b, &why) < 0)
		return fail(ret_why, "location_scope: not a valid S3 bucket name");
	if (ret_bucket_len)
		*ret_bucket_len = b;
	return 0;
}

int validate_prefix(const char *scope, const char *raw, size_t n, size_t *ret_off, size_t *ret_len,
		    const char **ret_why)
{
	size_t off = 0, scope_len = strlen(scope);
	int def = scope_len == 5;   /* "s3://" */

	if (starts(raw, n, "s3://")) {
		if (def) {
			off = 5;
		} else if (n >= scope_len && memcmp(raw, scope, scope_len) == 0 &&
			   (n == scope_len || raw[scope_len] == '/')) {
			off = scope_len;
		} else {
			return fail(ret_why, "prefix: outside the location scope");
		}
	}
	if (off < n && raw[off] == '/')
		off++;
	if (n > off && raw[n - 1] == '/')
		n--;
	if (n < off)   /* raw was "/" */
		n = off;
	if (check_path(prefix_bad, raw + off, n - off, ret_why) < 0)
		return S3G_EINVAL;
	if (def) {
		const char *why;
		size_t b;

		if (n == off)
			return fail(ret_why, "prefix: must name a bucket when the location scope is s3://");
		for (b = off; b < n && raw[b] != '/'; b++)
			;
		if (validate_bucket(raw + off, b - off, &why) < 0)
			return fail(ret_why, "prefix: first segment is not a valid S3 bucket name");
	}
	*ret_off = off;
	*ret_len = n - off;
	return 0;
}

int validate_access(const char *s, size_t n, enum grant_perm *ret, const char **ret_why)
{
	if (n == 4 && memcmp(s, "read", 4) == 0) {
		*ret = GRANT_READ;
		return 0;
	}
	if (n == 5 && memcmp(s, "write", 5) == 0) {
		*ret = GRANT_READWRITE;
		return 0;
	}
	return fail(ret_why, "access: must be read or write");
}
