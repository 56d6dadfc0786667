#include "aws/sigv4.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/isotime.h"
#include "core/xalloc.h"

/* Hot path: one canonical request built in a scratch area that keeps its
 * capacity between calls, header/query entries sorted by insertion sort in
 * fixed arrays (a handful of items in practice), one reused SHA-256
 * context, and a cached HMAC context already keyed with the signing key, so
 * a cached signature costs two digests and no allocation of ours. */

#define ALGORITHM "AWS4-HMAC-SHA256"

struct scratch {
	char *p;
	size_t len;
	size_t cap;
};

struct span4 {                  /* offsets into the aux scratch */
	uint32_t noff, nlen;
	uint32_t voff, vlen;
};

struct canon {
	struct scratch out;     /* the canonical request */
	struct scratch aux;     /* encoded query pairs, lower-cased header names and values */
	struct span4 params[SIGV4_MAX_PARAMS];
	struct span4 hdrs[SIGV4_MAX_HEADERS + SIGV4_OUT_MAX];
	size_t n_params;
	size_t n_hdrs;
	uint32_t signed_off;    /* the SignedHeaders list inside out */
	uint32_t signed_len;
	bool have_host;
};

struct key_slot {
	bool used;
	char akid[SIGV4_AKID_MAX + 1];
	char secret[SIGV4_SECRET_MAX + 1];  /* wiped on reuse and free */
	char date[9];
	char region[SIGV4_SCOPE_PART_MAX + 1];
	char service[SIGV4_SCOPE_PART_MAX + 1];
	EVP_MAC_CTX *hmac;                  /* HMAC-SHA256 keyed with kSigning */
};

struct sigv4_signer {
	struct key_slot slots[SIGV4_CACHE_SLOTS];
	unsigned next_slot;     /* round-robin replacement */
	bool cache;
	uint64_t hits;
	uint64_t misses;
	EVP_MD_CTX *md;         /* SHA-256 of body and canonical request */
	EVP_MAC_CTX *kdf;       /* HMAC-SHA256 for the key derivation chain */
	int64_t day;            /* days since the epoch of date8 (INT64_MIN: none) */
	char date8[9];          /* YYYYMMDD of day */
	struct canon c;
};

/* ---- scratch ---- */

static void sc_free(struct scratch *sc)
{
	X_FREE(sc->p);
	sc->len = sc->cap = 0;
}

static int sc_reserve(struct scratch *sc, size_t n)
{
	size_t need, cap;

	if (n > SIGV4_CREQ_MAX || sc->len > SIGV4_CREQ_MAX - n)
		return S3G_ETOOBIG;
	need = sc->len + n;
	if (sc->p && need <= sc->cap)
		return 0;       /* allocated even for n == 0: p + len must be a valid pointer */
	cap = sc->cap ? sc->cap : 2048;
	while (cap < need)
		cap *= 2;
	sc->p = x_realloc(sc->p, cap);
	sc->cap = cap;
	return 0;
}

static int sc_put(struct scratch *sc, const void *p, size_t n)
{
	int r = sc_reserve(sc, n);

	if (r < 0)
		return r;
	if (n)
		memcpy(sc->p + sc->len, p, n);
	sc->len += n;
	return 0;
}

static int sc_putc(struct scratch *sc, char ch)
{
	int r = sc_reserve(sc, 1);

	if (r < 0)
		return r;
	sc->p[sc->len++] = ch;
	return 0;
}

/* ---- encoding ---- */

static const char HEX_UP[] = "0123456789ABCDEF";

/* One table for the byte classes of the hot loops. */
enum {
	C_UNRES = 1,            /* RFC 3986 unreserved */
	C_TCHAR = 2,            /* RFC 9110 token (header names) */
	C_WS    = 4,            /* whitespace collapsed in header values */
};

static const uint8_t cls[256] = {
	['A' ... 'Z'] = C_UNRES | C_TCHAR,
	['a' ... 'z'] = C_UNRES | C_TCHAR,
	['0' ... '9'] = C_UNRES | C_TCHAR,
	['-'] = C_UNRES | C_TCHAR, ['.'] = C_UNRES | C_TCHAR,
	['_'] = C_UNRES | C_TCHAR, ['~'] = C_UNRES | C_TCHAR,
	['!'] = C_TCHAR, ['#'] = C_TCHAR, ['$'] = C_TCHAR, ['%'] = C_TCHAR, ['&'] = C_TCHAR,
	['\''] = C_TCHAR, ['*'] = C_TCHAR, ['+'] = C_TCHAR, ['^'] = C_TCHAR, ['`'] = C_TCHAR,
	['|'] = C_TCHAR,
	[' '] = C_WS, ['\t'] = C_WS, ['\n'] = C_WS, ['\r'] = C_WS, ['\v'] = C_WS, ['\f'] = C_WS,
};

static inline bool unreserved(unsigned char ch)
{
	return cls[ch] & C_UNRES;
}

static inline int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static inline bool is_escape(const char *s, size_t i, size_t n)
{
	return s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
	       hexval((unsigned char)s[i + 2]) >= 0;
}

static inline char *enc_byte(char *o, unsigned char ch, bool keep_slash)
{
	if (unreserved(ch) || (keep_slash && ch == '/')) {
		*o++ = (char)ch;
	} else {
		*o++ = '%';
		*o++ = HEX_UP[ch >> 4];
		*o++ = HEX_UP[ch & 15];
	}
	return o;
}

static int sc_encode(struct scratch *sc, const char *s, size_t n, bool keep_slash)
{
	int r = sc_reserve(sc, 3 * n);
	char *o;

	if (r < 0)
		return r;
	o = sc->p + sc->len;
	for (size_t i = 0; i < n; i++)
		o = enc_byte(o, (unsigned char)s[i], keep_slash);
	sc->len = (size_t)(o - sc->p);
	return 0;
}

/* Percent-decode then encode again (query names and values). */
static int sc_reencode(struct scratch *sc, const char *s, size_t n)
{
	int r = sc_reserve(sc, 3 * n);
	char *o;

	if (r < 0)
		return r;
	o = sc->p + sc->len;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (is_escape(s, i, n)) {
			ch = (unsigned char)(hexval((unsigned char)s[i + 1]) << 4 | hexval((unsigned char)s[i + 2]));
			i += 2;
		}
		o = enc_byte(o, ch, false);
	}
	sc->len = (size_t)(o - sc->p);
	return 0;
}

/* ---- canonical URI ---- */

/* S3: the path as sent. Escapes stay (hex upper-cased), unreserved bytes and
 * '/' stay, anything else (a raw space, UTF-8) is encoded once. */
static int put_s3_path(struct scratch *sc, const char *p, size_t n)
{
	int r = sc_reserve(sc, 3 * n);
	char *o;

	if (r < 0)
		return r;
	o = sc->p + sc->len;
	for (size_t i = 0; i < n; i++) {
		if (is_escape(p, i, n)) {
			*o++ = '%';
			*o++ = HEX_UP[hexval((unsigned char)p[i + 1])];
			*o++ = HEX_UP[hexval((unsigned char)p[i + 2])];
			i += 2;
		} else {
			o = enc_byte(o, (unsigned char)p[i], true);
		}
	}
	sc->len = (size_t)(o - sc->p);
	return 0;
}

/* Other services (botocore remove_dot_segments + quote(safe='/~')): drop
 * empty and "." segments, ".." pops one, keep the leading and (when
 * something remains) the trailing slash, then encode each segment. */
static int put_normalized_path(struct scratch *sc, const char *p, size_t n)
{
	size_t pos, root, i = 0;
	char *o;
	int r = sc_reserve(sc, 3 * n + 2);

	if (r < 0)
		return r;
	o = sc->p;
	pos = sc->len;
	if (p[0] == '/')
		o[pos++] = '/';
	root = pos;
	while (i < n) {
		size_t j = i;

		while (j < n && p[j] != '/')
			j++;
		if (j - i == 2 && p[i] == '.' && p[i + 1] == '.') {
			size_t q = pos;

			while (q > root && o[q - 1] != '/')
				q--;
			pos = q > root ? q - 1 : root;
		} else if (j > i && !(j - i == 1 && p[i] == '.')) {
			if (pos > root)
				o[pos++] = '/';
			for (size_t k = i; k < j; k++)
				pos = (size_t)(enc_byte(o + pos, (unsigned char)p[k], false) - o);
		}
		i = j + 1;
	}
	if (p[n - 1] == '/' && pos > root)
		o[pos++] = '/';
	sc->len = pos;
	return 0;
}

static int put_uri(struct scratch *sc, const char *p, size_t n, bool s3_path)
{
	if (n == 0)
		return sc_putc(sc, '/');
	if (p[0] != '/')
		return S3G_EINVAL;
	return s3_path ? put_s3_path(sc, p, n) : put_normalized_path(sc, p, n);
}

/* ---- sorting (few items; stable insertion sort) ---- */

static inline int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
	int r = an && bn ? memcmp(a, b, an < bn ? an : bn) : 0;

	if (r)
		return r;
	return an < bn ? -1 : an > bn;
}

static int cmp_pair(const char *base, const struct span4 *a, const struct span4 *b, bool by_value)
{
	int r = cmp_bytes(base + a->noff, a->nlen, base + b->noff, b->nlen);

	if (r || !by_value)
		return r;
	return cmp_bytes(base + a->voff, a->vlen, base + b->voff, b->vlen);
}

static void sort_spans(const char *base, struct span4 *v, size_t n, bool by_value)
{
	for (size_t i = 1; i < n; i++) {
		struct span4 x = v[i];
		size_t j = i;

		while (j > 0 && cmp_pair(base, &v[j - 1], &x, by_value) > 0) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

/* ---- canonical query ---- */

static int parse_query(struct canon *c, const char *q, size_t n)
{
	size_t i = 0;
	int r;

	c->n_params = 0;
	while (i < n) {
		size_t j = i, eq;
		struct span4 *sp;

		while (j < n && q[j] != '&')
			j++;
		if (j == i) {
			i = j + 1;
			continue;
		}
		if (c->n_params == SIGV4_MAX_PARAMS)
			return S3G_ETOOBIG;
		for (eq = i; eq < j && q[eq] != '='; eq++)
			;
		sp = &c->params[c->n_params];
		sp->noff = (uint32_t)c->aux.len;
		if ((r = sc_reencode(&c->aux, q + i, eq - i)) < 0)
			return r;
		sp->nlen = (uint32_t)(c->aux.len - sp->noff);
		sp->voff = (uint32_t)c->aux.len;
		if (eq < j && (r = sc_reencode(&c->aux, q + eq + 1, j - eq - 1)) < 0)
			return r;
		sp->vlen = (uint32_t)(c->aux.len - sp->voff);
		c->n_params++;
		i = j + 1;
	}
	sort_spans(c->aux.p, c->params, c->n_params, true);
	return 0;
}

static int put_params(struct scratch *out, const struct canon *c)
{
	int r = 0;

	for (size_t i = 0; i < c->n_params && r == 0; i++) {
		const struct span4 *sp = &c->params[i];

		if (i && (r = sc_putc(out, '&')) < 0)
			break;
		if ((r = sc_put(out, c->aux.p + sp->noff, sp->nlen)) < 0 || (r = sc_putc(out, '=')) < 0)
			break;
		r = sc_put(out, c->aux.p + sp->voff, sp->vlen);
	}
	return r;
}

/* ---- canonical headers ---- */

static inline bool is_ws(unsigned char ch)
{
	return cls[ch] & C_WS;
}

static inline bool is_tchar(unsigned char ch)
{
	return cls[ch] & C_TCHAR;
}

static bool name_is(const char *name, size_t n, const char *lit, size_t litlen)
{
	return n == litlen && memcmp(name, lit, n) == 0;
}

#define NAME_IS(name, n, lit) name_is(name, n, lit, sizeof(lit) - 1)

/* botocore's unsigned set: hop-by-hop headers and those proxies rewrite. */
static bool unsigned_header(const char *name, size_t n)
{
	switch (name[0]) {
	case 'a':
		return NAME_IS(name, n, "authorization");
	case 'c':
		return NAME_IS(name, n, "connection");
	case 'e':
		return NAME_IS(name, n, "expect");
	case 'k':
		return NAME_IS(name, n, "keep-alive");
	case 'p':
		return n >= 6 && memcmp(name, "proxy-", 6) == 0;
	case 't':
		return NAME_IS(name, n, "te") || NAME_IS(name, n, "trailer") ||
		       NAME_IS(name, n, "transfer-encoding");
	case 'u':
		return NAME_IS(name, n, "user-agent") || NAME_IS(name, n, "upgrade");
	case 'x':
		return NAME_IS(name, n, "x-amzn-trace-id");
	default:
		return false;
	}
}

/* Which headers the signer itself adds (a caller copy is a conflict). */
struct added {
	bool content_sha256;
	bool token;
};

static int add_header(struct canon *c, const char *name, const char *value, const struct added *added)
{
	size_t nlen = strlen(name), vlen = strlen(value), a, b;
	struct span4 *sp;
	char *o;
	bool ws = false;
	int r;

	while (nlen && is_ws((unsigned char)name[nlen - 1]))
		nlen--;
	while (nlen && is_ws((unsigned char)*name)) {
		name++;
		nlen--;
	}
	if (nlen == 0)
		return S3G_EINVAL;
	if (c->n_hdrs == SIGV4_MAX_HEADERS + SIGV4_OUT_MAX)
		return S3G_ETOOBIG;
	if ((r = sc_reserve(&c->aux, nlen + vlen)) < 0)
		return r;
	sp = &c->hdrs[c->n_hdrs];
	sp->noff = (uint32_t)c->aux.len;
	sp->nlen = (uint32_t)nlen;
	o = c->aux.p + c->aux.len;
	for (size_t i = 0; i < nlen; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (!is_tchar(ch))
			return S3G_EINVAL;
		o[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	if (unsigned_header(o, nlen))
		return 0;
	if (added && (NAME_IS(o, nlen, "x-amz-date") ||
		      (added->content_sha256 && NAME_IS(o, nlen, "x-amz-content-sha256")) ||
		      (added->token && NAME_IS(o, nlen, "x-amz-security-token"))))
		return S3G_EINVAL;
	if (NAME_IS(o, nlen, "host"))
		c->have_host = true;
	/* trim, collapse inner runs of whitespace (folded lines included) */
	for (a = 0; a < vlen && is_ws((unsigned char)value[a]); a++)
		;
	for (b = vlen; b > a && is_ws((unsigned char)value[b - 1]); b--)
		;
	o += nlen;
	sp->voff = (uint32_t)(c->aux.len + nlen);
	for (size_t i = a; i < b; i++) {
		unsigned char ch = (unsigned char)value[i];

		if (is_ws(ch)) {
			ws = true;
			continue;
		}
		if (ws) {
			*o++ = ' ';
			ws = false;
		}
		*o++ = (char)ch;
	}
	sp->vlen = (uint32_t)((size_t)(o - c->aux.p) - sp->voff);
	c->aux.len = (size_t)(o - c->aux.p);
	c->n_hdrs++;
	return 0;
}

/* "name:v1,v2\n" per distinct name, a blank line, then "a;b;c". */
static int put_headers(struct canon *c)
{
	struct scratch *out = &c->out;
	const char *base = c->aux.p;
	size_t i, start;
	int r;

	sort_spans(base, c->hdrs, c->n_hdrs, false);
	for (i = 0; i < c->n_hdrs; i++) {
		const struct span4 *sp = &c->hdrs[i];
		bool same = i && cmp_pair(base, &c->hdrs[i - 1], sp, false) == 0;

		if (same)
			r = sc_putc(out, ',');
		else if (!(r = i ? sc_putc(out, '\n') : 0) && !(r = sc_put(out, base + sp->noff, sp->nlen)))
			r = sc_putc(out, ':');
		if (r < 0 || (r = sc_put(out, base + sp->voff, sp->vlen)) < 0)
			return r;
	}
	if ((r = sc_put(out, "\n\n", 2)) < 0)
		return r;
	start = out->len;
	for (i = 0; i < c->n_hdrs; i++) {
		const struct span4 *sp = &c->hdrs[i];

		if (i && cmp_pair(base, &c->hdrs[i - 1], sp, false) == 0)
			continue;
		if ((i && (r = sc_putc(out, ';')) < 0) || (r = sc_put(out, base + sp->noff, sp->nlen)) < 0)
			return r;
	}
	c->signed_off = (uint32_t)start;
	c->signed_len = (uint32_t)(out->len - start);
	return sc_putc(out, '\n');
}

/* ---- signer object ---- */

static EVP_MAC_CTX *new_hmac_ctx(void)
{
	EVP_MAC *mac = digest_mac_hmac();
	EVP_MAC_CTX *ctx;
	OSSL_PARAM params[2];

	if (!mac || !(ctx = EVP_MAC_CTX_new(mac)))
		return NULL;
	/* set the digest once: setting it per init would re-fetch it */
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_CTX_set_params(ctx, params)) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void slot_wipe(struct key_slot *k)
{
	k->used = false;
	OPENSSL_cleanse(k->secret, sizeof(k->secret));
	OPENSSL_cleanse(k->akid, sizeof(k->akid));
}

int sigv4_signer_new(struct sigv4_signer **ret)
{
	struct sigv4_signer *s = x_calloc(1, sizeof(*s));

	s->cache = true;
	s->day = INT64_MIN;
	if (!digest_md_sha256() || !(s->md = EVP_MD_CTX_new()) || !(s->kdf = new_hmac_ctx()))
		goto fail;
	for (size_t i = 0; i < SIGV4_CACHE_SLOTS; i++)
		if (!(s->slots[i].hmac = new_hmac_ctx()))
			goto fail;
	*ret = s;
	return 0;
fail:
	sigv4_signer_free(s);
	return S3G_EINVAL;
}

void sigv4_signer_free(struct sigv4_signer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < SIGV4_CACHE_SLOTS; i++) {
		slot_wipe(&s->slots[i]);
		EVP_MAC_CTX_free(s->slots[i].hmac);  /* cleanses the key */
	}
	EVP_MAC_CTX_free(s->kdf);
	EVP_MD_CTX_free(s->md);
	sc_free(&s->c.out);
	sc_free(&s->c.aux);
	x_free(s);
}

void sigv4_signer_set_cache(struct sigv4_signer *s, bool enabled)
{
	s->cache = enabled;
	if (!enabled)
		sigv4_signer_forget(s);
}

void sigv4_signer_forget(struct sigv4_signer *s)
{
	for (size_t i = 0; i < SIGV4_CACHE_SLOTS; i++)
		slot_wipe(&s->slots[i]);
}

void sigv4_signer_stats(const struct sigv4_signer *s, uint64_t *ret_hits, uint64_t *ret_misses)
{
	*ret_hits = s->hits;
	*ret_misses = s->misses;
}

static int hmac_step(EVP_MAC_CTX *ctx, const void *key, size_t keylen, const char *msg, size_t n,
		     uint8_t out[DIGEST_SHA256_LEN])
{
	size_t outlen = 0;

	if (!EVP_MAC_init(ctx, key, keylen, NULL) || !EVP_MAC_update(ctx, (const uint8_t *)msg, n) ||
	    !EVP_MAC_final(ctx, out, &outlen, DIGEST_SHA256_LEN) || outlen != DIGEST_SHA256_LEN)
		return S3G_EINVAL;
	return 0;
}

/* The HMAC context keyed with kSigning for this identity and scope. */
static int signing_ctx(struct sigv4_signer *s, const char *akid, size_t akid_len, const char *secret,
		       size_t secret_len, const char *date, const char *region, const char *service,
		       EVP_MAC_CTX **ret)
{
	uint8_t k[DIGEST_SHA256_LEN], k2[DIGEST_SHA256_LEN];
	char ksecret[SIGV4_SECRET_MAX + 4];
	struct key_slot *slot;
	int r;

	if (s->cache) {
		for (size_t i = 0; i < SIGV4_CACHE_SLOTS; i++) {
			slot = &s->slots[i];
			if (slot->used && memcmp(slot->date, date, 9) == 0 &&
			    strcmp(slot->region, region) == 0 && strcmp(slot->service, service) == 0 &&
			    memcmp(slot->akid, akid, akid_len + 1) == 0 &&
			    memcmp(slot->secret, secret, secret_len + 1) == 0) {
				s->hits++;
				*ret = slot->hmac;
				return 0;
			}
		}
	}
	s->misses++;
	slot = &s->slots[s->next_slot];
	s->next_slot = (s->next_slot + 1) % SIGV4_CACHE_SLOTS;
	slot_wipe(slot);

	memcpy(ksecret, "AWS4", 4);
	memcpy(ksecret + 4, secret, secret_len);
	if ((r = hmac_step(s->kdf, ksecret, 4 + secret_len, date, 8, k)) < 0 ||
	    (r = hmac_step(s->kdf, k, sizeof(k), region, strlen(region), k2)) < 0 ||
	    (r = hmac_step(s->kdf, k2, sizeof(k2), service, strlen(service), k)) < 0 ||
	    (r = hmac_step(s->kdf, k, sizeof(k), "aws4_request", 12, k2)) < 0)
		goto out;
	if (!EVP_MAC_init(slot->hmac, k2, sizeof(k2), NULL)) {
		r = S3G_EINVAL;
		goto out;
	}
	memcpy(slot->akid, akid, akid_len + 1);
	memcpy(slot->secret, secret, secret_len + 1);
	memcpy(slot->date, date, 9);
	strcpy(slot->region, region);
	strcpy(slot->service, service);
	slot->used = s->cache;
	*ret = slot->hmac;
	r = 0;
out:
	OPENSSL_cleanse(ksecret, sizeof(ksecret));
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(k2, sizeof(k2));
	return r;
}

static int sha256_hex(EVP_MD_CTX *md, const void *p, size_t n, char ret[DIGEST_SHA256_HEX_SIZE])
{
	uint8_t h[DIGEST_SHA256_LEN];

	if (!EVP_DigestInit_ex2(md, digest_md_sha256(), NULL) || !EVP_DigestUpdate(md, p, n) ||
	    !EVP_DigestFinal_ex(md, h, NULL))
		return S3G_EINVAL;
	digest_hex(h, sizeof(h), ret);
	return 0;
}

static bool scope_part_ok(const char *p, size_t *ret_len)
{
	size_t n;

	if (!p)
		return false;
	n = strnlen(p, SIGV4_SCOPE_PART_MAX + 1);
	if (n == 0 || n > SIGV4_SCOPE_PART_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '/' || (unsigned char)p[i] <= ' ' || p[i] == 0x7f)
			return false;
	*ret_len = n;
	return true;
}

static void put2(char *o, unsigned v)
{
	o[0] = (char)('0' + v / 10);
	o[1] = (char)('0' + v % 10);
}

/* X-Amz-Date without gmtime_r() (which takes glibc's time zone lock); the
 * calendar date is computed once per day. */
static int format_amz_date(struct sigv4_signer *s, time_t now, char out[17])
{
	int64_t t = (int64_t)now, day;
	unsigned secs;

	/* 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59Z */
	if (t < -62167219200 || t > 253402300799)
		return S3G_EINVAL;
	day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	secs = (unsigned)(t - day * 86400);
	if (day != s->day) {
		int64_t y;
		unsigned m, d;

		isotime_civil_from_days(day, &y, &m, &d);
		if (y < 0 || y > 9999)
			return S3G_EINVAL;
		put2(s->date8, (unsigned)y / 100);
		put2(s->date8 + 2, (unsigned)y % 100);
		put2(s->date8 + 4, m);
		put2(s->date8 + 6, d);
		s->date8[8] = '\0';
		s->day = day;
	}
	memcpy(out, s->date8, 8);
	out[8] = 'T';
	put2(out + 9, secs / 3600);
	put2(out + 11, secs / 60 % 60);
	put2(out + 13, secs % 60);
	out[15] = 'Z';
	out[16] = '\0';
	return 0;
}

static char *put_str(char *o, const char *s, size_t n)
{
	memcpy(o, s, n);
	return o + n;
}

#define PUT_LIT(o, lit) put_str(o, lit, sizeof(lit) - 1)

int sigv4_sign(struct sigv4_signer *s, const struct sigv4_config *cfg, const struct aws_creds *creds,
	       const struct sigv4_request *req, time_t now, struct sigv4_signed *ret,
	       struct buf *ret_creq, struct buf *ret_sts)
{
	struct canon *c = &s->c;
	struct added added = {0};
	char amz_date[17], payload[SIGV4_PAYLOAD_MAX + 1], creq_hash[DIGEST_SHA256_HEX_SIZE];
	char sts[sizeof(ALGORITHM) + 17 + 9 + 2 * (SIGV4_SCOPE_PART_MAX + 1) + 13 + DIGEST_SHA256_HEX_SIZE + 8];
	char scope[9 + 2 * (SIGV4_SCOPE_PART_MAX + 1) + 13];
	uint8_t mac[DIGEST_SHA256_LEN];
	size_t region_len, service_len, akid_len, secret_len, scope_len, sts_len, auth_len, maclen = 0;
	size_t path_len, method_len;
	const char *path, *token = NULL;
	EVP_MAC_CTX *kctx;
	char *o;
	int r;

	if (!cfg || !creds || !req || !scope_part_ok(cfg->region, &region_len) ||
	    !scope_part_ok(cfg->service, &service_len) || !creds->access_key_id || !creds->secret_access_key ||
	    !req->method || !req->method[0] || (req->n_headers && !req->headers) ||
	    (req->body_len && !req->body))
		return S3G_EINVAL;
	akid_len = strnlen(creds->access_key_id, SIGV4_AKID_MAX + 1);
	secret_len = strnlen(creds->secret_access_key, SIGV4_SECRET_MAX + 1);
	if (akid_len == 0 || akid_len > SIGV4_AKID_MAX || secret_len == 0 || secret_len > SIGV4_SECRET_MAX ||
	    strpbrk(creds->access_key_id, "/, \t\r\n"))
		return S3G_EINVAL;
	if (req->n_headers > SIGV4_MAX_HEADERS)
		return S3G_ETOOBIG;
	if ((r = format_amz_date(s, now, amz_date)) < 0)
		return r;
	if (creds->session_token && creds->session_token[0]) {
		token = creds->session_token;
		added.token = !(cfg->flags & SIGV4_OMIT_TOKEN);
	}
	added.content_sha256 = cfg->flags & SIGV4_CONTENT_SHA256;

	/* payload hash */
	if ((cfg->flags & (SIGV4_CONTENT_SHA256 | SIGV4_UNSIGNED_PAYLOAD)) ==
	    (SIGV4_CONTENT_SHA256 | SIGV4_UNSIGNED_PAYLOAD)) {
		memcpy(payload, SIGV4_UNSIGNED_PAYLOAD_VALUE, sizeof(SIGV4_UNSIGNED_PAYLOAD_VALUE));
	} else if (req->payload_hash) {
		size_t n = strnlen(req->payload_hash, SIGV4_PAYLOAD_MAX + 1);

		if (n == 0 || n > SIGV4_PAYLOAD_MAX || strpbrk(req->payload_hash, "\r\n"))
			return S3G_EINVAL;
		memcpy(payload, req->payload_hash, n + 1);
	} else if (req->body_len == 0) {
		memcpy(payload, DIGEST_EMPTY_SHA256_HEX, sizeof(DIGEST_EMPTY_SHA256_HEX));
	} else if ((r = sha256_hex(s->md, req->body, req->body_len, payload)) < 0) {
		return r;
	}

	/* canonical request */
	c->out.len = c->aux.len = 0;
	c->n_hdrs = 0;
	c->have_host = false;
	method_len = strlen(req->method);
	if (strpbrk(req->method, " \t\r\n"))
		return S3G_EINVAL;
	path = req->path ? req->path : "";
	path_len = strlen(path);
	if ((r = sc_put(&c->out, req->method, method_len)) < 0 || (r = sc_putc(&c->out, '\n')) < 0 ||
	    (r = put_uri(&c->out, path, path_len, cfg->flags & SIGV4_S3_PATH)) < 0 ||
	    (r = sc_putc(&c->out, '\n')) < 0)
		return r;
	if (req->query && (r = parse_query(c, req->query, strlen(req->query))) < 0)
		return r;
	if (req->query && (r = put_params(&c->out, c)) < 0)
		return r;
	if ((r = sc_putc(&c->out, '\n')) < 0)
		return r;
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct sigv4_header *h = &req->headers[i];

		if (!h->name || !h->value)
			return S3G_EINVAL;
		if ((r = add_header(c, h->name, h->value, &added)) < 0)
			return r;
	}
	if (!c->have_host)
		return S3G_EINVAL;
	if ((r = add_header(c, "x-amz-date", amz_date, NULL)) < 0 ||
	    (added.content_sha256 && (r = add_header(c, "x-amz-content-sha256", payload, NULL)) < 0) ||
	    (added.token && (r = add_header(c, "x-amz-security-token", token, NULL)) < 0))
		return r;
	if ((r = put_headers(c)) < 0 || (r = sc_put(&c->out, payload, strlen(payload))) < 0)
		return r;
	if ((r = sha256_hex(s->md, c->out.p, c->out.len, creq_hash)) < 0)
		return r;

	/* string to sign */
	o = scope;
	o = put_str(o, amz_date, 8);
	*o++ = '/';
	o = put_str(o, cfg->region, region_len);
	*o++ = '/';
	o = put_str(o, cfg->service, service_len);
	o = PUT_LIT(o, "/aws4_request");
	scope_len = (size_t)(o - scope);
	o = sts;
	o = PUT_LIT(o, ALGORITHM "\n");
	o = put_str(o, amz_date, 16);
	*o++ = '\n';
	o = put_str(o, scope, scope_len);
	*o++ = '\n';
	o = put_str(o, creq_hash, 64);
	sts_len = (size_t)(o - sts);

	/* signature */
	{
		char date8[9];

		memcpy(date8, amz_date, 8);
		date8[8] = '\0';
		if ((r = signing_ctx(s, creds->access_key_id, akid_len, creds->secret_access_key, secret_len,
				     date8, cfg->region, cfg->service, &kctx)) < 0)
			return r;
	}
	if (!EVP_MAC_init(kctx, NULL, 0, NULL) || !EVP_MAC_update(kctx, (const uint8_t *)sts, sts_len) ||
	    !EVP_MAC_final(kctx, mac, &maclen, sizeof(mac)) || maclen != sizeof(mac))
		return S3G_EINVAL;

	auth_len = sizeof(ALGORITHM " Credential=") - 1 + akid_len + 1 + scope_len +
		   sizeof(", SignedHeaders=") - 1 + c->signed_len + sizeof(", Signature=") - 1 + 64;
	if (auth_len >= SIGV4_AUTH_SIZE)
		return S3G_ETOOBIG;
	if (ret_creq) {
		buf_reset(ret_creq);
		if ((r = buf_append(ret_creq, c->out.p, c->out.len)) < 0)
			return r;
	}
	if (ret_sts) {
		buf_reset(ret_sts);
		if ((r = buf_append(ret_sts, sts, sts_len)) < 0)
			return r;
	}

	/* all fallible work done: fill the result */
	memcpy(ret->amz_date, amz_date, sizeof(amz_date));
	memcpy(ret->content_sha256, payload, strlen(payload) + 1);
	digest_hex(mac, sizeof(mac), ret->signature);
	o = ret->authorization;
	o = PUT_LIT(o, ALGORITHM " Credential=");
	o = put_str(o, creds->access_key_id, akid_len);
	*o++ = '/';
	o = put_str(o, scope, scope_len);
	o = PUT_LIT(o, ", SignedHeaders=");
	o = put_str(o, c->out.p + c->signed_off, c->signed_len);
	o = PUT_LIT(o, ", Signature=");
	o = put_str(o, ret->signature, 64);
	*o = '\0';
	ret->n_headers = 0;
	ret->headers[ret->n_headers++] = (struct sigv4_header){"X-Amz-Date", ret->amz_date};
	if (added.content_sha256)
		ret->headers[ret->n_headers++] = (struct sigv4_header){"X-Amz-Content-SHA256", ret->content_sha256};
	if (token)
		ret->headers[ret->n_headers++] = (struct sigv4_header){"X-Amz-Security-Token", token};
	ret->headers[ret->n_headers++] = (struct sigv4_header){"Authorization", ret->authorization};
	return 0;
}

/* ---- helpers for request builders ---- */

static void buf_truncate(struct buf *b, size_t len)
{
	b->len = len;
	if (b->data)
		b->data[len] = '\0';
}

int sigv4_uri_encode(const char *s, size_t n, bool keep_slash, struct buf *out)
{
	char chunk[384];
	size_t orig = out->len, k = 0;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		k = (size_t)(enc_byte(chunk + k, (unsigned char)s[i], keep_slash) - chunk);
		if (k > sizeof(chunk) - 3) {
			if ((r = buf_append(out, chunk, k)) < 0)
				goto out;
			k = 0;
		}
	}
	r = buf_append(out, chunk, k);
out:
	if (r < 0)
		buf_truncate(out, orig);
	return r;
}

int sigv4_query_build(const struct sigv4_param *params, size_t n, struct buf *out)
{
	struct canon *c;
	size_t orig = out->len;
	int r = 0;

	if (n > SIGV4_MAX_PARAMS)
		return S3G_ETOOBIG;
	c = x_calloc(1, sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		struct span4 *sp = &c->params[i];

		if (!params[i].name) {
			r = S3G_EINVAL;
			goto out;
		}
		sp->noff = (uint32_t)c->aux.len;
		if ((r = sc_encode(&c->aux, params[i].name, strlen(params[i].name), false)) < 0)
			goto out;
		sp->nlen = (uint32_t)(c->aux.len - sp->noff);
		sp->voff = (uint32_t)c->aux.len;
		/* a bare name is marked by a value span of length UINT32_MAX */
		if (!params[i].value) {
			sp->vlen = UINT32_MAX;
			continue;
		}
		if ((r = sc_encode(&c->aux, params[i].value, strlen(params[i].value), false)) < 0)
			goto out;
		sp->vlen = (uint32_t)(c->aux.len - sp->voff);
	}
	/* sort with bare names as empty values; keep the bare marker */
	for (size_t i = 1; i < n; i++) {
		struct span4 x = c->params[i], xs = x;
		size_t j = i;

		if (xs.vlen == UINT32_MAX)
			xs.vlen = 0;
		while (j > 0) {
			struct span4 y = c->params[j - 1];

			if (y.vlen == UINT32_MAX)
				y.vlen = 0;
			if (cmp_pair(c->aux.p, &y, &xs, true) <= 0)
				break;
			c->params[j] = c->params[j - 1];
			j--;
		}
		c->params[j] = x;
	}
	for (size_t i = 0; i < n; i++) {
		const struct span4 *sp = &c->params[i];

		if ((i && (r = buf_append(out, "&", 1)) < 0) ||
		    (r = buf_append(out, c->aux.p + sp->noff, sp->nlen)) < 0)
			goto out;
		if (sp->vlen != UINT32_MAX && ((r = buf_append(out, "=", 1)) < 0 ||
					       (r = buf_append(out, c->aux.p + sp->voff, sp->vlen)) < 0))
			goto out;
	}
	if (n == 0)
		r = buf_append(out, "", 0);
out:
	if (r < 0)
		buf_truncate(out, orig);
	sc_free(&c->aux);
	x_free(c);
	return r;
}

int sigv4_canonical_query(const char *query, size_t len, struct buf *out)
{
	struct canon *c = x_calloc(1, sizeof(*c));
	int r;

	if ((r = parse_query(c, query, len)) == 0 && (r = put_params(&c->out, c)) == 0)
		r = buf_append(out, c->out.p ? c->out.p : "", c->out.len);
	sc_free(&c->out);
	sc_free(&c->aux);
	x_free(c);
	return r;
}

int sigv4_canonical_uri(const char *path, size_t len, bool s3_path, struct buf *out)
{
	struct scratch sc = {0};
	int r;

	if (memchr(path, '\0', len))
		return S3G_EINVAL;
	if ((r = put_uri(&sc, path, len, s3_path)) == 0)
		r = buf_append(out, sc.p, sc.len);
	sc_free(&sc);
	return r;
}

/* ---- checksum headers ---- */

static const char *const checksum_names[SIGV4_CHECKSUM_MAX_] = {
	[SIGV4_CHECKSUM_MD5] = "Content-MD5",
	[SIGV4_CHECKSUM_CRC32] = "x-amz-checksum-crc32",
};

const char *sigv4_checksum_name(enum sigv4_checksum kind)
{
	if ((unsigned)kind >= SIGV4_CHECKSUM_MAX_)
		return "?";
	return checksum_names[kind];
}

int sigv4_checksum_header(enum sigv4_checksum kind, const void *body, size_t len,
			  char value[SIGV4_CHECKSUM_SIZE], struct sigv4_header *ret)
{
	int r = 0;

	switch (kind) {
	case SIGV4_CHECKSUM_MD5:
		r = digest_md5_b64(body, len, value);
		break;
	case SIGV4_CHECKSUM_CRC32:
		digest_crc32_b64(body, len, value);
		break;
	default:
		return S3G_EINVAL;
	}
	if (r < 0)
		return r;
	ret->name = checksum_names[kind];
	ret->value = value;
	return 0;
}
