/* reload.c — SIGHUP: parse a fresh config whole, validate, swap or keep. */
#include <string.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/recon.h"

#define LOG_CONFIG_MAX_FIELDS 30

void reload_register_secrets(const struct config *cfg, const struct config *extra)
{
	char **a = NULL, **b = NULL, **all;
	size_t na = config_secrets(cfg, &a), nb = extra ? config_secrets(extra, &b) : 0;

	all = x_calloc(na + nb + 1, sizeof(*all));
	for (size_t i = 0; i < na; i++)
		all[i] = a[i];
	for (size_t i = 0; i < nb; i++)
		all[na + i] = b[i];
	log_set_secrets((const char *const *)all, na + nb);
	x_free(all);
	config_secrets_free(a, na);
	config_secrets_free(b, nb);
}

void reload_log_config(const struct config *cfg, const char *msgid, const char *msg)
{
	struct log_field f[LOG_CONFIG_MAX_FIELDS + 2];
	struct config *def;
	size_t n = 0;

	if (!log_enabled(LOG_LEVEL_INFO))
		return;
	def = config_defaults();
	f[n].key = "file";
	f[n++].value = config_file(cfg);
	for (int k = 0; k < CONFIG_KEY_MAX && n < LOG_CONFIG_MAX_FIELDS; k++) {
		if (config_equal(cfg, def, k))
			continue;
		/* Field names: section_name (journal: SECTION_NAME). */
		f[n].key = config_key_label(k);
		f[n++].value = config_display(cfg, k);
	}
	f[n].key = NULL;
	f[n].value = NULL;
	log_info(msgid, f, "%s", msg);
	config_free(def);
}

void reload_apply(struct daemon *d)
{
	int lvl = log_level_parse(config_str(d->cfg, CONFIG_DAEMON_LOG_LEVEL));
	uint64_t every = (uint64_t)config_int(d->cfg, CONFIG_DAEMON_STATUS_INTERVAL);

	if (lvl >= 0)
		log_set_level(lvl);
	if (d->pg)
		pgconn_set_timeouts(d->pg, (uint64_t)config_int(d->cfg, CONFIG_DB_CONNECT_TIMEOUT),
				    (uint64_t)config_int(d->cfg, CONFIG_DB_RECONNECT_MAX_BACKOFF));
	watch_daemon_apply(d);
	recond_apply(d);
	if (d->state == DAEMON_STARTING || d->state == DAEMON_RUNNING)
		uv_timer_start(&d->status_timer, daemon_on_status_timer, every, every);
}

struct change_ctx {
	struct daemon *d;
	const struct config *fresh;
	unsigned applied, restart;
};

static void on_change(void *ud, enum config_key k, bool applied)
{
	struct change_ctx *c = ud;

	if (applied) {
		c->applied++;
		log_info(NULL, LOG_FIELDS({ "key", config_key_label(k) },
					  { "value", config_display(c->fresh, k) }),
			 "configuration changed: %s", config_key_label(k));
	} else {
		const struct config_key_info *ki = config_key_info(k);

		c->restart++;
		c->d->restart_pending[k] = true;
		log_warning(NULL, LOG_FIELDS({ "key", config_key_label(k) }),
			    "restart required for [%s] %s (keeping the running value)",
			    ki->section, ki->name);
	}
}

void reload_run(struct daemon *d)
{
	struct config_errors errs = {0};
	struct config *fresh = NULL;
	struct change_ctx c = { .d = d };
	bool announce = d->state == DAEMON_RUNNING;
	char *st;
	int r;

	if (announce)
		notify_reloading();
	log_info(LOG_MID_RELOAD, LOG_FIELDS({ "file", d->config_path }), "reloading configuration");
	r = config_load(d->config_path, &fresh, &errs);
	if (r < 0) {
		char *first = errs.n ? config_error_format(&errs.v[0]) : x_strdup(d->config_path);

		for (size_t i = 0; i < errs.n; i++) {
			char line[24];

			log_warning(LOG_MID_RELOAD_FAILED,
				    LOG_FIELDS({ "file", errs.v[i].file },
					       { "line", log_int(line, sizeof(line), errs.v[i].line) },
					       { "key", errs.v[i].key }, { "reason", errs.v[i].reason }),
				    "config reload failed, keeping the running configuration: %s:%d: %s%s%s",
				    errs.v[i].file, errs.v[i].line, errs.v[i].key,
				    *errs.v[i].key ? ": " : "", errs.v[i].reason);
		}
		x_free(d->reload_error);
		if (errs.n + errs.dropped > 1)
			d->reload_error = x_asprintf("config reload failed (%s; %zu more); running with the previous config",
						     first, errs.n + errs.dropped - 1);
		else
			d->reload_error = x_asprintf("config reload failed (%s); running with the previous config",
						     first);
		x_free(first);
		config_errors_free(&errs);
		goto out;
	}
	/* Secrets of the new file (including restart-only values that will
	 * not be applied) are scrubbed from now on too. */
	reload_register_secrets(d->cfg, fresh);
	memset(d->restart_pending, 0, sizeof(d->restart_pending));
	c.fresh = fresh;
	config_carry_restart_only(fresh, d->cfg, on_change, &c);
	config_free(d->cfg);
	d->cfg = fresh;
	X_FREE(d->reload_error);
	reload_apply(d);
	{
		char a[24], rr[24];

		log_notice(LOG_MID_RELOAD, LOG_FIELDS({ "file", d->config_path },
						      { "applied", log_int(a, sizeof(a), c.applied) },
						      { "restart_required", log_int(rr, sizeof(rr), c.restart) }),
			   "configuration reloaded");
	}
	reload_log_config(d->cfg, LOG_MID_CONFIG, "configuration loaded");
out:
	st = daemon_status_line(d);
	if (announce)
		notify_ready(st);
	else
		notify_status(st);
	x_free(st);
}
