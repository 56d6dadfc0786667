#include "core/plan.h"

#include <string.h>

#include "core/hash.h"
#include "core/xalloc.h"

static const char *const op_names[PLAN_OP_MAX_] = {
	[PLAN_CREATE] = "create",
	[PLAN_DELETE] = "delete",
};

static const char *const reason_names[PLAN_REASON_MAX_] = {
	[PLAN_MISSING] = "missing",
	[PLAN_REPLACE] = "replace",
	[PLAN_UNWANTED] = "unwanted",
	[PLAN_REPLACED] = "replaced",
	[PLAN_DUPLICATE] = "duplicate",
};

static const char *const status_names[PLAN_STATUS_MAX_] = {
	[PLAN_READY] = "ready",
	[PLAN_QUOTA] = "quota-exceeded",
	[PLAN_BLOCKED] = "blocked",
};

static const char *const class_names[PLAN_CLASS_MAX_] = {
	[PLAN_CLASS_ADOPT] = "adopt",
	[PLAN_CLASS_GONE] = "gone",
	[PLAN_CLASS_RETRY] = "retry",
	[PLAN_CLASS_PROPAGATION] = "propagation",
	[PLAN_CLASS_QUOTA] = "quota",
	[PLAN_CLASS_TERMINAL] = "terminal",
};

const char *plan_op_name(enum plan_op op)
{
	return (unsigned)op < PLAN_OP_MAX_ ? op_names[op] : "?";
}

const char *plan_reason_name(enum plan_reason r)
{
	return (unsigned)r < PLAN_REASON_MAX_ ? reason_names[r] : "?";
}

const char *plan_status_name(enum plan_status s)
{
	return (unsigned)s < PLAN_STATUS_MAX_ ? status_names[s] : "?";
}

const char *plan_class_name(enum plan_class c)
{
	return (unsigned)c < PLAN_CLASS_MAX_ ? class_names[c] : "?";
}

struct ctx {
	const struct desired_set *desired;
	const struct plan_step *steps;
};

/* by subscription: key is an int64 subscription id */
static int sub_eq(uint32_t step, const void *key, void *user)
{
	const struct ctx *c = user;

	return desired_serves(c->desired, c->steps[step].ref, *(const int64_t *)key);
}

static uint32_t slot_hash(const struct grant *g)
{
	uint32_t h = hash_bytes(g->grantee_id, strlen(g->grantee_id), g->grantee_type);

	return hash_mix(h, hash_bytes(g->sub_prefix, strlen(g->sub_prefix), 0));
}

/* by (location, grantee, sub-prefix): key is a struct grant */
static int slot_eq(uint32_t step, const void *key, void *user)
{
	const struct ctx *c = user;
	const struct grant *a = &c->desired->v[c->steps[step].ref].g, *b = key;

	return a->grantee_type == b->grantee_type && strcmp(a->grantee_id, b->grantee_id) == 0 &&
	       strcmp(a->sub_prefix, b->sub_prefix) == 0 && strcmp(a->location_id, b->location_id) == 0;
}

int plan_build(const struct desired_set *desired, const struct grant *actual, size_t nactual,
	       const struct diff *diff, struct plan *ret)
{
	struct plan p = {0};
	struct hidx by_sub, by_slot;
	struct ctx c;
	size_t total = diff->ncreate + diff->nremove;

	if (total >= PLAN_NONE)
		return S3G_EINVAL;
	p.steps = x_malloc((total + 1) * sizeof(*p.steps));
	c.desired = desired;
	c.steps = p.steps;
	hidx_init(&by_sub);
	hidx_init(&by_slot);
	hidx_reserve(&by_slot, diff->ncreate);

	for (size_t i = 0; i < diff->ncreate; i++) {
		uint32_t di = diff->create[i];
		const struct desired_grant *d = &desired->v[di];
		struct plan_step *s = &p.steps[p.n];

		s->op = PLAN_CREATE;
		s->reason = PLAN_MISSING;
		s->status = PLAN_READY;
		s->ref = di;
		s->after = PLAN_NONE;
		hidx_insert(&by_sub, hash_u64((uint64_t)d->g.subscription_id), (uint32_t)p.n);
		for (uint32_t l = d->more; l != UINT32_MAX; l = desired->links[l].next)
			hidx_insert(&by_sub, hash_u64((uint64_t)desired->links[l].subscription_id), (uint32_t)p.n);
		hidx_insert(&by_slot, slot_hash(&d->g), (uint32_t)p.n);
		p.n++;
	}
	p.ncreate = p.n;

	for (size_t i = 0; i < diff->nremove; i++) {
		const struct diff_remove *r = &diff->remove[i];
		const struct grant *g = &actual[r->actual];
		struct plan_step *s = &p.steps[p.n];
		uint32_t step = PLAN_NONE;

		s->op = PLAN_DELETE;
		s->status = PLAN_READY;
		s->ref = r->actual;
		s->after = PLAN_NONE;
		if (r->why == DIFF_DUPLICATE) {
			s->reason = PLAN_DUPLICATE;
			p.n++;
			continue;
		}
		s->reason = PLAN_UNWANTED;
		if (g->subscription_id &&
		    hidx_find(&by_sub, hash_u64((uint64_t)g->subscription_id), sub_eq, &g->subscription_id, &c,
			      &step, NULL) == 0) {
			/* (a) the recorded subscription now wants another grant */
		} else if (hidx_find(&by_slot, slot_hash(g), slot_eq, g, &c, &step, NULL) == 0) {
			/* (b) same grantee and prefix, another permission */
		} else {
			step = PLAN_NONE;
		}
		if (step != PLAN_NONE) {
			s->after = step;
			s->reason = PLAN_REPLACED;
			p.steps[step].reason = PLAN_REPLACE;
		}
		p.n++;
	}
	hidx_free(&by_sub);
	hidx_free(&by_slot);
	*ret = p;
	return 0;
}

void plan_free(struct plan *p)
{
	if (!p)
		return;
	x_free(p->steps);
	memset(p, 0, sizeof(*p));
}

static int perm_rank(uint8_t perm)
{
	return perm == GRANT_READWRITE ? 2 : 1;
}

int plan_step_reduces(const struct plan *p, size_t i, const struct desired_set *desired,
		      const struct grant *actual)
{
	const struct plan_step *s = &p->steps[i];
	const struct grant *old, *repl;

	if (s->op != PLAN_DELETE || s->after == PLAN_NONE)
		return 0;
	old = &actual[s->ref];
	repl = &desired->v[p->steps[s->after].ref].g;
	if (old->permission == repl->permission)
		return 0;
	/* READ and WRITE are disjoint: either change loses something */
	return perm_rank(repl->permission) <= perm_rank(old->permission);
}

static int eq(const char *a, const char *b)
{
	return a && strcmp(a, b) == 0;
}

static int is_throttle_code(const char *code)
{
	static const char *const codes[] = {
		"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
		"TooManyRequestsException", "ProvisionedThroughputExceededException",
		"TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
		"LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
		"EC2ThrottledException",
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (eq(code, codes[i]))
			return 1;
	return 0;
}

static int is_transient_code(const char *code)
{
	static const char *const codes[] = {
		"RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable",
		"RequestTimeTooSkewed", "ExpiredToken", "ExpiredTokenException", "IDPCommunicationError",
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (eq(code, codes[i]))
			return 1;
	return 0;
}

enum plan_class plan_classify(enum plan_op op, int http_status, const char *code, const char *message,
			      uint64_t first_seen_ms, uint64_t now_ms, uint64_t window_ms)
{
	int propagation;

	if (op == PLAN_CREATE && eq(code, "AccessGrantAlreadyExists"))
		return PLAN_CLASS_ADOPT;
	if (op == PLAN_DELETE && (eq(code, "NoSuchAccessGrantError") || eq(code, "NoSuchAccessGrant") ||
				  (http_status == 404 && !code)))
		return PLAN_CLASS_GONE;
	if (eq(code, "AccessGrantsQuotaExceededError"))
		return PLAN_CLASS_QUOTA;
	propagation = eq(code, "InvalidIamRole") || eq(code, "AccessGrantsLocationNotEmptyError") ||
		      (eq(code, "InvalidRequest") && message && strstr(message, "Invalid Grantee"));
	if (propagation) {
		if (now_ms < first_seen_ms || now_ms - first_seen_ms < window_ms)
			return PLAN_CLASS_PROPAGATION;
		return PLAN_CLASS_TERMINAL;
	}
	if (http_status == 0 || http_status == 429 || http_status >= 500 || is_throttle_code(code) ||
	    is_transient_code(code))
		return PLAN_CLASS_RETRY;
	return PLAN_CLASS_TERMINAL;
}
