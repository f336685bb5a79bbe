/* msegd: configuration and the daemon's main loop. */
#ifndef MSEG_DAEMON_H
#define MSEG_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "mseg/util/err.h"
#include "mseg/util/log.h"
#include "mseg/model/model.h"

struct daemon_config {
	char *config_file;
	char *state_dir;        /* default /var/lib/mseg */
	char *policy_dir;       /* optional: watched with inotify */
	char *endpoints_file;   /* optional: watched with inotify */
	char *listen;           /* "unix:/run/mseg/api.sock" */
	char *listen_tcp;       /* "ADDR:PORT" or NULL */
	char *token_file;
	char *tls_cert, *tls_key;
	char *flow_log;         /* JSON lines; default STATE_DIR/flows.jsonl;
				 * NULL = no file (--flow-log none) */
	enum mseg_mode mode;    /* audit: every isolation audits (safe rollout) */
	bool default_deny;
	enum mseg_revoke revoke;  /* established (default) | new-only */
	unsigned resync_sec;    /* 0 = off */
	unsigned seen_interval_sec;  /* accepted-connection summaries; 0 = off */
	enum log_level log_level;
	uint16_t queue_num;
	uint32_t queue_rate, queue_burst;
	size_t flow_ring_size;     /* records kept in memory (default 10000) */
	unsigned flow_window_sec;  /* aggregation window (default 60) */
	unsigned flow_log_max_mb;  /* rotate the flow log at this size (default 16) */
	unsigned flow_log_files;   /* rotated files kept (default 5) */
	struct mseg_addr *node_addrs;  /* --node-addr: never isolated */
	size_t n_node_addrs;
	char *kubeconfig;          /* watch the Kubernetes API (NULL: no) */
	bool kube_in_cluster;      /* ... with the pod's service account */
	char *node_name;           /* this node (--node-name, else $NODE_NAME) */
	unsigned kube_idle_sec;    /* watch idle timeout (0: default) */
	unsigned kube_page_size;   /* objects per list page (0: no paging) */
	unsigned kube_share;       /* % of a core cluster reconciles may take (5..100) */
};

void daemon_config_init(struct daemon_config *c);
void daemon_config_release(struct daemon_config *c);

/* Command line (and --config FILE, whose keys are the long option names;
 * the command line wins). Returns 0, -EINVAL with @err filled, or 1 when
 * --help/--version printed something and the program should exit 0. */
int daemon_config_parse(struct daemon_config *c, int argc, char **argv, struct mseg_err *err);

/* Usage text for --help. */
const char *daemon_usage(void);

struct accepted;
struct daemon;
struct desired;
struct evloop;
struct flowpipe;
struct kube_watcher;
struct nft_features;
struct reconciler;

/* Set up msegd from @c (kept by reference): probe the kernel, open the
 * flow pipeline, signals, watches and timers on a new event loop, and load
 * the state dir. Nothing is programmed yet. Logs what fails. */
int daemon_new(const struct daemon_config *c, struct daemon **ret);
struct daemon *daemon_free(struct daemon *d);

/* Load the policy dir and inventory (a failure here is fatal: starting
 * with nothing would remove tables), program the kernel, then run the loop
 * until SIGTERM/SIGINT. Returns 0 on a clean exit. */
int daemon_run(struct daemon *d);

/* Compile the desired state and program the kernel. Returns 0, -EIO when
 * some endpoints failed (see the reconciler's status), or -errno. */
int daemon_reconcile(struct daemon *d);

/* How long the Kubernetes watcher's changes wait before their reconcile
 * (pure): @debounce_ms, so that a burst of events is one reconcile; under
 * a steady stream, until the loop has spent (100 - @share) / @share times
 * the last reconcile's duration (@last_cost_ns, ended at @last_end_ns; 0:
 * none yet) on other work since it ended, so that reconciles take at most
 * @share percent of a core whatever the cluster's size (100: no wait
 * beyond the debounce); never more than KUBE_PACE_MAX_MS. */
#define KUBE_PACE_MAX_MS 1000
uint64_t daemon_kube_delay_ms(uint64_t last_end_ns, uint64_t last_cost_ns, uint64_t now_ns,
			      uint64_t debounce_ms, unsigned share);

/* The parts other modules (the REST API) are given. */
struct evloop *daemon_loop(struct daemon *d);
struct desired *daemon_desired(struct daemon *d);
struct reconciler *daemon_reconciler(struct daemon *d);
const struct nft_features *daemon_features(const struct daemon *d);
struct flowpipe *daemon_flowpipe(struct daemon *d);
/* The accepted-connection summaries (include/mseg/daemon/accepted.h). */
struct accepted *daemon_accepted(struct daemon *d);
/* The Kubernetes watcher; NULL without --kubeconfig / --kubernetes. */
struct kube_watcher *daemon_kube(struct daemon *d);

#endif
