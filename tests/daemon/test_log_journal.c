/* daemon/log: the journal sink (pluggable sender) and the logfmt sink.
 * journald is not running here, so the sender is captured: the fields of
 * the config dump, reload and database log lines must carry no secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/xalloc.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/log.h"

#define PW "Journal-Pw-9931"
#define SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYJOURNALKEY"

static char captured[64 * 1024];
static size_t ncaptured;
static int entries;

static int capture(const struct iovec *iov, int n)
{
	entries++;
	for (int i = 0; i < n; i++) {
		size_t l = iov[i].iov_len;

		if (ncaptured + l + 2 < sizeof(captured)) {
			memcpy(captured + ncaptured, iov[i].iov_base, l);
			ncaptured += l;
			captured[ncaptured++] = '\n';
			captured[ncaptured] = '\0';
		}
	}
	captured[ncaptured++] = '\x1e';  /* entry separator */
	captured[ncaptured] = '\0';
	return 0;
}

static void reset(void)
{
	ncaptured = 0;
	captured[0] = '\0';
	entries = 0;
}

static struct config *secret_config(void)
{
	struct config_errors errs = {0};
	struct config *cfg = NULL;

	assert_int_equal(config_parse("j.conf",
				      "[database]\nconninfo = host=/tmp user=u password=" PW " dbname=d\n"
				      "[daemon]\nlog_level = debug\n"
				      "[aws]\naccess_key_id = AKIDJOURNAL\nsecret_access_key = " SK "\n",
				      &cfg, &errs), 0);
	return cfg;
}

static int setup(void **state)
{
	log_init("s3grantd-test");
	log_set_journal_sender(capture);
	log_set_sink(LOG_SINK_JOURNAL);
	log_set_level(LOG_LEVEL_DEBUG);
	reset();
	return 0;
}

static int teardown(void **state)
{
	log_set_secrets(NULL, 0);
	log_set_sink(LOG_SINK_STDERR);
	return 0;
}

static void test_journal_fields(void **state)
{
	log_notice(LOG_MID_READY, LOG_FIELDS({ "grant_id", "g-1" }, { "aws.request-id", "r1" }),
		   "ready %d", 42);
	assert_int_equal(entries, 1);
	assert_non_null(strstr(captured, "PRIORITY=5\n"));
	assert_non_null(strstr(captured, "MESSAGE=ready 42\n"));
	assert_non_null(strstr(captured, "MESSAGE_ID=" LOG_MID_READY "\n"));
	assert_non_null(strstr(captured, "SYSLOG_IDENTIFIER=s3grantd-test\n"));
	assert_non_null(strstr(captured, "GRANT_ID=g-1\n"));
	assert_non_null(strstr(captured, "AWS_REQUEST_ID=r1\n"));

	/* The level is tested before anything is formatted or sent. */
	reset();
	log_set_level(LOG_LEVEL_INFO);
	log_debug(NULL, LOG_NO_FIELDS, "hidden");
	assert_int_equal(entries, 0);
}

static void test_no_secrets_in_journal(void **state)
{
	struct config *cfg = secret_config();
	char *ci = NULL;

	reload_register_secrets(cfg, NULL);
	/* The config dump, reload and database lines the daemon sends. */
	reload_log_config(cfg, LOG_MID_CONFIG, "configuration loaded");
	daemon_log_db_connected("host=/tmp port=5432 dbname=d user=u", cfg);
	daemon_log_db_lost("connection refused", true, 1, 250, cfg);
	daemon_log_db_lost("connection refused", false, 2, 500, cfg);
	/* A careless caller logging the raw values is scrubbed too. */
	ci = x_asprintf("conninfo was %s", config_str(cfg, CONFIG_DB_CONNINFO));
	log_warning(NULL, LOG_FIELDS({ "secret", config_str(cfg, CONFIG_AWS_SECRET_ACCESS_KEY) }), "%s", ci);
	assert_int_equal(entries, 5);
	assert_non_null(strstr(captured, "DATABASE_CONNINFO=<redacted>\n"));
	assert_non_null(strstr(captured, "AWS_SECRET_ACCESS_KEY=<redacted>\n"));
	assert_non_null(strstr(captured, "AWS_ACCESS_KEY_ID=AKIDJOURNAL\n"));
	assert_non_null(strstr(captured, "password=<redacted>"));
	assert_non_null(strstr(captured, "MESSAGE_ID=" LOG_MID_DB_LOST));
	assert_null(strstr(captured, PW));
	assert_null(strstr(captured, SK));
	x_free(ci);
	config_free(cfg);
}

static void test_logfmt_quoting_and_secrets(void **state)
{
	struct config *cfg = secret_config();
	char path[] = "/tmp/s3g-logfmt-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	char out[8192];
	ssize_t n;

	assert_true(fd >= 0);
	reload_register_secrets(cfg, NULL);
	log_set_sink(LOG_SINK_STDERR);
	dup2(fd, STDERR_FILENO);
	log_info(NULL, LOG_FIELDS({ "plain", "abc" }, { "spaced", "a b" }, { "quote", "say \"hi\"\n" },
				  { "empty", "" }, { "pw", PW }),
		 "hello %s", "world");
	reload_log_config(cfg, LOG_MID_CONFIG, "configuration loaded");
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, out, sizeof(out) - 1, 0);
	assert_true(n > 0);
	out[n] = '\0';
	close(fd);
	unlink(path);
	assert_non_null(strstr(out, " level=info msg=\"hello world\" plain=abc spaced=\"a b\" "
				    "quote=\"say \\\"hi\\\"\\n\" empty=\"\" pw=<redacted>\n"));
	assert_true(strncmp(out, "ts=", 3) == 0);
	assert_non_null(strstr(out, "database.conninfo=<redacted>"));
	assert_null(strstr(out, PW));
	assert_null(strstr(out, SK));
	config_free(cfg);
}

static void test_sink_selection(void **state)
{
	struct stat st;
	char env[64];
	char path[] = "/tmp/s3g-jstream-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);

	/* stderr is a file: JOURNAL_STREAM naming its dev:ino selects the journal. */
	assert_true(fd >= 0);
	dup2(fd, STDERR_FILENO);
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_init("s3grantd-test");
	assert_int_equal(log_get_sink(), LOG_SINK_JOURNAL);
	/* A stale JOURNAL_STREAM (stderr redirected elsewhere) does not. */
	setenv("JOURNAL_STREAM", "1:2", 1);
	log_init("s3grantd-test");
	assert_int_equal(log_get_sink(), LOG_SINK_STDERR);
	unsetenv("JOURNAL_STREAM");
	log_init("s3grantd-test");
	assert_int_equal(log_get_sink(), LOG_SINK_STDERR);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	unlink(path);
	log_set_journal_sender(capture);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_journal_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_secrets_in_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logfmt_quoting_and_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_selection, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
