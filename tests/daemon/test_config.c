/* daemon/config: the key table, parsers, errors, reload carry-over, redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/xalloc.h"
#include "daemon/config.h"

static struct config *parse_ok(const char *text)
{
	struct config_errors errs = {0};
	struct config *cfg = NULL;
	int r = config_parse("t.conf", text, &cfg, &errs);

	for (size_t i = 0; i < errs.n; i++) {
		char *l = config_error_format(&errs.v[i]);

		print_error("unexpected: %s\n", l);
		x_free(l);
	}
	assert_int_equal(r, 0);
	assert_int_equal(errs.n, 0);
	config_errors_free(&errs);
	return cfg;
}

/* Parse text expected to fail; returns all errors joined by '\n'. */
static char *parse_bad(const char *text, size_t *ret_n)
{
	struct config_errors errs = {0};
	struct config *cfg = NULL;
	char *all = x_strdup("");
	int r = config_parse("t.conf", text, &cfg, &errs);

	assert_int_equal(r, S3G_ECONFIG);
	assert_null(cfg);
	for (size_t i = 0; i < errs.n; i++) {
		char *l = config_error_format(&errs.v[i]);
		char *n = x_asprintf("%s%s\n", all, l);

		x_free(l);
		x_free(all);
		all = n;
	}
	*ret_n = errs.n;
	config_errors_free(&errs);
	return all;
}

static void test_defaults(void **state)
{
	struct config *cfg = config_defaults();

	/* Every default parses (config_defaults aborts otherwise) and sits in bounds. */
	for (int k = 0; k < CONFIG_KEY_MAX; k++) {
		const struct config_key_info *ki = config_key_info(k);

		assert_non_null(ki->section);
		assert_non_null(ki->name);
		assert_non_null(ki->help);
		assert_int_equal(config_key_find(ki->section, ki->name), k);
		if ((ki->type == CONFIG_INT || ki->type == CONFIG_DURATION) && (ki->min || ki->max)) {
			assert_true(config_int(cfg, k) >= ki->min);
			assert_true(config_int(cfg, k) <= ki->max);
		}
		assert_int_equal(config_line(cfg, k), 0);
	}
	assert_string_equal(config_str(cfg, CONFIG_DB_CONNINFO), "");
	assert_int_equal(config_int(cfg, CONFIG_DB_CONNECT_TIMEOUT), 10000);
	assert_int_equal(config_int(cfg, CONFIG_DAEMON_SHUTDOWN_TIMEOUT), 30000);
	assert_string_equal(config_str(cfg, CONFIG_DAEMON_LOG_LEVEL), "info");
	assert_int_equal(config_int(cfg, CONFIG_EXPORT_TIME_OF_DAY), 3 * 60);
	assert_int_equal(config_int(cfg, CONFIG_RECONCILE_RESYNC_INTERVAL), 6 * CONFIG_MS_H);
	assert_int_equal(config_key_find("database", "nope"), -1);
	assert_string_equal(config_key_label(CONFIG_AWS_MAX_IN_FLIGHT), "aws.max_in_flight");
	config_free(cfg);
	config_free(NULL);
}

static void test_durations(void **state)
{
	static const struct { const char *s; long long ms; } ok[] = {
		{ "30s", 30000 }, { "5m", 300000 }, { "1h", 3600000 }, { "250ms", 250 },
		{ "2d", 2 * 86400000LL }, { "1h30m", 5400000 }, { "0", 0 }, { "45", 45000 },
		{ "1m30s", 90000 },
	};
	static const char *const bad[] = { "", "s", "5 m", "-5s", "5x", "1.5s", "5mss", "m5", "30S" };
	long long ms;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(config_parse_duration(ok[i].s, &ms), 0);
		assert_int_equal(ms, ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 42;
		assert_int_not_equal(config_parse_duration(bad[i], &ms), 0);
		assert_int_equal(ms, 42);  /* untouched on error */
	}
	assert_int_not_equal(config_parse_duration("99999999999999999999s", &ms), 0);
}

static void test_types(void **state)
{
	struct config *cfg = parse_ok(
		"# comment\n"
		"; comment\n"
		"[database]\n"
		"conninfo = host=/tmp dbname=x\n"
		"connect_timeout = 5s\n"
		"[daemon]\n"
		"log_level = debug\n"
		"shutdown_timeout = 0\n"
		"[aws]\n"
		"max_in_flight = 1024\n"
		"endpoint_url = http://127.0.0.1:5000\n"
		"ca_file = /etc/ssl/ca.pem\n"
		"[export]\n"
		"time_of_day = 23:59\n"
		"timezone = UTC\n");
	bool b;

	assert_string_equal(config_str(cfg, CONFIG_DB_CONNINFO), "host=/tmp dbname=x");
	assert_int_equal(config_line(cfg, CONFIG_DB_CONNINFO), 4);
	assert_int_equal(config_int(cfg, CONFIG_DB_CONNECT_TIMEOUT), 5000);
	assert_int_equal(config_int(cfg, CONFIG_DAEMON_LOG_LEVEL), 0);  /* index of debug */
	assert_int_equal(config_int(cfg, CONFIG_DAEMON_SHUTDOWN_TIMEOUT), 0);
	assert_int_equal(config_int(cfg, CONFIG_AWS_MAX_IN_FLIGHT), 1024);
	assert_int_equal(config_int(cfg, CONFIG_EXPORT_TIME_OF_DAY), 23 * 60 + 59);
	assert_string_equal(config_file(cfg), "t.conf");
	config_free(cfg);

	assert_int_equal(config_parse_bool("Yes", &b), 0);
	assert_true(b);
	assert_int_equal(config_parse_bool("off", &b), 0);
	assert_false(b);
	assert_int_not_equal(config_parse_bool("maybe", &b), 0);
}

static void test_errors_all_reported(void **state)
{
	size_t n;
	char *all = parse_bad(
		"[database]\n"                          /* 1 */
		"connect_timeout = soon\n"              /* 2 bad value */
		"[daemon]\n"                            /* 3 */
		"colour = blue\n"                       /* 4 unknown key */
		"log_level = loud\n"                    /* 5 bad enum */
		"[aws]\n"                               /* 6 */
		"max_in_flight = 5000\n"                /* 7 out of range */
		"max_in_flight = 5\n"                   /* 8 set twice */
		"region\n"                              /* 9 syntax */
		"[bogus]\n"                             /* 10 */
		"x = 1\n"                               /* 11 unknown section */
		"[export]\n"                            /* 12 */
		"time_of_day = 3am\n"                   /* 13 */
		"[aws]\n"                               /* 14 */
		"endpoint_url = ftp://x\n"              /* 15 */
		"ca_file = relative/ca.pem\n",          /* 16 */
		&n);

	assert_int_equal(n, 10);
	assert_non_null(strstr(all, "t.conf:2: database.connect_timeout: \"soon\": not a duration"));
	assert_non_null(strstr(all, "t.conf:4: daemon.colour: unknown key"));
	assert_non_null(strstr(all, "t.conf:5: daemon.log_level: \"loud\" is not one of"));
	assert_non_null(strstr(all, "t.conf:7: aws.max_in_flight: 5000 out of range [1, 1024]"));
	assert_non_null(strstr(all, "t.conf:8: aws.max_in_flight: set twice (first on line 7)"));
	assert_non_null(strstr(all, "t.conf:9: syntax error"));
	assert_non_null(strstr(all, "t.conf:11: bogus.x: unknown section [bogus]"));
	assert_non_null(strstr(all, "t.conf:13: export.time_of_day:"));
	assert_non_null(strstr(all, "t.conf:15: aws.endpoint_url:"));
	assert_non_null(strstr(all, "t.conf:16: aws.ca_file:"));
	x_free(all);

	all = parse_bad("[daemon]\nshutdown_timeout = 11m\n", &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr(all, "t.conf:2: daemon.shutdown_timeout: 11m out of range [0s, 10m]"));
	x_free(all);

	all = parse_bad("log_level = info\n", &n);
	assert_non_null(strstr(all, "key outside a [section]"));
	x_free(all);

	/* Cross-key rules. */
	all = parse_bad("[reconcile]\nresync_interval = 5m\nresync_jitter = 10m\n", &n);
	assert_non_null(strstr(all, "t.conf:3: reconcile.resync_jitter: larger than"));
	x_free(all);
}

static void test_sensitive(void **state)
{
	size_t n;
	char **sec = NULL;
	char *all;
	struct config *cfg = parse_ok(
		"[database]\n"
		"conninfo = host=/tmp user=u password=Pa55-w0rd;x dbname=d\n"
		"[aws]\n"
		"access_key_id = AKIDEXAMPLE\n"
		"secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n");

	assert_string_equal(config_display(cfg, CONFIG_DB_CONNINFO), "<redacted>");
	assert_string_equal(config_display(cfg, CONFIG_AWS_SECRET_ACCESS_KEY), "<redacted>");
	assert_string_equal(config_display(cfg, CONFIG_AWS_ACCESS_KEY_ID), "AKIDEXAMPLE");
	assert_true(config_key_info(CONFIG_DB_CONNINFO)->flags & CONFIG_SENSITIVE);
	n = config_secrets(cfg, &sec);
	assert_int_equal(n, 3);
	assert_string_equal(sec[0], "host=/tmp user=u password=Pa55-w0rd;x dbname=d");
	assert_string_equal(sec[1], "Pa55-w0rd;x");
	assert_string_equal(sec[2], "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
	config_secrets_free(sec, n);
	config_free(cfg);

	/* URI form: the password is found too. */
	cfg = parse_ok("[database]\nconninfo = postgresql://u:S3cr3tPw@localhost/db\n");
	sec = NULL;
	n = config_secrets(cfg, &sec);
	assert_int_equal(n, 2);
	assert_string_equal(sec[1], "S3cr3tPw");
	config_secrets_free(sec, n);
	config_free(cfg);

	/* A bad sensitive value is reported without echoing it. */
	all = parse_bad("[database]\nconninfo = host=x password=TopSecret99 'unterminated\n", &n);
	assert_int_equal(n, 1);
	assert_null(strstr(all, "TopSecret99"));
	assert_non_null(strstr(all, "t.conf:2: database.conninfo:"));
	x_free(all);

	/* Defaults hold no secrets. */
	cfg = config_defaults();
	assert_int_equal(config_secrets(cfg, &sec), 0);
	assert_string_equal(config_display(cfg, CONFIG_DB_CONNINFO), "");
	config_free(cfg);
}

struct changes {
	int n;
	enum config_key k[8];
	bool applied[8];
};

static void on_change(void *ud, enum config_key k, bool applied)
{
	struct changes *c = ud;

	c->k[c->n] = k;
	c->applied[c->n++] = applied;
}

static void test_reload_carry(void **state)
{
	struct config *old = parse_ok("[database]\nconninfo = dbname=a\n[daemon]\nlog_level = info\n");
	struct config *fresh = parse_ok("[database]\nconninfo = dbname=b\n[daemon]\nlog_level = debug\n"
					"shutdown_timeout = 30000ms\n");
	struct changes c = {0};

	config_carry_restart_only(fresh, old, on_change, &c);
	assert_int_equal(c.n, 2);  /* 30000ms == default 30s: no change */
	assert_int_equal(c.k[0], CONFIG_DB_CONNINFO);
	assert_false(c.applied[0]);
	assert_int_equal(c.k[1], CONFIG_DAEMON_LOG_LEVEL);
	assert_true(c.applied[1]);
	assert_string_equal(config_str(fresh, CONFIG_DB_CONNINFO), "dbname=a");  /* kept */
	assert_string_equal(config_str(fresh, CONFIG_DAEMON_LOG_LEVEL), "debug"); /* applied */
	config_free(old);
	config_free(fresh);
}

static void test_limits(void **state)
{
	size_t n;
	char *text = x_malloc(CONFIG_MAX_VALUE + 64);
	char *all;

	strcpy(text, "[aws]\nregion = ");
	memset(text + strlen(text), 'a', CONFIG_MAX_VALUE + 10);
	text[15 + CONFIG_MAX_VALUE + 10] = '\0';
	all = parse_bad(text, &n);
	assert_int_equal(n, 1);
	assert_non_null(strstr(all, "t.conf:2:"));
	x_free(all);
	x_free(text);

	/* The error list is bounded. */
	{
		struct config_errors errs = {0};
		struct config *cfg = NULL;
		char *many = x_strdup("[daemon]\n");

		for (int i = 0; i < CONFIG_MAX_ERRORS + 20; i++) {
			char *m = x_asprintf("%sk%d = 1\n", many, i);

			x_free(many);
			many = m;
		}
		assert_int_equal(config_parse("t.conf", many, &cfg, &errs), S3G_ECONFIG);
		assert_int_equal(errs.n, CONFIG_MAX_ERRORS);
		assert_int_equal(errs.dropped, 20);
		config_errors_free(&errs);
		x_free(many);
	}
}

static void test_load_file(void **state)
{
	struct config_errors errs = {0};
	struct config *cfg = NULL;
	const char *src = getenv("S3G_SOURCE_DIR");
	char *path;

	assert_int_equal(config_load("/nonexistent/s3grantd.conf", &cfg, &errs), S3G_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.v[0].line, 0);
	config_errors_free(&errs);
	if (!src)
		return;
	/* The shipped file parses and spells out every key at its default. */
	path = x_asprintf("%s/etc/s3grantd.conf", src);
	assert_int_equal(config_load(path, &cfg, &errs), 0);
	{
		struct config *def = config_defaults();

		for (int k = 0; k < CONFIG_KEY_MAX; k++) {
			assert_true(config_equal(cfg, def, k));
			assert_int_not_equal(config_line(cfg, k), 0);
		}
		config_free(def);
	}
	config_free(cfg);
	x_free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_errors_all_reported),
		cmocka_unit_test(test_sensitive),
		cmocka_unit_test(test_reload_carry),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_load_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
