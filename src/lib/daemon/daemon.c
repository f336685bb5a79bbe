/* msegd's main loop: one epoll loop serving signals, the policy-dir and
 * inventory watches, the resync timer and the NFQUEUE listeners; the REST
 * API adds its sources to the same loop (src/msegd/main.c wires it). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "mseg/daemon/accepted.h"
#include "mseg/daemon/daemon.h"
#include "mseg/util/hash.h"
#include "mseg/util/clock.h"
#include "util/vec.h"
#include "mseg/daemon/desired.h"
#include "mseg/util/evloop.h"
#include "mseg/model/inventory.h"
#include "mseg/util/log.h"
#include "mseg/kernel/nft.h"
#include "mseg/model/policy.h"
#include "mseg/kernel/reconcile.h"
#include "mseg/daemon/flowpipe.h"
#include "mseg/daemon/relevance.h"
#include "mseg/model/addr.h"
#include "mseg/kube/kube.h"
#include "mseg/kube/kubeconfig.h"
#include "mseg/util/clock.h"

#define RELOAD_DEBOUNCE_MS 100
/* cluster events: a burst (a list page, a rollout) is one reconcile, and a
 * single event is in the kernel well within 100 ms */
#define KUBE_DEBOUNCE_MS 10
/* pod events that change no local table (relevance.h): staged (every view
 * sees them at once), and folded into a reconcile at most this long after
 * the first of them, so that the staged changes every view merges stay
 * few and the reconciler's state does not lag behind the cluster by more */
#define KUBE_FOLD_MS 1000

struct daemon {
	const struct daemon_config *cfg;
	struct evloop *loop;
	struct reconciler *rec;
	struct nft_features features;
	struct desired desired;       /* files, API and store: what should be */
	int sigfd;
	int inofd;
	struct evloop_source *sig_src, *ino_src;
	int wd_policy, wd_endpoints;
	char *endpoints_dir, *endpoints_base;
	struct evloop_source *reload_timer;
	struct evloop_source *resync_timer;
	struct flowpipe *flows;       /* NFQUEUE listeners, flow ring and log */
	uint64_t conflicts_key;       /* the address conflicts last logged */
	struct kube_watcher *kube;    /* --kubeconfig / --kubernetes; NULL: none */
	struct evloop_source *kube_timer;   /* debounces the watcher's changes */
	bool kube_waiting_said;
	bool kube_pending;            /* kube_timer armed */
	struct relevance *relev;      /* which pod events can change a local table */
	struct evloop_source *fold_timer;   /* folds in the pod events that cannot */
	bool fold_pending;            /* such events are staged, not reconciled yet */
	uint64_t rec_end_ns, rec_cost_ns;   /* the last reconcile: its end and duration */
	/* what the reconciler compiles with (reconciler_set_cluster): the
	 * --node-addr flags and the Node object's addresses, the Services */
	struct mseg_addr *node_addrs;
	size_t n_node_addrs;
	struct kube_cluster cluster;
	/* accepted-connection summaries of learning endpoints: a round every
	 * --seen-interval reads one endpoint per step, 10 ms apart (bench_seen:
	 * up to ~6 ms for a full seen set) */
	struct accepted *accepted;
	struct evloop_source *seen_timer;
	struct seen_job { char *id; unsigned dirs; } *seen_round;
	size_t seen_n, seen_cap, seen_next;
};

#define SEEN_EPS_PER_STEP 1
#define SEEN_STEP_MS 10

static void daemon_log_events(struct daemon *d)
{
	for (size_t i = 0; i < reconciler_event_count(d->rec); i++)
		log_info("%s", reconciler_event(d->rec, i));
}

/* Load policy dir and inventory into fresh sets; on success swap them in.
 * A bad file keeps the previous state in force; at start (@first) there is
 * no previous state, and msegd does not start. */
static int daemon_load(struct daemon *d, bool first)
{
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct mseg_err err;
	char msg[1024];
	int r = 0;

	policy_set_init(&pols);
	inventory_init(&inv);
	err_clear(&err);
	if (d->cfg->policy_dir) {
		r = policy_load_dir(&pols, d->cfg->policy_dir, &err);
		if (r < 0)
			goto out_fail;
	}
	if (d->cfg->endpoints_file) {
		r = inventory_load_file(&inv, d->cfg->endpoints_file, &err);
		if (r < 0)
			goto out_fail;
	}
	desired_files_replace(&d->desired, &pols, &inv);
	log_info("loaded %zu policies, %zu endpoints", d->desired.pols[DESIRED_FILE].n,
		 d->desired.inv[DESIRED_FILE].n);
	return 0;

out_fail:
	if (first)
		log_error("%s; msegd does not start without its policy dir and inventory "
			  "(starting with nothing would remove the rules in the kernel)",
			  err_format(&err, msg, sizeof(msg)));
	else
		log_error("%s; keeping the previous %zu policies and %zu endpoints in force",
			  err_format(&err, msg, sizeof(msg)), d->desired.pols[DESIRED_FILE].n,
			  d->desired.inv[DESIRED_FILE].n);
	policy_set_release(&pols);
	inventory_release(&inv);
	return r;
}

/* API objects hidden by a file of the same name: said once per reconcile. */
static void daemon_log_shadowed(const struct daemon *d)
{
	const struct desired *ds = &d->desired;

	for (size_t i = 0; i < ds->pols[DESIRED_API].n; i++) {
		const struct mseg_policy *p = ds->pols[DESIRED_API].items[i];

		if (desired_policy_shadowed(ds, p))
			log_warn("policy '%s/%s' from the API is shadowed by the policy dir",
				 p->ns, p->name);
	}
	for (size_t i = 0; i < ds->inv[DESIRED_API].n; i++) {
		const struct mseg_endpoint *ep = ds->inv[DESIRED_API].eps[i];

		if (desired_endpoint_shadowed(ds, ep))
			log_warn("endpoint '%s' from the API is shadowed by the inventory file",
				 ep->id);
	}
}

/* Addresses claimed by two endpoints: said when the set of them changes. */
static void daemon_log_conflicts(struct daemon *d, const struct desired_view *v)
{
	uint64_t key = HASH_FNV_OFFSET;
	char buf[64];

	for (size_t i = 0; i < v->n_conflicts; i++) {
		const struct desired_conflict *c = &v->conflicts[i];

		key = hash_fnv_str(key, c->winner);
		key = hash_fnv_str(key, c->loser);
		key = hash_fnv(key, &c->addr, sizeof(c->addr));
	}
	if (key == d->conflicts_key)
		return;
	d->conflicts_key = key;
	for (size_t i = 0; i < v->n_conflicts; i++) {
		const struct desired_conflict *c = &v->conflicts[i];

		log_warn("address %s is claimed by endpoints '%s' and '%s': the newer registration, "
			 "'%s', has it; '%s' lost it", addr_format(&c->addr, buf, sizeof(buf)),
			 c->winner, c->loser, c->winner, c->loser);
	}
}

/* CNI DELs that never reached msegd (mseg-cni left a tombstone). */
static void daemon_apply_tombstones(struct daemon *d)
{
	struct mseg_err err;
	char msg[512], **ids;
	size_t n;

	err_clear(&err);
	if (desired_tombstones_apply(&d->desired, &ids, &n, &err) < 0)
		log_error("tombstones: %s", err_format(&err, msg, sizeof(msg)));
	for (size_t i = 0; i < n; i++) {
		log_warn("endpoint '%s': removed (its CNI DEL could not reach msegd)", ids[i]);
		free(ids[i]);
	}
	free(ids);
}

/* Endpoints whose network namespace is gone from its path (deleted with
 * `ip netns del`, or the container is gone while msegd's own sockets keep
 * the namespace alive): an API endpoint is removed (a CNI DEL that never
 * reached msegd), a file endpoint is left out until its path comes back.
 * Either way msegd closes its sockets in that namespace. Checked at start
 * and on every resync, not on each change: an endpoint registered with a
 * path that is not there yet is reported as not programmed, not removed at
 * once. Tombstones of CNI DELs that never reached msegd are applied
 * first. */
static void daemon_check_gone(struct daemon *d)
{
	struct desired *ds = &d->desired;
	struct mseg_err err;
	char msg[512];

	daemon_apply_tombstones(d);

	for (size_t i = ds->inv[DESIRED_API].n; i-- > 0;) {
		const struct mseg_endpoint *ep = ds->inv[DESIRED_API].eps[i];
		char id[256], netns[PATH_MAX];

		if (!ep->netns || access(ep->netns, F_OK) == 0 || errno != ENOENT ||
		    desired_endpoint_shadowed(ds, ep))
			continue;
		/* the delete frees @ep */
		snprintf(id, sizeof(id), "%s", ep->id);
		snprintf(netns, sizeof(netns), "%s", ep->netns);
		err_clear(&err);
		if (desired_api_endpoint_delete(ds, id, &err) == 0)
			log_warn("endpoint '%s': its netns '%s' is gone; endpoint removed", id, netns);
		else
			log_error("endpoint '%s': its netns is gone, but removing it failed: %s", id,
				  err_format(&err, msg, sizeof(msg)));
	}
	for (size_t i = 0; i < ds->inv[DESIRED_FILE].n; i++) {
		const struct mseg_endpoint *ep = ds->inv[DESIRED_FILE].eps[i];
		bool gone = ep->netns && access(ep->netns, F_OK) != 0 && errno == ENOENT;

		if (gone != desired_endpoint_is_gone(ds, ep->id)) {
			if (desired_endpoint_set_gone(ds, ep->id, gone) < 0)
				continue;
			if (gone)
				log_warn("endpoint '%s': its netns '%s' is gone; not enforced until it "
					 "comes back", ep->id, ep->netns);
			else
				log_info("endpoint '%s': its netns '%s' is back", ep->id, ep->netns);
		}
	}
}

/* The resourceVersion of the last pod event the watcher has applied (a
 * watch stream delivers in order: every pod change up to it is in). */
static unsigned long long daemon_kube_pods_rv(const struct daemon *d)
{
	for (size_t i = 0; i < KUBE_N_RESOURCES; i++) {
		struct kube_resource_status st;

		kube_watcher_status(d->kube, i, &st);
		if (strcmp(st.resource, "pods") == 0)
			return strtoull(st.rv, NULL, 10);
	}
	return 0;
}

static bool addrs_equal(const struct mseg_addr *a, size_t na, const struct mseg_addr *b,
			size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!addr_eq(&a[i], &b[i]))
			return false;
	return true;
}

/* The cluster's node addresses (merged with --node-addr, which always
 * apply) and Service routes, handed to the reconciler. */
static int daemon_kube_cluster(struct daemon *d)
{
	struct kube_cluster cl;
	struct mseg_addr *addrs;
	size_t n = 0;
	char buf[64], line[1024];
	int r;

	r = kube_watcher_cluster(d->kube, &cl);
	if (r < 0)
		return r;
	addrs = calloc(d->cfg->n_node_addrs + cl.n_node_addrs + 1, sizeof(*addrs));
	if (!addrs) {
		kube_cluster_release(&cl);
		return -ENOMEM;
	}
	for (size_t i = 0; i < d->cfg->n_node_addrs; i++)
		addrs[n++] = d->cfg->node_addrs[i];
	for (size_t i = 0; i < cl.n_node_addrs; i++) {
		bool dup = false;

		for (size_t k = 0; k < d->cfg->n_node_addrs && !dup; k++)
			dup = addr_eq(&d->cfg->node_addrs[k], &cl.node_addrs[i]);
		if (!dup)
			addrs[n++] = cl.node_addrs[i];
	}
	if (!addrs_equal(addrs, n, d->node_addrs, d->n_node_addrs)) {
		size_t len = 0;

		line[0] = '\0';
		for (size_t i = 0; i < n && len < sizeof(line); i++)
			len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", i ? ", " : "",
						addr_format(&addrs[i], buf, sizeof(buf)));
		log_info("kubernetes: node '%s': addresses never isolated: %s", d->cfg->node_name,
			 n ? line : "none");
	}
	if (cl.n_routes != d->cluster.n_routes)
		log_debug("kubernetes: %zu service routes (VIP:port -> backend)", cl.n_routes);
	reconciler_set_cluster(d->rec, addrs, n, cl.routes, cl.n_routes);
	free(d->node_addrs);
	kube_cluster_release(&d->cluster);
	d->node_addrs = addrs;
	d->n_node_addrs = n;
	d->cluster = cl;
	return 0;
}

/* ---- accepted-connection summaries ---- */

static void seen_round_clear(struct daemon *d)
{
	for (size_t i = 0; i < d->seen_n; i++)
		free(d->seen_round[i].id);
	free(d->seen_round);
	d->seen_round = NULL;
	d->seen_n = d->seen_cap = d->seen_next = 0;
}

/* The endpoints with a table whose directions are learning now, into
 * d->seen_round; from @view (NULL: a view of the desired state now). */
static int seen_round_plan(struct daemon *d, const struct desired_view *view)
{
	uint64_t now_s = clock_real_ns() / 1000000000ull;
	struct desired_view own;
	const struct desired_view *v = view;
	int r = 0;

	seen_round_clear(d);
	if (!desired_any_learning(&d->desired, now_s))
		return 0;
	if (!v) {
		r = desired_view_build(&d->desired, NULL, &own);
		if (r < 0)
			return r;
		v = &own;
	}
	/* only the endpoints that have a table: the local ones (a view
	 * lists them; peers of other nodes never have one) */
	for (size_t l = 0; l < v->n_local && r == 0; l++) {
		const struct mseg_endpoint *ep = v->inv.eps[v->local[l]];
		ssize_t k = reconciler_ep_index(d->rec, ep->id);
		struct reconcile_ep_status st;
		unsigned dirs;

		if (k < 0 || reconciler_ep_status(d->rec, (size_t)k, &st) < 0)
			continue;
		dirs = desired_ep_learning_dirs(v, ep, now_s, NULL);
		for (int dir = 0; dir < MSEG_DIR_COUNT; dir++)
			if (!st.isolated[dir] || st.mode[dir] != MSEG_MODE_ENFORCE)
				dirs &= ~(1u << dir);
		if (!dirs)
			continue;
		if (VEC_RESERVE(d->seen_round, d->seen_cap, d->seen_n + 1) < 0) {
			r = -ENOMEM;
			break;
		}
		d->seen_round[d->seen_n].id = strdup(ep->id);
		if (!d->seen_round[d->seen_n].id) {
			r = -ENOMEM;
			break;
		}
		d->seen_round[d->seen_n++].dirs = dirs;
	}
	if (v == &own)
		desired_view_release(&own);
	return r;
}

/* Read up to @max endpoints of the round (SIZE_MAX: all). */
static void seen_round_step(struct daemon *d, size_t max)
{
	for (size_t done = 0; d->seen_next < d->seen_n && done < max; done++) {
		const struct seen_job *j = &d->seen_round[d->seen_next++];
		ssize_t k = reconciler_ep_index(d->rec, j->id);
		struct netns *ns = k >= 0 ? reconciler_ep_netns(d->rec, (size_t)k) : NULL;
		struct mseg_err err;
		char msg[512];

		if (!ns)
			continue;   /* gone since the round began */
		err_clear(&err);
		if (accepted_read(d->accepted, ns, j->id, j->dirs, &err) < 0)
			log_debug("endpoint '%s': accepted connections: %s", j->id,
				  err_format(&err, msg, sizeof(msg)));
	}
}

static void seen_save(struct daemon *d)
{
	struct mseg_err err;
	char msg[512];

	err_clear(&err);
	if (accepted_save(d->accepted, &err) < 0)
		log_error("state dir: accepted connections: %s", err_format(&err, msg, sizeof(msg)));
}

/* Every learning endpoint of @v (the view the reconcile is about to
 * apply), before the reconcile: a replace starts the kernel's counters
 * again, and what it counted must be in first. */
static void seen_read_all(struct daemon *d, const struct desired_view *v)
{
	if (!d->accepted || !d->cfg->seen_interval_sec)
		return;
	if (seen_round_plan(d, v) < 0) {
		log_error("accepted connections: out of memory");
		return;
	}
	seen_round_step(d, SIZE_MAX);
	seen_round_clear(d);
	seen_save(d);
}

static void on_seen_timer(struct evloop_source *src, uint32_t events, void *data)
{
	struct daemon *d = data;
	uint64_t interval = (uint64_t)d->cfg->seen_interval_sec * 1000;

	(void)src;
	(void)events;
	if (d->seen_next >= d->seen_n && seen_round_plan(d, NULL) < 0)
		log_error("accepted connections: out of memory");
	seen_round_step(d, SEEN_EPS_PER_STEP);
	if (d->seen_next < d->seen_n) {
		evloop_timer_arm(d->seen_timer, SEEN_STEP_MS, 0);   /* the rest of the round */
		return;
	}
	seen_round_clear(d);
	seen_save(d);
	evloop_timer_arm(d->seen_timer, interval, 0);
}

int daemon_reconcile(struct daemon *d)
{
	unsigned long long kube_rv = 0;
	uint64_t t0 = clock_mono_ns(), t_apply = 0, t_sync = 0, t_view = 0, t_relev = 0;
	const struct desired_view *v;
	int r;

	if (d->relev)
		relevance_invalidate(d->relev);   /* rebuilt from this reconcile's view */
	if (d->kube) {
		/* before the first complete list, the cluster's policies are
		 * unknown: the kernel keeps what it has (nothing opens) */
		if (!kube_watcher_synced(d->kube)) {
			if (!d->kube_waiting_said)
				log_info("kubernetes: waiting for the first list of every resource "
					 "from %s before programming", kube_watcher_server(d->kube));
			d->kube_waiting_said = true;
			return 0;
		}
		kube_rv = daemon_kube_pods_rv(d);
		t_sync = clock_mono_ns();
		/* the rest of the source is kept up to date as events come */
		r = kube_watcher_sync(d->kube, &d->desired.inv[DESIRED_API]);
		/* Node, Service, EndpointSlice events: node addresses and
		 * Service routes read again */
		if (r == 0 && kube_watcher_cluster_changed(d->kube))
			r = daemon_kube_cluster(d);
		t_sync = clock_mono_ns() - t_sync;
		if (r < 0) {
			log_error("kubernetes: out of memory; keeping the previous state");
			return r;
		}
	}
	{
		struct mseg_err serr;
		char smsg[512];

		err_clear(&serr);
		if (desired_stages_sync(&d->desired, clock_real_ns() / 1000000000ull, &serr) < 0)
			log_error("stages: %s", err_format(&serr, smsg, sizeof(smsg)));
	}
	t_view = clock_mono_ns();
	/* kept from the last reconcile: only the cluster's endpoints that
	 * changed since are taken out and put in again */
	r = desired_view_update(&d->desired, &v);
	if (r < 0) {
		log_error("reconcile: out of memory");
		return r;
	}
	if (v->shadowed_pols || v->shadowed_eps)
		daemon_log_shadowed(d);
	daemon_log_conflicts(d, v);
	{
		/* only the policies that can change a table: at cluster scale
		 * most concern pods of other nodes alone */
		struct mseg_policy_set prog = { 0 };

		r = desired_view_programmable(v, &prog.items, &prog.n);
		if (r < 0) {
			log_error("reconcile: out of memory");
			return r;
		}
		t_view = clock_mono_ns() - t_view;
		/* from the same view: no second one to find the learning
		 * endpoints (a view walks every endpoint of the cluster) */
		seen_read_all(d, v);
		prog.cap = prog.n;
		t_apply = clock_mono_ns();
		r = reconciler_apply(d->rec, &prog, &v->inv);
		t_apply = clock_mono_ns() - t_apply;
		/* what the next pod events are judged by: this view (every pod
		 * event up to now is in it) */
		if (d->relev && (r == 0 || r == -EIO)) {
			t_relev = clock_mono_ns();
			if (relevance_rebuild(d->relev, &d->desired, v, prog.items, prog.n) < 0)
				log_error("kubernetes: out of memory; every pod event reconciles");
			t_relev = clock_mono_ns() - t_relev;
		}
		d->fold_pending = false;
		free(prog.items);
	}
	daemon_log_events(d);
	if (d->flows)
		flowpipe_sync(d->flows, d->rec);
	if (r < 0 && r != -EIO)
		log_error("compile failed: %s", strerror(-r));
	/* what bench/kube_scale.sh times an event by: every change up to this
	 * resourceVersion is in the kernel (acknowledged) at this time */
	if (kube_rv)
		log_debug("kubernetes: pods resourceVersion %llu applied at %llu ms (reconcile %.1f ms, "
			  "%zu endpoints, %zu policies; reconciler %.1f ms; kubernetes sync %.1f ms, "
			  "desired view %.1f ms; relevance %.1f ms)", kube_rv,
			  (unsigned long long)(clock_real_ns() / 1000000),
			  (double)(clock_mono_ns() - t0) / 1e6, v->inv.n, v->pols.n,
			  (double)t_apply / 1e6, (double)t_sync / 1e6, (double)t_view / 1e6,
			  (double)t_relev / 1e6);
	d->rec_end_ns = clock_mono_ns();
	d->rec_cost_ns = d->rec_end_ns - t0;
	return r;
}

static int daemon_watch_add(struct daemon *d)
{
	const uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM |
			      IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |
			      IN_DONT_FOLLOW | IN_ONLYDIR;

	if (d->cfg->policy_dir && d->wd_policy < 0) {
		d->wd_policy = inotify_add_watch(d->inofd, d->cfg->policy_dir, mask);
		/* a missing dir is reported by the load that follows */
		if (d->wd_policy < 0 && errno != ENOENT)
			log_warn("cannot watch policy dir '%s': %s", d->cfg->policy_dir,
				 strerror(errno));
	}
	if (d->endpoints_dir && d->wd_endpoints < 0) {
		d->wd_endpoints = inotify_add_watch(d->inofd, d->endpoints_dir, mask);
		if (d->wd_endpoints < 0)
			log_warn("cannot watch '%s': %s", d->endpoints_dir, strerror(errno));
	}
	return 0;
}

static void on_reload_timer(struct evloop_source *src, uint32_t events, void *data)
{
	struct daemon *d = data;

	/* the policy dir may have been replaced: watch it again */
	daemon_watch_add(d);
	if (daemon_load(d, false) == 0)
		daemon_reconcile(d);
}

static void daemon_schedule_reload(struct daemon *d)
{
	int r = evloop_timer_arm(d->reload_timer, RELOAD_DEBOUNCE_MS, 0);

	if (r < 0)
		log_error("cannot arm reload timer: %s", strerror(-r));
}

static void on_inotify(struct evloop_source *src, uint32_t events, void *data)
{
	struct daemon *d = data;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool reload = false;
	ssize_t n;

	while ((n = read(d->inofd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_IGNORED) {
				if (ev->wd == d->wd_policy)
					d->wd_policy = -1;
				if (ev->wd == d->wd_endpoints)
					d->wd_endpoints = -1;
				reload = true;
				continue;
			}
			if (ev->wd == d->wd_policy) {
				reload = true;   /* any file, also the ConfigMap's ..data swap */
			} else if (ev->wd == d->wd_endpoints && ev->len &&
				   (strcmp(ev->name, d->endpoints_base) == 0 ||
				    strcmp(ev->name, "..data") == 0)) {
				/* the file, or the ..data swap of a ConfigMap
				 * volume its symlink points through */
				reload = true;
			}
		}
	}
	if (reload)
		daemon_schedule_reload(d);
}

static void on_resync_timer(struct evloop_source *src, uint32_t events, void *data)
{
	struct daemon *d = data;
	uint64_t gen = d->desired.generation;
	size_t gone = d->desired.n_gone;
	unsigned repaired = 0;
	int r;

	/* the next compile is a full one: the reference the compile cache's
	 * incremental ones must equal (compile/cache.h) */
	reconciler_cache_clear(d->rec);
	/* a namespace that went away since: reconcile without it */
	daemon_check_gone(d);
	if (gen != d->desired.generation || gone != d->desired.n_gone)
		daemon_reconcile(d);
	else if (d->flows)
		flowpipe_sync(d->flows, d->rec);   /* retries what did not take */
	r = reconciler_resync(d->rec, &repaired);

	daemon_log_events(d);
	if (r < 0 && r != -EIO)
		log_error("resync failed: %s", strerror(-r));
	else if (repaired)
		log_warn("resync repaired %u drifted table(s)", repaired);
}

static void on_signal(struct evloop_source *src, uint32_t events, void *data)
{
	struct daemon *d = data;
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("signal %u: exiting; the rules stay in the kernel", si.ssi_signo);
			evloop_quit(d->loop);
			break;
		case SIGHUP:
			log_info("SIGHUP: reloading");
			daemon_schedule_reload(d);
			break;
		}
	}
}

static int daemon_split_endpoints_path(struct daemon *d)
{
	const char *path = d->cfg->endpoints_file;
	const char *slash;

	if (!path)
		return 0;
	slash = strrchr(path, '/');
	if (!slash) {
		d->endpoints_dir = strdup(".");
		d->endpoints_base = strdup(path);
	} else {
		d->endpoints_dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
		d->endpoints_base = strdup(slash + 1);
	}
	if (!d->endpoints_dir || !d->endpoints_base)
		return -ENOMEM;
	return 0;
}

uint64_t daemon_kube_delay_ms(uint64_t last_end_ns, uint64_t last_cost_ns, uint64_t now_ns,
			      uint64_t debounce_ms, unsigned share)
{
	uint64_t ready, ms;

	if (share < 1 || share > 100)
		share = 100;
	ready = last_end_ns + last_cost_ns / share * (100 - share);
	if (!last_end_ns || ready <= now_ns)
		return debounce_ms;
	ms = (ready - now_ns + 999999) / 1000000;
	if (ms < debounce_ms)
		return debounce_ms;
	return ms > KUBE_PACE_MAX_MS ? KUBE_PACE_MAX_MS : ms;
}

static void on_kube_timer(struct evloop_source *src, uint32_t events, void *data)
{
	struct daemon *d = data;

	d->kube_pending = false;
	daemon_reconcile(d);
}

/* A pod event judged by the pod's state before and after it
 * (relevance.h). */
static bool on_kube_pod_matters(void *data, const char *key, const struct mseg_endpoint *ep,
				bool local, bool after)
{
	struct daemon *d = data;

	if (after)
		return relevance_pod_after(d->relev, &d->desired, key, ep, local);
	return relevance_pod_before(d->relev, &d->desired, key, ep, local);
}

static void on_fold_timer(struct evloop_source *src, uint32_t events, void *data)
{
	struct daemon *d = data;

	(void)src;
	(void)events;
	/* unless a reconcile took them in since, or one is on its way */
	if (!d->fold_pending || d->kube_pending)
		return;
	d->fold_pending = false;
	daemon_reconcile(d);
}

static void kube_schedule(struct daemon *d);

/* A pod event, judged (relevance.h): one that may change a local table
 * reconciles as any change; one that cannot is staged in the source and
 * folded into the next reconcile, which runs within KUBE_FOLD_MS. A pod
 * change not judged (@rv NULL: a list) is a change the filter missed. */
static void on_kube_pod_event(void *data, bool matters, const char *rv)
{
	struct daemon *d = data;
	int r;

	if (!rv)
		relevance_forget(d->relev);
	if (matters) {
		kube_schedule(d);
		return;
	}
	/* what bench/kube_scale.sh times such an event by: no table needs
	 * it, it is done when it is judged */
	log_debug("kubernetes: pods event resourceVersion %s changes no local table at %llu ms",
		  rv, (unsigned long long)(clock_real_ns() / 1000000));
	if (d->fold_pending)
		return;
	r = evloop_timer_arm(d->fold_timer, KUBE_FOLD_MS, 0);
	if (r < 0) {
		log_error("cannot arm the kubernetes timer: %s", strerror(-r));
		kube_schedule(d);
		return;
	}
	d->fold_pending = true;
}

/* Anything of the cluster but a judged pod event: what pod events are
 * judged by may have changed. */
static void on_kube_changed(void *data)
{
	struct daemon *d = data;

	relevance_invalidate(d->relev);
	kube_schedule(d);
}

static void kube_schedule(struct daemon *d)
{
	int r;

	/* armed once per batch, not pushed back by each event: a steady
	 * stream of events still reconciles every KUBE_DEBOUNCE_MS, or, when
	 * reconciles are long, at the pace that keeps them to their share */
	if (d->kube_pending)
		return;
	r = evloop_timer_arm(d->kube_timer,
				 daemon_kube_delay_ms(d->rec_end_ns, d->rec_cost_ns,
						      clock_mono_ns(), KUBE_DEBOUNCE_MS,
						      d->cfg->kube_share),
				 0);
	if (r < 0)
		log_error("cannot arm the kubernetes timer: %s", strerror(-r));
	else
		d->kube_pending = true;
}

static void on_kube_log(void *data, enum log_level lvl, const char *msg)
{
	LOG_AT(lvl, "kubernetes: %s", msg);
}

/* --kubeconfig or --kubernetes in-cluster: start watching. */
static int daemon_kube_setup(struct daemon *d)
{
	const struct kube_watcher_cbs cbs = {
		.changed = on_kube_changed,
		.log = on_kube_log,
		.data = d,
		.pod_matters = on_kube_pod_matters,
		.pod_event = on_kube_pod_event,
	};
	struct kube_watcher_opts o = {
		.node_name = d->cfg->node_name,
		.idle_timeout_s = d->cfg->kube_idle_sec,
		.page_size = d->cfg->kube_page_size,
		.pols = &d->desired.pols[DESIRED_KUBE],
		.inv = &d->desired.inv[DESIRED_KUBE],
	};
	struct kube_config kc;
	struct mseg_err err;
	char msg[1024];
	int r;

	err_clear(&err);
	if (d->cfg->kubeconfig)
		r = kube_config_load_file(&kc, d->cfg->kubeconfig, &err);
	else
		r = kube_config_in_cluster(&kc, NULL, NULL, NULL, &err);
	if (r < 0) {
		log_error("kubernetes: %s", err_format(&err, msg, sizeof(msg)));
		return r;
	}
	log_info("kubernetes: watching %s (%s) as node '%s'", kc.server, kc.source,
		 d->cfg->node_name);
	d->desired.kube_pods = true;
	d->relev = relevance_new();
	if (!d->relev) {
		kube_config_release(&kc);
		log_error("startup failed: out of memory");
		return -ENOMEM;
	}
	d->fold_timer = evloop_add_timer(d->loop, 0, 0, on_fold_timer, d, &r);
	d->kube_timer = d->fold_timer ? evloop_add_timer(d->loop, 0, 0, on_kube_timer, d, &r) : NULL;
	if (!d->kube_timer) {
		kube_config_release(&kc);
		log_error("startup failed: timer: %s", strerror(-r));
		return r;
	}
	r = kube_watcher_new(d->loop, &kc, &o, &cbs, &d->kube, &err);
	kube_config_release(&kc);
	if (r < 0) {
		log_error("kubernetes: %s", err_format(&err, msg, sizeof(msg)));
		return r;
	}
	return 0;
}

static int setup_failed(const char *what, int r)
{
	log_error("startup failed: %s: %s", what, strerror(-r));
	return r;
}

/* Every failure is logged once, here. */
static int daemon_setup(struct daemon *d)
{
	struct nft_features feat;
	struct mseg_err err;
	char msg[1024];
	struct table_opts topts = {
		.queue = QUEUE_XT,
		.queue_num = d->cfg->queue_num,
		.rate = d->cfg->queue_rate,
		.burst = d->cfg->queue_burst,
	};
	struct compile_opts copts = {
		.default_deny = d->cfg->default_deny,
		.default_mode = d->cfg->mode,
		.force_audit = d->cfg->mode == MSEG_MODE_AUDIT,
		.node_addrs = d->cfg->node_addrs,
		.n_node_addrs = d->cfg->n_node_addrs,
	};
	sigset_t mask;
	int r;

	/* the API's durable state, loaded before the first reconcile;
	 * first of all, since it also locks the state dir against a second msegd */
	err_clear(&err);
	r = desired_store_open(&d->desired, d->cfg->state_dir, &err);
	if (r < 0) {
		log_error("state dir: %s", err_format(&err, msg, sizeof(msg)));
		return r;
	}
	/* a bad stages file loses the stages (modes set through the API, the
	 * ends of learning), not the policies: they run as their documents say */
	if (desired_stages_load(&d->desired, &err) < 0)
		log_error("state dir: %s; the lines after it are ignored",
			  err_format(&err, msg, sizeof(msg)));
	d->accepted = accepted_new(d->cfg->state_dir);
	if (!d->accepted)
		return setup_failed("accepted connections", -ENOMEM);
	if (accepted_load(d->accepted, &err) < 0)
		log_error("state dir: %s; the lines after it are ignored",
			  err_format(&err, msg, sizeof(msg)));
	log_info("state dir '%s': %zu policies and %zu endpoints from the API",
		 d->cfg->state_dir, d->desired.pols[DESIRED_API].n, d->desired.inv[DESIRED_API].n);
	for (size_t i = 0; i < desired_store_quarantined_count(&d->desired); i++)
		log_error("state dir: %s", desired_store_quarantined(&d->desired, i));
	err_clear(&err);
	r = nft_features_probe(&feat, &err);
	if (r < 0) {
		log_error("kernel probe: %s", err_format(&err, msg, sizeof(msg)));
		return r;
	}
	d->features = feat;
	topts.queue = feat.queue;
	log_info("kernel: queue method %s (native queue %s, xt NFQUEUE %s, nflog %s)%s%s",
		 queue_method_name(feat.queue), feat.queue_native ? "yes" : "no",
		 feat.queue_xt ? "yes" : "no", feat.nflog ? "yes" : "no",
		 feat.detail[0] ? "; " : "", feat.detail);

	d->rec = reconciler_new(&topts, &copts);
	if (!d->rec)
		return setup_failed("reconciler", -ENOMEM);
	reconciler_set_revoke(d->rec, d->cfg->revoke);
	err_clear(&err);
	r = flowpipe_new(d->loop, d->cfg, &d->flows, &err);
	if (r < 0) {
		log_error("%s", err_format(&err, msg, sizeof(msg)));
		return r;
	}
	if (feat.queue == QUEUE_NFLOG)
		log_warn("no NFQUEUE on this kernel: unmatched packets get the kernel's verdict "
			 "and are not recorded as flows");

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0)
		return setup_failed("signalfd", -errno);
	d->sig_src = evloop_add_fd(d->loop, d->sigfd, EPOLLIN, on_signal, d, &r);
	if (!d->sig_src)
		return setup_failed("signalfd", r);

	d->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->inofd < 0)
		return setup_failed("inotify", -errno);
	d->ino_src = evloop_add_fd(d->loop, d->inofd, EPOLLIN, on_inotify, d, &r);
	if (!d->ino_src)
		return setup_failed("inotify", r);
	r = daemon_split_endpoints_path(d);
	if (r < 0)
		return setup_failed("--endpoints", r);
	daemon_watch_add(d);

	d->reload_timer = evloop_add_timer(d->loop, 0, 0, on_reload_timer, d, &r);
	if (!d->reload_timer)
		return setup_failed("timer", r);
	if (d->cfg->kubeconfig || d->cfg->kube_in_cluster) {
		r = daemon_kube_setup(d);
		if (r < 0)
			return r;
	}
	if (d->cfg->resync_sec) {
		uint64_t ms = (uint64_t)d->cfg->resync_sec * 1000;

		d->resync_timer = evloop_add_timer(d->loop, ms, ms, on_resync_timer, d, &r);
		if (!d->resync_timer)
			return setup_failed("timer", r);
	}
	if (d->cfg->seen_interval_sec) {
		uint64_t ms = (uint64_t)d->cfg->seen_interval_sec * 1000;

		d->seen_timer = evloop_add_timer(d->loop, ms, 0, on_seen_timer, d, &r);
		if (!d->seen_timer)
			return setup_failed("timer", r);
	}
	return 0;
}

int daemon_new(const struct daemon_config *cfg, struct daemon **ret)
{
	struct daemon *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->cfg = cfg;
	d->sigfd = -1;
	d->inofd = -1;
	d->wd_policy = -1;
	d->wd_endpoints = -1;
	desired_init(&d->desired);
	log_max_level = cfg->log_level;
	d->loop = evloop_new();
	if (!d->loop) {
		daemon_free(d);
		return setup_failed("event loop", -ENOMEM);
	}
	r = daemon_setup(d);
	if (r < 0) {
		daemon_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

int daemon_run(struct daemon *d)
{
	const struct reconcile_stats *st;
	int r;

	/* The first load must succeed: starting with nothing would remove tables. */
	r = daemon_load(d, true);
	if (r < 0)
		return r;
	daemon_check_gone(d);
	daemon_reconcile(d);
	st = reconciler_stats(d->rec);
	log_info("msegd ready: %zu endpoints, %s; adopted %llu, replaced %llu, failed %llu; "
		 "resync every %u s",
		 reconciler_ep_count(d->rec),
		 reconciler_ready(d->rec) ? "all programmed" : "NOT all programmed",
		 (unsigned long long)st->adopted, (unsigned long long)st->replaces,
		 (unsigned long long)st->failures, d->cfg->resync_sec);
	return evloop_run(d->loop);
}

struct daemon *daemon_free(struct daemon *d)
{
	if (!d)
		return NULL;
	d->kube = kube_watcher_free(d->kube);
	evloop_source_remove(d->kube_timer);
	evloop_source_remove(d->fold_timer);
	d->relev = relevance_free(d->relev);
	d->flows = flowpipe_free(d->flows);
	d->rec = reconciler_free(d->rec);
	free(d->node_addrs);
	kube_cluster_release(&d->cluster);
	desired_release(&d->desired);
	/* the loop does not free sources still registered */
	evloop_source_remove(d->sig_src);
	evloop_source_remove(d->ino_src);
	evloop_source_remove(d->reload_timer);
	evloop_source_remove(d->resync_timer);
	evloop_source_remove(d->seen_timer);
	seen_round_clear(d);
	if (d->accepted)
		seen_save(d);
	d->accepted = accepted_free(d->accepted);
	d->loop = evloop_free(d->loop);
	if (d->sigfd >= 0)
		close(d->sigfd);
	if (d->inofd >= 0)
		close(d->inofd);
	free(d->endpoints_dir);
	free(d->endpoints_base);
	free(d);
	return NULL;
}

struct evloop *daemon_loop(struct daemon *d)
{
	return d->loop;
}

struct desired *daemon_desired(struct daemon *d)
{
	return &d->desired;
}

struct reconciler *daemon_reconciler(struct daemon *d)
{
	return d->rec;
}

const struct nft_features *daemon_features(const struct daemon *d)
{
	return &d->features;
}

struct flowpipe *daemon_flowpipe(struct daemon *d)
{
	return d->flows;
}

struct accepted *daemon_accepted(struct daemon *d)
{
	return d->accepted;
}

struct kube_watcher *daemon_kube(struct daemon *d)
{
	return d->kube;
}
