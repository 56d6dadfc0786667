/* s3control.h — the twelve S3 Control Access Grants operations (WIRE.md a).
 *
 * Every function starts one asynchronous call on an aws_client that has an
 * account id (the x-amz-account-id header and, for AWS endpoints, the host
 * prefix) and returns at once; the typed callback fires exactly once, on a
 * later loop pass, with the status and struct aws_result of client.h.
 *
 * Results: the shape pointer in a callback is NULL unless status is 0. It is
 * owned by the operation and cleared (shapes_*_clear) when the callback
 * returns; to keep it, move it out (copy the struct, then memset the
 * original to zero). Request structs and strings are copied before the
 * function returns. Identifiers and query values are percent-encoded with
 * the signer's rules, so the wire bytes are the signed bytes.
 *
 * Lists: s3control_list_* fetch one page (page->next_token, page->max_results);
 * s3control_list_*_all follow NextToken and hand over one concatenated list;
 * s3control_list_grants_pages calls back once per page and stops when the
 * page callback returns non-zero.
 */
#pragma once
#include <stddef.h>

#include "aws/client.h"
#include "aws/shapes.h"

typedef void (*s3control_done_cb)(int status, const struct aws_result *res, void *user);
typedef void (*s3control_grant_cb)(int status, const struct aws_result *res, struct shapes_grant *grant,
				   void *user);
typedef void (*s3control_grant_list_cb)(int status, const struct aws_result *res,
					struct shapes_grant_list *list, void *user);
typedef void (*s3control_location_cb)(int status, const struct aws_result *res, struct shapes_location *loc,
				      void *user);
typedef void (*s3control_location_list_cb)(int status, const struct aws_result *res,
					   struct shapes_location_list *list, void *user);
typedef void (*s3control_instance_cb)(int status, const struct aws_result *res, struct shapes_instance *inst,
				      void *user);
typedef void (*s3control_instance_list_cb)(int status, const struct aws_result *res,
					   struct shapes_instance_list *list, void *user);
/* Page by page: return 0 for the next page, non-zero to stop. last is 1 on
 * the final call (no more pages, an error, or after a stop). */
typedef int (*s3control_grant_page_cb)(int status, const struct aws_result *res, struct shapes_grant_list *page,
				       int last, void *user);

struct s3control_page {
	const char *next_token;          /* NULL: first page */
	unsigned max_results;            /* 0: the service default (1..1000 otherwise) */
};

/* ListAccessGrants filters; NULL members are not sent. */
struct s3control_grant_filter {
	const char *grantee_type;        /* granteetype */
	const char *grantee_id;          /* granteeidentifier */
	const char *permission;          /* permission */
	const char *grant_scope;         /* grantscope */
	const char *application_arn;     /* application_arn */
};

void s3control_create_instance(struct aws_client *cl, const struct shapes_create_instance_req *req,
			       s3control_instance_cb cb, void *user);
void s3control_get_instance(struct aws_client *cl, s3control_instance_cb cb, void *user);
void s3control_get_instance_for_prefix(struct aws_client *cl, const char *s3prefix, s3control_instance_cb cb,
				       void *user);
void s3control_list_instances(struct aws_client *cl, const struct s3control_page *page,
			      s3control_instance_list_cb cb, void *user);

void s3control_create_location(struct aws_client *cl, const struct shapes_create_location_req *req,
			       s3control_location_cb cb, void *user);
void s3control_get_location(struct aws_client *cl, const char *id, s3control_location_cb cb, void *user);
/* location_scope: the locationscope filter, or NULL. */
void s3control_list_locations(struct aws_client *cl, const char *location_scope,
			      const struct s3control_page *page, s3control_location_list_cb cb, void *user);
void s3control_delete_location(struct aws_client *cl, const char *id, s3control_done_cb cb, void *user);

void s3control_create_grant(struct aws_client *cl, const struct shapes_create_grant_req *req,
			    s3control_grant_cb cb, void *user);
void s3control_get_grant(struct aws_client *cl, const char *id, s3control_grant_cb cb, void *user);
void s3control_list_grants(struct aws_client *cl, const struct s3control_grant_filter *filter,
			   const struct s3control_page *page, s3control_grant_list_cb cb, void *user);
void s3control_delete_grant(struct aws_client *cl, const char *id, s3control_done_cb cb, void *user);

/* All pages (max_results per page; 0 = 1000). On failure the callback gets
 * the failing page's status and NULL; pages already fetched are dropped. */
void s3control_list_grants_all(struct aws_client *cl, const struct s3control_grant_filter *filter,
			       unsigned max_results, s3control_grant_list_cb cb, void *user);
void s3control_list_locations_all(struct aws_client *cl, const char *location_scope, unsigned max_results,
				  s3control_location_list_cb cb, void *user);
void s3control_list_instances_all(struct aws_client *cl, unsigned max_results, s3control_instance_list_cb cb,
				  void *user);
void s3control_list_grants_pages(struct aws_client *cl, const struct s3control_grant_filter *filter,
				 unsigned max_results, s3control_grant_page_cb cb, void *user);
