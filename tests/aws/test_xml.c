/* Bounded XML reader: tree shape, names, text decoding, limits, hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aws/xml.h"
#include "core/buf.h"
#include "core/xalloc.h"

static struct xml_doc *parse_ok(const char *s)
{
	struct xml_doc *d = NULL;
	struct xml_error e = {0};
	int r = xml_parse(s, strlen(s), NULL, &d, &e);

	if (r != 0)
		fail_msg("parse failed: %s: %s", err_name(r), e.reason);
	assert_non_null(d);
	return d;
}

static int parse_err(const char *s, size_t len, const struct xml_limits *lim, struct xml_error *e)
{
	struct xml_doc *d = NULL;
	int r = xml_parse(s, len, lim, &d, e);

	assert_null(d);              /* never written on failure */
	return r;
}

static void test_tree(void **state)
{
	struct xml_doc *d = parse_ok(
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListAccessGrantsResult xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\">\n"
		"  <NextToken>tok</NextToken>\n"
		"  <AccessGrantsList>\n"
		"    <AccessGrant><AccessGrantId>a</AccessGrantId></AccessGrant>\n"
		"    <Other/>\n"
		"    <AccessGrant><AccessGrantId>b</AccessGrantId></AccessGrant>\n"
		"  </AccessGrantsList>\n"
		"</ListAccessGrantsResult>\n");
	const struct xml_node *root = xml_root(d), *g;

	assert_string_equal(root->name, "ListAccessGrantsResult");
	assert_null(root->parent);
	assert_int_equal(xml_element_count(d), 8);
	assert_string_equal(xml_path_text(root, "NextToken"), "tok");
	g = xml_path(root, "AccessGrantsList/AccessGrant");
	assert_non_null(g);
	assert_string_equal(xml_path_text(g, "AccessGrantId"), "a");
	g = xml_next_same(g);
	assert_non_null(g);
	assert_string_equal(xml_path_text(g, "AccessGrantId"), "b");
	assert_ptr_equal(g->parent, xml_child(root, "AccessGrantsList"));
	assert_null(xml_next_same(g));
	assert_null(xml_path(root, "AccessGrantsList/Nope"));
	assert_null(xml_path_text(root, "Nope"));
	assert_null(xml_child(NULL, "x"));
	assert_null(xml_next_same(NULL));
	assert_string_equal(xml_path_text(root, "AccessGrantsList/Other"), "");
	assert_ptr_equal(xml_path(root, ""), root);
	xml_free(d);
	xml_free(NULL);
	assert_null(xml_root(NULL));
}

static void test_namespaces(void **state)
{
	struct xml_doc *d = parse_ok(
		"<s3:ListBucketResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\" a=\"1\">"
		"<s3:Name>b</s3:Name><Key xmlns=\"urn:x\">k</Key><x:y:Deep>z</x:y:Deep>"
		"</s3:ListBucketResult>");
	const struct xml_node *root = xml_root(d);

	assert_string_equal(root->name, "ListBucketResult");
	assert_string_equal(xml_path_text(root, "Name"), "b");
	assert_string_equal(xml_path_text(root, "Key"), "k");
	assert_string_equal(xml_path_text(root, "Deep"), "z");
	xml_free(d);

	/* names that end in ':' keep their spelling (fuzz finding: "<:/>" gave "") */
	d = parse_ok("<:><a:>x</a:></:>");
	assert_string_equal(xml_root(d)->name, ":");
	assert_string_equal(xml_path_text(xml_root(d), "a:"), "x");
	xml_free(d);
}

static void test_text(void **state)
{
	struct xml_doc *d = parse_ok(
		"<R><E>&quot;9b2c&quot; &amp; &lt;&gt; &apos;</E>"
		"<C><![CDATA[a<b>&amp;]]>tail</C>"
		"<M>one<Kid>k</Kid>two</M>"
		"<U>&#x263A;&#233;\xc3\xa9</U>"
		"<L>line1\r\nline2</L>"
		"<S>  spaced  </S></R>");
	const struct xml_node *root = xml_root(d), *m;

	assert_string_equal(xml_path_text(root, "E"), "\"9b2c\" & <> '");
	assert_string_equal(xml_path_text(root, "C"), "a<b>&amp;tail");
	m = xml_child(root, "M");
	assert_string_equal(m->text, "onetwo");
	assert_int_equal(m->text_len, 6);
	assert_string_equal(xml_path_text(m, "Kid"), "k");
	assert_string_equal(xml_path_text(root, "U"), "\xe2\x98\xba\xc3\xa9\xc3\xa9");
	assert_string_equal(xml_path_text(root, "L"), "line1\nline2");   /* XML end-of-line handling */
	assert_string_equal(xml_path_text(root, "S"), "  spaced  ");
	xml_free(d);
}

static void test_limits(void **state)
{
	struct xml_limits lim = {.max_bytes = 64, .max_depth = 3, .max_elements = 4, .max_text = 8};
	struct xml_error e = {0};
	const char *s;

	s = "<a><b>12345678</b></a>";
	{
		struct xml_doc *d = NULL;

		assert_int_equal(xml_parse(s, strlen(s), &lim, &d, &e), 0);
		xml_free(d);
	}
	s = "<a><b>123456789</b></a>";
	assert_int_equal(parse_err(s, strlen(s), &lim, &e), S3G_ETOOBIG);
	assert_non_null(strstr(e.reason, "text too long"));
	/* text split by a child still counts as one element's text */
	s = "<a>12345<b/>6789</a>";
	assert_int_equal(parse_err(s, strlen(s), &lim, &e), S3G_ETOOBIG);
	s = "<a><b><c><d/></c></b></a>";
	assert_int_equal(parse_err(s, strlen(s), &lim, &e), S3G_ETOOBIG);
	assert_non_null(strstr(e.reason, "too deep"));
	assert_int_equal(e.line, 1);
	s = "<a><b/><b/><b/><b/></a>";
	assert_int_equal(parse_err(s, strlen(s), &lim, &e), S3G_ETOOBIG);
	assert_non_null(strstr(e.reason, "too many elements"));
	s = "<a>0123456789012345678901234567890123456789012345678901234567890123456789</a>";
	assert_int_equal(parse_err(s, strlen(s), &lim, &e), S3G_ETOOBIG);
	assert_non_null(strstr(e.reason, "size limit"));
	lim.max_text = 0;
	assert_int_equal(parse_err("<a/>", 4, &lim, &e), S3G_EINVAL);
}

static void test_deep_default(void **state)
{
	struct buf b;
	struct xml_error e = {0};

	buf_init(&b, 0);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(buf_puts(&b, "<a>"), 0);
	assert_int_equal(parse_err(b.data, b.len, NULL, &e), S3G_ETOOBIG);
	buf_free(&b);
}

static void test_malformed(void **state)
{
	static const struct {
		const char *doc;
		const char *why;
	} cases[] = {
		{"", "no element"},
		{"   ", "no element"},
		{"<a><b></a>", "mismatched tag"},
		{"<a><b>text", "line 1"},                      /* truncated */
		{"<ListAccessGrantsResult><NextToken>x</NextTo", "line 1"},
		{"<a>&nosuch;</a>", "undefined entity"},
		{"<a>&#0;</a>", "reference to invalid character"},
		{"<a></a><b></b>", "junk after document element"},
		{"not xml", "syntax error"},
		{"<a>\xff\xfe</a>", "invalid token"},
		{"<a x='1' x='2'/>", "duplicate attribute"},
		{"<a>\n<b>\n</c></a>", "line 3"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct xml_error e = {0};
		int r = parse_err(cases[i].doc, strlen(cases[i].doc), NULL, &e);

		if (r != S3G_EPARSE || !strstr(e.reason, cases[i].why))
			fail_msg("case %zu: %s: %s", i, err_name(r), e.reason);
	}
	/* embedded NUL in the input */
	{
		struct xml_error e = {0};

		assert_int_equal(parse_err("<a>x\0y</a>", 10, NULL, &e), S3G_EPARSE);
	}
	/* err may be NULL */
	assert_int_equal(parse_err("<a>", 3, NULL, NULL), S3G_EPARSE);
}

static void test_doctype(void **state)
{
	static const char *const bombs[] = {
		"<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
		" <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
		" <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
		" <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
		"]>\n<lolz>&lol3;</lolz>",
		"<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>",
		"<!DOCTYPE r SYSTEM \"http://example.com/r.dtd\"><r/>",
		"<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://example.com/p\"> %p;]><r/>",
		"<!DOCTYPE r><r/>",
	};
	for (size_t i = 0; i < sizeof(bombs) / sizeof(bombs[0]); i++) {
		struct xml_error e = {0};
		int r = parse_err(bombs[i], strlen(bombs[i]), NULL, &e);

		if (r != S3G_EPARSE || !strstr(e.reason, "DOCTYPE"))
			fail_msg("bomb %zu: %s: %s", i, err_name(r), e.reason);
	}
}

static void test_utf16(void **state)
{
	/* "<a>é</a>" as UTF-16LE with a BOM: expat converts to UTF-8 */
	static const char doc[] = "\xff\xfe<\0a\0>\0\xe9\0<\0/\0a\0>\0";
	struct xml_doc *d = NULL;
	struct xml_error e = {0};

	assert_int_equal(xml_parse(doc, sizeof(doc) - 1, NULL, &d, &e), 0);
	assert_string_equal(xml_root(d)->text, "\xc3\xa9");
	xml_free(d);
}

/* ---- the fast path against expat ---- */

static void same_tree(const struct xml_node *a, const struct xml_node *b, const char *what)
{
	for (; a || b; a = a->next, b = b->next) {
		if (!a || !b)
			fail_msg("%s: sibling counts differ", what);
		if (strcmp(a->name, b->name) != 0 || a->text_len != b->text_len ||
		    memcmp(a->text, b->text, a->text_len + 1) != 0)
			fail_msg("%s: node %s/%s differs", what, a->name, b->name);
		same_tree(a->child, b->child, what);
	}
}

/* xml_parse and xml_parse_expat agree on status, reason and tree. */
static void same_parse(const char *s, size_t len, const struct xml_limits *lim, const char *what)
{
	struct xml_doc *da = NULL, *db = NULL;
	struct xml_error ea = {0}, eb = {0};
	int ra = xml_parse(s, len, lim, &da, &ea), rb = xml_parse_expat(s, len, lim, &db, &eb);

	if (ra != rb || strcmp(ea.reason, eb.reason) != 0 || ea.line != eb.line || ea.column != eb.column)
		fail_msg("%s (%zu bytes): fast %s \"%s\", expat %s \"%s\"", what, len, err_name(ra), ea.reason,
			 err_name(rb), eb.reason);
	if (ra == 0) {
		if (xml_element_count(da) != xml_element_count(db))
			fail_msg("%s: element counts differ", what);
		same_tree(xml_root(da), xml_root(db), what);
	}
	xml_free(da);
	xml_free(db);
}

static void test_fast_path_matches_expat(void **state)
{
	static const char *const docs[] = {
		("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateAccessGrantResult xmlns=\"http://awss3control."
		 "amazonaws.com/doc/2018-08-20/\"><CreatedAt>2026-11-30T14:00:00.000Z</CreatedAt><AccessGrantId>0b1c"
		 "</AccessGrantId><Grantee><GranteeType>IAM</GranteeType><GranteeIdentifier>arn:aws:iam::1:role/r"
		 "</GranteeIdentifier></Grantee><Permission>READ</Permission><AccessGrantsLocationConfiguration>"
		 "<S3SubPrefix>b/p1/*</S3SubPrefix></AccessGrantsLocationConfiguration><GrantScope>s3://b/p1/*"
		 "</GrantScope></CreateAccessGrantResult>"),
		("<?xml version=\"1.0\"?>\n<ListAccessGrantsResult>\n  <NextToken>t</NextToken>\n"
		 "  <AccessGrantsList>\n    <AccessGrant><AccessGrantId>a</AccessGrantId></AccessGrant>\n"
		 "    <Other />\n  </AccessGrantsList>\n</ListAccessGrantsResult>\n"),
		("<ErrorResponse><Error><Code>SlowDown</Code><Message>a &amp; b &lt;c&gt; &quot;d&quot; &apos;"
		 "</Message></Error><RequestId>R</RequestId></ErrorResponse>"),
		"<s3:R xmlns:s3 = 'urn:s3' a=\"1\"\tb='x>'><s3:K>k</s3:K ><x:y:D>]]</x:y:D><:/><a:>x</a:></s3:R>",
		"<R a='&amp;'><E>x</E></R>",
		"\n <R><E>one<K/>two</E><C><![CDATA[x]]></C><!-- c --><P>&#65;</P></R>\n",
	};
	static const char subst[] = "<>&/\"' \r\t\n]:-1abx=?!;#\x7f\x80\xff";
	struct xml_limits tight = {.max_bytes = 4096, .max_depth = 3, .max_elements = 6, .max_text = 12};

	for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
		size_t len = strlen(docs[d]);
		char *m = x_malloc(len + 2);

		same_parse(docs[d], len, NULL, "whole");
		same_parse(docs[d], len, &tight, "tight limits");
		for (size_t n = 0; n < len; n++)
			same_parse(docs[d], n, NULL, "prefix");
		for (size_t i = 0; i < len; i++) {
			for (size_t k = 0; k < sizeof(subst); k++) {   /* the NUL too */
				memcpy(m, docs[d], len);
				m[i] = subst[k];
				same_parse(m, len, NULL, "substituted");
				same_parse(m, len, &tight, "substituted, tight");
				memcpy(m, docs[d], i);
				m[i] = subst[k];
				memcpy(m + i + 1, docs[d] + i, len - i);
				same_parse(m, len + 1, NULL, "inserted");
			}
		}
		x_free(m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_namespaces),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_deep_default),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_doctype),
		cmocka_unit_test(test_utf16),
		cmocka_unit_test(test_fast_path_matches_expat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
