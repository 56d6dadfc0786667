/* s3grantd — entry point: command line, then the daemon (daemon/daemon.c).
 *
 * Foreground only: systemd (Type=notify) or a terminal supervises it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "core/xalloc.h"
#include "daemon/daemon.h"
#include "version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: s3grantd [--config FILE] [--check-config] [--dump-config]\n"
		"       s3grantd --version | --help\n"
		"\n"
		"Keeps Amazon S3 Access Grants equal to the entitlements in PostgreSQL.\n"
		"Runs in the foreground (systemd Type=notify); SIGHUP reloads the\n"
		"configuration, SIGTERM/SIGINT drain and stop.\n"
		"\n"
		"  -c, --config FILE   configuration file (default %s)\n"
		"  -t, --check-config  validate the file, print every error as\n"
		"                      file:line: key: reason, exit non-zero on any\n"
		"  -d, --dump-config   print the effective configuration (secrets redacted)\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this text\n",
		CONFIG_DEFAULT_PATH);
}

static int load_or_report(const char *path, struct config **ret_cfg)
{
	struct config_errors errs = {0};
	int r = config_load(path, ret_cfg, &errs);

	for (size_t i = 0; i < errs.n; i++) {
		char *line = config_error_format(&errs.v[i]);

		fprintf(stderr, "%s\n", line);
		x_free(line);
	}
	if (errs.dropped)
		fprintf(stderr, "%s: %zu more errors not shown\n", path, errs.dropped);
	config_errors_free(&errs);
	return r;
}

static void dump(const struct config *cfg)
{
	const char *section = "";

	for (int k = 0; k < CONFIG_KEY_MAX; k++) {
		const struct config_key_info *ki = config_key_info(k);

		if (strcmp(section, ki->section) != 0) {
			printf("%s[%s]\n", *section ? "\n" : "", ki->section);
			section = ki->section;
		}
		printf("%s = %s\n", ki->name, config_display(cfg, k));
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "dump-config", no_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CONFIG_DEFAULT_PATH;
	struct config *cfg = NULL;
	bool check = false, dump_cfg = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:tdVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'd':
			dump_cfg = true;
			break;
		case 'V':
			printf("s3grantd %s\n", S3G_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* `s3grantd --check-config FILE` (like nginx -t -c FILE) is accepted too. */
	if (optind < argc && (check || dump_cfg) && optind + 1 == argc)
		path = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "s3grantd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (check || dump_cfg) {
		r = load_or_report(path, &cfg);
		if (r < 0)
			return 1;
		if (dump_cfg)
			dump(cfg);
		else
			printf("%s: configuration ok\n", path);
		config_free(cfg);
		return 0;
	}
	return daemon_main(path);
}
