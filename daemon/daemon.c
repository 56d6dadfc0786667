#include "daemon/daemon.h"

#include <stdio.h>

int daemon_main(const char *config_path)
{
	fprintf(stderr, "s3grantd: not yet runnable (%s)\n", config_path);
	return 1;
}
