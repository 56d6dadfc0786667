/* plan.h — the ordered steps that turn actual grants into desired ones, and
 * the classification of a step's AWS error.
 *
 * Order: every create comes before every delete (creates in desired order,
 * deletes in actual order). Make-before-break: a delete that a create
 * replaces carries `after` = that create's step index, and the daemon must
 * not issue the delete before the create has completed successfully (a
 * change of permission or principal never opens an access gap). A delete is
 * replaced by a create when
 *   (a) the actual grant's recorded subscription is served by the created
 *       grant (principal or permission change of that subscription), or
 *   (b) failing a record, the created grant has the same location, grantee
 *       and sub-prefix with another permission (permission change).
 * A delete without `after` (PLAN_NONE) may run as soon as the creates are
 * issued. If the create fails for good the delete stays blocked and the old
 * grant keeps working; for a downgrade (write → read) that keeps more access
 * than desired, which the daemon must report (plan_step_reduces tells).
 *
 * The plan holds indices into the desired set and the actual array it was
 * built from; it owns only its step array.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/desired.h"
#include "core/diff.h"
#include "core/err.h"
#include "core/grant.h"

#define PLAN_NONE UINT32_MAX

enum plan_op {
	PLAN_CREATE,
	PLAN_DELETE,
	PLAN_OP_MAX_
};

enum plan_reason {
	PLAN_MISSING,      /* create: desired, not in AWS (new subscription or repair) */
	PLAN_REPLACE,      /* create: replaces an actual grant (make-before-break) */
	PLAN_UNWANTED,     /* delete: not desired (unsubscribed, data source gone, hand-made) */
	PLAN_REPLACED,     /* delete: after its replacement's create */
	PLAN_DUPLICATE,    /* delete: an extra copy of a kept grant */
	PLAN_REASON_MAX_
};

enum plan_status {
	PLAN_READY,        /* may be issued (a delete: once `after` has completed) */
	PLAN_QUOTA,        /* create refused: instance grant quota (core/quota.h) */
	PLAN_BLOCKED,      /* delete waiting on a create that will not be issued */
	PLAN_STATUS_MAX_
};

const char *plan_op_name(enum plan_op op);
const char *plan_reason_name(enum plan_reason r);
const char *plan_status_name(enum plan_status s);

struct plan_step {
	uint32_t ref;      /* PLAN_CREATE: desired index; PLAN_DELETE: actual index */
	uint32_t after;    /* step index that must complete first, PLAN_NONE */
	uint8_t op;        /* enum plan_op */
	uint8_t reason;    /* enum plan_reason */
	uint8_t status;    /* enum plan_status */
};

struct plan {
	struct plan_step *steps;
	size_t n;
	size_t ncreate;    /* steps[0 .. ncreate) are creates */
};

int plan_build(const struct desired_set *desired, const struct grant *actual, size_t nactual,
	       const struct diff *diff, struct plan *ret) S3G_WUR;
void plan_free(struct plan *p);
/* For a PLAN_REPLACED delete: does the replacement grant less access than
 * the grant being deleted (READWRITE/WRITE → READ)? */
int plan_step_reduces(const struct plan *p, size_t i, const struct desired_set *desired,
		      const struct grant *actual);

/* What to do with an AWS error on a step. */
enum plan_class {
	PLAN_CLASS_ADOPT,        /* create: AccessGrantAlreadyExists — find and adopt the existing grant */
	PLAN_CLASS_GONE,         /* delete: NoSuchAccessGrant — already done */
	PLAN_CLASS_RETRY,        /* throttling, 5xx, transport, transient: retry with backoff */
	PLAN_CLASS_PROPAGATION,  /* Invalid Grantee / InvalidIamRole inside the window: retry */
	PLAN_CLASS_QUOTA,        /* AccessGrantsQuotaExceededError: refuse until room */
	PLAN_CLASS_TERMINAL,     /* a human must fix something (AccessDenied, InvalidAccessGrant, ...) */
	PLAN_CLASS_MAX_
};

const char *plan_class_name(enum plan_class c);

/* Classify an error. http_status 0 = no HTTP answer (transport failure);
 * code/message may be NULL. first_seen_ms is when this key first got a
 * propagation-type error (pass now_ms the first time); such an error is
 * PROPAGATION while now_ms - first_seen_ms < window_ms, TERMINAL after. */
enum plan_class plan_classify(enum plan_op op, int http_status, const char *code, const char *message,
			      uint64_t first_seen_ms, uint64_t now_ms, uint64_t window_ms);
