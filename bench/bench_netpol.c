/* bench_netpol: 1,000 Kubernetes NetworkPolicies over 5,000 pods in 200
 * namespaces, through the real parsers and compile_plan(). Targets: compile
 * under 200 ms and peak RSS under 128 MiB. Side by side in the same run, the
 * baseline: the same host and rule count written as 1,000 mseg AllowLists.
 *
 *   bench_netpol [--runs N] [--check]
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
 * exits 1 when a target is missed. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mseg/model/inventory.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"

#define TARGET_MS 200.0
#define TARGET_MIB 128.0
#define N_NS 200
#define PODS_PER_NS 25
#define APPS 5

struct buf {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap ? 2 * b->cap : 1 << 20;
		b->p = realloc(b->p, b->cap);
		if (!b->p) {
			fprintf(stderr, "bench_netpol: out of memory\n");
			exit(1);
		}
	}
	b->len += (size_t)n;
}

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

static void inventory_text(struct buf *b)
{
	bprintf(b, "namespaces:\n");
	for (int i = 0; i < N_NS; i++)
		bprintf(b, "  - {name: ns-%03d, labels: {team: team-%d, env: %s}}\n", i, i % 10,
			i % 2 ? "dev" : "prod");
	bprintf(b, "endpoints:\n");
	for (int i = 0; i < N_NS; i++) {
		for (int j = 0; j < PODS_PER_NS; j++) {
			int idx = i * PODS_PER_NS + j;

			bprintf(b,
				"  - {id: ns-%03d-p%02d, namespace: ns-%03d, "
				"labels: {app: app-%d, tier: t%d}, "
				"ips: [10.1.%d.%d, \"fd00::1:%x\"], "
				"ports: [{name: http, port: 8080}, {name: metrics, port: %d}, "
				"{name: dns, port: 53, protocol: UDP}]}\n",
				i, j, i, j % APPS, j % 3, idx / 250, idx % 250 + 1, idx, 9000 + j % 4);
		}
	}
}

static void netpol_text(struct buf *b)
{
	for (int i = 0; i < N_NS; i++) {
		for (int k = 0; k < APPS; k++) {
			bprintf(b,
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
			bprintf(b,
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
			bprintf(b,
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
				bprintf(b, "  - {from: self, to: next, ports: [tcp/8080, udp/53]}\n");
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

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ "check", no_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	struct buf inv = { 0 }, np = { 0 }, al = { 0 };
	struct result rn, ra;
	double mib_n, mib_a;
	int runs = 5, opt;
	bool check = false;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'r')
			runs = atoi(optarg) > 0 ? atoi(optarg) : 1;
		else if (opt == 'c')
			check = true;
		else
			return 2;
	}
	inventory_text(&inv);
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
	free(inv.p);
	free(np.p);
	free(al.p);
	if (check && !(rn.compile_ms < TARGET_MS && mib_n < TARGET_MIB))
		return 1;
	return 0;
}
