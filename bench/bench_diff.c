/* bench_diff: desired set + diff + plan for 100,000 grants; time and bytes per grant.
 *
 * 1,000 users (70 % unset principal, 20 % IAM roles, 10 % Identity Center) ×
 * 100 data sources under the default location = 100,000 subscriptions. The
 * actual side is the same 100,000 grants with AWS identities (id, ARN,
 * GrantScope) and 1 % drift: 500 missing, 500 with the other permission
 * (make-before-break), 500 hand-made extras, 100 in another location.
 * Usage: bench_diff [grants-per-user-multiplier=1] [rounds=5]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/desired.h"
#include "core/diff.h"
#include "core/plan.h"
#include "core/quota.h"
#include "core/xalloc.h"

#define NUSERS 1000
#define NDS 100

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long status_kb(const char *key)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	static struct desired_user users[NUSERS];
	static struct desired_data_source ds[NDS];
	static char names[NUSERS][32], principals[NUSERS][96], prefixes[NDS][64];
	struct desired_subscription *subs = x_malloc(NUSERS * NDS * sizeof(*subs));
	const struct desired_integration integ = {1, "111122223333", "us-east-1", "s3://", NULL};
	size_t nsubs = 0, nactual = 0;
	struct grant *actual;
	struct intern in;
	struct desired_set set;
	struct diff d;
	struct plan p;
	const char *why;
	double t_des = 1e18, t_diff = 1e18, t_plan = 1e18;
	long rss0 = status_kb("VmRSS:");
	size_t actual_bytes;

	for (int u = 0; u < NUSERS; u++) {
		snprintf(names[u], sizeof(names[u]), "user%04d", u);
		users[u].id = u + 1;
		users[u].name = names[u];
		if (u % 10 < 7) {
			users[u].principal = NULL;
		} else if (u % 10 < 9) {
			snprintf(principals[u], sizeof(principals[u]), "arn:aws:iam::111122223333:role/team/analyst-%04d", u);
			users[u].principal = principals[u];
		} else {
			snprintf(principals[u], sizeof(principals[u]), "a1b2c3d4-5678-90ab-cdef-%012d", u);
			users[u].principal = principals[u];
		}
	}
	for (int k = 0; k < NDS; k++) {
		snprintf(prefixes[k], sizeof(prefixes[k]), "research-data-%02d/projects/dataset-%03d", k % 10, k);
		ds[k].id = 1000 + k;
		ds[k].prefix = prefixes[k];
	}
	for (int u = 0; u < NUSERS; u++)
		for (int k = 0; k < NDS; k++) {
			subs[nsubs].id = (int64_t)nsubs + 1;
			subs[nsubs].user_id = u + 1;
			subs[nsubs].data_source_id = 1000 + k;
			subs[nsubs].access = (u + k) % 3 ? "read" : "write";
			nsubs++;
		}

	intern_init(&in);
	if (desired_build(&in, &integ, ds, NDS, users, NUSERS, subs, nsubs, &set, &why) < 0) {
		fprintf(stderr, "desired_build: %s\n", why);
		return 1;
	}
	/* the actual side, as a listing would give it */
	actual = x_malloc((set.n + 1000) * sizeof(*actual));
	for (size_t i = 0; i < set.n; i++) {
		const struct grant *g = &set.v[i].g;
		char id[64], arn[160], scope[128];
		const char *perm = grant_perm_name(g->permission);
		const char *loc = "default";

		if (i % 200 == 0)
			continue;   /* 500 missing */
		if (i % 200 == 1)
			perm = g->permission == GRANT_READ ? "READWRITE" : "READ";   /* 500 permission changes */
		if (i % 1000 == 2)
			loc = "loc-other";   /* 100 in another location */
		snprintf(id, sizeof(id), "%08zx-1111-2222-3333-%012zx", i, i * 7919);
		snprintf(arn, sizeof(arn), "arn:aws:s3:us-east-1:111122223333:access-grants/default/grant/%s", id);
		snprintf(scope, sizeof(scope), "s3://%s", g->sub_prefix);
		if (grant_make(&in, grant_grantee_name(g->grantee_type), g->grantee_id, perm, loc, g->sub_prefix, id,
			       arn, scope, &actual[nactual]) < 0)
			return 1;
		actual[nactual++].subscription_id = g->subscription_id;
	}
	for (int i = 0; i < 500; i++) {
		char id[64], who[96];

		snprintf(id, sizeof(id), "hand-%05d", i);
		snprintf(who, sizeof(who), "arn:aws:iam::111122223333:user/intruder%d", i);
		if (grant_make(&in, "IAM", who, "READ", "default", "research-data-01/*", id, NULL, NULL,
			       &actual[nactual++]) < 0)
			return 1;
	}
	actual_bytes = nactual * sizeof(*actual);

	for (int r = 0; r < rounds; r++) {
		struct desired_set s2;
		struct diff d2;
		struct plan p2;
		double t0 = now_ms(), t1, t2, t3;

		if (desired_build(&in, &integ, ds, NDS, users, NUSERS, subs, nsubs, &s2, &why) < 0)
			return 1;
		t1 = now_ms();
		if (diff_compute(&s2, actual, nactual, &d2) < 0)
			return 1;
		t2 = now_ms();
		if (plan_build(&s2, actual, nactual, &d2, &p2) < 0)
			return 1;
		t3 = now_ms();
		if (t1 - t0 < t_des)
			t_des = t1 - t0;
		if (t2 - t1 < t_diff)
			t_diff = t2 - t1;
		if (t3 - t2 < t_plan)
			t_plan = t3 - t2;
		plan_free(&p2);
		diff_free(&d2);
		desired_free(&s2);
	}
	if (diff_compute(&set, actual, nactual, &d) < 0 || plan_build(&set, actual, nactual, &d, &p) < 0)
		return 1;
	{
		size_t replaced = 0, plain = 0;

		for (size_t i = p.ncreate; i < p.n; i++)
			p.steps[i].after != PLAN_NONE ? replaced++ : plain++;
		printf("subscriptions %zu, desired grants %zu, actual grants %zu (foreign %zu)\n", nsubs, set.n,
		       nactual, d.nforeign);
		printf("plan: %zu creates, %zu deletes (%zu make-before-break, %zu plain), %zu kept; quota at %zu: %s\n",
		       p.ncreate, p.n - p.ncreate, replaced, plain, d.nkeep, nactual, quota_level_name(quota_level(nactual, 0)));
	}
	printf("best of %d: desired_build %.1f ms, diff %.1f ms, plan %.1f ms, total %.1f ms (%.2f us/grant)\n", rounds,
	       t_des, t_diff, t_plan, t_des + t_diff + t_plan, (t_des + t_diff + t_plan) * 1e3 / (double)set.n);
	printf("memory: interned strings %zu B (%zu distinct, %zu B of text), desired set %zu B, actual array %zu B\n",
	       in.alloc, in.count, in.bytes, desired_bytes(&set), actual_bytes);
	printf("bytes per grant (desired + actual, strings included): %.0f; struct grant %zu B\n",
	       (double)(in.alloc + desired_bytes(&set) + actual_bytes) / (double)set.n, sizeof(struct grant));
	printf("process RSS: start %ld kB, now %ld kB, peak %ld kB\n", rss0, status_kb("VmRSS:"), status_kb("VmHWM:"));
	plan_free(&p);
	diff_free(&d);
	desired_free(&set);
	x_free(actual);
	x_free(subs);
	intern_free(&in);
	return 0;
}
