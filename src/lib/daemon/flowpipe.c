#include <errno.h>
#include <linux/netfilter.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "mseg/util/clock.h"
#include "mseg/util/log.h"
#include "mseg/kernel/nft.h"
#include "mseg/packet/queue.h"
#include "mseg/daemon/flowpipe.h"

#define FLOWPIPE_TICK_MS 1000
/* the kernel's queue counters (a /proc read per listener) are refreshed
 * this many listeners per tick, never on a metrics scrape */
#define FLOWPIPE_KSTATS_PER_TICK 64

struct fp_ep {
	struct flowpipe *fp;
	char *id;
	char *netns_path;
	struct queue_listener *ql;
	struct evloop_source *src;
	struct flow_ep *fep;
	bool isolated[MSEG_DIR_COUNT];
	enum mseg_mode mode[MSEG_DIR_COUNT];
	bool seen;
	uint64_t read_errors;        /* logged at 1, 10, 100, ... */
	struct queue_kstats ks;      /* the kernel's counters, last read */
};

struct flowpipe {
	struct evloop *loop;
	const struct daemon_config *cfg;
	struct flow_ring *ring;
	struct flow_log *log;
	struct evloop_source *tick;
	struct fp_ep **eps;
	size_t n, cap;
	struct flowpipe_stats stats;
	size_t ks_next;              /* the listener whose counters are read next */
	struct queue_stats closed_qstats;   /* of listeners already closed */
};

/* enforce wins: an unknown hook or a direction that is not isolated (a
 * packet queued by a chain we no longer have) gets the stricter verdict */
static enum mseg_mode fp_ep_mode(const struct fp_ep *e, const struct queue_packet *pkt)
{
	if (pkt->dir_known && e->isolated[pkt->dir])
		return e->mode[pkt->dir];
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		if (e->isolated[d] && e->mode[d] == MSEG_MODE_ENFORCE)
			return MSEG_MODE_ENFORCE;
	return MSEG_MODE_AUDIT;
}

/* The packet path: verdict first, then one O(1) ring update. */
static int fp_on_packet(struct queue_listener *l, void *ctx, const struct queue_packet *pkt,
			void *data)
{
	struct fp_ep *e = ctx;
	struct flowpipe *fp = e->fp;
	enum mseg_mode mode = fp_ep_mode(e, pkt);
	struct flow_event ev = {
		.ep = e->fep,
		.dir = pkt->dir_known ? pkt->dir : MSEG_DIR_INGRESS,
		.verdict = mode == MSEG_MODE_AUDIT ? FLOW_AUDITED : FLOW_DROPPED,
		.pkt = &pkt->pkt,
		.has_uid = pkt->has_uid,
		.has_gid = pkt->has_gid,
		.uid = pkt->uid,
		.gid = pkt->gid,
		.time_ns = pkt->time_ns,
	};

	fp->stats.packets++;
	if (mode == MSEG_MODE_AUDIT)
		fp->stats.audited++;
	else
		fp->stats.dropped++;
	if (pkt->parse_status < 0)
		fp->stats.malformed++;
	flow_ring_add(fp->ring, &ev, NULL);
	return mode == MSEG_MODE_AUDIT ? NF_ACCEPT : NF_DROP;
}

static void fp_on_readable(struct evloop_source *src, uint32_t events, void *data)
{
	struct fp_ep *e = data;
	int r = queue_listener_read(e->ql, fp_on_packet, NULL);

	if (r < 0) {
		uint64_t n = ++e->read_errors;

		/* a persistent failure must not flood the log */
		while (n % 10 == 0)
			n /= 10;
		if (n == 1)
			log_warn("endpoint '%s': queue read: %s (%llu times)", e->id, strerror(-r),
				 (unsigned long long)e->read_errors);
	}
}

static void fp_qstats_add(struct queue_stats *acc, const struct queue_stats *s)
{
	acc->enobufs += s->enobufs;
	acc->packets += s->packets;
}

static struct fp_ep *fp_ep_free(struct fp_ep *e)
{
	if (!e)
		return NULL;
	if (e->ql)
		fp_qstats_add(&e->fp->closed_qstats, queue_listener_stats(e->ql));
	evloop_source_remove(e->src);
	queue_listener_free(e->ql);
	flow_ep_unref(e->fep);
	free(e->id);
	free(e->netns_path);
	free(e);
	return NULL;
}

static void fp_tick(struct evloop_source *src, uint32_t events, void *data)
{
	struct flowpipe *fp = data;
	int r;

	flow_ring_expire(fp->ring, clock_real_ns());
	if (fp->log && (r = flow_log_flush(fp->log)) < 0)
		log_warn("flow log '%s': %s", fp->cfg->flow_log, strerror(-r));
	for (size_t k = 0; k < FLOWPIPE_KSTATS_PER_TICK && k < fp->n; k++) {
		struct fp_ep *e = fp->eps[fp->ks_next++ % fp->n];
		struct queue_kstats ks;

		if (queue_listener_kstats(e->ql, &ks) == 0)
			e->ks = ks;
	}
}

int flowpipe_new(struct evloop *loop, const struct daemon_config *cfg, struct flowpipe **ret,
		 struct mseg_err *err)
{
	struct flowpipe *fp = calloc(1, sizeof(*fp));
	int r;

	if (!fp)
		return -ENOMEM;
	fp->loop = loop;
	fp->cfg = cfg;
	fp->ring = flow_ring_new(cfg->flow_ring_size, (uint64_t)cfg->flow_window_sec * 1000);
	if (!fp->ring) {
		r = -ENOMEM;
		goto out_free;
	}
	if (cfg->flow_log) {
		struct flow_log_opts o;
		size_t loaded = 0, skipped = 0;

		flow_log_opts_init(&o, cfg->flow_log);
		o.max_size = (uint64_t)cfg->flow_log_max_mb << 20;
		o.max_files = cfg->flow_log_files;
		r = flow_log_load_tail(cfg->flow_log, o.max_files, fp->ring, &loaded, &skipped);
		if (r < 0) {
			err_setf(err, -r, "flow log '%s': %s", cfg->flow_log, strerror(-r));
			goto out_free;
		}
		if (loaded || skipped)
			log_info("flow log: %zu records reloaded, %zu unreadable lines skipped",
				 loaded, skipped);
		r = flow_log_open(&o, &fp->log);
		if (r < 0) {
			err_setf(err, -r, "flow log '%s': %s", cfg->flow_log, strerror(-r));
			goto out_free;
		}
		flow_ring_set_sink(fp->ring, flow_log_sink, fp->log);
	}
	fp->tick = evloop_add_timer(loop, FLOWPIPE_TICK_MS, FLOWPIPE_TICK_MS, fp_tick, fp, &r);
	if (!fp->tick) {
		err_setf(err, -r, "flow timer: %s", strerror(-r));
		goto out_free;
	}
	*ret = fp;
	return 0;

out_free:
	flowpipe_free(fp);
	return r;
}

struct flowpipe *flowpipe_free(struct flowpipe *fp)
{
	if (!fp)
		return NULL;
	for (size_t i = 0; i < fp->n; i++)
		fp_ep_free(fp->eps[i]);
	free(fp->eps);
	evloop_source_remove(fp->tick);
	if (fp->ring)
		flow_ring_close_all(fp->ring);
	flow_log_free(fp->log);
	flow_ring_free(fp->ring);
	free(fp);
	return NULL;
}

static struct fp_ep *fp_find(struct flowpipe *fp, const char *id)
{
	for (size_t i = 0; i < fp->n; i++)
		if (strcmp(fp->eps[i]->id, id) == 0)
			return fp->eps[i];
	return NULL;
}

static bool st_all_audit(const struct reconcile_ep_status *st)
{
	for (int d = 0; d < MSEG_DIR_COUNT; d++)
		if (st->isolated[d] && st->mode[d] == MSEG_MODE_ENFORCE)
			return false;
	return true;
}

static int fp_ep_open(struct flowpipe *fp, const struct reconcile_ep_status *st,
		      struct netns *ns, struct fp_ep **ret)
{
	struct queue_opts qo;
	struct fp_ep *e = calloc(1, sizeof(*e));
	int r;

	if (!e)
		return -ENOMEM;
	e->fp = fp;
	e->id = strdup(st->id);
	e->netns_path = strdup(st->netns);
	e->fep = flow_ep_new(st->id, st->name, st->ns);
	if (!e->id || !e->netns_path || !e->fep) {
		r = -ENOMEM;
		goto out_free;
	}
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		e->isolated[d] = st->isolated[d];
		e->mode[d] = st->mode[d];
	}
	queue_opts_init(&qo);
	qo.fail_open = st_all_audit(st);
	r = queue_listener_open(ns, fp->cfg->queue_num, &qo, e, &e->ql);
	if (r < 0)
		goto out_free;
	e->src = evloop_add_fd(fp->loop, queue_listener_fd(e->ql), EPOLLIN, fp_on_readable, e, &r);
	if (!e->src)
		goto out_free;
	*ret = e;
	return 0;

out_free:
	fp_ep_free(e);
	return r;
}

/* Modes and identity follow the endpoint; fail-open (accept when the
 * kernel queue is full) only when every isolated direction audits. The
 * listener's flags as the kernel acknowledged them are compared with what
 * they must be on every sync, so a switch that failed is tried again
 * (until then an enforce endpoint may be fail-open: logged and counted). */
static void fp_ep_update(struct flowpipe *fp, struct fp_ep *e, const struct reconcile_ep_status *st)
{
	bool fail_open = st_all_audit(st);

	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		e->isolated[d] = st->isolated[d];
		e->mode[d] = st->mode[d];
	}
	if (strcmp(e->fep->name, st->name) != 0 || strcmp(e->fep->ns, st->ns) != 0) {
		struct flow_ep *n = flow_ep_new(st->id, st->name, st->ns);

		if (n) {
			flow_ep_unref(e->fep);
			e->fep = n;
		}
	}
	if (queue_listener_is_fail_open(e->ql) != fail_open) {
		int r = queue_listener_set_fail_open(e->ql, fail_open);

		if (r < 0) {
			fp->stats.fail_open_failures++;
			log_error("endpoint '%s': cannot switch its queue to fail-%s: %s; retrying at "
				  "the next sync", e->id, fail_open ? "open" : "closed", strerror(-r));
		} else {
			log_info("endpoint '%s': queue is fail-%s", e->id, fail_open ? "open" : "closed");
		}
	}
}

void flowpipe_sync(struct flowpipe *fp, const struct reconciler *rec)
{
	const struct table_opts *topts = reconciler_table_opts(rec);

	for (size_t i = 0; i < fp->n; i++)
		fp->eps[i]->seen = false;
	for (size_t i = 0; i < reconciler_ep_count(rec); i++) {
		struct reconcile_ep_status st;
		struct netns *ns = reconciler_ep_netns(rec, i);
		struct fp_ep *e;
		int r;

		if (reconciler_ep_status(rec, i, &st) < 0 || !ns || !st.netns)
			continue;
		if (!st.isolated[MSEG_DIR_INGRESS] && !st.isolated[MSEG_DIR_EGRESS])
			continue;
		if (topts->queue == QUEUE_NFLOG)
			continue;   /* no queue: the kernel gives the verdict itself */
		e = fp_find(fp, st.id);
		if (e && strcmp(e->netns_path, st.netns) != 0) {
			/* the endpoint moved to another namespace */
			for (size_t j = 0; j < fp->n; j++)
				if (fp->eps[j] == e)
					fp->eps[j] = fp->eps[--fp->n];
			e = fp_ep_free(e);
		}
		if (!e) {
			if (fp->n == fp->cap) {
				size_t cap = fp->cap ? fp->cap * 2 : 16;
				struct fp_ep **v = realloc(fp->eps, cap * sizeof(*v));

				if (!v)
					continue;
				fp->eps = v;
				fp->cap = cap;
			}
			r = fp_ep_open(fp, &st, ns, &e);
			if (r < 0) {
				fp->stats.listener_failures++;
				log_error("endpoint '%s': cannot open NFQUEUE %u in '%s': %s", st.id,
					  fp->cfg->queue_num, st.netns, strerror(-r));
				continue;
			}
			fp->eps[fp->n++] = e;
			log_info("endpoint '%s': listening on NFQUEUE %u", st.id, fp->cfg->queue_num);
		}
		e->seen = true;
		fp_ep_update(fp, e, &st);
	}
	for (size_t i = fp->n; i-- > 0;) {
		if (fp->eps[i]->seen)
			continue;
		log_info("endpoint '%s': NFQUEUE listener closed", fp->eps[i]->id);
		fp_ep_free(fp->eps[i]);
		fp->eps[i] = fp->eps[--fp->n];
	}
}

struct flow_ring *flowpipe_ring(const struct flowpipe *fp)
{
	return fp->ring;
}

void flowpipe_stats_get(const struct flowpipe *fp, struct flowpipe_stats *ret)
{
	*ret = fp->stats;
	ret->listeners = fp->n;
	ret->enobufs = fp->closed_qstats.enobufs;
	/* the kernel's counters as the tick last read them (at most
	 * n / FLOWPIPE_KSTATS_PER_TICK seconds old): no I/O here */
	for (size_t i = 0; i < fp->n; i++) {
		ret->enobufs += queue_listener_stats(fp->eps[i]->ql)->enobufs;
		ret->queue_dropped += fp->eps[i]->ks.queue_dropped;
		ret->user_dropped += fp->eps[i]->ks.user_dropped;
	}
}
