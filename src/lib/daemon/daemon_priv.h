/* msegd's state, shared by the daemon's own modules (daemon.c and the
 * modules it drives: the API handlers, the flow pipeline). Private to
 * src/lib. */
#ifndef MSEG_DAEMON_PRIV_H
#define MSEG_DAEMON_PRIV_H

#include "mseg/daemon/daemon.h"
#include "mseg/util/evloop.h"
#include "mseg/model/inventory.h"
#include "mseg/kernel/nft.h"
#include "mseg/model/policy.h"
#include "mseg/kernel/reconcile.h"

struct daemon {
	const struct daemon_config *cfg;
	struct evloop *loop;
	struct reconciler *rec;
	struct nft_features features;
	/* desired state: the files (last good load) ... */
	struct mseg_policy_set file_policies;
	struct mseg_inventory file_inventory;
	/* ... and what the API accepted (persisted in the state dir) */
	struct mseg_policy_set api_policies;
	struct mseg_inventory api_inventory;
	int sigfd;
	int inofd;
	struct evloop_source *sig_src, *ino_src;
	int wd_policy, wd_endpoints;
	char *endpoints_dir, *endpoints_base;
	struct evloop_source *reload_timer;
	struct evloop_source *resync_timer;
	struct flowpipe *flows;       /* NFQUEUE listeners, flow ring and log (flowpipe.c);
					 flowpipe_ring(d->flows) for queries */
	struct api_server *api;       /* REST API and the state store (api.c) */
	int exit_status;
};

/* Compile the union of file and API state and program the kernel. Returns
 * 0, -EIO when some endpoints failed (see the reconciler's status), or
 * -errno. */
int daemon_reconcile(struct daemon *d);

#endif
