/* recon.h — the reconciler's rows in PostgreSQL: its inputs, the grants as
 * last seen in AWS, create intents, the audit log, health and statuses, the
 * integration lifecycle and the one-writer-per-integration lock.
 *
 * Inputs. recon_inputs_load() reads one integration, its data sources, the
 * users its subscriptions name and the subscriptions, in one REPEATABLE READ
 * READ ONLY transaction (one consistent snapshot, one query per table,
 * binary results). The rows are the structs core/desired.h takes; their
 * strings are copied into one block and the big results freed at once (the
 * integration's strings point into its own small result); both live until
 * recon_inputs_free(). Subscriptions come in id
 * order. The integration's secret key is decrypted only when a key is given
 * (the plaintext is wiped by recon_inputs_free).
 *
 * Grants (s3grant.grants, "actual"). recon_grants_load() interns every
 * string into the caller's struct intern (use the desired set's, so equal
 * strings are pointer-equal) and sets grant.subscription_id to the first
 * recorded subscription that still exists (plan.h's make-before-break rule
 * (a)); the rows are streamed (single-row mode), never held as one result.
 * recon_grants_sync() records a listing of the managed location (whole, or
 * page by page: recon_listing_add, recon_listing_sync); with complete=true
 * rows of that location the listing did not contain are removed. Listed
 * grants keep the subscriptions recorded for them.
 *
 * Intents (s3grant.grant_intents): one per canonical grant key of an
 * integration, written BEFORE CreateAccessGrant is sent (recon_intents_add;
 * writing the same key again bumps its attempts and returns the same id).
 * Recording a grant (recon_batch_commit .created) deletes the intent its
 * create was sent under (.intent_id) or, when none is given, the intent
 * with the same canonical key, in the same transaction, so a crash leaves
 * either the intent (adopt a listed grant with grant_matches_intent(), or
 * create again: AlreadyExists → adopt) or the grant, never neither and
 * never two.
 *
 * Results. recon_batch_commit() writes, in ONE transaction, grants created
 * or adopted (resolving their intents), grants deleted, intents given up,
 * audit rows and subscription statuses — bulk, each column one array
 * parameter: up to 5,000 results are one statement (one round trip), more
 * go as several statements between BEGIN and COMMIT. recon_intents_add()
 * is one statement too; a listing is COPYed into a temporary table.
 *
 * Lifecycle. recon_integration_transition() moves an integration from the
 * state the caller read to the next one, atomically (UPDATE ... WHERE status
 * = from): S3G_EINVAL for a transition the lifecycle does not have (no
 * query sent), S3G_ECONFLICT when the integration is no longer in `from`
 * (err says which state it is in), S3G_ENOTFOUND when it does not exist.
 * editing → editError restores the configuration the edit replaced.
 *
 * Lock. recon_lock_try() takes a session advisory lock for an integration
 * on the caller's connection; it lasts until recon_lock_release() or the
 * session ends (a daemon that dies or loses the connection loses its locks:
 * after a reconnect it must take them again before writing). Session locks
 * stack: take each integration's lock once.
 *
 * All functions are blocking libpq calls on a connection the caller owns
 * (the daemon runs them on a worker thread with its own connection), outside
 * a transaction block. They return 0 or a negative status and fill err (may
 * be NULL) on failure. Library code: no logging.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "core/desired.h"
#include "core/err.h"
#include "core/grant.h"
#include "core/hash.h"
#include "store/pgerr.h"
#include "store/secrets.h"

#define RECON_SECRET_CONTEXT "integrations.secret_access_key"
#define RECON_LOCK_CLASS 0x53334701   /* advisory lock namespace (int4 key 1); key 2 = integration id */

enum recon_istatus {
	RECON_CREATING,
	RECON_ENABLED,
	RECON_EDITING,
	RECON_DELETING,
	RECON_DELETED,
	RECON_DISABLED,
	RECON_CREATE_ERROR,
	RECON_EDIT_ERROR,
	RECON_DELETE_ERROR,
	RECON_RECURRING_VALIDATION_ERROR,
	RECON_ISTATUS_MAX_
};
/* The schema's spellings: "creating", ..., "createError", "recurringValidationError". */
const char *recon_istatus_name(enum recon_istatus s);
int recon_istatus_parse(const char *s, enum recon_istatus *ret) S3G_WUR;

enum recon_auth {
	RECON_AUTH_AUTO,
	RECON_AUTH_ACCESS_KEY,
	RECON_AUTH_MAX_
};
const char *recon_auth_name(enum recon_auth a);

/* ---- inputs ------------------------------------------------------------- */

struct recon_integration {
	struct desired_integration d;  /* id, account, region, location_scope, location_id */
	const char *name;
	enum recon_istatus status;
	const char *status_message;    /* NULL when none */
	const char *location_role_arn;
	const char *location_arn;      /* NULL until registered */
	const char *instance_arn;      /* NULL until known */
	enum recon_auth auth;
	const char *access_key_id;     /* ACCESS_KEY */
	bool has_secret;               /* a sealed secret is stored */
	char *secret_access_key;       /* decrypted (a key was given), else NULL */
	const char *role_to_assume;    /* NULL: no AssumeRole */
	const char *external_id;       /* the column, else the tenant id */
	const char *role_session_name; /* NULL: the daemon's default */
};

struct recon_inputs {
	struct recon_integration integ;
	struct desired_data_source *ds;
	size_t nds;
	struct desired_user *users;
	size_t nusers;
	struct desired_subscription *subs;
	size_t nsubs;
	PGresult *res[4];              /* res[0]: the integration's strings point into it; 1..3 freed */
	char *strs;                    /* the row strings of ds, users and subs */
	bool rows_dropped;             /* recon_inputs_drop_rows() was called */
};

/* key NULL: leave the secret sealed. S3G_ENOTFOUND: no such integration;
 * S3G_ECONFIG/S3G_EPARSE: the secret does not open with this key. */
int recon_inputs_load(PGconn *conn, int64_t iid, const struct secrets_key *key, struct recon_inputs *ret,
		      struct pgerr *err) S3G_WUR;
void recon_inputs_free(struct recon_inputs *in);
/* Free the data source, user and subscription rows (desired_build() has
 * interned what it needs) and set rows_dropped; the integration stays. */
void recon_inputs_drop_rows(struct recon_inputs *in);

/* ---- grants as last seen in AWS ---------------------------------------- */

struct recon_grants {
	struct grant *v;               /* grant_key_cmp order is not promised: grant id order */
	int64_t *created_ms;           /* per grant: AWS CreatedAt (0 = unknown) */
	size_t n;
};

int recon_grants_load(PGconn *conn, int64_t iid, struct intern *in, struct recon_grants *ret,
		      struct pgerr *err) S3G_WUR;
void recon_grants_free(struct recon_grants *g);

struct recon_listed {
	const struct grant *g;         /* grant_id required; grant_arn, grant_scope optional */
	int64_t created_ms;            /* AWS CreatedAt; 0 = unknown */
};

struct recon_sync_result {
	size_t inserted;               /* not recorded before (made by hand, or lost record) */
	size_t updated;
	size_t removed;                /* complete: recorded but not listed any more */
};

/* Record a listing of location_id's grants (g->location_id must be it). */
int recon_grants_sync(PGconn *conn, int64_t iid, const char *location_id, const struct recon_listed *v,
		      size_t n, bool complete, struct recon_sync_result *ret, struct pgerr *err) S3G_WUR;
/* The same, page by page, so the whole listing is never held: each page
 * goes to a session temporary table as it is listed (ord0: how many grants
 * earlier pages held; the first page, ord0 = 0, empties the table, and an
 * empty listing still sends it), then recon_listing_sync() records the n
 * grants sent, on the same connection. A page lost on the way (a reconnect
 * in between, a failed page) fails the sync with S3G_ECONFLICT rather than
 * removing the records of grants the table does not hold. */
int recon_listing_add(PGconn *conn, const char *location_id, const struct recon_listed *v, size_t n, size_t ord0,
		      struct pgerr *err) S3G_WUR;
int recon_listing_sync(PGconn *conn, int64_t iid, const char *location_id, size_t n, bool complete,
		       struct recon_sync_result *ret, struct pgerr *err) S3G_WUR;

/* ---- intents ------------------------------------------------------------ */

struct recon_intent_in {
	const struct grant *g;         /* the desired grant (canonical key) */
	const int64_t *subs;           /* subscriptions it serves */
	size_t nsubs;
};

/* ret_ids[i] = the intent id of v[i] (caller's array of n). */
int recon_intents_add(PGconn *conn, int64_t iid, const struct recon_intent_in *v, size_t n, int64_t *ret_ids,
		      struct pgerr *err) S3G_WUR;

struct recon_intent {
	int64_t id;
	struct grant g;                /* key fields; g.subscription_id = first subscription */
	int64_t created_ms;
	int attempts;                  /* times the key's create was intended */
};

struct recon_intents {
	struct recon_intent *v;        /* id order */
	size_t n;
};

int recon_intents_load(PGconn *conn, int64_t iid, struct intern *in, struct recon_intents *ret,
		       struct pgerr *err) S3G_WUR;
void recon_intents_free(struct recon_intents *v);

/* ---- scoped inputs ------------------------------------------------------ */

/* A changed key of a scoped pass: s:<iid>:<uid>:<dsid> (both > 0),
 * u:<iid>:<uid> (data_source_id 0) or d:<iid>:<dsid> (user_id 0). */
struct recon_scope_key {
	int64_t user_id;
	int64_t data_source_id;
};

struct recon_scope_max {
	size_t users;                  /* keyed users, users resolving into the scope, grantees */
	size_t subscriptions;          /* of the keyed users; of the users resolving into the scope */
};

struct recon_scope_info {
	size_t nkeyed;                 /* keyed users that exist */
	size_t nusers;                 /* users resolving into the scope (those with subscriptions here) */
	size_t ngrantees;              /* the scope: distinct grantees */
	int64_t recorded;              /* the integration's recorded grants (want_count), else -1 */
	bool quota_waiting;            /* a subscription here is refused for quota (status 'quota');
					  looked for only when the scope has recorded grants */
	const char *fallback;          /* static text: why there is no scope; the outputs are then empty */
};

/* The inputs of a pass limited to the grantees the keyed users can affect,
 * in one REPEATABLE READ READ ONLY transaction (taken outside a transaction
 * block). The desired grants of a grantee depend only on the users that
 * resolve to it (desired_principal), so the scope P is a set of grantees:
 *  - the current grantee of every keyed user;
 *  - for a user with a u: key (its principal may have changed): the
 *    grantees of the recorded grants whose first subscription
 *    (grants.subscription_id) is one of its subscriptions here, and of
 *    those with none left (NULL) at its subscriptions' sub-prefixes. A
 *    whole or scoped pass records each kept grant's first subscription
 *    anew when it changed (the daemon's record_served), so a grant that
 *    this user alone needed is found; one it shared with another user
 *    still serves that user;
 *  - for a key whose subscription is gone: the grantees of the recorded
 *    grants at that data source's sub-prefix whose first subscription is
 *    gone too (grants.subscription_id NULL).
 * A user's principal changes only with a u: key (while it has
 * subscriptions here), and the pass of that key moves its grants: an s: key
 * alone needs the user's current grantee only.
 * A d: key of a data source that no subscription names adds nothing (its
 * old subscriptions' removal has s: keys); another d: key has no scope.
 * ret_in gets the integration, every user with subscriptions here that
 * resolves into P, their subscriptions here (id order) and the data
 * sources those name; ret_act the recorded grants and ret_intents the
 * intents whose grantee is in P (grants loaded as recon_grants_load does).
 * No scope (info->fallback says why; plan the whole integration instead):
 * the integration is missing or neither enabled nor
 * recurringValidationError; a keyed user or a gone subscription's data
 * source no longer exists; more users, grantees or subscriptions than max
 * allows. */
int recon_scope_load(PGconn *conn, int64_t iid, const struct secrets_key *key, const struct recon_scope_key *keys,
		     size_t nkeys, const struct recon_scope_max *max, bool want_count, struct intern *pool,
		     struct recon_inputs *ret_in,
		     struct recon_grants *ret_act, struct recon_intents *ret_intents, struct recon_scope_info *info,
		     struct pgerr *err) S3G_WUR;

/* ---- changes a whole pass has done -------------------------------------- */

/* The seqs of integration iid's change queue rows nobody holds (locked_by
 * NULL). Read before a whole pass loads its inputs, every change these rows
 * stand for is in those inputs (*ret_seqs: free with x_free). */
int recon_queue_seen(PGconn *conn, int64_t iid, int64_t **ret_seqs, size_t *ret_n, struct pgerr *err) S3G_WUR;
/* Delete the rows of seqs that are still there with that seq and still
 * unheld (a key changed again has a new seq and stays): the whole pass that
 * read them made every change it planned, so there is nothing left for them
 * to ask. ret_deleted may be NULL. */
int recon_queue_absorb(PGconn *conn, int64_t iid, const int64_t *seqs, size_t n, size_t *ret_deleted,
		       struct pgerr *err) S3G_WUR;

/* ---- results: grants, audit, statuses ---------------------------------- */

enum recon_op {
	RECON_OP_CREATE,
	RECON_OP_DELETE,
	RECON_OP_ADOPT,
	RECON_OP_REPAIR_CREATE,
	RECON_OP_REPAIR_DELETE,
	RECON_OP_MAX_
};
/* "create", "delete", "adopt", "repair-create", "repair-delete" */
const char *recon_op_name(enum recon_op op);

enum recon_sub_state {
	RECON_SUB_PENDING,
	RECON_SUB_ACTIVE,
	RECON_SUB_REJECTED,            /* the row cannot become a grant */
	RECON_SUB_ERROR,               /* AWS refused for good */
	RECON_SUB_QUOTA,               /* refused: instance grant quota */
	RECON_SUB_STATE_MAX_
};
/* "pending", "active", "rejected", "error", "quota" */
const char *recon_sub_state_name(enum recon_sub_state s);

struct recon_created {
	const struct grant *g;         /* grant_id (required), grant_arn, grant_scope as AWS returned them */
	int64_t created_ms;            /* AWS CreatedAt; 0 = now */
	const int64_t *subs;           /* subscriptions it serves (may be none) */
	size_t nsubs;
	int64_t intent_id;             /* the intent its create was sent under (deleted by id); 0: none
					* known, the intent with its canonical key is deleted */
};

struct recon_audit {
	enum recon_op op;
	const char *grant_id;
	const char *grant_arn;
	const char *principal;
	const char *prefix;            /* the S3 path (GrantScope) */
	const char *permission;
	const char *reason;
	const char *request_id;        /* AWS x-amz-request-id */
	int64_t at_ms;                 /* 0 = now */
};

struct recon_sub_status {
	int64_t id;
	enum recon_sub_state state;
	const char *error;             /* NULL = none (cleared) */
};

struct recon_batch {
	const struct recon_created *created;   /* recorded (upsert); its intent (intent_id, else the
						* same-key one) is deleted */
	size_t ncreated;
	const char *const *deleted;            /* grant ids gone from AWS (deleted or NoSuchAccessGrant) */
	size_t ndeleted;
	const int64_t *drop_intents;           /* intents given up (create failed for good) */
	size_t ndrop_intents;
	const struct recon_audit *audit;
	size_t naudit;
	const struct recon_sub_status *subs;   /* a row whose status and error are unchanged is not written */
	size_t nsubs;
};

int recon_batch_commit(PGconn *conn, int64_t iid, const struct recon_batch *b, struct pgerr *err) S3G_WUR;

/* ---- health ------------------------------------------------------------- */

struct recon_health {
	int64_t desired;               /* each count: -1 = leave as is */
	int64_t actual;
	int64_t rejected;
	int64_t errors;
	int64_t instance_grants;       /* quota use: grants in the whole instance */
	int64_t resync_at_ms;          /* 0 = leave as is */
	const char *last_error;        /* NULL = leave as is, "" = clear */
	int64_t progress_done;         /* progress_total: -1 = leave, 0 = clear (idle) */
	int64_t progress_total;
};
/* A recon_health with every field "leave as is". */
struct recon_health recon_health_keep(void);
int recon_health_set(PGconn *conn, int64_t iid, const struct recon_health *h, struct pgerr *err) S3G_WUR;

/* ---- lifecycle ---------------------------------------------------------- */

struct recon_transition {
	enum recon_istatus from;
	enum recon_istatus to;
	const char *results_json;      /* validation results (JSON); NULL = leave as is */
	const char *message;           /* status message; NULL = clear */
	const char *location_id;       /* the registered location (creating → enabled); NULL = leave */
	const char *location_arn;
	const char *instance_arn;
};

/* The daemon's transitions:
 *   creating → enabled | createError        editing → enabled | editError
 *   deleting → deleted | deleteError        deleteError → deleting (retry)
 *   enabled | recurringValidationError → enabled | recurringValidationError (re-validation) */
bool recon_transition_legal(enum recon_istatus from, enum recon_istatus to);
int recon_integration_transition(PGconn *conn, int64_t iid, const struct recon_transition *t,
				 struct pgerr *err) S3G_WUR;

/* ---- one writer per integration ---------------------------------------- */

int recon_lock_try(PGconn *conn, int64_t iid, bool *ret_got, struct pgerr *err) S3G_WUR;
/* S3G_ENOTFOUND when this session did not hold it. */
int recon_lock_release(PGconn *conn, int64_t iid, struct pgerr *err) S3G_WUR;
/* The backend pid holding iid's lock; S3G_ENOTFOUND when nobody does. */
int recon_lock_holder(PGconn *conn, int64_t iid, int *ret_pid, struct pgerr *err) S3G_WUR;
