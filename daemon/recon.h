/* recon.h — the reconciler in the daemon: change-queue keys → core → AWS →
 * store, per integration, on the loop.
 *
 * One struct rint per integration (created on discovery at start or when a
 * queue key names it). A "pass" is the unit of work: load the inputs, the
 * recorded grants and intents (store/recon.h, blocking calls on a worker
 * thread with the integration's own connection, which also holds its
 * advisory lock: one writer per integration across daemons), then by
 * status:
 *   enabled / recurringValidationError  (resync: list the instance's grants,
 *       keep the managed location's, record them) → core desired/diff/plan/
 *       quota → execute: intents recorded before each CreateAccessGrant,
 *       token bucket + in-flight cap, per-step backoff, make-before-break
 *       (a replacing delete waits for its create), results and audit rows
 *       committed in batches, subscription statuses and health at the end;
 *   creating / editing  the validation tests, CreateAccessGrantsLocation,
 *       then enabled | createError | editError;
 *   deleting / deleteError  delete every grant of the location, then the
 *       location, then deleted.
 * Keys claimed before a pass starts are acked when it succeeds and
 * released with backoff when it fails; keys claimed meanwhile trigger one
 * more pass. A resync pass runs at start and every resync_interval plus a
 * random jitter.
 *
 * recond_consume() takes claimed items and gives each back exactly once
 * with watch_ack()/watch_release() — until recond_close(), after which it
 * holds no item (watch_close releases them). Loop thread only.
 */
#pragma once
#include <stddef.h>

#include "core/err.h"
#include "daemon/watch.h"

struct daemon;
struct buf;

int recond_start(struct daemon *d) S3G_WUR;
void recond_apply(struct daemon *d);     /* reload */
/* Drain: no new passes; passes in flight finish their in-flight calls,
 * commit and end (each holds one unit of daemon work). */
void recond_stop(struct daemon *d);
/* Finish: drop every item reference, cancel AWS calls, free when idle. */
void recond_close(struct daemon *d);
void recond_status(const struct daemon *d, struct buf *b);
void recond_consume(struct daemon *d, struct watch *w, struct watch_item *const *items, size_t n);
