/* libFuzzer: AWS XML response bodies through every shapes_parse_* function
 * (and so through aws/xml.c). Each parser must return 0 or a negative code,
 * leave *ret untouched on failure, and leak nothing. xml_parse (fast path)
 * and xml_parse_expat must agree on status, error text and tree. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/shapes.h"
#include "aws/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RUN(type, fn, clear)                                                       \
	do {                                                                       \
		static const struct type zero;                                     \
		struct type v;                                                     \
		struct xml_error e;                                                \
		int r;                                                             \
		memset(&v, 0, sizeof(v));                                          \
		r = fn((const char *)data, size, &v, &e);                          \
		if (r > 0)                                                         \
			abort();                                                   \
		if (r < 0 && memchr(e.reason, '\0', sizeof(e.reason)) == NULL)     \
			abort();                                                   \
		if (r < 0 && memcmp(&v, &zero, sizeof(v)) != 0)                    \
			abort();   /* outputs are written only on success */       \
		clear(&v);                                                         \
	} while (0)

static void same_tree(const struct xml_node *a, const struct xml_node *b)
{
	for (; a || b; a = a->next, b = b->next) {
		if (!a || !b || strcmp(a->name, b->name) != 0 || a->text_len != b->text_len ||
		    memcmp(a->text, b->text, a->text_len) != 0)
			abort();
		same_tree(a->child, b->child);
	}
}

static void same_parse(const uint8_t *data, size_t size)
{
	struct xml_doc *da = NULL, *db = NULL;
	struct xml_error ea = {0}, eb = {0};
	int ra = xml_parse((const char *)data, size, NULL, &da, &ea);
	int rb = xml_parse_expat((const char *)data, size, NULL, &db, &eb);

	if (ra != rb || strcmp(ea.reason, eb.reason) != 0)
		abort();
	if (ra == 0) {
		if (xml_element_count(da) != xml_element_count(db))
			abort();
		same_tree(xml_root(da), xml_root(db));
	}
	xml_free(da);
	xml_free(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xml_doc *doc = NULL;

	RUN(shapes_grant, shapes_parse_grant, shapes_grant_clear);
	RUN(shapes_grant_list, shapes_parse_grant_list, shapes_grant_list_clear);
	RUN(shapes_location, shapes_parse_location, shapes_location_clear);
	RUN(shapes_location_list, shapes_parse_location_list, shapes_location_list_clear);
	RUN(shapes_instance, shapes_parse_instance, shapes_instance_clear);
	RUN(shapes_instance_list, shapes_parse_instance_list, shapes_instance_list_clear);
	RUN(shapes_caller_identity, shapes_parse_caller_identity, shapes_caller_identity_clear);
	RUN(shapes_sts_creds, shapes_parse_sts_creds, shapes_sts_creds_clear);
	RUN(shapes_object_list, shapes_parse_object_list, shapes_object_list_clear);
	RUN(shapes_error, shapes_parse_error, shapes_error_clear);
	same_parse(data, size);

	/* the tree itself: every node reachable, text lengths honest */
	if (xml_parse((const char *)data, size, NULL, &doc, NULL) == 0) {
		size_t seen = 0;
		const struct xml_node *n = xml_root(doc);

		while (n) {
			seen++;
			if (strlen(n->text) != n->text_len || !n->name[0])
				abort();
			if (n->child) {
				n = n->child;
				continue;
			}
			while (n && !n->next)
				n = n->parent;
			if (n)
				n = n->next;
		}
		if (seen != xml_element_count(doc))
			abort();
		xml_free(doc);
	}
	return 0;
}
