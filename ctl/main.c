/* s3grantctl — entry point. */
#include <stdio.h>
#include <string.h>

#include "version.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("s3grantctl %s\n", S3G_VERSION);
		return 0;
	}
	fprintf(stderr, "s3grantctl: no command\n");
	return 2;
}
