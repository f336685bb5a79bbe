/* bench_seen: what msegd's periodic read of one learning endpoint's seen
 * sets costs (accepted_read(): the table's handle, the eight seen-set dumps,
 * the fold into the summaries), against the baseline it runs beside: the
 * resync read-back of the same table (ep_table_verify()), which msegd does
 * for every endpoint every --resync (30 s).
 *
 * One private namespace with the table of an endpoint isolated both ways
 * under a list of --peers allow entries (tcp/80 from each peer); its
 * in4_seen_port set filled with --elements elements (nft -f in the
 * namespace; 4096 is the set's size), and read --runs times each way,
 * alternating. Median and p99 per read.
 *
 *   bench_seen [--peers N] [--elements N] [--runs N]
 * Needs root; prints a note and exits 0 otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mseg/daemon/accepted.h"
#include "mseg/kernel/nft.h"
#include "mseg/model/inventory.h"
#include "mseg/model/plan.h"
#include "mseg/model/policy.h"
#include "mseg/util/clock.h"
#include "bench_util.h"

static const char pol_text[] =
	"apiVersion: mseg.io/v1\n"
	"kind: AllowList\n"
	"metadata: {name: bench, namespace: default}\n"
	"spec:\n"
	"  mode: learn\n"
	"  groups:\n"
	"    web: {selector: {app: web}}\n"
	"    peers: {selector: {app: peer}}\n"
	"  allow:\n"
	"    - {from: peers, to: web, ports: [tcp/80]}\n"
	"    - {from: web, to: peers, ports: [tcp/443]}\n";

/* nft -f @file inside the namespace @nsfd */
static int nft_load(int nsfd, const char *file)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (setns(nsfd, CLONE_NEWNET) < 0)
			_exit(127);
		execlp("nft", "nft", "-f", file, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -EIO;
	return 0;
}

int main(int argc, char **argv)
{
	size_t peers = 1000, elements = 4096, runs = 200;
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct mseg_plan *plan = NULL;
	struct compile_opts copts = { .default_mode = MSEG_MODE_ENFORCE };
	struct table_opts topts = { .queue = QUEUE_NFLOG };
	struct mseg_err err = { 0 };
	struct accepted *acc = accepted_new(NULL);
	struct netns *ns = NULL;
	uint64_t *t_verify, *t_seen;
	char path[64], msg[600], file[] = "/tmp/bench_seen.XXXXXX", *text = NULL;
	size_t len = 0;
	FILE *f;
	int nsfd, fd, r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--peers") == 0 && i + 1 < argc)
			peers = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--elements") == 0 && i + 1 < argc)
			elements = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = strtoul(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: bench_seen [--peers N] [--elements N] [--runs N]\n");
			return 2;
		}
	}
	if (geteuid() != 0) {
		printf("bench_seen: needs root, skipped\n");
		return 0;
	}
	if (!runs || elements > 4096 || peers < 1 || peers > 60000) {
		fprintf(stderr, "bench_seen: --runs >= 1, --elements <= 4096, --peers 1..60000\n");
		return 2;
	}
	nsfd = ns_create();
	if (nsfd < 0 || !acc) {
		fprintf(stderr, "bench_seen: namespace: %s\n", strerror(nsfd < 0 ? -nsfd : ENOMEM));
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)getpid(), nsfd);
	policy_set_init(&pols);
	inventory_init(&inv);
	r = policy_parse_buffer(&pols, "bench.yaml", pol_text, sizeof(pol_text) - 1, &err);
	f = r == 0 ? open_memstream(&text, &len) : NULL;
	if (f) {
		fprintf(f, "endpoints:\n  - {id: web, labels: {app: web}, netns: %s, ips: [10.127.255.1]}\n",
			path);
		for (size_t i = 0; i < peers; i++)
			fprintf(f, "  - {id: p%05zu, labels: {app: peer}, ips: [10.128.%zu.%zu]}\n", i,
				i / 250, i % 250 + 1);
		r = fclose(f) == 0 ? inventory_parse_buffer(&inv, "bench-endpoints.yaml", text, len, &err)
				   : -ENOMEM;
	}
	free(text);
	if (r == 0)
		r = compile_plan((const struct mseg_policy *const *)pols.items, pols.n,
				 (const struct mseg_endpoint *const *)inv.eps, inv.n, &copts, &plan);
	if (r == 0)
		r = netns_open(path, &ns);
	if (r == 0)
		r = ep_table_replace(ns, &plan->eps[plan->n_eps - 1], &topts, NULL, 0, &err);
	if (r < 0) {
		fprintf(stderr, "bench_seen: setup: %s\n", err_format(&err, msg, sizeof(msg)));
		return 1;
	}
	/* the seen set, filled as admitted connections would fill it */
	fd = mkstemp(file);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f)
		return 1;
	for (size_t i = 0; i < elements; i++)
		fprintf(f, "add element inet mseg in4_seen_port "
			"{ 10.64.%zu.%zu . tcp . 80 counter packets 1 bytes 60 }\n", i / 250, i % 250 + 1);
	fclose(f);
	r = elements ? nft_load(nsfd, file) : 0;
	unlink(file);
	if (r < 0) {
		fprintf(stderr, "bench_seen: nft -f of the seen elements failed\n");
		return 1;
	}
	t_verify = calloc(runs, sizeof(uint64_t));
	t_seen = calloc(runs, sizeof(uint64_t));
	if (!t_verify || !t_seen)
		return 1;
	for (size_t run = 0; run < runs; run++) {
		struct ep_table_report rep = { 0 };
		uint64_t t0 = clock_mono_ns();

		r = ep_table_verify(ns, &plan->eps[plan->n_eps - 1], &topts, &rep, &err);
		t_verify[run] = clock_mono_ns() - t0;
		ep_table_report_release(&rep);
		if (r < 0)
			break;
		t0 = clock_mono_ns();
		r = accepted_read(acc, ns, "web", 3, &err);
		t_seen[run] = clock_mono_ns() - t0;
		if (r < 0)
			break;
	}
	if (r < 0) {
		fprintf(stderr, "bench_seen: %s\n", err_format(&err, msg, sizeof(msg)));
		return 1;
	}
	if (acc->n_entries != elements) {
		fprintf(stderr, "bench_seen: %zu summaries, expected %zu\n", acc->n_entries, elements);
		return 1;
	}
	qsort(t_verify, runs, sizeof(uint64_t), cmp_u64);
	qsort(t_seen, runs, sizeof(uint64_t), cmp_u64);
	printf("one endpoint: %zu allow entries, %zu seen elements; %zu runs each, alternating\n",
	       peers, elements, runs);
	printf("  resync read-back (ep_table_verify, baseline): p50 %.3f ms p99 %.3f ms\n",
	       t_verify[runs / 2] / 1e6, t_verify[runs * 99 / 100] / 1e6);
	printf("  seen-set read + fold (accepted_read):        p50 %.3f ms p99 %.3f ms\n",
	       t_seen[runs / 2] / 1e6, t_seen[runs * 99 / 100] / 1e6);
	printf("  ratio seen / read-back: p50 %.2f\n", (double)t_seen[runs / 2] / t_verify[runs / 2]);
	accepted_free(acc);
	netns_free(ns);
	plan_free(plan);
	policy_set_release(&pols);
	inventory_release(&inv);
	return 0;
}
