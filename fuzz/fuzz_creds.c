/* libFuzzer: credentials documents (credential_process, container, IMDS). */
#include <stddef.h>
#include <stdint.h>

#include "aws/creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int k = 0; k < CREDS_JSON_MAX_; k++) {
		struct aws_creds c = {0};
		const char *why;

		(void)!creds_parse_json((enum creds_json_kind)k, (const char *)data, size, &c, &why);
		aws_creds_clear(&c);
	}
	return 0;
}
