#include "daemon/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>
#include <libpq-fe.h>

#include "core/xalloc.h"

struct config_value {
	char *str;       /* as written (defaults: as in the table); never NULL */
	long long num;   /* INT, BOOL, DURATION (ms), ENUM (index), TIME (min) */
	int line;        /* 0 = default */
};

struct config {
	char *file;                            /* path it was read from */
	struct config_value v[CONFIG_KEY_MAX];
};

static const struct config_key_info keys[CONFIG_KEY_MAX] = {
#define CONFIG_KEY_ROW_(id, sec, nm, ty, def, mn, mx, fl, ch, hl) \
	[CONFIG_##id] = { sec, nm, ty, def, mn, mx, fl, ch, hl },
	CONFIG_KEYS(CONFIG_KEY_ROW_)
#undef CONFIG_KEY_ROW_
};

static const char *const type_names[CONFIG_TYPE_MAX] = {
	[CONFIG_STRING] = "string",
	[CONFIG_INT] = "int",
	[CONFIG_BOOL] = "bool",
	[CONFIG_DURATION] = "duration",
	[CONFIG_ENUM] = "enum",
	[CONFIG_PATH] = "path",
	[CONFIG_URL] = "url",
	[CONFIG_TIME] = "time",
	[CONFIG_CONNINFO] = "conninfo",
	[CONFIG_TIMEZONE] = "timezone",
};

const char *config_type_name(enum config_type t)
{
	return (unsigned)t < CONFIG_TYPE_MAX ? type_names[t] : "?";
}

const struct config_key_info *config_key_info(enum config_key k)
{
	return (unsigned)k < CONFIG_KEY_MAX ? &keys[k] : NULL;
}

int config_key_find(const char *section, const char *name)
{
	for (int k = 0; k < CONFIG_KEY_MAX; k++)
		if (strcmp(keys[k].section, section) == 0 && strcmp(keys[k].name, name) == 0)
			return k;
	return -1;
}

const char *config_key_label(enum config_key k)
{
	static char labels[CONFIG_KEY_MAX][64];

	if ((unsigned)k >= CONFIG_KEY_MAX)
		return "?";
	if (!labels[k][0])
		snprintf(labels[k], sizeof(labels[k]), "%s.%s", keys[k].section, keys[k].name);
	return labels[k];
}

static bool section_known(const char *section)
{
	for (int k = 0; k < CONFIG_KEY_MAX; k++)
		if (strcmp(keys[k].section, section) == 0)
			return true;
	return false;
}

/* ---- value parsers ---------------------------------------------------- */

int config_parse_duration(const char *s, long long *ret_ms)
{
	static const struct { const char *unit; long long ms; } units[] = {
		{ "ms", 1 }, { "s", CONFIG_MS_S }, { "m", CONFIG_MS_M },
		{ "h", CONFIG_MS_H }, { "d", CONFIG_MS_D },
	};
	long long total = 0;
	const char *p = s;

	if (!*p)
		return S3G_EINVAL;
	if (strspn(s, "0123456789") == strlen(s)) {  /* bare number: seconds */
		errno = 0;
		total = strtoll(s, NULL, 10);
		if (errno || total > LLONG_MAX / CONFIG_MS_S)
			return S3G_EINVAL;
		*ret_ms = total * CONFIG_MS_S;
		return 0;
	}
	while (*p) {
		char *end;
		long long n, mult = -1;
		size_t ulen = 0;

		if (!isdigit((unsigned char)*p))
			return S3G_EINVAL;
		errno = 0;
		n = strtoll(p, &end, 10);
		if (errno)
			return S3G_EINVAL;
		p = end;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].unit);

			if (strncmp(p, units[i].unit, l) == 0 && !isalpha((unsigned char)p[l]))
				mult = units[i].ms, ulen = l;
		}
		if (mult < 0)
			return S3G_EINVAL;
		p += ulen;
		if (n > (LLONG_MAX - total) / mult)
			return S3G_EINVAL;
		total += n * mult;
	}
	*ret_ms = total;
	return 0;
}

int config_parse_bool(const char *s, bool *ret_b)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret_b = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret_b = false;
			return 0;
		}
	}
	return S3G_EINVAL;
}

static void format_duration(char *out, size_t n, long long ms)
{
	if (ms && ms % CONFIG_MS_D == 0)
		snprintf(out, n, "%lldd", ms / CONFIG_MS_D);
	else if (ms && ms % CONFIG_MS_H == 0)
		snprintf(out, n, "%lldh", ms / CONFIG_MS_H);
	else if (ms && ms % CONFIG_MS_M == 0)
		snprintf(out, n, "%lldm", ms / CONFIG_MS_M);
	else if (ms % CONFIG_MS_S == 0)
		snprintf(out, n, "%llds", ms / CONFIG_MS_S);
	else
		snprintf(out, n, "%lldms", ms);
}

static int enum_index(const char *choices, const char *s)
{
	size_t sl = strlen(s);
	int i = 0;

	for (const char *p = choices; p; i++) {
		const char *bar = strchr(p, '|');
		size_t l = bar ? (size_t)(bar - p) : strlen(p);

		if (l == sl && strncmp(p, s, l) == 0)
			return i;
		p = bar ? bar + 1 : NULL;
	}
	return -1;
}

static bool zone_exists(const char *z)
{
	const char *dir = getenv("TZDIR");
	char path[PATH_MAX];

	if (z[0] == '/' || strstr(z, ".."))
		return false;
	for (const char *p = z; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
			return false;
	if (snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", z) >= (int)sizeof(path))
		return false;
	return access(path, R_OK) == 0;
}

/* Parse one value for key k into *v. On error returns a reason (static or
 * allocated into *reason_buf) and leaves *v untouched. */
static const char *parse_value(enum config_key k, const char *s, struct config_value *v,
			       char *reason_buf, size_t rbn)
{
	const struct config_key_info *ki = &keys[k];
	long long num = 0;

	if (strlen(s) > CONFIG_MAX_VALUE)
		return "value too long";
	switch (ki->type) {
	case CONFIG_STRING:
		break;
	case CONFIG_INT: {
		char *end;

		errno = 0;
		num = strtoll(s, &end, 10);
		if (!*s || *end || errno)
			return "not an integer";
		if ((ki->min || ki->max) && (num < ki->min || num > ki->max)) {
			snprintf(reason_buf, rbn, "%lld out of range [%lld, %lld]", num, ki->min, ki->max);
			return reason_buf;
		}
		break;
	}
	case CONFIG_BOOL: {
		bool b;

		if (config_parse_bool(s, &b) < 0)
			return "not a boolean (yes/no, true/false, on/off, 1/0)";
		num = b;
		break;
	}
	case CONFIG_DURATION:
		if (config_parse_duration(s, &num) < 0)
			return "not a duration (e.g. 250ms, 30s, 5m, 1h, 1h30m)";
		if ((ki->min || ki->max) && (num < ki->min || num > ki->max)) {
			char a[32], b[32];

			format_duration(a, sizeof(a), ki->min);
			format_duration(b, sizeof(b), ki->max);
			snprintf(reason_buf, rbn, "%s out of range [%s, %s]", s, a, b);
			return reason_buf;
		}
		break;
	case CONFIG_ENUM:
		num = enum_index(ki->choices, s);
		if (num < 0) {
			snprintf(reason_buf, rbn, "\"%.64s\" is not one of %s", s, ki->choices);
			return reason_buf;
		}
		break;
	case CONFIG_PATH:
		if (*s && *s != '/')
			return "not an absolute path";
		break;
	case CONFIG_URL:
		if (*s) {
			const char *h = strncmp(s, "https://", 8) == 0 ? s + 8 :
					strncmp(s, "http://", 7) == 0 ? s + 7 : NULL;

			if (!h || !*h || *h == '/')
				return "not an http:// or https:// URL";
			for (const char *p = s; *p; p++)
				if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
					return "URL contains whitespace";
		}
		break;
	case CONFIG_TIME: {
		int hh, mm, used = 0;

		if (strlen(s) != 5 || sscanf(s, "%2d:%2d%n", &hh, &mm, &used) != 2 || used != 5 ||
		    !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[3]))
			return "not a time of day (HH:MM)";
		if (hh > 23 || mm > 59 || hh < 0 || mm < 0)
			return "time of day out of range (00:00 to 23:59)";
		num = hh * 60 + mm;
		break;
	}
	case CONFIG_CONNINFO:
		if (*s) {
			char *err = NULL;
			PQconninfoOption *o = PQconninfoParse(s, &err);

			/* libpq's message may quote the string (and a password in
			 * it): never pass it on. */
			PQfreemem(err);
			if (!o)
				return "not a valid libpq connection string";
			PQconninfoFree(o);
		}
		break;
	case CONFIG_TIMEZONE:
		if (*s && !zone_exists(s))
			return "unknown time zone";
		break;
	case CONFIG_TYPE_MAX:
		return "bad key type";
	}
	x_free(v->str);
	v->str = x_strdup(s);
	v->num = num;
	return NULL;
}

/* ---- snapshots ------------------------------------------------------ */

struct config *config_defaults(void)
{
	struct config *cfg = x_calloc(1, sizeof(*cfg));

	cfg->file = x_strdup("");
	for (int k = 0; k < CONFIG_KEY_MAX; k++) {
		char rb[160];
		const char *why = parse_value(k, keys[k].def, &cfg->v[k], rb, sizeof(rb));

		if (why) {  /* a table bug; test_config catches it */
			fprintf(stderr, "config: default of %s: %s\n", config_key_label(k), why);
			abort();
		}
	}
	return cfg;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (int k = 0; k < CONFIG_KEY_MAX; k++)
		x_free(cfg->v[k].str);
	x_free(cfg->file);
	x_free(cfg);
}

static void add_error(struct config_errors *errs, const char *file, int line,
		      const char *key, const char *reason)
{
	struct config_error *e;

	if (!errs)
		return;
	if (errs->n >= CONFIG_MAX_ERRORS) {
		errs->dropped++;
		return;
	}
	errs->v = x_realloc(errs->v, (errs->n + 1) * sizeof(*errs->v));
	e = &errs->v[errs->n++];
	e->file = x_strdup(file);
	e->line = line;
	e->key = x_strdup(key ? key : "");
	e->reason = x_strdup(reason);
}

void config_errors_free(struct config_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->n; i++) {
		x_free(errs->v[i].file);
		x_free(errs->v[i].key);
		x_free(errs->v[i].reason);
	}
	X_FREE(errs->v);
	errs->n = 0;
	errs->dropped = 0;
}

char *config_error_format(const struct config_error *e)
{
	if (e->line > 0)
		return x_asprintf("%s:%d: %s%s%s", e->file, e->line, e->key, *e->key ? ": " : "", e->reason);
	return x_asprintf("%s: %s%s%s", e->file, e->key, *e->key ? ": " : "", e->reason);
}

/* ---- parsing ------------------------------------------------------------ */

struct parse_ctx {
	const char *file;
	struct config *cfg;
	struct config_errors *errs;
	int nerr;
	const char *pos;        /* reader position in the text */
	int line;               /* line most recently handed to inih */
	bool line_flagged;      /* the reader already reported this line */
	int first_line[CONFIG_KEY_MAX];
};

static void ctx_error(struct parse_ctx *c, int line, const char *key, const char *reason)
{
	c->nerr++;
	add_error(c->errs, c->file, line, key, reason);
}

/* Our own syntax check per line, so every bad line is reported (inih only
 * returns the first). Mirrors inih: comments start with ; or #, sections are
 * [name], pairs need = or :. */
static const char *line_syntax(const char *l, size_t n)
{
	while (n && isspace((unsigned char)*l)) {
		l++;
		n--;
	}
	while (n && isspace((unsigned char)l[n - 1]))
		n--;
	if (!n || *l == ';' || *l == '#')
		return NULL;
	if (*l == '[')
		return memchr(l, ']', n) ? NULL : "syntax error: section header without ']'";
	if (!memchr(l, '=', n) && !memchr(l, ':', n))
		return "syntax error: expected 'key = value' or '[section]'";
	return NULL;
}

static char *reader(char *str, int num, void *stream)
{
	struct parse_ctx *c = stream;
	const char *nl;
	size_t len;

	if (!*c->pos)
		return NULL;
	nl = strchr(c->pos, '\n');
	len = nl ? (size_t)(nl - c->pos) + 1 : strlen(c->pos);
	c->line++;
	c->line_flagged = false;
	if (len + 1 > (size_t)num) {
		ctx_error(c, c->line, "", "line too long");
		c->line_flagged = true;
		c->pos += len;
		str[0] = '\n';
		str[1] = '\0';
		return str;
	}
	if (memchr(c->pos, '\0', len)) {
		ctx_error(c, c->line, "", "NUL byte in line");
		c->line_flagged = true;
	}
	{
		const char *why = line_syntax(c->pos, len);

		if (why && !c->line_flagged) {
			ctx_error(c, c->line, "", why);
			c->line_flagged = true;
		}
	}
	memcpy(str, c->pos, len);
	str[len] = '\0';
	c->pos += len;
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *c = user;
	char label[256], rb[256], why2[320];
	const char *why;
	int k;

	snprintf(label, sizeof(label), "%s%s%s", section, *section ? "." : "", name);
	if (!*section) {
		ctx_error(c, c->line, label, "key outside a [section]");
		return 1;
	}
	k = config_key_find(section, name);
	if (k < 0) {
		snprintf(rb, sizeof(rb), section_known(section) ? "unknown key" : "unknown section [%s]", section);
		ctx_error(c, c->line, label, rb);
		return 1;
	}
	if (c->first_line[k]) {
		snprintf(rb, sizeof(rb), "set twice (first on line %d)", c->first_line[k]);
		ctx_error(c, c->line, label, rb);
		return 1;
	}
	c->first_line[k] = c->line;
	why = parse_value(k, value, &c->cfg->v[k], rb, sizeof(rb));
	if (why) {
		/* Quote the bad value unless it is a secret. */
		if (!(keys[k].flags & CONFIG_SENSITIVE) && strlen(value) < 64 && why != rb)
			snprintf(why2, sizeof(why2), "\"%s\": %s", value, why);
		else
			snprintf(why2, sizeof(why2), "%s", why);
		ctx_error(c, c->line, label, why2);
		return 1;
	}
	c->cfg->v[k].line = c->line;
	return 1;
}

/* Rules between keys, checked once the whole file is in. */
static void validate_whole(struct parse_ctx *c)
{
	struct config *cfg = c->cfg;
	bool id = *cfg->v[CONFIG_AWS_ACCESS_KEY_ID].str;
	bool secret = *cfg->v[CONFIG_AWS_SECRET_ACCESS_KEY].str;

	if (id != secret) {
		enum config_key set = id ? CONFIG_AWS_ACCESS_KEY_ID : CONFIG_AWS_SECRET_ACCESS_KEY;
		enum config_key missing = id ? CONFIG_AWS_SECRET_ACCESS_KEY : CONFIG_AWS_ACCESS_KEY_ID;
		char rb[128];

		snprintf(rb, sizeof(rb), "set without %s", config_key_label(missing));
		ctx_error(c, cfg->v[set].line, config_key_label(set), rb);
	}
	if (cfg->v[CONFIG_RECONCILE_RESYNC_JITTER].num > cfg->v[CONFIG_RECONCILE_RESYNC_INTERVAL].num)
		ctx_error(c, cfg->v[CONFIG_RECONCILE_RESYNC_JITTER].line,
			  config_key_label(CONFIG_RECONCILE_RESYNC_JITTER),
			  "larger than reconcile.resync_interval");
}

int config_parse(const char *file, const char *text, struct config **ret_cfg,
		 struct config_errors *errs)
{
	struct parse_ctx c = { .file = file, .errs = errs, .pos = text };
	int r;

	/* Values are taken literally: a ';' may be part of a password, and a
	 * continuation line would hide a duplicate key. */
	ini_allow_multiline = false;
	ini_allow_inline_comments = false;
	/* Lines up to a full value plus its key (inih's default is 200). */
	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_max_line = CONFIG_MAX_VALUE + 512;
	ini_initial_alloc = CONFIG_MAX_VALUE + 512;
	c.cfg = config_defaults();
	x_free(c.cfg->file);
	c.cfg->file = x_strdup(file);
	r = ini_parse_stream(reader, &c, handler, &c);
	if (r < 0) {
		ctx_error(&c, 0, "", r == -2 ? "out of memory" : "cannot read");
	} else if (r > 0 && c.nerr == 0) {
		/* inih saw a problem our line check did not. */
		ctx_error(&c, r, "", "syntax error");
	}
	validate_whole(&c);
	if (c.nerr) {
		config_free(c.cfg);
		return S3G_ECONFIG;
	}
	*ret_cfg = c.cfg;
	return 0;
}

int config_load(const char *path, struct config **ret_cfg, struct config_errors *errs)
{
	char *text = NULL;
	size_t len = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		add_error(errs, path, 0, "", strerror(-r));
		return S3G_ECONFIG;
	}
	text = x_malloc(CONFIG_MAX_FILE + 1);
	for (;;) {
		ssize_t n = read(fd, text + len, CONFIG_MAX_FILE + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			add_error(errs, path, 0, "", strerror(-r));
			r = S3G_ECONFIG;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_MAX_FILE) {
			add_error(errs, path, 0, "", "file larger than 1 MiB");
			r = S3G_ECONFIG;
			goto out;
		}
	}
	text[len] = '\0';
	if (strlen(text) != len) {
		add_error(errs, path, 0, "", "file contains NUL bytes");
		r = S3G_ECONFIG;
		goto out;
	}
	r = config_parse(path, text, ret_cfg, errs);
out:
	close(fd);
	x_free(text);
	return r;
}

/* ---- reads -------------------------------------------------------------- */

const char *config_str(const struct config *cfg, enum config_key k)
{
	return cfg->v[k].str;
}

long long config_int(const struct config *cfg, enum config_key k)
{
	return cfg->v[k].num;
}

bool config_bool(const struct config *cfg, enum config_key k)
{
	return cfg->v[k].num != 0;
}

int config_line(const struct config *cfg, enum config_key k)
{
	return cfg->v[k].line;
}

const char *config_file(const struct config *cfg)
{
	return cfg->file;
}

const char *config_display(const struct config *cfg, enum config_key k)
{
	if ((keys[k].flags & CONFIG_SENSITIVE) && *cfg->v[k].str)
		return "<redacted>";
	return cfg->v[k].str;
}

bool config_equal(const struct config *a, const struct config *b, enum config_key k)
{
	switch (keys[k].type) {
	case CONFIG_INT:
	case CONFIG_BOOL:
	case CONFIG_DURATION:
	case CONFIG_ENUM:
	case CONFIG_TIME:
		return a->v[k].num == b->v[k].num;
	default:
		return strcmp(a->v[k].str, b->v[k].str) == 0;
	}
}

static void push(char ***v, size_t *n, const char *s)
{
	*v = x_realloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = x_strdup(s);
}

size_t config_secrets(const struct config *cfg, char ***ret_v)
{
	char **v = NULL;
	size_t n = 0;

	for (int k = 0; k < CONFIG_KEY_MAX; k++) {
		const char *s = cfg->v[k].str;

		if (!*s)
			continue;
		if (keys[k].flags & CONFIG_SENSITIVE)
			push(&v, &n, s);
		if (keys[k].type == CONFIG_CONNINFO) {
			PQconninfoOption *o = PQconninfoParse(s, NULL);

			for (PQconninfoOption *p = o; p && p->keyword; p++)
				if (strcmp(p->keyword, "password") == 0 && p->val && *p->val)
					push(&v, &n, p->val);
			PQconninfoFree(o);
		}
	}
	if (n)
		*ret_v = v;
	return n;
}

void config_secrets_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x_free(v[i]);
	x_free(v);
}

void config_carry_restart_only(struct config *fresh, const struct config *old,
			       config_change_cb cb, void *ud)
{
	for (int k = 0; k < CONFIG_KEY_MAX; k++) {
		bool applied = keys[k].flags & CONFIG_RELOAD;

		if (config_equal(fresh, old, k))
			continue;
		if (!applied) {
			x_free(fresh->v[k].str);
			fresh->v[k].str = x_strdup(old->v[k].str);
			fresh->v[k].num = old->v[k].num;
		}
		if (cb)
			cb(ud, k, applied);
	}
}
