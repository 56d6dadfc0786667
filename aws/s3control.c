/* s3control.c — S3 Control Access Grants operations over aws/client. */
#include "aws/s3control.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/xalloc.h"

#define API "/v20180820"
#define QUERY_MAX (16u * 1024)
#define NFILTER 5

enum okind {
	K_DONE,
	K_GRANT,
	K_GRANT_LIST,
	K_LOC,
	K_LOC_LIST,
	K_INST,
	K_INST_LIST,
};

enum pager {
	PAGER_NONE,
	PAGER_ALL,
	PAGER_PAGES,
};

struct op {
	enum okind kind;
	enum pager pager;
	void (*cb)(void);                /* typed callback, cast by kind */
	void *user;
	struct aws_client *cl;
	union {
		struct shapes_grant g;
		struct shapes_grant_list gl;
		struct shapes_location l;
		struct shapes_location_list ll;
		struct shapes_instance i;
		struct shapes_instance_list il;
	} out;
	union {                          /* PAGER_ALL accumulation */
		struct shapes_grant_list gl;
		struct shapes_location_list ll;
		struct shapes_instance_list il;
	} acc;
	char *filter[NFILTER];           /* grants: the filter; locations: [0] = scope */
	unsigned max_results;
};

static const char *const filter_names[NFILTER] = {
	"granteetype", "granteeidentifier", "permission", "grantscope", "application_arn",
};

/* ---- parse trampolines ------------------------------------------------------ */

#define WHY(xe, why, n) snprintf(why, n, "%s", (xe).reason[0] ? (xe).reason : "")

static int parse_grant(const char *b, size_t n, const struct http_response *resp, void *out, char *why, size_t wl)
{
	struct xml_error xe = {0};
	int r = shapes_parse_grant(b, n, out, &xe);

	(void)resp;
	if (r < 0)
		WHY(xe, why, wl);
	return r;
}

static int parse_grant_list(const char *b, size_t n, const struct http_response *resp, void *out, char *why,
			    size_t wl)
{
	struct xml_error xe = {0};
	int r = shapes_parse_grant_list(b, n, out, &xe);

	(void)resp;
	if (r < 0)
		WHY(xe, why, wl);
	return r;
}

static int parse_loc(const char *b, size_t n, const struct http_response *resp, void *out, char *why, size_t wl)
{
	struct xml_error xe = {0};
	int r = shapes_parse_location(b, n, out, &xe);

	(void)resp;
	if (r < 0)
		WHY(xe, why, wl);
	return r;
}

static int parse_loc_list(const char *b, size_t n, const struct http_response *resp, void *out, char *why,
			  size_t wl)
{
	struct xml_error xe = {0};
	int r = shapes_parse_location_list(b, n, out, &xe);

	(void)resp;
	if (r < 0)
		WHY(xe, why, wl);
	return r;
}

static int parse_inst(const char *b, size_t n, const struct http_response *resp, void *out, char *why,
		      size_t wl)
{
	struct xml_error xe = {0};
	int r = shapes_parse_instance(b, n, out, &xe);

	(void)resp;
	if (r < 0)
		WHY(xe, why, wl);
	return r;
}

static int parse_inst_list(const char *b, size_t n, const struct http_response *resp, void *out, char *why,
			   size_t wl)
{
	struct xml_error xe = {0};
	int r = shapes_parse_instance_list(b, n, out, &xe);

	(void)resp;
	if (r < 0)
		WHY(xe, why, wl);
	return r;
}

static const aws_parse_cb parsers[] = {
	[K_DONE] = NULL,
	[K_GRANT] = parse_grant,
	[K_GRANT_LIST] = parse_grant_list,
	[K_LOC] = parse_loc,
	[K_LOC_LIST] = parse_loc_list,
	[K_INST] = parse_inst,
	[K_INST_LIST] = parse_inst_list,
};

/* ---- op life ----------------------------------------------------------------- */

static void op_clear_out(struct op *o)
{
	switch (o->kind) {
	case K_GRANT: shapes_grant_clear(&o->out.g); break;
	case K_GRANT_LIST: shapes_grant_list_clear(&o->out.gl); break;
	case K_LOC: shapes_location_clear(&o->out.l); break;
	case K_LOC_LIST: shapes_location_list_clear(&o->out.ll); break;
	case K_INST: shapes_instance_clear(&o->out.i); break;
	case K_INST_LIST: shapes_instance_list_clear(&o->out.il); break;
	default: break;
	}
}

static void op_free(struct op *o)
{
	op_clear_out(o);
	switch (o->kind) {
	case K_GRANT_LIST: shapes_grant_list_clear(&o->acc.gl); break;
	case K_LOC_LIST: shapes_location_list_clear(&o->acc.ll); break;
	case K_INST_LIST: shapes_instance_list_clear(&o->acc.il); break;
	default: break;
	}
	for (int i = 0; i < NFILTER; i++)
		x_free(o->filter[i]);
	x_free(o);
}

static struct op *op_new(struct aws_client *cl, enum okind kind, void (*cb)(void), void *user)
{
	struct op *o = x_calloc(1, sizeof(*o));

	o->kind = kind;
	o->cb = cb;
	o->user = user;
	o->cl = cl;
	return o;
}

static void op_done(int status, const struct aws_result *res, void *user);

static void op_start(struct op *o, const char *name, const char *method, const char *path, const char *query,
		     char *body, size_t body_len)
{
	struct aws_call_spec sp = {
		.op = name, .service = AWS_SERVICE_S3CONTROL, .method = method, .path = path, .query = query,
		.body = body, .body_len = body_len, .body_owned = body != NULL,
		.parse = parsers[o->kind], .out = &o->out, .done = op_done, .user = o,
	};

	aws_call_start(o->cl, &sp);
}

/* Append "/<encoded id>" to a path. */
static char *id_path(const char *base, const char *id)
{
	struct buf b;

	buf_init(&b, 4096);
	if (buf_puts(&b, base) < 0 || buf_puts(&b, "/") < 0 ||
	    sigv4_uri_encode(id ? id : "", id ? strlen(id) : 0, false, &b) < 0) {
		buf_free(&b);
		return x_strdup(base);   /* too long: AWS answers the error */
	}
	return buf_steal(&b);
}

static char *build_query(const struct sigv4_param *pp, size_t n)
{
	struct buf b;

	if (n == 0)
		return NULL;
	buf_init(&b, QUERY_MAX);
	if (sigv4_query_build(pp, n, &b) < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static char *page_query(const struct op *o, const char *next_token, unsigned max_results)
{
	struct sigv4_param pp[NFILTER + 2];
	char mr[16];
	size_t n = 0;

	if (o->kind == K_GRANT_LIST) {
		for (int i = 0; i < NFILTER; i++)
			if (o->filter[i])
				pp[n++] = (struct sigv4_param){filter_names[i], o->filter[i]};
	} else if (o->kind == K_LOC_LIST && o->filter[0]) {
		pp[n++] = (struct sigv4_param){"locationscope", o->filter[0]};
	}
	if (next_token)
		pp[n++] = (struct sigv4_param){"nextToken", next_token};
	if (max_results) {
		snprintf(mr, sizeof(mr), "%u", max_results);
		pp[n++] = (struct sigv4_param){"maxResults", mr};
	}
	return build_query(pp, n);
}

static const char *list_name(enum okind k)
{
	return k == K_GRANT_LIST ? "ListAccessGrants" : k == K_LOC_LIST ? "ListAccessGrantsLocations" :
	       "ListAccessGrantsInstances";
}

static const char *list_path(enum okind k)
{
	return k == K_GRANT_LIST ? API "/accessgrantsinstance/grants" :
	       k == K_LOC_LIST ? API "/accessgrantsinstance/locations" : API "/accessgrantsinstances";
}

static void list_start(struct op *o, const char *next_token, unsigned max_results)
{
	char *q = page_query(o, next_token, max_results);

	op_start(o, list_name(o->kind), "GET", list_path(o->kind), q, NULL, 0);
	x_free(q);
}

#define MOVE_ITEMS(acc, page, type)                                                          \
	do {                                                                                 \
		(acc).items = x_realloc((acc).items, ((acc).n + (page).n) * sizeof(type));   \
		memcpy((acc).items + (acc).n, (page).items, (page).n * sizeof(type));        \
		(acc).n += (page).n;                                                         \
		x_free((page).items);                                                        \
		(page).items = NULL;                                                         \
		(page).n = 0;                                                                \
	} while (0)

/* A page arrived for a pager: 1 when the next page was started. */
static int pager_step(struct op *o, const struct aws_result *res)
{
	const char *next = NULL;
	char *tok = NULL;
	int stop = 0;

	switch (o->kind) {
	case K_GRANT_LIST:
		next = o->out.gl.next_token;
		if (o->pager == PAGER_PAGES)
			stop = ((s3control_grant_page_cb)o->cb)(0, res, &o->out.gl, next == NULL, o->user);
		else
			MOVE_ITEMS(o->acc.gl, o->out.gl, struct shapes_grant);
		break;
	case K_LOC_LIST:
		next = o->out.ll.next_token;
		MOVE_ITEMS(o->acc.ll, o->out.ll, struct shapes_location);
		break;
	case K_INST_LIST:
		next = o->out.il.next_token;
		MOVE_ITEMS(o->acc.il, o->out.il, struct shapes_instance);
		break;
	default:
		return 0;
	}
	if (!next)
		return 0;
	if (stop) {
		/* Tell the caller this was the last call. */
		((s3control_grant_page_cb)o->cb)(0, res, NULL, 1, o->user);
		op_free(o);
		return 1;
	}
	tok = x_strdup(next);
	op_clear_out(o);
	list_start(o, tok, o->max_results);
	x_free(tok);
	return 1;
}

static void op_done(int status, const struct aws_result *res, void *user)
{
	struct op *o = user;

	if (o->pager != PAGER_NONE) {
		if (status == 0 && pager_step(o, res))
			return;
		if (o->pager == PAGER_PAGES) {
			if (status < 0)
				((s3control_grant_page_cb)o->cb)(status, res, NULL, 1, o->user);
			op_free(o);
			return;
		}
		/* PAGER_ALL: the accumulated list, or the failure. */
		switch (o->kind) {
		case K_GRANT_LIST:
			((s3control_grant_list_cb)o->cb)(status, res, status == 0 ? &o->acc.gl : NULL, o->user);
			break;
		case K_LOC_LIST:
			((s3control_location_list_cb)o->cb)(status, res, status == 0 ? &o->acc.ll : NULL, o->user);
			break;
		default:
			((s3control_instance_list_cb)o->cb)(status, res, status == 0 ? &o->acc.il : NULL, o->user);
			break;
		}
		op_free(o);
		return;
	}
	switch (o->kind) {
	case K_DONE:
		((s3control_done_cb)o->cb)(status, res, o->user);
		break;
	case K_GRANT:
		((s3control_grant_cb)o->cb)(status, res, status == 0 ? &o->out.g : NULL, o->user);
		break;
	case K_GRANT_LIST:
		((s3control_grant_list_cb)o->cb)(status, res, status == 0 ? &o->out.gl : NULL, o->user);
		break;
	case K_LOC:
		((s3control_location_cb)o->cb)(status, res, status == 0 ? &o->out.l : NULL, o->user);
		break;
	case K_LOC_LIST:
		((s3control_location_list_cb)o->cb)(status, res, status == 0 ? &o->out.ll : NULL, o->user);
		break;
	case K_INST:
		((s3control_instance_cb)o->cb)(status, res, status == 0 ? &o->out.i : NULL, o->user);
		break;
	case K_INST_LIST:
		((s3control_instance_list_cb)o->cb)(status, res, status == 0 ? &o->out.il : NULL, o->user);
		break;
	}
	op_free(o);
}

/* A request body that could not be built: fail on a later pass with a clear error. */
static void bad_body(struct op *o, const char *name, int r)
{
	aws_call_fail(o->cl, name, r, r == S3G_ETOOBIG ? "request body over its size limit" :
		      "invalid request (a required field is missing or a value is not valid text)", op_done, o);
}

/* ---- operations --------------------------------------------------------------- */

#define CB(f) ((void (*)(void))(f))

void s3control_create_instance(struct aws_client *cl, const struct shapes_create_instance_req *req,
			       s3control_instance_cb cb, void *user)
{
	struct op *o = op_new(cl, K_INST, CB(cb), user);
	struct shapes_create_instance_req empty = {0};
	char *body = NULL;
	size_t len = 0;
	int r = shapes_build_create_instance(req ? req : &empty, &body, &len);

	if (r < 0) {
		bad_body(o, "CreateAccessGrantsInstance", r);
		return;
	}
	op_start(o, "CreateAccessGrantsInstance", "POST", API "/accessgrantsinstance", NULL, body, len);
}

void s3control_get_instance(struct aws_client *cl, s3control_instance_cb cb, void *user)
{
	op_start(op_new(cl, K_INST, CB(cb), user), "GetAccessGrantsInstance", "GET", API "/accessgrantsinstance",
		 NULL, NULL, 0);
}

void s3control_get_instance_for_prefix(struct aws_client *cl, const char *s3prefix, s3control_instance_cb cb,
				       void *user)
{
	struct sigv4_param pp = {"s3prefix", s3prefix ? s3prefix : ""};
	char *q = build_query(&pp, 1);

	op_start(op_new(cl, K_INST, CB(cb), user), "GetAccessGrantsInstanceForPrefix", "GET",
		 API "/accessgrantsinstance/prefix", q, NULL, 0);
	x_free(q);
}

void s3control_list_instances(struct aws_client *cl, const struct s3control_page *page,
			      s3control_instance_list_cb cb, void *user)
{
	struct op *o = op_new(cl, K_INST_LIST, CB(cb), user);

	list_start(o, page ? page->next_token : NULL, page ? page->max_results : 0);
}

void s3control_create_location(struct aws_client *cl, const struct shapes_create_location_req *req,
			       s3control_location_cb cb, void *user)
{
	struct op *o = op_new(cl, K_LOC, CB(cb), user);
	char *body = NULL;
	size_t len = 0;
	int r = req ? shapes_build_create_location(req, &body, &len) : S3G_EINVAL;

	if (r < 0) {
		bad_body(o, "CreateAccessGrantsLocation", r);
		return;
	}
	op_start(o, "CreateAccessGrantsLocation", "POST", API "/accessgrantsinstance/location", NULL, body, len);
}

void s3control_get_location(struct aws_client *cl, const char *id, s3control_location_cb cb, void *user)
{
	char *path = id_path(API "/accessgrantsinstance/location", id);

	op_start(op_new(cl, K_LOC, CB(cb), user), "GetAccessGrantsLocation", "GET", path, NULL, NULL, 0);
	x_free(path);
}

void s3control_list_locations(struct aws_client *cl, const char *location_scope,
			      const struct s3control_page *page, s3control_location_list_cb cb, void *user)
{
	struct op *o = op_new(cl, K_LOC_LIST, CB(cb), user);

	o->filter[0] = location_scope ? x_strdup(location_scope) : NULL;
	list_start(o, page ? page->next_token : NULL, page ? page->max_results : 0);
}

void s3control_delete_location(struct aws_client *cl, const char *id, s3control_done_cb cb, void *user)
{
	char *path = id_path(API "/accessgrantsinstance/location", id);

	op_start(op_new(cl, K_DONE, CB(cb), user), "DeleteAccessGrantsLocation", "DELETE", path, NULL, NULL, 0);
	x_free(path);
}

void s3control_create_grant(struct aws_client *cl, const struct shapes_create_grant_req *req,
			    s3control_grant_cb cb, void *user)
{
	struct op *o = op_new(cl, K_GRANT, CB(cb), user);
	char *body = NULL;
	size_t len = 0;
	int r = req ? shapes_build_create_grant(req, &body, &len) : S3G_EINVAL;

	if (r < 0) {
		bad_body(o, "CreateAccessGrant", r);
		return;
	}
	op_start(o, "CreateAccessGrant", "POST", API "/accessgrantsinstance/grant", NULL, body, len);
}

void s3control_get_grant(struct aws_client *cl, const char *id, s3control_grant_cb cb, void *user)
{
	char *path = id_path(API "/accessgrantsinstance/grant", id);

	op_start(op_new(cl, K_GRANT, CB(cb), user), "GetAccessGrant", "GET", path, NULL, NULL, 0);
	x_free(path);
}

static void set_filter(struct op *o, const struct s3control_grant_filter *f)
{
	if (!f)
		return;
	o->filter[0] = f->grantee_type ? x_strdup(f->grantee_type) : NULL;
	o->filter[1] = f->grantee_id ? x_strdup(f->grantee_id) : NULL;
	o->filter[2] = f->permission ? x_strdup(f->permission) : NULL;
	o->filter[3] = f->grant_scope ? x_strdup(f->grant_scope) : NULL;
	o->filter[4] = f->application_arn ? x_strdup(f->application_arn) : NULL;
}

void s3control_list_grants(struct aws_client *cl, const struct s3control_grant_filter *filter,
			   const struct s3control_page *page, s3control_grant_list_cb cb, void *user)
{
	struct op *o = op_new(cl, K_GRANT_LIST, CB(cb), user);

	set_filter(o, filter);
	list_start(o, page ? page->next_token : NULL, page ? page->max_results : 0);
}

void s3control_delete_grant(struct aws_client *cl, const char *id, s3control_done_cb cb, void *user)
{
	char *path = id_path(API "/accessgrantsinstance/grant", id);

	op_start(op_new(cl, K_DONE, CB(cb), user), "DeleteAccessGrant", "DELETE", path, NULL, NULL, 0);
	x_free(path);
}

void s3control_list_grants_all(struct aws_client *cl, const struct s3control_grant_filter *filter,
			       unsigned max_results, s3control_grant_list_cb cb, void *user)
{
	struct op *o = op_new(cl, K_GRANT_LIST, CB(cb), user);

	o->pager = PAGER_ALL;
	o->max_results = max_results;
	set_filter(o, filter);
	list_start(o, NULL, max_results);
}

void s3control_list_grants_pages(struct aws_client *cl, const struct s3control_grant_filter *filter,
				 unsigned max_results, s3control_grant_page_cb cb, void *user)
{
	struct op *o = op_new(cl, K_GRANT_LIST, CB(cb), user);

	o->pager = PAGER_PAGES;
	o->max_results = max_results;
	set_filter(o, filter);
	list_start(o, NULL, max_results);
}

void s3control_list_locations_all(struct aws_client *cl, const char *location_scope, unsigned max_results,
				  s3control_location_list_cb cb, void *user)
{
	struct op *o = op_new(cl, K_LOC_LIST, CB(cb), user);

	o->pager = PAGER_ALL;
	o->max_results = max_results;
	o->filter[0] = location_scope ? x_strdup(location_scope) : NULL;
	list_start(o, NULL, max_results);
}

void s3control_list_instances_all(struct aws_client *cl, unsigned max_results, s3control_instance_list_cb cb,
				  void *user)
{
	struct op *o = op_new(cl, K_INST_LIST, CB(cb), user);

	o->pager = PAGER_ALL;
	o->max_results = max_results;
	list_start(o, NULL, max_results);
}
