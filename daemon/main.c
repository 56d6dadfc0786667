/* s3grantd — entry point. The daemon proper is built in daemon/ modules. */
#include <stdio.h>
#include <string.h>

#include "version.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("s3grantd %s\n", S3G_VERSION);
		return 0;
	}
	fprintf(stderr, "s3grantd: not yet runnable\n");
	return 1;
}
