/* bench_netpol: 1,000 Kubernetes NetworkPolicies over 5,000 pods in 200
 * namespaces, through the real parsers and compile_plan(). Targets: compile
 * under 200 ms and peak RSS under 128 MiB. Side by side in the same run, the
 * baseline: the same host and rule count written as 1,000 mseg AllowLists.
 *
 *   bench_netpol [--runs N] [--check] [--label-reps N (default 50; 0: skip)]
 *
 * Namespaces carry team and env labels (the inventory's namespaces:
 * section); each has 25 pods of 5 apps with IPv4 and IPv6 addresses and
 * named ports (http, metrics with a number per replica, dns/UDP). Each
 * namespace has 5 NetworkPolicies, one per app: ingress from the next app
 * of the namespace on a named and a numbered port, from an app of the
 * namespaces of another team (namespaceSelector AND podSelector) on an
 * endPort range, from an ipBlock with except on a named port; every other
 * policy also isolates egress (to an app of the namespace on a named port,
 * to the DNS pods of ns-000 on the named port dns/UDP). Each case runs in its own
 * child process, whose peak RSS the parent reads (wait4); the figures are
 * the medians of --runs compiles, wall-clock and CPU time (the CPU time
 * shows what a compile costs when other work shares the cores). --check
 * exits 1 when a target is missed.
 *
 * Then (root only; skipped otherwise, or with --label-reps 0) the label
 * change: the same host with LOCAL_EPS of its pods local (each in its own
 * network namespace, private to this process, programmed by the real
 * reconciler through netlink) and the others peers only. One namespace's
 * team label changes (team-N <-> team-none): the 1/10 of the policies whose
 * namespaceSelector picks team-N lose or regain its pods, so 10% of the
 * pods (500; 10 of the local ones) get new entries. Timed, --label-reps
 * times, alternating: reconciler_apply() with the relabelled inventory
 * (compile, diff, one element batch per changed namespace, then the
 * conntrack walks of the namespaces that lost allows), from its call to the
 * kernel's ack of its last batch (reconcile_stats.last_apply_ack_ns: every
 * namespace has its new rules) and to its return. Baseline side by side,
 * each repetition: the same change as a full replace (compile, then
 * ep_table_replace() of every local table). Prints p50/p99 of both and their ratio, the kernel's
 * part (the batches: building, sending, acks), the changes that remove
 * entries and those that add them apart, the conntrack walks made and
 * skipped, and that the label changes sent no table replace. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>

#include "mseg/compile/cache.h"
#include "mseg/kernel/nft.h"
#include "mseg/kernel/reconcile.h"
#include "mseg/model/inventory.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"
#include "mseg/util/clock.h"
#include "mseg/util/memtune.h"
#include "bench_util.h"
#include "../tests/unit/tbuf.h"   /* the growing text buffer of the tests */

#define TARGET_MS 200.0
#define TARGET_MIB 128.0
#define N_NS 200
#define PODS_PER_NS 25
#define APPS 5
#define LOCAL_NS 20      /* pods 0..APPS-1 of the first LOCAL_NS namespaces are local */
#define LOCAL_EPS (LOCAL_NS * APPS)
#define RELABEL_NS 57    /* the namespace whose label changes (team-7) */

static double clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

/* @netns: LOCAL_EPS namespace paths for the local pods, or NULL (all
 * peers). @relabel: the team label of namespace RELABEL_NS is "team-none". */
static void inventory_text(struct buf *b, char (*netns)[64], bool relabel)
{
	bput(b, "namespaces:\n");
	for (int i = 0; i < N_NS; i++) {
		if (relabel && i == RELABEL_NS)
			bput(b, "  - {name: ns-%03d, labels: {team: team-none, env: %s}}\n", i,
				i % 2 ? "dev" : "prod");
		else
			bput(b, "  - {name: ns-%03d, labels: {team: team-%d, env: %s}}\n", i,
				i % 10, i % 2 ? "dev" : "prod");
	}
	bput(b, "endpoints:\n");
	for (int i = 0; i < N_NS; i++) {
		for (int j = 0; j < PODS_PER_NS; j++) {
			int idx = i * PODS_PER_NS + j;

			bput(b,
				"  - {id: ns-%03d-p%02d, namespace: ns-%03d, "
				"labels: {app: app-%d, tier: t%d}, "
				"ips: [10.1.%d.%d, \"fd00::1:%x\"], "
				"ports: [{name: http, port: 8080}, {name: metrics, port: %d}, "
				"{name: dns, port: 53, protocol: UDP}]",
				i, j, i, j % APPS, j % 3, idx / 250, idx % 250 + 1, idx, 9000 + j % 4);
			if (netns && i < LOCAL_NS && j < APPS)
				bput(b, ", netns: \"%s\"", netns[i * APPS + j]);
			bput(b, "}\n");
		}
	}
}

static void netpol_text(struct buf *b)
{
	for (int i = 0; i < N_NS; i++) {
		for (int k = 0; k < APPS; k++) {
			bput(b,
				"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
				"metadata: {name: app-%d, namespace: ns-%03d}\n"
				"spec:\n  podSelector: {matchLabels: {app: app-%d}}\n"
				"  ingress:\n"
				"  - from: [{podSelector: {matchLabels: {app: app-%d}}}]\n"
				"    ports: [{port: http}, {port: 5432}]\n"
				"  - from:\n    - namespaceSelector: {matchLabels: {team: team-%d}}\n"
				"      podSelector: {matchExpressions: [{key: app, operator: In, "
				"values: [app-%d]}]}\n"
				"    ports: [{port: 8000, endPort: 8100}]\n"
				"  - from: [{ipBlock: {cidr: 192.168.%d.0/24, except: [192.168.%d.128/25]}}]\n"
				"    ports: [{port: metrics}]\n",
				k, i, k, (k + 1) % APPS, (i + k + 1) % 10, k, i % 250, i % 250);
			if (k % 2)
				continue;
			bput(b,
				"  egress:\n"
				"  - to: [{podSelector: {matchLabels: {app: app-%d}}}]\n"
				"    ports: [{port: http}]\n"
				"  - to:\n    - namespaceSelector: {matchLabels: "
				"{kubernetes.io/metadata.name: ns-000}}\n"
				"      podSelector: {matchLabels: {app: app-0}}\n"
				"    ports: [{port: dns, protocol: UDP}]\n",
				(k + 2) % APPS);
		}
	}
}

/* The baseline: as many AllowLists, each with selectors in its own
 * namespace and an address group, and allows of the same ports. */
static void allowlist_text(struct buf *b)
{
	for (int i = 0; i < N_NS; i++) {
		for (int k = 0; k < APPS; k++) {
			bput(b,
				"---\napiVersion: mseg.io/v1\nkind: AllowList\n"
				"metadata: {name: app-%d, namespace: ns-%03d}\n"
				"spec:\n  isolation: %s\n  groups:\n"
				"    self: {selector: {app: app-%d}}\n"
				"    next: {selector: {app: app-%d}}\n"
				"    other: {selector: {app: app-%d, tier: t1}}\n"
				"    office: {cidrs: [192.168.%d.0/24], except: [192.168.%d.128/25]}\n"
				"  allow:\n"
				"  - {from: next, to: self, ports: [tcp/8080, tcp/5432]}\n"
				"  - {from: other, to: self, ports: [tcp/8000-8100]}\n"
				"  - {from: office, to: self, ports: [tcp/9000-9003]}\n",
				k, i, k % 2 ? "ingress" : "both", k, (k + 1) % APPS, (k + 3) % APPS,
				i % 250, i % 250);
			if (k % 2 == 0)
				bput(b, "  - {from: self, to: next, ports: [tcp/8080, udp/53]}\n");
		}
	}
}

struct result {
	double parse_ms, compile_ms, cpu_ms;
	size_t n_pols, n_entries, n_isolated;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* In a child: parse both documents, compile @runs times. */
static int run_case(const struct buf *inv_text, const struct buf *pol_text, int runs,
		    struct result *res)
{
	struct mseg_inventory inv;
	struct mseg_policy_set pols;
	struct mseg_err err;
	double t0, c0, *times = calloc(2 * (size_t)runs, sizeof(*times)), *cpu;
	int r;

	inventory_init(&inv);
	policy_set_init(&pols);
	t0 = now_ms();
	r = inventory_parse_buffer(&inv, "inventory.yaml", inv_text->p, inv_text->len, &err);
	if (r == 0)
		r = policy_parse_buffer(&pols, "policies.yaml", pol_text->p, pol_text->len, &err);
	res->parse_ms = now_ms() - t0;
	if (r < 0 || !times) {
		char msg[512];

		fprintf(stderr, "bench_netpol: %s\n", err_format(&err, msg, sizeof(msg)));
		return 1;
	}
	cpu = times + runs;
	res->n_pols = pols.n;
	for (int i = 0; i < runs; i++) {
		struct compile_opts opts = { .default_mode = MSEG_MODE_ENFORCE };
		struct mseg_plan *plan = NULL;

		t0 = now_ms();
		c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
		r = compile_plan((const struct mseg_policy *const *)pols.items, pols.n,
				 (const struct mseg_endpoint *const *)inv.eps, inv.n, &opts, &plan);
		times[i] = now_ms() - t0;
		cpu[i] = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
		if (r < 0) {
			fprintf(stderr, "bench_netpol: compile: %s\n", strerror(-r));
			return 1;
		}
		res->n_entries = res->n_isolated = 0;
		for (size_t e = 0; e < plan->n_eps; e++) {
			for (int d = 0; d < MSEG_DIR_COUNT; d++) {
				res->n_entries += plan->eps[e].dir[d].n_entries;
				res->n_isolated += plan->eps[e].dir[d].isolated;
			}
		}
		plan_free(plan);
	}
	qsort(times, (size_t)runs, sizeof(*times), cmp_double);
	res->compile_ms = times[runs / 2];
	qsort(cpu, (size_t)runs, sizeof(*cpu), cmp_double);
	res->cpu_ms = cpu[runs / 2];
	free(times);
	policy_set_release(&pols);
	inventory_release(&inv);
	return 0;
}

/* Fork, run, and return the child's result and peak RSS in MiB. */
static int run_child(const struct buf *inv_text, const struct buf *pol_text, int runs,
		     struct result *res, double *ret_mib)
{
	struct rusage ru;
	int fds[2], status;
	pid_t pid;

	if (pipe(fds) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct result r = { 0 };
		int rc;

		close(fds[0]);
		rc = run_case(inv_text, pol_text, runs, &r);
		if (write(fds[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			rc = 1;
		_exit(rc);
	}
	close(fds[1]);
	if (read(fds[0], res, sizeof(*res)) != (ssize_t)sizeof(*res))
		memset(res, 0, sizeof(*res));
	close(fds[0]);
	if (wait4(pid, &status, 0, &ru) < 0)
		return -errno;
	*ret_mib = ru.ru_maxrss / 1024.0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* ---- the label change (root) ---- */

static double pct_ms(uint64_t *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return (double)v[(size_t)(p * (double)(n - 1) + 0.5)] / 1e6;
}

static const struct table_opts label_topts = {
	.queue = QUEUE_NFLOG, .rate = TABLE_DEFAULT_RATE, .burst = TABLE_DEFAULT_BURST,
};

/* The baseline: compile @inv, then replace every local table (in the
 * baseline's own namespaces @hs) with its plan. *@ret_kernel: the kernel's
 * part (sendmsg to last ack, summed); *@ret_compile: the compile's. */
static int label_replace_all(const struct mseg_policy_set *pols, const struct mseg_inventory *inv,
			     struct netns **hs, uint64_t *ret_kernel, uint64_t *ret_compile)
{
	uint64_t t0 = clock_mono_ns();
	struct compile_opts copts = { .default_mode = MSEG_MODE_ENFORCE };
	struct mseg_plan *plan = NULL;
	struct mseg_err err = { 0 };
	int r;

	*ret_kernel = 0;
	r = compile_plan((const struct mseg_policy *const *)pols->items, pols->n,
			 (const struct mseg_endpoint *const *)inv->eps, inv->n, &copts, &plan);
	*ret_compile = clock_mono_ns() - t0;
	if (r < 0)
		return r;
	for (size_t e = 0; e < plan->n_eps && r == 0; e++) {
		const struct mseg_endpoint *ep = plan->eps[e].ep;
		int i, j;

		if (!ep->netns || sscanf(ep->id, "ns-%d-p%d", &i, &j) != 2)
			continue;
		r = ep_table_replace(hs[i * APPS + j], &plan->eps[e], &label_topts, NULL, 0, &err);
		*ret_kernel += netns_stats(hs[i * APPS + j])->last_batch_ns;
	}
	if (r < 0) {
		char msg[512];

		fprintf(stderr, "bench_netpol: replace: %s\n", err_format(&err, msg, sizeof(msg)));
	}
	plan_free(plan);
	return r;
}

static int label_bench(const struct buf *pol_text, int reps)
{
	static char paths[2 * LOCAL_EPS][64];
	struct compile_opts copts = { .default_mode = MSEG_MODE_ENFORCE };
	struct buf text[2] = { { 0 }, { 0 } };
	struct mseg_inventory inv[2];
	struct mseg_policy_set pols;
	struct mseg_err err = { 0 };
	struct netns *hs[LOCAL_EPS] = { 0 };
	struct reconciler *rc = NULL;
	struct reconcile_stats st0;
	const struct reconcile_stats *st;
	uint64_t *t_upd = calloc(13 * (size_t)reps, sizeof(uint64_t)), *k_upd, *t_rep, *k_rep, *c_rep;
	/* [removing, adding][whole, to the last ack, the batches] */
	uint64_t *o_upd, *a_upd, *by_dir[2][3];
	size_t n_dir[2] = { 0, 0 };
	struct compile_cache_stats cs0;
	const struct compile_cache_stats *cs;
	int fds[2 * LOCAL_EPS], rv = 1, r;
	unsigned repaired = 0;
	char msg[512];

	if (!t_upd)
		return 1;
	k_upd = t_upd + reps;
	t_rep = k_upd + reps;
	k_rep = t_rep + reps;
	c_rep = k_rep + reps;
	o_upd = c_rep + reps;
	a_upd = o_upd + reps;
	by_dir[0][0] = a_upd + reps;
	by_dir[0][1] = by_dir[0][0] + reps;
	by_dir[0][2] = by_dir[0][1] + reps;
	by_dir[1][0] = by_dir[0][2] + reps;
	by_dir[1][1] = by_dir[1][0] + reps;
	by_dir[1][2] = by_dir[1][1] + reps;
	for (int i = 0; i < 2 * LOCAL_EPS; i++) {
		fds[i] = ns_create();
		if (fds[i] < 0) {
			fprintf(stderr, "bench_netpol: namespace: %s\n", strerror(-fds[i]));
			for (int k = 0; k < i; k++)
				close(fds[k]);
			free(t_upd);
			return 1;
		}
		snprintf(paths[i], sizeof(paths[i]), "/proc/%d/fd/%d", (int)getpid(), fds[i]);
	}
	inventory_text(&text[0], paths, false);
	inventory_text(&text[1], paths, true);
	inventory_init(&inv[0]);
	inventory_init(&inv[1]);
	policy_set_init(&pols);
	r = inventory_parse_buffer(&inv[0], "inventory.yaml", text[0].p, text[0].len, &err);
	if (r == 0)
		r = inventory_parse_buffer(&inv[1], "inventory-relabelled.yaml", text[1].p,
					   text[1].len, &err);
	if (r == 0)
		r = policy_parse_buffer(&pols, "policies.yaml", pol_text->p, pol_text->len, &err);
	if (r < 0) {
		fprintf(stderr, "bench_netpol: %s\n", err_format(&err, msg, sizeof(msg)));
		goto out;
	}
	for (int i = 0; i < LOCAL_EPS; i++) {
		r = netns_open(paths[LOCAL_EPS + i], &hs[i]);
		if (r < 0) {
			fprintf(stderr, "bench_netpol: %s: %s\n", paths[LOCAL_EPS + i], strerror(-r));
			goto out;
		}
	}

	/* the starting point: every local table programmed, in both sets */
	rc = reconciler_new(&label_topts, &copts);
	if (!rc)
		goto out;
	r = reconciler_apply(rc, &pols, &inv[0]);
	if (r == 0)
		r = label_replace_all(&pols, &inv[0], hs, &k_rep[0], &c_rep[0]);
	if (r < 0) {
		fprintf(stderr, "bench_netpol: first programming: %s\n", strerror(-r));
		goto out;
	}
	st = reconciler_stats(rc);
	st0 = *st;
	cs = reconciler_cache_stats(rc);
	cs0 = *cs;
	for (int i = 0; i < reps; i++) {
		int to = (i + 1) % 2;   /* 0 -> 1 (relabelled) -> 0 -> ... */
		uint64_t b0 = st->batch_ns_total, t0 = clock_mono_ns();

		r = reconciler_apply(rc, &pols, &inv[to]);
		t_upd[i] = clock_mono_ns() - t0;
		k_upd[i] = st->batch_ns_total - b0;
		o_upd[i] = t_upd[i] - k_upd[i];
		a_upd[i] = st->last_apply_ack_ns;
		/* to team-none: ns-057's pods leave the policies' peers */
		by_dir[!to][0][n_dir[!to]] = t_upd[i];
		by_dir[!to][1][n_dir[!to]] = a_upd[i];
		by_dir[!to][2][n_dir[!to]++] = k_upd[i];
		if (r < 0) {
			fprintf(stderr, "bench_netpol: reconcile: %s\n", strerror(-r));
			goto out;
		}
		t0 = clock_mono_ns();
		r = label_replace_all(&pols, &inv[to], hs, &k_rep[i], &c_rep[i]);
		t_rep[i] = clock_mono_ns() - t0;
		if (r < 0)
			goto out;
	}
	r = reconciler_resync(rc, &repaired);
	if (r < 0) {
		fprintf(stderr, "bench_netpol: resync: %s\n", strerror(-r));
		goto out;
	}
	printf("label change: namespace ns-%03d team-%d <-> team-none (10%% of the pods get "
	       "new entries), %d local pods in their own namespaces, %d peers, %d changes\n",
	       RELABEL_NS, RELABEL_NS % 10, LOCAL_EPS, N_NS * PODS_PER_NS - LOCAL_EPS, reps);
	printf("%-38s %9s %9s %15s\n", "case", "p50 ms", "p99 ms", "kernel p50 ms");
	printf("%-38s %9.1f %9.1f %15.2f\n", "element update (reconciler_apply)",
	       pct_ms(t_upd, (size_t)reps, 0.5), pct_ms(t_upd, (size_t)reps, 0.99),
	       pct_ms(k_upd, (size_t)reps, 0.5));
	printf("%-38s %9.1f %9.1f\n", "  to the last kernel ack",
	       pct_ms(a_upd, (size_t)reps, 0.5), pct_ms(a_upd, (size_t)reps, 0.99));
	for (int d = 0; d < 2; d++) {
		if (!n_dir[d])
			continue;
		printf("%-38s %9.1f %9.1f %15.2f\n",
		       d ? "  adding entries (whole call)" : "  removing entries (whole call)",
		       pct_ms(by_dir[d][0], n_dir[d], 0.5), pct_ms(by_dir[d][0], n_dir[d], 0.99),
		       pct_ms(by_dir[d][2], n_dir[d], 0.5));
		printf("%-38s %9.1f %9.1f\n", "    to the last kernel ack",
		       pct_ms(by_dir[d][1], n_dir[d], 0.5), pct_ms(by_dir[d][1], n_dir[d], 0.99));
	}
	printf("%-38s %9.1f %9.1f\n", "  of it ours (all but the batches)",
	       pct_ms(o_upd, (size_t)reps, 0.5), pct_ms(o_upd, (size_t)reps, 0.99));
	printf("%-38s %9.1f %9.1f %15.2f\n", "full replace (baseline)",
	       pct_ms(t_rep, (size_t)reps, 0.5), pct_ms(t_rep, (size_t)reps, 0.99),
	       pct_ms(k_rep, (size_t)reps, 0.5));
	printf("%-38s %9.1f %9.1f\n", "of either: compile_plan() alone",
	       pct_ms(c_rep, (size_t)reps, 0.5), pct_ms(c_rep, (size_t)reps, 0.99));
	printf("ratio replace/update: p50 %.2f, p99 %.2f, kernel p50 %.1f\n",
	       pct_ms(t_rep, (size_t)reps, 0.5) / pct_ms(t_upd, (size_t)reps, 0.5),
	       pct_ms(t_rep, (size_t)reps, 0.99) / pct_ms(t_upd, (size_t)reps, 0.99),
	       pct_ms(k_rep, (size_t)reps, 0.5) / pct_ms(k_upd, (size_t)reps, 0.5));
	printf("label changes sent %" PRIu64 " table replaces, %" PRIu64 " element batches "
	       "(+%" PRIu64 " -%" PRIu64 " elements), %" PRIu64 " conntrack walks (%.1f ms per change), "
	       "%" PRIu64 " skipped (empty tables); resync afterwards repaired %u tables\n",
	       st->replaces - st0.replaces, st->updates - st0.updates,
	       st->elements_added - st0.elements_added,
	       st->elements_deleted - st0.elements_deleted,
	       st->conntrack_walks - st0.conntrack_walks,
	       (double)(st->conntrack_walk_ns - st0.conntrack_walk_ns) / 1e6 / reps,
	       st->conntrack_walks_skipped - st0.conntrack_walks_skipped, repaired);
	printf("compile cache: %.1f groups computed and %.1f reused per change (of %zu kept)\n",
	       (double)(cs->groups_computed - cs0.groups_computed) / reps,
	       (double)(cs->groups_reused - cs0.groups_reused) / reps, cs->groups_kept);
	printf("target: time to the last kernel ack p99 < 50 ms (ratio %.3f): %s\n",
	       pct_ms(a_upd, (size_t)reps, 0.99) / 50.0,
	       pct_ms(a_upd, (size_t)reps, 0.99) < 50.0 ? "met" : "NOT met");
	rv = st->replaces == st0.replaces && repaired == 0 ? 0 : 1;
	if (rv)
		fprintf(stderr, "bench_netpol: the label changes were not element updates only\n");
out:
	reconciler_free(rc);
	for (int i = 0; i < LOCAL_EPS; i++)
		netns_free(hs[i]);
	for (int i = 0; i < 2 * LOCAL_EPS; i++)
		close(fds[i]);
	policy_set_release(&pols);
	inventory_release(&inv[0]);
	inventory_release(&inv[1]);
	free(text[0].p);
	free(text[1].p);
	free(t_upd);
	return rv;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ "check", no_argument, NULL, 'c' },
		{ "label-reps", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	struct buf inv = { 0 }, np = { 0 }, al = { 0 };
	struct result rn, ra;
	double mib_n, mib_a;
	int runs = 5, label_reps = 50, opt, rc = 0;
	bool check = false;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'r')
			runs = atoi(optarg) > 0 ? atoi(optarg) : 1;
		else if (opt == 'c')
			check = true;
		else if (opt == 'l')
			label_reps = atoi(optarg) > 0 ? atoi(optarg) : 0;
		else
			return 2;
	}
	inventory_text(&inv, NULL, false);
	netpol_text(&np);
	allowlist_text(&al);
	if (run_child(&inv, &np, runs, &rn, &mib_n) < 0 ||
	    run_child(&inv, &al, runs, &ra, &mib_a) < 0) {
		fprintf(stderr, "bench_netpol: a case failed\n");
		return 1;
	}
	printf("bench_netpol: %d namespaces, %d pods, median of %d compiles\n", N_NS,
	       N_NS * PODS_PER_NS, runs);
	printf("%-22s %8s %8s %10s %8s %8s %9s %8s\n", "case", "policies", "parse ms",
	       "compile ms", "cpu ms", "peak MiB", "isolated", "entries");
	printf("%-22s %8zu %8.1f %10.1f %8.1f %8.1f %9zu %8zu\n", "NetworkPolicy", rn.n_pols,
	       rn.parse_ms, rn.compile_ms, rn.cpu_ms, mib_n, rn.n_isolated, rn.n_entries);
	printf("%-22s %8zu %8.1f %10.1f %8.1f %8.1f %9zu %8zu\n", "AllowList (baseline)",
	       ra.n_pols, ra.parse_ms, ra.compile_ms, ra.cpu_ms, mib_a, ra.n_isolated,
	       ra.n_entries);
	printf("ratio NetworkPolicy/AllowList: compile %.2f (cpu %.2f), peak RSS %.2f, "
	       "entries %.2f\n",
	       rn.compile_ms / ra.compile_ms, rn.cpu_ms / ra.cpu_ms, mib_n / mib_a,
	       ra.n_entries ? (double)rn.n_entries / (double)ra.n_entries : 0.0);
	printf("target: compile < %.0f ms (ratio %.3f), peak RSS < %.0f MiB (ratio %.3f): %s\n",
	       TARGET_MS, rn.compile_ms / TARGET_MS, TARGET_MIB, mib_n / TARGET_MIB,
	       rn.compile_ms < TARGET_MS && mib_n < TARGET_MIB ? "met" : "NOT met");
	if (check && !(rn.compile_ms < TARGET_MS && mib_n < TARGET_MIB))
		rc = 1;
	fflush(stdout);
	if (label_reps > 0 && geteuid() != 0)
		printf("label change: needs root (network namespaces, nf_tables); skipped\n");
	else if (label_reps > 0) {
		memtune_apply();   /* as msegd runs */
		if (label_bench(&np, label_reps) != 0)
			rc = 1;
	}
	free(inv.p);
	free(np.p);
	free(al.p);
	return rc;
}
