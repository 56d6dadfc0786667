/* bench_sigv4: SigV4 signatures per second on one core.
 *
 * The request is a realistic S3 Control CreateAccessGrant (the golden
 * example: POST with a ~500-byte XML body, host, x-amz-account-id,
 * Content-MD5, session token, x-amz-content-sha256 of the body). Cases:
 *   cached    — signing key cached (the daemon's steady state)
 *   +md5      — as cached, plus computing Content-MD5 of the body per request
 *   uncached  — the signing key derived on every call (4 extra HMACs)
 * Usage: bench_sigv4 [seconds per case, default 1] [case name]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sigv4.h"

static const char body[] =
	"<CreateAccessGrantRequest xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\">"
	"<AccessGrantsLocationId>default</AccessGrantsLocationId><AccessGrantsLocationConfiguration>"
	"<S3SubPrefix>amzn-s3-demo-bucket/team-a/*</S3SubPrefix></AccessGrantsLocationConfiguration>"
	"<Grantee><GranteeType>IAM</GranteeType><GranteeIdentifier>arn:aws:iam::111122223333:role/"
	"data-consumer</GranteeIdentifier></Grantee><Permission>READWRITE</Permission><Tags><Tag>"
	"<Key>owner</Key><Value>daemon</Value></Tag></Tags></CreateAccessGrantRequest>";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum bcase {
	CASE_CACHED,
	CASE_MD5,
	CASE_UNCACHED,
	CASE_MAX_
};

static const char *const case_names[CASE_MAX_] = {"cached", "cached+md5", "uncached"};

static double run(struct sigv4_signer *s, enum bcase k, double seconds, const char **ret_sig)
{
	static struct sigv4_signed sig;
	const struct sigv4_config cfg = {"us-east-1", "s3", SIGV4_FLAGS_S3};
	const struct aws_creds creds = {.access_key_id = "AKIDEXAMPLE",
					.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
					.session_token = "EXAMPLESESSIONTOKEN+/=="};
	char md5[SIGV4_CHECKSUM_SIZE] = "gncdsvw/YT6BMubWL2s0xw==";
	struct sigv4_header h[3] = {
		{"Host", "111122223333.s3-control.us-east-1.amazonaws.com"},
		{"x-amz-account-id", "111122223333"},
		{"Content-MD5", md5},
	};
	const struct sigv4_request req = {"POST", "/v20180820/accessgrantsinstance/grant", NULL, h, 3,
					  body, sizeof(body) - 1, NULL};
	const time_t t0 = 1440938160;  /* 2015-08-30T12:36:00Z */
	unsigned long n = 0;
	double start, el;

	sigv4_signer_set_cache(s, k != CASE_UNCACHED);
	start = now_s();
	do {
		for (int i = 0; i < 1000; i++, n++) {
			if (k == CASE_MD5 && sigv4_checksum_header(SIGV4_CHECKSUM_MD5, body, sizeof(body) - 1, md5,
								   &h[2]) < 0)
				abort();
			/* a new X-Amz-Date every call, same day: the key stays cached */
			if (sigv4_sign(s, &cfg, &creds, &req, t0 + (time_t)(n % 3600), &sig, NULL, NULL) < 0)
				abort();
		}
		el = now_s() - start;
	} while (el < seconds);
	*ret_sig = sig.signature;
	return (double)n / el;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0;
	struct sigv4_signer *s;
	const char *sig;

	if (seconds <= 0)
		seconds = 1.0;
	if (sigv4_signer_new(&s) < 0) {
		fprintf(stderr, "bench_sigv4: signer unavailable\n");
		return 1;
	}
	(void)run(s, CASE_CACHED, 0.2, &sig);    /* warm up */
	for (int k = 0; k < CASE_MAX_; k++) {
		double rate;

		if (argc > 2 && strcmp(argv[2], case_names[k]) != 0)
			continue;
		rate = run(s, (enum bcase)k, seconds, &sig);
		printf("sigv4 %-11s %10.0f signatures/s  %6.2f us/signature  (last %.8s...)\n", case_names[k],
		       rate, 1e6 / rate, sig);
	}
	sigv4_signer_free(s);
	return 0;
}
