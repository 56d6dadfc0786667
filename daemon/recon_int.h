/* recon_int.h — private to the reconciler (daemon/recon.c, recon_exec.c,
 * recon_scope.c, lifecycle.c): the per-integration state.
 *
 * struct rglue is d->recon; struct rint one integration. Everything runs on
 * the loop except the dbjob work functions, which run on the threadpool one
 * at a time per integration (FIFO) and touch only the integration's
 * connection and the pass data the loop does not change while the job runs
 * (the loop only interns new strings into the pool meanwhile; interned
 * strings never move).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "aws/http.h"
#include "core/desired.h"
#include "core/diff.h"
#include "core/grant.h"
#include "core/hash.h"
#include "core/limit.h"
#include "core/plan.h"
#include "core/quota.h"
#include "core/xalloc.h"
#include "daemon/recon_aws.h"
#include "daemon/watch.h"
#include "store/recon.h"
#include "store/secrets.h"

struct daemon;
struct rint;

/* Room in v (n used of cap) for one more. */
#define GROW(v, n, cap) \
	do { \
		if ((n) == (cap)) { \
			(cap) = (cap) ? 2 * (cap) : 64; \
			(v) = x_realloc((v), (cap) * sizeof(*(v))); \
		} \
	} while (0)

struct rglue {
	struct daemon *d;
	uv_loop_t *loop;
	char *conninfo;
	struct secrets_key key;
	bool have_key;
	struct http_engine *http;
	bool http_closing, http_closed;
	unsigned aws_open;             /* raws built and not yet freed (the engine closes after them) */
	struct rint *ints;
	struct watch *w;               /* the watcher whose items we hold */
	uv_timer_t disc_timer;
	uv_timer_t progress_timer;
	PGconn *disc_conn;             /* discovery worker only */
	bool disc_busy, discovered;
	bool stopping, closing, freed;
	unsigned pending_closes;
};

struct cbatch {
	struct recon_created *created;
	size_t ncreated, ccap;
	const char **deleted;
	size_t ndeleted, dcap;
	int64_t *drop;
	size_t ndrop, dropcap;
	struct recon_audit *audit;
	size_t naudit, acap;
	struct recon_sub_status *subs;
	size_t nsubs, scap;
	bool has_health;
	struct recon_health health;
	void **owned;                  /* freed with the batch */
	size_t nowned, owned_cap;
};

struct dbjob {
	uv_work_t w;
	struct rint *ri;
	void (*work)(struct dbjob *j);
	void (*after)(struct dbjob *j);
	void (*then)(struct rint *ri); /* commit: what comes next */
	int status;
	char err[512];
	struct cbatch *b;
	size_t ifrom, ito;             /* intents: plan step range */
	int64_t *ids;
	struct rlisted *page;          /* listing: one page's grants (strings in the pass's pool) */
	size_t npage, ord0;            /* ... how many (sync: the whole listing's), how many before */
	struct recon_sync_result sync;
	struct recon_transition tr;
	char *results_json, *message;
	struct dbjob *next;
};

struct ritems {
	struct watch_item **v;
	size_t n, cap;
};

enum rsx_fail {
	F_NONE,
	F_TRANSIENT,
	F_TERMINAL,
	F_QUOTA,
};

struct rsx {
	uint8_t st;                    /* enum sx_state (recon_exec.c) */
	uint8_t fail;                  /* enum rsx_fail */
	uint16_t attempts;
	uint32_t dep_head, dep_next;   /* deletes waiting on this create */
	uint64_t next_ms;              /* retry time */
	uint64_t first_prop_ms;        /* first propagation-type error */
	const char *err;               /* owned by a batch */
};

struct rlisted {
	struct grant g;
	int64_t created_ms;
};

/* Validation test results (lifecycle.c). */
#define RLC_TESTS 7

struct rint {
	struct rglue *g;
	int64_t iid;
	struct rint *next;
	/* worker */
	PGconn *conn;
	bool locked;
	/* jobs */
	struct dbjob *jq, *jq_tail;
	bool job_running;
	unsigned commits_running;
	/* scheduling */
	uv_timer_t pass_timer, step_timer, flush_timer;
	unsigned pending_closes;
	bool freeing, dead;
	bool in_pass, want_pass, want_resync, want_resync_now, pass_resync;
	bool pass_failed, busy, gone, deleting, synced, exec_active, exec_done;
	uint64_t resync_at, retry_at, pass_started_ms, revalidate_at;
	unsigned fails;
	char *pass_error;
	struct ritems pending, inpass;
	/* pass data */
	struct recon_inputs in;
	bool have_in, have_pool, have_plan;
	struct intern pool;
	struct recon_grants act;
	struct recon_grants prev_act;  /* resync: the old record's grants the listing did not find */
	const char **prev_ids;         /* resync: every grant id of the old record, pointer order */
	size_t nprev_ids;
	struct recon_intents intents;
	struct desired_set set;
	struct diff diff;
	struct plan plan;
	struct rsx *sx;
	uint32_t *cstep;               /* desired index → create step */
	int64_t *intent_ids;           /* per create step */
	uint8_t *was_recorded;         /* per desired grant: in the record before the listing */
	uint32_t *rq;                  /* ready steps */
	size_t nrq, rq_cap, rq_head;
	uint32_t *retry;               /* steps waiting for their backoff */
	size_t nretry, retry_cap;
	size_t cr_next, del_next, intent_upto;
	size_t intent_sent;            /* create steps whose intents job is submitted */
	size_t done, total;
	unsigned inflight;
	unsigned terminal_errors;
	struct limit lim;
	bool lim_init;
	struct raws *aws;              /* kept across passes; rebuilt when aws_fp changes */
	char aws_fp[RAWS_FINGERPRINT_SIZE];
	bool aws_stale;                /* SIGHUP: rebuild at the next pass */
	bool aws_closing;
	struct cbatch *batch;
	/* listing: each page goes to the database as it comes (a page job) */
	size_t nlisted;                /* grants sent so far */
	unsigned list_jobs;            /* page jobs queued or running */
	bool list_failed;              /* a page job failed: the listing is not recorded */
	char *next_token;
	size_t list_total;
	unsigned list_fails;
	bool list_retry;
	int64_t instance_grants;       /* -1 = unknown */
	/* scoped pass (recon_scope.c): only the grantees the pass's keys affect */
	bool scope_try;                /* pass_start: the keys allow one; load_work tries */
	bool scoped;                   /* this pass's data is a scope (else the whole integration) */
	bool scope_want_count;         /* the instance's grants are unknown: count the recorded ones */
	bool want_whole;               /* the next pass plans the whole integration */
	struct recon_scope_key *skeys;
	size_t nskeys, skeys_cap;
	struct recon_scope_info sinfo;
	int64_t *absorb;               /* whole pass: queue rows its inputs cover (seqs) */
	size_t nabsorb;
	/* lifecycle */
	void (*lc_timer_cb)(struct rint *ri);
	int lc_status[RLC_TESTS];      /* enum rlc_result */
	char *lc_msg[RLC_TESTS];
	int lc_step;
	unsigned lc_attempts;
	uint64_t lc_first_prop_ms;
	char *lc_location_id, *lc_location_arn, *lc_instance_arn;
};

/* recon.c */
struct dbjob *rint_job(struct rint *ri, void (*work)(struct dbjob *), void (*after)(struct dbjob *));
void rint_submit(struct rint *ri, struct dbjob *j);
int rint_conn_locked(struct dbjob *j);
void rint_pg_fail(struct dbjob *j, int r, const struct pgerr *pe);
void rint_set_error(struct rint *ri, const char *err);
void rint_flush(struct rint *ri, void (*then)(struct rint *));
void rint_pass_done(struct rint *ri);
void rint_pass_done_flushed(struct rint *ri);
int rint_make_aws(struct rint *ri);
/* Close the integration's AWS client and provider (now when idle, else at
 * its next pass); the next rint_make_aws builds a new one. */
void rint_aws_retire(struct rint *ri);
const char *rint_location_id(const struct rint *ri);
void rint_maybe_free(struct rint *ri);
int64_t rint_wall_ms(void);
uint64_t rint_now_ms(const struct rint *ri);
uint64_t rint_rnd64(void);
/* intent_id: the intent the grant's create was sent under (0: resolve by key) */
void rint_add_created(struct rint *ri, const struct grant *g, int64_t created_ms, const int64_t *subs,
		      size_t nsubs, int64_t intent_id);
void rint_add_deleted(struct rint *ri, const char *grant_id);
void rint_add_drop(struct rint *ri, int64_t intent_id);
void rint_add_audit(struct rint *ri, enum recon_op op, const struct grant *g, const char *reason,
		    const char *request_id);
void rint_add_sub(struct rint *ri, int64_t id, enum recon_sub_state st, const char *error);
/* Commit the current batch now when it is full (FLUSH_N), else on the
 * flush timer; not while a commit runs (recon.c, on_flush_timer). */
void rint_maybe_flush(struct rint *ri);
void rint_pass_clear(struct rint *ri);
void rint_batch_free(struct cbatch *b);
size_t rint_batch_size(const struct cbatch *b);
const char *rint_batch_str(struct cbatch *b, const char *s);
/* p, freed with the batch. */
void *rint_batch_own(struct cbatch *b, void *p);
/* The batch results go into now (one is made when there is none). */
struct cbatch *rint_cur_batch(struct rint *ri);
void recond_progress(struct rglue *g, bool force);
void recond_maybe_free_glue(struct rglue *g);

/* recon_exec.c */
void rint_reconcile(struct rint *ri);
/* End the execution once every step is done (stopping: once none is in
 * flight): final statuses and health, then the pass goes on. */
void rint_exec_maybe_done(struct rint *ri);
void recond_lc_timer(struct rint *ri, uint64_t ms);
/* A pass failed before reaching the end (credentials, listing): record
 * the reason as the integration's health last_error too. */
void rint_health_error(struct rint *ri, const char *err);

/* recon_scope.c */
/* Loop side, at pass start: may this pass be scoped (keys only s:, u: and
 * d:, no resync or revalidation due, few keys)? Sets ri->scope_try and the
 * keys. */
void rscope_begin(struct rint *ri);
/* Worker side (load_work): lock, then load the scope into ri->in, ri->act,
 * ri->intents. 1: loaded (ri->scoped); 0: no scope, load the whole
 * integration instead (nothing kept); < 0: j->status and j->err are set. */
int rscope_load(struct dbjob *j);
/* Log that the pass is scoped, or why a scope was tried and not found
 * (plan_phase, once planned). */
void rscope_log(struct rint *ri, size_t ncreate, size_t ndelete);
void rscope_clear(struct rint *ri);
/* Worker side (load_work), before a whole pass loads its inputs: note the
 * queue rows those inputs cover. */
void rscope_seen(struct dbjob *j);
/* At the end of a whole pass: if it made every change it planned
 * (all_made), delete the queue rows it covered (a job), then
 * rint_pass_done. false: nothing to do, the caller goes on. */
bool rscope_absorb(struct rint *ri, bool all_made);

/* lifecycle.c */
bool lifecycle_revalidate_due(struct rint *ri);
/* creating / editing / periodic: run the tests, then transition. */
void lifecycle_validate(struct rint *ri);
/* deleting: every grant is gone; delete the location, then → deleted. */
void lifecycle_delete_location(struct rint *ri);
/* deleting with no registered location: → deleted. */
void lifecycle_deleted(struct rint *ri);
void lifecycle_clear(struct rint *ri);
