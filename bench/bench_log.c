/* bench_log — CPU per log line of daemon/log.c, the line a reconcile writes
 * for every grant it creates or deletes ("grant created" with its eight
 * fields, two registered secrets to scrub).
 *
 * Usage: bench_log [N=200000] [stderr|journal]
 *   stderr   logfmt to fd 2 (redirect it: a file, or /dev/null for the
 *            formatting and the write(2) alone)
 *   journal  the journald path up to sd_journal_sendv, whose place takes a
 *            sender that drops the entry (the fields are built, not sent)
 * Prints one line: lines, CPU us per line (CLOCK_PROCESS_CPUTIME_ID).
 *
 * Measured (2-core VM, -O2; this program built against daemon/log.c before
 * and after the change to formatting without printf per field, a cached
 * second and one buffer per journal entry; three rounds interleaved):
 * stderr to /dev/null 1.94-2.06 -> 0.89-0.91 us, to a file 2.84-3.08 ->
 * 1.70-1.75 us, journal fields 1.82-2.06 -> 0.75-0.77 us per line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "daemon/log.h"

static int drop(const struct iovec *iov, int n)
{
	(void)iov;
	return n;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	const char *secrets[] = { "SuperSecretPassword1", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
	struct timespec a, b;

	if (n <= 0 || (argc > 2 && strcmp(argv[2], "stderr") != 0 && strcmp(argv[2], "journal") != 0)) {
		fprintf(stdout, "usage: bench_log [N] [stderr|journal]\n");
		return 2;
	}
	log_init("bench_log");
	log_set_level(LOG_LEVEL_INFO);
	log_set_secrets(secrets, 2);
	if (argc > 2 && strcmp(argv[2], "journal") == 0) {
		log_set_sink(LOG_SINK_JOURNAL);
		log_set_journal_sender(drop);
	} else {
		log_set_sink(LOG_SINK_STDERR);
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	for (long i = 0; i < n; i++) {
		char rid[24];

		snprintf(rid, sizeof(rid), "%08lX", i);
		log_info("7b3b1c9e5f0a4d8e9a52d3c1e0f4a620",
			 LOG_FIELDS({ "integration", "1" }, { "grant_id", "0a1b2c3d-4e5f-6789-abcd-ef0123456789" },
				    { "grantee_type", "IAM" }, { "grantee", "arn:aws:iam::111122223333:user/u123" },
				    { "permission", "READ" }, { "scope", "s3://bucket-u/p12/*" },
				    { "reason", "subscription" }, { "request_id", rid }),
			 "grant %s", "created");
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	fprintf(stdout, "{\"lines\": %ld, \"sink\": \"%s\", \"cpu_us_per_line\": %.2f}\n", n,
		log_get_sink() == LOG_SINK_JOURNAL ? "journal" : "stderr",
		((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / (double)n);
	return 0;
}
