/* The daemon's flow pipeline: an NFQUEUE listener in each isolated
 * endpoint's namespace, served from the event loop; each queued packet gets
 * its verdict from the mode of its direction (enforce drops, audit accepts),
 * then becomes (or aggregates into) a flow record in the ring; the log file
 * is written from a timer. The daemon owns it; the API reads its ring and
 * statistics. */
#ifndef MSEG_FLOWPIPE_H
#define MSEG_FLOWPIPE_H

#include <stdint.h>

#include "mseg/daemon/daemon.h"
#include "mseg/util/evloop.h"
#include "mseg/packet/flow.h"
#include "mseg/kernel/reconcile.h"

struct flowpipe;

struct flowpipe_stats {
	uint64_t listeners;          /* open now */
	uint64_t listener_failures;  /* opens that failed */
	uint64_t fail_open_failures; /* fail-open/closed switches that failed */
	uint64_t packets;            /* queued packets handled */
	uint64_t dropped, audited;   /* verdicts */
	uint64_t malformed;          /* parse errors and short captures */
	uint64_t enobufs;            /* socket overruns: packets lost to msegd */
	uint64_t queue_dropped;      /* kernel: queue full (sum over namespaces) */
	uint64_t user_dropped;       /* kernel: socket full */
};

/* Opens the flow log (if configured) and reloads its tail into the ring. */
int flowpipe_new(struct evloop *loop, const struct daemon_config *cfg, struct flowpipe **ret,
		 struct mseg_err *err);
/* Closes every aggregation window into the log, flushes, closes. */
struct flowpipe *flowpipe_free(struct flowpipe *fp);

/* Open, update or close listeners to match the reconciler's endpoints;
 * called after every reconcile. */
void flowpipe_sync(struct flowpipe *fp, const struct reconciler *rec);

struct flow_ring *flowpipe_ring(const struct flowpipe *fp);
void flowpipe_stats_get(const struct flowpipe *fp, struct flowpipe_stats *ret);

#endif
