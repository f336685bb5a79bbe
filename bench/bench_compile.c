/* bench_compile: compile_plan() on a synthetic host of 1,000 endpoints and
 * 200 allow rules. Targets: under 100 ms and 64 MiB peak RSS.
 *
 *   bench_compile [--endpoints N] [--rules N] [--runs N] [--named] [--services N]
 *                 [--reconcile L] [--check]
 *
 * The model is built directly (no YAML): 50 apps of 20 replicas in 5
 * namespaces, each endpoint with an IPv4 and (every other one) an IPv6
 * address; 10 AllowLists of 20 allow rules each, between app groups with
 * mixed ports (single ports, ranges, udp/53, icmp, every protocol), and some
 * address groups (world, an office CIDR with holes). --named adds the worst
 * case for sharing work: every endpoint has its own number for the named
 * port "metrics", and every list admits its apps' peers on it, so no two
 * endpoints have the same ingress entries. --services N adds N Kubernetes
 * Services (compile_opts.svc_routes), each a ClusterIP in 10.96.0.0/16 on
 * port 80 in front of one app's replicas on one of the rules' common ports,
 * and compiles with and without them side by side in the same run (the
 * baseline: the same model without routes), printing the ratio. --check
 * exits 1 when a target is missed.
 *
 * --reconcile L: the compile of each msegd reconcile instead (one namespace
 * per 30 endpoints, as bench/kube_scale.sh has): L of the endpoints have a netns (local_only: the plan has those), a compile
 * cache, and before each compile one endpoint gets a new address (a
 * watch event). Side by side in the same run, alternating, on the same
 * changes: the compile reading a desired view's brief of the endpoints
 * (compile_opts.eps_brief, as the reconciler does), and the baseline
 * without it (every endpoint read in each pass over them); medians and
 * their ratio. The endpoints here lie in one arena, in order: msegd's
 * are scattered over the heap, so the baseline is faster here than in
 * msegd and the ratio understates the change (bench/kube_scale.sh
 * measures msegd). E.g. --endpoints 150000 --reconcile 110. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "mseg/compile/cache.h"
#include "mseg/util/clock.h"
#include "mseg/model/plan.h"

#define TARGET_MS 100.0
#define TARGET_MIB 64.0
#define N_NS 5

/* namespaces of the model: N_NS, or one per 30 endpoints with --reconcile
 * (kube_scale's 5,000 for 150,000) */
static int n_ns = N_NS;

static struct arena model;

static uint64_t rng = 0x243f6a8885a308d3ULL;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = arena_calloc(&model, n, size);

	if (!p) {
		fprintf(stderr, "bench_compile: out of memory\n");
		exit(1);
	}
	return p;
}

__attribute__((format(printf, 1, 2))) static char *xprintf(const char *fmt, ...)
{
	char buf[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return arena_strdup(&model, buf);
}

static struct mseg_peer app_peer(int app)
{
	struct mseg_peer p = { .kind = MSEG_PEER_ENDPOINTS, .ns_scope = MSEG_NS_NAMED };
	struct mseg_sel_req *q = xcalloc(1, sizeof(*q));

	p.ns = xprintf("ns-%d", app % n_ns);
	q->key = "app";
	q->op = MSEG_SEL_IN;
	q->values = xcalloc(1, sizeof(*q->values));
	q->values[0] = xprintf("app-%02d", app);
	q->n_values = 1;
	p.ep_sel.reqs = q;
	p.ep_sel.n_reqs = 1;
	p.group = q->values[0];
	return p;
}

static struct mseg_cidr v4cidr(uint32_t a, uint8_t plen)
{
	struct mseg_cidr c = { .plen = plen };

	c.addr.family = AF_INET;
	c.addr.bytes[0] = (uint8_t)(a >> 24);
	c.addr.bytes[1] = (uint8_t)(a >> 16);
	c.addr.bytes[2] = (uint8_t)(a >> 8);
	c.addr.bytes[3] = (uint8_t)a;
	return c;
}

static struct mseg_peer addr_peer(int kind)
{
	struct mseg_peer p = { .kind = MSEG_PEER_ADDRS };

	p.cidrs = xcalloc(2, sizeof(*p.cidrs));
	p.except = xcalloc(2, sizeof(*p.except));
	if (kind == 0) { /* world */
		p.cidrs[0] = v4cidr(0, 0);
		p.cidrs[1].addr.family = AF_INET6;
		p.n_cidrs = 2;
		p.group = "world";
	} else {         /* office 192.0.2.0/24 except two hosts */
		p.cidrs[0] = v4cidr(0xc0000200, 24);
		p.except[0] = v4cidr(0xc0000207, 32);
		p.except[1] = v4cidr(0xc0000280, 28);
		p.n_cidrs = 1;
		p.n_except = 2;
		p.group = "office";
	}
	return p;
}

static void rnd_ports(struct mseg_rule *r)
{
	static const uint16_t common[] = { 80, 443, 8080, 9000, 5432, 6379, 3306, 9090 };
	unsigned n = 1 + rnd(3);

	r->ports = xcalloc(n, sizeof(*r->ports));
	for (unsigned i = 0; i < n; i++) {
		struct mseg_port *p = &r->ports[r->n_ports++];
		unsigned k = rnd(10);

		if (k < 6) {
			p->proto = IPPROTO_TCP;
			p->lo = p->hi = common[rnd(8)];
		} else if (k == 6) {
			p->proto = IPPROTO_TCP;
			p->lo = (uint16_t)(8000 + 100 * rnd(10));
			p->hi = (uint16_t)(p->lo + 99);
		} else if (k == 7) {
			p->proto = IPPROTO_UDP;
			p->lo = p->hi = 53;
		} else if (k == 8) {
			p->proto = IPPROTO_ICMP;
		} else {
			/* every protocol when it comes first, else the list ends */
			r->n_ports--;
			break;
		}
	}
}

static void add_rule(struct mseg_policy *pol, enum mseg_dir dir, struct mseg_peer local,
		     struct mseg_peer peer, const struct mseg_rule *ports, unsigned index)
{
	struct mseg_rule *r = &pol->rules[pol->n_rules++];

	r->dir = dir;
	r->local = local;
	r->peers = xcalloc(1, sizeof(*r->peers));
	r->peers[0] = peer;
	r->n_peers = 1;
	r->ports = ports->ports;
	r->n_ports = ports->n_ports;
	r->index = index;
}

static void build(size_t n_eps, size_t n_rules, bool named, struct mseg_endpoint ***ret_eps,
		  struct mseg_policy ***ret_pols, size_t *ret_np)
{
	size_t n_apps = n_eps / 20 ? n_eps / 20 : 1, n_pols = 10, per = (n_rules + n_pols - 1) / n_pols;
	struct mseg_endpoint **eps = xcalloc(n_eps, sizeof(*eps));
	struct mseg_policy **pols = xcalloc(n_pols, sizeof(*pols));
	size_t made = 0;

	for (size_t i = 0; i < n_eps; i++) {
		struct mseg_endpoint *ep = xcalloc(1, sizeof(*ep));
		int app = (int)(i % n_apps);

		/* ids as the cluster's (k8s.NS.NAME) at kube_scale's size */
		ep->id = n_ns > N_NS ? xprintf("k8s.ns-%d.ep-%06d", app % n_ns, (int)i) :
				       xprintf("ep-%04d", (int)i);
		ep->name = ep->id;
		ep->ns = xprintf("ns-%d", app % n_ns);
		ep->netns = xprintf("/run/netns/ep-%04d", (int)i);
		ep->labels = xcalloc(3, sizeof(*ep->labels));
		ep->labels[0] = (struct mseg_label){ "app", xprintf("app-%02d", app) };
		ep->labels[1] = (struct mseg_label){ "tier", xprintf("t%d", app % 4) };
		ep->labels[2] = (struct mseg_label){ "version", xprintf("v%d", (int)i % 3) };
		ep->n_labels = 3;
		ep->ips = xcalloc(2, sizeof(*ep->ips));
		ep->ips[0] = v4cidr(0x0a000000 + (uint32_t)i + 2, 32).addr;
		ep->n_ips = 1;
		if (i % 2 == 0) {
			struct mseg_addr *a = &ep->ips[ep->n_ips++];

			a->family = AF_INET6;
			a->bytes[0] = 0xfd;
			a->bytes[14] = (uint8_t)(i >> 8);
			a->bytes[15] = (uint8_t)i;
		}
		if (named) {
			ep->ports = xcalloc(1, sizeof(*ep->ports));
			ep->ports[0] = (struct mseg_named_port){ "metrics", IPPROTO_TCP,
								 (uint16_t)(10000 + i) };
			ep->n_ports = 1;
		}
		eps[i] = ep;
	}

	for (size_t p = 0; p < n_pols; p++) {
		struct mseg_policy *pol = xcalloc(1, sizeof(*pol));

		pol->name = xprintf("list-%d", (int)p);
		pol->ns = "ns-0";
		pol->mode = p % 3 == 2 ? MSEG_MODE_AUDIT : MSEG_MODE_ENFORCE;
		pol->isolation = MSEG_ISO_BOTH;
		/* each list covers 5 apps */
		pol->subjects = xcalloc(5, sizeof(*pol->subjects));
		for (int k = 0; k < 5; k++)
			pol->subjects[pol->n_subjects++] = app_peer((int)((p * 5 + (size_t)k) % n_apps));
		pol->rules = xcalloc(2 * per + 5, sizeof(*pol->rules));
		for (int k = 0; named && k < 5; k++) {
			struct mseg_rule ports = { 0 };

			ports.ports = xcalloc(1, sizeof(*ports.ports));
			ports.ports[0] = (struct mseg_port){ .proto = IPPROTO_TCP, .name = "metrics" };
			ports.n_ports = 1;
			add_rule(pol, MSEG_DIR_INGRESS, pol->subjects[k],
				 app_peer((int)((p * 5 + (size_t)k + 1) % n_apps)), &ports, (unsigned)(per + (size_t)k));
		}
		for (size_t k = 0; k < per && made < n_rules; k++, made++) {
			struct mseg_rule ports = { 0 };
			int to = (int)((p * 5 + rnd(5)) % n_apps);
			unsigned kind = rnd(20);

			rnd_ports(&ports);
			if (kind == 0) /* world -> app */
				add_rule(pol, MSEG_DIR_INGRESS, app_peer(to), addr_peer(0), &ports,
					 (unsigned)k);
			else if (kind == 1) /* office -> app */
				add_rule(pol, MSEG_DIR_INGRESS, app_peer(to), addr_peer(1), &ports,
					 (unsigned)k);
			else if (kind == 2) /* app -> world */
				add_rule(pol, MSEG_DIR_EGRESS, app_peer(to), addr_peer(0), &ports,
					 (unsigned)k);
			else {
				int from = (int)rnd((unsigned)n_apps);

				add_rule(pol, MSEG_DIR_INGRESS, app_peer(to), app_peer(from), &ports,
					 (unsigned)k);
				add_rule(pol, MSEG_DIR_EGRESS, app_peer(from), app_peer(to), &ports,
					 (unsigned)k);
			}
		}
		pols[p] = pol;
	}
	*ret_eps = eps;
	*ret_pols = pols;
	*ret_np = n_pols;
}

/* @n_svc Services, each fronting every replica of one app. */
static struct mseg_svc_route *build_routes(struct mseg_endpoint **eps, size_t n_eps,
					   size_t n_svc, size_t *ret_n)
{
	static const uint16_t common[] = { 80, 443, 8080, 9000, 5432, 6379, 3306, 9090 };
	size_t n_apps = n_eps / 20 ? n_eps / 20 : 1, n = 0;
	struct mseg_svc_route *v = xcalloc(n_svc * (n_eps / n_apps + 1) + 1, sizeof(*v));

	for (size_t k = 0; k < n_svc; k++) {
		struct mseg_addr vip = v4cidr(0x0a600000 + (uint32_t)k + 1, 32).addr;
		size_t app = k % n_apps;

		for (size_t i = app; i < n_eps; i += n_apps)
			v[n++] = (struct mseg_svc_route){ .vip = vip, .backend = eps[i]->ips[0],
							  .proto = IPPROTO_TCP, .port = 80,
							  .backend_port = common[k % 8] };
	}
	*ret_n = n;
	return v;
}

static int cmp_ep_ptr_id(const void *pa, const void *pb)
{
	return strcmp((*(struct mseg_endpoint *const *)pa)->id,
		      (*(struct mseg_endpoint *const *)pb)->id);
}

static double now_ms(void);
static int cmp_double(const void *a, const void *b);

/* --reconcile: see the top. */
static int bench_reconcile(struct mseg_endpoint **eps, size_t n_eps, struct mseg_policy **pols,
			   size_t n_pols, size_t n_local, int runs)
{
	struct compile_cache *cc[2] = { compile_cache_new(), compile_cache_new() };
	struct mseg_ep_brief *brief = calloc(n_eps, sizeof(*brief));
	const char **names = calloc((size_t)n_ns + 1, sizeof(*names));
	double *t[2] = { calloc((size_t)runs, sizeof(double)), calloc((size_t)runs, sizeof(double)) };
	struct mseg_plan *plan[2] = { NULL, NULL };
	size_t every = n_eps / n_local ? n_eps / n_local : 1, slots = 0;
	uint64_t reused = 0;

	if (!cc[0] || !cc[1] || !brief || !names || !t[0] || !t[1])
		return 1;
	/* sorted by id, as an inventory keeps them (the brief needs it) */
	qsort(eps, n_eps, sizeof(*eps), cmp_ep_ptr_id);
	for (size_t i = 0; i < n_eps; i++) {
		int ns = atoi(eps[i]->ns + 3);   /* "ns-N" */

		if (i % every)
			eps[i]->netns = NULL;
		slots += eps[i]->netns != NULL;
		if (!names[ns])
			names[ns] = eps[i]->ns;   /* one copy per name */
		brief[i] = (struct mseg_ep_brief){ .ns_name = names[ns],
						   .netns = eps[i]->netns != NULL };
	}
	for (int r = -1; r < runs; r++) {
		size_t k = ((size_t)(r + 1) * 7919 + 1) % n_eps;
		struct mseg_endpoint *cp = xcalloc(1, sizeof(*cp));

		/* a watch event: endpoint k readdressed (a new object) */
		*cp = *eps[k];
		cp->ips = xcalloc(2, sizeof(*cp->ips));
		memcpy(cp->ips, eps[k]->ips, eps[k]->n_ips * sizeof(*cp->ips));
		cp->ips[0] = v4cidr(0x0b000000 + (uint32_t)r + 2, 32).addr;
		eps[k] = cp;
		for (int q = 0; q < 2; q++) {
			int w = (r + q) % 2 ? 1 : 0;   /* the order alternates */
			struct compile_opts o = { .local_only = true,
						  .eps_brief = w == 0 ? brief : NULL };
			double t0;
			int e;

			plan[w] = plan_free(plan[w]);
			t0 = now_ms();
			e = compile_plan_cached((const struct mseg_policy *const *)pols, n_pols,
						(const struct mseg_endpoint *const *)eps, n_eps, &o, cc[w],
						&plan[w]);
			if (r >= 0)
				t[w][r] = now_ms() - t0;
			if (e < 0) {
				fprintf(stderr, "bench_compile: compile: %s\n", strerror(-e));
				return 1;
			}
		}
		if (plan[0]->n_eps != plan[1]->n_eps || plan[0]->n_eps != slots) {
			fprintf(stderr, "bench_compile: %zu and %zu planned, %zu slots\n",
				plan[0]->n_eps, plan[1]->n_eps, slots);
			return 1;
		}
	}
	reused = compile_cache_stats(cc[0])->groups_reused;
	qsort(t[0], (size_t)runs, sizeof(double), cmp_double);
	qsort(t[1], (size_t)runs, sizeof(double), cmp_double);
	printf("bench_compile --reconcile: %zu endpoints, %zu with a netns, %zu lists; one endpoint "
	       "readdressed before each compile (cached, local_only; %llu groups reused)\n", n_eps,
	       slots, n_pols, (unsigned long long)reused);
	printf("  compile with the brief: median %.2f ms (best %.2f); baseline (every endpoint "
	       "read): median %.2f ms (best %.2f); ratio %.3f (%d runs)\n", t[0][runs / 2],
	       t[0][0], t[1][runs / 2], t[1][0], t[0][runs / 2] / t[1][runs / 2], runs);
	plan_free(plan[0]);
	plan_free(plan[1]);
	compile_cache_free(cc[0]);
	compile_cache_free(cc[1]);
	free(brief);
	free(names);
	free(t[0]);
	free(t[1]);
	return 0;
}

static double now_ms(void)
{
	return (double)clock_mono_ns() / 1e6;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct mseg_dir_plan *const *)a)[0]->entries;
	uintptr_t y = (uintptr_t)((const struct mseg_dir_plan *const *)b)[0]->entries;

	return x < y ? -1 : x > y;
}

/* The bytes of the plan's distinct entry arrays (endpoints share them). */
static double plan_entries_mib(const struct mseg_plan *plan)
{
	const struct mseg_dir_plan **v = calloc(plan->n_eps * MSEG_DIR_COUNT + 1, sizeof(*v));
	size_t n = 0, total = 0;

	if (!v)
		return 0;
	for (size_t e = 0; e < plan->n_eps; e++)
		for (int d = 0; d < MSEG_DIR_COUNT; d++)
			if (plan->eps[e].dir[d].n_entries)
				v[n++] = &plan->eps[e].dir[d];
	qsort(v, n, sizeof(*v), cmp_ptr);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || v[i]->entries != v[i - 1]->entries)
			total += v[i]->n_entries * sizeof(struct mseg_entry);
	free(v);
	return (double)total / (1024.0 * 1024.0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double peak_rss_mib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "endpoints", required_argument, NULL, 'e' },
		{ "rules", required_argument, NULL, 'r' },
		{ "runs", required_argument, NULL, 'n' },
		{ "check", no_argument, NULL, 'c' },
		{ "named", no_argument, NULL, 'N' },
		{ "services", required_argument, NULL, 'S' },
		{ "reconcile", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	size_t n_eps = 1000, n_rules = 200, n_pols, model_rules = 0, entries = 0, max_entries = 0;
	size_t iso_dirs = 0, n_svc = 0, n_routes = 0, base_entries = 0, n_local = 0;
	struct compile_opts copts = { 0 };
	double *base_times = NULL;
	int runs = 7, opt;
	bool check = false, named = false;
	struct mseg_endpoint **eps;
	struct mseg_policy **pols;
	struct mseg_plan *plan = NULL;
	double *times, rss_before, rss, heap_mib;
	struct mallinfo2 mi;
	int r;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			n_eps = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			n_rules = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			runs = atoi(optarg);
			break;
		case 'c':
			check = true;
			break;
		case 'N':
			named = true;
			break;
		case 'S':
			n_svc = strtoul(optarg, NULL, 10);
			break;
		case 'R':
			n_local = strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: bench_compile [--endpoints N] [--rules N] [--runs N] [--named] "
					"[--services N] [--reconcile L] [--check]\n");
			return 2;
		}
	}
	if (runs < 1 || n_eps < 1)
		return 2;

	arena_init(&model);
	if (n_local && n_eps / 30 > N_NS)
		n_ns = (int)(n_eps / 30);
	build(n_eps, n_rules, named, &eps, &pols, &n_pols);
	if (n_local) {
		r = bench_reconcile(eps, n_eps, pols, n_pols, n_local, runs);
		arena_release(&model);
		return r;
	}
	for (size_t p = 0; p < n_pols; p++)
		model_rules += pols[p]->n_rules;
	rss_before = peak_rss_mib();

	if (n_svc) {
		copts.svc_routes = build_routes(eps, n_eps, n_svc, &n_routes);
		copts.n_svc_routes = n_routes;
	}
	times = calloc((size_t)runs, sizeof(*times));
	base_times = calloc((size_t)runs, sizeof(*base_times));
	if (!times || !base_times)
		return 1;
	for (int i = 0; i < runs; i++) {
		double t0;

		if (n_svc) {
			/* the baseline, side by side: the same model without routes */
			plan = plan_free(plan);
			t0 = now_ms();
			r = compile_plan((const struct mseg_policy *const *)pols, n_pols,
					 (const struct mseg_endpoint *const *)eps, n_eps, NULL, &plan);
			base_times[i] = now_ms() - t0;
			if (r < 0) {
				fprintf(stderr, "bench_compile: compile_plan: %s\n", strerror(-r));
				return 1;
			}
			for (size_t e = 0; i == 0 && e < plan->n_eps; e++)
				for (int d = 0; d < MSEG_DIR_COUNT; d++)
					base_entries += plan->eps[e].dir[d].n_entries;
		}
		plan = plan_free(plan);
		t0 = now_ms();
		r = compile_plan((const struct mseg_policy *const *)pols, n_pols,
				 (const struct mseg_endpoint *const *)eps, n_eps, n_svc ? &copts : NULL,
				 &plan);
		times[i] = now_ms() - t0;
		if (r < 0) {
			fprintf(stderr, "bench_compile: compile_plan: %s\n", strerror(-r));
			return 1;
		}
	}
	rss = peak_rss_mib();
	mi = mallinfo2();
	heap_mib = (double)mi.uordblks / (1024.0 * 1024.0);
	for (size_t e = 0; e < plan->n_eps; e++) {
		for (int d = 0; d < MSEG_DIR_COUNT; d++) {
			const struct mseg_dir_plan *dp = &plan->eps[e].dir[d];

			if (!dp->isolated)
				continue;
			iso_dirs++;
			entries += dp->n_entries;
			if (dp->n_entries > max_entries)
				max_entries = dp->n_entries;
		}
	}
	qsort(times, (size_t)runs, sizeof(*times), cmp_double);
	qsort(base_times, (size_t)runs, sizeof(*base_times), cmp_double);

	printf("bench_compile%s: %zu endpoints, %zu allow rules (%zu model rules) in %zu lists\n",
	       named ? " --named (no shared entries)" : "", n_eps, n_rules, model_rules, n_pols);
	printf("  plan: %zu isolated directions, %zu entries (max %zu per direction)\n", iso_dirs,
	       entries, max_entries);
	printf("  compile_plan wall time: best %.2f ms, median %.2f ms (%d runs); target %.0f ms, "
	       "ratio %.3f\n",
	       times[0], times[runs / 2], runs, TARGET_MS, times[runs / 2] / TARGET_MS);
	printf("  peak RSS: %.1f MiB (%.1f MiB before compiling); target %.0f MiB, ratio %.3f\n",
	       rss, rss_before, TARGET_MIB, rss / TARGET_MIB);
	printf("  heap in use with the plan: %.2f MiB; model arena %.2f MiB; the plan's entry "
	       "arrays (a mapping of their own, not in the heap) %.2f MiB\n",
	       heap_mib, (double)model.used / (1024.0 * 1024.0), plan_entries_mib(plan));
	if (n_svc)
		printf("  with %zu Services (%zu routes): median %.2f ms vs %.2f ms without (same run), "
		       "ratio %.2f; entries %zu vs %zu\n", n_svc, n_routes, times[runs / 2],
		       base_times[runs / 2], times[runs / 2] / base_times[runs / 2], entries,
		       base_entries);
	printf("  result: %s\n", times[runs / 2] <= TARGET_MS && rss <= TARGET_MIB ? "within target"
										   : "OVER TARGET");
	r = check && !(times[runs / 2] <= TARGET_MS && rss <= TARGET_MIB) ? 1 : 0;
	plan_free(plan);
	free(times);
	free(base_times);
	arena_release(&model);
	return r;
}
