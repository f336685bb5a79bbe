/* msegd: the per-host daemon. All logic lives in libmseg (src/lib/daemon.c). */
#include <stdio.h>

#include "mseg/daemon/daemon.h"

int main(int argc, char **argv)
{
	struct daemon_config cfg;
	struct mseg_err err;
	char msg[1024];
	int r;

	daemon_config_init(&cfg);
	err_clear(&err);
	r = daemon_config_parse(&cfg, argc, argv, &err);
	if (r != 0) {
		/* usage only helps with the command line, not with a file */
		if (r < 0)
			fprintf(stderr, "msegd: %s\n%s", err_format(&err, msg, sizeof(msg)),
				err.file[0] ? "" : "run 'msegd --help' for the options\n");
		daemon_config_release(&cfg);
		return r < 0 ? 2 : 0;
	}
	r = daemon_run(&cfg);
	daemon_config_release(&cfg);
	return r < 0 ? 1 : 0;
}
