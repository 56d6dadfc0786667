/* xml.h — a bounded XML reader over expat for AWS response bodies.
 *
 * Why a tree and not a streaming path matcher: AWS bodies are small (a
 * 1,000-entry ListAccessGrants page is ~1 MB), every shape is read by child
 * name in any order, and a tree lets the shape code (shapes.c) stay a plain
 * list of lookups. The tree is compact: one array of nodes and one string
 * arena, so a document costs a handful of allocations and is freed at once.
 *
 * Contract:
 * - xml_parse() copies what it needs out of the input; the returned document
 *   owns all nodes and strings and is freed with xml_free() (NULL is fine).
 *   Node pointers stay valid until then.
 * - Names are local names: a "prefix:" is stripped and namespace declarations
 *   (like all attributes) are ignored, so <s3:Key xmlns:s3="..."> is "Key".
 * - An element's text is all character data directly inside it (CDATA
 *   included), concatenated in document order and decoded (entities and
 *   character references resolved, UTF-8). Text inside child elements belongs
 *   to the children. Text never contains NUL (XML forbids it).
 * - Hard limits (struct xml_limits): document bytes, element depth, element
 *   count, bytes of text in one element. Passing a limit gives S3G_ETOOBIG.
 * - Any DOCTYPE is refused (S3G_EPARSE): AWS never sends one, and refusing it
 *   rules out entity expansion (billion laughs) and external entities. Expat's
 *   own amplification guard is switched on as well, belt and braces.
 * - Malformed or truncated input gives S3G_EPARSE.
 * - Documents in the narrow, ASCII slice of XML that AWS sends are read by
 *   a small scanner of our own (xml.c says exactly which); at the first byte
 *   outside that slice the document goes to expat from the start, so what
 *   is accepted, the tree and every error are expat's either way.
 * - Each thread keeps one expat parser and reuses it (XML_ParserReset) for
 *   its next document, with a hash salt derived from a per-process random
 *   seed; a parser that read a document over 256 KiB is freed, not kept.
 *   xml_parse() may be called from any thread, never from inside itself.
 * On failure, *err (when not NULL) gets a short reason with line and column;
 * it is the one output written on failure. Nothing here logs.
 */
#pragma once
#include <stddef.h>

#include "core/err.h"

/* All four must be non-zero (S3G_EINVAL otherwise). */
struct xml_limits {
	size_t max_bytes;            /* whole document */
	unsigned max_depth;          /* nesting of elements; the root is depth 1 */
	size_t max_elements;         /* elements in the document */
	size_t max_text;             /* decoded text bytes directly inside one element */
};

/* Defaults sized for the largest AWS page the daemon reads (1,000 grants,
 * ~14 elements each, ARNs and prefixes up to ~2 KB) with wide margins. */
#define XML_DEFAULT_MAX_BYTES    (16u * 1024 * 1024)
#define XML_DEFAULT_MAX_DEPTH    32u
#define XML_DEFAULT_MAX_ELEMENTS 200000u
#define XML_DEFAULT_MAX_TEXT     (1u * 1024 * 1024)
extern const struct xml_limits xml_default_limits;

struct xml_node {
	const char *name;            /* local name, never NULL */
	const char *text;            /* decoded direct text, "" when none; never NULL */
	size_t text_len;             /* bytes in text, excluding the NUL */
	const struct xml_node *parent;   /* NULL for the root */
	const struct xml_node *child;    /* first child element */
	const struct xml_node *next;     /* next sibling element */
};

struct xml_doc;

struct xml_error {
	unsigned long line;          /* 1-based; 0 when not known */
	unsigned long column;        /* 1-based; 0 when not known */
	char reason[96];             /* "line 3, column 7: mismatched tag" */
};

/* Parse len bytes. limits NULL means xml_default_limits. */
int xml_parse(const char *data, size_t len, const struct xml_limits *limits,
	      struct xml_doc **ret_doc, struct xml_error *err) S3G_WUR;
/* The same, with expat reading every document (no fast path): for tests and
 * fuzzing, which check that both give the same tree and the same status. */
int xml_parse_expat(const char *data, size_t len, const struct xml_limits *limits,
		    struct xml_doc **ret_doc, struct xml_error *err) S3G_WUR;
void xml_free(struct xml_doc *doc);

const struct xml_node *xml_root(const struct xml_doc *doc);
size_t xml_element_count(const struct xml_doc *doc);

/* First child of n named name (local name), or NULL. n may be NULL. */
const struct xml_node *xml_child(const struct xml_node *n, const char *name);
/* Next sibling after n with the same name as n (for repeated elements). */
const struct xml_node *xml_next_same(const struct xml_node *n);
/* Follow "A/B/C" from n by first-child-of-that-name; NULL if any step is missing. */
const struct xml_node *xml_path(const struct xml_node *n, const char *path);
/* Text of xml_path(n, path), or NULL when the element is missing. */
const char *xml_path_text(const struct xml_node *n, const char *path);
