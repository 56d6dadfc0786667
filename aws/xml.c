/* xml.c — bounded XML reader over expat (see xml.h for the contract). */
#include "aws/xml.h"

/* Debian's libexpat is built with DTD support (and so has the billion-laughs
 * guard), but the header only declares the guard when XML_DTD is defined. */
#ifndef XML_DTD
#define XML_DTD
#endif
#include <expat.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/xalloc.h"

const struct xml_limits xml_default_limits = {
	.max_bytes = XML_DEFAULT_MAX_BYTES,
	.max_depth = XML_DEFAULT_MAX_DEPTH,
	.max_elements = XML_DEFAULT_MAX_ELEMENTS,
	.max_text = XML_DEFAULT_MAX_TEXT,
};

#define NONE UINT32_MAX
#define FEED_SLICE (64u * 1024)

/* A node while parsing: offsets and indexes, because the arrays move as they grow. */
struct raw_node {
	uint32_t name;               /* arena offset */
	uint32_t text;               /* arena offset */
	uint32_t text_len;
	uint32_t parent, child, next;
};

struct open_elem {
	uint32_t node;               /* index in raw */
	uint32_t last_child;         /* NONE until the first child */
	struct buf text;             /* direct text so far; max = limits.max_text */
	const char *qname;           /* fast path: the name as written, in the input */
	size_t qlen;
};

/* Nodes are built as raw_node and turned into xml_node in place at the end,
 * so a document holds one node array, not two (page faults dominate the
 * cost of a large page on a virtual machine). */
union slot {
	struct raw_node raw;
	struct xml_node node;
};

struct parse {
	XML_Parser xp;
	const struct xml_limits *lim;
	union slot *slots;
	size_t nraw, raw_cap;
	char *arena;
	size_t alen, acap;           /* bounded: names and decoded text never exceed the input */
	struct open_elem *stack;     /* lim->max_depth entries */
	unsigned depth;
	int err;                     /* first error raised inside a handler */
	const char *why;
};

struct xml_doc {
	union slot *nodes;           /* nodes[0].node is the root */
	size_t count;
	char *arena;
};

/* Expat allocates through xalloc too, so running out of memory takes the
 * daemon's one OOM path instead of surfacing as a parse error. */
static void expat_free(void *ptr)
{
	/* XML_ParserReset frees every slot of its hash tables, mostly NULL. */
	if (ptr)
		x_free(ptr);
}

static const XML_Memory_Handling_Suite expat_mem = {x_malloc, x_realloc, expat_free};

static void fail(struct parse *p, int err, const char *why)
{
	if (!p->err) {
		p->err = err;
		p->why = why;
	}
	if (p->xp)                   /* NULL on the fast path */
		XML_StopParser(p->xp, XML_FALSE);
}

static uint32_t arena_add(struct parse *p, const char *s, size_t n)
{
	size_t off = p->alen;

	if (p->alen + n + 1 > p->acap) {
		size_t cap = p->acap ? p->acap : 4096;

		while (cap < p->alen + n + 1)
			cap *= 2;
		p->arena = x_realloc(p->arena, cap);
		p->acap = cap;
	}
	memcpy(p->arena + off, s, n);
	p->arena[off + n] = '\0';
	p->alen += n + 1;
	return (uint32_t)off;
}

static void XMLCALL on_start(void *user, const XML_Char *name, const XML_Char **attrs)
{
	struct parse *p = user;
	const char *local = strrchr(name, ':');
	struct raw_node *r;
	uint32_t idx;

	(void)attrs;                 /* attributes and xmlns declarations are not used */
	if (p->err)
		return;
	if (p->depth >= p->lim->max_depth) {
		fail(p, S3G_ETOOBIG, "elements nested too deep");
		return;
	}
	if (p->nraw >= p->lim->max_elements || p->nraw >= NONE - 1) {
		fail(p, S3G_ETOOBIG, "too many elements");
		return;
	}
	if (p->depth == 0 && p->nraw > 0) {
		fail(p, S3G_EPARSE, "second root element");   /* expat rejects this too */
		return;
	}
	/* "p:Name" -> "Name"; a name ending in ':' (":" and "a:" are well-formed
	 * without namespace processing) keeps its full spelling, never "". */
	local = local && local[1] ? local + 1 : name;
	if (p->nraw == p->raw_cap) {
		p->raw_cap = p->raw_cap ? p->raw_cap * 2 : 256;
		p->slots = x_realloc(p->slots, p->raw_cap * sizeof(*p->slots));
	}
	idx = (uint32_t)p->nraw++;
	r = &p->slots[idx].raw;
	r->name = arena_add(p, local, strlen(local));
	r->text = 0;
	r->text_len = 0;
	r->child = NONE;
	r->next = NONE;
	if (p->depth > 0) {
		struct open_elem *up = &p->stack[p->depth - 1];

		r->parent = up->node;
		if (up->last_child == NONE)
			p->slots[up->node].raw.child = idx;
		else
			p->slots[up->last_child].raw.next = idx;
		up->last_child = idx;
	} else {
		r->parent = NONE;
	}
	p->stack[p->depth].node = idx;
	p->stack[p->depth].last_child = NONE;
	buf_reset(&p->stack[p->depth].text);
	p->depth++;
}

static void XMLCALL on_end(void *user, const XML_Char *name)
{
	struct parse *p = user;
	struct open_elem *e;
	struct raw_node *r;

	(void)name;
	if (p->err || p->depth == 0)
		return;
	e = &p->stack[--p->depth];
	r = &p->slots[e->node].raw;
	if (e->text.len) {
		r->text = arena_add(p, e->text.data, e->text.len);
		r->text_len = (uint32_t)e->text.len;
	} else {
		r->text = NONE;      /* the shared "" */
	}
}

static void XMLCALL on_text(void *user, const XML_Char *s, int len)
{
	struct parse *p = user;

	if (p->err || p->depth == 0 || len <= 0)
		return;
	if (buf_append(&p->stack[p->depth - 1].text, s, (size_t)len) < 0)
		fail(p, S3G_ETOOBIG, "element text too long");
}

static void XMLCALL on_doctype(void *user, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	fail(user, S3G_EPARSE, "DOCTYPE not allowed");
}

static void XMLCALL on_entity_decl(void *user, const XML_Char *name, int is_param,
				   const XML_Char *value, int value_len, const XML_Char *base,
				   const XML_Char *sysid, const XML_Char *pubid, const XML_Char *notation)
{
	fail(user, S3G_EPARSE, "entity declarations not allowed");
}

static void set_error(struct xml_error *err, unsigned long line, unsigned long col, const char *why)
{
	if (!err)
		return;
	err->line = line;
	err->column = col;
	if (line)
		snprintf(err->reason, sizeof(err->reason), "line %lu, column %lu: %s", line, col, why);
	else
		snprintf(err->reason, sizeof(err->reason), "%s", why);
}

static struct xml_doc *build_doc(struct parse *p)
{
	struct xml_doc *d = x_calloc(1, sizeof(*d));
	static const char empty[] = "";

	d->count = p->nraw;
	d->nodes = p->slots;
	d->arena = p->arena;
	p->slots = NULL;
	p->arena = NULL;
	for (size_t i = 0; i < d->count; i++) {
		const struct raw_node r = d->nodes[i].raw;   /* a copy: the slot is overwritten */
		struct xml_node *n = &d->nodes[i].node;

		n->name = d->arena + r.name;
		n->text = r.text == NONE ? empty : d->arena + r.text;
		n->text_len = r.text_len;
		n->parent = r.parent == NONE ? NULL : &d->nodes[r.parent].node;
		n->child = r.child == NONE ? NULL : &d->nodes[r.child].node;
		n->next = r.next == NONE ? NULL : &d->nodes[r.next].node;
	}
	return d;
}

/* ---- the fast path ----
 *
 * AWS answers are small, ASCII and use a narrow slice of XML, and expat
 * spent ~65 instructions a byte on them (a third of the AWS client's own
 * code per request). fast_parse builds the same tree with the same handlers
 * when the whole document stays inside that slice, and gives up at the first
 * byte outside it, leaving the document to expat from the start. It never
 * rejects anything: what is well-formed, every error and its text stay
 * expat's. The slice:
 *   - at byte 0, optionally exactly <?xml version="1.0" encoding="UTF-8"?>
 *     or <?xml version="1.0"?>; then space, tab or LF around the root;
 *   - start tags with ASCII names ([A-Za-z_:][A-Za-z0-9_:.-]*) and attributes
 *     name="value" or name='value' (whitespace before each, distinct names,
 *     values of printable ASCII, tab or LF without '<' or '&');
 *     empty-element tags; end tags matching the open one, with optional
 *     whitespace before '>';
 *   - character data of printable ASCII, tab and LF (no CR, which XML
 *     normalises), without "]]>", with the five predefined entities;
 *   - within the limits (a limit error, with its position, is expat's).
 * Anything else (comments, CDATA, character references, processing
 * instructions, DOCTYPE, non-ASCII bytes) goes to expat. */
#define FAST_NAME_MAX 256
#define FAST_ATTS 16

/* Byte classes for the fast path (ASCII only; every byte >= 0x80 is in none). */
enum {
	FC_TEXT = 1,                 /* character data as is: printable ASCII but '<' '&' '>', tab, LF */
	FC_NAME = 2,                 /* [A-Za-z0-9_:.-] */
	FC_START = 4,                /* [A-Za-z_:] */
	FC_WS = 8,                   /* space, tab, LF */
	FC_ATTR = 16,                /* in an attribute value: printable ASCII but '<' '&', tab, LF */
};

static unsigned char fast_class[256];
static pthread_once_t fast_once = PTHREAD_ONCE_INIT;

static void fast_class_init(void)
{
	for (int c = 0x20; c < 0x7f; c++) {
		fast_class[c] |= FC_TEXT | FC_ATTR;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':')
			fast_class[c] |= FC_START | FC_NAME;
		if ((c >= '0' && c <= '9') || c == '-' || c == '.')
			fast_class[c] |= FC_NAME;
	}
	fast_class['<'] &= (unsigned char)~(FC_TEXT | FC_ATTR);
	fast_class['&'] &= (unsigned char)~(FC_TEXT | FC_ATTR);
	fast_class['>'] &= (unsigned char)~FC_TEXT;     /* checked for "]]>" */
	fast_class['\t'] |= FC_TEXT | FC_ATTR | FC_WS;
	fast_class['\n'] |= FC_TEXT | FC_ATTR | FC_WS;
	fast_class[' '] |= FC_WS;
}

static int fast_is(char c, unsigned cls)
{
	return fast_class[(unsigned char)c] & cls;
}

static const char *fast_entity(const char *q, const char *e, const char **ret)
{
	static const struct {
		const char *ref;
		const char *ch;
	} ents[] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}};

	for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
		size_t n = strlen(ents[i].ref);

		if ((size_t)(e - q) >= n && memcmp(q, ents[i].ref, n) == 0) {
			*ret = ents[i].ch;
			return q + n;
		}
	}
	return NULL;
}

/* A start tag from just after '<'; returns the byte after it, or NULL to
 * give up. */
static const char *fast_start_tag(struct parse *p, const char *q, const char *e)
{
	const char *n = q, *an[FAST_ATTS];
	size_t nl, al[FAST_ATTS], na = 0;
	char name[FAST_NAME_MAX];
	int empty = 0;

	while (q < e && fast_is(*q, FC_NAME))
		q++;
	nl = (size_t)(q - n);
	if (nl >= sizeof(name))
		return NULL;
	for (;;) {
		const char *ws = q, *a;
		char quote;

		while (q < e && fast_is(*q, FC_WS))
			q++;
		if (q >= e)
			return NULL;
		if (*q == '>' || *q == '/')
			break;
		if (q == ws || !fast_is(*q, FC_START) || na == FAST_ATTS)
			return NULL;
		a = q;
		while (q < e && fast_is(*q, FC_NAME))
			q++;
		for (size_t i = 0; i < na; i++)
			if (al[i] == (size_t)(q - a) && memcmp(an[i], a, al[i]) == 0)
				return NULL;
		an[na] = a;
		al[na++] = (size_t)(q - a);
		while (q < e && fast_is(*q, FC_WS))
			q++;
		if (q >= e || *q != '=')
			return NULL;
		q++;
		while (q < e && fast_is(*q, FC_WS))
			q++;
		if (q >= e || (*q != '"' && *q != '\''))
			return NULL;
		quote = *q++;
		while (q < e && *q != quote) {
			if (!fast_is(*q, FC_ATTR))
				return NULL;
			q++;
		}
		if (q >= e)
			return NULL;
		q++;
	}
	if (*q == '/') {
		if (q + 1 >= e || q[1] != '>')
			return NULL;
		empty = 1;
		q += 2;
	} else {
		q++;
	}
	memcpy(name, n, nl);
	name[nl] = '\0';
	on_start(p, name, NULL);
	if (p->err)
		return NULL;
	p->stack[p->depth - 1].qname = n;
	p->stack[p->depth - 1].qlen = nl;
	if (empty)
		on_end(p, name);
	return p->err ? NULL : q;
}

/* 1: the tree is built; 0: give the document to expat (p is left dirty). */
static int fast_parse(struct parse *p, const char *s, size_t len)
{
	static const char decl_enc[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
	static const char decl[] = "<?xml version=\"1.0\"?>";
	const char *q = s, *e = s + len;
	int seen_root = 0;

	if (!s)
		return 0;
	pthread_once(&fast_once, fast_class_init);
	if (len >= sizeof(decl_enc) - 1 && memcmp(q, decl_enc, sizeof(decl_enc) - 1) == 0)
		q += sizeof(decl_enc) - 1;
	else if (len >= sizeof(decl) - 1 && memcmp(q, decl, sizeof(decl) - 1) == 0)
		q += sizeof(decl) - 1;
	while (q < e) {
		if (*q == '<') {
			if (q + 1 >= e)
				return 0;
			if (q[1] == '/') {
				const struct open_elem *top;
				const char *n = q + 2;

				if (p->depth == 0)
					return 0;
				top = &p->stack[p->depth - 1];
				q = n;
				while (q < e && fast_is(*q, FC_NAME))
					q++;
				if ((size_t)(q - n) != top->qlen || memcmp(n, top->qname, top->qlen) != 0)
					return 0;
				while (q < e && fast_is(*q, FC_WS))
					q++;
				if (q >= e || *q != '>')
					return 0;
				q++;
				on_end(p, NULL);
				continue;
			}
			if (!fast_is(q[1], FC_START) || (p->depth == 0 && seen_root))
				return 0;
			q = fast_start_tag(p, q + 1, e);
			if (!q)
				return 0;
			seen_root = 1;
			continue;
		}
		if (p->depth == 0) {
			if (!fast_is(*q, FC_WS))
				return 0;
			q++;
			continue;
		}
		if (*q == '&') {
			const char *ch;

			q = fast_entity(q, e, &ch);
			if (!q)
				return 0;
			on_text(p, ch, 1);
		} else {
			const char *t = q;

			for (; q < e && *q != '<' && *q != '&'; q++) {
				if (fast_is(*q, FC_TEXT))
					continue;
				if (*q != '>' || (q - s >= 2 && q[-1] == ']' && q[-2] == ']'))
					return 0;
			}
			on_text(p, t, (int)(q - t));
		}
		if (p->err)
			return 0;
	}
	return seen_root && p->depth == 0;
}

/* ---- the reused parser ----
 *
 * One expat parser per thread, reset between documents (XML_ParserReset
 * keeps its buffers, tag list and pools): creating and freeing one per
 * response, each drawing its hash salt with getrandom(2), was a seventh of
 * the client's CPU per request. The salt comes from a per-process random
 * seed instead (same protection against hash flooding, no syscall per
 * document). The open-element stack and its text buffers are kept as
 * well. Parsing never re-enters xml_parse (the handlers are ours), so one
 * per thread is enough. A parser that just read a large document is freed,
 * not kept, so an idle thread holds little. */
#define KEEP_AFTER_BYTES (256u * 1024)
#define KEEP_TEXT_CAP 4096u

struct reuse {
	XML_Parser xp;
	struct open_elem *stack;
	unsigned stack_cap;
};

static pthread_once_t salt_once = PTHREAD_ONCE_INIT;
static pthread_key_t reuse_key;
static unsigned long salt_seed;
static __thread struct reuse *tl_reuse;

static void reuse_destroy(void *v)
{
	struct reuse *u = v;

	if (!u)
		return;
	if (u->xp)
		XML_ParserFree(u->xp);
	for (unsigned i = 0; i < u->stack_cap; i++)
		buf_free(&u->stack[i].text);
	x_free(u->stack);
	x_free(u);
}

static void salt_init(void)
{
	unsigned long seed = 0;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
		struct timespec ts;

		/* No entropy yet (early boot): expat's own fallback is no better. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		seed = (unsigned long)ts.tv_nsec * 2654435761ul ^ (unsigned long)ts.tv_sec ^
		       (unsigned long)getpid() << 16 ^ (unsigned long)(uintptr_t)&seed;
	}
	salt_seed = seed ? seed : 0x9e3779b97f4a7c15ul;
	(void)pthread_key_create(&reuse_key, reuse_destroy);
}

/* Each document gets a different salt derived from the seed (splitmix64),
 * so the salt of one document tells nothing useful about the next. */
static unsigned long next_salt(void)
{
	static __thread uint64_t counter;
	uint64_t z = (uint64_t)salt_seed + (++counter + (uint64_t)(uintptr_t)&counter) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return z ? (unsigned long)z : 1ul;   /* 0 would make expat draw its own */
}

static struct reuse *reuse_get(unsigned depth)
{
	struct reuse *u = tl_reuse;

	pthread_once(&salt_once, salt_init);
	if (!u) {
		u = x_calloc(1, sizeof(*u));
		tl_reuse = u;
		(void)pthread_setspecific(reuse_key, u);   /* freed at thread exit */
	}
	if (depth > u->stack_cap) {
		u->stack = x_realloc(u->stack, depth * sizeof(*u->stack));
		for (unsigned i = u->stack_cap; i < depth; i++)
			buf_init(&u->stack[i].text, 0);
		u->stack_cap = depth;
	}
	return u;
}

/* The thread's parser, fresh or reset, for a document the fast path left. */
static XML_Parser parser_get(struct reuse *u)
{
	if (!u->xp) {
		u->xp = XML_ParserCreate_MM(NULL, &expat_mem, NULL);
		if (!u->xp)
			abort();     /* unreachable: x_malloc does not return NULL */
	} else if (!XML_ParserReset(u->xp, NULL)) {
		XML_ParserFree(u->xp);
		u->xp = XML_ParserCreate_MM(NULL, &expat_mem, NULL);
		if (!u->xp)
			abort();
	}
	return u->xp;
}

/* After a document: drop what a large one left behind. */
static void reuse_put(struct reuse *u, size_t len)
{
	if (len > KEEP_AFTER_BYTES && u->xp) {
		XML_ParserFree(u->xp);
		u->xp = NULL;
	}
	for (unsigned i = 0; i < u->stack_cap; i++)
		if (u->stack[i].text.cap > KEEP_TEXT_CAP)
			buf_free(&u->stack[i].text);
}

static int parse_doc(const char *data, size_t len, const struct xml_limits *limits, int fast,
		     struct xml_doc **ret_doc, struct xml_error *err)
{
	struct parse p = {0};
	struct reuse *u;
	int r = 0;

	p.lim = limits ? limits : &xml_default_limits;
	if (len > p.lim->max_bytes || len > INT_MAX) {
		set_error(err, 0, 0, "document over the size limit");
		return S3G_ETOOBIG;
	}
	if (p.lim->max_depth == 0 || p.lim->max_elements == 0 || p.lim->max_text == 0) {
		set_error(err, 0, 0, "a limit is zero");
		return S3G_EINVAL;
	}
	u = reuse_get(p.lim->max_depth);
	/* Sized once for typical AWS bodies (decoded text plus names never
	 * exceed the input; an element per ~40 bytes), grown only if needed. */
	p.acap = len + 64;           /* small enough for malloc's fast bins */
	p.arena = x_malloc(p.acap);
	p.raw_cap = len / 40 + 16 < p.lim->max_elements ? len / 40 + 16 : p.lim->max_elements;
	p.slots = x_malloc(p.raw_cap * sizeof(*p.slots));
	p.stack = u->stack;
	for (unsigned i = 0; i < p.lim->max_depth; i++) {
		p.stack[i].text.max = p.lim->max_text;
		buf_reset(&p.stack[i].text);
	}
	if (fast) {
		if (fast_parse(&p, data, len))
			goto built;
		/* Start over with expat (the nodes so far are dropped). */
		p.nraw = 0;
		p.alen = 0;
		p.depth = 0;
		p.err = 0;
		p.why = NULL;
	}
	p.xp = parser_get(u);
	/* XML_ParserReset clears handlers, user data, settings and the salt:
	 * everything is set again for each document. */
	XML_SetHashSalt(p.xp, next_salt());
	XML_SetUserData(p.xp, &p);
	XML_SetElementHandler(p.xp, on_start, on_end);
	XML_SetCharacterDataHandler(p.xp, on_text);
	XML_SetStartDoctypeDeclHandler(p.xp, on_doctype);
	XML_SetEntityDeclHandler(p.xp, on_entity_decl);
	XML_SetParamEntityParsing(p.xp, XML_PARAM_ENTITY_PARSING_NEVER);
#if XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 4)
	XML_SetBillionLaughsAttackProtectionMaximumAmplification(p.xp, 10.0f);
	XML_SetBillionLaughsAttackProtectionActivationThreshold(p.xp, 64 * 1024);
#endif

	/* Fed in slices: expat copies its input into its own buffer, and a
	 * slice-sized buffer is reused instead of a document-sized one. */
	for (size_t off = 0;;) {
		size_t n = len - off < FEED_SLICE ? len - off : FEED_SLICE;
		int final = off + n == len;

		if (XML_Parse(p.xp, data ? data + off : "", (int)n, final) != XML_STATUS_OK || p.err)
			break;
		off += n;
		if (final)
			break;
	}
	if (XML_GetErrorCode(p.xp) != XML_ERROR_NONE || p.err) {
		unsigned long line = XML_GetCurrentLineNumber(p.xp);
		unsigned long col = XML_GetCurrentColumnNumber(p.xp) + 1;

		if (p.err) {
			r = p.err;
			set_error(err, line, col, p.why);
		} else {
			r = S3G_EPARSE;
			set_error(err, line, col, XML_ErrorString(XML_GetErrorCode(p.xp)));
		}
		goto out;
	}
	if (p.nraw == 0) {           /* expat reports this already; keep the tree invariant */
		r = S3G_EPARSE;
		set_error(err, 0, 0, "no element found");
		goto out;
	}
built:
	*ret_doc = build_doc(&p);
out:
	reuse_put(u, len);
	x_free(p.slots);
	x_free(p.arena);
	return r;
}

int xml_parse(const char *data, size_t len, const struct xml_limits *limits, struct xml_doc **ret_doc,
	      struct xml_error *err)
{
	return parse_doc(data, len, limits, 1, ret_doc, err);
}

int xml_parse_expat(const char *data, size_t len, const struct xml_limits *limits, struct xml_doc **ret_doc,
		    struct xml_error *err)
{
	return parse_doc(data, len, limits, 0, ret_doc, err);
}

void xml_free(struct xml_doc *doc)
{
	if (!doc)
		return;
	x_free(doc->nodes);
	x_free(doc->arena);
	x_free(doc);
}

const struct xml_node *xml_root(const struct xml_doc *doc)
{
	return doc && doc->count ? &doc->nodes[0].node : NULL;
}

size_t xml_element_count(const struct xml_doc *doc)
{
	return doc ? doc->count : 0;
}

const struct xml_node *xml_child(const struct xml_node *n, const char *name)
{
	if (!n)
		return NULL;
	for (const struct xml_node *c = n->child; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

const struct xml_node *xml_next_same(const struct xml_node *n)
{
	if (!n)
		return NULL;
	for (const struct xml_node *c = n->next; c; c = c->next)
		if (strcmp(c->name, n->name) == 0)
			return c;
	return NULL;
}

const struct xml_node *xml_path(const struct xml_node *n, const char *path)
{
	while (n && *path) {
		const char *slash = strchr(path, '/');
		size_t k = slash ? (size_t)(slash - path) : strlen(path);
		const struct xml_node *c;

		for (c = n->child; c; c = c->next)
			if (strncmp(c->name, path, k) == 0 && c->name[k] == '\0')
				break;
		n = c;
		path += k;
		if (*path == '/')
			path++;
	}
	return n;
}

const char *xml_path_text(const struct xml_node *n, const char *path)
{
	n = xml_path(n, path);
	return n ? n->text : NULL;
}
