/* bench_learn: learning an AllowList (learn_run + learn_render_yaml) from
 * 1,000,000 synthetic flow records across 1,000 endpoints, in process.
 * Targets: < 2 s and < 256 MiB peak RSS.
 *
 * The traffic: endpoint i (labels app=svc-i, tier=t(i%10)) calls the five
 * endpoints after it on tcp/(8000 + i%10) (recorded at both ends: egress
 * and ingress), and 10,000 outside clients (203.0.0.0/18 .. ) call the 100
 * front endpoints on tcp/443: 70% internal, 30% outside records.
 *
 * The baseline, run alongside: one plain pass over the same records that
 * reads each one's id, addresses and port and folds them into a checksum,
 * the least any learner has to do; the ratio says what grouping, summing,
 * sorting and rendering cost on top of reading the input.
 *
 *   bench_learn [--flows N] [--endpoints N] [--runs N] */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "mseg/compile/learn.h"
#include "mseg/model/inventory.h"
#include "mseg/util/clock.h"

static size_t rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (size_t)ru.ru_maxrss;
}

static int parse_size(const char *s, size_t *ret)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* The baseline: read every record once. */
static uint64_t plain_pass(const struct learn_flow *flows, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++) {
		const struct learn_flow *f = &flows[i];
		uint64_t w;

		memcpy(&w, f->src.bytes, 8);
		sum = (sum ^ w) * 0x100000001b3ull;
		memcpy(&w, f->dst.bytes, 8);
		sum = (sum ^ w) * 0x100000001b3ull;
		sum = (sum ^ ((uint64_t)f->dport << 8 | f->proto) ^ (uintptr_t)f->ep_id) * 0x100000001b3ull;
		sum += f->count + f->first_ns;
	}
	return sum;
}

static void v4(struct mseg_addr *a, uint32_t x)
{
	memset(a, 0, sizeof(*a));
	a->family = AF_INET;
	a->bytes[0] = (uint8_t)(x >> 24);
	a->bytes[1] = (uint8_t)(x >> 16);
	a->bytes[2] = (uint8_t)(x >> 8);
	a->bytes[3] = (uint8_t)x;
}

int main(int argc, char **argv)
{
	size_t n_flows = 1000000, n_eps = 1000, runs = 3;
	struct mseg_inventory inv;
	struct mseg_err err;
	struct learn_flow *flows;
	char **ids;
	FILE *devnull;
	uint64_t best = UINT64_MAX, best_cpu = UINT64_MAX, best_base = UINT64_MAX, check = 0;
	size_t rules = 0, groups = 0, rss0;
	char *yaml;
	size_t len = 0;
	FILE *f;

	for (int i = 1; i < argc; i++) {
		size_t *dst = NULL;

		if (strcmp(argv[i], "--flows") == 0)
			dst = &n_flows;
		else if (strcmp(argv[i], "--endpoints") == 0)
			dst = &n_eps;
		else if (strcmp(argv[i], "--runs") == 0)
			dst = &runs;
		if (!dst || i + 1 >= argc || parse_size(argv[++i], dst) < 0 || n_eps < 200) {
			fprintf(stderr, "usage: bench_learn [--flows N] [--endpoints N>=200] [--runs N]\n");
			return 2;
		}
	}
	/* the inventory, through the parser as msegd would have it */
	f = open_memstream(&yaml, &len);
	if (!f)
		return 1;
	fprintf(f, "endpoints:\n");
	for (size_t i = 0; i < n_eps; i++)
		fprintf(f, "  - {id: ep-%zu, namespace: bench, labels: {app: svc-%zu, tier: t%zu}, "
			"ips: [10.10.%zu.%zu]}\n", i, i, i % 10, i / 250, i % 250 + 1);
	fclose(f);
	inventory_init(&inv);
	if (inventory_parse_buffer(&inv, "bench.yaml", yaml, len, &err) < 0) {
		fprintf(stderr, "bench_learn: inventory: %s\n", err.msg);
		return 1;
	}
	free(yaml);
	ids = calloc(n_eps, sizeof(*ids));
	flows = calloc(n_flows, sizeof(*flows));
	if (!ids || !flows)
		return 1;
	for (size_t i = 0; i < n_eps; i++)
		if (asprintf(&ids[i], "ep-%zu", i) < 0)
			return 1;
	srand(7);
	for (size_t k = 0; k < n_flows; k++) {
		struct learn_flow *fl = &flows[k];
		uint64_t t = 1796533200ull * 1000000000ull + (uint64_t)k * 1000000ull;

		fl->proto = 6;
		fl->has_port = true;
		fl->count = 1;
		fl->first_ns = fl->last_ns = t;
		if (k % 10 < 7) {
			size_t i = (size_t)rand() % n_eps, j = (i + 1 + (size_t)rand() % 5) % n_eps;
			bool ingress = rand() & 1;

			v4(&fl->src, (10u << 24 | 10u << 16) + (uint32_t)((i / 250) << 8 | (i % 250 + 1)));
			v4(&fl->dst, (10u << 24 | 10u << 16) + (uint32_t)((j / 250) << 8 | (j % 250 + 1)));
			fl->dport = (uint16_t)(8000 + i % 10);
			fl->ep_id = ids[ingress ? j : i];
			fl->dir = ingress ? MSEG_DIR_INGRESS : MSEG_DIR_EGRESS;
		} else {
			size_t j = (size_t)rand() % 100, c = (size_t)rand() % 10000;

			v4(&fl->src, (203u << 24) + (uint32_t)c);
			v4(&fl->dst, (10u << 24 | 10u << 16) + (uint32_t)((j / 250) << 8 | (j % 250 + 1)));
			fl->dport = 443;
			fl->ep_id = ids[j];
			fl->dir = MSEG_DIR_INGRESS;
		}
	}
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		return 1;
	rss0 = rss_kib();
	for (size_t run = 0; run < runs; run++) {
		struct learn_opts o = { .ns = "bench" };
		struct learn_result *r = NULL;
		uint64_t t0 = clock_mono_ns(), c0 = clock_ns_of(CLOCK_PROCESS_CPUTIME_ID), dt;
		int ret = learn_run(flows, n_flows, (const struct mseg_endpoint *const *)inv.eps, inv.n,
				    &o, &r);

		if (ret == 0)
			ret = learn_render_yaml(devnull, r, &o);
		dt = clock_mono_ns() - t0;
		if (ret < 0) {
			fprintf(stderr, "bench_learn: %s\n", strerror(-ret));
			return 1;
		}
		if (dt < best)
			best = dt;
		t0 = clock_mono_ns();
		check += plain_pass(flows, n_flows);
		if (clock_mono_ns() - t0 < best_base)
			best_base = clock_mono_ns() - t0;
		if (clock_ns_of(CLOCK_PROCESS_CPUTIME_ID) - c0 < best_cpu)
			best_cpu = clock_ns_of(CLOCK_PROCESS_CPUTIME_ID) - c0;
		rules = r->n_rules;
		groups = r->n_groups;
		learn_result_free(r);
	}
	fclose(devnull);
	printf("learn: %zu flow records, %zu endpoints -> %zu groups, %zu rules; best of %zu runs\n",
	       n_flows, n_eps, groups, rules, runs);
	printf("  time      %8.1f ms wall, %.1f ms CPU   target 2000 ms (wall): %s (ratio %.3f)\n",
	       (double)best / 1e6, (double)best_cpu / 1e6,
	       best < 2000000000ull ? "met" : "NOT met", (double)best / 2e9);
	printf("  baseline  %8.1f ms wall: one plain pass over the records (checksum %llx);"
	       " learn/baseline %.1fx\n", (double)best_base / 1e6, (unsigned long long)(check & 0xffff),
	       (double)best / (double)(best_base ? best_base : 1));
	printf("  peak RSS  %8.1f MiB (inputs alone %.1f MiB)   target 256 MiB: %s (ratio %.3f)\n",
	       (double)rss_kib() / 1024, (double)rss0 / 1024,
	       rss_kib() < 256 * 1024 ? "met" : "NOT met", (double)rss_kib() / (256.0 * 1024));
	for (size_t i = 0; i < n_eps; i++)
		free(ids[i]);
	free(ids);
	free(flows);
	inventory_release(&inv);
	return best < 2000000000ull && rss_kib() < 256 * 1024 ? 0 : 1;
}
