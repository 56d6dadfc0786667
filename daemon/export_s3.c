/* export_s3.c — upload of the access summary to S3.
 *
 * Until the AWS operations layer (aws/s3.h) is wired in, an export with no
 * [export] sink_dir fails with an error that says so; the export object
 * records the failure and retries with backoff, like any upload failure.
 */
#include "core/err.h"
#include "daemon/export.h"

int export_s3_upload(void *ud, const struct export_upload_req *req, export_upload_done_cb done, void *done_ud)
{
	(void)ud;
	(void)req;
	(void)done;
	(void)done_ud;
	return S3G_ENOTFOUND;
}
