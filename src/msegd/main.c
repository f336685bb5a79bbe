/* msegd: the per-host daemon. All logic lives in libmseg: the daemon
 * (src/lib/daemon/) and the REST API (src/lib/api/), which this main wires
 * together on the daemon's event loop. */
#include <stdio.h>

#include "mseg/api/api.h"
#include "mseg/daemon/daemon.h"
#include "mseg/util/log.h"

static int api_reconcile(void *ctx)
{
	return daemon_reconcile(ctx);
}

int main(int argc, char **argv)
{
	struct daemon_config cfg;
	struct daemon *d = NULL;
	struct api_server *api = NULL;
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
	r = daemon_new(&cfg, &d);
	if (r == 0) {
		struct api_backend be = {
			.loop = daemon_loop(d),
			.cfg = &cfg,
			.desired = daemon_desired(d),
			.rec = daemon_reconciler(d),
			.features = daemon_features(d),
			.flows = daemon_flowpipe(d),
			.kube = daemon_kube(d),
			.accepted = daemon_accepted(d),
			.reconcile = api_reconcile,
			.ctx = d,
		};

		err_clear(&err);
		r = api_server_new(&be, &api, &err);
		if (r < 0)
			log_error("api: %s", err_format(&err, msg, sizeof(msg)));
	}
	if (r == 0)
		r = daemon_run(d);
	api = api_server_free(api);
	d = daemon_free(d);
	daemon_config_release(&cfg);
	return r < 0 ? 1 : 0;
}
