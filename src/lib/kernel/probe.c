/* probe: which nf_tables features this kernel has, tried for real in a
 * throwaway network namespace.
 *
 * A helper thread unshare()s its network namespace (namespaces are per
 * thread), programs a small table per feature there, and exits; the
 * namespace goes with it. Nothing is left anywhere and the caller's
 * namespace is never touched. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "mseg/kernel/nft.h"
#include "kernel/batch.h"
#include "kernel/netns.h"
#include "kernel/render_nl.h"

struct probe {
	struct nft_features *f;
	int error;
	char why[160];
};

const char *queue_method_name(enum queue_method m)
{
	switch (m) {
	case QUEUE_NATIVE:
		return "queue";
	case QUEUE_XT:
		return "xt-nfqueue";
	case QUEUE_NFLOG:
		return "nflog";
	}
	return "?";
}

static void detail_add(struct nft_features *f, const char *what, int r)
{
	size_t len = strlen(f->detail);

	/* the kernel answers ENOENT for an expression type it does not know */
	snprintf(f->detail + len, sizeof(f->detail) - len, "%s%s: %s", len ? "; " : "", what,
		 r == -ENOENT ? "not in this kernel" : strerror(-r));
}

/* One feature: a batch that removes the probe table and builds the test.
 * 0 when the kernel takes it. */
static int try_queue(struct netns *ns, enum queue_method m)
{
	struct table_opts o = { .queue = m, .queue_num = 0 };
	struct nl_batch *b = nl_batch_new(ns);
	int r;

	if (!b)
		return -ENOMEM;
	r = render_nl_table_remove(b);
	if (r == 0)
		r = render_nl_probe_queue(b, &o, true);   /* with bypass: the harder case */
	if (r == 0)
		r = nl_batch_commit(ns, b, NULL, 0, NULL);
	nl_batch_free(b);
	return r;
}

static int try_concat(struct netns *ns)
{
	struct nl_batch *b = nl_batch_new(ns);
	int r;

	if (!b)
		return -ENOMEM;
	r = render_nl_table_remove(b);
	if (r == 0)
		r = render_nl_probe_concat(b);
	if (r == 0)
		r = nl_batch_commit(ns, b, NULL, 0, NULL);
	nl_batch_free(b);
	return r;
}

static void *probe_thread(void *arg)
{
	struct probe *p = arg;
	struct nft_features *f = p->f;
	struct netns *ns;
	int r;

	if (unshare(CLONE_NEWNET) < 0) {
		p->error = -errno;
		snprintf(p->why, sizeof(p->why), "unshare(CLONE_NEWNET): %s", strerror(errno));
		return NULL;
	}
	r = netns_open(NULL, &ns);
	if (r < 0) {
		p->error = r;
		snprintf(p->why, sizeof(p->why), "opening the probe namespace: %s", strerror(-r));
		return NULL;
	}
	r = try_queue(ns, QUEUE_NATIVE);
	f->queue_native = r == 0;
	if (r < 0)
		detail_add(f, "native nft queue expression", r);
	r = try_queue(ns, QUEUE_XT);
	f->queue_xt = r == 0;
	if (r < 0)
		detail_add(f, "xt NFQUEUE", r);
	r = try_queue(ns, QUEUE_NFLOG);
	f->nflog = r == 0;
	if (r < 0)
		detail_add(f, "log group", r);
	r = try_concat(ns);
	f->concat_interval = r == 0;
	if (r < 0)
		detail_add(f, "concatenated intervals", r);
	netns_free(ns);
	return NULL;
}

int nft_features_probe(struct nft_features *ret, struct mseg_err *err)
{
	struct probe p = { .f = ret };
	pthread_t t;
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->queue = QUEUE_NFLOG;
	r = pthread_create(&t, NULL, probe_thread, &p);
	if (r)
		return err_setf(err, r, "probe thread: %s", strerror(r));
	pthread_join(t, NULL);
	if (p.error)
		return err_setf(err, -p.error, "kernel probe: %s", p.why);
	if (ret->queue_native)
		ret->queue = QUEUE_NATIVE;
	else if (ret->queue_xt)
		ret->queue = QUEUE_XT;
	if (!(ret->queue_native || ret->queue_xt || ret->nflog) || !ret->concat_interval)
		return err_setf(err, EOPNOTSUPP, "kernel lacks what mseg needs: %s", ret->detail);
	return 0;
}
