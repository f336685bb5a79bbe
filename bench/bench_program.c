/* bench_program: programming tables with libmseg's netlink backend against
 * loading the identical ruleset with `nft -f`.
 *
 *  1. cold: 100,000 allow elements into one empty namespace;
 *  2. fan-out: 100 namespaces x 1,000 elements;
 *  3. one element update in a namespace holding 100,000 elements, 1,000
 *     times: latency of the kernel's acks (sendmsg() to the last ack) and
 *     of the whole ep_table_update() call, whose diff looks only at what
 *     changed (EP_DIFF_FAST), side by side with the full diff of both
 *     plans it replaced (EP_DIFF_FULL, the baseline): the two alternate
 *     update by update, each adding and deleting as often.
 *  4. msegd's whole path for one event at that size: reconciler_apply()
 *     (compile of the whole state, then the update) after one peer of
 *     100,000 changes its address, against compile_plan() alone on the
 *     same state: what is left once the update is cheap.
 * The text for `nft -f` comes from the text renderer (kernel/table_text.c) for
 * the same plan, with the NFLOG queue step so that both sides load on
 * kernels without the native queue expression. `nft -f` runs as a child
 * that setns()es into the namespace and execs nft, so its time includes
 * starting nft (reported separately as "nft startup").
 *
 * The namespaces are private to this process (a helper thread unshares and
 * leaves its namespace open); they vanish when it exits.
 *
 *   bench_program [--elements N] [--namespaces N] [--small N] [--updates N] [--runs N]
 *                 [--events N] [--port-hi P]
 * --port-hi: the entries are on tcp/443-P instead of tcp/443 (P > 443): each
 * a range entry of one address, which goes into a port-range slot
 * (docs/ruleset.md) instead of the hash set; the element counts stay.
 * Needs root; prints a note and exits 0 otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mseg/util/memtune.h"
#include "mseg/util/clock.h"
#include "mseg/kernel/nft.h"
#include "mseg/kernel/table_text.h"
#include "mseg/model/addr.h"
#include "mseg/model/inventory.h"
#include "mseg/model/policy.h"
#include "mseg/kernel/reconcile.h"
#include "kernel/ep_diff.h"
#include "bench_util.h"

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	size_t i;

	qsort(v, n, sizeof(*v), cmp_u64);
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i];
}

/* ---- private namespaces ---- */

static void ns_path(int fd, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/%d/fd/%d", (int)getpid(), fd);
}

/* ---- plans ---- */

static int entry_cmp(const void *a, const void *b)
{
	return addr_entry_cmp(a, b);
}

struct plan_buf {
	struct mseg_ep_plan plan;
	struct mseg_entry *ents;
};

/* --port-hi: the last port of the entries below */
static uint16_t port_hi = 443;

/* The targets are those of exact entries: none with --port-hi. */
static const char *target(bool met)
{
	if (port_hi != 443)
		return "none with --port-hi";
	return met ? "met" : "NOT met";
}

/* @n exact entries 10.128.0.0 + first + i . tcp . 443 (ingress; 443-port_hi
 * with --port-hi), plus a few of every other shape in both directions, as a
 * real endpoint would have */
static int plan_make(struct plan_buf *pb, size_t first, size_t n)
{
	static const char *const v4[] = { "10.200.0.2", "10.99.0.0", "10.99.255.255" };
	size_t extra = 4, k = 0;

	memset(pb, 0, sizeof(*pb));
	pb->ents = calloc(n + 2 * extra, sizeof(*pb->ents));
	if (!pb->ents)
		return -ENOMEM;
	for (size_t i = first; i < first + n; i++) {
		struct mseg_entry *e = &pb->ents[k++];
		uint32_t a = (10u << 24 | 128u << 16) + (uint32_t)i;

		e->lo.family = AF_INET;
		e->lo.bytes[0] = (uint8_t)(a >> 24);
		e->lo.bytes[1] = (uint8_t)(a >> 16);
		e->lo.bytes[2] = (uint8_t)(a >> 8);
		e->lo.bytes[3] = (uint8_t)a;
		e->hi = e->lo;
		e->proto = IPPROTO_TCP;
		e->port_lo = 443;
		e->port_hi = port_hi;
	}
	/* 10.200.0.2 . icmp, 10.99.0.0/16 . udp . 53, 10.99.0.0/16 (any), fd00::/64 . tcp . 1-1024 */
	{
		struct mseg_entry *e = &pb->ents[k++];

		e->lo.family = AF_INET;
		inet_pton(AF_INET, v4[0], e->lo.bytes);
		e->hi = e->lo;
		e->proto = IPPROTO_ICMP;
		e = &pb->ents[k++];
		e->lo.family = e->hi.family = AF_INET;
		inet_pton(AF_INET, v4[1], e->lo.bytes);
		inet_pton(AF_INET, v4[2], e->hi.bytes);
		e->proto = IPPROTO_UDP;
		e->port_lo = e->port_hi = 53;
		pb->ents[k] = *e;
		e = &pb->ents[k++];
		e->proto = 0;
		e->port_lo = e->port_hi = 0;
		e = &pb->ents[k++];
		e->lo.family = e->hi.family = AF_INET6;
		inet_pton(AF_INET6, "fd00::", e->lo.bytes);
		inet_pton(AF_INET6, "fd00::ffff:ffff:ffff:ffff", e->hi.bytes);
		e->proto = IPPROTO_TCP;
		e->port_lo = 1;
		e->port_hi = 1024;
	}
	for (int d = 0; d < MSEG_DIR_COUNT; d++) {
		pb->plan.dir[d].isolated = true;
		pb->plan.dir[d].mode = MSEG_MODE_ENFORCE;
	}
	/* egress: the extras only; both in the compiler's order */
	memcpy(pb->ents + k, pb->ents + n, extra * sizeof(*pb->ents));
	qsort(pb->ents, k, sizeof(*pb->ents), entry_cmp);
	qsort(pb->ents + k, extra, sizeof(*pb->ents), entry_cmp);
	pb->plan.dir[MSEG_DIR_INGRESS].entries = pb->ents;
	pb->plan.dir[MSEG_DIR_INGRESS].n_entries = k;
	pb->plan.dir[MSEG_DIR_EGRESS].entries = pb->ents + k;
	pb->plan.dir[MSEG_DIR_EGRESS].n_entries = extra;
	return 0;
}

static const struct table_opts opts = {
	.queue = QUEUE_NFLOG, .rate = TABLE_DEFAULT_RATE, .burst = TABLE_DEFAULT_BURST,
};

static int text_write(const struct plan_buf *pb, const char *path)
{
	FILE *f = fopen(path, "w");
	int r;

	if (!f)
		return -errno;
	r = table_text_render(f, &pb->plan, &opts);
	if (fclose(f) != 0 && r == 0)
		r = -EIO;
	return r;
}

/* ---- the two ways ---- */

static int nft_file(int nsfd, const char *file, uint64_t *ret_ns)
{
	uint64_t t0 = clock_mono_ns();
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (setns(nsfd, CLONE_NEWNET) < 0)
			_exit(126);
		execlp("nft", "nft", "-f", file, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	*ret_ns = clock_mono_ns() - t0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* What msegd does per namespace: a handle (its socket stays open, as the
 * daemon keeps it) and one replace. Closing a netfilter socket after a
 * batch that deleted a table waits for the kernel's deferred destroy work
 * (an RCU grace period); the daemon never pays that in its loop, so the
 * handles are freed after the clock stops. */
static int mseg_replace(int nsfd, const struct mseg_ep_plan *plan, struct netns **ret_ns,
			uint64_t *ret_ns_time)
{
	struct mseg_err err = { 0 };
	struct netns *ns;
	char path[64], msg[600];
	uint64_t t0 = clock_mono_ns();
	int r;

	ns_path(nsfd, path, sizeof(path));
	r = netns_open(path, &ns);
	if (r < 0)
		return r;
	r = ep_table_replace(ns, plan, &opts, NULL, 0, &err);
	*ret_ns_time = clock_mono_ns() - t0;
	if (r < 0) {
		fprintf(stderr, "bench_program: %s\n", err_format(&err, msg, sizeof(msg)));
		netns_free(ns);
		return r;
	}
	*ret_ns = ns;
	return 0;
}

static int table_clear(int nsfd)
{
	struct netns *ns;
	char path[64];
	int r;

	ns_path(nsfd, path, sizeof(path));
	r = netns_open(path, &ns);
	if (r < 0)
		return r;
	r = ep_table_delete(ns, NULL);
	netns_free(ns);
	return r;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

/* 4. one event through the reconciler: a local endpoint admits tcp/443
 * from @n_peers peers (pods of other nodes: no netns); one peer's address
 * flips between two values, @n_ev times. */
static int reconcile_events(int nsfd, size_t n_peers, size_t n_ev)
{
	static const char pol_text[] =
		"apiVersion: mseg.io/v1\nkind: AllowList\nmetadata: {name: web}\n"
		"spec:\n  groups:\n    web: {selector: {app: web}}\n"
		"    peers: {selector: {app: peer}}\n"
		"  allow:\n    - {from: peers, to: web, ports: [tcp/443]}\n";
	const struct compile_opts copts = { .default_mode = MSEG_MODE_ENFORCE };
	struct mseg_policy_set pols;
	struct mseg_inventory inv;
	struct reconciler *rec = NULL;
	struct mseg_err err = { 0 };
	char path[64], msg[600], *text = NULL;
	size_t len = 0;
	uint64_t *t_apply = calloc(n_ev ? n_ev : 1, sizeof(uint64_t));
	uint64_t *t_comp = calloc(n_ev ? n_ev : 1, sizeof(uint64_t));
	FILE *f;
	int r = -ENOMEM;

	policy_set_init(&pols);
	inventory_init(&inv);
	ns_path(nsfd, path, sizeof(path));
	if (!t_apply || !t_comp)
		goto out;
	r = policy_parse_buffer(&pols, "bench.yaml", pol_text, sizeof(pol_text) - 1, &err);
	/* in parts: a document has at most INVENTORY_MAX_NODES nodes */
	for (size_t first = 0; r == 0 && (first == 0 || first < n_peers); first += 20000) {
		f = open_memstream(&text, &len);
		if (!f) {
			r = -ENOMEM;
			break;
		}
		fprintf(f, "endpoints:\n");
		if (first == 0)
			fprintf(f, "  - {id: web, labels: {app: web}, netns: %s, ips: [10.127.255.1]}\n",
				path);
		for (size_t i = first; i < n_peers && i < first + 20000; i++) {
			uint32_t a = (10u << 24 | 128u << 16) + (uint32_t)i;

			fprintf(f, "  - {id: p%06zu, labels: {app: peer}, ips: [%u.%u.%u.%u]}\n", i,
				a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255);
		}
		r = fclose(f) == 0 ? inventory_parse_buffer(&inv, "bench-endpoints.yaml", text, len,
							    &err)
				   : -ENOMEM;
		free(text);
		text = NULL;
	}
	if (r < 0) {
		fprintf(stderr, "bench_program: %s\n", err_format(&err, msg, sizeof(msg)));
		goto out;
	}
	rec = reconciler_new(&opts, &copts);
	r = rec ? reconciler_apply(rec, &pols, &inv) : -ENOMEM;
	for (size_t i = 0; r == 0 && i < n_ev; i++) {
		struct mseg_endpoint *ep = NULL;
		struct mseg_plan *plan = NULL;
		char body[128];
		uint64_t t0;

		/* peer 0 moves to 10.126.0.1 and back: a delete and an add */
		snprintf(body, sizeof(body), "{labels: {app: peer}, ips: [%s]}",
			 i % 2 ? "10.128.0.0" : "10.126.0.1");
		r = endpoint_parse_buffer("p000000", "event", body, strlen(body), &ep, &err);
		if (r == 0) {
			r = inventory_put(&inv, ep);
			if (r < 0)
				endpoint_free(ep);
		}
		if (r < 0)
			break;
		t0 = clock_mono_ns();
		r = reconciler_apply(rec, &pols, &inv);
		t_apply[i] = clock_mono_ns() - t0;
		if (r < 0)
			break;
		t0 = clock_mono_ns();
		r = compile_plan((const struct mseg_policy *const *)pols.items, pols.n,
				 (const struct mseg_endpoint *const *)inv.eps, inv.n, &copts, &plan);
		t_comp[i] = clock_mono_ns() - t0;
		plan_free(plan);
	}
	if (r < 0) {
		fprintf(stderr, "bench_program: reconcile: %s\n", strerror(-r));
		goto out;
	}
	printf("one event through the reconciler, %zu peers (%zu events): reconciler_apply() "
	       "p50 %.1f ms p99 %.1f ms; of which compile_plan() alone p50 %.1f ms p99 %.1f ms; "
	       "updates sent %llu\n",
	       n_peers, n_ev, ms(pct(t_apply, n_ev, 0.5)), ms(pct(t_apply, n_ev, 0.99)),
	       ms(pct(t_comp, n_ev, 0.5)), ms(pct(t_comp, n_ev, 0.99)),
	       (unsigned long long)reconciler_stats(rec)->updates);
out:
	reconciler_free(rec);
	policy_set_release(&pols);
	inventory_release(&inv);
	free(text);
	free(t_apply);
	free(t_comp);
	return r;
}

int main(int argc, char **argv)
{
	size_t n_big = 100000, n_ns = 100, n_small = 1000, n_upd = 1000, runs = 3, n_ev = 20;
	char dir[] = "/tmp/mseg-bench-XXXXXX", big_txt[64], small_txt[64], empty_txt[64];
	struct plan_buf big, big2, small;
	uint64_t *t_mseg, *t_nft, *t_kern, t_start, t0;
	int big_fd, *fds;
	int r, rc = 1;

	memtune_apply();   /* as msegd runs */

	for (int i = 1; i + 1 < argc; i += 2) {
		size_t v = strtoul(argv[i + 1], NULL, 10);

		if (strcmp(argv[i], "--elements") == 0)
			n_big = v;
		else if (strcmp(argv[i], "--namespaces") == 0)
			n_ns = v;
		else if (strcmp(argv[i], "--small") == 0)
			n_small = v;
		else if (strcmp(argv[i], "--updates") == 0)
			n_upd = v;
		else if (strcmp(argv[i], "--runs") == 0)
			runs = v ? v : 1;
		else if (strcmp(argv[i], "--events") == 0)
			n_ev = v;
		else if (strcmp(argv[i], "--port-hi") == 0)
			port_hi = v > 443 && v <= UINT16_MAX ? (uint16_t)v : 443;
	}
	if (geteuid() != 0) {
		printf("bench_program: needs root (network namespaces, nf_tables); skipped\n");
		return 0;
	}
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(big_txt, sizeof(big_txt), "%s/big.nft", dir);
	snprintf(small_txt, sizeof(small_txt), "%s/small.nft", dir);
	snprintf(empty_txt, sizeof(empty_txt), "%s/empty.nft", dir);
	if (plan_make(&big, 0, n_big) < 0 || plan_make(&big2, 0, n_big + 1) < 0 ||
	    plan_make(&small, 0, n_small) < 0 || text_write(&big, big_txt) < 0 ||
	    text_write(&small, small_txt) < 0 || text_write(&(struct plan_buf){ 0 }, empty_txt) < 0) {
		fprintf(stderr, "bench_program: preparing plans failed\n");
		return 1;
	}
	t_mseg = calloc(n_upd > runs ? n_upd : runs, sizeof(uint64_t));
	t_nft = calloc(n_upd > runs ? n_upd : runs, sizeof(uint64_t));
	t_kern = calloc(runs, sizeof(uint64_t));
	fds = calloc(n_ns, sizeof(int));
	big_fd = ns_create();
	if (!t_mseg || !t_nft || !t_kern || !fds || big_fd < 0) {
		fprintf(stderr, "bench_program: setup failed: %s\n", strerror(big_fd < 0 ? -big_fd : ENOMEM));
		return 1;
	}
	for (size_t i = 0; i < n_ns; i++) {
		fds[i] = ns_create();
		if (fds[i] < 0) {
			fprintf(stderr, "bench_program: namespace: %s\n", strerror(-fds[i]));
			return 1;
		}
	}

	/* nft's own start-up cost: an empty file */
	{
		uint64_t v[5];

		for (int i = 0; i < 5; i++)
			if (nft_file(big_fd, empty_txt, &v[i]) < 0) {
				fprintf(stderr, "bench_program: nft -f failed\n");
				return 1;
			}
		printf("nft startup (nft -f of an empty file): %.1f ms\n", ms(pct(v, 5, 0.5)));
	}

	/* 1. cold, one namespace */
	for (size_t i = 0; i < runs; i++) {
		struct netns *h;

		if (table_clear(big_fd) < 0)
			goto out;
		usleep(300000);
		if (mseg_replace(big_fd, &big.plan, &h, &t_mseg[i]) < 0)
			goto out;
		t_kern[i] = netns_stats(h)->last_batch_ns;
		netns_free(h);
		if (table_clear(big_fd) < 0)
			goto out;
		usleep(300000);
		if (nft_file(big_fd, big_txt, &t_nft[i]) < 0) {
			fprintf(stderr, "bench_program: nft -f %s failed\n", big_txt);
			goto out;
		}
	}
	{
		double a = ms(pct(t_mseg, runs, 0.5)), b = ms(pct(t_nft, runs, 0.5));
		double k = ms(pct(t_kern, runs, 0.5));

		printf("cold load, %zu elements, 1 namespace (median of %zu): mseg %7.1f ms  "
		       "nft -f %7.1f ms  nft/mseg %5.1fx (target >= 5x: %s)\n"
		       "    of which in the kernel (sendmsg to last ack): %.1f ms; userspace: "
		       "mseg %.1f ms, nft about %.1f ms (%.0fx)\n",
		       n_big, runs, a, b, b / a, target(b / a >= 5), k, a - k, b - k,
		       (b - k) / (a - k));
	}

	/* 2. fan-out, median of @runs rounds (each starts from empty namespaces
	 * and a quiet kernel: deleting tables leaves RCU work behind) */
	for (size_t run = 0; run < runs; run++) {
		struct netns **hs = calloc(n_ns, sizeof(*hs));
		size_t done = 0;

		if (!hs)
			goto out;
		for (size_t i = 0; i < n_ns; i++)
			table_clear(fds[i]);
		usleep(300000);
		t_start = clock_mono_ns();
		for (; done < n_ns; done++)
			if (mseg_replace(fds[done], &small.plan, &hs[done], &t0) < 0)
				break;
		t_mseg[run] = clock_mono_ns() - t_start;
		t_kern[run] = 0;
		for (size_t i = 0; i < done; i++) {
			t_kern[run] += netns_stats(hs[i])->last_batch_ns;
			netns_free(hs[i]);
		}
		free(hs);
		if (done < n_ns)
			goto out;
		for (size_t i = 0; i < n_ns; i++)
			table_clear(fds[i]);
		usleep(300000);
		t_start = clock_mono_ns();
		for (size_t i = 0; i < n_ns; i++)
			if (nft_file(fds[i], small_txt, &t0) < 0) {
				fprintf(stderr, "bench_program: nft -f %s failed\n", small_txt);
				goto out;
			}
		t_nft[run] = clock_mono_ns() - t_start;
	}
	{
		double a = ms(pct(t_mseg, runs, 0.5)), b = ms(pct(t_nft, runs, 0.5));
		double k = ms(pct(t_kern, runs, 0.5));

		printf("%zu namespaces x %zu elements, one after another (median of %zu): "
		       "mseg %7.1f ms  nft -f %7.1f ms  nft/mseg %5.1fx (target >= 5x: %s)\n"
		       "    of which in the kernel (sendmsg to last ack, summed): %.1f ms; mseg's "
		       "userspace incl. entering each namespace: %.1f ms\n",
		       n_ns, n_small, runs, a, b, b / a, target(b / a >= 5), k, a - k);
	}

	/* 3. one element at a time into a namespace holding n_big, by the
	 * fast diff and by the full one (the baseline), alternating */
	{
		static const char *const method_name[] = { "fast diff", "full diff (baseline)" };
		struct mseg_err err = { 0 };
		struct ep_table_report rep;
		struct netns *ns;
		char path[64], msg[600];
		uint64_t msgs = 0, *t_call[2], *t_ack[2], *t_own[2], p50[2], p99[2];
		size_t n_m[2] = { 0, 0 };

		t_call[0] = t_mseg;
		t_call[1] = t_nft;
		for (int m = 0; m < 2; m++) {
			t_ack[m] = calloc(n_upd, sizeof(uint64_t));
			t_own[m] = calloc(n_upd, sizeof(uint64_t));
		}
		ns_path(big_fd, path, sizeof(path));
		r = !t_ack[0] || !t_ack[1] || !t_own[0] || !t_own[1] ? -ENOMEM : netns_open(path, &ns);
		if (r < 0) {
			for (int m = 0; m < 2; m++) {
				free(t_ack[m]);
				free(t_own[m]);
			}
			goto out;
		}
		r = ep_table_replace(ns, &big.plan, &opts, NULL, 0, &err);
		/* updates 4k, 4k+1 fast (add, delete); 4k+2, 4k+3 full */
		for (size_t i = 0; r == 0 && i < 2 * n_upd; i++) {
			const struct mseg_ep_plan *from = i % 2 ? &big2.plan : &big.plan;
			const struct mseg_ep_plan *to = i % 2 ? &big.plan : &big2.plan;
			int m = i % 4 < 2 ? 0 : 1;
			uint64_t m0 = netns_stats(ns)->msgs, t;

			t0 = clock_mono_ns();
			r = ep_table_update_with(ns, from, to, &opts, NULL, 0,
						 m == 0 ? EP_DIFF_FAST : EP_DIFF_FULL, &err);
			t = clock_mono_ns() - t0;
			if (n_m[m] < n_upd) {
				uint64_t k = netns_stats(ns)->last_batch_ns;

				t_call[m][n_m[m]] = t;           /* the whole call */
				t_ack[m][n_m[m]] = k;            /* the kernel's part */
				t_own[m][n_m[m]++] = t > k ? t - k : 0;   /* ours */
			}
			msgs += netns_stats(ns)->msgs - m0;
		}
		if (r == 0) {
			/* 2 * n_upd updates: back at big */
			r = ep_table_verify(ns, &big.plan, &opts, &rep, &err);
			if (r == 0 && !rep.in_sync) {
				fprintf(stderr, "bench_program: drift after updates:\n%s", rep.text);
				r = -EIO;
			}
			if (r == 0 || r == -EIO)
				ep_table_report_release(&rep);
		}
		if (r < 0) {
			fprintf(stderr, "bench_program: %s\n", err_format(&err, msg, sizeof(msg)));
			netns_free(ns);
			for (int m = 0; m < 2; m++) {
				free(t_ack[m]);
				free(t_own[m]);
			}
			goto out;
		}
		netns_free(ns);
		printf("1-element update at %zu elements (%zu updates per method, alternating; "
		       "%.1f messages each):\n",
		       n_big, n_upd, (double)msgs / (double)(2 * n_upd));
		for (int m = 0; m < 2; m++) {
			p50[m] = pct(t_call[m], n_m[m], 0.5);
			p99[m] = pct(t_call[m], n_m[m], 0.99);
			printf("    %-21s whole call p50 %5.0f us p99 %5.0f us; kernel ack p50 %4.0f us "
			       "p99 %5.0f us; the rest (ours) p50 %5.0f us p99 %5.0f us\n",
			       method_name[m], p50[m] / 1e3, p99[m] / 1e3,
			       pct(t_ack[m], n_m[m], 0.5) / 1e3, pct(t_ack[m], n_m[m], 0.99) / 1e3,
			       pct(t_own[m], n_m[m], 0.5) / 1e3, pct(t_own[m], n_m[m], 0.99) / 1e3);
		}
		printf("    baseline/fast: p50 %.1fx p99 %.1fx; fast whole call p99 %.0f us "
		       "(target < 1 ms: %s)\n",
		       (double)p50[1] / (double)p50[0], (double)p99[1] / (double)p99[0],
		       p99[0] / 1e3, target(p99[0] < 1000000));
		for (int m = 0; m < 2; m++) {
			free(t_ack[m]);
			free(t_own[m]);
		}
	}
	/* 4. the whole path of one event */
	r = table_clear(big_fd);
	if (r < 0) {
		fprintf(stderr, "bench_program: removing the table: %s\n", strerror(-r));
		goto out;
	}
	if (reconcile_events(big_fd, n_big, n_ev) < 0)
		goto out;
	rc = 0;
out:
	unlink(big_txt);
	unlink(small_txt);
	unlink(empty_txt);
	rmdir(dir);
	for (size_t i = 0; i < n_ns; i++)
		close(fds[i]);
	close(big_fd);
	free(fds);
	free(t_mseg);
	free(t_nft);
	free(t_kern);
	free(big.ents);
	free(big2.ents);
	free(small.ents);
	return rc;
}
