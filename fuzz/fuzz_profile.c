/* libFuzzer: AWS shared config/credentials parser and chain resolution. */
#include <stddef.h>
#include <stdint.h>

#include "aws/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct profile_set set;
	struct profile_error e;
	struct cred_chain c;
	const char *why;
	size_t half = size / 2;

	profile_set_init(&set);
	(void)!profile_parse(&set, PROFILE_FILE_CONFIG, (const char *)data, half, &e);
	(void)!profile_parse(&set, PROFILE_FILE_CREDENTIALS, (const char *)data + half, size - half, &e);
	for (const struct profile *p = set.head; p; p = p->next)
		(void)!profile_resolve(&set, p->name, &c, &why);
	profile_set_free(&set);
	return 0;
}
